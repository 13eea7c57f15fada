"""Our vLLM engine against vLLM itself (CPU build).

Set up with `scripts/setup_vllm.sh`, run with `.venv-vllm/bin/python -m pytest -m vllm`.

Every test compares with the HF engine on the same tiny model, whose greedy outputs differ between prompts, images and
seeds (checked here too, so no comparison passes vacuously). One in-process engine serves the module; tests that push
other weights push the tiny model's back before they end.
"""

from __future__ import annotations

import copy
import json
import os

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from conftest import run_cli
from infimmr_cli.modeling import build_tiny, load_model
from infimmr_cli.rollout import Request, SamplingSettings
from infimmr_cli.rollout.hf import HFEngine
from infimmr_cli.rollout.weights import full_weights

pytestmark = pytest.mark.vllm

# What the notes found to work on a small CPU box: 1 GiB of KV cache, the engine in this process.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
ENGINE_KW = dict(dtype="fp32", max_model_len=1024, limit_mm_per_prompt={"image": 2})
GREEDY = SamplingSettings(temperature=0, max_new_tokens=16)


def text(q: str) -> Request:
    return Request([{"role": "user", "content": [{"type": "text", "text": q}]}])


def with_images(q: str, images: list[Image.Image]) -> Request:
    return Request([{"role": "user", "content": [*({"type": "image"} for _ in images), {"type": "text", "text": q}]}],
                   images)


RED, GREEN = Image.new("RGB", (56, 56), (200, 30, 30)), Image.new("RGB", (84, 56), (10, 200, 30))
PROMPTS = {
    "text": text("What is 1 + 1?"),
    "text2": text("Find the value of x."),
    "one image": with_images("Describe the image.", [RED]),
    "other image": with_images("Describe the image.", [GREEN]),
    "two images": with_images("Compare the two images.", [RED, GREEN]),
    "long": text("The image shows a chart with axes, a table with headers and cells. " * 30 + "What is x?"),
}


def ids(outputs) -> list[list[int]]:
    return [group[0].token_ids for group in outputs]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two tiny models of the same shape (seeds 0 and 1) and their HF engines."""
    pytest.importorskip("vllm")
    root = tmp_path_factory.mktemp("vllm-models")
    out = {}
    for name, seed in (("a", 0), ("b", 1)):
        path = build_tiny(root / name, seed=seed)
        model, processor = load_model(path, dtype="fp32")
        out[name] = (path, model, processor, HFEngine(model, processor))
    return out


@pytest.fixture(scope="module")
def engine(models):
    from infimmr_cli.rollout.vllm import VLLMEngine

    path, _, processor, _ = models["a"]
    return VLLMEngine.from_pretrained(path, processor, **ENGINE_KW)


@pytest.fixture()
def restore_a(engine, models):
    yield
    engine.load_weights(full_weights(models["a"][1]))


# ---- what the platform allows -------------------------------------------------------------------------------------
def test_on_cpu_the_engine_has_no_sleep_mode_and_no_request_seeds(engine):
    assert engine.platform.sleep is False and engine.platform.push == "reload" and not engine.platform.request_seed
    assert engine.tied is True
    engine.sleep()  # a no-op here: vLLM's sleep() without sleep mode pauses the scheduler and generate() would hang
    assert engine.state == "awake"
    assert ids(engine.generate([PROMPTS["text"]], GREEDY))[0]


# ---- prompts ------------------------------------------------------------------------------------------------------
def test_prompts_carry_one_unexpanded_pad_per_image_and_images_on_the_processor_grid(engine):
    out = engine.prompt(PROMPTS["two images"])
    assert out["prompt"].count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    assert out["prompt"].count("<|image_pad|>") == 2 and out["prompt"].endswith("<|im_start|>assistant\n")
    assert out["multi_modal_data"]["image"][0] is RED  # already on the grid: untouched
    off_grid = engine.prompt(with_images("Describe.", [Image.new("RGB", (333, 97))]))["multi_modal_data"]["image"][0]
    assert off_grid.size != (333, 97) and off_grid.width % engine.factor == off_grid.height % engine.factor == 0
    with pytest.raises(ValueError, match="2 <\\|image_pad\\|> for 1 images"):
        engine.prompt(Request(PROMPTS["two images"].messages, [RED]))
    expanded = Request([{"role": "user", "content": "<|vision_start|><|image_pad|><|image_pad|><|vision_end|>x"}],
                       [RED, GREEN])  # what the HF processor's expanded text looks like: vLLM would expand it again
    with pytest.raises(ValueError, match="unexpanded"):
        engine.prompt(expanded)


# ---- greedy parity ------------------------------------------------------------------------------------------------
def test_greedy_token_ids_equal_hf_on_text_images_and_a_long_prompt(engine, models):
    reqs = list(PROMPTS.values())
    hf, got = ids(models["a"][3].generate(reqs, GREEDY)), ids(engine.generate(reqs, GREEDY))
    assert got == hf
    assert len({tuple(x) for x in hf}) == len(reqs)  # every prompt (and image) gives its own output


@pytest.mark.parametrize("size", [(56, 56), (84, 56), (200, 100), (30, 300), (640, 480)])
def test_image_token_counts_equal_the_hf_processor(engine, models, size):
    from infimmr_cli.data.images import fit_size

    processor = models["a"][2]
    image = Image.new("RGB", size, (90, 40, 10))
    h, w = fit_size(image.height, image.width, engine.min_pixels, engine.max_pixels, engine.factor)
    image = image.resize((w, h))
    req = with_images("Describe.", [image])
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    hf_ids = processor(text=[engine.prompt(req)["prompt"]], images=[image], return_tensors="pt")["input_ids"][0]
    out = engine.llm.generate([engine.prompt(req)], engine.sampling_params(GREEDY), use_tqdm=False)[0]
    assert list(out.prompt_token_ids).count(pad) == int((hf_ids == pad).sum()) > 1
    # The pixel limits reach vLLM itself: an image we did not resize is resized by vLLM as by the HF processor.
    raw = Image.new("RGB", size, (90, 40, 10))
    raw_hf = processor(text=[engine.prompt(req)["prompt"]], images=[raw], return_tensors="pt")["input_ids"][0]
    raw_out = engine.llm.generate([{"prompt": engine.prompt(req)["prompt"], "multi_modal_data": {"image": [raw]}}],
                                  engine.sampling_params(GREEDY), use_tqdm=False)[0]
    assert list(raw_out.prompt_token_ids).count(pad) == int((raw_hf == pad).sum())


def test_seeded_sampling_repeats_and_differs_between_seeds(engine):
    def sample(seed):
        return [c.token_ids for c in engine.generate([PROMPTS["text"]], SamplingSettings(n=2, max_new_tokens=8,
                                                                                         seed=seed))[0]]
    assert sample(3) == sample(3) != sample(4)


# ---- weight push --------------------------------------------------------------------------------------------------
def test_pushing_another_models_weights_makes_its_outputs_those_of_that_model(engine, models, restore_a):
    reqs = list(PROMPTS.values())
    a, b = ids(models["a"][3].generate(reqs, GREEDY)), ids(models["b"][3].generate(reqs, GREEDY))
    assert all(x != y for x, y in zip(a, b))
    assert ids(engine.generate(reqs, GREEDY)) == a  # also fills the prefix and image caches with a's entries
    engine.load_weights(full_weights(models["b"][1]))
    assert ids(engine.generate(reqs, GREEDY)) == b  # stale caches would give a's outputs (or an encoder cache miss)
    engine.load_weights(full_weights(models["a"][1]))
    assert ids(engine.generate(reqs, GREEDY)) == a


def test_a_push_without_the_tied_head_cannot_leave_the_old_head(engine, models, restore_a):
    reqs = [PROMPTS["text"], PROMPTS["one image"]]
    b = ids(models["b"][3].generate(reqs, GREEDY))
    pushed = list(models["b"][1].named_parameters())  # no lm_head.weight: named_parameters() drops tied names
    assert "lm_head.weight" not in dict(pushed)
    engine.load_weights(pushed)
    assert ids(engine.generate(reqs, GREEDY)) == b
    # Why the engine adds it: vLLM on CPU keeps its own copy of the output layer, which a bare push leaves stale.
    engine.load_weights(full_weights(models["a"][1]))
    engine.tied = False
    try:
        engine.load_weights(pushed)
        assert ids(engine.generate(reqs, GREEDY)) != b
    finally:
        engine.tied = True


def test_a_lora_merged_policy_pushes_as_peft_merges_it(engine, models, restore_a):
    from peft import LoraConfig, get_peft_model

    base = copy.deepcopy(models["a"][1])
    policy = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    torch.manual_seed(0)
    for name, p in policy.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)
    merged = copy.deepcopy(policy).merge_and_unload()
    reqs = [PROMPTS["text"], PROMPTS["two images"]]
    expected = ids(HFEngine(merged, models["a"][2]).generate(reqs, GREEDY))
    assert expected != ids(models["a"][3].generate(reqs, GREEDY))  # the adapter changes the outputs
    engine.load_weights(full_weights(policy))
    assert ids(engine.generate(reqs, GREEDY)) == expected


# ---- the commands with --engine vllm ------------------------------------------------------------------------------
def _metrics(out):
    skip = ("step_time", "rollout_time", "reward_time", "logprob_time", "update_time", "tokens_per_s")
    return [{k: v for k, v in json.loads(line).items() if k not in skip}
            for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_train_phase_with_vllm_runs_and_resume_continues_exactly(models, train_data, tmp_path):
    path = models["a"][0]
    sets = ["prompts_per_step=4", "group_size=4", "update_batch=2", "micro_batch=4", "max_response_len=8",
            "beta=0.01", "lr=1e-2", "mu=2", "deepspeed=", "save_every=3", 'vllm={"max_model_len": 1024}']
    args = ["train-phase", "--config", "recipes/phases/mre.json", "--data", str(train_data), "--init", str(path),
            # the dense "length" reward: every step changes the weights that are pushed to vLLM
            "--engine", "vllm", "--reward", f"{train_data.parent / 'share_reward.py'}:length",
            *(x for s in sets for x in ("--set", s))]
    from conftest import REPO

    run_cli(*args, "--out", tmp_path / "once", "--steps", "6", cwd=REPO)
    run_cli(*args, "--out", tmp_path / "twice", "--steps", "3", cwd=REPO)
    run_cli(*args, "--out", tmp_path / "twice", "--steps", "6", "--resume", cwd=REPO)
    once, twice = _metrics(tmp_path / "once"), _metrics(tmp_path / "twice")
    assert len(once) == 6 and once == twice
    assert len({r["reward_mean"] for r in once}) > 1  # rollouts differ step to step
    a, b = load_file(tmp_path / "once" / "final" / "model.safetensors"), load_file(tmp_path / "twice" / "final" /
                                                                                   "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    init = load_file(path / "model.safetensors")
    assert any(not torch.equal(a[k], init[k]) for k in a)  # the pushed weights moved: vLLM rolled out new policies


def test_the_learnable_reward_rises_with_vllm_rollouts(models, train_data, tmp_path):
    """As tests/test_train_phase.py's learning test, with every rollout from vLLM: the pushed weights are used."""
    from conftest import REPO

    sets = ["prompts_per_step=4", "group_size=8", "update_batch=4", "micro_batch=16", "max_response_len=12", "beta=0",
            "lr=1e-2", "save_every=100", "deepspeed=", 'vllm={"max_model_len": 1024}']
    run_cli("train-phase", "--config", "recipes/phases/fra.json", "--data", train_data, "--init", models["a"][0],
            "--out", tmp_path / "learn", "--steps", "30", "--engine", "vllm",
            "--reward", f"{train_data.parent / 'share_reward.py'}:share", *(x for s in sets for x in ("--set", s)),
            cwd=REPO)
    rewards = [r["reward_mean"] for r in _metrics(tmp_path / "learn")]
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert last > first + 0.2, rewards


@pytest.mark.parametrize("command", ["eval", "caption"])
def test_eval_and_caption_write_the_same_records_with_either_engine(command, models, train_data, tmp_path):
    path = models["a"][0]
    outs = {}
    for name in ("hf", "vllm"):
        out = tmp_path / name
        if command == "eval":
            bench = train_data.parent / "mathverse.jsonl"  # the training records, as if prepared for a bench
            recs = [json.loads(line) for line in train_data.read_text().splitlines()]
            bench.write_text("".join(json.dumps({**r, "source": "mathverse"}) + "\n" for r in recs))
            run_cli("eval", "--bench", "mathverse", "--records", bench, "--model", path, "--out", out, "--engine", name,
                    "--max-new-tokens", "16")
            files = [out / "mathverse" / "predictions.jsonl"]  # results.json and run.json name the engine
        else:
            typed = train_data.parent / "typed.jsonl"  # caption needs each image record's type
            recs = [json.loads(line) for line in train_data.read_text().splitlines()]
            typed.write_text("".join(json.dumps({**r, "caption": None, **({"image_type": "mathgeo"} if r.get("images")
                                                                           else {})}) + "\n" for r in recs))
            run_cli("caption", "--in", typed, "--out", out / "captions.jsonl", "--model", path, "--engine", name,
                    "--max-new-tokens", "16")
            files = [out / "captions.jsonl"]
        outs[name] = {p.relative_to(out): [json.loads(line) for line in p.read_text().splitlines()] for p in files}
    assert outs["hf"] and outs["hf"] == outs["vllm"]
    texts = [json.dumps(r) for recs in outs["hf"].values() for r in recs]
    assert len(set(texts)) > 1
