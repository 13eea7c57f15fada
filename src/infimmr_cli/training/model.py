"""The policy (full fine-tuning or LoRA) and the frozen reference."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch

from infimmr_cli.modeling import load_model
# Weights out of the (possibly sharded, LoRA-wrapped) policy have one path, shared with the rollout push and export.


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
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.24; the old name warns there
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:  # transformers 5.16-5.23 (vLLM's CPU build pins < 5.20)
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
