"""results.json (one per eval folder, one entry per bench, merged across runs) and the rich table per bench."""

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
    return {
        "bench": name,
        "source": source,
        "accuracy": counts["accuracy"].to_dict(),
        "format": counts["format"].to_dict(),
        "subsets": {label: {v: c.to_dict() for v, c in group.items()} for label, group in counts["subsets"].items()},
        # N scored vs records available vs the published benchmark size: a partial run never passes for a full one.
        "coverage": {"scored": counts["accuracy"].n, "records": bench_items, "benchmark": full_size},
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


def bench_table(entry: dict[str, Any]) -> Table:
    """One bench: overall, then every subset, each as k/N with its percentage."""
    acc = _count(entry["accuracy"])
    cov = entry["coverage"]
    note = "" if cov["scored"] == cov["benchmark"] else f"  [yellow](scored {cov['scored']} of {cov['benchmark']})[/]"
    table = Table(title=f"{entry['bench']}: {acc.k}/{acc.n} correct ({acc.pct:.2f}%){note}", header_style="bold",
                  title_justify="left")
    table.add_column("subset")
    table.add_column("value")
    table.add_column("correct", justify="right")
    table.add_column("accuracy", justify="right")
    table.add_row("[bold]overall[/]", "", f"[bold]{acc.k}/{acc.n}[/]", f"[bold]{acc.pct:.2f}%[/]")
    fmt = _count(entry["format"])
    table.add_row("format ok", "", f"{fmt.k}/{fmt.n}", f"{fmt.pct:.2f}%")
    for label, group in entry["subsets"].items():
        table.add_section()
        for i, (value, c) in enumerate(group.items()):
            c = _count(c)
            table.add_row(label if i == 0 else "", value, f"{c.k}/{c.n}", f"{c.pct:.2f}%")
    return table


def print_bench(console: Console, entry: dict[str, Any]) -> None:
    console.print(bench_table(entry))
    skipped = entry.get("not_generated")
    if skipped:
        console.print(f"[yellow]{skipped['count']} items not generated (unreadable image or prompt over the length "
                      f"limit), scored 0: {skipped['warnings']}[/]", highlight=False)
    console.print(f"predictions: {entry['predictions']}", highlight=False)
