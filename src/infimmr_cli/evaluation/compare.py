"""Checkpoints x benchmarks, the shape of the paper's Table 1: rows = runs, two columns per benchmark.

Per bench, "reward" is the accuracy under our reward rule and "official" under the benchmark's own rule-based scoring
(evaluation/official.py); each cell is `pct (k/N)` from a run's results.json, an official cell adds `+n judge` when
items were left to an LLM judge. A results.json written before the official column existed shows `–` there. The
paper's own numbers (`with_paper`) are extra rows marked "(paper)" and sit in the official column (README: which
column the paper's numbers correspond to); having no counts, they show the percentage alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infimmr_cli.data.records import RecordError
from infimmr_cli.errors import UsageError
from infimmr_cli.evaluation.benches import BENCHES, TABLE1_ORDER
from infimmr_cli.evaluation.paper import PAPER, TABLES
from infimmr_cli.evaluation.report import RESULTS, read_results


@dataclass(frozen=True)
class Cell:
    pct: float | None  # None: nothing was scored (N = 0), so there is no percentage to show
    k: int | None = None
    n: int | None = None
    judge: int = 0  # items the official rule left to an LLM judge (not in n)

    def text(self) -> str:
        # The paper's numbers as printed (no digits added); ours with 2 decimals and the counts behind them.
        if self.k is None:
            return str(self.pct)
        if self.pct is None:  # N = 0: no percentage to show
            return f"n/a ({self.k}/{self.n})"
        return f"{self.pct:.2f} ({self.k}/{self.n})" + (f" +{self.judge} judge" if self.judge else "")


@dataclass
class Row:
    label: str
    cells: dict[str, Cell]  # the reward rule
    paper: bool = False
    official: dict[str, Cell] = field(default_factory=dict)  # the benchmark's official rule

    def headline(self, bench: str) -> Cell | None:
        """The cell a plot shows: the official one where there is one (the paper's numbers sit there), else reward."""
        return self.official.get(bench) or self.cells.get(bench)


def parse_run_arg(arg: str) -> tuple[str, Path]:
    """`label=DIR` or `DIR` (labelled by its folder name)."""
    label, sep, path = arg.partition("=")
    if sep and label and path:
        return label, Path(path)
    return Path(arg).name or str(arg), Path(arg)


def load_row(label: str, run_dir: str | Path) -> Row:
    run_dir = Path(run_dir)
    if not (run_dir / RESULTS).is_file():
        raise UsageError(f"{run_dir}: no {RESULTS}; run `infimmr eval --out {run_dir}` first")
    data = read_results(run_dir / RESULTS)
    cells, official = {}, {}
    for name, entry in data["benchmarks"].items():
        k, n = _counts(run_dir / RESULTS, name, entry["accuracy"] if isinstance(entry, dict) else None,
                       f"benchmarks.{name}.accuracy")
        cells[name] = Cell(100.0 * k / n if n else None, k, n)
        if isinstance(entry.get("official"), dict):  # absent in results.json written before the official column
            k, n = _counts(run_dir / RESULTS, name, entry["official"], f"benchmarks.{name}.official")
            official[name] = Cell(100.0 * k / n if n else None, k, n, int(entry.get("official_judge") or 0))
    return Row(label, cells, official=official)


def _counts(path: Path, name: str, counts: Any, field_name: str) -> tuple[int, int]:
    """(k, n) of one {"k", "n"} entry, checked: whole numbers with 0 <= k <= n, or a one-line error naming them."""
    k, n = (counts.get("k"), counts.get("n")) if isinstance(counts, dict) else (None, None)
    whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (k, n))
    if not whole or not 0 <= k <= n:
        raise RecordError(f"{path}: {field_name}: expected whole counts with 0 <= k <= n, got "
                          f"{counts!r}; not a results file written by `infimmr eval`")
    return k, n


def paper_rows(table: str | None = None) -> list[Row]:
    """The paper's rows (in the official column): all of them, or those of one of its tables (`TABLES`)."""
    models = TABLES[table]["rows"] if table else list(PAPER)
    return [Row(f"{m} (paper)", {}, paper=True, official={b: Cell(p) for b, p in PAPER[m].items()}) for m in models]


def restrict(rows: list[Row], table: str) -> list[Row]:
    """Keep only the columns of one of the paper's tables (e.g. Table 2 has no MATH500)."""
    keep = set(TABLES[table]["columns"])
    return [Row(r.label, {b: c for b, c in r.cells.items() if b in keep}, r.paper,
                {b: c for b, c in r.official.items() if b in keep}) for r in rows]


def columns(rows: list[Row]) -> list[str]:
    """The paper's column order first, then any other bench a run has (e.g. mathvision-testmini)."""
    present = {b for r in rows for b in (*r.cells, *r.official)}
    return [b for b in TABLE1_ORDER if b in present] + sorted(present - set(TABLE1_ORDER))


def title(bench: str) -> str:
    return BENCHES[bench].title if bench in BENCHES else bench


def _texts(r: Row, cols: list[str]) -> list[str]:
    return [t for c in cols for t in (r.cells[c].text() if c in r.cells else "–",
                                      r.official[c].text() if c in r.official else "–")]


def _headers(cols: list[str]) -> list[str]:
    return [h for c in cols for h in (f"{title(c)} reward", f"{title(c)} official")]


def to_markdown(rows: list[Row]) -> str:
    cols = columns(rows)
    lines = ["| model | " + " | ".join(_headers(cols)) + " |",
             "|---|" + "---:|" * (2 * len(cols))]
    for r in rows:
        lines.append(f"| {r.label} | " + " | ".join(_texts(r, cols)) + " |")
    return "\n".join(lines) + (
        "\n\nAccuracy (%) with correct/total. reward: our reward rule; official: the benchmark's own rule-based "
        "scoring (`+n judge`: items that need its LLM judge, left out of N). Paper rows give the percentage the paper reports, "
        "in the official column.\n")


PLOT_TITLE = "Accuracy per benchmark (%)"
PLOT_SUBTITLE = "official rule where known, else the reward rule; k/N correct on each bar"
BAR_INCHES, GAP_INCHES, MAX_WIDTH = 0.6, 0.5, 20.0  # a bar wide enough for "100.0%" at 8 pt, up to a screen's width


def tick_label(bench: str, cells: list[Cell | None]) -> str:
    """`MathVista\nN=6`: the bench and the N of its bars (a range where runs scored different N; `+n judge` where
    the official rule left items to an LLM judge); the bench alone where only the paper's numbers are shown."""
    ns = sorted({c.n for c in cells if c is not None and c.n is not None})
    judge = max((c.judge for c in cells if c is not None), default=0)
    if not ns:
        return title(bench)
    n = f"N={ns[0]}" if len(ns) == 1 else f"N={ns[0]}–{ns[-1]}"
    return f"{title(bench)}\n{n}" + (f" +{judge} judge" if judge else "")


def bar_label(cell: Cell | None, one_line: bool = False) -> str:
    """The value written on a bar: `50.0%` over `3/6`; the paper's number as printed; `n/a` where N = 0."""
    if cell is None:
        return ""
    if cell.k is None:
        return str(cell.pct)
    if cell.pct is None:
        return f"n/a ({cell.k}/{cell.n})"
    return f"{cell.pct:.1f}%" + (" " if one_line else "\n") + f"{cell.k}/{cell.n}"


def compare_figure(rows: list[Row]):
    """Grouped bars: one group per bench (its name and N below), one bar per run (named in the legend), its
    percentage and k/N written on it. Bars keep a readable width: the figure grows with them, and past a screen's
    width the labels turn upright on one line."""
    from matplotlib.figure import Figure

    cols = columns(rows)
    n_rows = max(len(rows), 1)
    width_in = 2.5 + len(cols) * (n_rows * BAR_INCHES + GAP_INCHES)
    narrow = width_in > MAX_WIDTH
    fig = Figure(figsize=(min(max(width_in, 6.0), MAX_WIDTH), 5.5), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / n_rows
    for i, r in enumerate(rows):
        xs = [j + (i - (n_rows - 1) / 2) * width for j in range(len(cols))]
        cells = [r.headline(c) for c in cols]
        ys = [(cell.pct or 0.0) if cell is not None else 0.0 for cell in cells]
        bars = ax.bar(xs, ys, width * 0.95, label=r.label, hatch="//" if r.paper else None,
                      alpha=0.6 if r.paper else 1.0)
        ax.bar_label(bars, [bar_label(cell, one_line=narrow) for cell in cells], padding=2, fontsize=8,
                     rotation=90 if narrow else 0)
    ax.set_xticks(range(len(cols)), [tick_label(c, [r.headline(c) for r in rows]) for c in cols], fontsize=9)
    ax.set_title(f"{PLOT_TITLE}\n{PLOT_SUBTITLE}", fontsize=11)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 130 if narrow else 115)  # room above a 100% bar for its label
    ax.set_yticks(range(0, 101, 20))
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(title="model", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def draw_png(rows: list[Row], path: str | Path) -> Path:
    """compare_figure(rows) as a PNG, written atomically."""
    fig = compare_figure(rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    tmp.replace(path)
    return path


def rich_table(rows: list[Row]):
    from rich.table import Table

    cols = columns(rows)
    table = Table(title="accuracy % (correct/total): reward rule and official rule per bench", header_style="bold",
                  title_justify="left")
    table.add_column("model")
    for h in _headers(cols):
        table.add_column(h, justify="right")
    for r in rows:
        style = "dim" if r.paper else None
        table.add_row(r.label, *_texts(r, cols), style=style)
    return table


def compare_payload(rows: list[Row]) -> dict[str, Any]:
    return {"columns": columns(rows),
            "rows": [{"label": r.label, "paper": r.paper,
                      "cells": {b: {"pct": c.pct, "k": c.k, "n": c.n} for b, c in r.cells.items()},
                      "official": {b: {"pct": c.pct, "k": c.k, "n": c.n, "judge": c.judge}
                                   for b, c in r.official.items()}} for r in rows]}
