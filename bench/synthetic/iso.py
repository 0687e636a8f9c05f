"""A minimal ISO/IEC 19794-2:2005 finger minutiae record: encoder and decoder of the
record format with one or more finger views and no extended data.

Layout (big-endian): a 24-byte header - ``FMR\\0``, version `` 20\\0``, 4-byte record
length, 2-byte capture equipment (4-bit compliance, 12-bit device id), image width and
height, horizontal and vertical resolution in pixels per centimetre, number of finger
views, one reserved byte; per view 4 bytes - finger position, view number (high nibble)
and impression type (low nibble), finger quality, number of minutiae; 6 bytes per
minutia - type in 2 bits (01 ending, 10 bifurcation, 00 other) and x in 14 bits, 2
reserved bits and y in 14 bits, the angle in units of 360/256 degrees counter-clockwise
from the x axis, quality 0-100; then the 2-byte length of the view's extended data.
Coordinates are pixels with the origin at the top-left corner, y pointing down.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from bench.template import Template, make_minutiae

MAGIC = b"FMR\x00"
VERSION = b" 20\x00"
HEADER_SIZE = 24
VIEW_HEADER_SIZE = 4
MINUTIA_SIZE = 6
ANGLE_UNIT_DEG = 360.0 / 256.0
MAX_MINUTIAE = 255
MAX_COORDINATE = (1 << 14) - 1
_TYPE_BITS = {0: 0b00, 1: 0b01, 2: 0b10}


class IsoRecordError(ValueError):
    """Bytes that are not a well-formed ISO/IEC 19794-2:2005 record."""


def pixels_per_cm(dpi: float) -> int:
    """Resolution in the record's unit (pixels per centimetre): 500 dpi gives 197."""
    return int(round(dpi / 2.54))


def encode(
    template: Template,
    *,
    finger_position: int = 0,
    impression_type: int = 0,
    finger_quality: int = 100,
    view_number: int = 0,
) -> bytes:
    """ISO/IEC 19794-2:2005 record with one view holding ``template``'s minutiae.

    Positions are rounded to whole pixels and angles to 360/256 degrees; more than 255
    minutiae cannot be stored in a view and raise ``ValueError``.
    """
    m = template.minutiae
    if m.size > MAX_MINUTIAE:
        raise ValueError(f"an ISO/IEC 19794-2 view holds at most {MAX_MINUTIAE} minutiae, got {m.size}")
    for name, value, hi in (
        ("finger_position", finger_position, 10),
        ("impression_type", impression_type, 15),
        ("finger_quality", finger_quality, 100),
        ("view_number", view_number, 15),
    ):
        if not 0 <= int(value) <= hi:
            raise ValueError(f"{name} must be from 0 to {hi}, got {value}")
    if template.width > 0xFFFF or template.height > 0xFFFF:
        raise ValueError(f"image size {template.width}x{template.height} does not fit the record")
    length = HEADER_SIZE + VIEW_HEADER_SIZE + MINUTIA_SIZE * m.size + 2
    res = pixels_per_cm(template.dpi)
    out = bytearray()
    out += MAGIC + VERSION
    out += struct.pack(">IHHHHHBB", length, 0, template.width, template.height, res, res, 1, 0)
    out += struct.pack(">BBBB", finger_position, (view_number << 4) | impression_type, finger_quality, m.size)
    x = np.clip(np.round(m["x"].astype(np.float64)), 0, MAX_COORDINATE).astype(np.int64)
    y = np.clip(np.round(m["y"].astype(np.float64)), 0, MAX_COORDINATE).astype(np.int64)
    a = np.round(np.degrees(m["angle"].astype(np.float64)) / ANGLE_UNIT_DEG).astype(np.int64) % 256
    for i in range(m.size):
        kind = _TYPE_BITS.get(int(m["type"][i]), 0b00)
        out += struct.pack(">HHBB", (kind << 14) | int(x[i]), int(y[i]), int(a[i]), min(int(m["quality"][i]), 100))
    out += struct.pack(">H", 0)
    assert len(out) == length
    return bytes(out)


@dataclass(frozen=True)
class IsoView:
    finger_position: int
    view_number: int
    impression_type: int
    finger_quality: int
    template: Template


def decode(data: bytes, source: str = "<bytes>") -> list[IsoView]:
    """The finger views of an ISO/IEC 19794-2:2005 record (extended data is skipped);
    malformed or truncated bytes raise :class:`IsoRecordError` naming ``source``."""
    def fail(why: str) -> IsoRecordError:
        return IsoRecordError(f"{source}: not a valid ISO/IEC 19794-2:2005 record: {why}")

    if len(data) < HEADER_SIZE:
        raise fail(f"{len(data)} bytes, shorter than the {HEADER_SIZE}-byte header")
    if data[:4] != MAGIC:
        raise fail(f"format identifier {data[:4]!r}, expected {MAGIC!r}")
    if data[4:8] != VERSION:
        raise fail(f"version {data[4:8]!r}, expected {VERSION!r}")
    length, _equipment, width, height, xres, yres, views, _reserved = struct.unpack(">IHHHHHBB", data[8:HEADER_SIZE])
    if length != len(data):
        raise fail(f"record length field says {length} bytes, the data has {len(data)}")
    if width == 0 or height == 0:
        raise fail(f"image size {width}x{height}")
    dpi = float(round((xres if xres else 197) * 2.54))  # 197 px/cm is the usual 500 dpi
    out: list[IsoView] = []
    pos = HEADER_SIZE
    for v in range(views):
        if pos + VIEW_HEADER_SIZE > len(data):
            raise fail(f"view {v + 1} header runs past the end")
        fpos, vn_it, fq, n = struct.unpack(">BBBB", data[pos : pos + 4])
        pos += 4
        end = pos + MINUTIA_SIZE * n
        if end + 2 > len(data):
            raise fail(f"view {v + 1}: {n} minutiae run past the end")
        raw = np.frombuffer(data[pos:end], dtype=np.dtype([("tx", ">u2"), ("y", ">u2"), ("a", "u1"), ("q", "u1")]))
        kind = raw["tx"] >> 14
        types = np.select([kind == 0b01, kind == 0b10], [1, 2], 0)
        minutiae = make_minutiae(
            raw["tx"] & MAX_COORDINATE,
            raw["y"] & MAX_COORDINATE,
            np.radians(raw["a"].astype(np.float64) * ANGLE_UNIT_DEG),
            types,
            raw["q"],
        )
        (ext_len,) = struct.unpack(">H", data[end : end + 2])
        pos = end + 2 + ext_len
        if pos > len(data):
            raise fail(f"view {v + 1}: extended data runs past the end")
        out.append(IsoView(fpos, vn_it >> 4, vn_it & 0x0F, fq, Template(minutiae, width, height, dpi)))
    if pos != len(data):
        raise fail(f"{len(data) - pos} bytes left after the last view")
    return out
