"""The run engine: one backend interface for every kind of work (bench.engine).

A 1:1 run gives the same tables on the local process pool and on a Dask cluster, in
protocol order, and a plugin crash on Dask costs only the item it happened on."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bench import protocols
from bench.engine.backends import LocalBackend
from bench.engine.comparison import units
from bench.plugins import matcher_hooks
from bench.plugins.loading import PluginSpec
from bench.protocols import Pair
from bench.runner import RunConfig, run_benchmark
from conftest import dummy, folder_dataset

TIMING = ["seconds"]


def make_images(root: Path, subjects: int = 4, impressions: int = 3, narrow: str = "") -> Path:
    """Impressions of one subject share a dark-cell pattern; ``narrow`` names an image made
    8 pixels narrower (CrashingMatcher crashes on it)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for s in range(subjects):
        base = rng.uniform(60, 200, (12, 12))
        for i in range(impressions):
            img = np.kron(base + rng.normal(0, 12, base.shape), np.ones((8, 8))).clip(0, 255).astype(np.uint8)
            name = f"{101 + s}_{i + 1}"
            cv2.imwrite(str(root / f"{name}.png"), img[:, :-8] if name == narrow else img)
    return root


def config(tmp_path: Path, out: str, matcher: str = "ToyMatcher", **params) -> RunConfig:
    return RunConfig(PluginSpec("extractor", "ToyExtractor", dummy("ToyExtractor"), {"cell": 8, "keep": 12}),
                     PluginSpec("matcher", matcher, dummy(matcher), params), tmp_path / out, tmp_path / "cache",
                     jobs=2, chunk_size=5, progress=False)


def table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns=TIMING)


def test_units_keep_protocol_order_and_group_pairs_by_probe():
    pairs = [Pair("a", "b", True), Pair("c", "a", False), Pair("a", "c", False), Pair("b", "c", True),
             Pair("a", "d", False)]
    got = units(pairs, 2)
    assert [[(p.probe, p.reference) for p in u] for u in got] == [
        [("a", "b"), ("a", "c")], [("a", "d"), ("c", "a")], [("b", "c")]]
    assert len([p for u in got for p in u]) == len(pairs)


def test_declared_hooks_are_recorded_not_guessed():
    from extractors.mcc.matcher import MccMatcher
    from extractors.nbis.bozorth3 import Bozorth3Matcher

    assert matcher_hooks(MccMatcher())["batched"] is True
    class Loop:  # compare_many that loops over compare, not declared batched
        def compare(self, a, b):
            return 0.0

        def compare_many(self, a, gallery):
            return [self.compare(a, g) for g in gallery]
    hooks = matcher_hooks(Loop())
    assert hooks["compare_many"] and not hooks["batched"] and not hooks["prepare"]
    assert matcher_hooks(Bozorth3Matcher())["prepare"] and not matcher_hooks(Bozorth3Matcher())["batched"]


@pytest.mark.parametrize("matcher, called", [("MarkingManyMatcher", False), ("BatchedMarkingManyMatcher", True)])
def test_a_1to1_run_times_each_pair_unless_the_matcher_declares_a_batch(tmp_path, matcher, called):
    """A compare_many that is a loop over compare is not called: each pair is timed by its own
    compare call; a batched one gets all the pairs of a probe at once, with the same scores."""
    ds = folder_dataset(make_images(tmp_path / "img"))
    pairs = protocols.all_pairs(ds)
    marker = tmp_path / "called"
    s = run_benchmark(ds, pairs, config(tmp_path, "r", matcher, marker=str(marker)))
    assert marker.exists() is called
    plain = run_benchmark(ds, pairs, config(tmp_path, "plain"))
    assert table(s.run_dir / "scores.csv").equals(table(plain.run_dir / "scores.csv"))
    seconds = pd.read_csv(s.run_dir / "scores.csv")["seconds"]
    assert seconds.notna().all() and (seconds >= 0).all()


def test_tables_are_in_protocol_order_whatever_the_order_units_finish(tmp_path):
    ds = folder_dataset(make_images(tmp_path / "img"))
    pairs = protocols.all_pairs(ds)
    s = run_benchmark(ds, pairs, config(tmp_path, "r"))
    scores = pd.read_csv(s.run_dir / "scores.csv", dtype=str)
    assert list(zip(scores["probe"], scores["reference"])) == [(p.probe, p.reference) for p in pairs.pairs]
    ext = pd.read_csv(s.run_dir / "extractions.csv", dtype=str)
    assert list(ext["sample"]) == sorted(ext["sample"])
    # a second run of the same inputs, on one worker, gives the same bytes apart from timings
    s1 = run_benchmark(ds, pairs, config(tmp_path, "r1"), LocalBackend(1))
    for name in ("scores.csv", "extractions.csv"):
        assert table(s.run_dir / name).to_csv() == table(s1.run_dir / name).to_csv()


distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    import dask

    from bench.engine.backends import WORKER_DAEMON

    with dask.config.set({WORKER_DAEMON: False}):  # the workers start the children that isolate plugins
        c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                     dashboard_address="127.0.0.1:0")
    yield c
    c.close()


def test_a_1to1_run_on_dask_equals_the_local_run(tmp_path, cluster):
    from bench.engine.backends import DaskBackend

    ds = folder_dataset(make_images(tmp_path / "img"))
    pairs = protocols.all_pairs(ds)
    local = run_benchmark(ds, pairs, config(tmp_path, "local"))
    backend = DaskBackend(cluster.scheduler_address, connect_timeout=30)
    try:
        dask = run_benchmark(ds, pairs, config(tmp_path, "dask"), backend)
    finally:
        backend.close()
    for name in ("scores.csv", "extractions.csv", "pairs.csv"):
        assert table(local.run_dir / name).equals(table(dask.run_dir / name)) if name != "pairs.csv" else \
            (local.run_dir / name).read_bytes() == (dask.run_dir / name).read_bytes()
    a, b = (json.loads((r.run_dir / "metrics.json").read_text()) for r in (local, dask))
    assert a["accuracy"] == b["accuracy"]
    assert json.loads((dask.run_dir / "manifest.json").read_text())["backend"]["backend"] == "dask"


def test_a_plugin_crash_on_dask_costs_only_its_pairs(tmp_path, cluster):
    from bench.engine.backends import DaskBackend

    ds = folder_dataset(make_images(tmp_path / "img", narrow="103_1"))
    pairs = protocols.all_pairs(ds)
    backend = DaskBackend(cluster.scheduler_address, connect_timeout=30)
    try:
        s = run_benchmark(ds, pairs, config(tmp_path, "r", "CrashingMatcher", crash_width=88), backend)
    finally:
        backend.close()
    scores = pd.read_csv(s.run_dir / "scores.csv")
    crashed = scores[scores["status"] == "crash"]
    assert set(crashed["reference"]) == {"103_1"}
    assert len(crashed) == sum(p.reference == "103_1" for p in pairs.pairs)
    assert (scores.loc[scores["reference"] != "103_1", "status"] == "ok").all()


def test_bad_images_on_dask_cost_only_themselves(tmp_path, cluster):
    from bench.engine.backends import DaskBackend
    from dummy_plugins import CRASH_LEVEL, HANG_LEVEL

    root = make_images(tmp_path / "img")
    for name, level in (("102_2", CRASH_LEVEL), ("103_3", HANG_LEVEL)):
        cv2.imwrite(str(root / f"{name}.png"), np.full((96, 96), level, np.uint8))
    ds = folder_dataset(root)
    cfg = config(tmp_path, "r")
    cfg.extract_timeout = 2.0
    backend = DaskBackend(cluster.scheduler_address, connect_timeout=30)
    try:
        s = run_benchmark(ds, protocols.fvc(ds), cfg, backend)
    finally:
        backend.close()
    ext = pd.read_csv(s.run_dir / "extractions.csv").set_index("sample")
    assert ext.loc["102_2", "status"] == "crash" and ext.loc["103_3", "status"] == "timeout"
    assert (ext.drop(index=["102_2", "103_3"])["status"] == "ok").all()


def test_daemonic_dask_workers_are_refused_for_isolated_work(tmp_path):
    from bench.engine.backends import BackendError, DaskBackend

    ds = folder_dataset(make_images(tmp_path / "img"))
    c = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                 dashboard_address="127.0.0.1:0")
    backend = DaskBackend(c.scheduler_address, connect_timeout=30)
    try:
        with pytest.raises(BackendError, match="DASK_DISTRIBUTED__WORKER__DAEMON=False"):
            run_benchmark(ds, protocols.fvc(ds), config(tmp_path, "r"), backend)
    finally:
        backend.close()
        c.close()


def test_plugin_descriptions_are_reused_until_the_code_changes(tmp_path):
    from bench.plugins.loading import describe_plugins

    plugin = tmp_path / "counted.py"
    log = tmp_path / "constructed.txt"
    code = f'''
class Counted:
    version = "1"
    higher_is_better = True
    accepted_formats = ("minutiae",)

    def __init__(self):
        with open({str(log)!r}, "a") as f:
            f.write("x")

    def compare(self, probe, reference):
        return 0.0
'''
    plugin.write_text(code)
    spec = PluginSpec("matcher", "Counted", f"{plugin}:Counted", {})
    first = describe_plugins([spec], 30, tmp_path / "cache")
    again = describe_plugins([spec], 30, tmp_path / "cache")
    assert again == first and log.read_text() == "x"  # the second description came from the cache
    plugin.write_text(code.replace('version = "1"', 'version = "2"'))
    changed = describe_plugins([spec], 30, tmp_path / "cache")
    assert changed[0]["version"] == "2" and log.read_text() == "xx"
    assert changed[0]["code_sha256"] != first[0]["code_sha256"]
    assert describe_plugins([spec], 30)[0] == changed[0] and log.read_text() == "xxx"  # no cache: constructed
