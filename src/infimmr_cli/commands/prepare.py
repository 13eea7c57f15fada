"""`infimmr prepare`: one raw public export -> a validated records JSONL (plus its images beside it).

Beside `<out>` it writes `<out>.warnings.jsonl` (always; empty when nothing was odd): one JSON object per row kept with
a defect or repaired in a way worth a look: {"id", "where" (file:row N / file:line N), "kind", "reason"}.
"""

from __future__ import annotations

import json
import os
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
    repairs: Counter = field(default_factory=Counter)
    warnings: list = field(default_factory=list)
    warnings_path: Path = field(default=None)
    images_missing: int = 0


def run(source: str, inp: str | Path | None, out: str | Path, quiet: bool = False,
        revision: str | None = None) -> PrepareSummary:
    """Read `inp` as `source` and write records to `out` atomically; returns what happened (also printed).

    No `inp`: the files the reader needs come from the source's Hugging Face dataset (`hub_exports`), at `revision`.
    """
    from infimmr_cli.data.sources import SOURCES

    if source not in SOURCES:
        raise UsageError(f"--from: {source!r} is not one of {', '.join(SOURCES)}")
    out = Path(out)
    if out.is_dir():
        raise UsageError(f"--out: {out} is a folder; give the JSONL file to write, e.g. {out / 'records.jsonl'}")
    origin: dict = {}
    if inp is None:
        from infimmr_cli.data.hub_exports import fetch_export

        inp, origin = fetch_export(source, revision)
    elif revision:
        raise UsageError(f"--revision {revision}: applies to a download (prepare without --in); --in {inp} is a "
                         f"local export")
    inp = Path(inp)
    if not inp.exists():
        raise UsageError(f"--in: {inp}: no such file or folder")
    from infimmr_cli.files import claim_outputs

    with claim_outputs("prepare", {"--in": inp}, {"--out": out}):
        return _prepare(source, inp, out, quiet, origin)


def _prepare(source: str, inp: Path, out: Path, quiet: bool, origin: dict | None = None) -> PrepareSummary:
    from infimmr_cli.data.sources import SOURCES, PrepareContext
    from infimmr_cli.provenance import write_provenance
    from infimmr_cli.data.records import write_records
    from infimmr_cli.files import atomic_write_text

    out.parent.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True, quiet=quiet)
    ctx = PrepareContext(out_dir=out.parent)
    counts: Counter = Counter()

    images_before = _tree(out.parent / "images")
    try:
        with Progress(TextColumn(f"prepare {source}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task("rows", total=None)
            ctx.on_total = lambda n: progress.update(task, total=n)
            ctx.on_row = lambda: progress.advance(task)

            def counted():
                seen: dict[str, int] = {}
                first_row: dict[str, int] = {}
                for rec in SOURCES[source](inp, ctx):
                    if rec.id in seen:  # ids must be unique in a records file: keep the row under a suffixed id
                        seen[rec.id] += 1
                        new_id = f"{rec.id}#{seen[rec.id]}"
                        ctx.warn(new_id, f"{out}:{sum(counts.values()) + 1}", "duplicate id",
                                 f"id {rec.id!r} appears in rows {first_row[rec.id]} and {ctx.rows_seen} of {inp} "
                                 f"(counting rows read from 1); the later row is kept as {new_id!r}")
                        rec = rec.replace(id=new_id)
                    seen.setdefault(rec.id, 1)
                    first_row.setdefault(rec.id, ctx.rows_seen)
                    counts[rec.answer_type] += 1
                    yield rec

            written = write_records(out, counted())
    except BaseException:  # a bad row, a full disk, Ctrl-C: no records file, so none of the images written for it
        _remove_new(out.parent / "images", images_before)
        raise

    warnings_path = out.with_name(out.name + ".warnings.jsonl")
    atomic_write_text(warnings_path, "".join(json.dumps(w, ensure_ascii=False) + "\n" for w in ctx.warnings))
    # a download also records the dataset repository, the revision asked for and the commit it resolved to
    provenance = write_provenance(out, "prepare", {"source": source, **(origin or {})}, {"input": inp}, results={
        "records": written, "skipped": dict(ctx.skipped), "images_written": ctx.images_written,
        "images_linked": ctx.images_linked, "images_missing": ctx.images_missing, "repairs": dict(ctx.repairs),
        "warnings": len(ctx.warnings)})

    summary = PrepareSummary(source=source, out=out, written=written, by_answer_type=counts, skipped=ctx.skipped,
                             images_written=ctx.images_written, images_linked=ctx.images_linked,
                             rows_seen=ctx.rows_seen, provenance=provenance, repairs=ctx.repairs,
                             warnings=ctx.warnings, warnings_path=warnings_path, images_missing=ctx.images_missing)
    _print_summary(Console(quiet=quiet), summary)
    return summary


def _tree(folder: Path) -> tuple[set[str], set[str]]:
    """(files and links, folders) under `folder`, without following links."""
    files, dirs = set(), set()
    for root, subdirs, names in os.walk(folder):
        dirs.add(root)
        files.update(os.path.join(root, n) for n in names)
        files.update(os.path.join(root, d) for d in subdirs if os.path.islink(os.path.join(root, d)))
    return files, dirs


def _remove_new(folder: Path, before: tuple[set[str], set[str]]) -> None:
    """Remove what appeared under `folder` since `before` (files, links, then the folders left empty)."""
    files, dirs = _tree(folder)
    for f in files - before[0]:
        Path(f).unlink(missing_ok=True)
    for d in sorted(dirs - before[1], key=len, reverse=True):
        try:
            os.rmdir(d)
        except OSError:
            pass


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
    for kind, n in sorted(s.repairs.items()):
        table.add_row(f"repaired: {kind}" if kind != "kept unscorable" else "kept unscorable (scores 0)",
                      f"[yellow]{n}[/]")
    if s.images_missing:
        table.add_row("images missing (kept without)", f"[yellow]{s.images_missing}[/]")
    table.add_row("warnings", f"[yellow]{len(s.warnings)}[/] -> {s.warnings_path}" if s.warnings else "0")
    table.add_row("images written", str(s.images_written))
    if s.images_linked:
        table.add_row("images linked or used in place", str(s.images_linked))
    console.print(table)
