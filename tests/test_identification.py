"""Identification (1:N): metrics, protocols, synthetic templates, stores, the runner on
the local process pool (exactness against a brute-force search), resumption, and bad
input. The Dask backend has its own file (test_identification_dask.py)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from bench.metrics import identification as im
from bench.protocols import identification as proto
from bench.synthetic import model as syn
from bench.engine.backends import BackendError, LocalBackend
from bench.identification.results import mate_ranks, merge_top, read_table
from bench.store import RunDirError
from bench.identification.runner import IdentificationConfig, run_identification
from bench.metrics.summary import evaluate_run
from bench.identification.sources import MissingTemplatesError, TemplateSources
from bench.identification.store import Shard, TemplateStore, shard_bounds
from bench.protocols import ProtocolError
from bench.plugins.loading import PluginSpec
from conftest import source_file

HERE = Path(__file__).resolve()
PROJECT = HERE.parents[1]


# ----------------------------------------------------------------- test matchers
#: Test matchers, written to a file of their own so that worker processes import only
#: numpy to load them (not this module and what it imports).
MATCHERS_SOURCE = textwrap.dedent('''
    import os
    import time
    from pathlib import Path

    import numpy as np


    class GridMatcher:
        """Counts probe minutiae with a reference minutia within ``tolerance`` pixels.

        Integer scores, so searches have ties (the pessimistic rank rule matters). Test
        switches: ``delay`` seconds per search call; ``die_marker``: the worker process
        exits on its first call if this file does not exist yet (creating it first), or on
        every call when it is "always"; ``fail_every``: compare raises for references whose
        minutiae count is a multiple of it (so compare_many raises and the harness falls
        back to single calls).
        """

        version = "1"
        higher_is_better = True
        accepted_formats = ("minutiae",)

        def __init__(self, tolerance=6.0, delay=0.0, die_marker="", fail_every=0):
            self.tolerance = tolerance
            self.delay = delay
            self.die_marker = die_marker
            self.fail_every = fail_every

        def compare(self, probe, reference):
            if self.fail_every and len(reference) % self.fail_every == 0:
                raise RuntimeError("cannot compare")
            if len(probe) == 0 or len(reference) == 0:
                return 0.0
            p, r = probe.minutiae, reference.minutiae
            d = np.hypot(p["x"][:, None] - r["x"][None, :], p["y"][:, None] - r["y"][None, :])
            return float((d.min(axis=1) <= self.tolerance).sum())

        def compare_many(self, probe, gallery):
            if self.die_marker:
                if self.die_marker == "always":
                    os._exit(3)
                marker = Path(self.die_marker)
                if not marker.exists():
                    marker.write_text("died once")
                    os._exit(3)
            if self.delay:
                time.sleep(self.delay)
            return np.array([self.compare(probe, g) for g in gallery])


    class PreparingGridMatcher(GridMatcher):
        """With a ``prepare`` step that raises for templates whose minutiae count is a
        multiple of ``fail_prepare_every``; comparing with an unprepared reference raises."""

        def __init__(self, tolerance=6.0, fail_prepare_every=5):
            super().__init__(tolerance)
            self.fail_prepare_every = fail_prepare_every
            self._prepared = {}  # id -> template (kept alive, so an id is never reused)

        def prepare(self, template):
            if len(template) % self.fail_prepare_every == 0:
                raise RuntimeError("cannot prepare")
            self._prepared[id(template)] = template

        def compare(self, probe, reference):
            if id(reference) not in self._prepared:
                raise RuntimeError("reference not prepared")
            return super().compare(probe, reference)
''')


def matchers_file() -> Path:
    """The test matchers' file (written once per test session, in a fixed temporary place)."""
    return source_file("id_matchers.py", MATCHERS_SOURCE)


def spec(name: str = "GridMatcher", **params) -> PluginSpec:
    return PluginSpec("matcher", name, f"{matchers_file()}:{name}", params)


def matcher(name: str = "GridMatcher", **params):
    return spec(name, **params).build()


# ----------------------------------------------------------------- brute force
def brute_force(protocol: proto.IdentificationProtocol, matcher, seed: int, L: int) -> dict[str, dict]:
    """Every score, then candidate lists and pessimistic ranks, the slow obvious way."""
    model = syn.MinutiaeModel()
    g = syn.make_templates(model, seed, protocol.gallery_ids)
    subjects = protocol.subjects
    out = {}
    for pid, psub in zip(protocol.probe_ids, protocol.probe_subjects):
        probe = syn.make_template(model, seed, pid)
        s = np.array([matcher.compare(probe, t) for t in g])
        best = {}
        for sc, sub in zip(s, protocol.gallery_subjects):
            best[sub] = max(best.get(sub, -np.inf), sc)
        order = sorted(subjects, key=lambda u: (-best[u], subjects.index(u)))
        cands = [(u, best[u]) for u in order[:L]]
        if psub in best:
            rank = 1 + sum(1 for u in subjects if u != psub and best[u] >= best[psub])
            rank = rank if rank <= L else 0
            mate = best[psub]
        else:
            rank, mate = 0, None
        out[pid] = {"candidates": cands, "rank": rank, "mate": mate, "top": cands[0][1],
                    "scores": dict(zip(protocol.gallery_ids, s))}
    return out


def small_protocol(subjects: int = 40, probes: int = 15, impressions: int = 2, seed: int = 3):
    return proto.synthetic(subjects, probes, mated_fraction=0.4, gallery_impressions=impressions, seed=seed)


def config(out: Path, matcher: PluginSpec, **kw) -> IdentificationConfig:
    kw.setdefault("candidates", 5)
    kw.setdefault("shard_size", 7)
    kw.setdefault("probe_batch", 6)
    kw.setdefault("jobs", 1)
    return IdentificationConfig(matcher, out, TemplateSources(seed=kw.pop("seed", 0), jobs=1), **kw)


def check_against(run: Path, protocol, truth: dict, L: int) -> None:
    s = read_table(run / "searches")
    c = read_table(run / "candidates")
    for i, pid in enumerate(s["probe"]):
        t = truth[pid]
        assert s["mate_rank"][i] == t["rank"], pid
        assert s["top_score"][i] == t["top"], pid
        if t["mate"] is not None:
            assert s["mate_score"][i] == t["mate"], pid
        rows = np.flatnonzero(c["probe"] == pid)
        got = [(c["subject"][r], c["score"][r]) for r in rows[np.argsort(c["rank"][rows])]]
        assert got == t["candidates"], pid
    m = read_table(run / "mated_scores")
    for pid, gid, score in zip(m["probe"], m["gallery_template"], m["score"]):
        assert truth[pid]["scores"][gid] == score


# =================================================================== metrics
def test_cmc_counts_ranks_and_misses():
    c = im.cmc([1, 2, 0, 1, 3], 3)
    assert c.hits.tolist() == [2, 3, 4]
    assert c.rate.tolist() == [0.4, 0.6, 0.8]
    assert c.at(4) is None
    with pytest.raises(ValueError):
        im.cmc([4], 3)


def test_fnir_at_fpir_definitions():
    # mated: (score, rank); non-mated top scores
    ms, mr, nm = [0.9, 0.5, 0.7, 0.8], [1, 1, 2, 0], [0.6, 0.4, 0.3, 0.2, 0.95]
    c1 = im.identification_curve(ms, mr, nm, rank=1)
    # at T = 0.6: FPIR = 2/5 (0.6, 0.95); FNIR(., 1): 0.5 (< T), 0.7 (rank 2), 0.8 (beyond the list)
    i = list(c1.thresholds).index(0.6)
    assert c1.false_positives[i] == 2 and c1.false_negatives[i] == 3
    assert c1.fpir[i] == 0.4 and c1.fnir[i] == 0.75
    c2 = im.identification_curve(ms, mr, nm, rank=2)
    assert c2.false_negatives[list(c2.thresholds).index(0.6)] == 2  # the rank-2 mate at 0.7 now counts
    op = c1.fnir_at_fpir(0.2)
    assert op["fnir"] == 0.75 and op["fpir"] == 0.2 and op["threshold"] == 0.9
    assert c1.fnir_at_fpir(0.1)["fnir"] is None
    assert "unresolvable" in c1.fnir_at_fpir(0.1)["reason"] and "1/5" in c1.fnir_at_fpir(0.1)["reason"]
    assert im.fnir_at_fpir(ms, mr, [], 0.1, 1)["reason"].startswith("no non-mated")
    # a failed comparison with a non-mate (+inf) keeps FPIR above 0 at every threshold
    inf = im.fnir_at_fpir(ms, mr, [0.1, np.inf], 0.0, 1)
    assert inf["fnir"] == 1.0 and inf["threshold"] is None and "unattainable" in inf["reason"]


def test_compute_identification_metrics_keys_and_penetration():
    m = im.compute_identification_metrics(
        mated=[True, True, False, False], mated_score=[0.9, -np.inf, -np.inf, -np.inf], mate_rank=[1, 0, 0, 0],
        top_score=[0.9, 0.4, 0.3, -np.inf], candidates=10, n_compared=[10, 10, 5, 0], gallery_size=10,
        enrolled=[True, False, True, False])
    assert m["rank_identification_rate"] == {"1": 0.5, "5": 0.5, "10": 0.5}
    assert m["n_probe_enrol_failed"] == 2 and m["n_probe_enrol_failed_mated"] == 1
    assert m["penetration_rate"] == 25 / 40 and m["penetration_rate_nonmated"] == 5 / 20
    assert set(m["fnir_at_fpir"]) == {"rank1", "rank10"}
    assert m["fnir_at_fpir"]["rank1"]["0.1"]["reason"].startswith("unresolvable")


def test_histogram_keys_preserve_order_and_edges_contain_values():
    rng = np.random.default_rng(0)
    s = np.concatenate([rng.normal(0, 10, 2000), [0.0, -0.0, 1e-30, -1e30, 1e30, np.inf, -np.inf]])
    k = im.histogram_keys(s)
    order = np.argsort(s.astype(np.float32), kind="stable")
    assert np.all(np.diff(k[order].astype(np.int64)) >= 0)
    lo, hi = im.histogram_bin_edges(k)
    f = s.astype(np.float32).astype(np.float64)
    assert np.all((lo <= f) & (f <= hi))
    with pytest.raises(ValueError):
        im.histogram_keys([np.nan])


def test_merge_top_is_exact_and_ranks_are_pessimistic():
    rng = np.random.default_rng(1)
    P, K = 30, 4
    scores = rng.integers(0, 5, (P, 40)).astype(float)  # many ties
    parts = np.array_split(np.arange(40), 5)
    sub = np.full((P, K), -1, np.int32)
    sc = np.full((P, K), -np.inf)
    for part in parts:
        local = scores[:, part]
        o = np.lexsort((np.broadcast_to(part, local.shape), -local), axis=1)[:, :K]
        sub, sc = merge_top(sub, sc, part[o].astype(np.int32), np.take_along_axis(local, o, 1), K)
    o = np.lexsort((np.broadcast_to(np.arange(40), scores.shape), -scores), axis=1)[:, :K]
    assert np.array_equal(sub, o) and np.array_equal(sc, np.take_along_axis(scores, o, 1))
    mate = rng.integers(0, 40, P)
    ms = scores[np.arange(P), mate]
    rank = mate_ranks(sub, sc, mate, ms, candidates=K - 1)
    truth = 1 + (scores >= ms[:, None]).sum(1) - 1  # others with score >= mate's
    truth[truth > K - 1] = 0
    assert np.array_equal(rank, truth)


# =================================================================== protocols
def test_synthetic_protocol_shape_and_csv_round_trip(tmp_path):
    p = proto.synthetic(100, 30, mated_fraction=1 / 3, gallery_impressions=2, seed=1)
    assert p.n_gallery == 200 and len(p.subjects) == 100 and p.n_probes == 30 and p.n_mated == 10
    assert not set(p.probe_ids) & set(p.gallery_ids)
    p.to_csv(tmp_path / "p.csv")
    q = proto.from_csv(tmp_path / "p.csv")
    assert q.digest() == p.digest() and q.n_mated == 10
    text = (tmp_path / "p.csv").read_text().splitlines()
    assert text[0] == "role,id,subject,mated" and text[1].startswith("gallery,syn:S0000001_1,syn:S0000001")


@pytest.mark.parametrize("rows, message", [
    (["gallery,a_1,a,", "gallery,a_1,a,", "probe,a_2,a,1"], "duplicate gallery ids"),
    (["gallery,a_1,a,", "probe,b_2,b,0", "probe,b_2,b,0"], "duplicate probe ids"),
    (["gallery,a_1,a,", "probe,a_1,a,1"], "also gallery templates"),
    (["gallery,a_1,a,", "probe,b_1,b,1"], "marked mated=1"),
    (["gallery,a_1,a,", "enrol,b_1,b,"], "role must be"),
    (["gallery,a_1,a,"], "no probes"),
])
def test_protocol_csv_errors(tmp_path, rows, message):
    f = tmp_path / "p.csv"
    f.write_text("\n".join(["role,id,subject,mated", *rows]) + "\n")
    with pytest.raises(ProtocolError, match=message):
        proto.from_csv(f)


def _image_dataset(root: Path, subjects: int = 6, impressions: int = 3, fte: str = "") -> None:
    import cv2

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for s in range(1, subjects + 1):
        base = rng.integers(60, 255, (128, 128)).astype(np.int16)
        for i in range(1, impressions + 1):
            img = np.clip(base + rng.integers(-6, 7, base.shape), 0, 255).astype(np.uint8)
            if f"{s}_{i}" == fte:
                img[:] = 23  # tests/dummy_plugins.py FTE_LEVEL: the toy extractor fails to enrol
            cv2.imwrite(str(root / f"{s}_{i}.png"), img)


def test_from_dataset_fvc_style_and_mated_fraction(tmp_path):
    from bench.datasets import open_dataset

    _image_dataset(tmp_path / "img", subjects=6, impressions=3)
    ds = open_dataset("folder", root=tmp_path / "img", dpi=500)
    p = proto.from_dataset(ds)
    assert p.gallery_ids == [f"{s}_1" for s in range(1, 7)] and p.n_probes == 12 and p.n_mated == 12
    q = proto.from_dataset(ds, mated_fraction=0.5, seed=0, distractors=3)
    assert len(q.subjects) == 3 + 3 and q.n_mated == 6 and q.n_probes == 12
    assert q.gallery_ids[-1] == "syn:S0000003_1"


# =================================================================== synthetic model
def test_synthetic_templates_are_deterministic_and_calibrated():
    model = syn.MinutiaeModel()
    a = syn.make_template(model, 7, "syn:S0000042_2")
    b = syn.make_templates(model, 7, ["syn:S0000041_1", "syn:S0000042_2"])[1]
    assert np.array_equal(a.minutiae, b.minutiae)
    assert not np.array_equal(a.minutiae, syn.make_template(model, 8, "syn:S0000042_2").minutiae)
    stats = syn.template_statistics(syn.make_templates(model, 0, [syn.template_id(s, 1) for s in range(1, 151)]))
    # calibration targets (FVC2002 B, ISO templates): 32 +- 10 minutiae, nearest 20 px, coherence 0.71
    assert 26 <= stats["count_mean"] <= 38
    assert 15 <= stats["nearest_px_p5_50_95"][1] <= 25
    assert 0.6 <= stats["coherence"] <= 0.8
    assert syn.parse_id("syn:S0000042_2") == (42, 2) and syn.parse_id("101_1") is None
    with pytest.raises(ValueError):
        syn.make_template(model, 0, "101_1")


def test_synthetic_mates_outscore_non_mates():
    mcc = pytest.importorskip("extractors.mcc").MccMatcher()
    model = syn.MinutiaeModel()
    g = syn.make_templates(model, 0, [syn.template_id(s, 1) for s in range(1, 13)])
    p = syn.make_templates(model, 0, [syn.template_id(s, 2) for s in range(1, 13)])
    s = np.array([mcc.compare_many(a, g) for a in p])
    assert np.median(np.diag(s)) > s[~np.eye(12, dtype=bool)].max()


# =================================================================== stores
def test_shard_bounds_keep_subjects_whole():
    si = np.array([0, 0, 0, 1, 2, 2, 3, 3, 3, 3, 3, 4])
    b = shard_bounds(si, 4)
    assert b[0][0] == 0 and b[-1][1] == si.size
    assert all(lo < hi for lo, hi in b) and all(b[k][1] == b[k + 1][0] for k in range(len(b) - 1))
    for lo, hi in b:  # no subject is split
        assert hi == si.size or si[hi - 1] != si[hi]
    assert shard_bounds(np.arange(10), 3) == [(0, 3), (3, 6), (6, 9), (9, 10)]


def test_shard_round_trip_and_torn_file(tmp_path):
    model = syn.MinutiaeModel()
    ids = [syn.template_id(s, 1) for s in (1, 2, 3)]
    ts = syn.make_templates(model, 0, ids)
    store = TemplateStore(tmp_path / "s")
    store.path.mkdir()
    Shard.build(ids, ["a", "b", "c"], [0, 1, 2], [ts[0], None, ts[2]]).save(store.shard_path(0))
    back = store.load(0)
    assert back.template(1) is None and np.array_equal(back.template(2).minutiae, ts[2].minutiae)
    assert store.shard_is_valid(0, ids) and not store.shard_is_valid(0, ids[:2])
    data = store.shard_path(0).read_bytes()
    store.shard_path(0).write_bytes(data[: len(data) // 2])
    assert not store.shard_is_valid(0, ids)


def test_interrupted_store_build_resumes_shard_by_shard(tmp_path):
    from bench.identification.sources import materialize

    sources = TemplateSources(seed=0, jobs=1)
    ids = [syn.template_id(s, 1) for s in range(1, 31)]
    subjects = [f"S{s}" for s in range(1, 31)]
    args = (ids, subjects, list(range(30)), sources.locate(ids), sources, 10)
    store = TemplateStore(tmp_path / "s")
    bounds = materialize(store, *args, jobs=1)
    assert bounds == [(0, 10), (10, 20), (20, 30)]
    before = [store.load(k) for k in range(3)]
    # an interrupted build: shard 1 never written, shard 2 torn
    store.shard_path(1).unlink()
    data = store.shard_path(2).read_bytes()
    store.shard_path(2).write_bytes(data[: len(data) // 3])
    kept = store.shard_path(0).stat().st_mtime_ns
    materialize(store, *args, jobs=1)
    assert store.shard_path(0).stat().st_mtime_ns == kept  # a finished shard is not rebuilt
    for k in range(3):
        after = store.load(k)
        assert np.array_equal(after.ids, before[k].ids)
        assert np.array_equal(after.minutiae, before[k].minutiae) and np.array_equal(after.digest, before[k].digest)


# =================================================================== runs
def test_run_matches_brute_force_search(tmp_path):
    p = small_protocol()
    L = 5
    s = run_identification(p, config(tmp_path / "run", spec(), candidates=L, jobs=2, probe_batch=8, shard_size=15),
                           LocalBackend(jobs=2))
    check_against(tmp_path / "run", p, brute_force(p, matcher(), 0, L), L)
    assert s.units_computed == 2 * 6 and s.units_reused == 0  # 15 probes / 8; 80 templates, 2 per subject, shards of 14
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["n_searches"] == 15 and m["n_mated"] == 6 and m["penetration_rate"] == 1.0
    hist = np.loadtxt(tmp_path / "run" / "histogram.csv", delimiter=",", skiprows=1)
    assert hist[:, 3:].sum() == 15 * 80  # every comparison is in the histogram
    assert hist[:, 3].sum() == 6 * 2  # mated comparisons: 6 mated probes x 2 gallery impressions
    assert evaluate_run(tmp_path / "run") == m
    t = s.timing
    assert t["comparisons"] == 15 * 80 and t["throughput"]["slots"] == 2
    assert 0 <= t["throughput"]["harness_cpu_share"] <= 1
    # the protocol written by the run imports back to the same protocol
    assert proto.from_csv(tmp_path / "run" / "protocol.csv").digest() == p.digest()


def test_failed_comparisons(tmp_path):
    p = small_protocol(subjects=20, probes=6, impressions=1)
    counts = [len(t) for t in syn.make_templates(syn.MinutiaeModel(), 0, p.gallery_ids)]
    # failures: compare raises for gallery templates with a minutiae count divisible by 5
    s = run_identification(p, config(tmp_path / "x", spec(fail_every=5), shard_size=50), LocalBackend(jobs=1))
    n_fail = sum(c % 5 == 0 for c in counts)
    assert s.metrics["n_failed_comparisons"] == 6 * n_fail > 0
    c = read_table(tmp_path / "x" / "candidates")
    assert np.isinf(c["score"][c["rank"] == 1]).all()  # a failed non-mate comparison is a top (+inf) candidate


def test_failed_prepare_counts_its_comparisons_as_failures(tmp_path):
    p = small_protocol(subjects=20, probes=6, impressions=1)
    s = run_identification(p, config(tmp_path / "p", spec("PreparingGridMatcher", fail_prepare_every=4),
                                     shard_size=50), LocalBackend(jobs=1))
    counts = [len(t) for t in syn.make_templates(syn.MinutiaeModel(), 0, p.gallery_ids)]
    n_fail = sum(c % 4 == 0 for c in counts)
    assert 0 < n_fail < len(counts)
    assert s.metrics["n_searches"] == 6  # the run completes with every search
    assert s.metrics["n_failed_comparisons"] == 6 * n_fail


def _kill_script(out: Path, matcher: PluginSpec) -> str:
    return textwrap.dedent(f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(HERE.parent)!r})
        from test_identification import small_protocol, config, spec
        from bench.engine.backends import LocalBackend
        from bench.identification.runner import run_identification
        if __name__ == "__main__":
            run_identification(small_protocol(), config(Path({str(out)!r}), spec(delay={matcher.params['delay']}),
                               probe_batch=100, shard_size=15), LocalBackend(jobs=1))
    """)


def _wait_for_the_group_to_end(pgid: int, seconds: float = 30) -> None:
    """Until no process of group ``pgid`` is alive (zombies have closed their files)."""
    def alive() -> bool:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
        return False

    deadline = time.monotonic() + seconds
    while Path("/proc").is_dir() and alive() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_killed_run_resumes_without_recomputing_chunks(tmp_path):
    out = tmp_path / "run"
    m = spec(delay=0.05)
    script = tmp_path / "drive.py"
    script.write_text(_kill_script(out, m))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=PROJECT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    chunks = out / "chunks"
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and len(list(chunks.glob("p*-g*.npz"))) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait_for_the_group_to_end(proc.pid)  # its processes release the run folder's lock as they exit
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in chunks.glob("p*-g*.npz")}
    assert 2 <= len(before) < 6
    p = small_protocol()
    s = run_identification(p, config(out, m, probe_batch=100, shard_size=15, jobs=2), LocalBackend(jobs=2))
    assert s.units_reused == len(before) and s.units_computed == 6 - len(before)
    for name, stamp in before.items():
        path = chunks / name
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == stamp
    check_against(out, p, brute_force(p, matcher(), 0, 5), 5)


def test_worker_death_is_recovered_and_repeated_death_stops_the_run(tmp_path):
    p = small_protocol(subjects=20, probes=6, impressions=1)
    marker = tmp_path / "died"
    s = run_identification(p, config(tmp_path / "a", spec(die_marker=str(marker)), shard_size=10),
                           LocalBackend(jobs=1))
    assert marker.exists() and s.units_computed == 2
    check_against(tmp_path / "a", p, brute_force(p, matcher(), 0, 5), 5)
    with pytest.raises(BackendError, match=r"failed 2 times .*rather than leaving it out"):
        run_identification(p, config(tmp_path / "b", spec(die_marker="always"), shard_size=50),
                           LocalBackend(jobs=1, retries=1))


def test_missing_templates_and_identical_probe_are_errors(tmp_path):
    from bench.datasets import open_dataset

    f = tmp_path / "p.csv"
    f.write_text("role,id,subject\ngallery,syn:S0000001_1,syn:S0000001\ngallery,nope_1,nope\nprobe,x_2,x\n")
    with pytest.raises(MissingTemplatesError, match="2 ids are not in any source"):
        run_identification(proto.from_csv(f), config(tmp_path / "r", spec()))
    _image_dataset(tmp_path / "img", subjects=3, impressions=2)
    shutil.copy(tmp_path / "img" / "2_1.png", tmp_path / "img" / "2_2.png")  # a probe identical to its enrolment
    ds = open_dataset("folder", root=tmp_path / "img", dpi=500)
    toy = PluginSpec("extractor", "ToyExtractor", f"{PROJECT / 'tests' / 'dummy_plugins.py'}:ToyExtractor")
    sources = TemplateSources(dataset=ds, extractor=toy, cache_dir=tmp_path / "cache", jobs=1)
    cfg = IdentificationConfig(spec(), tmp_path / "d", sources, candidates=3)
    with pytest.raises(ProtocolError, match=r"1 probe templates are identical to gallery templates \(2_2\)"):
        run_identification(proto.from_dataset(ds), cfg, LocalBackend(jobs=1))
    p = proto.from_dataset(ds, allow_probe_in_gallery=True)
    cfg.force = True
    s = run_identification(p, cfg, LocalBackend(jobs=1))
    assert s.metrics["rank_identification_rate"]["1"] == 1.0
    (tmp_path / "img" / "3_2.png").unlink()
    ds = open_dataset("folder", root=tmp_path / "img", dpi=500)
    missing = proto.IdentificationProtocol("m", ["1_1", "2_1"], ["1", "2"], ["3_2"], ["3"])
    with pytest.raises(MissingTemplatesError, match="3_2"):
        run_identification(missing, IdentificationConfig(spec(), tmp_path / "e", TemplateSources(
            dataset=ds, extractor=toy, cache_dir=tmp_path / "cache", jobs=1)))


def test_enrolment_failures_are_counted_not_dropped(tmp_path):
    from bench.datasets import open_dataset

    _image_dataset(tmp_path / "img", subjects=4, impressions=2, fte="1_2")
    shutil.copy(tmp_path / "img" / "1_2.png", tmp_path / "img" / "2_1.png")  # gallery FTE too (and identical: both fail)
    ds = open_dataset("folder", root=tmp_path / "img", dpi=500)
    toy = PluginSpec("extractor", "ToyExtractor", f"{PROJECT / 'tests' / 'dummy_plugins.py'}:ToyExtractor")
    sources = TemplateSources(dataset=ds, extractor=toy, cache_dir=tmp_path / "cache", jobs=1)
    s = run_identification(proto.from_dataset(ds), IdentificationConfig(spec(), tmp_path / "r", sources, candidates=3),
                           LocalBackend(jobs=1))
    m = s.metrics
    assert m["n_searches"] == 4 and m["n_probe_enrol_failed"] == 1 and m["n_probe_enrol_failed_mated"] == 1
    t = read_table(tmp_path / "r" / "searches")
    assert t["mate_rank"][list(t["probe"]).index("2_2")] == 0  # its enrolment failed: a miss
    assert m["rank_identification_rate"]["1"] == 0.5
    assert s.timing["gallery_enrolled"] == 3 and s.timing["gallery_templates"] == 4
    ext = (tmp_path / "r" / "extractions.csv").read_text()
    assert ext.count(",fte,") == 2


def test_changed_configuration_is_refused(tmp_path):
    from bench.store import RunDirError

    p = small_protocol(subjects=10, probes=3, impressions=1)
    run_identification(p, config(tmp_path / "r", spec(), shard_size=50), LocalBackend(jobs=1))
    with pytest.raises(RunDirError, match="search differ"):
        run_identification(p, config(tmp_path / "r", spec(), shard_size=5), LocalBackend(jobs=1))


def test_cli_identify_export_run_and_errors(tmp_path):
    from bench.cli import main

    csv_path = tmp_path / "p.csv"
    assert main(["identify", "--gallery-size", "12", "--probes", "4", "--export-protocol", str(csv_path)]) == 0
    assert main(["identify", "--protocol", str(csv_path), "-m", f"{matchers_file()}:GridMatcher", "-L", "3", "-j", "1",
                 "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "candidates.parquet").exists()
    assert main(["metrics", str(tmp_path / "run")]) == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(csv_path.read_text() + "probe,ghost_2,ghost,0\n")
    assert main(["identify", "--protocol", str(bad), "-m", f"{matchers_file()}:GridMatcher", "--out", str(tmp_path / "b")]) == 2


def test_fvc_b_set_with_nbis_and_mcc(tmp_path, shared_data):
    """Real images: FVC2002 DB1 B fingers 101-105, impression 1 enrolled, 7 searches per finger."""
    from dataclasses import replace

    from bench.datasets import open_dataset

    pytest.importorskip("extractors.mcc")
    ds = open_dataset("fvc2002-db1-b", data_root=shared_data)
    ds = replace(ds, samples=[s for s in ds.samples if int(s.subject) <= 105])
    sources = TemplateSources(dataset=ds, extractor=PluginSpec.resolve("extractor", "mindtct"),
                              cache_dir=tmp_path / "cache", jobs=2)
    cfg = IdentificationConfig(PluginSpec.resolve("matcher", "mcc"), tmp_path / "run", sources, candidates=10)
    s = run_identification(proto.from_dataset(ds), cfg, LocalBackend(jobs=2))
    m = s.metrics
    assert m["n_searches"] == 35 and m["n_mated"] == 35 and m["gallery_subjects"] == 5
    assert m["rank_identification_rate"]["1"] >= 0.8
    assert m["cmc"] == sorted(m["cmc"]) and m["cmc"][-1] == 1.0  # 5 subjects: every mate is within rank 10
    assert m["fnir_at_fpir"]["rank1"]["0.01"]["reason"].startswith("no non-mated")
    assert len(read_table(tmp_path / "run" / "mated_scores")["score"]) == 35


def test_tables_are_parquet_and_a_damaged_one_is_named(tmp_path):
    p = small_protocol(subjects=10, probes=4, impressions=1)
    run_identification(p, config(tmp_path / "r", spec(), shard_size=50), LocalBackend(jobs=1))
    for name in ("searches", "candidates", "mated_scores"):
        assert (tmp_path / "r" / f"{name}.parquet").exists() and not (tmp_path / "r" / f"{name}.csv").exists()
    (tmp_path / "r" / "candidates.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(RunDirError, match=r"candidates.parquet: not a readable Parquet table"):
        read_table(tmp_path / "r" / "candidates")


def test_bench_1n_script_measures_scale_and_efficiency(tmp_path):
    from benchmarks import bench_1n

    out = tmp_path / "b"
    argv = ["--sizes", "300", "--efficiency-size", "300", "--no-dask", "--probes", "6", "--shard-size", "100",
            "--matcher", "benchmarks.bench_1n:NullMatcher", "--jobs", "2", "--out", str(out)]
    assert bench_1n.main(argv) == 0
    result = json.loads((out / "bench_1n.json").read_text())
    rows = {r["config"]: r for r in result["runs"]}
    assert set(rows) == {"local-1w-NullMatcher", "local-2w-NullMatcher"}
    for r in rows.values():
        assert r["comparisons"] == 6 * 300 and r["units_computed"] == 3
        assert r["searches_per_s"] > 0 and 0 <= r["harness_cpu_share"] <= 1
    (e,) = result["efficiency"]
    assert e["workers"] == 2 and e["speedup"] == pytest.approx(e["one_worker_wall_s"] / e["wall_s"])
    # the tables and the plot are rebuilt from the JSON alone
    (out / "bench_1n.md").unlink()
    (out / "bench_1n.png").unlink()
    assert bench_1n.main(["--tables-only", "--out", str(out)]) == 0
    assert "local-2w-NullMatcher" in (out / "bench_1n.md").read_text() and (out / "bench_1n.png").stat().st_size > 0


def test_identification_report_curves_match_the_search_tables(tmp_path):
    import csv

    from bench.identification.report import write_identification_report

    p = small_protocol(probes=25)  # 15 non-mated searches: FPIR = 10 % is resolvable
    runs = []
    for tol in (6.0, 3.0):
        out = tmp_path / f"tol{tol:g}"
        run_identification(p, config(out, spec(tolerance=tol), candidates=5), LocalBackend(jobs=1))
        runs.append(out)
    html_path = write_identification_report(runs, tmp_path / "report")
    page = html_path.read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "GridMatcher (tolerance=3.0)" in page and "GridMatcher (tolerance=6.0)" in page
    with (tmp_path / "report" / "cmc.csv").open() as f:
        cmc = list(csv.DictReader(f))
    with (tmp_path / "report" / "det.csv").open() as f:
        det = list(csv.DictReader(f))
    for run in runs:
        m = json.loads((run / "metrics.json").read_text())
        rates = [float(r["identification_rate"]) for r in cmc if r["run"] == str(run.resolve())]
        assert rates == pytest.approx(m["cmc"]) and len(rates) == 5
        # FPIR and FNIR(T, L) at every threshold, recounted from searches.* the obvious way
        s = read_table(run / "searches")
        mated = np.asarray(s["mated"], dtype=bool)
        top, rank = np.asarray(s["top_score"], dtype=float), np.asarray(s["mate_rank"])
        mate = np.where(np.isnan(s["mate_score"].astype(float)), -np.inf, s["mate_score"].astype(float))
        rows = [r for r in det if r["run"] == str(run.resolve())]
        assert {int(r["L"]) for r in rows} == {1, 5}
        for r in rows:
            t, L = float(r["threshold"]), int(r["L"])
            assert float(r["fpir"]) == pytest.approx(np.mean(top[~mated] >= t))
            hit = (rank[mated] >= 1) & (rank[mated] <= L) & (mate[mated] >= t)
            assert float(r["fnir"]) == pytest.approx(1 - hit.mean())
        # FNIR at FPIR = 10 % from the curve equals metrics.json
        op = m["fnir_at_fpir"]["rank1"]["0.1"]
        ok = [float(r["fnir"]) for r in rows if int(r["L"]) == 1 and float(r["fpir"]) <= 0.1]
        assert op["fnir"] is not None and op["fnir"] == pytest.approx(min(ok))
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert [r["metrics"] == json.loads((Path(r["run"]) / "metrics.json").read_text()) for r in summary["runs"]] == [True, True]


def test_report_command_refuses_mixed_and_unfinished_runs(tmp_path, caplog):
    from bench.cli import main

    p = small_protocol(subjects=10, probes=4)
    run = tmp_path / "id"
    run_identification(p, config(run, spec()), LocalBackend(jobs=1))
    assert main(["report", str(run), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.html").is_file() and (tmp_path / "r" / "cmc.csv").is_file()
    other = tmp_path / "verification"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"schema": "fingerbench-run"}))
    assert main(["report", str(run), str(other), "--out", str(tmp_path / "r2")]) == 2
    assert "cannot share a report" in caplog.text
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["status"] = "running"
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert main(["report", str(run), "--out", str(tmp_path / "r3")]) == 2
    assert "has not finished" in caplog.text


def test_cli_identify_names_its_folder_extractor_plus_matcher(tmp_path, monkeypatch):
    """The default run folder is runs/identify/PROTOCOL/EXTRACTOR+MATCHER, as help and docs say."""
    from bench.cli import main

    _image_dataset(tmp_path / "img", subjects=3, impressions=2)
    monkeypatch.chdir(tmp_path)
    assert main(["identify", "-d", "folder", "--dataset-path", str(tmp_path / "img"), "--dataset-param", "dpi=500",
                 "-e", f"{PROJECT / 'tests' / 'dummy_plugins.py'}:ToyExtractor",
                 "-m", f"{matchers_file()}:GridMatcher", "-L", "2", "-j", "1"]) == 0
    runs = [p.name for p in (tmp_path / "runs" / "identify").glob("*/*")]
    assert runs == ["ToyExtractor+GridMatcher"]


def test_the_summary_is_written_once_and_read_by_the_report(tmp_path, caplog):
    """metrics.json is the one summary of a 1:N run: its speed is derived from the records,
    the report uses it as stored, and recomputes it (with a warning) when it is stale or edited."""
    import pandas as pd

    from bench.cli import main
    from bench.identification.report import load_id_run
    from bench.metrics.summary import load_identification_summary

    p = small_protocol(subjects=10, probes=4)
    run = tmp_path / "run"
    run_identification(p, config(run, spec(), shard_size=10, probe_batch=2), LocalBackend(jobs=1))
    stored = json.loads((run / "metrics.json").read_text())
    searches = pd.read_parquet(run / "searches.parquet")
    units = pd.read_csv(run / "units.csv")
    wall = searches.loc[searches["enrolled"], "search_seconds"].to_numpy()
    sp = stored["speed"]
    assert sp["median_search_seconds"] == pytest.approx(float(np.median(wall)))
    assert sp["comparisons_per_second_per_core"] == pytest.approx(units["comparisons"].sum()
                                                                  / units["matcher_seconds"].sum())
    assert units["comparisons"].sum() == 4 * 20
    assert load_id_run(run).metrics == stored and load_identification_summary(run) == (stored, [])
    edited = dict(stored, n_mated=stored["n_mated"] + 1)
    (run / "metrics.json").write_text(json.dumps(edited))
    summary, warnings = load_identification_summary(run)
    assert summary == stored and "does not match its digest" in warnings[0]
    with caplog.at_level(logging.WARNING):
        assert load_id_run(run).metrics == stored
    assert "does not match its digest" in caplog.text
    # `fingerbench metrics` recomputes the summary of either kind of run
    assert main(["metrics", str(run)]) == 0
    assert json.loads((run / "metrics.json").read_text()) == stored
    units.iloc[:1].to_csv(run / "units.csv", index=False)  # units dropped: the stored speed is stale
    assert "the records changed" in load_identification_summary(run)[1][0]
