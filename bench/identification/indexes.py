"""The reference index: exhaustive search (every gallery template is a candidate).

A cascade with this index at penetration 1 compares exactly what a run without an index
compares; it is the point every other index is drawn against. With a budget below the
gallery size it returns more candidates than allowed, and the harness records it as over
budget (see :mod:`bench.identification.cascade`): it has no ranking of its own to cut by.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from bench.template import Template


class ExhaustiveIndex:
    """Every template, in gallery order: penetration 100 %."""

    version = "1.0"
    accepted_formats = ("minutiae",)
    work_unit = "templates listed"

    def build(self, gallery: Sequence[Template]) -> None:
        self._n = len(gallery)

    def search(self, probe: Template, budget: int) -> tuple[np.ndarray, int]:
        return np.arange(self._n, dtype=np.int64), self._n

    def memory_bytes(self) -> int:
        return 0
