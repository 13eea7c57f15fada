"""The vLLM adapter against a fake `vllm` module, for what vLLM's CPU build cannot show here: sleep mode and the safe
wake order, GPU engine arguments and weight-push paths, per-request seeds, an aborted request.

Everything vLLM can show on CPU (prompts, image tokens, parity, pushes, caches, the commands) is in
test_vllm_real.py."""

import os
import sys
import types

import pytest
import torch

from infimmr_cli.data.images import pixel_limits
from infimmr_cli.modeling import load_processor
from infimmr_cli.rollout import Request, SamplingSettings, open_engine
from infimmr_cli.rollout.vllm import GPU, Platform, VLLMEngine, find_vllm_model


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
        self.llm_engine = types.SimpleNamespace(model_executor=types.SimpleNamespace(driver_worker=driver),
                                                reset_encoder_cache=lambda: self.log.append("reset_encoder_cache"))

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


# ---- engine arguments on a GPU ---------------------------------------------------------------------------------
def test_from_pretrained_passes_the_processor_pixel_range_and_colocation(fake_vllm, processor, tiny_model_dir,
                                                                        monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    engine = VLLMEngine.from_pretrained(tiny_model_dir, processor, dtype="bf16", gpu_memory_utilization=0.3,
                                        platform=GPU)
    kw = engine.llm.init_kwargs
    lo, hi, _ = pixel_limits(processor)
    assert kw["mm_processor_kwargs"] == {"min_pixels": lo, "max_pixels": hi}
    assert (kw["model"], kw["dtype"], kw["gpu_memory_utilization"]) == (str(tiny_model_dir), "bfloat16", 0.3)
    assert kw["distributed_executor_backend"] == "external_launcher" and kw["enable_sleep_mode"] is True
    monkeypatch.delenv("RANK")
    assert "distributed_executor_backend" not in VLLMEngine.from_pretrained(tiny_model_dir, processor,
                                                                            platform=GPU).llm.init_kwargs
    assert engine.tied is True  # the tiny model ties lm_head to the embedding, as Qwen2.5-VL-3B does


def test_on_cpu_sleep_mode_is_not_requested_and_generate_never_meets_a_sleeping_engine(fake_vllm, processor,
                                                                                       tiny_model_dir, monkeypatch):
    cpu = Platform(sleep=False, push="reload", request_seed=False)
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    with pytest.raises(ValueError, match="in-process"):  # tensors cannot reach a worker process
        VLLMEngine.from_pretrained(tiny_model_dir, processor, platform=cpu)
    monkeypatch.delenv("VLLM_ENABLE_V1_MULTIPROCESSING")
    engine = VLLMEngine.from_pretrained(tiny_model_dir, processor, platform=cpu, enable_sleep_mode=True)
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    assert engine.llm.init_kwargs["enable_sleep_mode"] is False and engine.llm.init_kwargs["enforce_eager"] is True
    assert engine.llm.init_kwargs["dtype"] == "float32"  # "auto" on CPU: fp32, as the HF engine
    engine.sleep()
    engine.generate([Request([{"role": "user", "content": "q"}])], SamplingSettings())
    assert engine.llm.log == ["generate"]


def test_starting_the_engine_leaves_the_callers_random_state(fake_vllm, processor, tiny_model_dir, monkeypatch):
    import random

    import numpy as np

    def reseeding_init(self, model=None, **kwargs):  # what vLLM's engine start does (set_random_seed)
        random.seed(0), np.random.seed(0), torch.manual_seed(0)
        FakeLLM.__init__(self, model, **kwargs)

    monkeypatch.setattr(fake_vllm, "LLM", type("ReseedingLLM", (FakeLLM,), {"__init__": reseeding_init}))
    torch.manual_seed(1234)
    random.seed(1234)
    expected = torch.rand(3), random.random()
    torch.manual_seed(1234)
    random.seed(1234)
    VLLMEngine.from_pretrained(tiny_model_dir, processor, platform=GPU)
    assert torch.equal(torch.rand(3), expected[0]) and random.random() == expected[1]


def test_open_engine_builds_the_vllm_engine_when_asked(fake_vllm, tiny_model_dir):
    engine, proc = open_engine(tiny_model_dir, engine="vllm", max_model_len=512, platform=GPU)
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
    cpu = make_engine(processor, platform=Platform(sleep=False, push="reload", request_seed=False))
    assert cpu.sampling_params(settings).kwargs["seed"] is None  # a split prefill crashes seeded requests on CPU


def test_completions_come_back_in_request_order_with_finish_reasons(fake_vllm, processor, monkeypatch):
    im_end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    monkeypatch.setattr(FakeLLM, "script", [([300, 301, im_end], "stop"), ([302, 303, 304], "length")])
    engine = make_engine(processor)
    reqs = [Request([{"role": "user", "content": [{"type": "text", "text": f"q{i}"}]}]) for i in range(3)]
    out = engine.generate(reqs, SamplingSettings(n=2, max_new_tokens=3))
    assert [[c.token_ids for c in o] for o in out] == [[[300, 301]] * 2, [[302, 303, 304]] * 2, [[300, 301]] * 2]
    assert out[1][0].text == processor.tokenizer.decode([302, 303, 304]) != "text1.0"  # from the ids, as HFEngine
    assert [o[0].finish_reason for o in out] == ["stop", "length", "stop"]  # end token dropped, as HFEngine does
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
                              "reset_encoder_cache", "reset_prefix_cache", "wake_up(kv_cache)", "generate", "sleep(1)"]


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
    assert engine.llm.log[-2:] == ["reset_prefix_cache", "reset_encoder_cache"]
