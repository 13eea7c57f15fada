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
    ("{not json", "in.jsonl:2:2: <line>: not valid JSON"),
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


# ---- where a JSON error is: file:line:column, as an editor counts them -----------------------------------------------
def _error(fn, *args) -> str:
    with pytest.raises(RecordError) as err:
        fn(*args)
    return str(err.value)


def test_json_file_error_names_line_and_column_of_the_bad_character(tmp_path):
    from infimmr_cli.data.records import read_json_file

    path = tmp_path / "rows.json"
    path.write_text('[\n  {"a": 1},\n  {"a": 2,, "b": 3}\n]\n')  # the second comma of line 3 is its 11th character
    assert _error(read_json_file, path) == (f"{path}:3:11: <file>: not valid JSON (Expecting property name enclosed "
                                            "in double quotes)")
    path.write_text('{\n\t"q": "é",\n\t"a": tru\n}')  # a tab and a non-ASCII character count as one column each
    assert _error(read_json_file, path).startswith(f"{path}:3:7: <file>: not valid JSON (Expecting value)")
    path.write_text('{"a": 1,\r\n "b": "open')  # CRLF lines; an unterminated string is named where it starts
    assert _error(read_json_file, path) == f"{path}:2:7: <file>: not valid JSON (Unterminated string starting)"


def test_jsonl_error_names_its_line_and_column(tmp_path):
    # the `"` opening "x" is the 29th character of line 3 ("é" is one)
    src = write_lines(tmp_path / "in.jsonl", [good(id="a"), good(id="b"), '{"id": "c", "question": "é" "x": 1}'])
    assert _error(read_records, src) == f"{src}:3:29: <line>: not valid JSON (Expecting ',' delimiter)"


def test_bom_is_not_an_error_nor_a_column(tmp_path):
    from infimmr_cli.data.records import read_json_file

    path = tmp_path / "rows.json"
    path.write_bytes("\ufeff".encode() + b'[{"a": 1}]')
    assert read_json_file(path) == [{"a": 1}]
    path.write_bytes("\ufeff".encode() + b'[{"a": 1,}]')  # the "}" after the comma is the 10th character
    assert _error(read_json_file, path).startswith(f"{path}:1:10: <file>: not valid JSON")
    src = tmp_path / "in.jsonl"
    src.write_bytes("\ufeff".encode() + (json.dumps(good()) + "\n").encode())
    assert [r.id for r in read_records(src)] == ["q1"]
    src.write_bytes("\ufeff".encode() + b'{"id": x}\n')
    assert _error(read_records, src).startswith(f"{src}:1:8: <line>: not valid JSON")


def test_non_utf8_byte_column_counts_characters(tmp_path):
    from infimmr_cli.data.records import read_json_file

    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"q": "\xc3\xa9\xc3\xa9\xff"}\n')  # two 2-byte characters before the bad byte: column 10, byte 12
    assert _error(read_records, src) == f"{src}:1:10: <line>: not UTF-8 text (byte 0xff)"
    path = tmp_path / "rows.json"
    path.write_bytes(b'[\n {"q": "\xc3\xa9\xff"}\n]')
    assert _error(read_json_file, path) == f"{path}:2:10: <line>: not UTF-8 text (byte 0xff)"


def test_line_separators_inside_strings_keep_line_numbers(tmp_path):
    """JSON strings may hold U+2028, U+2029 and U+0085 raw (we write text unescaped); they are not line breaks."""
    from conftest import run_cli

    odd = "a\u2028b\u2029c\x85d"
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(good(id="a", question=odd), ensure_ascii=False) + "\n" + json.dumps(good(id="b"))
                   + "\n{broken\n", encoding="utf-8")
    assert _error(read_records, src).startswith(f"{src}:3:2: <line>: not valid JSON")
    rows = tmp_path / "deepscaler.jsonl"  # prepare's readers split the same way
    rows.write_text(json.dumps({"problem": odd, "answer": "2"}, ensure_ascii=False) + "\n{broken\n", encoding="utf-8")
    proc = run_cli("prepare", "--from", "deepscaler", "--in", rows, "--out", tmp_path / "p.jsonl", check=False)
    assert proc.returncode == 2 and "deepscaler.jsonl:2:2: <line>: not valid JSON" in proc.stderr, proc.stderr
    rows.write_text(json.dumps({"problem": odd, "answer": "2"}, ensure_ascii=False) + "\n", encoding="utf-8")
    run_cli("prepare", "--from", "deepscaler", "--in", rows, "--out", tmp_path / "p.jsonl")
    assert [r.question for r in read_records(tmp_path / "p.jsonl")] == [odd]
    out = tmp_path / "out.jsonl"
    w = ResumableWriter(out)  # a resumed stage reads back what it wrote
    w.write([Record(id="1", source="s", question=odd, answer="1", answer_type="math")])
    w.close()
    assert ResumableWriter(out).done_ids == {"1"}
