"""The one weights path (rollout/weights.py) behind the rollout push, checkpoints' final/ and export."""

import copy
from contextlib import contextmanager

import pytest
import torch
from safetensors.torch import load_file

from infimmr_cli.modeling import load_model
from infimmr_cli.rollout.weights import full_weights, hf_weight_name, save_hf_model, tied_names, with_tied_head


@pytest.mark.parametrize("name, expected", [
    ("model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.up_proj.weight"),
    ("base_model.model.model.layers.0.mlp.up_proj.base_layer.weight", "model.layers.0.mlp.up_proj.weight"),
    ("base_model.model.model.layers.0.mlp.up_proj.base_layer.bias", "model.layers.0.mlp.up_proj.bias"),
    ("base_model.model.model.layers.0.mlp.up_proj.lora_B.default.weight", None),
    ("base_model.model.model.embed_tokens.lora_embedding_A.default", None),
    ("base_model.model.lm_head.modules_to_save.default.weight", "lm_head.weight"),
    ("base_model.model.lm_head.original_module.weight", None),
])
def test_hf_weight_name_strips_peft_wrapping(name, expected):
    assert hf_weight_name(name) == expected


def test_a_plain_model_gives_its_state_dict_tied_head_included(tiny_model_dir):
    model, _ = load_model(tiny_model_dir, with_processor=False)
    got = dict(full_weights(model))
    state = model.state_dict()
    assert got.keys() == state.keys() and "lm_head.weight" in got
    assert "lm_head.weight" not in dict(model.named_parameters())  # what a push through named_parameters() misses
    assert all(torch.equal(got[n], state[n]) for n in state)
    assert tied_names(model) == {"lm_head.weight"}


def test_lora_is_merged_as_peft_merges_it_and_training_weights_stay_unmerged(tiny_model_dir):
    from peft import LoraConfig, get_peft_model

    base, _ = load_model(tiny_model_dir, with_processor=False)
    policy = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                                             modules_to_save=["norm"]))
    torch.manual_seed(0)
    for name, p in policy.named_parameters():
        if "lora_B" in name or "modules_to_save" in name:
            torch.nn.init.normal_(p)  # B starts at zero: make the adapter (and the saved norm) matter
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}

    got = dict(full_weights(policy))
    expected = copy.deepcopy(policy).merge_and_unload().state_dict()
    assert got.keys() == expected.keys() and not any("lora" in n for n in got)
    for n in expected:
        torch.testing.assert_close(got[n], expected[n], rtol=0, atol=1e-6, msg=n)
    q = next(n for n in got if n.endswith("layers.0.self_attn.q_proj.weight"))
    assert not torch.equal(got[q], before[f"base_model.model.{q[:-len('.weight')]}.base_layer.weight"])
    assert all(torch.equal(p, before[n]) for n, p in policy.named_parameters())  # nothing merged in place
    assert not any(getattr(m, "merged", False) for m in policy.modules())


def test_zero3_parameters_are_gathered_one_at_a_time_and_copied(monkeypatch):
    import deepspeed

    calls = []

    @contextmanager
    def fake_gather(params, modifier_rank=None):
        calls.append(len(params))
        yield

    monkeypatch.setattr(deepspeed.zero, "GatheredParameters", fake_gather)
    net = torch.nn.Linear(3, 2)
    for p in net.parameters():
        p.ds_id = 1  # what ZeRO-3 tags partitioned parameters with
    got = list(full_weights(net))
    assert calls == [1, 1] and [n for n, _ in got] == ["weight", "bias"]
    assert got[0][1].data_ptr() != net.weight.data_ptr()  # a copy: the gathered storage is released afterwards


def test_saved_directory_reloads_to_the_merged_weights(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    base, processor = load_model(tiny_model_dir)
    policy = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"]))
    for name, p in policy.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p)
    expected = dict(full_weights(policy))
    save_hf_model(policy, processor, tmp_path / "out")
    assert "lm_head.weight" not in load_file(tmp_path / "out" / "model.safetensors")  # tied: left to the config
    reloaded, _ = load_model(tmp_path / "out", with_processor=False)
    got = reloaded.state_dict()
    assert got.keys() == expected.keys() and all(torch.equal(got[n], expected[n]) for n in got)


def test_a_push_without_the_tied_head_gets_it_from_the_embedding():
    embed, other = torch.ones(3, 2), torch.zeros(1)
    pushed = dict(with_tied_head([("model.language_model.embed_tokens.weight", embed), ("x", other)], tied=True))
    assert pushed["lm_head.weight"] is embed
    assert "lm_head.weight" not in dict(with_tied_head([("model.language_model.embed_tokens.weight", embed)], False))
    head = torch.full((3, 2), 2.0)
    given = list(with_tied_head([("model.language_model.embed_tokens.weight", embed), ("lm_head.weight", head)], True))
    assert [n for n, _ in given].count("lm_head.weight") == 1 and dict(given)["lm_head.weight"] is head
