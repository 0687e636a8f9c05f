"""NBIS ``.xyt`` minutiae files (MINDTCT output, BOZORTH3 input): read and write.

One minutia per line, ``x y theta quality`` (integers; quality 0-100; a fifth column
with the type letter ``E``/``B``, written by some tools, is read when present).

Two conventions exist, and a file does not say which it uses:

``"nist"`` (MINDTCT's default): origin at the bottom-left corner, so ``y = height - row``,
    and ``theta`` in degrees counter-clockwise pointing opposite to the ISO/M1
    direction. To ISO: ``x``, ``row = height - y``, ``angle = (theta + 180) mod 360``.
    Reading needs the image height.
``"m1"`` (``mindtct -m1``, ANSI INCITS 378 / ISO axes): origin at the top-left corner,
    ``y`` is the row, ``theta`` is the ISO angle in degrees.

Writing rounds positions to whole pixels (halves up) and angles to whole degrees.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.formats.records import XYT, FormatError
from bench.template import Template, make_minutiae

CONVENTIONS = ("nist", "m1")
#: Largest coordinate read (the binary records hold 14 bits; no scanner image is wider).
MAX_COORDINATE = (1 << 14) - 1
_TYPE_LETTERS = {"E": 1, "B": 2, "O": 0}


def _check_convention(convention: str) -> str:
    c = str(convention).lower()
    if c not in CONVENTIONS:
        raise ValueError(f"unknown .xyt convention {convention!r}; use one of {', '.join(CONVENTIONS)}")
    return c


def parse(
    text: str,
    *,
    height: int | None = None,
    width: int | None = None,
    dpi: float = 500.0,
    convention: str = "nist",
    source: str = "<text>",
) -> Template:
    """Minutiae of an ``.xyt`` text in this project's conventions.

    ``height`` is required for the NIST convention (its y axis points up from the
    bottom edge). Without ``width`` (and, for ``m1``, ``height``) the image size is
    taken as one more than the largest coordinate, which is recorded in
    ``Template.extra["size_inferred"]``.
    """
    convention = _check_convention(convention)
    rows: list[tuple[float, float, float, float, int]] = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) < 3:
            raise FormatError(f"{source}, line {n}: expected 'x y theta [quality]', got {line.strip()!r}")
        try:
            x, y, theta = (float(p) for p in parts[:3])
            quality = float(parts[3]) if len(parts) > 3 else 0.0
        except ValueError:
            raise FormatError(f"{source}, line {n}: not numbers: {line.strip()!r}") from None
        kind = 0
        if len(parts) > 4:
            if parts[4].upper() not in _TYPE_LETTERS:
                raise FormatError(f"{source}, line {n}: unknown minutia type {parts[4]!r} (E, B or O)")
            kind = _TYPE_LETTERS[parts[4].upper()]
        if not all(np.isfinite(v) for v in (x, y, theta, quality)):
            raise FormatError(f"{source}, line {n}: not finite: {line.strip()!r}")
        if not (0 <= x <= MAX_COORDINATE and 0 <= y <= MAX_COORDINATE):
            raise FormatError(f"{source}, line {n}: x={x:g}, y={y:g} is not a pixel position (0 to {MAX_COORDINATE})")
        if not -360 <= theta <= 360:
            raise FormatError(f"{source}, line {n}: theta={theta:g} is not an angle in degrees (0 to 359)")
        if not 0 <= quality <= 100:
            raise FormatError(f"{source}, line {n}: quality {quality:g} is outside 0-100")
        rows.append((x, y, theta, quality, kind))
    a = np.array([r[:4] for r in rows], dtype=np.float64).reshape(-1, 4)
    kinds = np.array([r[4] for r in rows], dtype=np.int64)
    inferred = False
    if convention == "nist":
        if height is None:
            raise FormatError(f"{source}: the NIST .xyt convention (origin bottom-left) needs the image height "
                              f"to convert y; pass height=, or convention='m1' for top-left files")
        row = height - a[:, 1]
        angle_deg = np.mod(a[:, 2] + 180.0, 360.0)
    else:
        row = a[:, 1]
        angle_deg = np.mod(a[:, 2], 360.0)
        if height is None:
            height, inferred = int(row.max()) + 1 if len(row) else 1, True
    if width is None:
        width, inferred = int(a[:, 0].max()) + 1 if len(a) else 1, True
    _check_inside(a[:, 0], row, int(width), int(height), source)
    minutiae = make_minutiae(a[:, 0], row, np.radians(angle_deg), kinds, a[:, 3])
    extra = {"format": XYT, "xyt_convention": convention}
    if inferred:
        extra["size_inferred"] = True
    return Template(minutiae, int(width), int(height), float(dpi), extra=extra)


def _check_inside(x: np.ndarray, row: np.ndarray, width: int, height: int, source: str) -> None:
    """Refuse a minutia outside the image (one pixel of slack: NIST y runs from 1 to height)."""
    if width <= 0 or height <= 0:
        raise FormatError(f"{source}: image size {width}x{height} is not positive")
    outside = (x > width) | (row < -1) | (row > height)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise FormatError(f"{source}: minutia {i + 1} (x={x[i]:g}, row {row[i]:g}) lies outside the "
                          f"{width}x{height} image")


def read(path: str | Path, **kwargs) -> Template:
    """:func:`parse` of a file; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not an .xyt text file (non-ASCII bytes)") from None
    except OSError as exc:
        raise FormatError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return parse(text, source=str(path), **kwargs)


def format_text(template: Template, *, convention: str = "nist", with_type: bool = False) -> str:
    """The ``.xyt`` text of a template: integer x, y, theta and quality per line."""
    convention = _check_convention(convention)
    m = template.minutiae
    x = np.floor(m["x"].astype(np.float64) + 0.5).astype(np.int64)
    row = np.floor(m["y"].astype(np.float64) + 0.5).astype(np.int64)
    deg = np.degrees(m["angle"].astype(np.float64))
    if convention == "nist":
        y = template.height - row
        theta = np.floor(np.mod(deg - 180.0, 360.0) + 0.5).astype(np.int64) % 360
    else:
        y = row
        theta = np.floor(deg + 0.5).astype(np.int64) % 360
    q = np.clip(np.floor(m["quality"].astype(np.float64) + 0.5), 0, 100).astype(np.int64)
    letters = {1: "E", 2: "B"}
    lines = []
    for i in range(m.size):
        line = f"{x[i]} {y[i]} {theta[i]} {q[i]}"
        if with_type:
            line += f" {letters.get(int(m['type'][i]), 'O')}"
        lines.append(line)
    return "".join(line + "\n" for line in lines)


def write(template: Template, path: str | Path, **kwargs) -> None:
    Path(path).write_text(format_text(template, **kwargs), encoding="ascii")
