"""File helpers every stage shares: whole-or-nothing writes and where work in progress is kept."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, TextIO


@contextmanager
def atomic_file(path: str | Path) -> Iterator[TextIO]:
    """A text file that appears whole or not at all: written to a temp file in the same folder, fsynced, then renamed
    over `path`; an exception inside the block leaves `path` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # a read-only or full folder: name the file the user asked for, not our temp name
        exc.filename = str(path)
        raise
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        name_path(exc, path)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a whole file at once (see `atomic_file`)."""
    with atomic_file(path) as fh:
        fh.write(text)


def name_path(exc: BaseException, path: str | Path) -> None:
    """Give an OSError raised while writing `path` that path (a failed write() says "No space left" but not where), so
    the one-line error the CLI prints names it."""
    if isinstance(exc, OSError) and exc.filename is None:
        exc.filename = str(path)


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Inside the block, an OSError without a file name gets `path` (see `name_path`)."""
    try:
        yield
    except OSError as exc:
        name_path(exc, path)
        raise


def partial_path(out: str | Path) -> Path:
    """Where a resumable stage keeps its work in progress: `<out>.partial`, beside the final file."""
    out = Path(out)
    return out.with_name(out.name + ".partial")
