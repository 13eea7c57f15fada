"""The vLLM adapter against a fake `vllm` module that records every call (no GPU, no vllm install needed)."""

import sys
import types
from contextlib import contextmanager

import pytest
import torch
from PIL import Image

from infimmr_cli.data.images import load_image, pixel_limits
from infimmr_cli.modeling import load_model, load_processor
from infimmr_cli.data.prompt import build_messages
from infimmr_cli.data.records import Record
from infimmr_cli.rollout import Request, SamplingSettings, open_engine
from infimmr_cli.rollout.vllm import VLLMEngine, find_vllm_model
from infimmr_cli.rollout.weights import hf_weight_name, iter_full_weights


# ---- the fake vLLM ------------------------------------------------------------------------------------------------
class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class FakeOutput:
    def __init__(self, text, token_ids, finish_reason):
        self.text, self.token_ids, self.finish_reason = text, token_ids, finish_reason


class FakeModel:
    def __init__(self, log):
        self.log = log
        self.received = []

    def load_weights(self, weights):
        self.received.extend(weights)  # consume the iterable, as vLLM's loader does
        self.log.append("load_weights")


class FakeLLM:
    """Records calls in order; `shape` picks how the model is reachable: 'driver', 'wrapped' or 'rpc'."""

    script = [([5], "stop")]  # per request, cycled: (token_ids, finish_reason); tests patch it

    def __init__(self, model=None, shape="driver", **kwargs):
        self.init_kwargs = dict(model=model, **kwargs)
        self.log = []
        self.generated = []
        self.model = FakeModel(self.log)
        runner = types.SimpleNamespace(model=self.model)
        worker = types.SimpleNamespace(model_runner=runner)
        if shape == "driver":
            driver = worker
        elif shape == "wrapped":
            driver = types.SimpleNamespace(worker=worker)
        else:
            driver = None
            self.collective_rpc = lambda fn, args=(): [fn(worker, *args)]
        self.llm_engine = types.SimpleNamespace(model_executor=types.SimpleNamespace(driver_worker=driver))

    def generate(self, prompts, params, use_tqdm=True):
        self.log.append("generate")
        self.generated.append((prompts, params))
        results = []
        for i, _ in enumerate(prompts):
            ids, reason = self.script[i % len(self.script)]
            outs = [FakeOutput(f"text{i}.{j}", list(ids), reason) for j in range(params.kwargs["n"])]
            results.append(types.SimpleNamespace(outputs=outs))
        return results

    def sleep(self, level=1):
        self.log.append(f"sleep({level})")

    def wake_up(self, tags=None):
        self.log.append(f"wake_up({','.join(tags) if tags else 'all'})")

    def reset_prefix_cache(self):
        self.log.append("reset_prefix_cache")


@pytest.fixture()
def fake_vllm(monkeypatch):
    mod = types.ModuleType("vllm")
    mod.LLM = FakeLLM
    mod.SamplingParams = FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", mod)
    return mod


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    return load_processor(tiny_model_dir)


def make_engine(processor, shape="driver", **kw):
    return VLLMEngine(FakeLLM(shape=shape), processor, **kw)


def image_request(tmp_path, processor, sizes=((90, 70), (333, 97))):
    paths = []
    for i, (w, h) in enumerate(sizes):
        Image.new("RGB", (w, h), (20 * i, 100, 30)).save(tmp_path / f"im{i}.png")
        paths.append(f"im{i}.png")
    rec = Record(id="1", source="t", question="Find x.", answer="2", answer_type="math", images=paths, root=tmp_path)
    images = [load_image(p, *pixel_limits(processor)) for p in rec.image_paths()]
    return Request(build_messages(rec), images), images


# ---- prompts and images -------------------------------------------------------------------------------------------
def test_prompt_holds_one_unexpanded_pad_per_image_and_the_resized_images(fake_vllm, processor, tmp_path):
    engine = make_engine(processor)
    req, images = image_request(tmp_path, processor)
    engine.generate([req, Request(build_messages(Record(id="2", source="t", question="1+1?", answer="2",
                                                        answer_type="math")))], SamplingSettings(max_new_tokens=4))
    prompts, _ = engine.llm.generated[0]
    first, second = prompts
    assert first["prompt"].count("<|image_pad|>") == 2
    assert first["prompt"].count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    assert first["prompt"].endswith("<|im_start|>assistant\n")
    assert [im.size for im in first["multi_modal_data"]["image"]] == [im.size for im in images]
    assert all(a is b for a, b in zip(first["multi_modal_data"]["image"], images))  # already on the grid: untouched
    assert "multi_modal_data" not in second and "<|image_pad|>" not in second["prompt"]


def test_an_image_off_the_grid_is_resized_like_images_py_would(fake_vllm, processor, tmp_path):
    engine = make_engine(processor)
    req, images = image_request(tmp_path, processor, sizes=((333, 97),))
    raw = Image.open(tmp_path / "im0.png").convert("RGB")
    out = engine.prompt(Request(req.messages, [raw]))
    assert out["multi_modal_data"]["image"][0].size == images[0].size != raw.size


def test_a_prompt_whose_pads_do_not_match_its_images_is_refused(fake_vllm, processor, tmp_path):
    engine = make_engine(processor)
    req, images = image_request(tmp_path, processor)
    with pytest.raises(ValueError, match="2 <\\|image_pad\\|> for 1 images"):
        engine.prompt(Request(req.messages, images[:1]))


def test_from_pretrained_passes_the_processor_pixel_range_and_colocation(fake_vllm, processor, tiny_model_dir,
                                                                        monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    engine = VLLMEngine.from_pretrained(tiny_model_dir, processor, dtype="bf16", gpu_memory_utilization=0.3)
    kw = engine.llm.init_kwargs
    lo, hi, _ = pixel_limits(processor)
    assert kw["mm_processor_kwargs"] == {"min_pixels": lo, "max_pixels": hi}
    assert (kw["model"], kw["dtype"], kw["gpu_memory_utilization"]) == (str(tiny_model_dir), "bfloat16", 0.3)
    assert kw["distributed_executor_backend"] == "external_launcher" and kw["enable_sleep_mode"] is True
    monkeypatch.delenv("RANK")
    assert "distributed_executor_backend" not in VLLMEngine.from_pretrained(tiny_model_dir, processor).llm.init_kwargs


def test_open_engine_builds_the_vllm_engine_when_asked(fake_vllm, tiny_model_dir):
    engine, proc = open_engine(tiny_model_dir, engine="vllm", max_model_len=512)
    assert isinstance(engine, VLLMEngine) and engine.llm.init_kwargs["max_model_len"] == 512
    assert pixel_limits(proc) == (engine.min_pixels, engine.max_pixels, engine.factor)


# ---- sampling and completions -------------------------------------------------------------------------------------
@pytest.mark.parametrize("settings, expected", [
    (SamplingSettings(n=4, temperature=1.0, top_p=0.9, top_k=0, max_new_tokens=64, seed=7, repetition_penalty=1.2),
     dict(n=4, temperature=1.0, top_p=0.9, top_k=-1, max_tokens=64, seed=7, repetition_penalty=1.2)),
    (SamplingSettings(temperature=0.2, top_p=0.8, top_k=10, max_new_tokens=8),
     dict(n=1, temperature=0.2, top_p=0.8, top_k=10, max_tokens=8, seed=None, repetition_penalty=1.0)),
    (SamplingSettings(temperature=0.0, top_p=0.5, top_k=5, max_new_tokens=8),
     dict(n=1, temperature=0.0, top_p=1.0, top_k=-1, max_tokens=8, seed=None, repetition_penalty=1.0)),
])
def test_sampling_settings_translate_to_vllm(fake_vllm, processor, settings, expected):
    params = make_engine(processor).sampling_params(settings)
    im_end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert {k: params.kwargs[k] for k in expected} == expected
    assert im_end in params.kwargs["stop_token_ids"]


def test_completions_come_back_in_request_order_with_finish_reasons(fake_vllm, processor, monkeypatch):
    im_end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    monkeypatch.setattr(FakeLLM, "script", [([5, 6, im_end], "stop"), ([7, 8, 9], "length")])
    engine = make_engine(processor)
    reqs = [Request([{"role": "user", "content": [{"type": "text", "text": f"q{i}"}]}]) for i in range(3)]
    out = engine.generate(reqs, SamplingSettings(n=2, max_new_tokens=3))
    assert [[c.text for c in o] for o in out] == [["text0.0", "text0.1"], ["text1.0", "text1.1"], ["text2.0", "text2.1"]]
    assert [o[0].finish_reason for o in out] == ["stop", "length", "stop"]
    assert out[0][0].token_ids == [5, 6] and out[1][0].token_ids == [7, 8, 9]  # end token dropped, like HFEngine
    monkeypatch.setattr(FakeLLM, "script", [([5], "abort")])
    with pytest.raises(RuntimeError, match="finish_reason 'abort'"):
        engine.generate(reqs[:1], SamplingSettings())


# ---- sleep, wake and weights --------------------------------------------------------------------------------------
def test_a_training_step_wakes_in_the_safe_order(fake_vllm, processor):
    engine = make_engine(processor)
    req = [Request([{"role": "user", "content": [{"type": "text", "text": "q"}]}])]
    engine.generate(req, SamplingSettings())
    engine.sleep()
    engine.load_weights([("model.embed_tokens.weight", torch.zeros(2))])
    engine.wake_up()
    engine.generate(req, SamplingSettings())
    engine.sleep()
    assert engine.llm.log == ["generate", "sleep(1)", "wake_up(weights)", "load_weights", "reset_prefix_cache",
                              "reset_prefix_cache", "wake_up(kv_cache)", "generate", "sleep(1)"]


def test_generating_while_asleep_wakes_first_and_sleep_is_idempotent(fake_vllm, processor):
    engine = make_engine(processor)
    engine.sleep()
    engine.sleep()
    engine.generate([Request([{"role": "user", "content": "q"}])], SamplingSettings())
    assert engine.llm.log == ["sleep(1)", "wake_up(weights)", "reset_prefix_cache", "wake_up(kv_cache)", "generate"]


def test_level_two_sleep_refuses_to_wake_without_new_weights(fake_vllm, processor):
    engine = make_engine(processor, sleep_level=2)
    engine.sleep()
    with pytest.raises(RuntimeError, match="call load_weights"):
        engine.wake_up()
    engine.load_weights([("lm_head.weight", torch.zeros(1))])
    engine.wake_up()
    assert engine.llm.log[-1] == "wake_up(kv_cache)"


@pytest.mark.parametrize("shape", ["driver", "wrapped", "rpc"])
def test_find_model_and_push_weights_through_each_shape(fake_vllm, processor, shape):
    engine = make_engine(processor, shape=shape)
    assert (find_vllm_model(engine.llm) is None) == (shape == "rpc")
    engine.load_weights([("base_model.model.model.language_model.layers.0.self_attn.q_proj.base_layer.weight",
                          torch.ones(2)),
                         ("base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.default.weight",
                          torch.ones(1)),
                         ("model.visual.blocks.0.attn.qkv.weight", torch.zeros(3))])
    assert [n for n, _ in engine.llm.model.received] == ["model.language_model.layers.0.self_attn.q_proj.weight",
                                                         "model.visual.blocks.0.attn.qkv.weight"]


@pytest.mark.parametrize("name, expected", [
    ("model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.up_proj.weight"),
    ("base_model.model.model.layers.0.mlp.up_proj.base_layer.weight", "model.layers.0.mlp.up_proj.weight"),
    ("base_model.model.model.layers.0.mlp.up_proj.base_layer.bias", "model.layers.0.mlp.up_proj.bias"),
    ("base_model.model.model.layers.0.mlp.up_proj.lora_B.default.weight", None),
    ("base_model.model.model.embed_tokens.lora_embedding_A.default", None),
    ("base_model.model.lm_head.modules_to_save.default.weight", "lm_head.weight"),
    ("base_model.model.lm_head.original_module.weight", None),
])
def test_hf_weight_name_strips_peft_wrapping(name, expected):
    assert hf_weight_name(name) == expected


# ---- full weights from the trainer's model ------------------------------------------------------------------------
def test_plain_module_yields_its_own_names_and_tensors():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    got = dict(iter_full_weights(net))
    assert got.keys() == dict(net.named_parameters()).keys()
    assert all(torch.equal(got[n], p) for n, p in net.named_parameters())


def test_zero3_parameters_are_gathered_one_at_a_time(monkeypatch):
    import deepspeed

    calls = []

    @contextmanager
    def fake_gather(params, modifier_rank=None):
        calls.append(len(params))
        yield

    monkeypatch.setattr(deepspeed.zero, "GatheredParameters", fake_gather)
    net = torch.nn.Linear(3, 2)
    for p in net.parameters():
        p.ds_id = 1  # what ZeRO-3 tags partitioned parameters with
    got = list(iter_full_weights(net))
    assert calls == [1, 1] and [n for n, _ in got] == ["weight", "bias"]
    assert got[0][1].data_ptr() != net.weight.data_ptr()  # a copy: the gathered storage is released afterwards


def test_lora_is_merged_into_hf_names_and_unmerged_after(tiny_model_dir, processor):
    from peft import LoraConfig, get_peft_model

    base, _ = load_model(tiny_model_dir)
    base_names = [n for n, _ in base.named_parameters()]
    target = next(n for n in base_names if n.endswith("layers.0.self_attn.q_proj.weight"))
    w0 = dict(base.named_parameters())[target].detach().clone()
    peft_model = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    layer = peft_model.get_submodule("base_model.model." + target.rsplit(".", 1)[0])
    torch.manual_seed(0)
    torch.nn.init.normal_(layer.lora_B["default"].weight)
    expected = w0 + (4 / 2) * layer.lora_B["default"].weight @ layer.lora_A["default"].weight

    pushed = dict(iter_full_weights(peft_model))
    assert list(pushed) == base_names  # HF names, nothing of LoRA left
    torch.testing.assert_close(pushed[target], expected)
    torch.testing.assert_close(layer.base_layer.weight.detach(), w0)  # training continues un-merged
    assert not layer.merged

    engine = make_engine(processor)
    engine.load_weights(iter_full_weights(peft_model))
    assert [n for n, _ in engine.llm.model.received] == base_names
