"""Rule-based rewards (paper §3.2, §5.1; DESIGN §3). PLACEHOLDER: the API is fixed, the rules are being written.

API (stable):
- `score(completion, record) -> {"overall", "format", "accuracy", "extracted"}`
- `score_batch(completions, records, reward="default", workers=None, timeout=5.0) -> list[dict]`
- `load_reward(spec) -> callable`: "default" or "path/to/file.py:function".
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any, Callable

from infimmr_cli.records import Record

W_FORMAT, W_ACCURACY = 0.1, 0.9
_FORMAT = re.compile(r"^\s*<think>.*?</think>\s*<answer>(.*?)</answer>\s*$", re.DOTALL)


def score(completion: str, record: Record) -> dict[str, Any]:
    m = _FORMAT.match(completion)
    fmt = 1.0 if m else 0.0
    extracted = m.group(1).strip() if m else None
    acc = 1.0 if (m and extracted == record.answer.strip()) else 0.0
    return {"overall": W_FORMAT * fmt + W_ACCURACY * acc, "format": fmt, "accuracy": acc, "extracted": extracted}


REWARDS: dict[str, Callable[[str, Record], dict[str, Any]]] = {"default": score}


def load_reward(spec: str | Callable) -> Callable[[str, Record], dict[str, Any]]:
    if callable(spec):
        return spec
    if spec in REWARDS:
        return REWARDS[spec]
    path, _, fn = spec.rpartition(":")
    if not path or not fn:
        raise ValueError(f"reward: {spec!r} is neither {', '.join(REWARDS)} nor path.py:function")
    name = f"infimmr_reward_{abs(hash(path))}"
    if name not in sys.modules:
        mod_spec = importlib.util.spec_from_file_location(name, Path(path))
        if mod_spec is None or mod_spec.loader is None:
            raise FileNotFoundError(f"reward: {path}: cannot import")
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        mod_spec.loader.exec_module(module)
    return getattr(sys.modules[name], fn)


def score_batch(completions: list[str], records: list[Record], reward: str | Callable = "default",
                workers: int | None = None, timeout: float = 5.0) -> list[dict[str, Any]]:
    fn = load_reward(reward)
    return [fn(c, r) for c, r in zip(completions, records)]
