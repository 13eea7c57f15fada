"""`infimmr prepare`: each source's real schema -> records, field by field; bad rows named file:row: field."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pytest
from PIL import Image

import exports
from conftest import run_cli
from infimmr_cli.commands.prepare import run
from infimmr_cli.data.records import RecordError, read_records

REPO = Path(__file__).resolve().parents[1]
RECORD_KEYS = ["id", "source", "question", "answer", "answer_type", "choices", "images", "image_type", "caption",
               "meta"]


def prepare(tmp_path: Path, source: str, inp: Path, out_name: str = "out/records.jsonl"):
    out = tmp_path / out_name
    summary = run(source, inp, out, quiet=True)
    raw = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(list(r) == RECORD_KEYS for r in raw)  # nothing more, nothing less, in the contract's order
    recs = {r.id: r for r in read_records(out)}  # validates every line, images included
    return summary, recs, raw


def pixel(rec, k: int = 0) -> tuple:
    with Image.open(rec.image_paths()[k]) as im:
        return im.convert("RGB").getpixel((0, 0))


def test_deepscaler_skips_empty_answers_and_keeps_row_index_ids(tmp_path):
    summary, recs, raw = prepare(tmp_path, "deepscaler", exports.make_deepscaler_export(tmp_path / "raw"))
    assert summary.written == 3 and dict(summary.skipped) == {"empty answer": 1} and summary.images_written == 0
    assert list(recs) == ["deepscaler-0", "deepscaler-2", "deepscaler-3"]
    r = recs["deepscaler-0"]
    assert (r.source, r.question, r.answer, r.answer_type, r.choices, r.images) == (
        "deepscaler", "What is $1+1$?", "2", "math", None, [])
    assert (r.image_type, r.caption, r.meta) == (None, None, {"solution": "$1+1=\\boxed{2}$"})
    assert (recs["deepscaler-2"].answer, recs["deepscaler-2"].answer_type) == ("\\frac{3}{4}", "math")
    assert (recs["deepscaler-3"].answer, recs["deepscaler-3"].answer_type) == ("blue", "string")


def test_math500_uses_unique_id(tmp_path):
    _, recs, _ = prepare(tmp_path, "math500", exports.make_math500_export(tmp_path / "raw"))
    r = recs["test/precalculus/807.json"]
    assert (r.source, r.question, r.answer, r.answer_type, r.choices, r.images) == (
        "math500", "Convert $(0,3)$ to polar coordinates.", "\\left( 3, \\frac{\\pi}{2} \\right)", "math", None, [])
    assert r.meta == {"subject": "Precalculus", "level": 2, "solution": "...", "raw_answer": r.answer}
    assert recs["test/prealgebra/1.json"].answer == "5"


def test_virl39k_unboxes_finds_choices_and_links_images(tmp_path):
    src = exports.make_virl39k_export(tmp_path / "ViRL39K")
    summary, recs, raw = prepare(tmp_path, "virl39k", src)
    assert summary.written == 5 and dict(summary.skipped) == {"image file missing": 1}
    assert summary.images_linked == 6 and summary.images_written == 0

    m = recs["q-math"]
    assert (m.source, m.question, m.answer, m.answer_type, m.choices) == (
        "virl39k", "Find $x$ if the area is 8.", "\\frac{\\sqrt{2}}{2}", "math", None)
    assert m.images == ["images/virl39k/Processed-0-0.jpg"]
    assert os.path.samefile(m.image_paths()[0], src / "images/Processed-0-0.jpg")  # a link, not a copy
    assert m.meta == {"category": "(GradeSchool) Geometric", "source": "MMK12", "PassRate_32BTrained": 0.5,
                      "PassRate_7BBase": 0.25}

    c = recs["q-choice"]
    assert (c.answer, c.answer_type, c.choices) == ("C", "choice", ["30°", "45°", "60°", "90°"])
    assert c.question == "What is the measure of angle B?\nChoices:\nA: 30°\nB: 45°\nC: 60°\nD: 90°"
    assert c.meta["PassRate_7BBase"] is None and "choices_in_image" not in c.meta

    lo = recs["q-letter-only"]  # gold `(B)`, options only in the image
    assert (lo.answer, lo.answer_type, lo.choices, lo.meta["choices_in_image"]) == ("B", "choice", list("ABCD"), True)

    t = recs["q-text"]
    assert (t.question, t.answer, t.answer_type) == ("What is the main color of the car?", "red", "string")

    two = recs["q-two"]
    assert two.question == "How many triangles are there in both figures together?"
    assert two.images == ["images/virl39k/Processed-4-0.jpg", "images/virl39k/Processed-5-0.jpg"]
    assert [os.path.samefile(p, src / "images" / p.name) for p in two.image_paths()] == [True, True]
    assert all(r.image_type is None and r.caption is None for r in recs.values())


def test_virl39k_output_inside_the_release_folder_references_images_in_place(tmp_path):
    src = exports.make_virl39k_export(tmp_path / "ViRL39K", nested_images=True)  # images/images/… after unzip
    summary, recs, _ = prepare(tmp_path, "virl39k", src, out_name="ViRL39K/records.jsonl")
    assert recs["q-math"].images == ["images/images/Processed-0-0.jpg"]
    assert not (tmp_path / "ViRL39K" / "images" / "virl39k").exists()


def test_mathverse_letters_vision_only_and_images(tmp_path):
    summary, recs, _ = prepare(tmp_path, "mathverse", exports.make_mathverse_export(tmp_path / "raw"))
    assert summary.written == 4 and summary.images_written == 4 and not summary.skipped
    base_meta = {"split": "testmini", "source": "GeoQA", "subject": "Plane Geometry", "subfield": "Angle"}

    r = recs["1"]
    assert (r.source, r.answer, r.answer_type, r.choices) == ("mathverse/testmini", "A", "choice",
                                                              ["50°", "40°", "130°", "100°"])
    assert r.question.startswith("As shown in the figure") and r.question.endswith("C:130°\nD:100°")
    assert r.images == ["images/mathverse/1.png"] and pixel(r) == (1, 2, 3)
    assert r.meta == {"problem_index": "1", "problem_version": "Text Dominant", "question_type": "multi-choice",
                      "question_for_eval": r.question, "raw_answer": "A", **base_meta}

    assert (recs["2"].answer, recs["2"].answer_type) == ("C", "choice")  # written "(C)" in the export

    v = recs["5"]  # Vision Only: empty question, options in the image
    assert v.question == "Solve the problem shown in the image."
    assert (v.answer, v.choices, v.meta["choices_in_image"]) == ("B", list("ABCD"), True)
    assert v.meta["question_for_eval"].startswith("AB ∥ CD") and v.meta["problem_version"] == "Vision Only"

    f = recs["6"]
    assert (f.question, f.answer, f.answer_type, f.choices) == ("Find the length of AC.", "2\\sqrt{3}", "math", None)
    assert f.images == ["images/mathverse/6.jpg"] and f.meta["subfield"] == "Length"  # JPEG bytes, no path: sniffed


def test_mathvision_choice_from_options(tmp_path):
    summary, recs, _ = prepare(tmp_path, "mathvision", exports.make_mathvision_export(tmp_path / "raw", "testmini"))
    c = recs["1"]
    assert (c.source, c.answer, c.answer_type, c.choices) == ("mathvision/testmini", "C", "choice",
                                                              ["1", "2", "3", "4", "5"])
    assert c.question == ("Which number is hidden behind the square?\nChoices:\n(A) 1\n(B) 2\n(C) 3\n(D) 4\n(E) 5")
    assert c.images == ["images/mathvision/1.jpg"] and pixel(c)[0] in range(18, 23)  # JPEG is lossy
    assert c.meta == {"subject": "arithmetic", "level": 2, "split": "testmini", "solution": None,
                      "options": ["1", "2", "3", "4", "5"], "raw_answer": "C"}
    f = recs["7"]
    assert (f.question, f.answer, f.answer_type, f.choices) == ("How many dots are there?", "12", "math", None)
    assert f.meta == {"subject": "counting", "level": 1, "split": "testmini", "solution": "Count them.",
                      "options": [], "raw_answer": "12"}


def test_mathvista_text_gold_becomes_letter_and_precision_int(tmp_path):
    summary, recs, raw = prepare(tmp_path, "mathvista", exports.make_mathvista_export(tmp_path / "raw"))
    c = recs["3"]
    assert (c.source, c.answer, c.answer_type, c.choices) == ("mathvista/testmini", "B", "choice",
                                                              ["145°", "155°", "165°", "175°"])
    assert c.question == "Find the angle.\nChoices:\n(A) 145°\n(B) 155°\n(C) 165°\n(D) 175°"
    assert c.meta["category"] == "math-targeted-vqa" and c.meta["task"] == "geometry problem solving"
    assert (c.meta["precision"], c.meta["unit"], c.meta["question_type"]) == (None, None, "multi_choice")

    fl = recs["1"]
    assert (fl.answer, fl.answer_type, fl.meta["precision"], fl.meta["answer_type"]) == ("1.25", "math", 2, "float")
    assert type(fl.meta["precision"]) is int and '"precision": 2,' in json.dumps(raw[1]["meta"])
    assert fl.meta == {"precision": 2, "unit": None, "answer_type": "float", "question_type": "free_form",
                       "choices": None, "raw_answer": "1.25", "query": "Hint: ...",
                       "category": "math-targeted-vqa", "context": "scientific figure", "grade": "college",
                       "img_height": 24, "img_width": 32, "language": "english", "skills": ["scientific reasoning"],
                       "source": "SciBench", "split": "testmini", "task": "textbook question answering"}
    assert (recs["2"].answer, recs["2"].meta["unit"], recs["2"].answer_type) == ("1000", "g", "math")
    assert (recs["9"].answer, recs["9"].answer_type) == ("Peru", "string")
    assert [r.images for r in recs.values()] == [[f"images/mathvista/{p}.png"] for p in ("3", "1", "2", "9")]


def test_mathvista_gold_matching_no_option_is_kept_unscorable_and_warned(tmp_path):
    summary, recs, _ = prepare(tmp_path, "mathvista", exports.make_mathvista_export(tmp_path / "raw", bad_choice=True))
    assert summary.written == 4 and summary.repairs["kept unscorable"] == 1  # one odd row never aborts (issue 10)
    r = recs["3"]
    assert (r.answer, r.answer_type, r.meta["raw_answer"]) == ("", "string", "170°")
    assert r.meta["unscorable"].startswith("answer: gold '170°' is neither a letter")
    warnings = [json.loads(x) for x in (tmp_path / "out/records.jsonl.warnings.jsonl").read_text().splitlines()]
    assert [(w["id"], w["kind"]) for w in warnings] == [("3", "unscorable")]
    assert warnings[0]["where"].endswith("testmini-00000-of-00001.parquet:row 0")


def test_olympiadbench_multiple_answers_tolerances_and_null_images(tmp_path):
    summary, recs, _ = prepare(tmp_path, "olympiadbench", exports.make_olympiadbench_export(tmp_path / "raw"))
    assert summary.written == 3 and summary.images_written == 4
    one = recs["1606"]
    assert (one.source, one.question, one.answer, one.answer_type) == (
        "olympiadbench/OE_MM_maths_en_COMP", "In the diagram, find the area.", "12", "math")
    assert one.images == ["images/olympiadbench/1606_1.png"]
    assert one.meta == {"multiple_answers": False, "tolerance": [0.01], "error": "1e-2", "unit": "cm^2",
                        "final_answer": ["$12$"], "raw_answer": "$12$", "answer_type": "Numerical",
                        "question_type": "Open-ended",
                        "subfield": "Geometry", "subject": "Math", "language": "English"}
    many = recs["1700"]
    assert (many.question, many.answer) == ("Find all values of $a$ and $b$.", "3, \\frac{1}{2}")
    assert (many.meta["multiple_answers"], many.meta["tolerance"], many.meta["error"]) == (True, [0.1, 0.01],
                                                                                          "0.1,0.01")
    assert many.images == ["images/olympiadbench/1700_1.png", "images/olympiadbench/1700_2.jpg"]
    assert [pixel(many, 0)] == [(6, 6, 6)]
    expr = recs["1801"]
    assert (expr.answer, expr.meta["tolerance"], expr.meta["error"]) == ("2 \\sqrt{3}", None, None)


def test_olympiadbench_bad_tolerance_is_a_warning_naming_row_and_field(tmp_path):
    import pyarrow.parquet as pq

    src = exports.make_olympiadbench_export(tmp_path / "raw")
    table = pq.read_table(src)
    errors = table.column("error").to_pylist()
    errors[2] = "about 0.1"
    pq.write_table(table.set_column(table.schema.get_field_index("error"), "error", pa.array(errors)), src)
    summary = run("olympiadbench", src, tmp_path / "o.jsonl", quiet=True)
    assert summary.written == 3
    [w] = summary.warnings
    assert (w["id"], w["kind"]) == ("1801", "tolerance unreadable") and w["where"].endswith(":row 2")
    assert w["reason"].startswith("error: 'about 0.1' is not a number")


def test_missing_column_is_named(tmp_path):
    import pyarrow.parquet as pq

    src = exports.make_mathverse_export(tmp_path / "raw")
    pq.write_table(pq.read_table(src).drop(["question_type"]), src)
    with pytest.raises(RecordError, match=r"testmini\.parquet: question_type: column missing"):
        run("mathverse", src, tmp_path / "o.jsonl", quiet=True)


def test_failed_run_leaves_previous_output_untouched(tmp_path):
    out = tmp_path / "records.jsonl"
    run("deepscaler", exports.make_deepscaler_export(tmp_path / "good"), out, quiet=True)
    before = out.read_text()
    bad = tmp_path / "bad" / "deepscaler.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps([{"problem": "ok", "answer": "1"}, {"problem": 7, "answer": "2"}]))
    with pytest.raises(RecordError, match=r"deepscaler\.json:item 1: problem: expected str, got int"):
        run("deepscaler", bad, out, quiet=True)
    assert out.read_text() == before


def test_cli_prepares_the_bundled_sample_and_reports(tmp_path):
    out = tmp_path / "demo" / "records.jsonl"
    proc = run_cli("prepare", "--from", "deepscaler", "--in", REPO / "examples/data/deepscaler_sample.json",
                   "--out", out)
    assert "records written" in proc.stdout and "skipped: empty answer" in proc.stdout
    recs = read_records(out)
    assert [r.id for r in recs] == [f"deepscaler-{i}" for i in range(12)]
    completions = [json.loads(line) for line in (REPO / "examples/data/completions_sample.jsonl").read_text()
                   .splitlines()]
    assert [c["id"] for c in completions] == [r.id for r in recs]
    prov = json.loads(out.with_name("records.jsonl.provenance.json").read_text())
    assert (prov["settings"]["source"], prov["results"]["records"], prov["results"]["skipped"]) == (
        "deepscaler", 12, {"empty answer": 1})
    assert len(prov["inputs"]["input"]["sha256"]) == 64 and prov["command"] == "prepare"


def test_cli_bad_input_is_one_line_without_traceback(tmp_path):
    src = exports.make_mathvista_export(tmp_path / "raw", bad_choice=True)
    proc = run_cli("prepare", "--from", "mathvista", "--in", src.parent.parent, "--out", tmp_path / "r.jsonl")
    assert "kept unscorable (scores 0)" in proc.stdout and "warnings" in proc.stdout  # counted on screen
    bad = tmp_path / "bad" / "testmini.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    proc = run_cli("prepare", "--from", "mathvista", "--in", bad, "--out", tmp_path / "r.jsonl", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "testmini.json:1:2: <file>: not valid JSON" in proc.stderr
    proc = run_cli("prepare", "--from", "mathverze", "--in", src, "--out", tmp_path / "r.jsonl", check=False)
    assert proc.returncode == 2 and "--from: 'mathverze' is not one of deepscaler" in proc.stderr


def test_parquet_row_without_image_bytes_is_kept_and_warned(tmp_path):
    import pyarrow.parquet as pq

    src = exports.make_mathvista_export(tmp_path / "raw")
    table = pq.read_table(src)
    images = table.column("decoded_image").to_pylist()
    images[1] = {"bytes": None, "path": "1.png"}
    col = pa.array(images, type=table.schema.field("decoded_image").type)
    pq.write_table(table.set_column(table.schema.get_field_index("decoded_image"), "decoded_image", col), src)
    summary, recs, _ = prepare(tmp_path, "mathvista", src)
    assert summary.written == 4 and recs["1"].images == [] and recs["1"].answer == "1.25"
    assert [(w["id"], w["kind"]) for w in summary.warnings] == [("1", "image missing")]


def test_deepscaler_reads_the_json_list_jsonl_and_parquet_and_names_a_missing_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = exports.make_deepscaler_export(tmp_path / "raw")
    rows = json.loads(src.read_text())
    as_jsonl = tmp_path / "ds.jsonl"
    as_jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    as_parquet = tmp_path / "ds.parquet"
    pq.write_table(pa.Table.from_pylist(rows), as_parquet)
    expected = [r.to_dict() for r in read_records(run("deepscaler", src, tmp_path / "a" / "r.jsonl", quiet=True).out)]
    for other in (as_jsonl, as_parquet):
        got = run("deepscaler", other, tmp_path / other.suffix[1:] / "r.jsonl", quiet=True).out
        assert [r.to_dict() for r in read_records(got)] == expected
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RecordError, match="no deepscaler.json in this folder; --in takes"):
        run("deepscaler", empty, tmp_path / "e" / "r.jsonl", quiet=True)
