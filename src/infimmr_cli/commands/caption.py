"""`infimmr caption`: a concise, type-specific caption for every image record (paper §4.2; DESIGN §4).

Each image is captioned on its own under its category's system prompt (`prompts.CAPTION_SYSTEM_PROMPTS`), the category
taken from `meta["image_types"]` (written by classify) or else the record's `image_type`. A record's caption is its
image's caption, or for several images `Image 1: ...\nImage 2: ...`. Decoding is greedy with repetition penalty 1.2
(OmniCaptioner's near-greedy setting, made deterministic so a resumed run gives what an unbroken one would); --temperature
samples instead.

Records without `image_type` are refused before any model loads: run `infimmr classify` first. (Classifying here would
load a second 7B model into the caption stage; stages talk through files instead.) Text-only records pass through with
`caption` null. An empty reply or an unreadable image leaves `caption` null and says why in `meta["caption_error"]`;
a caption cut at --max-new-tokens is kept and marked `meta["caption_truncated"]`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.console import Console

from infimmr_cli.errors import UsageError
from infimmr_cli.data.records import Record, read_records

DEFAULT_MODEL = "U4R/OmniCaptioner"
_STAGE_KEYS = ("caption_error", "caption_truncated")


def image_types(rec: Record) -> list[str]:
    """The category of each image: classify's per-image types when they fit, else the record's type for all."""
    per_image = rec.meta.get("image_types")
    if isinstance(per_image, list) and len(per_image) == len(rec.images):
        return list(per_image)
    return [rec.image_type] * len(rec.images)


def check_types(records: list[Record]) -> None:
    """Fail before any work when an image record has no usable type."""
    from infimmr_cli.curation.prompts import IMAGE_TYPES

    missing = [r for r in records if r.images and not r.image_type]
    if missing:
        raise UsageError(f"image_type: {len(missing)} image records have none (first id {missing[0].id!r}); "
                         "run `infimmr classify` first")
    for r in records:
        for t in image_types(r) if r.images else []:
            if t not in IMAGE_TYPES:
                raise UsageError(f"record {r.id!r}: image_type: {t!r} is not one of {', '.join(IMAGE_TYPES)}")


def join_captions(captions: list[str]) -> str:
    if len(captions) == 1:
        return captions[0]
    return "\n".join(f"Image {k}: {c}" for k, c in enumerate(captions, start=1))


def caption_records(records: list[Record], engine, processor, max_new_tokens: int = 256, temperature: float = 0.0,
                    seed: int | None = None) -> list[Record]:
    """Caption every image of `records` in one engine call; returns the records with `caption` set.

    Greedy by default (OmniCaptioner's near-greedy settings); `temperature` > 0 samples, e.g. for a random tiny model
    whose greedy reply is blank.
    """
    from infimmr_cli.commands._vlm_stage import generate_per_image
    from infimmr_cli.curation.prompts import caption_messages
    from infimmr_cli.rollout import SamplingSettings

    sampling = SamplingSettings(temperature=temperature, repetition_penalty=1.2, max_new_tokens=max_new_tokens,
                                seed=seed)
    outs, errors = generate_per_image(records, engine, processor,
                                      lambda rec, j: caption_messages(image_types(rec)[j]), sampling)
    result = []
    for i, rec in enumerate(records):
        meta = {k: v for k, v in rec.meta.items() if k not in _STAGE_KEYS}
        if not rec.images:
            result.append(rec.replace(caption=None, meta=meta))
            continue
        if i in errors:
            result.append(rec.replace(caption=None, meta={**meta, "caption_error": errors[i]}))
            continue
        comps = [outs[(i, j)] for j in range(len(rec.images))]
        texts = [c.text.strip() for c in comps]
        empty = [k for k, t in enumerate(texts, start=1) if not t]
        if empty:
            meta["caption_error"] = f"empty reply for image {', '.join(map(str, empty))}"
            result.append(rec.replace(caption=None, meta=meta))
            continue
        if any(c.finish_reason == "length" for c in comps):
            meta["caption_truncated"] = True
        result.append(rec.replace(caption=join_captions(texts), meta=meta))
    return result


def summarize(out: Path, done_now: int, console: Console) -> Counter:
    from infimmr_cli.commands._vlm_stage import summary_table

    records = read_records(out, check_images=False, allow_outside=True)
    counts = Counter(r.image_type for r in records if r.caption)
    console.print(summary_table(f"caption: {out}  (captioned records by image_type)", counts, {
        "records": len(records), "captioned in this run": done_now,
        "text only (no caption)": sum(not r.images for r in records),
        "failed (caption null, see meta.caption_error)": sum("caption_error" in r.meta for r in records),
        "truncated at --max-new-tokens": sum(bool(r.meta.get("caption_truncated")) for r in records)}))
    return counts


def run(in_path: str | Path, out_path: str | Path | None = None, model: str | Path = DEFAULT_MODEL,
        engine: str = "auto", batch_size: int = 8, max_new_tokens: int = 256, limit: int | None = None,
        allow_outside_images: bool = False, engine_factory=None, console: Console | None = None,
        temperature: float = 0.0, seed: int | None = None, revision: str | None = None) -> Path:
    """Caption the image records of `in_path` into `out_path` (resumable). `engine_factory() -> (engine, processor)`
    replaces model loading (tests, callers holding a model)."""
    from infimmr_cli.commands._vlm_stage import default_out, model_opener, run_stage

    console = console or Console()
    if out_path is None:
        out_path = default_out(in_path, "caption")
        console.print(f"caption: no --out given; writing {out_path}", highlight=False)
    opener, origin = model_opener(model, engine, batch_size, revision, engine_factory)
    out, done_now = run_stage(
        "caption", in_path, out_path,
        lambda recs, eng, proc: caption_records(recs, eng, proc, max_new_tokens=max_new_tokens,
                                                temperature=temperature, seed=seed),
        open_engine=opener, batch_size=batch_size, limit=limit, allow_outside=allow_outside_images,
        check=check_types, console=console,
        settings=dict(model=str(model), engine=engine, batch_size=batch_size, limit=limit,
                      max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, **origin))
    summarize(out, done_now, console)
    return out
