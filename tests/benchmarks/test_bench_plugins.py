"""Speed benchmarks of every registered plugin on real FVC images (pytest-benchmark).

Each extractor is timed on one image; each matcher on one 1:1 comparison and, when it
offers ``compare_many``, on one probe against a small gallery (1:N). Plugins run in this
process, so these are the algorithms' own costs, without the harness's worker isolation.

In a normal test run (``--benchmark-disable`` is in the project's addopts) each benchmark
runs once, as a conformance test. To measure and keep the results::

    pytest tests/benchmarks --benchmark-enable --benchmark-autosave
    pytest tests/benchmarks --benchmark-enable --benchmark-compare --benchmark-compare-fail=median:10%

Unavailable plugins are skipped with the reason that ``fingerbench list`` gives; without
the FVC images every benchmark is skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.plugins import registry
from bench.datasets.base import read_grayscale
from bench.plugins import accepts, matcher_hooks
from bench.template import Template

DB = ("fvc2002", "DB1_B")       # 388 x 374 pixels, 500 dpi
DPI = 500.0
PROBE = "101_1"
MATE = "101_2"
GALLERY = [f"{finger}_{i}" for finger in (101, 102) for i in range(1, 5)]


def _plugin(kind: str, name: str) -> Any:
    entry = registry.entry(kind, name)
    ok, reason = entry.availability()
    if not ok:
        pytest.skip(f"{kind} {name} is unavailable: {reason}")
    cls = entry.load()
    needs = getattr(cls, "required_parameters", ())
    if needs:
        pytest.skip(f"{kind} {name} cannot run with default parameters: it needs {' '.join(needs)}")
    if kind == "extractor" and callable(getattr(cls, "extract_file", None)):
        pytest.skip(f"extractor {name} reads template files, not images")
    return registry.create(kind, name)


@pytest.fixture(scope="module")
def images(shared_data) -> dict[str, np.ndarray]:
    folder = Path(shared_data).joinpath(*DB)
    if not folder.is_dir():
        pytest.skip(f"FVC images not found at {folder}")
    return {sid: read_grayscale(folder / f"{sid}.tif") for sid in sorted({PROBE, MATE, *GALLERY})}


_templates: dict[str, dict[str, Template]] = {}


def _extractor_for(matcher: Any, matcher_name: str) -> str:
    """The extractor whose templates a matcher is benchmarked on: one of its own package
    if there is one (e.g. MINDTCT for BOZORTH3), else the first available that it accepts."""
    family = registry.entry("matcher", matcher_name).target.split(":")[0]
    candidates = []
    for name in registry.names("extractor"):
        entry = registry.entry("extractor", name)
        if not entry.availability()[0]:
            continue
        fmt = getattr(entry.load(), "template_format", "minutiae")
        if accepts(matcher, fmt):
            candidates.append((entry.target.split(":")[0] != family, name))
    if not candidates:
        pytest.skip(f"no available extractor makes templates that matcher {matcher_name} accepts")
    return min(candidates)[1]


def _templates_of(extractor_name: str, images: dict[str, np.ndarray]) -> dict[str, Template]:
    if extractor_name not in _templates:
        extractor = registry.create("extractor", extractor_name)
        _templates[extractor_name] = {sid: extractor.extract(img, DPI) for sid, img in images.items()}
    return _templates[extractor_name]


def _info(benchmark, kind: str, name: str, plugin: Any, **extra: Any) -> None:
    benchmark.extra_info.update({"kind": kind, "plugin": name, "version": str(getattr(plugin, "version", "")),
                                 "dataset": "/".join(DB), **extra})


@pytest.mark.parametrize("name", registry.names("extractor"))
def test_extract_one_image(benchmark, name, images):
    extractor = _plugin("extractor", name)
    warm_up = getattr(extractor, "warm_up", None)
    if callable(warm_up):
        warm_up(DPI)  # one-time set-up is not what is measured
    benchmark.group = "extract: one FVC2002 DB1 image"
    image = images[PROBE]
    template = benchmark(extractor.extract, image, DPI)
    assert isinstance(template, Template)
    assert len(template) > 0, f"{name} found no minutia on {PROBE}"
    assert (template.width, template.height) == (image.shape[1], image.shape[0])
    _info(benchmark, "extractor", name, extractor, image=PROBE, minutiae=len(template),
          template_bytes=template.size_bytes)


@pytest.mark.parametrize("name", registry.names("matcher"))
def test_compare_one_to_one(benchmark, name, images):
    matcher = _plugin("matcher", name)
    extractor_name = _extractor_for(matcher, name)
    tpl = _templates_of(extractor_name, images)
    benchmark.group = "compare 1:1"
    score = benchmark(matcher.compare, tpl[PROBE], tpl[MATE])
    assert np.isfinite(float(score))
    assert float(matcher.compare(tpl[PROBE], tpl[MATE])) == float(score), "comparison is not deterministic"
    _info(benchmark, "matcher", name, matcher, templates=extractor_name, pair=f"{PROBE} vs {MATE}")


@pytest.mark.parametrize("name", registry.names("matcher"))
def test_compare_one_to_many(benchmark, name, images):
    matcher = _plugin("matcher", name)
    if not matcher_hooks(matcher)["batched"]:
        pytest.skip(f"matcher {name} declares no batched compare_many")
    extractor_name = _extractor_for(matcher, name)
    tpl = _templates_of(extractor_name, images)
    gallery = [tpl[sid] for sid in GALLERY]
    benchmark.group = f"compare 1:N (N = {len(gallery)})"
    scores = np.asarray(benchmark(matcher.compare_many, tpl[PROBE], gallery), dtype=float)
    assert scores.shape == (len(gallery),)
    one_by_one = np.array([matcher.compare(tpl[PROBE], g) for g in gallery], dtype=float)
    np.testing.assert_allclose(scores, one_by_one, rtol=1e-6, atol=1e-9,
                               err_msg="compare_many disagrees with compare")
    _info(benchmark, "matcher", name, matcher, templates=extractor_name, gallery_size=len(gallery))
