"""Which reward function scores: a registry name (`default`) or a plug-in `path/to/file.py:function`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable

from infimmr_cli.data.records import Record
from infimmr_cli.rewards.rules import score

REWARDS: dict[str, Callable[[str, Record], dict[str, Any]]] = {"default": score}


def load_reward(spec: str | Callable) -> Callable[[str, Record], dict[str, Any]]:
    """A reward function from a registry name (`default`), a plug-in `path/to/file.py:function`, or a callable."""
    if callable(spec):
        return spec
    if spec in REWARDS:
        return REWARDS[spec]
    path, _, fn = spec.rpartition(":")
    if not path or not fn:
        raise ValueError(f"reward: {spec!r} is neither {', '.join(REWARDS)} nor path.py:function")
    full = Path(path).resolve()
    name = f"infimmr_reward_{abs(hash(str(full)))}"
    if name not in sys.modules:
        mod_spec = importlib.util.spec_from_file_location(name, full)
        if mod_spec is None or mod_spec.loader is None or not full.is_file():
            raise FileNotFoundError(f"reward: {path}: cannot import (no such file)")
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        mod_spec.loader.exec_module(module)
    if not hasattr(sys.modules[name], fn):
        raise ValueError(f"reward: {path}: has no function {fn!r}")
    return getattr(sys.modules[name], fn)
