"""Typer wiring only: each command parses its options and calls a plain function in `commands/`.

Heavy imports (torch, transformers) happen inside the commands, so `infimmr --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    name="infimmr",
    help="Curriculum GRPO (FRA -> CMRA -> MRE) for multimodal math reasoning in small VLMs, after Infi-MMR.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("tiny-model", epilog="Example: infimmr tiny-model runs/tiny")
def tiny_model(
    out: Annotated[Path, typer.Argument(help="Directory to write the model into.")],
    seed: Annotated[int, typer.Option(help="Seed for the random weights.")] = 0,
) -> None:
    """Build a tiny random Qwen2.5-VL (weights + processor) offline, for tests and CPU demos."""
    from infimmr_cli.commands.tiny_model import run

    run(out, seed=seed)


@app.command(
    "train-phase",
    epilog="Example: infimmr train-phase --config recipes/phases/fra.json --data clean.jsonl "
           "--init Qwen2.5-VL-3B-Instruct --out ckpt/fra --set micro_batch=4 --dry-run.  "
           "Many GPUs: torchrun --nproc_per_node 8 -m infimmr_cli train-phase --config recipes/phases/cmra.json "
           "--data clean.jsonl --init ckpt/fra/final --out ckpt/cmra",
)
def train_phase(
    phase: Annotated[Optional[str], typer.Option(help="fra (text only), cmra (image + caption) or mre (image).")] = None,
    data: Annotated[Optional[Path], typer.Option(help="Records JSONL (captions needed for cmra).")] = None,
    init: Annotated[Optional[Path], typer.Option(help="HF model directory or the previous phase's OUT/final.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Run directory: checkpoints/, final/, metrics.jsonl.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Phase config JSON, e.g. recipes/phases/fra.json.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override any config key: --set lr=1e-5 --set beta=0 (repeatable; values parsed as JSON).")] = None,
    reward: Annotated[Optional[str], typer.Option(help="'default' or path/to/file.py:function.")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Rollout steps (default: one pass over the data).")] = None,
    deepspeed: Annotated[Optional[str], typer.Option(
        help="DeepSpeed JSON (recipes/ds_zero2.json, ds_zero3.json, ds_zero3_offload.json); '' for plain torch.")] = None,
    engine: Annotated[Optional[str], typer.Option(help="Rollout engine: hf or vllm.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT's newest checkpoint.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check inputs and show the plan; train nothing.")] = False,
    gpus: Annotated[Optional[int], typer.Option(help="GPUs per node for the --dry-run memory estimate.")] = None,
    nodes: Annotated[int, typer.Option(help="Nodes for the --dry-run memory estimate.")] = 1,
) -> None:
    """GRPO on one curriculum phase; every config key can be overridden with --set key=value."""
    from infimmr_cli.commands.train_phase import finish_process, run

    run(config=config, sets=set_, phase=phase, data=data, init=init, out=out, reward=reward, steps=steps,
        deepspeed=deepspeed, engine=engine, resume=resume, dry_run=dry_run, gpus=gpus, nodes=nodes)
    finish_process()


def main() -> None:
    from infimmr_cli.errors import run_cli

    run_cli(app)


if __name__ == "__main__":
    main()
