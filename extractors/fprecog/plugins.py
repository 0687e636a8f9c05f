"""Adapters for fingerprint-recognition (K. Jankoski; MIT and BSD-2-Clause).

Its extractor (``extract_features``: CLAHE, Gabor enhancement after Hong, Wan and Jain,
skeleton, crossing numbers, then ORB descriptors at the minutiae) gives minutiae with
``x``, ``y`` pixel column and row (origin top-left) and ``angle`` the local ridge
*orientation* in radians, "positive clockwise" in image coordinates (y down) and defined
only modulo pi; ``kind`` ENDING or BIFURCATION. Its matcher aligns two prints with the ORB
descriptors and counts minutiae pairs (an integer score, 12 or more "a match").

Conversion to our conventions: x, y unchanged; the orientation becomes counter-clockwise
as seen (``-angle``), and its sense, which the package does not give, is resolved from
its own skeleton (``skimage.morphology.skeletonize`` of its ridge map, as it computes
it): of the two opposite directions, the one towards where the skeleton goes from the
minutia (followed for ``trace_length`` pixels), which is along the ridge at an ending and
between the branches at a bifurcation: the ISO direction. ``resolve_direction=False``
keeps the orientation in [0, pi) instead. Type 1 ending, 2 bifurcation; quality 0
(not reported).

The native template (format ``fingerprint-recognition``) holds what its matcher uses:
the package's own minutiae, keypoints and ORB descriptors, as an NPZ without objects.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from bench.plugins import ComparisonFailed, FailureToEnrol
from bench.template import TYPE_BIFURCATION, TYPE_ENDING, Template, make_minutiae
from extractors.common import distribution_version, gray_image

DISTRIBUTION = "fingerprint-recognition"
NATIVE_FORMAT = "fingerprint-recognition"
INSTALL = "pip install fingerprint-recognition (or the extra: pip install -e '.[fprecog]')"


def _version() -> str:
    return distribution_version(DISTRIBUTION, "fingerprint-recognition")


def unavailable_reason() -> str:
    try:
        import fingerprint_recognition  # noqa: F401
    except Exception as exc:
        return f"fingerprint_recognition cannot be imported ({type(exc).__name__}: {exc}); install: {INSTALL}"
    return ""


def skeleton_vector(x: float, y: float, skeleton: np.ndarray, length: int = 10) -> tuple[float, float]:
    """Where the skeleton goes from a minutia: the sum of unit vectors (as seen: x right,
    y up) from the minutia to the skeleton pixels reached after ``length // 2`` to
    ``length`` steps of an 8-connected breadth-first walk along the skeleton.

    At an ending it points along the ridge; at a bifurcation the two fork branches
    outweigh the stem, so it points between them: the ISO direction in both cases.
    Walking the skeleton, rather than taking every ridge pixel nearby, keeps
    neighbouring ridges out. (0, 0) when the minutia is not on the skeleton.
    """
    h, w = skeleton.shape
    cx, cy = int(round(x)), int(round(y))
    x0, x1 = max(cx - length - 1, 0), min(cx + length + 2, w)
    y0, y1 = max(cy - length - 1, 0), min(cy + length + 2, h)
    win = skeleton[y0:y1, x0:x1]
    start = (cy - y0, cx - x0)
    if not (0 <= start[0] < win.shape[0] and 0 <= start[1] < win.shape[1]) or not win[start]:
        return 0.0, 0.0
    dist = {start: 0}
    frontier = [start]
    for step in range(1, length + 1):
        nxt = []
        for r, c in frontier:
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < win.shape[0] and 0 <= cc < win.shape[1] and win[rr, cc] and (rr, cc) not in dist:
                        dist[(rr, cc)] = step
                        nxt.append((rr, cc))
        frontier = nxt
        if not frontier:
            break
    vx = vy = 0.0
    for (r, c), d in dist.items():
        if d >= length // 2:
            dx, dy = c - start[1], start[0] - r
            n = float(np.hypot(dx, dy))
            if n > 0:
                vx += dx / n
                vy += dy / n
    return vx, vy


def resolve_senses(x: np.ndarray, y: np.ndarray, axis: np.ndarray, skeleton: np.ndarray,
                   length: int = 10) -> np.ndarray:
    """Directions (radians, counter-clockwise as seen) from axes defined modulo pi: of the
    two senses, the one with a non-negative dot product with :func:`skeleton_vector`."""
    out = np.mod(axis, np.pi).astype(np.float64)
    for i in range(x.size):
        vx, vy = skeleton_vector(float(x[i]), float(y[i]), skeleton, length)
        if vx * np.cos(out[i]) + vy * np.sin(out[i]) < 0:
            out[i] += np.pi
    return out


def _pack(features: Any) -> bytes:
    m = features.minutiae
    kps = features.keypoints
    desc = features.descriptors
    arrays = {
        "minutiae": np.array([(mm.x, mm.y, mm.angle, mm.kind.value) for mm in m], dtype=np.float64).reshape(-1, 4),
        "keypoints": np.array([(k.pt[0], k.pt[1], k.size, k.angle, k.class_id) for k in kps],
                              dtype=np.float64).reshape(-1, 5),
        "descriptors": np.zeros((0, 32), np.uint8) if desc is None else np.asarray(desc, dtype=np.uint8),
    }
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _unpack(data: bytes) -> Any:
    import cv2
    from fingerprint_recognition import Features, Minutia, MinutiaKind

    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        m, k, d = z["minutiae"], z["keypoints"], z["descriptors"]
    minutiae = [Minutia(int(a[0]), int(a[1]), float(a[2]), MinutiaKind(int(a[3]))) for a in m]
    keypoints = [cv2.KeyPoint(float(a[0]), float(a[1]), float(a[2]), float(a[3]), class_id=int(a[4])) for a in k]
    return Features(minutiae, keypoints, d if len(d) else None, None)


class FprecogExtractor:
    """fingerprint-recognition's ``extract_features`` (see the module docstring).

    Parameters:
        resolve_direction: give ISO directions (sense resolved from the package's
            skeleton) instead of orientations modulo pi.
        trace_length: pixels of skeleton followed from a minutia to resolve the sense.

    The package has no resolution parameter (its filters assume about 500 dpi).
    """

    template_format = NATIVE_FORMAT
    version = _version()

    def __init__(self, resolve_direction: bool = True, trace_length: int = 10) -> None:
        self.resolve_direction = resolve_direction
        self.trace_length = trace_length

    @staticmethod
    def check_available() -> str:
        return unavailable_reason()

    def extract(self, image: np.ndarray, dpi: float) -> Template:
        import fingerprint_recognition as fr
        from skimage.morphology import skeletonize

        features = fr.extract_features(gray_image(image))
        found = list(features.minutiae)
        if not found:
            raise FailureToEnrol("fingerprint-recognition found no minutia")
        x = np.array([m.x for m in found], dtype=np.float64)
        y = np.array([m.y for m in found], dtype=np.float64)
        axis = -np.array([m.angle for m in found], dtype=np.float64)
        if self.resolve_direction:
            angle = resolve_senses(x, y, axis, skeletonize(features.ridge_map.ridges), int(self.trace_length))
        else:
            angle = np.mod(axis, np.pi)
        kind = np.array([TYPE_BIFURCATION if m.kind == fr.MinutiaKind.BIFURCATION else TYPE_ENDING for m in found])
        return Template(make_minutiae(x, y, angle, kind), int(image.shape[1]), int(image.shape[0]), float(dpi),
                        native=_pack(features), native_format=NATIVE_FORMAT,
                        extra={"direction": "iso" if self.resolve_direction else "orientation mod pi"})


class FprecogMatcher:
    """fingerprint-recognition's ``match_features``: ORB alignment, then the number of
    paired minutiae (integer; the lower of both directions, so symmetric). It needs the
    package's own templates (ORB descriptors)."""

    version = _version()
    higher_is_better = True
    accepted_formats = (NATIVE_FORMAT,)

    @staticmethod
    def check_available() -> str:
        return unavailable_reason()

    def _features(self, template: Template) -> Any:
        if template.native_format != NATIVE_FORMAT or template.native is None:
            raise ComparisonFailed(f"not a fingerprint-recognition template (native format {template.native_format!r})")
        cache = self.__dict__.setdefault("_cache", {})
        key = id(template)
        hit = cache.get(key)
        if hit is None or hit[0] is not template:
            hit = (template, _unpack(template.native))
            if len(cache) > 4096:
                cache.clear()
            cache[key] = hit
        return hit[1]

    def compare(self, probe: Template, reference: Template) -> float:
        import fingerprint_recognition as fr

        return float(fr.match_features(self._features(probe), self._features(reference)).score)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_cache", None)
        return state
