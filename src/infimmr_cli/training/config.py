"""Training settings: one flat dataclass, loaded from a phase JSON (`recipes/phases/*.json`) and `--set key=value` overrides.

Batch sizes count PROMPTS (each with `group_size` completions), as in EasyR1/verl whose settings the paper's
"rollout batch 256, update batch 256, 16 rollouts" read like: one rollout step = `prompts_per_step` prompts, split into
`prompts_per_step / update_batch` optimizer steps, each repeated `mu` times over the same rollouts.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infimmr_cli.errors import UsageError
from infimmr_cli.training.grpo import LOSS_TYPES
from infimmr_cli.training.phases import PHASES


@dataclass
class TrainConfig:
    phase: str = "fra"
    # data and model
    data: str = ""                      # records JSONL
    init: str = ""                      # HF model directory, a previous phase's OUT, or a hub id (Org/Name)
    revision: str = ""                  # hub revision of a hub-id init: branch, tag or commit ("" = main)
    out: str = ""                       # run directory
    # rollouts (paper §5.1)
    prompts_per_step: int = 256         # rollout batch, global over all ranks
    group_size: int = 16                # rollouts per prompt (G)
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_prompt_len: int = 2048          # longer prompts are counted and skipped, never truncated
    max_response_len: int = 2048
    engine: str = "hf"                  # hf | vllm
    rollout_batch: int = 16             # prompts per HF generate call (per rank)
    vllm: dict[str, Any] = field(default_factory=dict)  # extra VLLMEngine arguments
    # update
    update_batch: int = 256             # prompts per optimizer step, global
    micro_batch: int = 8                # sequences per forward/backward, per rank
    mu: int = 1                         # passes over each rollout batch
    lr: float = 1e-6
    weight_decay: float = 0.0
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 0
    lr_schedule: str = "constant"       # constant | cosine (over `steps`)
    grad_clip: float = 1.0
    clip_eps: float = 0.2
    clip_eps_high: float | None = None  # DAPO clip-higher, e.g. 0.28
    beta: float = 1e-3                  # k3 KL weight to the reference (0 = no reference model is loaded)
    loss_type: str = "grpo"             # grpo | dapo | drgrpo
    scale_rewards: bool = True          # divide by the group std (False = Dr.GRPO advantages)
    adv_eps: float = 1e-6
    drop_constant_groups: bool = False  # skip groups whose rewards are all equal (zero advantage)
    # run length and bookkeeping
    steps: int = 0                      # rollout steps; 0 = one pass over the data
    seed: int = 0
    save_every: int = 50
    keep_last: int = 2
    # model
    dtype: str = "auto"                 # auto = bf16 on GPU, fp32 on CPU
    gradient_checkpointing: bool = False
    lora_r: int = 0                     # 0 = full fine-tuning
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                              "up_proj", "down_proj"])
    train_vision: bool = False          # LoRA only: also train the vision tower
    deepspeed: str = ""                 # DeepSpeed JSON (recipes/ds_zero2.json ...); "" = plain torch AdamW
    # reward
    reward: str = "default"             # default | path.py:fn
    reward_workers: int | None = None
    reward_timeout: float = 5.0
    # what the run shows while it trains: rollout samples (OUT/rollouts.jsonl) and validation (OUT/val/)
    log_rollouts_every: int = 10        # steps between logged rollout samples; 0 = off
    log_rollout_groups: int = 2         # whole groups logged per sampled step (rank 0's first groups)
    val_data: str = ""                  # held-out records JSONL (--val-data); "" = no validation
    val_every: int = 10                 # steps between validations; also before the first and after the last step
    val_limit: int = 0                  # validate on the first N records only; 0 = all
    # logging
    tensorboard: bool = False
    wandb: bool = False
    wandb_project: str = "infimmr"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig))


HINTS = typing.get_type_hints(TrainConfig)
NONE_WORDS = ("null", "none", "")


def _bad(source: str, key: str, raw: Any, kind: Any) -> UsageError:
    name = getattr(kind, "__name__", None) or str(kind).replace("typing.", "")
    return UsageError(f"{source}: {key}: {raw!r} is not a valid {name}")


def _parse_text(text: str, kind: Any, fail) -> Any:
    """A `--set` string (or a string in a JSON config where another type is due) read as `kind`, once."""
    args = typing.get_args(kind)
    if type(None) in args:  # `float | None`, `int | None`
        if text.strip().lower() in NONE_WORDS:
            return None
        return _parse_text(text, next(a for a in args if a is not type(None)), fail)
    origin = typing.get_origin(kind)
    if kind is str:
        # A JSON string literal is unquoted (`deepspeed='""'` is the empty path); anything else is the text itself.
        if len(text) >= 2 and text[0] == text[-1] == '"':
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise fail() from None
        return text
    if kind is bool:
        if text.strip().lower() not in ("true", "false", "1", "0"):
            raise fail()
        return text.strip().lower() in ("true", "1")
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if origin is list:
            items = json.loads(text) if text.lstrip().startswith("[") else [v.strip() for v in text.split(",")
                                                                            if v.strip()]
            return [_parse_text(v, args[0], fail) if isinstance(v, str) else v for v in items]
        if origin is dict:
            return json.loads(text)
    except (ValueError, json.JSONDecodeError):
        raise fail() from None
    raise fail()


def _check(value: Any, kind: Any, fail) -> Any:
    """A value already typed (JSON, or a Python caller) checked against `kind`; ints are taken for floats."""
    args = typing.get_args(kind)
    if type(None) in args:
        return None if value is None else _check(value, next(a for a in args if a is not type(None)), fail)
    origin = typing.get_origin(kind)
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and value.is_integer()
        value = int(value) if ok else value
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind is str:
        ok = isinstance(value, str)
    elif origin is list:
        ok = isinstance(value, list)
        value = [_check(v, args[0], fail) for v in value] if ok else value
    elif origin is dict:
        ok = isinstance(value, dict)
    else:
        ok = False
    if not ok:
        raise fail()
    return value


def field_value(key: str, raw: Any, source: str) -> Any:
    """`raw` as the type of field `key`: a string where another type is due is parsed by that type, once; any other
    value is checked against it. A bad value is refused naming the source, key and type."""
    kind = HINTS[key]

    def fail() -> UsageError:
        return _bad(source, key, raw, kind)

    if isinstance(raw, str):
        value = _parse_text(raw, kind, fail) if (source == "--set" or kind is not str) else raw
        return _check(value, kind, fail)
    return _check(raw, kind, fail)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults <- JSON file <- overrides (explicit options and `--set`: strings are parsed by the field's type, other
    values checked against it); unknown keys are refused by name."""
    cfg = TrainConfig()
    layers: list[tuple[str, dict[str, Any]]] = []
    if path:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: config file not found")
        from infimmr_cli.data.records import RecordError, read_json_file

        try:
            values = read_json_file(path)
        except RecordError as exc:  # not UTF-8, not JSON: one line naming file:line
            raise UsageError(str(exc)) from None
        if not isinstance(values, dict):
            raise UsageError(f"{path}: <file>: expected a JSON object of settings, got {type(values).__name__}")
        layers.append((str(path), values))
    layers.append(("--set", overrides or {}))
    for source, values in layers:
        for key, raw in values.items():
            if key.startswith("_"):  # comments in JSON configs
                continue
            if key not in KEYS:
                raise UsageError(f"{source}: {key}: unknown setting; known: {', '.join(KEYS)}")
            value = field_value(key, raw, source)
            if key == "deepspeed" and value and source != "--set" and not Path(value).is_absolute():
                value = str((Path(source).parent / value).resolve())  # relative to the config file that names it
            setattr(cfg, key, value)
    check_config(cfg)
    return cfg


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """`["lr=1e-5", "beta=0"]` -> {"lr": "1e-5", "beta": "0"}."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set: {item!r} is not key=value")
        out[key.strip()] = value
    return out


def check_config(cfg: TrainConfig, world_size: int = 1) -> None:
    """Settings that cannot work, refused before any compute, naming the key."""
    if cfg.phase not in PHASES:
        raise UsageError(f"phase: {cfg.phase!r} is not one of {', '.join(PHASES)}")
    if cfg.loss_type not in LOSS_TYPES:
        raise UsageError(f"loss_type: {cfg.loss_type!r} is not one of {', '.join(LOSS_TYPES)}")
    if cfg.engine not in ("hf", "vllm"):
        raise UsageError(f"engine: {cfg.engine!r} is not one of hf, vllm")
    if cfg.lr_schedule not in ("constant", "cosine"):
        raise UsageError(f"lr_schedule: {cfg.lr_schedule!r} is not one of constant, cosine")
    for key in ("prompts_per_step", "group_size", "update_batch", "micro_batch", "mu", "max_response_len",
                "max_prompt_len", "rollout_batch", "save_every", "keep_last"):
        if getattr(cfg, key) < 1:
            raise UsageError(f"{key}: must be at least 1 (got {getattr(cfg, key)})")
    if cfg.group_size < 2:
        raise UsageError(f"group_size: must be at least 2 for group advantages (got {cfg.group_size})")
    if cfg.prompts_per_step % cfg.update_batch:
        raise UsageError(f"update_batch: {cfg.update_batch} does not divide prompts_per_step {cfg.prompts_per_step}")
    if cfg.update_batch % world_size:
        raise UsageError(f"update_batch: {cfg.update_batch} prompts do not split over {world_size} processes")
    per_rank_seqs = cfg.update_batch // world_size * cfg.group_size
    if per_rank_seqs % cfg.micro_batch:
        raise UsageError(f"micro_batch: {cfg.micro_batch} does not divide the {per_rank_seqs} sequences each process "
                         f"updates on (update_batch {cfg.update_batch} / {world_size} processes x group_size "
                         f"{cfg.group_size})")
    if not 0 < cfg.clip_eps < 1:
        raise UsageError(f"clip_eps: {cfg.clip_eps} must be in (0, 1)")
    for key in ("log_rollouts_every", "log_rollout_groups", "val_every", "val_limit"):
        if getattr(cfg, key) < 0:
            raise UsageError(f"{key}: must be 0 or more (got {getattr(cfg, key)})")
    if cfg.beta < 0 or cfg.temperature <= 0:
        raise UsageError("beta: must be >= 0 and temperature > 0")
