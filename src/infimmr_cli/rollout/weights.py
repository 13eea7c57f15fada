"""Full policy weights under Hugging Face names: the one path behind the rollout push, checkpoints' `final/` and export.

The trainer's model may be a DeepSpeed engine, partitioned by ZeRO-3, and/or wrapped by peft LoRA. An inference engine
and an exported directory want none of that: each full tensor under the name the HF checkpoint uses, LoRA merged in.
`full_weights` gives exactly that and leaves the trainer's model as it found it:
- state_dict semantics: a tied weight comes under each of its names (`lm_head.weight` beside the embedding), since an
  engine that keeps its own copy of the output layer would otherwise generate with the old one;
- LoRA is merged with peft's own delta (`LoraLayer.get_delta_weight`, what `merge_adapter` adds) into a copy of the
  base weight, so the training weights are never merged and unmerged in place (no bf16 round-off drift);
- under ZeRO-3 each parameter (with its LoRA factors) is gathered alone, so at most one full matrix is held at a time.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
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


def is_zero3(module: torch.nn.Module) -> bool:
    # ZeRO-3 tags every parameter it manages with `ds_id` and keeps only a shard in `.data`.
    return any(hasattr(p, "ds_id") for p in module.parameters())


@contextlib.contextmanager
def gathered(params: list[torch.nn.Parameter], enabled: bool):
    """Full tensors of ZeRO-3 partitioned parameters inside the block (collective: every rank must enter)."""
    if not enabled:
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
        yield


def _lora_layers(module: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """peft LoRA layers by module name ({} without peft or adapters)."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return {}
    return {name: m for name, m in module.named_modules() if isinstance(m, LoraLayer)}


def _merged(base: torch.Tensor, layer) -> torch.Tensor:
    """A copy of `base` with the layer's active adapters added, as peft's merge would."""
    out = base.detach().clone()
    if getattr(layer, "merged", False) or getattr(layer, "disable_adapters", False):
        return out  # already in the base weight, or switched off
    for adapter in layer.active_adapters:
        if adapter not in layer.lora_A and adapter not in getattr(layer, "lora_embedding_A", {}):
            continue
        if layer.use_dora.get(adapter, False):
            raise NotImplementedError("LoRA with DoRA: merging it for a weight push is not supported")
        out += layer.get_delta_weight(adapter).to(out.dtype)
    return out


def full_weights(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (HF name, full tensor) for every policy weight, tied names included; LoRA merged, ZeRO-3 gathered.

    Tensors of a plain model are the parameters themselves (detached); merged or gathered ones are copies.
    Under ZeRO-3 every rank must iterate to the end together: gathering is collective.
    """
    module = model  # the unwrapped model (the updater's `model`), never a DeepSpeed engine
    zero3 = is_zero3(module)
    lora = _lora_layers(module)
    suffix = ".base_layer.weight"
    with torch.no_grad():
        for name, p in module.named_parameters(remove_duplicate=False):
            hf = hf_weight_name(name)
            if hf is None:
                continue
            layer = lora.get(name[:-len(suffix)]) if name.endswith(suffix) else None
            params = [p] if layer is None else list(layer.parameters())
            with gathered(params, zero3):
                if layer is not None:
                    tensor = _merged(p, layer)
                else:
                    tensor = p.detach().clone() if zero3 else p.detach()
            yield hf, tensor


def tied_names(module: torch.nn.Module) -> set[str]:
    """HF names that only alias another parameter (a tied `lm_head.weight`): a saved checkpoint leaves them out."""
    first = {n for n, _ in module.named_parameters()}
    return {hf_weight_name(n) for n, _ in module.named_parameters(remove_duplicate=False) if n not in first} - {None}


def save_hf_model(model: torch.nn.Module, processor, out_dir: str | Path, is_main: bool = True) -> None:
    """A plain HF model directory (safetensors + config + processor) from `full_weights`; written by rank 0 only.

    Every rank must call it under ZeRO-3 (gathering is collective).
    """
    module = model  # callers pass the unwrapped model (the updater's `model`)
    plain = module.get_base_model() if hasattr(module, "get_base_model") else module
    skip = tied_names(module)
    state = {}
    for name, tensor in full_weights(module):
        if is_main and name not in skip:
            state[name] = tensor.cpu().contiguous()
    if is_main:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        plain.save_pretrained(out_dir, state_dict=state, safe_serialization=True)
        processor.save_pretrained(out_dir)
        from infimmr_cli.files import follow_umask

        follow_umask(out_dir)  # transformers writes the weights 0600 whatever the umask


def with_tied_head(weights: Iterable[tuple[str, torch.Tensor]], tied: bool) -> Iterator[tuple[str, torch.Tensor]]:
    """The pairs as given, plus `lm_head.weight` from the embedding when the model ties them and the push lacks it.

    A push through `named_parameters()` leaves the tied head out, and an engine that keeps its own copy of the output
    layer (vLLM on CPU repacks it) would keep generating with the old one.
    """
    embed = None
    has_head = False
    for name, tensor in weights:
        if name == "lm_head.weight":
            has_head = True
        elif name.endswith("embed_tokens.weight") and "visual" not in name:
            embed = tensor
        yield name, tensor
    if tied and not has_head and embed is not None:
        yield "lm_head.weight", embed
