"""File helpers every stage shares: whole-or-nothing writes and where work in progress is kept."""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, TextIO


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
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; the file gets what open() would give it
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        name_path(exc, path)
        raise


def current_umask() -> int:
    """The process umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(folder: str | Path) -> None:
    """Give a written folder, and everything under it, the modes the umask asks for (0755/0644 under 022): libraries
    that write through temp files (transformers' safetensors, mkdtemp) leave 0600/0700, which a colleague or a vLLM
    server running as another user cannot read. Links are left alone."""
    mask = current_umask()
    for root, dirs, names in os.walk(folder):
        os.chmod(root, 0o777 & ~mask)
        for name in names:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o666 & ~mask)


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


# ---------------------------------------------------------------- inputs are never outputs; one run per output

# What a stage writes beside its output: work in progress, settings of a resumable run, provenance, warnings, the lock.
SIDE_FILES = (".partial", ".partial.settings.json", ".provenance.json", ".warnings.jsonl", ".lock")


def _flat(paths: dict[str, Any]) -> list[tuple[str, Path]]:
    out = []
    for flag, value in paths.items():
        for p in value if isinstance(value, (list, tuple)) else [value]:
            if p is not None:
                out.append((flag, Path(p)))
    return out


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: the same resolved path (links followed), or one inode (hard links)."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def check_distinct(inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    """Refuse, before any work, an output (or a file written beside it) that is an input or another output.

    `inputs` and `outputs` map a flag (`--train`) to a path, a list of paths, or None. One line naming both flags.
    """
    ins, outs = _flat(inputs), _flat(outputs)
    for k, (oflag, out) in enumerate(outs):
        written = [out, *(out.with_name(out.name + s) for s in SIDE_FILES)]
        for iflag, inp in ins:
            for w in written:
                if same_file(w, inp):
                    what = "is" if w == out else f"writes {w.name}, which is"
                    raise FileSafetyError(f"{oflag} {out}: {what} the same file as {iflag} {inp}; this would destroy "
                                          f"the input; choose another {oflag}")
        for oflag2, out2 in outs[k + 1:]:
            if any(same_file(w, out2) for w in written):
                raise FileSafetyError(f"{oflag2} {out2}: the same file as {oflag} {out}; give each output its own path")


def check_not_within(inputs: dict[str, Any], folders: dict[str, Any]) -> None:
    """Refuse an input that lies in (or is) a folder a stage writes or replaces (an export's --out, a run's final/)."""
    for fflag, folder in _flat(folders):
        top = folder.resolve()
        for iflag, inp in _flat(inputs):
            if inp.resolve() == top or inp.resolve().is_relative_to(top):
                raise FileSafetyError(f"{fflag} {folder}: holds {iflag} {inp}, which this run would overwrite or "
                                      f"delete; choose another {fflag}")


def lock_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".lock")


@contextmanager
def output_lock(out: str | Path, command: str) -> Iterator[Path]:
    """Hold an exclusive lock on `out` for the whole block: `<out>.lock` beside it, flocked, naming the holder.

    The OS drops a flock when its process dies, so a killed run never leaves `out` locked; a second run finds the
    lock held and stops with one line saying who holds it. The file is removed on a clean exit.
    """
    import fcntl
    import json
    import socket
    import sys
    from datetime import datetime, timezone

    lock = lock_path(out)
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES):  # the output's storage: named so
                raise OSError(exc.errno, exc.strerror, str(out)) from None
            raise FileSafetyError(f"{lock}: cannot open the lock file ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                who = json.loads(os.read(fd, 1 << 16) or b"{}")
                holder = (f"pid {who.get('pid')} on {who.get('host')}, `{who.get('command')}`, since "
                          f"{who.get('started')}")
            except (ValueError, OSError):
                holder = "another process"
            os.close(fd)
            raise FileSafetyError(f"{out}: another run is writing it ({holder}); wait for it or stop it "
                                  f"(lock: {lock})") from None
        try:  # a run finishing just now may have removed the file we locked: then lock the new one
            current = os.stat(lock, follow_symlinks=False)
            mine = os.fstat(fd)
            if (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": f"infimmr {command}", "argv": sys.argv,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.write(fd, (json.dumps(info) + "\n").encode())
    try:
        yield lock
    finally:
        try:
            os.unlink(lock)
        except OSError:
            pass
        os.close(fd)


@contextmanager
def claim_outputs(command: str, inputs: dict[str, Any], outputs: dict[str, Any],
                  folders: dict[str, Any] | None = None, lock: list[str | Path] | None = None) -> Iterator[None]:
    """What every command does before any work: no output is an input (`check_distinct`, and no input inside an
    output folder it replaces), then an exclusive lock on each output (or on each of `lock`) for the whole run."""
    from contextlib import ExitStack

    check_distinct(inputs, {**outputs, **(folders or {})})
    if folders:
        check_not_within(inputs, folders)
    held = [p for _, p in _flat({**outputs, **(folders or {})})] if lock is None else [Path(p) for p in lock]
    with ExitStack() as stack:
        for out in held:
            stack.enter_context(output_lock(out, command))
        yield
