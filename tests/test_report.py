"""Reports: the subject-level bootstrap, the numbers and files of a report, clear errors for
bad run directories, and the HTML page as a real browser renders it."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from bench.metrics import bootstrap as B
from bench import metrics as M
from bench import protocols
from bench.cli import main
from bench.datasets.base import Dataset, DatasetInfo
from bench.metrics.summary import evaluate_run, load_summary, speed_summary
from bench.report import load_run, write_report
from bench.plugins.loading import PluginSpec
from bench.runner import RunConfig, run_benchmark
from bench.store import RunDirError
from conftest import dummy, folder_dataset
from dummy_plugins import FTE_LEVEL

TOY_INFO = DatasetInfo("toy-prints", "toy prints", "none", 500, None, None, None, "test", "", "", ("fvc",))
N_SUBJECTS, N_IMPRESSIONS = 8, 4


# ------------------------------------------------------------------------ toy runs
def toy_images(root: Path, seed: int = 0) -> Path:
    """8 subjects x 4 impressions of blurred noise: impressions of a subject share a
    pattern, so the toy plugins separate genuine from impostor pairs, with some errors.
    Impression 4 of subject 8 is uniform: the toy extractor fails to enrol it."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for s in range(1, N_SUBJECTS + 1):
        base = cv2.GaussianBlur(rng.normal(128, 60, (128, 128)), (0, 0), 6)
        for i in range(1, N_IMPRESSIONS + 1):
            img = np.roll(base, rng.integers(-6, 7, 2), (0, 1)) + rng.normal(0, 25, base.shape)
            img = np.clip((img - img.mean()) * 3 + 128, 0, 255).astype(np.uint8)
            if (s, i) == (N_SUBJECTS, N_IMPRESSIONS):
                img = np.full_like(img, FTE_LEVEL)
            cv2.imwrite(str(root / f"{s}_{i}.png"), img)
    return root


def toy_dataset(root: Path) -> Dataset:
    return folder_dataset(root, info=TOY_INFO)


def toy_run(ds: Dataset, out: Path, cache: Path, protocol: str = "fvc", matcher: str = "ToyMatcher",
            **matcher_params) -> Path:
    pairs = protocols.fvc(ds) if protocol == "fvc" else protocols.all_pairs(ds)
    cfg = RunConfig(PluginSpec("extractor", "ToyExtractor", dummy("ToyExtractor"), {}),
                    PluginSpec("matcher", matcher, dummy(matcher), matcher_params),
                    out, cache, jobs=2, progress=False)
    return run_benchmark(ds, pairs, cfg).run_dir


def make_toy_runs(root: Path) -> dict[str, Path]:
    """Runs on the toy set: two matchers under the FVC protocol, one under all-pairs,
    and a batched matcher whose scores equal ToyMatcher's."""
    ds = toy_dataset(toy_images(root / "images"))
    cache = root / "cache"
    return {
        "fvc": toy_run(ds, root / "runs" / "fvc" / "toy", cache),
        "fvc_lenient": toy_run(ds, root / "lenient" / "fvc" / "toy", cache, tolerance=17.0),
        "fvc_batch": toy_run(ds, root / "runs" / "fvc" / "batch", cache, matcher="BatchToyMatcher"),
        "all_pairs": toy_run(ds, root / "runs" / "all-pairs" / "toy", cache, protocol="all-pairs"),
    }


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> dict[str, Path]:
    return make_toy_runs(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="module")
def toy_report(toy, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    write_report([toy["fvc"], toy["fvc_lenient"], toy["all_pairs"]], out, n_replicates=200)
    return out


def copy_run(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(run, dst)
    return dst


# ----------------------------------------------------------------------- bootstrap
def test_replicate_weights_follow_the_subject_rule():
    # subjects 0, 1, 2; replicate: subject 0 drawn twice, 1 once, 2 never
    draws = np.array([[2, 1, 0]])
    a = np.array([0, 1, 2, 0, 0, 1])
    b = np.array([0, 1, 2, 1, 2, 2])
    w = B.replicate_weights(draws, a, b)[0]
    # genuine: one copy per draw; impostor: copies of 0 x copies of 1; pairs with 2 gone
    assert w.tolist() == [2, 1, 0, 2, 0, 0]


def test_unit_weights_reproduce_compute_metrics_exactly():
    # a replicate in which every subject is drawn once is the run itself: every indicator
    # must be compute_metrics' value, bit for bit (ties, infinities and failures included)
    rng = np.random.default_rng(3)
    for _ in range(300):
        n = int(rng.integers(2, 40))
        scores = rng.integers(0, 6, n).astype(float)
        genuine = rng.random(n) < 0.5
        status = rng.choice(["ok", "ok", "ok", "failed", "enrol_failed"], n)
        eff = M.apply_failures(scores, genuine, status)
        ok = status == "ok"
        sweep = M.ScoreSweep.of(eff[genuine], eff[~genuine])
        ones_g, ones_i = np.ones(genuine.sum(), np.int64), np.ones((~genuine).sum(), np.int64)
        got = B.replicate_indicators(sweep, ones_g, ones_i, ok[genuine].astype(np.int64),
                                     ok[~genuine].astype(np.int64))
        m = M.compute_metrics(scores, genuine, status)
        want = {k: m[k] for k in ("eer", "fmr100", "fmr1000", "fmr10000", "zero_fmr", "zero_fnmr")}
        want["eer_star"] = m["eer_star"]["eer"]
        # the thresholds where they are read, the same rule (finite ones only)
        want["threshold_eer"] = m["eer_threshold"]
        for name in B.THRESHOLDS[1:]:
            want[f"threshold_{name}"] = m["operating_points"][name]["threshold"]
        for key in [k for k in want if k.startswith("threshold_")]:
            if want[key] is not None and not np.isfinite(float(want[key])):
                want[key] = None
        assert got.keys() == want.keys()
        for key, value in got.items():
            if want[key] is None:
                assert np.isnan(value), key
            else:
                assert value == want[key], key


def test_bootstrap_with_every_subject_drawn_once_is_the_run(monkeypatch):
    # force every replicate to draw each subject exactly once: every interval collapses
    # onto the run's own value from compute_metrics
    s, g, a, b = _population(np.random.default_rng(4), n_subjects=12)
    s = np.round(s, 1)  # ties
    status = np.where(np.arange(s.size) % 11 == 0, "failed", "ok")
    m = M.compute_metrics(s, g, status)

    class OneEach:
        def __init__(self, seed):
            pass

        def multinomial(self, n, p, size):
            return np.ones((size, len(p)), np.int64)

    monkeypatch.setattr(B.np.random, "default_rng", OneEach)
    res = B.subject_bootstrap(s, g, status, a, b, n_replicates=5)
    for name in ("eer", "fmr100", "zero_fmr", "zero_fnmr"):
        assert res.intervals[name].low == res.intervals[name].high == m[name], name
    assert res.intervals["eer_star"].low == m["eer_star"]["eer"]
    assert res.intervals["rej_match"].low == (m["rej_ngra"] + m["rej_nira"]) / s.size
    # the thresholds of every replicate are the run's own: their intervals collapse onto them
    assert res.thresholds["eer"].low == res.thresholds["eer"].high == m["eer_threshold"]
    for name in ("fmr100",):
        assert res.thresholds[name].low == res.thresholds[name].high == m["operating_points"][name]["threshold"]


def test_threshold_intervals_are_percentiles_of_each_replicates_threshold():
    # brute force: draw the replicates as subject_bootstrap does, rebuild each replicate's
    # comparisons by repetition, read its thresholds with compute_metrics, take percentiles
    s, g, a, b = _population(np.random.default_rng(5), n_subjects=15)
    res = B.subject_bootstrap(s, g, None, a, b, n_replicates=60, seed=3)
    names, inv = np.unique(np.concatenate((a.astype(str), b.astype(str))), return_inverse=True)
    ia, ib = inv[: a.size], inv[a.size:]
    draws = np.random.default_rng(3).multinomial(names.size, np.full(names.size, 1 / names.size), size=60)
    eer_t, fmr100_t = [], []
    for w in B.replicate_weights(draws, ia, ib):
        m = M.compute_metrics(np.repeat(s, w), np.repeat(g, w))
        eer_t.append(float(m["eer_threshold"]))
        t = m["operating_points"]["fmr100"]["threshold"]
        fmr100_t.append(np.nan if t is None else float(t))
    eer_t, fmr100_t = np.array(eer_t), np.array(fmr100_t)
    assert [res.thresholds["eer"].low, res.thresholds["eer"].high] == pytest.approx(
        np.quantile(eer_t, [0.025, 0.975]))
    ok = np.isfinite(fmr100_t)
    assert res.thresholds["fmr100"].n_used == ok.sum()
    assert [res.thresholds["fmr100"].low, res.thresholds["fmr100"].high] == pytest.approx(
        np.quantile(fmr100_t[ok], [0.025, 0.975]))
    # FMR10000 needs 10,000 impostor comparisons: no threshold, no interval
    assert res.thresholds["fmr10000"].low is None and "unresolvable" in res.thresholds["fmr10000"].reason


def _population(rng, n_subjects=20, k=4, mu=2.5, sd_genuine=1.0, sd_impostor=0.5):
    """Scores with strong subject effects: a subject's genuine comparisons share an offset,
    an impostor comparison the offsets of its two subjects."""
    q = rng.normal(0, sd_genuine, n_subjects)
    r = rng.normal(0, sd_impostor, n_subjects)
    per = k * (k - 1) // 2
    ga = np.repeat(np.arange(n_subjects), per)
    gen = rng.normal(mu + q[ga], 1)
    ia, ib = np.triu_indices(n_subjects, 1)
    imp = rng.normal(r[ia] + r[ib], 1)
    return (np.concatenate((gen, imp)), np.r_[np.ones(gen.size, bool), np.zeros(imp.size, bool)],
            np.concatenate((ga, ia)), np.concatenate((ga, ib)))


def test_subject_bootstrap_covers_the_true_eer_where_a_comparison_bootstrap_does_not():
    mu, sg, si = 2.5, np.sqrt(2.0), np.sqrt(1.5)
    true_eer = norm.cdf(-mu / (sg + si))  # the population's equal error rate
    rng = np.random.default_rng(7)
    hits = naive_hits = 0
    widths, naive_widths = [], []
    n_sim, n_rep = 60, 200
    for sim in range(n_sim):
        s, g, a, b = _population(rng)
        iv = B.subject_bootstrap(s, g, None, a, b, n_replicates=n_rep, seed=sim).intervals["eer"]
        hits += iv.low <= true_eer <= iv.high
        widths.append(iv.high - iv.low)
        # the naive bootstrap: genuine and impostor comparisons resampled independently
        sweep = M.ScoreSweep.of(s[g], s[~g])
        r2 = np.random.default_rng(sim)
        wg, wi = (r2.multinomial(mask.sum(), np.full(mask.sum(), 1 / mask.sum()), size=n_rep)
                  for mask in (g, ~g))
        low, high = np.quantile([sweep.curve(wg[r], wi[r]).eer().eer for r in range(n_rep)], [0.025, 0.975])
        naive_hits += low <= true_eer <= high
        naive_widths.append(high - low)
    assert hits / n_sim >= 0.88
    assert naive_hits < hits
    assert np.mean(widths) > 1.2 * np.mean(naive_widths)


def test_bootstrap_is_deterministic_and_seeded():
    s, g, a, b = _population(np.random.default_rng(1))
    one = B.subject_bootstrap(s, g, None, a, b, n_replicates=300, seed=5)
    two = B.subject_bootstrap(s, g, None, a, b, n_replicates=300, seed=5)
    other = B.subject_bootstrap(s, g, None, a, b, n_replicates=300, seed=6)
    assert one == two
    assert one.intervals["eer"] != other.intervals["eer"]


def test_unresolvable_points_get_no_interval_and_failures_vary():
    s, g, a, b = _population(np.random.default_rng(2), n_subjects=10)  # 45 impostor comparisons
    status = np.where(np.arange(s.size) % 17 == 0, "failed", "ok")
    res = B.subject_bootstrap(s, g, status, a, b, n_replicates=300,
                              enrol_subjects=np.repeat(np.arange(10), 4),
                              enrol_failed=np.arange(40) % 13 == 0)
    for name in ("fmr100", "fmr1000", "fmr10000"):
        iv = res.intervals[name]
        assert iv.low is None and iv.high is None and "unresolvable" in iv.reason
    assert res.intervals["rej_match"].low < res.intervals["rej_match"].high
    assert res.intervals["rej_enroll"].low < res.intervals["rej_enroll"].high
    assert res.intervals["eer_star"].n_used == 300


def test_a_replicate_is_the_run_of_its_drawn_subjects_repeated():
    # FVC B set under all-pairs: 10 fingers x 8 impressions, 280 genuine, 2,880 impostor,
    # continuous scores (every threshold distinct). A replicate's weighted indicators must be
    # compute_metrics of the comparisons repeated as often as they weigh.
    rng = np.random.default_rng(0)
    subj = np.repeat(np.arange(10), 8)
    ia, ib = np.triu_indices(80, 1)
    a, b = subj[ia], subj[ib]
    g = a == b
    s = np.where(g, rng.normal(2, 1, g.size), rng.normal(0, 1, g.size))
    status = np.where(rng.random(g.size) < 0.02, "failed", "ok")
    eff = M.apply_failures(s, g, status)
    ok = (status == "ok").astype(np.int64)
    sweep = M.ScoreSweep.of(eff[g], eff[~g])
    draws = rng.multinomial(10, np.full(10, 0.1), size=5)
    for w in B.replicate_weights(draws, a, b):
        got = B.replicate_indicators(sweep, w[g], w[~g], ok[g], ok[~g])
        m = M.compute_metrics(np.repeat(s, w), np.repeat(g, w), np.repeat(status, w))
        for name in ("eer", "fmr100", "fmr1000", "zero_fmr", "zero_fnmr"):
            assert got[name] == m[name] or (m[name] is None and np.isnan(got[name])), name
        assert got["eer_star"] == m["eer_star"]["eer"]
    res = B.subject_bootstrap(s, g, status, a, b, n_replicates=1000)
    assert res.intervals["fmr1000"].low is not None  # 2,880 impostors resolve FMR1000
    assert res.intervals["eer"].n_used == 1000


# -------------------------------------------------------------------------- report
def test_report_numbers_match_the_stored_metrics(toy_report, toy):
    doc = json.loads((toy_report / "summary.json").read_text())
    assert doc["kind"] == "report-summary" and doc["schema_version"] == 2
    by_run = {Path(r["run"]).resolve(): r for r in doc["runs"]}
    for key in ("fvc", "fvc_lenient", "all_pairs"):
        run = by_run[toy[key].resolve()]
        stored = json.loads((toy[key] / "metrics.json").read_text())
        acc = evaluate_run(toy[key], write=False)["accuracy"]
        assert acc == stored["accuracy"]
        ind = run["indicators"]
        # one summary: the report's speed figures are metrics.json's, number for number
        for name in ("extraction_ms", "comparison_us", "comparisons_per_second_per_core"):
            assert run["speed"][name] == stored["speed"][name], name
        assert run["speed"]["template_bytes"] == stored["enrolment"]["template_bytes"]
        assert not run["warnings"]
        assert ind["eer"]["value"] == pytest.approx(acc["eer"])
        assert ind["zero_fmr"]["value"] == pytest.approx(acc["zero_fmr"])
        assert ind["eer"]["n_genuine"] == acc["n_genuine"] and ind["eer"]["n_impostor"] == acc["n_impostor"]
        assert ind["rej_enroll"]["count"] == 1 and ind["rej_enroll"]["n"] == N_SUBJECTS * N_IMPRESSIONS
        assert ind["rej_match"]["value"] == 0
        for name, v in ind.items():
            if v["value"] is None:
                assert v["ci_low"] is None and v["reason"]
            else:
                assert v["ci_low"] <= v["ci_high"]
    fvc = by_run[toy["fvc"].resolve()]["indicators"]
    # 28 impostor comparisons cannot resolve FMR100: reported as such, never as a number
    assert fvc["fmr100"]["value"] is None and "unresolvable" in fvc["fmr100"]["reason"]
    # comparisons with the failed enrolment are excluded from EER*
    assert fvc["eer_star"]["n_genuine"] == fvc["eer"]["n_genuine"] - 3


def test_report_files_tables_and_no_overlay_across_protocols(toy_report):
    for name in ("report.html", "report.md", "summary.json", "indicators.csv", "speed.csv"):
        assert (toy_report / name).stat().st_size > 0
    ind = pd.read_csv(toy_report / "indicators.csv")
    assert len(ind) == 3 * 9
    assert set(ind["indicator"]) == {"EER", "FMR100", "FMR1000", "FMR10000", "ZeroFMR", "ZeroFNMR",
                                     "REJ_ENROLL", "REJ_MATCH", "EER*"}
    speed = pd.read_csv(toy_report / "speed.csv")
    assert (speed["extraction_ms_median"] > 0).all() and (speed["comparisons_per_s_per_core"] > 0).all()
    md = (toy_report / "report.md").read_text()
    html = (toy_report / "report.html").read_text()
    for text in (md, html):
        assert "2 different dataset/protocol combinations" in text
        assert "never overlaid" in text
        assert "unresolvable" in text
    # one DET per dataset/protocol, never one DET of both protocols
    dets = sorted(p.name for p in (toy_report / "figures").glob("*-det.png"))
    assert dets == ["toy-prints-all-pairs-det.png", "toy-prints-fvc-det.png"]
    assert "Bolle" in html and "Pareto" in html
    # two configurations of one extractor + matcher pair are told apart by what differs
    assert "ToyExtractor + ToyMatcher (tolerance=17.0)" in html
    assert "ToyExtractor + ToyMatcher (tolerance=8.0)" in html


def _other_images(manifest: dict) -> None:
    """Make the manifest say one image file had other content (its dataset digest follows)."""
    files = manifest["dataset"]["files_sha256"]
    files[sorted(files)[0]] = "f" * 64
    manifest["dataset"]["sha256"] = hashlib.sha256(
        "".join(f"{k}:{v}\n" for k, v in sorted(files.items())).encode()).hexdigest()


def test_same_dataset_name_with_other_images_is_not_overlaid(toy, tmp_path):
    other = copy_run(toy["fvc"], tmp_path)
    _edit_json(other / "manifest.json", _other_images)
    out = tmp_path / "out"
    html = write_report([toy["fvc_lenient"], other], out, n_replicates=50, worst_k=0).read_text()
    assert "used different image files" in html and "not comparable" in html
    assert len(list((out / "figures").glob("*-det.png"))) == 2


def test_html_is_self_contained(toy_report):
    html = (toy_report / "report.html").read_text()
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert "@import" not in html and "url(" not in html
    assert "http://" not in html and "https://" not in html
    srcs = [part.split('"', 1)[0] for part in html.split(' src="')[1:]]
    assert srcs and all(s.startswith("data:image/") for s in srcs)


def test_names_and_paths_are_escaped(toy, tmp_path):
    run = copy_run(toy["fvc"], tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["extractor"]["name"] = "<img src=x onerror=alert(1)>"
    (run / "manifest.json").write_text(json.dumps(manifest))
    out = write_report([run], tmp_path / "out", n_replicates=50)
    html = out.read_text()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_worst_errors_without_the_template_cache(toy, tmp_path):
    run = copy_run(toy["fvc"], tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["settings"]["cache_dir"] = str(tmp_path / "cleared-cache")
    (run / "manifest.json").write_text(json.dumps(manifest))
    html = write_report([run], tmp_path / "out", n_replicates=50).read_text()
    assert "no longer in the template cache" in html
    assert html.count("data:image/jpeg") == 6  # 3 impostor + 3 genuine pairs, images only


def test_worst_errors_are_the_extreme_scores(toy):
    from bench.report.worst import select

    run = load_run(toy["fvc"])
    imp, gen = select(run, 3)
    c = run.comparisons[run.comparisons["kind"] == "ok"]
    assert [x.score for x in imp] == sorted(c.loc[~c["genuine"], "score_value"], reverse=True)[:3]
    assert [x.score for x in gen] == sorted(c.loc[c["genuine"], "score_value"])[:3]


def test_worst_error_images_are_large_enough_to_see_the_minutiae(toy):
    from bench.report.worst import THUMB_HEIGHT, worst_errors

    imp, gen, _ = worst_errors(load_run(toy["fvc"]), 1)
    image = cv2.imdecode(np.frombuffer(imp[0].image, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[0] == THUMB_HEIGHT >= 300


# ------------------------------------------------------------------ paper outputs
def test_every_figure_is_also_a_vector_file_with_a_caption(toy_report):
    pngs = sorted((toy_report / "figures").glob("*.png"))
    assert len(pngs) == 4 + 3  # DET, ROC, scores and speed of fvc (two runs); all-pairs has no speed chart
    for png in pngs:
        svg, pdf, tex = (png.with_suffix(s) for s in (".svg", ".pdf", ".tex"))
        assert b"<svg" in svg.read_bytes()[:2000] and pdf.read_bytes()[:5] == b"%PDF-"
        latex = tex.read_text()
        assert f"\\includegraphics[width=\\linewidth]{{{png.stem}.pdf}}" in latex
        assert "protocol" in latex and "dpi" in latex and "impostor comparisons" in latex
    html = (toy_report / "report.html").read_text()
    md = (toy_report / "report.md").read_text()
    for text in (html, md):
        assert "subject-level percentile bootstrap (Bolle, Ratha, Pankanti 2004), 200 replicates" in text
        assert "protocol all-pairs, N = " in text and "dpi" in text
    assert html.count("<figcaption>DET curves") == 2


def test_rendering_a_figure_twice_gives_the_same_bytes(toy):
    from bench.report import plots

    run = load_run(toy["fvc"])
    for fmt in plots.FIGURE_FORMATS:
        a = plots.render(plots.det_figure([("a", run)], plots.colours(["a"]), "t"), fmt)
        b = plots.render(plots.det_figure([("a", run)], plots.colours(["a"]), "t"), fmt)
        assert a == b, fmt


def test_every_table_is_csv_markdown_and_booktabs_latex_with_its_caption(toy_report, toy):
    tables = sorted((toy_report / "tables").glob("*.tex"))
    stems = {t.stem for t in tables}
    assert {"toy-prints-fvc-accuracy", "toy-prints-fvc-thresholds", "toy-prints-fvc-speed",
            "toy-prints-all-pairs-accuracy", "overview-eer"} <= stems
    for tex in tables:
        latex = tex.read_text()
        for cmd in ("\\toprule", "\\midrule", "\\bottomrule", "\\caption{", f"\\label{{tab:{tex.stem}}}"):
            assert cmd in latex, (tex.name, cmd)
        assert "dpi" in latex and "protocol" in latex and "bootstrap" in latex
        rows = pd.read_csv(tex.with_suffix(".csv"), dtype=str, keep_default_na=False)
        body = latex.split("\\midrule")[1].split("\\bottomrule")[0].strip().splitlines()
        assert len(body) == len(rows)
        md = tex.with_suffix(".md").read_text()
        assert md.startswith("Table: ") and md.count("\n| ") == len(rows) + 1
    acc = (toy_report / "tables" / "toy-prints-all-pairs-accuracy.tex").read_text()
    manifest = json.loads((toy["all_pairs"] / "manifest.json").read_text())
    n_gen, n_imp = manifest["protocol"]["n_genuine"], manifest["protocol"]["n_impostor"]
    assert f"N = {n_gen:,} genuine / {n_imp:,} impostor comparisons" in acc
    assert "EER (\\%)" in acc  # escaped for LaTeX


def test_latex_escaping():
    from bench.report.tables import latex_escape

    assert latex_escape("a_b & 5 % $x$ #1 {y} ~ ^ \\") == (
        "a\\_b \\& 5 \\% \\$x\\$ \\#1 \\{y\\} \\textasciitilde{} \\textasciicircum{} \\textbackslash{}")
    assert latex_escape("score >= t, FMR <= 1 %, a < b") == "score $\\geq$ t, FMR $\\leq$ 1 \\%, a $<$ b"


def test_thresholds_table_gives_each_points_threshold_and_interval(toy_report, toy):
    thr = pd.read_csv(toy_report / "thresholds.csv", keep_default_na=False, na_values=[""])
    assert list(thr.columns[5:]) == ["operating_point", "accept", "threshold", "ci_low", "ci_high",
                                     "n_replicates_used", "rate_fraction", "reason"]
    run = thr[thr["run"].map(lambda r: Path(r).resolve()) == toy["all_pairs"].resolve()]
    assert list(run["operating_point"]) == ["EER", "FMR100", "FMR1000", "FMR10000"]
    acc = json.loads((toy["all_pairs"] / "metrics.json").read_text())["accuracy"]
    eer = run.iloc[0]
    assert eer["threshold"] == float(acc["eer_threshold"]) and eer["accept"] == ">="
    assert eer["ci_low"] <= eer["ci_high"] and eer["n_replicates_used"] > 0
    assert eer["rate_fraction"] == acc["eer"]
    # the FVC run's 28 impostor comparisons cannot resolve FMR100: no threshold, with the reason
    unres = thr[(thr["operating_point"] == "FMR100") & thr["threshold"].isna()]
    assert len(unres) and unres["reason"].str.startswith("unresolvable").all()
    html = (toy_report / "report.html").read_text()
    assert "<h3>Thresholds</h3>" in html and "t at FMR1000" in html
    md = (toy_report / "report.md").read_text()
    assert "| algorithm | accept if score | t at EER | t at FMR100 |" in md
    assert f"{eer['threshold']:.4g} \\[{eer['ci_low']:.4g}, {eer['ci_high']:.4g}\\]" in md


def test_thresholds_of_a_distance_matcher_are_distances():
    # a distance matcher: the similarity threshold is the negated distance; the table gives the
    # distance, accepted when <=, and its interval in the same order
    from types import SimpleNamespace

    from bench.report.summary import thresholds as thresholds_of

    boot = B.BootstrapResult({}, 10, 5, 0.95, 0, {"eer": B.Interval(-12.0, -8.0, 10), "fmr100": B.Interval(
        None, None, 0, "x"), "fmr1000": B.Interval(None, None, 0, "x"), "fmr10000": B.Interval(None, None, 0, "x")})
    ind = {k: {"value": 0.1 if k == "eer" else None, "reason": None if k == "eer" else "unresolvable: few"}
           for k in ("eer", "fmr100", "fmr1000", "fmr10000")}
    run = SimpleNamespace(higher_is_better=False, summary={"accuracy": {"eer_threshold": -10.0, "operating_points": {
        k: {"threshold": None} for k in ("fmr100", "fmr1000", "fmr10000")}}})
    t = thresholds_of(run, boot, ind)
    assert t["eer"] == {"threshold": 10.0, "ci_low": 8.0, "ci_high": 12.0, "n_used": 10, "rate": 0.1,
                        "accept": "<=", "reason": None}
    assert t["fmr100"]["threshold"] is None and t["fmr100"]["reason"].startswith("unresolvable")


def test_references_bib_cites_the_protocol_and_the_bootstrap(toy_report):
    from bench import references

    bib = (toy_report / "references.bib").read_text()
    keys = list(references.entries(bib))
    # the toy dataset and plugins declare no publication; the FVC protocol and the bootstrap do
    assert keys == ["maio2002fvc2000", "cappelli2006performance", "bolle2004subsets"]
    assert "% maio2002fvc2000: protocol fvc; protocol all-pairs" in bib
    assert bib.count("{") == bib.count("}")


def test_builtin_datasets_and_plugins_declare_their_references():
    from bench import references
    from bench.datasets import registry
    from bench.plugins import registry as plugins

    infos = registry.available()
    assert "maio2002fvc2000" in references.entries(infos["fvc2000-db1-b"].bibtex)
    assert "maio2002fvc2002" in references.entries(infos["fvc2002-db2-a"].bibtex)
    assert {"maio2004fvc2004", "cappelli2006performance"} <= set(references.entries(infos["fvc2004-db3-b"].bibtex))
    assert "fiumara2019sd302" in references.entries(infos["nist-sd302"].bibtex)
    assert "shehu2018socofing" in references.entries(infos["socofing-real"].bibtex)
    for kind, name, key in (("extractor", "mindtct", "watson2007nbis"), ("matcher", "bozorth3", "watson2007nbis"),
                            ("matcher", "mcc", "cappelli2010mcc")):
        cls = plugins.entry(kind, name).load()
        assert key in references.entries(cls.bibtex), name


def test_reference_entries_are_well_formed():
    from bench import references

    seen = set()
    for name in dir(references):
        text = getattr(references, name)
        if not (isinstance(text, str) and text.startswith("@")):
            continue
        (key, entry), = references.entries(text).items()
        assert key not in seen
        seen.add(key)
        assert entry.count("{") == entry.count("}"), key
        for field in ("author", "title", "year"):
            assert re.search(rf"^\s*{field}\s*=", entry, re.M), (key, field)
        doi = re.search(r"doi\s*=\s*\{([^}]*)\}", entry)
        assert doi is None or re.fullmatch(r"10\.\d{4,5}/\S+", doi.group(1)), key
    assert {"maio2002fvc2000", "cappelli2006performance", "cappelli2010mcc", "watson2007nbis",
            "bolle2004subsets"} <= seen


# --------------------------------------------------------------------- visuals
class _Scores:
    """The part of a RunData that the DET figure reads."""

    def __init__(self, gen, imp):
        self.gen, self.imp = np.asarray(gen, float), np.asarray(imp, float)
        self.genuine = np.r_[np.ones(self.gen.size, bool), np.zeros(self.imp.size, bool)]

    def effective_scores(self):
        return self.gen, self.imp


def test_det_axes_reach_a_labelled_tick_below_a_good_systems_curve():
    from bench.report import plots

    rng = np.random.default_rng(0)
    # all-pairs on a B set: 280 genuine, 2,880 impostor; EER about 0.3 %
    good = _Scores(rng.normal(5.5, 1, 280), rng.normal(0, 1, 2880))
    fig = plots.det_figure([("good", good)], plots.colours(["good"]), "DET")
    ax = fig.axes[0]
    xlabels = [t.get_text() for t in ax.get_xticklabels()]
    ylabels = [t.get_text() for t in ax.get_yticklabels()]
    assert "0.01" in xlabels and "0.1" in ylabels
    assert ax.get_xlim()[0] == pytest.approx(norm.ppf(1e-4))
    e = M.eer(good.gen, good.imp).eer
    assert 1e-3 < e < 1e-2
    # the EER marker sits above the lowest labelled tick, inside the axes
    assert norm.ppf(e) > ax.get_ylim()[0] and norm.ppf(e) > ax.get_xlim()[0]
    # FVC protocol on a B set: 45 impostor comparisons, the axis stops at 1 % (labelled)
    fvc = _Scores(rng.normal(6, 1, 280), rng.normal(0, 1, 45))
    ax = plots.det_figure([("fvc", fvc)], plots.colours(["fvc"]), "DET").axes[0]
    assert ax.get_xlim()[0] == pytest.approx(norm.ppf(1e-2)) and ax.get_xticklabels()[0].get_text() == "1"


def test_speed_chart_axes_read_distinct_ticks_and_no_negative_eer():
    from bench.report import plots

    labels = ["a", "b", "c", "d"]
    points = [{"label": lab, "eer": e, "eer_low": 0.0, "eer_high": e + 0.01, "comparisons_per_s": c,
               "extraction_ms": x} for lab, e, c, x in zip(labels, (0.002, 0.004, 0.02, 0.05),
                                                          (900.0, 12000.0, 30000.0, 100.0), (33.2, 33.6, 34.1, 34.8))]
    fig = plots.speed_figure(points, plots.colours(labels), "speed")
    fig.canvas.draw()
    ax_c, ax_x = fig.axes[:2]
    for ax in (ax_c, ax_x):
        lo, hi = ax.get_xlim()
        shown = [t.get_text() for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi and t.get_text()]
        assert len(shown) >= 2 and len(set(shown)) == len(shown), shown
        assert ax.get_ylim()[0] >= 0
    assert ax_c.get_xscale() == "log" and ax_x.get_xscale() == "linear"


def test_provenance_is_a_table_without_raw_dicts(toy_report):
    html = (toy_report / "report.html").read_text()
    prov = html.split("<h2>Provenance</h2>")[1]
    assert "{'" not in prov and "tolerance = <code>17.0</code>" in prov
    md = (toy_report / "report.md").read_text().split("## Provenance")[1]
    assert "{'" not in md and "tolerance=17.0" in md


def test_indicators_csv_names_its_units(toy_report):
    ind = pd.read_csv(toy_report / "indicators.csv")
    assert {"value_fraction", "ci_low_fraction", "ci_high_fraction"} <= set(ind.columns)
    assert "value" not in ind.columns
    eer = ind[ind["indicator"] == "EER"]["value_fraction"]
    assert (eer.dropna() <= 1).all()


def test_pareto_front():
    from bench.report.plots import pareto_front

    # (cost, error): 2 is beaten by 1 on both; 3 has no error value
    assert pareto_front([1.0, 2.0, 3.0, 0.5, 4.0], [0.2, 0.1, 0.3, 0.4, None]) == [3, 0, 1]


# -------------------------------------------------------------------- bad run dirs
def _edit_csv(path: Path, edit) -> None:
    """Rewrite a CSV file with ``edit(frame) -> frame`` applied, as a hand edit would."""
    edit(pd.read_csv(path, dtype=str, keep_default_na=False)).to_csv(path, index=False)


def _set_first_ok(df, column, value):
    df.loc[df.index[df["status"] == "ok"][0], column] = value
    return df


def _drop_rows(df, n):
    return df.iloc[:-n]


def _set_row(df, i, column, value):
    df.loc[df.index[i], column] = value
    return df


def _repeat_first_row(df):
    return pd.concat([df, df.iloc[:1]])


BAD_RUNS = {
    "missing scores": (lambda r: (r / "scores.csv").unlink(), "scores.csv is missing"),
    "incomplete scores": (lambda r: _edit_csv(r / "scores.csv", lambda d: _drop_rows(d, 3)),
                          "have no score"),
    "older schema": (lambda r: _edit_json(r / "manifest.json", lambda m: m.update(schema_version=0)),
                     "schema version 0"),
    "manifest without matcher version": (
        lambda r: _edit_json(r / "manifest.json", lambda m: m["matcher"].pop("version")),
        "'matcher.version' is missing"),
    "unknown status": (lambda r: _edit_csv(r / "scores.csv", lambda d: _set_first_ok(d, "status", "okay")),
                       "unknown status ['okay']"),
    "score missing": (lambda r: _edit_csv(r / "scores.csv", lambda d: _set_first_ok(d, "score", "")),
                      "have no numeric score"),
    "subject changed": (lambda r: _edit_csv(r / "scores.csv", _swap_subject), "disagrees with the subjects"),
    "subject disagrees with extractions": (
        lambda r: _edit_csv(r / "extractions.csv", lambda d: _set_row(d, 0, "subject", "99")),
        "extractions.csv says '99'"),
    "genuine flag flipped": (lambda r: _edit_csv(r / "scores.csv", lambda d: _set_row(d, 0, "genuine", "0")),
                             "genuine flag of 1 rows disagrees"),
    "pairs disagree with manifest": (lambda r: _edit_json(r / "manifest.json",
                                                          lambda m: m["protocol"].update(n_impostor=99)),
                                     "says 48 and 99"),
    "extraction row missing": (lambda r: _edit_csv(r / "extractions.csv", lambda d: _drop_rows(d, 1)),
                               "no row for 1 samples"),
    "column missing": (lambda r: _edit_csv(r / "scores.csv", lambda d: d.drop(columns=["seconds"])),
                       "missing columns ['seconds']"),
    "ghost although enrolled": (lambda r: _edit_csv(r / "scores.csv",
                                                    lambda d: _set_first_ok(d, "status", "enrol_failed")),
                                "say 'enrol_failed' although"),
    "duplicate pair": (lambda r: _edit_csv(r / "pairs.csv", _repeat_first_row), "repeat a pair"),
    "manifest not JSON": (lambda r: (r / "manifest.json").write_text("{"), "not valid JSON"),
}


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _swap_subject(df):
    i = df.index[df["genuine"] == "1"][0]
    df.loc[i, "reference_subject"] = "other"
    return df


@pytest.mark.parametrize("case", sorted(BAD_RUNS))
def test_bad_run_directories_get_a_clear_message(case, toy, tmp_path, caplog):
    run = copy_run(toy["fvc"], tmp_path)
    damage, message = BAD_RUNS[case]
    damage(run)
    with pytest.raises(RunDirError) as exc:
        load_run(run)
    assert message in str(exc.value)
    assert str(run) in str(exc.value)  # names the run directory (and the file)
    assert main(["report", "-q", str(run), "-o", str(tmp_path / "out")]) == 2
    assert message in caplog.text


def test_stale_metrics_json_is_a_warning(toy, tmp_path):
    run = copy_run(toy["fvc"], tmp_path)
    _edit_json(run / "metrics.json", lambda m: m["accuracy"].update(eer=0.5))
    html = write_report([run], tmp_path / "out", n_replicates=50).read_text()
    assert "stale or edited" in html


def _scores_with_one_change(run: Path) -> None:
    scores = pd.read_csv(run / "scores.csv", dtype=str, keep_default_na=False)
    i = scores.index[(scores["status"] == "ok") & (scores["genuine"] == "1")][0]
    scores.loc[i, "score"] = "-1000"
    scores.to_csv(run / "scores.csv", index=False)


@pytest.mark.parametrize("case", ["edited", "stale", "missing", "older"])
def test_a_summary_that_is_not_current_is_recomputed_with_a_warning(case, toy, tmp_path):
    run = copy_run(toy["fvc"], tmp_path)
    stored = json.loads((run / "metrics.json").read_text())
    summary, warnings = load_summary(run)
    assert summary == stored and warnings == []  # current: read as it is, not recomputed
    if case == "edited":
        _edit_json(run / "metrics.json", lambda m: m["speed"].update(comparisons_per_second_per_core=1.0))
    elif case == "stale":
        _scores_with_one_change(run)
    elif case == "missing":
        (run / "metrics.json").unlink()
    else:
        _edit_json(run / "metrics.json", lambda m: m.pop("sha256"))
    summary, warnings = load_summary(run)
    assert len(warnings) == 1 and str(run / "metrics.json") in warnings[0]
    fresh = evaluate_run(run, write=False)
    assert summary["accuracy"] == fresh["accuracy"] and summary["speed"] == fresh["speed"]
    if case == "stale":
        assert summary["accuracy"]["eer"] != stored["accuracy"]["eer"]
    assert load_run(run).summary["accuracy"] == fresh["accuracy"]


def test_speed_is_comparisons_over_their_total_time():
    sp = speed_summary([0.010, 0.030], [0.001, 0.002, 0.003, 0.010, np.nan], [True, False, False, True, True])
    assert sp["comparisons_per_second_per_core"] == pytest.approx(4 / 0.016)  # not 1 / median (400)
    cmp = sp["comparison_us"]
    assert cmp["n"] == 4 and cmp["total"] == pytest.approx(16_000) and cmp["mean"] == pytest.approx(4_000)
    assert cmp["median"] == pytest.approx(2_500) and cmp["min"] == pytest.approx(1_000)
    assert cmp["p95"] == pytest.approx(np.percentile([1, 2, 3, 10], 95) * 1e3)
    assert sp["extraction_ms"]["median"] == pytest.approx(20.0)
    kinds = sp["comparison_us_by_kind"]  # genuine and impostor apart (the NaN left out)
    assert kinds["genuine"]["n"] == 2 and kinds["genuine"]["mean"] == pytest.approx(5_500)
    assert kinds["impostor"]["n"] == 2 and kinds["impostor"]["median"] == pytest.approx(2_500)
    empty = speed_summary([], [], [])
    assert empty["comparisons_per_second_per_core"] is None and empty["comparison_us"]["median"] is None


# ------------------------------------------------------------------- browser check
def _chromium() -> str | None:
    for name in (os.environ.get("FINGERBENCH_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def test_report_renders_in_headless_chromium(toy_report, tmp_path):
    from PIL import Image

    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium found (install Debian's 'chromium' package, or set FINGERBENCH_CHROMIUM)")
    shot = tmp_path / "report.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2000",
           (toy_report / "report.html").resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), f"no screenshot; chromium said: {proc.stderr[-2000:]}"
    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape == (2000, 1280)
    assert img.std() > 20  # not a blank page: text, tables and plots
    assert (img < 100).mean() > 0.01 and (img > 240).mean() > 0.3


def _table_overflow(page: Path, width: int, tmp_path: Path) -> list[tuple[str, float, float]]:
    """(class, scroll width, visible width) of every table box wider than its box, as headless
    Chromium lays ``page`` out in a window ``width`` pixels wide (a copy of the page with a
    measuring script; the report itself has none)."""
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium found (install Debian's 'chromium' package, or set FINGERBENCH_CHROMIUM)")
    script = ("<script>window.addEventListener('load', () => { const r = [];"
              "document.querySelectorAll('table').forEach(t => { const box = t.parentElement;"
              "r.push([t.className || box.className, Math.max(box.scrollWidth, t.scrollWidth),"
              "Math.min(box.clientWidth, document.querySelector('main').clientWidth)]); });"
              "document.body.setAttribute('data-tables', JSON.stringify(r)); });</script>")
    copy = page.with_name("measured.html")
    copy.write_text(page.read_text().replace("</body>", script + "</body>"))
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},1600",
           "--virtual-time-budget=3000", "--dump-dom", copy.resolve().as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    copy.unlink()
    m = re.search(r'data-tables="([^"]*)"', dom)
    assert m, dom[-2000:]
    tables = json.loads(m.group(1).replace("&quot;", '"'))
    assert tables
    return [(c, w, v) for c, w, v in tables if w > v + 1]


def test_tables_fit_a_900_pixel_window_without_scrolling(toy_report, tmp_path):
    assert _table_overflow(toy_report / "report.html", 900, tmp_path) == []


def test_identification_table_fits_a_1400_pixel_window(tmp_path):
    from bench.identification.report import write_identification_report
    from bench.identification.runner import run_identification
    from bench.engine.backends import LocalBackend
    from test_identification import config, small_protocol, spec

    p = small_protocol(probes=25)
    out = tmp_path / "run"
    run_identification(p, config(out, spec(tolerance=6.0), candidates=5), LocalBackend(jobs=1))
    page = write_identification_report([out], tmp_path / "report")
    assert _table_overflow(page, 1400, tmp_path) == []


# ------------------------------------------------------------------------ real data
def test_report_of_a_real_nbis_run(shared_data, tmp_path):
    out = tmp_path / "runs"
    assert main(["run", "-q", "-d", "fvc2002-db1-b", "--data-root", str(shared_data), "-e", "mindtct",
                 "-m", "bozorth3", "-o", str(out), "--report"]) == 0
    run = out / "report"  # --report writes one report of all the command's runs
    html = (run / "report.html").read_text()
    assert "fvc2002-db1-b" in html and "mindtct + bozorth3" in html
    assert html.count("data:image/jpeg") == 6 and "no longer in the template cache" not in html
    doc = json.loads((run / "summary.json").read_text())
    ind = doc["runs"][0]["indicators"]
    assert ind["eer"]["n_genuine"] == 280 and ind["eer"]["n_impostor"] == 45
    assert ind["fmr100"]["value"] is None  # 45 impostor comparisons
    assert ind["eer"]["ci_low"] <= ind["eer"]["value"] <= ind["eer"]["ci_high"]


def test_a_run_without_genuine_pairs_is_reported_without_curves(tmp_path, caplog):
    """One impression per finger (SOCOFing's real images under the FVC protocol) gives no
    genuine pair: the report has the score distribution and no DET/ROC, and says why."""
    images = toy_images(tmp_path / "all")
    one = tmp_path / "one"
    one.mkdir()
    for f in images.glob("*_1.png"):
        shutil.copy(f, one / f.name)
    run = toy_run(toy_dataset(one), tmp_path / "run", tmp_path / "cache")
    assert json.loads((run / "manifest.json").read_text())["protocol"]["n_genuine"] == 0
    with caplog.at_level(logging.WARNING):
        write_report([run], tmp_path / "report", n_replicates=20)
    assert "no DET or ROC curve (0 genuine and 28 impostor comparisons)" in caplog.text
    figures = {p.name for p in (tmp_path / "report" / "figures").glob("*.png")}
    assert any(n.endswith("-scores.png") for n in figures) and not any("-det" in n or "-roc" in n for n in figures)
