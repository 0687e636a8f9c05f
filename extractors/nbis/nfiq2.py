"""NFIQ 2 image quality through nbis-py."""

from __future__ import annotations

import cv2
import numpy as np

from bench.plugins import FailureToEnrol
from extractors.nbis import _lib
from extractors.nbis.mindtct import _check_dpi, _check_image


def nfiq2_score(image: np.ndarray, dpi: float = 500.0) -> int:
    """The NFIQ 2 score (0-100, higher is better) of a 2-D uint8 fingerprint image.

    nbis-py computes NFIQ 2 only together with a MINDTCT extraction, so this costs an
    extraction as well (about 70 ms for an FVC image). NFIQ 2 is defined for 500 ppi
    images; nbis-py computes it the same at any ``dpi``. Raises ValueError when the
    image is not a usable grayscale image or NFIQ 2 cannot be computed (a blank image).
    """
    try:
        img = _check_image(image)
    except FailureToEnrol as exc:
        raise ValueError(str(exc)) from None
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise ValueError("the image could not be encoded as PNG for nbis-py")
    nbis = _lib.import_nbis()
    try:
        found = _lib.nbis_extractor(0.0, True, _check_dpi(dpi)).extract_minutiae(buf.tobytes())
    except nbis.NbisError as exc:
        raise ValueError(f"NFIQ 2 could not be computed: {exc!r}") from exc
    return int(found.quality().score)
