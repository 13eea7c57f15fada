"""Shared fixtures: a tiny Qwen2.5-VL built once per session, and a way to run the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from infimmr_cli.modeling import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tiny") / "model", seed=0)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI subprocess: this checkout's src first, one thread per process on a 2-core box."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env


def run_cli(*args: str, cwd: Path | None = None, check: bool = True, timeout: float = 600, **env: str):
    """Run `python -m infimmr_cli ARGS` and return the CompletedProcess (text output)."""
    proc = subprocess.run([sys.executable, "-m", "infimmr_cli", *map(str, args)], cwd=cwd, env=cli_env(**env),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"infimmr {' '.join(map(str, args))} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc
