"""A bad item costs that item, never the run (issue 12): bombs, corrupt images, huge prompts, bad text, in every stage.

Each test writes real hostile files (a PNG whose header claims 30000x30000, a PNG cut in half, bytes that are no image)
and runs the stage on them beside good records: the good records come out as usual, the bad ones are reported in the
record, in `<out>.warnings.jsonl` and on screen, and the run exits normally.
"""

from __future__ import annotations

import json
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
        rec("t-embed", "Determine angle ABC as drawn.", images=["img/geo_copy.png"]),
        rec("t-cut", "A question with a cut image.", images=["img/cut.png"]),
        rec("t-text", "Only words here."),
    ])
    out = tmp_path / "out/clean.jsonl"
    proc = run_cli("decontam", "--train", train, "--bench", bench, "--out", out, "--removed",
                   tmp_path / "out/removed.jsonl", "--embed-model", tiny_model_dir, "--batch-size", "4",
                   COLUMNS="250")
    removed = {r["id"] for r in read_jsonl(tmp_path / "out/removed.jsonl")}
    assert removed == {"t-embed"}  # the good image pair is still caught
    kept = {r["id"]: r for r in read_jsonl(out)}
    assert list(kept) == ["t-bomb", "t-cut", "t-text"]
    assert "too large" in kept["t-bomb"]["meta"]["decontam_error"]
    assert "truncated" in kept["t-cut"]["meta"]["decontam_error"]
    assert "decontam_error" not in kept["t-text"]["meta"]
    assert set(_warnings(out)) == {"b-junk", "t-bomb", "t-cut"}
    assert "3 items have an image that cannot be read" in proc.stdout
