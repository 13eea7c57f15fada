import json
import shutil

import pytest
import torch
from safetensors import safe_open

from infimmr_cli.commands.export import lineage, resolve_checkpoint, run
from infimmr_cli.errors import UsageError
from infimmr_cli.modeling import load_model
from conftest import run_cli


def fake_run(root, tiny, phase, init, steps=(2, 4), final=True):
    """A train-phase run directory laid out as train-phase writes it."""
    root.mkdir(parents=True)
    (root / "run_config.json").write_text(json.dumps({"config": {"phase": phase, "init": str(init), "lr": 1e-6},
                                                      "inputs": {}, "versions": {}}))
    for s in steps:
        shutil.copytree(tiny, root / "checkpoints" / f"step-{s:06d}")
    if final:
        shutil.copytree(tiny, root / "final")
    return root


def test_run_directory_resolves_to_final_else_newest_step(tiny_model_dir, tmp_path):
    run_dir = fake_run(tmp_path / "fra", tiny_model_dir, "fra", tiny_model_dir)
    assert resolve_checkpoint(run_dir) == run_dir / "final"
    shutil.rmtree(run_dir / "final")
    assert resolve_checkpoint(run_dir).name == "step-000004"


def test_half_written_checkpoints_are_refused(tiny_model_dir, tmp_path):
    tmp = tmp_path / ".step-000006.tmp"
    shutil.copytree(tiny_model_dir, tmp)
    with pytest.raises(UsageError, match="half-written"):
        resolve_checkpoint(tmp)
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(tiny_model_dir / "config.json", bare)
    with pytest.raises(UsageError, match="without safetensors"):
        resolve_checkpoint(bare)


def test_lineage_follows_init_through_the_phases(tiny_model_dir, tmp_path):
    fra = fake_run(tmp_path / "fra", tiny_model_dir, "fra", tiny_model_dir)
    cmra = fake_run(tmp_path / "cmra", tiny_model_dir, "cmra", fra / "final")
    mre = fake_run(tmp_path / "mre", tiny_model_dir, "mre", cmra / "final")
    lin = lineage(resolve_checkpoint(mre))
    assert [p["phase"] for p in lin["phases"]] == ["fra", "cmra", "mre"]
    assert lin["base"] == str(tiny_model_dir)


def test_export_writes_bf16_safetensors_processor_and_lineage_and_reloads(tiny_model_dir, tmp_path):
    fra = fake_run(tmp_path / "fra", tiny_model_dir, "fra", tiny_model_dir)
    out = run(fra, tmp_path / "hf", dtype="bf16")
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "lineage.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".tmp")) for n in names)
    with safe_open(out / "model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in list(f.keys())[:5]} == {torch.bfloat16}
    assert json.loads((out / "lineage.json").read_text())["phases"][0]["phase"] == "fra"
    original, _ = load_model(tiny_model_dir, dtype="fp32")
    exported, _ = load_model(out, dtype="fp32")
    a, b = dict(original.named_parameters()), dict(exported.named_parameters())
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-2, rtol=1e-2) for k in a)
    with pytest.raises(UsageError, match="already exists"):
        run(fra, out)


def test_lora_adapter_is_merged_into_the_base(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    base, _ = load_model(tiny_model_dir, dtype="fp32")
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    merged = peft_model.merge_and_unload()
    expected = {k: v.clone() for k, v in merged.state_dict().items()}
    out = run(tmp_path / "adapter", tmp_path / "hf", dtype="fp32")
    exported, _ = load_model(out, dtype="fp32")
    got = exported.state_dict()
    q = next(k for k in expected if k.endswith("q_proj.weight"))
    assert torch.allclose(got[q], expected[q], atol=1e-6)
    original, _ = load_model(tiny_model_dir, dtype="fp32")
    assert not torch.allclose(original.state_dict()[q], got[q])


def test_cli_export_and_its_one_line_error(tiny_model_dir, tmp_path):
    fra = fake_run(tmp_path / "fra", tiny_model_dir, "fra", tiny_model_dir, steps=(1,), final=False)
    proc = run_cli("export", "--ckpt", fra, "--out", tmp_path / "hf", "--dtype", "fp32")
    assert "reload + generate with an image" in proc.stdout
    proc = run_cli("export", "--ckpt", tmp_path / "nope", "--out", tmp_path / "x", check=False)
    assert proc.returncode == 2 and "not found" in proc.stderr and "Traceback" not in proc.stderr
