"""What made an output: one record shape, one writer, one reader (DESIGN §1: outputs carry their origin).

Every output has a provenance record, a JSON object with these keys:

    command   the subcommand that wrote the output ("prepare", "train-phase", "export", "eval", ...)
    output    the output's file or folder name
    settings  the resolved settings that shaped it
    inputs    {role: {"path": resolved path, "sha256": digest, ...}} for every file or folder it read
    results   counts and other figures of the run (may be empty)
    versions  python and the package versions
    finished  UTC time the record was written
    base, phases   (model outputs only: `export`) the base model and each training phase's record, oldest first

It sits beside a file output as `<out>.provenance.json`. Run folders keep the names users know: a train-phase run's
record is `OUT/run_config.json` (also copied into every checkpoint), an export's is `OUT/lineage.json`, an eval
bench's predictions' is `OUT/<bench>/run.json`. `read_provenance` reads any of them (and the shapes written before
this schema); `is_current` says whether an output is still what its inputs and settings would make again.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from infimmr_cli.files import atomic_write_text

DATA_SUFFIXES = {".parquet", ".json", ".jsonl"}
KEYS = ("command", "output", "settings", "inputs", "results", "versions", "finished")


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


def describe_input(path: str | Path) -> dict[str, str]:
    return {"path": str(Path(path).resolve()), "sha256": file_digest(path)}


def build(command: str, out: str | Path, settings: Mapping[str, Any], inputs: Mapping[str, str | Path | dict],
          results: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The record; `inputs` maps a role to a file or folder (digested here) or to an entry already described."""
    return {
        "command": command,
        "output": Path(out).name,
        "settings": dict(settings),
        "inputs": {role: dict(p) if isinstance(p, Mapping) else describe_input(p) for role, p in inputs.items()},
        "results": dict(results or {}),
        "versions": versions(),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def write_record(path: str | Path, record: Mapping[str, Any]) -> Path:
    path = Path(path)
    atomic_write_text(path, json.dumps(record, indent=2, default=str) + "\n")
    return path


def write_provenance(out: str | Path, command: str, settings: Mapping[str, Any],
                     inputs: Mapping[str, str | Path | dict], results: Mapping[str, Any] | None = None,
                     path: str | Path | None = None, **extra: Any) -> Path:
    """Write the record of `out` atomically to `path` (default `<out>.provenance.json`); returns where."""
    return write_record(path or provenance_path(out), build(command, out, settings, inputs, results, **extra))


def read_provenance(path: str | Path) -> dict[str, Any] | None:
    """The record in `path` (a provenance file, or an output whose `<out>.provenance.json` exists); None if absent.

    Records written before this schema are read into it: train-phase's `{"config", "inputs", "versions"}`, eval's flat
    run.json (settings at the top level) and export's lineage.
    """
    path = Path(path)
    if not (path.is_file() and path.suffix == ".json" and path.name.endswith(
            (".provenance.json", "run_config.json", "lineage.json", "run.json"))):
        path = provenance_path(path)
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(rec, dict):
        return None
    if "command" not in rec:  # an older shape
        if "config" in rec:
            rec = {"command": "train-phase", "settings": rec["config"], **{k: v for k, v in rec.items()
                                                                            if k != "config"}}
        elif "phases" in rec:
            rec = {"command": "export", "settings": {"dtype": rec.get("dtype")}, **rec}
        else:
            rec = {"command": None, "settings": {k: v for k, v in rec.items() if k not in ("inputs", "versions")},
                   **{k: rec[k] for k in ("inputs",) if k in rec}}
    for key in KEYS:
        rec.setdefault(key, {} if key in ("settings", "inputs", "results", "versions") else None)
    return rec


def inputs_changed(record: Mapping[str, Any], inputs: Mapping[str, str | Path]) -> list[str]:
    """The roles whose file or folder is not the one (path and content) the record names."""
    seen = record.get("inputs") or {}
    changed = []
    for role, p in inputs.items():
        entry = seen.get(role) or {}
        if entry.get("path") != str(Path(p).resolve()) or entry.get("sha256") != file_digest(p):
            changed.append(role)
    return changed


def is_current(out: str | Path, command: str, settings: Mapping[str, Any], inputs: Mapping[str, str | Path],
               record_path: str | Path | None = None) -> bool:
    """True when `out` exists and its record says `command` made it with these settings from these very inputs."""
    rec = read_provenance(record_path or out)
    if not Path(out).exists() or rec is None or rec["command"] != command:
        return False
    if any(rec["settings"].get(k) != v for k, v in settings.items()):
        return False
    return not inputs_changed(rec, inputs)
