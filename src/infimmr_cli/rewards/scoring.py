"""Scoring many completions at once in killable worker processes (the pool lives in pool.py)."""

from __future__ import annotations

import os
from typing import Any, Callable

from infimmr_cli.data.records import Record
from infimmr_cli.rewards.plugins import load_reward
from infimmr_cli.rewards.pool import get_pool

def default_workers() -> int:
    """The pool size when none is asked for: the CPUs this process may use, at most 8 (per training rank)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def score_batch(completions: list[str], records: list[Record], reward: str | Callable = "default",
                workers: int | None = None, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Score completions[i] against records[i] in killable worker processes; one dict per item, in order.

    An item running past `timeout` seconds (counted from when its worker starts it) is killed with its worker and scores
    `zero_score(timeout=True)`; an item whose worker dies scores `zero_score(error=...)`; both are logged with the record
    id, and the worker is replaced. `reward` is "default", "path.py:fn" (workers import it themselves, so plug-ins work
    under forkserver/spawn) or a callable picklable by reference. `workers=None` uses `default_workers()`; `workers=0`
    scores in this process, in order, with NO timeout protection (for tests and debugging). The pool persists across
    calls (training scores every step); `rewards.pool.close_pool()` ends it, and it is closed at exit.
    """
    if len(completions) != len(records):
        raise ValueError(f"score_batch: {len(completions)} completions for {len(records)} records")
    fn = load_reward(reward)  # fail here, in the caller, on a bad spec rather than in every worker
    if workers == 0:
        return [fn(c, r) for c, r in zip(completions, records)]
    pool = get_pool(default_workers() if workers is None else workers)
    return pool.run(list(zip(completions, records)), reward, timeout)
