"""Error rates as a function of image quality: quality bands and the error-versus-reject
characteristic.

Pure functions of arrays, like :mod:`bench.metrics`. Scores are similarities with the FVC
failure rules already applied (:func:`bench.metrics.apply_failures`); qualities are
higher-is-better scores (ISO/IEC 29794-1), NaN where an image has none (the quality
plugin failed on it, or is not defined for it).

Definitions
-----------
Pair quality
    The quality of a comparison is the lower of its two images' qualities (Grother and
    Tabassi, IEEE TPAMI 29(4), 2007); NaN when either is NaN. Comparisons without a pair
    quality take no part in the curves below; their number is reported.
Error-versus-reject characteristic (ERC)
    With a threshold ``t`` fixed beforehand, the comparisons whose pair quality is lowest
    are set aside, a fraction ``x`` of the genuine comparisons, and the FNMR of the rest,
    the share of their scores ``< t``, is plotted against ``x``. Images are set aside by
    quality, so comparisons of equal pair quality go together: the curve has one point per
    distinct pair quality ``q`` (everything below ``q`` set aside), starting at ``x = 0``.
    ``t`` is chosen so that the FNMR without rejection is a given value (default 10 %):
    the ``k``-th lowest genuine score, ``k = round(f n)``; ties make the FNMR reached at ``t``
    (reported) lower than ``f``.
Ideal ERC
    Were exactly the false non-matches of lowest quality, setting aside ``x`` would remove
    ``x n`` of them: ``FNMR(x) = (FNMR(0) - x) / (1 - x)`` until it reaches 0 at
    ``x = FNMR(0)``.
Quality bands
    Half-open ranges ``[edge_i, edge_i+1)`` of pair quality (the last one closed); the
    genuine and impostor comparisons of a band give that band's DET curve and EER.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from bench import metrics as M

#: Quality bands a score range is cut into by default (NFIQ 2's 0-100: 20 points each).
DEFAULT_N_BANDS = 5
#: FNMR without rejection that fixes the ERC's threshold by default.
DEFAULT_ERC_FNMR = 0.10
#: Reject fractions at which an ERC is tabulated.
REJECT_FRACTIONS = (0.0, 0.05, 0.10, 0.20)


def pair_quality(probe_quality: ArrayLike, reference_quality: ArrayLike) -> np.ndarray:
    """The quality of each comparison: the lower of its two images' qualities (NaN if either is)."""
    a = np.asarray(probe_quality, dtype=np.float64)
    b = np.asarray(reference_quality, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"probe and reference qualities differ in shape: {a.shape} and {b.shape}")
    return np.minimum(a, b)  # NaN propagates


def erc_threshold(genuine: ArrayLike, fnmr: float = DEFAULT_ERC_FNMR) -> float:
    """The threshold at which about ``fnmr`` of the ``genuine`` similarity scores are
    below it: the ``round(fnmr * n)``-th lowest score (0-based), ``+inf`` when that is all of them."""
    g = np.sort(np.asarray(genuine, dtype=np.float64))
    if g.size == 0:
        raise ValueError("no genuine scores")
    if np.isnan(g).any():
        raise ValueError("genuine scores contain NaN")
    if not 0.0 <= fnmr <= 1.0:
        raise ValueError(f"fnmr must be within [0, 1], got {fnmr}")
    k = int(round(fnmr * g.size))
    return float(g[k]) if k < g.size else float("inf")


@dataclass(frozen=True)
class ErrorRejectCurve:
    """One ERC: per point, the fraction of genuine comparisons set aside, the FNMR of the
    rest at ``threshold``, and the lowest pair quality kept (everything below it set aside)."""

    reject_fraction: np.ndarray
    fnmr: np.ndarray
    quality_kept: np.ndarray
    threshold: float
    n_genuine: int
    n_without_quality: int

    @property
    def fnmr_start(self) -> float:
        return float(self.fnmr[0])

    def ideal(self, reject_fraction: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ideal curve from the same start: ``(x, max(0, (FNMR(0) - x) / (1 - x)))``."""
        x = np.linspace(0.0, float(self.reject_fraction[-1]), 201) if reject_fraction is None \
            else np.asarray(reject_fraction, dtype=np.float64)
        return x, ideal_fnmr(self.fnmr_start, x)

    def at(self, fraction: float) -> tuple[float, float]:
        """``(x, FNMR)`` of the point that sets aside the most while setting aside at most ``fraction``."""
        i = int(np.searchsorted(self.reject_fraction, fraction + 1e-12, side="right")) - 1
        return float(self.reject_fraction[i]), float(self.fnmr[i])

    def to_dict(self, fractions: Sequence[float] = REJECT_FRACTIONS) -> dict[str, Any]:
        return {"threshold": M._json_threshold(self.threshold), "fnmr_start": self.fnmr_start,
                "n_genuine": self.n_genuine, "n_without_quality": self.n_without_quality,
                "at": [{"target": f, "reject_fraction": x, "fnmr": y, "ideal_fnmr": float(ideal_fnmr(self.fnmr_start, x))}
                       for f in fractions for x, y in [self.at(f)]],
                "curve": {"reject_fraction": self.reject_fraction.tolist(), "fnmr": self.fnmr.tolist(),
                          "quality_kept": self.quality_kept.tolist()}}


def ideal_fnmr(fnmr_start: float, reject_fraction: ArrayLike) -> np.ndarray:
    """``max(0, (FNMR(0) - x) / (1 - x))``, 0 at ``x = 1``."""
    x = np.asarray(reject_fraction, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(x < 1.0, (fnmr_start - x) / (1.0 - x), 0.0)
    return np.clip(y, 0.0, None)


def error_versus_reject(genuine: ArrayLike, quality: ArrayLike, threshold: float) -> ErrorRejectCurve:
    """The ERC of genuine similarity scores with their pair qualities at ``threshold``.

    Comparisons whose quality is NaN are left out (counted in ``n_without_quality``).
    Raises ValueError when no genuine comparison has a quality.
    """
    g = np.asarray(genuine, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if g.shape != q.shape or g.ndim != 1:
        raise ValueError(f"genuine scores and qualities must be 1-D arrays of one length: {g.shape}, {q.shape}")
    if np.isnan(g).any():
        raise ValueError("genuine scores contain NaN")
    known = ~np.isnan(q)
    g, q = g[known], q[known]
    n = g.size
    if n == 0:
        raise ValueError("no genuine comparison has a quality score")
    order = np.argsort(q, kind="stable")
    q_sorted = q[order]
    errors = (g[order] < threshold).astype(np.int64)
    # errors among the comparisons of rank >= i, for every i
    errors_from = np.concatenate([np.cumsum(errors[::-1])[::-1], [0]])
    levels, first = np.unique(q_sorted, return_index=True)  # first index of each distinct quality
    kept = n - first
    return ErrorRejectCurve(first / n, errors_from[first] / kept, levels, float(threshold), n,
                            int((~known).sum()))


def default_band_edges(score_range: Sequence[float], n: int = DEFAULT_N_BANDS) -> list[float]:
    """``n`` bands of equal width over a quality plugin's declared score range."""
    lo, hi = float(score_range[0]), float(score_range[1])
    return [float(v) for v in np.linspace(lo, hi, n + 1)]


def band_labels(edges: Sequence[float]) -> list[str]:
    """``"[0, 20)"``, ..., ``"[80, 100]"``."""
    e = [float(v) for v in edges]
    return [f"[{a:g}, {b:g}{']' if i == len(e) - 2 else ')'}" for i, (a, b) in enumerate(zip(e, e[1:]))]


def band_index(quality: ArrayLike, edges: Sequence[float]) -> np.ndarray:
    """Band of each quality (-1: NaN or outside the edges); bands are ``[e_i, e_i+1)``, the last closed."""
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or not np.all(np.diff(e) > 0):
        raise ValueError(f"band edges must be at least two increasing numbers, got {list(edges)}")
    q = np.asarray(quality, dtype=np.float64)
    idx = np.searchsorted(e, q, side="right") - 1
    idx = np.where(q == e[-1], e.size - 2, idx)
    return np.where(np.isnan(q) | (idx < 0) | (idx > e.size - 2), -1, idx)


def band_metrics(scores: ArrayLike, genuine: ArrayLike, quality: ArrayLike, edges: Sequence[float], *,
                 det: bool = True) -> list[dict[str, Any]]:
    """Per quality band of the pair quality: its counts, and its EER (and DET curve, with
    ``det``) where it has both genuine and impostor comparisons (``None`` otherwise).
    ``scores`` are similarities with the failure rules applied."""
    s = np.asarray(scores, dtype=np.float64)
    g = np.asarray(genuine, dtype=bool)
    band = band_index(quality, edges)
    out = []
    for i, label in enumerate(band_labels(edges)):
        sel = band == i
        gs, im = s[sel & g], s[sel & ~g]
        row: dict[str, Any] = {"band": label, "low": float(edges[i]), "high": float(edges[i + 1]),
                               "n_genuine": int(gs.size), "n_impostor": int(im.size), "eer": None, "det": None}
        if gs.size and im.size:
            curve = M.error_curve(gs, im)
            row["eer"] = curve.eer().eer
            if det:
                points = curve.det()
                row["det"] = {"fmr": points.fmr.tolist(), "fnmr": points.fnmr.tolist()}
        if not det:
            del row["det"]
        out.append(row)
    return out


def quality_distribution(quality: ArrayLike, edges: Sequence[float]) -> dict[str, Any]:
    """Summary of per-image qualities (NaN = none): count, mean, quartiles, and images per band."""
    q = np.asarray(quality, dtype=np.float64)
    q = q[~np.isnan(q)]
    band = band_index(q, edges)
    out: dict[str, Any] = {"n": int(q.size), "mean": None, "min": None, "p25": None, "median": None,
                           "p75": None, "max": None,
                           "per_band": {label: int((band == i).sum()) for i, label in enumerate(band_labels(edges))}}
    if q.size:
        p25, p50, p75 = (float(v) for v in np.percentile(q, [25, 50, 75]))
        out.update(mean=float(q.mean()), min=float(q.min()), p25=p25, median=p50, p75=p75, max=float(q.max()))
    return out


__all__ = [
    "DEFAULT_N_BANDS", "DEFAULT_ERC_FNMR", "default_band_edges", "REJECT_FRACTIONS", "ErrorRejectCurve", "pair_quality",
    "erc_threshold", "error_versus_reject", "ideal_fnmr", "band_labels", "band_index", "band_metrics",
    "quality_distribution",
]


def quality_summary(scores: ArrayLike, genuine: ArrayLike, probe_quality: ArrayLike, reference_quality: ArrayLike,
                    edges: Sequence[float], *, erc_fnmr: float = DEFAULT_ERC_FNMR) -> dict[str, Any]:
    """The quality part of a run's summary: bands (counts and EER) and the ERC at the
    threshold where the FNMR without rejection is ``erc_fnmr``, with the FMR of all impostor
    comparisons there (None when no genuine comparison has a pair quality). ``scores`` are similarities with the failure rules applied."""
    s = np.asarray(scores, dtype=np.float64)
    g = np.asarray(genuine, dtype=bool)
    q = pair_quality(probe_quality, reference_quality)
    out: dict[str, Any] = {"pair_quality": "the lower of the two images' qualities",
                           "n_comparisons_without_quality": int(np.isnan(q).sum()),
                           "bands": band_metrics(s, g, q, edges, det=False), "erc": None}
    if g.any() and not np.isnan(q[g]).all():
        t = erc_threshold(s[g], erc_fnmr)
        erc = error_versus_reject(s[g], q[g], t)
        imp = s[~g]
        out["erc"] = {"fnmr_target": erc_fnmr, **erc.to_dict(),
                      "fmr_at_threshold": float(np.mean(imp >= t)) if imp.size else None}
    return out
