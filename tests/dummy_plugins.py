"""Small plugins for testing the harness itself (not algorithms anyone should use).

``ToyExtractor`` takes the darkest cells of a coarse grid as "minutiae"; ``ToyMatcher``
counts minutiae of the probe that have a reference minutia within a few pixels. Images
whose mean grey level is one of the trigger values below make the extractor misbehave,
so tests can build a dataset with a crash, a hang and an exception in it.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from bench.plugins import FailureToEnrol
from bench.template import Template, make_minutiae

CRASH_LEVEL = 13
HANG_LEVEL = 17
RAISE_LEVEL = 19
FTE_LEVEL = 23


class ToyExtractor:
    version = "1"
    template_format = "minutiae"

    def __init__(self, cell: int = 16, keep: int = 20):
        self.cell = cell
        self.keep = keep

    def extract(self, image: np.ndarray, dpi: float) -> Template:
        if image.size and image.min() == image.max():
            level = int(image.flat[0])
            if level == CRASH_LEVEL:
                os.kill(os.getpid(), signal.SIGSEGV)
            if level == HANG_LEVEL:
                time.sleep(3600)
            if level == RAISE_LEVEL:
                raise RuntimeError("toy extractor failure")
            if level == FTE_LEVEL:
                raise FailureToEnrol("uniform image")
        h, w = image.shape
        c = self.cell
        gh, gw = h // c, w // c
        cells = image[: gh * c, : gw * c].reshape(gh, c, gw, c).mean(axis=(1, 3))
        order = np.argsort(cells, axis=None, kind="stable")[: self.keep]
        ys, xs = np.unravel_index(order, cells.shape)
        return Template(make_minutiae(xs * c + c / 2, ys * c + c / 2, np.zeros(len(xs)), 1, 50), w, h, dpi)


class ToyMatcher:
    version = "1"
    higher_is_better = True
    accepted_formats = ("minutiae",)

    def __init__(self, tolerance: float = 8.0):
        self.tolerance = tolerance

    def compare(self, probe: Template, reference: Template) -> float:
        if len(probe) == 0 or len(reference) == 0:
            return 0.0
        p = np.stack([probe.minutiae["x"], probe.minutiae["y"]], 1)
        r = np.stack([reference.minutiae["x"], reference.minutiae["y"]], 1)
        d = np.linalg.norm(p[:, None, :] - r[None, :, :], axis=2)
        return float((d.min(axis=1) <= self.tolerance).sum())


class BatchToyMatcher(ToyMatcher):
    """Declares its compare_many batched, so 1:1 runs take the batch path (one call per probe)."""

    batched = True
    calls = 0

    def compare_many(self, probe: Template, gallery):
        return np.array([self.compare(probe, g) for g in gallery])


class MarkingManyMatcher(ToyMatcher):
    """compare_many (a loop, not declared batched) that leaves a file behind when called."""

    def __init__(self, tolerance: float = 8.0, marker: str = ""):
        super().__init__(tolerance)
        self.marker = marker

    def compare_many(self, probe: Template, gallery):
        open(self.marker, "a").close()
        return np.array([self.compare(probe, g) for g in gallery])


class BatchedMarkingManyMatcher(MarkingManyMatcher):
    batched = True


class CrashingMatcher(ToyMatcher):
    """Segfaults whenever the reference image was ``crash_width`` pixels wide."""

    def __init__(self, tolerance: float = 8.0, crash_width: int = -1):
        super().__init__(tolerance)
        self.crash_width = crash_width

    def compare(self, probe: Template, reference: Template) -> float:
        if reference.width == self.crash_width:
            os.kill(os.getpid(), signal.SIGSEGV)
        return super().compare(probe, reference)


class FlakyExtractor(ToyExtractor):
    """Fails on images whose first pixel is even while the file ``fail_while`` exists (a transient fault)."""

    def __init__(self, cell: int = 16, keep: int = 20, fail_while: str = "", error: str = "RuntimeError"):
        super().__init__(cell, keep)
        self.fail_while = fail_while
        self.error = error

    def extract(self, image: np.ndarray, dpi: float) -> Template:
        if self.fail_while and os.path.exists(self.fail_while) and int(image.flat[0]) % 2 == 0:
            raise {"RuntimeError": RuntimeError, "MemoryError": MemoryError}[self.error]("transient failure")
        return super().extract(image, dpi)


def _misbehave(mode: str) -> None:
    """raise, segv, exit or hang, as a broken constructor would."""
    if mode == "raise":
        raise RuntimeError("toy constructor failure")
    if mode == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if mode == "exit":
        import sys

        sys.exit(3)
    if mode == "hang":
        time.sleep(3600)


class BrokenInitMatcher(ToyMatcher):
    """Its constructor misbehaves as ``mode`` says: raise, segv, exit or hang."""

    def __init__(self, tolerance: float = 8.0, mode: str = "raise"):
        super().__init__(tolerance)
        self.mode = mode
        _misbehave(mode)


class BrokenInitExtractor(ToyExtractor):
    """Its constructor misbehaves as ``mode`` says: raise, segv, exit or hang."""

    def __init__(self, cell: int = 16, keep: int = 20, mode: str = "raise"):
        super().__init__(cell, keep)
        self.mode = mode
        _misbehave(mode)


class ExitingExtractor(ToyExtractor):
    """Calls sys.exit on images ``exit_width`` pixels wide."""

    def __init__(self, cell: int = 16, keep: int = 20, exit_width: int = -1):
        super().__init__(cell, keep)
        self.exit_width = exit_width

    def extract(self, image: np.ndarray, dpi: float) -> Template:
        if image.shape[1] == self.exit_width:
            raise SystemExit(3)
        return super().extract(image, dpi)


class InterruptingMatcher(BatchToyMatcher):
    """Raises KeyboardInterrupt for references from images ``interrupt_width`` pixels wide."""

    def __init__(self, tolerance: float = 8.0, interrupt_width: int = -1):
        super().__init__(tolerance)
        self.interrupt_width = interrupt_width

    def compare(self, probe: Template, reference: Template) -> float:
        if reference.width == self.interrupt_width:
            raise KeyboardInterrupt
        return super().compare(probe, reference)


class UnavailableExtractor(ToyExtractor):
    """A plugin whose package is "missing": its availability check gives the reason."""

    @staticmethod
    def check_available() -> str:
        return "the toy package is not installed; install: pip install toy-package"
