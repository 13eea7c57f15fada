"""`infimmr classify`: one image type per image (paper §4.2, Appendix B; DESIGN §4).

Each image is asked the fixed `prompts.CLASSIFY_INSTRUCTION` on its own, greedily. The reply is parsed strictly
(`prompts.parse_image_type`); anything else becomes `other`, with the raw replies kept in `meta["image_type_raw"]`.
Written per record:
- `meta["image_types"]`: one type per image, in image order;
- `image_type`: the record-level type by `record_image_type` (the most frequent type that is not `other`; a tie goes to
  the type seen first in image order; `other` only when every image is `other`);
- text-only records pass through with `image_type` null; an unreadable image gives `other` and `meta["classify_error"]`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.console import Console

from infimmr_cli.data.records import Record, read_records

DEFAULT_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"


def record_image_type(types: list[str]) -> str | None:
    """The record's type from its images' types (see the module docstring for the rule); None without images."""
    if not types:
        return None
    concrete = [t for t in types if t != "other"]
    if not concrete:
        return "other"
    counts = Counter(concrete)
    top = max(counts.values())
    return next(t for t in concrete if counts[t] == top)  # first in image order among the most frequent


def classify_records(records: list[Record], engine, processor, max_new_tokens: int = 8) -> list[Record]:
    """Classify every image of `records` in one engine call; returns the records with image_type and meta set."""
    from infimmr_cli.commands._vlm_stage import generate_per_image
    from infimmr_cli.curation.prompts import classify_messages, parse_image_type
    from infimmr_cli.rollout import SamplingSettings

    sampling = SamplingSettings(temperature=0.0, max_new_tokens=max_new_tokens)
    replies, errors = generate_per_image(records, engine, processor, lambda rec, j: classify_messages(), sampling)
    out = []
    for i, rec in enumerate(records):
        meta = {k: v for k, v in rec.meta.items() if k not in ("image_types", "image_type_raw", "classify_error")}
        if not rec.images:
            out.append(rec.replace(image_type=None, meta=meta))
            continue
        if i in errors:
            meta.update(image_types=["other"] * len(rec.images), classify_error=errors[i])
            out.append(rec.replace(image_type="other", meta=meta))
            continue
        raw = [replies[(i, j)].text for j in range(len(rec.images))]
        parsed = [parse_image_type(r) for r in raw]
        types = [p or "other" for p in parsed]
        meta["image_types"] = types
        if any(p is None for p in parsed):
            meta["image_type_raw"] = [None if p else r for p, r in zip(parsed, raw)]
        out.append(rec.replace(image_type=record_image_type(types), meta=meta))
    return out


def summarize(out: Path, done_now: int, console: Console) -> Counter:
    records = read_records(out, check_images=False, allow_outside=True)
    counts = Counter(r.image_type or "(text only)" for r in records)
    from infimmr_cli.commands._vlm_stage import summary_table

    console.print(summary_table(f"classify: {out}", counts, {
        "records": len(records), "classified in this run": done_now,
        "unparsed replies (-> other)": sum("image_type_raw" in r.meta for r in records),
        "unreadable images": sum("classify_error" in r.meta for r in records)}))
    return counts


def run(in_path: str | Path, out_path: str | Path | None = None, model: str | Path = DEFAULT_MODEL,
        engine: str = "auto", batch_size: int = 8, max_new_tokens: int = 8, limit: int | None = None,
        allow_outside_images: bool = False, engine_factory=None, console: Console | None = None,
        revision: str | None = None) -> Path:
    """Classify the images of `in_path` into `out_path` (resumable). `engine_factory() -> (engine, processor)`
    replaces model loading (tests, callers holding a model)."""
    from infimmr_cli.commands._vlm_stage import default_out, model_opener, run_stage

    console = console or Console()
    if out_path is None:
        out_path = default_out(in_path, "classify")
        console.print(f"classify: no --out given; writing {out_path}", highlight=False)
    opener, origin = model_opener(model, engine, batch_size, revision, engine_factory)
    out, done_now = run_stage(
        "classify", in_path, out_path,
        lambda recs, eng, proc: classify_records(recs, eng, proc, max_new_tokens=max_new_tokens),
        open_engine=opener, batch_size=batch_size, limit=limit, allow_outside=allow_outside_images,
        console=console,
        settings=dict(model=str(model), engine=engine, batch_size=batch_size, limit=limit,
                      max_new_tokens=max_new_tokens, **origin))
    summarize(out, done_now, console)
    return out
