"""A dataset from someone else cannot pull host files in: image paths resolved (links followed) stay in their folder,
in the readers and at every use; duplicate ids never overwrite another record's image."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest
from PIL import Image

import exports
from conftest import run_cli
from infimmr_cli.commands.prepare import run as prepare
from infimmr_cli.data.export_schemas import MATHVERSE_SCHEMA, VIRL_SCHEMA
from infimmr_cli.data.records import RecordError, read_records


@pytest.fixture
def secret(tmp_path):
    """A host file the dataset must never reach (a stand-in for ~/.ssh/id_rsa)."""
    path = tmp_path / "home" / "id_rsa"
    path.parent.mkdir()
    path.write_text("PRIVATE KEY\n")
    return path


def _virl_with_image(tmp_path, image: str):
    src = exports.make_virl39k_export(tmp_path / "ViRL39K")
    rows = pq.read_table(src / "39Krelease.parquet").to_pylist()
    rows[0]["image"] = [image]
    exports._write(rows, VIRL_SCHEMA, src / "39Krelease.parquet")
    return src


def _nothing_of(secret, folder):
    return not any(p.is_file() and p.read_bytes() == secret.read_bytes() for p in folder.rglob("*"))


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_prepare_virl39k_refuses_image_paths_leaving_the_export(how, tmp_path, secret):
    if how == "symlink":  # a link inside the export's images/ folder pointing at a host file
        src = _virl_with_image(tmp_path, "images/evil.jpg")
        (src / "images" / "evil.jpg").symlink_to(secret)
    else:
        src = _virl_with_image(tmp_path, str(secret) if how == "absolute" else "../home/id_rsa")
    out = tmp_path / "out" / "records.jsonl"
    proc = run_cli("prepare", "--from", "virl39k", "--in", src, "--out", out, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "39Krelease.parquet:row 0: image:" in proc.stderr and "leaves the data folder" in proc.stderr
    assert not out.exists()
    assert _nothing_of(secret, tmp_path / "out")


def _records_with_link(tmp_path, target):
    data = tmp_path / "data"
    data.mkdir()
    Image.new("RGB", (8, 8)).save(data / "ok.png")
    (data / "img.png").symlink_to(target)
    rec = {"id": "a", "source": "s", "question": "q", "answer": "1", "answer_type": "math", "images": ["img.png"]}
    (data / "r.jsonl").write_text(json.dumps(rec) + "\n")
    return data / "r.jsonl"


def test_record_reader_follows_links_before_deciding(tmp_path, secret):
    path = _records_with_link(tmp_path, secret)
    with pytest.raises(RecordError, match=r"r\.jsonl:1: images\[0\]: 'img.png' leaves the data folder .*id_rsa"):
        read_records(path)
    with pytest.raises(RecordError, match="leaves the data folder"):
        read_records(path, check_images=False)  # even when the stage will not open images
    assert read_records(path, allow_outside=True)[0].image_paths() == [secret.resolve()]  # the user's own choice


def test_a_link_swapped_in_after_reading_is_refused_where_the_image_is_used(tmp_path, secret):
    path = _records_with_link(tmp_path, path_ok := tmp_path / "data" / "ok.png")
    assert path_ok.is_file()
    rec = read_records(path)[0]
    (tmp_path / "data" / "img.png").unlink()
    (tmp_path / "data" / "img.png").symlink_to(secret)
    with pytest.raises(RecordError, match="leaves the data folder"):
        rec.image_paths()  # what load_record_images, decontam and training go through
    from infimmr_cli.data.images import load_record_images

    with pytest.raises(RecordError, match="leaves the data folder"):
        load_record_images(rec, None)


def test_classify_refuses_a_link_out_unless_allowed(tmp_path, secret, tiny_model_dir):
    path = _records_with_link(tmp_path, secret)
    proc = run_cli("classify", "--in", path, "--out", tmp_path / "t.jsonl", "--model", tiny_model_dir, check=False)
    assert proc.returncode == 2 and "leaves the data folder" in proc.stderr and "Traceback" not in proc.stderr


def test_prepare_refuses_to_write_images_through_a_planted_link(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out" / "records.jsonl"
    (tmp_path / "out" / "images").mkdir(parents=True)
    (tmp_path / "out" / "images" / "mathverse").symlink_to(elsewhere)
    with pytest.raises(RecordError, match="leaves the data folder"):
        prepare("mathverse", exports.make_mathverse_export(tmp_path / "raw"), out, quiet=True)
    assert not any(elsewhere.iterdir())


def test_duplicate_parquet_ids_never_overwrite_the_first_image(tmp_path):
    out = tmp_path / "out" / "records.jsonl"
    src = exports.make_mathverse_export(tmp_path / "raw")
    prepare("mathverse", src, out, quiet=True)
    before = out.read_text()
    image = out.parent / "images" / "mathverse" / "1.png"
    first = image.read_bytes()
    rows = pq.read_table(src).to_pylist()
    rows[1]["sample_index"] = "1"  # the second row claims the first row's id, with another image
    exports._write(rows, MATHVERSE_SCHEMA, src)
    summary = prepare("mathverse", src, out, quiet=True)  # one odd row never aborts a benchmark (issue 10)
    assert image.read_bytes() == first and out.read_text() != before
    records = {r.id: r for r in read_records(out)}
    # the later row keeps its place under a suffixed id, without the image it could not store without overwriting
    assert "1" in records and records["1#2"].meta["missing_images"] == ["image"] and not records["1#2"].images
    missing = [w for w in summary.warnings if w["kind"] == "image missing"]
    assert missing and "images/mathverse/1.png is already the image of" in missing[0]["reason"]
    assert "duplicate id" in {w["kind"] for w in summary.warnings}


def test_duplicate_text_ids_name_both_rows(tmp_path):
    src = exports.make_math500_export(tmp_path / "raw")
    lines = src.read_text().splitlines()
    src.write_text("\n".join([*lines, lines[0]]) + "\n")
    summary = prepare("math500", src, tmp_path / "o.jsonl", quiet=True)
    ids = [r.id for r in read_records(tmp_path / "o.jsonl")]
    first = json.loads(lines[0])["unique_id"]
    assert len(ids) == len(lines) + 1 and ids[-1] == f"{first}#2" and len(set(ids)) == len(ids)
    assert any(w["kind"] == "duplicate id" and f"rows 1 and {len(lines) + 1}" in w["reason"]
               for w in summary.warnings)


def test_virl39k_images_with_one_name_in_two_folders_never_collide(tmp_path):
    src = exports.make_virl39k_export(tmp_path / "ViRL39K")
    (src / "images" / "b").mkdir()
    Image.new("RGB", (20, 20), (1, 2, 3)).save(src / "images" / "b" / "Processed-1-0.jpg")
    rows = pq.read_table(src / "39Krelease.parquet").to_pylist()
    rows[0]["image"] = ["images/b/Processed-1-0.jpg"]  # same file name as row 1's image, another file
    exports._write(rows, VIRL_SCHEMA, src / "39Krelease.parquet")
    with pytest.raises(RecordError, match=r"row 1: image: images/virl39k/Processed-1-0\.jpg is already the image "
                                          r"of .*row 0"):
        prepare("virl39k", src, tmp_path / "out" / "r.jsonl", quiet=True)


def test_virl39k_images_across_file_systems_are_copied_not_linked_out(tmp_path, monkeypatch):
    import os

    def no_hard_links(*a, **k):
        raise OSError("cross-device link")

    monkeypatch.setattr(os, "link", no_hard_links)
    src = exports.make_virl39k_export(tmp_path / "ViRL39K")
    out = tmp_path / "out" / "r.jsonl"
    prepare("virl39k", src, out, quiet=True)
    linked = list((out.parent / "images" / "virl39k").iterdir())
    assert linked and not any(p.is_symlink() for p in linked)
    assert {r.id for r in read_records(out)} >= {"q-math"}  # the strict reader accepts what prepare wrote
    shutil.rmtree(src)
    assert all(p.is_file() for p in linked)
