"""The minutiae template that extractors produce and matchers consume.

Conventions (ISO/IEC 19794-2): x and y in pixels with the origin at the top-left corner of
the image and y pointing down; the angle in radians, counter-clockwise from the x axis
(as seen on the image, so "up" is pi/2), in [0, 2*pi); type codes as in the ISO record
(0 other, 1 ridge ending, 2 bifurcation); quality 0-100 (0 where unknown).

Templates are stored as NPZ files without object arrays, so they can be shared safely.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MINUTIA_DTYPE = np.dtype(
    [
        ("x", np.float32),
        ("y", np.float32),
        ("angle", np.float32),
        ("type", np.uint8),
        ("quality", np.uint8),
    ]
)

TYPE_OTHER = 0
TYPE_ENDING = 1
TYPE_BIFURCATION = 2

#: Format name of a template that carries standard minutiae only.
MINUTIAE_FORMAT = "minutiae"


class TemplateError(ValueError):
    """A template (or a template file) is malformed."""


#: Angles (radians) beyond this magnitude are refused: they look like degrees. Sums of two
#: angles in radians (a direction plus pi, plus a rotation) stay below it and are wrapped.
MAX_ANGLE_MAGNITUDE = 4 * np.pi


def make_minutiae(
    x: Any, y: Any, angle: Any, type: Any = None, quality: Any = None
) -> np.ndarray:
    """Build a minutiae array from columns; angles (radians) are wrapped to [0, 2*pi).

    Angles beyond 4*pi in magnitude raise :class:`TemplateError`: they are degrees far
    more often than radians, and wrapping them would silently scramble every direction.
    """
    x = np.asarray(x, dtype=np.float32).ravel()
    n = x.size
    out = np.zeros(n, dtype=MINUTIA_DTYPE)
    out["x"] = x
    out["y"] = np.asarray(y, dtype=np.float32).ravel()
    radians = np.asarray(angle, dtype=np.float64).ravel()
    finite = np.abs(radians[np.isfinite(radians)])
    if finite.size and finite.max() > MAX_ANGLE_MAGNITUDE:
        raise TemplateError(
            f"minutia angles reach {finite.max():.4g}: angles are radians (0 to 2*pi), and "
            f"values above 2*pi look like degrees; convert them with numpy.radians")
    out["angle"] = np.mod(radians, 2 * np.pi)
    if type is not None:
        out["type"] = np.asarray(type, dtype=np.uint8).ravel()
    if quality is not None:
        out["quality"] = np.clip(np.asarray(quality, dtype=np.float64).ravel(), 0, 100)
    return out


@dataclass(frozen=True, eq=False)
class Template:
    """Minutiae of one impression, with the image geometry they refer to.

    ``native`` optionally holds the algorithm's own bytes (for a matcher of the same
    family), with ``native_format`` naming their layout.
    """

    minutiae: np.ndarray
    width: int
    height: int
    dpi: float
    native: bytes | None = None
    native_format: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = self.minutiae
        if not isinstance(m, np.ndarray) or m.dtype != MINUTIA_DTYPE or m.ndim != 1:
            raise TemplateError(
                "Template.minutiae must be a 1-D array of bench.template.MINUTIA_DTYPE "
                "(use bench.template.make_minutiae)"
            )
        if self.width <= 0 or self.height <= 0:
            raise TemplateError(f"image size must be positive, got {self.width}x{self.height}")
        if not self.dpi > 0:
            raise TemplateError(f"dpi must be positive, got {self.dpi}")
        if m.size and not np.all(np.isfinite(m["x"]) & np.isfinite(m["y"]) & np.isfinite(m["angle"])):
            raise TemplateError("minutiae contain NaN or infinite values")

    def __len__(self) -> int:
        return int(self.minutiae.size)

    @property
    def size_bytes(self) -> int:
        """Size of the native template if there is one, else of an ISO record."""
        if self.native is not None:
            return len(self.native)
        return 24 + 4 + 6 * len(self) + 2

    # -- open-format storage -------------------------------------------------------
    def to_npz_bytes(self) -> bytes:
        meta = {
            "width": int(self.width),
            "height": int(self.height),
            "dpi": float(self.dpi),
            "native_format": self.native_format,
            "extra": self.extra,
        }
        buf = io.BytesIO()
        arrays: dict[str, np.ndarray] = {
            "minutiae": self.minutiae,
            "meta": np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8),
        }
        if self.native is not None:
            arrays["native"] = np.frombuffer(self.native, dtype=np.uint8)
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_npz_bytes(cls, data: bytes, source: str = "<bytes>") -> "Template":
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                minutiae = np.array(z["minutiae"])
                meta = json.loads(bytes(z["meta"]).decode())
                native = bytes(z["native"]) if "native" in z.files else None
        except Exception as exc:  # zipfile, KeyError, JSON, ValueError
            raise TemplateError(f"{source}: not a FingerBench template file ({exc})") from exc
        if minutiae.dtype != MINUTIA_DTYPE:
            raise TemplateError(f"{source}: unexpected minutiae layout {minutiae.dtype}")
        return cls(
            minutiae=minutiae,
            width=meta["width"],
            height=meta["height"],
            dpi=meta["dpi"],
            native=native,
            native_format=meta.get("native_format"),
            extra=meta.get("extra") or {},
        )

    def save(self, path: Path) -> None:
        """Write atomically, so an interrupted run never leaves a half-written file."""
        from bench.store import atomic_write

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, self.to_npz_bytes())

    @classmethod
    def load(cls, path: Path) -> "Template":
        path = Path(path)
        return cls.from_npz_bytes(path.read_bytes(), source=str(path))
