"""The calibration of the synthetic minutiae model (benchmarks/calibration.py): its
statistics recomputed independently on small cases, and the model's versions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from bench.synthetic import model as syn
from benchmarks import calibration as cal


def brute_force_ks(a: list[float], b: list[float]) -> float:
    """Largest gap between the two empirical distribution functions, by counting."""
    gap = 0.0
    for t in sorted(set(a) | set(b)):
        fa = sum(1 for v in a if v <= t) / len(a)
        fb = sum(1 for v in b if v <= t) / len(b)
        gap = max(gap, abs(fa - fb))
    return gap


def test_ks_statistic_matches_counting():
    rng = np.random.default_rng(3)
    for n, m in ((1, 1), (5, 9), (40, 17)):
        a = np.round(rng.normal(0, 1, n), 1)  # ties within and across the samples
        b = np.round(rng.normal(0.4, 1.3, m), 1)
        assert cal.ks_statistic(a, b) == pytest.approx(brute_force_ks(list(a), list(b)), abs=1e-12)
    assert cal.ks_statistic([1, 2, 3], [1, 2, 3]) == 0.0
    assert cal.ks_statistic([1, 2], [3, 4]) == 1.0
    assert cal.ks_statistic([1, 2, 3, 4], [3, 4]) == 0.5  # F_a(2) = 1/2, F_b(2) = 0
    with pytest.raises(ValueError):
        cal.ks_statistic([], [1.0])


def test_quantiles_interpolate_between_order_statistics():
    scores = np.array([4.0, 1.0, 3.0, 2.0, 5.0])  # sorted 1..5: the q-th percentile sits at rank q/100 * 4
    q = cal.quantiles(scores, (0, 50, 90, 99.99))
    assert q == {"q0": 1.0, "q50": 3.0, "q90": pytest.approx(4.6), "q99.99": pytest.approx(4 + 0.9996)}


def test_comparison_and_loss_on_a_known_case():
    real = (np.array([1.0, 2.0, 3.0, 4.0]), np.arange(1.0, 101.0), np.array([30.0, 40.0]))
    same = cal.compare_to(real, real)
    assert same["ks_genuine"] == same["ks_impostor"] == 0.0 and same["count_ratio"] == 1.0
    assert all(v == 1.0 for v in same["impostor_ratio"].values())
    assert cal.calibration_loss(real, real) == 0.0
    doubled = (2 * real[0], 2 * real[1], 2 * real[2])
    c = cal.compare_to(real, doubled)
    assert all(v == pytest.approx(2.0) for v in c["impostor_ratio"].values())
    # 3 impostor tail ratios, 2 genuine ratios and the count ratio, each off by log 2
    expected = brute_force_ks(list(real[0]), list(doubled[0])) + brute_force_ks(list(real[1]), list(doubled[1])) \
        + 6 * math.log(2)
    assert cal.calibration_loss(real, doubled) == pytest.approx(expected)


def test_synthetic_scores_are_all_pairs_within_each_set():
    mcc = pytest.importorskip("extractors.mcc").MccMatcher()
    model = syn.MinutiaeModel()
    gen, imp, counts = cal.synthetic_scores(model, 5, n_sets=2, fingers=3, impressions=3, matcher=mcc)
    want_gen, want_imp, want_counts = [], [], []
    for k in range(2):  # independently: every unordered pair within a set, one comparison at a time
        ids = [(s, i) for s in range(3 * k + 1, 3 * k + 4) for i in (1, 2, 3)]
        ts = {key: syn.make_template(model, 5, syn.template_id(*key)) for key in ids}
        want_counts += [len(ts[key]) for key in ids]
        for a, b in itertools.combinations(ids, 2):
            s = float(mcc.compare(ts[a], ts[b]))
            (want_gen if a[0] == b[0] else want_imp).append(s)
    assert gen.size == 2 * 3 * 3 and imp.size == 2 * (36 - 9)
    assert np.allclose(np.sort(gen), np.sort(want_gen)) and np.allclose(np.sort(imp), np.sort(want_imp))
    assert list(counts) == want_counts


def test_coordinate_search_finds_the_grid_minimum_of_a_separable_loss():
    start = syn.MinutiaeModel()
    space = {"density": (0.5e-3, 1.0e-3, 2.0e-3), "spurious": (0.0, 0.2, 0.4)}

    def loss(m: syn.MinutiaeModel) -> float:
        return (m.density - 1.0e-3) ** 2 * 1e6 + (m.spurious - 0.4) ** 2

    best, best_loss, trail = cal.coordinate_search(start, loss, space)
    assert (best.density, best.spurious) == (1.0e-3, 0.4) and best_loss == pytest.approx(0.0)
    assert trail[0]["loss"] == loss(start)


# ------------------------------------------------------------------ versions
def test_model_versions_are_explicit_and_recorded():
    latest = syn.MinutiaeModel()
    assert latest.version == syn.LATEST_VERSION == "2"
    assert syn.model_version("2") == latest
    v1 = syn.model_version("1")
    # version 1's parameters, as published before the calibration against MCC scores
    assert (v1.density, v1.min_distance, v1.angle_noise, v1.spurious, v1.distortion) == (0.85e-3, 8.0, 0.17, 0.10, 6.0)
    assert v1.dropout == (0.05, 0.25) and v1.contact_half_width == (80.0, 145.0)
    assert v1 != latest
    # a stored model reads back as itself; a version alone means that version's parameters
    assert syn.MinutiaeModel.from_dict(v1.to_dict()) == v1
    assert syn.MinutiaeModel.from_dict({"version": "1"}) == v1
    assert syn.MinutiaeModel.from_dict({"version": "1", "spurious": 0.3}) == syn.model_version("1").__class__(
        **{**v1.to_dict(), "spurious": 0.3})
    assert syn.MinutiaeModel.from_dict({}) == latest
    with pytest.raises(ValueError, match="version"):
        syn.model_version("0")
    # the run identity of a synthetic gallery names the version
    from bench.identification.sources import TemplateSources

    ident = TemplateSources(seed=0).identity([syn.template_id(1, 1)])
    assert ident["synthetic"]["model"]["version"] == "2"


# ------------------------------------------------------------------ image-based galleries
def test_image_gallery_protocol_has_the_minutiae_model_protocol_shape():
    from bench.protocols import identification as proto
    from benchmarks.gallery_fidelity import image_protocol

    images = image_protocol(50, mated=10, nonmated=20, seed=3)
    model = proto.synthetic(50, 30, 10 / 30, seed=3)

    assert (images.n_gallery, images.n_probes, images.n_mated) == (model.n_gallery, model.n_probes, model.n_mated)
    # the same fingers are searched: mated ones drawn alike, non-mated ones numbered after the gallery
    as_numbers = [(int(i.split("_")[0]), int(i.split("_")[1])) for i in images.probe_ids]
    assert as_numbers == [syn.parse_id(i) for i in model.probe_ids]
    assert images.gallery_ids == [f"{f}_1" for f in range(1, 51)]
    mated = images.probe_mated()
    assert all(int(s) <= 50 for s, m in zip(images.probe_subjects, mated) if m)
    assert all(int(s) > 50 for s, m in zip(images.probe_subjects, mated) if not m)


def test_calibration_figure_is_redrawn_from_the_stored_data(tmp_path):
    pytest.importorskip("matplotlib")
    import json
    from pathlib import Path

    from benchmarks import figures

    assert figures.main(["calibration", "--out", str(tmp_path)]) == 0
    made = tmp_path / "synthetic_calibration.png"
    shipped = Path(figures.ROOT) / "docs" / "img" / "synthetic_calibration.png"
    assert made.stat().st_size > 10_000 and shipped.is_file()
    data = json.loads((Path(figures.ROOT) / "docs" / "data" / "calibration.json").read_text())
    # the stored curves agree with the stored quantiles: share of impostors >= the 99th percentile is about 1 %
    for group in ("fvc2000", "fvc2002"):
        q99 = data["pooled"][group]["impostor"]["q99"]
        sf = np.interp(q99, cal.IMPOSTOR_GRID, data["curves"][f"{group.upper()} pooled"]["impostor_sf"])
        assert 0.003 < sf < 0.03
