"""A colocated vLLM engine behind the rollout interface (GPU only; `pip install infimmr[vllm]`).

Written from ../shared/VLLM-NOTES.md and tested against a fake of the vLLM API it calls (tests/test_vllm_adapter.py):
- prompts go in as chat text with ONE unexpanded `<|image_pad|>` per image; vLLM expands them itself (sending the HF
  processor's expanded ids would expand them twice);
- images arrive already resized by images.py to the processor's pixel range, and the same range is passed to vLLM as
  `mm_processor_kwargs`, so vLLM and the training forward pass count the same image tokens;
- under torchrun every rank runs its own engine (`external_launcher`); it sleeps (level 1) between rollouts and wakes
  in the safe order: weights -> push new weights -> reset prefix cache -> KV cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from PIL import Image

from infimmr_cli.data.images import fit_size, pixel_limits
from infimmr_cli.rollout.base import Completion, Request, SamplingSettings
from infimmr_cli.rollout.weights import hf_weight_name

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


def _finish_reason(reason: str | None) -> str:
    if reason in ("stop", "length"):
        return reason
    # "abort" (or None) means the request did not finish: a silent "stop" would score a cut-off rollout.
    raise RuntimeError(f"vLLM returned finish_reason {reason!r}; expected 'stop' or 'length'")


class VLLMEngine:
    """`RolloutEngine` over a `vllm.LLM`. Build with `from_pretrained`; the constructor takes a ready LLM (tests)."""

    def __init__(self, llm, processor, sleep_level: int = 1, sleep_mode: bool = True):
        self.llm = llm
        self.processor = processor
        self.sleep_level = sleep_level
        self.sleep_mode = sleep_mode
        # "awake", "asleep", or "weights" (weights woken, KV cache still released): where the safe wake order stands.
        self.state = "awake"
        self.weights_lost = False  # level-2 sleep discards the weights: they must be pushed before generating again
        self.min_pixels, self.max_pixels, self.factor = pixel_limits(processor)
        tok = processor.tokenizer
        self.stop_ids = sorted({i for i in (tok.convert_tokens_to_ids("<|im_end|>"), tok.eos_token_id)
                                if isinstance(i, int) and i >= 0})

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, processor, dtype: str = "auto", trust_remote_code: bool = False,
                        sleep_level: int = 1, **engine_kwargs: Any) -> "VLLMEngine":
        """Start vLLM on a local model directory with the processor's pixel range.

        engine_kwargs go to `vllm.LLM` (gpu_memory_utilization, max_model_len, max_num_batched_tokens, seed,
        tensor_parallel_size, load_format, ...). Defaults set here: sleep mode on, at most 4 images a prompt, and
        `distributed_executor_backend="external_launcher"` when started under torchrun (one engine per rank).
        """
        from vllm import LLM

        lo, hi, _ = pixel_limits(processor)
        kwargs: dict[str, Any] = dict(enable_sleep_mode=True, limit_mm_per_prompt={"image": 4})
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
            kwargs["distributed_executor_backend"] = "external_launcher"
        kwargs.update(engine_kwargs)
        kwargs["mm_processor_kwargs"] = {**kwargs.get("mm_processor_kwargs", {}), "min_pixels": lo, "max_pixels": hi}
        dtype = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}.get(dtype, dtype)
        llm = LLM(model=str(model_dir), dtype=dtype, trust_remote_code=trust_remote_code, **kwargs)
        return cls(llm, processor, sleep_level=sleep_level, sleep_mode=bool(kwargs["enable_sleep_mode"]))

    # ---- prompts -------------------------------------------------------------------------------------------------
    def _on_grid(self, image: Image.Image) -> Image.Image:
        """The image as images.py sizes it: a no-op for images loaded there, a resize for any that were not."""
        h, w = fit_size(image.height, image.width, self.min_pixels, self.max_pixels, self.factor)
        return image if (h, w) == (image.height, image.width) else image.resize((w, h), Image.Resampling.BICUBIC)

    def prompt(self, request: Request) -> dict[str, Any]:
        """vLLM's input for one request: chat text with unexpanded pads, plus the images."""
        text = self.processor.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
        pads = text.count(IMAGE_PAD)
        if pads != len(request.images):
            raise ValueError(f"prompt has {pads} {IMAGE_PAD} for {len(request.images)} images; "
                             "need one unexpanded pad per image")
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
            seed=sampling.seed,
            stop_token_ids=self.stop_ids,
        )

    def _completion(self, out) -> Completion:
        ids = list(out.token_ids)
        reason = _finish_reason(out.finish_reason)
        if reason == "stop" and ids and ids[-1] in self.stop_ids:
            ids = ids[:-1]  # like HFEngine: the end token is not part of the completion
        return Completion(text=out.text, token_ids=ids, finish_reason=reason)

    def generate(self, requests: Sequence[Request], sampling: SamplingSettings) -> list[list[Completion]]:
        if not requests:
            return []
        self.wake_up()  # generating on a sleeping engine would crash inside vLLM; waking twice is a no-op
        outputs = self.llm.generate([self.prompt(r) for r in requests], self.sampling_params(sampling),
                                    use_tqdm=False)
        if len(outputs) != len(requests):
            raise RuntimeError(f"vLLM returned {len(outputs)} results for {len(requests)} requests")
        return [[self._completion(o) for o in res.outputs] for res in outputs]

    # ---- weights and memory --------------------------------------------------------------------------------------
    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Push (HF name, full tensor) pairs into the running model; PEFT names are cleaned, LoRA tensors skipped.

        Wakes the weights first if asleep (never the KV cache: the trainer may still hold that memory).
        """
        if self.state == "asleep":
            self.llm.wake_up(tags=["weights"])
            self.state = "weights"
        weights = ((n, t) for n, t in ((hf_weight_name(n), t) for n, t in named_tensors) if n is not None)
        model = find_vllm_model(self.llm)
        if model is not None:
            model.load_weights(weights)
        elif hasattr(self.llm, "collective_rpc"):
            self.llm.collective_rpc(_load_on_worker, args=(list(weights),))
        else:
            raise RuntimeError("cannot reach the vLLM model to push weights: no driver worker and no collective_rpc")
        self.weights_lost = False
        # Cached prefixes hold keys/values computed with the old weights.
        self.llm.reset_prefix_cache()

    def sleep(self) -> None:
        if self.sleep_mode and self.state != "asleep":
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
