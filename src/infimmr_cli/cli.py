"""Typer wiring only: each command parses its options and calls a plain function in `commands/`.

Heavy imports (torch, transformers) happen inside the commands, so `infimmr --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

# `infimmr --help` lists the commands in pipeline order, then the helpers.
PIPELINE_ORDER = ("prepare", "classify", "caption", "decontam", "train-phase", "export", "eval", "compare", "score",
                  "plot", "inspect", "tiny-model", "demo-data")


class PipelineGroup(TyperGroup):
    def list_commands(self, ctx) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: PIPELINE_ORDER.index(n) if n in PIPELINE_ORDER else len(PIPELINE_ORDER))

    def get_command(self, ctx, name: str):
        command = super().get_command(ctx, name)
        if command is not None:
            _no_bool_metavar([*command.params, command.get_help_option(ctx)])
        return command

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        _no_bool_metavar([option])
        return option


def _no_bool_metavar(params) -> None:
    """A flag takes no value: no `<bool>` beside it in --help (click makes --help itself on request)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""


app = typer.Typer(
    cls=PipelineGroup,
    name="infimmr",
    help="Curriculum GRPO (FRA -> CMRA -> MRE) for multimodal math reasoning in small VLMs, after Infi-MMR.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("tiny-model", epilog="Example: infimmr tiny-model runs/tiny --warm-up")
def tiny_model(
    out: Annotated[Path, typer.Argument(help="Directory to write the model into.")],
    seed: Annotated[int, typer.Option(help="Seed for the random weights.")] = 0,
    warm_up: Annotated[bool, typer.Option("--warm-up", help="Then teach it the demo's toy task (answer format, "
                                          "captions, a half-learnt sum skill) for about a minute on a CPU, so GRPO "
                                          "has reward to climb from.")] = False,
) -> None:
    """Build a tiny Qwen2.5-VL (weights + processor) offline, for tests and CPU demos; random unless --warm-up."""
    from infimmr_cli.commands.tiny_model import run

    run(out, seed=seed, warm_up=warm_up)


@app.command("demo-data", epilog="Example: infimmr demo-data runs/demo/raw")
def demo_data(
    out: Annotated[Path, typer.Argument(help="Folder to write the raw exports into.")],
    n_text: Annotated[int, typer.Option(help="Text-only sums of two small numbers (DeepScaleR schema).")] = 24,
    n_image: Annotated[int, typer.Option(help="Image problems: the sums drawn as bar charts (ViRL39K schema).")] = 24,
    n_bench: Annotated[int, typer.Option(help="Items per benchmark export.")] = 6,
    seed: Annotated[int, typer.Option(help="Seed for the generated items.")] = 0,
) -> None:
    """Write toy raw exports (DeepScaleR, ViRL39K, the five benchmarks) in their real schemas, for CPU demos."""
    from infimmr_cli.commands.demo_data import run

    run(out, n_text=n_text, n_image=n_image, n_bench=n_bench, seed=seed)


SOURCE_NAMES = ("deepscaler", "virl39k", "math500", "mathverse", "mathvision", "mathvista", "olympiadbench")


@app.command("prepare", epilog="Example: infimmr prepare --from deepscaler --in examples/data/deepscaler_sample.json "
                              "--out runs/demo/records.jsonl")
def prepare(
    source: Annotated[str, typer.Option("--from", help=f"Export schema: {', '.join(SOURCE_NAMES)}.")],
    out: Annotated[Path, typer.Option("--out", help="Records JSONL to write; images go beside it under images/.")],
    inp: Annotated[Optional[Path], typer.Option("--in", help="The export: a file (json/jsonl/parquet) or its folder. "
                                                "Without it, the files the reader needs are downloaded from the "
                                                "source's Hugging Face dataset into the HF cache.")] = None,
    revision: Annotated[Optional[str], typer.Option(help="Dataset revision to download (without --in): branch, tag "
                                                         "or commit (default main).")] = None,
) -> None:
    """Convert a raw public dataset export (a local one, or downloaded from the hub) into validated records (JSONL),
    images beside it."""
    from infimmr_cli.commands.prepare import run

    run(source, inp, out, revision=revision)


@app.command("decontam", epilog="Example: infimmr decontam --train data/train.jsonl --bench data/mathverse.jsonl "
             "--bench data/mathvision.jsonl --out data/clean.jsonl --removed data/removed.jsonl "
             "--embed-model models/gme-Qwen2-VL-2B-Instruct")
def decontam(
    train: Annotated[Path, typer.Option(help="Training records (JSONL).")],
    bench: Annotated[list[Path], typer.Option(help="Benchmark records (JSONL); repeat for each benchmark.")],
    out: Annotated[Path, typer.Option(help="Where the kept training records go.")],
    removed: Annotated[Path, typer.Option(help="One line per removed item: id, stage, benchmark match, evidence.")],
    embed_model: Annotated[Optional[str], typer.Option(
        help="GME-style embedder (a Qwen2-VL/Qwen2.5-VL): a directory or a hub id, e.g. "
             "Alibaba-NLP/gme-Qwen2-VL-2B-Instruct (downloaded into the HF cache); required unless --no-embedding.")] = None,
    threshold: Annotated[float, typer.Option(help="Remove when cosine similarity is strictly above this.")] = 0.95,
    no_embedding: Annotated[bool, typer.Option("--no-embedding", help="Run the text stage only.")] = False,
    batch_size: Annotated[int, typer.Option(help="Items per embedding forward.")] = 8,
    cache: Annotated[Optional[Path], typer.Option(
        help="Embedding cache folder (default: .infimmr-embed-cache beside --out).")] = None,
    min_pixels: Annotated[Optional[int], typer.Option(help="Image resize floor (default GME's 256*28*28).")] = None,
    max_pixels: Annotated[Optional[int], typer.Option(help="Image resize ceiling (default GME's 1280*28*28).")] = None,
    device: Annotated[str, typer.Option(help="Device for the embedder, e.g. cpu or cuda.")] = "cpu",
    dtype: Annotated[str, typer.Option(help="auto, bf16, fp16 or fp32.")] = "auto",
    revision: Annotated[Optional[str], typer.Option(help="Hub revision of a hub-id --embed-model: branch, tag or "
                                                         "commit (default main).")] = None,
) -> None:
    """Drop training items that leak benchmark items: 32-gram / exact-match text stage, then multimodal embeddings."""
    from infimmr_cli.commands.decontam import run

    run(train, bench, out, removed, embed_model=embed_model, threshold=threshold, no_embedding=no_embedding,
        batch_size=batch_size, cache=cache, min_pixels=min_pixels, max_pixels=max_pixels, device=device, dtype=dtype,
        revision=revision)


# Options classify and caption share (typer reads them from each signature).
InPath = Annotated[Path, typer.Option("--in", help="Input records (JSONL).", show_default=False)]
OutPath = Annotated[Optional[Path], typer.Option("--out", help="Output records (JSONL); a rerun skips ids already in "
                                                 "it. Default: beside --in, named after the stage (x.typed.jsonl, "
                                                 "x.captioned.jsonl).", show_default=False)]
EngineOpt = Annotated[str, typer.Option(help="auto (vLLM on a GPU when installed, else HF), hf or vllm.")]
BatchOpt = Annotated[int, typer.Option(help="Records per engine call; each chunk is saved before the next.")]
LimitOpt = Annotated[Optional[int], typer.Option(help="Only the first N input records.")]
OutsideOpt = Annotated[bool, typer.Option("--allow-outside-images", help="Accept image paths that leave the input "
                                          "file's folder (a stage that wrote into another folder makes them).")]
RevisionOpt = Annotated[Optional[str], typer.Option(help="Hub revision of a hub-id model: branch, tag or commit "
                                                    "(default main); recorded in the provenance.")]


@app.command("classify", epilog="Example: infimmr classify --in data/virl39k.jsonl --out data/typed.jsonl "
                                "--model Qwen/Qwen2.5-VL-7B-Instruct --batch-size 16")
def classify(
    in_path: InPath,
    out: OutPath = None,
    model: Annotated[str, typer.Option(help="Model directory, or a hub id (downloaded into the HF cache; "
                                            "HF_HUB_OFFLINE=1: the cache only).")]
    = "Qwen/Qwen2.5-VL-7B-Instruct",
    engine: EngineOpt = "auto",
    batch_size: BatchOpt = 8,
    max_new_tokens: Annotated[int, typer.Option(help="Reply length limit (the reply is one word).")] = 8,
    limit: LimitOpt = None,
    allow_outside_images: OutsideOpt = False,
    revision: RevisionOpt = None,
) -> None:
    """Give each image a type (natural, aigc, mathgeo, chart, table, equation, ocr, gui, other); resumable.

    The record's image_type is its images' most frequent type other than `other` (ties: first image); per-image types
    go to meta.image_types, unparsed replies to meta.image_type_raw. Text-only records pass through.
    """
    from infimmr_cli.commands.classify import run

    run(in_path, out, model=model, engine=engine, batch_size=batch_size, max_new_tokens=max_new_tokens, limit=limit,
        allow_outside_images=allow_outside_images, revision=revision)


@app.command("caption", epilog="Example: infimmr caption --in data/typed.jsonl --out data/captioned.jsonl "
                               "--model U4R/OmniCaptioner --batch-size 16")
def caption(
    in_path: InPath,
    out: OutPath = None,
    model: Annotated[str, typer.Option(help="Model directory, or a hub id (downloaded into the HF cache; "
                                            "HF_HUB_OFFLINE=1: the cache only).")]
    = "U4R/OmniCaptioner",
    engine: EngineOpt = "auto",
    batch_size: BatchOpt = 8,
    max_new_tokens: Annotated[int, typer.Option(help="Caption length limit in tokens.")] = 256,
    limit: LimitOpt = None,
    allow_outside_images: OutsideOpt = False,
    temperature: Annotated[float, typer.Option(help="0 decodes greedily (default); above 0 samples.")] = 0.0,
    seed: Annotated[Optional[int], typer.Option(help="Sampling seed (with --temperature above 0).")] = None,
    revision: RevisionOpt = None,
) -> None:
    """Write a concise caption per image record under its type's system prompt (for the CMRA phase); resumable.

    Needs image_type on every image record: run `infimmr classify` first. Text-only records keep caption null.
    """
    from infimmr_cli.commands.caption import run

    run(in_path, out, model=model, engine=engine, batch_size=batch_size, max_new_tokens=max_new_tokens, limit=limit,
        allow_outside_images=allow_outside_images, temperature=temperature, seed=seed, revision=revision)


BENCH_NAMES = ("math500", "mathverse", "mathvision", "mathvision-testmini", "olympiadbench", "mathvista")


@app.command("eval", epilog="Examples:\n\n"
             "infimmr eval --bench mathverse --bench mathvista --model ckpt/mre/hf --data-dir data/bench "
             "--out runs/eval/mre\n\n"
             "infimmr eval --bench math500 --model runs/tiny --data-dir data/bench --out runs/eval/tiny --limit 4 "
             "--max-new-tokens 16\n\n"
             "infimmr eval --bench mathverse --out runs/eval/mre --predictions runs/eval/mre/mathverse/predictions.jsonl")
def eval_cmd(
    bench: Annotated[list[str], typer.Option("--bench", help=f"Benchmark, repeatable: {', '.join(BENCH_NAMES)}.")],
    out: Annotated[Path, typer.Option(help="Output folder: OUT/<bench>/predictions.jsonl, OUT/results.json.")],
    model: Annotated[Optional[str], typer.Option(help="Model to generate with: a directory (HF format), a train-phase run folder (its final/), or a hub id (downloaded into the HF cache); required unless --predictions.")] = None,
    revision: Annotated[Optional[str], typer.Option(help="Hub revision of a hub-id --model: branch, tag or commit (default main).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(envvar="INFIMMR_DATA", help="Folder holding the benchmark exports (one sub-folder per bench); required unless --records or --predictions.")] = None,
    records: Annotated[Optional[list[Path]], typer.Option(help="Prepared records instead of the export, one per --bench, same order.")] = None,
    predictions: Annotated[Optional[list[Path]], typer.Option(help="Rescore these predictions (JSONL with id, completion) without a model; one per --bench.")] = None,
    engine: Annotated[str, typer.Option(help="auto (vLLM on GPU when installed, else HF), hf or vllm.")] = "auto",
    batch_size: Annotated[Optional[int], typer.Option(help="Prompts per generate call (default 8 on HF, 256 on vLLM).")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest completion.")] = 2048,
    max_prompt_len: Annotated[int, typer.Option(help="Longest prompt in tokens (images included); a longer item is scored 0 and listed in predictions.jsonl.warnings.jsonl.")] = 16384,
    temperature: Annotated[float, typer.Option(help="0 = greedy (default).")] = 0.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling when temperature > 0.")] = 1.0,
    top_k: Annotated[int, typer.Option(help="Top-k when temperature > 0; 0 = off.")] = 0,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    limit: Annotated[Optional[int], typer.Option(help="Only the first N items of each bench (N is then the count).")] = None,
    dtype: Annotated[str, typer.Option(help="auto, bf16, fp16 or fp32.")] = "auto",
    workers: Annotated[Optional[int], typer.Option(help="Scoring worker processes (default: the reward module's).")] = None,
    reward: Annotated[str, typer.Option(help="Scoring function: default or path.py:function.")] = "default",
) -> None:
    """Evaluate a model on the paper's benchmarks (k/N overall and per subset), or rescore predictions
    (`infimmr compare` tabulates eval folders)."""
    from infimmr_cli.commands.eval import run

    run(bench, out, model=model, data_dir=data_dir, records=records, predictions=predictions, engine=engine,
        batch_size=batch_size, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
        seed=seed, limit=limit, dtype=dtype, workers=workers, reward=reward, max_prompt_len=max_prompt_len,
        revision=revision)


@app.command("compare", epilog="Examples: infimmr compare base=runs/eval/base fra=runs/eval/fra cmra=runs/eval/cmra "
                              "mre=runs/eval/mre --out runs/eval/table --with-paper  ·  infimmr compare "
                              "fra=runs/eval/fra cmra=runs/eval/cmra capfre=runs/eval/capfre --table 2 --with-paper")
def compare_cmd(
    runs: Annotated[list[str], typer.Argument(help="Eval folders (with results.json), as DIR or label=DIR, in row order.")],
    out: Annotated[Path, typer.Option(help="Where compare.md, compare.png and compare.json go.")] = Path("."),
    with_paper: Annotated[bool, typer.Option(help="Add the paper's reported rows (Tables 1-2).")] = False,
    table: Annotated[Optional[str], typer.Option(help="Shape of the paper's Table 1 or 2: its columns, and its rows "
                                                      "under --with-paper (2: FRA, CMRA, CapFre; no MATH500).")] = None,
) -> None:
    """One table of checkpoints x benchmarks (the paper's Table 1 shape), as Markdown and a PNG chart."""
    from infimmr_cli.commands.compare import run

    run(runs, out, with_paper=with_paper, table=table)


@app.command("export", epilog="Example: infimmr export --ckpt runs/mre --out models/infimmr-3b --dtype bf16")
def export(
    ckpt: Annotated[Path, typer.Option(help="A train-phase run directory (its final/ or newest step-N), a step "
                                            "directory, or a LoRA adapter directory.")],
    out: Annotated[Path, typer.Option(help="The Hugging Face model directory to write.")],
    dtype: Annotated[str, typer.Option(help="bf16, fp16 or fp32.")] = "bf16",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")] = False,
    trust_remote_code: Annotated[bool, typer.Option("--trust-remote-code",
                                                    help="Allow the model's own code (off unless asked).")] = False,
) -> None:
    """Turn a training checkpoint into a plain HF model directory (LoRA merged, safetensors, processor, lineage)."""
    from infimmr_cli.commands.export import run

    run(ckpt, out, dtype=dtype, trust_remote_code=trust_remote_code, overwrite=overwrite)


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


@app.command("plot", epilog="Examples: infimmr plot fra=runs/fra cmra=runs/cmra mre=runs/mre --out runs/plots  ·  "
                            "infimmr plot --figure figure3 text_rl=runs/fra vision_rl=runs/ablations/vision_first")
def plot(
    runs: Annotated[list[str], typer.Argument(help="train-phase run directories in curriculum order (DIR or label=DIR).")],
    out: Annotated[Path, typer.Option(help="Folder for the PNG.")] = Path("plots"),
    figure: Annotated[str, typer.Option(help="curriculum (phases end to end: curriculum.png) or figure3 (runs "
                                             "overlaid: validation accuracy and response length, figure3.png).")]
    = "curriculum",
) -> None:
    """Chart training curves from each run's metrics.jsonl: the curriculum end to end, or the paper's Figure 3."""
    from infimmr_cli.commands.plot import run

    run(runs, out, figure=figure)


@app.command("inspect", epilog="Examples: infimmr inspect runs/fra  ·  infimmr inspect runs/fra --step 20 --worst  ·  "
                               "infimmr inspect runs/mre --id virl-00017")
def inspect_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A train-phase run directory (it may still be running).")],
    step: Annotated[Optional[int], typer.Option(help="The step to show (default: the newest with samples).")] = None,
    record_id: Annotated[Optional[str], typer.Option("--id", help="Follow one record across the logged steps.")] = None,
    worst: Annotated[bool, typer.Option("--worst", help="Groups with the lowest mean reward first.")] = False,
    best: Annotated[bool, typer.Option("--best", help="Groups with the highest mean reward first.")] = False,
    width: Annotated[int, typer.Option(help="Characters of each prompt and completion shown.")] = 100,
) -> None:
    """Show the logged rollout groups of a run: prompt, completions, reward parts and advantages."""
    from infimmr_cli.commands.inspect import run

    run(run_dir, step=step, record_id=record_id, worst=worst, best=best, width=width)


# train-phase's required settings may also come from --config or --set, so click cannot enforce them; run() does.
_NEEDED = "Required: here, in --config, or as --set {0}=..."


@app.command(
    "train-phase",
    epilog="Example: infimmr train-phase --config recipes/phases/fra.json --data clean.jsonl "
           "--init Qwen2.5-VL-3B-Instruct --out ckpt/fra --set micro_batch=4 --dry-run.  "
           "Many GPUs: torchrun --nproc_per_node 8 -m infimmr_cli train-phase --config recipes/phases/cmra.json "
           "--data clean.jsonl --init ckpt/fra/final --out ckpt/cmra",
)
def train_phase(
    phase: Annotated[Optional[str], typer.Option(help="fra (text only), cmra (image + caption) or mre (image); default: --config's, else fra.")] = None,
    data: Annotated[Optional[Path], typer.Option(help=f"Records JSONL (captions needed for cmra). {_NEEDED.format('data')}")] = None,
    init: Annotated[Optional[str], typer.Option(help=f"HF model directory, the previous phase's run folder (its final/ is used), or a hub id (downloaded into the HF cache). {_NEEDED.format('init')}")] = None,
    revision: Annotated[Optional[str], typer.Option(help="Hub revision of a hub-id --init: branch, tag or commit (default main).")] = None,
    out: Annotated[Optional[Path], typer.Option(help=f"Run directory: checkpoints/, final/, metrics.jsonl. {_NEEDED.format('out')}")] = None,
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
    val_data: Annotated[Optional[Path], typer.Option(
        help="Held-out records to validate on before the first step, every val_every steps and after the last "
             "(greedy, same reward): val_* keys in metrics.jsonl, completions in OUT/val/.")] = None,
) -> None:
    """GRPO on one curriculum phase; every config key can be overridden with --set key=value."""
    from infimmr_cli.commands.train_phase import finish_process, run

    run(config=config, sets=set_, phase=phase, data=data, init=init, out=out, reward=reward, steps=steps,
        deepspeed=deepspeed, engine=engine, resume=resume, dry_run=dry_run, gpus=gpus, nodes=nodes,
        val_data=val_data, revision=revision)
    finish_process()


def main() -> None:
    import sys

    from infimmr_cli.errors import run_cli
    from infimmr_cli.no_deepspeed import for_command

    for_command(sys.argv[1:])  # no DeepSpeed import (nor its "Setting accelerator to CPU") where no command uses it
    run_cli(app)


if __name__ == "__main__":
    main()
