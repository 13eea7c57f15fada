"""classify and caption: reply parsing, prompt choice per category, resume after a crash or kill -9, the tiny model."""

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from PIL import Image

from infimmr_cli.commands import caption, classify
from infimmr_cli.commands._vlm_stage import resolve_model
from infimmr_cli.errors import UsageError
from infimmr_cli.curation.prompts import (CAPTION_SYSTEM_PROMPTS, CLASSIFY_INSTRUCTION, IMAGE_TYPES, caption_messages, parse_image_type)
from infimmr_cli.files import partial_path
from infimmr_cli.data.records import read_records
from infimmr_cli.rollout import Completion

from conftest import cli_env, run_cli

FAKE_PROCESSOR = types.SimpleNamespace(image_processor=types.SimpleNamespace(
    min_pixels=56 * 56, max_pixels=112 * 112, patch_size=14, merge_size=2))


class ScriptedEngine:
    """Answers each one-image request with `reply(tag, request)`; the tag is the red value painted into the image."""

    def __init__(self, reply, fail_after_calls=None, delay=0.0):
        self.reply, self.fail_after_calls, self.delay = reply, fail_after_calls, delay
        self.requests, self.calls = [], 0

    def generate(self, requests, sampling):
        if self.fail_after_calls is not None and self.calls >= self.fail_after_calls:
            raise RuntimeError("engine crashed")
        self.calls += 1
        time.sleep(self.delay)
        self.requests.extend(requests)
        self.sampling = sampling
        out = []
        for r in requests:
            assert len(r.images) == 1
            text = self.reply(r.images[0].getpixel((0, 0))[0], r)
            reason = "length" if text.endswith("...") else "stop"
            out.append([Completion(text=text, token_ids=[1], finish_reason=reason)])
        return out


def factory(engine):
    return lambda: (engine, FAKE_PROCESSOR)


def make_records(folder: Path, specs, **fields) -> Path:
    """specs: (id, [image tags]) -> records.jsonl with one PNG per tag (red channel = tag), text-only when empty."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    lines = []
    for rid, tags in specs:
        paths = []
        for k, tag in enumerate(tags):
            Image.new("RGB", (64 + 7 * k, 60), (tag, 90, 160)).save(folder / "img" / f"{rid}_{k}.png")
            paths.append(f"img/{rid}_{k}.png")
        rec = {"id": rid, "source": "t", "question": f"Question {rid}?", "answer": "1", "answer_type": "math",
               "images": paths, "meta": {"keep": rid}}
        rec.update(fields.get(rid, {}))
        lines.append(json.dumps(rec))
    path = folder / "records.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


# ---- parsing and the record-level rule ---------------------------------------------------------------------------
@pytest.mark.parametrize("reply, expected", [
    ("chart", "chart"), ("Chart.", "chart"), (" **MathGeo**\n", "mathgeo"), ("math-geo", "mathgeo"),
    ("TABLE!", "table"), ("'ocr'", "ocr"), ("AIGC", "aigc"),
    ("It is a chart", None), ("pie chart", None), ("chart, table", None), ("", None), ("diagram", None),
])
def test_reply_parsing_tolerates_case_and_punctuation_only(reply, expected):
    assert parse_image_type(reply) == expected


@pytest.mark.parametrize("types_, expected", [
    ([], None), (["other", "chart"], "chart"), (["chart", "table", "table"], "table"), (["table", "chart"], "table"),
    (["other", "other"], "other"), (["gui"], "gui"),
])
def test_record_type_is_most_frequent_concrete_type_ties_to_first(types_, expected):
    assert classify.record_image_type(types_) == expected


def test_classify_instruction_defines_every_category_once():
    lines = [ln for ln in CLASSIFY_INSTRUCTION.splitlines() if ln.startswith("- ")]
    assert [ln[2:].split(":")[0] for ln in lines] == list(IMAGE_TYPES)
    assert all(len(ln.split(": ", 1)[1]) > 10 for ln in lines)


# ---- classify with a scripted engine -----------------------------------------------------------------------------
def test_classify_types_each_image_and_keeps_unparsed_replies(tmp_path):
    replies = {1: "Chart.", 2: "table", 3: "The picture shows a chart", 4: "TABLE", 5: "no idea"}
    src = make_records(tmp_path, [("a", [1]), ("b", [2, 3, 4]), ("t", []), ("u", [5])])
    engine = ScriptedEngine(lambda tag, req: replies[tag])
    out = classify.run(src, tmp_path / "typed.jsonl", engine_factory=factory(engine), batch_size=3)
    recs = {r.id: r for r in read_records(out)}
    assert recs["a"].image_type == "chart" and recs["a"].meta == {"keep": "a", "image_types": ["chart"]}
    assert recs["b"].image_type == "table" and recs["b"].meta["image_types"] == ["table", "other", "table"]
    assert recs["b"].meta["image_type_raw"] == [None, "The picture shows a chart", None]
    assert recs["t"].image_type is None and "image_types" not in recs["t"].meta
    assert recs["u"].image_type == "other" and recs["u"].meta["image_type_raw"] == ["no idea"]
    assert len(engine.requests) == 5 and engine.sampling.greedy
    for req in engine.requests:
        content = req.messages[-1]["content"]
        assert [c["type"] for c in content] == ["image", "text"] and content[1]["text"] == CLASSIFY_INSTRUCTION


# ---- caption with a scripted engine ------------------------------------------------------------------------------
def test_caption_prompt_per_category_asks_for_what_a_solver_needs():
    expect = {"mathgeo": ["points", "labels", "length", "angle"], "chart": ["axes", "series", "values"],
              "table": ["headers", "cell"], "equation": ["LaTeX"], "ocr": ["verbatim"], "gui": ["buttons"],
              "natural": ["short factual"], "aigc": ["short factual"], "other": ["short factual"]}
    assert set(CAPTION_SYSTEM_PROMPTS) == set(IMAGE_TYPES) == set(expect)
    for name, words in expect.items():
        prompt = caption_messages(name)[0]["content"][0]["text"]
        assert all(w in prompt for w in words) and "do not invent" in prompt, name


def test_caption_uses_each_image_type_prompt_and_joins_multi_image_captions(tmp_path):
    specs = [(t, [10 + k]) for k, t in enumerate(IMAGE_TYPES)] + [("multi", [40, 41]), ("text", [])]
    fields = {t: {"image_type": t} for t in IMAGE_TYPES}
    fields["multi"] = {"image_type": "table", "meta": {"image_types": ["chart", "table"]}}
    src = make_records(tmp_path, specs, **fields)
    engine = ScriptedEngine(lambda tag, req: f"  caption {tag}  ")
    out = caption.run(src, tmp_path / "cap.jsonl", engine_factory=factory(engine), batch_size=4)
    recs = {r.id: r for r in read_records(out)}
    for k, t in enumerate(IMAGE_TYPES):
        assert recs[t].caption == f"caption {10 + k}"
    assert recs["multi"].caption == "Image 1: caption 40\nImage 2: caption 41"
    assert recs["text"].caption is None
    used = {req.images[0].getpixel((0, 0))[0]: req.messages[0]["content"][0]["text"] for req in engine.requests}
    for k, t in enumerate(IMAGE_TYPES):
        assert used[10 + k] == CAPTION_SYSTEM_PROMPTS[t]
    assert (used[40], used[41]) == (CAPTION_SYSTEM_PROMPTS["chart"], CAPTION_SYSTEM_PROMPTS["table"])
    assert engine.sampling.greedy and engine.sampling.repetition_penalty == 1.2


def test_empty_and_truncated_captions_are_marked(tmp_path):
    src = make_records(tmp_path, [("e", [1]), ("l", [2])], e={"image_type": "chart"}, l={"image_type": "ocr"})
    engine = ScriptedEngine(lambda tag, req: {1: "  ", 2: "a long text..."}[tag])
    recs = {r.id: r for r in read_records(caption.run(src, tmp_path / "c.jsonl", engine_factory=factory(engine)))}
    assert recs["e"].caption is None and recs["e"].meta["caption_error"] == "empty reply for image 1"
    assert recs["l"].caption == "a long text..." and recs["l"].meta["caption_truncated"] is True


def test_caption_without_image_type_fails_before_any_work(tmp_path):
    src = make_records(tmp_path, [("a", [1]), ("b", [2])], a={"image_type": "chart"})
    engine = ScriptedEngine(lambda tag, req: "x")
    out = tmp_path / "c.jsonl"
    with pytest.raises(UsageError, match="1 image records have none \\(first id 'b'\\); run `infimmr classify` first"):
        caption.run(src, out, engine_factory=factory(engine))
    assert engine.calls == 0 and not out.exists() and not partial_path(out).exists()


def test_output_written_into_another_folder_needs_the_flag_to_be_read_again(tmp_path):
    from infimmr_cli.data.records import RecordError

    src = make_records(tmp_path / "data", [("a", [1])])
    typed = classify.run(src, tmp_path / "out" / "typed.jsonl",
                         engine_factory=factory(ScriptedEngine(lambda tag, req: "ocr")))
    assert read_records(typed, allow_outside=True)[0].images == ["../data/img/a_0.png"]
    with pytest.raises(RecordError, match="leaves the data folder"):
        caption.run(typed, tmp_path / "data" / "cap.jsonl", engine_factory=factory(ScriptedEngine(lambda t, r: "x")))
    out = caption.run(typed, tmp_path / "data" / "cap.jsonl", allow_outside_images=True,
                      engine_factory=factory(ScriptedEngine(lambda tag, req: "text")))
    assert read_records(out)[0].caption == "text"


# ---- resume ------------------------------------------------------------------------------------------------------
def test_a_crash_mid_run_resumes_without_duplicates_or_losses(tmp_path):
    ids = [f"r{k}" for k in range(7)]
    src = make_records(tmp_path, [(rid, [k + 1]) for k, rid in enumerate(ids)])
    out = tmp_path / "typed.jsonl"
    crashing = ScriptedEngine(lambda tag, req: "chart", fail_after_calls=2)
    with pytest.raises(RuntimeError, match="engine crashed"):
        classify.run(src, out, engine_factory=factory(crashing), batch_size=2)
    assert not out.exists() and len(partial_path(out).read_text().splitlines()) == 4
    second = ScriptedEngine(lambda tag, req: "table")
    classify.run(src, out, engine_factory=factory(second), batch_size=2)
    assert sorted(r.images[0].getpixel((0, 0))[0] for r in second.requests) == [5, 6, 7]
    recs = read_records(out)
    assert [r.id for r in recs] == ids and [r.image_type for r in recs] == ["chart"] * 4 + ["table"] * 3
    assert not partial_path(out).exists()
    third = ScriptedEngine(lambda tag, req: "gui")
    classify.run(src, out, engine_factory=factory(third), limit=5)  # complete already: nothing regenerated
    assert third.calls == 0 and [r.id for r in read_records(out)] == ids


KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_classify_caption import ScriptedEngine, factory
from infimmr_cli.commands import classify
engine = ScriptedEngine(lambda tag, req: "mathgeo", delay=0.25)
classify.run({src!r}, {out!r}, engine_factory=factory(engine), batch_size=1)
"""


def test_kill_9_mid_run_then_rerun_finishes_with_every_record_once(tmp_path):
    ids = [f"r{k}" for k in range(12)]
    src = make_records(tmp_path, [(rid, [k + 1]) for k, rid in enumerate(ids)])
    out = tmp_path / "typed.jsonl"
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent), src=str(src), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    part = partial_path(out)
    deadline = time.time() + 60
    while time.time() < deadline and (not part.exists() or len(part.read_text().splitlines()) < 3):
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    kept = [json.loads(line)["id"] for line in part.read_text().splitlines() if line.endswith("}")]
    assert 3 <= len(kept) < 12
    with part.open("a") as fh:  # what a kill in the middle of a write leaves
        fh.write('{"id": "r11", "source": "t", "quest')
    rerun = ScriptedEngine(lambda tag, req: "chart")
    classify.run(src, out, engine_factory=factory(rerun), batch_size=4)
    recs = read_records(out)
    assert [r.id for r in recs] == ids
    assert len(rerun.requests) == 12 - len(kept)
    assert {r.id for r in recs if r.image_type == "mathgeo"} == set(kept)


# ---- model lookup ------------------------------------------------------------------------------------------------
def test_hub_id_resolves_from_the_local_cache_when_offline(tmp_path, tiny_model_dir, monkeypatch):
    import shutil

    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no hub here: online, a missing id would be downloaded (test_hub.py)
    with pytest.raises(UsageError, match="Org/Tiny: not found in the local Hugging Face cache"):
        resolve_model("Org/Tiny")
    repo = tmp_path / "hub" / "models--Org--Tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    shutil.copytree(tiny_model_dir, repo / "snapshots" / "abc123")
    assert resolve_model("Org/Tiny") == repo / "snapshots" / "abc123"
    assert resolve_model(tiny_model_dir) == tiny_model_dir
    with pytest.raises(UsageError, match="model directory not found"):
        resolve_model(tmp_path / "no" / "such" / "dir")


# ---- the tiny model, end to end through the CLI ------------------------------------------------------------------
def talking_tiny_model(tiny_model_dir, folder: Path) -> Path:
    """The tiny model with the newline embedding zeroed. With tied random embeddings it otherwise repeats the prompt's
    last token ("\n") forever, so every greedy caption would be blank (and correctly refused as empty)."""
    import shutil

    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    path = Path(shutil.copytree(tiny_model_dir, folder))
    newline = AutoTokenizer.from_pretrained(path).encode("\n")
    weights = load_file(path / "model.safetensors")
    key = next(k for k in weights if k.endswith("embed_tokens.weight"))
    weights[key][newline] = 0
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    return path


@pytest.mark.slow
def test_tiny_model_classifies_and_captions_end_to_end(tmp_path, tiny_model_dir):
    tiny_model_dir = talking_tiny_model(tiny_model_dir, tmp_path / "model")
    src = make_records(tmp_path / "data", [("one", [1]), ("two", [2, 3]), ("txt", [])])
    # classify writes into another folder (image paths become ../data/...); caption reads that with the flag and
    # writes beside the data again, where the default reader accepts the paths.
    typed, captioned = tmp_path / "out" / "typed.jsonl", tmp_path / "data" / "captioned.jsonl"
    proc = run_cli("classify", "--in", src, "--out", typed, "--model", tiny_model_dir, "--engine", "hf",
                   "--batch-size", "2", "--max-new-tokens", "4")
    assert "classify" in proc.stdout and "records" in proc.stdout
    run_cli("caption", "--in", typed, "--out", captioned, "--model", tiny_model_dir, "--engine", "hf",
            "--max-new-tokens", "6", "--allow-outside-images")
    recs = {r.id: r for r in read_records(captioned)}  # validates every line and that the images resolve
    assert set(recs) == {"one", "two", "txt"}
    for rid in ("one", "two"):
        assert recs[rid].image_type in IMAGE_TYPES and len(recs[rid].meta["image_types"]) == len(recs[rid].images)
        assert recs[rid].caption
    assert recs["two"].caption.startswith("Image 1: ")
    assert recs["txt"].image_type is None and recs["txt"].caption is None
    again = run_cli("caption", "--in", typed, "--out", captioned, "--model", tiny_model_dir, "--engine", "hf",
                    "--max-new-tokens", "6", "--allow-outside-images")  # the same settings (others are refused)
    assert "nothing to do" in again.stdout


def test_without_out_the_stages_write_beside_the_input_named_after_the_stage(tmp_path):
    from infimmr_cli.commands._vlm_stage import default_out

    assert default_out(tmp_path / "virl39k.jsonl", "classify") == tmp_path / "virl39k.typed.jsonl"
    assert default_out(tmp_path / "virl39k.typed.jsonl", "caption") == tmp_path / "virl39k.captioned.jsonl"
    src = make_records(tmp_path, [("a", [1]), ("t", [])])
    typed = classify.run(src, None, engine_factory=factory(ScriptedEngine(lambda tag, req: "chart")))
    assert typed == src.with_name(src.name[:-len(".jsonl")] + ".typed.jsonl") and typed.is_file()
    captioned = caption.run(typed, None, engine_factory=factory(ScriptedEngine(lambda tag, req: "A bar chart.")))
    assert captioned.name == src.name[:-len(".jsonl")] + ".captioned.jsonl"
    assert {r.id: r.caption for r in read_records(captioned)} == {"a": "A bar chart.", "t": None}
