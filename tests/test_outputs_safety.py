"""No command destroys its input, two runs never write one output, and outputs respect the umask.

Every case runs the real CLI in a real process on real files (links included) and checks the input is byte-identical.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys

import pytest

import exports
from conftest import cli_env, run_cli

REC = {"source": "s", "answer": "1", "answer_type": "math"}


def _records(path, ids, prefix="What is"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": i, "question": f"{prefix} {i} plus {i} times twelve?", **REC}) + "\n"
                            for i in ids))
    return path


@pytest.fixture
def files(tmp_path):
    train = _records(tmp_path / "train.jsonl", ["a", "b", "c"])
    bench = _records(tmp_path / "bench.jsonl", ["x"], prefix="Bench")
    comps = tmp_path / "comps.jsonl"
    comps.write_text(json.dumps({"id": "a", "completion": "<think>.</think>\\boxed{1}"}) + "\n")
    return train, bench, comps


def _refused(proc, *needles):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 3, proc.stderr
    for n in needles:
        assert n in proc.stderr, proc.stderr


def _decontam(train, bench, out, removed):
    return run_cli("decontam", "--train", train, "--bench", bench, "--out", out, "--removed", removed,
                   "--no-embedding", check=False)


def test_decontam_never_replaces_train_or_bench(tmp_path, files):
    train, bench, _ = files
    before = (train.read_bytes(), bench.read_bytes())
    _refused(_decontam(train, bench, train, tmp_path / "r.jsonl"), "--out", "same file as --train")
    _refused(_decontam(train, bench, tmp_path / "k.jsonl", bench), "--removed", "same file as --bench")
    link = tmp_path / "link.jsonl"
    link.symlink_to(train)  # a symbolic link to the input
    _refused(_decontam(train, bench, link, tmp_path / "r.jsonl"), "same file as --train")
    hard = tmp_path / "hard.jsonl"
    os.link(train, hard)  # a hard link: another name, one inode
    _refused(_decontam(train, bench, hard, tmp_path / "r.jsonl"), "same file as --train")
    _refused(_decontam(train, bench, tmp_path / "k.jsonl", tmp_path / "k.jsonl"), "--removed", "same file as --out")
    assert (train.read_bytes(), bench.read_bytes()) == before
    assert not (tmp_path / "k.jsonl").exists() and not (tmp_path / "r.jsonl").exists()
    run_cli("decontam", "--train", train, "--bench", bench, "--out", tmp_path / "k.jsonl", "--removed",
            tmp_path / "r.jsonl", "--no-embedding")  # distinct paths still work


def test_prepare_score_and_classify_never_replace_their_input(tmp_path, files, tiny_model_dir):
    train, _, comps = files
    src = exports.make_deepscaler_export(tmp_path / "raw")
    before = src.read_bytes()
    _refused(run_cli("prepare", "--from", "deepscaler", "--in", src, "--out", src, check=False),
             "same file as --in")
    assert src.read_bytes() == before
    before = train.read_bytes()
    _refused(run_cli("score", "--records", train, "--completions", comps, "--out", train, "--workers", "0",
                     check=False), "same file as --records")
    # a side file counts too: --out X writes X.provenance.json
    side = tmp_path / "s.jsonl.provenance.json"
    side.write_bytes(comps.read_bytes())
    _refused(run_cli("score", "--records", train, "--completions", side, "--out", tmp_path / "s.jsonl",
                     "--workers", "0", check=False), "writes s.jsonl.provenance.json")
    partial = tmp_path / "typed.jsonl.partial"
    partial.write_bytes(before)
    _refused(run_cli("classify", "--in", partial, "--out", tmp_path / "typed.jsonl", "--model", tiny_model_dir,
                     check=False), "writes typed.jsonl.partial")
    assert train.read_bytes() == before and partial.read_bytes() == before


def test_export_overwrite_never_deletes_the_checkpoint(tmp_path, tiny_model_dir):
    import shutil

    ckpt = tmp_path / "runs" / "fra" / "final"
    shutil.copytree(tiny_model_dir, ckpt)
    _refused(run_cli("export", "--ckpt", ckpt, "--out", tmp_path / "runs", "--overwrite", check=False),
             "--out", "holds --ckpt")
    assert (ckpt / "config.json").is_file()


def test_train_phase_refuses_an_init_inside_its_out(tmp_path, tiny_model_dir, train_data):
    import shutil

    run_dir = tmp_path / "fra"
    shutil.copytree(tiny_model_dir, run_dir / "final")
    proc = run_cli("train-phase", "--phase", "fra", "--data", train_data, "--init", run_dir / "final", "--out",
                   run_dir, "--steps", "1", "--set", "deepspeed=", "--set", "prompts_per_step=4", "--set",
                   "group_size=2", "--set", "update_batch=2", "--set", "micro_batch=4", check=False)
    _refused(proc, "--out", "holds --init")


HOLDER = """
import sys, time
from infimmr_cli.files import output_lock
with output_lock(sys.argv[1], "caption"):
    print("holding", flush=True)
    time.sleep(600)
"""


def test_a_second_run_on_one_output_says_who_holds_it_and_a_killed_holder_frees_it(tmp_path, files):
    train, _, comps = files
    out = tmp_path / "scores.jsonl"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], env=cli_env(), stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        proc = run_cli("score", "--records", train, "--completions", comps, "--out", out, "--workers", "0",
                       check=False)
        _refused(proc, f"{out}: another run is writing it (pid {holder.pid} on ", "`infimmr caption`, since 20")
        assert not out.exists()
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: no cleanup runs, the OS drops the flock
        holder.wait()
    assert (tmp_path / "scores.jsonl.lock").exists()  # left behind by the killed holder, but no longer locked
    run_cli("score", "--records", train, "--completions", comps, "--out", out, "--workers", "0")
    assert out.is_file() and not (tmp_path / "scores.jsonl.lock").exists()  # a clean exit removes it


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_outputs_follow_the_umask(mask, tmp_path, tiny_model_dir):
    src = exports.make_deepscaler_export(tmp_path / "raw")
    out, hf = tmp_path / "d" / "records.jsonl", tmp_path / "hf"

    def under_umask(*args):
        cmd = f"umask {mask:03o} && exec {sys.executable} -m infimmr_cli " + " ".join(f"'{a}'" for a in args)
        subprocess.run(["bash", "-c", cmd], env=cli_env(), check=True, capture_output=True)

    under_umask("prepare", "--from", "deepscaler", "--in", src, "--out", out)
    assert _mode(out) == _mode(out.with_name("records.jsonl.provenance.json")) == 0o666 & ~mask
    if mask == 0o022:
        under_umask("export", "--ckpt", tiny_model_dir, "--out", hf, "--dtype", "fp32")
        assert _mode(hf) == 0o755
        assert {_mode(p) for p in hf.iterdir()} == {0o644}


def test_eval_never_writes_over_its_records(tmp_path):
    out = tmp_path / "eval"
    records = out / "math500" / "predictions.jsonl"  # records placed where eval writes its predictions
    run_cli("prepare", "--from", "math500", "--in", exports.make_math500_export(tmp_path / "raw"), "--out", records)
    before = records.read_bytes()
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"id": "test/prealgebra/1.json", "completion": "x"}) + "\n")
    proc = run_cli("eval", "--bench", "math500", "--records", records, "--predictions", preds, "--out", out,
                   check=False)
    _refused(proc, "same file as --records")
    assert records.read_bytes() == before
