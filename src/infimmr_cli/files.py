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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a whole file at once (see `atomic_file`)."""
    with atomic_file(path) as fh:
        fh.write(text)


def partial_path(out: str | Path) -> Path:
    """Where a resumable stage keeps its work in progress: `<out>.partial`, beside the final file."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


class FileSafetyError(ValueError):
    """A path that leaves the folder it must stay in, or an output that would destroy an input or another run's
    output; the message names the place and the problem in one line."""


def inside(root: str | Path, rel: str | Path, where: str = "", fld: str = "path") -> Path:
    """`root/rel` resolved with every link followed; FileSafetyError when it lands outside `root` (resolved too).

    The one check every reader and stage uses for image paths: lexical checks (no `/abs`, no `..`) miss a link inside
    the data folder that points at `/etc/passwd`; resolving first does not.
    """
    base = Path(root).resolve()
    full = (base / rel).resolve()
    if not full.is_relative_to(base):
        prefix = f"{where}: " if where else ""
        raise FileSafetyError(f"{prefix}{fld}: {str(rel)!r} leaves the data folder {base} (it resolves to {full})")
    return full
