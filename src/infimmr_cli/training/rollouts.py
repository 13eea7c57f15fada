"""G completions per prompt from the rollout engine, kept with the prompt encodings the update will score them under."""

from __future__ import annotations

from dataclasses import dataclass

from infimmr_cli.data.images import load_record_images
from infimmr_cli.training.phases import PhaseItem
from infimmr_cli.rollout import Completion, Request, SamplingSettings
from infimmr_cli.training.batching import PromptEncoding, encode_prompt


@dataclass
class Rollouts:
    """B prompts and N = B*G sequences in prompt-major order."""

    items: list[PhaseItem]              # (B,)
    prompts: list[PromptEncoding]       # (N,) the same object repeated G times per prompt
    completions: list[Completion]       # (N,)
    token_ids: list[list[int]]          # (N,) completion ids scored in the update (stop token appended when seen)

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.completions]

    @property
    def records(self):
        g = len(self.completions) // max(1, len(self.items))
        return [item.record for item in self.items for _ in range(g)]


def media_token_ids(tokenizer) -> list[int]:
    """Vision placeholder tokens: never sampled into a completion (the HF engine suppresses them)."""
    names = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>")
    ids = [tokenizer.convert_tokens_to_ids(n) for n in names]
    return [i for i in ids if isinstance(i, int) and i >= 0 and i != tokenizer.unk_token_id]


def generate(engine, processor, items: list[PhaseItem], sampling: SamplingSettings) -> Rollouts:
    """`sampling.n` completions for each item, with the prompt encodings they will be scored under."""
    images = [load_record_images(item.record, processor) for item in items]
    out = engine.generate([Request(item.messages, ims) for item, ims in zip(items, images)], sampling)
    stop_id = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    media = set(media_token_ids(processor.tokenizer))
    encodings, completions, token_ids = [], [], []
    for item, ims, group in zip(items, images, out):
        enc = encode_prompt(processor, item.messages, ims)
        for c in group:
            ids = list(c.token_ids)
            cut = next((i for i, t in enumerate(ids) if t in media), None)
            if cut is not None:  # an image pad in a completion would be taken for an image slot in the forward pass
                ids = ids[:cut]
                c = Completion(text=processor.tokenizer.decode(ids, skip_special_tokens=True), token_ids=ids,
                               finish_reason="length")
            encodings.append(enc)
            completions.append(c)
            # The end token is part of what was sampled: scoring it teaches the policy when to stop.
            token_ids.append(ids + ([stop_id] if c.finish_reason == "stop" else []))
    return Rollouts(items=items, prompts=encodings, completions=completions, token_ids=token_ids)
