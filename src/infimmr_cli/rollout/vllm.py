"""A colocated vLLM engine behind the rollout interface: GPU (`pip install -e '.[vllm]'`) or vLLM's CPU build
(`scripts/setup_vllm.sh`).

Tested against vLLM itself (tests/test_vllm_real.py, `pytest -m vllm`); facts in ../shared/VLLM-NOTES.md:
- prompts go in as chat text with ONE unexpanded `<|image_pad|>` per image; vLLM expands them itself (sending the HF
  processor's expanded ids would expand them twice, silently);
- images arrive already resized by images.py to the processor's pixel range, and the same range is passed to vLLM as
  `mm_processor_kwargs`, so vLLM and the training forward pass count the same image tokens;
- the engine adapts to the platform: sleep mode only where vLLM supports it (GPU), weights pushed with the loader
  call that works there (`model.load_weights` on GPU; `reload_weights` through `collective_rpc` on CPU, where the
  loaded weights are repacked for oneDNN), per-request seeds only where they cannot crash a split prefill;
- every push carries the tied `lm_head` (added from the embedding when the pairs lack it) and is followed by a reset
  of the prefix cache and the encoder (image) cache;
- under torchrun every rank runs its own engine (`external_launcher`); on GPU it sleeps (level 1) between rollouts and
  wakes in the safe order: weights -> push new weights -> reset prefix cache -> KV cache.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from PIL import Image

from infimmr_cli.data.images import fit_size, pixel_limits
from infimmr_cli.rollout.base import Completion, Request, SamplingSettings
from infimmr_cli.rollout.weights import hf_weight_name, with_tied_head

IMAGE_PAD = "<|image_pad|>"


def find_vllm_model(llm) -> torch.nn.Module | None:
    """The colocated model object (with `load_weights`), or None when only `collective_rpc` can reach it.

    Without multiprocessing the executor holds the worker in-process: `driver_worker.model_runner.model`, or one more
    `.worker` hop where the driver is a wrapper around the worker.
    """
    executor = getattr(getattr(llm, "llm_engine", None), "model_executor", None)
    worker = getattr(executor, "driver_worker", None)
    for holder in (worker, getattr(worker, "worker", None)):
        model = getattr(getattr(holder, "model_runner", None), "model", None)
        if model is not None and hasattr(model, "load_weights"):
            return model
    return None


def _load_on_worker(worker, weights: list[tuple[str, torch.Tensor]]) -> int:
    """Runs inside each vLLM worker (through `collective_rpc`): hand the weights to its model's loader."""
    worker.model_runner.model.load_weights(weights)
    return len(weights)


@dataclass(frozen=True)
class Platform:
    """What the platform vLLM runs on allows; `detect()` asks vLLM, tests pass one in."""

    sleep: bool              # LLM(enable_sleep_mode=True) is accepted (CUDA/ROCm/XPU; refused on CPU)
    push: str                # "load_weights" (the model's own loader) or "reload" (collective_rpc reload_weights)
    request_seed: bool       # SamplingParams(seed=...) is safe (on CPU it crashes when a prefill is split)

    @classmethod
    def detect(cls) -> "Platform":
        from vllm.platforms import current_platform

        cpu = current_platform.is_cpu()
        return cls(sleep=current_platform.is_sleep_mode_available(), push="reload" if cpu else "load_weights",
                   request_seed=not cpu)


GPU = Platform(sleep=True, push="load_weights", request_seed=True)


@contextlib.contextmanager
def _global_rng_kept():
    """Starting vLLM reseeds Python's, numpy's and torch's global generators (to its `seed`); put the caller's back.

    The in-process engine samples with torch's default generator (CPU), so the trainer's seeding (seed + rank, and
    the RNG state a checkpoint restores) is what makes rollouts differ between ranks and resume exactly.
    """
    import random

    import numpy as np

    states = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])


def ties_embeddings(model_dir: str | Path) -> bool:
    """Whether the model's output layer is its input embedding (config.json, top level or text_config)."""
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    return bool(cfg.get("tie_word_embeddings") or cfg.get("text_config", {}).get("tie_word_embeddings"))


def _finish_reason(reason: str | None) -> str:
    if reason in ("stop", "length"):
        return reason
    # "abort" (or None) means the request did not finish: a silent "stop" would score a cut-off rollout.
    raise RuntimeError(f"vLLM returned finish_reason {reason!r}; expected 'stop' or 'length'")


class VLLMEngine:
    """`RolloutEngine` over a `vllm.LLM`. Build with `from_pretrained`; the constructor takes a ready LLM (tests)."""

    def __init__(self, llm, processor, sleep_level: int = 1, platform: Platform = GPU, tied: bool = True):
        self.llm = llm
        self.processor = processor
        self.sleep_level = sleep_level
        self.platform = platform
        self.tied = tied  # the model's lm_head is its embedding: every push must carry it
        # "awake", "asleep", or "weights" (weights woken, KV cache still released): where the safe wake order stands.
        self.state = "awake"
        self.weights_lost = False  # level-2 sleep discards the weights: they must be pushed before generating again
        self.min_pixels, self.max_pixels, self.factor = pixel_limits(processor)
        tok = processor.tokenizer
        self.stop_ids = sorted({i for i in (tok.convert_tokens_to_ids("<|im_end|>"), tok.eos_token_id)
                                if isinstance(i, int) and i >= 0})

    @property
    def needs_weight_push(self) -> bool:
        """vLLM holds its own copy of the weights: the trainer must push the policy's after every update."""
        return True

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, processor, dtype: str = "auto", trust_remote_code: bool = False,
                        sleep_level: int = 1, platform: Platform | None = None,
                        **engine_kwargs: Any) -> "VLLMEngine":
        """Start vLLM on a local model directory (a hub id: its HF cache snapshot) with the processor's pixel range.

        engine_kwargs go to `vllm.LLM` (gpu_memory_utilization, max_model_len, max_num_batched_tokens, seed,
        tensor_parallel_size, load_format, ...). Defaults set here: sleep mode where the platform has it, at most 4
        images a prompt, and `distributed_executor_backend="external_launcher"` when started under torchrun (one
        engine per rank). On CPU the engine runs in-process (VLLM_ENABLE_V1_MULTIPROCESSING=0 unless set): tensors
        cannot be passed to a worker process, and loading is 5x faster.
        """
        from infimmr_cli.modeling import resolve_model

        # vLLM given a hub id would fetch it itself (pickled weights included): it gets the directory we resolved
        model_dir = resolve_model(model_dir, trust_remote_code=trust_remote_code)
        platform = platform or Platform.detect()
        cpu = platform.push == "reload"
        if cpu:  # vllm.envs reads this when the engine starts
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            if os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] != "0":
                raise ValueError("VLLM_ENABLE_V1_MULTIPROCESSING: on CPU the engine must run in-process (unset it or "
                                 "set 0): weights are pushed as tensors, which a worker process cannot receive")
        from vllm import LLM

        lo, hi, _ = pixel_limits(processor)
        kwargs: dict[str, Any] = dict(enable_sleep_mode=platform.sleep, limit_mm_per_prompt={"image": 4})
        if cpu:  # no graph capture to gain on CPU; compiling costs minutes on a small box
            kwargs["enforce_eager"] = True
        if cpu and dtype == "auto":
            dtype = "fp32"  # as the HF engine's "auto" on CPU, so both engines compute alike
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
            kwargs["distributed_executor_backend"] = "external_launcher"
        kwargs.update(engine_kwargs)
        if kwargs["enable_sleep_mode"] and not platform.sleep:
            kwargs["enable_sleep_mode"] = False  # refused by the platform ("Sleep mode is not supported")
        kwargs["mm_processor_kwargs"] = {**kwargs.get("mm_processor_kwargs", {}), "min_pixels": lo, "max_pixels": hi}
        dtype = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}.get(dtype, dtype)
        with _global_rng_kept():
            llm = LLM(model=str(model_dir), dtype=dtype, trust_remote_code=trust_remote_code, **kwargs)
        platform = Platform(sleep=bool(kwargs["enable_sleep_mode"]), push=platform.push,
                            request_seed=platform.request_seed)
        return cls(llm, processor, sleep_level=sleep_level, platform=platform, tied=ties_embeddings(model_dir))

    # ---- prompts -------------------------------------------------------------------------------------------------
    def _on_grid(self, image: Image.Image) -> Image.Image:
        """The image as images.py sizes it: a no-op for images loaded there, a resize for any that were not."""
        h, w = fit_size(image.height, image.width, self.min_pixels, self.max_pixels, self.factor)
        return image if (h, w) == (image.height, image.width) else image.resize((w, h), Image.Resampling.BICUBIC)

    def prompt(self, request: Request) -> dict[str, Any]:
        """vLLM's input for one request: chat text with exactly one unexpanded pad per image, plus the images."""
        text = self.processor.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
        pads = text.count(IMAGE_PAD)
        if pads != len(request.images) or IMAGE_PAD * 2 in text:
            raise ValueError(f"prompt has {pads} {IMAGE_PAD} for {len(request.images)} images; "
                             "need one unexpanded pad per image (vLLM expands each itself)")
        out: dict[str, Any] = {"prompt": text}
        if request.images:
            out["multi_modal_data"] = {"image": [self._on_grid(im) for im in request.images]}
        return out

    def sampling_params(self, sampling: SamplingSettings):
        from vllm import SamplingParams

        greedy = sampling.greedy
        return SamplingParams(
            n=sampling.n,
            temperature=0.0 if greedy else sampling.temperature,
            top_p=1.0 if greedy else sampling.top_p,
            top_k=-1 if (greedy or sampling.top_k <= 0) else sampling.top_k,  # vLLM: -1 is off
            max_tokens=sampling.max_new_tokens,
            repetition_penalty=sampling.repetition_penalty,
            seed=sampling.seed if self.platform.request_seed else None,
            stop_token_ids=self.stop_ids,
        )

    def _completion(self, out) -> Completion:
        ids = list(out.token_ids)
        reason = _finish_reason(out.finish_reason)
        if reason == "stop" and ids and ids[-1] in self.stop_ids:
            ids = ids[:-1]  # like HFEngine: the end token is not part of the completion
        # Decoded from the ids as HFEngine does: vLLM's incremental detokenizer holds back a trailing partial UTF-8
        # character, so its `out.text` can differ from the same ids decoded whole.
        text = self.processor.tokenizer.decode(ids, skip_special_tokens=True)
        return Completion(text=text, token_ids=ids, finish_reason=reason)

    def generate(self, requests: Sequence[Request], sampling: SamplingSettings) -> list[list[Completion]]:
        if not requests:
            return []
        self.wake_up()  # never generate on a sleeping engine: it crashes on GPU and hangs on CPU
        if sampling.seed is not None and not self.platform.request_seed:
            # No per-request seed here: the in-process engine samples with torch's default generator, so seeding it
            # makes the call reproducible, as HFEngine does.
            torch.manual_seed(sampling.seed)
        outputs = self.llm.generate([self.prompt(r) for r in requests], self.sampling_params(sampling),
                                    use_tqdm=False)
        if len(outputs) != len(requests):
            raise RuntimeError(f"vLLM returned {len(outputs)} results for {len(requests)} requests")
        return [[self._completion(o) for o in res.outputs] for res in outputs]

    # ---- weights and memory --------------------------------------------------------------------------------------
    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Push (HF name, full tensor) pairs into the running model; PEFT names are cleaned, LoRA tensors skipped,
        the tied head added when missing; then both caches are reset.

        Wakes the weights first if asleep (never the KV cache: the trainer may still hold that memory).
        """
        if self.state == "asleep":
            self.llm.wake_up(tags=["weights"])
            self.state = "weights"
        cleaned = ((n, t) for n, t in ((hf_weight_name(n), t) for n, t in named_tensors) if n is not None)
        weights = with_tied_head(cleaned, self.tied)
        if self.platform.push == "reload":
            # The in-process engine takes the tensors as they are; loading repacks them for the CPU kernels.
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": list(weights),
                                                              "is_checkpoint_format": True})
        else:
            model = find_vllm_model(self.llm)
            if model is not None:
                model.load_weights(weights)
            elif hasattr(self.llm, "collective_rpc"):
                self.llm.collective_rpc(_load_on_worker, args=(list(weights),))
            else:
                raise RuntimeError("cannot reach the vLLM model to push weights: no driver worker and no "
                                   "collective_rpc")
        self.weights_lost = False
        # Cached prefixes hold keys/values computed with the old weights, and cached image embeddings come from the
        # old vision tower ("Encoder cache miss" or silently stale images otherwise).
        self.llm.reset_prefix_cache()
        self.llm.llm_engine.reset_encoder_cache()

    def sleep(self) -> None:
        if self.platform.sleep and self.state != "asleep":
            self.llm.sleep(level=self.sleep_level)
            self.state = "asleep"
            self.weights_lost = self.sleep_level >= 2

    def wake_up(self) -> None:
        if self.weights_lost:
            raise RuntimeError("the engine slept at level 2 and lost its weights: call load_weights before waking")
        if self.state == "asleep":
            self.llm.wake_up(tags=["weights"])
            self.state = "weights"
        if self.state == "weights":
            self.llm.reset_prefix_cache()
            self.llm.wake_up(tags=["kv_cache"])
            self.state = "awake"
