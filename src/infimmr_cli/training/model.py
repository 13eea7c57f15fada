"""The policy (full fine-tuning or LoRA), the frozen reference, and weights out of a possibly sharded module."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from infimmr_cli.modeling import load_model


@dataclass(frozen=True)
class LoraSettings:
    r: int
    alpha: int = 32
    dropout: float = 0.0
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    train_vision: bool = False  # also train the vision tower (all of it, not through adapters)


def build_policy(model_dir: str | Path, device: torch.device, dtype: str = "auto", lora: LoraSettings | None = None,
                 gradient_checkpointing: bool = False, adapter_dir: str | Path | None = None):
    """(model, processor) from `model_dir`, trainable: all weights, or (`lora`) adapters on the language model.

    LoRA targets the language model's linear layers only (the vision tower is frozen unless `train_vision`);
    `adapter_dir` resumes a LoRA run from its saved adapter.
    """
    model, processor = load_model(model_dir, dtype=dtype, device=device)
    if lora is not None:
        from peft import LoraConfig, PeftModel, get_peft_model

        # A regex over module names so that the vision tower's q/k/v layers are left alone.
        targets = "|".join(lora.targets)
        pattern = rf"^(?!.*visual).*\.({targets})$"
        if adapter_dir is not None:
            model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)
        else:
            config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=pattern,
                                bias="none")
            model = get_peft_model(model, config)
        if lora.train_vision:
            for name, p in model.named_parameters():
                if ".visual." in name:
                    p.requires_grad_(True)
    else:
        model.requires_grad_(True)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if lora is not None:
            model.enable_input_require_grads()
    model.train()
    return model, processor


def build_reference(init_dir: str | Path, dtype: str, device: torch.device):
    """A frozen copy of the starting model, for the KL term (a LoRA run switches its adapter off instead).

    The copy is replicated on every rank (not sharded): for the paper's 3B model in bf16 that is ~7 GB a GPU.
    """
    ref, _ = load_model(init_dir, dtype=dtype, device=device, with_processor=False)
    ref.requires_grad_(False)
    ref.eval()
    return ref


@contextlib.contextmanager
def reference_context(ref, model, forward):
    """Yield what scores reference log-probs: the frozen copy `ref`, or (none: LoRA) the policy's `forward` with the
    adapter of `model`, the unwrapped policy, switched off."""
    if ref is None:
        with model.disable_adapter():
            yield forward
    else:
        yield ref


def is_zero3(module) -> bool:
    return any(hasattr(p, "ds_id") for p in module.parameters())


def hf_named_weights(module) -> Iterator[tuple[str, torch.Tensor]]:
    """(Hugging Face name, full tensor) for every weight, one parameter gathered at a time under ZeRO-3.

    With LoRA the adapter is merged into each base weight and PEFT's name prefixes are removed, so the names and
    values are those of a plain model (what the rollout engine and the exported directory need).
    """
    zero3 = is_zero3(module)
    named = dict(module.named_parameters())
    lora = any(".lora_A." in n for n in named)
    scaling = {}
    if lora:
        for mod_name, mod in module.named_modules():
            if hasattr(mod, "scaling") and isinstance(getattr(mod, "scaling"), dict):
                scaling[mod_name] = mod.scaling.get("default", 1.0)
    for name, p in named.items():
        if ".lora_" in name:
            continue
        with _gathered([p], zero3):
            tensor = p.detach().clone()
        if lora and name.endswith(".base_layer.weight"):
            prefix = name[: -len(".base_layer.weight")]
            a, b = named[f"{prefix}.lora_A.default.weight"], named[f"{prefix}.lora_B.default.weight"]
            with _gathered([a, b], zero3):
                tensor = tensor + (b.detach().float() @ a.detach().float()).to(tensor.dtype) * scaling[prefix]
        clean = name.replace("base_model.model.", "", 1) if lora else name
        yield clean.replace(".base_layer", ""), tensor


@contextlib.contextmanager
def _gathered(params, zero3: bool):
    if zero3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
            yield
    else:
        yield


def save_hf_model(module, processor, out_dir: Path, is_main: bool) -> None:
    """A plain HF model directory (safetensors + processor): merged LoRA, gathered ZeRO-3 shards; written by rank 0."""
    base = getattr(module, "module", module)  # a DeepSpeed engine wraps the model
    plain = base.get_base_model() if hasattr(base, "get_base_model") else base
    state = {}
    for name, tensor in hf_named_weights(base):
        if is_main:
            state[name] = tensor.cpu().contiguous()
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        plain.save_pretrained(out_dir, state_dict=state, safe_serialization=True)
        processor.save_pretrained(out_dir)
        from infimmr_cli.files import follow_umask

        follow_umask(out_dir)  # transformers writes the weights 0600 whatever the umask
