"""How a command fails in front of a user: one line naming the place and the problem, exit code 2; no traceback."""

from __future__ import annotations

import errno
import os
import sys

from rich.console import Console

from infimmr_cli.data.records import RecordError


class UsageError(ValueError):
    """A setting or input the user can fix; the message says what and where."""


# Errors whose message already names the file, line and field: print it, not a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (RecordError, UsageError, FileNotFoundError)

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
