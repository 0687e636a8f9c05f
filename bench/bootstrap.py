"""Confidence intervals of the FVC indicators by a subject-level ("subsets") bootstrap.

Comparisons that share a subject are not independent: a finger that is hard to enrol or
to match makes all of its comparisons fail together. Resampling single comparisons as
if they were independent therefore gives intervals that are too narrow. Bolle, Ratha
and Pankanti ("Error analysis of pattern recognition systems: the subsets bootstrap",
Computer Vision and Image Understanding 93(1), 2004; also their *Guide to Biometrics*,
Springer 2004, ch. 16) resample the independent units instead: here the subjects
(the ``subject`` columns of a run; a finger in FVC, which has no person identifiers).

One replicate
-------------
Draw ``n`` subjects with replacement from the ``n`` subjects of the run; subject ``i``
is drawn ``c_i`` times (``c_i`` = 0, 1, 2, ...). Keep every stored comparison whose two
sides' subjects were both drawn, with a weight:

* a comparison within subject ``i`` (genuine) has weight ``c_i``: each copy of the
  subject brings its own genuine comparisons;
* a comparison between subjects ``i != j`` (impostor) has weight ``c_i * c_j``: each
  copy of ``i`` meets each copy of ``j``;
* two copies of the *same* subject are not compared with each other: such a pair
  would be a genuine comparison that the protocol never made, and inventing it (or
  counting it as an impostor) would bias FMR. A replicate therefore holds exactly the
  comparisons the protocol would have made on a set of distinct subjects with the
  drawn subjects' data (for the FVC impostor rule: ``sum_{i<j} c_i c_j`` pairs).

Failed enrolments are resampled the same way (each image of subject ``i`` weighs
``c_i``), so REJ_ENROLL varies with the subjects drawn; failed comparisons keep the
FVC encoding of :func:`bench.metrics.apply_failures` (ghost templates score ``-inf``,
failed comparisons are errors at every threshold).

Each indicator is recomputed on every replicate with weighted counts, in exact integer
arithmetic, by the same rules as :mod:`bench.metrics`; with all weights 1 the result
equals :func:`bench.metrics.compute_metrics`. The interval is the percentile interval
of the replicates. An operating point that the run cannot resolve (FMR target below
``1 / N_impostor``) gets no interval; replicates in which a resolvable point becomes
unresolvable are left out, and the number of replicates used is reported with it.

The computation is vectorised over replicates (blocks of replicates x comparisons), so
1,000 replicates of a B-set run take well under a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
from numpy.typing import ArrayLike

from bench import metrics as M

__all__ = ["INDICATORS", "Interval", "BootstrapResult", "replicate_weights", "subject_bootstrap"]

#: Indicators the bootstrap gives intervals for, in report order.
INDICATORS = ("eer", "fmr100", "fmr1000", "fmr10000", "zero_fmr", "zero_fnmr",
              "rej_enroll", "rej_match", "eer_star")

_FMR_TARGETS = {"fmr100": 1e-2, "fmr1000": 1e-3, "fmr10000": 1e-4, "zero_fmr": 0.0}
# Cap on replicates x comparisons held in memory at once (int64 elements).
_BLOCK_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class Interval:
    """A bootstrap confidence interval, or why there is none.

    ``low``/``high`` are None with a ``reason`` when the indicator cannot be resolved;
    ``n_used`` is the number of replicates in which the indicator was defined.
    """

    low: float | None
    high: float | None
    n_used: int
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "n_used": self.n_used, "reason": self.reason}


@dataclass(frozen=True)
class BootstrapResult:
    """Intervals of every indicator, with what produced them."""

    intervals: dict[str, Interval]
    n_replicates: int
    n_subjects: int
    level: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "subject-level percentile bootstrap (Bolle, Ratha, Pankanti 2004)",
            "n_replicates": self.n_replicates,
            "n_subjects": self.n_subjects,
            "level": self.level,
            "seed": self.seed,
            "intervals": {k: v.to_dict() for k, v in self.intervals.items()},
        }


# ------------------------------------------------------------------------ the sweep
@dataclass
class _Sweep:
    """What every replicate shares: comparisons grouped by distinct effective score."""

    group: np.ndarray          # per comparison: index of its distinct score value
    n_values: int
    pos: np.ndarray            # per threshold: index of the first value >= threshold
    genuine: np.ndarray
    n_thresholds: int

    @classmethod
    def build(cls, scores: np.ndarray, genuine: np.ndarray) -> "_Sweep":
        values, group = np.unique(scores, return_inverse=True)
        thresholds = values[values != -np.inf]
        if thresholds.size == 0 or thresholds[-1] != np.inf:
            thresholds = np.append(thresholds, np.inf)
        pos = np.searchsorted(values, thresholds, side="left")
        return cls(group.ravel(), int(values.size), pos, genuine, int(thresholds.size))


def _bincount_rows(group: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Row-wise ``bincount(group, weights[r])`` for an (R x N) weight matrix."""
    r = weights.shape[0]
    flat = (np.arange(r, dtype=np.int64)[:, None] * n + group[None, :]).ravel()
    out = np.bincount(flat, weights=weights.ravel().astype(np.float64), minlength=r * n)
    return np.rint(out).astype(np.int64).reshape(r, n)


def _counts(sweep: _Sweep, weights: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(fnm, fm, ng, ni)`` per replicate (R x T, R x T, R, R), in int64."""
    g = sweep.genuine
    k = sweep.n_values
    gen = np.zeros((weights.shape[0], k + 1), np.int64)
    imp = np.zeros((weights.shape[0], k + 1), np.int64)
    if g.any():
        gen[:, 1:] = _bincount_rows(sweep.group[g], weights[:, g], k)
    if (~g).any():
        imp[:, 1:] = _bincount_rows(sweep.group[~g], weights[:, ~g], k)
    np.cumsum(gen, axis=1, out=gen)  # gen[:, p] = genuine weight of the p lowest values
    np.cumsum(imp, axis=1, out=imp)
    ng, ni = gen[:, -1], imp[:, -1]
    pos = sweep.pos
    if pos.size and pos[-1] - pos[0] == pos.size - 1:  # consecutive (the usual case): a view
        fnm = gen[:, pos[0]:pos[-1] + 1]
        fm = ni[:, None] - imp[:, pos[0]:pos[-1] + 1]
    else:
        fnm = gen[:, pos]
        fm = ni[:, None] - imp[:, pos]
    return fnm, fm, ng, ni


# ----------------------------------------------------- indicators, vectorised over R
def _eer(fnm: np.ndarray, fm: np.ndarray, ng: np.ndarray, ni: np.ndarray) -> np.ndarray:
    """FVC EER per replicate (NaN where a class is empty); see ``ErrorCurve.eer``."""
    out = np.full(ng.shape, np.nan)
    ok = (ng > 0) & (ni > 0)
    if not ok.any():
        return out
    fnm, fm, ng_, ni_ = fnm[ok], fm[ok], ng[ok, None], ni[ok, None]
    neg_d = fnm * ni_ - fm * ng_  # non-decreasing along the thresholds
    t = fnm.shape[1]
    i1 = np.count_nonzero(neg_d <= 0, axis=1) - 1
    i2 = np.count_nonzero(neg_d < 0, axis=1)
    has1, has2 = i1 >= 0, i2 < t
    j1, j2 = np.clip(i1, 0, t - 1)[:, None], np.clip(i2, 0, t - 1)[:, None]
    fnm1, fm1 = np.take_along_axis(fnm, j1, 1)[:, 0], np.take_along_axis(fm, j1, 1)[:, 0]
    fnm2, fm2 = np.take_along_axis(fnm, j2, 1)[:, 0], np.take_along_axis(fm, j2, 1)[:, 0]
    ng_, ni_ = ng_[:, 0], ni_[:, 0]
    s1 = fnm1 * ni_ + fm1 * ng_
    s2 = fnm2 * ni_ + fm2 * ng_
    use1 = np.where(has1 & has2, s1 <= s2, has1)
    low = np.where(use1, fnm1 / ng_, fm2 / ni_)
    high = np.where(use1, fm1 / ni_, fnm2 / ng_)
    out[ok] = (low + high) / 2
    return out


def _fnmr_at_fmr(fnm: np.ndarray, fm: np.ndarray, ng: np.ndarray, ni: np.ndarray,
                 target: float) -> np.ndarray:
    """Lowest FNMR with FMR <= target per replicate (NaN where unresolvable)."""
    out = np.full(ng.shape, np.nan)
    allowed = np.floor(target * ni * (1 + M._TARGET_SLACK)).astype(np.int64)
    ok = (ng > 0) & (ni > 0) & ((allowed >= 1) | (target == 0))
    if not ok.any():
        return out
    idx = np.count_nonzero(fm[ok] > allowed[ok, None], axis=1)  # first fm <= allowed
    t = fm.shape[1]
    val = np.take_along_axis(fnm[ok], np.clip(idx, 0, t - 1)[:, None], 1)[:, 0] / ng[ok]
    out[ok] = np.where(idx == t, 1.0, val)
    return out


def _zero_fnmr(fnm: np.ndarray, fm: np.ndarray, ng: np.ndarray, ni: np.ndarray) -> np.ndarray:
    out = np.full(ng.shape, np.nan)
    ok = (ng > 0) & (ni > 0)
    if not ok.any():
        return out
    idx = np.count_nonzero(fnm[ok] == 0, axis=1) - 1  # last threshold with FNMR = 0
    val = np.take_along_axis(fm[ok], np.clip(idx, 0, None)[:, None], 1)[:, 0] / ni[ok]
    out[ok] = np.where(idx < 0, 1.0, val)
    return out


# ---------------------------------------------------------------------------- API
def replicate_weights(draws: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Weight of every comparison in every replicate.

    ``draws`` (R x S): how often each subject was drawn in each replicate; ``a``, ``b``:
    subject index of each comparison's two sides. A comparison within one subject weighs
    that subject's number of draws; one between two subjects the product of theirs.
    """
    draws = np.asarray(draws, dtype=np.int64)
    da, db = draws[:, a], draws[:, b]
    return np.where(a == b, da, da * db)


def _subject_index(probe_subject: ArrayLike, reference_subject: ArrayLike,
                   extra: Iterable[Any] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.asarray(probe_subject).astype(str)
    b = np.asarray(reference_subject).astype(str)
    e = np.asarray(list(extra)).astype(str)
    names, inv = np.unique(np.concatenate((a, b, e)), return_inverse=True)
    inv = inv.ravel()
    return names, inv[: a.size], inv[a.size: 2 * a.size]


def subject_bootstrap(
    scores: ArrayLike,
    genuine: ArrayLike,
    status: ArrayLike | None,
    probe_subject: ArrayLike,
    reference_subject: ArrayLike,
    *,
    enrol_subjects: ArrayLike | None = None,
    enrol_failed: ArrayLike | None = None,
    higher_is_better: bool = True,
    n_replicates: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapResult:
    """Percentile intervals of the FVC indicators by resampling subjects.

    Parameters
    ----------
    scores, genuine, status :
        As for :func:`bench.metrics.compute_metrics` (raw scores; status ``"ok"``,
        ``"enrol_failed"`` or ``"failed"``; None means all ok).
    probe_subject, reference_subject : array_like
        Subject of each side of every comparison.
    enrol_subjects, enrol_failed : array_like, optional
        One entry per enrolled-or-attempted image: its subject, and True where its
        enrolment failed. Needed for REJ_ENROLL (the FTE rate); without them that
        indicator gets no interval.
    higher_is_better : bool
        False for a distance matcher.
    n_replicates : int
        Bootstrap replicates (1,000 is customary for 95 % intervals).
    level : float
        Confidence level of the two-sided percentile interval.
    seed : int
        Seed of the random generator: the same inputs and seed give the same result.

    Returns
    -------
    BootstrapResult
        One :class:`Interval` per name in :data:`INDICATORS`. REJ_ENROLL and REJ_MATCH
        are rates (failed enrolments per attempted image; failed comparisons per
        comparison).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_replicates < 1:
        raise ValueError(f"n_replicates must be positive, got {n_replicates}")
    raw = M.as_similarity(scores, higher_is_better)
    n = raw.size
    mask = M._as_mask(genuine, n)
    enrol_bad, failed = M._status_masks(status, n)
    eff = M._encode_failures(raw, mask, enrol_bad, failed, -np.inf)
    ps, rs = np.asarray(probe_subject), np.asarray(reference_subject)
    if ps.shape != (n,) or rs.shape != (n,):
        raise ValueError(f"subject arrays must have shape ({n},), got {ps.shape} and {rs.shape}")
    have_enrol = enrol_subjects is not None and enrol_failed is not None
    e_subj = np.asarray(enrol_subjects if have_enrol else [])
    e_fail = np.asarray(enrol_failed if have_enrol else [], dtype=bool)
    if have_enrol and e_subj.shape != e_fail.shape:
        raise ValueError("enrol_subjects and enrol_failed must have the same length")
    names, a, b = _subject_index(ps, rs, e_subj)
    n_subj = names.size
    e_idx = np.searchsorted(names, e_subj.astype(str)) if have_enrol else np.empty(0, np.intp)

    sweep_all = _Sweep.build(eff, mask)
    ok = ~(enrol_bad | failed)
    sweep_ok = _Sweep.build(eff[ok], mask[ok])
    rej = failed.astype(np.int64)

    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n_subj, np.full(n_subj, 1.0 / n_subj), size=n_replicates)
    block = max(1, _BLOCK_ELEMENTS // max(n, 1))
    values: dict[str, list[np.ndarray]] = {k: [] for k in INDICATORS}
    for start in range(0, n_replicates, block):
        c = draws[start:start + block].astype(np.int64)
        w = replicate_weights(c, a, b)
        fnm, fm, ng, ni = _counts(sweep_all, w)
        values["eer"].append(_eer(fnm, fm, ng, ni))
        for name, target in _FMR_TARGETS.items():
            values[name].append(_fnmr_at_fmr(fnm, fm, ng, ni, target))
        values["zero_fnmr"].append(_zero_fnmr(fnm, fm, ng, ni))
        total = w.sum(axis=1)
        values["rej_match"].append(np.where(total > 0, (w @ rej) / np.maximum(total, 1), np.nan))
        if have_enrol:
            ce = c[:, e_idx]
            attempted = ce.sum(axis=1)
            values["rej_enroll"].append(
                np.where(attempted > 0, (ce @ e_fail.astype(np.int64)) / np.maximum(attempted, 1), np.nan))
        fnm, fm, ng, ni = _counts(sweep_ok, w[:, ok])
        values["eer_star"].append(_eer(fnm, fm, ng, ni))

    point = _point_resolvability(eff, mask, ok, have_enrol)
    alpha = (1 - level) / 2
    intervals: dict[str, Interval] = {}
    for name in INDICATORS:
        reason = point.get(name)
        if reason is not None:
            intervals[name] = Interval(None, None, 0, reason)
            continue
        v = np.concatenate(values[name]) if values[name] else np.empty(0)
        v = v[np.isfinite(v)]
        if v.size == 0:
            intervals[name] = Interval(None, None, 0, "undefined in every bootstrap replicate")
            continue
        low, high = np.quantile(v, [alpha, 1 - alpha])
        intervals[name] = Interval(float(low), float(high), int(v.size))
    return BootstrapResult(intervals, n_replicates, n_subj, level, seed)


def _point_resolvability(eff: np.ndarray, mask: np.ndarray, ok: np.ndarray,
                         have_enrol: bool) -> dict[str, str | None]:
    """Why an indicator has no interval (None when it has one), from the full data."""
    ng, ni = int(mask.sum()), int((~mask).sum())
    reasons: dict[str, str | None] = dict.fromkeys(INDICATORS)
    empty = "no genuine scores" if ng == 0 else ("no impostor scores" if ni == 0 else None)
    for name in ("eer", "zero_fmr", "zero_fnmr", *(k for k in _FMR_TARGETS if k != "zero_fmr")):
        reasons[name] = empty
    for name, target in _FMR_TARGETS.items():
        if empty is None and target > 0 and math.floor(target * ni * (1 + M._TARGET_SLACK)) < 1:
            reasons[name] = (f"unresolvable: FMR target {target:g} < 1/{ni} impostor comparisons")
    if ng + ni == 0:
        reasons["rej_match"] = "no comparisons"
    if not have_enrol:
        reasons["rej_enroll"] = "no enrolment records given"
    ng_ok, ni_ok = int((mask & ok).sum()), int((~mask & ok).sum())
    if ng_ok == 0 or ni_ok == 0:
        reasons["eer_star"] = "no genuine or no impostor comparison without failure"
    return reasons
