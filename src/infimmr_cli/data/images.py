"""Image loading with one resize rule for every consumer.

Peers' users hit "Image features and image tokens do not match" when vLLM and the HF processor resized the same image
differently. We resize each image once, here, to the processor's own pixel range on the 28-pixel grid, so whatever sees it
next (HF processor, vLLM, an embedder) finds nothing left to resize and counts the same number of image tokens.

This is also the one place an image file is decoded, so it is where a bad file is stopped: the header's size is checked
against `max_image_pixels()` before any pixel is decoded (a 30000x30000 PNG of a few hundred bytes would otherwise cost
gigabytes), and anything that goes wrong reading a file raises `ImageError` naming it. Every stage catches `ImageError`
per record: a bad image costs its record, never the run.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from PIL import Image

# Qwen2-VL's processor defaults, used when a processor does not say.
DEFAULT_MIN_PIXELS = 4 * 28 * 28
DEFAULT_MAX_PIXELS = 16384 * 28 * 28

# Largest image (width x height, from the header) we agree to decode: well under Pillow's decompression-bomb limit
# (89.5 M warns, 179 M raises; an image just under it costs about 1.3 GB to decode).
# INFIMMR_MAX_IMAGE_PIXELS changes it.
MAX_IMAGE_PIXELS = 50_000_000
MAX_IMAGE_PIXELS_ENV = "INFIMMR_MAX_IMAGE_PIXELS"


class ImageError(ValueError):
    """An image file that cannot be read or is over the size limit; the message names the file and the cause."""


def max_image_pixels() -> int:
    """The decode limit in pixels: INFIMMR_MAX_IMAGE_PIXELS when set (a positive integer), else MAX_IMAGE_PIXELS."""
    raw = os.environ.get(MAX_IMAGE_PIXELS_ENV, "").strip()
    if not raw:
        return MAX_IMAGE_PIXELS
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        from infimmr_cli.errors import UsageError

        raise UsageError(f"{MAX_IMAGE_PIXELS_ENV}={raw!r}: expected a positive whole number of pixels")
    return value


def _check_size(path, width: int, height: int) -> None:
    limit = max_image_pixels()
    if width * height > limit:
        raise ImageError(f"{path}: image is {width}x{height} = {width * height:,} pixels, over the limit of {limit:,} "
                         f"(set {MAX_IMAGE_PIXELS_ENV} to change it)")


def _open(path) -> Image.Image:
    """Open a file and read its header only, size-checked; every failure is an ImageError naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit, below Pillow's, decides
            im = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: image too large to decode ({exc})") from None
    except FileNotFoundError:
        raise ImageError(f"{path}: image file not found") from None
    except Exception as exc:  # Pillow raises many kinds (OSError, SyntaxError, struct.error ...) for a bad file
        raise ImageError(f"{path}: cannot read image ({type(exc).__name__}: {exc})") from None
    try:
        _check_size(path, *im.size)
    except ImageError:
        im.close()
        raise
    return im


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding; ImageError when unreadable or over the limit."""
    with _open(path) as im:
        return im.size


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
    """Open an image as RGB, resized to the grid the model will see; ImageError when it cannot be."""
    with _open(path) as im:
        try:
            im = im.convert("RGB")
        except Exception as exc:  # truncated or corrupt pixel data: found only when decoding
            raise ImageError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from None
    try:
        h, w = fit_size(im.height, im.width, min_pixels, max_pixels, factor)
    except ValueError as exc:  # e.g. an aspect ratio over 200 that the model's resize rule refuses
        raise ImageError(f"{path}: {exc}") from None
    if (h, w) != (im.height, im.width):
        im = im.resize((w, h), Image.Resampling.BICUBIC)
    return im


def load_record_images(record, processor) -> list[Image.Image]:
    """The record's images, sized for `processor`. Paths come from `record.image_paths()`, which resolves links and
    refuses one that leaves the record's folder (files.inside) unless the user allowed it: checked at use, not only
    at read time, so a link swapped in after reading is still caught."""
    lo, hi, factor = pixel_limits(processor)
    return [load_image(p, lo, hi, factor) for p in record.image_paths()]
