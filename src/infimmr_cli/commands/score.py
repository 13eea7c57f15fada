"""`infimmr score`: score completions against their records with the paper's reward and print accuracy per answer type.

Completions file: one JSON object a line, {"id": <record id>, "completion": <text>}; an id may appear many times (G
rollouts of one prompt). Output (optional): one line per completion, in input order, with the record's answer and
answer_type and the reward keys (overall, format, accuracy, extracted, and timeout/error where set), with
`<out>.provenance.json`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from infimmr_cli.errors import UsageError
from infimmr_cli.data.records import Record, RecordError, read_records, write_records

BATCH = 1024  # items per score_batch call: a progress step, small enough to show movement


def read_completions(path: Path, records: dict[str, Record]) -> list[tuple[str, str]]:
    """[(id, completion)] from a JSONL file; a bad line fails with file:line: field: problem."""
    from infimmr_cli.data.completions import iter_completions

    out = []
    for where, line in iter_completions(path):
        if line["id"] not in records:
            raise RecordError(f"{where}: id: {line['id']!r} is not a record id in the records file")
        out.append((line["id"], line["completion"]))
    return out


def summarize(rows: list[dict[str, Any]]) -> Table:
    """Per answer_type and overall: N, k/N correct (as eval counts them), mean format, mean overall, timeouts."""
    from infimmr_cli.evaluation.tally import is_correct

    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["answer_type"]].append(row)
    table = Table(title="Rewards")
    for col in ("type", "N", "k/N", "accuracy", "mean format", "mean overall", "timeouts"):
        table.add_column(col, justify="left" if col == "type" else "right")
    for name, group in [*sorted(groups.items()), ("all", rows)]:
        n = len(group)
        k = sum(is_correct(r) for r in group)
        table.add_row(name, str(n), f"{k}/{n}", f"{k / n:.1%}" if n else "-",
                      f"{sum(r['format'] for r in group) / max(n, 1):.3f}",
                      f"{sum(r['overall'] for r in group) / max(n, 1):.3f}",
                      str(sum(bool(r.get("timeout")) for r in group)), end_section=name == sorted(groups)[-1])
    return table


def run(records: str | Path, completions: str | Path, out: str | Path | None = None, workers: int | None = None,
        timeout: float = 5.0, reward: str = "default") -> list[dict[str, Any]]:
    if timeout <= 0:
        raise UsageError(f"--timeout: {timeout}; must be > 0 seconds")
    if workers is not None and workers < 0:
        raise UsageError(f"--workers: {workers}; must be >= 0 (0 scores in this process, without timeouts)")
    from infimmr_cli.files import claim_outputs

    with claim_outputs("score", {"--records": records, "--completions": completions}, {"--out": out}):
        return _score(records, completions, out, workers, timeout, reward)


def _score(records, completions, out, workers, timeout, reward) -> list[dict[str, Any]]:
    from infimmr_cli.evaluation.tally import is_correct
    from infimmr_cli.rewards.scoring import score_batch

    by_id = {r.id: r for r in read_records(records, check_images=False)}
    items = read_completions(Path(completions), by_id)
    console = Console()
    rows: list[dict[str, Any]] = []
    with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("score", total=len(items))
        for start in range(0, len(items), BATCH):
            part = items[start:start + BATCH]
            scores = score_batch([c for _, c in part], [by_id[i] for i, _ in part], reward=reward, workers=workers,
                                 timeout=timeout)
            for (rid, _), s in zip(part, scores):
                rec = by_id[rid]
                rows.append({"id": rid, "answer_type": rec.answer_type, "answer": rec.answer, **s})
            bar.advance(task, len(part))
    if out is not None:
        from infimmr_cli.provenance import write_provenance

        write_records(out, rows)
        write_provenance(out, "score", {"reward": reward, "timeout": timeout, "workers": workers},
                         {"records": records, "completions": completions},
                         results={"scored": len(rows), "correct": sum(is_correct(r) for r in rows),
                                  "timeouts": sum(bool(r.get("timeout")) for r in rows)})
    if rows:
        console.print(summarize(rows))
    else:
        console.print("no completions to score")
    if out is not None:
        console.print(f"{len(rows)} scores written to [bold]{out}[/]")
    return rows
