"""Killable worker processes for reward scoring: a hard per-item timeout with no signal.alarm anywhere.

Why processes and not threads: math-verify/sympy can spend minutes inside one C-level bignum operation
(`10^{10^{10^{10}}}`) or an exponential parse (thousands of unbalanced braces). Nothing interrupts that except killing the
process. The master never blocks on a worker: it waits on all pipes with a deadline and SIGKILLs a worker whose current
item passes its timeout, scores that item zero, requeues the rest of its chunk and starts a replacement.

Start method: forkserver (spawn where it is missing). Forking the trainer itself would copy torch's threads and any
gloo/NCCL state into the child; the fork server is a clean process started once, with math-verify and sympy preloaded, so
a replacement worker costs a fork and a light import, not a fresh interpreter and a sympy import (~1-2 s). As with any
forkserver/spawn start, a worker re-imports the caller's main script: guard it with `if __name__ == "__main__":`.

Protocol (one duplex pipe per worker): master -> worker `(reward_spec, [(index, completion, record), ...])` or None to
stop; worker -> master `("ready",)` once started, `("begin",)` once it has loaded the reward for a chunk, then
`("done", index, result)` per item in order. Since a worker scores its chunk in order, the item it is on is the first not
yet returned, and it started when the previous result (or "begin") arrived: that is where its deadline counts from.
"""

from __future__ import annotations

import atexit
import logging
import math
import multiprocessing as mp
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Callable

from infimmr_cli.rewards.plugins import load_reward
from infimmr_cli.rewards.rules import zero_score

log = logging.getLogger("infimmr_cli.rewards")
START_TIMEOUT_S = 120.0  # a worker that is not ready by then means something is broken, not slow
MAX_CHUNK = 16


def _worker_main(conn: Connection) -> None:
    import signal

    import math_verify  # noqa: F401 - warm before "ready", so no item's timeout pays for the import

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it then ends us
    cache: dict[Any, Callable] = {}
    conn.send(("ready",))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        spec, chunk = msg
        try:
            fn = cache.get(spec) or cache.setdefault(spec, load_reward(spec))
            error = None
        except Exception as exc:  # noqa: BLE001 - reported per item, the worker stays usable
            fn, error = None, f"reward {spec!r} failed to load: {type(exc).__name__}: {exc}"
        conn.send(("begin",))
        for index, completion, record in chunk:
            if fn is None:
                out = zero_score(error=error)
            else:
                try:
                    out = fn(completion, record)
                except Exception as exc:  # noqa: BLE001 - one bad item must not take the batch down
                    out = zero_score(error=f"{type(exc).__name__}: {exc}"[:500])
            conn.send(("done", index, out))


def _context(start_method: str = "forkserver") -> mp.context.BaseContext:
    if start_method == "forkserver" and "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        # Preload the heavy third-party stack (sympy, antlr, math-verify) into the fork server, so every worker and every
        # replacement starts warm. Not our own package: Python 3.11's fork server ignores the parent's sys.path, so it
        # could import another checkout of infimmr_cli (e.g. an editable install) than the one the caller runs.
        ctx.set_forkserver_preload(["math_verify"])
        return ctx
    return mp.get_context("spawn")


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    ready: bool = False
    started_at: float = field(default_factory=time.monotonic)
    pending: deque = field(default_factory=deque)  # indices sent and not yet returned, in the order it scores them
    deadline: float | None = None
    item_start: float = 0.0  # when the item it is on began (for the stall statistics)


class ScoringPool:
    """N worker processes reused across `run` calls; `close()` ends them (also at interpreter exit)."""

    def __init__(self, workers: int, start_method: str = "forkserver"):
        if workers < 1:
            raise ValueError(f"workers: {workers}; need at least 1 (workers=0 scores in-process, without a pool)")
        self.size = workers
        self.pid = os.getpid()
        self.ctx = _context(start_method)
        self.lock = threading.Lock()
        self.workers: list[_Worker] = [self._start() for _ in range(workers)]
        self.replaced = 0  # workers killed or found dead and replaced, over the pool's life
        self.start_failures = 0  # workers in a row that died before saying ready: a broken set-up, not a bad item
        self.dying: list[Any] = []  # killed workers not yet reaped
        self.max_item_s = 0.0  # the longest any item of the last run held its worker (timeouts included)

    def _start(self) -> _Worker:
        parent, child = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(target=_worker_main, args=(child,), daemon=True, name="infimmr-reward")
        proc.start()
        child.close()
        return _Worker(proc=proc, conn=parent)

    def _replace(self, i: int) -> None:
        # Kill without waiting: a worker killed mid-way through a multi-GB bignum can take seconds to exit while the
        # kernel frees its memory, and the master must not stall on it. It is reaped later (`_reap`, `close`).
        w = self.workers[i]
        if w.proc.is_alive():
            w.proc.kill()
        w.conn.close()
        self.dying.append(w.proc)
        self.workers[i] = self._start()
        self.replaced += 1
        self._reap()

    def _reap(self) -> None:
        for p in self.dying:
            p.join(timeout=0)
        self.dying = [p for p in self.dying if p.exitcode is None]

    def wait_ready(self) -> None:
        """Block until every worker has started (used by benchmarks to time start-up apart from scoring)."""
        while not all(w.ready for w in self.workers):
            self._pump(time.monotonic(), [], {}, deque(), 1.0)

    def run(self, items: list[tuple[str, Any]], spec: Any, timeout: float) -> list[dict[str, Any]]:
        """Score `items` [(completion, record)] with reward `spec`; results in order (see module docstring)."""
        with self.lock:
            try:
                return self._run(items, spec, timeout)
            except BaseException:
                self.close()  # an interrupted run leaves items in flight: start clean next time
                raise

    def _run(self, items: list[tuple[str, Any]], spec: Any, timeout: float) -> list[dict[str, Any]]:
        results: list[Any] = [None] * len(items)
        queue = deque(range(len(items)))
        left = len(items)
        records = {i: rec for i, (_, rec) in enumerate(items)}
        self.max_item_s = 0.0
        while left:
            now = time.monotonic()
            for w in self.workers:  # hand a chunk to each ready, idle worker; a chunk shrinks as the queue empties
                if w.ready and not w.pending and queue:
                    size = max(1, min(MAX_CHUNK, math.ceil(len(queue) / (2 * self.size))))
                    chunk = [queue.popleft() for _ in range(min(size, len(queue)))]
                    w.pending.extend(chunk)
                    w.item_start, w.deadline = now, now + timeout
                    w.conn.send((spec, [(i, items[i][0], items[i][1]) for i in chunk]))
            left -= self._pump(now, results, records, queue, timeout)
            now = time.monotonic()
            for k, w in enumerate(self.workers):
                if w.pending and w.deadline is not None and now > w.deadline:
                    self.max_item_s = max(self.max_item_s, now - w.item_start)
                    i = w.pending.popleft()
                    results[i] = zero_score(timeout=True)
                    left -= 1
                    log.warning("reward: item %d (record %s) passed its %.1f s timeout: scored 0, worker replaced",
                                i, getattr(records[i], "id", "?"), timeout)
                    queue.extendleft(reversed(w.pending))
                    w.pending.clear()
                    self._replace(k)
                elif not w.ready and now - w.started_at > START_TIMEOUT_S:
                    raise RuntimeError(f"reward worker did not start within {START_TIMEOUT_S:.0f} s")
        return results

    def _pump(self, now: float, results: list, records: dict, queue: deque, timeout: float) -> int:
        """Wait for worker messages until the nearest deadline; apply them; return how many items finished."""
        deadlines = [w.deadline for w in self.workers if w.pending and w.deadline is not None]
        wait_s = max(0.0, min(deadlines) - now) if deadlines else 1.0
        finished = 0
        for conn in wait([w.conn for w in self.workers], timeout=wait_s):
            k = next(k for k, w in enumerate(self.workers) if w.conn is conn)
            w = self.workers[k]
            try:
                while conn.poll():
                    msg = conn.recv()
                    if msg[0] == "ready":
                        w.ready, self.start_failures = True, 0
                    elif msg[0] == "begin":
                        w.item_start = time.monotonic()
                        w.deadline = w.item_start + timeout
                    else:
                        _, i, out = msg
                        w.pending.popleft()
                        results[i] = out
                        finished += 1
                        t = time.monotonic()
                        self.max_item_s = max(self.max_item_s, t - w.item_start)
                        w.item_start, w.deadline = t, t + timeout
            except (EOFError, OSError):  # the worker died: its current item is to blame, the rest go back
                w.proc.join(timeout=1)  # it is already dead: this only collects its exit code
                code = w.proc.exitcode
                if not w.ready:
                    self.start_failures += 1
                    if self.start_failures >= 3:
                        raise RuntimeError(f"reward workers die while starting (exit code {code}); run with "
                                           "workers=0 to see the error in this process")
                if w.pending:
                    i = w.pending.popleft()
                    results[i] = zero_score(error=f"reward worker died (exit code {code})")
                    finished += 1
                    log.warning("reward: worker died (exit code %s) on item %d (record %s): scored 0, replaced",
                                code, i, getattr(records.get(i), "id", "?"))
                    queue.extendleft(reversed(w.pending))
                self._replace(k)
        return finished

    def close(self) -> None:
        """Stop every worker (politely, then by force)."""
        for w in self.workers:
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
        for w in self.workers:
            w.proc.join(timeout=2)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(timeout=2)
            w.conn.close()
        for p in self.dying:
            p.join(timeout=5)
        self.workers, self.dying = [], []


_POOL: ScoringPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool(workers: int) -> ScoringPool:
    """The process-wide pool of `workers` processes, started on first use and resized when asked for another size."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None and (_POOL.pid != os.getpid() or _POOL.size != workers or not _POOL.workers):
            if _POOL.pid == os.getpid():  # a forked child must not touch its parent's workers
                _POOL.close()
            _POOL = None
        if _POOL is None:
            _POOL = ScoringPool(workers)
        return _POOL


def close_pool() -> None:
    """End the shared pool's workers (a later score_batch starts a new pool)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None and _POOL.pid == os.getpid():
            _POOL.close()
        _POOL = None


atexit.register(close_pool)
