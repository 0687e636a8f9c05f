"""What the standard minutiae records have in common: finger views, errors, quantisation.

A record (ISO/IEC 19794-2, ANSI INCITS 378) holds one or more finger views; each view is
read into a :class:`~bench.template.Template` in this project's conventions (x, y in
pixels from the top-left corner, y down; angle in radians counter-clockwise from the x
axis in the ISO direction; type 0 other, 1 ending, 2 bifurcation; quality 0-100), and
the view's header fields are kept beside it.

Writing quantises: positions to whole pixels (halves up), angles to the record's unit
(360/256 degrees in ISO, 2 degrees in ANSI 378, nearest code), quality to an integer
0-100. Reading gives back exactly the stored values.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from bench.template import Template, TemplateError, make_minutiae

#: Format names (also the ``native_format`` of templates read from such records).
ISO_2005 = "iso19794-2:2005"
ISO_2011 = "iso19794-2:2011"
ANSI_2004 = "ansi378-2004"
XYT = "xyt"

MAGIC = b"FMR\x00"
MAX_COORDINATE = (1 << 14) - 1  # x and y have 14 bits
MAX_MINUTIAE = 255  # one byte counts them
ISO_ANGLE_UNIT_DEG = 360.0 / 256.0
ANSI_ANGLE_UNIT_DEG = 2.0
CM_PER_INCH = 2.54

#: Two-bit minutia type codes of both standards (11 is reserved and read as "other").
TYPE_BITS = {0: 0b00, 1: 0b01, 2: 0b10}


class FormatError(TemplateError):
    """A template file that is malformed, truncated or not of the expected format.

    The message names the file (or ``<bytes>``) and what is wrong.
    """


@dataclass(frozen=True)
class FingerView:
    """One finger view of a record: the minutiae and the view's header fields."""

    template: Template
    finger_position: int = 0
    view_number: int = 0
    impression_type: int = 0
    finger_quality: int = 0
    extended_data: bytes = b""


@dataclass(frozen=True)
class MinutiaeRecord:
    """A parsed record: its format, its views and its general header fields."""

    format: str
    views: list[FingerView]
    header: dict[str, Any] = field(default_factory=dict)
    source: str = "<bytes>"

    def template(self, view: int = 0) -> Template:
        """The minutiae of one view (the first by default)."""
        if not 0 <= view < len(self.views):
            raise FormatError(f"{self.source}: holds {len(self.views)} finger view(s); view {view} was asked for")
        return self.views[view].template


def dpi_from_ppcm(ppcm: int) -> float:
    """Resolution in dots per inch from the records' pixels per centimetre (197 -> 500)."""
    return float(round(ppcm * CM_PER_INCH))


def ppcm_from_dpi(dpi: float) -> int:
    """Pixels per centimetre for a resolution in dpi (500 -> 197, 569 -> 224)."""
    return int(np.floor(float(dpi) / CM_PER_INCH + 0.5))


def quantise_positions(minutiae: np.ndarray, width: int | None = None,
                       height: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Whole-pixel x and y (halves up), clipped to the 14 bits the records hold and,
    when given, to the image (a minutia on its last half pixel stays inside it)."""
    x_max = MAX_COORDINATE if width is None else min(MAX_COORDINATE, width - 1)
    y_max = MAX_COORDINATE if height is None else min(MAX_COORDINATE, height - 1)
    x = np.clip(np.floor(minutiae["x"].astype(np.float64) + 0.5), 0, x_max).astype(np.int64)
    y = np.clip(np.floor(minutiae["y"].astype(np.float64) + 0.5), 0, y_max).astype(np.int64)
    return x, y


def angle_codes(minutiae: np.ndarray, unit_deg: float, n_codes: int) -> np.ndarray:
    """Nearest angle code in units of ``unit_deg`` (wrapping at ``n_codes``)."""
    deg = np.degrees(minutiae["angle"].astype(np.float64))
    return (np.floor(deg / unit_deg + 0.5).astype(np.int64)) % n_codes


def type_codes(minutiae: np.ndarray) -> np.ndarray:
    bits = np.zeros(minutiae.size, dtype=np.int64)
    for kind, b in TYPE_BITS.items():
        bits[minutiae["type"] == kind] = b
    return bits


def types_from_bits(bits: np.ndarray) -> np.ndarray:
    return np.select([bits == 0b01, bits == 0b10], [1, 2], 0)


def qualities(minutiae: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(minutiae["quality"].astype(np.float64) + 0.5), 0, 100).astype(np.int64)


def check_view_fields(template: Template, *, finger_position: int, view_number: int,
                      impression_type: int, finger_quality: int, fmt: str) -> None:
    """Refuse what a record cannot hold, naming the field."""
    n = len(template)
    if n > MAX_MINUTIAE:
        raise FormatError(f"{fmt}: a finger view holds at most {MAX_MINUTIAE} minutiae, the template has {n}")
    for name, value, hi in (
        ("finger_position", finger_position, 255),
        ("view_number", view_number, 15),
        ("impression_type", impression_type, 15),
        ("finger_quality", finger_quality, 100),
    ):
        if not 0 <= int(value) <= hi:
            raise FormatError(f"{fmt}: {name} must be from 0 to {hi}, got {value}")
    if not (0 < template.width <= 0xFFFF and 0 < template.height <= 0xFFFF):
        raise FormatError(f"{fmt}: image size {template.width}x{template.height} does not fit the record")


def minutiae_bytes(template: Template, unit_deg: float, n_codes: int) -> bytes:
    """The 6-byte minutia records shared by ISO 19794-2:2005 and ANSI 378-2004."""
    m = template.minutiae
    x, y = quantise_positions(m, template.width, template.height)
    rec = np.empty((m.size, 6), dtype=np.uint8)
    word1 = (type_codes(m) << 14) | x
    rec[:, 0] = word1 >> 8
    rec[:, 1] = word1 & 0xFF
    rec[:, 2] = (y >> 8) & 0x3F
    rec[:, 3] = y & 0xFF
    rec[:, 4] = angle_codes(m, unit_deg, n_codes)
    rec[:, 5] = qualities(m)
    return rec.tobytes()


def as_views(views) -> list[FingerView]:
    """A Template, a FingerView or a sequence of them, as a non-empty list of views."""
    if isinstance(views, (Template, FingerView)):
        views = [views]
    out = [v if isinstance(v, FingerView) else FingerView(v) for v in views]
    if not out:
        raise FormatError("a record needs at least one finger view")
    return out


def views_body(items: Sequence[FingerView], fmt: str, unit_deg: float, n_codes: int) -> bytes:
    """The finger views of an ISO 19794-2:2005 or ANSI 378-2004 record: per view its
    4-byte header, 6-byte minutiae and extended data. All views share the first view's
    image size (the general header holds it once)."""
    if len(items) > 255:
        raise FormatError(f"{fmt}: a record holds at most 255 finger views")
    first = items[0].template
    body = bytearray()
    for v in items:
        t = v.template
        check_view_fields(t, finger_position=v.finger_position, view_number=v.view_number,
                          impression_type=v.impression_type, finger_quality=v.finger_quality, fmt=fmt)
        if (t.width, t.height) != (first.width, first.height):
            raise FormatError(f"{fmt}: all views of a record share one image size; got "
                              f"{first.width}x{first.height} and {t.width}x{t.height}")
        body += struct.pack(">BBBB", v.finger_position, (v.view_number << 4) | v.impression_type,
                            v.finger_quality, len(t))
        body += minutiae_bytes(t, unit_deg, n_codes)
        body += struct.pack(">H", len(v.extended_data)) + v.extended_data
    return bytes(body)


def parse_minutiae(data: bytes, offset: int, count: int, size: int, unit_deg: float, *,
                   width: int, height: int, fail: Callable[[str], FormatError],
                   quality_codes: tuple[int, ...] = ()) -> np.ndarray:
    """Columns (x, y, angle radians, type, quality) of ``count`` records of ``size`` bytes.

    What the standards forbid is refused through ``fail(why)``: the reserved type code 11,
    the two reserved bits above y set, a quality above 100 (except ``quality_codes``, read
    as 0: 254 "not reported" and 255 "failed" in ISO 2011), and a minutia outside the
    image the record declares.
    """
    raw = np.frombuffer(data, dtype=np.uint8, count=count * size, offset=offset).reshape(count, size)
    raw = raw.astype(np.int64)
    word1 = (raw[:, 0] << 8) | raw[:, 1]
    word2 = (raw[:, 2] << 8) | raw[:, 3]
    quality = raw[:, 5] if size >= 6 else np.zeros(count, dtype=np.int64)
    x, y, kind = word1 & MAX_COORDINATE, word2 & MAX_COORDINATE, word1 >> 14

    def first(mask: np.ndarray) -> int:
        return int(np.flatnonzero(mask)[0]) + 1

    if (kind == 0b11).any():
        raise fail(f"minutia {first(kind == 0b11)}: the reserved type code 11")
    if (word2 >> 14).any():
        raise fail(f"minutia {first((word2 >> 14) != 0)}: reserved bits above its y coordinate are set")
    bad_quality = (quality > 100) & ~np.isin(quality, quality_codes)
    if bad_quality.any():
        i = first(bad_quality)
        raise fail(f"minutia {i}: quality {int(quality[i - 1])}, above 100")
    outside = (x >= width) | (y >= height)
    if outside.any():
        i = first(outside)
        raise fail(f"minutia {i} at x={int(x[i - 1])}, y={int(y[i - 1])} lies outside the declared "
                   f"{width}x{height} image")
    return make_minutiae(
        x,
        y,
        np.radians(raw[:, 4] * unit_deg),
        types_from_bits(kind),
        np.where(quality <= 100, quality, 0),
    )
