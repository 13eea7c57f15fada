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


def test_reader_takes_an_output_or_its_record_and_older_shapes(tmp_path):
    from infimmr_cli.provenance import is_current, read_provenance

    (tmp_path / "in.jsonl").write_text("{}\n")
    (tmp_path / "out.jsonl").write_text("x\n")
    write_provenance(tmp_path / "out.jsonl", "prepare", {"source": "s"}, {"input": tmp_path / "in.jsonl"})
    assert read_provenance(tmp_path / "out.jsonl") == read_provenance(tmp_path / "out.jsonl.provenance.json")
    assert is_current(tmp_path / "out.jsonl", "prepare", {"source": "s"}, {"input": tmp_path / "in.jsonl"})
    assert not is_current(tmp_path / "out.jsonl", "prepare", {"source": "t"}, {"input": tmp_path / "in.jsonl"})
    assert not is_current(tmp_path / "out.jsonl", "classify", {"source": "s"}, {"input": tmp_path / "in.jsonl"})
    (tmp_path / "in.jsonl").write_text("{}\n{}\n")
    assert not is_current(tmp_path / "out.jsonl", "prepare", {"source": "s"}, {"input": tmp_path / "in.jsonl"})
    assert read_provenance(tmp_path / "nothing.jsonl") is None
    # a train-phase run_config.json and an eval run.json as written before the one schema
    (tmp_path / "run_config.json").write_text(json.dumps({"config": {"phase": "fra"}, "inputs": {}, "versions": {}}))
    old = read_provenance(tmp_path / "run_config.json")
    assert (old["command"], old["settings"]["phase"], old["results"]) == ("train-phase", "fra", {})
    (tmp_path / "run.json").write_text(json.dumps({"model": "m", "reward": "default"}))
    assert read_provenance(tmp_path / "run.json")["settings"] == {"model": "m", "reward": "default"}


def test_plot_tiny_model_and_demo_data_write_a_record(tmp_path):
    from infimmr_cli.commands import demo_data, plot, tiny_model
    from infimmr_cli.provenance import read_provenance

    (tmp_path / "fra").mkdir()
    (tmp_path / "fra" / "metrics.jsonl").write_text(json.dumps({"step": 1, "reward_mean": 0.5}) + "\n")
    png = plot.run([f"F={tmp_path / 'fra'}"], tmp_path / "plots")
    rec = read_provenance(png)
    assert rec["command"] == "plot" and rec["results"] == {"F": 1} and "metrics[F]" in rec["inputs"]
    raw = tmp_path / "raw"
    demo_data.run(raw, n_text=2, n_image=2, n_bench=2)
    rec = read_provenance(raw)
    assert rec["command"] == "demo-data" and rec["settings"]["n_text"] == 2 and "math500" in rec["results"]
    model = tiny_model.run(tmp_path / "tiny", seed=3)
    assert read_provenance(model)["settings"] == {"seed": 3, "warm_up": False}
