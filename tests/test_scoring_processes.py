"""Scoring workers die with the process that scores: real processes, a real SIGKILL or SIGTERM to that process while
a worker is deep in a C-level computation (where no Python thread of the worker could run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

PLUGIN = """
import json, os, sys
def reward(completion, record):
    with open(sys.argv[0] if False else os.environ["WORKER_INFO"], "w") as fh:
        json.dump({"pid": os.getpid(), "ppid": os.getppid()}, fh)
    return {"overall": float(sum(range(10 ** 13)))}  # one C call holding the GIL for hours
"""

CALLER = """
import json, multiprocessing.forkserver as fs, multiprocessing.resource_tracker as rt, os, sys, threading, time
from infimmr_cli.data.records import Record
from infimmr_cli.rewards.scoring import score_batch

def report():
    while fs._forkserver._forkserver_pid is None or rt._resource_tracker._pid is None:
        time.sleep(0.05)
    with open(os.environ["CALLER_INFO"] + ".tmp", "w") as fh:
        json.dump({"forkserver": fs._forkserver._forkserver_pid, "tracker": rt._resource_tracker._pid}, fh)
    os.replace(os.environ["CALLER_INFO"] + ".tmp", os.environ["CALLER_INFO"])

if __name__ == "__main__":
    threading.Thread(target=report, daemon=True).start()
    rec = Record(id="spin", source="t", question="q", answer="1", answer_type="math")
    score_batch(["x"], [rec], reward=sys.argv[1] + ":reward", workers=1, timeout=3600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its exit status waits for a reaper


def _wait_for(path: Path, seconds: float) -> dict:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.is_file() and path.stat().st_size:
            try:
                return json.loads(path.read_text())
            except json.JSONDecodeError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"{path} never appeared")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_workers_fork_server_and_tracker_end_with_the_caller(sig, tmp_path):
    plug, caller = tmp_path / "spin.py", tmp_path / "caller.py"
    plug.write_text(textwrap.dedent(PLUGIN))
    caller.write_text(textwrap.dedent(CALLER))
    env = {**os.environ, "PYTHONPATH": str(SRC), "WORKER_INFO": str(tmp_path / "worker.json"),
           "CALLER_INFO": str(tmp_path / "caller.json"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(caller), str(plug)], env=env, cwd=tmp_path)
    try:
        worker = _wait_for(tmp_path / "worker.json", 120)
        helpers = _wait_for(tmp_path / "caller.json", 30)
        pids = {"worker": worker["pid"], "fork server": helpers["forkserver"], "resource tracker": helpers["tracker"]}
        assert worker["ppid"] == helpers["forkserver"]
        time.sleep(0.5)
        assert all(_alive(p) for p in pids.values()) and proc.poll() is None
        os.kill(proc.pid, sig)
        proc.wait(timeout=30)
        end = time.monotonic() + 20
        while time.monotonic() < end and any(_alive(p) for p in pids.values()):
            time.sleep(0.1)
        left = {name: pid for name, pid in pids.items() if _alive(pid)}
        assert not left, f"still running after the caller got {sig.name}: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for name in ("worker.json",):
            info = tmp_path / name
            if info.is_file():
                pid = json.loads(info.read_text())["pid"]
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
