"""Identification (1:N) metrics: CMC, FNIR at FPIR (the identification DET), candidate
list length effects, penetration rate, and score histograms.

Pure functions of per-search arrays; nothing is printed or written. The terms are those
of NIST's FpVTE 2012 and ISO/IEC 19795-1:

* a **search** compares one probe with the gallery and returns a candidate list: the
  top ``L`` gallery *subjects* by score (a subject's score is the best score of its
  templates), each with its score;
* a **mated** search has its subject in the gallery; a **non-mated** one does not;
* ``FPIR(T)`` = share of non-mated searches that return at least one candidate with
  score ``>= T``, i.e. whose top score is ``>= T``;
* ``FNIR(T, L)`` = share of mated searches whose mate is not returned with score
  ``>= T`` within the first ``L`` candidates;
* ``CMC(k)`` (rank-k identification rate) = share of mated searches whose mate has
  rank ``<= k``, whatever its score; ``1 - CMC(L) = FNIR(-inf, L)``;
* penetration rate = share of the gallery a search actually compared (1 for an
  exhaustive search; lower for a pre-filter or an indexing matcher).

Ranks are pessimistic: a mate's rank is 1 + the number of other gallery subjects with a
score ``>=`` the mate's (a tie counts against the mate). A search whose probe could not
be enrolled, or whose mate was not compared, has no mate rank (a miss at every
threshold) and, if non-mated, a top score of ``-inf`` (never a false positive). A failed
comparison counts as FVC does in 1:1: ``-inf`` for the mate, ``+inf`` for a non-mate
(so it is an error at every threshold).

FPIR and FNIR are computed by :func:`bench.metrics.error_curve` with mated searches as
"genuine" (score of the mate if within rank ``L``, else ``-inf``) and non-mated searches
as "impostor" (their top score): FPIR is its FMR and FNIR its FNMR, so every threshold
convention, exact integer counting and unresolvable-point rule of the 1:1 metrics holds
here too. An FPIR target below ``1 / N_non-mated`` is reported as unresolvable, with the
reason, never as a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
from numpy.typing import ArrayLike

from bench.metrics import ErrorCurve, error_curve

__all__ = [
    "DEFAULT_FPIR_TARGETS",
    "DEFAULT_RANKS",
    "CMCCurve",
    "IdentificationCurve",
    "cmc",
    "identification_curve",
    "fnir_at_fpir",
    "penetration_rate",
    "histogram_keys",
    "histogram_bin_edges",
    "compute_identification_metrics",
]

DEFAULT_FPIR_TARGETS = (1e-1, 1e-2, 1e-3)
DEFAULT_RANKS = (1, 5, 10, 20, 50, 100)


def _json_number(x: float | None) -> float | str | None:
    if x is None:
        return None
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(x)


# ------------------------------------------------------------------------- CMC
@dataclass(frozen=True, eq=False)
class CMCCurve:
    """Rank-k identification rate for k = 1..max_rank (``rate[k - 1]``), from
    ``hits[k - 1]`` mated searches with mate rank ``<= k`` out of ``n_mated``."""

    ranks: np.ndarray
    hits: np.ndarray
    n_mated: int

    @property
    def rate(self) -> np.ndarray:
        if self.n_mated == 0:
            raise ValueError("no mated searches")
        return self.hits / self.n_mated

    def at(self, k: int) -> float | None:
        """Rank-k identification rate, None when k exceeds the candidate list length."""
        if not 1 <= k <= self.ranks.size or self.n_mated == 0:
            return None
        return float(self.hits[k - 1] / self.n_mated)


def cmc(mate_rank: ArrayLike, max_rank: int) -> CMCCurve:
    """CMC of mated searches.

    Parameters
    ----------
    mate_rank : array_like of int
        One per mated search: the mate's (pessimistic) rank, 1-based; 0 when the mate
        is not within the candidate list (or was not found at all).
    max_rank : int
        Length of the candidate lists (ranks beyond it are unknown).

    Examples
    --------
    >>> cmc([1, 2, 0, 1], 3).rate.tolist()
    [0.5, 0.75, 0.75]
    """
    r = np.asarray(mate_rank, dtype=np.int64).ravel()
    if max_rank < 1:
        raise ValueError(f"max_rank must be at least 1, got {max_rank}")
    if r.size and (r.min() < 0 or r.max() > max_rank):
        raise ValueError(f"mate ranks must be in 0..{max_rank} (0 = not in the list)")
    counts = np.bincount(r, minlength=max_rank + 1)[1:]
    return CMCCurve(np.arange(1, max_rank + 1), np.cumsum(counts), int(r.size))


# ------------------------------------------------------------ FNIR at FPIR (DET)
@dataclass(frozen=True, eq=False)
class IdentificationCurve:
    """FPIR and FNIR(., L) at every candidate threshold (ascending), as counts.

    ``false_positives[i]``: non-mated searches with top score ``>= thresholds[i]``;
    ``false_negatives[i]``: mated searches whose mate is not within rank ``rank`` with
    score ``>= thresholds[i]``.
    """

    rank: int
    curve: ErrorCurve

    @property
    def thresholds(self) -> np.ndarray:
        return self.curve.thresholds

    @property
    def false_positives(self) -> np.ndarray:
        return self.curve.fm

    @property
    def false_negatives(self) -> np.ndarray:
        return self.curve.fnm

    @property
    def n_mated(self) -> int:
        return self.curve.n_genuine

    @property
    def n_nonmated(self) -> int:
        return self.curve.n_impostor

    @property
    def fpir(self) -> np.ndarray:
        if self.n_nonmated == 0:
            raise ValueError("no non-mated searches")
        return self.curve.fm / self.n_nonmated

    @property
    def fnir(self) -> np.ndarray:
        if self.n_mated == 0:
            raise ValueError("no mated searches")
        return self.curve.fnm / self.n_mated

    def fnir_at_fpir(self, target: float) -> dict[str, Any]:
        """Lowest FNIR over thresholds with FPIR <= ``target``, as a dict::

            {"fnir", "fpir_target", "threshold", "fpir", "rank", "n_mated",
             "n_nonmated", "reason"}

        ``fnir`` is None with a reason when there are no mated or non-mated searches,
        or when ``0 < target < 1 / n_nonmated`` (unresolvable); it is 1.0 with a remark
        when failed comparisons (``+inf``) keep FPIR above the target at every threshold.
        """
        nm, nn = self.n_mated, self.n_nonmated
        out: dict[str, Any] = {"fnir": None, "fpir_target": float(target), "threshold": None, "fpir": None,
                               "rank": self.rank, "n_mated": nm, "n_nonmated": nn, "reason": None}
        if nm == 0:
            out["reason"] = "no mated searches"
            return out
        if nn == 0:
            out["reason"] = "no non-mated searches (closed-set protocol): FPIR is undefined"
            return out
        op = self.curve.fnmr_at_fmr(float(target))
        if op.value is None:
            out["reason"] = (f"unresolvable: FPIR target {target:g} < 1/{nn} non-mated searches (the smallest "
                             f"non-zero FPIR the data can show is {1 / nn:.3g})")
            return out
        out.update(fnir=op.value, threshold=_json_number(op.threshold), fpir=op.rate_at_threshold)
        if op.threshold is None:
            n_inf = int(self.curve.fm[-1])
            out["reason"] = (f"unattainable: {n_inf} non-mated search(es) with a failed comparison (+inf) keep "
                             f"FPIR at {n_inf / nn:.3g} or more at every threshold; reported as 1.0")
        return out


def identification_curve(
    mated_score: ArrayLike, mate_rank: ArrayLike, nonmated_top_score: ArrayLike, rank: int
) -> IdentificationCurve:
    """FPIR / FNIR(., ``rank``) at every threshold.

    Parameters
    ----------
    mated_score, mate_rank : array_like
        Per mated search: the mate's score (``-inf`` if not found) and its rank (0 when
        not within the candidate list).
    nonmated_top_score : array_like
        Per non-mated search: the top candidate's score (``-inf`` when it returned none).
    rank : int
        Candidate list length L at which FNIR is read.

    Examples
    --------
    >>> c = identification_curve([0.9, 0.5, 0.7], [1, 1, 2], [0.6, 0.4], rank=1)
    >>> c.thresholds.tolist(), c.fpir.tolist(), c.fnir.tolist()
    ([0.4, 0.5, 0.6, 0.9, inf], [1.0, 0.5, 0.5, 0.0, 0.0], [0.3333333333333333, 0.3333333333333333, 0.6666666666666666, 0.6666666666666666, 1.0])
    """
    ms = np.asarray(mated_score, dtype=np.float64).ravel()
    mr = np.asarray(mate_rank, dtype=np.int64).ravel()
    if ms.shape != mr.shape:
        raise ValueError(f"mated_score and mate_rank differ in length ({ms.size} vs {mr.size})")
    if rank < 1:
        raise ValueError(f"rank must be at least 1, got {rank}")
    within = (mr >= 1) & (mr <= rank)
    genuine = np.where(within, ms, -np.inf)
    return IdentificationCurve(int(rank), error_curve(genuine, np.asarray(nonmated_top_score, dtype=np.float64)))


def fnir_at_fpir(
    mated_score: ArrayLike, mate_rank: ArrayLike, nonmated_top_score: ArrayLike, target: float, rank: int
) -> dict[str, Any]:
    """FNIR(T, rank) at the lowest T with FPIR(T) <= ``target`` (see
    :meth:`IdentificationCurve.fnir_at_fpir`)."""
    return identification_curve(mated_score, mate_rank, nonmated_top_score, rank).fnir_at_fpir(target)


# ------------------------------------------------------------------ penetration
def penetration_rate(n_compared: ArrayLike, gallery_size: int) -> float | None:
    """Mean share of the gallery compared per search (None without searches)."""
    n = np.asarray(n_compared, dtype=np.float64).ravel()
    if n.size == 0 or gallery_size <= 0:
        return None
    return float(n.sum() / (n.size * gallery_size))


# -------------------------------------------------------------- score histograms
def histogram_keys(scores: ArrayLike) -> np.ndarray:
    """Bin of each score in the universal score histogram (uint16, order-preserving).

    A score is rounded to float32 and binned by the top 16 bits of its IEEE-754 pattern
    (sign, exponent, 7 mantissa bits), so bins have a relative width of 2**-7 at any
    scale and no score range has to be known in advance. NaN is not allowed.
    """
    s = np.asarray(scores, dtype=np.float32).ravel() + np.float32(0.0)  # -0.0 becomes +0.0
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    bits = s.view(np.uint32)
    flipped = np.where(bits & np.uint32(0x80000000), ~bits, bits | np.uint32(0x80000000))
    return (flipped >> np.uint32(16)).astype(np.uint16)


def histogram_bin_edges(keys: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest float32 value (both inclusive) of each histogram bin."""
    k = np.asarray(keys, dtype=np.uint32)

    def value(t: np.ndarray) -> np.ndarray:
        bits = np.where(t & np.uint32(0x80000000), t ^ np.uint32(0x80000000), ~t).astype(np.uint32)
        with np.errstate(invalid="ignore"):
            return bits.view(np.float32).astype(np.float64)

    # the bins of +inf and -inf also span NaN bit patterns: their open ends are infinite
    low = value(k << np.uint32(16))
    high = value((k << np.uint32(16)) | np.uint32(0xFFFF))
    return np.where(np.isnan(low), -np.inf, low), np.where(np.isnan(high), np.inf, high)


# ---------------------------------------------------------------- everything
def compute_identification_metrics(
    mated: ArrayLike,
    mated_score: ArrayLike,
    mate_rank: ArrayLike,
    top_score: ArrayLike,
    candidates: int,
    *,
    n_compared: ArrayLike | None = None,
    gallery_size: int | None = None,
    enrolled: ArrayLike | None = None,
    ranks: Iterable[int] = DEFAULT_RANKS,
    fpir_targets: Iterable[float] = DEFAULT_FPIR_TARGETS,
) -> dict[str, Any]:
    """All identification metrics of one run, as a JSON-serialisable dict.

    Parameters
    ----------
    mated : array_like of bool
        Per search: mated (True) or non-mated.
    mated_score, mate_rank : array_like
        Per search (used for mated ones): the mate's score (``-inf`` if none) and
        pessimistic rank (0 = not within the list).
    top_score : array_like
        Per search: the score of its first candidate (``-inf`` if none).
    candidates : int
        Candidate list length L kept by the run.
    n_compared, gallery_size : optional
        Templates compared per search and the number of gallery templates, for the
        penetration rate.
    enrolled : array_like of bool, optional
        Per search: the probe's template exists (False = failure to enrol the probe);
        counted, and such searches stay in the denominators.

    Returns
    -------
    dict
        ``n_searches``, ``n_mated``, ``n_nonmated``, ``n_probe_enrol_failed``;
        ``rank_identification_rate`` (rank k -> rate, for the given ``ranks`` up to L);
        ``cmc`` (list of rates for ranks 1..L); ``fnir_at_fpir`` (per L in
        {1, L} and per FPIR target, each a dict with its reason when unresolvable);
        ``fnir_at_rank`` (threshold-free FNIR(-inf, L) = 1 - CMC(L));
        ``penetration_rate``, with mated and non-mated shares.
    """
    mask = np.asarray(mated, dtype=bool).ravel()
    ms = np.asarray(mated_score, dtype=np.float64).ravel()
    mr = np.asarray(mate_rank, dtype=np.int64).ravel()
    ts = np.asarray(top_score, dtype=np.float64).ravel()
    n = mask.size
    for name, arr in (("mated_score", ms), ("mate_rank", mr), ("top_score", ts)):
        if arr.size != n:
            raise ValueError(f"{name} has {arr.size} values for {n} searches")
    if np.isnan(ms[mask]).any() or np.isnan(ts).any():
        raise ValueError("scores contain NaN")
    L = int(candidates)
    c = cmc(mr[mask], L)
    ranks = sorted({int(k) for k in ranks if 1 <= int(k) <= L} | {1, L})
    out: dict[str, Any] = {
        "n_searches": int(n),
        "n_mated": int(mask.sum()),
        "n_nonmated": int(n - mask.sum()),
        "candidates": L,
        "rank_identification_rate": {str(k): c.at(k) for k in ranks},
        "cmc": c.rate.tolist() if c.n_mated else None,
        "fnir_at_rank": {str(k): (None if c.at(k) is None else 1.0 - c.at(k)) for k in ranks},
        "fnir_at_fpir": {},
    }
    if enrolled is not None:
        en = np.asarray(enrolled, dtype=bool).ravel()
        out["n_probe_enrol_failed"] = int(n - en.sum())
        out["n_probe_enrol_failed_mated"] = int((mask & ~en).sum())
    targets = [float(t) for t in fpir_targets]
    for k in sorted({1, L}):
        curve = identification_curve(ms[mask], mr[mask], ts[~mask], k)
        out["fnir_at_fpir"][f"rank{k}"] = {f"{t:g}": curve.fnir_at_fpir(t) for t in targets}
    if n_compared is not None and gallery_size:
        nc = np.asarray(n_compared, dtype=np.float64).ravel()
        out["penetration_rate"] = penetration_rate(nc, gallery_size)
        out["penetration_rate_mated"] = penetration_rate(nc[mask], gallery_size)
        out["penetration_rate_nonmated"] = penetration_rate(nc[~mask], gallery_size)
    return out


# ------------------------------------------------------------------ pre-selection (indexing)
#: Penetration rates at which hit-rate curves are reported (shares of the gallery).
DEFAULT_PENETRATIONS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def hit_rate_curve(needed: ArrayLike, penetrations: ArrayLike) -> np.ndarray:
    """Hit rate of an index against penetration: for each penetration ``p``, the share of
    mated searches whose mate the index passes on within a share ``p`` of the gallery.

    ``needed``: per mated search, the penetration the index needed to return the mate (its
    position in the index's list over the gallery size), ``inf`` when it did not return it
    (or failed); nan counts as ``inf``. Returns one rate per penetration (nan without
    mated searches).

    >>> hit_rate_curve([0.01, 0.5, float("inf")], [0.01, 0.5, 1.0]).round(3).tolist()
    [0.333, 0.667, 0.667]
    """
    need = np.asarray(needed, dtype=np.float64).ravel()
    need = np.where(np.isnan(need), np.inf, need)
    p = np.asarray(penetrations, dtype=np.float64).ravel()
    if need.size == 0:
        return np.full(p.shape, np.nan)
    s = np.sort(need)
    return np.searchsorted(s, p + 1e-12, side="right") / need.size


def oracle_needed_penetration(mate_rank: ArrayLike, n_subjects: int) -> np.ndarray:
    """The penetration each mated search of an exhaustive run needed to keep its mate if
    an index ranked the gallery as the matcher does (the best any index can do for this
    matcher: a cascade with it loses nothing the matcher would have found):
    ``rank / n_subjects``, ``inf`` where the mate was not within the candidate list (its
    needed penetration is then above ``L / n_subjects``: the curve is known up to there).
    It counts subjects, so it equals the template share when every subject has as many
    gallery templates.

    >>> oracle_needed_penetration([1, 3, 0], 100).tolist()
    [0.01, 0.03, inf]
    """
    r = np.asarray(mate_rank, dtype=np.float64).ravel()
    return np.where(r > 0, r / max(int(n_subjects), 1), np.inf)


def index_summary(table: dict[str, np.ndarray], units: list[dict[str, Any]], penetration: float,
                  gallery_size: int, penetrations: tuple[float, ...] = DEFAULT_PENETRATIONS) -> dict[str, Any]:
    """The index's side of a cascade run, from its searches table and unit rows: hit rate
    at the budget and against penetration (up to the budget: the index was not asked for
    more), penetration actually used, candidates, work and time per search, the index's
    faults, and its build time and memory per gallery template."""
    enrolled = np.asarray(table["enrolled"], dtype=bool)
    mated = np.asarray(table["mated"], dtype=bool)  # a probe that could not be enrolled: a miss, as in FNIR
    needed = np.asarray(table["mate_index_fraction"], dtype=np.float64)[mated]
    ps = tuple(p for p in penetrations if p <= penetration + 1e-12)
    if penetration not in ps:
        ps = ps + (penetration,)
    curve = hit_rate_curve(needed, ps)
    cands = np.asarray(table["index_candidates"], dtype=np.float64)[enrolled]

    def per_search(column: str) -> float | None:
        v = np.asarray(table[column], dtype=np.float64)[enrolled]
        return float(v.mean()) if v.size else None

    built = [u for u in units if u.get("index_built", 0) > 0]
    faults = {k: int(np.asarray(table[f"index_{k}"]).sum()) for k in ("failed", "invalid", "duplicates", "over_budget")}
    faults["searches_with_a_fault"] = int(sum(
        (np.asarray(table[f"index_{k}"])[enrolled] > 0) for k in ("failed", "invalid", "duplicates", "over_budget")
    ).astype(bool).sum()) if enrolled.any() else 0
    errors = sorted({str(u.get("index_error", "")) for u in units if u.get("index_error")})
    return {
        "penetration_budget": penetration,
        "n_mated_searches": int(mated.sum()),
        "hit_rate": _json_number(float(hit_rate_curve(needed, [penetration])[0])) if mated.any() else None,
        "hit_rate_curve": {"penetration": list(ps), "hit_rate": [_json_number(float(x)) for x in curve]},
        "penetration_rate": float(cands.sum() / (cands.size * gallery_size)) if cands.size and gallery_size else None,
        "candidates_per_search": float(cands.mean()) if cands.size else None,
        "work_per_search": per_search("index_work"),
        "index_seconds_per_search": per_search("index_seconds"),
        "index_cpu_seconds_per_search": per_search("index_cpu_seconds"),
        "faults": faults,
        "errors": errors[:10],
        "build_seconds_per_template": sum(u["index_build_seconds"] for u in built) / max(gallery_size, 1),
        "build_cpu_seconds_per_template": sum(u["index_build_cpu_seconds"] for u in built) / max(gallery_size, 1),
        "memory_bytes_per_template": (sum(u["index_memory_bytes"] for u in _first_build(built))
                                      / max(gallery_size, 1)),
        "note": "hit rate: share of mated searches whose mate the index returned within the budget (a probe "
                "that could not be enrolled is a miss); "
                "penetration_rate: candidates returned over gallery size; build cost summed over the shards "
                "(a shard built by two workers counts twice)",
    }


def _first_build(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One build per gallery shard (the memory of an index does not add up over workers)."""
    seen: dict[float, dict[str, Any]] = {}
    for u in units:
        seen.setdefault(u["gallery_shard"], u)
    return list(seen.values())
