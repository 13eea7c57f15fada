"""What made an output: every stage writes `<out>.provenance.json` beside it (DESIGN §1: outputs carry their origin).

One record per output: the command, its resolved settings, a sha256 of each input, and the package versions, so a number
can be traced back to the run and the files that produced it.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from infimmr_cli.files import atomic_write_text

DATA_SUFFIXES = {".parquet", ".json", ".jsonl"}


def file_digest(path: str | Path) -> str:
    """sha256 of a file, or of a folder's parquet/json/jsonl files in name order (what the readers read)."""
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in DATA_SUFFIXES)
    for f in files:
        if not path.is_file():
            h.update(str(f.relative_to(path)).encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("infimmr", "torch", "transformers", "deepspeed", "peft", "vllm", "math-verify"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def provenance_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".provenance.json")


def write_provenance(out: str | Path, command: str, settings: dict[str, Any], inputs: dict[str, str | Path],
                     results: dict[str, Any] | None = None) -> Path:
    """Write `<out>.provenance.json` atomically; `inputs` maps a role to a file or folder, each digested."""
    record = {
        "command": command,
        "output": Path(out).name,
        "settings": settings,
        "inputs": {role: {"path": str(Path(p).resolve()), "sha256": file_digest(p)} for role, p in inputs.items()},
        "results": results or {},
        "versions": versions(),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    path = provenance_path(out)
    atomic_write_text(path, json.dumps(record, indent=2, default=str) + "\n")
    return path
