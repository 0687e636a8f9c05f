"""Minutiae-level accuracy of an extractor against ground truth.

Found and true minutiae are paired one-to-one by the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``): among pairs closer than a distance tolerance
(and, when asked, with directions closer than an angle tolerance) it keeps as many pairs
as possible, and of those the set with the smallest total distance. Tolerances are in
millimetres and degrees, so they mean the same at any resolution.

Paired minutiae are true positives; unpaired found ones are false positives (only those
inside the region where the ground truth is complete count, when a region is given);
unpaired true ones are misses.

    >>> from bench.template import Template, make_minutiae
    >>> truth = Template(make_minutiae([10, 50], [10, 50], [0, 1]), 100, 100, 500)
    >>> found = Template(make_minutiae([12, 90], [10, 90], [0.1, 0]), 100, 100, 500)
    >>> r = evaluate_minutiae(found, truth)
    >>> (r.true_positives, r.false_positives, r.false_negatives)
    (1, 1, 1)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable

import numpy as np

from bench.template import Template

MM_PER_INCH = 25.4
#: Default pairing tolerances: about one ridge period, and the usual 30 degrees.
DISTANCE_MM = 0.45
ANGLE_DEG = 30.0


def angle_difference_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute circular difference of angles in radians, in degrees [0, 180]."""
    d = np.mod(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), 2 * np.pi)
    return np.degrees(np.minimum(d, 2 * np.pi - d))


@dataclass(frozen=True)
class MinutiaeAccuracy:
    """Accuracy of one template (or of many, summed: see :func:`aggregate`).

    Localisation and angle errors are over the paired minutiae; ``angle_agreement`` is
    the share of pairs whose directions agree within the angle tolerance, and
    ``angle_agreement_reversed`` the same with one side turned by 180 degrees (high
    when an extractor uses the opposite direction convention); ``type_agreement`` the
    share of pairs of the same known type.
    """

    true_positives: int
    false_positives: int
    false_negatives: int
    n_found: int  # found minutiae considered (inside the region)
    n_truth: int
    precision: float
    recall: float
    f1: float
    mean_distance_mm: float
    median_distance_mm: float
    mean_angle_error_deg: float
    median_angle_error_deg: float
    angle_agreement: float
    angle_agreement_reversed: float
    type_agreement: float
    distance_mm: float
    angle_deg: float
    angle_required: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Pairing:
    """Indices of paired minutiae (found[i] with truth[j]) and their errors."""

    found_index: np.ndarray
    truth_index: np.ndarray
    distance_px: np.ndarray
    angle_error_deg: np.ndarray
    found_considered: np.ndarray  # bool mask over found minutiae: inside the region


def pair_minutiae(
    found: Template,
    truth: Template,
    distance_mm: float = DISTANCE_MM,
    angle_deg: float = ANGLE_DEG,
    require_angle: bool = False,
    region: np.ndarray | None = None,
) -> Pairing:
    """Optimal one-to-one pairing of ``found`` with ``truth`` (see the module doc)."""
    _check(found, truth, distance_mm, angle_deg)
    f, t = found.minutiae, truth.minutiae
    considered = np.ones(f.size, dtype=bool)
    if region is not None:
        region = np.asarray(region, dtype=bool)
        if region.shape != (truth.height, truth.width):
            raise ValueError(
                f"region is {region.shape[1]}x{region.shape[0]}, the image is {truth.width}x{truth.height}"
            )
        xi = np.clip(np.round(f["x"]).astype(np.int64), 0, truth.width - 1)
        yi = np.clip(np.round(f["y"]).astype(np.int64), 0, truth.height - 1)
        inside = (f["x"] >= -0.5) & (f["x"] < truth.width - 0.5) & (f["y"] >= -0.5) & (f["y"] < truth.height - 0.5)
        considered = inside & region[yi, xi]
    fi = np.flatnonzero(considered)
    tol_px = distance_mm * truth.dpi / MM_PER_INCH
    empty = np.zeros(0, dtype=np.int64)
    if fi.size == 0 or t.size == 0:
        return Pairing(empty, empty, np.zeros(0), np.zeros(0), considered)
    fx, fy = f["x"][fi].astype(np.float64), f["y"][fi].astype(np.float64)
    d = np.hypot(fx[:, None] - t["x"][None, :], fy[:, None] - t["y"][None, :])
    da = angle_difference_deg(f["angle"][fi][:, None], t["angle"][None, :])
    feasible = d <= tol_px
    if require_angle:
        feasible &= da <= angle_deg
    # Infeasible pairs cost more than any set of feasible ones, so the assignment first
    # maximises the number of feasible pairs, then minimises their total distance.
    big = tol_px * (min(d.shape) + 1) + 1.0
    cost = np.where(feasible, d, big)
    from scipy.optimize import linear_sum_assignment  # imported here: scipy.optimize is slow to import

    rows, cols = linear_sum_assignment(cost)
    keep = feasible[rows, cols]
    rows, cols = rows[keep], cols[keep]
    return Pairing(fi[rows], cols, d[rows, cols], da[rows, cols], considered)


def evaluate_minutiae(
    found: Template,
    truth: Template,
    distance_mm: float = DISTANCE_MM,
    angle_deg: float = ANGLE_DEG,
    require_angle: bool = False,
    region: np.ndarray | None = None,
) -> MinutiaeAccuracy:
    """Precision, recall, F1 and localisation/angle errors of ``found`` against ``truth``.

    ``require_angle``: pair only minutiae whose directions agree within ``angle_deg``
    (False by default: pair on position, report the angle agreement separately, so an
    extractor with another direction convention is not scored as missing everything).
    ``region``: a boolean image (height x width of the truth) where the ground truth is
    complete; found minutiae outside it are ignored.
    """
    p = pair_minutiae(found, truth, distance_mm, angle_deg, require_angle, region)
    f, t = found.minutiae, truth.minutiae
    tp = int(p.found_index.size)
    n_found = int(p.found_considered.sum())
    types_f, types_t = f["type"][p.found_index], t["type"][p.truth_index]
    known = (types_f > 0) & (types_t > 0)
    return _summary(
        tp, n_found, int(t.size),
        p.distance_px * MM_PER_INCH / truth.dpi, p.angle_error_deg,
        int(np.sum(types_f[known] == types_t[known])), int(known.sum()),
        distance_mm, angle_deg, require_angle,
    )


def _summary(
    tp: int, n_found: int, n_truth: int, dist_mm: np.ndarray, ang: np.ndarray, same_type: int, known_type: int,
    distance_mm: float, angle_deg: float, require_angle: bool,
) -> MinutiaeAccuracy:
    nan = float("nan")
    precision = tp / n_found if n_found else nan
    recall = tp / n_truth if n_truth else nan
    f1 = 2 * tp / (n_found + n_truth) if n_found + n_truth else nan
    return MinutiaeAccuracy(
        true_positives=tp,
        false_positives=n_found - tp,
        false_negatives=n_truth - tp,
        n_found=n_found,
        n_truth=n_truth,
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        mean_distance_mm=float(np.mean(dist_mm)) if tp else nan,
        median_distance_mm=float(np.median(dist_mm)) if tp else nan,
        mean_angle_error_deg=float(np.mean(ang)) if tp else nan,
        median_angle_error_deg=float(np.median(ang)) if tp else nan,
        angle_agreement=float(np.mean(ang <= angle_deg)) if tp else nan,
        angle_agreement_reversed=float(np.mean(180.0 - ang <= angle_deg)) if tp else nan,
        type_agreement=same_type / known_type if known_type else nan,
        distance_mm=float(distance_mm),
        angle_deg=float(angle_deg),
        angle_required=bool(require_angle),
    )


def aggregate(
    pairs: Iterable[tuple[Template, Template] | tuple[Template, Template, np.ndarray | None]],
    distance_mm: float = DISTANCE_MM,
    angle_deg: float = ANGLE_DEG,
    require_angle: bool = False,
) -> MinutiaeAccuracy:
    """Accuracy over many images, counts summed before the ratios (micro-average):
    ``pairs`` yields (found, truth) or (found, truth, region)."""
    tp = n_found = n_truth = same = known = 0
    dists: list[np.ndarray] = []
    angs: list[np.ndarray] = []
    for item in pairs:
        found, truth = item[0], item[1]
        region = item[2] if len(item) > 2 else None  # type: ignore[misc]
        p = pair_minutiae(found, truth, distance_mm, angle_deg, require_angle, region)
        tp += int(p.found_index.size)
        n_found += int(p.found_considered.sum())
        n_truth += int(truth.minutiae.size)
        dists.append(p.distance_px * MM_PER_INCH / truth.dpi)
        angs.append(p.angle_error_deg)
        tf, tt = found.minutiae["type"][p.found_index], truth.minutiae["type"][p.truth_index]
        k = (tf > 0) & (tt > 0)
        same += int(np.sum(tf[k] == tt[k]))
        known += int(k.sum())
    dist = np.concatenate(dists) if dists else np.zeros(0)
    ang = np.concatenate(angs) if angs else np.zeros(0)
    return _summary(tp, n_found, n_truth, dist, ang, same, known, distance_mm, angle_deg, require_angle)


def _check(found: Template, truth: Template, distance_mm: float, angle_deg: float) -> None:
    if not distance_mm > 0:
        raise ValueError(f"distance_mm must be positive, got {distance_mm}")
    if not 0 < angle_deg <= 180:
        raise ValueError(f"angle_deg must be in (0, 180], got {angle_deg}")
    if (found.width, found.height) != (truth.width, truth.height):
        raise ValueError(
            f"found minutiae refer to a {found.width}x{found.height} image, the ground truth to "
            f"{truth.width}x{truth.height}"
        )
    if abs(found.dpi - truth.dpi) > 0.01 * truth.dpi:
        raise ValueError(f"found minutiae are at {found.dpi:g} dpi, the ground truth at {truth.dpi:g} dpi")
