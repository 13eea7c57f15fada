"""What `infimmr eval` prints for a person or a log file: a header naming the model and the bench, a progress line per
chunk off a terminal, one line per bench for a rerun that had nothing to do; and the compare chart's labels."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import run_cli
from test_eval import CASES, engine_for

from infimmr_cli.commands.eval import describe_model, run
from infimmr_cli.progress import StageProgress, progress_line


def test_progress_line_counts_the_rate_of_this_run_only():
    assert progress_line("mathvista", 64, 500, verb="generated", seconds=5.0, done_here=64) == \
        "mathvista: 64/500 items generated (12.8 items/s, ~0:00:34 left)"
    # a resumed run: 100 were done before, 20 now in 10 s; the last update has nothing left to estimate
    assert progress_line("caption", 120, 120, unit="records", seconds=10.0, done_here=20, note="3 failed") == \
        "caption: 120/120 records, 3 failed (2 records/s)"
    assert progress_line("x", 0, 5) == "x: 0/5 items"
    assert progress_line("x", 1, 2, seconds=1.0, done_here=687000).endswith("(687000 items/s, ~0:00:00 left)")
    assert progress_line("fra", 1, 9, unit="steps", seconds=20.0, done_here=1) == \
        "fra: 1/9 steps (0.05 steps/s, ~0:02:40 left)"


def test_progress_off_a_terminal_is_one_plain_line_per_update(capsys):
    from rich.console import Console

    console = Console()  # pytest's captured stdout: not a terminal
    assert not console.is_terminal
    with StageProgress(console, "classify", 10, completed=4, unit="records") as bar:
        bar.advance(3)
        bar.advance(3, "done")
    with StageProgress(console, "hidden", 2, enabled=False) as bar:
        bar.advance(2)
    lines = capsys.readouterr().out.splitlines()
    assert [re.sub(r" \(.*\)$", "", x) for x in lines] == ["classify: 7/10 records", "classify: 10/10 records, done"]
    assert re.fullmatch(r"classify: 7/10 records \([0-9.e+]+ records/s, ~\d+:\d\d:\d\d left\)", lines[0])


def test_eval_header_progress_lines_and_a_rerun_with_nothing_to_do(data_dir, tmp_path, capsys):
    script, out = CASES["mathverse"][0], tmp_path / "run"
    run(["mathverse"], out, model="m", data_dir=data_dir, batch_size=2,
        engine=engine_for("mathverse", data_dir, tmp_path, script))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "eval: mathverse (4 items, 0 already done) with m"
    steps = [x for x in lines if x.startswith("mathverse: ") and " generated" in x]
    assert [x.split(" (")[0] for x in steps] == ["mathverse: 2/4 items generated, 1 right",
                                                 "mathverse: 4/4 items generated, 2 right"]
    assert any(x.startswith("mathverse: 2/4 correct") for x in lines)  # the table, as before
    assert lines[-1] == f"results: {out / 'results.json'}"

    idle = engine_for("mathverse", data_dir, tmp_path, script)
    run(["mathverse"], out, model="m", data_dir=data_dir, engine=idle)
    assert capsys.readouterr().out.splitlines() == [
        f"mathverse: 2/4 reward, 2/3 official +1 judge (nothing to do; results in {out / 'results.json'})"]
    assert idle.seen == []

    # Nothing to generate, but other counts than results.json holds (a smaller --limit): header and table again.
    run(["mathverse"], out, model="m", data_dir=data_dir, engine=idle, limit=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "eval: mathverse (2 items, 2 already done) with m"
    assert any(x.startswith("mathverse: 1/2 correct") for x in lines) and idle.seen == []


def test_a_resumed_eval_says_how_many_items_were_done(data_dir, tmp_path, capsys):
    script, out = CASES["mathverse"][0], tmp_path / "run"
    run(["mathverse"], out, model="m", data_dir=data_dir, limit=3,
        engine=engine_for("mathverse", data_dir, tmp_path, script))
    capsys.readouterr()
    run(["mathverse"], out, model="m", data_dir=data_dir, engine=engine_for("mathverse", data_dir, tmp_path, script))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "eval: mathverse (4 items, 3 already done) with m"
    assert lines[1].startswith("mathverse: 4/4 items generated, ")


def _run_folder(root: Path, model_dir: Path) -> Path:
    """A train-phase run folder as train-phase leaves it: run_config.json, final/, checkpoints/step-N/."""
    run_dir = root / "runs" / "fra"
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copytree(model_dir, run_dir / "final")
    shutil.copytree(model_dir, run_dir / "checkpoints" / "step-000040")
    (run_dir / "run_config.json").write_text(json.dumps({"command": "train-phase", "settings": {"phase": "fra"}}))
    return run_dir


def test_the_header_says_which_model_of_a_train_phase_run(tmp_path, tiny_model_dir):
    run_dir = _run_folder(tmp_path, tiny_model_dir)
    final = run_dir / "final"
    assert describe_model(final) == f"{final} (train-phase run {run_dir}, phase fra, final model)"
    step = run_dir / "checkpoints" / "step-000040"
    assert describe_model(step) == f"{step} (train-phase run {run_dir}, phase fra, checkpoint at step 40)"
    assert describe_model(tiny_model_dir) == str(tiny_model_dir)
    assert describe_model("Org/Name") == "Org/Name"


def test_cli_eval_into_a_log_file_names_the_model_and_shows_progress(tmp_path, tiny_model_dir, data_dir):
    """The real HF engine on CPU, stdout a pipe (as `> eval.log`): header, a progress line, then the rerun's line."""
    run_dir = _run_folder(tmp_path, tiny_model_dir)
    out = tmp_path / "ev"
    args = ("eval", "--bench", "math500", "--model", run_dir, "--out", out, "--limit", "2", "--max-new-tokens", "2",
            "--engine", "hf", "--batch-size", "1")
    lines = run_cli(*args, INFIMMR_DATA=str(data_dir)).stdout.splitlines()
    assert lines[0] == (f"eval: math500 (2 items, 0 already done) with {run_dir / 'final'} "
                        f"(train-phase run {run_dir}, phase fra, final model)")
    assert [x.split(",")[0] for x in lines[1:3]] == ["math500: 1/2 items generated", "math500: 2/2 items generated"]
    entry = json.loads((out / "results.json").read_text())["benchmarks"]["math500"]
    assert entry["model"] == str((run_dir / "final").resolve())
    again = run_cli(*args, INFIMMR_DATA=str(data_dir)).stdout.splitlines()
    k, ok = entry["accuracy"]["k"], entry["official"]["k"]
    assert again == [f"math500: {k}/2 reward, {ok}/2 official (nothing to do; results in {out / 'results.json'})"]


def test_classify_into_a_log_file_shows_a_line_per_chunk_counting_what_a_resume_found(tmp_path, capsys):
    """classify and caption share the helper: off a terminal a line per chunk, N counting the records found done."""
    from test_classify_caption import ScriptedEngine, factory, make_records

    from infimmr_cli.commands import classify

    src = make_records(tmp_path, [(f"r{k}", [k + 1]) for k in range(5)])
    out = tmp_path / "typed.jsonl"
    with pytest.raises(RuntimeError):
        classify.run(src, out, engine_factory=factory(ScriptedEngine(lambda tag, req: "chart", fail_after_calls=1)),
                     batch_size=2)
    capsys.readouterr()
    classify.run(src, out, engine_factory=factory(ScriptedEngine(lambda tag, req: "table")), batch_size=2)
    steps = [x.split(" (")[0] for x in capsys.readouterr().out.splitlines() if x.startswith("classify: ")
             and "/5 records" in x]
    assert steps == ["classify: 4/5 records", "classify: 5/5 records"]


def test_train_phase_into_a_log_file_shows_a_line_per_step(tmp_path, train_data, tiny_model_dir, capsys):
    from test_train_phase import _train

    _train(tmp_path / "run", train_data, tiny_model_dir, phase="fra", steps=2)
    steps = [x for x in capsys.readouterr().out.splitlines() if x.startswith("fra: ")]
    assert [x.split(", reward")[0] for x in steps] == ["fra: 1/2 steps", "fra: 2/2 steps"]
    assert re.fullmatch(r"fra: 1/2 steps, reward \d\.\d{3}, len \d+ \([0-9.e+]+ steps/s, ~\d+:\d\d:\d\d left\)",
                        steps[0])


def _results(folder: Path, entries: dict) -> str:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"benchmarks": entries}))
    return str(folder)


def _entry(k: int, n: int, ok: int, on: int, judge: int = 0) -> dict:
    return {"accuracy": {"k": k, "n": n}, "official": {"k": ok, "n": on}, "official_judge": judge}


def _drawn(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    return fig.axes[0]


def _overlaps(texts) -> list[tuple[str, str]]:
    boxes = [(t.get_text(), t.get_window_extent()) for t in texts if t.get_text()]
    return [(a, b) for i, (a, x) in enumerate(boxes) for b, y in boxes[i + 1:] if x.overlaps(y)]


def test_compare_chart_has_a_title_benches_with_n_values_as_k_over_n_and_a_legend(tmp_path):
    from infimmr_cli.evaluation import compare

    runs = {"base": {"mathvista": _entry(0, 6, 0, 6), "mathverse": _entry(1, 6, 1, 5, judge=1)},
            "fra": {"mathvista": _entry(3, 6, 2, 6), "mathverse": _entry(2, 6, 2, 5, judge=1)},
            "mre": {"mathvista": _entry(6, 6, 6, 6), "mathverse": _entry(4, 6, 4, 5, judge=1)}}
    rows = [compare.load_row(label, _results(tmp_path / label, e)) for label, e in runs.items()]
    ax = _drawn(compare.compare_figure(rows))
    assert ax.get_title().splitlines()[0] == "Accuracy per benchmark (%)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["MathVerse\nN=5 +1 judge", "MathVista\nN=6"]
    labels = [t.get_text() for t in ax.texts]  # bar labels, run by run, bench by bench (official rule: headline)
    assert labels == ["20.0%\n1/5", "0.0%\n0/6", "40.0%\n2/5", "33.3%\n2/6", "80.0%\n4/5", "100.0%\n6/6"]
    assert all(t.get_fontsize() >= 8 and t.get_rotation() == 0 for t in ax.texts)
    assert not _overlaps(ax.texts)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["base", "fra", "mre"]
    assert ax.get_ylim()[1] > 100  # a 100% bar's label stays inside the axes

    # Many bars (the paper's rows added): the labels turn upright on one line and still do not overlap; runs that
    # scored different N show the range; the paper's numbers as printed.
    rows[1] = compare.load_row("fra", _results(tmp_path / "fra4", {"mathvista": _entry(3, 4, 2, 4)}))
    ax = _drawn(compare.compare_figure(rows + compare.paper_rows()))
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[-1] == "MathVista\nN=4–6" and "MathVision" in ticks  # only paper numbers there: no N
    texts = [t.get_text() for t in ax.texts]
    assert "50.0% 2/4" in texts and "43.68" in texts
    assert all(t.get_rotation() == 90 for t in ax.texts) and not _overlaps(ax.texts)
    assert len(ax.get_legend().get_texts()) == 3 + len(compare.paper_rows())


def test_a_rescore_names_the_predictions_file_and_prints_its_table(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    run(["mathverse"], out, model="m", data_dir=data_dir, quiet=True,
        engine=engine_for("mathverse", data_dir, tmp_path, CASES["mathverse"][0]))
    preds = out / "mathverse" / "predictions.jsonl"
    run(["mathverse"], tmp_path / "again", data_dir=data_dir, predictions=[preds])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"eval: mathverse (4 items) rescoring {preds}"
    assert any(x.startswith("mathverse: 2/4 correct") for x in lines)
