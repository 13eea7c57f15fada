"""The toy task the CPU demo teaches: sums of two small numbers, written as text and drawn into images.

One task in three views, as the curriculum needs: FRA reads `What is $2 + 3$?`; CMRA sees the sum drawn as a two-bar
chart plus the caption a captioner writes of it (`red bar 2, blue bar 3`); MRE and the benchmarks see the chart alone.
The bars fill whole 28x28 cells, the area one merged Qwen2.5-VL image token covers (see `_png`).

`warmup_examples` is what `infimmr tiny-model --warm-up` trains on before any RL: the answer format, the caption
reply, and a *half-learnt* skill: answers right only `p_right` of the time and otherwise one too high, the same slip
for every problem, so sampling finds the right answer often enough for GRPO's group-relative reward to pull it up.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from functools import cache
from typing import Any

from PIL import Image, ImageDraw

# Operands 1..3: 9 problems, answers 2..6, one digit each (a tiny model learns them in a minute).
OPERANDS = range(1, 4)
CELL = 28  # one merged image token: 2x2 patches of 14 px
IMAGE_SIZE = 4 * CELL
# The caption prompt the warm-up teaches captions under. The demo's classifier never learns the types (its reply is no
# category, so every image is `other`); the captioner carries the caption over to the `other` prompt it is then given.
IMAGE_TYPE = "equation"
# The warm-up's reasoning is one fixed word: copying the operands into it (`3 + 4`) is a lesson a 2-layer model takes
# minutes to learn, and the answer alone is what the reward checks.
THINK = "add"

# Question wordings. The warm-up sees all of them, as a pretrained model has seen many ways of asking; training data
# and each benchmark use different ones, so `decontam`'s exact rule (numbers removed) finds no accidental leak.
TEXT_WORDINGS = {
    "train": ["What is ${}$?", "Compute ${}$."],
    "math500": ["Evaluate ${}$."],
}
IMAGE_WORDINGS = {
    "train": ["How tall are the two bars together?", "What is the total height of the bars?"],
    "mathverse": ["Add the heights of the red and the blue bar."],
    "mathvision": ["What is the sum of the two bar heights?"],
    "mathvista": ["What do the bar heights add up to?"],
    "olympiadbench": ["Determine the combined height of both bars."],
}


@dataclass(frozen=True)
class Sum:
    a: int
    b: int

    @property
    def expression(self) -> str:
        return f"{self.a} + {self.b}"

    @property
    def value(self) -> int:
        return self.a + self.b

    def png(self) -> bytes:
        return _png(self.a, self.b)


def all_sums() -> list[Sum]:
    return [Sum(a, b) for a in OPERANDS for b in OPERANDS]


def draw_sum(rng: random.Random) -> Sum:
    return Sum(rng.choice(OPERANDS), rng.choice(OPERANDS))


RED, BLUE = (220, 30, 30), (40, 70, 220)


@cache
def _png(a: int, b: int) -> bytes:
    """A bar chart of the sum: a red bar `a` units tall beside a blue bar `b` units tall, one unit per 28 px.

    Whole 28x28 cells are filled or blank, so every merged image token says something about the answer; a random
    vision tower passes that on, where the few pixels of a drawn digit would be lost and take the model minutes to
    find. The same problem always gives the same pixels.
    """
    im = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (255, 255, 255))
    draw = ImageDraw.Draw(im)
    for left, height, colour in ((0, a, RED), (2 * CELL, b, BLUE)):
        draw.rectangle([left + 4, IMAGE_SIZE - height * CELL, left + 2 * CELL - 5, IMAGE_SIZE - 1], fill=colour)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def caption_of(item: Sum) -> str:
    """What a faithful captioner writes: what is drawn, not the sum."""
    return f"red bar {item.a}, blue bar {item.b}"


def reply(item: Sum, right: bool) -> str:
    """A completion in the reward's format, with the right answer or the warm-up's slip (one too high)."""
    answer = item.value if right else item.value + 1
    return f"<think>{THINK}</think><answer>{answer}</answer>"


@dataclass
class WarmupExample:
    """One supervised example: chat messages (images as placeholders), the images' PNG bytes, the target reply."""

    messages: list[dict[str, Any]]
    images: list[bytes]
    target: str


def warmup_examples(n: int, seed: int = 0, p_right: float = 0.35, short: bool = False) -> list[WarmupExample]:
    """n examples, cycling through the views the demo asks a model for (caption, FRA, CMRA, MRE/eval).

    `short`: the same without system prompts. A random model's attention is spread over the whole prompt, which drowns
    the few tokens that matter; learning on short prompts first, then on the full ones, takes a tenth of the steps.
    """
    from infimmr_cli.curation.prompts import caption_messages
    from infimmr_cli.data.prompt import SYSTEM_PROMPT, build_messages
    from infimmr_cli.data.records import Record

    rng = random.Random(seed)
    text_wordings = [w for ws in TEXT_WORDINGS.values() for w in ws]
    image_wordings = [w for ws in IMAGE_WORDINGS.values() for w in ws]

    def solve(question: str, n_images: int = 0, caption: str | None = None) -> list[dict[str, Any]]:
        """The prompt rollouts will build for such a record (`build_messages`, the one prompt builder)."""
        record = Record(id="warm-up", source="demo", question=question, answer="", answer_type="math",
                        images=["chart.png"] * n_images, caption=caption)
        return build_messages(record, with_caption=caption is not None, system_prompt=None if short else SYSTEM_PROMPT)

    out: list[WarmupExample] = []
    for i in range(n):
        item = draw_sum(rng)
        right = rng.random() < p_right
        view = i % 4
        if view == 0:
            messages = caption_messages(IMAGE_TYPE)
            out.append(WarmupExample(messages[1:] if short else messages, [item.png()], caption_of(item)))
        elif view == 1:  # FRA: the sum written out
            question = rng.choice(text_wordings).format(item.expression)
            out.append(WarmupExample(solve(question), [], reply(item, right)))
        elif view == 2:  # CMRA: the chart and its caption
            question = rng.choice(image_wordings)
            out.append(WarmupExample(solve(question, 1, caption_of(item)), [item.png()], reply(item, right)))
        else:  # MRE and the benchmarks: the chart alone
            out.append(WarmupExample(solve(rng.choice(image_wordings), 1), [item.png()], reply(item, right)))
    return out
