"""`infimmr eval`: exact k/N per subset on each benchmark's real schema, rescoring, resume after a kill, the compare table.

Completions are scripted (a fake engine), and each is right or wrong under any sane rule (`7` vs gold `5`, letter `B` vs
gold `B`), so these counts hold with the placeholder rewards and with the real ones. Rule-specific checks (tolerance,
multiple answers, precision) live in test_eval_rules.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import exports
from conftest import run_cli
from infimmr_cli.commands import compare as compare_cmd
from infimmr_cli.commands.eval import bench_records, run
from infimmr_cli.errors import UsageError
from infimmr_cli.evaluation.benches import BENCHES
from infimmr_cli.evaluation.tally import Count, tally
from infimmr_cli.data.prompt import question_text
from infimmr_cli.data.records import Record, RecordError
from infimmr_cli.rollout.base import Completion

# bench -> the export maker and where it goes under the data folder (the documented layout).
LAYOUT = {"math500": "math500", "mathverse": "mathverse", "mathvision": "mathvision", "mathvista": "mathvista",
          "olympiadbench": "olympiadbench"}


def answer(text: str) -> str:
    return f"<think>working</think><answer>{text}</answer>"


class ScriptedEngine:
    """Answers each prompt from a script keyed by record id; `fail_after` raises once that many items are done."""

    def __init__(self, script: dict[str, str], text_to_id: dict[str, str], fail_after: int | None = None):
        self.script, self.text_to_id, self.fail_after = script, text_to_id, fail_after
        self.seen: list[str] = []

    def generate(self, requests, sampling):
        assert sampling.greedy and sampling.n == 1
        outs = []
        for req in requests:
            assert req.messages[0]["role"] == "system" and "<think>" in req.messages[0]["content"][0]["text"]
            user = req.messages[-1]["content"]
            assert len(req.images) == sum(1 for c in user if c["type"] == "image")
            if self.fail_after is not None and len(self.seen) >= self.fail_after:
                raise RuntimeError("engine died")
            rid = self.text_to_id[user[-1]["text"]]
            self.seen.append(rid)
            outs.append([Completion(self.script[rid], [1, 2, 3])])
        return outs


def engine_for(bench: str, data_dir: Path, tmp: Path, script: dict[str, str], **kw) -> ScriptedEngine:
    recs, _ = bench_records(BENCHES[bench], tmp / "probe", data_dir, None)
    assert sorted(r.id for r in recs) == sorted(script), "the script must cover exactly the export's items"
    return ScriptedEngine(script, {question_text(r): r.id for r in recs}, **kw)


def c(k: int, n: int) -> dict:
    return {"k": k, "n": n, "pct": round(100 * k / n, 4)}


# Per bench: the scripted completions, then the exact counts they must give.
CASES = {
    "math500": (
        {"test/precalculus/807.json": answer("7"), "test/prealgebra/1.json": answer("5")},
        c(1, 2), c(2, 2),
        {"level": {"1": c(1, 1), "2": c(0, 1)}, "subject": {"Prealgebra": c(1, 1), "Precalculus": c(0, 1)}}),
    "mathverse": (
        {"1": answer("A"), "2": answer("D"), "5": answer("B"), "6": "2\\sqrt{3} without the tags"},
        c(2, 4), c(3, 4),
        {"problem_version": {"Text Dominant": c(1, 1), "Text Lite": c(0, 1), "Vision Intensive": c(0, 1),
                             "Vision Only": c(1, 1)},
         "question_type": {"free-form": c(0, 1), "multi-choice": c(2, 3)}}),
    "mathvision": (
        {"1": answer("C"), "7": answer("13")},
        c(1, 2), c(2, 2),
        {"subject": {"arithmetic": c(1, 1), "counting": c(0, 1)}, "level": {"1": c(0, 1), "2": c(1, 1)}}),
    "mathvista": (
        {"3": answer("B"), "1": answer("1.25"), "2": answer("1000"), "9": answer("Chile")},
        c(3, 4), c(4, 4),
        {"category": {"general-vqa": c(1, 2), "math-targeted-vqa": c(2, 2)},
         "task": {"figure question answering": c(1, 2), "geometry problem solving": c(1, 1),
                  "textbook question answering": c(1, 1)},
         "question_type": {"free_form": c(2, 3), "multi_choice": c(1, 1)}}),
    "olympiadbench": (
        {"1606": answer("12"), "1700": answer("4"), "1801": answer("2 \\sqrt{3}")},
        c(2, 3), c(3, 3),
        {"subfield": {"Geometry": c(2, 3)}, "answers": {"multiple": c(0, 1), "single": c(2, 2)}}),
}


# Per bench: the official rule's count over the same scripted completions, and how many items it leaves to a judge.
OFFICIAL = {"math500": (c(1, 2), 0), "mathverse": (c(2, 3), 1), "mathvision": (c(1, 2), 0),
            "mathvista": (c(3, 4), 0), "olympiadbench": (c(2, 3), 0)}


def test_tally_counts_only_full_accuracy_and_skips_missing_subset_values():
    recs = [Record(id=str(i), source="x", question="q", answer="1", answer_type="math", meta=m)
            for i, m in enumerate([{"level": 2}, {"level": 10}, {"level": 2}, {}])]
    scores = [{"accuracy": 1.0, "format": 1.0}, {"accuracy": 0.2, "format": 1.0},  # right type, wrong value
              {"accuracy": 0.0, "format": 0.0}, {"accuracy": 1.0, "format": 1.0}]
    out = tally(recs, scores, subsets=(("level", lambda r: r.meta.get("level")),))
    assert out["accuracy"] == Count(2, 4) and out["format"] == Count(3, 4)
    # numeric order (2 before 10), the record without a level left out of this breakdown only
    assert list(out["subsets"]["level"].items()) == [("2", Count(1, 2)), ("10", Count(0, 1))]
    assert str(Count(1, 3)) == "1/3 (33.33%)"


@pytest.mark.parametrize("bench", list(CASES))
def test_each_bench_counts_exact_k_over_n_overall_and_per_subset(bench, data_dir, tmp_path):
    script, acc, fmt, subsets = CASES[bench]
    engine = engine_for(bench, data_dir, tmp_path, script)
    out = tmp_path / "run"
    entry = run([bench], out, model="scripted", data_dir=data_dir, engine=engine, quiet=True)[bench]
    assert (entry["accuracy"], entry["format"]) == (acc, fmt)
    assert entry["subsets"] == subsets
    assert list(entry["subsets"].get("problem_version", {})) == [  # the paper's version order, not alphabetical
        v for v in ["Text Dominant", "Text Lite", "Vision Intensive", "Vision Only"] if bench == "mathverse"]
    assert entry["coverage"] == {"scored": acc["n"], "records": acc["n"], "benchmark": BENCHES[bench].items}
    assert json.loads((out / "results.json").read_text())["benchmarks"][bench] == entry
    lines = [json.loads(x) for x in (out / bench / "predictions.jsonl").read_text().splitlines()]
    assert sorted(p["id"] for p in lines) == sorted(script)
    for p in lines:
        assert p["completion"] == script[p["id"]] and set(p) >= {"prompt", "extracted", "format", "accuracy", "gold"}
    assert sum(p["correct"] for p in lines) == acc["k"]
    # The official column beside ours: results.json, predictions (one verdict a line; None = needs the judge).
    official, judge = OFFICIAL[bench]
    assert (entry["official"], entry["official_judge"]) == (official, judge)
    assert sum(p["official"] is True for p in lines) == official["k"]
    assert sum(p["official"] is None for p in lines) == judge
    if bench == "mathverse":  # free-form counted apart: the official subsets hold the multi-choice items only
        assert entry["official_subsets"]["question_type"] == {"multi-choice": c(2, 3)}


def test_results_json_accumulates_benches_run_at_different_times(data_dir, tmp_path):
    out = tmp_path / "run"
    for bench in ("math500", "mathvision"):
        run([bench], out, model="m", data_dir=data_dir, quiet=True,
            engine=engine_for(bench, data_dir, tmp_path, CASES[bench][0]))
    assert sorted(json.loads((out / "results.json").read_text())["benchmarks"]) == ["math500", "mathvision"]


def test_rescore_predictions_made_elsewhere_without_a_model(data_dir, tmp_path):
    # Another tool's file: integer ids, only id and completion, one item not predicted.
    other = tmp_path / "elsewhere.jsonl"
    other.write_text("".join(json.dumps(o) + "\n" for o in [
        {"id": 1, "completion": answer("A")}, {"id": 2, "completion": answer("C")}, {"id": 6, "completion": "x"}]))
    out = tmp_path / "rescored"
    entry = run(["mathverse"], out, data_dir=data_dir, predictions=[other], quiet=True)["mathverse"]
    assert entry["accuracy"] == c(2, 3) and entry["coverage"]["scored"] == 3 and entry["coverage"]["records"] == 4
    assert entry["subsets"]["problem_version"] == {"Text Dominant": c(1, 1), "Text Lite": c(1, 1),
                                                   "Vision Intensive": c(0, 1)}
    assert entry["rescored_from"] == str(other.resolve())
    # Rescoring our own predictions file in place gives the same counts.
    again = run(["mathverse"], out, data_dir=data_dir, predictions=[out / "mathverse" / "predictions.jsonl"],
                quiet=True)["mathverse"]
    assert again["accuracy"] == c(2, 3)


def test_official_column_keeps_the_official_quirks(data_dir, tmp_path):
    # MathVista integer golds compare as str(int(float(x))): 1000.9 is right officially, wrong under the reward rule.
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps(o) + "\n" for o in [
        {"id": "2", "completion": answer("1000.9")}, {"id": "3", "completion": answer("B")}]))
    entry = run(["mathvista"], tmp_path / "o", data_dir=data_dir, predictions=[preds], quiet=True)["mathvista"]
    assert entry["accuracy"] == c(1, 2) and entry["official"] == c(2, 2) and entry["official_judge"] == 0


def test_old_predictions_without_official_verdicts_get_them_on_report(data_dir, tmp_path):
    out = tmp_path / "run"
    run(["mathverse"], out, model="m", data_dir=data_dir, quiet=True,
        engine=engine_for("mathverse", data_dir, tmp_path, CASES["mathverse"][0]))
    pred = out / "mathverse" / "predictions.jsonl"
    lines = [json.loads(x) for x in pred.read_text().splitlines()]
    pred.write_text("".join(json.dumps({k: v for k, v in p.items() if k != "official"}) + "\n" for p in lines))
    entry = run(["mathverse"], out, model="m", data_dir=data_dir, quiet=True,
                engine=engine_for("mathverse", data_dir, tmp_path, CASES["mathverse"][0], fail_after=0))["mathverse"]
    assert (entry["official"], entry["official_judge"]) == OFFICIAL["mathverse"]


def test_rescore_names_the_bad_line(data_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "1", "completion": "x"}) + "\n" + json.dumps({"id": "2"}) + "\n")
    with pytest.raises(RecordError, match=r"bad.jsonl:2: completion: expected a string"):
        run(["mathverse"], tmp_path / "o", data_dir=data_dir, predictions=[bad], quiet=True)
    bad.write_text(json.dumps({"id": "999", "completion": "x"}) + "\n")
    with pytest.raises(RecordError, match=r"bad.jsonl: id: '999' .*not among the 4 mathverse records"):
        run(["mathverse"], tmp_path / "o", data_dir=data_dir, predictions=[bad], quiet=True)


def test_a_killed_eval_resumes_without_duplicates_or_losses(data_dir, tmp_path):
    script = CASES["mathverse"][0]
    out = tmp_path / "run"
    dying = engine_for("mathverse", data_dir, tmp_path, script, fail_after=2)
    with pytest.raises(RuntimeError, match="engine died"):
        run(["mathverse"], out, model="m", data_dir=data_dir, engine=dying, batch_size=1, quiet=True)
    partial = out / "mathverse" / "predictions.jsonl.partial"
    assert not (out / "mathverse" / "predictions.jsonl").exists()
    assert [json.loads(x)["id"] for x in partial.read_text().splitlines()] == dying.seen == ["1", "2"]
    with partial.open("a") as fh:
        fh.write('{"id": "5", "compl')  # a kill mid-write leaves a torn line: it is dropped and item 5 redone

    fresh = engine_for("mathverse", data_dir, tmp_path, script)
    entry = run(["mathverse"], out, model="m", data_dir=data_dir, engine=fresh, batch_size=1, quiet=True)["mathverse"]
    assert fresh.seen == ["5", "6"]  # only what was missing
    ids = [json.loads(x)["id"] for x in (out / "mathverse" / "predictions.jsonl").read_text().splitlines()]
    assert sorted(ids) == ["1", "2", "5", "6"] and not partial.exists()
    assert entry["accuracy"] == CASES["mathverse"][1]


def test_a_larger_limit_extends_the_predictions_and_other_settings_are_refused(data_dir, tmp_path):
    script, out = CASES["mathverse"][0], tmp_path / "run"
    first = engine_for("mathverse", data_dir, tmp_path, script)
    assert run(["mathverse"], out, model="m", data_dir=data_dir, engine=first, limit=2,
               quiet=True)["mathverse"]["accuracy"] == c(1, 2)
    more = engine_for("mathverse", data_dir, tmp_path, script)
    assert run(["mathverse"], out, model="m", data_dir=data_dir, engine=more, quiet=True)["mathverse"]["accuracy"] == \
        c(2, 4)
    assert more.seen == ["5", "6"]
    with pytest.raises(UsageError, match=r"run.json: model: .*'m'.*'other'"):
        run(["mathverse"], out, model="other", data_dir=data_dir, engine=more, quiet=True)
    with pytest.raises(UsageError, match=r"run.json: sampling"):
        run(["mathverse"], out, model="m", data_dir=data_dir, engine=more, max_new_tokens=5, quiet=True)


def test_missing_export_and_wrong_records_are_named(data_dir, tmp_path):
    idle = ScriptedEngine({}, {})
    with pytest.raises(UsageError, match=r"mathvista: no export found under .*empty.*mathvista/data/testmini-\*"
                                         r"\.parquet.*AI4Math/MathVista"):
        run(["mathvista"], tmp_path / "o", model="m", data_dir=tmp_path / "empty", engine=idle, quiet=True)
    recs = bench_records(BENCHES["math500"], tmp_path / "p", data_dir, None)[1]
    with pytest.raises(RecordError, match=r"is from 'math500', not mathverse"):
        run(["mathverse"], tmp_path / "o", model="m", records=[recs], engine=idle, quiet=True)
    with pytest.raises(UsageError, match=r"--records: 1 files for 2 --bench"):
        run(["mathverse", "math500"], tmp_path / "o", model="m", records=[recs], engine=idle, quiet=True)


def test_compare_table_in_the_paper_shape_as_markdown_and_png(data_dir, tmp_path):
    runs = {}
    for name, flip in (("base", False), ("mre", True)):
        out = tmp_path / name
        for bench in ("mathverse", "olympiadbench"):
            script = dict(CASES[bench][0])
            if flip:  # the later checkpoint also gets the items it missed
                script = {k: answer(_gold(bench, data_dir, tmp_path, k)) for k in script}
            run([bench], out, model=name, data_dir=data_dir, quiet=True,
                engine=engine_for(bench, data_dir, tmp_path, script))
        runs[name] = out
    res = compare_cmd.run([str(runs["base"]), f"MRE={runs['mre']}"], tmp_path / "table", quiet=True)
    assert res.text.splitlines()[:4] == [
        "| model | MathVerse reward | MathVerse official | OlympiadBench reward | OlympiadBench official |",
        "|---|---:|---:|---:|---:|",
        "| base | 50.00 (2/4) | 66.67 (2/3) +1 judge | 66.67 (2/3) | 66.67 (2/3) |",
        "| MRE | 100.00 (4/4) | 100.00 (3/3) +1 judge | 100.00 (3/3) | 100.00 (3/3) |",
    ]
    assert (tmp_path / "table" / "compare.md").read_text() == res.text
    assert res.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and res.png.stat().st_size > 1000
    with_paper = compare_cmd.run([str(runs["base"])], tmp_path / "t2", with_paper=True, quiet=True).text
    # The paper's numbers sit in the official column (README: which column they correspond to).
    assert "| Infi-MMR-3B (paper) | – | 65.5 | – | 43.68 | – | 27.04 | – | 21.33 | – | 67.2 |" in with_paper
    assert with_paper.splitlines()[0] == (
        "| model | MATH500 reward | MATH500 official | MathVerse reward | MathVerse official | MathVision reward | "
        "MathVision official | OlympiadBench reward | OlympiadBench official | MathVista reward | MathVista official |")
    # A results.json written before the official column existed still reads: its official cells show "–".
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    entry = json.loads((runs["base"] / "results.json").read_text())["benchmarks"]["olympiadbench"]
    old = {k: v for k, v in entry.items() if not k.startswith("official")}
    (legacy / "results.json").write_text(json.dumps({"benchmarks": {"olympiadbench": old}}))
    assert "| legacy | 66.67 (2/3) | – |" in compare_cmd.run([str(legacy)], tmp_path / "t4", quiet=True).text
    with pytest.raises(UsageError, match="no results.json"):
        compare_cmd.run([str(tmp_path / "nothing")], tmp_path / "t3", quiet=True)
    # Table 2's shape (RQ2): its four multimodal columns, its three paper rows
    table2 = compare_cmd.run([f"capfre={runs['mre']}"], tmp_path / "t5", with_paper=True, table="2", quiet=True).text
    assert table2.splitlines()[:6] == [
        "| model | MathVerse reward | MathVerse official | MathVision reward | MathVision official | "
        "OlympiadBench reward | OlympiadBench official | MathVista reward | MathVista official |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        "| capfre | 100.00 (4/4) | 100.00 (3/3) +1 judge | – | – | 100.00 (3/3) | 100.00 (3/3) | – | – |",
        "| Infi-MMR_FRA (paper) | – | 40.8 | – | 23.91 | – | 19.33 | – | 62.9 |",
        "| Infi-MMR_CMRA (paper) | – | 42.84 | – | 26.34 | – | 19.33 | – | 63.5 |",
        "| Infi-MMR_CapFre (paper) | – | 41.94 | – | 25.88 | – | 18.67 | – | 63.9 |",
    ]
    with pytest.raises(UsageError, match="--table: '3'"):
        compare_cmd.run([str(runs["base"])], tmp_path / "t6", table="3", quiet=True)


def _gold(bench: str, data_dir: Path, tmp: Path, rid: str) -> str:
    recs, _ = bench_records(BENCHES[bench], tmp / "probe", data_dir, None)
    return {r.id: r.answer for r in recs}[rid]


@pytest.mark.slow
def test_cli_eval_of_every_bench_on_the_tiny_model(tiny_model_dir, data_dir, tmp_path):
    """The designated end-to-end run: the real HF engine on CPU, a few items of each bench, through the CLI."""
    out = tmp_path / "tiny-eval"
    benches = [a for b in LAYOUT for a in ("--bench", b)]
    proc = run_cli("eval", *benches, "--model", tiny_model_dir, "--out", out, "--limit", "2", "--max-new-tokens",
                   "6", "--engine", "hf", "--batch-size", "2", INFIMMR_DATA=str(data_dir))
    results = json.loads((out / "results.json").read_text())["benchmarks"]
    assert sorted(results) == sorted(LAYOUT)
    for bench, entry in results.items():
        assert entry["accuracy"]["n"] == 2 and entry["engine"] == "HFEngine"
        lines = (out / bench / "predictions.jsonl").read_text().splitlines()
        assert len(lines) == 2 and all(json.loads(x)["completion_tokens"] <= 6 for x in lines)
        assert f"{bench}: {entry['accuracy']['k']}/2 correct" in proc.stdout
    table = run_cli("compare", f"tiny={out}", "--out", tmp_path / "cmp")
    assert "tiny" in table.stdout and (tmp_path / "cmp" / "compare.png").is_file()
    assert (tmp_path / "cmp" / "compare.md").read_text().splitlines()[2].startswith("| tiny | ")
    missing = run_cli("eval", "--bench", "math500", "--model", tmp_path / "no-model", "--out", out, check=False)
    assert missing.returncode == 2 and "no-model: model directory not found" in missing.stderr


def test_rich_table_shows_both_columns_and_the_judge_note(data_dir, tmp_path):
    from rich.console import Console

    from infimmr_cli.evaluation.report import print_bench

    entry = run(["mathverse"], tmp_path / "o", model="m", data_dir=data_dir, quiet=True,
                engine=engine_for("mathverse", data_dir, tmp_path, CASES["mathverse"][0]))["mathverse"]
    console = Console(record=True, width=200)
    print_bench(console, entry)
    text = console.export_text()
    assert "mathverse: 2/4 correct (50.00%) by the reward rule, official 2/3 (66.67%)" in text
    assert "judge: 1 items not scored" in text
    assert "reward" in text and "official" in text
    # the free-form subset row: scored by the reward rule, not by the official one
    assert any("free-form" in line and "0/1" in line and "–" in line for line in text.splitlines())
def test_prepared_bench_records_are_reused_until_the_export_changes(tmp_path, monkeypatch):
    from infimmr_cli.commands import prepare as prepare_cmd
    from infimmr_cli.provenance import read_provenance

    data = tmp_path / "data"
    export = exports.make_math500_export(data / "math500")
    calls = []
    real = prepare_cmd.run
    monkeypatch.setattr(prepare_cmd, "run", lambda *a, **k: calls.append(a) or real(*a, **k))
    out = tmp_path / "out"
    first, path = bench_records(BENCHES["math500"], out, data, None)
    again, _ = bench_records(BENCHES["math500"], out, data, None)
    assert len(calls) == 1 and [r.to_dict() for r in again] == [r.to_dict() for r in first]
    rec = read_provenance(path)
    assert rec["command"] == "prepare" and rec["inputs"]["input"]["path"] == str(export.resolve())
    # the export changes in place (same path, new content): the records are prepared again from it
    export.write_text(export.read_text().replace("What is $2+3$?", "What is $3+2$?"))
    changed, _ = bench_records(BENCHES["math500"], out, data, None)
    assert len(calls) == 2 and "What is $3+2$?" in [r.question for r in changed]
    bench_records(BENCHES["math500"], out, data, None)
    assert len(calls) == 2


def test_every_eval_output_has_a_provenance_record(data_dir, tmp_path):
    from infimmr_cli.provenance import read_provenance

    script, out = CASES["math500"][0], tmp_path / "run"
    run(["math500"], out, model="m", data_dir=data_dir, engine=engine_for("math500", data_dir, tmp_path, script),
        quiet=True)
    origin = read_provenance(out / "math500" / "run.json")
    assert origin["command"] == "eval" and origin["settings"]["model"] == "m"
    assert origin["inputs"]["records"]["path"] == str((out / "math500" / "records.jsonl").resolve())
    results = read_provenance(out / "results.json")
    assert results["settings"]["benches"] == ["math500"] and set(results["inputs"]) == {"predictions[math500]"}
    table = compare_cmd.run([f"a={out}"], tmp_path / "table", quiet=True)
    cmp = read_provenance(tmp_path / "table" / "compare.provenance.json")
    assert cmp["command"] == "compare" and cmp["inputs"]["results[a]"]["path"] == str((out / "results.json").resolve())
    assert table.markdown.is_file()


def test_a_missing_data_dir_leaves_no_output_folder_behind(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.delenv("INFIMMR_DATA", raising=False)
    out = tmp_path / "never"
    with pytest.raises(UsageError, match="--data-dir: needed to find the math500 export"):
        run(["math500"], out, model=tiny_model_dir, quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # neither OUT nor its lock file
