"""The reward rules, each pinned to the decimal (overall = 0.1*format + 0.9*accuracy; accuracy in {0, 0.2, 1})."""

from __future__ import annotations

import logging
import time

import pytest

from infimmr_cli.rewards import plugins
from infimmr_cli.data.records import Record
from infimmr_cli.rewards.rules import score
from infimmr_cli.rewards.scoring import score_batch


def rec(answer: str, answer_type: str = "math", choices=None, rid: str = "r1", **meta) -> Record:
    return Record(id=rid, source="test", question="q", answer=answer, answer_type=answer_type, choices=choices,
                  meta=meta)


def done(answer: str, think: str = "reasoning") -> str:
    return f"<think>{think}</think><answer>{answer}</answer>"


def acc(answer: str, record: Record) -> float:
    return score(done(answer), record)["accuracy"]


# --------------------------------------------------------------------------------------------------------------- format
@pytest.mark.parametrize("completion", [
    "<think>r</think><answer>5</answer>",
    "  \n<think>r</think>\n\n<answer> 5 </answer>\n ",  # whitespace before, between, after, inside
    "<think>\nmulti\nline\n</think> <answer>\\boxed{5}</answer>",
    "<think>r</think><answer>$5$</answer>",
])
def test_format_accepted(completion):
    out = score(completion, rec("5"))
    assert out == {"overall": 1.0, "format": 1.0, "accuracy": 1.0, "extracted": "5"}


@pytest.mark.parametrize("completion", [
    "5",
    "<answer>5</answer>",  # no think
    "<think>r</think>",  # no answer
    "<think>r</think>so<answer>5</answer>",  # text between the blocks
    "intro <think>r</think><answer>5</answer>",  # text before
    "<think>r</think><answer>5</answer> done",  # text after
    "<answer>5</answer><think>r</think>",  # wrong order
    "<think>r<think>r</think></think><answer>5</answer>",  # nested think
    "<think>r</think><answer><answer>5</answer></answer>",  # nested answer
    "<think>r</think><answer>4</answer><answer>5</answer>",  # repeated answer
    "<think>r</think><think>s</think><answer>5</answer>",  # repeated think
    "<think>  </think><answer>5</answer>",  # empty reasoning
    "<think>r</think><answer> \n </answer>",  # empty answer
    "<THINK>r</THINK><ANSWER>5</ANSWER>",  # tags are case-sensitive
    "<think>r</think><answer>5",  # unclosed
])
def test_format_rejected_scores_zero_and_no_accuracy(completion):
    assert score(completion, rec("5")) == {"overall": 0.0, "format": 0.0, "accuracy": 0.0, "extracted": None}


def test_accuracy_is_zero_without_format():
    # The right answer outside the required format earns nothing at all.
    assert score("The answer is \\boxed{5}", rec("5"))["overall"] == 0.0


def test_overall_weights():
    assert score(done("5"), rec("5"))["overall"] == pytest.approx(0.1 + 0.9 * 1.0)
    assert score(done("6"), rec("5"))["overall"] == pytest.approx(0.1 + 0.9 * 0.2)  # 0.28
    assert score(done("x"), rec("5"))["overall"] == pytest.approx(0.1 + 0.9 * 0.0)  # 0.1


# ----------------------------------------------------------------------------------------------------------- extraction
@pytest.mark.parametrize("answer, extracted", [
    ("\\boxed{5}", "5"),
    ("\\boxed{\\boxed{5}}", "5"),  # nested boxes unwrap
    ("\\boxed{3} then \\boxed{5}", "5"),  # several boxes: the last counts
    ("The answer is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
    ("\\fbox{7}", "7"),
    ("$$x+1$$", "x+1"),
    ("\\(x\\)", "x"),
    ("\\[ 2 \\]", "2"),
    ("\\boxed{5", "\\boxed{5"),  # unbalanced: not a box
    ("\\boxed{4} \\boxed{5", "4"),  # the last COMPLETE box
])
def test_extracted_answer(answer, extracted):
    assert score(done(answer), rec("0"))["extracted"] == extracted


def test_several_boxes_last_counts():
    assert acc("\\boxed{3} or maybe \\boxed{5}", rec("5")) == 1.0
    assert acc("\\boxed{5} or maybe \\boxed{3}", rec("5")) == 0.2


# ----------------------------------------------------------------------------------------------------------------- math
@pytest.mark.parametrize("answer, gold, expected", [
    ("\\frac{1}{2}", "0.5", 1.0),
    ("1/2", "\\frac12", 1.0),
    ("\\dfrac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}", 1.0),
    ("x = 3", "3", 1.0),  # an assignment answers the number
    ("2\\pi/3", "\\frac{2\\pi}{3}", 1.0),
    ("(3, \\infty)", "(3,\\infty)", 1.0),
    ("\\{2, 1\\}", "\\{1,2\\}", 1.0),
    ("x^2 + 1", "1 + x^2", 1.0),
    ("5\\text{ cm}", "5", 1.0),
    ("7", "5", 0.2),  # number vs number, wrong value
    ("\\sqrt{3}", "5", 0.2),  # a constant is a number
    ("x + 1", "5", 0.0),  # expression vs number: wrong type
    ("\\{1, 3\\}", "\\{1,2\\}", 0.2),  # collection vs collection
    ("3", "\\{1,2\\}", 0.0),
    ("y = 2x", "y = 3x", 0.2),  # relation vs relation
    ("x^2", "x^3", 0.2),  # expression vs expression
    ("no idea", "5", 0.0),  # nothing math-verify can read
])
def test_math_accuracy(answer, gold, expected):
    assert acc(answer, rec(gold)) == pytest.approx(expected)


def test_math_guard_refuses_huge_or_deep_answers_without_parsing():
    start = time.monotonic()
    assert acc("7" * 1001, rec("5")) == 0.0
    assert acc("\\frac{1}{" * 51 + "2" + "}" * 51, rec("5")) == 0.0
    assert acc("{" * 5000, rec("5")) == 0.0
    assert time.monotonic() - start < 1.0
    assert acc("\\frac{1}{" * 10 + "2" + "}" * 10, rec("\\frac{1}{" * 10 + "2" + "}" * 10)) == 1.0  # 10 deep is fine


def test_math_gold_that_does_not_parse_is_compared_as_a_string():
    # (Plain words DO parse, as products of symbols: "yes" is E*s*y; a gold with "?" does not.)
    assert acc("  Is It? ", rec("is it?")) == 1.0
    assert acc("it is", rec("is it?")) == 0.0


@pytest.mark.parametrize("answer, gold", [
    ("√2", "\\sqrt{2}"),
    ("2√3", "2\\sqrt{3}"),
    ("π", "\\pi"),
    ("１２", "12"),  # full-width digits fold to ASCII
    ("x²+1", "x^2+1"),
    ("3×4", "12"),
    ("−3", "-3"),
    ("60°", "60"),
    ("∞", "\\infty"),
])
def test_math_unicode(answer, gold):
    assert acc(answer, rec(gold)) == 1.0


def test_math_precision_rounds_both_sides():  # MathVista
    r = rec("1.45", precision=2)
    assert acc("1.4499", r) == 1.0  # round(1.4499, 2) = 1.45
    assert acc("1.46", r) == 0.2
    assert acc("1.44", rec("1.4", precision=1)) == 1.0
    assert acc("1.454", rec("1.454")) == 1.0 and acc("1.45", rec("1.454")) == 0.2  # no precision: math-verify's rule


def test_math_tolerance_absolute():  # OlympiadBench
    assert acc("3.14", rec("\\pi", tolerance=0.01)) == 1.0  # |pi - 3.14| = 0.0016
    assert acc("3.1", rec("\\pi", tolerance=0.01)) == 0.2  # 0.0416 > 0.01
    assert acc("3.1", rec("\\pi", tolerance=[0.05])) == 1.0  # a one-element list
    # Exact difference, not float: 10^20 + 1 is 1 away from 10^20.
    assert acc("100000000000000000001", rec("10^{20}", tolerance=1e-8)) == 0.2


def test_math_multiple_answers_any_order_same_count():
    r = rec("1, 2", multiple_answers=True)
    assert acc("2, 1", r) == 1.0
    assert acc("1,2", r) == 1.0
    assert acc("1", r) == 0.0  # one answer of two
    assert acc("1, 2, 3", r) == 0.0
    assert acc("1, 3", r) == 0.2  # right count and kinds, one wrong
    assert acc("1, 1", r) == 0.2  # each prediction pairs with a different gold
    assert acc("x, 1", r) == 0.0  # kinds differ
    # Commas inside brackets do not split: two intervals.
    assert acc("[0, 1], (2, 3)", rec("(2,3), [0,1]", multiple_answers=True)) == 1.0


def test_math_multiple_answers_per_answer_tolerance():
    r = rec("1.0, 100", multiple_answers=True, tolerance=[0.01, 1])
    assert acc("100.5, 1.005", r) == 1.0
    assert acc("1.005, 101.5", r) == 0.2  # 1.5 > 1 for the second answer


# --------------------------------------------------------------------------------------------------------------- choice
OPTS = ["30", "45", "60", "90"]


@pytest.mark.parametrize("answer", ["B", "(B)", "\\boxed{B}", "B.", "B:", "B)", "B. 45", "B: 45", "(B) 45", "$B$",
                                    "\\text{B}", "\\boxed{\\text{B}}", "Ｂ", " B ", "45", "B. 60"])
def test_choice_gold_letter(answer):
    # "B. 60": the letter decides, the text after it is ignored. "45" is option B's text.
    assert acc(answer, rec("B", "choice", OPTS)) == 1.0


@pytest.mark.parametrize("answer", ["C", "(C)", "\\boxed{C}", "C. 60", "60"])
def test_choice_valid_wrong_letter(answer):
    assert acc(answer, rec("B", "choice", OPTS)) == pytest.approx(0.2)


@pytest.mark.parametrize("answer", ["E", "b", "B 45", "Bx", "B.5", "The answer is B", "50", "option"])
def test_choice_invalid(answer):
    # E is outside four choices; lower-case, unseparated text and prose are not option letters; 50 is no option text.
    assert acc(answer, rec("B", "choice", OPTS)) == 0.0


def test_choice_duplicated_options_are_one_answer():
    # Real MathVista row: options ['9', '12', '18', '18'], gold 18 (issue 10): either letter, or the text, is right.
    opts = ["9", "12", "18", "18"]
    assert [acc(a, rec("C", "choice", opts)) for a in ("C", "D", "18", "B", "12")] == [1.0, 1.0, 1.0, 0.2, 0.2]
    assert acc("1", rec("C", "choice", ["1", "1", "2"])) == 0.2  # a valid option, not the gold one


def test_choice_text_matches_after_normalisation():
    assert acc("  Isosceles   TRIANGLE", rec("A", "choice", ["isosceles triangle", "square"])) == 1.0


# --------------------------------------------------------------------------------------------------------------- string
@pytest.mark.parametrize("answer, expected", [
    ("Yes", 1.0), ("  yes \n", 1.0), ("\\boxed{YES}", 1.0), ("ｙｅｓ", 1.0), ("no", 0.0), ("yes.", 0.0)])
def test_string_normalised_exact_match(answer, expected):
    assert acc(answer, rec("yes", "string")) == expected


def test_string_collapses_inner_whitespace():
    assert acc("New \t  York", rec("new york", "string")) == 1.0
    assert acc("NewYork", rec("new york", "string")) == 0.0


# ----------------------------------------------------------------------------------------------------------- registry
def test_load_reward_registry_and_plugin(tmp_path):
    assert plugins.load_reward("default") is score
    plug = tmp_path / "plug.py"
    plug.write_text("def always(c, r):\n    return {'overall': 1.0, 'format': 1.0, 'accuracy': 1.0, 'extracted': c}\n")
    assert plugins.load_reward(f"{plug}:always")("x", rec("1"))["extracted"] == "x"
    with pytest.raises(ValueError, match="neither"):
        plugins.load_reward("nope")
    with pytest.raises(ValueError, match="no function"):
        plugins.load_reward(f"{plug}:missing")


# ------------------------------------------------------------------------------------------------------- score_batch
PATHOLOGICAL = {
    "digits": "7" * 200_000,
    "frac": "\\frac{1}{" * 400 + "2" + "}" * 400,
    "tower": "10^{10^{10^{10}}}",
    "braces": "$" + "{" * 5000 + "$",
    "unbalanced": "\\frac{1}{{{{2}",
}


def test_workers_zero_scores_in_process_like_score():
    comps, recs = [done("5"), done("C"), "x"], [rec("5"), rec("B", "choice", OPTS), rec("y", "string")]
    assert score_batch(comps, recs, workers=0) == [score(c, r) for c, r in zip(comps, recs)]


def test_batch_survives_pathological_answers(caplog):
    good = [(done("\\frac12"), rec("0.5", rid="g1")), (done("B"), rec("B", "choice", OPTS, rid="g2")),
            (done("7"), rec("5", rid="g3")), ("no format", rec("5", rid="g4"))]
    bad = [(done(a), rec("5", rid=f"bad-{k}")) for k, a in PATHOLOGICAL.items()]
    items = good[:2] + bad + good[2:]
    timeout = 2.0
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="infimmr_cli.rewards"):
        out = score_batch([c for c, _ in items], [r for _, r in items], workers=2, timeout=timeout)
    elapsed = time.monotonic() - start
    expect_good = [score(c, r) for c, r in good]
    assert [out[0], out[1], out[-2], out[-1]] == expect_good
    assert [o["overall"] for o in expect_good] == pytest.approx([1.0, 1.0, 0.28, 0.0])
    for o in out[2:-2]:  # each pathological item comes back scored 0 (a timeout or a plain miss), never right
        assert o["accuracy"] == 0.0 and o["overall"] <= 0.1
    # Every item that timed out is logged by record id; no item stretches the batch past its timeout (+ slack for
    # worker replacement on a loaded box): 5 items over 2 workers.
    for o, (_, r) in zip(out, items):
        if o.get("timeout"):
            assert r.id in caplog.text
    assert elapsed < 3 * (timeout + 1.5)


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_bare_score_refuses_pathological_answers_fast(name):
    # Refused before sympy computes a value, so a bare score() (no pool, no timeout) returns at once (issue 10 §2).
    start = time.monotonic()
    out = score(done(PATHOLOGICAL[name]), rec("5"))
    assert out["accuracy"] == 0.0 and time.monotonic() - start < 5.0


def test_an_item_past_its_timeout_is_killed_and_logged(tmp_path, caplog):
    # Pathological answers are now refused before sympy; a reward that hangs still costs a zero, never the batch.
    plug = tmp_path / "hangs.py"
    plug.write_text(
        "import time\n"
        "from infimmr_cli.rewards.rules import score\n"
        "def reward(c, r):\n"
        "    if r.id == 'hang':\n"
        "        time.sleep(60)\n"
        "    return score(c, r)\n")
    items = [(done("1"), rec("1", rid="ok1")), (done("1"), rec("1", rid="hang")), (done("2"), rec("2", rid="ok2"))]
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="infimmr_cli.rewards"):
        out = score_batch([c for c, _ in items], [r for _, r in items], reward=f"{plug}:reward", workers=2,
                          timeout=1.0)
    assert out[1]["timeout"] is True and out[1]["overall"] == 0.0 and "hang" in caplog.text
    assert [out[0]["overall"], out[2]["overall"]] == [1.0, 1.0]
    assert time.monotonic() - start < 20


def test_a_dead_worker_is_replaced(tmp_path, caplog):
    plug = tmp_path / "dies.py"
    plug.write_text(
        "import os\n"
        "from infimmr_cli.rewards.rules import score\n"
        "def reward(c, r):\n"
        "    if r.id == 'die':\n"
        "        os._exit(3)\n"
        "    return score(c, r)\n")
    items = [(done(str(i)), rec(str(i), rid=f"ok{i}")) for i in range(6)]
    items.insert(3, (done("1"), rec("1", rid="die")))
    with caplog.at_level(logging.WARNING, logger="infimmr_cli.rewards"):
        out = score_batch([c for c, _ in items], [r for _, r in items], reward=f"{plug}:reward", workers=2)
    assert out[3]["overall"] == 0.0 and "exit code 3" in out[3]["error"]
    assert "die" in caplog.text
    assert [o["overall"] for k, o in enumerate(out) if k != 3] == [1.0] * 6
    # The pool still works afterwards, with its full number of workers.
    again = score_batch([done("2")], [rec("2")], reward=f"{plug}:reward", workers=2)
    assert again[0]["overall"] == 1.0


def test_an_item_that_raises_scores_zero_with_the_error(tmp_path):
    plug = tmp_path / "raises.py"
    plug.write_text("def reward(c, r):\n    raise RuntimeError('boom')\n")
    out = score_batch([done("1")], [rec("1")], reward=f"{plug}:reward", workers=1)
    assert out[0]["overall"] == 0.0 and "boom" in out[0]["error"]


def test_score_batch_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 completions for 1 records"):
        score_batch(["a", "b"], [rec("1")], workers=0)


# ------------------------------------------------------------------------------------------------------ infimmr score
def test_score_command_table_and_output(tmp_path):
    import json

    from conftest import run_cli
    from infimmr_cli.data.records import write_records

    write_records(tmp_path / "r.jsonl", [rec("5", rid="m1"), rec("B", "choice", OPTS, rid="c1"),
                                         rec("yes", "string", rid="s1")])
    lines = [{"id": "m1", "completion": done("5")}, {"id": "m1", "completion": done("6")},
             {"id": "c1", "completion": done("(B)")}, {"id": "s1", "completion": "yes"}]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    proc = run_cli("score", "--records", tmp_path / "r.jsonl", "--completions", tmp_path / "c.jsonl",
                   "--out", tmp_path / "s.jsonl", "--workers", "0")
    assert "1/2" in proc.stdout and "2/4" in proc.stdout  # math 1 of 2 right; all 2 of 4
    rows = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [r["overall"] for r in rows] == pytest.approx([1.0, 0.28, 1.0, 0.0])
    assert [r["id"] for r in rows] == ["m1", "m1", "c1", "s1"]
    from infimmr_cli.provenance import read_provenance

    prov = read_provenance(tmp_path / "s.jsonl")
    assert prov["command"] == "score" and prov["results"] == {"scored": 4, "correct": 2, "timeouts": 0}
    assert set(prov["inputs"]) == {"records", "completions"}


def test_score_command_names_the_bad_line(tmp_path):
    from conftest import run_cli
    from infimmr_cli.data.records import write_records

    write_records(tmp_path / "r.jsonl", [rec("5", rid="m1")])
    (tmp_path / "c.jsonl").write_text('{"id": "m1", "completion": "x"}\n{"id": "zz", "completion": "x"}\n')
    proc = run_cli("score", "--records", tmp_path / "r.jsonl", "--completions", tmp_path / "c.jsonl", check=False)
    assert proc.returncode == 2 and "c.jsonl:2: id: 'zz'" in proc.stderr


def test_score_and_eval_share_one_completions_reader_and_one_meaning_of_correct(tmp_path):
    from rich.console import Console

    from infimmr_cli.commands.eval import read_predictions
    from infimmr_cli.commands.score import read_completions, summarize
    from infimmr_cli.data.records import RecordError
    from infimmr_cli.evaluation.tally import tally

    path = tmp_path / "c.jsonl"
    path.write_text('{"id": 7, "completion": "a"}\n')
    assert read_completions(path, {"7": rec("1", rid="7")}) == [("7", "a")]
    assert read_predictions(path)["7"]["completion"] == "a"
    path.write_text('{"id": "7", "completion": 3}\n')
    for read in (lambda: read_completions(path, {"7": rec("1", rid="7")}), lambda: read_predictions(path)):
        with pytest.raises(RecordError, match=r"c.jsonl:1: completion: expected a string, got int"):
            read()
    # an accuracy a rounding step below 1 (a plug-in reward's sum) is right for both commands
    rows = [{"answer_type": "math", "accuracy": 1 - 1e-12, "format": 1.0, "overall": 1.0},
            {"answer_type": "math", "accuracy": 0.2, "format": 1.0, "overall": 0.28}]
    console = Console(record=True, width=200)
    console.print(summarize(rows))
    assert "1/2" in console.export_text()
    assert tally([rec("1"), rec("2")], rows)["accuracy"].k == 1


def test_a_plugin_may_return_a_float_a_bool_or_a_dict_with_overall():
    assert plugins.as_score(0.5, "p.py:f") == {"overall": 0.5, "format": 0.0, "accuracy": 0.5, "extracted": None}
    assert plugins.as_score(True, "p.py:f")["overall"] == 1.0
    assert plugins.as_score({"overall": 0.3}, "p.py:f") == {"overall": 0.3, "format": 0.0, "accuracy": 0.3,
                                                             "extracted": None}
    full = {"overall": 1.0, "format": 1.0, "accuracy": 1.0, "extracted": "2"}
    assert plugins.as_score(full, "default") == full
    with pytest.raises(ValueError, match=r"reward: p\.py:f: returned list; expected a float, a bool or a dict"):
        plugins.as_score([1.0], "p.py:f")
    with pytest.raises(ValueError, match="without 'overall'"):
        plugins.as_score({"score": 1.0}, "p.py:f")
    with pytest.raises(ValueError, match="expected a finite number"):
        plugins.as_score(float("nan"), "p.py:f")


@pytest.mark.parametrize("workers", [0, 1])
def test_score_batch_takes_float_rewards_as_trl_writes_them(tmp_path, workers):
    plug = tmp_path / "trl_style.py"
    plug.write_text("def length(completion, record):\n    return len(completion) / 10\n")
    out = score_batch(["abcde", "ab"], [rec("1"), rec("2")], reward=f"{plug}:length", workers=workers)
    assert [(s["overall"], s["accuracy"], s["format"]) for s in out] == [(0.5, 0.5, 0.0), (0.2, 0.2, 0.0)]


def test_check_reward_calls_the_plugin_once_and_names_it(tmp_path):
    plug = tmp_path / "bad.py"
    plug.write_text("def listy(c, r):\n    return [1.0]\n\ndef boom(c, r):\n    raise KeyError('answer')\n")
    with pytest.raises(ValueError, match=rf"reward: {plug}:listy: returned list"):
        plugins.check_reward(f"{plug}:listy", rec("1"))
    with pytest.raises(ValueError, match=rf"reward: {plug}:boom: raised KeyError: 'answer' on record 'r1'"):
        plugins.check_reward(f"{plug}:boom", rec("1"))
