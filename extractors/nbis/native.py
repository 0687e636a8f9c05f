"""The template bytes that nbis-py writes and reads, and their conversion to minutiae.

nbis-py writes a template with ``Minutiae.to_iso_19794_2_2005()`` and reads one with
``NbisExtractor.load_iso_19794_2_2005()``. Despite the names, the layout is not an
ISO/IEC 19794-2:2005 record (established against nbis-py 0.1.3, byte by byte)::

    offset size  field
    0      8     b"FMR\\0 20\\0"
    8      4     length of the whole record, big-endian: 26 + 6 n (the reader requires
                 it to equal the number of bytes; there is no extended-data block)
    12     2     zero
    14     2     image width, big-endian
    16     2     image height, big-endian
    18     1     finger position (0)
    19     1     view number and impression type (0)
    20     1     finger quality: the NFIQ 2 score (0-100) when it was computed, else 0
    21     4     zero
    25     1     number of minutiae n (at most 255)
    26     6 n   minutiae, 6 bytes each:
                   0    type << 6 | x >> 8   (type 01 ridge ending, 10 bifurcation; the
                                              reader takes anything but 10 as an ending)
                   1    x & 0xFF
                   2-3  y, big-endian (the reader takes all 16 bits)
                   4    angle in units of 360/256 degrees, counter-clockwise from the x
                        axis, in the ISO direction (into the ridge at an ending, into
                        the fork at a bifurcation)
                   5    reliability in 0-63: min(63, floor(63 * reliability))

A conformant ISO record has a 24-byte header (with capture device, x/y resolution,
number of views) and a 4-byte finger view header, so its minutiae start at byte 28 and
it ends with a 2-byte extended-data length; here the resolution fields are missing and
the minutiae start at byte 26, so an ISO parser misreads these bytes and nbis-py
misreads ISO records. The quality byte is 0-63, not ISO's 0-100.

Internally MINDTCT quantises directions to 32 steps of 11.25 degrees: angle codes are
always multiples of 8, and the reader snaps any code to the nearest of those 32 steps.
BOZORTH3 (as nbis-py runs it) uses only x, y, the direction and the order of the
minutiae, and it expects them sorted by x then y, as NBIS's own loader sorts them.
"""

from __future__ import annotations

import numpy as np

from bench.template import MINUTIA_DTYPE, TYPE_BIFURCATION, TYPE_ENDING, TemplateError

#: Format name of the nbis-py template bytes.
NATIVE_FORMAT = "nbis-py"

MAGIC = b"FMR\x00 20\x00"
HEADER_SIZE = 26
MINUTIA_SIZE = 6
MAX_MINUTIAE = 255
MAX_COORDINATE = 0x3FFF  # x has 14 bits
ANGLE_UNIT_DEG = 360.0 / 256.0
DIRECTION_STEP_DEG = 11.25  # MINDTCT's 32 directions
QUALITY_SCALE = 63  # nbis-py stores reliability as 0-63

_TYPE_BITS = {TYPE_ENDING: 0b01, TYPE_BIFURCATION: 0b10}


def quantize(minutiae: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer x, y and direction index k (direction 11.25 k degrees) as nbis-py stores them.

    Coordinates are rounded to the nearest pixel (halves up) and clipped to 0-16383;
    angles to the nearest of MINDTCT's 32 directions.
    """
    x = np.clip(np.floor(minutiae["x"].astype(np.float64) + 0.5), 0, MAX_COORDINATE).astype(np.int64)
    y = np.clip(np.floor(minutiae["y"].astype(np.float64) + 0.5), 0, MAX_COORDINATE).astype(np.int64)
    deg = np.rad2deg(minutiae["angle"].astype(np.float64))
    k = np.floor(deg / DIRECTION_STEP_DEG + 0.5).astype(np.int64) % 32
    return x, y, k


def encode(minutiae: np.ndarray, width: int, height: int, finger_quality: int = 0) -> bytes:
    """Write minutiae (in the given order) in the layout nbis-py reads.

    Positions and angles are quantised as in :func:`quantize`; quality 0-100 becomes
    0-63 (nearest), which BOZORTH3 does not use.
    """
    n = int(minutiae.size)
    if n > MAX_MINUTIAE:
        raise TemplateError(f"the nbis-py layout holds at most {MAX_MINUTIAE} minutiae, got {n}")
    x, y, k = quantize(minutiae)
    type_bits = np.zeros(n, dtype=np.int64)
    for code, bits in _TYPE_BITS.items():
        type_bits[minutiae["type"] == code] = bits
    q = np.clip(np.floor(minutiae["quality"].astype(np.float64) * QUALITY_SCALE / 100.0 + 0.5), 0, QUALITY_SCALE)
    rec = np.empty((n, MINUTIA_SIZE), dtype=np.uint8)
    rec[:, 0] = (type_bits << 6) | (x >> 8)
    rec[:, 1] = x & 0xFF
    rec[:, 2] = y >> 8
    rec[:, 3] = y & 0xFF
    rec[:, 4] = (8 * k) & 0xFF
    rec[:, 5] = q.astype(np.int64)
    total = HEADER_SIZE + MINUTIA_SIZE * n
    header = (
        MAGIC
        + total.to_bytes(4, "big")
        + b"\x00\x00"
        + int(np.clip(width, 0, 0xFFFF)).to_bytes(2, "big")
        + int(np.clip(height, 0, 0xFFFF)).to_bytes(2, "big")
        + bytes([0, 0, int(np.clip(finger_quality, 0, 255))])
        + b"\x00" * 4
        + bytes([n])
    )
    return header + rec.tobytes()


def decode(data: bytes) -> tuple[np.ndarray, int, int, int]:
    """Read nbis-py template bytes: (minutiae, width, height, finger quality).

    Checks what nbis-py's reader checks (magic, length). Angles come back as stored
    (code * 360/256 degrees, in radians); quality as round(100 * q / 63).
    """
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise TemplateError(f"nbis-py template too short ({len(data)} bytes)")
    if data[:8] != MAGIC:
        raise TemplateError("not an nbis-py template (bad magic)")
    total = int.from_bytes(data[8:12], "big")
    if total != len(data):
        raise TemplateError(f"nbis-py template length field says {total} bytes, got {len(data)}")
    width = int.from_bytes(data[14:16], "big")
    height = int.from_bytes(data[16:18], "big")
    finger_quality = data[20]
    n = data[25]
    if HEADER_SIZE + MINUTIA_SIZE * n > len(data):
        raise TemplateError(f"nbis-py template declares {n} minutiae but is {len(data)} bytes long")
    rec = np.frombuffer(data, dtype=np.uint8, count=MINUTIA_SIZE * n, offset=HEADER_SIZE)
    rec = rec.reshape(n, MINUTIA_SIZE).astype(np.int64)
    out = np.zeros(n, dtype=MINUTIA_DTYPE)
    out["x"] = ((rec[:, 0] & 0x3F) << 8) | rec[:, 1]
    out["y"] = (rec[:, 2] << 8) | rec[:, 3]
    out["angle"] = np.deg2rad(rec[:, 4] * ANGLE_UNIT_DEG)
    bits = rec[:, 0] >> 6
    out["type"] = np.where(bits == 0b10, TYPE_BIFURCATION, np.where(bits == 0b01, TYPE_ENDING, 0))
    out["quality"] = np.floor(np.minimum(rec[:, 5], QUALITY_SCALE) * 100.0 / QUALITY_SCALE + 0.5)
    return out, width, height, finger_quality


def bozorth_order(minutiae: np.ndarray, max_minutiae: int) -> np.ndarray:
    """Indices of the minutiae BOZORTH3 keeps, in the order it needs them.

    As NBIS's BOZORTH3 loader does: when there are more than ``max_minutiae``, keep the
    ``max_minutiae`` of highest quality (ties: earlier first), then sort by x, then y
    (of the quantised positions; stable).
    """
    idx = np.arange(minutiae.size)
    if minutiae.size > max_minutiae:
        keep = np.argsort(-minutiae["quality"].astype(np.int64), kind="stable")[:max_minutiae]
        idx = np.sort(keep)
    x, y, _ = quantize(minutiae[idx])
    return idx[np.lexsort((y, x))]
