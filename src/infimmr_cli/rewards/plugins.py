"""Which reward function scores: a registry name (`default`) or a plug-in `path/to/file.py:function`.

A plug-in may return what TRL's and EasyR1's reward functions return: a float (or a bool), taken as both the overall
reward and the accuracy (format unknown, logged as 0), or a dict with at least "overall" (missing "accuracy" copies it,
missing "format" is 0). `as_score` turns any of these into our score dict, naming the plug-in when it cannot.
"""

from __future__ import annotations

import importlib.util
import math
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


def as_score(value: Any, spec: Any) -> dict[str, Any]:
    """A reward function's return value as our score dict (pure); ValueError naming `spec` when it is none of a float,
    a bool or a dict with a finite "overall"."""
    name = spec if isinstance(spec, str) else getattr(spec, "__name__", repr(spec))
    if isinstance(value, dict):
        if "overall" not in value:
            raise ValueError(f"reward: {name}: returned a dict without 'overall' (keys: {', '.join(map(str, value))})")
        overall = value["overall"]
        out = {"format": 0.0, "accuracy": overall, "extracted": None, **value}
    elif isinstance(value, (bool, int, float)) and not isinstance(value, complex):
        overall = float(value)
        out = {"overall": overall, "format": 0.0, "accuracy": overall, "extracted": None}
    else:
        raise ValueError(f"reward: {name}: returned {type(value).__name__}; expected a float, a bool or a dict with "
                         f"'overall'")
    if isinstance(overall, bool) or not isinstance(overall, (int, float)) or not math.isfinite(overall):
        raise ValueError(f"reward: {name}: 'overall' is {overall!r}; expected a finite number")
    out["overall"] = float(overall)
    return out


def check_reward(spec: str, record: Record) -> None:
    """Load the reward and call it once on `record` (an empty answer), before any model is loaded: a plug-in that
    cannot be imported, raises, or returns something unusable fails here, naming its file and function."""
    fn = load_reward(spec)
    try:
        value = fn("<think> </think><answer></answer>", record)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's code, reported with its place
        raise ValueError(f"reward: {spec}: raised {type(exc).__name__}: {exc} on record {record.id!r}") from None
    as_score(value, spec)
