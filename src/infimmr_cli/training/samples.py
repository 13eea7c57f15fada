"""Rollout samples a researcher reads while a run trains: whole groups, with rewards and advantages, in `RUN/rollouts.jsonl`.

One JSON line per group: the step, the phase, the record id, the rendered prompt (each image's pad run collapsed to one
`<image>` marker, the image paths beside it), and every completion of the group with its reward parts, extracted answer
and advantage. Whole groups, so a reader sees why the advantages were what they were.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

from infimmr_cli.data.records import jsonl_lines
from infimmr_cli.files import atomic_write_text

IMAGE_MARKER = "<image>"
# The chat template writes one pad per image, and a processor-expanded prompt repeats it: either way, one marker.
_IMAGE_RUN = re.compile(r"<\|vision_start\|>(?:<\|image_pad\|>)+<\|vision_end\|>")


def collapse_image_pads(text: str) -> str:
    """`<|vision_start|><|image_pad|>…<|vision_end|>` -> `<image>`, once per image."""
    return _IMAGE_RUN.sub(IMAGE_MARKER, text)


def rollout_groups(step: int, phase: str, ids: Sequence[str], prompts: Sequence[str], images: Sequence[list[str]],
                   completions: Sequence[str], scores: Sequence[dict[str, Any]], advantages: Sequence[float],
                   group_size: int, n_groups: int) -> list[dict[str, Any]]:
    """The first `n_groups` groups of a step as log lines (pure: no model, no I/O).

    ids, prompts, images: (B,) one per prompt; completions, scores, advantages: (B*G,) in prompt-major order.
    """
    if len(completions) != len(ids) * group_size or len(scores) != len(completions) or \
            len(advantages) != len(completions):
        raise ValueError(f"rollout_groups: {len(ids)} prompts x {group_size} do not match {len(completions)} "
                         f"completions, {len(scores)} scores, {len(advantages)} advantages")
    lines = []
    for b in range(min(n_groups, len(ids))):
        group = []
        for i in range(b * group_size, (b + 1) * group_size):
            s = scores[i]
            group.append({"completion": completions[i], "format": s.get("format"), "accuracy": s.get("accuracy"),
                          "overall": s.get("overall"), "extracted": s.get("extracted"),
                          "advantage": round(float(advantages[i]), 6)})
        lines.append({"step": step, "phase": phase, "id": ids[b], "prompt": prompts[b], "images": list(images[b]),
                      "completions": group})
    return lines


def groups_due(step: int, every: int) -> bool:
    """Step numbers count from 1; `every` 0 turns sampling off."""
    return every > 0 and step % every == 0


class StepLog:
    """A JSONL file of per-step lines that a resumed run continues without duplicates.

    Opening it for a run resumed at step S drops lines of steps after S (written after the checkpoint it resumes from:
    those steps run again). Only the main rank writes; every step's lines are flushed before the next step starts.
    """

    def __init__(self, path: Path, is_main: bool, resumed_step: int):
        self.path, self.is_main = Path(path), is_main
        if not is_main:
            return
        if self.path.exists():
            kept = [line for line in jsonl_lines(self.path.read_text(encoding="utf-8"))
                    if line.strip() and _step_of(line) <= resumed_step]
            atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def write(self, lines: list[dict[str, Any]]) -> None:
        if not self.is_main or not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
            fh.flush()


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return 1 << 62  # a torn line from a kill mid-write: dropped
