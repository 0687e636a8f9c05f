"""Quality plugins for testing the harness (not quality measures anyone should use).

``ToyQuality`` scores an image by how dark it is (0-100). A uniform image whose grey
level is one of the trigger values below makes it misbehave, so a test can build a
dataset with a crash, a hang, NaN, an error code and an exception in it.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from bench.plugins import QualityNotApplicable

CRASH_LEVEL = 31
HANG_LEVEL = 37
NAN_LEVEL = 41
ERROR_CODE_LEVEL = 43
RAISE_LEVEL = 47
NOT_APPLICABLE_LEVEL = 53


class ToyQuality:
    version = "1"
    score_range = (0.0, 100.0)

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def assess(self, image: np.ndarray, dpi: float) -> float:
        if image.min() == image.max():
            level = int(image.flat[0])
            if level == CRASH_LEVEL:
                os.kill(os.getpid(), signal.SIGSEGV)
            if level == HANG_LEVEL:
                time.sleep(3600)
            if level == NAN_LEVEL:
                return float("nan")
            if level == ERROR_CODE_LEVEL:
                return 255
            if level == RAISE_LEVEL:
                raise RuntimeError("toy quality failure")
            if level == NOT_APPLICABLE_LEVEL:
                raise QualityNotApplicable("toy quality is not defined for this image")
        return float(np.floor(self.scale * (100.0 - image.mean() / 2.55)))


class BadRangeQuality(ToyQuality):
    score_range = (100.0, 0.0)
