"""`infimmr inspect RUN`: read what the policy wrote, from the rollout samples a train-phase run logs.

Shows, for the newest step with samples (or `--step N`), one table per group: the prompt (shortened), each completion
(shortened) with its reward parts and advantage. `--id ID` follows one record across steps; `--worst` / `--best` sort
the groups by mean reward. Reads `RUN/rollouts.jsonl` as it is, so it works while the run is going (a line being
written is skipped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from infimmr_cli.data.records import iter_json_lines
from infimmr_cli.errors import UsageError


def read_samples(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "rollouts.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no rollout samples (is {run_dir} a train-phase run with "
                                f"log_rollouts_every > 0, past its first sampled step?)")
    # the run may be writing its last line right now: an unterminated last line is left out
    return [group for _, group in iter_json_lines(path, tolerate_torn_tail=True)]


def mean_reward(group: dict[str, Any]) -> float:
    rewards = [float(c.get("overall") or 0.0) for c in group["completions"]]
    return sum(rewards) / len(rewards) if rewards else 0.0


def select(groups: list[dict[str, Any]], step: int | None = None, record_id: str | None = None,
           order: str | None = None) -> list[dict[str, Any]]:
    """The groups to show (pure): one record across steps, or one step's groups (default: the newest step)."""
    if record_id is not None:
        chosen = [g for g in groups if str(g["id"]) == record_id]
        if not chosen:
            raise UsageError(f"--id: {record_id!r} is in no logged group")
    else:
        steps = sorted({g["step"] for g in groups})
        if not steps:
            raise UsageError("rollouts.jsonl: no groups logged yet")
        step = steps[-1] if step is None else step
        if step not in steps:
            raise UsageError(f"--step: no samples at step {step}; logged steps: {', '.join(map(str, steps))}")
        chosen = [g for g in groups if g["step"] == step]
    if order in ("worst", "best"):
        chosen = sorted(chosen, key=mean_reward, reverse=order == "best")
    return chosen


def _short(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"


def run(run_dir: str | Path, step: int | None = None, record_id: str | None = None, worst: bool = False,
        best: bool = False, width: int = 100, console: Console | None = None) -> list[dict[str, Any]]:
    if worst and best:
        raise UsageError("--worst and --best: choose one")
    console = console or Console()
    chosen = select(read_samples(Path(run_dir)), step, record_id, "worst" if worst else "best" if best else None)
    for g in chosen:
        table = Table(title=f"step {g['step']} · {g['phase']} · id {g['id']} · mean reward {mean_reward(g):.3f}",
                      caption=_short(g["prompt"], width) + (f"  [images: {', '.join(g['images'])}]" if g["images"]
                                                             else ""),
                      title_justify="left", caption_justify="left")
        for col in ("#", "completion", "extracted", "format", "accuracy", "reward", "advantage"):
            table.add_column(col, justify="left" if col in ("completion", "extracted") else "right",
                             overflow="fold")
        for i, c in enumerate(g["completions"], start=1):
            table.add_row(str(i), _short(c["completion"], width), _short(c.get("extracted"), 24),
                          f"{c.get('format') or 0:.1f}", f"{c.get('accuracy') or 0:.1f}", f"{c.get('overall') or 0:.2f}",
                          f"{c.get('advantage', 0):+.3f}")
        console.print(table)
    return chosen
