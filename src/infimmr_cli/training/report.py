"""What a run records about its origin, and what `--dry-run` shows before any compute."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from infimmr_cli.provenance import build, describe_input
from infimmr_cli.training.batching import encode_prompt, render


def provenance(cfg) -> dict[str, Any]:
    """The run's provenance record (`OUT/run_config.json`): resolved config as settings, the data's digest, and the
    initial model's json files digested (weights are named with their sizes, not hashed: GBs)."""
    init = Path(cfg.init)
    weights = {p.name: p.stat().st_size for p in sorted(init.glob("*.safetensors"))}
    return build("train-phase", cfg.out, cfg.to_dict(),
                 {"data": cfg.data, "init": {**describe_input(init), "weights": weights}})


def memory_estimate(cfg, gpus: int, nodes: int) -> dict[str, Any] | None:
    """DeepSpeed's own estimate of per-GPU and per-node CPU memory for the model states (params, grads, optimizer).

    The model is built on the meta device from its config, so no weights are read. Activations are not included.
    """
    if not cfg.deepspeed:
        return None
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    ds = json.loads(Path(cfg.deepspeed).read_text())
    zero = ds.get("zero_optimization", {})
    stage = int(zero.get("stage", 0))
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(cfg.init))
    offload_opt = "offload_optimizer" in zero
    offload_param = "offload_param" in zero
    if stage == 3:
        from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs, model_to_params

        total, largest = model_to_params(model)
        cpu, gpu, _ = estimate_zero3_model_states_mem_needs(total, largest, num_gpus_per_node=gpus, num_nodes=nodes,
                                                            cpu_offload=offload_opt, cpu_offload_params=offload_param,
                                                            zero_init=False)
    else:
        from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs, model_to_params

        total = model_to_params(model)
        cpu, gpu = estimate_zero2_model_states_mem_needs(total, num_gpus_per_node=gpus, num_nodes=nodes,
                                                         cpu_offload=offload_opt)
    return {"zero_stage": stage, "params": total, "gpus_per_node": gpus, "nodes": nodes,
            "gpu_gib_per_gpu": gpu / 2**30, "cpu_gib_per_node": cpu / 2**30,
            "offload_optimizer": offload_opt, "offload_param": offload_param}


def print_dry_run(console: Console, cfg, prompts, processor, estimate: dict | None, resolved: dict) -> None:
    view = prompts.view
    table = Table(title=f"train-phase {cfg.phase}: data view")
    for col in ("records read", "other modality", "in view", "too long (skipped)", "unreadable image (skipped)",
                "usable"):
        table.add_column(col, justify="right")
    table.add_row(str(view.total), str(view.excluded), str(len(view.items)), str(len(prompts.too_long)),
                  str(len(prompts.bad)), str(len(prompts.items)))
    console.print(table)
    if prompts.too_long:
        rid, n = prompts.too_long[0]
        console.print(f"{len(prompts.too_long)} prompts exceed max_prompt_len {cfg.max_prompt_len} "
                      f"(first: id {rid!r}, {n} tokens); they are skipped, not truncated")
    if prompts.bad:
        rid, err = prompts.bad[0]
        console.print(f"{len(prompts.bad)} prompts have an image that cannot be read (first: id {rid!r}: {err}); "
                      f"they are skipped", highlight=False)
    from infimmr_cli.data.images import ImageError, load_record_images

    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    for item in prompts.items[:3]:
        try:
            images = load_record_images(item.record, processor)
        except ImageError as exc:  # a header that reads but pixel data that does not: skipped in training too
            console.print(f"prompt {item.record.id}: {exc}; it will be skipped", highlight=False)
            continue
        enc = encode_prompt(processor, item.messages, images)
        pads = sum(1 for t in enc.input_ids if t == image_pad)
        console.rule(f"prompt {item.record.id} ({len(enc.input_ids)} tokens, {pads} image tokens)")
        console.print(render(processor, item.messages), markup=False, highlight=False)
    console.rule("resolved config")
    console.print_json(json.dumps(resolved["settings"]))
    if estimate:
        console.print(f"DeepSpeed ZeRO-{estimate['zero_stage']} estimate for {estimate['params'] / 1e9:.2f}B params on "
                      f"{estimate['nodes']} node(s) x {estimate['gpus_per_node']} GPU(s): "
                      f"{estimate['gpu_gib_per_gpu']:.2f} GiB per GPU, {estimate['cpu_gib_per_node']:.2f} GiB CPU per "
                      f"node (model states only; activations and the rollout engine come on top)")
    else:
        console.print("no DeepSpeed config: one process with torch AdamW (set deepspeed=recipes/ds_zero2.json for "
                      "a memory estimate)")
