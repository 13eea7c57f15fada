"""GRPO math (paper §3.2, Eq. 2): pure tensor functions, no model and no I/O.

Conventions: B prompts, G rollouts each, N = B*G sequences in prompt-major order (all G of prompt 0 first), T completion
tokens (right-padded), V vocabulary. `mask` is 1.0 on real completion tokens and 0.0 on padding.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

LossType = Literal["grpo", "dapo", "drgrpo"]
LOSS_TYPES = ("grpo", "dapo", "drgrpo")


def group_advantages(rewards: Tensor, group_size: int, eps: float = 1e-6, scale: bool = True) -> Tensor:
    """rewards: (N,) prompt-major -> advantages (N,): `(r - group mean) / (group std + eps)`.

    The std is the unbiased one (divides by G-1), as TRL and verl compute it. `scale=False` gives Dr.GRPO's
    `r - group mean` (no division: questions of every difficulty weigh alike).
    """
    if rewards.ndim != 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards: shape {tuple(rewards.shape)} is not (B*{group_size},)")
    grouped = rewards.float().view(-1, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scale:
        std = grouped.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(centred[:, :1])
        centred = centred / (std + eps)
    return centred.reshape(-1)


def varied_groups(rewards: Tensor, group_size: int) -> Tensor:
    """rewards: (N,) -> bool (N,): True for every member of a group whose rewards are not all equal.

    A group with equal rewards has zero advantage everywhere and only dilutes the batch (DAPO's dynamic sampling drops it).
    """
    grouped = rewards.view(-1, group_size)
    varied = (grouped.max(dim=1).values - grouped.min(dim=1).values) > 0
    return varied.repeat_interleave(group_size)


def token_logprobs(logits: Tensor, tokens: Tensor, temperature: float = 1.0) -> Tensor:
    """logits: (N, T, V) (position t predicts tokens[:, t]), tokens: (N, T) -> log p(token) (N, T) in fp32.

    `logit - logsumexp(logits)`, one row at a time, so no (N, T, V) fp32 log-softmax copy is ever held: the full-vocabulary
    temporary is one (T, V) row. The temperature is the sampling one, so the ratio compares the distribution sampled from.
    """
    out = torch.empty(tokens.shape, dtype=torch.float32, device=logits.device)
    for i in range(logits.shape[0]):
        row = logits[i].float() / temperature
        out[i] = row.gather(-1, tokens[i].unsqueeze(-1)).squeeze(-1) - torch.logsumexp(row, dim=-1)
    return out


@torch.no_grad()
def token_entropy(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """logits: (N, T, V) -> entropy of the sampling distribution at each position (N, T), fp32, no gradient."""
    out = torch.empty(logits.shape[:2], dtype=torch.float32, device=logits.device)
    for i in range(logits.shape[0]):
        row = logits[i].float() / temperature
        logp = torch.log_softmax(row, dim=-1)
        out[i] = -(logp.exp() * logp).sum(-1)
    return out


def kl_k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """(N, T), (N, T) -> per-token k3 estimate of KL(pi || ref): `exp(ref - logp) - (ref - logp) - 1` (>= 0, unbiased)."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1.0


def clipped_surrogate(logp: Tensor, old_logp: Tensor, advantages: Tensor, eps: float = 0.2,
                      eps_high: float | None = None) -> tuple[Tensor, Tensor]:
    """PPO's clipped objective as a per-token loss to minimise.

    logp, old_logp: (N, T); advantages: (N,) (one per sequence) -> (loss (N, T), clipped (N, T) bool).
    loss = -min(ratio * A, clip(ratio, 1 - eps, 1 + eps_high) * A); eps_high (DAPO's clip-higher) defaults to eps.
    `clipped` marks tokens where the clipped term was the smaller one (no gradient flows there).
    """
    eps_high = eps if eps_high is None else eps_high
    ratio = torch.exp(logp - old_logp)
    adv = advantages.unsqueeze(-1)
    unclipped = ratio * adv
    clipped_obj = torch.clamp(ratio, 1.0 - eps, 1.0 + eps_high) * adv
    loss = -torch.minimum(unclipped, clipped_obj)
    return loss, clipped_obj < unclipped


def aggregate(per_token: Tensor, mask: Tensor, loss_type: LossType, num_seqs: int | None = None,
              num_tokens: float | None = None, max_len: int | None = None) -> Tensor:
    """Reduce a per-token loss (N, T) with mask (N, T) to a scalar.

    - grpo: mean over each sequence's tokens, then mean over sequences (divides by `num_seqs`).
    - dapo: sum over all tokens / `num_tokens` (every token weighs alike, long answers are not diluted).
    - drgrpo: sum over all tokens / (`num_seqs` * `max_len`): a constant normaliser, no length bias.
    num_seqs / num_tokens default to this batch's; pass the whole update batch's when this is one micro-batch of it, so the
    micro-batch losses add up to the update batch's loss.
    """
    mask = mask.to(per_token.dtype)
    num_seqs = per_token.shape[0] if num_seqs is None else num_seqs
    if loss_type == "grpo":
        per_seq = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
        return per_seq.sum() / num_seqs
    if loss_type == "dapo":
        num_tokens = mask.sum() if num_tokens is None else num_tokens
        return (per_token * mask).sum() / max(float(num_tokens), 1.0)
    if loss_type == "drgrpo":
        if max_len is None:
            raise ValueError("drgrpo: max_len (the response length limit) is required")
        return (per_token * mask).sum() / (num_seqs * max_len)
    raise ValueError(f"loss_type: {loss_type!r} is not one of {', '.join(LOSS_TYPES)}")


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """(N, T), (N, T) -> scalar mean over real tokens (0 when there are none)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def policy_loss(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, ref_logp: Tensor | None = None,
                beta: float = 0.0, eps: float = 0.2, eps_high: float | None = None, loss_type: LossType = "grpo",
                num_seqs: int | None = None, num_tokens: float | None = None,
                max_len: int | None = None) -> tuple[Tensor, dict[str, float]]:
    """Eq. 2 as a loss: clipped surrogate + beta * k3 KL per token, aggregated by `loss_type`.

    logp, old_logp, ref_logp, mask: (N, T); advantages: (N,) -> (scalar loss, stats). Stats are this batch's token means
    of the clip indicator and the KL (0 when there is no reference).
    """
    per_token, clipped = clipped_surrogate(logp, old_logp, advantages, eps, eps_high)
    kl = None
    if ref_logp is not None and beta > 0:
        kl = kl_k3(logp, ref_logp)
        per_token = per_token + beta * kl
    loss = aggregate(per_token, mask, loss_type, num_seqs=num_seqs, num_tokens=num_tokens, max_len=max_len)
    with torch.no_grad():
        stats = {"clip_frac": float(masked_mean(clipped.float(), mask)),
                 "kl": float(masked_mean(kl, mask)) if kl is not None else 0.0}
    return loss, stats
