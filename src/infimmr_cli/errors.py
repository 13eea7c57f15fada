"""How a command fails in front of a user: one line naming the place and the problem, exit code 2; no traceback."""

from __future__ import annotations

import errno
import os
import re
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rich.console import Console

from infimmr_cli.data.records import RecordError
from infimmr_cli.files import FileSafetyError


class UsageError(ValueError):
    """A setting or input the user can fix; the message says what and where."""


# Errors whose message already names the file, line and field: print it, not a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (RecordError, UsageError, FileNotFoundError, FileSafetyError)

# What the machine refused, not a bug: a full or read-only disk, a quota, a file-size limit, a permission. The user can
# fix these, so they get one line naming the path; every output is written whole or not at all, so none is half-written.
STORAGE_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "file too large for this system's file size limit (ulimit -f)",
}


def storage_message(exc: OSError) -> str | None:
    """One line for a storage error (`path: cause`), or None for any other OSError."""
    cause = STORAGE_ERRORS.get(exc.errno)
    if cause is None:
        return None
    where = exc.filename if exc.filename is not None else "a file being written"
    return f"{where}: {cause}"


@contextmanager
def storage_errors(path: str | Path) -> Iterator[None]:
    """Libraries that write in native code report a full disk as their own exception: safetensors as
    `SafetensorError(... (os error 28))`, torch as `RuntimeError(... file write failed)`. Inside the block such an error
    becomes the OSError it is, naming `path` (the folder being written), so the CLI prints one line."""
    try:
        yield
    except OSError as exc:
        from infimmr_cli.files import name_path

        name_path(exc, path)
        raise
    except Exception as exc:
        found = re.search(r"os error (\d+)", str(exc))
        code = int(found.group(1)) if found else None
        if code is None and "write failed" in str(exc):  # torch names no errno: a full disk is the usual cause
            try:
                code = errno.ENOSPC if shutil.disk_usage(Path(path).parent).free < (64 << 20) else None
            except OSError:
                code = None
        if code in STORAGE_ERRORS:
            raise OSError(code, os.strerror(code), str(path)) from exc
        raise


def run_cli(app) -> None:
    try:
        app()
    except USER_ERRORS as exc:
        _fail(str(exc))
    except OSError as exc:
        message = storage_message(exc)
        if message is None:
            raise
        _fail(message)


def _fail(message: str) -> None:
    if os.environ.get("INFIMMR_TRACEBACK"):
        raise
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(2)
