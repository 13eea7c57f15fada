"""GRPO math against numbers worked out by hand (comments show the arithmetic)."""

import math

import pytest
import torch

from infimmr_cli.training import grpo

T = dict(atol=1e-6, rtol=0)


def test_group_advantages_normalise_within_each_group():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    # group 1: mean 0.5, unbiased std sqrt((4 * 0.25) / 3) = sqrt(1/3); group 2: all equal -> 0 / (0 + eps) = 0
    a = 0.5 / (math.sqrt(1 / 3) + 1e-6)
    expected = torch.tensor([a, -a, -a, a, 0, 0, 0, 0])
    torch.testing.assert_close(grpo.group_advantages(r, 4, eps=1e-6), expected, **T)


def test_drgrpo_advantages_only_subtract_the_group_mean():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 3.0, 1.0])
    expected = torch.tensor([0.5, -0.5, -0.5, 0.5, 1.0, -1.0])
    torch.testing.assert_close(grpo.group_advantages(r[:4], 4, scale=False), expected[:4], **T)
    torch.testing.assert_close(grpo.group_advantages(r[4:], 2, scale=False), expected[4:], **T)


def test_group_advantages_refuse_a_batch_that_is_not_whole_groups():
    with pytest.raises(ValueError, match="B\\*4"):
        grpo.group_advantages(torch.zeros(6), 4)


def test_varied_groups_marks_groups_with_unequal_rewards():
    r = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.5, 0.5])
    assert grpo.varied_groups(r, 2).tolist() == [False, False, True, True, False, False]


def test_token_logprobs_at_temperature_one_and_two():
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])  # (1, 2, 2)
    tokens = torch.tensor([[0, 0]])
    # p = [1/2, 1/2] -> log 0.5; p = [3/4, 1/4] -> log 0.75
    torch.testing.assert_close(grpo.token_logprobs(logits, tokens), torch.tensor([[math.log(0.5), math.log(0.75)]]), **T)
    # at T=2 the second row is [ln3/2, 0]: p0 = sqrt3 / (sqrt3 + 1)
    p0 = math.sqrt(3) / (math.sqrt(3) + 1)
    torch.testing.assert_close(grpo.token_logprobs(logits, tokens, temperature=2.0)[0, 1], torch.tensor(math.log(p0)), **T)


def test_token_logprobs_carry_gradient_and_match_log_softmax():
    logits = torch.randn(3, 5, 7, requires_grad=True)
    tokens = torch.randint(0, 7, (3, 5))
    out = grpo.token_logprobs(logits, tokens, temperature=0.7)
    ref = torch.log_softmax(logits / 0.7, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)
    out.sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_token_entropy_of_uniform_and_skewed_rows():
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])
    # uniform over 2: ln 2; [3/4, 1/4]: -(0.75 ln 0.75 + 0.25 ln 0.25)
    expected = torch.tensor([[math.log(2), -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))]])
    torch.testing.assert_close(grpo.token_entropy(logits), expected, **T)


def test_kl_k3_by_hand():
    logp = torch.tensor([[math.log(0.5), math.log(0.3)]])
    ref = torch.tensor([[math.log(0.25), math.log(0.3)]])
    # d = ln(0.25/0.5) = -ln 2: 0.5 + ln 2 - 1; equal log-probs: 0
    torch.testing.assert_close(grpo.kl_k3(logp, ref), torch.tensor([[0.5 + math.log(2) - 1, 0.0]]), **T)


def test_clipped_surrogate_takes_the_pessimistic_term():
    logp = torch.tensor([[math.log(1.5)], [math.log(1.5)], [math.log(0.5)], [math.log(1.1)]])
    old = torch.zeros(4, 1)
    adv = torch.tensor([1.0, -1.0, -1.0, 2.0])
    loss, clipped = grpo.clipped_surrogate(logp, old, adv, eps=0.2)
    # r=1.5,A=1: min(1.5, 1.2) = 1.2 | r=1.5,A=-1: min(-1.5, -1.2) = -1.5 | r=0.5,A=-1: min(-0.5, -0.8) = -0.8 | r=1.1: 2.2
    torch.testing.assert_close(loss, torch.tensor([[-1.2], [1.5], [0.8], [-2.2]]), **T)
    assert clipped.squeeze(-1).tolist() == [True, False, True, False]


def test_clip_higher_widens_only_the_upper_bound():
    logp = torch.tensor([[math.log(1.5)], [math.log(0.5)]])
    loss, _ = grpo.clipped_surrogate(logp, torch.zeros(2, 1), torch.tensor([1.0, -1.0]), eps=0.2, eps_high=0.28)
    torch.testing.assert_close(loss, torch.tensor([[-1.28], [0.8]]), **T)


def test_aggregation_modes_by_hand():
    per_token = torch.tensor([[1.0, 2.0, 3.0], [4.0, 9.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    # grpo: seq means 2 and 4 -> 3 | dapo: (6 + 4) / 4 tokens = 2.5 | drgrpo: 10 / (2 seqs * 4 max_len) = 1.25
    assert grpo.aggregate(per_token, mask, "grpo").item() == pytest.approx(3.0, abs=1e-6)
    assert grpo.aggregate(per_token, mask, "dapo").item() == pytest.approx(2.5, abs=1e-6)
    assert grpo.aggregate(per_token, mask, "drgrpo", max_len=4).item() == pytest.approx(1.25, abs=1e-6)
    with pytest.raises(ValueError, match="loss_type"):
        grpo.aggregate(per_token, mask, "ppo")


@pytest.mark.parametrize("loss_type", grpo.LOSS_TYPES)
def test_micro_batch_losses_add_up_to_the_full_batch_loss(loss_type):
    per_token = torch.tensor([[1.0, 2.0, 3.0], [4.0, 9.0, 9.0], [0.5, 0.5, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    full = grpo.aggregate(per_token, mask, loss_type, max_len=3)
    norm = dict(num_seqs=3, num_tokens=float(mask.sum()), max_len=3)
    parts = grpo.aggregate(per_token[:2], mask[:2], loss_type, **norm) + grpo.aggregate(per_token[2:], mask[2:],
                                                                                           loss_type, **norm)
    assert parts.item() == pytest.approx(full.item(), abs=1e-6)


def test_policy_loss_adds_beta_times_kl_and_reports_stats():
    logp = torch.tensor([[math.log(0.5), math.log(0.5)]])
    ref = torch.tensor([[math.log(0.25), math.log(0.5)]])
    mask = torch.tensor([[1.0, 1.0]])
    loss, stats = grpo.policy_loss(logp, logp.clone(), torch.tensor([1.0]), mask, ref_logp=ref, beta=0.1)
    kl0 = 0.5 + math.log(2) - 1  # token 0; token 1 has KL 0
    # ratio 1: surrogate -1 per token; + 0.1 * kl; grpo mean over 2 tokens
    assert loss.item() == pytest.approx(-1 + 0.1 * kl0 / 2, abs=1e-6)
    assert stats["kl"] == pytest.approx(kl0 / 2, abs=1e-6)
    assert stats["clip_frac"] == 0.0
    loss0, stats0 = grpo.policy_loss(logp, logp.clone(), torch.tensor([1.0]), mask, ref_logp=ref, beta=0.0)
    assert loss0.item() == pytest.approx(-1.0, abs=1e-6) and stats0["kl"] == 0.0
