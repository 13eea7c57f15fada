"""Pure helpers that read raw golds and questions (gold.py): each case written out by hand."""

from __future__ import annotations

import pytest

from infimmr_cli.data import gold


@pytest.mark.parametrize("raw, want", [
    ("\\boxed{42}", "42"),
    ("\\boxed{\\frac{\\sqrt{2}}{2}}", "\\frac{\\sqrt{2}}{2}"),
    ("\\boxed{\\boxed{7}}", "7"),
    ("$\\boxed{\\{1, 2\\}}$", "\\{1, 2\\}"),
    ("\\boxed{1}, \\boxed{2}", "1, 2"),
    ("  17^\\circ ", "17^\\circ"),
    ("\\boxed {A}", "A"),
])
def test_unwrap_boxed(raw, want):
    assert gold.unwrap_boxed(raw) == want


def test_unwrap_boxed_unbalanced_raises():
    with pytest.raises(ValueError, match="unbalanced"):
        gold.unwrap_boxed("\\boxed{\\frac{1}{2}")


@pytest.mark.parametrize("raw, want", [("C", "C"), ("(C)", "C"), ("C.", "C"), (" c ", "C"), ("(C) 5", None),
                                       ("CD", None), ("", None)])
def test_normalise_letter(raw, want):
    assert gold.normalise_letter(raw) == want


def test_parse_choices_mathverse_lines():
    q = "As shown, find angle 2.\nChoices:\nA:50°\nB:40°\nC:130°\nD:100°"
    assert gold.parse_choices(q) == ["50°", "40°", "130°", "100°"]


def test_parse_choices_other_styles_and_none():
    assert gold.parse_choices("Q?\n(A) red\n(B) blue\n(C) green") == ["red", "blue", "green"]
    assert gold.parse_choices("Q?\nA. 1\nB. 2") == ["1", "2"]
    assert gold.parse_choices("Pick one: (A) 3 (B) 4 (C) 5") == ["3", "4", "5"]
    assert gold.parse_choices("A. Smith walks 3 km. How far?") is None  # one A line is not a list
    assert gold.parse_choices("Options:\nA: 1\nC: 3") is None  # letters must run A, B, …
    assert gold.parse_choices("No options here.") is None


def test_with_choices_and_letter_choices():
    assert gold.with_choices("Q?", ["1", "2"]) == "Q?\nChoices:\n(A) 1\n(B) 2"
    assert gold.letter_choices("B") == ["A", "B", "C", "D"]
    assert gold.letter_choices("F") == ["A", "B", "C", "D", "E", "F"]


@pytest.mark.parametrize("raw, want", [(None, None), ("", None), ("1e-2", [0.01]), ("0.1, 0.02", [0.1, 0.02]),
                                       ("5", [5.0])])
def test_parse_tolerance(raw, want):
    assert gold.parse_tolerance(raw) == want


def test_parse_tolerance_rejects_words():
    with pytest.raises(ValueError, match="not a number"):
        gold.parse_tolerance("about 0.1")


@pytest.mark.parametrize("raw, want", [("$12$", "12"), ("$3$, $\\frac{1}{2}$", "3, \\frac{1}{2}"), ("12", "12"),
                                       ("$x$ or y", "$x$ or y")])
def test_strip_dollars(raw, want):
    assert gold.strip_dollars(raw) == want


@pytest.mark.parametrize("raw, want", [
    ("In the diagram <image_1>, find the area.", "In the diagram, find the area."),
    ("<image>\nFind x.", "Find x."),
    ("<image><image> How many?", "How many?"),
    ("Which number?\n<image1>", "Which number?"),
    ("A <image2> B", "A B"),
])
def test_strip_image_placeholders(raw, want):
    assert gold.strip_image_placeholders(raw) == want


@pytest.mark.parametrize("raw, want", [("42", "math"), ("-3.5", "math"), ("\\frac{1}{2}", "math"),
                                       ("x^2 + 1", "math"), ("\\{1, 2\\}", "math"), ("x", "math"),
                                       ("blue", "string"), ("Yes", "string"), ("red car", "string"), ("", "string")])
def test_gold_answer_type(raw, want):
    assert gold.gold_answer_type(raw) == want


# ---------------------------------------------------------------- repairs (issue 10 §1)


def test_repair_escapes_restores_commands_eaten_by_json_escapes():
    assert gold.repair_escapes("\x0crac{36}{13}") == "\\frac{36}{13}"
    assert gold.repair_escapes("2\times 3") == "2\\times 3" and gold.repair_escapes("\x08eta") == "\\beta"
    assert gold.repair_escapes("C\nD") == "C\nD" and gold.repair_escapes("a\tb") == "a\tb"  # real whitespace stays


@pytest.mark.parametrize(("raw", "expected"), [
    ("69{degrees}", ("69", "degrees")), ("8\\sqrt{3}{squareinches}", ("8\\sqrt{3}", "squareinches")),
    ("\\frac{3}{4}\\pi{inches}", ("\\frac{3}{4}\\pi", "inches")), ("5\\text{cm}", ("5\\text{cm}", None)),
    ("x^{abc}", ("x^{abc}", None)), ("{abc}", ("{abc}", None)), ("\\frac{1}{2}", ("\\frac{1}{2}", None))])
def test_split_unit_braces(raw, expected):
    assert gold.split_unit_braces(raw) == expected


def test_resolve_choice_readings():
    assert gold.resolve_choice("18", ["9", "12", "18", "18"], gold_is_text=True) == ("C", ["9", "12", "18"],
                                                                                     ["duplicate options"])
    assert gold.resolve_choice("E", ["a", "b", "c", "c", "d"]) == ("D", ["a", "b", "c", "d"], ["duplicate options"])
    assert gold.resolve_choice("C\nD", list("wxyz")) == ("C, D", list("wxyz"), ["several letters"])
    assert gold.resolve_choice("False", ["True", "False"]) == ("B", ["True", "False"], ["option text -> letter"])
    assert gold.resolve_choice("(B)", ["1", "2"])[0] == "B"
    with pytest.raises(ValueError, match="neither a letter among the 2 options nor one option's text"):
        gold.resolve_choice("F", ["1", "2"])
    assert gold.resolve_choice("7", ["7", "7 "]) == ("A", ["7"], ["duplicate options", "option text -> letter"])
