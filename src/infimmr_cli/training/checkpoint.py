"""Checkpoints that are complete or absent: written into `.step-N.tmp`, renamed to `step-N` only when every part is in.

A checkpoint directory holds: the policy as a plain HF model (model.safetensors + config + processor files; a LoRA run
adds `adapter/`), the optimizer and scheduler (optimizer.json + optimizer.safetensors, or DeepSpeed's `deepspeed/`
shards), one RNG file per rank (rng-rankN.json + .safetensors), `trainer_state.json` (step, prompts seen, every metrics
row so far) and `run_config.json` (the run's provenance). Nothing we write or read back is a pickle (state_files.py); DeepSpeed's own shards are
pickles, read back with weights_only=True (state_files.SafeDeepSpeedLoader) after `check_resumable` looked the run folder
over.
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
from infimmr_cli.rollout.weights import save_hf_model
from infimmr_cli.training import state_files

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
    state_files.save_state(rng_state(), tmp, f"rng-rank{dist_info.rank}")
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
    name = f"rng-rank{dist_info.rank}"
    if not (ckpt / f"{name}.json").is_file() and not (ckpt / f"{name}.pt").is_file():
        raise FileNotFoundError(f"{ckpt}: no RNG state for rank {dist_info.rank} (was it saved with another "
                                f"number of processes?)")
    set_rng_state(state_files.load_state(ckpt, name))
    return json.loads((ckpt / "trainer_state.json").read_text())


def check_resumable(ckpt: Path, out_dir: Path) -> None:
    """Look a checkpoint over before anything in it is loaded (DeepSpeed's shards are pickles and run code on load).

    What we can check: it is a run folder train-phase wrote (run_config.json beside it, trainer_state.json in it, both
    JSON objects); nothing in it is a link leaving the run folder, a device or a FIFO; every file belongs to this user
    and no one else can write it (README, "Reliability"). One line naming the first problem; nothing loaded.
    """
    import os
    import stat

    from infimmr_cli.errors import UsageError

    run_root = Path(out_dir).resolve()
    for what, path in (("run_config.json", Path(out_dir) / "run_config.json"),
                       ("run_config.json", ckpt / "run_config.json"), ("trainer_state.json", ckpt / "trainer_state.json")):
        try:
            ok = isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            ok = False
        if not ok:
            raise UsageError(f"{path}: --resume: missing or not a JSON object; {ckpt} is not a checkpoint train-phase "
                             f"wrote, refusing to load it")
    if not ckpt.resolve().is_relative_to(run_root):
        raise UsageError(f"{ckpt}: --resume: resolves to {ckpt.resolve()}, outside the run folder {run_root}")
    uid = os.getuid()
    for dirpath, dirnames, filenames in os.walk(ckpt, followlinks=False):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                target = p.resolve()
                if not target.is_relative_to(run_root):
                    raise UsageError(f"{p}: --resume: a link to {target}, outside the run folder {run_root}; "
                                     f"refusing to load it")
                st = target.stat()
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                raise UsageError(f"{p}: --resume: not a regular file or folder; refusing to load it")
            if st.st_uid != uid:
                raise UsageError(f"{p}: --resume: owned by uid {st.st_uid}, not by you (uid {uid}); copy the run "
                                 f"folder if you trust it, then resume the copy")
            if st.st_mode & stat.S_IWOTH:
                raise UsageError(f"{p}: --resume: anyone can write this file; refusing to load it (chmod o-w)")
