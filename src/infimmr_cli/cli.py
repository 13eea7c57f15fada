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


@app.command("score", epilog="Example: infimmr score --records data/math500.jsonl --completions runs/preds.jsonl "
                               "--out runs/scored.jsonl")
def score(
    records: Annotated[Path, typer.Option("--records", help="Records JSONL (the gold answers).")],
    completions: Annotated[Path, typer.Option("--completions", help='JSONL of {"id": ..., "completion": ...}.')],
    out: Annotated[Optional[Path], typer.Option("--out", help="Write per-item scores here (JSONL).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Scoring processes (default: CPUs, at most 8; 0: in-process, "
                                                        "no timeout).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per item before it is killed and scored 0.")] = 5.0,
    reward: Annotated[str, typer.Option(help="'default' or a plug-in path/to/file.py:function.")] = "default",
) -> None:
    """Score completions with the paper's reward and print accuracy per answer type."""
    from infimmr_cli.commands.score import run

    run(records, completions, out=out, workers=workers, timeout=timeout, reward=reward)


def main() -> None:
    from infimmr_cli.errors import run_cli

    run_cli(app)


if __name__ == "__main__":
    main()
