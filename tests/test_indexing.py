"""1:N pre-selection: the index plugin kind, cascades run end to end, bad indexes, and the
hit-rate / penetration metrics, checked against brute force."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bench.engine.backends import LocalBackend
from bench.protocols import identification as proto
from bench.synthetic import model as syn
from bench.identification.cascade import IndexSettings, check_candidates
from bench.identification.results import read_table
from bench.identification.runner import IdentificationConfig, run_identification
from bench.identification.sources import TemplateSources
from bench.metrics import identification as im
from bench.plugins import Index
from bench.plugins.loading import PluginSpec
from bench.template import Template, make_minutiae
from conftest import source_file

#: Test indexes, in a file of their own so that worker processes import little to load them.
INDEXES_SOURCE = textwrap.dedent('''
    import time

    import numpy as np


    class CountIndex:
        """Ranks the gallery by the difference of minutiae counts with the probe; ``fault``
        makes it misbehave in one way."""

        version = "1"
        accepted_formats = ("minutiae",)
        work_unit = "templates scored"

        def __init__(self, fault="", log=""):
            self.fault = fault
            self.log = log

        def _note(self, what):
            if self.log:
                with open(self.log, "a") as f:
                    f.write(what + "\\n")

        def warm_up(self):
            self._note("warm_up")

        def build(self, gallery):
            self._note("build")
            if self.fault == "build":
                raise RuntimeError("cannot build")
            self.counts = np.array([len(t) for t in gallery])

        def search(self, probe, budget):
            n = len(self.counts)
            order = np.lexsort((np.arange(n), np.abs(self.counts - len(probe))))
            f = self.fault
            if f == "raise":
                raise ValueError("broken index")
            if f == "hang":
                time.sleep(30)
            if f == "nothing":
                return np.empty(0, dtype=np.int64), 0
            if f == "outside":
                return np.concatenate([[n, -1, n + 5], order[:budget]]), n
            if f == "duplicates":
                return np.concatenate([order[:1], order[:budget]]), n
            if f == "over":
                return order, n
            if f == "strings":
                return [str(i) for i in order[:budget]], n
            return order[:budget], n
''')


def indexes_file() -> Path:
    return source_file("id_indexes.py", INDEXES_SOURCE)


def count_index(**params) -> PluginSpec:
    return PluginSpec("index", "CountIndex", f"{indexes_file()}:CountIndex", params)


MCC = PluginSpec.resolve("matcher", "extractors.mcc:MccMatcher", {"kernel": "numpy"})


def small_protocol(subjects: int = 30, probes: int = 12):
    return proto.synthetic(subjects, probes, mated_fraction=0.5, gallery_impressions=1, seed=5)


def run(tmp: Path, name: str, index: IndexSettings | None, p=None, matcher: PluginSpec = MCC, **kw):
    kw.setdefault("shard_size", 10)
    cfg = IdentificationConfig(matcher, tmp / name, TemplateSources(seed=0, jobs=1), candidates=5, probe_batch=6,
                               jobs=1, index=index, **kw)
    return run_identification(p or small_protocol(), cfg, LocalBackend(jobs=1))


def test_an_index_is_warmed_up_once_per_worker_before_its_first_build(tmp_path):
    from bench.identification.cascade import ShardIndexes

    log = tmp_path / "calls.txt"
    shards = ShardIndexes(IndexSettings(count_index(log=str(log)), penetration=0.5))
    gallery = syn.make_templates(syn.MinutiaeModel(), 0, [syn.template_id(s, 1) for s in range(1, 5)])
    for g in (0, 1, 0, 2):
        index, error, cost = shards.get(g, gallery)
        assert index is not None and not error
    # shard 0 is still kept when it comes back; the warm-up is not part of any build's cost
    assert log.read_text().split() == ["warm_up", "build", "build", "build"]


# ----------------------------------------------------------------- the checks of an answer
def test_check_candidates_drops_and_counts_every_fault():
    c = check_candidates((np.array([3, 3, 9, -1, 10, 1, 2, 4]), 7), n=10, budget=3)
    assert c.positions.tolist() == [3, 9, 1]  # order kept, first of a repeat kept, cut at the budget
    assert (c.invalid, c.duplicates, c.over_budget, c.work, c.error) == (2, 1, 2, 7, "")
    assert check_candidates((np.array([], dtype=float), 0), 10, 3).positions.size == 0
    for bad in (np.array([1, 2]), (np.array([0.5, 1.0]), 1), (np.array([[1, 2]]), 1), (np.array([1]), "many")):
        c = check_candidates(bad, 10, 3)
        assert c.error and c.positions.size == 0


def test_budget_is_a_share_of_each_shard():
    s = IndexSettings(count_index(), penetration=0.05)
    assert [s.budget(n) for n in (0, 1, 10, 20, 21, 1000)] == [0, 1, 1, 1, 2, 50]
    with pytest.raises(ValueError):
        IndexSettings(count_index(), penetration=0)


def test_built_in_indexes_satisfy_the_protocol():
    from bench.identification.indexes import ExhaustiveIndex
    from extractors.mcc.index import MccLshIndex, MccVectorIndex

    for cls in (ExhaustiveIndex, MccLshIndex, MccVectorIndex):
        assert isinstance(cls(), Index)


# ----------------------------------------------------------------- metrics against brute force
def test_hit_rate_curve_and_oracle_match_brute_force():
    rng = np.random.default_rng(1)
    needed = np.where(rng.random(500) < 0.1, np.inf, rng.random(500) ** 3)
    needed[:5] = np.nan
    ps = np.array([0.0, 0.001, 0.01, 0.05, 0.2, 1.0])
    brute = [sum(1 for x in needed if not math.isnan(x) and x <= p) / len(needed) for p in ps]
    assert im.hit_rate_curve(needed, ps).tolist() == pytest.approx(brute)
    ranks = rng.integers(0, 20, 300)
    oracle = im.oracle_needed_penetration(ranks, 1000)
    for p in (0.001, 0.005, 0.019):
        assert im.hit_rate_curve(oracle, [p])[0] == pytest.approx(np.mean((ranks > 0) & (ranks <= p * 1000)))


# ----------------------------------------------------------------- cascades end to end
def test_exhaustive_cascade_equals_the_plain_run(tmp_path):
    plain = run(tmp_path, "plain", None)
    exh = run(tmp_path, "exh", IndexSettings(PluginSpec.resolve("index", "bench.identification.indexes:ExhaustiveIndex")))
    a, b = read_table(tmp_path / "plain" / "searches"), read_table(tmp_path / "exh" / "searches")
    for col in ("mate_rank", "top_score", "n_compared", "mate_score"):
        assert np.array_equal(a[col], b[col], equal_nan=True), col
    assert plain.metrics["rank_identification_rate"] == exh.metrics["rank_identification_rate"]
    info = json.loads((tmp_path / "exh" / "index.json").read_text())
    assert info["hit_rate"] == 1.0 and info["penetration_rate"] == 1.0
    assert info["faults"]["searches_with_a_fault"] == 0
    assert not (tmp_path / "plain" / "index.json").exists()


LIST_MCC_SOURCE = textwrap.dedent('''
    from extractors.mcc import MccMatcher


    class ListMcc(MccMatcher):
        """MCC without the compare_subset hook: a cascade passes it its candidates as a list."""

        compare_subset = None
''')


def test_a_cascade_scores_the_same_through_compare_subset(tmp_path):
    # the compiled MCC keeps the shard stacked and compares the candidates in place; the
    # tables must be those of comparing the candidates as a list of templates
    p = small_protocol(subjects=40, probes=12)
    plain = PluginSpec("matcher", "ListMcc", f"{source_file('list_mcc.py', LIST_MCC_SOURCE)}:ListMcc",
                       {"kernel": "numba"})
    fast = PluginSpec.resolve("matcher", "extractors.mcc:MccMatcher", {"kernel": "numba"})
    run(tmp_path, "list", IndexSettings(count_index(), penetration=0.3), p, matcher=plain)
    run(tmp_path, "subset", IndexSettings(count_index(), penetration=0.3), p, matcher=fast)
    a, b = read_table(tmp_path / "list" / "searches"), read_table(tmp_path / "subset" / "searches")
    for column in ("mate_rank", "mate_score", "top_subject", "top_score", "n_compared", "index_candidates"):
        assert np.array_equal(a[column], b[column], equal_nan=a[column].dtype.kind == "f"), column
    sa, sb = read_table(tmp_path / "list" / "mated_scores"), read_table(tmp_path / "subset" / "mated_scores")
    assert np.array_equal(sa["score"], sb["score"])
    assert (b["n_compared"] > 1).any()
    hooks = [json.loads((tmp_path / r / "manifest.json").read_text())["matcher"]["hooks"] for r in ("list", "subset")]
    assert not hooks[0]["compare_subset"] and hooks[1]["compare_subset"]


def test_cascade_records_the_index_order_and_resumes(tmp_path):
    p = small_protocol()
    s = run(tmp_path, "c", IndexSettings(count_index(), penetration=0.3), p)
    t = read_table(tmp_path / "c" / "searches")
    assert s.metrics["penetration_rate"] == pytest.approx(0.3)
    # brute force: the mate's position in each shard's list, by minutiae counts
    gallery = syn.make_templates(syn.MinutiaeModel(), 0, p.gallery_ids)
    gsub = np.array(p.gallery_subjects)
    for k, pid in enumerate(t["probe"]):
        if not t["mated"][k]:
            assert np.isnan(t["mate_index_fraction"][k])
            continue
        probe = syn.make_templates(syn.MinutiaeModel(), 0, [pid])[0]
        shard = np.flatnonzero(gsub == t["subject"][k])[0] // 10  # one template per subject, in order
        idx = np.arange(shard * 10, shard * 10 + 10)
        counts = np.array([len(gallery[i]) for i in idx])
        order = np.lexsort((np.arange(10), np.abs(counts - len(probe))))
        pos = int(np.flatnonzero(gsub[idx][order] == t["subject"][k])[0]) + 1
        expect = pos / 10 if pos <= 3 else np.inf
        assert t["mate_index_fraction"][k] == expect
        if expect == np.inf:
            assert t["mate_rank"][k] == 0  # a mate the index left out is a miss
    info = json.loads((tmp_path / "c" / "index.json").read_text())
    mated = t["mated"]
    assert info["hit_rate"] == pytest.approx(np.mean(np.isfinite(t["mate_index_fraction"][mated])))
    again = run(tmp_path, "c", IndexSettings(count_index(), penetration=0.3), p)
    assert again.units_computed == 0 and again.units_reused > 0
    assert np.array_equal(read_table(tmp_path / "c" / "searches")["mate_rank"], t["mate_rank"])


@pytest.mark.parametrize("fault, counter", [("raise", "failed"), ("build", "failed"), ("hang", "failed"),
                                            ("strings", "failed"), ("nothing", None), ("outside", "invalid"),
                                            ("duplicates", "duplicates"), ("over", "over_budget")])
def test_a_bad_index_is_recorded_and_its_misses_counted(tmp_path, fault, counter):
    p = small_protocol(subjects=20, probes=6)
    s = run(tmp_path, fault, IndexSettings(count_index(fault=fault), penetration=0.3, timeout=0.5), p)
    t = read_table(tmp_path / fault / "searches")
    info = json.loads((tmp_path / fault / "index.json").read_text())
    assert s.metrics["n_searches"] == 6  # never a smaller benchmark
    if counter == "failed" or fault == "nothing":
        assert (t["index_candidates"] == 0).all() and (t["n_compared"] == 0).all()
        assert s.metrics["rank_identification_rate"]["1"] == 0 and info["hit_rate"] == 0
    if counter is not None:
        assert info["faults"][counter] > 0 and info["faults"]["searches_with_a_fault"] == 6
    if counter == "failed":
        assert info["errors"] and info["faults"]["failed"] == 6 * 2  # every search, in both shards
    if counter in ("invalid", "duplicates", "over_budget"):
        assert (t["index_candidates"] <= 2 * 3).all()  # never more than the budget is compared
        assert (t["n_compared"] == t["index_candidates"]).all()


def test_mcc_lsh_cascade_finds_mates(tmp_path):
    # 20 mated searches: exhaustive MCC finds 19 at rank 1 on this gallery (model version 2)
    p = proto.synthetic(60, 40, mated_fraction=0.5, gallery_impressions=1, seed=2)
    lsh = PluginSpec.resolve("index", "extractors.mcc.index:MccLshIndex")
    s = run(tmp_path, "lsh", IndexSettings(lsh, penetration=0.3), p, shard_size=60)
    info = json.loads((tmp_path / "lsh" / "index.json").read_text())
    assert info["hit_rate"] >= 0.8 and s.metrics["penetration_rate"] == pytest.approx(18 / 60)
    assert info["work_per_search"] > 0 and info["memory_bytes_per_template"] > 0


@pytest.mark.parametrize("params", [{}, {"power": 1.0, "tables": 64}, {"power": 2.5, "bits": 12, "max_bucket": 0.0005}])
def test_mcc_lsh_compiled_scores_equal_the_numpy_definition(params):
    from extractors.mcc import compiled
    from extractors.mcc.index import MccLshIndex, probe_bits

    if not compiled.AVAILABLE:
        pytest.skip(compiled.UNAVAILABLE_REASON)
    model = syn.MinutiaeModel()
    gallery = syn.make_templates(model, 3, [syn.template_id(s, 1) for s in range(1, 301)])
    probes = syn.make_templates(model, 3, [syn.template_id(s, 2) for s in (1, 150, 300, 400)])
    idx = MccLshIndex(**params)
    idx.build(gallery)
    skipped = 0
    for probe in probes:
        cells = probe_bits(probe, idx._params())
        keys = idx._keys(cells)
        assert np.array_equal(keys, idx.reference_keys(cells))
        score, visited = idx.scores(probe)
        ref_score, ref_visited = idx.reference_scores(keys)
        assert visited == ref_visited > 0
        assert np.array_equal(score, ref_score)  # exact: integer counts and the same powers
        lo = np.searchsorted(idx._sorted_keys, keys[keys != 0])
        skipped += int((lo == np.searchsorted(idx._sorted_keys, keys[keys != 0], side="right")).sum())
    assert skipped > 0  # some values are in no kept bucket (absent, or a stop-word bucket dropped)
    # a probe without a valid cylinder, and an empty gallery, score nothing
    empty = Template(make_minutiae([], [], []), 300, 300, 500)
    assert idx.search(empty, 10)[0].size == 0
    none = MccLshIndex(**params)
    none.build([])
    assert none.search(probes[0], 10)[0].size == 0


def test_mcc_lsh_mate_of_a_gallery_template_comes_first():
    from extractors.mcc.index import MccLshIndex

    model = syn.MinutiaeModel()
    gallery = syn.make_templates(model, 4, [syn.template_id(s, 1) for s in range(1, 201)])
    idx = MccLshIndex()
    idx.build(gallery)
    for i in (0, 99, 199):
        pos, work = idx.search(gallery[i], 10)
        assert pos[0] == i and pos.size == 10 and work > 0


def test_mcc_vector_index_ranks_the_mate_first_for_its_own_template():
    pytest.importorskip("usearch")
    from extractors.mcc.index import MccVectorIndex

    gallery = syn.make_templates(syn.MinutiaeModel(), 0, [syn.template_id(s, 1) for s in range(50)])
    idx = MccVectorIndex()
    idx.build(gallery)
    for i in (0, 17, 49):
        pos, work = idx.search(gallery[i], 5)
        assert pos[0] == i and len(pos) == 5 and work > 0


def test_report_draws_the_trade_off_and_the_hit_rates(tmp_path):
    from bench.identification.report import write_identification_report

    p = small_protocol(subjects=20, probes=6)
    run(tmp_path, "plain", None, p)
    run(tmp_path, "c30", IndexSettings(count_index(), penetration=0.3), p)
    run(tmp_path, "c50", IndexSettings(count_index(), penetration=0.5), p)
    write_identification_report([tmp_path / "plain", tmp_path / "c30", tmp_path / "c50"], tmp_path / "report")
    figures = sorted(f.name for f in (tmp_path / "report" / "figures").iterdir())
    assert "g1-pareto.png" in figures and "g1-hit-rate.png" in figures
    html = (tmp_path / "report" / "report.html").read_text()
    assert 'alt="accuracy against search time' in html and 'alt="hit rate against penetration' in html
    md = (tmp_path / "report" / "report.md").read_text()
    assert "figures/g1-pareto.png" in md and "figures/g1-hit-rate.png" in md
    rows = (tmp_path / "report" / "hit_rate.csv").read_text().splitlines()
    assert rows[0] == "run,label,curve,penetration,hit_rate"
    index_rows = [r.split(",") for r in rows[1:] if ",index," in r]
    t = read_table(tmp_path / "c50" / "searches")
    needed = t["mate_index_fraction"][t["mated"]]
    for r in index_rows:
        if r[0].endswith("c50"):
            assert float(r[4]) == pytest.approx(np.mean(needed <= float(r[3]) + 1e-12))
    assert any(",oracle," in r for r in rows)


def test_identify_command_runs_a_cascade(tmp_path, capsys):
    from bench.cli import main

    base = ["identify", "--gallery-size", "20", "--probes", "6", "-m", "extractors.mcc:MccMatcher",
            "--matcher-param", "kernel=numpy", "--shard-size", "10", "--jobs", "1"]
    assert main(base + ["--penetration", "0.5", "-o", str(tmp_path / "x")]) == 2  # a budget needs an index
    out = tmp_path / "c"
    assert main(base + ["--index", f"{indexes_file()}:CountIndex", "--penetration", "0.5", "-o", str(out)]) == 0
    assert "penetration 50.0%" in capsys.readouterr().out
    assert json.loads((out / "index.json").read_text())["penetration_budget"] == 0.5
