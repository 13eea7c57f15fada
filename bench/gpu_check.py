"""The GPU check: train-phase and eval at Qwen2.5-VL-3B size, in bf16, under torchrun with DeepSpeed, in one command.

    bash bench/gpu_check.sh            # on a GPU machine: 3B-shaped random model, bf16, ZeRO-2 (see README "Benchmarks")
    bash bench/gpu_check.sh --tiny     # the same script on a CPU at tiny size (CI runs this so it cannot rot)

Steps, each a subprocess a user would run the same way:
1. build a model with random weights from `bench/configs/qwen2_5_vl_3b.json` (Qwen2.5-VL-3B-Instruct's architecture;
   no hub) and a processor from our offline tokenizer; `--tiny` builds the tiny test model instead;
2. write a few dozen image records (arithmetic drawn into 448x448 images, MRE view) and a MATH-500-shaped export;
3. `train-phase` for a few steps under `torchrun --nproc_per_node 1` with DeepSpeed (ZeRO-2 by default), HF rollouts,
   paper-shaped settings scaled to fit (prompts x 16 rollouts, a response length of a few hundred tokens);
4. `eval` on the MATH-500-shaped export;
5. the `--dry-run` memory estimate for the same settings, beside the measured peak.

Printed and written to OUT/gpu_check.json and OUT/gpu_check.md: seconds per step split into rollout / reward / log-prob
/ update (where the trainer logs the split), tokens per second, peak GPU memory (nvidia-smi, sampled every 0.2 s; peak
host RSS on a CPU), MFU, eval items per second.

MFU = model FLOPs per step / (step seconds x peak bf16 FLOP/s of the card), with model FLOPs counted as
2 x N x tokens for every forward-only pass (rollout prefill + decode, old and reference log-probs) and 6 x N x tokens for
the update pass (forward + backward; recomputation under gradient checkpointing is not counted, as is usual for MFU), where
N is the language model's parameter count (embedding counted once, as the tied LM head's matrix product) and tokens are
prompt + completion tokens of every sequence; the vision tower adds 2 (or 6) x N_vision x patches per image. Attention's
quadratic term is left out (sequences are short next to the hidden size). Peak: 989 TFLOP/s dense bf16 for H100/H200 SXM.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def settings(tiny: bool) -> dict:
    """Paper-shaped settings (§5.1: 16 rollouts a prompt, lr 1e-6, clip 0.2, KL), scaled to one card and a few minutes."""
    if tiny:
        return dict(prompts=4, group=4, response=16, steps=2, micro=4, items=8, eval_items=4, eval_tokens=16,
                    dtype="fp32", image=56)
    return dict(prompts=8, group=16, response=256, steps=3, micro=8, items=32, eval_items=32, eval_tokens=256,
                dtype="bf16", image=448)


# ---- 1. the model -------------------------------------------------------------------------------------------------


def build_model(out: Path, tiny: bool) -> Path:
    from infimmr_cli.modeling import build_tiny

    if tiny:
        return build_tiny(out)
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    # The tokenizer and processor come from the tiny build (offline); the weights from the 3B architecture.
    scratch = out.with_name(out.name + "-tokenizer")
    build_tiny(scratch)
    spec = json.loads((REPO / "bench/configs/qwen2_5_vl_3b.json").read_text())
    tiny_cfg = json.loads((scratch / "config.json").read_text())
    ids = {k: tiny_cfg[k] for k in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")}
    text = dict(spec["text_config"], bos_token_id=tiny_cfg["text_config"]["bos_token_id"],
                eos_token_id=tiny_cfg["text_config"]["eos_token_id"], pad_token_id=tiny_cfg["text_config"]["pad_token_id"])
    config = Qwen2_5_VLConfig(text_config=text, vision_config=spec["vision_config"],
                              tie_word_embeddings=spec["tie_word_embeddings"], **ids)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration(config).to(torch.bfloat16)
    model.generation_config = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        scratch, dtype=torch.float32).generation_config
    model.save_pretrained(out, safe_serialization=True)
    del model
    processor = AutoProcessor.from_pretrained(scratch)
    processor.image_processor.min_pixels = spec["processor"]["min_pixels"]
    processor.image_processor.max_pixels = spec["processor"]["max_pixels"]
    processor.image_processor.size = {"shortest_edge": spec["processor"]["min_pixels"],
                                      "longest_edge": spec["processor"]["max_pixels"]}
    processor.save_pretrained(out)
    shutil.rmtree(scratch)
    return out


def param_counts(model_dir: Path) -> tuple[int, int]:
    """(language-model params, vision-tower params) from the safetensors headers: no weights are read."""
    from safetensors import safe_open

    lm = vis = 0
    for f in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as fh:
            for name in fh.keys():
                n = 1
                for d in fh.get_slice(name).get_shape():
                    n *= d
                if ".visual." in f".{name}" or name.startswith("visual."):
                    vis += n
                else:
                    lm += n
    return lm, vis


# ---- 2. the data --------------------------------------------------------------------------------------------------


def write_data(root: Path, s: dict) -> tuple[Path, Path]:
    """Image records for train-phase (MRE view) and a MATH-500-shaped export for eval."""
    from PIL import Image, ImageDraw

    rng = random.Random(0)
    img_dir = root / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(s["items"]):
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        im = Image.new("RGB", (s["image"], s["image"]), "white")
        ImageDraw.Draw(im).text((4, s["image"] // 3), f"{a} + {b} = ?", fill="black")
        im.save(img_dir / f"q{i}.png")
        lines.append({"id": f"q{i}", "source": "gpu-check", "question": "What is the sum shown in the image?",
                      "answer": str(a + b), "answer_type": "math", "choices": None, "images": [f"images/q{i}.png"],
                      "image_type": "mathgeo", "caption": None, "meta": {}})
    records = root / "train.jsonl"
    records.write_text("".join(json.dumps(x) + "\n" for x in lines))
    bench = root / "bench" / "math500"
    bench.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(s["eval_items"]):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        rows.append({"problem": f"Compute ${a} \\times {b}$.", "answer": str(a * b), "solution": "",
                     "subject": "Prealgebra", "level": 1, "unique_id": f"test/prealgebra/{i}.json"})
    (bench / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return records, root / "bench"


# ---- 3-4. the runs ------------------------------------------------------------------------------------------------


class GpuMemorySampler:
    """Peak used GPU memory (MiB) from nvidia-smi every 0.2 s: it sees every process on the card, DeepSpeed's too."""

    def __init__(self):
        self.peak_mib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.available = shutil.which("nvidia-smi") is not None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=10).stdout
                self.peak_mib = max([self.peak_mib] + [int(x) for x in out.split() if x.strip().isdigit()])
            except (OSError, subprocess.SubprocessError, ValueError):
                pass
            self._stop.wait(0.2)

    def __enter__(self):
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.available:
            self._thread.join()


def run(cmd: list[str], log: Path, env: dict) -> float:
    """Run a command, its output to `log` (and the end of it to stderr on failure); returns wall seconds."""
    t = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    if proc.returncode != 0:
        sys.stderr.write(log.read_text()[-6000:])
        raise SystemExit(f"gpu_check: {' '.join(cmd[:6])} ... failed (exit {proc.returncode}); log: {log}")
    return time.perf_counter() - t


def train_command(s: dict, args, model: Path, records: Path, run_dir: Path) -> list[str]:
    ds = REPO / "recipes" / ("ds_zero3.json" if args.zero3 else "ds_zero2.json")
    sets = {"prompts_per_step": s["prompts"], "group_size": s["group"], "update_batch": s["prompts"],
            "micro_batch": s["micro"], "rollout_batch": s["prompts"], "max_response_len": s["response"],
            "max_prompt_len": 2048, "dtype": s["dtype"], "gradient_checkpointing": str(not args.tiny).lower(),
            "lr": 1e-6, "beta": args.beta, "clip_eps": 0.2, "temperature": 1.0, "save_every": 1000,
            "reward_workers": 2 if args.tiny else 8}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
           "-m", "infimmr_cli", "train-phase", "--phase", "mre", "--data", str(records), "--init", str(model),
           "--out", str(run_dir), "--deepspeed", str(ds), "--steps", str(s["steps"]), "--engine", "hf"]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={v}"]
    return cmd


def memory_estimate(model: Path, zero3: bool) -> dict | None:
    """What `train-phase --dry-run` prints for the same model and DeepSpeed config (model states only)."""
    from infimmr_cli.training.config import TrainConfig
    from infimmr_cli.training.report import memory_estimate as estimate

    ds = REPO / "recipes" / ("ds_zero3.json" if zero3 else "ds_zero2.json")
    try:
        return estimate(TrainConfig(init=str(model), deepspeed=str(ds)), 1, 1)
    except Exception as exc:  # the estimate is a comparison, not the check: report why it is missing
        return {"error": f"{type(exc).__name__}: {exc}"}


# ---- 5. the figures -----------------------------------------------------------------------------------------------


def step_figures(rows: list[dict]) -> dict:
    """Means over the steps after the first (the first pays for warm-up), or the only step."""
    timed = rows[1:] or rows
    keys = ["step_time", "rollout_time", "reward_time", "logprob_time", "update_time", "tokens_per_s"]
    out = {k: sum(r[k] for r in timed) / len(timed) for k in keys if all(k in r for r in timed)}
    out["first_step_time"] = rows[0]["step_time"]
    out["response_len_mean"] = sum(r["response_len_mean"] for r in timed) / len(timed)
    return out


def model_flops(s: dict, figures: dict, n_lm: int, n_vis: int, beta: float, patches_per_image: int) -> float:
    """Model FLOPs of one step (module docstring): forward-only passes at 2N per token, the update at 6N per token."""
    tokens = figures["tokens_per_s"] * figures["step_time"]  # prompt + completion tokens of every sequence
    sequences = s["prompts"] * s["group"]
    forward_passes = 1 + (1 if beta > 0 else 0)  # rollout + reference (old log-probs skipped: one update per step)
    text = (2 * forward_passes + 6) * n_lm * tokens
    vision = (2 * forward_passes + 6) * n_vis * patches_per_image * sequences
    return text + vision


def peak_flops() -> tuple[str, float | None]:
    try:
        import torch

        if torch.cuda.is_available():
            name = torch.cuda.get_device_name(0)
            return name, next((v for k, v in PEAK_BF16.items() if k in name), None)
    except ImportError:
        pass
    return "cpu", None


def count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e8 else f"{n / 1e6:.2f}M"


def markdown(res: dict) -> str:
    f, m = res["train"], res["memory"]
    rows = [("device", res["device"]), ("model", f"{res['model']['kind']}: {count(res['model']['params_lm'])} LM + "
                                              f"{count(res['model']['params_vision'])} vision, {res['settings']['dtype']}"),
            ("settings", f"{res['settings']['prompts']} prompts x {res['settings']['group']} rollouts, response "
                         f"{res['settings']['response']} tokens, ZeRO-{res['zero_stage']}, {res['settings']['steps']} steps"),
            ("first step (s)", f"{f['first_step_time']:.2f}"), ("step (s)", f"{f['step_time']:.2f}")]
    for k in ("rollout_time", "reward_time", "logprob_time", "update_time"):
        if k in f:
            rows.append((k.replace("_time", " (s)"), f"{f[k]:.2f}"))
    rows += [("tokens/s", f"{f['tokens_per_s']:.0f}"), ("mean response length", f"{f['response_len_mean']:.0f}"),
             ("MFU", f"{res['mfu'] * 100:.1f}%" if res["mfu"] is not None else "n/a (no GPU)"),
             ("peak GPU memory (GiB)", f"{m['peak_gpu_gib']:.1f}" if m["peak_gpu_gib"] is not None else "n/a"),
             ("peak host RSS, largest child (GiB)", f"{m['peak_host_rss_gib']:.2f}"),
             ("dry-run estimate, model states (GiB)",
              f"{m['estimate']['gpu_gib_per_gpu']:.1f}" if m["estimate"] and "gpu_gib_per_gpu" in m["estimate"] else "n/a"),
             ("eval items/s (incl. model load)", f"{res['eval']['items_per_s']:.2f}")]
    return "| figure | value |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny model on a CPU (what CI runs)")
    ap.add_argument("--zero3", action="store_true", help="ZeRO-3 instead of ZeRO-2")
    ap.add_argument("--beta", type=float, default=1e-3, help="KL weight; 0 loads no reference model (saves 7 GB)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or REPO / "runs" / "gpu_check"))
    args = ap.parse_args()
    s = settings(args.tiny)
    if args.steps:
        s["steps"] = args.steps
    out = args.out.resolve()
    work = out / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
               PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()

    model = build_model(work / "model", args.tiny)
    n_lm, n_vis = param_counts(model)
    records, bench = write_data(work / "data", s)
    print(f"[{time.perf_counter() - t0:5.0f}s] model built: {count(n_lm)} LM + {count(n_vis)} vision", flush=True)

    run_dir = work / "run"
    with GpuMemorySampler() as sampler:
        train_s = run(train_command(s, args, model, records, run_dir), out / "train.log", env)
    host_rss_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
    figures = step_figures(rows)
    print(f"[{time.perf_counter() - t0:5.0f}s] train-phase: {len(rows)} steps in {train_s:.0f} s", flush=True)

    eval_cmd = [sys.executable, "-m", "infimmr_cli", "eval", "--bench", "math500", "--model", str(run_dir / "final"),
                "--data-dir", str(bench), "--out", str(work / "eval"), "--engine", "hf",
                "--max-new-tokens", str(s["eval_tokens"]), "--batch-size", str(min(32, s["eval_items"])),
                "--dtype", s["dtype"]]
    eval_s = run(eval_cmd, out / "eval.log", env)
    print(f"[{time.perf_counter() - t0:5.0f}s] eval: {s['eval_items']} items in {eval_s:.0f} s", flush=True)

    device, peak = peak_flops()
    patches = (s["image"] // 14) ** 2
    flops = model_flops(s, figures, n_lm, n_vis, args.beta, patches)
    res = {
        "device": device, "zero_stage": 3 if args.zero3 else 2, "settings": s, "beta": args.beta,
        "model": {"kind": "tiny" if args.tiny else "qwen2.5-vl-3b-shaped", "params_lm": n_lm, "params_vision": n_vis},
        "train": figures, "steps": rows,
        "flops_per_step": flops, "mfu": flops / (figures["step_time"] * peak) if peak else None,
        "memory": {"peak_gpu_gib": sampler.peak_mib / 1024 if sampler.available else None,
                   "peak_host_rss_gib": host_rss_gib, "estimate": memory_estimate(model, args.zero3)},
        "eval": {"items": s["eval_items"], "seconds": eval_s, "items_per_s": s["eval_items"] / eval_s},
        "total_seconds": time.perf_counter() - t0,
    }
    (out / "gpu_check.json").write_text(json.dumps(res, indent=2) + "\n")
    table = markdown(res)
    (out / "gpu_check.md").write_text(table)
    if not args.tiny:
        shutil.rmtree(work, ignore_errors=True)  # GBs of weights; the figures are in the JSON and Markdown
    print(table)
    print(f"written: {out / 'gpu_check.json'}, {out / 'gpu_check.md'} ({res['total_seconds']:.0f} s in all)")


if __name__ == "__main__":
    main()
