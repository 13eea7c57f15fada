"""`infimmr plot`: training curves as PNG charts, in two shapes.

- `curriculum` (default, `curriculum.png`): each run directory's `metrics.jsonl` is one phase; phases are drawn one after
  another on a shared step axis, with a vertical line where one phase hands over to the next, so the curriculum reads
  left to right (reward, accuracy reward, response length, and the validation accuracy where the runs validated).
- `figure3` (`figure3.png`, the paper's Figure 3): the runs overlaid on their own step axes, one line per run, in two
  panels: benchmark accuracy (the run's validation on `--val-data`, e.g. a prepared multimodal benchmark) and mean
  response length in tokens (the completions' token ids, i.e. counted with the model's own tokenizer). For RQ1:
  `infimmr plot --figure figure3 text_rl=runs/fra vision_rl=runs/ablations/vision_first`.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from infimmr_cli.errors import UsageError

PANELS = (("reward_mean", "mean reward"), ("accuracy_mean", "mean accuracy reward"),
          ("response_len_mean", "mean response length (tokens)"))
# Drawn when a run validated during training (`--val-data`): the held-out accuracy beside the training reward.
VAL_PANEL = ("val_accuracy", "validation accuracy")
FIGURE3_PANELS = (("val_accuracy", "benchmark accuracy (validation)"), ("response_len_mean", "mean response length (tokens)"))
FIGURES = ("curriculum", "figure3")
SMOOTH = 5  # steps in the trailing mean drawn over each training curve


def parse_run(spec: str) -> tuple[str, Path]:
    """`label=DIR` or `DIR` (labelled by its folder name)."""
    label, sep, path = spec.partition("=")
    return (label, Path(path)) if sep else (Path(spec).name, Path(spec))


def read_metrics(run_dir: Path) -> list[dict]:
    from infimmr_cli.data.records import iter_json_lines

    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics (is {run_dir} a train-phase run directory?)")
    return [row for _, row in iter_json_lines(path)]


def curriculum_series(runs: list[tuple[str, list[dict]]], key: str) -> list[tuple[str, list[int], list[float]]]:
    """Per phase: (label, global steps, values), the phases laid end to end. Rows without `key` are skipped."""
    out, offset = [], 0
    for label, rows in runs:
        xs = [offset + int(r.get("step", i + 1)) for i, r in enumerate(rows) if key in r]
        ys = [float(r[key]) for r in rows if key in r]
        out.append((label, xs, ys))
        offset += max((int(r.get("step", i + 1)) for i, r in enumerate(rows)), default=0)
    return out


def moving_average(values: list[float], window: int) -> list[float]:
    """Trailing mean over the last `window` values (fewer at the start): per-step RL rewards are noisy, the trend is
    what a reader looks for, as RL papers smooth theirs."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def overlaid_series(runs: list[tuple[str, list[dict]]], key: str) -> list[tuple[str, list[int], list[float]]]:
    """Per run: (label, its own steps, values) for rows that have `key` (step 0 = before training)."""
    return [(label, [int(r["step"]) for r in rows if key in r], [float(r[key]) for r in rows if key in r])
            for label, rows in runs]


def run(specs: list[str], out: str | Path, console: Console | None = None, figure: str = "curriculum") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    console = console or Console()
    if not specs:
        raise UsageError("plot: name at least one run directory")
    if figure not in FIGURES:
        raise UsageError(f"--figure: {figure!r} is not one of {', '.join(FIGURES)}")
    runs = [(label, read_metrics(path)) for label, path in map(parse_run, specs)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if figure == "figure3":
        return _figure3(plt, specs, runs, out, console)
    panels = PANELS + ((VAL_PANEL,) if any(VAL_PANEL[0] in r for _, rows in runs for r in rows) else ())
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.6 * len(panels)), sharex=True)
    for ax, (key, title) in zip(axes, panels):
        for label, xs, ys in curriculum_series(runs, key):
            if key == VAL_PANEL[0]:  # a few evaluations, each on the same items: drawn as they are
                ax.plot(xs, ys, marker="o", markersize=3, label=label)
            else:  # every step's own rollouts: faint points, and the trailing mean that shows the trend
                line, = ax.plot(xs, ys, marker="o", markersize=2, linewidth=0.5, alpha=0.35)
                ax.plot(xs, moving_average(ys, SMOOTH), color=line.get_color(), linewidth=2, label=label)
            if xs:
                ax.axvline(xs[-1] + 0.5, color="grey", linewidth=0.5, linestyle=":")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=8)
    axes[-1].set_xlabel(f"rollout step (phases end to end; bold lines: mean of the last {SMOOTH} steps)")
    fig.tight_layout()
    return _save(plt, fig, out / "curriculum.png", specs, runs, "curriculum", panels, console)


def _figure3(plt, specs, runs, out: Path, console: Console) -> Path:
    """The paper's Figure 3: accuracy and response length against steps, one line per run, each on its own axis."""
    if not any("val_accuracy" in r for _, rows in runs for r in rows):
        raise UsageError("--figure figure3: no run has validation rows; train them with --val-data (a prepared "
                         "multimodal benchmark) so accuracy is known at every val_every steps")
    fig, axes = plt.subplots(1, len(FIGURE3_PANELS), figsize=(11, 3.8))
    for ax, (key, title) in zip(axes, FIGURE3_PANELS):
        for label, xs, ys in overlaid_series(runs, key):
            ax.plot(xs, ys, marker="o", markersize=3, label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("rollout step")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=8)
    fig.tight_layout()
    return _save(plt, fig, out / "figure3.png", specs, runs, "figure3", FIGURE3_PANELS, console)


def _save(plt, fig, png: Path, specs, runs, figure: str, panels, console: Console) -> Path:
    tmp = png.with_name(f".{png.name}.tmp")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    tmp.replace(png)
    from infimmr_cli.provenance import write_provenance

    write_provenance(png, "plot", {"runs": list(specs), "figure": figure, "panels": [k for k, _ in panels]},
                     {f"metrics[{label}]": path / "metrics.jsonl" for label, path in map(parse_run, specs)},
                     results={label: len(rows) for label, rows in runs})
    console.print(f"plot: {png} ({', '.join(f'{label}: {len(rows)} rows' for label, rows in runs)})")
    return png
