"""Shared fixtures: a tiny Qwen2.5-VL built once per session, and a way to run the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"


def pytest_collection_modifyitems(config, items):
    """The vLLM tier runs only when asked for (`-m vllm`, in .venv-vllm); a plain run deselects it."""
    if "vllm" in (config.option.markexpr or ""):
        return
    drop = [item for item in items if item.get_closest_marker("vllm") is not None]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if item.get_closest_marker("vllm") is None]


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


# A reward the tiny model can learn in a few dozen steps: the share of the character "1" in the completion.
SHARE_REWARD = '''
def share(completion, record):
    value = completion.count("1") / max(1, len(completion))
    return {"overall": value, "format": 0.0, "accuracy": value}


def length(completion, record):  # varies within every group: a gradient on every step, whatever the model says
    value = min(1.0, len(completion) / 40)
    return {"overall": value, "format": 0.0, "accuracy": value}
'''


def write_train_data(root: Path, n_text: int = 8, n_image: int = 8, captions: bool = True) -> Path:
    """Records for every phase: text items, and image items (PIL images of two sizes) with or without captions."""
    import json

    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    recs = [{"id": f"t{i}", "source": "gen", "question": f"What is {i} + {i}?", "answer": str(2 * i),
             "answer_type": "math"} for i in range(n_text)]
    for i in range(n_image):
        Image.new("RGB", (56 + 28 * (i % 2), 56), (30 * i % 255, 100, 200)).save(root / f"im{i}.png")
        recs.append({"id": f"v{i}", "source": "gen", "question": f"How many sides does shape {i} have?",
                     "answer": "3", "answer_type": "math", "images": [f"im{i}.png"],
                     "caption": f"A triangle, number {i}." if captions else None})
    path = root / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    (root / "share_reward.py").write_text(SHARE_REWARD)
    return path


@pytest.fixture(scope="session")
def train_data(tmp_path_factory) -> Path:
    """data.jsonl (8 text + 8 image records with captions) beside share_reward.py:share."""
    return write_train_data(tmp_path_factory.mktemp("train") / "data")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Every benchmark's toy export (tests/exports.py) in the documented layout, one sub-folder per bench, as eval's
    tests read them."""
    import exports

    d = tmp_path_factory.mktemp("bench-data")
    for bench in ("math500", "mathverse", "mathvision", "mathvista", "olympiadbench"):
        exports.MAKERS[bench](d / bench)
    return d
