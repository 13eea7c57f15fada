"""Benchmark of `infimmr decontam`: the text stage against a per-pair check of the same rule, measured in the same run.

    OMP_NUM_THREADS=2 python bench/decontam.py            # 40K training x 10K benchmark items, tiny-model embeddings

Stage 1 (exact key + word 32-grams, ngrams.BenchIndex) runs over all items; the per-pair baselines run on a random sample
of pairs and are extrapolated to all train x bench pairs:
- naive: ngrams.naive_pair_match, everything recomputed per pair (what a double loop over two files does);
- precomputed: each item's n-gram set and exact key built once, then one set-disjointness test and one key comparison
  per pair (the best a pairwise method can do).
Planted leaks (copied 32-40 word spans, copies with the numbers changed) must all be found, and nothing else removed.
Then the CLI end to end with --no-embedding (JSON in and out), the chunked 40K x 10K cosine at GME's width (1536), and
embedding throughput of the tiny Qwen2.5-VL through the GME input path (items/s; cached items/s on a second pass).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from infimmr_cli.curation.ngrams import build_index, exact_key, naive_pair_match, word_ngrams, words  # noqa: E402

STEMS = ("triangle circle angle side length area radius chord tangent point line segment value sum product ratio "
         "function graph slope intercept probability integer prime number digit square cube root equation solution "
         "figure shown below find compute determine what which how many if then let given that is are of the a an in "
         "on at to and or with from by for each every both only least most greater less equal parallel perpendicular "
         "rectangle polygon vertex edge face volume surface cylinder cone sphere table chart bar price cost speed "
         "time distance rate percent mean median mode interval").split()


def make_vocab(rng: random.Random, size: int = 4000) -> list[str]:
    """Math-flavoured words plus suffixed variants and a few numbers: a long tail, like real questions."""
    vocab = list(STEMS)
    while len(vocab) < size:
        vocab.append(rng.choice(STEMS) + rng.choice(["s", "ed", "ing", "'s", ",", ".", "?", ""]) + str(rng.randint(0, 99))
                     if rng.random() < 0.3 else rng.choice(STEMS) + rng.choice(["s", "ed", "ing", ",", ".", "?", ":"]))
    return vocab


def question(rng: random.Random, vocab: list[str], weights: list[float]) -> str:
    n = rng.randint(30, 120)
    ws = rng.choices(vocab, weights=weights, k=n)
    for k in rng.sample(range(n), k=min(n, 4)):  # numbers, so the exact rule has digits to ignore
        ws[k] = str(rng.randint(1, 500))
    return " ".join(ws)


def make_data(n_train: int, n_bench: int, n_plant: int, seed: int):
    rng = random.Random(seed)
    vocab = make_vocab(rng)
    weights = [1.0 / (i + 1) ** 0.9 for i in range(len(vocab))]  # Zipf-like: common words dominate
    bench = [question(rng, vocab, weights) for _ in range(n_bench)]
    train = [question(rng, vocab, weights) for _ in range(n_train)]
    planted: dict[int, str] = {}
    long_enough = [b for b, q in enumerate(bench) if len(q.split()) >= 32]  # shorter ones have no 32-gram to copy
    for k, i in enumerate(rng.sample(range(n_train), 2 * n_plant)):
        b = rng.choice(long_enough) if k % 2 == 0 else rng.randrange(n_bench)
        if k % 2 == 0:  # a 32-40 word span of a benchmark question inside a training question
            src = words(bench[b])
            span = min(len(src), rng.randint(32, 40))
            s = rng.randint(0, len(src) - span)
            ws = train[i].split()
            ws[len(ws) // 2:len(ws) // 2] = src[s:s + span]
            train[i] = " ".join(ws)
            planted[i] = "ngram"
        else:  # the benchmark question with every number changed
            train[i] = " ".join(str(int(w) + 1) if w.isdigit() else w for w in bench[b].split())
            planted[i] = "exact"
    return train, bench, planted


def stage1(train: list[str], bench: list[str]) -> tuple[float, dict[int, str]]:
    t = time.perf_counter()
    index = build_index((str(i), q) for i, q in enumerate(bench))
    found = {}
    for i, q in enumerate(train):
        hit = index.match(q)
        if hit is not None:
            found[i] = hit.stage
    return time.perf_counter() - t, found


def naive_per_pair(train, bench, pairs) -> float:
    t = time.perf_counter()
    for i, j in pairs:
        naive_pair_match(train[i], bench[j])
    return (time.perf_counter() - t) / len(pairs)


def precomputed_per_pair(train, bench, pairs) -> tuple[float, float]:
    """(seconds to precompute every item's n-gram set and key, seconds per pair)."""
    t = time.perf_counter()
    # Integer hashes, not the tuples: a tuple re-hashes its 32 words on every lookup.
    feats = lambda q: (frozenset(map(hash, word_ngrams(words(q)))), exact_key(q), q.strip())  # noqa: E731
    tf = [feats(q) for q in train]
    bf = [feats(q) for q in bench]
    prep = time.perf_counter() - t
    t = time.perf_counter()
    for i, j in pairs:
        a, b = tf[i], bf[j]
        _ = a[2] == b[2] or (a[1] and a[1] == b[1]) or not a[0].isdisjoint(b[0])
    return prep, (time.perf_counter() - t) / len(pairs)


def cli_text_stage(train, bench) -> float:
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        for name, qs in (("train.jsonl", train), ("bench.jsonl", bench)):
            with (d / name).open("w") as fh:
                for i, q in enumerate(qs):
                    fh.write(json.dumps({"id": f"{name[0]}{i}", "source": name.split(".")[0], "question": q,
                                         "answer": "1", "answer_type": "math"}) + "\n")
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "infimmr_cli", "decontam", "--train", d / "train.jsonl", "--bench",
                        d / "bench.jsonl", "--out", d / "clean.jsonl", "--removed", d / "removed.jsonl",
                        "--no-embedding"], check=True, capture_output=True,
                       env={**__import__("os").environ, "PYTHONPATH": str(REPO / "src")})
        return time.perf_counter() - t


def similarity(n_train: int, n_bench: int, dim: int = 1536) -> float:
    from infimmr_cli.curation.embeddings import above, best_matches

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n_train, dim), dtype=np.float32)
    b = rng.standard_normal((n_bench, dim), dtype=np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    t = time.perf_counter()
    best, _ = best_matches(a, b)
    above(best, 0.95)
    return time.perf_counter() - t


def embedding_throughput(n_items: int, batch_size: int) -> tuple[float, float]:
    from PIL import Image

    from infimmr_cli.curation.embeddings import EmbedItem, EmbeddingCache, GMEEmbedder, embed_all
    from infimmr_cli.modeling import build_tiny

    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        model = build_tiny(d / "tiny")
        items = []
        for k in range(n_items):
            img = ()
            if k % 2 == 0:  # half the items carry a 336x224 picture (resized up to GME's 256-token floor)
                p = d / f"img{k}.png"
                Image.new("RGB", (336, 224), tuple(rng.randrange(256) for _ in range(3))).save(p)
                img = (p,)
            items.append(EmbedItem(f"Question {k}: find the area of the triangle with sides {k} and {k + 3}.", img))
        emb = GMEEmbedder(model)
        t = time.perf_counter()
        embed_all(emb, items, EmbeddingCache(d / "cache"), batch_size=batch_size)
        fresh = n_items / (time.perf_counter() - t)
        t = time.perf_counter()
        _, stats = embed_all(emb, items, EmbeddingCache(d / "cache"), batch_size=batch_size)
        assert stats.computed == 0
        cached = n_items / (time.perf_counter() - t)
    return fresh, cached


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=40_000)
    ap.add_argument("--bench", type=int, default=10_000)
    ap.add_argument("--plant", type=int, default=200, help="leaks planted per rule")
    ap.add_argument("--pairs", type=int, default=2_000, help="sampled pairs for the naive baseline")
    ap.add_argument("--embed-items", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    train, bench, planted = make_data(args.train, args.bench, args.plant, args.seed)
    n_words = sum(len(q.split()) for q in train) + sum(len(q.split()) for q in bench)
    print(f"data: {args.train} training x {args.bench} benchmark questions, {n_words / 1e6:.2f}M words, "
          f"{len(planted)} planted leaks")

    secs, found = stage1(train, bench)
    missed = [i for i in planted if i not in found]
    extra = [i for i in found if i not in planted]
    stage_ok = sum(found.get(i) == s for i, s in planted.items())
    print(f"stage 1 (index + stream): {secs:.2f} s; found {len(found)}: {len(planted) - len(missed)}/{len(planted)} "
          f"planted ({stage_ok} by the planted rule), {len(extra)} others")

    rng = random.Random(args.seed + 1)
    all_pairs = args.train * args.bench
    pairs = [(rng.randrange(args.train), rng.randrange(args.bench)) for _ in range(args.pairs)]
    per_naive = naive_per_pair(train, bench, pairs)
    naive_total = per_naive * all_pairs
    print(f"naive per pair: {per_naive * 1e6:.1f} us/pair x {all_pairs:.2e} pairs = {naive_total:,.0f} s "
          f"(extrapolated) -> stage 1 is {naive_total / secs:,.0f}x faster")
    big = [(rng.randrange(args.train), rng.randrange(args.bench)) for _ in range(args.pairs * 100)]
    prep, per_pre = precomputed_per_pair(train, bench, big)
    pre_total = prep + per_pre * all_pairs
    print(f"precomputed sets per pair: {prep:.1f} s prep + {per_pre * 1e9:.0f} ns/pair x {all_pairs:.2e} = "
          f"{pre_total:,.0f} s (extrapolated) -> stage 1 is {pre_total / secs:,.0f}x faster")

    cli = cli_text_stage(train, bench)
    print(f"CLI --no-embedding end to end (read, stage 1, write): {cli:.2f} s")
    sim = similarity(args.train, args.bench)
    print(f"cosine {args.train} x {args.bench} at D=1536, chunks of 1024 rows: {sim:.2f} s")
    fresh, cached = embedding_throughput(args.embed_items, args.batch_size)
    print(f"tiny-model GME embeddings ({args.embed_items} items, half with images, batch {args.batch_size}): "
          f"{fresh:.1f} items/s computed, {cached:.0f} items/s from cache")


if __name__ == "__main__":
    main()
