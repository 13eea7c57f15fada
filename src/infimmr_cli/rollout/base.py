"""The engine interface every generating stage uses (train-phase rollouts, classify, caption, eval)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol, Sequence

import torch
from PIL import Image


@dataclass(frozen=True)
class SamplingSettings:
    n: int = 1                  # completions per request
    temperature: float = 1.0    # 0 means greedy
    top_p: float = 1.0
    top_k: int = 0              # 0 means off
    max_new_tokens: int = 256
    repetition_penalty: float = 1.0
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class Request:
    """One prompt: chat messages (with one `{"type": "image"}` per image) and the images, already resized."""

    messages: list[dict[str, Any]]
    images: list[Image.Image] = field(default_factory=list)


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    finish_reason: str = "stop"  # "stop" (end token seen) or "length" (max_new_tokens reached)


class RolloutEngine(Protocol):
    # True when the engine generates from its own copy of the weights (vLLM, an HF engine on its own model): the
    # trainer pushes the policy's weights to it (`load_weights`) before the first rollout and after every update.
    needs_weight_push: bool

    def generate(self, requests: Sequence[Request], sampling: SamplingSettings) -> list[list[Completion]]:
        """For each request, `sampling.n` completions, in request order."""

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Take new policy weights (Hugging Face parameter names) before the next rollout."""

    def sleep(self) -> None:
        """Free accelerator memory between rollouts (no-op where nothing can be freed)."""

    def wake_up(self) -> None:
        """Undo `sleep` before generating."""


def needs_weight_push(engine) -> bool:
    """The engine's `needs_weight_push`; an engine that does not say holds its own weights (the safe answer)."""
    return bool(getattr(engine, "needs_weight_push", True))
