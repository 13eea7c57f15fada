"""--resume never unpickles: a crafted file in a run directory is refused, and the code in it never runs."""

import json
import os
import pickle
import shutil

import pytest

from conftest import run_cli
from infimmr_cli.commands.train_phase import run
from infimmr_cli.training.state_files import load_state, save_state

SETS = ["prompts_per_step=4", "group_size=2", "update_batch=2", "micro_batch=4", "max_response_len=4", "beta=0",
        "lr=1e-2", "mu=1", "deepspeed=", "save_every=1"]


class _Boom:
    """Unpickling this creates the marker file: proof that the pickle ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def _pickle(path, marker):
    path.write_bytes(pickle.dumps({"python": _Boom(marker)}))


@pytest.fixture(scope="module")
def one_step_run(tmp_path_factory, train_data, tiny_model_dir):
    out = tmp_path_factory.mktemp("resume") / "run"
    run(sets=SETS, phase="fra", data=train_data, init=tiny_model_dir, out=out, steps=1)
    return out


def _resume(out, train_data, tiny_model_dir):
    return run_cli("train-phase", "--phase", "fra", "--data", train_data, "--init", tiny_model_dir, "--out", out,
                   "--steps", "2", "--resume", *[a for s in SETS for a in ("--set", s)], check=False)


@pytest.mark.parametrize("victim", ["rng-rank0", "optimizer"])
def test_a_pickle_in_place_of_our_state_is_refused_and_never_runs(victim, one_step_run, tmp_path, train_data,
                                                                   tiny_model_dir):
    out = tmp_path / "run"
    shutil.copytree(one_step_run, out)
    ckpt = out / "checkpoints" / "step-000001"
    marker = tmp_path / "pwned"
    for suffix in (".json", ".safetensors"):
        (ckpt / f"{victim}{suffix}").unlink(missing_ok=True)
    _pickle(ckpt / f"{victim}.pt", marker)  # what an old-style checkpoint (or an attacker) leaves
    proc = _resume(out, train_data, tiny_model_dir)
    assert proc.returncode == 2, proc.stderr
    assert not marker.exists()
    assert f"{victim}.pt: refused" in proc.stderr and "Traceback" not in proc.stderr

    # the same bytes under our own file name: not JSON, refused just the same
    (ckpt / f"{victim}.pt").rename(ckpt / f"{victim}.json")
    proc = _resume(out, train_data, tiny_model_dir)
    assert proc.returncode == 2 and not marker.exists()
    assert f"{victim}.json: not a state file written by infimmr" in proc.stderr


def test_a_link_leaving_the_run_folder_is_refused_before_loading(one_step_run, tmp_path, train_data, tiny_model_dir):
    out = tmp_path / "run"
    shutil.copytree(one_step_run, out)
    ckpt = out / "checkpoints" / "step-000001"
    outside = tmp_path / "elsewhere.safetensors"
    shutil.move(ckpt / "optimizer.safetensors", outside)
    (ckpt / "optimizer.safetensors").symlink_to(outside)
    proc = _resume(out, train_data, tiny_model_dir)
    assert proc.returncode == 2 and "outside the run folder" in proc.stderr, proc.stderr


def test_a_checkpoint_without_our_run_config_is_refused(one_step_run, tmp_path, train_data, tiny_model_dir):
    out = tmp_path / "run"
    shutil.copytree(one_step_run, out)
    (out / "checkpoints" / "step-000001" / "run_config.json").unlink()
    proc = _resume(out, train_data, tiny_model_dir)
    assert proc.returncode == 2 and "not a checkpoint train-phase wrote" in proc.stderr, proc.stderr


def test_state_files_round_trip_exactly(tmp_path):
    import random

    import numpy as np
    import torch

    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    from infimmr_cli.training.checkpoint import rng_state, set_rng_state

    save_state(rng_state(), tmp_path, "rng")
    a = (random.random(), np.random.rand(), torch.rand(3))
    set_rng_state(load_state(tmp_path, "rng"))
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[:2] == b[:2] and torch.equal(a[2], b[2])
    state = {"state": {0: {"step": torch.tensor(2.0), "m": torch.ones(2, 2)}}, "groups": [{"betas": (0.9, 0.99)}]}
    save_state(state, tmp_path, "opt")
    back = load_state(tmp_path, "opt")
    assert back["groups"] == state["groups"] and torch.equal(back["state"][0]["m"], state["state"][0]["m"])
    assert json.loads((tmp_path / "opt.json").read_text())["format"] == "infimmr-state-1"


DS_ENV = dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1", MASTER_ADDR="127.0.0.1")


@pytest.mark.slow
def test_deepspeed_shards_load_without_unpickling(tmp_path, train_data, tiny_model_dir):
    """DeepSpeed's loader would unpickle its shards; ours reads them with weights_only=True: a real ZeRO-2 resume works,
    a pickle in place of a shard is refused and never runs."""
    from conftest import REPO

    sets = [a for s in [*SETS[:-2], "save_every=1", "reward_workers=0",
                        f"deepspeed={REPO / 'recipes' / 'ds_zero2.json'}"] for a in ("--set", s)]

    def train(out, steps, *extra, port):
        return run_cli("train-phase", "--phase", "fra", "--data", train_data, "--init", tiny_model_dir, "--out", out,
                       "--steps", str(steps), *sets, *extra, check=False, MASTER_PORT=str(port), **DS_ENV)

    out = tmp_path / "run"
    assert train(out, 1, port=29531).returncode == 0
    work = tmp_path / "copy"
    shutil.copytree(out, work)
    proc = train(out, 2, "--resume", port=29532)
    assert proc.returncode == 0 and "resumed from" in proc.stdout, proc.stderr[-2000:]

    marker = tmp_path / "pwned"
    shard = next((work / "checkpoints" / "step-000001" / "deepspeed").glob("*optim_states.pt"))
    import torch

    torch.save({"optimizer_state_dict": _Boom(marker)}, shard)
    proc = train(work, 2, "--resume", port=29533)
    assert proc.returncode == 2 and not marker.exists(), proc.stderr[-2000:]
    assert "optim_states.pt: refused" in proc.stderr and "Traceback" not in proc.stderr
