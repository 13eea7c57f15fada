"""Progress of a long stage (eval, classify, caption, train-phase): a rich bar on a terminal, a plain line per update
where the output goes to a file or a pipe.

A rich bar draws only on a terminal; redirected to a log it writes nothing until the end (or nothing at all when
transient), so a run in `nohup ... > log` or a batch job showed no sign of life for hours. Off a terminal each
update is one line instead, e.g. `mathvista: 64/500 items generated, 30 right (12.3 items/s, ~0:00:35 left)`.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.text import Text


def _rate_text(rate: float, unit: str) -> str:
    """`12.3 items/s`, `740 items/s`, `0.05 steps/s`: three digits at most, no exponent in the usual range."""
    text = f"{rate:.0f}" if rate >= 100 else f"{rate:.3g}" if rate >= 1 else f"{rate:.2g}"
    return f"{text} {unit}/s"


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def progress_line(label: str, done: int, total: int, unit: str = "items", verb: str = "", note: str = "",
                  seconds: float = 0.0, done_here: int = 0) -> str:
    """The plain line of one update. `done_here`: how many of `done` this process did in `seconds` (the rate counts
    only those: items a resumed run found already done took no time)."""
    text = f"{label}: {done}/{total} {unit}" + (f" {verb}" if verb else "") + (f", {note}" if note else "")
    if done_here > 0 and seconds > 0:
        rate = done_here / seconds
        left = f", ~{_clock((total - done) / rate)} left" if done < total else ""
        text += f" ({_rate_text(rate, unit)}{left})"
    return text


class _RateColumn(ProgressColumn):
    """Units per second (rich's estimate over the recent window)."""

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        return Text(_rate_text(task.speed or 0.0, self.unit), style="progress.data.speed")


class StageProgress:
    """`with StageProgress(console, "mathvista", 500, unit="items", verb="generated") as p: p.advance(64, "30 right")`.

    On a terminal: a rich bar (label, bar, M/N, rate, elapsed, time left, note). Elsewhere: `progress_line` per
    `advance`. `enabled=False` shows nothing (a rank other than the main one).
    """

    def __init__(self, console: Console, label: str, total: int, *, completed: int = 0, unit: str = "items",
                 verb: str = "", transient: bool = False, enabled: bool = True):
        self.console, self.label, self.total, self.completed = console, label, total, completed
        self.unit, self.verb, self.transient, self.enabled = unit, verb, transient, enabled
        self._bar: Progress | None = None
        self._task: Any = None
        self._start, self._start_done = 0.0, completed

    def __enter__(self) -> StageProgress:
        self._start, self._start_done = time.perf_counter(), self.completed
        if self.enabled and self.console.is_terminal:
            self._bar = Progress(TextColumn(f"[bold]{self.label}"), BarColumn(), MofNCompleteColumn(),
                                 _RateColumn(self.unit), TimeElapsedColumn(), TimeRemainingColumn(),
                                 TextColumn("{task.fields[note]}"), console=self.console, transient=self.transient)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total, completed=self.completed, note="")
        return self

    def advance(self, n: int, note: str = "") -> None:
        self.completed += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, advance=n, note=note)
        else:
            self.console.print(progress_line(self.label, self.completed, self.total, self.unit, self.verb, note,
                                             time.perf_counter() - self._start, self.completed - self._start_done),
                               highlight=False, markup=False, soft_wrap=True)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
