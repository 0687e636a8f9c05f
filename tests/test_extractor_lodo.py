"""The leave-one-database-out selection of benchmarks/extractor_lodo.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "extractor_lodo.py"


@pytest.fixture(scope="module")
def lodo():
    spec = importlib.util.spec_from_file_location("extractor_lodo", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def eer(fvc: float, all_pairs: float) -> dict[str, float]:
    return {"fvc": fvc, "all-pairs": all_pairs}


def test_grid_is_the_cartesian_product(lodo):
    settings = lodo.grid_settings({"a": (1, 2), "b": (3,), "c": (4, 5)})
    assert settings == [{"a": 1, "b": 3, "c": 4}, {"a": 1, "b": 3, "c": 5},
                        {"a": 2, "b": 3, "c": 4}, {"a": 2, "b": 3, "c": 5}]


def test_each_fold_chooses_without_its_held_out_set(lodo):
    """Setting 1 is best on set 'c' only, by a wide margin: it wins on all three sets
    together, yet the fold holding 'c' out must choose setting 0 and report 0's EER on c."""
    names = ["a", "b", "c"]
    per_setting = [
        {"a": eer(0.01, 0.01), "b": eer(0.01, 0.01), "c": eer(0.20, 0.20)},
        {"a": eer(0.02, 0.02), "b": eer(0.02, 0.02), "c": eer(0.00, 0.00)},
    ]
    assert lodo.choose(per_setting, names) == 1
    folds = lodo.leave_one_out(per_setting, names)
    assert folds["c"]["setting"] == 0 and folds["c"]["eer"] == eer(0.20, 0.20)
    assert folds["a"]["setting"] == 1 and folds["a"]["eer"] == eer(0.02, 0.02)
    assert folds["c"]["train_score"] == pytest.approx(0.01)


def test_ties_go_to_the_first_setting(lodo):
    per_setting = [{"a": eer(0.01, 0.03)}, {"a": eer(0.03, 0.01)}]
    assert lodo.choose(per_setting, ["a"]) == 0


def test_targets(lodo):
    names = ["a", "b"]
    rows = {
        "classic+MCC": {"a": eer(0.01, 0.02), "b": eer(0.05, 0.05)},
        "NBIS": {"a": eer(0.02, 0.03), "b": eer(0.04, 0.06)},  # b, FVC: classic is not below
        "MINDTCT+MCC": {"a": eer(0.05, 0.05), "b": eer(0.05, 0.05)},
    }
    assert lodo.targets(rows, names) == {"below_nbis_every_set": False, "below_mindtct_mcc_mean": True}
