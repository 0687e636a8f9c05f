"""A tiny, dependency-free PNG writer for 8-bit grayscale images.

The encoder is fixed (filter "Sub" on every row, zlib level 6, no metadata chunks), so
the file bytes depend only on the pixels and on zlib: the same pixels give the same
file wherever the same zlib is used (pixel digests are recorded as well).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png_gray(image: np.ndarray) -> bytes:
    """PNG bytes of a 2-D uint8 array."""
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError("encode_png_gray needs a 2-D uint8 array")
    h, w = image.shape
    sub = np.empty((h, w + 1), dtype=np.uint8)
    sub[:, 0] = 1  # filter type Sub
    sub[:, 1] = image[:, 0]
    sub[:, 2:] = image[:, 1:] - image[:, :-1]  # uint8 arithmetic wraps modulo 256, as PNG wants
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return _SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(sub.tobytes(), 6)) + _chunk(b"IEND", b"")
