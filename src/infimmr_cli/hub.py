"""Models and datasets from the Hugging Face Hub, into the HF cache, as transformers and vLLM fetch them.

One rule for both: the cache first (no network); when what is cached is incomplete or absent, a download of only the
files asked for (`allow_patterns`; pickled weights never) unless `HF_HUB_OFFLINE=1`, which gets one line naming the id
instead. Every call to the hub goes through `download`, so tests replace that one function (there is no hub here).

Where a snapshot came from is in its path (`.../models--Org--Name/snapshots/<commit>`): `commit_of` reads it back for
the provenance record.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Callable

from infimmr_cli.errors import UsageError

# What a model directory needs: config and generation config, safetensors weights (+ index), tokenizer and processor
# files (tokenizer.json, vocab.json, merges.txt, tokenizer.model, chat_template.json/.jinja, preprocessor_config.json).
MODEL_FILES = ("*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja")
# Never fetched, whatever a pattern matches: pickled or foreign weight formats (loading a pickle runs its code).
NEVER = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle", "*.h5", "*.msgpack", "*.onnx", "*.gguf", "*.npz")
# A repository id as the hub spells it: owner/name, letters, digits, `.`, `_`, `-`.
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
COMMIT = re.compile(r"[0-9a-f]{40}")


def is_hub_id(text: str) -> bool:
    return bool(HUB_ID.fullmatch(str(text))) and ".." not in str(text)


def offline() -> bool:
    """`HF_HUB_OFFLINE` (or the older `TRANSFORMERS_OFFLINE`) as huggingface_hub reads it, but at call time (the
    library reads it once, at import)."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in ("1", "ON", "YES", "TRUE")


def download(repo_id: str, *, repo_type: str | None = None, revision: str | None = None,
             allow_patterns: list[str] | None = None, local_files_only: bool = False) -> str:
    """The one call that reaches the hub (tests replace it): a snapshot folder in the HF cache with the files matching
    `allow_patterns`. `local_files_only` answers from the cache or raises."""
    from huggingface_hub import snapshot_download

    return snapshot_download(repo_id, repo_type=repo_type, revision=revision, allow_patterns=allow_patterns,
                             ignore_patterns=list(NEVER), local_files_only=local_files_only)


def cache_dir() -> str:
    from huggingface_hub.constants import HF_HUB_CACHE

    return str(HF_HUB_CACHE)


def fetch(repo_id: str, patterns: list[str], *, repo_type: str | None = None, revision: str | None = None,
          complete: Callable[[Path], str | None], flag: str) -> Path:
    """The snapshot folder of `repo_id` holding `patterns`, from the cache when `complete(folder)` finds nothing
    missing (it returns what is missing, or None), else downloaded. Offline and not (completely) cached: one line."""
    at = f"{repo_id}@{revision}" if revision else repo_id
    kind = "dataset " if repo_type == "dataset" else ""
    where = f"not found in the local Hugging Face cache ({cache_dir()})"
    try:
        cached = Path(download(repo_id, repo_type=repo_type, revision=revision, allow_patterns=patterns,
                               local_files_only=True))
    except Exception:  # LocalEntryNotFoundError and kin: nothing cached for this revision
        cached = None
    if cached is not None:
        gap = complete(cached)
        if gap is None:
            return cached
        where = f"incomplete in the local Hugging Face cache ({cached} lacks {gap})"
    if offline():
        raise UsageError(f"{flag} {at}: {kind}{where} and HF_HUB_OFFLINE=1; download it first (`hf download {repo_id}"
                         f"{' --repo-type dataset' if repo_type == 'dataset' else ''}`) or unset HF_HUB_OFFLINE")
    try:
        folder = Path(download(repo_id, repo_type=repo_type, revision=revision, allow_patterns=patterns))
    except Exception as exc:  # not found, gated, no network, a revision that does not exist: one line each
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise UsageError(f"{flag} {at}: could not download the {kind}repository from the Hugging Face Hub "
                         f"({type(exc).__name__}: {first})") from None
    gap = complete(folder)
    if gap is not None:
        raise UsageError(f"{flag} {at}: the downloaded {kind}repository lacks {gap} ({folder})")
    return folder


def commit_of(folder: str | Path | None) -> str | None:
    """The commit a cache snapshot folder holds (`.../snapshots/<commit>`), or None for any other folder."""
    if folder is None:
        return None
    folder = Path(folder)
    if folder.parent.name == "snapshots" and COMMIT.fullmatch(folder.name):
        return folder.name
    return None


def files_matching(folder: Path, pattern: str) -> list[Path]:
    """Files under `folder` whose relative POSIX path matches `pattern` as the hub's `allow_patterns` does
    (fnmatch: `*` also crosses `/`)."""
    found = []
    for root, _dirs, names in os.walk(folder):
        for name in names:
            rel = (Path(root) / name).relative_to(folder).as_posix()
            if fnmatch.fnmatch(rel, pattern):
                found.append(folder / rel)
    return sorted(found)


def missing_patterns(folder: Path, patterns: list[str] | tuple[str, ...]) -> str | None:
    """None when every pattern matches a file in `folder`; else the patterns that match none."""
    gaps = [p for p in patterns if not files_matching(folder, p)]
    return ", ".join(gaps) if gaps else None


def unpack_zip(zip_path: Path, dest: Path) -> Path:
    """`zip_path` extracted into `dest` once (into a temporary folder renamed into place, so a killed extraction is
    never mistaken for a finished one). zipfile drops `..` and leading `/` from member names; links come out as
    plain files."""
    if dest.is_dir():
        return dest
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(tmp)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
