"""Reward scoring speed: score_batch (killable worker processes: pebble's ProcessPool, one task per item with a
per-task timeout) against a plain sequential math-verify loop.

One paper rollout batch: 256 prompts x 16 completions = 4,096 items, a mix of right answers (varied spellings), wrong
answers, unformatted completions and a few pathological answers. Both sides score the same items with the same rules
(`rewards.score`); the baseline runs them in this process, one after another, with math-verify's own signal-based
timeouts switched on (as peer projects run it), the pool with 2 workers and a hard per-item timeout of the same length. bench/RESULTS.md
has the comparison of pebble with the hand-written pool it replaced (this script at commit a13ebee).

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
    from infimmr_cli.rewards.scoring import close_pool, score_batch

    completions, records, kinds = make_batch(args.prompts, args.group, args.pathological)
    n = len(completions)
    print(f"{n} items: " + ", ".join(f"{k} {kinds.count(k)}" for k in sorted(set(kinds))))

    # Start-up of the pool (a training run pays it once: the pool persists across score_batch calls).
    t = time.perf_counter()
    score_batch(completions[:1], records[:1], workers=args.workers, timeout=args.timeout)
    print(f"pool start-up (forkserver, {args.workers} workers, first item scored): {time.perf_counter() - t:.2f} s")
    t_base = t_pool = float("inf")
    stall = 0.0
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

    same = sum(a["overall"] == b["overall"] for a, b in zip(base, got) if not b.get("timeout"))
    timeouts = sum(bool(g.get("timeout")) for g in got)
    print(f"sequential math-verify loop: {t_base:7.2f} s  ({n / t_base:6.1f} items/s), max per-item stall {stall:.2f} s")
    print(f"score_batch, {args.workers} workers:      {t_pool:7.2f} s  ({n / t_pool:6.1f} items/s), "
          f"{timeouts} timed out (timeout {args.timeout} s)")
    print(f"speed-up: {t_base / t_pool:.2f}x   same overall reward on {same}/{n - timeouts} items that did not time out")
    close_pool()


if __name__ == "__main__":
    main()
