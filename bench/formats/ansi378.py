"""ANSI INCITS 378-2004 finger minutiae records: read and write.

Layout (big-endian)::

    general header, 26 bytes (30 with the long length field)
      0   4  "FMR\\0"              format identifier
      4   4  " 20\\0"              version (the same as ISO 19794-2:2005)
      8   2  record length         or 0 followed by a 4-byte length (records of 64 KiB and more)
      10  4  CBEFF product id      owner (2) and type (2)
      14  2  capture equipment     4-bit compliance, 12-bit device id
      16  2  image width           pixels
      18  2  image height
      20  2  x resolution          pixels per centimetre
      22  2  y resolution
      24  1  number of finger views
      25  1  reserved
    per finger view: as in ISO/IEC 19794-2:2005, except the angle unit: 2 degrees (0-179)

The identifier and version are those of an ISO 2005 record; the two are told apart by
the length field (2 bytes here, 4 bytes there), see :func:`looks_like_ansi`.
"""

from __future__ import annotations

import struct
from typing import Sequence

from bench.formats.iso19794_2 import DEFAULT_DPI, MINUTIA_SIZE, VERSION_2005, VIEW_HEADER, _bytes
from bench.formats.records import (
    ANSI_2004, ANSI_ANGLE_UNIT_DEG, MAGIC, FingerView, FormatError, MinutiaeRecord, as_views,
    dpi_from_ppcm, parse_minutiae, ppcm_from_dpi, views_body,
)
from bench.template import Template

HEADER = 26
LONG_HEADER = 30


def looks_like_ansi(data: bytes) -> bool:
    """Is a record with the "FMR\\0 20\\0" identifier an ANSI 378 record rather than ISO?

    An ISO record has a 4-byte length at offset 8, an ANSI one a 2-byte length (or 0 and
    a 4-byte length of at least 64 KiB). Exact lengths decide; for a truncated record,
    a non-zero value in bytes 8-9 means ANSI (an ISO record that long would exceed
    64 KiB), and zero there followed by a value below 24 means a long ANSI length.
    """
    if len(data) < 12:
        return False
    (u32,) = struct.unpack_from(">I", data, 8)
    (u16,) = struct.unpack_from(">H", data, 8)
    if u32 == len(data):
        return False
    if u16 == len(data):
        return True
    if u16 != 0:
        return u16 >= HEADER
    (low,) = struct.unpack_from(">H", data, 10)
    return low < 24


def decode(data: bytes, source: str = "<bytes>") -> MinutiaeRecord:
    """Parse an ANSI INCITS 378-2004 record; errors name ``source`` and the problem."""
    data = bytes(data)

    def fail(why: str) -> FormatError:
        return FormatError(f"{source}: not a valid ANSI INCITS 378-2004 record: {why}")

    if len(data) < 12 or data[:4] != MAGIC or data[4:8] != VERSION_2005:
        raise fail(f"it does not start with {MAGIC + VERSION_2005!r}")
    (length,) = struct.unpack_from(">H", data, 8)
    pos = 10
    if length == 0:
        if len(data) < 14:
            raise fail(f"{len(data)} bytes: the long record length (4 bytes at offset 10) runs past the end")
        (length,) = struct.unpack_from(">I", data, 10)
        pos = 14
    if length != len(data):
        more = "truncated" if length > len(data) else "followed by extra bytes"
        raise fail(f"the record length field says {length} bytes but there are {len(data)} "
                   f"({more} by {_bytes(abs(length - len(data)))})")
    if len(data) < pos + 16:
        raise fail(f"{len(data)} bytes, shorter than the header")
    owner, ptype, equipment, width, height, xres, yres, n_views, _ = struct.unpack_from(">HHHHHHHBB", data, pos)
    pos += 16
    if width == 0 or height == 0:
        raise fail(f"image size {width}x{height}")
    if n_views == 0:
        raise fail("no finger view")
    dpi = dpi_from_ppcm(xres) if xres else DEFAULT_DPI
    header = {"cbeff_owner": owner, "cbeff_type": ptype, "capture_equipment_compliance": equipment >> 12,
              "capture_device_id": equipment & 0x0FFF, "width": width, "height": height,
              "x_resolution_ppcm": xres, "y_resolution_ppcm": yres}
    views: list[FingerView] = []
    for v in range(1, n_views + 1):
        if pos + VIEW_HEADER > len(data):
            raise fail(f"view {v} of {n_views}: its header runs past the end (offset {pos})")
        fpos, vn_it, fq, n = struct.unpack_from(">BBBB", data, pos)
        pos += VIEW_HEADER
        if fq > 100:
            raise fail(f"view {v}: finger quality {fq}, above 100")
        if pos + MINUTIA_SIZE * n + 2 > len(data):
            raise fail(f"view {v}: {n} minutiae ({MINUTIA_SIZE * n} bytes from offset {pos}) run past the end")
        minutiae = parse_minutiae(data, pos, n, MINUTIA_SIZE, ANSI_ANGLE_UNIT_DEG, width=width, height=height,
                                  fail=lambda why, v=v: fail(f"view {v}: {why}"))
        bad = data[pos + 4 : pos + MINUTIA_SIZE * n : MINUTIA_SIZE]
        if any(b >= 180 for b in bad):
            raise fail(f"view {v}: an angle code of {max(bad)}; ANSI 378 codes are 0-179 (2-degree units)")
        pos += MINUTIA_SIZE * n
        (ext_len,) = struct.unpack_from(">H", data, pos)
        pos += 2
        if pos + ext_len > len(data):
            raise fail(f"view {v}: {ext_len} bytes of extended data run past the end")
        ext = data[pos : pos + ext_len]
        pos += ext_len
        extra = {"format": ANSI_2004, "finger_position": fpos, "view_number": vn_it >> 4,
                 "impression_type": vn_it & 0x0F, "finger_quality": fq}
        views.append(FingerView(Template(minutiae, width, height, dpi, extra=extra), fpos, vn_it >> 4,
                                vn_it & 0x0F, fq, ext))
    if pos != len(data):
        raise fail(f"{len(data) - pos} bytes are left after the last finger view")
    return MinutiaeRecord(ANSI_2004, views, header, source)


def encode(
    views: Template | FingerView | Sequence[Template | FingerView],
    *,
    cbeff_owner: int = 0,
    cbeff_type: int = 0,
    capture_device_id: int = 0,
    capture_equipment_compliance: int = 0,
) -> bytes:
    """An ANSI INCITS 378-2004 record holding these views (a Template is one view).

    Quantisation as in ISO 2005 except the angle: nearest multiple of 2 degrees.
    """
    items = as_views(views)
    first = items[0].template
    body = views_body(items, ANSI_2004, ANSI_ANGLE_UNIT_DEG, 180)
    res = ppcm_from_dpi(first.dpi)
    rest = struct.pack(">HHHHHHHBB", cbeff_owner, cbeff_type,
                       (capture_equipment_compliance << 12) | capture_device_id,
                       first.width, first.height, res, res, len(items), 0) + bytes(body)
    total = HEADER + len(body)
    if total < 0x10000:
        length = struct.pack(">H", total)
    else:
        length = struct.pack(">HI", 0, total + 4)
    return MAGIC + VERSION_2005 + length + rest
