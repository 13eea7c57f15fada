"""The surface a user meets first: `infimmr --help`, each command's example, and the recipes that chain them."""

import json
import re
import subprocess

import pytest

from conftest import REPO, run_cli
from infimmr_cli.cli import app
from infimmr_cli.training.config import load_config

COMMANDS = [c.name for c in app.registered_commands]


def test_help_lists_every_subcommand_with_one_line():
    out = run_cli("--help").stdout
    assert set(COMMANDS) == {"tiny-model", "demo-data", "prepare", "classify", "caption", "decontam", "train-phase",
                             "export", "eval", "compare", "score", "plot", "inspect"}
    for name in COMMANDS:
        assert re.search(rf"│ {re.escape(name)}\s+\S", out), name
    listed = [m.group(1) for m in re.finditer(r"^│ ([a-z][a-z-]+) ", out, re.M) if m.group(1) in COMMANDS]
    assert listed == ["prepare", "classify", "caption", "decontam", "train-phase", "export", "eval", "compare",
                      "score", "plot", "inspect", "tiny-model", "demo-data"]  # the pipeline's order, then helpers


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_help_shows_an_example(name):
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [name, "--help"], terminal_width=200)
    assert result.exit_code == 0
    example = result.output[result.output.index("Example"):]  # the epilog: "Example: …" or "Examples: …"
    assert f"infimmr {name}" in " ".join(example.split())


@pytest.mark.parametrize("script", sorted((REPO / "recipes").rglob("*.sh")) + sorted((REPO / "examples").glob("*.sh"))
                         + sorted((REPO / "scripts").glob("*.sh")) + sorted((REPO / "bench").glob("*.sh")),
                         ids=lambda p: p.name)
def test_shell_recipes_parse(script):
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_an_ablation_without_the_curriculum_says_what_to_run_first(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "WORK": str(tmp_path / "work"), "MODEL": str(tmp_path / "model")}
    for name in ("capfre", "vision_first"):
        proc = subprocess.run(["bash", str(REPO / "recipes" / "ablations" / f"{name}.sh")], env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 2
        assert "mm.clean.jsonl is missing: run recipes/curriculum.sh with WORK=" in proc.stderr


@pytest.mark.parametrize("phase", ["fra", "cmra", "mre"])
def test_phase_configs_load_with_the_paper_defaults(phase):
    cfg = load_config(REPO / "recipes" / "phases" / f"{phase}.json")
    assert (cfg.phase, cfg.lr, cfg.prompts_per_step, cfg.group_size, cfg.update_batch, cfg.clip_eps,
            cfg.temperature) == (phase, 1e-6, 256, 16, 256, 0.2, 1.0)
    assert cfg.deepspeed.endswith("ds_zero2.json")


@pytest.mark.parametrize("name", ["ds_zero2", "ds_zero3", "ds_zero3_offload"])
def test_deepspeed_configs_name_their_stage(name):
    cfg = json.loads((REPO / "recipes" / f"{name}.json").read_text())
    assert cfg["zero_optimization"]["stage"] == (2 if name == "ds_zero2" else 3)
    if name.endswith("offload"):
        assert cfg["zero_optimization"]["offload_optimizer"]["device"] == "cpu"


def test_flags_show_no_bool_metavar_in_help():
    from typer.testing import CliRunner

    out = CliRunner().invoke(app, ["train-phase", "--help"], terminal_width=200).output
    resume = next(line for line in out.splitlines() if "--resume" in line)
    assert "<bool>" not in resume and "Continue from OUT" in resume
    assert "<int>" in next(line for line in out.splitlines() if "--gpus" in line)  # valued options keep theirs


# Options no run can do without: click marks them (`*` and [required]) and refuses a command line that lacks one.
REQUIRED = {"prepare": {"--from", "--out"}, "classify": {"--in"}, "caption": {"--in"},
            "decontam": {"--train", "--bench", "--out", "--removed"}, "train-phase": set(),
            "export": {"--ckpt", "--out"}, "eval": {"--bench", "--out"}, "compare": set(),
            "score": {"--records", "--completions"}, "plot": set(), "inspect": set(), "tiny-model": set(),
            "demo-data": set()}
# Options needed only in some modes (or that a config may give) say so in their help instead.
REQUIRED_UNLESS = {"eval": {"--model": "required unless --predictions",
                            "--data-dir": "required unless --records or --predictions"},
                   "decontam": {"--embed-model": "required unless --no-embedding"},
                   "train-phase": {f"--{k}": f"Required: here, in --config, or as --set {k}=..."
                                   for k in ("data", "init", "out")}}


def _option_blocks(out: str) -> dict[str, tuple[bool, str]]:
    """--option -> (marked required with `*`, its help text with wrapped lines joined), from rich's Options panel."""
    blocks: dict[str, tuple[bool, str]] = {}
    current = None
    for line in out.splitlines():
        start = re.match(r"│ (\*)?\s*(--[a-z][a-z-]*)\s(.*)│$", line)
        if start:
            current = start.group(2)
            blocks[current] = (bool(start.group(1)), start.group(3))
        elif current and line.startswith("│"):
            blocks[current] = (blocks[current][0], blocks[current][1] + " " + line.strip("│ "))
        else:
            current = None
    return {k: (marked, " ".join(text.split())) for k, (marked, text) in blocks.items()}


@pytest.mark.parametrize("name", COMMANDS)
def test_help_marks_the_required_options(name):
    from typer.testing import CliRunner

    out = CliRunner().invoke(app, [name, "--help"]).output
    blocks = _option_blocks(out)
    assert {k for k, (marked, _) in blocks.items() if marked} == REQUIRED[name]
    for option in REQUIRED[name]:
        assert blocks[option][1].endswith("[required]"), blocks[option]
    for option, words in REQUIRED_UNLESS.get(name, {}).items():
        assert words in blocks[option][1], blocks[option]
    assert "--help" in blocks and "<bool>" not in out  # flags, --help included, take no value


def test_top_level_help_shows_no_bool_metavar():
    from typer.testing import CliRunner

    out = CliRunner().invoke(app, ["--help"], terminal_width=200).output
    assert "--help" in out and "<bool>" not in out


def test_eval_without_bench_or_out_is_refused_by_the_parser():
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["eval", "--out", "x"], terminal_width=200)
    assert result.exit_code == 2 and "Missing option '--bench'" in result.output
    result = CliRunner().invoke(app, ["eval", "--bench", "math500"], terminal_width=200)
    assert result.exit_code == 2 and "Missing option '--out'" in result.output
