"""A run checks its plugins on their first items: a repeated interface error stops it
with one message naming the plugin's file and line; a run where every enrolment failed
prints no EER. Synthetic images only (the kit's), so no shared data is needed."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bench import protocols
from bench.cli import main
from bench.datasets.base import Dataset, DatasetInfo, Sample
from bench.plugins.contract import PluginInterfaceError
from bench.plugins.loading import PluginSpec
from bench.runner import RunConfig, run_benchmark
from bench.testing import kit_samples

import kit_plugins as kp

KIT = Path(kp.__file__)
INFO = DatasetInfo("kit", "kit images", "synthetic", 500, None, None, None, "test", "", "", ("fvc",))


@pytest.fixture(autouse=True)
def _fork_workers(monkeypatch):
    """Workers forked from this process inherit the kit's images (made once, here)."""
    kit_samples()
    monkeypatch.setenv("FINGERBENCH_START_METHOD", "fork")


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """One template cache for the module: the oracle's templates are extracted once."""
    return tmp_path_factory.mktemp("kit-cache")


@pytest.fixture(scope="module")
def kit_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kit") / "images"
    root.mkdir()
    for s in kit_samples():
        cv2.imwrite(str(root / f"{s.id}.png"), s.image)
    return root


def _dataset(root: Path) -> Dataset:
    samples = [Sample(p.stem, p.stem.split("_")[0], int(p.stem.split("_")[1]), p, 500.0)
               for p in sorted(root.glob("*.png"))]
    return Dataset(INFO, root, samples)


def _run(root: Path, tmp_path: Path, extractor: str, matcher: str = "NearestMatcher", cache: Path | None = None):
    cfg = RunConfig(PluginSpec("extractor", extractor, f"{KIT}:{extractor}"),
                    PluginSpec("matcher", matcher, f"{KIT}:{matcher}"),
                    out=tmp_path / "run", cache_dir=cache or tmp_path / "cache", jobs=1, progress=False)
    ds = _dataset(root)
    return run_benchmark(ds, protocols.fvc(ds), cfg)


def _line(text: str) -> int:
    return next(i for i, line in enumerate(KIT.read_text().splitlines(), 1) if text in line)


def test_template_without_dpi_stops_the_run_at_the_plugins_line(kit_folder, tmp_path):
    with pytest.raises(PluginInterfaceError) as err:
        _run(kit_folder, tmp_path, "NoDpiExtractor")
    message = str(err.value)
    assert "first 3 items" in message and "missing 1 required positional argument: 'dpi'" in message
    assert f"{KIT}:{_line('Template(self.minutiae(image), w, h)')}" in message
    assert f"fingerbench check {KIT}:NoDpiExtractor" in message
    # the first results were held back, not stored (nor cached) as 12 identical failures
    assert pd.read_csv(tmp_path / "run" / "extractions.csv").empty


def test_degrees_stop_the_run(kit_folder, tmp_path):
    with pytest.raises(PluginInterfaceError, match="values above 2\\*pi look like degrees"):
        _run(kit_folder, tmp_path, "DegreesThroughMakeMinutiae")


@pytest.mark.parametrize("matcher, words", [
    ("StringScoreMatcher", "returned .*'0.\\d\\d'.* not .*number"),
    ("ColumnManyMatcher", "shape \\(\\d+, 1\\)"),
])
def test_wrong_scores_stop_the_run(kit_folder, shared_cache, tmp_path, matcher, words):
    with pytest.raises(PluginInterfaceError, match=words) as err:
        _run(kit_folder, tmp_path, "OracleExtractor", matcher, shared_cache)
    assert str(KIT) in str(err.value)


def test_a_good_pair_runs(kit_folder, shared_cache, tmp_path):
    summary = _run(kit_folder, tmp_path, "OracleExtractor", cache=shared_cache)
    assert summary.metrics["enrolment"]["n_enrolled"] == 12
    scores = pd.read_csv(summary.run_dir / "scores.csv")
    assert len(scores) == 18 and (scores["status"] == "ok").all()
    assert summary.metrics["accuracy"]["n_genuine"] == 12 and summary.metrics["accuracy"]["n_impostor"] == 6


def test_cli_exits_non_zero_with_one_message(kit_folder, tmp_path, capsys, caplog):
    args = ["run", "-d", "folder", "--dataset-path", str(kit_folder), "--dataset-param", "dpi=500",
            "-m", f"{KIT}:NearestMatcher", "-o", str(tmp_path / "out"), "-j", "1"]
    assert main(args + ["-e", f"{KIT}:NoDpiExtractor"]) == 1
    assert "EER" not in capsys.readouterr().out
    assert caplog.text.count("does not keep the plugin contract") == 1
    assert "failure to enrol" not in caplog.text


def test_no_eer_when_every_enrolment_failed(tmp_path, capsys, caplog):
    root = tmp_path / "blank"
    root.mkdir()
    for f in (1, 2):
        for i in (1, 2):
            cv2.imwrite(str(root / f"{f}_{i}.png"), np.full((320, 240), 200 + 10 * f + i, np.uint8))
    args = ["run", "-d", "folder", "--dataset-path", str(root), "--dataset-param", "dpi=500",
            "-e", f"{KIT}:OracleExtractor", "-m", f"{KIT}:NearestMatcher", "-o", str(tmp_path / "out"), "-j", "1"]
    assert main(args) == 1
    assert "EER" not in capsys.readouterr().out
    assert "every one of the 4 enrolments failed" in caplog.text
    assert "not an image of the kit" in caplog.text


# -- the checks the runner applies to what plugins return ------------------------------------
def test_templates_outside_the_image_or_in_degrees_are_refused():
    from bench.plugins.contract import ContractError, check_template
    from bench.template import Template, make_minutiae

    ok = Template(make_minutiae([0, 239.4], [0, 319], [0, 6.28]), 240, 320, 500.0)
    assert check_template(ok, (320, 240)) is ok
    for x, y in ((-5, 10), (10, -3), (400, 10), (10, 1e6)):
        t = Template(make_minutiae([x], [y], [1.0]), 240, 320, 500.0)
        with pytest.raises(ContractError, match="outside the 240x320 image"):
            check_template(t, (320, 240))
    raw = make_minutiae([10], [10], [0.0])
    raw["angle"] = 270.0  # filled in by hand, in degrees
    with pytest.raises(ContractError, match="look like degrees"):
        check_template(Template(raw, 240, 320, 500.0))
    with pytest.raises(ContractError, match="returned dict, not a bench.template.Template"):
        check_template({"minutiae": []})


def test_scores_must_be_numbers():
    from bench.plugins.contract import ContractError, check_score, check_scores

    assert check_score(3) == 3.0 and check_score(np.float32(0.5)) == 0.5 and check_score(np.int64(7)) == 7.0
    assert math.isnan(check_score(float("nan")))  # recorded as a failed comparison, not refused here
    for bad in ("0.99", True, np.bool_(False), None, [0.9], np.array([0.9])):
        with pytest.raises(ContractError, match="not a number"):
            check_score(bad)
    assert check_scores([1, 2.5], 2).tolist() == [1.0, 2.5]
    for bad, words in ((np.array(["0.9", "0.1"]), "not of numbers"), (np.zeros((2, 1)), r"shape \(2, 1\)"),
                       ([True, False], "not of numbers"), ([1.0], r"shape \(1,\)"), ("0.9 0.1", "not 2 numbers")):
        with pytest.raises(ContractError, match=words):
            check_scores(bad, 2)


def test_a_wrong_signature_stops_the_run_at_the_method(kit_folder, tmp_path):
    with pytest.raises(PluginInterfaceError) as err:
        _run(kit_folder, tmp_path, "OneArgumentExtractor")
    assert "takes 2 positional arguments but 3 were given" in str(err.value)
    assert f"{KIT}:{_line('def extract(self, image):')}" in str(err.value)
