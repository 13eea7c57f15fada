"""Checkpoints that are complete or absent: written into `.step-N.tmp`, renamed to `step-N` only when every part is in.

A checkpoint directory holds: the policy as a plain HF model (model.safetensors + config + processor files; a LoRA run
adds `adapter/`), the optimizer and scheduler (optimizer.pt, or DeepSpeed's `deepspeed/` shards), one RNG file per rank,
`trainer_state.json` (step, prompts seen, every metrics row so far) and `run_config.json` (the run's provenance).
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from infimmr_cli.files import atomic_write_text
from infimmr_cli.provenance import write_record
from infimmr_cli.training import distributed
from infimmr_cli.training.model import save_hf_model

STEP_DIR = re.compile(r"^step-(\d+)$")


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def list_checkpoints(ckpt_root: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temp dirs never match)."""
    if not ckpt_root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_root.iterdir() if (m := STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def save(ckpt_root: Path, step: int, updater, processor, run_config: dict, trainer_state: dict, dist_info,
         keep_last: int) -> Path:
    """Write checkpoint `step` atomically (all ranks call this), then keep only the newest `keep_last`."""
    final = ckpt_root / f"step-{step:06d}"
    tmp = ckpt_root / f".step-{step:06d}.tmp"
    if dist_info.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    distributed.barrier()
    base = updater.model
    save_hf_model(base, processor, tmp, dist_info.is_main)
    if dist_info.is_main and hasattr(base, "peft_config"):
        base.save_pretrained(tmp / "adapter")  # LoRA resumes from the adapter, not from merged weights
    updater.save(tmp, dist_info.is_main)
    torch.save(rng_state(), tmp / f"rng-rank{dist_info.rank}.pt")
    distributed.barrier()
    if dist_info.is_main:
        atomic_write_text(tmp / "trainer_state.json", json.dumps(trainer_state, indent=1) + "\n")
        write_record(tmp / "run_config.json", run_config)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in list_checkpoints(ckpt_root)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    distributed.barrier()
    return final


def load_state(ckpt: Path, updater, dist_info) -> dict:
    """Restore optimizer, scheduler and this rank's RNG from `ckpt`; return its trainer_state (weights load earlier)."""
    updater.load(ckpt)
    rng_file = ckpt / f"rng-rank{dist_info.rank}.pt"
    if not rng_file.is_file():
        raise FileNotFoundError(f"{ckpt}: no RNG state for rank {dist_info.rank} (was it saved with another "
                                f"number of processes?)")
    set_rng_state(torch.load(rng_file, weights_only=False))
    return json.loads((ckpt / "trainer_state.json").read_text())
