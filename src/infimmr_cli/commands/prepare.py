"""`infimmr prepare`: one raw public export -> a validated records JSONL (plus its images beside it)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from infimmr_cli.errors import UsageError


@dataclass
class PrepareSummary:
    source: str
    out: Path
    written: int
    by_answer_type: Counter
    skipped: Counter
    images_written: int
    images_linked: int
    rows_seen: int
    provenance: Path = field(default=None)


def run(source: str, inp: str | Path, out: str | Path, quiet: bool = False) -> PrepareSummary:
    """Read `inp` as `source` and write records to `out` atomically; returns what happened (also printed)."""
    from infimmr_cli.data.sources import SOURCES

    if source not in SOURCES:
        raise UsageError(f"--from: {source!r} is not one of {', '.join(SOURCES)}")
    inp, out = Path(inp), Path(out)
    if not inp.exists():
        raise UsageError(f"--in: {inp}: no such file or folder")
    if out.is_dir():
        raise UsageError(f"--out: {out} is a folder; give the JSONL file to write, e.g. {out / 'records.jsonl'}")
    from infimmr_cli.files import claim_outputs

    with claim_outputs("prepare", {"--in": inp}, {"--out": out}):
        return _prepare(source, inp, out, quiet)


def _prepare(source: str, inp: Path, out: Path, quiet: bool) -> PrepareSummary:
    from infimmr_cli.data.sources import SOURCES, PrepareContext
    from infimmr_cli.provenance import write_provenance
    from infimmr_cli.data.records import RecordError, write_records

    out.parent.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True, quiet=quiet)
    ctx = PrepareContext(out_dir=out.parent)
    counts: Counter = Counter()

    with Progress(TextColumn(f"prepare {source}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("rows", total=None)
        ctx.on_total = lambda n: progress.update(task, total=n)
        ctx.on_row = lambda: progress.advance(task)

        def counted():
            first_row: dict[str, int] = {}
            for rec in SOURCES[source](inp, ctx):
                row = first_row.setdefault(rec.id, ctx.rows_seen)
                if row != ctx.rows_seen:  # later stages key everything by id: a duplicate is never written
                    raise RecordError(f"{inp}: id: {rec.id!r} appears twice, in rows {row} and {ctx.rows_seen} "
                                      f"(counting rows read from 1)")
                counts[rec.answer_type] += 1
                yield rec

        written = write_records(out, counted())

    provenance = write_provenance(out, "prepare", {"source": source}, {"input": inp}, results={
        "records": written, "skipped": dict(ctx.skipped), "images_written": ctx.images_written,
        "images_linked": ctx.images_linked})

    summary = PrepareSummary(source=source, out=out, written=written, by_answer_type=counts, skipped=ctx.skipped,
                             images_written=ctx.images_written, images_linked=ctx.images_linked,
                             rows_seen=ctx.rows_seen, provenance=provenance)
    _print_summary(Console(quiet=quiet), summary)
    return summary


def _print_summary(console: Console, s: PrepareSummary) -> None:
    table = Table(title=f"prepare {s.source} -> {s.out}", show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("rows read", str(s.rows_seen))
    table.add_row("records written", f"[bold]{s.written}[/]")
    for atype in ("math", "choice", "string"):
        if s.by_answer_type.get(atype):
            table.add_row(f"  answer_type {atype}", str(s.by_answer_type[atype]))
    if s.skipped:
        for reason, n in sorted(s.skipped.items()):
            table.add_row(f"skipped: {reason}", f"[yellow]{n}[/]")
    else:
        table.add_row("skipped", "0")
    table.add_row("images written", str(s.images_written))
    if s.images_linked:
        table.add_row("images linked or used in place", str(s.images_linked))
    console.print(table)
