"""Full policy weights under Hugging Face names, for pushing into a rollout engine after an optimizer step.

The trainer's model may be a DeepSpeed engine, partitioned by ZeRO-3, and/or wrapped by peft LoRA. An inference engine
wants none of that: it wants each full tensor under the name the HF checkpoint uses. `iter_full_weights` gives exactly
that and leaves the trainer's model as it found it.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator

import torch

PEFT_PREFIX = "base_model.model."


def hf_weight_name(name: str) -> str | None:
    """The HF checkpoint name of a (possibly peft-wrapped) parameter, or None for adapter-only tensors to skip.

    'base_model.model.model.layers.0.q_proj.base_layer.weight' -> 'model.layers.0.q_proj.weight';
    '...q_proj.lora_A.default.weight' -> None; modules_to_save copies map to the plain name, their originals are skipped.
    """
    if name.startswith(PEFT_PREFIX):
        name = name[len(PEFT_PREFIX):]
    parts = name.split(".")
    if any(p.startswith("lora_") for p in parts) or "original_module" in parts:
        return None
    out: list[str] = []
    i = 0
    while i < len(parts):
        if parts[i] == "base_layer":
            i += 1
            continue
        if parts[i] == "modules_to_save":  # 'modules_to_save.<adapter>.' holds the trained copy
            i += 2
            continue
        out.append(parts[i])
        i += 1
    return ".".join(out)


def _is_partitioned(params: Iterable[torch.nn.Parameter]) -> bool:
    # ZeRO-3 tags every parameter it manages with `ds_id` and keeps only a shard in `.data`.
    return any(hasattr(p, "ds_id") for p in params)


@contextlib.contextmanager
def _gathered(params: list[torch.nn.Parameter], enabled: bool):
    if not enabled:
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
        yield


def iter_full_weights(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (HF name, full tensor) for every policy weight; LoRA merged in, ZeRO-3 shards gathered.

    Plain model: each parameter as it is. ZeRO-3: one parameter gathered at a time and cloned (the gathered storage is
    released when the next one is fetched). LoRA: all parameters gathered (ZeRO-3) while the adapter is merged, copies
    of the merged base weights yielded, then the adapter is unmerged so training continues on the un-merged weights.
    Every rank must iterate to the end together under ZeRO-3: gathering is collective.
    """
    module = getattr(model, "module", model)  # a DeepSpeed engine wraps the model in `.module`
    params = list(module.parameters())
    zero3 = _is_partitioned(params)
    if hasattr(module, "merge_adapter") and hasattr(module, "peft_config"):
        with _gathered(params, zero3), torch.no_grad():
            module.merge_adapter()
            try:
                for name, p in module.named_parameters():
                    hf = hf_weight_name(name)
                    if hf is not None:
                        # cloned: unmerging edits these tensors in place, and a consumer may keep them past that
                        yield hf, p.data.detach().clone()
            finally:
                module.unmerge_adapter()
        return
    for name, p in module.named_parameters():
        with _gathered([p], zero3):
            yield name, (p.data.detach().clone() if zero3 else p.data.detach())
