"""The user text of a prompt: options appear once, whether the question lists them or not."""

from infimmr_cli.data.prompt import question_text
from infimmr_cli.data.records import Record


def rec(question: str, choices, **meta) -> Record:
    return Record(id="q", source="x", question=question, answer="A", answer_type="choice", choices=choices, meta=meta)


def test_options_are_appended_when_the_question_lacks_them():
    assert question_text(rec("Pick one.", ["1", "2"])) == "Pick one.\nChoices:\nA. 1\nB. 2"


def test_options_already_in_the_question_are_not_repeated():
    q = "Find angle 2.\nChoices:\nA:50°\nB:40°\nC:130°"
    assert question_text(rec(q, ["50°", "40°", "130°"])) == q
    q2 = "Find the angle.\nChoices:\n(A) 145°\n(B) 155°"
    assert question_text(rec(q2, ["145°", "155°"])) == q2


def test_options_printed_only_in_the_image_are_not_invented():
    assert question_text(rec("Solve the problem shown in the image.", list("ABCD"), choices_in_image=True)) == \
        "Solve the problem shown in the image."
