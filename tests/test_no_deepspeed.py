"""Commands that never use DeepSpeed do not import it, so they do not print its "Setting accelerator to CPU" line;
train-phase imports it exactly when its config asks for it. Real CLI processes; PYTHONPROFILEIMPORTTIME (the
environment form of `python -X importtime`) lists every module a process imported, so the check holds on a GPU
machine too, where DeepSpeed would log nothing."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from conftest import run_cli

REPO = Path(__file__).resolve().parents[1]
LINE = "Setting accelerator to CPU"


def _imported_deepspeed(proc) -> bool:
    return re.search(r"\|\s+deepspeed$", proc.stderr, re.M) is not None


def _quiet(proc) -> None:
    assert LINE not in proc.stdout + proc.stderr
    assert not _imported_deepspeed(proc)


def test_tiny_model_and_export_neither_import_deepspeed_nor_log_it(tmp_path):
    model = tmp_path / "tiny"
    _quiet(run_cli("tiny-model", model, PYTHONPROFILEIMPORTTIME="1"))  # save_pretrained -> accelerate's unwrap
    proc = run_cli("export", "--ckpt", model, "--out", tmp_path / "hf", PYTHONPROFILEIMPORTTIME="1")
    _quiet(proc)
    assert (tmp_path / "hf" / "config.json").is_file()


def test_train_phase_imports_deepspeed_only_when_its_config_uses_it(tmp_path, train_data, tiny_model_dir):
    common = ("train-phase", "--config", REPO / "recipes" / "phases" / "fra.json", "--data", train_data, "--init",
              tiny_model_dir, "--set", "prompts_per_step=2", "--set", "group_size=2", "--set", "update_batch=2",
              "--set", "micro_batch=4", "--set", "max_response_len=4", "--set", "reward_workers=1")
    plain = run_cli(*common, "--out", tmp_path / "plain", "--steps", "1", "--set", "deepspeed=", "--set",
                    "val_every=0", PYTHONPROFILEIMPORTTIME="1")
    _quiet(plain)
    assert (tmp_path / "plain" / "final" / "config.json").is_file()
    # With DeepSpeed in the config (fra.json names ds_zero2.json), the dry run's ZeRO estimate comes from DeepSpeed.
    proc = run_cli(*common, "--out", tmp_path / "ds", "--gpus", "2", "--dry-run", PYTHONPROFILEIMPORTTIME="1",
                   COLUMNS="200")
    assert _imported_deepspeed(proc) and "ZeRO-2 estimate" in proc.stdout


def test_a_python_caller_keeps_deepspeed():
    """Only the `infimmr` entry point's own process hides it: in-process callers (this test suite) may use it later."""
    from infimmr_cli import no_deepspeed

    no_deepspeed.not_needed()  # what train-phase calls on a plain-torch config
    assert sys.modules.get("deepspeed", "absent") is not None
