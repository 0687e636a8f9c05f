"""ISO/IEC 19794-2 finger minutiae records: read and write the 2005 edition, read 2011.

2005 layout (big-endian)::

    general header, 24 bytes
      0   4  "FMR\\0"              format identifier
      4   4  " 20\\0"              version
      8   4  record length         whole record, in bytes
      12  2  capture equipment     4-bit compliance, 12-bit device id
      14  2  image width           pixels
      16  2  image height
      18  2  x resolution          pixels per centimetre (197 ~ 500 dpi)
      20  2  y resolution
      22  1  number of finger views
      23  1  reserved
    per finger view
      0   1  finger position
      1   1  view number (high nibble), impression type (low nibble)
      2   1  finger quality 0-100
      3   1  number of minutiae n
      4   6n minutiae: type (2 bits: 01 ending, 10 bifurcation, 00 other) and x (14 bits);
             2 reserved bits and y (14 bits); angle in units of 360/256 degrees,
             counter-clockwise from the x axis; quality 0-100
      ..  2  extended data length, then that many bytes of extended data blocks

2011 layout: header "FMR\\0", "030\\0", 4-byte length, 2-byte number of finger
representations, 1-byte certification flag (15 bytes); each representation has a
4-byte length, capture date and time (9), device technology (1), vendor id (2), device
type id (2), quality records (count, then 5 bytes each), certification records if
flagged (count, then 3 bytes each), finger position (1), representation number (1),
x and y resolution in pixels per centimetre (2 + 2), impression type (1), width and
height (2 + 2), minutia field length (high nibble, 5 or 6) and ridge ending type (low
nibble) (1), number of minutiae (1), minutiae (5 or 6 bytes, as in 2005; quality 254
"not reported" and 255 "failed" are read as 0), extended data length (2) and data.
"""

from __future__ import annotations

import struct
from typing import Sequence

from bench.formats.records import (
    ISO_2005, ISO_2011, ISO_ANGLE_UNIT_DEG, MAGIC, FingerView, FormatError, MinutiaeRecord,
    as_views, dpi_from_ppcm, parse_minutiae, ppcm_from_dpi, views_body,
)
from bench.template import Template

VERSION_2005 = b" 20\x00"
VERSION_2011 = b"030\x00"
HEADER_2005 = 24
HEADER_2011 = 15
VIEW_HEADER = 4
MINUTIA_SIZE = 6

#: Default resolution assumed when a record leaves it at 0 (unknown).
DEFAULT_DPI = 500.0


def decode(data: bytes, source: str = "<bytes>") -> MinutiaeRecord:
    """Parse an ISO/IEC 19794-2 record of the 2005 or the 2011 edition.

    Raises :class:`FormatError` naming ``source`` and the problem (wrong identifier,
    unknown version, a length field that disagrees with the data, a view or its
    minutiae running past the end, bytes left over).
    """
    data = bytes(data)
    if len(data) < 8:
        raise FormatError(f"{source}: not an ISO/IEC 19794-2 record: {len(data)} bytes, too short for a header")
    if data[:4] != MAGIC:
        raise FormatError(f"{source}: not an ISO/IEC 19794-2 record: format identifier {data[:4]!r}, expected {MAGIC!r}")
    version = data[4:8]
    if version == VERSION_2005:
        return _decode_2005(data, source)
    if version == VERSION_2011:
        return _decode_2011(data, source)
    raise FormatError(f"{source}: unknown ISO/IEC 19794-2 version {version!r} (known: {VERSION_2005!r} for 2005, "
                      f"{VERSION_2011!r} for 2011)")


def _fail(source: str, fmt: str, why: str) -> FormatError:
    return FormatError(f"{source}: not a valid {_TITLE[fmt]} record: {why}")


_TITLE = {ISO_2005: "ISO/IEC 19794-2:2005", ISO_2011: "ISO/IEC 19794-2:2011"}


def _check_length(data: bytes, declared: int, source: str, fmt: str) -> None:
    if declared != len(data):
        more = "truncated" if declared > len(data) else "followed by extra bytes"
        raise _fail(source, fmt, f"the record length field says {declared} bytes but there are {len(data)} "
                                 f"({more} by {_bytes(abs(declared - len(data)))})")


def _bytes(n: int) -> str:
    return f"{n} byte" if n == 1 else f"{n} bytes"


def _skip_extended(data: bytes, pos: int, end: int, source: str, fmt: str, view: int) -> tuple[int, bytes]:
    if pos + 2 > end:
        raise _fail(source, fmt, f"view {view}: the extended data length (2 bytes at offset {pos}) runs past the end")
    (ext_len,) = struct.unpack_from(">H", data, pos)
    pos += 2
    if pos + ext_len > end:
        raise _fail(source, fmt, f"view {view}: {ext_len} bytes of extended data run past the end")
    return pos + ext_len, data[pos : pos + ext_len]


def _decode_2005(data: bytes, source: str) -> MinutiaeRecord:
    fmt = ISO_2005
    if len(data) < HEADER_2005:
        raise _fail(source, fmt, f"{len(data)} bytes, shorter than the {HEADER_2005}-byte header")
    length, equipment, width, height, xres, yres, n_views, _ = struct.unpack_from(">IHHHHHBB", data, 8)
    _check_length(data, length, source, fmt)
    if width == 0 or height == 0:
        raise _fail(source, fmt, f"image size {width}x{height}")
    if n_views == 0:
        raise _fail(source, fmt, "no finger view")
    dpi = dpi_from_ppcm(xres) if xres else DEFAULT_DPI
    header = {"capture_equipment_compliance": equipment >> 12, "capture_device_id": equipment & 0x0FFF,
              "width": width, "height": height, "x_resolution_ppcm": xres, "y_resolution_ppcm": yres}
    views: list[FingerView] = []
    pos = HEADER_2005
    for v in range(1, n_views + 1):
        if pos + VIEW_HEADER > len(data):
            raise _fail(source, fmt, f"view {v} of {n_views}: its header runs past the end (offset {pos})")
        fpos, vn_it, fq, n = struct.unpack_from(">BBBB", data, pos)
        pos += VIEW_HEADER
        if fq > 100:
            raise _fail(source, fmt, f"view {v}: finger quality {fq}, above 100")
        if pos + MINUTIA_SIZE * n > len(data):
            raise _fail(source, fmt, f"view {v}: {n} minutiae ({MINUTIA_SIZE * n} bytes from offset {pos}) "
                                     f"run past the end")
        minutiae = parse_minutiae(data, pos, n, MINUTIA_SIZE, ISO_ANGLE_UNIT_DEG, width=width, height=height,
                                  fail=lambda why, v=v: _fail(source, fmt, f"view {v}: {why}"))
        pos += MINUTIA_SIZE * n
        pos, ext = _skip_extended(data, pos, len(data), source, fmt, v)
        extra = {"format": fmt, "finger_position": fpos, "view_number": vn_it >> 4,
                 "impression_type": vn_it & 0x0F, "finger_quality": fq}
        views.append(FingerView(Template(minutiae, width, height, dpi, extra=extra), fpos, vn_it >> 4,
                                vn_it & 0x0F, fq, ext))
    if pos != len(data):
        raise _fail(source, fmt, f"{len(data) - pos} bytes are left after the last finger view")
    return MinutiaeRecord(fmt, views, header, source)


def _decode_2011(data: bytes, source: str) -> MinutiaeRecord:
    fmt = ISO_2011
    if len(data) < HEADER_2011:
        raise _fail(source, fmt, f"{len(data)} bytes, shorter than the {HEADER_2011}-byte header")
    length, n_reps, cert_flag = struct.unpack_from(">IHB", data, 8)
    _check_length(data, length, source, fmt)
    if n_reps == 0:
        raise _fail(source, fmt, "no finger representation")
    views: list[FingerView] = []
    pos = HEADER_2011
    for r in range(1, n_reps + 1):
        start = pos
        if pos + 4 > len(data):
            raise _fail(source, fmt, f"representation {r}: its length field runs past the end")
        (rep_len,) = struct.unpack_from(">I", data, pos)
        end = start + rep_len
        if rep_len < 4 or end > len(data):
            raise _fail(source, fmt, f"representation {r}: length {rep_len} runs past the end of the record")
        pos += 4 + 9  # length, capture date and time
        need = pos + 1 + 2 + 2 + 1
        if need > end:
            raise _fail(source, fmt, f"representation {r}: its header runs past its end")
        pos += 1 + 2 + 2  # device technology, vendor id, device type id
        n_quality = data[pos]
        pos += 1 + 5 * n_quality
        if cert_flag:
            if pos + 1 > end:
                raise _fail(source, fmt, f"representation {r}: certification records run past its end")
            pos += 1 + 3 * data[pos]
        if pos + 13 > end:
            raise _fail(source, fmt, f"representation {r}: its finger header runs past its end")
        fpos, rep_no, xres, yres, imp, width, height, flags, n = struct.unpack_from(">BBHHBHHBB", data, pos)
        pos += 13
        size = flags >> 4
        if size not in (5, 6):
            raise _fail(source, fmt, f"representation {r}: minutia field length {size}, expected 5 or 6")
        if width == 0 or height == 0:
            raise _fail(source, fmt, f"representation {r}: image size {width}x{height}")
        if pos + size * n > end:
            raise _fail(source, fmt, f"representation {r}: {n} minutiae run past its end")
        minutiae = parse_minutiae(data, pos, n, size, ISO_ANGLE_UNIT_DEG, width=width, height=height,
                                  fail=lambda why, r=r: _fail(source, fmt, f"representation {r}: {why}"),
                                  quality_codes=(254, 255))
        pos += size * n
        pos, ext = _skip_extended(data, pos, end, source, fmt, r)
        if pos != end:
            raise _fail(source, fmt, f"representation {r}: {end - pos} bytes left before its declared end")
        dpi = dpi_from_ppcm(xres) if xres else DEFAULT_DPI
        extra = {"format": fmt, "finger_position": fpos, "view_number": rep_no, "impression_type": imp,
                 "ridge_ending_type": flags & 0x0F}
        views.append(FingerView(Template(minutiae, width, height, dpi, extra=extra), fpos, rep_no, imp, 0, ext))
    if pos != len(data):
        raise _fail(source, fmt, f"{len(data) - pos} bytes are left after the last representation")
    return MinutiaeRecord(fmt, views, {"certification_flag": cert_flag}, source)


def encode(
    views: Template | FingerView | Sequence[Template | FingerView],
    *,
    capture_device_id: int = 0,
    capture_equipment_compliance: int = 0,
) -> bytes:
    """An ISO/IEC 19794-2:2005 record holding these views (a Template is one view).

    All views share the image size and resolution of the first one, as the record's
    header holds them once. Positions are rounded to pixels (halves up), angles to the
    nearest 360/256 degrees, quality to an integer 0-100.
    """
    items = as_views(views)
    first = items[0].template
    body = views_body(items, ISO_2005, ISO_ANGLE_UNIT_DEG, 256)
    if not (0 <= capture_device_id <= 0x0FFF and 0 <= capture_equipment_compliance <= 0x0F):
        raise FormatError(f"{ISO_2005}: capture device id must fit 12 bits and compliance 4 bits")
    res = ppcm_from_dpi(first.dpi)
    header = MAGIC + VERSION_2005 + struct.pack(
        ">IHHHHHBB", HEADER_2005 + len(body), (capture_equipment_compliance << 12) | capture_device_id,
        first.width, first.height, res, res, len(items), 0)
    return bytes(header + body)
