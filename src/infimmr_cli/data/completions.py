"""Completions files, read by `score` and by `eval --predictions`: one JSON object a line with `id` (a record id) and
`completion` (the text); other keys (our predictions.jsonl lines carry many) are kept. What each caller requires on
top (known ids, one line per id) it checks itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from infimmr_cli.data.records import RecordError, iter_json_lines, normalise_id


def iter_completions(path: str | Path, tolerate_torn_tail: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`file:line`, line with its id normalised to a string) per line; a bad line names file:line: field.

    `tolerate_torn_tail` drops an unterminated, undecodable last line (a kill mid-write)."""
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"{path}: file not found")
    for where, obj in iter_json_lines(path, tolerate_torn_tail=tolerate_torn_tail):
        cid = normalise_id(obj.get("id"))
        if not isinstance(cid, str) or not cid:
            raise RecordError(f"{where}: id: expected a non-empty string, got {obj.get('id')!r}")
        if not isinstance(obj.get("completion"), str):
            raise RecordError(f"{where}: completion: expected a string, got {type(obj.get('completion')).__name__}")
        yield where, {**obj, "id": cid}
