import json

from infimmr_cli.provenance import file_digest, provenance_path, write_provenance


def test_digest_of_a_folder_follows_its_data_files_not_the_rest(tmp_path):
    (tmp_path / "a.parquet").write_bytes(b"1")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.jsonl").write_bytes(b"2")
    before = file_digest(tmp_path)
    (tmp_path / "notes.txt").write_text("ignored")
    assert file_digest(tmp_path) == before
    (tmp_path / "sub" / "b.jsonl").write_bytes(b"3")
    assert file_digest(tmp_path) != before
    # sha256 of the bytes "abc", written out
    (tmp_path / "f.json").write_bytes(b"abc")
    assert file_digest(tmp_path / "f.json") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_provenance_sits_beside_the_output_with_settings_inputs_and_versions(tmp_path):
    (tmp_path / "in.jsonl").write_text("{}\n")
    path = write_provenance(tmp_path / "out.jsonl", "classify", {"model": "m"}, {"input": tmp_path / "in.jsonl"},
                            results={"records": 1})
    assert path == provenance_path(tmp_path / "out.jsonl") == tmp_path / "out.jsonl.provenance.json"
    rec = json.loads(path.read_text())
    assert (rec["command"], rec["settings"], rec["results"]) == ("classify", {"model": "m"}, {"records": 1})
    assert rec["inputs"]["input"]["sha256"] == file_digest(tmp_path / "in.jsonl")
    assert {"python", "torch", "transformers"} <= set(rec["versions"])
