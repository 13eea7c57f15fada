"""Checkpoints x benchmarks, the shape of the paper's Table 1: rows = runs, columns = benchmarks.

Each cell is `pct (k/N)` from a run's results.json; the paper's own numbers (`with_paper`) are extra rows marked
"(paper)" and, having no counts, show the percentage alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infimmr_cli.data.records import RecordError
from infimmr_cli.errors import UsageError
from infimmr_cli.evaluation.benches import BENCHES, TABLE1_ORDER
from infimmr_cli.evaluation.paper import PAPER
from infimmr_cli.evaluation.report import RESULTS, read_results


@dataclass(frozen=True)
class Cell:
    pct: float | None  # None: nothing was scored (N = 0), so there is no percentage to show
    k: int | None = None
    n: int | None = None

    def text(self) -> str:
        # The paper's numbers as printed (no digits added); ours with 2 decimals and the counts behind them.
        if self.k is None:
            return str(self.pct)
        return f"n/a ({self.k}/{self.n})" if self.pct is None else f"{self.pct:.2f} ({self.k}/{self.n})"


@dataclass
class Row:
    label: str
    cells: dict[str, Cell]
    paper: bool = False


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
    cells = {}
    for name, entry in data["benchmarks"].items():
        k, n = _counts(run_dir / RESULTS, name, entry)
        cells[name] = Cell(100.0 * k / n if n else None, k, n)
    return Row(label, cells)


def _counts(path: Path, name: str, entry: Any) -> tuple[int, int]:
    """(k, n) of one results.json entry, checked: whole numbers with 0 <= k <= n, or a one-line error naming them."""
    acc = entry.get("accuracy") if isinstance(entry, dict) else None
    k, n = (acc.get("k"), acc.get("n")) if isinstance(acc, dict) else (None, None)
    whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (k, n))
    if not whole or not 0 <= k <= n:
        raise RecordError(f"{path}: benchmarks.{name}.accuracy: expected whole counts with 0 <= k <= n, got "
                          f"{acc!r}; not a results file written by `infimmr eval`")
    return k, n


def paper_rows() -> list[Row]:
    return [Row(f"{model} (paper)", {b: Cell(p) for b, p in row.items()}, paper=True) for model, row in PAPER.items()]


def columns(rows: list[Row]) -> list[str]:
    """The paper's column order first, then any other bench a run has (e.g. mathvision-testmini)."""
    present = {b for r in rows for b in r.cells}
    return [b for b in TABLE1_ORDER if b in present] + sorted(present - set(TABLE1_ORDER))


def title(bench: str) -> str:
    return BENCHES[bench].title if bench in BENCHES else bench


def to_markdown(rows: list[Row]) -> str:
    cols = columns(rows)
    lines = ["| model | " + " | ".join(title(c) for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for r in rows:
        lines.append(f"| {r.label} | " + " | ".join(r.cells[c].text() if c in r.cells else "–" for c in cols) + " |")
    return "\n".join(lines) + "\n\nAccuracy (%) with correct/total; paper rows give the percentage the paper reports.\n"


def draw_png(rows: list[Row], path: str | Path) -> Path:
    """Grouped bars: one group per bench, one bar per run, the percentage written on each bar."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    cols = columns(rows)
    width = 0.8 / max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(min(14.0, 2.0 + len(cols) * (0.5 + 0.3 * len(rows))), 5.0))
    for i, r in enumerate(rows):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(cols))]
        ys = [r.cells[c].pct or 0.0 if c in r.cells else 0.0 for c in cols]
        bars = ax.bar(xs, ys, width, label=r.label, hatch="//" if r.paper else None, alpha=0.6 if r.paper else 1.0)
        for bar, c in zip(bars, cols):
            if c in r.cells:
                pct = r.cells[c].pct
                ax.annotate("n/a" if pct is None else f"{pct:.1f}",
                            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(cols)), [title(c) for c in cols])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(len(rows), 3), frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path


def rich_table(rows: list[Row]):
    from rich.table import Table

    cols = columns(rows)
    table = Table(title="accuracy % (correct/total)", header_style="bold", title_justify="left")
    table.add_column("model")
    for c in cols:
        table.add_column(title(c), justify="right")
    for r in rows:
        style = "dim" if r.paper else None
        table.add_row(r.label, *(r.cells[c].text() if c in r.cells else "–" for c in cols), style=style)
    return table


def compare_payload(rows: list[Row]) -> dict[str, Any]:
    return {"columns": columns(rows),
            "rows": [{"label": r.label, "paper": r.paper,
                      "cells": {b: {"pct": c.pct, "k": c.k, "n": c.n} for b, c in r.cells.items()}} for r in rows]}
