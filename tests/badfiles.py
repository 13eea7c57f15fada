"""Hostile and broken files for the "one bad item costs that item" tests: written byte by byte, no library help."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A PNG of ~100 bytes whose header (valid CRC) claims width x height RGB pixels: a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))
    return path


def truncated_png(path: Path, size=(64, 48)) -> Path:
    """A real PNG cut in the middle of its pixel data: the header reads, decoding fails."""
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(noise).save(buf, format="PNG")
    data = buf.getvalue()
    path.write_bytes(data[: len(data) // 2])
    return path


def garbage_image(path: Path) -> Path:
    """Not an image at all, under an image's name."""
    path.write_bytes(b"this is not a picture\x00\x01\x02" * 10)
    return path
