"""Scoring throughput of a MathVerse-sized predictions file (3,940 items): score_batch with worker processes against a
sequential loop of score(), in the same run, on the same items. Also times the whole `infimmr eval --predictions`
rescoring path (read, join on id, score, write, tally).

    OMP_NUM_THREADS=1 python bench/eval.py [--items 3940] [--workers 2]

The items imitate MathVerse testmini: 788 problems x 5 versions, ~60% multi-choice (gold a letter), the rest free-form
math golds; completions are a mix of right, wrong and badly formatted answers after a few hundred characters of thinking.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from infimmr_cli.data.records import Record, write_records  # noqa: E402
from infimmr_cli.rewards.rules import score, score_batch  # noqa: E402

VERSIONS = ["Text Dominant", "Text Lite", "Vision Intensive", "Vision Dominant", "Vision Only"]
FREE_GOLDS = ["2\\sqrt{3}", "30", "\\frac{1}{2}", "12.5", "3\\pi", "\\frac{\\sqrt{3}}{2}", "60^\\circ", "x^2+1"]
WRONG = ["5", "\\frac{2}{3}", "7.5", "\\sqrt{2}", "E", "100"]


def make_items(n: int, seed: int = 0) -> tuple[list[Record], list[str]]:
    rng = random.Random(seed)
    recs, comps = [], []
    for i in range(n):
        problem, version = divmod(i, 5)
        think = " ".join(rng.choice(["so", "angle", "the", "triangle", "is", "equal", "to", "x", "=", "2"])
                         for _ in range(rng.randint(40, 120)))
        if problem % 5 < 3:  # multi-choice
            gold = "ABCD"[problem % 4]
            rec = Record(id=str(i + 1), source="mathverse/testmini", question=f"Q{problem}\nChoices:\nA:1\nB:2\nC:3\nD:4",
                         answer=gold, answer_type="choice", choices=["1", "2", "3", "4"],
                         meta={"problem_version": VERSIONS[version], "question_type": "multi-choice"})
        else:
            gold = FREE_GOLDS[problem % len(FREE_GOLDS)]
            rec = Record(id=str(i + 1), source="mathverse/testmini", question=f"Q{problem}", answer=gold,
                         answer_type="math", meta={"problem_version": VERSIONS[version], "question_type": "free-form"})
        roll = rng.random()
        if roll < 0.45:
            comp = f"<think>{think}</think><answer>{gold}</answer>"
        elif roll < 0.85:
            comp = f"<think>{think}</think><answer>{rng.choice(WRONG)}</answer>"
        else:
            comp = f"{think} the answer is {gold}"  # no tags: a format failure
        recs.append(rec)
        comps.append(comp)
    return recs, comps


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=3940)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    recs, comps = make_items(args.items)

    seq_s, seq = timed(lambda: [score(c, r) for c, r in zip(comps, recs)], args.repeat)
    bat_s, bat = timed(lambda: score_batch(comps, recs, workers=args.workers), args.repeat)
    same = [s["accuracy"] for s in seq] == [s["accuracy"] for s in bat]

    # The rescoring path end to end: records + predictions files on disk -> `run(..., predictions=[...])`.
    from infimmr_cli.commands.eval import run

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_records(tmp / "records.jsonl", recs)
        (tmp / "preds.jsonl").write_text("".join(json.dumps({"id": r.id, "completion": c}) + "\n"
                                                 for r, c in zip(recs, comps)))
        cli_s, entries = timed(lambda: run(["mathverse"], tmp / "out", records=[tmp / "records.jsonl"],
                                           predictions=[tmp / "preds.jsonl"], workers=args.workers, quiet=True), 1)
    acc = entries["mathverse"]["accuracy"]

    n = len(recs)
    print(f"items: {n}  (best of {args.repeat})")
    print(f"sequential score():            {seq_s:8.3f} s  {n / seq_s:10.0f} items/s")
    print(f"score_batch(workers={args.workers}):        {bat_s:8.3f} s  {n / bat_s:10.0f} items/s  "
          f"x{seq_s / bat_s:.2f} vs sequential  same accuracies: {same}")
    print(f"eval --predictions (end to end): {cli_s:8.3f} s  {n / cli_s:10.0f} items/s  -> {acc['k']}/{acc['n']}")


if __name__ == "__main__":
    main()
