"""results.json (one per eval folder, one entry per bench, merged across runs) and the rich table per bench.

Two accuracies per bench, each k/N: "accuracy" is the reward rule (what the model is trained on; the key name is kept
so older readers still work) and "official" the benchmark's own rule-based scoring (evaluation/official.py), over the
items that rule can score; "official_judge" counts the items it cannot (MathVerse free-form needs its GPT judge).
results.json written before the official column existed has no "official" key; readers treat it as absent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from infimmr_cli.evaluation.tally import Count
from infimmr_cli.data.records import RecordError, read_json_file
from infimmr_cli.files import atomic_write_text

RESULTS = "results.json"


def bench_entry(name: str, source: str, counts: dict[str, Any], bench_items: int, full_size: int,
                predictions: str, origin: dict[str, Any]) -> dict[str, Any]:
    """The results.json entry of one bench: counts as {k, n, pct}, what was scored and where its predictions are."""
    official = {}
    if "official" in counts:
        official = {
            "official": counts["official"].to_dict(),
            "official_judge": counts["judge"],
            "official_subsets": {label: {v: c.to_dict() for v, c in group.items()}
                                 for label, group in counts["official_subsets"].items()},
        }
    return {
        "bench": name,
        "source": source,
        "accuracy": counts["accuracy"].to_dict(),
        "format": counts["format"].to_dict(),
        "subsets": {label: {v: c.to_dict() for v, c in group.items()} for label, group in counts["subsets"].items()},
        # N scored vs records available vs the published benchmark size: a partial run never passes for a full one.
        "coverage": {"scored": counts["accuracy"].n, "records": bench_items, "benchmark": full_size},
        **official,
        "predictions": predictions,
        **origin,
    }


def read_results(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        return {"benchmarks": {}}
    data = read_json_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), dict):
        raise RecordError(f"{path}: benchmarks: missing; not a results file written by `infimmr eval`")
    return data


def merge_results(out_dir: str | Path, entries: dict[str, dict[str, Any]]) -> Path:
    """Add or replace these benches in OUT/results.json, keeping the others (benches run at other times)."""
    path = Path(out_dir) / RESULTS
    data = read_results(path)
    data["benchmarks"].update(entries)
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return path


def _count(d: dict[str, Any]) -> Count:
    return Count(int(d["k"]), int(d["n"]))


def judge_note(entry: dict[str, Any]) -> str:
    """`judge: n items not scored` when the official rule left items to an LLM judge, else ""."""
    n = int(entry.get("official_judge") or 0)
    return f"judge: {n} items not scored" if n else ""


def bench_table(entry: dict[str, Any]) -> Table:
    """One bench: overall, then every subset, each as k/N with its percentage, under the reward rule and (when the
    entry has it) the official rule."""
    acc = _count(entry["accuracy"])
    cov = entry["coverage"]
    has_official = "official" in entry
    note = "" if cov["scored"] == cov["benchmark"] else f"  [yellow](scored {cov['scored']} of {cov['benchmark']})[/]"
    title = f"{entry['bench']}: {acc.k}/{acc.n} correct ({acc.pct:.2f}%) by the reward rule"
    if has_official:
        off = _count(entry["official"])
        title += f", official {off.k}/{off.n} ({off.pct:.2f}%)"
        if judge_note(entry):
            title += f" [yellow]({judge_note(entry)}: they need the benchmark's GPT judge)[/]"
    table = Table(title=title + note, header_style="bold", title_justify="left")
    table.add_column("subset")
    table.add_column("value")
    table.add_column("reward", justify="right")
    table.add_column("accuracy", justify="right")
    if has_official:
        table.add_column("official", justify="right")
        table.add_column("accuracy", justify="right")

    def cells(c: Count | None) -> list[str]:
        return [f"{c.k}/{c.n}", f"{c.pct:.2f}%"] if c is not None else ["–", "–"]

    row = ["[bold]overall[/]", ""] + [f"[bold]{x}[/]" for x in cells(acc)]
    table.add_row(*row, *([f"[bold]{x}[/]" for x in cells(_count(entry["official"]))] if has_official else []))
    fmt = _count(entry["format"])
    table.add_row("format ok", "", *cells(fmt), *(["", ""] if has_official else []))
    official_subsets = entry.get("official_subsets") or {}
    for label, group in entry["subsets"].items():
        table.add_section()
        for i, (value, c) in enumerate(group.items()):
            extra = []
            if has_official:
                o = official_subsets.get(label, {}).get(value)
                extra = cells(_count(o) if o is not None else None)
            table.add_row(label if i == 0 else "", value, *cells(_count(c)), *extra)
    return table


def same_entry(before: dict[str, Any] | None, entry: dict[str, Any]) -> bool:
    """Whether `entry` says what `before` (read back from results.json) already said."""
    return before is not None and json.loads(json.dumps(entry, ensure_ascii=False)) == before


def bench_line(entry: dict[str, Any], note: str = "") -> str:
    """One bench in one line: `mathvista: 3/6 reward, 2/6 official (NOTE)`; the official part only when the entry has
    it, with `+n judge` for items left to the benchmark's LLM judge."""
    acc = _count(entry["accuracy"])
    text = f"{entry['bench']}: {acc.k}/{acc.n} reward"
    if "official" in entry:
        off = _count(entry["official"])
        judge = int(entry.get("official_judge") or 0)
        text += f", {off.k}/{off.n} official" + (f" +{judge} judge" if judge else "")
    return text + (f" ({note})" if note else "")


def print_bench(console: Console, entry: dict[str, Any]) -> None:
    console.print(bench_table(entry))
    if judge_note(entry):
        console.print(f"{entry['bench']}: official column scores {_count(entry['official']).n} items; "
                      f"{judge_note(entry)} (free-form answers need the benchmark's GPT judge; never guessed)",
                      highlight=False)
    skipped = entry.get("not_generated")
    if skipped:
        console.print(f"[yellow]{skipped['count']} items not generated (unreadable image or prompt over the length "
                      f"limit), scored 0: {skipped['warnings']}[/]", highlight=False)
    console.print(f"predictions: {entry['predictions']}", highlight=False)
