"""Stage 2 of decontamination: one fused image+text vector per item, cached on disk, compared by chunked cosine.

The embedder follows gme-Qwen2-VL-2B-Instruct (../shared/REFERENCE-NOTES.md): a plain Qwen2-VL / Qwen2.5-VL backbone,
input `<|im_start|>system\\n{instruction}<|im_end|>\\n<|im_start|>user\\n{images}{text}<|im_end|>\\n<|im_start|>assistant\\n
<|endoftext|>` with the image placeholders before the text, right padding, the last hidden state (after the final norm) at
the final `<|endoftext|>`, L2-normalised.

Position ids: SEQUENTIAL (0, 1, 2, ... for every token, the same on the three M-RoPE axes), as GME's reference forward
does and as its weights were trained; not the stock forward's M-RoPE image positions. Changing this changes every vector,
so it is part of the cache identity (`POOLING_VERSION`).

Images are resized once by images.load_image to GME's 256-1280 visual-token range (overridable), and the processor is
told the same range, so it finds nothing left to resize. Several images per item: all placeholders first, in order.
Text-only items embed their text alone (no placeholder). An item with neither text nor image is not embedded. An item
whose image cannot be read (images.ImageError) is not embedded either: it gets a zero row and its error is reported.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

GME_INSTRUCTION = "You are a helpful assistant."
GME_MIN_PIXELS = 256 * 28 * 28
GME_MAX_PIXELS = 1280 * 28 * 28
GME_MAX_LENGTH = 1800
IMAGE_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"
POOLING_VERSION = "gme-last-endoftext-seqpos-v1"


@dataclass(frozen=True)
class EmbedItem:
    """What one record contributes to its vector: the question text and its image files, in order."""

    text: str
    images: tuple[Path, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.text.strip() and not self.images


class Embedder(Protocol):
    """Anything that maps items to L2-normalised rows. `identity` names the model AND settings: it keys the cache."""

    identity: str

    def embed(self, items: Sequence[EmbedItem]) -> np.ndarray:
        """items (N) -> float32 array (N, D), each row of unit length."""
        ...


def build_prompt(text: str, n_images: int, instruction: str = GME_INSTRUCTION) -> str:
    """GME's input string: system instruction, user turn with image placeholders first, then `<|endoftext|>` to pool."""
    return (f"<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{IMAGE_PLACEHOLDER * n_images}{text}"
            f"<|im_end|>\n<|im_start|>assistant\n<|endoftext|>")


def content_key(item: EmbedItem, identity: str) -> str:
    """Hex digest of (embedder identity, text, every image's bytes): equal content, equal key, wherever the file lives."""
    h = hashlib.blake2b(digest_size=16)
    for part in (identity.encode(), item.text.encode("utf-8"), str(len(item.images)).encode()):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    for p in item.images:
        data = Path(p).read_bytes()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def model_identity(path: str | Path) -> str:
    """A digest of a model directory's config and weights: the same weights anywhere give the same identity.

    Weight files under 64 MiB are hashed whole; larger ones by size, header and 16 evenly spaced 1 MiB chunks (a
    fine-tune changes every tensor, so a sample is enough, and a 4 GB checkpoint is not read through on every run).
    """
    path = Path(path)
    h = hashlib.blake2b(digest_size=16)
    cfg = path / "config.json"
    if cfg.exists():
        h.update(cfg.read_bytes())
    for f in sorted(path.glob("*.safetensors")):
        size = f.stat().st_size
        h.update(f"{f.name}:{size}".encode())
        with f.open("rb") as fh:
            if size <= 64 << 20:
                h.update(fh.read())
                continue
            h.update(fh.read(1 << 20))
            for k in range(16):
                fh.seek(size * k // 16)
                h.update(fh.read(1 << 20))
    return h.hexdigest()


class GMEEmbedder:
    """GME-style embedder over a Qwen2-VL / Qwen2.5-VL directory, loaded with modeling.load_model."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", dtype: str = "auto",
                 min_pixels: int = GME_MIN_PIXELS, max_pixels: int = GME_MAX_PIXELS,
                 instruction: str = GME_INSTRUCTION, max_length: int = GME_MAX_LENGTH):
        from infimmr_cli.modeling import load_model

        self.model, self.processor = load_model(model_dir, dtype=dtype, device=device)
        self.model.eval()
        self.device = device
        self.min_pixels, self.max_pixels = int(min_pixels), int(max_pixels)
        self.instruction = instruction
        self.max_length = max_length
        tok = self.processor.tokenizer
        self.endoftext_id = tok.convert_tokens_to_ids("<|endoftext|>")
        settings = dict(model=model_identity(model_dir), dtype=str(self.model.dtype), min_pixels=self.min_pixels,
                        max_pixels=self.max_pixels, instruction=instruction, max_length=max_length,
                        pooling=POOLING_VERSION)
        self.identity = hashlib.blake2b(json.dumps(settings, sort_keys=True).encode(), digest_size=16).hexdigest()

    def _text(self, text: str) -> str:
        """Cut an over-long question at max_length tokens so the template and the pooled `<|endoftext|>` survive."""
        tok = self.processor.tokenizer
        ids = tok.encode(text, add_special_tokens=False)
        return text if len(ids) <= self.max_length else tok.decode(ids[: self.max_length])

    def embed(self, items: Sequence[EmbedItem]) -> np.ndarray:
        """items (N) -> (N, hidden) float32, unit rows. One forward for the whole list: the caller batches."""
        import torch

        from infimmr_cli.data.images import load_image

        factor = 28
        texts, images = [], []
        for it in items:
            texts.append(build_prompt(self._text(it.text), len(it.images), self.instruction))
            images += [load_image(p, self.min_pixels, self.max_pixels, factor) for p in it.images]
        kwargs = dict(text=texts, padding=True, padding_side="right", return_tensors="pt")
        if images:
            kwargs.update(images=images, size={"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels})
        inputs = self.processor(**kwargs)
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        batch, length = ids.shape
        positions = torch.arange(length).unsqueeze(0).expand(batch, length)
        last = mask.sum(dim=1) - 1  # right padding: the last real token, our `<|endoftext|>`
        rows = torch.arange(batch)
        if not bool((ids[rows, last] == self.endoftext_id).all()):
            raise RuntimeError("embedder: the pooled position is not <|endoftext|>; the tokenizer split the template")
        fwd = dict(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                   position_ids=positions.to(self.device), use_cache=False)
        if images:
            fwd.update(pixel_values=inputs["pixel_values"].to(self.device),
                       image_grid_thw=inputs["image_grid_thw"].to(self.device))
        with torch.inference_mode():
            hidden = self.model.model(**fwd).last_hidden_state  # (B, L, H)
            vec = hidden[rows.to(self.device), last.to(self.device)].float()
            vec = torch.nn.functional.normalize(vec, p=2, dim=1)
        return vec.cpu().numpy().astype(np.float32)


class EmbeddingCache:
    """Vectors on disk keyed by content_key: a folder of `.npz` shards (keys + float32 rows), each written atomically.

    Shards are only ever added (a new file per flush), so an interrupted run keeps what it finished and two runs never
    rewrite each other's files. Loading reads every shard once.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._vectors: dict[str, np.ndarray] = {}
        for shard in sorted(self.folder.glob("shard-*.npz")):
            with np.load(shard, allow_pickle=False) as data:
                for k, v in zip(data["keys"].tolist(), data["vectors"]):
                    self._vectors[k] = v

    def __len__(self) -> int:
        return len(self._vectors)

    def __contains__(self, key: str) -> bool:
        return key in self._vectors

    def get(self, key: str) -> np.ndarray:
        return self._vectors[key]

    def put(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """keys (N), vectors (N, D): remembered and written as one new shard."""
        if not keys:
            return
        vectors = np.asarray(vectors, dtype=np.float32)
        fd, tmp = tempfile.mkstemp(prefix=".shard-", suffix=".npz.tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, keys=np.array(list(keys)), vectors=vectors)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.folder / f"shard-{uuid.uuid4().hex}.npz")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        for k, v in zip(keys, vectors):
            self._vectors[k] = v


@dataclass
class EmbedStats:
    items: int = 0
    cached: int = 0
    computed: int = 0
    seconds: float = 0.0
    skipped_empty: int = 0
    keys: list[str] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)  # item index -> why it could not be embedded (a bad image)


def _embed_each(embedder: Embedder, items: Sequence[EmbedItem]) -> tuple[list[np.ndarray | None], dict[int, str]]:
    """Embed `items` in one forward; when an image in the batch cannot be read, one at a time so that only the items
    with a bad image are lost. Returns (row or None per item, {position: error})."""
    from infimmr_cli.data.images import ImageError

    try:
        return list(np.asarray(embedder.embed(items), dtype=np.float32)), {}
    except ImageError as exc:
        if len(items) == 1:
            return [None], {0: str(exc)}
    rows: list[np.ndarray | None] = []
    errors: dict[int, str] = {}
    for j, it in enumerate(items):
        try:
            rows.append(np.asarray(embedder.embed([it]), dtype=np.float32)[0])
        except ImageError as exc:
            rows.append(None)
            errors[j] = str(exc)
    return rows, errors


def embed_all(embedder: Embedder, items: Sequence[EmbedItem], cache: EmbeddingCache | None, batch_size: int = 8,
              flush_every: int = 256, on_batch: Callable[[int], None] | None = None) -> tuple[np.ndarray, EmbedStats]:
    """items (N) -> (N, D) float32 unit rows; empty items and items with an unreadable image (`stats.errors`) get a
    zero row (similarity 0 with everything).

    Only content missing from the cache is embedded, each distinct content once; new vectors are flushed to the cache
    every `flush_every` items. `on_batch(n)` is told how many items each forward handled (for a progress bar).
    """
    import time

    stats = EmbedStats(items=len(items))
    keys = [None if it.empty else content_key(it, embedder.identity) for it in items]
    stats.skipped_empty = sum(k is None for k in keys)
    todo: dict[str, EmbedItem] = {}
    for k, it in zip(keys, items):
        if k is not None and (cache is None or k not in cache) and k not in todo:
            todo[k] = it
    stats.cached = sum(1 for k in keys if k is not None and k not in todo)
    fresh: dict[str, np.ndarray] = {}
    pending_k: list[str] = []
    pending_v: list[np.ndarray] = []
    failed: dict[str, str] = {}
    order = list(todo)
    start = time.perf_counter()
    for b in range(0, len(order), batch_size):
        chunk = order[b:b + batch_size]
        rows, errors = _embed_each(embedder, [todo[k] for k in chunk])
        if len(rows) != len(chunk):
            raise RuntimeError(f"embedder returned {len(rows)} vectors for {len(chunk)} items")
        failed.update((chunk[j], msg) for j, msg in errors.items())
        good = [(k, v) for k, v in zip(chunk, rows) if v is not None]
        for k, v in good:
            fresh[k] = v
        if good:  # a failed item is never cached: a fixed file is embedded next time
            pending_k += [k for k, _ in good]
            pending_v.append(np.stack([v for _, v in good]))
        stats.computed += len(good)
        if cache is not None and len(pending_k) >= flush_every:
            cache.put(pending_k, np.concatenate(pending_v))
            pending_k, pending_v = [], []
        if on_batch:
            on_batch(len(chunk))
    if cache is not None and pending_k:
        cache.put(pending_k, np.concatenate(pending_v))
    stats.seconds = time.perf_counter() - start
    dim = next(iter(fresh.values())).shape[0] if fresh else None
    if dim is None:
        known = [k for k in keys if k is not None]
        dim = cache.get(known[0]).shape[0] if known and cache is not None else 0
    out = np.zeros((len(items), dim), dtype=np.float32)
    for i, k in enumerate(keys):
        if k in failed:
            stats.errors[i] = failed[k]
        elif k is not None:
            out[i] = fresh[k] if k in fresh else cache.get(k)
    stats.keys = [k or "" for k in keys]
    return out, stats


def best_matches(train: np.ndarray, bench: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """train (N, D), bench (M, D), unit rows -> (best cosine (N,) float32, its bench row (N,) int64; -1 when M == 0).

    Chunked over training rows: peak memory is chunk x M floats (1024 x 10K = 40 MB), never N x M.
    """
    n = train.shape[0]
    best = np.full(n, -np.inf, dtype=np.float32)
    arg = np.full(n, -1, dtype=np.int64)
    if n == 0 or bench.shape[0] == 0:
        return best, arg
    bench_t = np.ascontiguousarray(bench.T, dtype=np.float32)
    for s in range(0, n, chunk):
        sims = np.asarray(train[s:s + chunk], dtype=np.float32) @ bench_t  # (chunk, M)
        j = sims.argmax(axis=1)
        arg[s:s + chunk] = j
        best[s:s + chunk] = sims[np.arange(len(j)), j]
    return best, arg


def above(best: np.ndarray, threshold: float) -> np.ndarray:
    """Strictly greater than the threshold, compared in float32 (the precision the similarities are in)."""
    return best > np.float32(threshold)
