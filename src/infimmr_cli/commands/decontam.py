"""`infimmr decontam`: drop training items that leak benchmark items (paper §3.1, DESIGN §4), and say why.

Stage 1 (text, ngrams.py): exact key, then word 32-grams, questions only. Stage 2 (embeddings.py): a fused image+text
vector per item; a training item whose best cosine against any benchmark item is strictly above the threshold goes.
Stage 2 sees only what stage 1 kept. Each removed item is reported once, with the first stage that caught it.

The embedding model is never guessed: without --embed-model the command refuses to run unless --no-embedding says the
text stage alone is wanted. --embed-model takes a directory or a hub id (`modeling.resolve_model`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from infimmr_cli.errors import UsageError
from infimmr_cli.data.records import Record, iter_records, write_records

STAGES = ("exact", "ngram", "embedding")


@dataclass
class Removal:
    record: Record
    stage: str
    bench: Record
    bench_file: str
    evidence: str
    similarity: float | None = None

    def to_dict(self) -> dict:
        return {"id": self.record.id, "source": self.record.source, "stage": self.stage, "bench_id": self.bench.id,
                "bench_source": self.bench.source, "bench_file": self.bench_file, "evidence": self.evidence,
                "similarity": self.similarity}


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


def default_cache(out: str | Path) -> Path:
    """Beside the output, so a rerun in the same place finds it and nothing is written to the user's home."""
    return Path(out).resolve().parent / ".infimmr-embed-cache"


def run(train: str | Path, bench: Sequence[str | Path], out: str | Path, removed: str | Path,
        embed_model: str | Path | None = None, threshold: float = 0.95, no_embedding: bool = False,
        batch_size: int = 8, cache: str | Path | None = None, min_pixels: int | None = None,
        max_pixels: int | None = None, device: str = "cpu", dtype: str = "auto", embedder=None,
        console: Console | None = None, revision: str | None = None) -> dict:
    """Write `out` (kept records, untouched) and `removed` (one reason per removed item); return the counts.

    `embedder` (anything with `identity` and `embed(items) -> (N, D)` unit rows) replaces loading `embed_model`: tests
    pass a fake one with chosen vectors.
    """
    console = console or Console()
    use_embedding = not no_embedding
    if not bench:
        raise UsageError("--bench: give at least one benchmark records file")
    if use_embedding and embed_model is None and embedder is None:
        raise UsageError("--embed-model: the embedding stage needs a GME model, a directory or a hub id (e.g. "
                         "Alibaba-NLP/gme-Qwen2-VL-2B-Instruct, or any Qwen2-VL/Qwen2.5-VL); pass --no-embedding to "
                         "run the text stage only")
    if no_embedding and embed_model is not None:
        raise UsageError("--embed-model and --no-embedding contradict each other; drop one")
    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--threshold: {threshold} is not a cosine in [0, 1]")
    if batch_size < 1:
        raise UsageError(f"--batch-size: {batch_size} must be at least 1")
    embed_dir, origin = None, {}
    if use_embedding and embed_model is not None:  # a local directory, or a hub id from the HF cache (fetched online)
        from infimmr_cli.modeling import check_model_dir, model_revision, resolve_model

        embed_dir = check_model_dir(resolve_model(embed_model, revision, flag="--embed-model"))
        origin = model_revision(embed_dir, revision)
    elif revision:
        raise UsageError(f"--revision {revision}: names a revision of --embed-model; there is none to fetch")

    from infimmr_cli.files import claim_outputs

    with claim_outputs("decontam", {"--train": train, "--bench": list(bench)}, {"--out": out, "--removed": removed}):
        return _decontam(train, bench, out, removed, embed_model, threshold, no_embedding, batch_size, cache,
                         min_pixels, max_pixels, device, dtype, embedder, console, embed_dir, origin)


def _decontam(train, bench, out, removed, embed_model, threshold, no_embedding, batch_size, cache, min_pixels,
              max_pixels, device, dtype, embedder, console, embed_dir=None, origin=None) -> dict:
    from infimmr_cli.curation import embeddings as emb
    from infimmr_cli.curation.ngrams import BenchIndex

    use_embedding = not no_embedding
    # Images are only opened by stage 2; the text stage runs on records whose images are elsewhere.
    t0 = time.perf_counter()
    bench_recs: list[tuple[Record, str]] = []
    for path in bench:
        bench_recs += [(r, str(path)) for r in iter_records(path, check_images=use_embedding)]
    train_recs = list(iter_records(train, check_images=use_embedding))

    index = BenchIndex()
    for rec, _ in bench_recs:
        index.add(rec.id, rec.question)
    removals: dict[int, Removal] = {}
    with _progress(console) as progress:
        task = progress.add_task("text stage", total=len(train_recs))
        for i, rec in enumerate(train_recs):
            hit = index.match(rec.question)
            if hit is not None:
                b, bfile = bench_recs[hit.bench]
                removals[i] = Removal(rec, hit.stage, b, bfile, hit.evidence)
            if i % 512 == 0:
                progress.update(task, completed=i)
    text_seconds = time.perf_counter() - t0

    embed_info = None
    problems: list[tuple[str, str]] = []
    if use_embedding:
        if embedder is None:
            kw = {}
            if min_pixels is not None:
                kw["min_pixels"] = min_pixels
            if max_pixels is not None:
                kw["max_pixels"] = max_pixels
            console.print(f"loading embedder from [bold]{embed_model}[/]")
            embedder = emb.GMEEmbedder(embed_dir or embed_model, device=device, dtype=dtype, **kw)
        store = emb.EmbeddingCache(cache if cache is not None else default_cache(out))
        survivors = [i for i in range(len(train_recs)) if i not in removals]

        def item(rec: Record) -> "emb.EmbedItem":
            return emb.EmbedItem(rec.question, tuple(rec.image_paths()))

        items = [item(r) for r, _ in bench_recs] + [item(train_recs[i]) for i in survivors]
        with _progress(console) as progress:
            task = progress.add_task("embedding", total=len(items))
            vecs, stats = emb.embed_all(embedder, items, store, batch_size=batch_size,
                                        on_batch=lambda n: progress.advance(task, n))
        nb = len(bench_recs)
        best, arg = emb.best_matches(vecs[nb:], vecs[:nb])
        for k in emb.above(best, threshold).nonzero()[0]:
            i, (b, bfile) = survivors[k], bench_recs[int(arg[k])]
            sim = round(float(best[k]), 6)
            removals[i] = Removal(train_recs[i], "embedding", b, bfile, f"cosine {sim:.4f} > {threshold}", sim)
        embed_info = {"embedded": stats.computed, "from_cache": stats.cached, "empty": stats.skipped_empty,
                      "image_errors": len(stats.errors), "seconds": round(stats.seconds, 3),
                      "cache": str(store.folder)}
        # An item whose image cannot be read was judged by the text stage only: the run goes on and says so.
        for k, msg in stats.errors.items():
            if k < nb:
                b, bfile = bench_recs[k]
                problems.append((b.id, f"benchmark item in {bfile}: not embedded, no training item compared "
                                       f"against it by image: {msg}"))
            else:
                i = survivors[k - nb]
                train_recs[i] = train_recs[i].replace(meta={**train_recs[i].meta, "decontam_error": msg})
                problems.append((train_recs[i].id, f"kept after the text stage only: {msg}"))

    kept = [r for i, r in enumerate(train_recs) if i not in removals]
    ordered = [removals[i] for i in sorted(removals)]
    write_records(out, kept)
    write_records(removed, [r.to_dict() for r in ordered])
    from infimmr_cli.data.item_errors import write_warnings

    warned = write_warnings(out, "decontam", problems)
    from infimmr_cli.provenance import write_provenance

    settings = {"threshold": threshold, "embedding": not no_embedding,
                "embed_model": str(embed_model) if embed_model else None, **(origin or {})}
    inputs = {"train": train, **{f"bench[{i}]": b for i, b in enumerate(bench)}}
    counts = {"kept": len(kept), "removed": len(ordered)}
    for output in (out, removed):
        write_provenance(output, "decontam", settings, inputs, results=counts)

    summary = _summary(ordered, bench_recs)
    result = {"train": len(train_recs), "kept": len(kept), "removed": len(ordered), "bench": len(bench_recs),
              "by_stage": dict(Counter(r.stage for r in ordered)), "by_source": summary,
              "text_seconds": round(text_seconds, 3), "embedding": embed_info}
    _print(console, result, use_embedding, threshold, out, removed)
    if warned is not None:
        console.print(f"[yellow]decontam: {len(problems)} items have an image that cannot be read (not embedded); "
                      f"listed in {warned}[/]", highlight=False)
    return result


def _summary(removals: Sequence[Removal], bench_recs: Sequence[tuple[Record, str]]) -> dict[str, dict[str, int]]:
    """{bench source: {stage: removed count}}; every benchmark source appears, even with nothing removed."""
    table: dict[str, dict[str, int]] = {b.source: {s: 0 for s in STAGES} for b, _ in bench_recs}
    for r in removals:
        table[r.bench.source][r.stage] += 1
    return table


def _print(console: Console, result: dict, use_embedding: bool, threshold: float, out, removed) -> None:
    title = f"decontam: {result['train']} training items vs {result['bench']} benchmark items"
    table = Table(title=title)
    table.add_column("benchmark source")
    for s in STAGES:
        table.add_column(s if s != "embedding" else f"embedding (cos > {threshold})", justify="right")
    table.add_column("removed", justify="right")
    for source, counts in sorted(result["by_source"].items()):
        emb_cell = str(counts["embedding"]) if use_embedding else "off"
        table.add_row(source, str(counts["exact"]), str(counts["ngram"]), emb_cell, str(sum(counts.values())))
    stages = result["by_stage"]
    table.add_section()
    table.add_row("all", *(str(stages.get(s, 0)) if s != "embedding" or use_embedding else "off" for s in STAGES),
                  str(result["removed"]), style="bold")
    console.print(table)
    line = (f"kept {result['kept']} -> {out}; removed {result['removed']} -> {removed}; "
            f"text stage {result['text_seconds']:.2f} s")
    info = result["embedding"]
    if info:
        line += f"; embedded {info['embedded']} new, {info['from_cache']} from cache ({info['seconds']:.1f} s)"
    console.print(line, highlight=False)
