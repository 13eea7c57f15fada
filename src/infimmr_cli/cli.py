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


SOURCE_NAMES = ("deepscaler", "virl39k", "math500", "mathverse", "mathvision", "mathvista", "olympiadbench")


@app.command("prepare", epilog="Example: infimmr prepare --from deepscaler --in examples/data/deepscaler_sample.json "
                              "--out runs/demo/records.jsonl")
def prepare(
    source: Annotated[str, typer.Option("--from", help=f"Export schema: {', '.join(SOURCE_NAMES)}.")],
    inp: Annotated[Path, typer.Option("--in", help="The export: a file (json/jsonl/parquet) or its folder.")],
    out: Annotated[Path, typer.Option("--out", help="Records JSONL to write; images go beside it under images/.")],
) -> None:
    """Convert a raw public dataset export into validated records (JSONL), images beside it."""
    from infimmr_cli.commands.prepare import run

    run(source, inp, out)


def main() -> None:
    from infimmr_cli.errors import run_cli

    run_cli(app)


if __name__ == "__main__":
    main()
