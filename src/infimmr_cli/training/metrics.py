"""One metrics row per step: `OUT/metrics.jsonl` (always, rank 0), tensorboard and wandb only when asked and installed."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from infimmr_cli.errors import UsageError
from infimmr_cli.files import atomic_write_text, writing

def summarise(values: list[float]) -> tuple[float, float]:
    """(mean, population std) of a non-empty list."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


class MetricsLog:
    def __init__(self, out: Path, is_main: bool, previous: list[dict[str, Any]], tensorboard: bool = False,
                 wandb_project: str | None = None, run_config: dict[str, Any] | None = None):
        """`wandb_project` set logs to wandb under that project, with `run_config` as the run's config."""
        self.path = out / "metrics.jsonl"
        self.is_main = is_main
        self.rows = list(previous)
        self._tb = self._wandb = None
        if not is_main:
            return
        # A resumed run starts from the checkpoint's rows: lines written after that checkpoint are dropped.
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in self.rows))
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise UsageError("tensorboard: not installed (pip install tensorboard)") from None
            self._tb = SummaryWriter(str(out / "tensorboard"))
        if wandb_project:
            try:
                import wandb
            except ImportError:
                raise UsageError("wandb: not installed (pip install wandb)") from None
            self._wandb = wandb.init(project=wandb_project, dir=str(out), config=run_config or {}, resume="allow")

    def log(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if not self.is_main:
            return
        with writing(self.path), self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        step = row["step"]
        if self._tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "step":
                    self._tb.add_scalar(k, v, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(row, step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
