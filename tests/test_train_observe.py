"""What a run shows while it trains: rollout samples (RUN/rollouts.jsonl), validation (val_* + RUN/val/), `inspect`."""

import json
import shutil

import pytest
from rich.console import Console

from conftest import run_cli
from infimmr_cli.commands import inspect
from infimmr_cli.commands.train_phase import run
from infimmr_cli.training.samples import StepLog, collapse_image_pads, groups_due, rollout_groups

SMALL = ["prompts_per_step=4", "group_size=4", "update_batch=2", "micro_batch=4", "max_response_len=8",
         "beta=0.01", "lr=1e-2", "deepspeed=", "log_rollouts_every=1", "log_rollout_groups=2", "val_every=2"]
TIMING = ("step_time", "rollout_time", "reward_time", "logprob_time", "update_time", "tokens_per_s")


def _train(out, data, model, steps, extra=(), resume=False, val=True):
    return run(sets=SMALL + list(extra), phase="mre", data=data, init=model, out=out, steps=steps, resume=resume,
               reward=f"{data.parent / 'share_reward.py'}:share", val_data=data if val else None)


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


# --- pure pieces ----------------------------------------------------------------------------------------------------


def test_rollout_groups_keep_whole_groups_with_their_advantages():
    scores = [{"overall": r, "format": 1.0, "accuracy": r, "extracted": str(r)} for r in (1.0, 0.0, 0.5, 0.5)]
    lines = rollout_groups(step=7, phase="fra", ids=["a", "b"], prompts=["pa", "pb"], images=[[], ["x.png"]],
                           completions=["c1", "c2", "c3", "c4"], scores=scores, advantages=[0.7071, -0.7071, 0.0, 0.0],
                           group_size=2, n_groups=1)
    assert lines == [{"step": 7, "phase": "fra", "id": "a", "prompt": "pa", "images": [],
                      "completions": [
                          {"completion": "c1", "format": 1.0, "accuracy": 1.0, "overall": 1.0, "extracted": "1.0",
                           "advantage": 0.7071},
                          {"completion": "c2", "format": 1.0, "accuracy": 0.0, "overall": 0.0, "extracted": "0.0",
                           "advantage": -0.7071}]}]
    with pytest.raises(ValueError, match="do not match"):
        rollout_groups(1, "fra", ["a"], ["p"], [[]], ["c"], scores[:1], [0.0], group_size=2, n_groups=1)


def test_image_pads_collapse_to_one_marker_per_image():
    text = "<|vision_start|><|image_pad|><|vision_end|>a <|vision_start|>" + "<|image_pad|>" * 5 + "<|vision_end|>b"
    assert collapse_image_pads(text) == "<image>a <image>b"


def test_groups_are_due_every_n_steps_and_never_at_zero():
    assert [s for s in range(1, 8) if groups_due(s, 3)] == [3, 6]
    assert not any(groups_due(s, 0) for s in range(1, 8))


def test_a_resumed_step_log_drops_the_steps_after_its_checkpoint(tmp_path):
    path = tmp_path / "rollouts.jsonl"
    path.write_text("".join(json.dumps({"step": s, "id": "x"}) + "\n" for s in (1, 2, 3)) + '{"step": 4, "id"')
    log = StepLog(path, is_main=True, resumed_step=2)
    assert [x["step"] for x in _lines(path)] == [1, 2]
    log.write([{"step": 3, "id": "y"}])
    assert [(x["step"], x["id"]) for x in _lines(path)] == [(1, "x"), (2, "x"), (3, "y")]


def test_inspect_selects_the_newest_step_one_record_or_the_worst_groups():
    g = lambda step, rid, rewards: {"step": step, "phase": "fra", "id": rid, "prompt": "p", "images": [],  # noqa: E731
                                    "completions": [{"completion": "c", "overall": r} for r in rewards]}
    groups = [g(1, "a", [0.0, 1.0]), g(2, "a", [1.0, 1.0]), g(2, "b", [0.0, 0.0]), g(2, "c", [0.5, 0.5])]
    assert [x["id"] for x in inspect.select(groups)] == ["a", "b", "c"]
    assert [x["id"] for x in inspect.select(groups, order="worst")] == ["b", "c", "a"]
    assert [x["id"] for x in inspect.select(groups, order="best")] == ["a", "c", "b"]
    assert [x["step"] for x in inspect.select(groups, record_id="a")] == [1, 2]
    assert [x["id"] for x in inspect.select(groups, step=1)] == ["a"]
    with pytest.raises(Exception, match="logged steps: 1, 2"):
        inspect.select(groups, step=5)


def test_inspect_reads_a_log_the_run_is_still_writing(tmp_path):
    """The line being written (no newline yet) is left out; a broken line before it is an error naming file:line."""
    group = {"step": 1, "phase": "fra", "id": "a\u2028b", "prompt": "p", "images": [], "completions": []}
    (tmp_path / "rollouts.jsonl").write_text(json.dumps(group, ensure_ascii=False) + "\n" + '{"step": 2, "id"')
    assert [g["id"] for g in inspect.read_samples(tmp_path)] == ["a\u2028b"]
    (tmp_path / "rollouts.jsonl").write_text('{oops\n' + json.dumps(group) + "\n")
    with pytest.raises(ValueError, match=r"rollouts.jsonl:1:2: <line>: not valid JSON"):
        inspect.read_samples(tmp_path)


# --- a real run on the tiny model -----------------------------------------------------------------------------------


def test_a_run_logs_samples_and_validates_before_during_and_after(tmp_path, train_data, tiny_model_dir):
    out = _train(tmp_path / "run", train_data, tiny_model_dir, steps=3, extra=["save_every=2", "val_limit=5"])

    groups = _lines(out / "rollouts.jsonl")
    assert [(g["step"], len(g["completions"])) for g in groups] == [(1, 4), (1, 4), (2, 4), (2, 4), (3, 4), (3, 4)]
    first = groups[0]
    assert first["phase"] == "mre" and first["prompt"].count("<image>") == len(first["images"]) == 1
    assert "<|image_pad|>" not in first["prompt"]
    for c in first["completions"]:
        assert set(c) == {"completion", "format", "accuracy", "overall", "extracted", "advantage"}
    # the advantages are the group's rewards normalised: they sum to zero
    assert abs(sum(c["advantage"] for c in first["completions"])) < 1e-4

    rows = _lines(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    validated = [r["step"] for r in rows if "val_accuracy" in r]
    assert validated == [0, 2, 3]  # before the first step, every val_every=2 steps, after the last
    assert all(r["val_n"] == 5 and 0 <= r["val_reward"] <= 1 for r in rows if "val_n" in r)
    for step in (0, 2, 3):
        val = _lines(out / "val" / f"step-{step:06d}.jsonl")
        assert len(val) == 5 and {"id", "completion", "gold", "correct", "overall"} <= set(val[0])

    shown = inspect.run(out, console=Console(record=True, width=160))
    assert [g["step"] for g in shown] == [3, 3]
    proc = run_cli("inspect", out, "--id", first["id"])
    assert f"id {first['id']}" in proc.stdout and "advantage" in proc.stdout


def test_a_resumed_run_keeps_its_samples_and_validation_without_duplicates(tmp_path, train_data, tiny_model_dir):
    out = _train(tmp_path / "run", train_data, tiny_model_dir, steps=3, extra=["save_every=2", "val_limit=3"])
    # as if killed after step 3 before its checkpoint landed: the resume restarts from step 2
    shutil.rmtree(out / "checkpoints" / "step-000003")
    shutil.rmtree(out / "final")
    _train(out, train_data, tiny_model_dir, steps=4, extra=["save_every=2", "val_limit=3"], resume=True)
    steps = [g["step"] for g in _lines(out / "rollouts.jsonl")]
    assert steps == [1, 1, 2, 2, 3, 3, 4, 4]
    rows = _lines(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["step"] for r in rows if "val_accuracy" in r] == [0, 2, 4]


def test_sampling_off_writes_no_samples(tmp_path, train_data, tiny_model_dir):
    out = _train(tmp_path / "run", train_data, tiny_model_dir, steps=1, extra=["log_rollouts_every=0"], val=False)
    assert not (out / "rollouts.jsonl").exists() or not (out / "rollouts.jsonl").read_text()
    assert [r["step"] for r in _lines(out / "metrics.jsonl")] == [1]


def test_a_validation_item_with_an_unreadable_image_costs_that_item(tmp_path, train_data, tiny_model_dir):
    val = tmp_path / "val"
    val.mkdir()
    (val / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    good = json.loads(train_data.read_text().splitlines()[-1])
    shutil.copy(train_data.parent / good["images"][0], val / good["images"][0])
    bad = {**good, "id": "broken", "images": ["broken.png"]}
    (val / "val.jsonl").write_text(json.dumps(bad) + "\n" + json.dumps(good) + "\n")
    out = run(sets=SMALL + ["val_every=1"], phase="mre", data=train_data, init=tiny_model_dir, out=tmp_path / "run",
              steps=1, reward=f"{train_data.parent / 'share_reward.py'}:share", val_data=val / "val.jsonl")
    lines = {x["id"]: x for x in _lines(out / "val" / "step-000001.jsonl")}
    assert "error" in lines["broken"] and lines["broken"]["completion"] == "" and not lines["broken"]["correct"]
    assert "error" not in lines[good["id"]]
    assert [r["val_n"] for r in _lines(out / "metrics.jsonl")] == [2, 2]


def test_a_validation_prompt_over_max_prompt_len_costs_that_item_as_in_eval(tmp_path, train_data, tiny_model_dir):
    """Validation builds its requests with eval's builder, so eval's length rule holds for it too."""
    val = tmp_path / "val"
    val.mkdir()
    short = json.loads(train_data.read_text().splitlines()[0])
    long = {**short, "id": "long", "question": "how many? " * 400}
    (val / "val.jsonl").write_text(json.dumps(long) + "\n" + json.dumps(short) + "\n")
    out = run(sets=SMALL + ["val_every=1", "max_prompt_len=512"], phase="fra", data=train_data, init=tiny_model_dir,
              out=tmp_path / "run", steps=1, reward=f"{train_data.parent / 'share_reward.py'}:share",
              val_data=val / "val.jsonl")
    lines = {x["id"]: x for x in _lines(out / "val" / "step-000000.jsonl")}
    assert "over --max-prompt-len 512" in lines["long"]["error"] and lines["long"]["completion"] == ""
    assert "error" not in lines[short["id"]]
