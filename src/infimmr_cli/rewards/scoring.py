"""Scoring many completions at once in killable worker processes (pebble's ProcessPool).

Why processes and not threads: math-verify/sympy can spend minutes inside one C-level bignum operation
(`10^{10^{10^{10}}}`) or an exponential parse (thousands of unbalanced braces). Nothing interrupts that except killing the
process: pebble runs one task per item with a timeout counted from when a worker starts it, kills a worker whose item
passes it and starts a replacement (bench/RESULTS.md compares it with the hand-written pool it replaced).

Start method: forkserver (spawn where it is missing). Forking the trainer itself would copy torch's threads and any
gloo/NCCL state into the child; the fork server is a clean process started once, with math-verify and sympy preloaded, so
a replacement worker costs a fork, not a fresh interpreter and a sympy import (~1-2 s).

The caller's main module: a forkserver/spawn child normally re-imports it, which re-runs a script without an
`if __name__ == "__main__":` guard (its score_batch call then starts processes inside a starting worker, and every worker
dies) and fails outright for `python -` (no file to read). Workers need it only to find a reward function defined there,
so they skip it (`_without_main`) unless the reward pickles by reference into `__main__`; then an unimportable main
is refused up front, and workers dying while they start are reported with what to do.

Workers die with the caller. The caller's death (SIGTERM, SIGKILL) closes its end of the fork server's pipe and the fork
server exits (workers close the copy of that pipe they inherit); each worker asked the kernel for SIGKILL when its parent
(the fork server) dies, so a worker deep in a C-level computation, where no watchdog thread could run, ends too; the
resource tracker exits when the last of them has.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
from typing import Any, Callable

from infimmr_cli.data.records import Record
from infimmr_cli.rewards.plugins import as_score, load_reward
from infimmr_cli.rewards.rules import zero_score

log = logging.getLogger("infimmr_cli.rewards")
PR_SET_PDEATHSIG = 1


def default_workers() -> int:
    """The pool size when none is asked for: the CPUs this process may use, at most 8 (per training rank)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send `sig` to this process when its parent exits (prctl PR_SET_PDEATHSIG); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def _worker_init(caller: int) -> None:
    import math_verify  # noqa: F401 - warm before the first item, so no item's timeout pays for the import

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle; it then ends us
    from multiprocessing import forkserver

    # A forkserver child inherits the write end of the pipe that keeps the fork server alive (so that it could start
    # processes of its own). Ours never do: holding it would keep the fork server, our parent, alive after the caller
    # died, and with it us.
    alive_fd = forkserver._forkserver._forkserver_alive_fd
    if alive_fd is not None:
        os.close(alive_fd)
        forkserver._forkserver._forkserver_alive_fd = None
    parent = os.getppid()
    die_with_parent()
    try:  # the caller or our parent may have died before the request above took effect
        os.kill(caller, 0)
        alive = os.getppid() == parent
    except ProcessLookupError:
        alive = False
    if not alive:
        os._exit(1)


def _score_one(spec: Any, completion: str, record: Record) -> dict[str, Any]:
    try:
        fn = load_reward(spec)
    except Exception as exc:  # noqa: BLE001 - reported per item, the worker stays usable
        return zero_score(error=f"reward {spec!r} failed to load: {type(exc).__name__}: {exc}")
    try:
        return as_score(fn(completion, record), spec)
    except Exception as exc:  # noqa: BLE001 - one bad item must not take the batch down
        return zero_score(error=f"{type(exc).__name__}: {exc}"[:500])


# ---- starting workers without re-importing the caller's main module
_LAUNCH = threading.local()  # set while this thread starts one of our workers


def _install_prep_filter() -> None:
    """Wrap multiprocessing's preparation data (what a forkserver/spawn child sets up before it unpickles its target)
    so that, for our workers only, it names no main module to re-import. Thread-local, so another thread's processes
    (or the caller's own pools) keep the standard behaviour."""
    from multiprocessing import spawn

    if getattr(spawn.get_preparation_data, "_infimmr_filter", False):
        return
    original = spawn.get_preparation_data

    def get_preparation_data(name):
        data = original(name)
        if getattr(_LAUNCH, "without_main", False):
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
        return data

    get_preparation_data._infimmr_filter = True  # type: ignore[attr-defined]
    spawn.get_preparation_data = get_preparation_data


def _without_main(popen: Callable, process_obj: Any) -> Any:
    _LAUNCH.without_main = True
    try:
        return popen(process_obj)
    finally:
        _LAUNCH.without_main = False


# Module-level classes: a spawn/forkserver child unpickles its Process object by reference.
class _SpawnWorker(mp.context.SpawnProcess):
    @staticmethod
    def _Popen(process_obj):
        return _without_main(mp.context.SpawnProcess._Popen, process_obj)


class _SpawnContext(mp.context.SpawnContext):
    Process = _SpawnWorker


if hasattr(mp.context, "ForkServerProcess"):  # POSIX only
    class _ForkServerWorker(mp.context.ForkServerProcess):
        @staticmethod
        def _Popen(process_obj):
            return _without_main(mp.context.ForkServerProcess._Popen, process_obj)

    class _ForkServerContext(mp.context.ForkServerContext):
        Process = _ForkServerWorker


def main_needed(reward: Any) -> bool:
    """Whether workers must re-import the caller's main module to unpickle `reward` (a callable defined there)."""
    if isinstance(reward, str):
        return False
    import pickle

    try:
        return b"__main__" in pickle.dumps(reward)
    except Exception:  # noqa: BLE001 - unpicklable: pebble reports it; re-importing main changes nothing
        return False


def main_unimportable() -> str | None:
    """Why a worker could not re-import the caller's main module, or None when it can."""
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None):
        return None  # `python -m module`: re-imported by name
    path = getattr(main, "__file__", None)
    if path is None:
        return "the main module has no file (python -c, an interactive session or a notebook)"
    if not os.path.isfile(os.path.join(mp.process.ORIGINAL_DIR or os.getcwd(), path)):
        return f"the main module's file {path!r} cannot be read again (a script piped to `python -`)"
    return None


def _context(import_main: bool = False) -> mp.context.BaseContext:
    if not import_main:
        _install_prep_filter()
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver") if import_main else _ForkServerContext()
        # Preload the heavy third-party stack (sympy, antlr, math-verify) into the fork server, so every worker and every
        # replacement starts warm. Not our own package: Python 3.11's fork server ignores the caller's sys.path, so it
        # could import another checkout of infimmr_cli (e.g. an editable install) than the one the caller runs.
        ctx.set_forkserver_preload(["math_verify"])
        return ctx
    return mp.get_context("spawn") if import_main else _SpawnContext()


GUARD = 'put the code that calls score_batch under `if __name__ == "__main__":`'

_POOL: Any = None
_POOL_KEY: tuple[int, int, bool] | None = None  # (pid that started it, workers, whether workers import __main__)
_POOL_LOCK = threading.Lock()


def get_pool(workers: int, import_main: bool = False):
    """The process-wide pebble pool of `workers` processes, started on first use, restarted for another size; with
    `import_main`, workers re-import the caller's main module (for a reward defined there)."""
    from pebble import ProcessPool

    global _POOL, _POOL_KEY
    if workers < 1:
        raise ValueError(f"workers: {workers}; need at least 1 (workers=0 scores in-process, without a pool)")
    with _POOL_LOCK:
        key = (os.getpid(), workers, import_main)
        if _POOL is not None and (_POOL_KEY != key or not _POOL.active):
            if _POOL_KEY[0] == os.getpid():  # a forked child must not touch its parent's workers
                _stop(_POOL)
            _POOL = None
        if _POOL is None:
            _POOL = ProcessPool(max_workers=workers, context=_context(import_main), initializer=_worker_init,
                                initargs=(os.getpid(),))
            _POOL_KEY = key
        return _POOL


def _stop(pool) -> None:
    pool.stop()
    pool.join(timeout=10)


def close_pool() -> None:
    """End the shared pool's workers (a later score_batch starts a new pool)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None and _POOL_KEY and _POOL_KEY[0] == os.getpid():
            _stop(_POOL)
        _POOL = None


atexit.register(close_pool)


def score_batch(completions: list[str], records: list[Record], reward: str | Callable = "default",
                workers: int | None = None, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Score completions[i] against records[i] in killable worker processes; one dict per item, in order.

    An item running past `timeout` seconds (counted from when its worker starts it) is killed with its worker and scores
    `zero_score(timeout=True)`; an item whose worker dies scores `zero_score(error=...)`; both are logged with the record
    id, and the worker is replaced. `reward` is "default", "path.py:fn" (workers import it themselves, so plug-ins work
    under forkserver/spawn) or a callable picklable by reference. `workers=None` uses `default_workers()`; `workers=0`
    scores in this process, in order, with NO timeout protection (for tests and debugging). The pool persists across
    calls (training scores every step); `close_pool()` ends it, and it is closed at exit.

    Works from any caller (a script without a `__main__` guard, `python -`, a notebook): workers do not re-import the
    caller's main module, except for a reward callable defined there (see the module docstring).
    """
    from concurrent.futures.process import BrokenProcessPool

    from pebble import ProcessExpired

    if getattr(mp.current_process(), "_inheriting", False):
        raise RuntimeError(f"score_batch: called while a reward worker re-imports the caller's main script: {GUARD}")
    if len(completions) != len(records):
        raise ValueError(f"score_batch: {len(completions)} completions for {len(records)} records")
    fn = load_reward(reward)  # fail here, in the caller, on a bad spec rather than in every worker
    if workers == 0:
        return [as_score(fn(c, r), reward) for c, r in zip(completions, records)]
    import_main = main_needed(reward)
    name = getattr(fn, "__name__", repr(fn))
    if import_main and (why := main_unimportable()):
        raise ValueError(f"score_batch: reward {name} is defined in the main module, which reward workers cannot import: "
                         f"{why}. Define it in a file and pass reward='file.py:{name}', or score with workers=0 "
                         f"(in this process, without timeouts)")
    pool = get_pool(default_workers() if workers is None else workers, import_main)
    futures = [pool.schedule(_score_one, args=(reward, c, r), timeout=timeout) for c, r in zip(completions, records)]
    out: list[dict[str, Any]] = []
    try:
        for i, (future, rec) in enumerate(zip(futures, records)):
            try:
                out.append(future.result())
            except (TimeoutError, concurrent.futures.TimeoutError):
                out.append(zero_score(timeout=True))
                log.warning("reward: item %d (record %s) passed its %.1f s timeout: scored 0, worker replaced",
                            i, rec.id, timeout)
            except ProcessExpired as exc:
                out.append(zero_score(error=f"reward worker died (exit code {exc.exitcode})"))
                log.warning("reward: worker died (exit code %s) on item %d (record %s): scored 0, replaced",
                            exc.exitcode, i, rec.id)
    except BrokenProcessPool as exc:
        close_pool()
        hint = ""
        if import_main:
            hint = (f": to find reward {name} they re-import your main script "
                    f"{getattr(sys.modules.get('__main__'), '__file__', '?')}, which must not start work when imported: "
                    f"{GUARD}, or pass the reward as reward='file.py:{name}'")
        raise RuntimeError(f"score_batch: reward workers die while starting ({exc}; their errors are above){hint}") \
            from None
    except BaseException:
        close_pool()  # an interrupted batch leaves items in flight: start clean next time
        raise
    return out
