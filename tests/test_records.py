import json
from pathlib import Path

import pytest

from infimmr_cli.data.records import Record, RecordError, ResumableWriter, existing_ids, read_records, write_records
from infimmr_cli.files import partial_path


def good(**over):
    rec = {"id": "q1", "source": "virl39k", "question": "What is x?", "answer": "B", "answer_type": "choice",
           "choices": ["1", "2", "3"], "images": [], "image_type": None, "caption": None, "meta": {}}
    rec.update(over)
    return rec


def write_lines(path: Path, objs) -> Path:
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs))
    return path


def test_round_trip_keeps_every_field_and_unknown_keys(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(b"x")
    src = write_lines(tmp_path / "in.jsonl", [good(images=["img/a.png"], meta={"level": 3}, extra_key=[1, 2])])
    recs = read_records(src)
    assert recs[0].images == ["img/a.png"] and recs[0].meta == {"level": 3} and recs[0].extra == {"extra_key": [1, 2]}
    write_records(tmp_path / "out.jsonl", recs)
    assert json.loads((tmp_path / "out.jsonl").read_text()) == json.loads(src.read_text())


@pytest.mark.parametrize("obj, expected", [
    (good(answer_type="mcq"), "in.jsonl:2: answer_type: 'mcq' is not one of math, choice, string"),
    (good(answer="D"), "in.jsonl:2: answer: 'D' is not a letter among the 3 choices (A-C)"),
    (good(choices=None), "in.jsonl:2: choices: a choice item needs a non-empty list of options"),
    ({k: v for k, v in good().items() if k != "question"}, "in.jsonl:2: question: missing"),
    (good(question=7), "in.jsonl:2: question: expected a string, got int"),
    (good(images=["/etc/passwd"]), "in.jsonl:2: images[0]: '/etc/passwd' is absolute"),
    (good(images=["../x.png"]), "in.jsonl:2: images[0]: '../x.png' leaves the data folder"),
    (good(images=["nope.png"]), "in.jsonl:2: images[0]: 'nope.png' does not exist"),
    (good(meta=[1]), "in.jsonl:2: meta: expected an object, got list"),
    ("{not json", "in.jsonl:2: <line>: not valid JSON"),
    (good(id="q0"), "in.jsonl:2: id: 'q0' appears twice in this file"),
])
def test_bad_line_names_file_line_and_field(tmp_path, obj, expected):
    src = write_lines(tmp_path / "in.jsonl", [good(id="q0"), obj])
    with pytest.raises(RecordError) as err:
        read_records(src)
    assert expected in str(err.value)


def test_outside_images_allowed_only_when_asked(tmp_path):
    (tmp_path / "x.png").write_bytes(b"x")
    sub = tmp_path / "data"
    sub.mkdir()
    src = write_lines(sub / "in.jsonl", [good(images=["../x.png"])])
    with pytest.raises(RecordError):
        read_records(src)
    assert read_records(src, allow_outside=True)[0].image_paths() == [(tmp_path / "x.png").resolve()]


def test_writing_into_another_folder_rebases_image_paths(tmp_path):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "images" / "a.png").write_bytes(b"x")
    recs = read_records(write_lines(data / "r.jsonl", [good(images=["images/a.png"])]))
    write_records(data / "sub" / "r2.jsonl", recs)
    again = read_records(data / "sub" / "r2.jsonl", allow_outside=True)
    assert again[0].images == ["../images/a.png"]
    assert again[0].image_paths() == recs[0].image_paths()


def test_write_records_is_atomic_on_failure(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")

    def boom():
        yield Record(id="1", source="s", question="q", answer="1", answer_type="math")
        raise RuntimeError("crash at line 2")

    with pytest.raises(RuntimeError):
        write_records(out, boom())
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_resumable_writer_survives_a_torn_line_and_finishes(tmp_path):
    out = tmp_path / "out.jsonl"
    w = ResumableWriter(out)
    w.write([Record(id=str(i), source="s", question="q", answer="1", answer_type="math") for i in range(3)])
    w.close()
    with partial_path(out).open("a") as fh:  # a kill in the middle of writing record 3
        fh.write('{"id": "3", "sour')
    assert not out.exists()
    assert existing_ids(partial_path(out)) == {"0", "1", "2"}
    w = ResumableWriter(out)
    assert w.done_ids == {"0", "1", "2"}
    w.write([Record(id="3", source="s", question="q", answer="1", answer_type="math")])
    w.finish()
    assert [r.id for r in read_records(out)] == ["0", "1", "2", "3"]
    assert not partial_path(out).exists()
