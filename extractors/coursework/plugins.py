"""The coursework pair by U. Deshmukh (MIT): ``fingerprint-enhancer`` (Gabor enhancement
after Hong, Wan and Jain) then ``fingerprint-feature-extractor`` (skeleton, crossing
numbers, spurious-minutiae removal), run in that order as one extractor.

``fingerprint_feature_extractor`` gives ``MinutiaeFeature(locX, locY, Orientation,
Type)`` with ``locX`` the *row* and ``locY`` the *column* (origin top-left), and
``Orientation`` a list of angles in degrees, counter-clockwise as seen, from the minutia
to where the skeleton leaves a small block around it: one angle for a termination (the
ridge's direction: the ISO direction), three for a bifurcation (its three branches).
Conversion: x = locY, y = locX; an ending's angle as it is. A bifurcation's three angles
come from its 3x3 neighbourhood (45-degree steps) and do not say which branch is the
stem, so its ISO direction is taken from the package's own skeleton instead: the skeleton
is followed 10 pixels along the three branches and the direction of the sum of the unit
vectors is kept (the two fork branches outweigh the stem; see
:func:`extractors.fprecog.plugins.skeleton_vector`). Type 1 termination, 2
bifurcation; quality 0 (not reported).

Both packages require ``opencv-python`` in their metadata, which would install a second
``cv2`` over the project's ``opencv-python-headless``; they need nothing that FingerBench
does not already install, so install them without dependencies:
``pip install --no-deps fingerprint-enhancer fingerprint-feature-extractor``.
"""

from __future__ import annotations


import numpy as np

from bench.plugins import FailureToEnrol
from bench.template import MINUTIAE_FORMAT, TYPE_BIFURCATION, TYPE_ENDING, Template, make_minutiae
from extractors.common import distribution_version, gray_image
from extractors.fprecog.plugins import skeleton_vector

DISTRIBUTIONS = ("fingerprint-enhancer", "fingerprint-feature-extractor")
INSTALL = "pip install --no-deps fingerprint-enhancer fingerprint-feature-extractor"
BIFURCATION_TRACE = 10  # pixels of skeleton followed along the branches


def _version() -> str:
    return ", ".join(distribution_version(d) for d in DISTRIBUTIONS)


def unavailable_reason() -> str:
    try:
        import fingerprint_enhancer  # noqa: F401
        import fingerprint_feature_extractor  # noqa: F401
    except Exception as exc:
        return (f"the coursework packages cannot be imported ({type(exc).__name__}: {exc}); install (their "
                f"metadata would pull opencv-python next to opencv-python-headless): {INSTALL}")
    return ""


class CourseworkExtractor:
    """fingerprint-enhancer + fingerprint-feature-extractor (see the module docstring).

    Parameters:
        spurious_threshold: the feature extractor's ``spuriousMinutiaeThresh`` (pixels;
            terminations closer than this to each other are removed; its default 10).

    Slow (several seconds per image); the packages have no resolution parameter.
    """

    template_format = MINUTIAE_FORMAT
    version = _version()

    def __init__(self, spurious_threshold: int = 10) -> None:
        self.spurious_threshold = spurious_threshold

    @staticmethod
    def check_available() -> str:
        return unavailable_reason()

    def extract(self, image: np.ndarray, dpi: float) -> Template:
        import fingerprint_enhancer
        import fingerprint_feature_extractor

        enhanced = fingerprint_enhancer.enhance_fingerprint(gray_image(image))
        ridges = (np.asarray(enhanced) > 0).astype(np.uint8) * 255
        fe = fingerprint_feature_extractor.FingerprintFeatureExtractor()
        fe.setSpuriousMinutiaeThresh(int(self.spurious_threshold))
        terms, bifs = fe.extractMinutiaeFeatures(ridges)
        skeleton = np.asarray(fe._skel, dtype=bool)  # the package's own skeleton, kept by its extractor
        rows: list[tuple[float, float, float, int]] = []
        for f in terms:
            rows.append((float(f.locY), float(f.locX), float(f.Orientation[0]), TYPE_ENDING))
        for f in bifs:
            vx, vy = skeleton_vector(float(f.locY), float(f.locX), skeleton, BIFURCATION_TRACE)
            rows.append((float(f.locY), float(f.locX), float(np.degrees(np.arctan2(vy, vx))), TYPE_BIFURCATION))
        if not rows:
            raise FailureToEnrol("the coursework extractor found no minutia")
        a = np.array(rows, dtype=np.float64)
        minutiae = make_minutiae(a[:, 0], a[:, 1], np.radians(a[:, 2]), a[:, 3].astype(int))
        return Template(minutiae, int(image.shape[1]), int(image.shape[0]), float(dpi))
