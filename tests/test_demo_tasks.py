"""The demo's toy task and its supervised warm-up (examples/cpu_curriculum.sh runs them at full size)."""

import io
import random

import pytest
import torch
from PIL import Image

from infimmr_cli.curation.ngrams import exact_key
from infimmr_cli.data import demo_tasks
from infimmr_cli.data.demo_tasks import (
    IMAGE_WORDINGS,
    TEXT_WORDINGS,
    Sum,
    all_sums,
    warmup_examples,
)
from infimmr_cli.data.records import Record
from infimmr_cli.rewards.rules import score
from infimmr_cli.training.warmup import reply_loss


def test_reply_loss_is_the_mean_nll_over_reply_tokens():
    logp = torch.tensor([[-1.0, -2.0, -9.0], [-0.5, -9.0, -9.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert reply_loss(logp, mask).item() == pytest.approx((1.0 + 2.0 + 0.5) / 3, abs=1e-7)
    assert reply_loss(logp, torch.zeros_like(mask)).item() == 0.0  # an empty batch is no division by zero


def test_every_problem_draws_its_own_chart():
    pngs = {s.png() for s in all_sums()}
    assert len(pngs) == len(all_sums()) == 9
    assert Sum(3, 4).png() == Sum(3, 4).png()  # the same pixels for the same problem
    assert Image.open(io.BytesIO(Sum(1, 1).png())).size == (demo_tasks.IMAGE_SIZE,) * 2


def test_each_benchmark_asks_in_words_no_training_item_uses():
    """decontam's exact rule drops numbers: a benchmark sharing a training wording would flag every such item."""
    train = {exact_key(w.format("1 + 2")) for w in TEXT_WORDINGS["train"]} | {exact_key(w) for w in IMAGE_WORDINGS["train"]}
    for bench, wordings in {**TEXT_WORDINGS, **IMAGE_WORDINGS}.items():
        if bench != "train":
            assert not {exact_key(w.format("3 + 4")) for w in wordings} & train, bench


def test_warmup_targets_score_under_the_reward_and_slip_as_designed():
    examples = warmup_examples(400, seed=1, p_right=0.35)
    solved = [e for e in examples if e.target.startswith("<think>")]
    captions = [e for e in examples if not e.target.startswith("<think>")]
    assert len(solved) == 300 and len(captions) == 100
    right = 0
    for e in solved:
        item = _sum_of(e)
        s = score(e.target, Record(id="x", source="demo", question="q", answer=str(item.value), answer_type="math"))
        assert s["format"] == 1.0
        right += s["accuracy"] == 1.0
        if s["accuracy"] != 1.0:
            assert s["extracted"] == str(item.value + 1)  # the one slip: one too high
    assert 0.25 < right / len(solved) < 0.45
    assert all(e.images and e.target.startswith("red bar ") for e in captions)


def test_short_examples_have_no_system_prompt():
    for e in warmup_examples(20, short=True):
        assert all(m["role"] != "system" for m in e.messages)
    assert any(m["role"] == "system" for e in warmup_examples(20) for m in e.messages)


def _sum_of(example) -> Sum:
    """The problem behind an example: from its text, or from its chart's pixels."""
    text = " ".join(c.get("text", "") for m in example.messages for c in m["content"])
    for s in all_sums():
        if s.expression in text or (example.images and example.images[0] == s.png()):
            return s
    raise AssertionError(text)


def test_warm_up_teaches_a_random_model_the_replies(tmp_path):
    from infimmr_cli.modeling import TinySizes, build_tiny, load_model
    from infimmr_cli.training.warmup import warm_up

    build_tiny(tmp_path / "m", sizes=TinySizes(init_scale=1.0))
    model, processor = load_model(tmp_path / "m")
    examples = [e for e in warmup_examples(40, short=True, p_right=1.0) if not e.images][:6]
    losses = warm_up(model, processor, examples, steps=40, batch_size=6, lr=3e-3, seed=random.Random(0).randint(0, 9))
    assert len(losses) == 40 and not model.training
    assert losses[0] > 3.0 and sum(losses[-5:]) / 5 < 0.3 * losses[0]
