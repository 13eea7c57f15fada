"""Generation engines behind one small interface: HF `generate` and colocated vLLM (GPU, or its CPU build)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from infimmr_cli.rollout.base import Completion, Request, RolloutEngine, SamplingSettings

__all__ = ["Completion", "Request", "RolloutEngine", "SamplingSettings", "open_engine", "vllm_available"]


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def open_engine(model_dir: str | Path, engine: str = "auto", batch_size: int = 8, dtype: str = "auto",
                device: str | None = None, trust_remote_code: bool = False, revision: str | None = None,
                **vllm_kwargs):
    """An inference engine for a model directory or hub id (classify, caption, eval).

    engine: "vllm", "hf", or "auto" (vLLM when installed and a GPU is present, else HF).
    Returns (engine, processor): the processor gives the pixel limits every image is resized to.
    """
    import torch

    from infimmr_cli.modeling import resolve_model

    # once, here: the processor and either engine load the very same local directory (a hub id: its cache snapshot)
    model_dir = resolve_model(model_dir, revision, trust_remote_code=trust_remote_code)
    if engine == "auto":
        engine = "vllm" if (vllm_available() and torch.cuda.is_available()) else "hf"
    if engine == "vllm":
        from infimmr_cli.modeling import load_processor
        from infimmr_cli.rollout.vllm import VLLMEngine

        processor = load_processor(model_dir, trust_remote_code=trust_remote_code)
        return VLLMEngine.from_pretrained(model_dir, processor=processor, dtype=dtype,
                                          trust_remote_code=trust_remote_code, **vllm_kwargs), processor
    if engine != "hf":
        raise ValueError(f"engine: {engine!r} is not one of auto, vllm, hf")
    from infimmr_cli.modeling import load_model
    from infimmr_cli.rollout.hf import HFEngine

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, processor = load_model(model_dir, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
    return HFEngine(model, processor, batch_size=batch_size), processor
