"""`infimmr train-phase`: GRPO on one curriculum phase (paper §3.2, §4; DESIGN §5).

One step, top-down: sample prompts -> G rollouts each -> rewards -> group advantages -> old and reference log-probs ->
mu passes of clipped-surrogate updates in micro-batches -> optimizer step -> push the new weights to the rollout engine.
The math is in grpo.py; tensors, checkpoints, DeepSpeed and logging live in training/.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from infimmr_cli.errors import UsageError
from infimmr_cli.training.config import load_config, parse_sets, check_config


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


def run(config: str | Path | None = None, sets: list[str] | None = None, phase: str | None = None,
        data: str | Path | None = None, init: str | Path | None = None, out: str | Path | None = None,
        reward: str | None = None, steps: int | None = None, deepspeed: str | None = None, engine: str | None = None,
        resume: bool = False, dry_run: bool = False, gpus: int | None = None, nodes: int = 1) -> Path:
    """Train one phase; returns OUT (with OUT/final, a plain HF model directory). `dry_run` checks and reports only."""
    import torch

    from infimmr_cli.modeling import check_model_dir, load_processor
    from infimmr_cli.training import checkpoint, distributed, report
    from infimmr_cli.training.data import PromptSampler, load_prompts

    explicit = dict(phase=phase, data=data, init=init, out=out, reward=reward, steps=steps, deepspeed=deepspeed,
                    engine=engine)
    overrides: dict[str, Any] = {k: str(v) for k, v in explicit.items() if v is not None}
    overrides.update(parse_sets(sets))
    cfg = load_config(config, overrides)
    dist = distributed.from_env()
    console = Console(quiet=not dist.is_main)

    # --- checks that cost no compute -------------------------------------------------------------------------------
    for key in ("data", "init", "out"):
        if not getattr(cfg, key):
            raise UsageError(f"{key}: required (--{key} or --set {key}=...)")
    if not Path(cfg.data).is_file():
        raise FileNotFoundError(f"{cfg.data}: data file not found")
    check_model_dir(cfg.init)
    if cfg.deepspeed and not Path(cfg.deepspeed).is_file():
        raise FileNotFoundError(f"{cfg.deepspeed}: DeepSpeed config not found")
    check_config(cfg, dist.world_size)
    if cfg.reward != "default":
        from infimmr_cli.rewards.plugins import load_reward

        try:
            load_reward(cfg.reward)
        except (AttributeError, ValueError, OSError) as exc:
            raise UsageError(f"reward: {cfg.reward}: {exc}") from None
    processor = load_processor(cfg.init)
    prompts = load_prompts(cfg.data, cfg.phase, processor, cfg.max_prompt_len)
    sampler = PromptSampler(len(prompts.items), cfg.prompts_per_step, cfg.seed, dist.rank, dist.world_size)
    resolved = report.provenance(cfg)
    if dry_run:
        gpus = gpus or (dist.world_size if dist.enabled else max(1, torch.cuda.device_count()))
        report.print_dry_run(console, cfg, prompts, processor, report.memory_estimate(cfg, gpus, nodes), resolved)
        return Path(cfg.out)
    if prompts.too_long:
        console.print(f"[yellow]skipping {len(prompts.too_long)} prompts longer than max_prompt_len "
                      f"{cfg.max_prompt_len} (first: id {prompts.too_long[0][0]!r})[/]")

    # --- build the run ---------------------------------------------------------------------------------------------
    out_dir = Path(cfg.out)
    ckpt_root = out_dir / "checkpoints"
    resume_from = None
    if resume:
        found = checkpoint.list_checkpoints(ckpt_root)
        if not found:
            raise FileNotFoundError(f"{ckpt_root}: --resume: no complete checkpoint to resume from")
        resume_from = found[-1]
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
        from infimmr_cli.files import atomic_write_text

        atomic_write_text(out_dir / "run_config.json", json.dumps(resolved, indent=2) + "\n")
    from infimmr_cli.training.metrics import MetricsLog

    metrics = MetricsLog(out_dir, cfg, dist.is_main, state["metrics"])
    total = cfg.steps or sampler.steps_per_epoch
    if cfg.engine != "hf":  # an external engine holds the weights it loaded: give it the policy's (resume, LoRA)
        _push_weights(run_state)

    # --- the loop --------------------------------------------------------------------------------------------------
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn(f"{cfg.phase}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
               TextColumn("{task.fields[info]}")]
    with Progress(*columns, console=console, disable=not dist.is_main) as bar:
        task = bar.add_task("train", total=total, completed=state["step"], info="")
        for step in range(state["step"], total):
            row = train_step(run_state, step)
            metrics.log(row)
            state = {"step": step + 1, "prompts_seen": (step + 1) * cfg.prompts_per_step, "metrics": metrics.rows}
            bar.update(task, advance=1, info=f"reward {row['reward_mean']:.3f}  len {row['response_len_mean']:.0f}")
            if (step + 1) % cfg.save_every == 0 or step + 1 == total:
                checkpoint.save(ckpt_root, step + 1, run_state.updater, run_state.processor, resolved, state, dist,
                                cfg.keep_last)
    metrics.close()
    _export_final(run_state, out_dir / "final")
    if dist.is_main:
        _summary(console, cfg, metrics.rows, out_dir)
    return out_dir


def train_step(r: Run, step: int) -> dict[str, Any]:
    """One GRPO step on this rank's shard of the step's prompts; returns the metrics row (same on every rank)."""
    import torch

    from infimmr_cli.training import grpo
    from infimmr_cli.rewards.scoring import score_batch
    from infimmr_cli.training import distributed, rollouts
    from infimmr_cli.training.batching import completion_logprobs
    from infimmr_cli.training.metrics import summarise

    cfg, G = r.cfg, r.cfg.group_size
    t0 = time.perf_counter()

    # 1. sample prompts: this rank's disjoint share of the step's block
    items = [r.prompts.items[i] for i in r.sampler.indices(step)]

    # 2. G rollouts per prompt
    r.engine.wake_up()
    batch = rollouts.generate(r.engine, r.processor, items, G, cfg)
    r.engine.sleep()
    t_rollout = time.perf_counter() - t0

    # 3. rewards
    scores = score_batch(batch.texts, batch.records, reward=cfg.reward, workers=cfg.reward_workers,
                         timeout=cfg.reward_timeout)
    rewards = torch.tensor([float(s["overall"]) for s in scores])

    # 4. group advantages; groups with equal rewards optionally leave the loss (their passes still run, so every rank
    #    does the same number of forward/backward passes)
    advantages = grpo.group_advantages(rewards, G, eps=cfg.adv_eps, scale=cfg.scale_rewards)
    keep = grpo.varied_groups(rewards, G) if cfg.drop_constant_groups else torch.ones(len(rewards), dtype=torch.bool)

    # 5. micro-batches, with old (if the policy moves before the last pass) and reference log-probs, no gradient
    micro = _micro_batches(batch, advantages, keep, cfg.micro_batch, r.processor.tokenizer.pad_token_id)
    updates = [micro[i:i + r.micro_per_update] for i in range(0, len(micro), r.micro_per_update)]
    needs_old = cfg.mu > 1 or len(updates) > 1
    with torch.no_grad():
        for mb in micro:
            if needs_old:
                mb["old_logp"] = completion_logprobs(r.updater.module, mb["batch"], cfg.temperature)[0].detach()
            if cfg.beta > 0:
                from infimmr_cli.training.model import reference_context

                with reference_context(cfg, r.updater.module, r.ref) as ref_module:
                    mb["ref_logp"] = completion_logprobs(ref_module, mb["batch"], cfg.temperature)[0].detach()

    # 6. mu passes of clipped-surrogate updates, one optimizer step per update batch
    stats: dict[str, list[float]] = {"clip_frac": [], "kl": [], "entropy": [], "loss": [], "grad_norm": []}
    lr = cfg.lr
    for epoch in range(cfg.mu):
        for update in updates:
            kept = [mb["mask"] * mb["keep"].unsqueeze(-1) for mb in update]
            norm = dict(num_seqs=max(1, int(sum(int(mb["keep"].sum()) for mb in update))),
                        num_tokens=max(1.0, float(sum(k.sum() for k in kept))), max_len=cfg.max_response_len)
            for mb, mask in zip(update, kept):
                logp, entropy = completion_logprobs(r.updater.module, mb["batch"], cfg.temperature,
                                                    with_entropy=epoch == 0)
                old = mb.get("old_logp", logp.detach())
                loss, s = grpo.policy_loss(logp, old, mb["adv"].to(logp.device), mask.to(logp.device),
                                           ref_logp=mb.get("ref_logp"), beta=cfg.beta, eps=cfg.clip_eps,
                                           eps_high=cfg.clip_eps_high, loss_type=cfg.loss_type, **norm)
                r.updater.backward(loss)
                stats["clip_frac"].append(s["clip_frac"])
                stats["kl"].append(s["kl"])
                stats["loss"].append(float(loss.detach()))
                if entropy is not None:
                    stats["entropy"].append(float(grpo.masked_mean(entropy, mb["mask"].to(entropy.device))))
            out = r.updater.step()
            stats["grad_norm"].append(out["grad_norm"])
            lr = out["lr"]

    # 7. the rollout engine generates with the new weights next step (a no-op for HF, which shares the module)
    if cfg.engine != "hf":
        _push_weights(r)

    # 8. metrics over all ranks
    step_time = time.perf_counter() - t0
    lengths = [len(c.token_ids) for c in batch.completions]
    tokens = sum(len(p.input_ids) for p in batch.prompts) + sum(len(t) for t in batch.token_ids)
    all_r = distributed.gather_lists(rewards.tolist())
    fmt = distributed.gather_lists([float(s.get("format", 0.0)) for s in scores])
    acc = distributed.gather_lists([float(s.get("accuracy", 0.0)) for s in scores])
    lens = distributed.gather_lists(lengths)
    local = {k: (sum(v) / len(v) if v else 0.0) for k, v in stats.items()}
    ranks = distributed.gather_lists([local])
    mean_over_ranks = {k: sum(d[k] for d in ranks) / len(ranks) for k in local}
    total_tokens = sum(distributed.gather_lists([tokens]))
    reward_mean, reward_std = summarise(all_r)
    return {
        "step": step + 1,
        "reward_mean": reward_mean, "reward_std": reward_std,
        "format_mean": sum(fmt) / len(fmt), "accuracy_mean": sum(acc) / len(acc),
        "response_len_mean": sum(lens) / len(lens), "response_len_max": max(lens),
        "groups_kept": sum(distributed.gather_lists([int(keep.sum()) // G])),
        "clip_frac": mean_over_ranks["clip_frac"], "kl": mean_over_ranks["kl"],
        "entropy": mean_over_ranks["entropy"], "loss": mean_over_ranks["loss"],
        "grad_norm": mean_over_ranks["grad_norm"], "lr": lr,
        "step_time": step_time, "rollout_time": t_rollout, "tokens_per_s": total_tokens / max(step_time, 1e-9),
    }


def _micro_batches(batch, advantages, keep, size: int, pad_id: int) -> list[dict[str, Any]]:
    """Consecutive chunks of `size` sequences, collated, with their advantages (n,), keep flags (n,) and masks (n, C)."""

    from infimmr_cli.training.batching import collate

    out = []
    for i in range(0, len(batch.token_ids), size):
        b = collate(batch.prompts[i:i + size], batch.token_ids[i:i + size], pad_id)
        out.append({"batch": b, "adv": advantages[i:i + size], "keep": keep[i:i + size].float(),
                    "mask": b["completion_mask"]})
    return out


def _build(cfg, dist, prompts, sampler, resume_from: Path | None) -> Run:
    """Seed, load the policy (from the checkpoint when resuming), the reference, the updater and the rollout engine."""
    import numpy as np
    import torch

    from infimmr_cli.rollout.hf import HFEngine
    from infimmr_cli.training.model import build_policy, build_reference, is_zero3
    from infimmr_cli.training.updater import make_updater

    random.seed(cfg.seed + dist.rank)
    np.random.seed(cfg.seed + dist.rank)
    torch.manual_seed(cfg.seed + dist.rank)  # ranks sample different rollouts
    device = dist.device
    full_ckpt = resume_from is not None and cfg.lora_r == 0
    model_dir = resume_from if full_ckpt else cfg.init
    adapter = resume_from / "adapter" if (resume_from is not None and cfg.lora_r > 0) else None
    model, processor = build_policy(cfg, model_dir, device, adapter_dir=adapter)
    ref = build_reference(cfg, cfg.init, model, device)
    updates_per_step = cfg.prompts_per_step // cfg.update_batch
    micro_per_update = cfg.update_batch // dist.world_size * cfg.group_size // cfg.micro_batch
    total = (cfg.steps or sampler.steps_per_epoch) * updates_per_step * cfg.mu
    updater = make_updater(cfg, model, total, micro_per_update, dist.world_size)
    gen_module = getattr(updater.module, "module", updater.module)
    if cfg.engine == "vllm":
        from infimmr_cli.rollout.vllm import VLLMEngine

        engine = VLLMEngine.from_pretrained(cfg.init, processor=processor, dtype=cfg.dtype, **cfg.vllm)
    else:
        from infimmr_cli.training.rollouts import media_token_ids

        extra: dict[str, Any] = {"suppress_tokens": media_token_ids(processor.tokenizer)}
        if dist.enabled and is_zero3(gen_module):
            extra["synced_gpus"] = True  # ranks stop at different lengths; ZeRO-3 needs every rank in every forward
        engine = HFEngine(gen_module, processor, batch_size=cfg.rollout_batch, generate_kwargs=extra)
    return Run(cfg=cfg, dist=dist, prompts=prompts, sampler=sampler, processor=processor, updater=updater,
               engine=engine, ref=ref, micro_per_update=micro_per_update)


def _push_weights(r: Run) -> None:
    from infimmr_cli.rollout.weights import full_weights

    base = getattr(r.updater.module, "module", r.updater.module)
    r.engine.load_weights(full_weights(base))


def _export_final(r: Run, final: Path) -> None:
    """OUT/final: a plain HF model directory (merged LoRA, gathered shards), written atomically by rank 0."""
    import shutil

    from infimmr_cli.training import distributed
    from infimmr_cli.training.model import save_hf_model

    tmp = final.with_name(".final.tmp")
    if r.dist.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
    distributed.barrier()
    save_hf_model(r.updater.module, r.processor, tmp, r.dist.is_main)
    if r.dist.is_main:
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    distributed.barrier()


def _summary(console: Console, cfg, rows: list[dict[str, Any]], out_dir: Path) -> None:
    table = Table(title=f"train-phase {cfg.phase}: {len(rows)} steps")
    table.add_column("metric")
    table.add_column("first", justify="right")
    table.add_column("last", justify="right")
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
