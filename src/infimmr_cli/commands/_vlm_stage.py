"""What classify and caption share: model lookup, resumable batched generation with a progress bar, the summary table.

A stage supplies `process(records, engine, processor) -> records`; this module reads the input, skips ids already in
the output, feeds the rest in chunks of `batch_size` records, appends each chunk to `<out>.partial` (flushed and
fsynced), and renames it to `<out>` when every record is in. A killed run resumes where the partial file ends.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

from rich.console import Console
from rich.table import Table

from infimmr_cli.errors import UsageError
from infimmr_cli.data.records import Record, ResumableWriter, iter_records, read_records
from infimmr_cli.files import atomic_write_text, claim_outputs, partial_path

Process = Callable[[list[Record], Any, Any], list[Record]]
EngineFactory = Callable[[], tuple[Any, Any]]



# What a stage calls its output when no --out is given: beside the input, named after the stage.
STAGE_SUFFIX = {"classify": "typed", "caption": "captioned"}


def default_out(in_path: str | Path, stage: str) -> Path:
    """`virl39k.jsonl` -> `virl39k.typed.jsonl` (classify), `virl39k.typed.jsonl` -> `virl39k.captioned.jsonl`
    (caption): beside the input, the earlier stage's suffix replaced rather than stacked."""
    in_path = Path(in_path)
    stem = in_path.name[:-len(".jsonl")] if in_path.name.endswith(".jsonl") else in_path.stem
    for suffix in STAGE_SUFFIX.values():
        stem = stem.removesuffix(f".{suffix}")
    return in_path.with_name(f"{stem}.{STAGE_SUFFIX[stage]}.jsonl")

def resolve_model(model: str | Path, revision: str | None = None) -> Path:
    """The checked local model directory `--model` names: a local path, or a hub id from the Hugging Face cache,
    downloaded there first when online (`modeling.resolve_model`; `HF_HUB_OFFLINE=1` uses the cache only)."""
    from infimmr_cli.modeling import check_model_dir
    from infimmr_cli.modeling import resolve_model as resolve

    return check_model_dir(resolve(model, revision))


def run_stage(name: str, in_path: str | Path, out_path: str | Path, process: Process, *, open_engine: EngineFactory,
              batch_size: int = 8, limit: int | None = None, check: Callable[[list[Record]], None] | None = None,
              allow_outside: bool = False, console: Console | None = None,
              settings: dict[str, Any] | None = None) -> tuple[Path, int]:
    """Run `process` over the records of `in_path` not yet in `out_path`. Returns (output path, records done now).

    `limit` keeps the first N input records; `allow_outside` accepts image paths leaving the input's folder (what a
    stage writing into another folder produces). `check` sees them before any output is touched or model loaded.
    """
    console = console or Console()
    if batch_size < 1:
        raise UsageError(f"--batch-size: {batch_size} must be at least 1")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit: {limit} must be at least 1")
    in_path, out = Path(in_path), Path(out_path)
    with claim_outputs(name, {"--in": in_path}, {"--out": out}):  # stages never rewrite their input
        return _run_stage(name, in_path, out, process, open_engine, batch_size, limit, check, allow_outside, console,
                          settings)


def _run_stage(name, in_path: Path, out: Path, process: Process, open_engine: EngineFactory, batch_size: int,
               limit: int | None, check, allow_outside: bool, console: Console,
               settings: dict[str, Any] | None) -> tuple[Path, int]:
    records = read_records(in_path, allow_outside=allow_outside)[:limit]
    if check is not None:
        check(records)
    wanted = {r.id for r in records}
    mine = run_settings(in_path, settings)
    recorded = settings_path(out)
    if partial_path(out).exists() or out.exists():
        check_same_settings(name, out, mine)
    if out.exists() and not partial_path(out).exists():
        have = {r.id for r in iter_records(out, check_images=False, allow_outside=True)}
        if wanted <= have:
            console.print(f"{name}: {out} already holds all {len(wanted)} records; nothing to do")
            return out, 0
        atomic_write_text(recorded, json.dumps({"command": name, "settings": mine}, indent=2) + "\n")
        # Keep the finished file intact while we add to a copy of it.
        shutil.copyfile(out, partial_path(out))
    elif not partial_path(out).exists():
        atomic_write_text(recorded, json.dumps({"command": name, "settings": mine}, indent=2) + "\n")

    with ResumableWriter(out) as writer:
        todo = [r for r in records if r.id not in writer.done_ids]
        if len(todo) < len(records):
            console.print(f"{name}: resuming, {len(records) - len(todo)} records already in {writer.partial}")
        if todo:
            engine, processor = open_engine()
            from infimmr_cli.progress import StageProgress

            # a bar on a terminal, a line per chunk in a log file
            with StageProgress(console, name, len(records), completed=len(records) - len(todo),
                               unit="records") as bar:
                for start in range(0, len(todo), batch_size):
                    chunk = todo[start:start + batch_size]
                    done = process(chunk, engine, processor)
                    if [r.id for r in done] != [r.id for r in chunk]:
                        raise RuntimeError(f"{name}: process returned other records than it was given")
                    writer.write(done)
                    bar.advance(len(chunk))
        final = writer.finish()
    _report_item_errors(name, final, console)
    from infimmr_cli.provenance import write_provenance

    write_provenance(final, name, settings or {}, {"input": in_path},
                     results={"records": len(records), "processed_in_this_run": len(todo)})
    recorded.unlink(missing_ok=True)  # the provenance holds the settings from now on
    return final, len(todo)


def _report_item_errors(name: str, out: Path, console: Console) -> None:
    """`<out>.warnings.jsonl` from the records that carry `meta.<name>_error`, and their count on screen."""
    from infimmr_cli.data.item_errors import write_warnings

    key = f"{name}_error"
    problems = [(r.id, str(r.meta[key])) for r in iter_records(out, check_images=False, allow_outside=True)
                if key in r.meta]
    path = write_warnings(out, name, problems)
    if path is not None:
        console.print(f"[yellow]{name}: {len(problems)} records could not be processed (meta.{key}); listed in "
                      f"{path}[/]", highlight=False)
# Settings that do not change a record's result: a resume may change them.
FREE_SETTINGS = ("batch_size", "limit")


def settings_path(out: Path) -> Path:
    """Where a resumable run records its settings while `<out>.partial` exists."""
    return out.with_name(out.name + ".partial.settings.json")


def run_settings(in_path: Path, settings: dict[str, Any] | None) -> dict[str, Any]:
    """The settings a resume must share with the run it continues: the stage's own (JSON-normalised) and the input."""
    from infimmr_cli.provenance import file_digest

    mine = {k: v for k, v in (settings or {}).items() if k not in FREE_SETTINGS}
    return {**json.loads(json.dumps(mine, default=str)), "input_sha256": file_digest(in_path)}


def _recorded(name: str, out: Path) -> tuple[Path, dict[str, Any] | None]:
    """(file consulted, settings it records) for the existing partial or final output; None when nothing says."""
    from infimmr_cli.provenance import provenance_path

    for path in (settings_path(out), provenance_path(out)):
        if not path.is_file():
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return path, None
        if not isinstance(doc, dict) or doc.get("command") != name or not isinstance(doc.get("settings"), dict):
            return path, None
        before = {k: v for k, v in doc["settings"].items() if k not in FREE_SETTINGS}
        if path.name.endswith(".provenance.json"):
            before["input_sha256"] = (doc.get("inputs") or {}).get("input", {}).get("sha256")
        return path, before
    return settings_path(out), None


def check_same_settings(name: str, out: Path, mine: dict[str, Any]) -> None:
    """Refuse to add to an output another model, other settings or another input made, or one we did not make."""
    where, before = _recorded(name, out)
    if before is None:
        raise UsageError(f"--out {out}: not an output of an earlier `{name}` run ({where.name} is missing or not "
                         f"{name}'s); choose another --out, or delete {out.name} and its .partial to start over")
    differ = sorted(k for k in mine.keys() | before.keys() if mine.get(k) != before.get(k))
    if differ:
        shown = "; ".join(f"{k}: {before.get(k)!r} then, {mine.get(k)!r} now" for k in differ)
        raise UsageError(f"--out {out}: made with other settings ({shown}); resuming would mix two runs in one file; "
                         f"choose another --out, or delete {out.name} and its .partial to start over")


def model_opener(model: str | Path, engine: str, batch_size: int, revision: str | None = None,
                 engine_factory: EngineFactory | None = None) -> tuple[EngineFactory, dict[str, Any]]:
    """(engine factory, the model's revision and resolved commit for the settings record). The model is resolved now
    (a missing model fails before anything runs) and loaded only when there is work. `engine_factory` replaces
    loading (tests, callers holding a model): nothing is resolved then."""
    from infimmr_cli.modeling import model_revision

    if engine_factory is not None:
        return engine_factory, model_revision(None, revision)
    if engine not in ("auto", "hf", "vllm"):
        raise UsageError(f"--engine: {engine!r} is not one of auto, hf, vllm")
    model_dir = resolve_model(model, revision)

    def open_() -> tuple[Any, Any]:
        from infimmr_cli.rollout import open_engine

        return open_engine(model_dir, engine=engine, batch_size=batch_size)

    return open_, model_revision(model_dir, revision)


def generate_per_image(records: Sequence[Record], engine, processor, messages_for: Callable[[Record, int], list],
                       sampling) -> tuple[dict[tuple[int, int], Any], dict[int, str]]:
    """One request per image of every record in one engine call.

    Returns ({(record index, image index): Completion}, {record index: error for an image that cannot be read}).
    """
    from infimmr_cli.data.images import ImageError, load_record_images
    from infimmr_cli.rollout import Request

    requests, owners, errors = [], [], {}
    for i, rec in enumerate(records):
        if not rec.images:
            continue
        try:
            images = load_record_images(rec, processor)
        except ImageError as exc:  # a corrupt or oversized file costs this record, not the run
            errors[i] = str(exc)
            continue
        for j, image in enumerate(images):
            requests.append(Request(messages_for(rec, j), [image]))
            owners.append((i, j))
    outputs = engine.generate(requests, sampling) if requests else []
    return {key: out[0] for key, out in zip(owners, outputs)}, errors


def summary_table(title: str, counts: Counter, extra: dict[str, int]) -> Table:
    table = Table(title=title)
    table.add_column("category")
    table.add_column("records", justify="right")
    for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]))):
        table.add_row(str(key), str(n))
    for key, n in extra.items():
        table.add_row(f"[bold]{key}[/]", str(n))
    return table
