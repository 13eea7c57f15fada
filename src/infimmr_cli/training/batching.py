"""Prompt + completion -> the tensors of one training forward pass, and the forward pass itself.

The completion's token ids come straight from generation and are appended to the processor's prompt ids (image pads
already expanded); completion text is never re-tokenised, so the tokens scored are exactly the tokens sampled.

Layout of a batch of n sequences (P = longest prompt, C = longest completion):

    [pad pad prompt prompt prompt | comp comp comp pad]     prompts left-padded, completions right-padded
     <------------- P ------------> <------ C ------->

so every completion starts at column P and the model only has to produce logits for the last C + 1 positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from infimmr_cli.training import grpo
from infimmr_cli.data.images import fit_size, pixel_limits


@dataclass
class PromptEncoding:
    """One prompt as the model sees it: expanded ids and its images' patches (pixel_values (p, d), grid (k, 3))."""

    input_ids: list[int]
    pixel_values: Tensor | None = None
    image_grid_thw: Tensor | None = None
    mm_token_type_ids: list[int] | None = None  # transformers >= 5.2x computes M-RoPE positions from these


def render(processor, messages) -> str:
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def encode_prompt(processor, messages, images) -> PromptEncoding:
    """The processor's own encoding of one prompt (the same call the HF engine makes before generating)."""
    kwargs = dict(text=[render(processor, messages)], return_tensors="pt")
    if images:
        kwargs["images"] = list(images)
    out = processor(**kwargs)
    mm = out.get("mm_token_type_ids")
    return PromptEncoding(input_ids=out["input_ids"][0].tolist(), pixel_values=out.get("pixel_values"),
                          image_grid_thw=out.get("image_grid_thw"),
                          mm_token_type_ids=mm[0].tolist() if mm is not None else None)


def prompt_length(processor, messages, image_sizes: list[tuple[int, int]]) -> int:
    """Token count of a prompt after image expansion, without decoding any image (sizes from the file headers).

    Each image placeholder becomes (h/28)*(w/28) pads for the size the image is resized to (images.fit_size).
    """
    ids = processor.tokenizer(render(processor, messages), add_special_tokens=False)["input_ids"]
    lo, hi, factor = pixel_limits(processor)
    extra = 0
    for width, height in image_sizes:
        h, w = fit_size(height, width, lo, hi, factor)
        extra += (h // factor) * (w // factor) - 1
    return len(ids) + extra


def collate(prompts: list[PromptEncoding], completions: list[list[int]], pad_id: int) -> dict[str, Tensor]:
    """n prompts and their n completions -> model inputs plus `completion_ids` (n, C) and `completion_mask` (n, C).

    Sequences with the same prompt may share one PromptEncoding object; pixel_values are concatenated in sequence order,
    as the processor itself orders them for a batch.
    """
    n = len(prompts)
    P = max(len(p.input_ids) for p in prompts)
    C = max(1, max(len(c) for c in completions))
    input_ids = torch.full((n, P + C), pad_id, dtype=torch.long)
    attention = torch.zeros((n, P + C), dtype=torch.long)
    comp_ids = torch.full((n, C), pad_id, dtype=torch.long)
    comp_mask = torch.zeros((n, C), dtype=torch.float32)
    with_mm = all(p.mm_token_type_ids is not None for p in prompts)
    mm_types = torch.zeros((n, P + C), dtype=torch.long) if with_mm else None
    for i, (p, c) in enumerate(zip(prompts, completions)):
        lp, lc = len(p.input_ids), len(c)
        input_ids[i, P - lp:P] = torch.tensor(p.input_ids)
        attention[i, P - lp:P + lc] = 1
        if lc:
            input_ids[i, P:P + lc] = torch.tensor(c)
            comp_ids[i, :lc] = torch.tensor(c)
            comp_mask[i, :lc] = 1.0
        if with_mm:
            mm_types[i, P - lp:P] = torch.tensor(p.mm_token_type_ids)
    batch = {"input_ids": input_ids, "attention_mask": attention, "completion_ids": comp_ids,
             "completion_mask": comp_mask}
    if with_mm:
        batch["mm_token_type_ids"] = mm_types
    pixels = [p.pixel_values for p in prompts if p.pixel_values is not None]
    if pixels:
        batch["pixel_values"] = torch.cat(pixels, dim=0)
        batch["image_grid_thw"] = torch.cat([p.image_grid_thw for p in prompts if p.image_grid_thw is not None], dim=0)
    return batch


def _reset_rope_cache(model) -> None:
    """Drop M-RoPE deltas cached by `generate`: some transformers releases reuse them for a later full forward pass."""
    for module in model.modules():
        if hasattr(module, "rope_deltas"):
            module.rope_deltas = None


def completion_logprobs(model, batch: dict[str, Tensor], temperature: float = 1.0,
                        with_entropy: bool = False) -> tuple[Tensor, Tensor | None]:
    """Log-probs (n, C) of the completion tokens under `model` (and their entropies (n, C) when asked).

    Passes the full input_ids with the attention mask, pixel_values and image_grid_thw (and mm_token_type_ids where the
    processor makes them), so the model computes M-RoPE positions itself, skipping the left padding.
    """
    device = next(model.parameters()).device
    C = batch["completion_ids"].shape[1]
    inputs = {k: v.to(device) for k, v in batch.items() if k not in ("completion_ids", "completion_mask")}
    if "pixel_values" in inputs:
        inputs["pixel_values"] = inputs["pixel_values"].to(next(model.parameters()).dtype)
    _reset_rope_cache(model)
    logits = model(**inputs, logits_to_keep=C + 1, use_cache=False).logits[:, :-1]  # position t predicts token t+1
    targets = batch["completion_ids"].to(device)
    logp = grpo.token_logprobs(logits, targets, temperature)
    entropy = grpo.token_entropy(logits, temperature) if with_entropy else None
    return logp, entropy
