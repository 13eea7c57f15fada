"""Image loading with one resize rule for every consumer.

Peers' users hit "Image features and image tokens do not match" when vLLM and the HF processor resized the same image
differently. We resize each image once, here, to the processor's own pixel range on the 28-pixel grid, so whatever sees it
next (HF processor, vLLM, an embedder) finds nothing left to resize and counts the same number of image tokens.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

# Qwen2-VL's processor defaults, used when a processor does not say.
DEFAULT_MIN_PIXELS = 4 * 28 * 28
DEFAULT_MAX_PIXELS = 16384 * 28 * 28


def pixel_limits(processor) -> tuple[int, int, int]:
    """(min_pixels, max_pixels, factor) as the processor will apply them: the single source of these settings."""
    ip = getattr(processor, "image_processor", processor)
    size = getattr(ip, "size", None) or {}
    lo = getattr(ip, "min_pixels", None) or size.get("shortest_edge") or DEFAULT_MIN_PIXELS
    hi = getattr(ip, "max_pixels", None) or size.get("longest_edge") or DEFAULT_MAX_PIXELS
    factor = int(getattr(ip, "patch_size", 14) or 14) * int(getattr(ip, "merge_size", 2) or 2)
    return int(lo), int(hi), factor


def fit_size(height: int, width: int, min_pixels: int, max_pixels: int, factor: int = 28) -> tuple[int, int]:
    """Qwen2-VL's resize rule: both sides multiples of `factor`, area within [min_pixels, max_pixels], aspect kept."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    return smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)


def load_image(path: str | Path, min_pixels: int = DEFAULT_MIN_PIXELS, max_pixels: int = DEFAULT_MAX_PIXELS,
               factor: int = 28) -> Image.Image:
    """Open an image as RGB, resized to the grid the model will see."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read image ({exc})") from None
    h, w = fit_size(im.height, im.width, min_pixels, max_pixels, factor)
    if (h, w) != (im.height, im.width):
        im = im.resize((w, h), Image.Resampling.BICUBIC)
    return im


def load_record_images(record, processor) -> list[Image.Image]:
    """The record's images, sized for `processor`. Paths come from `record.image_paths()`, which resolves links and
    refuses one that leaves the record's folder (files.inside) unless the user allowed it: checked at use, not only
    at read time, so a link swapped in after reading is still caught."""
    lo, hi, factor = pixel_limits(processor)
    return [load_image(p, lo, hi, factor) for p in record.image_paths()]
