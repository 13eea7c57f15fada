"""Supervised warm-up: teach a model to write given replies to given prompts, by cross-entropy on the reply tokens.

The demo's tiny model starts from random weights and would earn no reward in any number of GRPO steps; a few seconds of
this loop on `data.demo_tasks.warmup_examples` give it the answer format and a half-learnt skill for RL to finish. The
tensors are built exactly as training builds them (`batching.encode_prompt` + `collate`), so the warm-up sees the
same prompts, image pads and M-RoPE positions as the rollouts that follow.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Sequence

import torch
from PIL import Image

from infimmr_cli.training.batching import collate, completion_logprobs, encode_prompt


def reply_loss(logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood over the reply tokens of a batch (padding excluded)."""
    return -(logp * mask).sum() / mask.sum().clamp(min=1.0)


def warm_up(model, processor, examples: Sequence, steps: int, batch_size: int = 16, lr: float = 3e-3, seed: int = 0,
            on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """`steps` AdamW steps over batches drawn from `examples` (each with .messages, .images (PNG bytes), .target).

    Returns the loss of every step. The model is left in eval mode, its weights updated in place.
    """
    tokenizer = processor.tokenizer
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    # Encode each example once: the processor's image pipeline is the slow part on a CPU.
    encoded = []
    for ex in examples:
        images = [Image.open(io.BytesIO(png)).convert("RGB") for png in ex.images]
        target = tokenizer(ex.target, add_special_tokens=False)["input_ids"] + [eos]
        encoded.append((encode_prompt(processor, ex.messages, images), target))
    # Batches of similar length: caption prompts and system-prompted questions differ by tens of tokens, and every
    # sequence in a batch is padded to its longest.
    buckets: dict[int, list] = {}
    for item in encoded:
        buckets.setdefault(len(item[0].input_ids) // 64, []).append(item)
    pools = list(buckets.values())
    rng = random.Random(seed)
    torch.manual_seed(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for step in range(steps):
        pool = rng.choices(pools, weights=[len(p) for p in pools])[0]
        picked = rng.sample(pool, min(batch_size, len(pool)))
        batch = collate([p for p, _ in picked], [t for _, t in picked], tokenizer.pad_token_id)
        logp, _ = completion_logprobs(model, batch)
        loss = reply_loss(logp, batch["completion_mask"])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        if on_step:
            on_step(step, losses[-1])
    model.eval()
    return losses
