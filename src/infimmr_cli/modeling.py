"""Load a Qwen2.5-VL model and processor from a local directory or a hub id (`resolve_model`: the HF cache, downloaded
there when online), and build a tiny one offline for tests and the demo.

`load_model` is the one path every stage takes, for a real Qwen/Qwen2.5-VL-3B-Instruct directory and for the tiny model
alike: AutoProcessor + the model class, safetensors only, remote code only when the user asks for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

# Qwen's special tokens, in the order Qwen2.5-VL's tokenizer lists them (ids follow the ordinary vocabulary).
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>",
]

# The Qwen2-VL chat format: ChatML with one `<|vision_start|><|image_pad|><|vision_end|>` per image, unexpanded.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Text the tiny tokenizer is trained on: enough of the prompts, tags and math notation that encodings stay short.
_TOKENIZER_CORPUS = [
    "<think>", "</think>", "<answer>", "</answer>", "\\boxed{", "\\frac{", "\\sqrt{", "\\pi", "\\cdot", "\\times",
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it.",
    "The assistant first thinks about the reasoning process in the mind and then provides the user with the answer.",
    "What is the area of the triangle? Find the value of x. Which option is correct? Choices: A. B. C. D. E.",
    "The image shows a chart with axes, a table with headers and cells, a geometry figure with points and angles.",
    "Answer with the option letter. The caption of the image is: Describe the image concisely.",
    "0 1 2 3 4 5 6 7 8 9 10 12 15 20 25 30 45 60 90 100 180 360 3.14 0.5 -1 x y z a b c n m",
    "+ - * / = < > ( ) [ ] { } ^ _ , . : ; ? ! ' \" % $ # & | natural aigc mathgeo chart table equation ocr gui other",
]


@dataclass(frozen=True)
class TinySizes:
    """Sizes that build and run on a 2-core CPU in seconds (../shared/CPU-NOTES.md lists the pitfalls).

    head_dim = hidden / heads = 32: vLLM's CPU attention kernel refuses 16. `init_scale` multiplies every matrix of
    the random init: at transformers' std 0.02 greedy decoding repeats one token for every prompt (so parity tests
    between engines pass vacuously); x8 gives outputs that differ between prompts, images and seeds.
    """

    hidden: int = 128
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 256
    vision_depth: int = 2
    vision_hidden: int = 32
    vision_heads: int = 2
    vocab_target: int = 400
    init_scale: float = 8.0


def _train_tokenizer(vocab_target: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_target, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_TOKENIZER_CORPUS * 4, trainer=trainer)
    extra = {"additional_special_tokens": [t for t in SPECIAL_TOKENS if t not in ("<|endoftext|>", "<|im_end|>")]}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   unk_token=None, **extra)
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"
    return fast


def build_tiny(path: str | Path, seed: int = 0, sizes: TinySizes = TinySizes(), min_pixels: int = 56 * 56,
               max_pixels: int = 112 * 112) -> Path:
    """Write a complete tiny Qwen2.5-VL directory (random weights, tokenizer, processor) with no network, in seconds."""
    from transformers import (GenerationConfig, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration,
                              Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor)

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(sizes.vocab_target)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = sizes.hidden // sizes.heads
    # M-RoPE sections must add up to head_dim / 2 (temporal, height, width).
    half = head_dim // 2
    mrope = [half - 2 * (half // 3), half // 3, half // 3]
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=sizes.hidden, intermediate_size=sizes.intermediate,
            num_hidden_layers=sizes.layers, num_attention_heads=sizes.heads, num_key_value_heads=sizes.kv_heads,
            max_position_embeddings=4096, tie_word_embeddings=True,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": mrope},
            bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=sizes.vision_depth, hidden_size=sizes.vision_hidden, intermediate_size=sizes.vision_hidden * 2,
            num_heads=sizes.vision_heads, patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
            fullatt_block_indexes=[sizes.vision_depth - 1], out_hidden_size=sizes.hidden, in_chans=3,
        ),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:  # matrices and embeddings; norms stay at 1
                p.mul_(sizes.init_scale)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"], eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"], do_sample=True, temperature=1.0, top_p=1.0, top_k=0)
    model.save_pretrained(path, safe_serialization=True)
    image_processor = Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels, patch_size=14,
                                            merge_size=2, temporal_patch_size=2)
    processor = Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                    video_processor=Qwen2VLVideoProcessor(), chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(path)
    (path / "infimmr_tiny.json").write_text(json.dumps({"seed": seed, "sizes": sizes.__dict__}, indent=2) + "\n")
    return path


def model_dir_of(path: str | Path, flag: str = "--init") -> Path:
    """The model directory a path names: itself, or for a train-phase run folder (RUN/final/config.json) its final
    model, as the toolkit's own examples write `--init ckpt/cmra`. A file, or an unfinished run, is a one-line error."""
    from infimmr_cli.errors import UsageError

    path = Path(path)
    if path.is_file():
        raise UsageError(f"{path}: a file; {flag} takes a model directory (or a train-phase run folder, whose final/ "
                         f"is used)")
    if path.is_dir() and not (path / "config.json").exists():
        if (path / "final" / "config.json").is_file():
            return path / "final"
        if (path / "checkpoints").is_dir():
            raise UsageError(f"{path}: a train-phase run with no final/ yet (unfinished); finish it with --resume, or "
                             f"pass one of its checkpoints/step-N directories")
    return path


def resolve_model(model: str | Path, revision: str | None = None, flag: str = "--model",
                  trust_remote_code: bool = False) -> Path:
    """The local directory a model path or hub id names; the one lookup every command and engine uses.

    An existing local path wins (a run folder means its final/ model, `model_dir_of`), even over a hub id spelled the
    same; `--revision` with one is a usage error. Otherwise an `Org/Name` id comes from the HF cache, downloaded there
    first when online (only config, safetensors, tokenizer and processor files; the model's own code only with
    `trust_remote_code`). `HF_HUB_OFFLINE=1` and not cached: one line naming the id. Callers run `check_model_dir`.
    """
    from infimmr_cli import hub
    from infimmr_cli.errors import UsageError

    text = str(model)
    path = Path(text).expanduser()
    if path.exists():
        if revision:
            raise UsageError(f"--revision {revision}: {flag} {text} is a local path; a revision applies to a hub id "
                             f"only (drop --revision, or name the hub id)")
        return model_dir_of(path, flag)
    if not hub.is_hub_id(text):
        raise UsageError(f"{flag} {text}: model directory not found (and not a hub id like Org/Name)")
    patterns = list(hub.MODEL_FILES) + (["*.py"] if trust_remote_code else [])

    def missing(folder: Path) -> str | None:
        try:
            check_model_dir(folder)
        except (FileNotFoundError, ValueError) as exc:  # ValueError: UsageError from a damaged file
            return str(exc).split("; missing ", 1)[-1]
        return None

    try:
        return hub.fetch(text, patterns, revision=revision, complete=missing, flag=flag)
    except UsageError as exc:  # `models/gme` may be a mistyped directory rather than a hub id: say both
        raise UsageError(f"{exc} (there is no local directory {text} either)") from None


def model_revision(folder: str | Path | None, revision: str | None = None) -> dict[str, str | None]:
    """What a provenance record says about where a model came from: the revision asked for and, for a hub snapshot,
    the commit it resolved to (None for a local directory)."""
    from infimmr_cli.hub import commit_of

    return {"revision": revision, "commit": commit_of(folder)}


def check_model_dir(path: str | Path) -> Path:
    """Fail early, naming what is missing, when a directory cannot be loaded as a model + processor."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: model directory not found")
    missing = [name for name in ("config.json",) if not (path / name).exists()]
    if not any(path.glob("*.safetensors")) and not (path / "model.safetensors.index.json").exists():
        missing.append("*.safetensors (weights; .bin files are refused)")
    if not (path / "tokenizer_config.json").exists():
        missing.append("tokenizer_config.json (processor files)")
    if not any((path / n).exists() for n in ("preprocessor_config.json", "processor_config.json")):
        missing.append("preprocessor_config.json (processor files)")
    if missing:
        raise FileNotFoundError(f"{path}: not a complete model directory; missing {', '.join(missing)}")
    check_model_files(path)
    return path


def check_model_files(path: str | Path) -> None:
    """The JSON files are JSON objects and every `*.safetensors` has a readable header whose tensors fit in the file:
    a damaged or half-copied checkpoint is one line naming the file, not a traceback from deep inside a loader."""
    from infimmr_cli.data.records import RecordError, read_json_file
    from infimmr_cli.errors import UsageError

    path = Path(path)
    for name in ("config.json", "adapter_config.json", "model.safetensors.index.json"):
        f = path / name
        if f.is_file():
            try:
                data = read_json_file(f)
            except RecordError as exc:
                raise UsageError(str(exc)) from None
            if not isinstance(data, dict):
                raise UsageError(f"{f}: <file>: expected a JSON object, got {type(data).__name__}")
    index = path / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set((read_json_file(index).get("weight_map") or {}).values()))
        missing = [s for s in shards if not (path / s).is_file()]
        if missing:
            raise UsageError(f"{index}: weight_map: {len(missing)} of {len(shards)} shards missing "
                             f"(first: {missing[0]})")
    for f in sorted(path.glob("*.safetensors")):
        _check_safetensors(f)


def _check_safetensors(f: Path) -> None:
    """safetensors layout: 8-byte little-endian header length, a JSON header of {name: {dtype, shape, data_offsets}},
    then the tensor bytes; offsets are relative to the end of the header."""
    import json
    import struct

    from infimmr_cli.errors import UsageError

    size = f.stat().st_size
    with f.open("rb") as fh:
        head = fh.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if n < 2 or n > min(size - 8, 100 << 20):
            raise UsageError(f"{f}: not a readable safetensors file (header length {n} in a {size}-byte file)")
        try:
            header = json.loads(fh.read(n))
            ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise UsageError(f"{f}: not a readable safetensors file (header: {type(exc).__name__}: {exc})") from None
    need = 8 + n + max(ends, default=0)
    if need > size:
        raise UsageError(f"{f}: truncated safetensors file: its tensors need {need} bytes, the file has {size}")


def resolve_dtype(dtype: str | torch.dtype | None, device: str | torch.device = "cpu") -> torch.dtype:
    """`auto`: bf16 on a GPU that supports it, else fp32 (CPU training stays in fp32)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        if str(device).startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    table = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
             "fp32": torch.float32, "float32": torch.float32}
    if dtype not in table:
        raise ValueError(f"dtype: {dtype!r} is not one of auto, {', '.join(table)}")
    return table[dtype]


def load_processor(path: str | Path, trust_remote_code: bool = False, **kwargs: Any):
    from transformers import AutoProcessor

    path = resolve_model(path, trust_remote_code=trust_remote_code)  # a local path: itself; never a second download
    processor = AutoProcessor.from_pretrained(str(path), trust_remote_code=trust_remote_code, **kwargs)
    # Batched generation needs left padding; training builds its own padded tensors.
    processor.tokenizer.padding_side = "left"
    return processor


def load_model(path: str | Path, dtype: str | torch.dtype | None = "auto", device: str | torch.device = "cpu",
               trust_remote_code: bool = False, attn_implementation: str | None = None, with_processor: bool = True):
    """Processor + model from a local directory: the same path for the tiny model and a real checkpoint.

    Returns (model, processor); weights load from safetensors only.
    """
    from transformers import AutoConfig, AutoModelForImageTextToText

    path = check_model_dir(resolve_model(path, trust_remote_code=trust_remote_code))
    config = AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    kwargs: dict[str, Any] = dict(dtype=resolve_dtype(dtype, device), use_safetensors=True,
                                  trust_remote_code=trust_remote_code)
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForImageTextToText.from_pretrained(str(path), config=config, **kwargs)
    model.to(device)
    processor = load_processor(path, trust_remote_code=trust_remote_code) if with_processor else None
    return model, processor
