"""Decontamination: planted leaks must be caught by the stage that owns them, and nothing else may be removed."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from infimmr_cli.commands import decontam
from infimmr_cli.curation.embeddings import (EmbedItem, EmbeddingCache, GMEEmbedder, above, best_matches, build_prompt,
                                    content_key, embed_all)
from infimmr_cli.modeling import TinySizes
from infimmr_cli.errors import UsageError
from infimmr_cli.curation.ngrams import BenchIndex, build_index, exact_key, naive_pair_match, word_ngrams, words

# 40 distinct words: any 32-word window of it is a 32-gram no filler sentence contains.
SOURCE = ("a triangle abc has sides of length seven and nine while the angle between them measures sixty degrees "
          "so compute the exact area of the triangle then give the radius of its circumscribed circle in simplest "
          "radical form").split()
FILLER = "consider the following problem carefully before answering it".split()


def text(ws: list[str]) -> str:
    return " ".join(ws)


# ---------------------------------------------------------------- pure text rules


def test_words_lowercase_whitespace_split_keeps_punctuation():
    assert words("  What IS\n\t the value of x?  ") == ["what", "is", "the", "value", "of", "x?"]


def test_exact_key_drops_non_word_then_digits_then_lowercases():
    assert exact_key("Find x, if 2x = 14.") == "findxifx"
    # \w keeps letters of any script and the underscore; the digit goes after the symbols.
    assert exact_key("α_1 + Β") == "α_β"


def test_word_ngrams_count_and_order():
    grams = list(word_ngrams(SOURCE[:35], 32))
    assert len(grams) == 4
    assert grams[0] == tuple(SOURCE[:32]) and grams[-1] == tuple(SOURCE[3:35])
    assert list(word_ngrams(SOURCE[:31], 32)) == []


def test_32_word_copy_inside_longer_question_is_caught():
    index = build_index([("b1", text(SOURCE))])
    planted = text(FILLER + SOURCE[5:37] + FILLER)  # exactly 32 benchmark words, surrounded by other words
    hit = index.match(planted)
    assert hit is not None and hit.stage == "ngram" and hit.bench == 0
    assert hit.evidence == text(SOURCE[5:37])
    assert naive_pair_match(planted, text(SOURCE)) == "ngram"


def test_31_word_overlap_is_not_caught():
    index = build_index([("b1", text(SOURCE))])
    planted = text(FILLER + SOURCE[5:36] + FILLER)
    assert index.match(planted) is None
    assert naive_pair_match(planted, text(SOURCE)) is None


def test_case_and_spacing_do_not_hide_a_copy_but_punctuation_is_part_of_a_word():
    index = build_index([("b1", text(SOURCE))])
    assert index.match("Intro:\n" + "  ".join(SOURCE[:32]).upper()).stage == "ngram"
    changed = list(SOURCE[:32])
    changed[16] = changed[16] + ","
    assert index.match(text(FILLER + changed + FILLER)) is None


def test_copy_with_changed_numbers_is_caught_by_the_exact_rule():
    bench = "In triangle ABC, AB = 3 and BC = 4; the angle B is 90 degrees. Find AC."
    index = build_index([("other", "An unrelated question about primes."), ("b2", bench)])
    hit = index.match("In triangle abc, AB=12 and BC=35; the angle B is 90 degrees.  Find AC!")
    assert hit is not None and hit.stage == "exact" and hit.bench == 1
    assert hit.evidence == "intriangleabcabandbctheanglebisdegreesfindac"


def test_short_texts_are_compared_whole_not_by_containment():
    index = build_index([("b1", "What is the value of x?")])
    assert index.match("what   is the VALUE of x?").stage == "exact"  # the exact rule is checked first
    assert index.match(text(FILLER) + " What is the value of x?") is None
    # The whole-text rule on its own (exact rule emptied): equal word sequences match, labelled ngram.
    whole = BenchIndex()
    whole.add("b1", "What is 2+2?")
    whole.keys.clear()
    whole.raws.clear()
    hit = whole.match("what IS 2+2?")
    assert hit is not None and hit.stage == "ngram" and hit.evidence == "what is 2+2?"


def test_empty_and_symbol_only_questions_do_not_pair_unrelated_items():
    index = build_index([("b1", ""), ("b2", "12 + 7 = ?")])
    assert index.match("") is None
    assert index.match("   ") is None
    assert index.match("3 * 4 = ?") is None  # empty exact key on both sides: not a match
    assert index.match("12 + 7 = ?").stage == "exact"  # raw equality still counts


def test_a_hash_collision_cannot_remove_an_item():
    index = build_index([("b1", text(SOURCE))])
    stranger = tuple(f"w{i}" for i in range(32))
    index.grams[hash(stranger)] = (0, 0)  # pretend the stranger's 32-gram collides with the benchmark's first one
    assert index.match(text(stranger)) is None


def test_index_agrees_with_the_naive_per_pair_rule():
    rng = random.Random(7)
    vocab = [f"v{i}" for i in range(60)]
    bench = [text([rng.choice(vocab) for _ in range(rng.randint(20, 60))]) for _ in range(30)]
    train = []
    for k in range(80):
        ws = [rng.choice(vocab) for _ in range(rng.randint(10, 70))]
        if k % 4 == 0:  # plant a copy of 30-34 words from a random benchmark item
            src = words(rng.choice(bench))
            span = min(len(src), rng.randint(30, 34))
            ws[3:3] = src[:span]
        train.append(text(ws))
    index = build_index((str(i), b) for i, b in enumerate(bench))
    for t in train:
        got = index.match(t)
        naive = [naive_pair_match(t, b) for b in bench]
        assert (got is not None) == any(naive)
        if got is not None:
            assert naive[got.bench] is not None


# ---------------------------------------------------------------- embedding pieces


def test_gme_prompt_puts_images_first_and_ends_with_endoftext():
    assert build_prompt("Find x.", 1) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|image_pad|><|vision_end|>Find x.<|im_end|>\n<|im_start|>assistant\n<|endoftext|>")
    assert "<|vision_start|>" not in build_prompt("Find x.", 0)


def test_best_matches_by_hand_in_chunks():
    train = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, -1.0]], dtype=np.float32)
    bench = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    best, arg = best_matches(train, bench, chunk=2)
    assert best.tolist() == pytest.approx([1.0, 0.8, 0.0])
    assert arg.tolist() == [1, 0, 1]  # the last row ties at 0.0: the first maximum wins


def test_threshold_is_strict():
    sims = np.array([0.6, 0.8], dtype=np.float32)
    assert above(sims, 0.6).tolist() == [False, True]
    assert above(sims, 0.59).tolist() == [True, True]
    assert above(sims, 0.8).tolist() == [False, False]


class FakeEmbedder:
    """Vectors chosen by the test: `table` maps a content label (image file name, else the text) to a 2-D vector."""

    identity = "fake-v1"

    def __init__(self, table: dict[str, list[float]]):
        self.table = table
        self.calls = 0
        self.items = 0

    def embed(self, items):
        self.calls += 1
        self.items += len(items)
        return np.array([self.table[it.images[0].name if it.images else it.text] for it in items], dtype=np.float32)


def png(path: Path, color: tuple[int, int, int], size=(60, 40)) -> Path:
    im = Image.new("RGB", size, color)
    im.putpixel((3, 3), (0, 255, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return path


def rec(rid: str, question: str, source: str = "train", images: list[str] | None = None) -> dict:
    return {"id": rid, "source": source, "question": question, "answer": "1", "answer_type": "math",
            "choices": None, "images": images or [], "image_type": None, "caption": None, "meta": {"k": rid}}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def leaky(tmp_path):
    """A benchmark with one image item and one text item, and training data with one planted leak per stage."""
    png(tmp_path / "bench/img/geo.png", (255, 0, 0))
    png(tmp_path / "train/img/geo_copy.png", (255, 0, 0))  # the same picture, saved under another name
    png(tmp_path / "train/img/other.png", (0, 0, 255))
    bench = write_jsonl(tmp_path / "bench/mv.jsonl", [
        rec("mv-1", "In the figure, find the measure of angle ABC.", "mathverse", ["img/geo.png"]),
        rec("mv-2", text(SOURCE), "mathverse"),
    ])
    bench2 = write_jsonl(tmp_path / "bench/m5.jsonl", [rec("m5-1", "If 3x + 5 = 20, what is x?", "math500")])
    train = write_jsonl(tmp_path / "train/train.jsonl", [
        rec("t-ok", "A fresh question about circles and chords.", images=["img/other.png"]),
        rec("t-ngram", text(FILLER + SOURCE[2:34])),
        rec("t-exact", "if 7x + 1 = 50, what is x?"),
        rec("t-embed", "Determine angle ABC as drawn.", images=["img/geo_copy.png"]),
        rec("t-text", "Completely unrelated words here."),
    ])
    table = {"geo.png": [1.0, 0.0, 0.0], "geo_copy.png": [0.96, 0.28, 0.0], "other.png": [0.0, 1.0, 0.0],
             text(SOURCE): [0.0, 0.0, 1.0], "If 3x + 5 = 20, what is x?": [0.0, 0.6, 0.8],
             "if 7x + 1 = 50, what is x?": [0.0, 0.8, 0.6],
             "Completely unrelated words here.": [0.6, 0.0, 0.8]}
    return tmp_path, train, [bench, bench2], table


def test_image_duplicate_with_reworded_text_is_caught_by_embeddings(leaky):
    tmp, train, benches, table = leaky
    fake = FakeEmbedder(table)
    result = decontam.run(train, benches, tmp / "out/clean.jsonl", tmp / "out/removed.jsonl", embedder=fake,
                          cache=tmp / "cache")
    removed = {r["id"]: r for r in read_jsonl(tmp / "out/removed.jsonl")}
    assert set(removed) == {"t-ngram", "t-exact", "t-embed"}
    assert removed["t-ngram"]["stage"] == "ngram" and removed["t-ngram"]["bench_id"] == "mv-2"
    assert removed["t-ngram"]["evidence"] == text(SOURCE[2:34])
    assert removed["t-exact"]["stage"] == "exact" and removed["t-exact"]["bench_source"] == "math500"
    e = removed["t-embed"]
    assert e["stage"] == "embedding" and e["bench_id"] == "mv-1" and e["bench_source"] == "mathverse"
    assert e["similarity"] == pytest.approx(0.96, abs=1e-6)
    assert result["by_source"]["mathverse"] == {"exact": 0, "ngram": 1, "embedding": 1}
    assert result["by_source"]["math500"] == {"exact": 1, "ngram": 0, "embedding": 0}
    assert [r["id"] for r in read_jsonl(tmp / "out/clean.jsonl")] == ["t-ok", "t-text"]
    # Stage 2 embeds the 3 benchmark items and only the 3 training items stage 1 kept.
    assert fake.items == 6


def test_similarity_equal_to_threshold_is_kept(leaky):
    tmp, train, benches, table = leaky
    table = dict(table, **{"geo_copy.png": [0.6, 0.8, 0.0]})  # cosine with geo.png exactly 0.6 (in float32)
    decontam.run(train, benches, tmp / "o/c.jsonl", tmp / "o/r.jsonl", embedder=FakeEmbedder(table), threshold=0.6,
                 cache=tmp / "cache")
    assert "t-embed" not in {r["id"] for r in read_jsonl(tmp / "o/r.jsonl")}
    decontam.run(train, benches, tmp / "o/c.jsonl", tmp / "o/r.jsonl", embedder=FakeEmbedder(table), threshold=0.59,
                 cache=tmp / "cache2")
    assert "t-embed" in {r["id"] for r in read_jsonl(tmp / "o/r.jsonl")}


def test_cache_is_reused_and_a_new_benchmark_costs_only_its_items(leaky):
    tmp, train, benches, table = leaky
    first = FakeEmbedder(table)
    decontam.run(train, benches[:1], tmp / "o/c.jsonl", tmp / "o/r.jsonl", embedder=first, cache=tmp / "cache")
    again = FakeEmbedder(table)
    result = decontam.run(train, benches[:1], tmp / "o/c.jsonl", tmp / "o/r.jsonl", embedder=again,
                          cache=tmp / "cache")
    assert again.calls == 0 and result["embedding"]["embedded"] == 0
    more = FakeEmbedder(table)
    result = decontam.run(train, benches, tmp / "o/c.jsonl", tmp / "o/r.jsonl", embedder=more, cache=tmp / "cache")
    assert more.items == 1  # only the new benchmark's one item; t-exact is now removed by stage 1 and never embedded


def test_cache_keys_follow_content_not_paths(tmp_path):
    a = png(tmp_path / "a.png", (10, 20, 30))
    b = png(tmp_path / "sub/b.png", (10, 20, 30))
    c = png(tmp_path / "c.png", (10, 20, 31))
    assert content_key(EmbedItem("q", (a,)), "m") == content_key(EmbedItem("q", (b,)), "m")
    assert content_key(EmbedItem("q", (a,)), "m") != content_key(EmbedItem("q", (c,)), "m")
    assert content_key(EmbedItem("q", (a,)), "m") != content_key(EmbedItem("q", (a,)), "other-model")
    assert content_key(EmbedItem("q", (a,)), "m") != content_key(EmbedItem("q ", (a,)), "m")


def test_embed_all_dedupes_and_survives_a_reload(tmp_path):
    fake = FakeEmbedder({"x": [1.0, 0.0], "y": [0.0, 1.0]})
    items = [EmbedItem("x"), EmbedItem("y"), EmbedItem("x"), EmbedItem("")]
    vecs, stats = embed_all(fake, items, EmbeddingCache(tmp_path / "c"), batch_size=1, flush_every=1)
    assert vecs.tolist() == [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
    assert (stats.computed, stats.skipped_empty, fake.items) == (2, 1, 2)
    reloaded = EmbeddingCache(tmp_path / "c")
    assert len(reloaded) == 2 and len(list((tmp_path / "c").glob("shard-*.npz"))) == 2


def test_usage_errors(leaky):
    tmp, train, benches, _ = leaky
    with pytest.raises(UsageError, match="--embed-model"):
        decontam.run(train, benches, tmp / "c.jsonl", tmp / "r.jsonl")
    with pytest.raises(UsageError, match="--threshold"):
        decontam.run(train, benches, tmp / "c.jsonl", tmp / "r.jsonl", no_embedding=True, threshold=1.5)
    assert not (tmp / "c.jsonl").exists()


# ---------------------------------------------------------------- the tiny model as the embedder


def test_tiny_gme_pooling_ignores_right_padding(tiny_model_dir, tmp_path):
    emb = GMEEmbedder(tiny_model_dir)
    img = png(tmp_path / "p.png", (200, 30, 30))
    short = EmbedItem("Find x.", (img,))
    long = EmbedItem("A much longer question text that pads the short one on the right when batched together.")
    alone = emb.embed([short])
    batched = emb.embed([short, long])
    assert batched.shape == (2, TinySizes().hidden)
    assert np.linalg.norm(batched, axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)
    assert np.abs(alone[0] - batched[0]).max() < 1e-5


def test_cli_tiny_model_end_to_end(tiny_model_dir, leaky):
    tmp, train, benches, _ = leaky
    args = ["decontam", "--train", train, "--bench", benches[0], "--bench", benches[1], "--out", tmp / "out/clean.jsonl",
            "--removed", tmp / "out/removed.jsonl", "--embed-model", tiny_model_dir, "--batch-size", "2"]
    proc = run_cli(*args)
    removed = {r["id"]: r for r in read_jsonl(tmp / "out/removed.jsonl")}
    assert removed["t-ngram"]["stage"] == "ngram" and removed["t-exact"]["stage"] == "exact"
    # The same red picture with reworded text: with a random tiny model the image still dominates the vector.
    assert removed["t-embed"]["stage"] == "embedding" and removed["t-embed"]["bench_id"] == "mv-1"
    assert removed["t-embed"]["similarity"] > 0.95
    assert "t-ok" not in removed
    assert (tmp / "out/.infimmr-embed-cache").is_dir()
    assert "embedded 6 new" in proc.stdout.replace("\n", " ")
    proc = run_cli(*args)
    assert "embedded 0 new, 6 from cache" in proc.stdout.replace("\n", " ")


def test_cli_text_stage_only_keeps_records_untouched(leaky):
    tmp, train, benches, _ = leaky
    out = tmp / "elsewhere/clean.jsonl"
    proc = run_cli("decontam", "--train", train, "--bench", benches[0], "--bench", benches[1], "--out", out,
                   "--removed", tmp / "elsewhere/removed.jsonl", "--no-embedding")
    assert "mathverse" in proc.stdout and "math500" in proc.stdout
    kept = read_jsonl(out)
    originals = {r["id"]: r for r in read_jsonl(train)}
    assert [r["id"] for r in kept] == ["t-ok", "t-embed", "t-text"]
    for r in kept:
        want = dict(originals[r["id"]])
        # Image paths are rebased to the output's folder and still point at the same files.
        want["images"] = [str(Path("../train") / p) for p in want["images"]]
        assert r == want
        assert all((out.parent / p).is_file() for p in r["images"])
    assert {r["stage"] for r in read_jsonl(tmp / "elsewhere/removed.jsonl")} == {"ngram", "exact"}


def test_cli_without_embed_model_fails_clearly(leaky):
    tmp, train, benches, _ = leaky
    proc = run_cli("decontam", "--train", train, "--bench", benches[0], "--out", tmp / "c.jsonl", "--removed",
                   tmp / "r.jsonl", check=False)
    assert proc.returncode == 2
    assert "--embed-model" in proc.stderr and "--no-embedding" in proc.stderr and "Traceback" not in proc.stderr


def test_model_identity_follows_weights_not_location(tiny_model_dir, tmp_path):
    import shutil

    from infimmr_cli.curation.embeddings import model_identity

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    assert model_identity(copy) == model_identity(tiny_model_dir)
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    assert model_identity(copy) != model_identity(tiny_model_dir)


def test_both_outputs_carry_a_provenance_record(leaky):
    from rich.console import Console

    from infimmr_cli.provenance import read_provenance

    tmp, train, benches, _ = leaky
    decontam.run(train, benches, tmp / "out/clean.jsonl", tmp / "out/removed.jsonl", no_embedding=True,
                 console=Console(quiet=True))
    for name in ("clean.jsonl", "removed.jsonl"):
        rec = read_provenance(tmp / "out" / name)
        assert rec["command"] == "decontam" and rec["output"] == name and rec["results"]["removed"] == 2
        assert rec["inputs"]["train"]["path"] == str(train.resolve()) and len(rec["inputs"]["bench[1]"]["sha256"]) == 64
