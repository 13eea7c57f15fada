"""`prepare --from SOURCE` without `--in`: the files that source's reader needs, from its Hugging Face dataset.

Only those files are fetched (`allow_patterns`), into the HF cache (`hub.fetch`: the cache first, a download when
online, `HF_HUB_OFFLINE=1` the cache only), and the reader gets the one file it reads: a cache snapshot folder may hold
more files of the repository (a full `hf download` earlier), which a reader given the folder would read too. ViRL39K
ships its images as a zip: it is unpacked once, beside the cache, into the folder layout its reader takes.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infimmr_cli import hub
from infimmr_cli.errors import UsageError


@dataclass(frozen=True)
class HubExport:
    repo_id: str               # the dataset repository on the hub
    files: tuple[str, ...]     # what to download (allow_patterns, fnmatch: `*` crosses `/`); each must match a file
    unzip: str | None = None   # a zip of images to unpack under `images/` (then the reader gets a folder)


# The README's "Data: where to get each export" table; the first pattern names the file the reader reads.
HUB_EXPORTS: dict[str, HubExport] = {
    "deepscaler": HubExport("agentica-org/DeepScaleR-Preview-Dataset", ("deepscaler.json",)),
    "virl39k": HubExport("TIGER-Lab/ViRL39K", ("39Krelease.parquet", "images.zip"), unzip="images.zip"),
    "math500": HubExport("HuggingFaceH4/MATH-500", ("test.jsonl",)),
    "mathverse": HubExport("AI4Math/MathVerse", ("testmini.parquet",)),
    "mathvision": HubExport("MathLLMs/MathVision", ("data/test-*.parquet",)),
    "mathvista": HubExport("AI4Math/MathVista", ("data/testmini-*.parquet",)),
    # OE_MM_maths_en_COMP/*.parquet at the top level in some revisions, under OlympiadBench/ in others
    "olympiadbench": HubExport("Hothan/OlympiadBench", ("*OE_MM_maths_en_COMP/*.parquet",)),
}


def fetch_export(source: str, revision: str | None = None) -> tuple[Path, dict[str, Any]]:
    """(what the reader of `source` reads, the provenance of the download: repo_id, revision, commit)."""
    spec = HUB_EXPORTS[source]
    folder = hub.fetch(spec.repo_id, list(spec.files), repo_type="dataset", revision=revision,
                       complete=lambda f: hub.missing_patterns(f, spec.files), flag=f"--from {source}:")
    origin = {"repo_id": spec.repo_id, "revision": revision, "commit": hub.commit_of(folder)}
    if spec.unzip:
        return _unpacked(folder, spec), origin
    hits = hub.files_matching(folder, spec.files[0])
    if len(hits) != 1:
        shown = ", ".join(str(h.relative_to(folder)) for h in hits[:4])
        raise UsageError(f"--from {source}: {len(hits)} files match {spec.files[0]} in {folder} ({shown}); pass the "
                         f"one to read with --in")
    return hits[0], origin


def unpack_dir(snapshot: Path) -> Path:
    """Where a snapshot's zip is unpacked: `<HF cache>/../infimmr/<repo folder>/<commit>` (outside the hub's own cache
    folders, which its tools manage), or beside the snapshot when it is not in the cache layout."""
    if snapshot.parent.name == "snapshots":
        return snapshot.parents[2].parent / "infimmr" / snapshot.parents[1].name / snapshot.name
    return snapshot.with_name(f"{snapshot.name}.infimmr")


def _unpacked(snapshot: Path, spec: HubExport) -> Path:
    """A folder the reader takes: the data files linked from the snapshot, the zip unpacked under `images/` (the
    reader also finds an `images/images/…` nesting, whichever way the zip was made)."""
    dest = unpack_dir(snapshot)
    dest.mkdir(parents=True, exist_ok=True)
    zip_path = snapshot / spec.unzip
    try:
        hub.unpack_zip(zip_path, dest / "images")
    except (zipfile.BadZipFile, OSError) as exc:
        raise UsageError(f"{zip_path}: cannot unpack ({type(exc).__name__}: {exc}); delete it from the cache and "
                         f"run again") from None
    for pattern in spec.files:
        for f in hub.files_matching(snapshot, pattern):
            if f.name == spec.unzip:
                continue
            link = dest / f.relative_to(snapshot)
            if not (link.is_symlink() and os.readlink(link) == str(f)):
                link.parent.mkdir(parents=True, exist_ok=True)
                tmp = link.with_name(f".{link.name}.tmp")
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(f)
                os.replace(tmp, link)
    return dest
