import json

import pytest

from infimmr_cli.commands.plot import curriculum_series, parse_run, run
from infimmr_cli.data.records import RecordError
from infimmr_cli.errors import UsageError


def write_run(d, rewards):
    d.mkdir(parents=True)
    rows = [{"step": i + 1, "reward_mean": r, "accuracy_mean": r / 2, "response_len_mean": 10 + i}
            for i, r in enumerate(rewards)]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def test_phases_are_laid_end_to_end():
    runs = [("fra", [{"step": 1, "reward_mean": 0.1}, {"step": 2, "reward_mean": 0.2}]),
            ("cmra", [{"step": 1, "reward_mean": 0.3}, {"step": 2}, {"step": 3, "reward_mean": 0.5}])]
    assert curriculum_series(runs, "reward_mean") == [("fra", [1, 2], [0.1, 0.2]), ("cmra", [3, 5], [0.3, 0.5])]


def test_labels_come_from_the_spec_or_the_folder(tmp_path):
    assert parse_run("base=runs/x") == ("base", tmp_path.__class__("runs/x"))
    assert parse_run("runs/fra")[0] == "fra"


def test_plot_writes_a_png(tmp_path):
    write_run(tmp_path / "fra", [0.1, 0.2])
    write_run(tmp_path / "cmra", [0.3, 0.4, 0.5])
    png = run([str(tmp_path / "fra"), f"C={tmp_path / 'cmra'}"], tmp_path / "plots")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_or_broken_metrics_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.jsonl: no metrics"):
        run([str(tmp_path / "nope")], tmp_path / "plots")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "metrics.jsonl").write_text('{"step": 1}\n{oops\n')
    with pytest.raises(RecordError, match=r"metrics.jsonl:2:2: <line>: not valid JSON"):
        run([str(tmp_path / "bad")], tmp_path / "plots")


def test_figure3_overlays_runs_on_their_own_steps_with_the_validation_row_at_zero():
    from infimmr_cli.commands.plot import overlaid_series

    runs = [("text_rl", [{"step": 0, "val_accuracy": 0.1}, {"step": 1, "response_len_mean": 5.0},
                         {"step": 2, "response_len_mean": 7.0, "val_accuracy": 0.3}]),
            ("vision_rl", [{"step": 0, "val_accuracy": 0.1}, {"step": 1, "response_len_mean": 4.0}])]
    assert overlaid_series(runs, "val_accuracy") == [("text_rl", [0, 2], [0.1, 0.3]), ("vision_rl", [0], [0.1])]
    assert overlaid_series(runs, "response_len_mean") == [("text_rl", [1, 2], [5.0, 7.0]), ("vision_rl", [1], [4.0])]


def test_figure3_needs_validation_rows_and_writes_figure3_png(tmp_path):
    write_run(tmp_path / "text", [0.1, 0.2])
    with pytest.raises(UsageError, match="--val-data"):
        run([str(tmp_path / "text")], tmp_path / "plots", figure="figure3")
    with (tmp_path / "text" / "metrics.jsonl").open("a") as fh:
        fh.write(json.dumps({"step": 3, "val_accuracy": 0.5, "response_len_mean": 12}) + "\n")
    png = run([f"text_rl={tmp_path / 'text'}"], tmp_path / "plots", figure="figure3")
    assert png.name == "figure3.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(UsageError, match="--figure: 'fig9'"):
        run([str(tmp_path / "text")], tmp_path / "plots", figure="fig9")


def test_moving_average_is_the_trailing_mean():
    from infimmr_cli.commands.plot import moving_average

    assert moving_average([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    assert moving_average([2.0, 4.0], 5) == [2.0, 3.0]
    assert moving_average([], 3) == []
