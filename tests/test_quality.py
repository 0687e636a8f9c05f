"""Image quality: the error-versus-reject characteristic and the per-band DET curves against
brute-force computations, the quality job of a run (failures recorded, resumable), the
checks on reading quality.csv, the report, and the NFIQ 2 plugin on real images."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bench import protocols
from bench.cli import main
from bench.metrics import quality as Q
from bench.metrics.summary import evaluate_run
from bench.plugins import QualityNotApplicable, registry
from bench.plugins.loading import PluginSpec
from bench.runner import RunConfig, run_benchmark
from bench.store import RunDirError
from conftest import dummy, folder_dataset
from quality_plugins import (
    CRASH_LEVEL, ERROR_CODE_LEVEL, HANG_LEVEL, NAN_LEVEL, NOT_APPLICABLE_LEVEL, RAISE_LEVEL,
)

QUALITY_PLUGINS = Path(__file__).resolve().parent / "quality_plugins.py"


# ----------------------------------------------------------------- brute-force references
def brute_erc(genuine: list[float], quality: list[float], t: float) -> list[tuple[float, float, float]]:
    """(fraction set aside, FNMR of the rest, lowest quality kept) for every distinct quality."""
    n = len(genuine)
    out = []
    for level in sorted(set(quality)):
        kept = [s for s, q in zip(genuine, quality) if q >= level]
        out.append(((n - len(kept)) / n, sum(1 for s in kept if s < t) / len(kept), level))
    return out


def brute_rates(gen: list[float], imp: list[float], t: float) -> tuple[float, float]:
    """(FMR, FNMR) at t: share of impostor scores >= t, of genuine scores < t."""
    return sum(1 for s in imp if s >= t) / len(imp), sum(1 for s in gen if s < t) / len(gen)


def brute_eer(gen: list[float], imp: list[float]) -> float:
    """The FVC EER (Maio et al. 2002), from the definition, over every distinct score and +inf."""
    ts = sorted({s for s in gen + imp if s != -math.inf}) + [math.inf]
    rates = [(t, *brute_rates(gen, imp, t)) for t in ts]
    t1 = [r for r in rates if r[2] <= r[1]][-1]   # largest t with FNMR <= FMR
    t2 = [r for r in rates if r[2] >= r[1]][0]    # smallest t with FNMR >= FMR
    if t1[2] + t1[1] <= t2[1] + t2[2]:
        low, high = t1[2], t1[1]
    else:
        low, high = t2[1], t2[2]
    return (low + high) / 2


def in_band(q: float, lo: float, hi: float, last: bool) -> bool:
    return not math.isnan(q) and (lo <= q < hi or (last and q == hi))


# --------------------------------------------------------------------------- the metrics
def test_erc_equals_brute_force_with_ties_failures_and_missing_quality():
    rng = np.random.default_rng(3)
    n = 300
    genuine = rng.normal(50, 15, n).round(1)
    quality = rng.integers(0, 12, n).astype(float)  # many ties
    genuine[quality < 3] -= 20                      # low quality, low scores
    genuine[:7] = -np.inf                           # failed comparisons / ghost templates
    quality[10:15] = np.nan                         # images without a quality
    t = Q.erc_threshold(genuine, 0.15)
    assert t == np.sort(genuine)[round(0.15 * n)]
    erc = Q.error_versus_reject(genuine, quality, t)
    known = ~np.isnan(quality)
    expected = brute_erc(genuine[known].tolist(), quality[known].tolist(), t)
    assert erc.n_genuine == n - 5 and erc.n_without_quality == 5
    assert len(erc.reject_fraction) == len(expected)
    for (x, f, level), x2, f2, level2 in zip(expected, erc.reject_fraction, erc.fnmr, erc.quality_kept):
        assert x2 == pytest.approx(x, abs=1e-12) and f2 == pytest.approx(f, abs=1e-12) and level2 == level
    assert erc.reject_fraction[0] == 0.0
    # quality predicts the errors here, so setting aside the lowest quality lowers the FNMR
    assert erc.at(0.2)[1] < erc.fnmr_start
    # tabulated points: the most set aside without exceeding the fraction asked for
    for target in Q.REJECT_FRACTIONS:
        x, f = erc.at(target)
        best = max((p for p in expected if p[0] <= target + 1e-12), key=lambda p: p[0])
        assert (x, f) == pytest.approx(best[:2])


def test_ideal_erc():
    x = np.array([0.0, 0.05, 0.1, 0.5, 1.0])
    assert Q.ideal_fnmr(0.1, x) == pytest.approx([0.1, 0.05 / 0.95, 0.0, 0.0, 0.0])
    erc = Q.error_versus_reject([1.0, 2.0, 3.0, 4.0], [1, 2, 3, 4], 2.5)  # errors exactly the lowest quality
    assert erc.fnmr.tolist() == pytest.approx([0.5, 1 / 3, 0.0, 0.0])
    assert erc.fnmr == pytest.approx(Q.ideal_fnmr(0.5, erc.reject_fraction))


def test_per_band_det_and_eer_equal_brute_force():
    rng = np.random.default_rng(5)
    n = 400
    genuine = rng.random(n) < 0.3
    pq = np.where(rng.random(n) < 0.05, np.nan, rng.integers(0, 101, n).astype(float))
    pq[:3] = [100.0, 20.0, 0.0]  # the closed upper edge, an inner edge, the lower edge
    scores = np.where(genuine, rng.normal(60, 10, n) - (100 - np.nan_to_num(pq)) / 5, rng.normal(40, 10, n)).round()
    scores[5] = -np.inf  # a ghost template
    edges = Q.default_band_edges((0, 100))
    assert edges == [0, 20, 40, 60, 80, 100]
    bands = Q.band_metrics(scores, genuine, pq, edges)
    for i, band in enumerate(bands):
        lo, hi = edges[i], edges[i + 1]
        sel = [in_band(q, lo, hi, i == len(edges) - 2) for q in pq]
        gen = [s for s, g, k in zip(scores, genuine, sel) if k and g]
        imp = [s for s, g, k in zip(scores, genuine, sel) if k and not g]
        assert (band["n_genuine"], band["n_impostor"]) == (len(gen), len(imp))
        assert gen and imp
        ts = sorted({s for s in gen + imp if s != -math.inf}) + [math.inf]
        fmr, fnmr = zip(*(brute_rates(gen, imp, t) for t in ts))
        assert band["det"]["fmr"] == pytest.approx(list(fmr), abs=1e-12)
        assert band["det"]["fnmr"] == pytest.approx(list(fnmr), abs=1e-12)
        assert band["eer"] == pytest.approx(brute_eer(gen, imp), abs=1e-12)
    assert sum(b["n_genuine"] + b["n_impostor"] for b in bands) == int((~np.isnan(pq)).sum())


def test_pair_quality_and_band_index():
    assert Q.pair_quality([10, np.nan, 50], [20, 5, 40]).tolist()[0] == 10
    assert np.isnan(Q.pair_quality([np.nan], [5])[0])
    assert Q.band_index([0, 19.9, 20, 100, 101, -1, np.nan], [0, 20, 100]).tolist() == [0, 0, 1, 1, -1, -1, -1]
    with pytest.raises(ValueError):
        Q.band_index([1], [0, 0])
    with pytest.raises(ValueError, match="no genuine comparison has a quality"):
        Q.error_versus_reject([1.0], [np.nan], 0.5)


# ----------------------------------------------------------------------- a run with quality
def toy_images(root: Path) -> Path:
    """4 fingers x 4 impressions of blurred noise (impressions of a finger share a pattern,
    with more noise for later ones), plus uniform images that make ToyQuality misbehave."""
    rng = np.random.default_rng(0)
    root.mkdir()
    for f in range(1, 5):
        base = cv2.GaussianBlur(rng.integers(0, 256, (96, 96)).astype(np.float64), (0, 0), 4)
        for i in range(1, 5):
            img = base + rng.normal(0, 25 * i, base.shape)
            img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
            cv2.imwrite(str(root / f"{f}_{i}.png"), img)
    for i, level in enumerate((CRASH_LEVEL, HANG_LEVEL, NAN_LEVEL, ERROR_CODE_LEVEL, RAISE_LEVEL,
                               NOT_APPLICABLE_LEVEL), start=1):
        cv2.imwrite(str(root / f"9_{i}.png"), np.full((96, 96), level, np.uint8))
    return root


def config(tmp_path: Path, quality: str | None = "ToyQuality", **kw) -> RunConfig:
    params = kw.pop("quality_params", {})
    return RunConfig(
        extractor=PluginSpec("extractor", "ToyExtractor", dummy("ToyExtractor"), {"cell": 8}),
        matcher=PluginSpec("matcher", "ToyMatcher", dummy("ToyMatcher"), {}),
        out=tmp_path / "run", cache_dir=kw.pop("cache_dir", tmp_path / "cache"), jobs=2, progress=False,
        quality=None if quality is None else PluginSpec("quality", quality, f"{QUALITY_PLUGINS}:{quality}", params),
        quality_timeout=kw.pop("quality_timeout", 3.0), **kw)


def read_table(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> tuple:
    tmp = tmp_path_factory.mktemp("quality-run")
    ds = folder_dataset(toy_images(tmp / "images"))
    pairs = protocols.all_pairs(ds)
    summary = run_benchmark(ds, pairs, config(tmp))
    return tmp, ds, pairs, summary


def test_failures_of_the_quality_plugin_are_recorded_not_fatal(toy_run):
    tmp, ds, pairs, summary = toy_run
    rows = {r["sample"]: r for r in read_table(summary.run_dir / "quality.csv")}
    assert len(rows) == len(ds.samples) == 22
    expect = {"9_1": ("crash", "SIGSEGV"), "9_2": ("timeout", "9_2.png"), "9_3": ("out_of_range", "nan"),
              "9_4": ("out_of_range", "255"), "9_5": ("error", "toy quality failure"),
              "9_6": ("not_applicable", "not defined for this image")}
    for sid, (status, text) in expect.items():
        assert rows[sid]["status"] == status and text in rows[sid]["error"] and rows[sid]["quality"] == ""
        assert f"{sid}.png" in rows[sid]["error"]
    ok = [r for r in rows.values() if r["status"] == "ok"]
    assert len(ok) == 16 and all(0 <= float(r["quality"]) <= 100 for r in ok)
    q = summary.metrics["quality"]
    assert q["images"]["n_assessed"] == 16
    assert q["images"]["failures_by_status"] == {"out_of_range": 2, "crash": 1, "timeout": 1, "error": 1,
                                                 "not_applicable": 1}
    # the scores do not depend on quality: every pair was compared
    scores = read_table(summary.run_dir / "scores.csv")
    assert len(scores) == len(pairs.pairs) and all(r["status"] == "ok" for r in scores)
    manifest = json.loads((summary.run_dir / "manifest.json").read_text())
    assert manifest["quality"]["name"] == "ToyQuality" and manifest["quality"]["version"] == "1"
    assert manifest["quality"]["params"] == {"scale": 1.0} and manifest["quality"]["score_range"] == [0.0, 100.0]
    assert manifest["quality"]["code_sha256"]


def test_stored_erc_and_bands_equal_an_independent_computation_from_the_tables(toy_run):
    tmp, ds, pairs, summary = toy_run
    quality = {r["sample"]: float(r["quality"]) if r["status"] == "ok" else math.nan
               for r in read_table(summary.run_dir / "quality.csv")}
    scores = read_table(summary.run_dir / "scores.csv")
    pq = [min(quality[r["probe"]], quality[r["reference"]]) if not (
        math.isnan(quality[r["probe"]]) or math.isnan(quality[r["reference"]])) else math.nan for r in scores]
    gen = [(float(r["score"]), q) for r, q in zip(scores, pq) if r["genuine"] == "1"]
    erc = summary.metrics["quality"]["erc"]
    t = sorted(s for s, _ in gen)[round(0.1 * len(gen))]
    assert erc["threshold"] == t
    imp = [float(r["score"]) for r in scores if r["genuine"] == "0"]
    assert erc["fmr_at_threshold"] == pytest.approx(sum(1 for s in imp if s >= t) / len(imp), abs=1e-12)
    known = [(s, q) for s, q in gen if not math.isnan(q)]
    expected = brute_erc([s for s, _ in known], [q for _, q in known], t)
    assert erc["n_without_quality"] == len(gen) - len(known) > 0
    assert erc["curve"]["reject_fraction"] == pytest.approx([p[0] for p in expected], abs=1e-12)
    assert erc["curve"]["fnmr"] == pytest.approx([p[1] for p in expected], abs=1e-12)
    assert summary.metrics["quality"]["n_comparisons_without_quality"] == sum(math.isnan(q) for q in pq)
    for i, band in enumerate(summary.metrics["quality"]["bands"]):
        lo, hi = band["low"], band["high"]
        sel = [(float(r["score"]), r["genuine"] == "1") for r, q in zip(scores, pq) if in_band(q, lo, hi, i == 4)]
        g = [s for s, is_g in sel if is_g]
        im = [s for s, is_g in sel if not is_g]
        assert (band["n_genuine"], band["n_impostor"]) == (len(g), len(im))
        if g and im:
            assert band["eer"] == pytest.approx(brute_eer(g, im), abs=1e-12)
        else:
            assert band["eer"] is None


def test_quality_is_resumed_and_assessed_again_when_the_plugin_changes(toy_run, tmp_path):
    tmp, ds, pairs, summary = toy_run
    before = (summary.run_dir / "quality.csv").read_bytes()
    again = run_benchmark(ds, pairs, config(tmp))
    assert (summary.run_dir / "quality.csv").read_bytes() == before  # nothing assessed again
    assert again.metrics["quality"] == summary.metrics["quality"]
    # without --quality, the run keeps the quality it has
    kept = run_benchmark(ds, pairs, config(tmp, quality=None))
    assert (summary.run_dir / "quality.csv").read_bytes() == before
    assert kept.metrics["quality"]["plugin"] == "ToyQuality"
    # another parameter of the plugin: every image is assessed again
    halved = run_benchmark(ds, pairs, config(tmp, quality_params={"scale": 0.5}))
    rows = [r for r in read_table(summary.run_dir / "quality.csv") if r["status"] == "ok"]
    assert len(rows) == 16
    for r in rows:
        image = cv2.imread(r["file"], cv2.IMREAD_GRAYSCALE)
        assert float(r["quality"]) == math.floor(0.5 * (100.0 - image.mean() / 2.55))
    assert halved.metrics["quality"]["params"] == {"scale": 0.5}
    run_benchmark(ds, pairs, config(tmp))  # leave the module's run as it was


def test_retry_failed_assesses_the_failures_again_and_only_them(toy_run, tmp_path):
    import shutil

    tmp, ds, pairs, summary = toy_run
    shutil.copytree(tmp / "run", tmp_path / "run")
    table = tmp_path / "run" / "quality.csv"
    rows = read_table(table)
    for r in rows:  # mark every stored row, to see which ones are assessed again
        r["error"] += " (stored)"
    with open(table, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    run_benchmark(ds, pairs, config(tmp_path, retry_failed=True, cache_dir=tmp / "cache"))
    after = read_table(table)
    assert [r["sample"] for r in after] == [r["sample"] for r in rows]  # protocol order kept
    for old, new in zip(rows, after):
        assert new["status"] == old["status"]
        if old["status"] in ("ok", "not_applicable"):
            assert new == old
        else:
            assert not new["error"].endswith("(stored)") and new["sample"] in new["error"], new


def test_a_declared_score_range_that_is_not_a_range_is_refused_before_any_work(tmp_path):
    ds = folder_dataset(toy_images(tmp_path / "images"))
    with pytest.raises(registry.PluginError, match="score_range"):
        run_benchmark(ds, protocols.fvc(ds), config(tmp_path, quality="BadRangeQuality"))
    assert not (tmp_path / "run" / "quality.csv").exists()


@pytest.mark.parametrize("edit, message", [
    (lambda rows: rows[1].__setitem__("quality", "150.0"), "within the plugin's range"),
    (lambda rows: rows[1].__setitem__("quality", "nan"), "within the plugin's range"),
    (lambda rows: rows.append(dict(rows[1])), "repeat a sample"),
    (lambda rows: rows.pop(1), "have no quality row"),
    (lambda rows: rows[1].__setitem__("status", "great"), "unknown status"),
])
def test_a_damaged_quality_table_is_refused_naming_the_file(toy_run, tmp_path, edit, message):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(toy_run[3].run_dir, run)
    rows = read_table(run / "quality.csv")
    edit(rows)
    with open(run / "quality.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(read_table(toy_run[3].run_dir / "quality.csv")[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(RunDirError, match=message) as err:
        evaluate_run(run, write=False)
    assert "quality.csv" in str(err.value)


def test_a_quality_table_the_manifest_does_not_name_is_refused(toy_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(toy_run[3].run_dir, run)
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["quality"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunDirError, match="names no quality plugin"):
        evaluate_run(run, write=False)


def test_report_draws_quality_erc_and_bands(toy_run, tmp_path):
    from bench.report import write_report
    from bench.report.rundata import load_run

    run_dir = toy_run[3].run_dir
    out = tmp_path / "report"
    write_report([run_dir], out, n_replicates=0, worst_k=0)
    gid = "toy-all-pairs"
    for name in ("quality", "erc", "bands"):
        for fmt in ("png", "svg", "pdf", "tex"):
            assert (out / "figures" / f"{gid}-{name}.{fmt}").stat().st_size > 0
    table = (out / "tables" / f"{gid}-quality.csv").read_text()
    rows = list(csv.reader(table.splitlines()))
    assert rows[0][:4] == ["algorithm", "quality", "images assessed", "threshold t (FMR %)"] and len(rows) == 2
    assert rows[1][2] == "16 of 22"
    assert "Image quality" in (out / "report.html").read_text()
    bib = (out / "references.bib").read_text()
    assert "grother2007quality" in bib
    # the figure's per-band curves are the ones band_metrics gives
    run = load_run(run_dir)
    band = Q.band_index(run.pair_quality(), run.summary["quality"]["band_edges"])
    assert int((band >= 0).sum()) == sum(b["n_genuine"] + b["n_impostor"] for b in run.summary["quality"]["bands"])


# ----------------------------------------------------------------------------- NFIQ 2
def test_nfiq2_plugin_on_real_images(shared_data):
    pytest.importorskip("nbis")
    from extractors.nbis import nfiq2_score
    from extractors.nfiq2 import Nfiq2Quality

    assert "nfiq2" in registry.names("quality")
    plugin = registry.create("quality", "nfiq2")
    assert isinstance(plugin, Nfiq2Quality) and plugin.score_range == (0.0, 100.0)
    assert plugin.version.startswith("NFIQ 2 (nbis-py ")
    img = cv2.imread(str(shared_data / "fvc2002" / "DB1_B" / "101_1.tif"), cv2.IMREAD_GRAYSCALE)
    score = plugin.assess(img, 500)
    assert 0 <= score <= 100 and score == float(nfiq2_score(img, 500)) and score == int(score)
    with pytest.raises(QualityNotApplicable, match="500 ppi.*569 dpi"):
        plugin.assess(img, 569)  # FVC2002 DB2's resolution
    assert Nfiq2Quality(dpi_tolerance=20).assess(img, 512) == score
    with pytest.raises(ValueError, match="NFIQ 2 could not be computed"):
        plugin.assess(np.full((300, 300), 255, np.uint8), 500)


def test_nfiq2_records_a_569_dpi_set_as_not_applicable(shared_data, tmp_path):
    pytest.importorskip("nbis")
    from bench.datasets import open_dataset
    from bench.engine.backends import LocalBackend
    from bench.engine.extraction import assess_quality
    from bench.plugins.loading import describe_plugins
    from bench.store import QUALITY_FIELDS, CsvLog

    ds = open_dataset("fvc2002-db2-b", data_root=shared_data)
    assert ds.info.dpi == 569
    spec = PluginSpec.resolve("quality", "nfiq2")
    desc, = describe_plugins([spec], 120)
    samples = {s.id: s for s in ds.samples}
    ids = sorted(samples)[:3]
    log = CsvLog(tmp_path / "quality.csv", QUALITY_FIELDS)
    backend = LocalBackend(1)
    try:
        assess_quality(samples, ids, {i: "x" for i in ids}, spec, desc, backend, log, timeout=60, show_progress=False)
    finally:
        backend.close()
    rows = log.rows()
    assert [r["status"] for r in rows] == ["not_applicable"] * 3
    assert all("569 dpi" in r["error"] and r["quality"] == "" for r in rows)


def test_cli_names_an_unknown_quality_plugin(tmp_path):
    assert main(["run", "-e", "classic", "-m", "mcc", "--quality", "nfiq", "-o", str(tmp_path)]) == 2
    assert main(["run", "-e", "classic", "-m", "mcc", "--quality-param", "a=1", "-o", str(tmp_path)]) == 2
    assert not any(tmp_path.iterdir())


def test_list_shows_quality_plugins(capsys):
    assert main(["list", "quality", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["quality"]
    assert any(r["name"] == "nfiq2" for r in listed)
    assert pd.DataFrame(listed).columns.tolist()[:2] == ["name", "available"]
