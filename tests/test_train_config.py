from pathlib import Path

import pytest

from infimmr_cli.errors import UsageError
from infimmr_cli.training.config import check_config, load_config, parse_sets

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.mark.parametrize("phase", ["fra", "cmra", "mre"])
def test_phase_configs_hold_the_paper_defaults(phase):
    cfg = load_config(RECIPES / "phases" / f"{phase}.json")
    assert cfg.phase == phase
    assert (cfg.lr, cfg.prompts_per_step, cfg.group_size, cfg.update_batch, cfg.clip_eps, cfg.temperature) == \
        (1e-6, 256, 16, 256, 0.2, 1.0)
    assert Path(cfg.deepspeed) == (RECIPES / "ds_zero2.json").resolve()  # relative to the config file


def test_set_overrides_parse_json_values_into_the_key_type():
    cfg = load_config(RECIPES / "phases" / "fra.json",
                      parse_sets(["lr=1e-5", "beta=0", "gradient_checkpointing=true", "clip_eps_high=0.28",
                                  "lora_targets=q_proj,v_proj", "deepspeed="]))
    assert cfg.lr == 1e-5 and cfg.beta == 0.0 and cfg.gradient_checkpointing is True
    assert cfg.clip_eps_high == 0.28 and cfg.lora_targets == ["q_proj", "v_proj"] and cfg.deepspeed == ""


def test_unknown_key_and_bad_value_are_named():
    with pytest.raises(UsageError, match="--set: learning_rate: unknown setting"):
        load_config(None, {"learning_rate": "1"})
    with pytest.raises(UsageError, match="--set: group_size: 'many' is not a valid int"):
        load_config(None, {"group_size": "many"})
    with pytest.raises(UsageError, match="is not key=value"):
        parse_sets(["lr"])


def test_batch_sizes_that_do_not_divide_are_refused():
    with pytest.raises(UsageError, match="update_batch: 3 does not divide prompts_per_step 8"):
        load_config(None, {"prompts_per_step": 8, "update_batch": 3})
    cfg = load_config(None, {"prompts_per_step": 8, "update_batch": 4, "group_size": 4, "micro_batch": 4})
    with pytest.raises(UsageError, match="update_batch: 4 prompts do not split over 3 processes"):
        check_config(cfg, world_size=3)
    with pytest.raises(UsageError, match="micro_batch: 5 does not divide the 16 sequences"):
        load_config(None, {"prompts_per_step": 8, "update_batch": 4, "group_size": 4, "micro_batch": 5})


def test_set_values_are_parsed_once_by_the_field_type(tmp_path):
    cfg = load_config(None, parse_sets(['deepspeed=""', "clip_eps_high=none", "reward_workers=3", 'out="a b"',
                                        "adam_betas=[0.9, 0.95]", 'vllm={"enforce_eager": true}']))
    assert cfg.deepspeed == "" and cfg.clip_eps_high is None and cfg.reward_workers == 3 and cfg.out == "a b"
    assert cfg.adam_betas == [0.9, 0.95] and cfg.vllm == {"enforce_eager": True}
    assert load_config(None, parse_sets(["deepspeed=x.json"])).deepspeed == "x.json"
    for bad, kind in (("steps=1.5", "int"), ("gradient_checkpointing=yes", "bool"), ("vllm=[1]", "dict")):
        with pytest.raises(UsageError, match=f"--set: {bad.split('=')[0]}: .* is not a valid {kind}"):
            load_config(None, parse_sets([bad]))
    # a JSON config holds typed values: a wrong type is named with the file
    (tmp_path / "c.json").write_text('{"lr": "fast", "steps": 3}')
    with pytest.raises(UsageError, match=r"c.json: lr: 'fast' is not a valid float"):
        load_config(tmp_path / "c.json")
    (tmp_path / "c.json").write_text('{"log_every": 1}')
    with pytest.raises(UsageError, match="log_every: unknown setting"):
        load_config(tmp_path / "c.json")
