"""`infimmr train-phase`: GRPO on one curriculum phase (paper §3.2, §4; DESIGN §5).

One step, top-down: sample prompts -> G rollouts each -> rewards -> group advantages -> old and reference log-probs ->
mu passes of clipped-surrogate updates in micro-batches -> optimizer step -> push the new weights to the rollout engine.
The math is in grpo.py; tensors, checkpoints, DeepSpeed and logging live in training/.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from infimmr_cli.errors import UsageError, storage_errors
from infimmr_cli.training.config import load_config, parse_sets, check_config

if TYPE_CHECKING:
    import torch


@dataclass
class Run:
    """Everything a step needs, built once."""

    cfg: Any
    dist: Any
    prompts: Any
    sampler: Any
    processor: Any
    updater: Any
    engine: Any
    ref: Any
    micro_per_update: int
    sampling: Any  # rollout SamplingSettings (G completions per prompt)
    known_bad: dict[str, str] = field(default_factory=dict)  # id -> why its image could not be read (rollout time)
    problems: list[tuple[str, str]] = field(default_factory=list)  # what OUT/warnings.jsonl lists


@dataclass
class MicroBatch:
    """The sequences of one forward/backward: model inputs, advantages (n,), keep flags (n,), completion mask (n, C),
    and, when the update needs them, log-probs (n, C) under the policy before the update and under the reference."""

    inputs: dict[str, torch.Tensor]
    adv: torch.Tensor
    keep: torch.Tensor
    mask: torch.Tensor
    old_logp: torch.Tensor | None = None
    ref_logp: torch.Tensor | None = None


def run(config: str | Path | None = None, sets: list[str] | None = None, phase: str | None = None,
        data: str | Path | None = None, init: str | Path | None = None, out: str | Path | None = None,
        reward: str | None = None, steps: int | None = None, deepspeed: str | None = None, engine: str | None = None,
        resume: bool = False, dry_run: bool = False, gpus: int | None = None, nodes: int = 1,
        val_data: str | Path | None = None, revision: str | None = None) -> Path:
    """Train one phase; returns OUT (with OUT/final, a plain HF model directory). `dry_run` checks and reports only."""
    from contextlib import ExitStack

    with ExitStack() as held:  # the lock on OUT, taken once the settings are known, released on any exit
        return _run(config, sets, phase, data, init, out, reward, steps, deepspeed, engine, resume, dry_run, gpus,
                    nodes, val_data, held, revision)


def _run(config, sets, phase, data, init, out, reward, steps, deepspeed, engine, resume, dry_run, gpus, nodes,
         val_data, held, revision=None) -> Path:
    import torch

    from infimmr_cli.modeling import check_model_dir, load_processor, model_revision, resolve_model
    from infimmr_cli.training import checkpoint, distributed, report
    from infimmr_cli.training.data import PromptSampler, load_prompts

    explicit = dict(phase=phase, data=data, init=init, out=out, reward=reward, steps=steps, deepspeed=deepspeed,
                    engine=engine, val_data=val_data, revision=revision)
    overrides: dict[str, Any] = {k: str(v) if isinstance(v, Path) else v for k, v in explicit.items() if v is not None}
    overrides.update(parse_sets(sets))
    cfg = load_config(config, overrides)
    if not cfg.deepspeed:  # plain torch: transformers and accelerate need not import DeepSpeed (nor log about it)
        from infimmr_cli.no_deepspeed import not_needed

        not_needed()
    dist = distributed.from_env()
    console = Console(quiet=not dist.is_main)

    # --- checks that cost no compute -------------------------------------------------------------------------------
    for key in ("data", "init", "out"):
        if not getattr(cfg, key):
            raise UsageError(f"{key}: required (--{key} or --set {key}=...)")
    if not Path(cfg.data).is_file():
        raise FileNotFoundError(f"{cfg.data}: data file not found")
    init_id = cfg.init
    init_dir = resolve_model(cfg.init, cfg.revision or None, flag="--init")  # a hub id: its HF cache snapshot
    if str(init_dir) != cfg.init:
        what = "a run folder; starting from its final model" if Path(cfg.init).exists() else "from the hub cache:"
        console.print(f"--init {cfg.init}: {what} {init_dir}", highlight=False)
        cfg.init = str(init_dir)
    check_model_dir(cfg.init)
    if cfg.deepspeed and not Path(cfg.deepspeed).is_file():
        raise FileNotFoundError(f"{cfg.deepspeed}: DeepSpeed config not found")
    check_config(cfg, dist.world_size)
    processor = load_processor(cfg.init)
    prompts = load_prompts(cfg.data, cfg.phase, processor, cfg.max_prompt_len)
    if cfg.reward != "default":  # a plug-in is imported and called once here, before any model is loaded
        from infimmr_cli.rewards.plugins import check_reward

        try:
            check_reward(cfg.reward, prompts.items[0].record)
        except (AttributeError, ValueError, OSError) as exc:  # each message names the plug-in's file and function
            raise UsageError(str(exc) if str(exc).startswith("reward: ") else f"reward: {cfg.reward}: {exc}") from None
    from infimmr_cli.training.validation import load_validator

    validator = load_validator(cfg.val_data, cfg.val_limit, cfg.val_every, cfg.max_response_len,
                               Path(cfg.out) / "val", cfg.max_prompt_len)
    sampler = PromptSampler(len(prompts.items), cfg.prompts_per_step, cfg.seed, dist.rank, dist.world_size)
    resolved = report.provenance(cfg)
    origin = model_revision(init_dir, cfg.revision or None)
    if origin["commit"]:  # --init named a hub id: which one, and the commit its snapshot holds
        resolved["settings"].update(init_id=init_id, init_commit=origin["commit"])
    # what the data gave: a reader of run_config.json sees how many prompts were skipped and why
    resolved["prompts"] = {"records": prompts.view.total, "in_view": len(prompts.view.items),
                           "too_long": len(prompts.too_long), "unreadable_image": len(prompts.bad),
                           "usable": len(prompts.items)}
    if dry_run:
        gpus = gpus or (dist.world_size if dist.enabled else max(1, torch.cuda.device_count()))
        report.print_dry_run(console, cfg, prompts, processor, report.memory_estimate(cfg, gpus, nodes), resolved)
        return Path(cfg.out)
    if prompts.too_long:
        console.print(f"[yellow]skipping {len(prompts.too_long)} prompts longer than max_prompt_len "
                      f"{cfg.max_prompt_len} (first: id {prompts.too_long[0][0]!r})[/]")
    if prompts.bad:
        console.print(f"[yellow]skipping {len(prompts.bad)} prompts whose image cannot be read (first: id "
                      f"{prompts.bad[0][0]!r}: {prompts.bad[0][1]}); listed in {Path(cfg.out) / 'warnings.jsonl'}[/]",
                      highlight=False)

    # --- build the run ---------------------------------------------------------------------------------------------
    out_dir = Path(cfg.out)
    if dist.is_main:  # --init and --data must not lie in OUT (final/ is replaced), and one run per OUT at a time
        from infimmr_cli.files import claim_outputs

        inputs = {"--data": cfg.data, "--init": cfg.init, **({"--val-data": cfg.val_data} if cfg.val_data else {})}
        held.enter_context(claim_outputs("train-phase", inputs, {}, folders={"--out": out_dir}))
    ckpt_root = out_dir / "checkpoints"
    resume_from = None
    if resume:
        found = checkpoint.list_checkpoints(ckpt_root)
        if not found:
            raise FileNotFoundError(f"{ckpt_root}: --resume: no complete checkpoint to resume from")
        resume_from = found[-1]
        checkpoint.check_resumable(resume_from, out_dir)  # before anything in it is loaded
    elif checkpoint.list_checkpoints(ckpt_root):
        raise UsageError(f"{out_dir}: holds checkpoints already; pass --resume to continue or choose a new --out")
    distributed.init(dist, use_deepspeed=bool(cfg.deepspeed))
    run_state = _build(cfg, dist, prompts, sampler, resume_from)
    state = {"step": 0, "prompts_seen": 0, "metrics": []}
    if resume_from is not None:
        state = checkpoint.load_state(resume_from, run_state.updater, dist)
        console.print(f"resumed from {resume_from} (step {state['step']})")
    if dist.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        from infimmr_cli.provenance import write_record

        write_record(out_dir / "run_config.json", resolved)
    run_state.problems = _merge_problems(_read_problems(out_dir) if resume_from is not None else [], prompts.bad)
    if dist.is_main:
        _write_problems(out_dir, run_state.problems)
    from infimmr_cli.rollout.base import needs_weight_push
    from infimmr_cli.training.metrics import MetricsLog
    from infimmr_cli.training.samples import StepLog, groups_due

    metrics = MetricsLog(out_dir, dist.is_main, state["metrics"], tensorboard=cfg.tensorboard,
                         wandb_project=cfg.wandb_project if cfg.wandb else None, run_config=cfg.to_dict())
    samples = StepLog(out_dir / "rollouts.jsonl", dist.is_main, state["step"])
    total = cfg.steps or sampler.steps_per_epoch
    if needs_weight_push(run_state.engine):  # it holds the weights it loaded: give it the policy's (resume, LoRA)
        _push_weights(run_state)

    # --- the loop --------------------------------------------------------------------------------------------------
    from infimmr_cli.progress import StageProgress

    # a bar on a terminal, a line per step in a log file
    with StageProgress(console, cfg.phase, total, completed=state["step"], unit="steps",
                       enabled=dist.is_main) as bar:
        if validator is not None and state["step"] == 0:  # where the phase starts from
            metrics.log({"step": 0, **_validate(run_state, validator, 0)})
        for step in range(state["step"], total):
            found = len(run_state.problems)
            keep = cfg.log_rollout_groups if groups_due(step + 1, cfg.log_rollouts_every) else 0
            row, groups = train_step(run_state, step, keep_groups=keep)
            if validator is not None and validator.due(step + 1, total):
                row.update(_validate(run_state, validator, step + 1))
            metrics.log(row)
            samples.write(groups)
            if dist.is_main and len(run_state.problems) > found:
                _write_problems(out_dir, run_state.problems)
            state = {"step": step + 1, "prompts_seen": (step + 1) * cfg.prompts_per_step, "metrics": metrics.rows}
            bar.advance(1, f"reward {row['reward_mean']:.3f}, len {row['response_len_mean']:.0f}")
            if (step + 1) % cfg.save_every == 0 or step + 1 == total:
                with storage_errors(ckpt_root):  # a full disk: one line; the previous checkpoint stays complete
                    checkpoint.save(ckpt_root, step + 1, run_state.updater, run_state.processor, resolved, state,
                                    dist, cfg.keep_last)
    metrics.close()
    with storage_errors(out_dir / "final"):
        _export_final(run_state, out_dir / "final")
    if dist.is_main:
        _summary(console, cfg.phase, metrics.rows, out_dir)
        if run_state.problems:
            console.print(f"[yellow]{len(run_state.problems)} prompts skipped for an image that cannot be read: "
                          f"{out_dir / 'warnings.jsonl'}[/]", highlight=False)
    return out_dir


def _validate(r: Run, validator, step: int) -> dict[str, Any]:
    return validator.run(r.engine, r.processor, step, r.dist, reward=r.cfg.reward, workers=r.cfg.reward_workers,
                         timeout=r.cfg.reward_timeout)


def train_step(r: Run, step: int, keep_groups: int = 0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One GRPO step on this rank's shard of the step's prompts.

    Returns the metrics row (same on every rank) and the first `keep_groups` of this rank's groups as rollout samples.
    """
    import torch

    from infimmr_cli.rewards.scoring import score_batch
    from infimmr_cli.rollout.base import needs_weight_push
    from infimmr_cli.training import distributed, grpo, rollouts
    from infimmr_cli.training.batching import completion_logprobs
    from infimmr_cli.training.model import reference_context

    cfg, G = r.cfg, r.cfg.group_size
    t0 = time.perf_counter()

    # 1. sample prompts: this rank's disjoint share of the step's block
    items = [r.prompts.items[i] for i in r.sampler.indices(step)]

    # 2. G rollouts per prompt
    r.engine.wake_up()
    batch = rollouts.generate(r.engine, r.processor, items, r.sampling, pool=r.prompts.items, known_bad=r.known_bad)
    r.engine.sleep()
    times = {"rollout_time": time.perf_counter() - t0}  # this rank's wall seconds per part of the step

    # 3. rewards
    t = time.perf_counter()
    scores = score_batch(batch.texts, batch.records, reward=cfg.reward, workers=cfg.reward_workers,
                         timeout=cfg.reward_timeout)
    rewards = torch.tensor([float(s["overall"]) for s in scores])
    times["reward_time"] = time.perf_counter() - t

    # 4. group advantages; groups with equal rewards optionally leave the loss (their passes still run, so every rank
    #    does the same number of forward/backward passes)
    advantages = grpo.group_advantages(rewards, G, eps=cfg.adv_eps, scale=cfg.scale_rewards)
    keep = grpo.varied_groups(rewards, G) if cfg.drop_constant_groups else torch.ones(len(rewards), dtype=torch.bool)

    # 5. micro-batches, with old (if the policy moves before the last pass) and reference log-probs, no gradient
    t = time.perf_counter()
    micro = _micro_batches(batch, advantages, keep, cfg.micro_batch, r.processor.tokenizer.pad_token_id)
    updates = [micro[i:i + r.micro_per_update] for i in range(0, len(micro), r.micro_per_update)]
    needs_old = cfg.mu > 1 or len(updates) > 1
    forward = r.updater.forward
    with torch.no_grad():
        for mb in micro:
            if needs_old:
                mb.old_logp = completion_logprobs(forward, mb.inputs, cfg.temperature)[0].detach()
            if cfg.beta > 0:
                with reference_context(r.ref, r.updater.model, forward) as ref_module:
                    mb.ref_logp = completion_logprobs(ref_module, mb.inputs, cfg.temperature)[0].detach()

    times["logprob_time"] = time.perf_counter() - t

    # 6. mu passes of clipped-surrogate updates, one optimizer step per update batch
    t = time.perf_counter()
    stats: dict[str, list[float]] = {"clip_frac": [], "kl": [], "entropy": [], "loss": [], "grad_norm": []}
    lr = cfg.lr
    for epoch in range(cfg.mu):
        for update in updates:
            kept = [mb.mask * mb.keep.unsqueeze(-1) for mb in update]
            norm = dict(num_seqs=max(1, int(sum(int(mb.keep.sum()) for mb in update))),
                        num_tokens=max(1.0, float(sum(k.sum() for k in kept))), max_len=cfg.max_response_len)
            for mb, mask in zip(update, kept):
                logp, entropy = completion_logprobs(forward, mb.inputs, cfg.temperature, with_entropy=epoch == 0)
                old = mb.old_logp if mb.old_logp is not None else logp.detach()
                loss, s = grpo.policy_loss(logp, old, mb.adv.to(logp.device), mask.to(logp.device),
                                           ref_logp=mb.ref_logp, beta=cfg.beta, eps=cfg.clip_eps,
                                           eps_high=cfg.clip_eps_high, loss_type=cfg.loss_type, **norm)
                r.updater.backward(loss)
                stats["clip_frac"].append(s["clip_frac"])
                stats["kl"].append(s["kl"])
                stats["loss"].append(float(loss.detach()))
                if entropy is not None:
                    stats["entropy"].append(float(grpo.masked_mean(entropy, mb.mask.to(entropy.device))))
            out = r.updater.step()
            stats["grad_norm"].append(out["grad_norm"])
            lr = out["lr"]

    # 7. the rollout engine generates with the new weights next step (an HF engine on the policy itself needs nothing)
    if needs_weight_push(r.engine):
        _push_weights(r)
    times["update_time"] = time.perf_counter() - t

    # 8. rollout samples (whole groups, with the advantages they got) and metrics over all ranks, in one collective
    groups = _sample_groups(r, step + 1, batch, scores, advantages, keep_groups) if keep_groups else []
    step_time = time.perf_counter() - t0
    local = {
        "rewards": rewards.tolist(),
        "format": [float(s.get("format", 0.0)) for s in scores],
        "accuracy": [float(s.get("accuracy", 0.0)) for s in scores],
        "lengths": [len(c.token_ids) for c in batch.completions],
        "means": {k: (sum(v) / len(v) if v else 0.0) for k, v in stats.items()},
        "tokens": sum(len(p.input_ids) for p in batch.prompts) + sum(len(t) for t in batch.token_ids),
        "groups_kept": int(keep.sum()) // G,
        "replaced": batch.replaced, "new_bad": list(batch.new_bad or []),
    }
    ranks = distributed.gather_object(local)
    r.problems = _merge_problems(r.problems, [bad for rank in ranks for bad in rank["new_bad"]])
    return _step_row(step + 1, ranks, lr, step_time, times), groups


def _step_row(step: int, ranks: list[dict[str, Any]], lr: float, step_time: float, times: dict[str, float]
              ) -> dict[str, Any]:
    """The metrics row from every rank's local figures (rank order): item means over all items, loss statistics
    averaged over ranks; `times` are this rank's seconds in rollout / reward / log-prob / update (incl. the push)."""
    from infimmr_cli.training.metrics import summarise

    def every(key: str) -> list[Any]:
        return [v for rank in ranks for v in rank[key]]

    fmt, acc, lens = every("format"), every("accuracy"), every("lengths")
    reward_mean, reward_std = summarise(every("rewards"))
    means = {k: sum(rank["means"][k] for rank in ranks) / len(ranks) for k in ranks[0]["means"]}
    total_tokens = sum(rank["tokens"] for rank in ranks)
    return {
        "step": step,
        "reward_mean": reward_mean, "reward_std": reward_std,
        "format_mean": sum(fmt) / len(fmt), "accuracy_mean": sum(acc) / len(acc),
        "response_len_mean": sum(lens) / len(lens), "response_len_max": max(lens),
        "groups_kept": sum(rank["groups_kept"] for rank in ranks),
        # prompts swapped for another because an image could not be decoded (listed in OUT/warnings.jsonl)
        "items_skipped": sum(rank["replaced"] for rank in ranks),
        "clip_frac": means["clip_frac"], "kl": means["kl"], "entropy": means["entropy"], "loss": means["loss"],
        "grad_norm": means["grad_norm"], "lr": lr,
        "step_time": step_time, **times, "tokens_per_s": total_tokens / max(step_time, 1e-9),
    }


def _sample_groups(r: Run, step: int, batch, scores, advantages, n_groups: int) -> list[dict[str, Any]]:
    from infimmr_cli.training.batching import render
    from infimmr_cli.training.samples import collapse_image_pads, rollout_groups

    items = batch.items[:n_groups]
    k = len(items) * r.cfg.group_size
    return rollout_groups(step, r.cfg.phase, [i.record.id for i in items],
                          [collapse_image_pads(render(r.processor, i.messages)) for i in items],
                          [[str(p) for p in i.record.image_paths()] for i in items],
                          batch.texts[:k], scores[:k], advantages[:k].tolist(), r.cfg.group_size, n_groups)


def _read_problems(out_dir: Path) -> list[tuple[str, str]]:
    """The (id, error) pairs of an earlier run's OUT/warnings.jsonl, so a resumed run keeps listing them."""
    path = out_dir / "warnings.jsonl"
    if not path.is_file():
        return []
    from infimmr_cli.data.records import iter_json_lines

    return [(str(r["id"]), str(r["error"])) for _, r in iter_json_lines(path)]


def _merge_problems(have: list[tuple[str, str]], new) -> list[tuple[str, str]]:
    seen = {rid for rid, _ in have}
    return list(have) + [(rid, err) for rid, err in map(tuple, new) if rid not in seen and not seen.add(rid)]


def _write_problems(out_dir: Path, problems: list[tuple[str, str]]) -> None:
    from infimmr_cli.data.item_errors import write_warnings

    out_dir.mkdir(parents=True, exist_ok=True)
    write_warnings(out_dir, "train-phase", problems)


def _micro_batches(batch, advantages, keep, size: int, pad_id: int) -> list[MicroBatch]:
    """Consecutive chunks of `size` sequences, collated, with their advantages, keep flags and completion masks."""
    from infimmr_cli.training.batching import collate

    out = []
    for i in range(0, len(batch.token_ids), size):
        b = collate(batch.prompts[i:i + size], batch.token_ids[i:i + size], pad_id)
        out.append(MicroBatch(inputs=b, adv=advantages[i:i + size], keep=keep[i:i + size].float(),
                              mask=b["completion_mask"]))
    return out


def _build(cfg, dist, prompts, sampler, resume_from: Path | None) -> Run:
    """Seed, load the policy (from the checkpoint when resuming), the reference, the updater and the rollout engine."""
    import numpy as np
    import torch

    from infimmr_cli.rollout.base import SamplingSettings
    from infimmr_cli.rollout.hf import HFEngine
    from infimmr_cli.rollout.weights import is_zero3
    from infimmr_cli.training.model import LoraSettings, build_policy, build_reference
    from infimmr_cli.training.updater import make_updater

    random.seed(cfg.seed + dist.rank)
    np.random.seed(cfg.seed + dist.rank)
    torch.manual_seed(cfg.seed + dist.rank)  # ranks sample different rollouts
    device = dist.device
    full_ckpt = resume_from is not None and cfg.lora_r == 0
    model_dir = resume_from if full_ckpt else cfg.init
    adapter = resume_from / "adapter" if (resume_from is not None and cfg.lora_r > 0) else None
    lora = LoraSettings(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, tuple(cfg.lora_targets),
                        cfg.train_vision) if cfg.lora_r > 0 else None
    model, processor = build_policy(model_dir, device, cfg.dtype, lora, cfg.gradient_checkpointing, adapter)
    # a frozen copy of the start for the KL term; a LoRA policy switches its adapter off instead
    ref = build_reference(cfg.init, cfg.dtype, device) if cfg.beta > 0 and cfg.lora_r == 0 else None
    updates_per_step = cfg.prompts_per_step // cfg.update_batch
    micro_per_update = cfg.update_batch // dist.world_size * cfg.group_size // cfg.micro_batch
    total = (cfg.steps or sampler.steps_per_epoch) * updates_per_step * cfg.mu
    updater = make_updater(cfg, model, total, micro_per_update, dist.world_size)
    if cfg.engine == "vllm":
        from infimmr_cli.rollout.vllm import VLLMEngine

        engine = VLLMEngine.from_pretrained(cfg.init, processor=processor, dtype=cfg.dtype, **cfg.vllm)
    else:
        from infimmr_cli.training.rollouts import media_token_ids

        extra: dict[str, Any] = {"suppress_tokens": media_token_ids(processor.tokenizer)}
        if dist.enabled and is_zero3(updater.model):
            extra["synced_gpus"] = True  # ranks stop at different lengths; ZeRO-3 needs every rank in every forward
        engine = HFEngine(updater.model, processor, batch_size=cfg.rollout_batch, generate_kwargs=extra,
                          shares_policy=True)
    sampling = SamplingSettings(n=cfg.group_size, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                                max_new_tokens=cfg.max_response_len)
    return Run(cfg=cfg, dist=dist, prompts=prompts, sampler=sampler, processor=processor, updater=updater,
               engine=engine, ref=ref, micro_per_update=micro_per_update, sampling=sampling)


def _push_weights(r: Run) -> None:
    from infimmr_cli.rollout.weights import full_weights

    r.engine.load_weights(full_weights(r.updater.model))


def _export_final(r: Run, final: Path) -> None:
    """OUT/final: a plain HF model directory (merged LoRA, gathered shards), written atomically by rank 0."""
    import shutil

    from infimmr_cli.training import distributed
    from infimmr_cli.rollout.weights import save_hf_model

    tmp = final.with_name(".final.tmp")
    if r.dist.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
    distributed.barrier()
    save_hf_model(r.updater.model, r.processor, tmp, r.dist.is_main)
    if r.dist.is_main:
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    distributed.barrier()


def _summary(console: Console, phase: str, rows: list[dict[str, Any]], out_dir: Path) -> None:
    table = Table(title=f"train-phase {phase}: {len(rows)} steps")
    table.add_column("metric")
    table.add_column("first", justify="right")
    table.add_column("last", justify="right")
    rows = [row for row in rows if "reward_mean" in row]  # the step-0 row holds validation only
    if rows:
        for key in ("reward_mean", "format_mean", "accuracy_mean", "response_len_mean", "kl", "clip_frac", "entropy",
                    "step_time"):
            table.add_row(key, f"{rows[0][key]:.4g}", f"{rows[-1][key]:.4g}")
    console.print(table)
    console.print(f"final model: [bold]{out_dir / 'final'}[/]  metrics: {out_dir / 'metrics.jsonl'}")


def finish_process() -> None:
    """End a torchrun worker without running interpreter teardown: ZeRO-3 on CPU sometimes aborts there after all work
    is done (../shared/CPU-NOTES.md), turning a finished run into exit code 1."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        os._exit(0)
