"""The coursework example (examples/my_extractor.py) that the README walks through."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from bench import metrics as M
from bench import protocols
from bench.datasets import open_dataset
from bench.plugins.registry import create
from bench.synthetic import ensure_dataset
from bench.testing import check_extractor

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "my_extractor.py"


@pytest.fixture(scope="module")
def example_class():
    spec = importlib.util.spec_from_file_location("my_extractor", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CrossingNumber


def test_example_conforms(example_class):
    check_extractor(example_class()).raise_if_failed()


def test_example_has_a_sensible_eer_on_the_embedded_set_with_mcc(example_class):
    """About 40 minutiae per image and EER 4.5 % under the FVC protocol (the README says so);
    an extractor that finds noise scores near 50 %."""
    dataset = open_dataset("synthetic", root=ensure_dataset())
    pairs = protocols.build("fvc", dataset)
    extractor, matcher = example_class(), create("matcher", "mcc")
    templates = {s.id: extractor.extract(dataset.read_image(s), s.dpi) for s in dataset.samples}
    assert 25 <= np.median([len(t.minutiae) for t in templates.values()]) <= 60
    scores = np.array([matcher.compare(templates[p.probe], templates[p.reference]) for p in pairs.pairs])
    genuine = np.array([p.genuine for p in pairs.pairs])
    result = M.compute_metrics(scores, genuine, np.full(scores.size, "ok"))
    assert result["eer"] < 0.15
