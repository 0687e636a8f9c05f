"""Plugins that keep, or break on purpose, one rule of the plugin contract.

``OracleExtractor`` returns the ground truth of the kit's synthetic images (it finds an
image by its bytes), so it keeps every convention; each subclass breaks one of them the
way a real plugin does by mistake. The matchers wrap a small nearest-minutia score.
They serve the conformance kit's tests and the runner's interface check.
"""

from __future__ import annotations

import hashlib
import itertools

import numpy as np

from bench.plugins import FailureToEnrol
from bench.template import Template, make_minutiae


def _truth(image: np.ndarray) -> Template:
    from bench.testing.data import kit_samples

    digest = hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()
    for s in kit_samples():
        if hashlib.sha256(s.image.tobytes()).hexdigest() == digest:
            return s.truth
    raise FailureToEnrol("not an image of the kit")


class OracleExtractor:
    version = "1"
    template_format = "minutiae"

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def minutiae(self, image: np.ndarray) -> np.ndarray:
        return _truth(image).minutiae.copy()

    def extract(self, image: np.ndarray, dpi: float) -> Template:
        h, w = image.shape
        return Template(self.minutiae(image), w, h, dpi)


class DegreesExtractor(OracleExtractor):
    """Fills the minutiae array itself, with angles in degrees."""

    def minutiae(self, image):
        m = super().minutiae(image)
        m["angle"] = np.degrees(m["angle"])
        return m


class DegreesThroughMakeMinutiae(OracleExtractor):
    def minutiae(self, image):
        m = super().minutiae(image)
        return make_minutiae(m["x"], m["y"], np.degrees(m["angle"]), m["type"], m["quality"])


class FlippedExtractor(OracleExtractor):
    """y measured up from the bottom edge (NIST .xyt positions)."""

    def minutiae(self, image):
        m = super().minutiae(image)
        m["y"] = image.shape[0] - 1 - m["y"]
        return m


class ClockwiseExtractor(OracleExtractor):
    """Angles measured with y pointing down (clockwise as seen)."""

    def minutiae(self, image):
        m = super().minutiae(image)
        m["angle"] = np.mod(-m["angle"].astype(np.float64), 2 * np.pi)
        return m


class OutsideExtractor(OracleExtractor):
    def minutiae(self, image):
        m = super().minutiae(image)
        m["x"][0] = -40.0
        return m


class ListExtractor(OracleExtractor):
    """Returns the minutiae array instead of a Template."""

    def extract(self, image, dpi):
        return self.minutiae(image)


class NoDpiExtractor(OracleExtractor):
    """Builds a Template without its dpi."""

    def extract(self, image, dpi):
        h, w = image.shape
        return Template(self.minutiae(image), w, h)  # type: ignore[call-arg]


class FloatSizeExtractor(OracleExtractor):
    """Gives the image size as floats."""

    def extract(self, image, dpi):
        h, w = image.shape
        return Template(self.minutiae(image), float(w), float(h), dpi)


class OneArgumentExtractor(OracleExtractor):
    """extract() without the dpi argument."""

    def extract(self, image):  # type: ignore[override]
        return super().extract(image, 500.0)


class RestlessExtractor(OracleExtractor):
    """A different template each call."""

    _calls = itertools.count()

    def minutiae(self, image):
        m = super().minutiae(image)
        return m[: max(1, m.size - next(self._calls))]


class ForgetfulExtractor(OracleExtractor):
    """Does not store its parameter under its own name."""

    def __init__(self, scale: float = 1.0):
        self._scale = scale


class NearestMatcher:
    """Counts probe minutiae with a reference minutia within 10 pixels."""

    version = "1"
    higher_is_better = True
    accepted_formats = ("minutiae",)

    def __init__(self, tolerance: float = 10.0):
        self.tolerance = tolerance

    def compare(self, probe: Template, reference: Template) -> float:
        if len(probe) == 0 or len(reference) == 0:
            return 0.0
        p = np.stack([probe.minutiae["x"], probe.minutiae["y"]], 1).astype(np.float64)
        r = np.stack([reference.minutiae["x"], reference.minutiae["y"]], 1).astype(np.float64)
        d = np.linalg.norm(p[:, None, :] - r[None, :, :], axis=2)
        return float((d.min(axis=1) <= self.tolerance).sum()) / max(len(probe), len(reference))

    def compare_many(self, probe: Template, gallery) -> np.ndarray:
        return np.array([self.compare(probe, g) for g in gallery])


class InvertedMatcher(NearestMatcher):
    higher_is_better = False


class StringScoreMatcher(NearestMatcher):
    def compare(self, probe, reference):
        return f"{super().compare(probe, reference):.2f}"

    def compare_many(self, probe, gallery):
        return [self.compare(probe, g) for g in gallery]


class BoolScoreMatcher(NearestMatcher):
    def compare(self, probe, reference):
        return super().compare(probe, reference) > 0.5


class ColumnManyMatcher(NearestMatcher):
    """compare_many returns an (n, 1) array."""

    batched = True  # a batch computation of its own, so 1:1 runs call it

    def compare_many(self, probe, gallery):
        return super().compare_many(probe, gallery)[:, None]


class StringManyMatcher(NearestMatcher):

    batched = True  # a batch computation of its own, so 1:1 runs call it
    def compare_many(self, probe, gallery):
        return np.array([f"{s:.2f}" for s in super().compare_many(probe, gallery)])


class SloppyManyMatcher(NearestMatcher):
    """compare_many that disagrees with compare."""

    batched = True  # a batch computation of its own, so 1:1 runs call it

    def compare_many(self, probe, gallery):
        return super().compare_many(probe, gallery) * 0.5


class FragileMatcher(NearestMatcher):
    """Raises IndexError on an empty template."""

    def compare(self, probe, reference):
        _ = probe.minutiae[0], reference.minutiae[0]
        return super().compare(probe, reference)

