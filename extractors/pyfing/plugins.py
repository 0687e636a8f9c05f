"""Adapters for pyfing (R. Cappelli, MIT).

pyfing's minutiae (``pyfing.Minutia``) are ``x, y`` pixel column and row (origin top-left,
y down), ``direction`` in radians counter-clockwise from the x axis as seen on the image
(pyfing draws it at ``(x + cos d, y - sin d)`` and reads ISO records' angle bytes into
it unchanged: the ISO direction), ``type`` ``"E"`` ending, ``"B"`` bifurcation, ``"O"``
other, and ``quality`` 0-1. So: our angle = direction mod 2 pi, type 1/2/0, quality =
round(100 * quality).

pyfing declares no dependencies but imports Keras 3 in every module, and Keras needs a
backend: TensorFlow, JAX or PyTorch. When ``KERAS_BACKEND`` is not set, the first of
``tensorflow``, ``jax``, ``torch`` that is installed is chosen (before Keras is
imported). The classical pipeline runs no network, so any backend will do (JAX is the
lightest); SBMEX thins with ``cv2.ximgproc`` (opencv-contrib).
"""

from __future__ import annotations

import importlib.util
import math
import os
from typing import Any

import numpy as np

from bench.plugins import FailureToEnrol
from bench.template import MINUTIAE_FORMAT, Template, make_minutiae
from extractors.common import distribution_version, gray_image

DISTRIBUTION = "pyfing"
BACKENDS = ("tensorflow", "jax", "torch")
INSTALL = "pip install pyfing keras jax (or the extra: pip install -e '.[pyfing]')"
_TYPES = {"E": 1, "B": 2, "O": 0}
PYFING_DPI = 500  # pyfing's frequency estimation (XSFFE) supports 500 dpi only


def _version() -> str:
    return distribution_version(DISTRIBUTION, "pyfing")


def keras_backend() -> str | None:
    """The Keras backend pyfing will use: ``KERAS_BACKEND``, else the first installed."""
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen:
        return chosen
    for name in BACKENDS:
        if importlib.util.find_spec(name) is not None:
            return name
    return None


def _missing_pyfing() -> str:
    missing = [m for m in ("pyfing", "keras") if importlib.util.find_spec(m) is None]
    if missing:
        return f"missing package(s) {', '.join(missing)}; install: {INSTALL}"
    backend = keras_backend()
    if backend is None:
        return ("Keras has no backend: install one of tensorflow, jax or torch "
                f"(the lightest: pip install jax); install: {INSTALL}")
    if importlib.util.find_spec(backend) is None:
        return f"KERAS_BACKEND={backend} but the package {backend} is not installed"
    return ""


def import_pyfing() -> Any:
    """Import pyfing with a Keras backend chosen (see the module docstring)."""
    reason = _missing_pyfing()
    if reason:
        raise ImportError(reason)
    os.environ.setdefault("KERAS_BACKEND", keras_backend() or "jax")
    import pyfing

    return pyfing


def ximgproc_reason() -> str:
    import cv2

    if hasattr(cv2, "ximgproc"):
        return ""
    return (f"SBMEX thins with cv2.ximgproc, which the installed OpenCV ({cv2.__version__}) lacks; install "
            f"the contrib build of the same version: pip install opencv-contrib-python-headless=={cv2.__version__} "
            "(it overwrites the cv2 files of opencv-python-headless with a superset)")


def to_template_minutiae(minutiae: list, scale: float = 1.0) -> np.ndarray:
    """Our minutiae from pyfing's (positions multiplied by ``scale``)."""
    if not minutiae:
        return make_minutiae([], [], [])
    x = np.array([m.x for m in minutiae], dtype=np.float64) * scale
    y = np.array([m.y for m in minutiae], dtype=np.float64) * scale
    d = np.array([m.direction for m in minutiae], dtype=np.float64)
    t = np.array([_TYPES.get(m.type, 0) for m in minutiae])
    q = np.floor(100.0 * np.array([m.quality for m in minutiae], dtype=np.float64) + 0.5)
    return make_minutiae(x, y, d, t, q)


class PyfingClassicExtractor:
    """pyfing's classical pipeline: GMFS segmentation, GBFOE orientations, XSFFE ridge
    frequencies, GBFEN enhancement and SBMEX minutiae (pyfing's default parameters).

    Parameters:
        quality_threshold: SBMEX's minimum minutia quality (pyfing's default 0.3).

    pyfing's frequency estimation supports 500 dpi only: images of another resolution
    are resampled to 500 dpi (bicubic, as pyfing's LEADER does) and the minutiae
    positions scaled back.
    """

    template_format = MINUTIAE_FORMAT
    version = _version()

    def __init__(self, quality_threshold: float = 0.3) -> None:
        self.quality_threshold = quality_threshold

    @staticmethod
    def check_available() -> str:
        return _missing_pyfing() or ximgproc_reason()

    def _algorithms(self) -> tuple:
        algs = self.__dict__.get("_algs")
        if algs is None:
            pf = import_pyfing()
            sbmex = pf.Sbmex()
            sbmex.parameters.minutia_quality_threshold = float(self.quality_threshold)
            algs = (pf.Gmfs(), pf.Gbfoe(), pf.Xsffe(), pf.Gbfen(), sbmex)
            self.__dict__["_algs"] = algs
        return algs

    def warm_up(self, dpi: float) -> None:
        reason = ximgproc_reason()
        if reason:
            raise RuntimeError(reason)
        self._algorithms()

    def extract(self, image: np.ndarray, dpi: float) -> Template:
        import cv2

        img = gray_image(image)
        reason = ximgproc_reason()
        if reason:
            raise RuntimeError(reason)
        seg, ori, freq, enh, sbmex = self._algorithms()
        scale = 1.0
        work = img
        if not math.isclose(float(dpi), PYFING_DPI, rel_tol=1e-3):
            f = PYFING_DPI / float(dpi)
            work = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
            scale = float(dpi) / PYFING_DPI
        mask = seg.run(work)
        if not mask.any():
            raise FailureToEnrol("GMFS found no foreground")
        orientations = ori.run(work, mask, PYFING_DPI)[0]
        periods = freq.run(work, mask, orientations, PYFING_DPI)
        enhanced = enh.run(work, mask, orientations, periods, PYFING_DPI)
        found = sbmex.run(enhanced, mask, PYFING_DPI)
        if not found:
            raise FailureToEnrol("SBMEX found no minutia")
        return Template(to_template_minutiae(found, scale), int(img.shape[1]), int(img.shape[0]), float(dpi))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_algs", None)
        return state


class _NumpyOutput:
    """Gives a backend tensor the ``.numpy()`` that pyfing calls (TensorFlow has it; JAX not)."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def numpy(self) -> np.ndarray:
        return np.asarray(self._value)


class PyfingLeaderExtractor:
    """LEADER (Cappelli and Ferrara, 2026), pyfing's end-to-end minutiae network, with
    the weights shipped in the pyfing wheel.

    Parameters:
        quality_threshold: minimum LEADER quality of a detection (pyfing's default 0.6).

    pyfing rescales images of other resolutions to 500 dpi itself. With the TensorFlow
    backend pyfing runs as it is; with JAX or PyTorch the network is run through
    ``model.predict`` (one compiled function per image size) and its output handed back
    to pyfing's own decoding.
    """

    template_format = MINUTIAE_FORMAT
    version = _version()

    def __init__(self, quality_threshold: float = 0.6) -> None:
        self.quality_threshold = quality_threshold

    @staticmethod
    def check_available() -> str:
        return _missing_pyfing()

    def _leader(self) -> Any:
        leader = self.__dict__.get("_leader_alg")
        if leader is None:
            pf = import_pyfing()
            leader = pf.Leader()
            leader.parameters.minutia_quality_threshold = float(self.quality_threshold)
            import keras

            if keras.backend.backend() != "tensorflow":
                model = leader.model
                leader.model = lambda x, training=False: _NumpyOutput(model.predict(x, verbose=0))
            self.__dict__["_leader_alg"] = leader
        return leader

    def warm_up(self, dpi: float) -> None:
        """Load the network (and compile it for a typical size) before timing."""
        self._leader()

    def extract(self, image: np.ndarray, dpi: float) -> Template:
        img = gray_image(image)
        found = self._leader().run(img, int(round(float(dpi))))
        if not found:
            raise FailureToEnrol(f"LEADER found no minutia with quality >= {self.quality_threshold}")
        return Template(to_template_minutiae(found), int(img.shape[1]), int(img.shape[0]), float(dpi))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_leader_alg", None)
        return state
