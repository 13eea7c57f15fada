"""Who applies the gradients: plain torch AdamW (one process) or a DeepSpeed ZeRO engine (any number of processes).

Both expose the same four calls, so the loop has one code path: `backward(loss)` per micro-batch, `step()` once per
update batch, `save(dir)` / `load(dir)` for the optimizer and scheduler state; and two handles on the policy: `forward`,
what the forward passes run through (the DeepSpeed engine, or the model itself), and `model`, the model unwrapped (for
generation, weights out, saving).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from infimmr_cli.errors import UsageError
from infimmr_cli.training.state_files import load_state, save_state


def lr_lambda(warmup_steps: int, schedule: str, total_steps: int):
    """Multiplier on the learning rate per optimizer step: linear warm-up, then constant or cosine to 0 over the run."""
    warm = max(0, warmup_steps)

    def fn(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if schedule == "cosine":
            span = max(1, total_steps - warm)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / span)))
        return 1.0

    return fn


def _trainable(model):
    return [p for p in model.parameters() if p.requires_grad]


def _adamw(params, lr: float, betas, weight_decay: float):
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay, foreach=False)


class TorchUpdater:
    def __init__(self, cfg, model, total_updates: int):
        if any(p.dtype != torch.float32 for p in _trainable(model)):
            # AdamW straight on bf16 weights rounds updates of lr 1e-6 away; DeepSpeed keeps fp32 master weights.
            raise UsageError("dtype: plain torch updates need fp32 weights; set dtype=fp32 or use a DeepSpeed config "
                             "(recipes/ds_zero2.json works with one process too)")
        self.grad_clip = cfg.grad_clip
        self.model = self.forward = model
        self.optimizer = _adamw(_trainable(model), cfg.lr, cfg.adam_betas, cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(cfg.warmup_steps, cfg.lr_schedule, total_updates))

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> dict[str, float]:
        params = _trainable(self.model)
        norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip if self.grad_clip > 0 else float("inf"))
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {"grad_norm": float(norm), "lr": lr}

    def save(self, ckpt_dir: Path, is_main: bool) -> None:
        if is_main:  # safetensors + JSON, never a pickle (state_files.py)
            save_state({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()},
                       ckpt_dir, "optimizer")

    def load(self, ckpt_dir: Path) -> None:
        state = load_state(ckpt_dir, "optimizer")
        if not isinstance(state, dict) or not {"optimizer", "scheduler"} <= set(state):
            raise UsageError(f"{ckpt_dir / 'optimizer.json'}: expected optimizer and scheduler state")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


def deepspeed_config(path: str | Path, micro_batch: int, micro_per_update: int, world_size: int, bf16: bool,
                     grad_clip: float, lr: float, betas, weight_decay: float) -> dict:
    """The recipe JSON with the batch, precision, clipping and optimizer settings filled in from ours."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: DeepSpeed config not found")
    ds = json.loads(path.read_text())
    ds["train_micro_batch_size_per_gpu"] = micro_batch
    ds["gradient_accumulation_steps"] = micro_per_update
    ds["train_batch_size"] = micro_batch * micro_per_update * world_size
    ds["gradient_clipping"] = grad_clip
    ds["bf16"] = {"enabled": bool(bf16)}
    ds["fp16"] = {"enabled": False}
    if "optimizer" in ds:  # DeepSpeed builds it (needed for CPU offload: DeepSpeedCPUAdam)
        ds["optimizer"].setdefault("params", {}).update(lr=lr, betas=list(betas), weight_decay=weight_decay)
    ds.setdefault("zero_allow_untested_optimizer", True)
    return ds


def zero_stage(path: str | Path) -> int:
    return int(json.loads(Path(path).read_text()).get("zero_optimization", {}).get("stage", 0))


class DeepSpeedUpdater:
    TAG = "deepspeed"

    def __init__(self, cfg, model, total_updates: int, micro_per_update: int, world_size: int):
        import deepspeed

        bf16 = next(model.parameters()).dtype == torch.bfloat16
        ds = deepspeed_config(cfg.deepspeed, cfg.micro_batch, micro_per_update, world_size, bf16, cfg.grad_clip, cfg.lr,
                              cfg.adam_betas, cfg.weight_decay)
        if cfg.lora_r > 0 and ds.get("zero_optimization", {}).get("stage", 0) == 3:
            raise UsageError("deepspeed: LoRA with ZeRO-3 is not supported here; use recipes/ds_zero2.json")
        optimizer = None if "optimizer" in ds else _adamw(_trainable(model), cfg.lr, cfg.adam_betas, cfg.weight_decay)
        schedule = lr_lambda(cfg.warmup_steps, cfg.lr_schedule, total_updates)
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, model_parameters=_trainable(model), optimizer=optimizer, config=ds,
            lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, schedule))
        self.forward = self.engine
        self.model = self.engine.module
        self.micro = 0
        self.micro_per_update = micro_per_update

    def backward(self, loss: torch.Tensor) -> None:
        # Our loss is already normalised over the whole update batch: no further division by the accumulation steps.
        self.engine.backward(loss, scale_wrt_gas=False)
        self.micro += 1
        if self.micro % self.micro_per_update:
            self.engine.step()  # DeepSpeed's idiom: step after every micro-batch; it only updates at the boundary

    def step(self) -> dict[str, float]:
        lr = self.scheduler.get_last_lr()[0]
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        return {"grad_norm": float(norm) if norm is not None else float("nan"), "lr": lr}

    def save(self, ckpt_dir: Path, is_main: bool) -> None:
        self.engine.save_checkpoint(str(ckpt_dir), tag=self.TAG)

    def load(self, ckpt_dir: Path) -> None:
        from infimmr_cli.training.state_files import SafeDeepSpeedLoader

        # DeepSpeed's own loader unpickles anything; ours reads the same shards with weights_only=True.
        inner = self.engine.checkpoint_engine
        self.engine.checkpoint_engine = SafeDeepSpeedLoader(inner)
        try:
            path, _ = self.engine.load_checkpoint(str(ckpt_dir), tag=self.TAG, load_optimizer_states=True,
                                                  load_lr_scheduler_states=True)
        finally:
            self.engine.checkpoint_engine = inner
        if path is None:
            raise FileNotFoundError(f"{ckpt_dir}: no DeepSpeed state to resume from")


def make_updater(cfg, model, total_updates: int, micro_per_update: int, world_size: int):
    if cfg.deepspeed:
        return DeepSpeedUpdater(cfg, model, total_updates, micro_per_update, world_size)
    if world_size > 1:
        raise UsageError("deepspeed: a multi-process run needs a ZeRO config, e.g. --set deepspeed=recipes/ds_zero2.json")
    return TorchUpdater(cfg, model, total_updates)
