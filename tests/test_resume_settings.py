"""A resumed classify/caption continues the run it interrupted or refuses: never two models' outputs in one file."""

import json

import pytest

from conftest import run_cli
from infimmr_cli.commands import caption, classify
from infimmr_cli.errors import UsageError
from infimmr_cli.files import partial_path
from test_classify_caption import ScriptedEngine, factory, make_records


def _crashed(tmp_path, **kw):
    src = make_records(tmp_path, [(f"r{k}", [k + 1]) for k in range(4)])
    out = tmp_path / "typed.jsonl"
    with pytest.raises(RuntimeError, match="engine crashed"):
        classify.run(src, out, engine_factory=factory(ScriptedEngine(lambda t, r: "chart", fail_after_calls=1)),
                     batch_size=2, **kw)
    assert partial_path(out).exists() and (tmp_path / "typed.jsonl.partial.settings.json").is_file()
    return src, out


@pytest.mark.parametrize("change, key", [({"max_new_tokens": 9}, "max_new_tokens"), ({"model": "other/model"}, "model"),
                                         ({"engine": "hf"}, "engine")])
def test_resume_with_other_settings_is_refused_naming_the_key(change, key, tmp_path):
    src, out = _crashed(tmp_path)
    before = partial_path(out).read_bytes()
    engine = ScriptedEngine(lambda t, r: "table")
    with pytest.raises(UsageError, match=rf"made with other settings \({key}: .* then, .* now\)"):
        classify.run(src, out, engine_factory=factory(engine), batch_size=2, **change)
    assert engine.calls == 0 and partial_path(out).read_bytes() == before
    classify.run(src, out, engine_factory=factory(engine), batch_size=3, limit=4)  # batch size and limit are free
    assert [json.loads(x)["image_type"] for x in out.read_text().splitlines()] == ["chart"] * 2 + ["table"] * 2
    assert not (tmp_path / "typed.jsonl.partial.settings.json").exists()


def test_a_changed_input_is_refused(tmp_path):
    src, out = _crashed(tmp_path)
    src.write_text(src.read_text().replace("Question r3?", "Another question?"))
    with pytest.raises(UsageError, match="input_sha256"):
        classify.run(src, out, engine_factory=factory(ScriptedEngine(lambda t, r: "table")))


def test_a_finished_output_with_other_settings_is_not_reported_done(tmp_path):
    src = make_records(tmp_path, [("a", [1])], a={"image_type": "chart"})
    out = tmp_path / "cap.jsonl"
    caption.run(src, out, engine_factory=factory(ScriptedEngine(lambda t, r: "A chart.")))
    with pytest.raises(UsageError, match=r"temperature: 0\.0 then, 0\.7 now"):
        caption.run(src, out, engine_factory=factory(ScriptedEngine(lambda t, r: "x")), temperature=0.7, seed=1)


def test_cli_refuses_an_unrelated_existing_out(tmp_path, tiny_model_dir):
    src = make_records(tmp_path, [("a", [1]), ("b", [2])])
    out = tmp_path / "mine.jsonl"
    out.write_text(src.read_text().splitlines()[0] + "\n")  # the user's own file, not classify's
    before = out.read_bytes()
    proc = run_cli("classify", "--in", src, "--out", out, "--model", tiny_model_dir, "--engine", "hf", check=False)
    assert proc.returncode == 2 and "not an output of an earlier `classify` run" in proc.stderr, proc.stderr
    assert out.read_bytes() == before and not partial_path(out).exists()


def test_two_runs_on_one_out_never_write_it_twice(tmp_path, tiny_model_dir):
    """The issue's case: a second classify on the same --out while the first runs stops, naming the first."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from conftest import cli_env
    from test_classify_caption import KILL_SCRIPT

    ids = [f"r{k}" for k in range(8)]
    src = make_records(tmp_path, [(rid, [k + 1]) for k, rid in enumerate(ids)])
    out = tmp_path / "typed.jsonl"
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent), src=str(src), out=str(out))
    first = subprocess.Popen([sys.executable, "-c", script], env=cli_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not partial_path(out).exists() and time.time() < deadline:
        assert first.poll() is None, first.stderr.read().decode()
        time.sleep(0.05)
    second = run_cli("classify", "--in", src, "--out", out, "--model", tiny_model_dir, "--engine", "hf", check=False)
    assert second.returncode == 2 and f"another run is writing it (pid {first.pid} on " in second.stderr, second.stderr
    assert first.wait(timeout=120) == 0
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ids  # every record once
