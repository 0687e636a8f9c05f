"""Verification metrics under the FVC protocol: FMR/FNMR sweep, EER interval, operating
points, DET/ROC curves, AUC and the FVC rules for failures.

Everything here is a pure function of score arrays (or of an :class:`ErrorCurve` built
from them once); nothing is printed or written.

Conventions
-----------
Scores are *similarities* (higher = more similar); a distance matcher's scores are
negated first with :func:`as_similarity`. For a threshold ``t``::

    FMR(t)  = share of impostor scores >= t      (false matches)
    FNMR(t) = share of genuine scores  <  t      (false non-matches)

(Maio et al., IEEE TPAMI 24(3), 2002; Cappelli et al., IEEE TPAMI 28(1), 2006.)

Candidate thresholds are every distinct score except ``-inf``, plus ``+inf`` (which
stands for "a value above every finite score"). Both ends are chosen so that the FVC
failure rules hold at *every* threshold:

* a score of ``-inf`` (failed genuine comparison, or a comparison with a ghost template
  from a failed enrolment) is below every threshold, so it is rejected everywhere;
* a score of ``+inf`` (failed impostor comparison) is ``>=`` every threshold, ``+inf``
  included, so it is a false match everywhere. FMR then never reaches 0.

Rates are computed from integer counts; every comparison between rates (EER crossing,
interval choice, FMR targets) is done exactly in integer arithmetic.

Definitions
-----------
EER interval
    ``t1`` = largest threshold with FNMR <= FMR, ``t2`` = smallest threshold with
    FNMR >= FMR. If ``FNMR(t1) + FMR(t1) <= FMR(t2) + FNMR(t2)`` the interval
    ``[EERlow, EERhigh]`` is ``[FNMR(t1), FMR(t1)]``, otherwise ``[FMR(t2), FNMR(t2)]``;
    ``EER = (EERlow + EERhigh) / 2``. (If one of ``t1``/``t2`` does not exist, which
    can only happen with infinite scores, the other one is used.)
FNMR at FMR = x (FMR100, FMR1000, FMR10000 for x = 1e-2, 1e-3, 1e-4)
    The lowest FNMR over thresholds with ``FMR(t) <= x``. Not resolvable by the data
    when ``x < 1 / N_impostor`` (the only attainable FMR <= x is then 0): the result
    carries ``value=None`` and a reason.
ZeroFMR
    The lowest FNMR over thresholds with FMR = 0 (always resolvable).
ZeroFNMR
    The lowest FMR over thresholds with FNMR = 0.
Unattainable operating points
    When no threshold meets the constraint (only possible with infinite scores: a
    ``+inf`` impostor score keeps FMR > 0, a ``-inf`` genuine score keeps FNMR > 0),
    the error rate is reported as 1.0 (the worst value), with ``threshold=None`` and a
    remark in ``reason``.
AUC
    Area under the complete ROC step curve (FMR, 1 - FNMR), closed by (1, 1) below the
    lowest score and (0, 0) above the highest, by the trapezoid rule. It equals
    ``P(genuine > impostor) + 0.5 * P(genuine == impostor)`` exactly.

Failures (FVC rules)
--------------------
:func:`apply_failures` encodes the status of each comparison: a comparison involving a
template whose enrolment failed ("ghost" template) gets the lowest possible score
(``-inf``: a false non-match if genuine, a correct rejection if impostor); a comparison
that itself failed is an error at every threshold (genuine ``-inf``, impostor
``+inf``) and is counted in REJ_NGRA / REJ_NIRA. EER* is the EER of the comparisons that
no failure affected.

Relation to pyeer 0.5.6 (``pyeer.eer_info.get_eer_stats``)
-----------------------------------------------------------
pyeer uses the same ``>=`` / ``<`` rule (ties handled exactly) and the same EER
interval rule, but its thresholds are the distinct scores only, without a threshold
above the maximum. It differs from this module in these cases:

* EER: when ``FMR(max score) > FNMR(max score)`` (e.g. all scores equal, or the top
  score shared by genuine and impostor comparisons with enough impostors on it) pyeer
  finds no ``t2``, warns and returns ``eer = eer_low = eer_high = 1``; here ``t2`` is
  the threshold above the maximum and the interval is computed normally (all scores
  equal gives ``[0, 1]``, EER 0.5).
* EER: pyeer decides the interval by comparing float sums; when the two sums are
  mathematically equal, rounding may make it pick the ``t2`` interval where the exact
  rule picks ``t1``. The EER (midpoint) is the same up to rounding; low/high differ.
  Example: genuine 1 1 2 2 5 5 6 6 7 8, impostor 0 0 1 2 2 5 5 6 6 7: exact sums
  0.4 + 0.5 = 0.3 + 0.6, so ``[0.4, 0.5]`` here; pyeer gets ``0.9 > 0.8999999999999999``
  and reports ``[0.3, 0.6]``.
* ``fmr0`` (ZeroFMR): pyeer takes the threshold whose FMR is nearest to 0. When the
  top score is an impostor score, no threshold of pyeer has FMR = 0 and it reports the
  lowest FNMR at the smallest non-zero FMR (e.g. 0 when the top score is shared by a
  genuine and an impostor comparison); here ZeroFMR is then the FNMR above the top
  score, i.e. 1.0.
* ``fmr100`` / ``fmr1000``: pyeer takes the threshold whose FMR is *nearest* to the
  target (``argmin |FMR - x|``), which may have FMR > x, and it never declares a
  point unresolvable. Both agree whenever pyeer's nearest point has FMR <= x.
* ``fnmr0`` (ZeroFNMR) agrees for finite scores.
* ``auc``: pyeer's curve stops at the top score, so it misses the last segment to
  (0, 0); its AUC is lower by ``FMR(max) * (1 - FNMR(max)) / 2``, which is non-zero
  only when the top score is shared by genuine and impostor comparisons.
* pyeer includes ``-inf`` as a threshold when it is a score, so a failed genuine
  comparison is accepted at that threshold; here it never is.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "STATUS_OK",
    "STATUS_ENROL_FAILED",
    "STATUS_FAILED",
    "STATUSES",
    "FVC_FMR_TARGETS",
    "fmr_target_key",
    "ErrorCurve",
    "ScoreSweep",
    "EERResult",
    "OperatingPoint",
    "DETCurve",
    "ROCCurve",
    "as_similarity",
    "apply_failures",
    "error_curve",
    "eer",
    "fnmr_at_fmr",
    "fmr100",
    "fmr1000",
    "fmr10000",
    "zero_fmr",
    "zero_fnmr",
    "det_curve",
    "roc_curve",
    "roc_auc",
    "n_distinct_scores",
    "compute_metrics",
]

#: Status of a comparison whose score is valid.
STATUS_OK = "ok"
#: Status of a comparison involving a template whose enrolment failed (either side).
STATUS_ENROL_FAILED = "enrol_failed"
#: Status of a comparison that itself failed (REJ_NGRA / REJ_NIRA).
STATUS_FAILED = "failed"
#: All valid status values.
STATUSES = (STATUS_OK, STATUS_ENROL_FAILED, STATUS_FAILED)

#: The FMR targets of FMR100, FMR1000 and FMR10000.
FVC_FMR_TARGETS = (1e-2, 1e-3, 1e-4)

# Relative slack when turning an FMR target into a whole number of false matches, so
# that e.g. 1e-3 * 1000 counts as exactly 1 despite binary rounding.
_TARGET_SLACK = 1e-12


# ---------------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------------


def _as_scores(scores: ArrayLike, name: str) -> np.ndarray:
    """Return ``scores`` as a 1-D float64 array, rejecting NaN."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} scores must be a 1-D array, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"{name} scores contain NaN")
    return arr


def as_similarity(scores: ArrayLike, higher_is_better: bool) -> np.ndarray:
    """Turn matcher scores into similarity scores (higher = more similar).

    Parameters
    ----------
    scores : array_like
        Scores as returned by the matcher.
    higher_is_better : bool
        True when a higher score already means more similar; False for a distance,
        whose scores are then negated.

    Returns
    -------
    numpy.ndarray
        A new 1-D float64 array of similarity scores. Apply this *before*
        :func:`apply_failures`, which encodes failures in similarity space.
    """
    arr = np.array(scores, dtype=np.float64, copy=True)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if not higher_is_better:
        np.negative(arr, out=arr)
    return arr


def _status_masks(status: ArrayLike | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks ``(enrol_failed, failed)`` of the comparisons, from the status strings.

    Raises ``ValueError`` on a shape mismatch or an unknown status.
    """
    if status is None:
        return np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    st = np.asarray(status)
    if st.ndim == 0:
        st = st.reshape(1)
    if st.shape != (n,):
        raise ValueError(f"status must have shape ({n},), got {st.shape}")
    if st.dtype.kind not in "UO":
        raise ValueError(f"status must hold strings {STATUSES}, got dtype {st.dtype}")
    enrol_failed = np.zeros(n, dtype=bool)
    failed = np.zeros(n, dtype=bool)
    not_ok = np.flatnonzero(st != STATUS_OK)
    if not_ok.size:
        rest = st[not_ok]
        is_enrol, is_failed = rest == STATUS_ENROL_FAILED, rest == STATUS_FAILED
        unknown = ~(is_enrol | is_failed)
        if unknown.any():
            bad = sorted({str(x) for x in rest[unknown][:10]})
            raise ValueError(f"unknown comparison status {bad}; expected one of {STATUSES}")
        enrol_failed[not_ok[is_enrol]] = True
        failed[not_ok[is_failed]] = True
    return enrol_failed, failed


def _as_mask(genuine: ArrayLike, n: int) -> np.ndarray:
    """Return the genuine mask as a 1-D bool array of length ``n``."""
    mask = np.asarray(genuine)
    if mask.ndim == 0:
        mask = mask.reshape(1)
    if mask.shape != (n,):
        raise ValueError(f"genuine mask must have shape ({n},), got {mask.shape}")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise ValueError("genuine mask must be boolean (or 0/1)")
        mask = mask.astype(bool)
    return mask


def apply_failures(
    scores: ArrayLike,
    genuine: ArrayLike,
    status: ArrayLike | None,
    *,
    ghost_score: float = -np.inf,
) -> np.ndarray:
    """Encode failed enrolments and failed comparisons in the scores (FVC rules).

    Parameters
    ----------
    scores : array_like
        One similarity score per comparison (see :func:`as_similarity`). Scores of
        comparisons whose status is not ``"ok"`` are ignored and may be NaN.
    genuine : array_like of bool
        True for a genuine (mated) comparison, False for an impostor one.
    status : array_like of str or None
        Per comparison: ``"ok"``; ``"enrol_failed"`` when the enrolment of either
        template failed (the comparison is with a "ghost" template); ``"failed"``
        when the comparison itself failed. None means all ``"ok"``.
    ghost_score : float, default -inf
        Score given to comparisons with a ghost template: the lowest possible score,
        so a genuine one is a false non-match and an impostor one a correct
        rejection at every threshold. (FVC gives ghosts the score 0 on its [0, 1]
        scale, which differs only at the threshold 0, where FVC accepts them.)

    Returns
    -------
    numpy.ndarray
        A new float64 array: ``"ok"`` scores unchanged, ``"enrol_failed"`` set to
        ``ghost_score``, ``"failed"`` genuine set to ``-inf`` (false non-match at every
        threshold) and ``"failed"`` impostor set to ``+inf`` (false match at every
        threshold).

    Raises
    ------
    ValueError
        On shape mismatch, an unknown status, or NaN in an ``"ok"`` score.
    """
    out = np.array(scores, dtype=np.float64, copy=True)
    if out.ndim == 0:
        out = out.reshape(1)
    if out.ndim != 1:
        raise ValueError(f"scores must be a 1-D array, got shape {out.shape}")
    mask = _as_mask(genuine, out.size)
    enrol_failed, failed = _status_masks(status, out.size)
    return _encode_failures(out, mask, enrol_failed, failed, ghost_score)


def _encode_failures(
    out: np.ndarray,
    mask: np.ndarray,
    enrol_failed: np.ndarray,
    failed: np.ndarray,
    ghost_score: float,
) -> np.ndarray:
    """Core of :func:`apply_failures`; modifies ``out`` in place and returns it."""
    nan = np.isnan(out)
    if nan.any() and (nan & ~(enrol_failed | failed)).any():
        raise ValueError("scores of successful comparisons contain NaN")
    if enrol_failed.any():
        out[enrol_failed] = ghost_score
    if failed.any():
        out[failed & mask] = -np.inf
        out[failed & ~mask] = np.inf
    return out


def n_distinct_scores(scores: ArrayLike) -> int:
    """Number of distinct values among ``scores`` (``+inf``/``-inf`` count as values).

    Parameters
    ----------
    scores : array_like
        Scores (NaN not allowed).

    Returns
    -------
    int
        The number of distinct values; ``-0.0`` and ``0.0`` count as one.
    """
    arr = _as_scores(scores, "input")
    if arr.size == 0:
        return 0
    s = np.sort(arr)
    return int(1 + np.count_nonzero(s[1:] != s[:-1]))


# ---------------------------------------------------------------------------------
# The threshold sweep
# ---------------------------------------------------------------------------------


def _json_threshold(t: float | None) -> float | str | None:
    """A threshold for JSON: finite float as is, infinities as "inf"/"-inf"."""
    if t is None:
        return None
    t = float(t)
    if math.isinf(t):
        return "inf" if t > 0 else "-inf"
    return t


@dataclass(frozen=True)
class EERResult:
    """The FVC equal error rate and its interval.

    Attributes
    ----------
    eer : float
        ``(eer_low + eer_high) / 2``.
    eer_low, eer_high : float
        The EER interval.
    t1 : float or None
        Largest threshold with FNMR <= FMR (None if there is none).
    t2 : float or None
        Smallest threshold with FNMR >= FMR (None if there is none).
    threshold : float
        The threshold (``t1`` or ``t2``) whose rates make the interval.
    n_genuine, n_impostor : int
        Numbers of scores used.
    """

    eer: float
    eer_low: float
    eer_high: float
    t1: float | None
    t2: float | None
    threshold: float
    n_genuine: int
    n_impostor: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (infinite thresholds as "inf"/"-inf")."""
        return {
            "eer": self.eer,
            "eer_low": self.eer_low,
            "eer_high": self.eer_high,
            "t1": _json_threshold(self.t1),
            "t2": _json_threshold(self.t2),
            "threshold": _json_threshold(self.threshold),
            "n_genuine": self.n_genuine,
            "n_impostor": self.n_impostor,
        }


@dataclass(frozen=True)
class OperatingPoint:
    """An error rate read at an operating point, or why it cannot be.

    Attributes
    ----------
    name : str
        What was asked for, e.g. ``"fnmr@fmr<=0.01"``, ``"zero_fmr"``, ``"zero_fnmr"``.
    value : float or None
        The error rate (FNMR for FMR targets and ZeroFMR, FMR for ZeroFNMR); None
        when the data cannot resolve it.
    target : float
        The constraint: the FMR bound, or 0 for ZeroFMR / ZeroFNMR.
    threshold : float or None
        The threshold where the value is read (None when unresolvable or
        unattainable).
    rate_at_threshold : float or None
        The constrained rate at that threshold (FMR for FMR targets and ZeroFMR,
        FNMR for ZeroFNMR).
    n_genuine, n_impostor : int
        Numbers of genuine and impostor scores. For an FMR target, resolvability
        depends on ``n_impostor`` (``target >= 1 / n_impostor``).
    reason : str or None
        Why ``value`` is None, or a remark when ``value`` is the 1.0 given to an
        unattainable point; None otherwise.
    """

    name: str
    value: float | None
    target: float
    threshold: float | None
    rate_at_threshold: float | None
    n_genuine: int
    n_impostor: int
    reason: str | None = None

    @property
    def resolvable(self) -> bool:
        """True when ``value`` is a number."""
        return self.value is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (infinite thresholds as "inf"/"-inf")."""
        return {
            "value": self.value,
            "target": self.target,
            "threshold": _json_threshold(self.threshold),
            "rate_at_threshold": self.rate_at_threshold,
            "n_genuine": self.n_genuine,
            "n_impostor": self.n_impostor,
            "reason": self.reason,
        }


class _FieldAccess:
    """Lets a curve be read as ``curve.fmr`` or ``curve["fmr"]``."""

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def keys(self) -> tuple[str, ...]:
        """Names of the arrays."""
        return tuple(self.__dataclass_fields__)  # type: ignore[attr-defined]


@dataclass(frozen=True, eq=False)
class DETCurve(_FieldAccess):
    """FMR and FNMR at every candidate threshold, thresholds ascending.

    ``fmr`` is non-increasing and ``fnmr`` non-decreasing along the arrays. Fields
    can also be read by name: ``curve["fmr"]``.
    """

    thresholds: np.ndarray
    fmr: np.ndarray
    fnmr: np.ndarray


@dataclass(frozen=True, eq=False)
class ROCCurve(_FieldAccess):
    """ROC points (FMR, TMR = 1 - FNMR), thresholds *descending* so both rates are
    non-decreasing along the arrays. Fields can also be read by name."""

    thresholds: np.ndarray
    fmr: np.ndarray
    tmr: np.ndarray


@dataclass(frozen=True, eq=False)
class ErrorCurve:
    """False match / false non-match counts at every candidate threshold.

    Build it with :func:`error_curve`; its methods compute every metric without
    sweeping again.

    Attributes
    ----------
    thresholds : numpy.ndarray
        Candidate thresholds, ascending: the distinct scores except ``-inf``, then
        ``+inf`` (always the last one).
    fm : numpy.ndarray
        int64, number of impostor scores ``>= t`` (non-increasing).
    fnm : numpy.ndarray
        int64, number of genuine scores ``< t`` (non-decreasing).
    n_genuine, n_impostor : int
        Numbers of scores (total weights when built with weights).
    n_distinct : int
        Number of distinct score values (infinities included; of weight > 0).
    """

    thresholds: np.ndarray
    fm: np.ndarray
    fnm: np.ndarray
    n_genuine: int
    n_impostor: int
    n_distinct: int

    # -- rates -------------------------------------------------------------------

    @functools.cached_property
    def _neg_fm(self) -> np.ndarray:
        """``-fm`` (non-decreasing), for binary searches on FMR."""
        return np.negative(self.fm)

    @property
    def fmr(self) -> np.ndarray:
        """FMR at each threshold (NaN-free; raises if there are no impostor scores)."""
        self._require(impostor=True)
        return self.fm / self.n_impostor

    @property
    def fnmr(self) -> np.ndarray:
        """FNMR at each threshold (raises if there are no genuine scores)."""
        self._require(genuine=True)
        return self.fnm / self.n_genuine

    def _require(self, genuine: bool = False, impostor: bool = False) -> None:
        if genuine and self.n_genuine == 0:
            raise ValueError("no genuine scores")
        if impostor and self.n_impostor == 0:
            raise ValueError("no impostor scores")

    # -- metrics -----------------------------------------------------------------

    def eer(self) -> EERResult:
        """The FVC EER and its interval (see the module docstring).

        Raises
        ------
        ValueError
            If there are no genuine or no impostor scores.
        """
        self._require(genuine=True, impostor=True)
        ng, ni = self.n_genuine, self.n_impostor
        fm, fnm = self.fm, self.fnm
        # sign(FMR - FNMR) exactly; non-increasing along the thresholds.
        neg_d = fnm * ni - fm * ng
        k = fm.size
        i1 = int(np.searchsorted(neg_d, 0, side="right")) - 1  # last with FNMR <= FMR
        i2 = int(np.searchsorted(neg_d, 0, side="left"))  # first with FNMR >= FMR
        has1, has2 = i1 >= 0, i2 < k
        if has1 and has2:
            s1 = int(fnm[i1]) * ni + int(fm[i1]) * ng
            s2 = int(fnm[i2]) * ni + int(fm[i2]) * ng
            use_t1 = s1 <= s2
        else:
            use_t1 = has1
        if use_t1:
            low, high, thr = fnm[i1] / ng, fm[i1] / ni, self.thresholds[i1]
        else:
            low, high, thr = fm[i2] / ni, fnm[i2] / ng, self.thresholds[i2]
        low, high = float(low), float(high)
        return EERResult(
            eer=(low + high) / 2,
            eer_low=low,
            eer_high=high,
            t1=float(self.thresholds[i1]) if has1 else None,
            t2=float(self.thresholds[i2]) if has2 else None,
            threshold=float(thr),
            n_genuine=ng,
            n_impostor=ni,
        )

    def fnmr_at_fmr(self, target: float, name: str | None = None) -> OperatingPoint:
        """Lowest FNMR over thresholds with FMR <= ``target``.

        Parameters
        ----------
        target : float
            FMR bound in [0, 1]. 0 gives ZeroFMR. A target below
            ``1 / n_impostor`` (other than 0) is unresolvable.
        name : str, optional
            Name recorded in the result.

        Returns
        -------
        OperatingPoint
            ``value=None`` with a reason when unresolvable or when there are no
            genuine/impostor scores.
        """
        target = float(target)
        if not 0.0 <= target <= 1.0:
            raise ValueError(f"FMR target must be in [0, 1], got {target}")
        name = name or ("zero_fmr" if target == 0 else f"fnmr@fmr<={target:g}")
        ng, ni = self.n_genuine, self.n_impostor

        def unresolved(reason: str) -> OperatingPoint:
            return OperatingPoint(name, None, target, None, None, ng, ni, reason)

        if ni == 0:
            return unresolved("no impostor scores")
        if ng == 0:
            return unresolved("no genuine scores")
        allowed = math.floor(target * ni * (1 + _TARGET_SLACK))  # max false matches
        if target > 0 and allowed < 1:
            return unresolved(
                f"unresolvable: FMR target {target:g} < 1/{ni} impostor scores "
                f"(smallest non-zero FMR the data can show is {1 / ni:.3g})"
            )
        idx = int(np.searchsorted(self._neg_fm, -allowed, side="left"))  # first fm <= allowed
        if idx == self.fm.size:
            n_inf = int(self.fm[-1])
            return OperatingPoint(
                name, 1.0, target, None, n_inf / ni, ng, ni,
                f"unattainable: {n_inf} impostor score(s) of +inf (failed comparisons) "
                f"keep FMR at {n_inf / ni:.3g} or more at every threshold; reported as 1.0",
            )
        return OperatingPoint(
            name,
            float(self.fnm[idx] / ng),
            target,
            float(self.thresholds[idx]),
            float(self.fm[idx] / ni),
            ng,
            ni,
        )

    def zero_fmr(self) -> OperatingPoint:
        """ZeroFMR: lowest FNMR over thresholds with FMR = 0."""
        return self.fnmr_at_fmr(0.0, name="zero_fmr")

    def zero_fnmr(self) -> OperatingPoint:
        """ZeroFNMR: lowest FMR over thresholds with FNMR = 0."""
        ng, ni = self.n_genuine, self.n_impostor
        name = "zero_fnmr"
        if ni == 0:
            return OperatingPoint(name, None, 0.0, None, None, ng, ni, "no impostor scores")
        if ng == 0:
            return OperatingPoint(name, None, 0.0, None, None, ng, ni, "no genuine scores")
        idx = int(np.searchsorted(self.fnm, 0, side="right")) - 1  # last fnm == 0
        if idx < 0:
            n_ninf = int(self.fnm[0])
            return OperatingPoint(
                name, 1.0, 0.0, None, n_ninf / ng, ng, ni,
                f"unattainable: {n_ninf} genuine score(s) of -inf (failures) keep FNMR "
                f"at {n_ninf / ng:.3g} or more at every threshold; reported as 1.0",
            )
        return OperatingPoint(
            name,
            float(self.fm[idx] / ni),
            0.0,
            float(self.thresholds[idx]),
            0.0,
            ng,
            ni,
        )

    def auc(self) -> float:
        """Area under the complete ROC step curve (trapezoid rule).

        Equals ``P(genuine > impostor) + 0.5 * P(genuine == impostor)``.

        Raises
        ------
        ValueError
            If there are no genuine or no impostor scores.
        """
        self._require(genuine=True, impostor=True)
        ng, ni = self.n_genuine, self.n_impostor
        # Twice the trapezoid area in units of 1/(ng*ni): every term is an integer,
        # exact in float64 while 2*ng*ni < 2**53.
        fm = self.fm.astype(np.float64)
        tm = ng - self.fnm.astype(np.float64)
        twice_area = float(np.dot(fm[:-1] - fm[1:], tm[:-1] + tm[1:]))
        # Close the curve: (1, 1) below every score, (0, 0) above every score.
        twice_area += (ni - fm[0]) * (ng + tm[0]) + fm[-1] * tm[-1]
        return twice_area / (2 * ng * ni)

    def fvc_points(self) -> dict[str, OperatingPoint]:
        """The FVC operating points: FMR100, FMR1000, FMR10000, ZeroFMR and ZeroFNMR."""
        return {
            "fmr100": self.fnmr_at_fmr(1e-2, name="fmr100"),
            "fmr1000": self.fnmr_at_fmr(1e-3, name="fmr1000"),
            "fmr10000": self.fnmr_at_fmr(1e-4, name="fmr10000"),
            "zero_fmr": self.zero_fmr(),
            "zero_fnmr": self.zero_fnmr(),
        }

    def det(self) -> DETCurve:
        """DET points at every candidate threshold (ascending)."""
        return DETCurve(self.thresholds.copy(), self.fmr, self.fnmr)

    def roc(self) -> ROCCurve:
        """ROC points at every candidate threshold (thresholds descending)."""
        return ROCCurve(self.thresholds[::-1].copy(), self.fmr[::-1], 1.0 - self.fnmr[::-1])


def _as_weights(weights: ArrayLike | None, n: int, name: str) -> np.ndarray | None:
    """``weights`` as a 1-D int64 array of length ``n`` (None stays None).

    Weights count comparisons: a comparison of weight ``k`` counts as ``k`` copies of it,
    so they must be whole numbers >= 0.
    """
    if weights is None:
        return None
    w = np.asarray(weights)
    if w.ndim == 0:
        w = w.reshape(1)
    if w.shape != (n,):
        raise ValueError(f"{name} weights must have shape ({n},), got {w.shape}")
    if w.dtype.kind == "b":
        w = w.astype(np.int64)
    elif w.dtype.kind == "f":
        if not np.all(np.isfinite(w)) or np.any(w != np.floor(w)):
            raise ValueError(f"{name} weights must be whole numbers (counts of comparisons)")
        w = w.astype(np.int64)
    elif w.dtype.kind not in "iu":
        raise ValueError(f"{name} weights must be integers, got dtype {w.dtype}")
    if w.size and w.min() < 0:
        raise ValueError(f"{name} weights must be >= 0")
    return w.astype(np.int64, copy=False)


@dataclass(frozen=True, eq=False)
class ScoreSweep:
    """The genuine and impostor scores of a set of comparisons, sorted once.

    :meth:`curve` counts the errors of the comparisons, or of any integer weighting of
    them (a weight ``k`` counts a comparison ``k`` times, 0 leaves it out), without
    sorting again; the subject bootstrap builds one curve per replicate this way.
    Build it with :meth:`of`.

    Attributes
    ----------
    genuine, impostor : numpy.ndarray
        The scores, in the order given.
    values : numpy.ndarray
        Distinct scores of both kinds, ascending (infinities included).
    below : numpy.ndarray
        int64, number of scores (of both kinds) below each value.
    """

    genuine: np.ndarray
    impostor: np.ndarray
    values: np.ndarray
    below: np.ndarray

    @classmethod
    def of(cls, genuine: ArrayLike, impostor: ArrayLike) -> "ScoreSweep":
        """Sort the scores (similarities; ``-inf``/``+inf`` allowed, NaN not)."""
        gen = _as_scores(genuine, "genuine")
        imp = _as_scores(impostor, "impostor")
        allv = np.concatenate((gen, imp))
        allv.sort()
        first = np.empty(allv.size, dtype=bool)
        first[:1] = True
        np.not_equal(allv[1:], allv[:-1], out=first[1:])
        below = np.flatnonzero(first)
        return cls(gen, imp, allv[below], below.astype(np.int64, copy=False))

    @functools.cached_property
    def _groups(self) -> tuple[np.ndarray, np.ndarray]:
        """Index in ``values`` of every genuine and every impostor score."""
        allv = np.concatenate((self.genuine, self.impostor))
        order = np.argsort(allv)
        first = np.empty(allv.size, dtype=bool)
        first[:1] = True
        ranked = allv[order]
        np.not_equal(ranked[1:], ranked[:-1], out=first[1:])
        group = np.empty(allv.size, dtype=np.intp)
        group[order] = np.cumsum(first) - 1
        return group[: self.genuine.size], group[self.genuine.size:]

    def _below_unweighted(self) -> tuple[np.ndarray, np.ndarray]:
        """Genuine and impostor scores below each value; only the smaller set is searched."""
        if self.genuine.size <= self.impostor.size:
            gen_below = np.searchsorted(np.sort(self.genuine), self.values, side="left").astype(np.int64)
            return gen_below, self.below - gen_below
        imp_below = np.searchsorted(np.sort(self.impostor), self.values, side="left").astype(np.int64)
        return self.below - imp_below, imp_below

    def curve(self, genuine_weights: ArrayLike | None = None,
              impostor_weights: ArrayLike | None = None) -> ErrorCurve:
        """Error counts at every candidate threshold, each comparison counted by its weight.

        Candidate thresholds are the distinct scores of weight > 0 except ``-inf``, then
        ``+inf``: with all weights 1 this is the unweighted curve, and with integer weights
        it is the curve of the scores repeated that many times (``numpy.repeat``).
        Weighted totals are exact below 2**53.
        """
        gw = _as_weights(genuine_weights, self.genuine.size, "genuine")
        iw = _as_weights(impostor_weights, self.impostor.size, "impostor")
        values = self.values
        if gw is None and iw is None:
            ng, ni = self.genuine.size, self.impostor.size
            gen_below, imp_below = self._below_unweighted()
        else:
            k = values.size
            gg, ig = self._groups
            # bincount sums the weights in float64: exact for whole numbers below 2**53
            gen = (np.bincount(gg, minlength=k) if gw is None
                   else np.bincount(gg, weights=gw, minlength=k)).astype(np.int64)
            imp = (np.bincount(ig, minlength=k) if iw is None
                   else np.bincount(ig, weights=iw, minlength=k)).astype(np.int64)
            present = (gen + imp) > 0  # values that only comparisons of weight 0 hold are absent
            if not present.all():
                values, gen, imp = values[present], gen[present], imp[present]
            ng, ni = int(gen.sum()), int(imp.sum())
            gen_below = np.cumsum(gen) - gen
            imp_below = np.cumsum(imp) - imp
        n_distinct = int(values.size)
        fnm, fm = gen_below, ni - imp_below
        if values.size and values[0] == -np.inf:
            values, fnm, fm = values[1:], fnm[1:], fm[1:]
        if values.size == 0 or values[-1] != np.inf:
            # the threshold +inf, above every finite score
            values = np.append(values, np.inf)
            fnm = np.append(fnm, ng)
            fm = np.append(fm, 0)
        return ErrorCurve(values, fm.astype(np.int64, copy=False), fnm.astype(np.int64, copy=False),
                          int(ng), int(ni), n_distinct)


def error_curve(genuine: ArrayLike, impostor: ArrayLike, *,
                genuine_weights: ArrayLike | None = None,
                impostor_weights: ArrayLike | None = None) -> ErrorCurve:
    """Sweep every candidate threshold once and count the errors.

    Parameters
    ----------
    genuine, impostor : array_like
        Similarity scores (float; ``-inf``/``+inf`` allowed, NaN not). Either may be
        empty; metrics that need it then raise or report a reason.
    genuine_weights, impostor_weights : array_like of int, optional
        How many times each comparison counts (whole numbers >= 0; default 1). A
        comparison of weight 0 is left out, its score included.

    Returns
    -------
    ErrorCurve
        Counts at the thresholds: the distinct scores (of weight > 0) except ``-inf``,
        then ``+inf``. ``n_genuine`` and ``n_impostor`` are the total weights.

    Notes
    -----
    One sort of all scores (O(n log n)); without weights the counts of the larger set
    are derived from the positions of the distinct values in the merged sorted array,
    so only the smaller set is searched. See :class:`ScoreSweep` to count many
    weightings of the same scores.

    Examples
    --------
    >>> curve = error_curve([3.0, 5.0], [1.0, 4.0])
    >>> curve.eer().eer
    0.5
    >>> error_curve([3.0, 5.0], [1.0, 4.0], impostor_weights=[3, 0]).eer().eer
    0.0
    """
    return ScoreSweep.of(genuine, impostor).curve(genuine_weights, impostor_weights)


# ---------------------------------------------------------------------------------
# Function interface
# ---------------------------------------------------------------------------------


def eer(genuine: ArrayLike, impostor: ArrayLike) -> EERResult:
    """FVC equal error rate with its interval.

    Parameters
    ----------
    genuine, impostor : array_like
        Similarity scores.

    Returns
    -------
    EERResult

    Raises
    ------
    ValueError
        If either array is empty or contains NaN.
    """
    return error_curve(genuine, impostor).eer()


def fnmr_at_fmr(genuine: ArrayLike, impostor: ArrayLike, target: float) -> OperatingPoint:
    """Lowest FNMR over thresholds with FMR <= ``target``.

    Parameters
    ----------
    genuine, impostor : array_like
        Similarity scores.
    target : float
        FMR bound in [0, 1]; unresolvable (``value=None``) when
        ``0 < target < 1 / len(impostor)``.

    Returns
    -------
    OperatingPoint
    """
    return error_curve(genuine, impostor).fnmr_at_fmr(target)


def fmr100(genuine: ArrayLike, impostor: ArrayLike) -> OperatingPoint:
    """FMR100: lowest FNMR with FMR <= 1 %."""
    return error_curve(genuine, impostor).fnmr_at_fmr(1e-2, name="fmr100")


def fmr1000(genuine: ArrayLike, impostor: ArrayLike) -> OperatingPoint:
    """FMR1000: lowest FNMR with FMR <= 0.1 %."""
    return error_curve(genuine, impostor).fnmr_at_fmr(1e-3, name="fmr1000")


def fmr10000(genuine: ArrayLike, impostor: ArrayLike) -> OperatingPoint:
    """FMR10000: lowest FNMR with FMR <= 0.01 %."""
    return error_curve(genuine, impostor).fnmr_at_fmr(1e-4, name="fmr10000")


def zero_fmr(genuine: ArrayLike, impostor: ArrayLike) -> OperatingPoint:
    """ZeroFMR: lowest FNMR with FMR = 0 (1.0 if +inf impostor scores prevent FMR = 0)."""
    return error_curve(genuine, impostor).zero_fmr()


def zero_fnmr(genuine: ArrayLike, impostor: ArrayLike) -> OperatingPoint:
    """ZeroFNMR: lowest FMR with FNMR = 0 (1.0 if -inf genuine scores prevent FNMR = 0)."""
    return error_curve(genuine, impostor).zero_fnmr()


def det_curve(genuine: ArrayLike, impostor: ArrayLike) -> DETCurve:
    """DET curve: (thresholds ascending, FMR non-increasing, FNMR non-decreasing).

    Parameters
    ----------
    genuine, impostor : array_like
        Similarity scores (both non-empty).

    Returns
    -------
    DETCurve
        One point per candidate threshold (distinct scores except ``-inf``, then
        ``+inf``).
    """
    return error_curve(genuine, impostor).det()


def roc_curve(genuine: ArrayLike, impostor: ArrayLike) -> ROCCurve:
    """ROC curve: (thresholds descending, FMR and TMR = 1 - FNMR non-decreasing).

    Parameters
    ----------
    genuine, impostor : array_like
        Similarity scores (both non-empty).

    Returns
    -------
    ROCCurve
        The same points as :func:`det_curve`, in reverse order.
    """
    return error_curve(genuine, impostor).roc()


def roc_auc(genuine: ArrayLike, impostor: ArrayLike) -> float:
    """Area under the ROC curve, ``P(g > i) + 0.5 P(g == i)``.

    Raises
    ------
    ValueError
        If either array is empty or contains NaN.
    """
    return error_curve(genuine, impostor).auc()


# ---------------------------------------------------------------------------------
# Everything at once
# ---------------------------------------------------------------------------------


def fmr_target_key(target: float) -> str:
    """The key of an FMR target under ``fnmr_at_fmr`` (``1e-2`` style)."""
    mant, exp = f"{target:.12e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}"


def _eer_dict(curve: ErrorCurve) -> dict[str, Any]:
    """``{"eer", "eer_low", "eer_high", "t1", "t2", "threshold", "n_genuine",
    "n_impostor", "reason"}``; the EER fields are None, with a reason, when a class
    is empty."""
    if curve.n_genuine == 0 or curve.n_impostor == 0:
        missing = "genuine" if curve.n_genuine == 0 else "impostor"
        out = dict.fromkeys(("eer", "eer_low", "eer_high", "t1", "t2", "threshold"))
        out.update(n_genuine=curve.n_genuine, n_impostor=curve.n_impostor,
                   reason=f"no {missing} scores")
        return out
    out = curve.eer().to_dict()
    out["reason"] = None
    return out


def compute_metrics(
    scores: ArrayLike,
    genuine: ArrayLike,
    status: ArrayLike | None = None,
    *,
    higher_is_better: bool = True,
    fmr_targets: Iterable[float] = FVC_FMR_TARGETS,
    ghost_score: float = -np.inf,
) -> dict[str, Any]:
    """All FVC verification metrics of one run, as a JSON-serialisable dict.

    Parameters
    ----------
    scores : array_like
        Raw matcher score per comparison (for ``status != "ok"`` ignored, may be NaN).
    genuine : array_like of bool
        True for genuine comparisons, False for impostor ones.
    status : array_like of str, optional
        Per comparison ``"ok"``, ``"enrol_failed"`` or ``"failed"`` (see
        :func:`apply_failures`); None means all ``"ok"``.
    higher_is_better : bool, default True
        False for a distance matcher (scores are negated first; thresholds in the
        result are then negated distances).
    fmr_targets : iterable of float, default (1e-2, 1e-3, 1e-4)
        FMR targets reported under ``"fnmr_at_fmr"``.
    ghost_score : float, default -inf
        Score of comparisons with a ghost template.

    Returns
    -------
    dict
        Keys (all values plain ``int``/``float``/``str``/``None`` or nested dicts):

        * ``n_genuine``, ``n_impostor``: comparisons of each kind, failures included;
          ``n_distinct_scores``: distinct values among the scores used (after failure
          encoding, infinities included).
        * ``eer``, ``eer_low``, ``eer_high``, ``eer_t1``, ``eer_t2``,
          ``eer_threshold`` (the one of t1/t2 giving the interval), ``eer_reason``
          (None, or why the EER fields are None).
        * ``fmr100``, ``fmr1000``, ``fmr10000``, ``zero_fmr``, ``zero_fnmr``: the
          value (float, or None when unresolvable).
        * ``operating_points``: the same five names, each a dict ``{"value",
          "target", "threshold", "rate_at_threshold", "n_genuine", "n_impostor",
          "reason"}`` (see :class:`OperatingPoint`): N, threshold, and the reason
          when ``value`` is None (or the remark when it is an unattainable 1.0).
        * ``fnmr_at_fmr``: one such dict per FMR target, keyed ``"1e-2"``,
          ``"1e-3"``, ``"1e-4"`` by default.
        * ``auc`` (None if a class is empty).
        * ``rej_ngra``, ``rej_nira``: failed genuine / impostor comparisons;
          ``n_enrol_failed_comparisons`` and its split ``n_enrol_failed_genuine``,
          ``n_enrol_failed_impostor``.
        * ``eer_star``: EER* of the comparisons with status ``"ok"`` only, a dict
          ``{"eer", "eer_low", "eer_high", "t1", "t2", "threshold", "n_genuine",
          "n_impostor", "reason"}`` (EER fields None, with a reason, when no
          genuine or no impostor comparison is left).

        Thresholds are floats, or the strings ``"inf"`` / ``"-inf"`` (``float()``
        reads them back), or None.

    Raises
    ------
    ValueError
        On shape mismatch, unknown status or NaN in an ``"ok"`` score.
    """
    raw = as_similarity(scores, higher_is_better)
    if raw.ndim != 1:
        raise ValueError(f"scores must be a 1-D array, got shape {raw.shape}")
    mask = _as_mask(genuine, raw.size)
    enrol_failed, failed = _status_masks(status, raw.size)
    used = _encode_failures(raw, mask, enrol_failed, failed, ghost_score)

    curve = error_curve(used[mask], used[~mask])
    if enrol_failed.any() or failed.any():
        ok = ~(enrol_failed | failed)
        curve_star = error_curve(used[mask & ok], used[~mask & ok])
    else:
        curve_star = curve

    e = _eer_dict(curve)
    points = curve.fvc_points()
    result: dict[str, Any] = {
        "n_genuine": int(curve.n_genuine),
        "n_impostor": int(curve.n_impostor),
        "n_distinct_scores": int(curve.n_distinct),
        "eer": e["eer"],
        "eer_low": e["eer_low"],
        "eer_high": e["eer_high"],
        "eer_t1": e["t1"],
        "eer_t2": e["t2"],
        "eer_threshold": e["threshold"],
        "eer_reason": e["reason"],
        **{name: op.value for name, op in points.items()},
        "operating_points": {name: op.to_dict() for name, op in points.items()},
        "fnmr_at_fmr": {
            fmr_target_key(float(t)): curve.fnmr_at_fmr(float(t)).to_dict() for t in fmr_targets
        },
        "auc": curve.auc() if curve.n_genuine and curve.n_impostor else None,
        "rej_ngra": int(np.count_nonzero(failed & mask)),
        "rej_nira": int(np.count_nonzero(failed & ~mask)),
        "n_enrol_failed_comparisons": int(np.count_nonzero(enrol_failed)),
        "n_enrol_failed_genuine": int(np.count_nonzero(enrol_failed & mask)),
        "n_enrol_failed_impostor": int(np.count_nonzero(enrol_failed & ~mask)),
        "eer_star": _eer_dict(curve_star),
    }
    return result
