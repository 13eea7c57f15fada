"""train-phase end to end on the tiny model, one process, CPU."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO, run_cli
from infimmr_cli.commands.train_phase import run
from infimmr_cli.errors import UsageError
from infimmr_cli.modeling import load_model

TIMING = ("step_time", "rollout_time", "reward_time", "logprob_time", "update_time", "tokens_per_s")
METRIC_KEYS = {"step", "reward_mean", "reward_std", "format_mean", "accuracy_mean", "response_len_mean",
               "response_len_max", "clip_frac", "kl", "entropy", "grad_norm", "lr", "step_time", "tokens_per_s",
               "rollout_time", "reward_time", "logprob_time", "update_time"}
SMALL = ["prompts_per_step=4", "group_size=4", "update_batch=2", "micro_batch=4", "max_response_len=8",
         "beta=0.01", "lr=1e-2", "mu=2", "deepspeed="]


def _train(out, data, model, phase="mre", steps=3, extra=(), resume=False, reward="share"):
    return run(sets=SMALL + list(extra), phase=phase, data=data, init=model, out=out, steps=steps, resume=resume,
               reward=f"{data.parent / 'share_reward.py'}:{reward}")


def _rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _no_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.mark.parametrize("phase", ["fra", "cmra", "mre"])
def test_each_phase_trains_and_leaves_a_complete_run_directory(phase, tmp_path, train_data, tiny_model_dir):
    out = _train(tmp_path / "run", train_data, tiny_model_dir, phase=phase, steps=2, extra=["save_every=1"])
    rows = _rows(out)
    assert [r["step"] for r in rows] == [1, 2] and METRIC_KEYS <= set(rows[0])
    assert rows[1]["kl"] > 0  # the policy moved away from the reference after the first update
    ckpt = out / "checkpoints" / "step-000002"
    for name in ("model.safetensors", "config.json", "tokenizer_config.json", "optimizer.json", "optimizer.safetensors",
                 "rng-rank0.json", "trainer_state.json", "run_config.json"):
        assert (ckpt / name).is_file(), name
    assert json.loads((ckpt / "trainer_state.json").read_text())["step"] == 2
    assert not list(ckpt.rglob("*.pt")) and not list(ckpt.rglob("*.bin"))  # no pickle anywhere in our checkpoint
    assert not list((out / "checkpoints").glob(".*tmp"))
    origin = json.loads((out / "run_config.json").read_text())
    assert origin["settings"]["phase"] == phase and len(origin["inputs"]["data"]["sha256"]) == 64
    assert "torch" in origin["versions"] and "transformers" in origin["versions"]
    model, _ = load_model(out / "final")  # a plain HF directory, as the next phase's --init
    init, _ = load_model(tiny_model_dir)
    final = dict(model.named_parameters())
    assert any(not torch.equal(p, final[n]) for n, p in init.named_parameters())


@pytest.mark.parametrize("mode", [[], ["lora_r=4", "lr=5e-2"]], ids=["full", "lora"])
def test_resume_continues_exactly(mode, tmp_path, train_data, tiny_model_dir):
    """6 steps in one run == 3 steps, then --resume to 6: the same metrics and the same weights."""
    # the dense "length" reward: every step updates the weights, so equality below is not that of untouched weights
    once = _train(tmp_path / "once", train_data, tiny_model_dir, steps=6, extra=mode, reward="length")
    twice = _train(tmp_path / "twice", train_data, tiny_model_dir, steps=3, extra=["save_every=3", *mode],
                   reward="length")
    _train(twice, train_data, tiny_model_dir, steps=6, resume=True, extra=["save_every=3", *mode], reward="length")
    assert _no_timing(_rows(once)) == _no_timing(_rows(twice))
    a, b = load_file(once / "final" / "model.safetensors"), load_file(twice / "final" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    init = load_file(tiny_model_dir / "model.safetensors")
    assert any(not torch.equal(a[k], init[k]) for k in a)


def test_only_the_last_k_checkpoints_are_kept(tmp_path, train_data, tiny_model_dir):
    out = _train(tmp_path / "run", train_data, tiny_model_dir, phase="fra", steps=3,
                 extra=["save_every=1", "keep_last=2", "mu=1"])
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000002", "step-000003"]


def test_a_finished_run_is_not_overwritten_without_resume(tmp_path, train_data, tiny_model_dir):
    out = _train(tmp_path / "run", train_data, tiny_model_dir, phase="fra", steps=1, extra=["mu=1"])
    with pytest.raises(Exception, match="pass --resume"):
        _train(out, train_data, tiny_model_dir, phase="fra", steps=1)


def test_lora_trains_only_adapters_on_the_language_model(tmp_path, train_data, tiny_model_dir):
    out = _train(tmp_path / "run", train_data, tiny_model_dir, steps=2, extra=["lora_r=4", "lr=5e-2"], reward="length")
    assert (out / "checkpoints" / "step-000002" / "adapter" / "adapter_model.safetensors").is_file()
    init = load_file(tiny_model_dir / "model.safetensors")
    final = load_file(out / "final" / "model.safetensors")
    assert not any("lora" in k for k in final)
    changed = {k for k in init if k in final and not torch.equal(init[k], final[k])}
    assert changed and all("visual" not in k and k.endswith("proj.weight") for k in changed)
    load_model(out / "final")


def test_the_learnable_reward_rises(tmp_path, train_data, tiny_model_dir):
    """Plugged-in reward (share of the character '1'), paper-shaped loop, 30 CPU steps: the policy learns it."""
    out = run(sets=["prompts_per_step=4", "group_size=8", "update_batch=4", "micro_batch=16", "max_response_len=12",
                    "beta=0", "lr=1e-2", "save_every=100", "deepspeed="],
              phase="fra", data=train_data, init=tiny_model_dir, out=tmp_path / "learn", steps=30,
              reward=f"{train_data.parent / 'share_reward.py'}:share")
    rewards = [r["reward_mean"] for r in _rows(out)]
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert last > first + 0.2, rewards


# --- what a user sees before any compute ---------------------------------------------------------------------------

def test_dry_run_shows_counts_prompts_config_and_a_zero3_memory_estimate(tmp_path, train_data, tiny_model_dir):
    proc = run_cli("train-phase", "--config", REPO / "recipes" / "phases" / "mre.json", "--data", train_data,
                   "--init", tiny_model_dir, "--out", tmp_path / "run", "--deepspeed", REPO / "recipes" / "ds_zero3.json",
                   "--gpus", "8", "--set", "prompts_per_step=4", "--set", "update_batch=4", "--dry-run",
                   COLUMNS="200")
    text = proc.stdout
    assert "records read" in text and "16" in text and "usable" in text
    assert text.count("<|image_pad|>") == 3 and "How many sides" in text
    assert '"group_size": 16' in text
    assert "ZeRO-3 estimate" in text and "8 GPU(s)" in text and "GiB per GPU" in text
    assert not (tmp_path / "run").exists()


def test_too_long_prompts_are_counted_and_skipped(tmp_path, train_data, tiny_model_dir):
    from infimmr_cli.modeling import load_processor
    from infimmr_cli.training.data import load_prompts

    processor = load_processor(tiny_model_dir)
    everything = load_prompts(train_data, "mre", processor, max_prompt_len=10_000)
    assert len(everything.items) == 8 and not everything.too_long
    # Images of 56x56 (4 image tokens) and 84x56 (6): a limit at the shortest prompt skips the longer ones.
    from infimmr_cli.training.batching import prompt_length
    from infimmr_cli.training.data import _image_sizes

    shortest = min(prompt_length(processor, i.messages, _image_sizes(i)) for i in everything.items)
    limited = load_prompts(train_data, "mre", processor, max_prompt_len=shortest)
    assert limited.too_long and len(limited.items) + len(limited.too_long) == 8
    assert all(n > shortest for _, n in limited.too_long)
    assert {i.record.id for i in limited.items}.isdisjoint(rid for rid, _ in limited.too_long)
    proc = run_cli("train-phase", "--phase", "fra", "--data", train_data, "--init", tiny_model_dir,
                   "--out", tmp_path / "run", "--set", "max_prompt_len=10", "--dry-run", check=False, COLUMNS="200")
    assert proc.returncode == 2 and "max_prompt_len: all 8 prompts are longer than 10 tokens" in proc.stderr


def test_init_without_processor_files_fails_before_compute(tmp_path, train_data, tiny_model_dir):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, bare / name)
    proc = run_cli("train-phase", "--phase", "fra", "--data", train_data, "--init", bare, "--out", tmp_path / "run",
                   check=False)
    assert proc.returncode == 2
    assert "tokenizer_config.json (processor files)" in proc.stderr and "Traceback" not in proc.stderr


def test_batch_that_does_not_divide_fails_before_compute(tmp_path, train_data, tiny_model_dir):
    proc = run_cli("train-phase", "--phase", "fra", "--data", train_data, "--init", tiny_model_dir,
                   "--out", tmp_path / "run", "--set", "prompts_per_step=6", "--set", "update_batch=4", check=False)
    assert proc.returncode == 2 and "update_batch: 4 does not divide prompts_per_step 6" in proc.stderr


def test_gradient_checkpointing_gives_the_same_step(tmp_path, train_data, tiny_model_dir):
    plain = _train(tmp_path / "plain", train_data, tiny_model_dir, phase="fra", steps=2, extra=["mu=1"])
    ckpt = _train(tmp_path / "ckpt", train_data, tiny_model_dir, phase="fra", steps=2,
                  extra=["mu=1", "gradient_checkpointing=true"])
    a, b = _no_timing(_rows(plain)), _no_timing(_rows(ckpt))
    assert [r["reward_mean"] for r in a] == [r["reward_mean"] for r in b]
    for key in ("loss", "grad_norm", "kl"):
        assert [r[key] for r in a] == pytest.approx([r[key] for r in b], rel=1e-4, abs=1e-7)


def test_vllm_engine_is_built_lazily_and_gets_the_new_weights_every_step(tmp_path, train_data, tiny_model_dir,
                                                                         monkeypatch):
    """--engine vllm imports rollout/vllm.py only then; here a fake stands in for it (generating with an HF engine on
    its own copy of the model) and records what the loop pushes."""
    import sys
    import types

    from infimmr_cli.modeling import load_model as load
    from infimmr_cli.rollout.hf import HFEngine

    calls = {"from_pretrained": [], "load_weights": [], "sleep": 0, "wake_up": 0}

    class FakeVLLMEngine(HFEngine):
        @classmethod
        def from_pretrained(cls, model_dir, processor=None, dtype="auto", **kwargs):
            calls["from_pretrained"].append((str(model_dir), kwargs))
            model, _ = load(model_dir)
            return cls(model, processor)

        def load_weights(self, named_tensors):
            named = dict(named_tensors)
            calls["load_weights"].append(named)
            self.model.load_state_dict(named, strict=False)

        def sleep(self):
            calls["sleep"] += 1

        def wake_up(self):
            calls["wake_up"] += 1

    monkeypatch.setitem(sys.modules, "infimmr_cli.rollout.vllm", types.SimpleNamespace(VLLMEngine=FakeVLLMEngine))
    out = _train(tmp_path / "run", train_data, tiny_model_dir, phase="fra", steps=2,
                 extra=["mu=1", 'vllm={"gpu_memory_utilization": 0.3}', "engine=vllm"])
    assert calls["from_pretrained"] == [(str(tiny_model_dir), {"gpu_memory_utilization": 0.3})]
    assert calls["wake_up"] == calls["sleep"] == 2
    assert len(calls["load_weights"]) == 3  # once before the first rollout, then after each step
    init = load(tiny_model_dir)[0].state_dict()  # the tied lm_head.weight included: vLLM may hold its own copy
    pushed = calls["load_weights"][-1]
    assert set(pushed) == set(init) and all(pushed[n].shape == p.shape for n, p in init.items())
    final = load_file(out / "final" / "model.safetensors")
    assert any(not torch.equal(pushed[n], init[n]) for n in pushed)
    assert len(final) == len(pushed) - 1  # the tied lm_head.weight is left to the config when saved


def test_a_step_reduces_its_metrics_in_one_collective(tmp_path, train_data, tiny_model_dir, monkeypatch):
    from infimmr_cli.commands.train_phase import _step_row
    from infimmr_cli.training import distributed

    calls = []
    real = distributed.gather_object
    monkeypatch.setattr(distributed, "gather_object", lambda obj: calls.append(obj) or real(obj))
    out = _train(tmp_path / "run", train_data, tiny_model_dir, phase="fra", steps=2, extra=["mu=1"])
    assert len(calls) == 2  # one per step
    rewards = calls[0]["rewards"]
    assert _rows(out)[0]["reward_mean"] == pytest.approx(sum(rewards) / len(rewards))
    # two ranks: item figures over every item, loss figures averaged over ranks
    means = dict(clip_frac=0.0, kl=0.1, entropy=1.0, loss=0.5, grad_norm=1.0)
    ranks = [dict(rewards=[1.0, 0.0], format=[1.0, 1.0], accuracy=[1.0, 0.0], lengths=[3, 5], tokens=10, groups_kept=1,
                  means=means, replaced=0, new_bad=[]),
             dict(rewards=[1.0, 1.0], format=[1.0, 0.0], accuracy=[1.0, 1.0], lengths=[4, 8], tokens=30, groups_kept=0,
                  means={**means, "kl": 0.3}, replaced=2, new_bad=[])]
    row = _step_row(5, ranks, lr=1e-6, step_time=2.0, times={"rollout_time": 1.0, "update_time": 0.5})
    assert (row["step"], row["reward_mean"], row["format_mean"], row["response_len_max"]) == (5, 0.75, 0.75, 8)
    assert row["kl"] == pytest.approx(0.2) and row["groups_kept"] == 1 and row["tokens_per_s"] == 20.0
    assert row["items_skipped"] == 2  # prompts swapped for an unreadable image, summed over ranks
    assert (row["rollout_time"], row["update_time"]) == (1.0, 0.5)


def test_the_engine_says_whether_it_needs_the_weights_pushed(tiny_model_dir):
    from infimmr_cli.rollout.base import needs_weight_push
    from infimmr_cli.rollout.hf import HFEngine

    policy, processor = load_model(tiny_model_dir)
    assert not needs_weight_push(HFEngine(policy, processor, shares_policy=True))
    own, _ = load_model(tiny_model_dir)
    engine = HFEngine(own, processor)
    assert needs_weight_push(engine) and needs_weight_push(object())  # an engine that does not say holds its own copy
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.5)
    engine.load_weights(policy.named_parameters())
    assert all(torch.equal(p, dict(policy.named_parameters())[n]) for n, p in own.named_parameters())


def test_a_float_reward_plugin_trains_and_a_broken_one_fails_before_any_model_loads(tmp_path, train_data,
                                                                                    tiny_model_dir, monkeypatch):
    plug = tmp_path / "trl_rewards.py"
    plug.write_text("def length(completion, record):\n    return min(1.0, len(completion) / 20)\n\n"
                    "def listy(completion, record):\n    return [1.0]\n")
    out = run(sets=SMALL + ["mu=1"], phase="fra", data=train_data, init=tiny_model_dir, out=tmp_path / "ok", steps=1,
              reward=f"{plug}:length")
    assert _rows(out)[0]["reward_mean"] > 0  # a float per completion, as TRL and EasyR1 plug-ins return
    from infimmr_cli.training import model as training_model

    def no_model(*a, **k):
        raise AssertionError("a model was loaded before the reward was checked")

    monkeypatch.setattr(training_model, "build_policy", no_model)
    with pytest.raises(UsageError, match=rf"^reward: {plug}:listy: returned list; expected a float"):
        run(sets=SMALL, phase="fra", data=train_data, init=tiny_model_dir, out=tmp_path / "bad", steps=1,
            reward=f"{plug}:listy")


def test_init_may_name_the_previous_phases_run_folder(tmp_path, train_data, tiny_model_dir):
    fra = _train(tmp_path / "fra", train_data, tiny_model_dir, phase="fra", steps=1, extra=["mu=1"])
    cmra = _train(tmp_path / "cmra", train_data, fra, phase="cmra", steps=1, extra=["mu=1"])  # --init ckpt/fra
    origin = json.loads((cmra / "run_config.json").read_text())
    assert origin["settings"]["init"] == str(fra / "final")
    with pytest.raises(UsageError, match="a file; --init takes a model directory"):
        _train(tmp_path / "x", train_data, fra / "run_config.json", phase="cmra", steps=1)
    shutil.rmtree(fra / "final")
    with pytest.raises(UsageError, match="a train-phase run with no final/ yet"):
        _train(tmp_path / "y", train_data, fra, phase="cmra", steps=1)
