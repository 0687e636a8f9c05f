"""The kit's data: a few synthetic impressions with ground-truth minutiae, made in memory.

Four fingers with three impressions each, from the embedded generator with a fixed
seed: no download, about two seconds to make, the same bits on every machine. The
ground truth (ISO conventions) lets the kit tell an extractor that writes degrees, or
flips y, from one that keeps the conventions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bench.template import Template

#: Generator parameters of the kit's set (small images keep every check fast).
KIT_PARAMS = {"fingers": 4, "impressions": 3, "width": 240, "height": 320, "dpi": 500.0,
              "difficulty": "easy", "seed": 15}


@dataclass(frozen=True)
class KitSample:
    """One synthetic impression: its image and its ground-truth template."""

    id: str
    finger: int
    impression: int
    image: np.ndarray  # uint8, height x width, 0 = black
    truth: Template
    dpi: float


@lru_cache(maxsize=1)
def kit_samples() -> tuple[KitSample, ...]:
    """The kit's impressions, finger by finger (made once per process)."""
    from bench.synthetic.generate import make_config, make_finger

    config = make_config(**KIT_PARAMS)
    out = []
    for finger in range(1, config.fingers + 1):
        _, impressions = make_finger(config, finger)
        for i, imp in enumerate(impressions, 1):
            image = np.ascontiguousarray(imp.image, dtype=np.uint8)
            image.setflags(write=False)
            truth = Template(imp.minutiae, config.width, config.height, config.dpi)
            out.append(KitSample(f"{finger}_{i}", finger, i, image, truth, config.dpi))
    return tuple(out)


def genuine_pairs(samples: tuple[KitSample, ...]) -> list[tuple[int, int]]:
    """Indices of every pair of impressions of the same finger (earlier first)."""
    return [(a, b) for a in range(len(samples)) for b in range(a + 1, len(samples))
            if samples[a].finger == samples[b].finger]


def impostor_pairs(samples: tuple[KitSample, ...], impressions: int = 2) -> list[tuple[int, int]]:
    """Indices of every pair of different fingers among their first ``impressions``."""
    idx = [i for i, s in enumerate(samples) if s.impression <= impressions]
    return [(a, b) for n, a in enumerate(idx) for b in idx[n + 1:] if samples[a].finger != samples[b].finger]
