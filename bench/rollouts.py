"""Rollouts per second: our vLLM engine against our HF engine, same model, same prompts, same sampling, one run.

Usage (vLLM's CPU build lives in its own venv, see scripts/setup_vllm.sh):
  .venv-vllm/bin/python bench/rollouts.py [--prompts 32] [--samples 16] [--tokens 64] [--hidden 512] [--layers 8]

The shape of one rank's rollout in a real step (paper recipe: 256 prompts x 16 samples over 8 GPUs = 32 x 16 a rank),
with responses cut to --tokens so a CPU finishes; half the prompts carry an image, all use the training system prompt.
A random Qwen2.5-VL of tens of millions of parameters (the test model only measures overhead). Both engines get the
same requests through the rollout interface (`generate(requests, SamplingSettings(n, temperature=1))`): the HF engine
in batches of `rollout_batch` prompts (the config default, 16), vLLM all at once as train-phase does. Each engine runs
once to warm up, then --repeats timed runs; prints rollouts/s and generated tokens/s of each and the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


def requests(n: int, image_share: float):
    from PIL import Image

    from infimmr_cli.data.prompt import build_messages
    from infimmr_cli.data.records import Record
    from infimmr_cli.rollout import Request

    out = []
    for i in range(n):
        with_image = i < round(n * image_share)
        rec = Record(id=str(i), source="bench", question=f"What is {i} + {2 * i}? Find the value of x.", answer="0",
                     answer_type="math", images=["im.png"] if with_image else [])
        images = [Image.new("RGB", (56 + 28 * (i % 2), 56), (40 * i % 255, 120, 200))] if with_image else []
        out.append(Request(build_messages(rec, with_images=with_image), images))
    return out


def timed(engine, reqs, sampling, repeats: int) -> tuple[float, float]:
    """(rollouts/s, generated tokens/s) over `repeats` runs after one warm-up run."""
    engine.generate(reqs, sampling)
    seconds, tokens, rollouts = 0.0, 0, 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = engine.generate(reqs, sampling)
        seconds += time.perf_counter() - t0
        tokens += sum(len(c.token_ids) for group in out for c in group)
        rollouts += sum(len(group) for group in out)
    return rollouts / seconds, tokens / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--image-share", type=float, default=0.5)
    p.add_argument("--rollout-batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=1)
    a = p.parse_args()

    import torch

    from infimmr_cli.modeling import TinySizes, build_tiny, load_model
    from infimmr_cli.rollout import SamplingSettings
    from infimmr_cli.rollout.hf import HFEngine
    from infimmr_cli.rollout.vllm import VLLMEngine
    from infimmr_cli.training.rollouts import media_token_ids

    sizes = TinySizes(hidden=a.hidden, layers=a.layers, heads=a.hidden // 64, kv_heads=max(1, a.hidden // 128),
                      intermediate=3 * a.hidden, init_scale=1.0)
    model_dir = build_tiny(Path(tempfile.mkdtemp(prefix="bench-rollouts-")) / "model", sizes=sizes)
    model, processor = load_model(model_dir, dtype="fp32")
    params = sum(p.numel() for p in model.parameters())
    reqs = requests(a.prompts, a.image_share)
    sampling = SamplingSettings(n=a.samples, temperature=1.0, max_new_tokens=a.tokens, seed=0)
    print(f"model: hidden {a.hidden}, {a.layers} layers, {params / 1e6:.1f}M parameters, fp32; "
          f"{a.prompts} prompts ({round(a.prompts * a.image_share)} with an image) x {a.samples} samples x "
          f"<= {a.tokens} new tokens; torch threads {torch.get_num_threads()}")

    hf = HFEngine(model, processor, batch_size=a.rollout_batch,
                  generate_kwargs={"suppress_tokens": media_token_ids(processor.tokenizer)})  # as train-phase builds it
    hf_rps, hf_tps = timed(hf, reqs, sampling, a.repeats)
    print(f"HF engine   : {hf_rps:8.1f} rollouts/s  {hf_tps:9.0f} tokens/s")
    del hf, model
    vllm = VLLMEngine.from_pretrained(model_dir, processor, dtype="fp32", max_model_len=1024,
                                      limit_mm_per_prompt={"image": 1})
    v_rps, v_tps = timed(vllm, reqs, sampling, a.repeats)
    print(f"vLLM engine : {v_rps:8.1f} rollouts/s  {v_tps:9.0f} tokens/s  (torch threads after vLLM's CPU binding: "
          f"{torch.get_num_threads()})")
    print(f"vLLM / HF   : {v_rps / hf_rps:.2f}x rollouts/s, {v_tps / hf_tps:.2f}x tokens/s")


if __name__ == "__main__":
    main()
