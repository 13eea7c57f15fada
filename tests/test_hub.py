"""Models and datasets by hub id (issue 15): what is asked of the hub, the cache reuse, the offline error, the revision
in the provenance, a local path winning over a hub id, and the curriculum recipe without a RAW folder.

There is no hub here: `hub.download`, the one function that reaches it, is replaced by `FakeHub`, which keeps a cache
in the hub's layout (`<kind>--Org--Name/snapshots/<commit>`) and fills it from a table of repository files.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from infimmr_cli import hub
from infimmr_cli.errors import UsageError
from infimmr_cli.modeling import model_revision, resolve_model
from infimmr_cli.provenance import read_provenance

REPO = Path(__file__).resolve().parents[1]


class FakeHub:
    """Stands in for `hub.download`: `repos` maps a repo id to {path in the repository: file to serve}."""

    def __init__(self, cache: Path, repos: dict[str, dict[str, Path]]):
        self.cache, self.repos, self.calls = cache, repos, []

    def snapshot(self, repo_id: str, repo_type: str | None, revision: str | None) -> Path:
        kind = "datasets" if repo_type == "dataset" else "models"
        ref = revision or "main"
        commit = ref if hub.COMMIT.fullmatch(ref) else hashlib.sha1(f"{repo_id}@{ref}".encode()).hexdigest()
        return self.cache / f"{kind}--{repo_id.replace('/', '--')}" / "snapshots" / commit

    def __call__(self, repo_id, *, repo_type=None, revision=None, allow_patterns=None, local_files_only=False):
        self.calls.append(dict(repo_id=repo_id, repo_type=repo_type, revision=revision,
                               allow_patterns=list(allow_patterns or []), local_files_only=local_files_only))
        snap = self.snapshot(repo_id, repo_type, revision)
        if local_files_only:
            if not snap.is_dir():
                from huggingface_hub.errors import LocalEntryNotFoundError

                raise LocalEntryNotFoundError(f"{repo_id}: not in the cache")
            return str(snap)
        if repo_id not in self.repos:
            raise OSError(f"404 Client Error: Repository Not Found for url: https://huggingface.co/{repo_id}")
        for rel, src in self.repos[repo_id].items():
            wanted = any(fnmatch.fnmatch(rel, p) for p in allow_patterns or ["*"])
            if wanted and not any(fnmatch.fnmatch(rel, n) for n in hub.NEVER):  # as the real call's ignore_patterns
                (snap / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, snap / rel)
        return str(snap)

    def downloads(self) -> list[dict]:
        return [c for c in self.calls if not c["local_files_only"]]


@pytest.fixture
def model_repo(tiny_model_dir, tmp_path) -> dict[str, Path]:
    """The tiny model as a hub repository, with what a model download must leave behind."""
    extra = tmp_path / "extra"
    extra.mkdir()
    for name in ("pytorch_model.bin", "training_args.pt", "modeling_tiny.py", "README.md"):
        (extra / name).write_bytes(b"not for us")
    files = {p.name: p for p in tiny_model_dir.iterdir() if p.is_file()}
    return {**files, **{p.name: p for p in extra.iterdir()}}


@pytest.fixture
def fake_hub(tmp_path, monkeypatch, model_repo) -> FakeHub:
    fake = FakeHub(tmp_path / "hf" / "hub", {"Org/Tiny": model_repo})
    monkeypatch.setattr(hub, "download", fake)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    return fake


# ---------------------------------------------------------------- models


def test_a_hub_id_is_downloaded_with_only_the_files_a_model_needs(fake_hub):
    folder = resolve_model("Org/Tiny")
    assert folder == fake_hub.snapshot("Org/Tiny", None, None)
    first, second = fake_hub.calls
    assert first["local_files_only"] and not second["local_files_only"]  # the cache was asked first
    assert second["allow_patterns"] == list(hub.MODEL_FILES) and second["repo_type"] is None
    got = sorted(p.name for p in folder.iterdir())
    assert {"config.json", "tokenizer_config.json", "chat_template.jinja"} <= set(got)
    assert {"preprocessor_config.json", "processor_config.json"} & set(got)
    assert any(n.endswith(".safetensors") for n in got)
    assert not [n for n in got if n.endswith((".bin", ".pt", ".py", ".md"))]


def test_trust_remote_code_also_fetches_the_models_code(fake_hub):
    folder = resolve_model("Org/Tiny", trust_remote_code=True)
    assert "*.py" in fake_hub.downloads()[0]["allow_patterns"] and (folder / "modeling_tiny.py").is_file()


def test_the_real_download_passes_patterns_revision_and_never_pickles(monkeypatch):
    import huggingface_hub

    seen = {}
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kw: seen.update(kw, repo=repo_id)
                        or "/x")
    assert hub.download("Org/Tiny", revision="v1", allow_patterns=["*.json"], local_files_only=True) == "/x"
    assert seen["repo"] == "Org/Tiny" and seen["revision"] == "v1" and seen["allow_patterns"] == ["*.json"]
    assert seen["local_files_only"] is True and {"*.bin", "*.pt", "*.pth", "*.pkl"} <= set(seen["ignore_patterns"])


def test_a_second_resolution_comes_from_the_cache_without_a_download(fake_hub):
    first = resolve_model("Org/Tiny")
    fake_hub.calls.clear()
    assert resolve_model("Org/Tiny") == first
    assert fake_hub.calls and fake_hub.downloads() == []


def test_an_incomplete_cache_entry_is_completed_online(fake_hub):
    folder = resolve_model("Org/Tiny")
    for weights in folder.glob("*.safetensors"):
        weights.unlink()  # what an interrupted download leaves: the snapshot folder without its weights
    fake_hub.calls.clear()
    assert resolve_model("Org/Tiny") == folder and len(fake_hub.downloads()) == 1
    assert any(folder.glob("*.safetensors"))


def test_the_revision_is_passed_and_its_commit_recorded(fake_hub):
    folder = resolve_model("Org/Tiny", revision="v1.0")
    assert {c["revision"] for c in fake_hub.calls} == {"v1.0"}
    commit = fake_hub.snapshot("Org/Tiny", None, "v1.0").name
    assert model_revision(folder, "v1.0") == {"revision": "v1.0", "commit": commit}
    assert model_revision(Path("/some/local/dir")) == {"revision": None, "commit": None}


def test_offline_and_not_cached_is_one_line_naming_the_id(fake_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError) as err:
        resolve_model("Org/Tiny", flag="--init")
    msg = str(err.value)
    assert msg.startswith("--init Org/Tiny: not found in the local Hugging Face cache") and "HF_HUB_OFFLINE=1" in msg
    assert "\n" not in msg and fake_hub.downloads() == []  # the cache only: nothing was downloaded


def test_offline_uses_what_is_cached(fake_hub, monkeypatch):
    folder = resolve_model("Org/Tiny")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fake_hub.calls.clear()
    assert resolve_model("Org/Tiny") == folder and fake_hub.downloads() == []
    next(folder.glob("*.safetensors")).unlink()
    with pytest.raises(UsageError, match=r"Org/Tiny: incomplete in the local Hugging Face cache .*safetensors"):
        resolve_model("Org/Tiny")


def test_a_failed_download_is_one_line(fake_hub):
    with pytest.raises(UsageError, match=r"^--model Org/Missing: could not download .*Repository Not Found"):
        resolve_model("Org/Missing")


def test_a_local_path_wins_over_the_same_named_hub_id(fake_hub, tiny_model_dir, tmp_path, monkeypatch):
    shutil.copytree(tiny_model_dir, tmp_path / "Org" / "Tiny")
    monkeypatch.chdir(tmp_path)
    assert resolve_model("Org/Tiny") == Path("Org/Tiny") and fake_hub.calls == []
    with pytest.raises(UsageError, match=r"^--revision v1: --model Org/Tiny is a local path"):
        resolve_model("Org/Tiny", revision="v1")


def test_a_run_folder_still_means_its_final_model(fake_hub, tiny_model_dir, tmp_path):
    shutil.copytree(tiny_model_dir, tmp_path / "run" / "final")
    assert resolve_model(tmp_path / "run", flag="--init") == tmp_path / "run" / "final" and fake_hub.calls == []


def test_neither_a_path_nor_a_hub_id(fake_hub, tmp_path):
    with pytest.raises(UsageError, match="model directory not found"):
        resolve_model(tmp_path / "no" / "such" / "model")
    assert fake_hub.calls == []


def test_the_vllm_engine_gets_the_directory_the_processor_came_from(fake_hub, monkeypatch):
    import sys
    import types

    from infimmr_cli.rollout import open_engine

    seen = {}

    class LLM:  # vLLM given a hub id would fetch it itself; it must get our resolved snapshot
        def __init__(self, model=None, **kwargs):
            seen["model"] = model

    from infimmr_cli.rollout.vllm import Platform

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM))
    monkeypatch.setattr(Platform, "detect", classmethod(lambda cls: Platform(sleep=False, push="reload",
                                                                              request_seed=False)))
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # restored afterwards (the engine sets it on CPU)
    engine, processor = open_engine("Org/Tiny", engine="vllm", revision="v1")
    snap = fake_hub.snapshot("Org/Tiny", None, "v1")
    assert seen["model"] == str(snap) and engine.processor is processor
    assert len(fake_hub.downloads()) == 1 and {c["revision"] for c in fake_hub.calls} == {"v1"}


def test_decontam_records_the_embedders_hub_revision_and_commit(fake_hub, tmp_path):
    import numpy as np
    from rich.console import Console

    from infimmr_cli.commands import decontam

    class Fixed:
        identity = "fixed"

        def embed(self, items):
            return np.array([[1.0, 0.0]] * len(items), dtype=np.float32)

    def records(path, ids):
        path.write_text("".join(json.dumps({"id": i, "source": "t", "question": f"question {i}", "answer": "1",
                                            "answer_type": "math"}) + "\n" for i in ids))
        return path

    train, bench = records(tmp_path / "train.jsonl", ["a"]), records(tmp_path / "bench.jsonl", ["b"])
    decontam.run(train, [bench], tmp_path / "clean.jsonl", tmp_path / "removed.jsonl", embed_model="Org/Tiny",
                 revision="v2", embedder=Fixed(), console=Console(quiet=True))
    settings = read_provenance(tmp_path / "clean.jsonl")["settings"]
    assert settings["embed_model"] == "Org/Tiny" and settings["revision"] == "v2"
    assert settings["commit"] == fake_hub.snapshot("Org/Tiny", None, "v2").name
    assert {c["revision"] for c in fake_hub.calls} == {"v2"}


def test_train_phase_starts_from_a_hub_id_and_records_it(fake_hub, tmp_path, capsys, monkeypatch):
    from infimmr_cli.commands import train_phase

    monkeypatch.setenv("COLUMNS", "200")
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "source": "t", "question": f"What is {i}+1?",
                                        "answer": str(i + 1), "answer_type": "math"}) + "\n" for i in range(2)))
    train_phase.run(phase="fra", data=data, init="Org/Tiny", revision="v3", out=tmp_path / "run", dry_run=True,
                    sets=["deepspeed=", "prompts_per_step=2", "update_batch=2", "group_size=2", "micro_batch=4"])
    shown = capsys.readouterr().out
    snap = fake_hub.snapshot("Org/Tiny", None, "v3")
    assert f"--init Org/Tiny: from the hub cache: {snap}" in shown.replace("\n", "")
    assert '"init_id": "Org/Tiny"' in shown and f'"init_commit": "{snap.name}"' in shown and '"revision": "v3"' in shown
    assert {c["revision"] for c in fake_hub.calls} == {"v3"} and not (tmp_path / "run").exists()


def test_export_fetches_an_adapters_hub_base_at_the_revision_peft_recorded(fake_hub, tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    from infimmr_cli.commands.export import run as export
    from infimmr_cli.modeling import load_model

    base, _ = load_model(tiny_model_dir, dtype="fp32")
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], init_lora_weights=False, revision="v2")
    get_peft_model(base, config).save_pretrained(tmp_path / "adapter")
    adapter_config = tmp_path / "adapter" / "adapter_config.json"
    settings = json.loads(adapter_config.read_text())
    adapter_config.write_text(json.dumps({**settings, "base_model_name_or_path": "Org/Tiny"}))
    export(tmp_path / "adapter", tmp_path / "hf", dtype="fp32")
    assert fake_hub.downloads() and {c["revision"] for c in fake_hub.calls} == {"v2"}
    assert (tmp_path / "hf" / "model.safetensors").is_file()


def test_the_cli_takes_revision_and_refuses_it_with_a_local_model(tiny_model_dir, tmp_path):
    from conftest import run_cli

    recs = tmp_path / "r.jsonl"
    recs.write_text(json.dumps({"id": "1", "source": "t", "question": "q", "answer": "1", "answer_type": "math"})
                    + "\n")
    proc = run_cli("classify", "--in", recs, "--out", tmp_path / "t.jsonl", "--model", tiny_model_dir, "--revision",
                   "v1", check=False)
    assert proc.returncode == 2 and f"--model {tiny_model_dir} is a local path" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------- datasets: prepare --from X without --in


@pytest.fixture(scope="module")
def dataset_repos(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """The demo exports laid out as each source's hub repository, plus files of the repository no reader needs."""
    from infimmr_cli.data.demo_data import write_demo_exports

    root = tmp_path_factory.mktemp("exports")
    paths = write_demo_exports(root / "raw", n_text=6, n_image=4, n_bench=6)
    decoy = root / "decoy.bin"
    decoy.write_bytes(b"x")
    virl = paths["virl39k"]
    with zipfile.ZipFile(root / "images.zip", "w") as zf:
        for img in sorted((virl / "images").iterdir()):
            zf.write(img, f"images/{img.name}")
    return {
        "deepscaler": {"deepscaler.json": paths["deepscaler"], "README.md": decoy},
        "virl39k": {"39Krelease.parquet": virl / "39Krelease.parquet", "images.zip": root / "images.zip",
                    "README.md": decoy},
        "math500": {"test.jsonl": paths["math500"], "README.md": decoy},
        "mathverse": {"testmini.parquet": paths["mathverse"], "testmini_text_only.parquet": decoy,
                      "images.zip": decoy, "testmini.json": decoy},
        "mathvision": {"data/test-00000-of-00001-abc.parquet": paths["mathvision"],
                       "data/testmini-00000-of-00001-def.parquet": decoy},
        "mathvista": {"data/testmini-00000-of-00001-abc.parquet": paths["mathvista"],
                      "data/test-00000-of-00002.parquet": decoy},
        "olympiadbench": {"OlympiadBench/OE_MM_maths_en_COMP/OE_MM_maths_en_COMP.parquet": paths["olympiadbench"],
                          "OlympiadBench/OE_TO_maths_en_COMP/OE_TO_maths_en_COMP.parquet": decoy},
        "_local": paths,
    }


@pytest.fixture
def data_hub(tmp_path, monkeypatch, dataset_repos) -> FakeHub:
    from infimmr_cli.data.hub_exports import HUB_EXPORTS

    fake = FakeHub(tmp_path / "hf" / "hub", {HUB_EXPORTS[s].repo_id: files for s, files in dataset_repos.items()
                                             if s in HUB_EXPORTS})
    monkeypatch.setattr(hub, "download", fake)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    return fake


SOURCES = ["deepscaler", "virl39k", "math500", "mathverse", "mathvision", "mathvista", "olympiadbench"]


@pytest.mark.parametrize("source", SOURCES)
def test_prepare_without_in_downloads_only_what_the_reader_needs(source, data_hub, dataset_repos, tmp_path):
    from infimmr_cli.commands import prepare
    from infimmr_cli.data.hub_exports import HUB_EXPORTS
    from infimmr_cli.data.records import read_records

    spec = HUB_EXPORTS[source]
    got = prepare.run(source, None, tmp_path / "hub" / f"{source}.jsonl", quiet=True)
    (call,) = data_hub.downloads()
    assert (call["repo_id"], call["repo_type"], call["allow_patterns"]) == (spec.repo_id, "dataset", list(spec.files))
    snap = data_hub.snapshot(spec.repo_id, "dataset", None)
    fetched = sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file())
    needed = sorted(r for r, src in dataset_repos[source].items() if src.name != "decoy.bin")
    assert fetched == needed  # the reader's files, none of the repository's others
    local = dataset_repos["_local"][source]
    ref = prepare.run(source, local, tmp_path / "local" / f"{source}.jsonl", quiet=True)
    assert got.written == ref.written > 0
    hub_recs, local_recs = read_records(got.out), read_records(ref.out)
    assert [(r.id, r.answer, len(r.images)) for r in hub_recs] == [(r.id, r.answer, len(r.images)) for r in local_recs]
    settings = read_provenance(got.out)["settings"]
    assert settings == {"source": source, "repo_id": spec.repo_id, "revision": None, "commit": snap.name}


def test_prepare_passes_the_revision_and_records_it(data_hub, tmp_path):
    from infimmr_cli.commands import prepare

    out = prepare.run("math500", None, tmp_path / "m.jsonl", quiet=True, revision="refs/convert/parquet").out
    assert {c["revision"] for c in data_hub.calls} == {"refs/convert/parquet"}
    settings = read_provenance(out)["settings"]
    commit = data_hub.snapshot("HuggingFaceH4/MATH-500", "dataset", "refs/convert/parquet").name
    assert (settings["revision"], settings["commit"]) == ("refs/convert/parquet", commit)


def test_prepare_reuses_the_cache(data_hub, tmp_path):
    from infimmr_cli.commands import prepare

    prepare.run("virl39k", None, tmp_path / "a" / "v.jsonl", quiet=True)
    data_hub.calls.clear()
    again = prepare.run("virl39k", None, tmp_path / "b" / "v.jsonl", quiet=True)
    assert again.written > 0 and data_hub.calls and data_hub.downloads() == []


def test_prepare_offline_and_not_cached(data_hub, tmp_path, monkeypatch):
    from infimmr_cli.commands import prepare

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError, match=r"^--from mathverse: AI4Math/MathVerse: dataset not found in the local "
                                         r"Hugging Face cache .*HF_HUB_OFFLINE=1"):
        prepare.run("mathverse", None, tmp_path / "m.jsonl", quiet=True)
    assert data_hub.downloads() == [] and not (tmp_path / "m.jsonl").exists()


def test_prepare_with_in_keeps_todays_behaviour(data_hub, dataset_repos, tmp_path):
    from infimmr_cli.commands import prepare

    local = dataset_repos["_local"]["math500"]
    assert prepare.run("math500", local, tmp_path / "m.jsonl", quiet=True).written > 0 and data_hub.calls == []
    assert read_provenance(tmp_path / "m.jsonl")["settings"] == {"source": "math500"}
    with pytest.raises(UsageError, match="^--revision v1: applies to a download"):
        prepare.run("math500", local, tmp_path / "m2.jsonl", quiet=True, revision="v1")


# ---------------------------------------------------------------- the curriculum recipe without RAW


def _recipe(tmp_path: Path, **env: str) -> list[list[str]]:
    """Run recipes/curriculum.sh with a fake `infimmr` that logs its arguments and stops the script after prepare."""
    log = tmp_path / "calls.log"
    fake = tmp_path / "infimmr"
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> "$FAKE_LOG"\n[ "$1" = prepare ] || exit 3\n')
    fake.chmod(0o755)
    base = {k: v for k, v in os.environ.items() if k != "RAW"}
    proc = subprocess.run(["bash", str(REPO / "recipes" / "curriculum.sh")], capture_output=True, text=True,
                          env={**base, "INFIMMR": str(fake), "FAKE_LOG": str(log), "MODEL": "Org/Base",
                               "WORK": str(tmp_path / "work"), **env}, timeout=60)
    assert proc.returncode == 3, proc.stderr  # stopped at classify, after every prepare
    return [line.split() for line in log.read_text().splitlines()]


def test_curriculum_without_raw_prepares_from_the_hub(tmp_path):
    calls = _recipe(tmp_path)
    prepares = [c for c in calls if c[0] == "prepare"]
    assert [c[c.index("--from") + 1] for c in prepares] == SOURCES[:2] + ["math500", "mathverse", "mathvision",
                                                                          "mathvista", "olympiadbench"]
    assert all("--in" not in c for c in prepares)


def test_curriculum_with_raw_reads_the_local_exports(tmp_path):
    calls = _recipe(tmp_path, RAW=str(tmp_path / "raw"))
    prepares = {c[c.index("--from") + 1]: c[c.index("--in") + 1] for c in calls if c[0] == "prepare"}
    assert prepares["deepscaler"] == str(tmp_path / "raw" / "deepscaler")
    assert prepares["mathvista"] == str(tmp_path / "raw" / "bench" / "mathvista")
