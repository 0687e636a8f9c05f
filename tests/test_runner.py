"""The runner: pair counts, failure isolation, caching, resumption, recomputation.

Each test runs on the embedded synthetic set (every checkout has it) and again on FVC2002
DB1_B where the real data is present (see the ``image_set`` fixture)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bench import protocols
from bench.datasets.base import Sample
from bench.metrics.summary import evaluate_run
from bench.plugins.loading import PluginSpec
from bench.runner import RunConfig, run_benchmark
from bench.store import RunDirError
from conftest import dummy, folder_dataset
from dummy_plugins import CRASH_LEVEL, FTE_LEVEL, HANG_LEVEL, RAISE_LEVEL

def config(tmp_path: Path, extractor="ToyExtractor", matcher="ToyMatcher", **kw) -> RunConfig:
    return RunConfig(
        extractor=PluginSpec("extractor", extractor, dummy(extractor), kw.pop("extractor_params", {})),
        matcher=PluginSpec("matcher", matcher, dummy(matcher), kw.pop("matcher_params", {})),
        out=kw.pop("out", tmp_path / "run"), cache_dir=kw.pop("cache_dir", tmp_path / "cache"),
        jobs=kw.pop("jobs", 2), progress=False, **kw,
    )


@pytest.fixture
def fvc_copy(image_set, tmp_path) -> Path:
    """Fingers 101-104 x 4 impressions of the image set, copied to a scratch folder."""
    root = tmp_path / "images"
    root.mkdir()
    for f in range(101, 105):
        for i in range(1, 5):
            shutil.copy(image_set / f"{f}_{i}.tif", root)
    return root


def test_fvc_pairs_scores_and_recomputation(image_set, tmp_path):
    ds = folder_dataset(image_set)
    pairs = protocols.fvc(ds)
    summary = run_benchmark(ds, pairs, config(tmp_path, matcher="BatchToyMatcher"))
    scores = pd.read_csv(summary.run_dir / "scores.csv")
    assert len(scores) == 325
    assert scores["genuine"].sum() == 280
    assert (scores["status"] == "ok").all()
    ext = pd.read_csv(summary.run_dir / "extractions.csv")
    assert len(ext) == 80 and (ext["status"] == "ok").all()
    assert (ext["seconds"] > 0).all()
    stored = json.loads((summary.run_dir / "metrics.json").read_text())
    again = evaluate_run(summary.run_dir, write=False)
    assert stored["accuracy"] == again["accuracy"]
    manifest = json.loads((summary.run_dir / "manifest.json").read_text())
    assert manifest["protocol"]["n_genuine"] == 280 and manifest["protocol"]["n_impostor"] == 45
    assert len(manifest["dataset"]["files_sha256"]) == 80
    assert manifest["extractor"]["params"] == {"cell": 16, "keep": 20}
    assert "numpy" in manifest["environment"]["packages"]


def test_bad_items_are_recorded_and_the_run_finishes(fvc_copy, tmp_path):
    h, w = cv2.imread(str(fvc_copy / "101_1.tif"), 0).shape
    (fvc_copy / "101_2.tif").write_bytes((fvc_copy / "101_2.tif").read_bytes()[:500])  # truncated
    for name, level in [("102_2", CRASH_LEVEL), ("102_3", HANG_LEVEL), ("103_2", RAISE_LEVEL), ("103_3", FTE_LEVEL)]:
        cv2.imwrite(str(fvc_copy / f"{name}.tif"), np.full((h, w), level, np.uint8))
    ds = folder_dataset(fvc_copy)
    missing = Sample("104_4", "104", 4, None, 500)
    ds.samples = [s for s in ds.samples if s.id != "104_4"] + [missing]
    pairs = protocols.fvc(ds)
    summary = run_benchmark(ds, pairs, config(tmp_path, extract_timeout=3.0))
    ext = pd.read_csv(summary.run_dir / "extractions.csv").set_index("sample")
    assert ext.loc["101_2", "status"] == "unreadable" and "101_2.tif" in ext.loc["101_2", "error"]
    assert ext.loc["102_2", "status"] == "crash" and "SIGSEGV" in ext.loc["102_2", "error"]
    assert ext.loc["102_3", "status"] == "timeout" and "102_3.tif" in ext.loc["102_3", "error"]
    assert ext.loc["103_2", "status"] == "error" and "toy extractor failure" in ext.loc["103_2", "error"]
    assert ext.loc["103_3", "status"] == "fte"
    assert ext.loc["104_4", "status"] == "missing"
    assert (ext["status"] == "ok").sum() == 16 - 6
    scores = pd.read_csv(summary.run_dir / "scores.csv")
    assert len(scores) == len(pairs.pairs) == 4 * 6 + 6
    failed_ids = {"101_2", "102_2", "102_3", "103_2", "103_3", "104_4"}
    involves = scores["probe"].isin(failed_ids) | scores["reference"].isin(failed_ids)
    assert (scores.loc[involves, "status"] == "enrol_failed").all()
    assert (scores.loc[~involves, "status"] == "ok").all()
    assert summary.metrics["enrolment"]["rej_enroll"] == 6


def test_matcher_crash_costs_only_its_pairs(fvc_copy, tmp_path):
    img = cv2.imread(str(fvc_copy / "103_1.tif"), 0)
    narrow = img.shape[1] - 7
    cv2.imwrite(str(fvc_copy / "103_1.tif"), img[:, :narrow])  # a narrower image: the matcher crashes on it
    ds = folder_dataset(fvc_copy)
    pairs = protocols.fvc(ds)
    cfg = config(tmp_path, matcher="CrashingMatcher", matcher_params={"crash_width": narrow})
    summary = run_benchmark(ds, pairs, cfg)
    scores = pd.read_csv(summary.run_dir / "scores.csv")
    crashed = scores[scores["status"] == "crash"]
    assert set(crashed["reference"]) == {"103_1"}
    assert len(crashed) == len([p for p in pairs.pairs if p.reference == "103_1"])
    assert (scores.loc[scores["reference"] != "103_1", "status"] == "ok").all()
    assert summary.metrics["accuracy"]["rej_ngra"] + summary.metrics["accuracy"]["rej_nira"] == len(crashed)


def test_templates_are_cached_and_runs_resume(fvc_copy, tmp_path):
    ds = folder_dataset(fvc_copy)
    pairs = protocols.all_pairs(ds)
    first = run_benchmark(ds, pairs, config(tmp_path))
    assert first.n_extracted == 16
    again = run_benchmark(ds, pairs, config(tmp_path))
    assert again.n_extracted == 0 and again.n_compared == 0
    other = run_benchmark(ds, pairs, config(tmp_path, matcher="BatchToyMatcher", out=tmp_path / "run2"))
    assert other.n_extracted == 0  # extracted once, reused through the cache
    assert other.n_compared == len(pairs.pairs)
    a = pd.read_csv(first.run_dir / "scores.csv").sort_values(["probe", "reference"])
    b = pd.read_csv(other.run_dir / "scores.csv").sort_values(["probe", "reference"])
    assert np.array_equal(a["score"].to_numpy(), b["score"].to_numpy())

    # remove half of the scores and a partial line, as a kill mid-write would leave them
    scores_path = first.run_dir / "scores.csv"
    lines = scores_path.read_text().splitlines(keepends=True)
    scores_path.write_text("".join(lines[: len(lines) // 2]) + lines[len(lines) // 2][:7])
    resumed = run_benchmark(ds, pairs, config(tmp_path))
    assert resumed.n_compared == len(lines) - 1 - (len(lines) // 2 - 1)
    c = pd.read_csv(scores_path).sort_values(["probe", "reference"])
    assert np.array_equal(a["score"].to_numpy(), c["score"].to_numpy())


def test_a_run_directory_of_another_configuration_is_refused(fvc_copy, tmp_path):
    ds = folder_dataset(fvc_copy)
    run_benchmark(ds, protocols.fvc(ds), config(tmp_path))
    with pytest.raises(RunDirError, match="another configuration"):
        run_benchmark(ds, protocols.fvc(ds), config(tmp_path, extractor_params={"keep": 5}))
    forced = run_benchmark(ds, protocols.fvc(ds), config(tmp_path, extractor_params={"keep": 5}, force=True))
    assert forced.n_extracted == 16


def test_incomplete_run_is_reported(fvc_copy, tmp_path):
    ds = folder_dataset(fvc_copy)
    summary = run_benchmark(ds, protocols.fvc(ds), config(tmp_path))
    scores_path = summary.run_dir / "scores.csv"
    lines = scores_path.read_text().splitlines(keepends=True)
    scores_path.write_text("".join(lines[:-3]))
    with pytest.raises(RunDirError, match="3 of 30 pairs"):
        evaluate_run(summary.run_dir)
    (summary.run_dir / "pairs.csv").unlink()
    with pytest.raises(RunDirError, match="pairs.csv is missing"):
        evaluate_run(summary.run_dir)


def test_cached_template_path_finds_the_runs_templates(fvc_copy, tmp_path):
    from bench.store.template_cache import cached_template_path
    from bench.template import Template

    ds = folder_dataset(fvc_copy)
    summary = run_benchmark(ds, protocols.fvc(ds), config(tmp_path))
    manifest = json.loads((summary.run_dir / "manifest.json").read_text())
    path = cached_template_path(manifest, "101_1")
    assert path is not None and len(Template.load(path)) == 20
    assert cached_template_path(manifest, "no_such_sample") is None
    path.write_bytes(path.read_bytes()[:-1])  # a damaged template is not offered
    assert cached_template_path(manifest, "101_1") is None
