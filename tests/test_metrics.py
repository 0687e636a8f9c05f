"""Tests of bench.metrics: brute-force reference, hand-computed cases, pyeer cross-checks,
FVC failure rules."""

from __future__ import annotations

import json
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest

from bench import metrics as M
from conftest import count_python_calls

INF = math.inf


# ---------------------------------------------------------------------------------
# Independent brute-force reference: loop over every candidate threshold, count.
# ---------------------------------------------------------------------------------


def _exact_target(target: float) -> Fraction:
    """The rational an FMR target stands for (0.01 -> 1/100, 1/49 as float -> 1/49)."""
    return Fraction(target).limit_denominator(10**9)


def brute(gen, imp, targets=(1e-2, 1e-3, 1e-4, 0.05, 0.1, 0.25, 0.5)):
    """Every metric by direct counting, in exact fractions.

    Candidate thresholds: every distinct score except -inf (a score of -inf must be
    rejected at every threshold), plus +inf standing for "a value above every finite
    score" (a +inf score is accepted even there).
    """
    gen = [float(x) for x in gen]
    imp = [float(x) for x in imp]
    ng, ni = len(gen), len(imp)
    cands = sorted({s for s in gen + imp if s != -INF} | {INF})
    rows = []
    for t in cands:
        fm = sum(1 for s in imp if s >= t)
        fnm = sum(1 for s in gen if s < t)
        rows.append((t, Fraction(fm, ni), Fraction(fnm, ng)))
    out = {"rows": rows}

    below = [r for r in rows if r[2] <= r[1]]  # FNMR <= FMR
    above = [r for r in rows if r[2] >= r[1]]  # FNMR >= FMR
    r1 = max(below, key=lambda r: r[0]) if below else None
    r2 = min(above, key=lambda r: r[0]) if above else None
    if r1 is not None and (r2 is None or r1[2] + r1[1] <= r2[1] + r2[2]):
        low, high, thr = r1[2], r1[1], r1[0]
    else:
        low, high, thr = r2[1], r2[2], r2[0]
    out["eer_low"], out["eer_high"] = low, high
    out["eer"] = (low + high) / 2
    out["t1"] = r1[0] if r1 else None
    out["t2"] = r2[0] if r2 else None
    out["eer_threshold"] = thr

    ops = {}
    for x in tuple(targets) + (0.0,):
        fx = _exact_target(x)
        if x > 0 and fx < Fraction(1, ni):
            ops[x] = (None, None)
            continue
        ok = [r for r in rows if r[1] <= fx]
        if not ok:
            ops[x] = (Fraction(1), None)
            continue
        best = min(r[2] for r in ok)
        thr = min(r[0] for r in ok)
        assert [r for r in ok if r[0] == thr][0][2] == best
        ops[x] = (best, thr)
    out["ops"] = ops

    ok = [r for r in rows if r[2] == 0]
    if ok:
        out["zero_fnmr"] = (min(r[1] for r in ok), max(r[0] for r in ok))
    else:
        out["zero_fnmr"] = (Fraction(1), None)

    wins = Fraction(0)
    for g in gen:
        for i in imp:
            if g > i:
                wins += 1
            elif g == i:
                wins += Fraction(1, 2)
    out["auc"] = wins / (ng * ni)
    return out


# ---------------------------------------------------------------------------------
# Random cases
# ---------------------------------------------------------------------------------

KINDS = (
    "int_ties", "bozorth", "continuous", "tiny", "separated", "reversed", "overlap",
    "equal", "with_inf",
)


def make_case(rng: np.random.Generator, kind: str):
    ng, ni = (int(v) for v in rng.integers(1, 30, size=2))
    if kind == "int_ties":
        k = int(rng.integers(1, 12))
        gen = rng.integers(0, k + 1, ng) + int(rng.integers(0, k + 1))
        imp = rng.integers(0, k + 1, ni)
    elif kind == "bozorth":  # impostors pile up on a few low values, genuine spread
        imp = np.minimum(rng.geometric(0.3, ni) + 2, 60)
        gen = np.where(rng.random(ng) < 0.2, rng.integers(0, 15, ng), rng.integers(10, 200, ng))
    elif kind == "continuous":
        gen = rng.normal(1.0, 1.0, ng)
        imp = rng.normal(0.0, 1.0, ni)
    elif kind == "tiny":
        ng, ni = (int(v) for v in rng.integers(1, 6, size=2))
        gen = rng.integers(0, 4, ng)
        imp = rng.integers(0, 4, ni)
    elif kind == "separated":
        imp = rng.integers(0, 10, ni)
        gen = rng.integers(10, 20, ng)
    elif kind == "reversed":
        gen = rng.integers(0, 10, ng)
        imp = rng.integers(10, 20, ni)
    elif kind == "overlap":
        gen = rng.integers(0, 6, ng)
        imp = rng.integers(0, 6, ni)
    elif kind == "equal":
        v = float(rng.integers(0, 100))
        gen, imp = np.full(ng, v), np.full(ni, v)
    elif kind == "with_inf":
        gen = rng.integers(0, 8, ng).astype(float) + 2
        imp = rng.integers(0, 8, ni).astype(float)
        gen[rng.random(ng) < 0.2] = -INF
        u = rng.random(ni)
        imp[u < 0.15] = -INF
        imp[u > 0.9] = INF
        if rng.random() < 0.2:
            gen[0] = INF
    else:  # pragma: no cover
        raise AssertionError(kind)
    return np.asarray(gen, dtype=float), np.asarray(imp, dtype=float)


def random_cases(n_per_kind: int, seed: int, kinds=KINDS):
    rng = np.random.default_rng(seed)
    for kind in kinds:
        for _ in range(n_per_kind):
            yield kind, *make_case(rng, kind)


def _f(x: Fraction | None) -> float | None:
    return None if x is None else float(x)


def check_against_brute(gen, imp, curve=None):
    """``curve`` (default: the error curve of ``gen`` and ``imp``) against the brute force."""
    ref = brute(gen, imp)
    curve = M.error_curve(gen, imp) if curve is None else curve

    # the sweep itself
    assert curve.thresholds.tolist() == [r[0] for r in ref["rows"]]
    assert curve.fmr.tolist() == [float(r[1]) for r in ref["rows"]]
    assert curve.fnmr.tolist() == [float(r[2]) for r in ref["rows"]]

    # EER interval
    e = curve.eer()
    assert e.eer_low == float(ref["eer_low"])
    assert e.eer_high == float(ref["eer_high"])
    assert e.eer == pytest.approx(float(ref["eer"]), rel=1e-15, abs=1e-15)
    assert e.t1 == ref["t1"]
    assert e.t2 == ref["t2"]
    assert e.threshold == ref["eer_threshold"]
    assert e.eer_low <= e.eer_high

    # operating points
    for x, (val, thr) in ref["ops"].items():
        op = curve.fnmr_at_fmr(x)
        assert op.value == _f(val), (x, op)
        assert op.threshold == thr, (x, op)
        if val is None:
            assert op.reason and "unresolvable" in op.reason
    z = curve.zero_fmr()
    assert (z.value, z.threshold) == (_f(ref["ops"][0.0][0]), ref["ops"][0.0][1])
    zn = curve.zero_fnmr()
    assert (zn.value, zn.threshold) == (_f(ref["zero_fnmr"][0]), ref["zero_fnmr"][1])

    # AUC: trapezoid over the step curve == P(g > i) + 0.5 P(g == i), exactly
    assert curve.auc() == float(ref["auc"])


@pytest.mark.parametrize("kind", KINDS)
def test_random_against_brute_force(kind):
    for _, gen, imp in random_cases(40, seed=1000 + KINDS.index(kind), kinds=(kind,)):
        check_against_brute(gen, imp)


def test_larger_integer_case_against_brute_force():
    # FVC-B-like sizes with BOZORTH3-like integer scores (heavy ties).
    rng = np.random.default_rng(7)
    gen = np.where(rng.random(280) < 0.1, rng.integers(0, 12, 280), rng.integers(8, 180, 280))
    imp = np.minimum(rng.geometric(0.15, 2880) + 3, 70)
    check_against_brute(gen.astype(float), imp.astype(float))


# ---------------------------------------------------------------------------------
# Weighted counts: a comparison of weight k counts k times (the subject bootstrap)
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_weighted_curve_is_the_curve_of_repeated_scores(kind):
    rng = np.random.default_rng(2000 + KINDS.index(kind))
    for _, gen, imp in random_cases(30, seed=3000 + KINDS.index(kind), kinds=(kind,)):
        gen, imp = np.asarray(gen, float), np.asarray(imp, float)
        wg = rng.integers(0, 4, gen.size)
        wi = rng.integers(0, 4, imp.size)
        wg[rng.integers(gen.size)] = max(wg.max(), 1)  # keep both classes non-empty
        wi[rng.integers(imp.size)] = max(wi.max(), 1)
        weighted = M.error_curve(gen, imp, genuine_weights=wg, impostor_weights=wi)
        rep_g, rep_i = np.repeat(gen, wg), np.repeat(imp, wi)
        # the independent brute force on the repeated scores, threshold by threshold
        check_against_brute(rep_g, rep_i, weighted)
        repeated = M.error_curve(rep_g, rep_i)
        assert weighted.thresholds.tolist() == repeated.thresholds.tolist()
        assert weighted.fm.tolist() == repeated.fm.tolist()
        assert weighted.fnm.tolist() == repeated.fnm.tolist()
        assert (weighted.n_genuine, weighted.n_impostor, weighted.n_distinct) == (
            repeated.n_genuine, repeated.n_impostor, repeated.n_distinct)


def test_unit_weights_give_the_unweighted_curve():
    for _, gen, imp in random_cases(10, seed=11):
        plain = M.error_curve(gen, imp)
        ones = M.error_curve(gen, imp, genuine_weights=np.ones(len(gen), int),
                             impostor_weights=np.ones(len(imp), int))
        for field in ("thresholds", "fm", "fnm"):
            assert np.array_equal(getattr(plain, field), getattr(ones, field)), field
            assert getattr(ones, field).dtype == getattr(plain, field).dtype
        assert (plain.n_genuine, plain.n_impostor, plain.n_distinct) == (
            ones.n_genuine, ones.n_impostor, ones.n_distinct)
        assert plain.eer() == ones.eer() and plain.fvc_points() == ones.fvc_points()


def test_one_sweep_many_weightings():
    gen, imp = [1.0, 2.0, 2.0, 5.0, -INF], [0.0, 2.0, 3.0, INF]
    sweep = M.ScoreSweep.of(gen, imp)
    # weight 0 removes a comparison, and its score stops being a threshold
    c = sweep.curve([1, 1, 1, 1, 1], [1, 0, 1, 0])
    assert c.thresholds.tolist() == [0.0, 1.0, 2.0, 3.0, 5.0, INF]  # +inf only as the top threshold
    assert (c.n_genuine, c.n_impostor, c.n_distinct) == (5, 2, 6)
    assert c.fm.tolist() == [2, 1, 1, 1, 0, 0] and c.fnm.tolist() == [1, 1, 2, 4, 4, 5]
    # genuine-only weights: impostors count once each
    c = sweep.curve([0, 3, 0, 0, 0], None)
    assert (c.n_genuine, c.n_impostor) == (3, 4)
    assert c.fnm.tolist() == [0, 0, 3, 3] and c.thresholds.tolist() == [0.0, 2.0, 3.0, INF]
    assert sweep.curve().eer() == M.error_curve(gen, imp).eer()


@pytest.mark.parametrize("weights, message", [
    ([1, -1], ">= 0"),
    ([1.5, 1], "whole numbers"),
    ([1], "shape"),
    (["a", "b"], "integers"),
])
def test_bad_weights_are_refused(weights, message):
    with pytest.raises(ValueError, match=message):
        M.error_curve([1.0, 2.0], [0.0], genuine_weights=weights)


def test_curve_monotone_and_orders():
    for _, gen, imp in random_cases(10, seed=3):
        det = M.det_curve(gen, imp)
        assert np.all(np.diff(det.thresholds) > 0)
        assert np.all(np.diff(det.fmr) <= 0)
        assert np.all(np.diff(det.fnmr) >= 0)
        roc = M.roc_curve(gen, imp)
        assert np.all(np.diff(roc.thresholds) < 0)
        assert np.all(np.diff(roc.fmr) >= 0)
        assert np.all(np.diff(roc.tmr) >= 0)
        np.testing.assert_array_equal(roc.fmr, det.fmr[::-1])
        np.testing.assert_array_equal(roc.tmr, 1 - det.fnmr[::-1])
        assert det.thresholds[-1] == INF
        # fields can be read by name too
        assert det["fmr"] is det.fmr and roc["tmr"] is roc.tmr
        assert det.keys() == ("thresholds", "fmr", "fnmr")
        with pytest.raises(KeyError):
            det["auc"]


# ---------------------------------------------------------------------------------
# Hand-computed cases
# ---------------------------------------------------------------------------------


def test_hand_case_ties():
    # gen = 3 5 5 7, imp = 1 3 3 5; thresholds 1 3 5 7 +inf
    #   t     FMR (imp>=t)   FNMR (gen<t)
    #   1     4/4            0
    #   3     3/4            0
    #   5     1/4            1/4   (tie at 5: impostor 5 accepted, genuine 5s accepted)
    #   7     0              3/4
    #   inf   0              1
    # t1 = t2 = 5 -> interval [1/4, 1/4], EER 0.25.
    # ZeroFMR: FMR = 0 first at t = 7 -> FNMR 3/4. ZeroFNMR: FNMR = 0 last at t = 3 -> FMR 3/4.
    # FNMR at FMR <= 0.25 (= 1/N, resolvable): t = 5 -> 1/4; at FMR <= 0.5: t = 5 -> 1/4.
    # FMR100: 0.01 < 1/4 -> unresolvable.
    # AUC: g=3: 1 win + 2 ties -> 2; g=5: 3 + 0.5 (x2); g=7: 4 -> 13/16.
    gen, imp = [3, 5, 5, 7], [1, 3, 3, 5]
    e = M.eer(gen, imp)
    assert (e.eer_low, e.eer_high, e.eer, e.t1, e.t2) == (0.25, 0.25, 0.25, 5.0, 5.0)
    assert M.zero_fmr(gen, imp).value == 0.75
    assert M.zero_fmr(gen, imp).threshold == 7.0
    assert M.zero_fnmr(gen, imp).value == 0.75
    assert M.zero_fnmr(gen, imp).threshold == 3.0
    assert M.fnmr_at_fmr(gen, imp, 0.25).value == 0.25
    assert M.fnmr_at_fmr(gen, imp, 0.5).value == 0.25
    op = M.fmr100(gen, imp)
    assert op.value is None and not op.resolvable and "unresolvable" in op.reason
    assert op.n_impostor == 4
    assert M.roc_auc(gen, imp) == 13 / 16
    det = M.det_curve(gen, imp)
    assert det.thresholds.tolist() == [1, 3, 5, 7, INF]
    assert det.fmr.tolist() == [1, 0.75, 0.25, 0, 0]
    assert det.fnmr.tolist() == [0, 0, 0.25, 0.75, 1]


def test_hand_case_wide_interval_tie_of_sums_picks_t1():
    # gen = 2 2 2 5, imp = 0 2 2 2; thresholds 0 2 5 inf
    #   t=0: FMR 1, FNMR 0;  t=2: FMR 3/4, FNMR 0;  t=5: FMR 0, FNMR 3/4;  inf: 0, 1
    # t1 = 2, t2 = 5; sums 3/4 and 3/4 tie -> "<=" takes t1: [FNMR(t1), FMR(t1)] = [0, 3/4].
    e = M.eer([2, 2, 2, 5], [0, 2, 2, 2])
    assert (e.t1, e.t2, e.threshold) == (2.0, 5.0, 2.0)
    assert (e.eer_low, e.eer_high, e.eer) == (0.0, 0.75, 0.375)


def test_hand_case_interval_from_t1():
    # gen = 2 2 2 5, imp = 0 0 2 2: t=2: FMR 1/2, FNMR 0; t=5: FMR 0, FNMR 3/4
    # sums 1/2 < 3/4 -> [0, 1/2], EER 1/4.
    e = M.eer([2, 2, 2, 5], [0, 0, 2, 2])
    assert (e.t1, e.t2, e.threshold) == (2.0, 5.0, 2.0)
    assert (e.eer_low, e.eer_high, e.eer) == (0.0, 0.5, 0.25)


def test_hand_case_interval_from_t2():
    # gen = 2 5 5 5, imp = 0 2 2 2: t=2: FMR 3/4, FNMR 0; t=5: FMR 0, FNMR 1/4
    # sums 3/4 > 1/4 -> [FMR(t2), FNMR(t2)] = [0, 1/4], EER 1/8.
    e = M.eer([2, 5, 5, 5], [0, 2, 2, 2])
    assert (e.t1, e.t2, e.threshold) == (2.0, 5.0, 5.0)
    assert (e.eer_low, e.eer_high, e.eer) == (0.0, 0.25, 0.125)


def test_hand_case_all_equal_scores():
    # gen = imp = 5 5: t=5: FMR 1, FNMR 0; t=inf: FMR 0, FNMR 1.
    # t1 = 5, t2 = inf, sums 1 and 1 -> [0, 1], EER 0.5. ZeroFMR 1, ZeroFNMR 1, AUC 0.5.
    e = M.eer([5, 5], [5, 5])
    assert (e.t1, e.t2, e.eer_low, e.eer_high, e.eer) == (5.0, INF, 0.0, 1.0, 0.5)
    assert M.zero_fmr([5, 5], [5, 5]).value == 1.0
    assert M.zero_fmr([5, 5], [5, 5]).threshold == INF
    assert M.zero_fnmr([5, 5], [5, 5]).value == 1.0
    assert M.roc_auc([5, 5], [5, 5]) == 0.5


def test_hand_case_perfect_separation():
    # gen = 2 3, imp = 0 1: t=0: 1,0; t=1: 1/2,0; t=2: 0,0; t=3: 0,1/2; inf: 0,1
    # t1 = 2 (largest with FNMR <= FMR: 0 <= 0), t2 = 2 -> EER 0.
    e = M.eer([2, 3], [0, 1])
    assert (e.t1, e.t2, e.eer) == (2.0, 2.0, 0.0)
    assert M.zero_fmr([2, 3], [0, 1]).value == 0.0
    assert M.zero_fnmr([2, 3], [0, 1]).value == 0.0
    assert M.roc_auc([2, 3], [0, 1]) == 1.0
    # reversed (a distance passed as a similarity): EER 1, AUC 0
    e = M.eer([0, 1], [2, 3])
    assert (e.eer_low, e.eer_high) == (1.0, 1.0)
    assert M.roc_auc([0, 1], [2, 3]) == 0.0


def test_b_set_45_impostors():
    # FVC set B: 280 genuine, 45 impostor comparisons. 1/45 = 0.0222 > 0.01 > 0.001:
    # FMR100 and FMR1000 cannot be resolved; ZeroFMR can.
    rng = np.random.default_rng(0)
    gen = rng.integers(20, 100, 280).astype(float)
    imp = np.arange(45, dtype=float)  # 0 .. 44
    for op in (M.fmr100(gen, imp), M.fmr1000(gen, imp), M.fmr10000(gen, imp)):
        assert op.value is None and op.threshold is None
        assert op.n_impostor == 45 and op.n_genuine == 280
        assert "1/45" in op.reason
    z = M.zero_fmr(gen, imp)
    # FMR = 0 first at the smallest score above 44: FNMR = share of genuine < that.
    above = gen[gen > 44].min()
    assert z.value == np.count_nonzero(gen < above) / 280
    assert z.threshold == above
    # an FMR target of exactly 1/45 is resolvable (one false match allowed)
    assert M.fnmr_at_fmr(gen, imp, 1 / 45).value is not None


def test_b_like_2880_impostors_hand_computed():
    # imp = 0, 1, ..., 2879 (2,880 impostors); gen = 2850.5 2851.5 2852 2860 3000.
    # FMR(t) = #{imp >= t} / 2880.
    # FMR100: at most floor(28.8) = 28 false matches -> imp >= t must be {2852..2879}:
    #   smallest candidate t with that is 2851.5 (a genuine score): FMR 28/2880,
    #   FNMR = #{gen < 2851.5} / 5 = 1/5.
    # FMR1000: at most floor(2.88) = 2 -> imp {2878, 2879}: t = 2878,
    #   FNMR = #{2850.5, 2851.5, 2852, 2860} / 5 = 4/5.
    # FMR10000: 1e-4 < 1/2880 -> unresolvable.
    # ZeroFMR: t = 3000 (first candidate above 2879) -> FNMR 4/5.
    # ZeroFNMR: largest t with FNMR = 0 is 2850.5 -> FMR = #{2851..2879} / 2880 = 29/2880.
    imp = np.arange(2880, dtype=float)
    gen = np.array([2850.5, 2851.5, 2852, 2860, 3000])
    op = M.fmr100(gen, imp)
    assert (op.value, op.threshold, op.rate_at_threshold) == (0.2, 2851.5, 28 / 2880)
    op = M.fmr1000(gen, imp)
    assert (op.value, op.threshold, op.rate_at_threshold) == (0.8, 2878.0, 2 / 2880)
    op = M.fmr10000(gen, imp)
    assert op.value is None and "unresolvable" in op.reason and op.n_impostor == 2880
    assert (M.zero_fmr(gen, imp).value, M.zero_fmr(gen, imp).threshold) == (0.8, 3000.0)
    assert M.zero_fnmr(gen, imp).value == 29 / 2880
    assert M.zero_fnmr(gen, imp).threshold == 2850.5
    r = M.compute_metrics(np.concatenate([gen, imp]), np.r_[np.ones(5, bool), np.zeros(2880, bool)])
    ops = r["operating_points"]
    assert r["fmr100"] == 0.2 and ops["fmr100"]["value"] == 0.2
    assert r["fnmr_at_fmr"]["1e-2"]["value"] == 0.2
    assert r["fmr1000"] == 0.8 and ops["fmr1000"]["value"] == 0.8
    assert r["fnmr_at_fmr"]["1e-3"]["value"] == 0.8
    assert r["fmr10000"] is None and ops["fmr10000"]["value"] is None
    assert r["fnmr_at_fmr"]["1e-4"]["value"] is None
    assert ops["fmr10000"]["reason"].startswith("unresolvable")
    assert ops["fmr10000"]["n_impostor"] == 2880


def test_fmr_targets_exactly_one_over_n():
    # 1e-2 * 100, 1e-3 * 1000, 1e-4 * 10000 are exactly one allowed false match.
    for n, fn in ((100, M.fmr100), (1000, M.fmr1000), (10000, M.fmr10000)):
        imp = np.arange(n, dtype=float)
        gen = np.array([n - 2.5, n - 1.0, n + 5.0])
        op = fn(gen, imp)
        # one false match allowed: t = n - 1 (only impostor n-1 accepted; at n - 2 and
        # n - 2.5 two are), FNMR = #{n - 2.5} / 3 = 1/3
        assert (op.value, op.threshold, op.rate_at_threshold) == (1 / 3, n - 1.0, 1 / n)
        assert fn(gen, imp[:-1]).value is None  # n - 1 impostors: unresolvable


def test_fnmr_at_fmr_validation_and_empty():
    with pytest.raises(ValueError):
        M.fnmr_at_fmr([1, 2], [0, 1], -0.1)
    with pytest.raises(ValueError):
        M.fnmr_at_fmr([1, 2], [0, 1], 1.5)
    with pytest.raises(ValueError):
        M.eer([], [0, 1])
    with pytest.raises(ValueError):
        M.eer([1, 2], [])
    with pytest.raises(ValueError):
        M.roc_auc([], [1])
    with pytest.raises(ValueError):
        M.eer([1, np.nan], [0])
    op = M.fnmr_at_fmr([1, 2], [], 0.01)
    assert op.value is None and op.reason == "no impostor scores"
    op = M.zero_fnmr([], [1, 2])
    assert op.value is None and op.reason == "no genuine scores"
    op = M.zero_fmr([], [1, 2])
    assert op.value is None and op.reason == "no genuine scores"


def test_n_distinct_scores():
    assert M.n_distinct_scores([1, 1, 2, -INF, INF, INF, 0.0, -0.0]) == 5
    assert M.n_distinct_scores([]) == 0


# ---------------------------------------------------------------------------------
# Failures (FVC rules)
# ---------------------------------------------------------------------------------


def test_apply_failures_encoding():
    scores = [0.5, np.nan, 0.7, 0.2, np.nan, 0.9]
    genuine = [True, True, True, False, False, False]
    status = ["ok", "failed", "enrol_failed", "ok", "failed", "enrol_failed"]
    out = M.apply_failures(scores, genuine, status)
    assert out.tolist() == [0.5, -INF, -INF, 0.2, INF, -INF]
    assert M.apply_failures(scores[:1], genuine[:1], None).tolist() == [0.5]
    out = M.apply_failures([0.5, 0.6], [True, False], ["enrol_failed"] * 2, ghost_score=0.0)
    assert out.tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="NaN"):
        M.apply_failures([np.nan], [True], ["ok"])
    with pytest.raises(ValueError, match="unknown"):
        M.apply_failures([0.1], [True], ["oops"])
    with pytest.raises(ValueError):
        M.apply_failures([0.1, 0.2], [True], ["ok", "ok"])
    with pytest.raises(ValueError):
        M.apply_failures([0.1], [True], ["ok", "ok"])


def test_failed_impostor_is_false_match_at_every_threshold():
    # gen = 10 11 (perfectly separated from the finite impostors), imp = 1 2 +inf.
    # thresholds 1 2 10 11 inf: FMR 1 2/3 1/3 1/3 1/3, FNMR 0 0 0 1/2 1.
    # FMR never reaches 0 -> ZeroFMR = 1.0 (unattainable), FMR100 unresolvable (N=3).
    # t1 = 10, t2 = 11, sums 1/3 < 5/6 -> [0, 1/3], EER 1/6.
    gen, imp = [10.0, 11.0], [1.0, 2.0, INF]
    det = M.det_curve(gen, imp)
    assert det.fmr.tolist() == [1, 2 / 3, 1 / 3, 1 / 3, 1 / 3]
    assert det.fmr.min() == 1 / 3
    z = M.zero_fmr(gen, imp)
    assert z.value == 1.0 and z.threshold is None and z.rate_at_threshold == 1 / 3
    assert "unattainable" in z.reason
    e = M.eer(gen, imp)
    assert (e.t1, e.t2, e.eer_low, e.eer_high, e.eer) == (10.0, 11.0, 0.0, 1 / 3, 1 / 6)
    # with 200 impostors one +inf stays within FMR <= 1 % (2 false matches allowed)
    imp = np.r_[np.arange(199.0), INF]
    gen = np.array([198.5, 300.0])
    op = M.fmr100(gen, imp)
    # at most 2 false matches: the +inf one plus imp 198 -> t = 198, FNMR 0
    assert (op.value, op.threshold) == (0.0, 198.0)
    assert M.zero_fmr(gen, imp).value == 1.0
    # 3 +inf impostors out of 200 exceed 1 % at every threshold
    imp[-3:] = INF
    op = M.fmr100(gen, imp)
    assert op.value == 1.0 and op.threshold is None and "unattainable" in op.reason


def test_failed_genuine_is_false_non_match_at_every_threshold():
    # gen = -inf 5 6, imp = 0 1: the -inf genuine is rejected even at the lowest threshold
    gen, imp = [-INF, 5.0, 6.0], [0.0, 1.0]
    det = M.det_curve(gen, imp)
    assert det.thresholds.tolist() == [0, 1, 5, 6, INF]
    assert det.fnmr.tolist() == [1 / 3, 1 / 3, 1 / 3, 2 / 3, 1]
    z = M.zero_fnmr(gen, imp)
    assert z.value == 1.0 and z.threshold is None and "unattainable" in z.reason
    # ZeroFMR: first FMR = 0 at t = 5 -> FNMR 1/3
    assert M.zero_fmr(gen, imp).value == 1 / 3


def test_ghost_impostor_is_correct_rejection():
    # a ghost impostor comparison (-inf) is rejected at every threshold
    det = M.det_curve([5.0, 6.0], [-INF, 1.0])
    # thresholds 1 5 6 inf (no -inf threshold): FMR 1/2 0 0 0, never 1
    assert det.thresholds.tolist() == [1.0, 5.0, 6.0, INF]
    assert det.fmr.tolist() == [0.5, 0.0, 0.0, 0.0]


def test_compute_metrics_with_failures_hand_computed():
    # Genuine: ok 0.9 0.8 0.6; one failed comparison; one with a ghost template.
    # Impostor: ok 0.1 0.2 0.3 0.7; one failed comparison; one with a ghost template.
    # Encoded: gen = 0.9 0.8 0.6 -inf -inf (5); imp = 0.1 0.2 0.3 0.7 +inf -inf (6).
    #   t     FMR   FNMR
    #   0.1   5/6   2/5
    #   0.2   4/6   2/5
    #   0.3   3/6   2/5   <- t1 (largest FNMR <= FMR), sum 0.9
    #   0.6   2/6   2/5   <- t2 (smallest FNMR >= FMR), sum 11/15 < 0.9 -> interval from t2
    #   0.7   2/6   3/5
    #   0.8   1/6   3/5
    #   0.9   1/6   4/5
    #   inf   1/6   1
    # EER interval [1/3, 2/5], EER 11/30. ZeroFMR, ZeroFNMR unattainable -> 1.0.
    # EER* (ok only): gen 0.9 0.8 0.6, imp 0.1 0.2 0.3 0.7:
    #   FMR 1 3/4 1/2 1/4 1/4 0 0 0, FNMR 0 0 0 0 1/3 1/3 2/3 1 (same thresholds)
    #   t1 = 0.6 (sum 1/4), t2 = 0.7 (sum 7/12) -> [0, 1/4], EER* 1/8.
    # AUC: 30 pairs: 5 + 5 + 4 wins, two -inf/-inf ties -> 15/30.
    scores = [0.9, 0.8, 0.6, np.nan, 0.95, 0.1, 0.2, 0.3, 0.7, np.nan, 0.99]
    genuine = [True] * 5 + [False] * 6
    status = ["ok"] * 3 + ["failed", "enrol_failed"] + ["ok"] * 4 + ["failed", "enrol_failed"]
    r = M.compute_metrics(scores, genuine, status)
    json.dumps(r, allow_nan=False)
    assert r["n_genuine"] == 5 and r["n_impostor"] == 6
    assert r["n_distinct_scores"] == 9
    assert r["eer_low"] == 1 / 3 and r["eer_high"] == 2 / 5
    assert r["eer"] == pytest.approx(11 / 30, abs=1e-15)
    assert (r["eer_t1"], r["eer_t2"], r["eer_threshold"]) == (0.3, 0.6, 0.6)
    assert r["eer_reason"] is None
    ops = r["operating_points"]
    assert r["zero_fmr"] == 1.0 and "unattainable" in ops["zero_fmr"]["reason"]
    assert r["zero_fnmr"] == 1.0 and "unattainable" in ops["zero_fnmr"]["reason"]
    assert r["fmr100"] is None and "unresolvable" in ops["fmr100"]["reason"]
    assert r["auc"] == 0.5
    assert (r["rej_ngra"], r["rej_nira"]) == (1, 1)
    assert r["n_enrol_failed_comparisons"] == 2
    assert (r["n_enrol_failed_genuine"], r["n_enrol_failed_impostor"]) == (1, 1)
    star = r["eer_star"]
    assert (star["eer_low"], star["eer_high"], star["eer"]) == (0.0, 0.25, 0.125)
    assert (star["t1"], star["t2"], star["threshold"]) == (0.6, 0.7, 0.6)
    assert (star["n_genuine"], star["n_impostor"], star["reason"]) == (3, 4, None)
    # the star metrics equal the metrics of the ok comparisons alone
    r_ok = M.compute_metrics([0.9, 0.8, 0.6, 0.1, 0.2, 0.3, 0.7], [1, 1, 1, 0, 0, 0, 0])
    assert r_ok["eer"] == star["eer"] and r_ok["rej_ngra"] == 0
    assert r_ok["eer_star"]["eer"] == r_ok["eer"]


def test_compute_metrics_keys_json_and_distance():
    rng = np.random.default_rng(5)
    gen, imp = rng.normal(2, 1, 300), rng.normal(0, 1, 3000)
    scores = np.r_[gen, imp]
    mask = np.r_[np.ones(300, bool), np.zeros(3000, bool)]
    r = M.compute_metrics(scores, mask)
    text = json.dumps(r, allow_nan=False)
    assert json.loads(text) == r
    expected = {
        "n_genuine", "n_impostor", "n_distinct_scores",
        "eer", "eer_low", "eer_high", "eer_t1", "eer_t2", "eer_threshold", "eer_reason",
        "fmr100", "fmr1000", "fmr10000", "zero_fmr", "zero_fnmr", "operating_points",
        "fnmr_at_fmr", "auc", "rej_ngra", "rej_nira", "n_enrol_failed_comparisons",
        "n_enrol_failed_genuine", "n_enrol_failed_impostor", "eer_star",
    }
    assert set(r) == expected
    assert set(r["eer_star"]) == {"eer", "eer_low", "eer_high", "t1", "t2", "threshold",
                                  "n_genuine", "n_impostor", "reason"}
    assert set(r["operating_points"]) == {"fmr100", "fmr1000", "fmr10000", "zero_fmr",
                                          "zero_fnmr"}
    assert set(r["fnmr_at_fmr"]) == {"1e-2", "1e-3", "1e-4"}
    op_keys = {"value", "target", "threshold", "rate_at_threshold", "n_genuine", "n_impostor",
               "reason"}
    for k in ("fmr100", "fmr1000", "fmr10000", "zero_fmr", "zero_fnmr"):
        assert set(r["operating_points"][k]) == op_keys
    ops = r["operating_points"]
    assert ops["fmr100"] == r["fnmr_at_fmr"]["1e-2"]
    assert ops["fmr1000"] == r["fnmr_at_fmr"]["1e-3"]
    assert r["fmr100"] == ops["fmr100"]["value"] is not None
    assert r["fmr10000"] is None  # 1e-4 < 1/3000
    assert ops["fmr10000"]["n_impostor"] == 3000 and "1/3000" in ops["fmr10000"]["reason"]
    assert r["n_distinct_scores"] == 3300
    e = M.eer(gen, imp)
    assert r["eer"] == e.eer and r["auc"] == M.roc_auc(gen, imp)
    # a distance matcher: same metrics from the negated scores
    d = M.compute_metrics(-scores, mask, higher_is_better=False)
    for k in ("eer", "eer_low", "eer_high", "auc", "fmr100", "fmr1000", "zero_fmr"):
        assert d[k] == r[k]
    # thresholds are reported on the similarity scale (negated distances)
    assert d["operating_points"] == r["operating_points"]
    assert M.as_similarity([1.0, -2.0], higher_is_better=False).tolist() == [-1.0, 2.0]
    assert M.as_similarity([1.0, -2.0], higher_is_better=True).tolist() == [1.0, -2.0]
    # infinite thresholds are written as strings
    r = M.compute_metrics([5, 5, 5, 5], [1, 1, 0, 0])
    assert r["eer_t2"] == "inf" and float(r["eer_t2"]) == INF
    json.dumps(r, allow_nan=False)


def test_compute_metrics_empty_and_all_failed():
    r = M.compute_metrics([0.5, 0.6], [True, True])
    json.dumps(r, allow_nan=False)
    assert r["n_impostor"] == 0 and r["eer"] is None and r["eer_reason"] == "no impostor scores"
    assert r["auc"] is None
    assert r["fmr100"] is None
    assert r["operating_points"]["fmr100"]["reason"] == "no impostor scores"
    assert r["zero_fmr"] is None and r["eer_star"]["reason"] == "no impostor scores"
    r = M.compute_metrics([np.nan, 0.1, 0.2], [True, False, False], ["failed", "ok", "ok"])
    assert r["eer"] is not None  # the failed genuine counts as an error
    # encoded gen = -inf, imp = 0.1 0.2: FMR 1 1/2 0, FNMR 1 1 1 -> t1 = t2 = 0.1, [1, 1]
    assert (r["eer_low"], r["eer_high"], r["eer"]) == (1.0, 1.0, 1.0)
    assert r["eer_star"]["eer"] is None and r["eer_star"]["reason"] == "no genuine scores"
    assert r["rej_ngra"] == 1 and r["eer_star"]["n_genuine"] == 0
    with pytest.raises(ValueError):
        M.compute_metrics([np.nan, 0.1], [True, False])
    with pytest.raises(ValueError):
        M.compute_metrics([0.2, 0.1], [True, False], ["ok", "bad"])


def test_all_genuine_failed_eer():
    # gen = -inf (failed), imp = 0.1 0.2: thresholds 0.1 0.2 inf, FMR 1 1/2 0, FNMR 1 1 1.
    #   FNMR <= FMR only at 0.1 (1 <= 1) -> t1 = 0.1; FNMR >= FMR everywhere -> t2 = 0.1.
    #   interval [FNMR(t1), FMR(t1)] = [1, 1], EER 1.
    e = M.eer([-INF], [0.1, 0.2])
    assert (e.t1, e.t2, e.eer_low, e.eer_high) == (0.1, 0.1, 1.0, 1.0)
    # all scores -inf: the only threshold is +inf: FMR 0, FNMR 1; no t1 -> t2 interval
    e = M.eer([-INF], [-INF])
    assert (e.t1, e.t2, e.eer_low, e.eer_high, e.eer) == (None, INF, 0.0, 1.0, 0.5)


# ---------------------------------------------------------------------------------
# Cross-check with pyeer
# ---------------------------------------------------------------------------------

pyeer_info = pytest.importorskip("pyeer.eer_info")
pyeer_stats = pytest.importorskip("pyeer.eer_stats")


def _pyeer(gen, imp):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pyeer_info.get_eer_stats(list(map(float, gen)), list(map(float, imp)))


def check_against_pyeer(gen, imp, counters):
    st = _pyeer(gen, imp)
    curve = M.error_curve(gen, imp)
    ng, ni = len(gen), len(imp)
    # Same >= / < rule and tie handling: pyeer's curve is ours without the +inf threshold.
    np.testing.assert_array_equal(np.asarray(st.thrs), curve.thresholds[:-1])
    np.testing.assert_array_equal(st.fmr, curve.fmr[:-1])
    np.testing.assert_array_equal(st.fnmr, curve.fnmr[:-1])

    e = curve.eer()
    if st.fmr[-1] > st.fnmr[-1]:
        # pyeer finds no t2 among the scores: it returns 1, 1, 1
        counters["eer_no_t2"] += 1
        assert (st.eer, st.eer_low, st.eer_high) == (1, 1, 1)
        assert e.t2 == INF
    else:
        i1 = int(np.flatnonzero(curve.thresholds == e.t1)[0])
        i2 = int(np.flatnonzero(curve.thresholds == e.t2)[0])
        s1 = int(curve.fnm[i1]) * ni + int(curve.fm[i1]) * ng
        s2 = int(curve.fm[i2]) * ng + int(curve.fnm[i2]) * ni
        if s1 == s2 and i1 != i2:
            # float rounding may make pyeer take the t2 interval on an exact tie
            counters["eer_sum_tie"] += 1
            assert st.eer == pytest.approx(e.eer, abs=1e-15)
            alt = (float(curve.fmr[i2]), float(curve.fnmr[i2]))
            assert (st.eer_low, st.eer_high) in {(e.eer_low, e.eer_high), alt}
            if (st.eer_low, st.eer_high) == alt and alt != (e.eer_low, e.eer_high):
                counters["eer_rounding_differs"] += 1
        else:
            counters["eer_equal"] += 1
            assert (st.eer, st.eer_low, st.eer_high) == (e.eer, e.eer_low, e.eer_high)

    # FMR100 / FMR1000: pyeer takes the point whose FMR is nearest to the target.
    for target, value in ((0.01, st.fmr100), (0.001, st.fmr1000)):
        ours = curve.fnmr_at_fmr(target)
        idx, _ = pyeer_stats.get_fmr_op(st.fmr, st.fnmr, target)
        if ours.value is None:
            counters["op_unresolvable"] += 1
            assert isinstance(value, float)  # pyeer always gives a number
        elif st.fmr[idx] <= target:
            counters["op_equal"] += 1
            assert value == ours.value
        else:
            counters["op_nearest_above"] += 1
            assert value <= ours.value

    # ZeroFMR
    z = curve.zero_fmr().value
    if st.fmr.min() == 0:
        assert st.fmr0 == z
    else:
        # The top score is an impostor score: no FMR = 0 among pyeer's thresholds, and
        # pyeer reports the lowest FNMR at the smallest non-zero FMR instead.
        assert z == 1.0
        first = int(np.flatnonzero(st.fmr == st.fmr.min())[0])
        assert st.fmr0 == st.fnmr[first]
        if st.fmr0 < 1.0:
            counters["fmr0_differs"] += 1

    # ZeroFNMR agrees for finite scores
    assert st.fnmr0 == curve.zero_fnmr().value

    # AUC: pyeer misses the last segment, from the top score's point to (0, 0)
    missing = st.fmr[-1] * (1 - st.fnmr[-1]) / 2
    assert curve.auc() == pytest.approx(st.auc + missing, abs=1e-12)


def test_random_against_pyeer():
    from collections import Counter

    counters: Counter = Counter()
    finite = tuple(k for k in KINDS if k != "with_inf")
    for _, gen, imp in random_cases(40, seed=99, kinds=finite):
        check_against_pyeer(gen, imp, counters)
    # larger integer cases, so that FMR100 / FMR1000 are resolvable
    rng = np.random.default_rng(11)
    for _ in range(25):
        ng, ni = int(rng.integers(20, 300)), int(rng.integers(100, 2500))
        gen = rng.integers(0, 60, ng) + int(rng.integers(0, 30))
        imp = np.minimum(rng.geometric(0.2, ni), 60)
        check_against_pyeer(gen.astype(float), imp.astype(float), counters)
    # every branch was exercised
    for key in ("eer_no_t2", "eer_equal", "op_unresolvable", "op_equal",
                "op_nearest_above", "fmr0_differs"):
        assert counters[key] > 0, (key, counters)


def test_pyeer_documented_differences_by_hand():
    # 1) all scores equal: pyeer finds no t2 and returns EER 1; here [0, 1], EER 0.5.
    st = _pyeer([5, 5], [5, 5])
    assert (st.eer, st.eer_low, st.eer_high) == (1, 1, 1)
    assert M.eer([5, 5], [5, 5]).eer == 0.5

    # 2) top score shared: gen = 1 2 3, imp = 0 3.
    #   t=0: FMR 1, FNMR 0; t=1: 1/2, 0; t=2: 1/2, 1/3; t=3: 1/2, 2/3; (ours) inf: 0, 1.
    #   EER: t1 = 2, t2 = 3, sums 5/6 vs 7/6 -> [1/3, 1/2], EER 5/12 (both agree).
    #   ZeroFMR: FMR = 0 only above 3 -> 1.0; pyeer's nearest point to FMR 0 is
    #   FMR 1/2 at t = 1 and reports FNMR 0 there.
    #   AUC: (1 + 1 + 1.5) / 6 = 7/12; pyeer 7/12 - (1/2)(1/3)/2 = 1/2.
    gen, imp = [1, 2, 3], [0, 3]
    st = _pyeer(gen, imp)
    e = M.eer(gen, imp)
    assert (e.eer_low, e.eer_high) == (1 / 3, 1 / 2) == (st.eer_low, st.eer_high)
    assert e.eer == pytest.approx(5 / 12) and st.eer == e.eer
    assert M.zero_fmr(gen, imp).value == 1.0 and st.fmr0 == 0.0
    assert M.roc_auc(gen, imp) == pytest.approx(7 / 12) and st.auc == pytest.approx(0.5)

    # 3) FMR100 nearest point: 200 impostors, 0..196 plus three at 500.
    #   FMR(300) = FMR(500) = 3/200 = 0.015 > 0.01; FMR(600) = 0.
    #   Ours: first t with FMR <= 0.01 is 600 -> FNMR = #{150, 300} / 4 = 0.5.
    #   pyeer: |0.015 - 0.01| < |0 - 0.01| -> t = 300, FNMR = #{150} / 4 = 0.25.
    imp = np.r_[np.arange(197.0), [500.0, 500.0, 500.0]]
    gen = np.array([150.0, 300.0, 600.0, 700.0])
    st = _pyeer(gen, imp)
    assert M.fmr100(gen, imp).value == 0.5 and M.fmr100(gen, imp).threshold == 600.0
    assert st.fmr100 == 0.25 and st.fmr100_th == 300.0

    # 4) 45 impostors: pyeer reports a number for FMR1000, here it is unresolvable.
    imp = np.arange(45.0)
    gen = np.arange(30.0, 90.0)
    st = _pyeer(gen, imp)
    assert isinstance(st.fmr1000, float)
    assert M.fmr1000(gen, imp).value is None

    # 5) pyeer uses -inf as a threshold, accepting a failed genuine comparison there.
    st = _pyeer([-INF, 5.0], [0.0])
    assert st.thrs[0] == -INF and st.fnmr[0] == 0.0 and st.fnmr0 == 1.0
    assert M.det_curve([-INF, 5.0], [0.0]).fnmr[0] == 0.5
    assert M.zero_fnmr([-INF, 5.0], [0.0]).value == 1.0  # unattainable


def test_pyeer_sum_tie_rounding_example():
    # gen = 1 1 2 2 5 5 6 6 7 8, imp = 0 0 1 2 2 5 5 6 6 7 (10 each)
    #   t     FMR    FNMR
    #   5     5/10   4/10   <- t1
    #   6     3/10   6/10   <- t2
    # Sums 9/10 and 9/10 tie exactly -> "<=" takes t1: [0.4, 0.5], EER 0.45.
    # pyeer adds floats: 0.4 + 0.5 = 0.9 > 0.3 + 0.6 = 0.8999999999999999, so it
    # takes t2: [0.3, 0.6], EER 0.44999999999999996.
    gen = [1, 1, 2, 2, 5, 5, 6, 6, 7, 8]
    imp = [0, 0, 1, 2, 2, 5, 5, 6, 6, 7]
    e = M.eer(gen, imp)
    assert (e.t1, e.t2, e.threshold) == (5.0, 6.0, 5.0)
    assert (e.eer_low, e.eer_high, e.eer) == (0.4, 0.5, 0.45)
    st = _pyeer(gen, imp)
    assert (st.eer_low, st.eer_high) == (0.3, 0.6)
    assert st.eer == pytest.approx(0.45, abs=1e-15) and st.eer != 0.45
    assert st.eer_th == 6.0


# ---------------------------------------------------------------------------------
# Size
# ---------------------------------------------------------------------------------


def test_one_million_impostors_need_no_loop_over_scores():
    rng = np.random.default_rng(0)
    gen = rng.normal(3, 1, 2800)
    imp = rng.normal(0, 1, 1_000_000)
    scores = np.r_[gen, imp]
    mask = np.r_[np.ones(gen.size, bool), np.zeros(imp.size, bool)]
    status = np.full(scores.size, "ok", dtype="<U12")
    status[:10] = "failed"
    status[-10:] = "enrol_failed"
    calls, r = count_python_calls(lambda: M.compute_metrics(scores, mask, status))
    # vectorised: about 300 calls; a sweep over thresholds in Python makes one or more per score
    assert calls < 10_000
    assert r["fmr10000"] is not None
    assert r["operating_points"]["fmr10000"]["n_impostor"] == 1_000_000
    assert r["rej_ngra"] == 10 and r["n_enrol_failed_impostor"] == 10
    # spot check the EER* against a direct count at its thresholds
    g, i = gen[10:], imp[:-10]
    star = r["eer_star"]
    assert star["eer_low"] in (np.mean(g < star["t1"]), np.mean(i >= star["t2"]))
