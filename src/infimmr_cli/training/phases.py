"""The three curriculum phases differ only in which records they train on and how the prompt is built (paper §4).

- fra:  text-only records (Foundational Reasoning Activation).
- cmra: records with images; caption prepended to the question, images kept (Cross-Modal Reasoning Adaptation).
- mre:  records with images; no caption (Multimodal Reasoning Enhancement).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infimmr_cli.errors import UsageError
from infimmr_cli.data.prompt import build_messages
from infimmr_cli.data.records import Record

PHASES = ("fra", "cmra", "mre")


@dataclass(frozen=True)
class PhaseItem:
    record: Record
    messages: list[dict[str, Any]]


@dataclass(frozen=True)
class PhaseView:
    phase: str
    items: list[PhaseItem]
    total: int            # records read
    excluded: int         # records of the other modality


def phase_view(records: list[Record], phase: str) -> PhaseView:
    """Select and render the records a phase trains on; fails before any compute when cmra meets caption-less records."""
    if phase not in PHASES:
        raise UsageError(f"phase: {phase!r} is not one of {', '.join(PHASES)}")
    wants_images = phase != "fra"
    chosen = [r for r in records if r.has_images == wants_images]
    if phase == "cmra":
        missing = [r for r in chosen if not (r.caption and r.caption.strip())]
        if missing:
            raise UsageError(f"cmra: {len(missing)} of {len(chosen)} image records have no caption (first: id "
                             f"{missing[0].id!r}); run `infimmr caption` first")
    items = [PhaseItem(r, build_messages(r, with_caption=phase == "cmra", with_images=wants_images)) for r in chosen]
    return PhaseView(phase=phase, items=items, total=len(records), excluded=len(records) - len(chosen))
