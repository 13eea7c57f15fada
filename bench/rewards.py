"""Reward scoring speed: score_batch (killable worker processes) against a plain sequential math-verify loop and
against a pebble ProcessPool (one task per item, per-task timeout: pebble kills and replaces the worker).

One paper rollout batch: 256 prompts x 16 completions = 4,096 items, a mix of right answers (varied spellings), wrong
answers, unformatted completions and a few pathological answers. Both sides score the same items with the same rules
(`rewards.score`); the baseline runs them in this process, one after another, with math-verify's own signal-based
timeouts switched on (as peer projects run it), the pools with 2 workers and a hard per-item timeout of the same length.

    OMP_NUM_THREADS=1 PYTHONPATH=src python bench/rewards.py [--prompts 256] [--group 16] [--workers 2] [--timeout 5] [--repeats 2]
"""

from __future__ import annotations

import argparse
import logging
import random
import time


def make_batch(prompts: int, group: int, n_pathological: int = 8, seed: int = 0):
    from infimmr_cli.data.records import Record

    rng = random.Random(seed)
    filler = "Let me work through the problem step by step, checking each quantity against the figure. " * 6
    golds = [  # (answer, answer_type, choices, right spellings, wrong answers)
        ("\\frac{3}{4}", "math", None, ["\\frac34", "0.75", "3/4", "\\boxed{\\frac{3}{4}}"], ["\\frac{4}{3}", "0.7", "x"]),
        ("2\\sqrt{3}", "math", None, ["2\\sqrt{3}", "\\sqrt{12}", "$2\\sqrt3$"], ["3\\sqrt{2}", "12", "\\sqrt{3}"]),
        ("42", "math", None, ["42", "\\boxed{42}", "x = 42", "42.0"], ["24", "41", "forty-two"]),
        ("(1, 3]", "math", None, ["(1,3]", "(1, 3]"], ["[1,3]", "(1,3)", "2"]),
        ("x^2 - 1", "math", None, ["(x-1)(x+1)", "x^2-1"], ["x^2+1", "x-1"]),
        ("C", "choice", ["10", "20", "30", "40"], ["C", "(C)", "\\boxed{C}", "C. 30", "30"], ["A", "D. 40", "E"]),
        ("yes", "string", None, ["Yes", "yes", " YES "], ["no", "maybe"]),
    ]
    # Each pathological answer is distinct (a policy does not repeat one verbatim), so no cache helps either side.
    pathological = [lambda k: str(k + 1) * 200_000, lambda k: "\\frac{1}{" * (400 + k) + "2" + "}" * (400 + k),
                    lambda k: f"10^{{10^{{10^{{{10 + k}}}}}}}", lambda k: "$" + "{" * (5000 + k) + "$"]
    records, completions, kinds = [], [], []
    for p in range(prompts):
        answer, atype, choices, right, wrong = golds[p % len(golds)]
        rec = Record(id=f"p{p}", source="bench", question="q", answer=answer, answer_type=atype, choices=choices)
        for _ in range(group):
            u = rng.random()
            if u < 0.45:
                kind, text = "right", f"<think>{filler}</think><answer>{rng.choice(right)}</answer>"
            elif u < 0.78:
                kind, text = "wrong", f"<think>{filler}</think><answer>{rng.choice(wrong)}</answer>"
            else:
                kind, text = "unformatted", f"{filler} So the answer is \\boxed{{{rng.choice(right)}}}."
            records.append(rec)
            completions.append(text)
            kinds.append(kind)
    # A pathological answer about once in 500 items (8 in 4,096 by default), spread over the batch.
    for k, idx in enumerate(rng.sample(range(len(records)), n_pathological)):
        records[idx] = records[idx].replace(answer="5", answer_type="math", choices=None)
        completions[idx] = f"<think>{filler}</think><answer>{pathological[k % len(pathological)](k)}</answer>"
        kinds[idx] = "pathological"
    return completions, records, kinds


def _pebble_item(spec, completion, record):
    from infimmr_cli.rewards.plugins import load_reward

    return load_reward(spec)(completion, record)


def pebble_score(pool, completions, records, timeout: float):
    """The pebble arm: one scheduled task per item; a timeout or a dead worker scores 0 (pebble replaces the worker)."""
    from infimmr_cli.rewards.rules import zero_score

    futures = [pool.schedule(_pebble_item, args=("default", c, r), timeout=timeout)
               for c, r in zip(completions, records)]
    out = []
    for f in futures:
        try:
            out.append(f.result())
        except TimeoutError:
            out.append(zero_score(timeout=True))
        except Exception as exc:  # noqa: BLE001 - ProcessExpired (worker died) or the reward raised
            out.append(zero_score(error=f"{type(exc).__name__}: {exc}"[:500]))
    return out


def _pebble_pool(workers: int):
    import multiprocessing as mp

    from pebble import ProcessPool

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["math_verify"])  # the same warm start our pool gets
    pool = ProcessPool(max_workers=workers, context=ctx)
    pool.schedule(_pebble_item, args=("default", "<answer>1</answer>", make_batch(1, 1, 0)[1][0])).result()
    return pool


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--group", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs of each side, alternating; best kept")
    ap.add_argument("--pathological", type=int, default=8, help="how many pathological answers to mix in")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the per-item timeout warnings are expected here

    from infimmr_cli.rewards import rules
    from infimmr_cli.rewards.scoring import score_batch
    from infimmr_cli.rewards.pool import ScoringPool, close_pool, get_pool

    completions, records, kinds = make_batch(args.prompts, args.group, args.pathological)
    n = len(completions)
    print(f"{n} items: " + ", ".join(f"{k} {kinds.count(k)}" for k in sorted(set(kinds))))

    # Start-up cost of a pool, by start method (a training run pays it once: the pool persists across steps).
    for method in ("forkserver", "spawn"):
        t = time.perf_counter()
        pool = ScoringPool(args.workers, start_method=method)
        pool.wait_ready()
        print(f"pool start-up ({method}, {args.workers} workers): {time.perf_counter() - t:.2f} s")
        pool.close()

    pool = get_pool(args.workers)
    pool.wait_ready()
    t = time.perf_counter()
    peb = _pebble_pool(args.workers)
    print(f"pebble pool start-up (forkserver, {args.workers} workers, first item scored): "
          f"{time.perf_counter() - t:.2f} s")
    t_base = t_pool = t_peb = float("inf")
    stall = pool_stall = 0.0
    for _ in range(args.repeats):  # alternate the two sides; keep each side's best time (the box is shared and noisy)
        # Baseline: the same score() in this process, sequentially, with math-verify's own alarm timeouts.
        rules.MATH_VERIFY_TIMEOUT = args.timeout
        rules._parse_gold.cache_clear()
        base = []
        t0 = time.perf_counter()
        for c, r in zip(completions, records):
            t = time.perf_counter()
            base.append(rules.score(c, r))
            stall = max(stall, time.perf_counter() - t)
        t_base = min(t_base, time.perf_counter() - t0)
        rules.MATH_VERIFY_TIMEOUT = None

        t0 = time.perf_counter()
        got = score_batch(completions, records, workers=args.workers, timeout=args.timeout)
        t_pool = min(t_pool, time.perf_counter() - t0)
        pool_stall = max(pool_stall, pool.max_item_s)

        t0 = time.perf_counter()
        got_peb = pebble_score(peb, completions, records, args.timeout)
        t_peb = min(t_peb, time.perf_counter() - t0)

    same = sum(a["overall"] == b["overall"] for a, b in zip(base, got) if not b.get("timeout"))
    timeouts = sum(bool(g.get("timeout")) for g in got)
    print(f"sequential math-verify loop: {t_base:7.2f} s  ({n / t_base:6.1f} items/s), max per-item stall {stall:.2f} s")
    print(f"score_batch, {args.workers} workers:      {t_pool:7.2f} s  ({n / t_pool:6.1f} items/s), "
          f"max per-item stall {pool_stall:.2f} s (timeout {args.timeout} s), {timeouts} timed out")
    print(f"speed-up: {t_base / t_pool:.2f}x   same overall reward on {same}/{n - timeouts} items that did not time out")
    peb_timeouts = sum(bool(g.get("timeout")) for g in got_peb)
    same_peb = sum(a["overall"] == b["overall"] for a, b in zip(got, got_peb))
    print(f"pebble ProcessPool, {args.workers} workers: {t_peb:7.2f} s  ({n / t_peb:6.1f} items/s), "
          f"{peb_timeouts} timed out; same overall reward as score_batch on {same_peb}/{n} items; "
          f"score_batch / pebble time: {t_pool / t_peb:.2f}")
    close_pool()
    peb.stop()
    peb.join()


if __name__ == "__main__":
    main()
