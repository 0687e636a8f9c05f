"""The MCC matcher: invariances, batch = single, degenerate templates, real fingers."""

from __future__ import annotations

import copy
import math

import cv2
import numpy as np
import pytest

from bench.plugins import BatchMatcher, Matcher, accepts, get_params
from bench.template import Template, make_minutiae
from extractors.classic import ClassicExtractor
from extractors.mcc import MccMatcher, compiled
from extractors.mcc.consolidation import n_pairs
from extractors.mcc.cylinders import popcount_similarity

FINGERS = (101, 102, 103, 104)
IMPRESSIONS = (1, 2, 3, 4)


@pytest.fixture(scope="module")
def fvc_templates(image_set) -> dict[tuple[int, int], Template]:
    """Templates of 4 fingers x 4 impressions laid out as an FVC B set: of the embedded
    synthetic set, and of FVC2002 DB1_B where the real data is present."""
    ex = ClassicExtractor()
    out = {}
    for f in FINGERS:
        for i in IMPRESSIONS:
            img = cv2.imread(str(image_set / f"{f}_{i}.tif"), cv2.IMREAD_GRAYSCALE)
            out[f, i] = ex.extract(img, 500)
    return out


def random_template(rng: np.random.Generator, n: int, size: int = 300, dpi: float = 500) -> Template:
    m = make_minutiae(rng.uniform(20, size - 20, n), rng.uniform(20, size - 20, n), rng.uniform(0, 2 * np.pi, n),
                      rng.integers(1, 3, n), 50)
    return Template(m, size, size, dpi)


def transformed(t: Template, angle: float, shift: tuple[float, float], scale: float = 1.0,
                dpi: float | None = None) -> Template:
    """The template rotated by ``angle`` (counter-clockwise as seen) about its image
    centre, then shifted and scaled, with the minutiae directions turned accordingly."""
    m = t.minutiae
    cx, cy = t.width / 2, t.height / 2
    x, y = m["x"] - cx, -(m["y"] - cy)  # y up
    c, s = math.cos(angle), math.sin(angle)
    xr, yr = c * x - s * y, s * x + c * y
    out = make_minutiae((xr + cx) * scale + shift[0], (-yr + cy) * scale + shift[1], m["angle"] + angle,
                        m["type"], m["quality"])
    return Template(out, int(t.width * scale) + 100, int(t.height * scale) + 100, dpi or t.dpi)


KERNELS = ["numba", "numpy"]


def make_matcher(kernel: str, **params) -> MccMatcher:
    """An MCC matcher on the given kernel; the compiled one skips where numba is absent."""
    if kernel == "numba" and not compiled.AVAILABLE:
        pytest.skip(compiled.UNAVAILABLE_REASON)
    return MccMatcher(kernel=kernel, **params)


@pytest.fixture(scope="module", params=KERNELS)
def matcher(request) -> MccMatcher:
    """Every test that takes this fixture runs on the compiled kernel and on the reference."""
    return make_matcher(request.param)


# -------------------------------------------------------------------------- basics
def test_interface_and_paper_defaults():
    m = MccMatcher()
    assert isinstance(m, Matcher) and isinstance(m, BatchMatcher)
    assert m.higher_is_better is True and m.accepted_formats == ("minutiae",)
    assert accepts(m, "nbis-py-0.1") and accepts(m, "minutiae")
    p = get_params(m)
    assert (p["radius"], p["ns"], p["nd"]) == (70.0, 16, 6)
    assert p["sigma_s"] == pytest.approx(28 / 3) and p["sigma_d"] == pytest.approx(2 * math.pi / 9)
    assert (p["mu_psi"], p["tau_psi"], p["omega"]) == (0.01, 400.0, 50.0)
    assert (p["min_np"], p["max_np"], p["mu_p"], p["tau_p"], p["w_r"], p["n_rel"]) == (4, 12, 20.0, 0.4, 0.5, 5)
    assert p["kernel"] == "auto"
    assert m.kernel_in_use == ("numba" if compiled.AVAILABLE else "numpy")
    p2 = get_params(MccMatcher(**{**p, "ns": 8}))
    assert p2 == {**p, "ns": 8}


def test_number_of_pairs_follows_the_paper():
    assert n_pairs(20, 4, 12, 20, 0.4) == 8  # Z = 1/2 at mu_P
    assert n_pairs(100, 4, 12, 20, 0.4) == 12
    assert n_pairs(3, 4, 12, 20, 0.4) == 4


# ----------------------------------------------------------------------- invariances
def test_identical_templates_score_near_one(matcher, fvc_templates):
    for t in list(fvc_templates.values())[:6]:
        same = matcher.compare(t, t)
        copy = Template(t.minutiae.copy(), t.width, t.height, t.dpi)
        assert same > 0.99
        assert matcher.compare(t, copy) == same


@pytest.mark.parametrize("angle_deg,shift", [(30, (25.0, -10.0)), (-75, (-40.0, 60.0)), (85, (0.0, 0.0))])
def test_rotated_translated_copy_scores_as_high_as_itself(matcher, fvc_templates, angle_deg, shift):
    t = fvc_templates[101, 1]
    moved = transformed(t, math.radians(angle_deg), (shift[0] + 150, shift[1] + 150))
    assert matcher.compare(t, moved) == pytest.approx(matcher.compare(t, t), abs=0.01)
    assert matcher.compare(moved, t) > 0.98


def test_rotation_beyond_the_angle_limit_is_not_matched(matcher, fvc_templates):
    # Cylinders are only compared within max_angle_difference (pi/2): a print turned
    # upside down is another print as far as MCC is concerned.
    t = fvc_templates[101, 1]
    assert matcher.compare(t, transformed(t, math.pi, (150.0, 150.0))) < 0.05
    assert MccMatcher(max_angle_difference=math.pi).compare(t, transformed(t, math.pi, (150.0, 150.0))) > 0.98


def test_resolution_is_normalised(matcher, fvc_templates):
    t = fvc_templates[102, 1]
    at_569 = transformed(t, 0.0, (0.0, 0.0), scale=569 / 500, dpi=569)
    assert matcher.compare(t, at_569) == pytest.approx(matcher.compare(t, t), abs=0.01)
    # Without the resolution, the same positions are a poor match.
    assert matcher.compare(t, Template(at_569.minutiae, at_569.width, at_569.height, 500)) < 0.6


def test_random_templates_score_low(matcher):
    rng = np.random.default_rng(7)
    ts = [random_template(rng, 40) for _ in range(12)]
    scores = np.array([matcher.compare(a, b) for i, a in enumerate(ts) for b in ts[i + 1:]])
    assert scores.mean() < 0.05 and scores.max() < 0.2


def test_nearly_symmetric(matcher, fvc_templates):
    keys = list(fvc_templates)
    for a, b in [(keys[0], keys[1]), (keys[2], keys[7]), (keys[5], keys[12])]:
        s_ab = matcher.compare(fvc_templates[a], fvc_templates[b])
        s_ba = matcher.compare(fvc_templates[b], fvc_templates[a])
        assert s_ab == pytest.approx(s_ba, abs=0.02)


# --------------------------------------------------------------------- real fingers
def test_genuine_scores_above_impostor_scores(matcher, fvc_templates):
    keys = list(fvc_templates)
    genuine, impostor = [], []
    for i, a in enumerate(keys):
        scores = matcher.compare_many(fvc_templates[a], [fvc_templates[b] for b in keys[i + 1:]])
        for b, s in zip(keys[i + 1:], scores):
            (genuine if a[0] == b[0] else impostor).append(s)
    genuine, impostor = np.array(genuine), np.array(impostor)
    assert genuine.mean() > impostor.mean() + 0.05
    assert np.median(genuine) > np.percentile(impostor, 95)
    assert np.all((genuine >= 0) & (genuine <= 1)) and np.all((impostor >= 0) & (impostor <= 1))


# --------------------------------------------------------------- batch versus single
def _mixed_gallery(fvc_templates) -> list[Template]:
    rng = np.random.default_rng(3)
    ts = list(fvc_templates.values())
    empty = Template(make_minutiae([], [], []), 300, 300, 500)
    two = Template(make_minutiae([10, 50], [10, 80], [0, 1]), 300, 300, 500)
    return ts + [empty, two, ts[0], ts[3], random_template(rng, 5), random_template(rng, 90),
                 transformed(ts[1], 0.4, (30.0, 30.0), scale=569 / 500, dpi=569)]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("params", [{}, {"ns": 8}, {"min_np": 2, "max_np": 20, "n_rel": 3}])
def test_compare_many_equals_compare_exactly(fvc_templates, params, kernel):
    m = make_matcher(kernel, **params)
    gallery = _mixed_gallery(fvc_templates)
    for probe in [gallery[0], gallery[5], gallery[-1], gallery[-2], gallery[-6]]:
        batch = m.compare_many(probe, gallery)
        single = np.array([m.compare(probe, g) for g in gallery])
        assert batch.shape == (len(gallery),) and batch.dtype == np.float64
        assert np.array_equal(batch, single)
        # ... and the same again with a different gallery order and sub-set.
        order = np.random.default_rng(0).permutation(len(gallery))[: len(gallery) - 4]
        assert np.array_equal(m.compare_many(probe, [gallery[i] for i in order]), single[order])


def test_sigmoid_variant_batch_matches_single(fvc_templates):
    m = MccMatcher(bits=False)
    gallery = _mixed_gallery(fvc_templates)
    probe = gallery[2]
    assert m.compare(probe, probe) > 0.99
    single = np.array([m.compare(probe, g) for g in gallery])
    assert np.allclose(m.compare_many(probe, gallery), single, atol=1e-4)


def test_tiny_templates_score_zero(matcher, fvc_templates):
    real = fvc_templates[101, 1]
    for n in (0, 1, 2):
        tiny = Template(make_minutiae(np.arange(n) * 30.0 + 50, np.full(n, 60.0), np.zeros(n)), 300, 300, 500)
        assert matcher.compare(tiny, real) == 0.0
        assert matcher.compare(real, tiny) == 0.0
        assert matcher.compare(tiny, tiny) == 0.0
        assert np.array_equal(matcher.compare_many(tiny, [real, tiny]), [0.0, 0.0])
    assert matcher.compare_many(real, []).shape == (0,)


def test_degenerate_geometry_never_gives_nan(matcher):
    # Collinear and coincident minutiae: no valid area, or a hull of zero area.
    line = Template(make_minutiae(np.arange(10) * 10.0 + 50, np.full(10, 100.0), np.zeros(10)), 300, 300, 500)
    same_spot = Template(make_minutiae(np.full(6, 100.0), np.full(6, 100.0), np.linspace(0, 3, 6)), 300, 300, 500)
    for a in (line, same_spot):
        for b in (line, same_spot):
            s = matcher.compare(a, b)
            assert np.isfinite(s) and 0.0 <= s <= 1.0


# -------------------------------------------------------------------- internals
def test_local_similarities_equal_the_popcount_definition(matcher, fvc_templates):
    a_t, b_t = fvc_templates[101, 1], fvc_templates[101, 2]
    a, b = matcher.prepare(a_t), matcher.prepare(b_t)
    gamma = matcher.local_similarities(a_t, b_t)
    assert gamma.shape == (len(a), len(b))
    n_cells = a.valid.shape[1]
    checked = 0
    for i in range(len(a)):
        for j in range(len(b)):
            sim, matchable = popcount_similarity(a, i, b, j)
            d_theta = abs((a.theta[i] - b.theta[j] + np.pi) % (2 * np.pi) - np.pi)
            if matchable < matcher.min_matchable_cells * n_cells * matcher.nd or d_theta > np.pi / 2:
                assert gamma[i, j] == 0.0
            else:
                assert gamma[i, j] == pytest.approx(sim, abs=1e-6)
                checked += 1
    assert checked > 100


@pytest.mark.parametrize("kernel", KERNELS)
def test_cache_follows_parameter_changes(fvc_templates, kernel):
    a, b = fvc_templates[101, 1], fvc_templates[101, 3]
    m = make_matcher(kernel)
    m.compare(a, b)
    m.ns = 8
    assert m.compare(a, b) == make_matcher(kernel, ns=8).compare(a, b)
    m.n_rel = 2
    assert m.compare(a, b) == make_matcher(kernel, ns=8, n_rel=2).compare(a, b)


def test_pickle_round_trip(matcher, fvc_templates):
    a, b = fvc_templates[102, 1], fvc_templates[102, 2]
    before = matcher.compare(a, b)
    clone = copy.deepcopy(matcher)  # the same __reduce_ex__/__getstate__ path as pickling for IPC
    assert get_params(clone) == get_params(matcher)
    assert clone.compare(a, b) == before
