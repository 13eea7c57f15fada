import torch
from PIL import Image

from infimmr_cli.data.images import load_image, pixel_limits
from infimmr_cli.modeling import load_model
from infimmr_cli.data.prompt import build_messages
from infimmr_cli.data.records import Record
from infimmr_cli.training.batching import (PromptEncoding, collate, completion_logprobs, encode_prompt,
                                           prompt_length)


def test_collate_left_pads_prompts_and_right_pads_completions():
    a = PromptEncoding(input_ids=[1, 2, 3], mm_token_type_ids=[0, 0, 0])
    b = PromptEncoding(input_ids=[4, 5, 6, 7, 8], mm_token_type_ids=[0, 1, 1, 0, 0])
    batch = collate([a, b], [[9, 10], [11]], pad_id=0)
    assert batch["input_ids"].tolist() == [[0, 0, 1, 2, 3, 9, 10], [4, 5, 6, 7, 8, 11, 0]]
    assert batch["attention_mask"].tolist() == [[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0]]
    assert batch["completion_ids"].tolist() == [[9, 10], [11, 0]]
    assert batch["completion_mask"].tolist() == [[1, 1], [1, 0]]
    assert batch["mm_token_type_ids"].tolist() == [[0, 0, 0, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0, 0]]
    assert "pixel_values" not in batch


def _prompts(tmp_path, processor):
    Image.new("RGB", (84, 56), (200, 10, 10)).save(tmp_path / "a.png")
    Image.new("RGB", (56, 112), (10, 10, 200)).save(tmp_path / "b.png")
    recs = [Record(id="a", source="t", question="Area?", answer="1", answer_type="math", images=["a.png"],
                   root=tmp_path),
            Record(id="b", source="t", question="Which side is longest here?", answer="2", answer_type="math",
                   images=["b.png"], root=tmp_path),
            Record(id="c", source="t", question="1+1?", answer="2", answer_type="math")]
    lo, hi, f = pixel_limits(processor)
    return [encode_prompt(processor, build_messages(r, with_images=bool(r.images)),
                          [load_image(p, lo, hi, f) for p in r.image_paths()]) for r in recs], recs


def test_batched_padded_logprobs_equal_each_sequence_alone(tiny_model_dir, tmp_path):
    """Padding, pixel_values concatenation and M-RoPE positions are right if a mixed batch scores each completion
    exactly as a batch of one (no padding at all) does."""
    model, processor = load_model(tiny_model_dir)
    model.eval()
    prompts, _ = _prompts(tmp_path, processor)
    completions = [[105, 106, 107, 108], [109, 110], [111, 112, 113]]
    pad = processor.tokenizer.pad_token_id
    with torch.no_grad():
        together, entropy = completion_logprobs(model, collate(prompts, completions, pad), with_entropy=True)
        for i in range(3):
            alone, _ = completion_logprobs(model, collate([prompts[i]], [completions[i]], pad))
            n = len(completions[i])
            torch.testing.assert_close(together[i, :n], alone[0, :n], atol=1e-5, rtol=1e-5)
    assert entropy.shape == together.shape and (entropy >= 0).all()


def test_forward_uses_mrope_positions_for_image_prompts(tiny_model_dir, tmp_path):
    """A 84x56 image is a 2x3 grid of merged tokens: M-RoPE gives them 3 positions, not 6, so rope_deltas is -3."""
    model, processor = load_model(tiny_model_dir)
    prompts, _ = _prompts(tmp_path, processor)
    with torch.no_grad():
        completion_logprobs(model, collate(prompts[:1], [[105, 106]], processor.tokenizer.pad_token_id))
    deltas = [m.rope_deltas for m in model.modules() if getattr(m, "rope_deltas", None) is not None]
    assert deltas and int(deltas[0].flatten()[0]) == -3


def test_prompt_length_counts_expanded_image_tokens_without_processing_images(tiny_model_dir, tmp_path):
    _, processor = load_model(tiny_model_dir)
    prompts, recs = _prompts(tmp_path, processor)
    for enc, rec in zip(prompts, recs):
        sizes = [Image.open(p).size for p in rec.image_paths()]
        assert prompt_length(processor, build_messages(rec, with_images=bool(rec.images)), sizes) == len(enc.input_ids)


def test_text_only_batches_with_left_padding_score_like_one_sequence(tiny_model_dir, tmp_path):
    """FRA batches carry no image grid, so the model falls back to 1D positions that count the padding; RoPE only
    sees position differences, so the left-padded row must still match its unpadded score."""
    model, processor = load_model(tiny_model_dir)
    model.eval()
    recs = [Record(id="a", source="t", question="1+1?", answer="2", answer_type="math"),
            Record(id="b", source="t", question="What is the area of the triangle with sides 3, 4, 5?", answer="6",
                   answer_type="math")]
    prompts = [encode_prompt(processor, build_messages(r), []) for r in recs]
    assert len(prompts[0].input_ids) < len(prompts[1].input_ids)
    pad = processor.tokenizer.pad_token_id
    with torch.no_grad():
        together, _ = completion_logprobs(model, collate(prompts, [[105, 106, 107], [108, 109, 110]], pad))
        alone, _ = completion_logprobs(model, collate(prompts[:1], [[105, 106, 107]], pad))
    torch.testing.assert_close(together[0], alone[0], atol=1e-5, rtol=1e-5)
