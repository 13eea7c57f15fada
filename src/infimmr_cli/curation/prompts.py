"""Prompts for the curation stages (DESIGN §4): the classify instruction and its strict parser, one concise-caption
system prompt per image type."""

from __future__ import annotations

from typing import Any

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
