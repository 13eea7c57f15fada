"""A bad item costs that item, never the run: how a stage reports the records it could not process.

Each stage keeps going past a record whose image cannot be read (images.ImageError) or whose prompt is too long, marks
the record where it lives (`meta.<stage>_error`, a prediction's `error`), counts it on screen, and lists every such
record in `<out>.warnings.jsonl`, one JSON object a line: {"id", "stage", "error"}. The file exists only when there is
something in it, so its absence means every record went through.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from infimmr_cli.files import atomic_write_text


def warnings_path(out: str | Path) -> Path:
    """`<out>.warnings.jsonl` beside a file output; `OUT/warnings.jsonl` inside a folder output."""
    out = Path(out)
    return out / "warnings.jsonl" if out.is_dir() else out.with_name(out.name + ".warnings.jsonl")


def write_warnings(out: str | Path, stage: str, problems: Iterable[tuple[str, str]]) -> Path | None:
    """Write (id, error) pairs atomically to `warnings_path(out)`; with none, remove a stale file. Returns the path
    written, or None."""
    path = warnings_path(out)
    rows = [{"id": rid, "stage": stage, "error": err} for rid, err in problems]
    if not rows:
        path.unlink(missing_ok=True)
        return None
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path
