"""Every prompt the project sends to a model, in one place.

The paper's own system prompt is not public; ours is the R1-style wording its format reward checks for (DESIGN §3).
Classify and caption prompts (DESIGN §4) live here too.
"""

from __future__ import annotations

from typing import Any

from infimmr_cli.records import LETTERS, Record

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
    from infimmr_cli.gold import parse_choices

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


# ---- classify (paper §4.2, Appendix B; DESIGN §4) -------------------------------------------------------------------
# The paper's Appendix B instruction is an image in the source, not text: this wording is ours, built on OmniCaptioner's
# eight image types plus `other`, one line of definition each, and a reply format the parser below can check strictly.
IMAGE_TYPE_DEFINITIONS = {
    "natural": "a photograph or realistic picture of real-world scenes, objects, people or animals",
    "aigc": "an AI-generated or digitally rendered artistic image (illustration, painting, 3D render), not a photo",
    "mathgeo": "a mathematical or geometric figure: shapes, points, lines, angles, function graphs or solids",
    "chart": "a data chart or plot (bar, line, pie, scatter, ...) with axes, legends or labelled values",
    "table": "a table: rows and columns of values or text",
    "equation": "mathematical formulas or equations, printed or handwritten, as the main content",
    "ocr": "an image whose main content is text: a document, page, sign or photo of text",
    "gui": "a screenshot of a user interface: an app, web page, desktop or phone screen",
    "other": "anything that fits none of the categories above",
}
IMAGE_TYPES = tuple(IMAGE_TYPE_DEFINITIONS)

CLASSIFY_INSTRUCTION = (
    "Classify the image into exactly one of these categories:\n"
    + "\n".join(f"- {name}: {text}" for name, text in IMAGE_TYPE_DEFINITIONS.items())
    + "\nReply with the category name only, one word from the list, and nothing else."
)


def classify_messages() -> list[dict[str, Any]]:
    """The chat for classifying ONE image (the image, then the fixed instruction)."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": CLASSIFY_INSTRUCTION}]}]


def parse_image_type(reply: str) -> str | None:
    """The category a reply names, or None. Case and punctuation are tolerated, nothing else.

    'Chart.' -> 'chart'; '**MathGeo**' -> 'mathgeo'; 'math-geo' -> 'mathgeo'; 'It is a chart' -> None.
    """
    word = "".join(ch for ch in reply.lower() if ch.isalnum() or ch.isspace()).strip()
    return word if word in IMAGE_TYPE_DEFINITIONS else None


# ---- caption (paper §4.2: one concise OmniCaptioner-style system prompt per category) --------------------------------
_FAITHFUL = " Report only what is visible; do not solve any problem and do not invent or guess details."
CAPTION_SYSTEM_PROMPTS = {
    "mathgeo": "You write concise captions of math figures for a solver who cannot see the image. List the points and "
               "their labels, the segments, lines, circles and shapes and how they connect, and every length, angle, "
               "coordinate or mark shown on the figure." + _FAITHFUL,
    "chart": "You write concise captions of charts for a solver who cannot see the image. State the chart type, the "
             "title, the axes with their labels, units and ranges, the series or legend entries, and the values that "
             "can be read from the chart." + _FAITHFUL,
    "table": "You write concise captions of tables for a solver who cannot see the image. Give the column and row "
             "headers and the content of every cell, as a markdown table." + _FAITHFUL,
    "equation": "You transcribe mathematical content for a solver who cannot see the image. Write the formulas and "
                "equations shown as LaTeX, exactly as written." + _FAITHFUL,
    "ocr": "You transcribe text for a solver who cannot see the image. Write all the text in the image verbatim, "
           "keeping its reading order and line breaks." + _FAITHFUL,
    "gui": "You write concise captions of user-interface screenshots for a solver who cannot see the image. Describe "
           "the visible windows, menus, buttons, fields and icons, and the text and values they show." + _FAITHFUL,
}
_SHORT_FACTUAL = ("You write short factual captions for a solver who cannot see the image. Describe the main objects, "
                  "their number, positions and relations, and any visible text or numbers." + _FAITHFUL)
for _name in ("natural", "aigc", "other"):
    CAPTION_SYSTEM_PROMPTS[_name] = _SHORT_FACTUAL
CAPTION_REQUEST = "Write the concise caption of this image."


def caption_messages(image_type: str) -> list[dict[str, Any]]:
    """The chat for captioning ONE image: the category's system prompt, then the image and a short request."""
    if image_type not in CAPTION_SYSTEM_PROMPTS:
        raise ValueError(f"image_type: {image_type!r} is not one of {', '.join(IMAGE_TYPES)}")
    return [{"role": "system", "content": [{"type": "text", "text": CAPTION_SYSTEM_PROMPTS[image_type]}]},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": CAPTION_REQUEST}]}]
