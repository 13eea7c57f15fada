"""`infimmr plot`: reward, accuracy and response length per step across the curriculum's phases, as PNG charts.

Each run directory's `metrics.jsonl` is one phase; phases are drawn one after another on a shared step axis, with a
vertical line where one phase hands over to the next, so the curriculum reads left to right as in the paper's Figure 3.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from infimmr_cli.errors import UsageError

PANELS = (("reward_mean", "mean reward"), ("accuracy_mean", "mean accuracy reward"),
          ("response_len_mean", "mean response length (tokens)"))


def parse_run(spec: str) -> tuple[str, Path]:
    """`label=DIR` or `DIR` (labelled by its folder name)."""
    label, sep, path = spec.partition("=")
    return (label, Path(path)) if sep else (Path(spec).name, Path(spec))


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics (is {run_dir} a train-phase run directory?)")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}:{lineno}: <line>: not valid JSON ({exc.msg})") from None
    return rows


def curriculum_series(runs: list[tuple[str, list[dict]]], key: str) -> list[tuple[str, list[int], list[float]]]:
    """Per phase: (label, global steps, values), the phases laid end to end. Rows without `key` are skipped."""
    out, offset = [], 0
    for label, rows in runs:
        xs = [offset + int(r.get("step", i + 1)) for i, r in enumerate(rows) if key in r]
        ys = [float(r[key]) for r in rows if key in r]
        out.append((label, xs, ys))
        offset += max((int(r.get("step", i + 1)) for i, r in enumerate(rows)), default=0)
    return out


def run(specs: list[str], out: str | Path, console: Console | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    console = console or Console()
    if not specs:
        raise UsageError("plot: name at least one run directory")
    runs = [(label, read_metrics(path)) for label, path in map(parse_run, specs)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(len(PANELS), 1, figsize=(8, 2.6 * len(PANELS)), sharex=True)
    for ax, (key, title) in zip(axes, PANELS):
        for label, xs, ys in curriculum_series(runs, key):
            ax.plot(xs, ys, marker="o", markersize=3, label=label)
            if xs:
                ax.axvline(xs[-1] + 0.5, color="grey", linewidth=0.5, linestyle=":")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=8)
    axes[-1].set_xlabel("rollout step (phases end to end)")
    fig.tight_layout()
    png = out / "curriculum.png"
    tmp = out / ".curriculum.png.tmp"
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    tmp.replace(png)
    from infimmr_cli.provenance import write_provenance

    write_provenance(png, "plot", {"runs": list(specs), "panels": [k for k, _ in PANELS]},
                     {f"metrics[{label}]": path / "metrics.jsonl" for label, path in map(parse_run, specs)},
                     results={label: len(rows) for label, rows in runs})
    console.print(f"plot: {png} ({', '.join(f'{label}: {len(rows)} steps' for label, rows in runs)})")
    return png
