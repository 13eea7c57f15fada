"""Real benchmark files -> `prepare` -> N, repairs, warnings, and how many golds score full marks (issue 10 §4).

For every file found it runs `infimmr prepare` (the same code as the CLI) into a scratch folder and prints per file:
records written against the official N, repairs by kind, warnings by kind, and the share of golds that score full
marks when given back as the answer (`<think>x</think><answer>GOLD</answer>`), plus, where options are text, the
share for the option's text at the gold letter. Rows kept unscorable (meta.unscorable) are counted apart.

Folder layout (`--data`, default /work/wt/realdata): one folder per bench holding the published files under the names
the benchmark's GitHub repository uses (images optional; missing ones are warnings):

    mathvista/testmini.json (+ query.json, images/)        lupantech/MathVista data/
    mathvision/test.jsonl, testmini.jsonl (+ images/)      mathllm/MATH-V data/ (images/ beside)
    mathverse/testmini.json, testmini_text_only.json       ZrrSkywalker/MathVerse data/
    olympiadbench/OE_*.json or OE_*.jsonl (+ images/)      OpenBMB/OlympiadBench data.zip
    math500/test.jsonl                                     HuggingFaceH4/MATH-500 (= openai/prm800k math_splits)

    OMP_NUM_THREADS=1 PYTHONPATH=src python bench/fidelity.py [--data DIR] [--out DIR] [--only mathvista,math500]

Hook for more graders: `gold_counts(records, judges)` takes prepared records and a {name: judge} map, where
judge(answer_text, record) -> bool says whether that answer is right for that record, and returns per-bench counts
for every judge. `JUDGES` holds the reward rule; an official-mode judge is added there under its own name.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable

# (bench folder, file name) -> the official N; files not listed here are counted "as published".
OFFICIAL_N = {
    ("mathvista", "testmini.json"): 1000,
    ("mathvision", "test.jsonl"): 3040,
    ("mathvision", "testmini.jsonl"): 304,
    ("mathverse", "testmini.json"): 3940,
    ("mathverse", "testmini_text_only.json"): 788,
    ("olympiadbench", "OE_MM_maths_en_COMP.json"): 150,
    ("math500", "test.jsonl"): 500,
}
PATTERNS = {
    "mathvista": ("testmini.json",),
    "mathvision": ("test.jsonl", "testmini.jsonl"),
    "mathverse": ("testmini.json", "testmini_text_only.json"),
    "olympiadbench": ("OE_*.json", "OE_*.jsonl"),
    "math500": ("test.jsonl",),
}


def reward_rule(answer: str, record) -> bool:
    """Full marks under the training reward / eval rule (`rewards.rules.score`)."""
    from infimmr_cli.rewards.rules import score

    return score(f"<think>x</think><answer>{answer}</answer>", record)["accuracy"] == 1.0


def official_rule(answer: str, record) -> bool | None:
    """The benchmark's official rule as `evaluation/official.py` re-implements it; None where it needs an LLM judge."""
    from infimmr_cli.evaluation.official import official_verdict

    return official_verdict(f"<think>x</think><answer>{answer}</answer>", record)


JUDGES: dict[str, Callable[[str, object], bool | None]] = {"reward rule": reward_rule, "official rule": official_rule}


def option_text(record) -> str | None:
    """The text of the gold option, where options are text: not bare letters, not several letters, and not an option
    that is itself one letter (MATH-V's `['A', 'B', 'D', 'F', 'G']`: an answer `G` is read as a letter by any rule)."""
    from infimmr_cli.data.gold import normalise_letter
    from infimmr_cli.data.records import LETTERS

    if record.answer_type != "choice" or record.meta.get("choices_in_image") or not record.choices:
        return None
    from infimmr_cli.rewards.rules import option_text_key

    text = record.choices[LETTERS.index(record.answer)]
    # `$\text{B}$` is a letter too, once unwrapped (MATH-V 2605: options B, G, O, R, Y)
    return text if text.strip() and normalise_letter(option_text_key(text)) is None else None


def gold_counts(records, judges: dict[str, Callable[[str, object], bool]] = JUDGES) -> dict[str, Counter]:
    """Per bench (record.source): items, unscorable, and for each judge `<name>: gold` / `<name>: option text` (full
    marks) with `option text items`; failing ids under `<name>: failed` (a list, in the Counter's place)."""
    out: dict[str, Counter] = defaultdict(Counter)
    for rec in records:
        c = out[rec.source]
        c["items"] += 1
        if rec.meta.get("unscorable"):
            c["unscorable"] += 1
            continue
        text = option_text(rec)
        c["option text items"] += text is not None
        for name, judge in judges.items():
            ok = judge(rec.answer, rec)
            if ok is None:  # the official rule hands this item to an LLM judge: neither right nor wrong by rule
                c[f"{name}: needs judge"] += 1
                continue
            c[f"{name}: gold"] += ok
            if not ok:
                c.setdefault(f"{name}: failed", []).append(rec.id)
            if text is not None:
                ok_text = judge(text, rec)
                c[f"{name}: option text"] += ok_text
                if not ok_text:
                    c.setdefault(f"{name}: option text failed", []).append(rec.id)
    return dict(out)


def find_files(data: Path, only: set[str] | None) -> list[tuple[str, Path]]:
    found = []
    for bench, patterns in PATTERNS.items():
        if only and bench not in only:
            continue
        seen: set[Path] = set()
        for pattern in patterns:
            for p in sorted((data / bench).glob(pattern)):
                if p.is_file() and p not in seen:
                    seen.add(p)
                    found.append((bench, p))
    return found


def run_one(bench: str, path: Path, out_dir: Path) -> dict:
    from infimmr_cli.commands.prepare import run
    from infimmr_cli.data.records import read_records

    out = out_dir / bench / path.stem / "records.jsonl"
    t0 = time.perf_counter()
    summary = run(bench, path, out, quiet=True)
    prep_s = time.perf_counter() - t0
    records = read_records(out, check_images=False)
    t0 = time.perf_counter()
    counts = gold_counts(records)
    judge_s = time.perf_counter() - t0
    return {"bench": bench, "file": path.name, "n": summary.written, "rows": summary.rows_seen,
            "official_n": OFFICIAL_N.get((bench, path.name)), "answer_types": dict(summary.by_answer_type),
            "repairs": dict(summary.repairs), "warnings": dict(Counter(w["kind"] for w in summary.warnings)),
            "images_missing": summary.images_missing, "counts": {k: dict(v) for k, v in counts.items()},
            "prepare_s": round(prep_s, 1), "judge_s": round(judge_s, 1)}


def _share(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.1f}%)" if n else "-"


def report(res: dict) -> str:
    official = res["official_n"]
    n_text = f"{res['n']} (official {official}: {'OK' if res['n'] == official else 'DIFFERS'})" if official else \
        f"{res['n']} (as published: {res['rows']} rows)"
    lines = [f"## {res['bench']} / {res['file']}", f"N: {n_text}; answer types {res['answer_types']}",
             f"repairs: {res['repairs'] or 'none'}", f"warnings: {res['warnings'] or 'none'}"]
    for source, c in res["counts"].items():
        scorable = c["items"] - c.get("unscorable", 0)
        for name in JUDGES:
            judged = scorable - c.get(name + ": needs judge", 0)
            line = f"{source}: {name}: gold full marks {_share(c.get(name + ': gold', 0), judged)}"
            if c.get(name + ": needs judge"):
                line += f" (+{c[name + ': needs judge']} left to an LLM judge)"
            if c.get("option text items"):
                line += f"; option text {_share(c.get(name + ': option text', 0), c['option text items'])}"
            if c.get("unscorable"):
                line += f"; unscorable kept {c['unscorable']}"
            lines.append(line)
            for key in (f"{name}: failed", f"{name}: option text failed"):
                if c.get(key):
                    lines.append(f"  {key}: {', '.join(c[key][:25])}{' ...' if len(c[key]) > 25 else ''}")
    lines.append(f"(prepare {res['prepare_s']} s, judging {res['judge_s']} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("/work/wt/realdata"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/infimmr-fidelity"))
    ap.add_argument("--only", default="", help="comma-separated bench names")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    only = {b for b in args.only.split(",") if b} or None
    files = find_files(args.data, only)
    if not files:
        print(f"no published files under {args.data} (layout in the docstring)", file=sys.stderr)
        return 1
    results = []
    for bench, path in files:
        res = run_one(bench, path, args.out)
        results.append(res)
        print(report(res), flush=True)
        print()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
