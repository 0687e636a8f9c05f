"""Speed of the built-in algorithms (pytest-benchmark).

Run with ``pytest tests/benchmarks --benchmark-enable`` to time them (single-threaded
numbers need ``OPENBLAS_NUM_THREADS=1``); with the project's default
``--benchmark-disable`` each benchmark runs once, as a plain test. They skip when the
FVC data is absent. ``python -m benchmarks.bench_builtin`` measures accuracy and
speed on all eight FVC2000/2002 B sets.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from extractors.classic import ClassicExtractor
from extractors.mcc import MccMatcher

SETS = [("fvc2002", "DB1_B")]
GALLERY_SIZE = 1000


@pytest.fixture(scope="module")
def images(shared_data) -> list[np.ndarray]:
    out = []
    for year, db in SETS:
        for finger in range(101, 111):
            for impression in (1, 2):
                path = shared_data / year / db / f"{finger}_{impression}.tif"
                out.append(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
    return out


@pytest.fixture(scope="module")
def templates(images) -> list:
    ex = ClassicExtractor()
    return [ex.extract(img, 500) for img in images]


def test_extraction_per_image(benchmark, images):
    ex = ClassicExtractor()
    img = images[0]
    t = benchmark(ex.extract, img, 500)
    assert 15 <= len(t) <= 100


def kernels() -> list[str]:
    from extractors.mcc import compiled

    return ["numba", "numpy"] if compiled.AVAILABLE else ["numpy"]


@pytest.mark.parametrize("kernel", kernels())
def test_preparation(benchmark, templates, kernel):
    """Cylinders of one template (a fresh copy each round, so nothing is cached)."""
    from bench.template import Template

    m = MccMatcher(kernel=kernel)
    m.warm_up()
    t = templates[0]
    cylinders = benchmark(lambda: m.prepare(Template(t.minutiae.copy(), t.width, t.height, t.dpi)))
    assert len(cylinders) > 10


@pytest.mark.parametrize("kernel", kernels())
@pytest.mark.parametrize("ns", [16, 8])
def test_comparison_one_to_one(benchmark, templates, ns, kernel):
    m = MccMatcher(ns=ns, kernel=kernel)
    a, b = templates[0], templates[1]  # two impressions of one finger
    m.prepare(a), m.prepare(b)
    score = benchmark(m.compare, a, b)
    assert score > m.compare(a, templates[2])


@pytest.mark.parametrize("kernel", kernels())
@pytest.mark.parametrize("ns", [16, 8])
def test_comparison_one_to_many(benchmark, templates, ns, kernel):
    """One prepared probe against a prepared gallery of 1,000 templates."""
    m = MccMatcher(ns=ns, kernel=kernel)
    gallery = (templates * (GALLERY_SIZE // len(templates) + 1))[:GALLERY_SIZE]
    probe = templates[1]
    m.compare_many(probe, gallery)  # prepares and stacks the gallery once
    scores = benchmark(m.compare_many, probe, gallery)
    assert scores.shape == (GALLERY_SIZE,)
    benchmark.extra_info["comparisons_per_call"] = GALLERY_SIZE
    assert scores[0] > np.median(scores)  # the mate (impression 1 of the same finger) stands out
