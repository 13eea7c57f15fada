"""Share installed packages between two venvs by hard links, so the second costs no disk for them.

Why: `.venv-vllm` needs the same torch pair as `.venv` (torch, torchvision, triton and the nvidia/cuda wheels: about
5.3 GB). Unpacking it twice ran a CI machine out of disk. Hard links give the second venv its own directory entries
for the very same files: nothing is shared at the Python level, deleting one venv leaves the other whole, and pip in
the target sees ordinary installed distributions (it uninstalls or upgrades them as usual, which only drops the
target's links).

    python scripts/link_packages.py FROM_VENV TO_VENV NAME [NAME ...]

NAME is a distribution name or a glob over normalised names (`nvidia-*`). Each matching distribution in FROM_VENV
that TO_VENV lacks is linked file by file from its RECORD; its `.dist-info` goes last, so an interrupted run never
leaves the target with a distribution pip thinks complete. Console scripts (outside site-packages) are copied with
their `#!` line pointed at TO_VENV's python. Exit status 1 with one line on stderr when it cannot link (the venvs'
Pythons differ, or they live on different filesystems); the caller then installs the usual way.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
from importlib.metadata import Distribution, distributions
from pathlib import Path


def normalise(name: str) -> str:
    """PEP 503 name: `nvidia_cublas` and `NVIDIA-cuBLAS` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def venv_layout(venv: Path) -> tuple[Path, tuple[int, int]]:
    """The venv's site-packages (asked of its own python, not guessed) and its Python version."""
    python = venv / "bin" / "python"
    code = "import json, sys, sysconfig; print(json.dumps([sysconfig.get_path('purelib'), sys.version_info[:2]]))"
    site, version = json.loads(subprocess.run([str(python), "-c", code], check=True, capture_output=True,
                                              text=True).stdout)
    return Path(site), tuple(version)


def chosen(site: Path, patterns: list[str]) -> list[Distribution]:
    wanted = [normalise(p) for p in patterns]
    found = {}
    for dist in distributions(path=[str(site)]):
        name = normalise(dist.metadata["Name"])
        if any(fnmatch.fnmatchcase(name, w) for w in wanted):
            found.setdefault(name, dist)
    return [found[name] for name in sorted(found)]


def place(src: Path, dest: Path, source_python: str, target_python: str) -> None:
    """Hard-link src to dest (through a temporary name, so a rerun replaces a half-made file); a script whose `#!`
    names the source venv's python is copied with that line rewritten instead."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".linking")
    tmp.unlink(missing_ok=True)
    with open(src, "rb") as f:
        first_line = f.readline(4096)
    if first_line.startswith(b"#!") and source_python.encode() in first_line:
        tmp.write_bytes(src.read_bytes().replace(source_python.encode(), target_python.encode(), 1))
        os.chmod(tmp, src.stat().st_mode)
    else:
        os.link(src, tmp)
    os.replace(tmp, dest)


def link_distribution(dist: Distribution, source_site: Path, target_site: Path, target_root: Path,
                      source_python: str, target_python: str) -> None:
    files = list(dist.files or [])
    # The .dist-info last: until it exists, pip in the target does not count this distribution as installed.
    files.sort(key=lambda f: ".dist-info" in f.parts[0])
    for f in files:
        src = (source_site / f).resolve()
        if not src.is_file():
            continue  # RECORD lists a file the source never kept (e.g. a pyc pip did not compile)
        dest = Path(os.path.normpath(target_site / f))
        if not dest.is_relative_to(target_root):
            raise SystemExit(f"link_packages: {dist.metadata['Name']}'s RECORD names {f}, outside {target_root}")
        place(src, dest, source_python, target_python)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("from_venv", metavar="FROM_VENV", type=Path)
    parser.add_argument("to_venv", metavar="TO_VENV", type=Path)
    parser.add_argument("names", metavar="NAME", nargs="+", help="distribution name or glob, e.g. 'nvidia-*'")
    args = parser.parse_args(argv)
    source, target, patterns = args.from_venv.absolute(), args.to_venv.absolute(), args.names
    (source_site, source_version), (target_site, target_version) = venv_layout(source), venv_layout(target)
    if source_version != target_version:
        print(f"link_packages: {source} is Python {source_version}, {target} is {target_version}; not linking",
              file=sys.stderr)
        return 1
    if os.stat(source_site).st_dev != os.stat(target_site).st_dev:
        print(f"link_packages: {source} and {target} are on different filesystems; not linking", file=sys.stderr)
        return 1
    present = {normalise(d.metadata["Name"]) for d in distributions(path=[str(target_site)])}
    source_python, target_python = str(source / "bin" / "python"), str(target / "bin" / "python")
    linked = []
    for dist in chosen(source_site, patterns):
        name = normalise(dist.metadata["Name"])
        if name not in present:
            link_distribution(dist, source_site, target_site, target, source_python, target_python)
            linked.append(f"{name} {dist.version}")
    if linked:
        print(f"linked from {source}: {', '.join(linked)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
