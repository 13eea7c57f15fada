import json

import pytest
from PIL import Image

from infimmr_cli.data.images import load_image, pixel_limits
from infimmr_cli.modeling import check_model_dir, load_model
from infimmr_cli.data.prompt import build_messages
from infimmr_cli.data.records import Record
from infimmr_cli.rollout import Request, SamplingSettings
from infimmr_cli.rollout.hf import HFEngine


def test_tiny_model_is_a_complete_directory(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"} <= names
    assert not any(n.endswith(".bin") for n in names)
    cfg = json.loads((tiny_model_dir / "config.json").read_text())
    assert cfg["model_type"] == "qwen2_5_vl"


def test_tiny_model_loads_like_a_real_one_and_generates_with_an_image(tiny_model_dir, tmp_path):
    model, processor = load_model(tiny_model_dir)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    tok = processor.tokenizer
    assert model.config.text_config.vocab_size == len(tok)
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert model.config.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    Image.new("RGB", (90, 70), (10, 200, 30)).save(tmp_path / "a.png")
    rec = Record(id="1", source="t", question="What is x?", answer="2", answer_type="math", images=["a.png"],
                 root=tmp_path)
    image = load_image(tmp_path / "a.png", *pixel_limits(processor))
    engine = HFEngine(model, processor, batch_size=2)
    out = engine.generate([Request(build_messages(rec), [image]), Request(build_messages(rec, with_images=False))],
                          SamplingSettings(n=2, max_new_tokens=5, seed=0))
    assert [len(o) for o in out] == [2, 2]
    assert all(len(c.token_ids) <= 5 for o in out for c in o)


def test_resized_image_is_left_alone_by_the_processor(tiny_model_dir, tmp_path):
    _, processor = load_model(tiny_model_dir)
    Image.new("RGB", (333, 97)).save(tmp_path / "wide.png")
    lo, hi, factor = pixel_limits(processor)
    image = load_image(tmp_path / "wide.png", lo, hi, factor)
    assert image.width % factor == 0 and image.height % factor == 0 and lo <= image.width * image.height <= hi
    grid = processor.image_processor(images=[image], return_tensors="pt")["image_grid_thw"][0]
    assert (int(grid[1]) * 14, int(grid[2]) * 14) == (image.height, image.width)


def test_greedy_generation_is_deterministic(tiny_model_dir):
    model, processor = load_model(tiny_model_dir)
    rec = Record(id="1", source="t", question="1+1?", answer="2", answer_type="math")
    engine = HFEngine(model, processor)
    req = [Request(build_messages(rec))]
    greedy = SamplingSettings(temperature=0, max_new_tokens=6)
    assert engine.generate(req, greedy)[0][0].token_ids == engine.generate(req, greedy)[0][0].token_ids


def test_incomplete_model_directory_is_refused_with_what_is_missing(tiny_model_dir, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="model.safetensors|safetensors"):
        check_model_dir(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        check_model_dir(tmp_path / "nope")
