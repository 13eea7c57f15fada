"""bench/gpu_check.py: its FLOP count by hand, and the whole script at tiny size on a CPU (what a GPU run does at 3B)."""

import importlib.util
import json
import subprocess

import pytest

from conftest import REPO, cli_env


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "bench" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_model_flops_counts_forward_passes_at_2n_and_the_update_at_6n():
    gpu_check = _module()
    # 200 tokens (100 tok/s x 2 s); rollout + reference forward (beta > 0): (2*2 + 6) * 10 params * 200 = 20,000;
    # vision: 10 * 1 param * 4 patches * (2 prompts x 2 rollouts) = 160.
    flops = gpu_check.model_flops({"prompts": 2, "group": 2}, {"tokens_per_s": 100.0, "step_time": 2.0},
                                  n_lm=10, n_vis=1, beta=0.1, patches_per_image=4)
    assert flops == 20_160
    # no reference model: (2 + 6) * 10 * 200 + 8 * 1 * 4 * 4 = 16,128
    assert gpu_check.model_flops({"prompts": 2, "group": 2}, {"tokens_per_s": 100.0, "step_time": 2.0},
                                 n_lm=10, n_vis=1, beta=0.0, patches_per_image=4) == 16_128


def test_step_figures_leave_out_the_warm_up_step():
    gpu_check = _module()
    rows = [{"step_time": 9.0, "rollout_time": 5.0, "tokens_per_s": 1.0, "response_len_mean": 4.0},
            {"step_time": 2.0, "rollout_time": 1.0, "tokens_per_s": 10.0, "response_len_mean": 6.0},
            {"step_time": 4.0, "rollout_time": 3.0, "tokens_per_s": 20.0, "response_len_mean": 8.0}]
    got = gpu_check.step_figures(rows)
    assert got == {"step_time": 3.0, "rollout_time": 2.0, "tokens_per_s": 15.0, "first_step_time": 9.0,
                   "response_len_mean": 7.0}


@pytest.mark.slow
def test_gpu_check_runs_end_to_end_at_tiny_size(tmp_path):
    proc = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh"), "--tiny", "--out", str(tmp_path)],
                          env=cli_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [r["step"] for r in res["steps"]] == [1, 2]
    assert res["train"]["step_time"] > 0 and res["train"]["tokens_per_s"] > 0
    assert all(res["train"][k] >= 0 for k in ("rollout_time", "reward_time", "logprob_time", "update_time"))
    assert res["eval"]["items"] == 4 and res["eval"]["items_per_s"] > 0
    assert res["memory"]["estimate"]["zero_stage"] == 2 and res["memory"]["estimate"]["gpu_gib_per_gpu"] > 0
    assert res["mfu"] is None and res["memory"]["peak_host_rss_gib"] > 0  # no GPU here
    table = (tmp_path / "gpu_check.md").read_text()
    assert "| tokens/s |" in table and "| eval items/s (incl. model load) |" in table and "| update (s) |" in table
