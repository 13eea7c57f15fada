"""How a command fails in front of a user: one line naming the place and the problem, exit code 2; no traceback."""

from __future__ import annotations

import os
import sys

from rich.console import Console

from infimmr_cli.data.records import RecordError
from infimmr_cli.files import FileSafetyError


class UsageError(ValueError):
    """A setting or input the user can fix; the message says what and where."""


# Errors whose message already names the file, line and field: print it, not a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (RecordError, UsageError, FileNotFoundError, FileSafetyError)


def run_cli(app) -> None:
    try:
        app()
    except USER_ERRORS as exc:
        if os.environ.get("INFIMMR_TRACEBACK"):
            raise
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
