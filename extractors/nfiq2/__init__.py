"""NFIQ 2 (NIST Fingerprint Image Quality 2) as a quality plugin, entry point ``nfiq2``.

The score is computed by ``nbis-py`` (:func:`extractors.nbis.nfiq2_score`): 0-100, higher
is better. NFIQ 2 is defined for 500 ppi images only, so an image of another declared
resolution (FVC2002 DB2, 569 dpi; FVC2004 DB3, 512 dpi) is recorded as not applicable,
never scored; 255 (NFIQ 2's error code) or any value outside 0-100 is an error. Scores
changed between NFIQ 2 releases, so the version of the binding that computed them is the
plugin's ``version``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench import references
from bench.plugins import QualityNotApplicable
from extractors.common import gray_image
from extractors.nbis import _lib

#: The one resolution NFIQ 2 is defined for (NIST's NFIQ 2 documentation: 500 ppi).
NFIQ2_DPI = 500.0


class Nfiq2Quality:
    """NFIQ 2 image quality through nbis-py.

    Args:
        dpi_tolerance: how far (in dpi) a declared resolution may be from 500 and still be
            scored; 0 (the default) accepts exactly 500 dpi.
    """

    score_range = (0.0, 100.0)
    bibtex = references.NFIQ2

    def __init__(self, dpi_tolerance: float = 0.0) -> None:
        self.dpi_tolerance = dpi_tolerance

    @property
    def version(self) -> str:
        return f"NFIQ 2 ({_lib.nbis_version()})"

    @staticmethod
    def check_available() -> str:
        return _lib.unavailable_reason()

    def warm_up(self, dpi: float) -> None:
        """Load the NFIQ 2 model (about 0.4 s) before any timed call."""
        _lib.nbis_extractor(0.0, True, NFIQ2_DPI)

    def assess(self, image: np.ndarray, dpi: float) -> float:
        from extractors.nbis import nfiq2_score

        if abs(float(dpi) - NFIQ2_DPI) > float(self.dpi_tolerance):
            raise QualityNotApplicable(f"NFIQ 2 is defined for 500 ppi images; this image is {dpi:g} dpi "
                                       f"(resample it to 500 ppi to score it)")
        try:
            img = gray_image(image)
        except Exception as exc:  # FailureToEnrol: a quality plugin reports it as a plain error
            raise ValueError(str(exc)) from None
        return float(nfiq2_score(img, NFIQ2_DPI))

    def __repr__(self) -> str:
        params: dict[str, Any] = {"dpi_tolerance": self.dpi_tolerance}
        return f"Nfiq2Quality({params})"


__all__ = ["Nfiq2Quality", "NFIQ2_DPI"]
