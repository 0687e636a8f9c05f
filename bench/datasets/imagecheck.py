"""Checks of image files done when a dataset is opened.

Two levels:

- ``"header"``: read the file's structure without decoding pixels: the size from the
  header, and whether the file holds all the bytes its header promises (PNG chunks up to
  ``IEND``; TIFF strips or tiles; BMP pixel array). Formats it does not parse (JPEG, PGM...)
  are decoded instead.
- ``"full"``: the header check, then a full decode with :func:`read_grayscale`.

``"none"`` skips both. Problems are reported as :class:`Problem` objects of kind
``unreadable`` or ``wrong_size``, each naming the file.
"""

from __future__ import annotations

import logging
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from bench.datasets.base import ImageError, Problem, read_grayscale

log = logging.getLogger(__name__)

VALIDATION_LEVELS = ("full", "header", "none")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_level(level: str) -> str:
    """Return ``level`` if it is a known validation level, else raise ValueError."""
    if level not in VALIDATION_LEVELS:
        raise ValueError(f"validate must be one of {', '.join(VALIDATION_LEVELS)}, not {level!r}")
    return level


#: Most pixels an image may declare (a 1000 ppi ten-print card is about 30 M). Larger
#: ones are refused from their header, before a decoder allocates them: a small PNG can
#: declare 30000 x 30000 pixels and take gigabytes to decode.
MAX_IMAGE_PIXELS = 64_000_000


def check_declared_size(path: Path, width: int, height: int) -> None:
    """Raise ImageError when an image declares more than :data:`MAX_IMAGE_PIXELS`."""
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageError(f"{path}: the header declares {width}x{height} pixels ({width * height / 1e6:.0f} M), "
                         f"more than the {MAX_IMAGE_PIXELS / 1e6:.0f} M a fingerprint image can need; "
                         f"refused without decoding")


def declared_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG, TIFF or BMP file (None for other
    formats), refused by :func:`check_declared_size` when too large; ImageError names the
    file when the header is unreadable."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(16)
            f.seek(0)
            if head.startswith(_PNG_SIGNATURE):
                found = _probe_png(f, size, path)
            elif head[:4] in (b"II*\x00", b"MM\x00*"):
                found = _probe_tiff(f, size, path)
            elif head[:2] == b"BM":
                found = _probe_bmp(f, size, path)
            else:
                return None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    except struct.error as exc:
        raise ImageError(f"{path}: truncated or corrupt header") from exc
    check_declared_size(path, *found)
    return found


def probe_image(path: Path) -> tuple[int, int]:
    """(width, height) of an image file read from its header; raises ImageError naming the
    file when it is empty, truncated, declares too many pixels or is not the format its
    content claims."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: file is empty")
    except OSError as exc:
        raise ImageError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    found = declared_size(path)
    if found is not None:
        return found
    img = read_grayscale(path)  # a format not parsed here: decode it
    return int(img.shape[1]), int(img.shape[0])


def _probe_png(f, size: int, path: Path) -> tuple[int, int]:
    f.seek(8)
    width = height = None
    while True:
        head = f.read(8)
        if len(head) < 8:
            raise ImageError(f"{path}: truncated PNG (no IEND chunk; file is {size} bytes)")
        length, ctype = struct.unpack(">I4s", head)
        if ctype == b"IHDR":
            width, height = struct.unpack(">II", f.read(8))
            length -= 8
        end = f.tell() + length + 4  # data + CRC
        if end > size:
            raise ImageError(
                f"{path}: truncated PNG (chunk {ctype.decode('latin-1')} ends at byte {end}, "
                f"file is {size} bytes)"
            )
        if ctype == b"IEND":
            break
        f.seek(end)
    if not width or not height:
        raise ImageError(f"{path}: PNG without a valid IHDR chunk")
    return int(width), int(height)


def _probe_tiff(f, size: int, path: Path) -> tuple[int, int]:
    def at(offset: int, n: int) -> bytes:
        if offset + n > size:
            raise ImageError(f"{path}: truncated TIFF (needs byte {offset + n}, file is {size} bytes)")
        f.seek(offset)
        return f.read(n)

    bo = "<" if at(0, 2) == b"II" else ">"
    (ifd,) = struct.unpack(bo + "I", at(4, 4))
    (n,) = struct.unpack(bo + "H", at(ifd, 2))
    entries = at(ifd + 2, 12 * n)
    tags: dict[int, list[int]] = {}
    for k in range(n):
        entry = entries[12 * k : 12 * k + 12]
        tag, typ, count = struct.unpack(bo + "HHI", entry[:8])
        if tag not in (256, 257, 273, 279, 324, 325) or typ not in (3, 4):
            continue
        item = 2 if typ == 3 else 4
        raw = entry[8 : 8 + item * count] if item * count <= 4 else at(
            struct.unpack(bo + "I", entry[8:12])[0], item * count
        )
        tags[tag] = list(struct.unpack(bo + ("H" if typ == 3 else "I") * count, raw))
    if 256 not in tags or 257 not in tags:
        raise ImageError(f"{path}: TIFF without image width/height")
    width, height = tags[256][0], tags[257][0]
    for offsets_tag, counts_tag in ((273, 279), (324, 325)):
        if offsets_tag in tags and counts_tag in tags:
            end = max(o + c for o, c in zip(tags[offsets_tag], tags[counts_tag], strict=False))
            if end > size:
                raise ImageError(
                    f"{path}: truncated TIFF (image data ends at byte {end}, file is {size} bytes)"
                )
    return int(width), int(height)


def _probe_bmp(f, size: int, path: Path) -> tuple[int, int]:
    head = f.read(30)
    _, _, _, _, pix_off, dib = struct.unpack("<2sIHHII", head[:18])
    if dib == 12:  # BITMAPCOREHEADER
        width, height, _, bpp = struct.unpack("<HHHH", head[18:26])
        compression = 0
    else:
        width, height = struct.unpack("<ii", head[18:26])
        _, bpp = struct.unpack("<HH", head[26:30])
        compression = struct.unpack("<I", f.read(4))[0]
    height = abs(height)
    if width <= 0 or height == 0:
        raise ImageError(f"{path}: BMP with invalid size {width}x{height}")
    if compression in (0, 3):  # uncompressed (BI_RGB, BI_BITFIELDS)
        stride = ((width * bpp + 31) // 32) * 4
        end = pix_off + stride * height
        if end > size:
            raise ImageError(f"{path}: truncated BMP (pixel data ends at byte {end}, file is {size} bytes)")
    return int(width), int(height)


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log lines while files are checked (problems are reported)."""
    try:
        import cv2

        logging_mod = cv2.utils.logging
        old = logging_mod.getLogLevel()
        logging_mod.setLogLevel(logging_mod.LOG_LEVEL_SILENT)
    except Exception:  # pragma: no cover - depends on the OpenCV build
        yield
        return
    try:
        yield
    finally:
        logging_mod.setLogLevel(old)


def _check_one(path: Path, expected_size: tuple[int, int] | None, level: str) -> Problem | None:
    try:
        width, height = probe_image(path)
        if level == "full":
            img = read_grayscale(path)
            width, height = int(img.shape[1]), int(img.shape[0])
    except ImageError as exc:
        return Problem("unreadable", str(path), str(exc))
    if expected_size is not None and (width, height) != tuple(expected_size):
        w, h = expected_size
        return Problem(
            "wrong_size", str(path), f"{path}: image is {width}x{height} pixels, the dataset's images are {w}x{h}"
        )
    return None


def check_files(
    files: Sequence[tuple[str, Path]],
    expected_size: tuple[int, int] | None,
    level: str = "full",
) -> dict[str, Problem]:
    """Check ``(sample_id, path)`` pairs; returns the problem found for each bad sample."""
    check_level(level)
    if level == "none" or not files:
        return {}
    results: dict[str, Problem] = {}
    with _quiet_opencv():
        if len(files) < 64:
            found = [_check_one(p, expected_size, level) for _, p in files]
        else:
            workers = min(8, os.cpu_count() or 1)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                found = list(pool.map(lambda item: _check_one(item[1], expected_size, level), files))
    for (sample_id, _), problem in zip(files, found, strict=True):
        if problem is not None:
            results[sample_id] = problem
    if results:
        log.warning("%d of %d image files have problems", len(results), len(files))
    return results
