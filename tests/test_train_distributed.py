"""Two processes under torchrun over gloo, DeepSpeed ZeRO-2 and ZeRO-3: train, save, resume (CPU, fp32).

The first DeepSpeed use on a machine compiles its shared-memory comm op (~50 s); later runs take ~30 s each.
"""

import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO, cli_env

TIMING = ("step_time", "rollout_time", "reward_time", "logprob_time", "update_time", "tokens_per_s")


def _torchrun(*args, timeout=600):
    # --standalone: a free rendezvous port per launch, so parallel test runs cannot collide.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "infimmr_cli", "train-phase", *map(str, args)]
    # Own process group: on a timeout the workers go down with torchrun instead of lingering.
    proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out[-3000:]}\n{err[-6000:]}"
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _rows(out):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_two_processes_train_save_and_resume_exactly(stage, tmp_path, train_data, tiny_model_dir):
    common = ["--phase", "mre", "--data", train_data, "--init", tiny_model_dir,
              "--deepspeed", REPO / "recipes" / f"ds_zero{stage}.json",
              "--reward", f"{train_data.parent / 'share_reward.py'}:length",  # dense: every step learns
              "--set", "prompts_per_step=4", "--set", "group_size=4", "--set", "update_batch=2",
              "--set", "micro_batch=4", "--set", "max_response_len=8", "--set", "beta=0.01", "--set", "lr=1e-2",
              "--set", "save_every=2"]
    once, twice = tmp_path / "once", tmp_path / "twice"
    _torchrun(*common, "--out", once, "--steps", "3")
    _torchrun(*common, "--out", twice, "--steps", "2")
    ckpt = twice / "checkpoints" / "step-000002"
    assert (ckpt / "rng-rank0.json").is_file() and (ckpt / "rng-rank1.json").is_file() and (ckpt / "deepspeed").is_dir()
    proc = _torchrun(*common, "--out", twice, "--steps", "3", "--resume")
    assert "resumed from" in proc.stdout
    rows = _rows(twice)
    assert [r["step"] for r in rows] == [1, 2, 3] and rows == _rows(once)
    assert rows[-1]["kl"] > 0
    a, b = load_file(once / "final" / "model.safetensors"), load_file(twice / "final" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # gathered, full-size weights (not ZeRO-3's empty local shards)
    init = load_file(tiny_model_dir / "model.safetensors")
    assert sum(t.numel() for t in a.values()) == sum(t.numel() for t in init.values())


def test_a_plain_process_gets_a_group_of_one_and_torchrun_keeps_its_own():
    from infimmr_cli.training.distributed import single_process_env

    assert single_process_env({}, 4242) == {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
                                            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "4242"}
    assert single_process_env({"MASTER_PORT": "29999"}, 4242)["MASTER_PORT"] == "29999"
    assert single_process_env({"RANK": "1", "WORLD_SIZE": "2"}, 4242) == {}


@pytest.mark.slow
def test_deepspeed_runs_without_torchrun(tmp_path, train_data, tiny_model_dir):
    """The recipe default (a ZeRO config) from a plain `infimmr train-phase`: no launcher, no MPI, one process."""
    env = {k: v for k, v in cli_env().items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    proc = subprocess.run([sys.executable, "-m", "infimmr_cli", "train-phase", "--phase", "mre", "--data", str(train_data),
                           "--init", str(tiny_model_dir), "--out", str(tmp_path / "run"), "--steps", "1",
                           "--deepspeed", str(REPO / "recipes" / "ds_zero2.json"),
                           "--set", "prompts_per_step=2", "--set", "group_size=2", "--set", "update_batch=2",
                           "--set", "micro_batch=4", "--set", "max_response_len=4"],
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "mpi4py" not in proc.stderr and (tmp_path / "run" / "final" / "model.safetensors").is_file()
