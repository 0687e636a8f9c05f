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

Each replicate's indicators are read from the error curve of :mod:`bench.metrics`
built with these weights (:meth:`bench.metrics.ScoreSweep.curve`: weighted counts, exact
integer arithmetic), so the EER and operating-point rules exist once; with all weights 1
the result equals :func:`bench.metrics.compute_metrics`. The scores are sorted once for
all replicates. The interval is the percentile interval of the replicates. An operating
point that the run cannot resolve (FMR target below ``1 / N_impostor``) gets no interval;
replicates in which a resolvable point becomes unresolvable are left out, and the number
of replicates used is reported with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
from numpy.typing import ArrayLike

from bench import metrics as M

__all__ = ["INDICATORS", "THRESHOLDS", "Interval", "BootstrapResult", "replicate_weights", "subject_bootstrap"]

#: Indicators the bootstrap gives intervals for, in report order.
INDICATORS = ("eer", "fmr100", "fmr1000", "fmr10000", "zero_fmr", "zero_fnmr",
              "rej_enroll", "rej_match", "eer_star")

#: Operating points whose score threshold gets an interval, in report order: the EER's
#: threshold and those of FMR100 / FMR1000 / FMR10000 (similarity thresholds, as the error
#: curve's; a distance matcher's raw threshold is their negation).
THRESHOLDS = ("eer", "fmr100", "fmr1000", "fmr10000")

#: The FVC operating points, read from the error curve (see ``ErrorCurve.fvc_points``).
_POINTS = ("fmr100", "fmr1000", "fmr10000", "zero_fmr", "zero_fnmr")
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
    #: Interval of the score threshold (similarity) of each point of :data:`THRESHOLDS`.
    thresholds: dict[str, Interval] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "subject-level percentile bootstrap (Bolle, Ratha, Pankanti 2004)",
            "n_replicates": self.n_replicates,
            "n_subjects": self.n_subjects,
            "level": self.level,
            "seed": self.seed,
            "intervals": {k: v.to_dict() for k, v in self.intervals.items()},
            "thresholds": {k: v.to_dict() for k, v in self.thresholds.items()},
        }


# ------------------------------------------------------------------- one replicate
def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else value


def _eer(curve: M.ErrorCurve) -> float:
    """The curve's EER; NaN where a class is empty."""
    return curve.eer().eer if curve.n_genuine and curve.n_impostor else math.nan


def _finite_or_nan(t: float | None) -> float:
    return t if t is not None and math.isfinite(t) else math.nan


def curve_indicators(curve: M.ErrorCurve) -> dict[str, float]:
    """EER and the FVC operating points of one (weighted) error curve, by the rules of
    :mod:`bench.metrics`, and the score thresholds where they are read (keys
    ``threshold_eer``, ``threshold_fmr100``, ...; see :data:`THRESHOLDS`); NaN where an
    indicator is undefined or unresolvable, or its threshold infinite."""
    if curve.n_genuine == 0 or curve.n_impostor == 0:
        return {name: math.nan for name in ("eer", *_POINTS, *(f"threshold_{t}" for t in THRESHOLDS))}
    e = curve.eer()
    points = curve.fvc_points()
    out = {"eer": e.eer, "threshold_eer": _finite_or_nan(e.threshold)}
    out.update({name: _nan_if_none(op.value) for name, op in points.items()})
    out.update({f"threshold_{name}": _finite_or_nan(points[name].threshold) for name in THRESHOLDS[1:]})
    return out


def replicate_indicators(sweep: M.ScoreSweep, genuine_weights: np.ndarray, impostor_weights: np.ndarray,
                         genuine_ok: np.ndarray, impostor_ok: np.ndarray) -> dict[str, float]:
    """The curve indicators and EER* of one replicate: the comparisons of ``sweep`` weighted,
    and for EER* the same weights with every comparison that a failure affected set to 0
    (``*_ok``: 1 where the comparison's status is ok, else 0)."""
    out = curve_indicators(sweep.curve(genuine_weights, impostor_weights))
    star = sweep.curve(genuine_weights * genuine_ok, impostor_weights * impostor_ok)
    out["eer_star"] = _eer(star)
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

    ok = ~(enrol_bad | failed)
    sweep = M.ScoreSweep.of(eff[mask], eff[~mask])
    ok_gen, ok_imp = ok[mask].astype(np.int64), ok[~mask].astype(np.int64)
    rej = failed.astype(np.int64)

    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n_subj, np.full(n_subj, 1.0 / n_subj), size=n_replicates)
    block = max(1, _BLOCK_ELEMENTS // max(n, 1))
    values: dict[str, list[float]] = {k: [] for k in (*INDICATORS, *(f"threshold_{t}" for t in THRESHOLDS))}
    for start in range(0, n_replicates, block):
        c = draws[start:start + block].astype(np.int64)
        w = replicate_weights(c, a, b)
        w_gen, w_imp = w[:, mask], w[:, ~mask]
        for r in range(c.shape[0]):
            for name, v in replicate_indicators(sweep, w_gen[r], w_imp[r], ok_gen, ok_imp).items():
                values[name].append(v)
        total = w.sum(axis=1)
        values["rej_match"].extend(np.where(total > 0, (w @ rej) / np.maximum(total, 1), np.nan))
        if have_enrol:
            ce = c[:, e_idx]
            attempted = ce.sum(axis=1)
            values["rej_enroll"].extend(
                np.where(attempted > 0, (ce @ e_fail.astype(np.int64)) / np.maximum(attempted, 1), np.nan))

    point = _point_resolvability(sweep.curve(), ok, mask, have_enrol)
    alpha = (1 - level) / 2

    def interval(v: list[float], reason: str | None) -> Interval:
        if reason is not None:
            return Interval(None, None, 0, reason)
        a = np.asarray(v, dtype=np.float64)
        a = a[np.isfinite(a)]
        if a.size == 0:
            return Interval(None, None, 0, "undefined in every bootstrap replicate")
        low, high = np.quantile(a, [alpha, 1 - alpha])
        return Interval(float(low), float(high), int(a.size))

    intervals = {name: interval(values[name], point.get(name)) for name in INDICATORS}
    thresholds = {name: interval(values[f"threshold_{name}"], point.get(name)) for name in THRESHOLDS}
    return BootstrapResult(intervals, n_replicates, n_subj, level, seed, thresholds)


def _point_resolvability(curve: M.ErrorCurve, ok: np.ndarray, mask: np.ndarray,
                         have_enrol: bool) -> dict[str, str | None]:
    """Why an indicator has no interval (None when it has one), from the run's own curve."""
    reasons: dict[str, str | None] = dict.fromkeys(INDICATORS)
    ng, ni = curve.n_genuine, curve.n_impostor
    if ng == 0 or ni == 0:
        empty = "no genuine scores" if ng == 0 else "no impostor scores"
        reasons.update(dict.fromkeys(("eer", *_POINTS), empty))
    else:
        reasons.update({name: op.reason for name, op in curve.fvc_points().items() if op.value is None})
    if ng + ni == 0:
        reasons["rej_match"] = "no comparisons"
    if not have_enrol:
        reasons["rej_enroll"] = "no enrolment records given"
    if not (mask & ok).any() or not (~mask & ok).any():
        reasons["eer_star"] = "no genuine or no impostor comparison without failure"
    return reasons
