"""The policy (full fine-tuning or LoRA) and the frozen reference."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from infimmr_cli.modeling import load_model
# Weights out of the (possibly sharded, LoRA-wrapped) policy have one path, shared with the rollout push and export.
from infimmr_cli.rollout.weights import is_zero3, save_hf_model  # noqa: F401  (re-exported for the trainer)


def build_policy(cfg, model_dir: str | Path, device: torch.device, adapter_dir: str | Path | None = None):
    """(model, processor) from `model_dir`, trainable as the config says: all weights, or LoRA on the language model.

    LoRA targets the language model's linear layers only (the vision tower is frozen unless `train_vision`);
    `adapter_dir` resumes a LoRA run from its saved adapter.
    """
    model, processor = load_model(model_dir, dtype=cfg.dtype, device=device)
    if cfg.lora_r > 0:
        from peft import LoraConfig, PeftModel, get_peft_model

        # A regex over module names so that the vision tower's q/k/v layers are left alone.
        targets = "|".join(cfg.lora_targets)
        pattern = rf"^(?!.*visual).*\.({targets})$"
        if adapter_dir is not None:
            model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)
        else:
            lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                              target_modules=pattern, bias="none")
            model = get_peft_model(model, lora)
        if cfg.train_vision:
            for name, p in model.named_parameters():
                if ".visual." in name:
                    p.requires_grad_(True)
    else:
        model.requires_grad_(True)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if cfg.lora_r > 0:
            model.enable_input_require_grads()
    model.train()
    return model, processor


def build_reference(cfg, init_dir: str | Path, policy, device: torch.device):
    """A frozen copy of the starting model, or None when beta is 0 or LoRA can switch its adapter off instead.

    The copy is replicated on every rank (not sharded): for the paper's 3B model in bf16 that is ~7 GB a GPU.
    """
    if cfg.beta <= 0 or cfg.lora_r > 0:
        return None
    ref, _ = load_model(init_dir, dtype=cfg.dtype, device=device, with_processor=False)
    ref.requires_grad_(False)
    ref.eval()
    return ref


@contextlib.contextmanager
def reference_context(cfg, policy, ref):
    """Yield the module that scores reference log-probs: the frozen copy, or the policy with its LoRA adapter off."""
    if cfg.lora_r > 0 and cfg.beta > 0:
        base = getattr(policy, "module", policy)
        with base.disable_adapter():
            yield policy
    else:
        yield ref
