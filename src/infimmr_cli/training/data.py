"""The prompts a run trains on (phase view minus over-long prompts and prompts whose image cannot be read) and which
of them each step and rank takes."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from infimmr_cli.data.images import image_size
from infimmr_cli.errors import UsageError
from infimmr_cli.training.phases import PhaseItem, PhaseView, phase_view
from infimmr_cli.data.records import read_records
from infimmr_cli.training.batching import prompt_length


@dataclass
class TrainPrompts:
    view: PhaseView
    items: list[PhaseItem]            # usable prompts
    too_long: list[tuple[str, int]]   # (id, token count) of prompts over max_prompt_len, skipped
    bad: list[tuple[str, str]] = None  # (id, error) of prompts whose image header cannot be read or is too large

    def __post_init__(self) -> None:
        self.bad = list(self.bad or [])


def _image_sizes(item: PhaseItem) -> list[tuple[int, int]]:
    """Sizes from the file headers (no decoding); ImageError for an unreadable or oversized image."""
    return [image_size(path) for path in item.record.image_paths()]


def load_prompts(data_path: str, phase: str, processor, max_prompt_len: int) -> TrainPrompts:
    """Read and validate the records, take the phase's view, count and drop prompts longer than the limit and those
    whose image cannot be read (a bad image costs its record, never the run)."""
    view = phase_view(read_records(data_path), phase)
    if not view.items:
        kind = "text-only" if phase == "fra" else "image"
        raise UsageError(f"{data_path}: no {kind} records for phase {phase} ({view.total} records read)")
    items, too_long, bad = [], [], []
    for item in view.items:
        try:
            n = prompt_length(processor, item.messages, _image_sizes(item))
        except ValueError as exc:  # ImageError, or an aspect ratio the resize rule refuses
            bad.append((item.record.id, str(exc)))
            continue
        if n > max_prompt_len:
            too_long.append((item.record.id, n))
        else:
            items.append(item)
    if not items and not too_long:
        raise UsageError(f"{data_path}: none of the {len(bad)} prompts has readable images "
                         f"(first: id {bad[0][0]!r}: {bad[0][1]})")
    if not items:
        raise UsageError(f"max_prompt_len: all {len(too_long)} prompts are longer than {max_prompt_len} tokens "
                         f"(first: id {too_long[0][0]!r}, {too_long[0][1]} tokens)")
    return TrainPrompts(view=view, items=items, too_long=too_long, bad=bad)


class PromptSampler:
    """Step s takes the s-th block of `per_step` prompts from a per-epoch shuffle (seeded, so a resume sees the same
    order); rank r takes every world_size-th prompt of the block, so ranks see disjoint prompts."""

    def __init__(self, num_prompts: int, per_step: int, seed: int, rank: int = 0, world_size: int = 1):
        if per_step > num_prompts:
            raise UsageError(f"prompts_per_step: {per_step} is more than the {num_prompts} usable prompts")
        self.num, self.per_step, self.seed = num_prompts, per_step, seed
        self.rank, self.world = rank, world_size
        self.steps_per_epoch = num_prompts // per_step

    def indices(self, step: int) -> list[int]:
        epoch, block = divmod(step, self.steps_per_epoch)
        gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(self.num, generator=gen)[block * self.per_step:(block + 1) * self.per_step]
        return order[self.rank::self.world].tolist()
