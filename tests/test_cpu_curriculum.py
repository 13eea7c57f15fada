"""README command (a) at its smallest settings: the whole chain on CPU, then every artifact it must leave."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, cli_env
from infimmr_cli.modeling import load_model
from infimmr_cli.data.records import read_records

PHASES = ("fra", "cmra", "mre")


@pytest.mark.slow
def test_cpu_curriculum_leaves_every_artifact(tmp_path):
    work = tmp_path / "work"
    env = cli_env(WORK=str(work), STEPS="1", N_TEXT="6", N_IMAGE="6", N_BENCH="2", EVAL_LIMIT="2", PROMPTS="4",
                  PYTHON=sys.executable, OMP_NUM_THREADS="2")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    proc = subprocess.run(["bash", str(REPO / "examples" / "cpu_curriculum.sh")], env=env, capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    data = work / "data"

    for name in ("deepscaler", "virl39k.typed", "virl39k.captioned", "fra.clean", "mm.clean"):
        origin = json.loads((data / f"{name}.jsonl.provenance.json").read_text())
        assert origin["inputs"] and origin["versions"]["transformers"]
    captioned = read_records(data / "virl39k.captioned.jsonl")
    assert len(captioned) == 6 and all(r.image_type and r.caption for r in captioned)

    removed = [json.loads(line) for line in (data / "fra.removed.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["bench_source"]) for r in removed] == [("exact", "math500")]  # the planted leak
    assert len(read_records(data / "fra.clean.jsonl")) == 6

    for phase in PHASES:
        run = work / phase
        assert (run / "final" / "model.safetensors").is_file()
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows] == [0, 1]  # validation before training, then the one step
        assert all(r["val_n"] == 2 for r in rows)  # validated before and after, on the N_BENCH toy MathVista items
        assert (run / "val" / "step-000000.jsonl").is_file() and (run / "val" / "step-000001.jsonl").is_file()
        groups = [json.loads(line) for line in (run / "rollouts.jsonl").read_text().splitlines()]
        assert groups and {g["step"] for g in groups} == {1} and all(g["phase"] == phase for g in groups)
        assert json.loads((run / "run_config.json").read_text())["settings"]["phase"] == phase

    lineage = json.loads((work / "export" / "lineage.json").read_text())
    assert [p["phase"] for p in lineage["phases"]] == list(PHASES)
    model, processor = load_model(work / "export")
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"

    table = (work / "eval" / "table" / "compare.md").read_text()
    for label in ("base", *PHASES):
        assert f"| {label} " in table
    results = json.loads((work / "eval" / "mre" / "results.json").read_text())
    assert set(results["benchmarks"]) >= {"math500", "mathverse", "mathvision", "mathvista", "olympiadbench"}
    assert (work / "plots" / "curriculum.png").read_bytes()[:4] == b"\x89PNG"
    shown = subprocess.run([sys.executable, "-m", "infimmr_cli", "inspect", str(work / "mre")], env=env,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "step 1 · mre" in shown.stdout, shown.stderr

    # A rerun finds every curriculum step complete and redoes nothing; with ABLATION=capfre it then runs the Table 2
    # ablation on top, reusing the FRA model, the data and the evals already done.
    again = subprocess.run(["bash", str(REPO / "examples" / "cpu_curriculum.sh")], env={**env, "ABLATION": "capfre"},
                           capture_output=True, text=True, timeout=1200)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert again.stdout.count("skip:") >= 9 and "train-phase fra" not in again.stdout
    assert "train-phase mre" in again.stdout  # CapFre: the MRE view straight after FRA
    capfre = work / "ablations" / "capfre"
    assert json.loads((capfre / "run_config.json").read_text())["settings"]["init"].endswith("fra/final")
    table2 = (work / "ablations" / "table2" / "compare.md").read_text().splitlines()
    assert table2[0].startswith("| model | MathVerse reward | MathVerse official | MathVision reward |")
    assert "MATH500" not in table2[0]
    assert [line.split(" | ")[0] for line in table2[2:5]] == ["| fra", "| cmra", "| capfre"]
    assert "| Infi-MMR_CapFre (paper) | – | 41.94 | – | 25.88 | – | 18.67 | – | 63.9 |" in table2


def _quarter_means(rows: list[dict], key: str) -> tuple[float, float]:
    values = [r[key] for r in rows if key in r]
    q = max(1, len(values) // 4)
    return sum(values[:q]) / q, sum(values[-q:]) / q


def _correct(table: str, label: str, benches: tuple[str, ...]) -> int:
    """k summed over the reward columns of `benches` in a compare.md row."""
    header = table.splitlines()[0].split(" | ")
    row = next(line for line in table.splitlines() if line.startswith(f"| {label} |")).split(" | ")
    return sum(int(row[header.index(f"{b} reward")].split("(")[1].split("/")[0]) for b in benches)


@pytest.mark.slow
def test_cpu_demo_shows_grpo_learning(tmp_path):
    """README command (a) at its default settings (about 3.5 minutes on 2 cores): the curves the README promises."""
    work = tmp_path / "work"
    env = cli_env(WORK=str(work), PYTHON=sys.executable, OMP_NUM_THREADS="2")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    proc = subprocess.run(["bash", str(REPO / "examples" / "cpu_curriculum.sh")], env=env, capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    runs = {p: [json.loads(line) for line in (work / p / "metrics.jsonl").read_text().splitlines()] for p in PHASES}
    for phase, rows in runs.items():
        first, last = _quarter_means(rows, "reward_mean")
        assert last > first + 0.04, (phase, first, last)  # each phase's reward climbs
    # validated on the same toy MathVista items throughout: the curriculum ends above where it began
    assert runs["mre"][-1]["val_accuracy"] > runs["fra"][0]["val_accuracy"]
    table = (work / "eval" / "table" / "compare.md").read_text()
    images = ("MathVerse", "MathVision", "OlympiadBench", "MathVista")
    assert _correct(table, "mre", images) > _correct(table, "base", images), table
