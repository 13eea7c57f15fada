"""The chat prompt a record becomes: the one builder of the FRA, CMRA, MRE and eval prompts.

The paper's own system prompt is not public; ours is the R1-style wording its format reward checks for (DESIGN §3).
Classify and caption prompts (DESIGN §4) live in curation/prompts.py.
"""

from __future__ import annotations

from typing import Any

from infimmr_cli.data.records import LETTERS, Record

SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The Assistant "
    "first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning "
    "process is enclosed within <think> </think> and the final answer within <answer> </answer>, i.e., "
    "<think> reasoning process here </think><answer> final answer here </answer>. Put a multiple-choice answer as the "
    "option letter."
)

# How a caption joins the question in the CMRA view (the same prefix shape OmniCaptioner's captions are fed with).
CAPTION_PREFIX = "Caption of the image: {caption}\n\n"


def _lists_options(text: str, record: Record) -> bool:
    """The question already shows its options: in its text (MathVerse, and the prepared MathVision/MathVista questions,
    keep a `Choices:` block) or only in the image (`meta.choices_in_image`). Appending them again would duplicate them."""
    from infimmr_cli.data.gold import parse_choices

    if record.meta.get("choices_in_image"):
        return True
    listed = parse_choices(text)
    return listed is not None and len(listed) == len(record.choices or [])


def question_text(record: Record, with_caption: bool = False) -> str:
    """The user's text: optional caption prefix, the question, then lettered options for choice items."""
    text = record.question.strip()
    if record.choices and not _lists_options(text, record):
        options = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(record.choices))
        text = f"{text}\nChoices:\n{options}"
    if with_caption:
        if not record.caption:
            raise ValueError(f"record {record.id!r}: caption: missing; run `infimmr caption` first")
        text = CAPTION_PREFIX.format(caption=record.caption.strip()) + text
    return text


def build_messages(record: Record, with_caption: bool = False, with_images: bool = True,
                   system_prompt: str | None = SYSTEM_PROMPT) -> list[dict[str, Any]]:
    """Chat messages for one record: the one function that builds the FRA, CMRA, MRE and eval prompts.

    FRA: a text-only record. CMRA: images kept AND the caption prepended. MRE and eval: images, no caption.
    Image placeholders come first, one per image, as Qwen2.5-VL's chat template expects.
    """
    content: list[dict[str, Any]] = []
    if with_images:
        content.extend({"type": "image"} for _ in record.images)
    content.append({"type": "text", "text": question_text(record, with_caption=with_caption)})
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": [{"type": "text", "text": system_prompt}]})
    messages.append({"role": "user", "content": content})
    return messages
