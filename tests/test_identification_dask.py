"""The Dask backend of 1:N runs, on a real local cluster (2 worker processes, loopback):
the same results as the local process pool, an unreachable scheduler, a worker that dies
mid-run (its unit is recomputed), one that keeps dying (the run stops with an error)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

from bench.engine.backends import BackendError, DaskBackend, LocalBackend  # noqa: E402
from bench.engine.isolation import Task  # noqa: E402
from bench.identification.results import read_table  # noqa: E402
from bench.identification.runner import run_identification  # noqa: E402
from bench.identification.search import SearchContext, SearchJob  # noqa: E402
from test_identification import brute_force, check_against, config, matcher, small_protocol, spec  # noqa: E402

TIMING_COLUMNS = {"search_seconds", "search_cpu_seconds"}


@pytest.fixture(scope="module")
def cluster():
    # one lost attempt per unit is forgiven, the second stops the run (default: 3)
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                     dashboard_address="127.0.0.1:0")  # HTTP server on loopback too
    yield c
    c.close()


def backend(cluster) -> DaskBackend:
    return DaskBackend(cluster.scheduler_address, connect_timeout=30)


def same_results(a: Path, b: Path) -> None:
    for name in ("searches", "candidates", "mated_scores"):
        x, y = read_table(a / name), read_table(b / name)
        assert set(x) == set(y)
        for col in set(x) - TIMING_COLUMNS:
            assert np.array_equal(x[col], y[col]) or np.allclose(x[col], y[col], equal_nan=True, rtol=0, atol=0), col
    assert (a / "histogram.csv").read_text() == (b / "histogram.csv").read_text()
    timed = ("speed", "records_sha256", "sha256")  # timing columns differ, so do the digests
    ma, mb = (json.loads((r / "metrics.json").read_text()) for r in (a, b))
    assert {k: v for k, v in ma.items() if k not in timed} == {k: v for k, v in mb.items() if k not in timed}
    assert ma["records_sha256"]["protocol.csv"] == mb["records_sha256"]["protocol.csv"]


def test_dask_and_local_pool_give_identical_results(tmp_path, cluster):
    p = small_protocol(subjects=30, probes=12)
    local = run_identification(p, config(tmp_path / "local", spec(), shard_size=15), LocalBackend(jobs=2))
    b = backend(cluster)
    try:
        assert b.slots() == 2
        dsk = run_identification(p, config(tmp_path / "dask", spec(), shard_size=15), b)
    finally:
        b.close()
    assert dsk.units_computed == local.units_computed == 2 * 5  # 12 probes / 6; 60 templates in shards of 14
    assert dsk.timing["backend"]["backend"] == "dask" and dsk.timing["backend"]["workers"] == 2
    same_results(tmp_path / "local", tmp_path / "dask")
    check_against(tmp_path / "dask", p, brute_force(p, matcher(), 0, 5), 5)
    # the two runs are the same run: a Dask run resumes a local one and vice versa
    b = backend(cluster)
    try:
        again = run_identification(p, config(tmp_path / "local", spec(), shard_size=15), b)
    finally:
        b.close()
    assert again.units_computed == 0 and again.units_reused == 10


def test_unreachable_scheduler_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    with pytest.raises(BackendError, match=rf"cannot reach the Dask scheduler at tcp://127.0.0.1:{port} within 2 s"):
        DaskBackend(f"tcp://127.0.0.1:{port}", connect_timeout=2)


def test_workers_that_cannot_read_the_stores_are_refused(tmp_path, cluster):
    ctx = SearchContext("k", spec(), True, str(tmp_path / "nowhere" / "gallery"), str(tmp_path / "probes"), 5)
    b = backend(cluster)
    try:
        with pytest.raises(BackendError, match="cannot read the files of this search"):
            list(b.run(SearchJob(ctx), [Task((0, 0), [(0, 0)])]))
    finally:
        b.close()


def test_worker_death_mid_run_is_recomputed_then_repeated_death_stops(tmp_path, cluster):
    p = small_protocol(subjects=20, probes=6, impressions=1)
    marker = tmp_path / "died"
    b = backend(cluster)
    try:
        s = run_identification(p, config(tmp_path / "once", spec(die_marker=str(marker)), shard_size=5), b)
        assert marker.exists() and s.units_computed == 4
        check_against(tmp_path / "once", p, brute_force(p, matcher(), 0, 5), 5)
        with pytest.raises(BackendError, match=r"died too many times.*rather than leaving it out"):
            run_identification(p, config(tmp_path / "always", spec(die_marker="always"), shard_size=50), b)
    finally:
        b.close()


def test_cli_runs_on_a_scheduler_and_reports_a_dead_one(tmp_path, cluster):
    from bench.cli import main

    from test_identification import matchers_file

    target = f"{matchers_file()}:GridMatcher"
    args = ["identify", "--gallery-size", "15", "--probes", "6", "-m", target, "-L", "3"]
    assert main([*args, "--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["backend"]["backend"] == "dask"
    assert main([*args, "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "1",
                 "--out", str(tmp_path / "x")]) == 2


def test_local_cluster_backend_has_single_threaded_workers_without_malloc_trim(monkeypatch):
    import os

    # the nannies of the module's cluster wrote their defaults into this process's environment
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    before = dict(os.environ)
    b = DaskBackend(local_workers=2, connect_timeout=30)
    try:
        assert b.slots() == 2 and b.describe()["local_cluster"]
        env = b.client.run(lambda: (os.environ.get("OMP_NUM_THREADS"), os.environ.get("MALLOC_TRIM_THRESHOLD_")))
        assert set(env.values()) == {("1", None)}
    finally:
        b.close()
    assert dict(os.environ) == before  # and the backend leaves no trace in it
