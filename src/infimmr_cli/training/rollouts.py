"""G completions per prompt from the rollout engine, kept with the prompt encodings the update will score them under."""

from __future__ import annotations

from dataclasses import dataclass

from infimmr_cli.data.images import ImageError, load_record_images
from infimmr_cli.errors import UsageError
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
    replaced: int = 0                   # prompts swapped for another because an image could not be read
    new_bad: list[tuple[str, str]] | None = None  # (id, error) of images found unreadable in this call

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


def load_images(items: list[PhaseItem], processor, pool: list[PhaseItem] | None = None,
                known_bad: dict[str, str] | None = None) -> tuple[list[PhaseItem], list, int, list[tuple[str, str]]]:
    """Each item's images. An item whose image cannot be decoded (a header that reads but pixel data that does not) is
    replaced by the next prompt of `pool` after it that loads, preferring one not in this batch, so every rank keeps
    its share of sequences and the run goes on; a resumed run makes the same swaps. `known_bad` (id -> error) is
    consulted and grown. Returns (items, images, number replaced, newly found (id, error))."""
    known_bad = {} if known_bad is None else known_bad
    pool = pool or []
    where = {it.record.id: i for i, it in enumerate(pool)}
    taken = {it.record.id for it in items}
    out_items, out_images, replaced, new_bad = [], [], 0, []
    for item in items:
        start = where.get(item.record.id, -1) + 1
        rotation = pool[start:] + pool[:start]
        candidates = ([item] + [c for c in rotation if c.record.id not in taken]
                      + [c for c in rotation if c.record.id in taken and c is not item])
        for cand in candidates:
            if cand.record.id in known_bad:
                continue
            try:
                ims = load_record_images(cand.record, processor)
            except ImageError as exc:
                known_bad[cand.record.id] = str(exc)
                new_bad.append((cand.record.id, str(exc)))
                continue
            taken.add(cand.record.id)
            replaced += cand is not item
            out_items.append(cand)
            out_images.append(ims)
            break
        else:
            raise UsageError(f"record {item.record.id!r}: its image cannot be read and no other prompt with readable "
                             f"images is left ({known_bad.get(item.record.id, 'see warnings.jsonl')})")
    return out_items, out_images, replaced, new_bad


def generate(engine, processor, items: list[PhaseItem], sampling: SamplingSettings,
             pool: list[PhaseItem] | None = None, known_bad: dict[str, str] | None = None) -> Rollouts:
    """`sampling.n` completions for each item, with the prompt encodings they will be scored under (items whose image
    cannot be decoded are swapped for readable ones of `pool`, see `load_images`)."""
    items, images, replaced, new_bad = load_images(items, processor, pool, known_bad)
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
    return Rollouts(items=items, prompts=encodings, completions=completions, token_ids=token_ids, replaced=replaced,
                    new_bad=new_bad)
