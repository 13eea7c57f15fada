"""A bad item costs that item, never the run (issue 12): bombs, corrupt images, huge prompts, bad text, in every stage.

Each test writes real hostile files (a PNG whose header claims 30000x30000, a PNG cut in half, bytes that are no image)
and runs the stage on them beside good records: the good records come out as usual, the bad ones are reported in the
record, in `<out>.warnings.jsonl` and on screen, and the run exits normally.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rich.console import Console

import badfiles
from infimmr_cli.data.images import ImageError, image_size, load_image
from infimmr_cli.data.item_errors import warnings_path


def _warnings(out: Path) -> dict[str, str]:
    return {w["id"]: w["error"] for w in map(json.loads, warnings_path(out).read_text().splitlines())}


def _spoil(folder: Path, rid: str, how) -> None:
    """Replace the first image of record `rid` (written by make_records) with a hostile file."""
    how(folder / "img" / f"{rid}_0.png")


# ---- the one image-loading edge ---------------------------------------------------------------------------------
def test_bombs_and_broken_files_raise_one_error_type_before_decoding(tmp_path, monkeypatch):
    bomb = badfiles.bomb_png(tmp_path / "bomb.png")                       # over Pillow's own limit
    big = badfiles.bomb_png(tmp_path / "big.png", 8000, 8000)             # under Pillow's, over ours (50 M)
    truncated = badfiles.truncated_png(tmp_path / "cut.png")
    garbage = badfiles.garbage_image(tmp_path / "junk.png")
    for path, words in ((bomb, "too large"), (big, "over the limit of 50,000,000"), (truncated, "truncated"),
                        (garbage, "cannot read image"), (tmp_path / "none.png", "not found")):
        with pytest.raises(ImageError, match=words) as info:
            load_image(path)
        assert str(path) in str(info.value)
    assert image_size(truncated) == (64, 48)  # the header alone is fine: only decoding finds the cut
    monkeypatch.setenv("INFIMMR_MAX_IMAGE_PIXELS", "100000000")
    assert image_size(big) == (8000, 8000)
    monkeypatch.setenv("INFIMMR_MAX_IMAGE_PIXELS", "2000")
    with pytest.raises(ImageError, match="3,072 pixels, over the limit of 2,000"):
        image_size(truncated)


# ---- classify and caption --------------------------------------------------------------------------------------
@pytest.mark.parametrize("stage", ["classify", "caption"])
def test_classify_and_caption_report_bad_images_and_finish(stage, tmp_path):
    from test_classify_caption import ScriptedEngine, factory, make_records

    from infimmr_cli.commands import caption, classify
    from infimmr_cli.data.records import read_records

    types_ = {"image_type": "chart"}
    src = make_records(tmp_path, [("good", [1]), ("bomb", [2]), ("cut", [3]), ("junk", [4, 5]), ("t", [])],
                       **{k: types_ for k in ("good", "bomb", "cut", "junk")})
    _spoil(tmp_path, "bomb", badfiles.bomb_png)
    _spoil(tmp_path, "cut", badfiles.truncated_png)
    _spoil(tmp_path, "junk", badfiles.garbage_image)
    engine = ScriptedEngine(lambda tag, req: "chart")
    console = Console(record=True, width=200)
    module = classify if stage == "classify" else caption
    out = module.run(src, tmp_path / "out.jsonl", engine_factory=factory(engine), batch_size=2, console=console)
    recs = {r.id: r for r in read_records(out)}
    assert list(recs) == ["good", "bomb", "cut", "junk", "t"]
    key = f"{stage}_error"
    assert key not in recs["good"].meta and key not in recs["t"].meta
    assert "too large" in recs["bomb"].meta[key] and "truncated" in recs["cut"].meta[key]
    assert "cannot read image" in recs["junk"].meta[key]
    assert len(engine.requests) == 1  # only the good image reached the model
    assert set(_warnings(out)) == {"bomb", "cut", "junk"}
    text = console.export_text()
    assert "3 records could not be processed" in text and str(warnings_path(out)) in text.replace("\n", "")


# ---- eval ---------------------------------------------------------------------------------------------------------
def _bench_records(folder: Path, huge_question: bool = True) -> Path:
    """MathVista-sourced records: two good images, a bomb, a truncated image, and (optionally) a 1 MB question."""
    from PIL import Image

    (folder / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for rid in ("good1", "bomb", "cut", "good2"):
        Image.new("RGB", (56, 56), (10, 200, 30)).save(folder / "img" / f"{rid}.png")
        rows.append({"id": rid, "source": "mathvista/testmini", "question": f"What is shown in {rid}?", "answer": "1",
                     "answer_type": "math", "images": [f"img/{rid}.png"]})
    badfiles.bomb_png(folder / "img" / "bomb.png")
    badfiles.truncated_png(folder / "img" / "cut.png")
    if huge_question:
        rows.append({"id": "huge", "source": "mathvista/testmini", "question": "Is 1 + 1 = 2? " * 80_000,
                     "answer": "1", "answer_type": "math"})
    path = folder / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_eval_scores_bad_images_and_huge_prompts_zero_and_goes_on(tmp_path, tiny_model_dir):
    from conftest import run_cli

    recs = _bench_records(tmp_path / "data")
    assert recs.stat().st_size > 1_000_000
    out = tmp_path / "eval"
    proc = run_cli("eval", "--bench", "mathvista", "--records", recs, "--model", tiny_model_dir, "--out", out,
                   "--engine", "hf", "--max-new-tokens", "4", "--batch-size", "8", "--max-prompt-len", "4096",
                   COLUMNS="250")
    preds = {p["id"]: p for p in map(json.loads, (out / "mathvista" / "predictions.jsonl").read_text().splitlines())}
    assert list(preds) == ["good1", "bomb", "cut", "good2", "huge"]
    for rid in ("bomb", "cut", "huge"):
        assert preds[rid]["completion"] == "" and preds[rid]["accuracy"] == 0.0 and not preds[rid]["correct"]
        assert preds[rid]["finish_reason"] == "skipped"
    assert "too large" in preds["bomb"]["error"] and "truncated" in preds["cut"]["error"]
    assert "over --max-prompt-len 4096" in preds["huge"]["error"]
    assert "error" not in preds["good1"] and preds["good1"]["completion_tokens"] > 0
    warned = _warnings(out / "mathvista" / "predictions.jsonl")
    assert set(warned) == {"bomb", "cut", "huge"}
    entry = json.loads((out / "results.json").read_text())["benchmarks"]["mathvista"]
    assert entry["accuracy"]["n"] == 5 and entry["not_generated"]["count"] == 3
    assert "3 items not generated" in proc.stdout


# ---- decontam -----------------------------------------------------------------------------------------------------
def test_decontam_keeps_going_past_unreadable_images(tmp_path, tiny_model_dir):
    from conftest import run_cli
    from test_decontam import png, read_jsonl, rec, write_jsonl

    png(tmp_path / "bench/img/geo.png", (255, 0, 0))
    badfiles.garbage_image(tmp_path / "bench/img/junk.png")
    png(tmp_path / "train/img/geo_copy.png", (255, 0, 0))
    badfiles.bomb_png(tmp_path / "train/img/bomb.png")
    badfiles.truncated_png(tmp_path / "train/img/cut.png")
    bench = write_jsonl(tmp_path / "bench/b.jsonl", [rec("b-1", "Find angle ABC.", "mathverse", ["img/geo.png"]),
                                                     rec("b-junk", "Find angle XYZ.", "mathverse", ["img/junk.png"])])
    train = write_jsonl(tmp_path / "train/t.jsonl", [
        rec("t-bomb", "A question with a bomb.", images=["img/bomb.png"]),
        rec("t-embed", "Find angle ABC.", images=["img/geo_copy.png"]),
        rec("t-cut", "A question with a cut image.", images=["img/cut.png"]),
        rec("t-text", "Only words here."),
    ])
    out = tmp_path / "out/clean.jsonl"
    proc = run_cli("decontam", "--train", train, "--bench", bench, "--out", out, "--removed",
                   tmp_path / "out/removed.jsonl", "--embed-model", tiny_model_dir, "--batch-size", "4",
                   COLUMNS="250")
    removed = {r["id"] for r in read_jsonl(tmp_path / "out/removed.jsonl")}
    assert removed == {"t-embed"}  # the leak beside the unreadable images is still caught
    kept = {r["id"]: r for r in read_jsonl(out)}
    assert list(kept) == ["t-bomb", "t-cut", "t-text"]
    assert "too large" in kept["t-bomb"]["meta"]["decontam_error"]
    assert "truncated" in kept["t-cut"]["meta"]["decontam_error"]
    assert "decontam_error" not in kept["t-text"]["meta"]
    assert set(_warnings(out)) == {"b-junk", "t-bomb", "t-cut"}
    assert "3 items have an image that cannot be read" in proc.stdout


# ---- train-phase --------------------------------------------------------------------------------------------------
def test_train_phase_skips_bad_images_counts_them_and_finishes(tmp_path, tiny_model_dir):
    from conftest import write_train_data
    from test_train_phase import SMALL

    from infimmr_cli.commands.train_phase import run

    data = write_train_data(tmp_path / "data", n_text=2, n_image=6)
    badfiles.bomb_png(data.parent / "im1.png")        # found from the header when the data is read
    badfiles.truncated_png(data.parent / "im3.png")   # the header reads; decoding fails at rollout time
    out = tmp_path / "run"
    run(sets=SMALL, phase="mre", data=data, init=tiny_model_dir, out=out, steps=2,
        reward=f"{data.parent / 'share_reward.py'}:share")
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert sum(r["items_skipped"] for r in rows) >= 1  # v3 was drawn and swapped for another prompt
    warned = _warnings(out)
    assert set(warned) == {"v1", "v3"}
    assert "too large" in warned["v1"] and "truncated" in warned["v3"]
    assert (out / "final" / "config.json").is_file()
    counts = json.loads((out / "run_config.json").read_text())["prompts"]
    assert counts == {"records": 8, "in_view": 6, "too_long": 0, "unreadable_image": 1, "usable": 5}


def test_a_prompt_with_an_undecodable_image_is_swapped_for_the_next_readable_one(tmp_path, tiny_model_dir):
    from conftest import write_train_data

    from infimmr_cli.modeling import load_processor
    from infimmr_cli.training.data import load_prompts
    from infimmr_cli.training.rollouts import load_images

    data = write_train_data(tmp_path / "data", n_text=0, n_image=4)
    badfiles.truncated_png(data.parent / "im1.png")
    processor = load_processor(tiny_model_dir)
    prompts = load_prompts(str(data), "mre", processor, 10_000)
    pool = prompts.items
    assert [i.record.id for i in pool] == ["v0", "v1", "v2", "v3"] and not prompts.bad
    known: dict[str, str] = {}
    items, images, replaced, new_bad = load_images([pool[1], pool[3]], processor, pool, known)
    assert [i.record.id for i in items] == ["v2", "v3"] and replaced == 1
    assert [x for x, _ in new_bad] == ["v1"] and "v1" in known and len(images) == 2
    # Every other prompt already in the batch: a duplicate beats a lost sequence.
    items, _, replaced, new_bad = load_images([pool[0], pool[1], pool[2], pool[3]], processor, pool, known)
    assert [i.record.id for i in items] == ["v0", "v2", "v2", "v3"] and replaced == 1 and new_bad == []


# ---- text no writer can write, bytes that are not UTF-8 --------------------------------------------------------------
GOOD = {"id": "a", "source": "s", "question": "What is 1 + 1?", "answer": "2", "answer_type": "math"}


def _jsonl_bytes(*lines: bytes) -> bytes:
    return b"".join(line + b"\n" for line in lines)


@pytest.mark.parametrize("field_, raw", [("question", b'"Is \\ud800 odd?"'), ("meta.note", None),
                                         ("choices[1]", None)])
def test_lone_surrogates_are_refused_on_read_naming_file_line_and_field(tmp_path, field_, raw):
    from infimmr_cli.data.records import RecordError, read_records

    bad = dict(GOOD, id="b")
    if field_ == "meta.note":
        bad["meta"] = {"note": "\udfff"}
    elif field_ == "choices[1]":
        bad.update(answer_type="choice", answer="A", choices=["x", "y\ud83d"])
    line = json.dumps(bad).encode()
    if raw is not None:
        line = line.replace(b'"What is 1 + 1?"', raw)
    path = tmp_path / "in.jsonl"
    path.write_bytes(_jsonl_bytes(json.dumps(GOOD).encode(), line))
    with pytest.raises(RecordError, match=rf"in.jsonl:2: {re.escape(field_)}: holds a lone UTF-16 surrogate"):
        read_records(path, check_images=False)
    # A proper pair (an emoji written as two escapes) is text, and goes through.
    path.write_bytes(_jsonl_bytes(json.dumps(dict(GOOD, question="Smile \ud83d\ude00?")).encode()))
    assert read_records(path, check_images=False)[0].question == "Smile \U0001F600?"


def test_non_utf8_bytes_are_one_line_naming_file_and_line(tmp_path):
    from conftest import run_cli

    recs = tmp_path / "in.jsonl"
    recs.write_bytes(_jsonl_bytes(json.dumps(GOOD).encode(), b'{"id": "b", "question": "caf\xe9"}'))
    proc = run_cli("score", "--records", recs, "--completions", recs, "--out", tmp_path / "s.jsonl", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "in.jsonl:2:29: <line>: not UTF-8 text (byte 0xe9)" in proc.stderr
    # a whole-file JSON input (a DeepScaleR export) names the line too
    export = tmp_path / "deepscaler.json"
    export.write_bytes(b'[\n{"problem": "1+1", "answer": "2"},\n{"problem": "\xff", "answer": "3"}\n]\n')
    proc = run_cli("prepare", "--from", "deepscaler", "--in", export, "--out", tmp_path / "p.jsonl", check=False)
    assert proc.returncode == 2 and "deepscaler.json:3:14: <line>: not UTF-8 text (byte 0xff)" in proc.stderr
    # a predictions file (completions made elsewhere) too
    from infimmr_cli.commands.eval import read_predictions
    from infimmr_cli.data.records import RecordError

    preds = tmp_path / "preds.jsonl"
    preds.write_bytes(_jsonl_bytes(b'{"id": "1", "completion": "\xc3("}'))
    with pytest.raises(RecordError, match=r"preds.jsonl:1:28: <line>: not UTF-8 text \(byte 0xc3\)"):
        read_predictions(preds)


# ---- a full, limited or read-only disk -------------------------------------------------------------------------------
def _shell(script: str, tmp: Path, **env: str):
    """Run `script` in bash with this checkout's CLI as $INFIMMR, no traceback allowed to hide in a pass."""
    import subprocess
    import sys

    from conftest import cli_env

    return subprocess.run(["bash", "-c", script], cwd=tmp, capture_output=True, text=True, timeout=600,
                          env=cli_env(INFIMMR=f"{sys.executable} -m infimmr_cli", PYTHONDONTWRITEBYTECODE="1", **env))


def _one_line_error(proc, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("error:") == 1, proc.stderr
    for w in words:
        assert w in proc.stderr.replace("\n", ""), proc.stderr


def _big_deepscaler(path: Path, n: int = 400) -> Path:
    rows = [{"problem": f"Problem {i}: " + "how many apples are left? " * 10, "answer": str(i), "solution": "..."}
            for i in range(n)]
    path.write_text(json.dumps(rows))
    return path


def test_a_file_size_limit_is_one_line_and_leaves_no_output(tmp_path):
    export = _big_deepscaler(tmp_path / "deepscaler.json")  # ~120 KB of records to write
    proc = _shell(f"ulimit -f 64; $INFIMMR prepare --from deepscaler --in {export} --out {tmp_path}/out/p.jsonl",
                  tmp_path)
    _one_line_error(proc, f"{tmp_path}/out/p.jsonl: file too large")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []  # no records, no temp file


def test_prepare_removes_the_images_of_an_output_it_did_not_finish(tmp_path):
    import io

    import numpy as np
    import pyarrow.parquet as pq
    from PIL import Image

    import exports

    path = exports.make_mathvista_export(tmp_path / "vista")
    table = pq.read_table(path).to_pylist()
    buf = io.BytesIO()  # the last row's image: 300 KB of noise, over a 64 KB file size limit
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (320, 320, 3), dtype=np.uint8)).save(buf, "PNG")
    table[-1]["decoded_image"] = {"bytes": buf.getvalue(), "path": "big.png"}
    exports._write(table, exports.MATHVISTA_SCHEMA, path)
    out = tmp_path / "out"
    (out / "images" / "keep").mkdir(parents=True)
    (out / "images" / "keep" / "mine.png").write_bytes(b"the user's own file")
    proc = _shell(f"ulimit -f 64; $INFIMMR prepare --from mathvista --in {tmp_path / 'vista'} --out {out}/r.jsonl",
                  tmp_path)
    _one_line_error(proc, "images/mathvista/", "file too large")
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert left == ["images", "images/keep", "images/keep/mine.png"]  # the three small images written first are gone


def _in_a_tiny_tmpfs(script: str, tmp: Path, size: str = "64k", read_only: bool = False, prep: str = "true"):
    """Run `script` with $DISK a fresh tmpfs of `size` (remounted read-only after `prep` runs), in a private mount
    namespace: nothing outlives the test. Skips where the kernel does not allow it."""
    import shutil

    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1)")
    disk = tmp / "disk"
    disk.mkdir(parents=True)
    ro = f"mount -o remount,ro {disk}" if read_only else "true"
    probe = _shell(f"unshare -rm sh -c 'mount -t tmpfs -o size={size} tmpfs {disk}'", tmp)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.strip()}")
    return _shell(f"unshare -rm bash -c 'mount -t tmpfs -o size={size} tmpfs {disk} && eval \"$PREP\" && {ro} && "
                  f"{script}'", tmp, DISK=str(disk), PREP=prep)


def test_a_full_disk_is_one_line_naming_the_output(tmp_path):
    export = _big_deepscaler(tmp_path / "deepscaler.json", n=600)
    proc = _in_a_tiny_tmpfs("$INFIMMR prepare --from deepscaler --in " + str(export) + " --out $DISK/p.jsonl",
                            tmp_path, size="64k")
    _one_line_error(proc, "disk/p.jsonl: no space left on the device")


def test_a_read_only_output_is_one_line_in_score_and_decontam(tmp_path):
    recs = tmp_path / "recs.jsonl"
    recs.write_text(json.dumps(GOOD) + "\n")
    comps = tmp_path / "comps.jsonl"
    comps.write_text(json.dumps({"id": "a", "completion": "<think>x</think><answer>2</answer>"}) + "\n")
    proc = _in_a_tiny_tmpfs(f"$INFIMMR score --records {recs} --completions {comps} --out $DISK/s.jsonl", tmp_path,
                            read_only=True)
    _one_line_error(proc, "disk/s.jsonl: read-only file system")
    proc = _in_a_tiny_tmpfs(f"$INFIMMR decontam --train {recs} --bench {recs} --no-embedding --out $DISK/out/c.jsonl "
                            f"--removed $DISK/out/r.jsonl", tmp_path / "again", read_only=True)
    _one_line_error(proc, "disk/out: read-only file system")


# ---- other tracebacks that are now one line --------------------------------------------------------------------------
def _results(folder: Path, benchmarks) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps({"benchmarks": benchmarks}))
    return folder


@pytest.mark.parametrize("entry, words", [
    ("not an object", "benchmarks.math500.accuracy: expected whole counts"),
    ({"accuracy": {"k": 3}}, "benchmarks.math500.accuracy: expected whole counts"),
    ({"accuracy": {"k": 3, "n": 0}}, "with 0 <= k <= n, got {'k': 3, 'n': 0}"),
    ({"accuracy": {"k": "1", "n": 2}}, "expected whole counts"),
])
def test_compare_refuses_a_malformed_results_file_in_one_line(tmp_path, entry, words):
    from conftest import run_cli

    run = _results(tmp_path / "run", {"math500": entry})
    proc = run_cli("compare", run, "--out", tmp_path / "table", check=False)
    _one_line_error(proc, "run/results.json", words)
    (run / "results.json").write_text('{"benchmarks": {"math500": ')
    _one_line_error(run_cli("compare", run, "--out", tmp_path / "table", check=False),
                    "results.json:1:28: <file>: not valid JSON")


def test_compare_shows_n_a_when_nothing_was_scored(tmp_path):
    from infimmr_cli.commands import compare as compare_cmd

    run = _results(tmp_path / "run", {"math500": {"accuracy": {"k": 0, "n": 0}},
                                      "mathvista": {"accuracy": {"k": 1, "n": 4}}})
    res = compare_cmd.run([str(run)], tmp_path / "table", quiet=True)
    row = res.text.splitlines()[2]
    assert "n/a (0/0)" in row and "25.00 (1/4)" in row and "0.00 (0/0)" not in row
    assert json.loads((tmp_path / "table" / "compare.json").read_text())["rows"][0]["cells"]["math500"]["pct"] is None
    assert (tmp_path / "table" / "compare.png").stat().st_size > 0


@pytest.mark.parametrize("damage, words", [
    ("truncate", "truncated safetensors file"),
    ("header", "not a readable safetensors file"),
    ("config", "config.json:1:29: <file>: not valid JSON"),
    ("config-bytes", "config.json:1:17: <line>: not UTF-8 text"),
])
def test_export_of_a_damaged_checkpoint_is_one_line(tmp_path, tiny_model_dir, damage, words):
    import shutil

    from conftest import run_cli

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_model_dir, ckpt)
    weights = sorted(ckpt.glob("*.safetensors"))[0]
    data = weights.read_bytes()
    if damage == "truncate":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "header":
        weights.write_bytes(data[:8] + b"#" * 16 + data[24:])
    elif damage == "config":
        (ckpt / "config.json").write_text('{"model_type": "qwen2_5_vl",')
    else:
        (ckpt / "config.json").write_bytes(b'{"model_type": "\xff"}')
    proc = run_cli("export", "--ckpt", ckpt, "--out", tmp_path / "out", check=False)
    _one_line_error(proc, str(ckpt), words)
    assert not (tmp_path / "out").exists()


def test_prepare_names_a_json_line_that_is_a_list(tmp_path):
    from conftest import run_cli

    src = tmp_path / "test.jsonl"
    src.write_text(json.dumps({"problem": "1+1?", "answer": "2", "unique_id": "a"}) + "\n" + '["a", "list"]\n')
    proc = run_cli("prepare", "--from", "math500", "--in", src, "--out", tmp_path / "out" / "r.jsonl", check=False)
    # One odd row never aborts a benchmark (issue 10): it is kept, unscorable, and named in the warnings file.
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    lines = (tmp_path / "out" / "r.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["meta"]["unscorable"]
    warnings = [json.loads(x) for x in (tmp_path / "out" / "r.jsonl.warnings.jsonl").read_text().splitlines()]
    assert any(w["where"].endswith("test.jsonl:2") and "expected a JSON object, got list" in w["reason"]
               for w in warnings), warnings


# ---- empty inputs ----------------------------------------------------------------------------------------------------
def test_empty_inputs_finish_with_a_zero_records_line(tmp_path):
    from conftest import run_cli
    from test_classify_caption import ScriptedEngine, factory

    from infimmr_cli.commands import caption, classify

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    (tmp_path / "deepscaler.json").write_text("[]")
    said = {
        "prepare": run_cli("prepare", "--from", "deepscaler", "--in", tmp_path / "deepscaler.json", "--out",
                           tmp_path / "p.jsonl", COLUMNS="200").stdout,
        "score": run_cli("score", "--records", empty, "--completions", empty, "--out", tmp_path / "s.jsonl").stdout,
        "decontam": run_cli("decontam", "--train", empty, "--bench", empty, "--no-embedding", "--out",
                            tmp_path / "c.jsonl", "--removed", tmp_path / "r.jsonl", COLUMNS="200").stdout,
        "eval": run_cli("eval", "--bench", "math500", "--records", empty, "--predictions", empty, "--out",
                        tmp_path / "ev").stdout,
    }
    assert "records written │     0" in said["prepare"]
    assert "0 scores written" in said["score"]
    assert "0 training items vs 0 benchmark items" in said["decontam"]
    assert "math500: 0 records in" in said["eval"] and "nothing to evaluate" in said["eval"]
    assert (tmp_path / "p.jsonl").read_text() == "" and (tmp_path / "c.jsonl").read_text() == ""
    for module in (classify, caption):
        console = Console(record=True, width=200)
        out = module.run(empty, tmp_path / f"{module.__name__}.jsonl", console=console,
                         engine_factory=factory(ScriptedEngine(lambda tag, req: "chart")))
        assert out.read_text() == "" and "│ records " in console.export_text()


def test_prepare_stores_a_bomb_from_a_parquet_export_and_eval_then_scores_it_zero(tmp_path):
    import pyarrow.parquet as pq

    import exports
    from infimmr_cli.rollout.requests import build_request
    from infimmr_cli.commands.prepare import run as prepare
    from infimmr_cli.data.records import read_records

    path = exports.make_mathvista_export(tmp_path / "vista")
    rows = pq.read_table(path).to_pylist()
    rows[0]["decoded_image"] = {"bytes": badfiles.bomb_png(tmp_path / "b.png").read_bytes(), "path": None}
    exports._write(rows, exports.MATHVISTA_SCHEMA, path)
    summary = prepare("mathvista", tmp_path / "vista", tmp_path / "out" / "r.jsonl", quiet=True)
    assert summary.written == 4
    recs = read_records(tmp_path / "out" / "r.jsonl")
    with pytest.raises(ImageError, match="too large"):
        build_request(recs[0], None, 16384)
    assert len(build_request(recs[1], None, 16384).images) == 1


def test_train_phase_on_a_full_disk_is_one_line_and_leaves_no_checkpoint(tmp_path, tiny_model_dir):
    from conftest import write_train_data

    data = write_train_data(tmp_path / "data", n_text=8, n_image=0)
    sets = " ".join(f"--set {s}" for s in ("prompts_per_step=4", "group_size=4", "update_batch=2", "micro_batch=4",
                                           "max_response_len=8", "deepspeed="))
    proc = _in_a_tiny_tmpfs(f"$INFIMMR train-phase --phase fra --data {data} --init {tiny_model_dir} --out $DISK/run "
                            f"--steps 1 {sets}; echo exit=$? >&2; ls -A $DISK/run/checkpoints >&2", tmp_path,
                            size="512k")
    assert "Traceback" not in proc.stderr and "exit=2" in proc.stderr, proc.stderr
    assert "run/checkpoints: no space left on the device" in proc.stderr.replace("\n", "")
    # `ls` shows only the temp folder the failed save left, which the next save (or a resume) clears: no step-N
    assert "step-000001\n" not in proc.stderr


def test_prepare_names_a_damaged_parquet_file(tmp_path):
    from conftest import run_cli

    import exports

    path = exports.make_mathvista_export(tmp_path / "vista")
    path.write_bytes(path.read_bytes()[:200])
    proc = run_cli("prepare", "--from", "mathvista", "--in", tmp_path / "vista", "--out", tmp_path / "o" / "r.jsonl",
                   check=False)
    _one_line_error(proc, "testmini-00000-of-00001.parquet: <file>: not a readable parquet file")
