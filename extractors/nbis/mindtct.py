"""MINDTCT minutiae extraction (NIST LFS v2) through nbis-py."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from bench import references
from bench.plugins import FailureToEnrol
from bench.template import Template
from extractors.nbis import _lib, native

_MAX_SIDE = native.MAX_COORDINATE  # x is stored in 14 bits


class MindtctExtractor:
    """MINDTCT through nbis-py, giving templates in nbis-py's own format.

    Parameters:
        min_quality: drop minutiae whose MINDTCT reliability (0-1) is below this
            (nbis-py's ``min_quality`` setting; 0 keeps all).
        compute_nfiq2: also compute the NFIQ 2 score of the image (0-100), stored in
            ``Template.extra["nfiq2"]`` (adds about 50 ms per image).

    The image is handed to nbis-py losslessly (PNG) with ``ppi`` set to ``dpi``; in
    nbis-py 0.1.3 the resolution only changes the reliabilities (the window MINDTCT
    measures them in), not the minutiae found. nbis-py keeps at most the 150 most
    reliable minutiae, sorted by x then y.

    Minutiae come out in this project's conventions without loss: x and y are MINDTCT's
    pixel column and row (origin top-left), the angle is nbis-py's ``Minutia.angle()``
    in radians (counter-clockwise from the x axis with y pointing down, in the ISO
    direction: into the ridge at an ending, into the fork at a bifurcation; always a
    multiple of 11.25 degrees), the type is 1 for a ridge ending and 2 for a
    bifurcation, and quality is ``round(100 * reliability)``. ``Template.native``
    holds nbis-py's template bytes (see :mod:`extractors.nbis.native`), in the same
    order as the minutiae array.
    """

    template_format = native.NATIVE_FORMAT
    version = _lib.nbis_version()
    bibtex = references.NBIS

    def __init__(self, min_quality: float = 0.0, compute_nfiq2: bool = False) -> None:
        self.min_quality = min_quality
        self.compute_nfiq2 = compute_nfiq2

    @staticmethod
    def check_available() -> str:
        return _lib.unavailable_reason()

    def _nbis(self, dpi: float) -> Any:
        """The nbis-py extractor used for images of this resolution."""
        min_quality = float(self.min_quality)
        if not 0.0 <= min_quality <= 1.0:
            raise ValueError(f"min_quality must be within [0, 1], got {self.min_quality!r}")
        return _lib.nbis_extractor(min_quality, bool(self.compute_nfiq2), _check_dpi(dpi))

    def warm_up(self, dpi: float) -> None:
        """Create the nbis-py extractor (it loads the NFIQ2 model: about 0.4 s) before timing."""
        self._nbis(dpi)

    def extract(self, image: np.ndarray, dpi: float) -> Template:
        img = _check_image(image)
        ex = self._nbis(dpi)
        ppi = float(ex.settings().ppi)
        ok, buf = cv2.imencode(".png", img)
        if not ok:
            raise FailureToEnrol("the image could not be encoded as PNG for nbis-py")
        nbis = _lib.import_nbis()
        try:
            found = ex.extract_minutiae(buf.tobytes())
        except nbis.NbisError as exc:
            raise FailureToEnrol(f"nbis-py extraction failed: {exc!r}") from exc
        data = bytes(found.to_iso_19794_2_2005())
        minutiae, width, height, _ = native.decode(data)
        reliability = np.array([m.reliability() for m in found.get()], dtype=np.float64)
        if reliability.size != minutiae.size or (width, height) != (img.shape[1], img.shape[0]):
            raise RuntimeError(
                f"nbis-py returned {reliability.size} minutiae but a template of {minutiae.size} "
                f"for a {width}x{height} image (expected {img.shape[1]}x{img.shape[0]})"
            )
        if minutiae.size == 0:
            where = f" with reliability >= {self.min_quality}" if float(self.min_quality) > 0 else ""
            raise FailureToEnrol(
                f"MINDTCT found no minutiae{where} in the {img.shape[1]}x{img.shape[0]} image"
            )
        minutiae["quality"] = np.clip(np.floor(100.0 * reliability + 0.5), 0, 100)
        extra: dict[str, Any] = {}
        if self.compute_nfiq2:
            extra["nfiq2"] = int(found.quality().score)
        return Template(
            minutiae=minutiae,
            width=int(img.shape[1]),
            height=int(img.shape[0]),
            dpi=ppi,
            native=data,
            native_format=native.NATIVE_FORMAT,
            extra=extra,
        )


def _check_dpi(dpi: float) -> float:
    try:
        value = float(dpi)
    except (TypeError, ValueError):
        raise ValueError(f"dpi must be a positive number, got {dpi!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")
    return value


def _check_image(image: Any) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise FailureToEnrol(f"expected the image as a numpy array, got {type(image).__name__}")
    if image.ndim != 2:
        raise FailureToEnrol(f"expected a 2-D grayscale image, got an array of shape {image.shape}")
    if image.dtype != np.uint8:
        raise FailureToEnrol(f"expected 8-bit (uint8) pixels, got {image.dtype}")
    if image.size == 0:
        raise FailureToEnrol(f"the image is empty (shape {image.shape})")
    if max(image.shape) > _MAX_SIDE:
        raise FailureToEnrol(
            f"the image is {image.shape[1]}x{image.shape[0]} pixels; nbis-py templates hold "
            f"coordinates up to {_MAX_SIDE}"
        )
    return np.ascontiguousarray(image)
