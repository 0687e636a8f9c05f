"""Minutiae from the skeleton: detection, direction, false-minutiae removal and quality.

Directions follow ISO/IEC 19794-2: a ridge ending is the bifurcation of the valley
skeleton, so its direction points from the ending *into* the ridge (along the ridge
body); a bifurcation's direction points from the fork along the valley between the two
branches (away from the stem). Internally angles are in image coordinates (from +x
towards +y, y pointing down); :func:`to_iso_angle` converts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from extractors.classic.skeleton import SkeletonGraph

ENDING = 1
BIFURCATION = 2
# A skeleton direction within this angle of the orientation field takes the field's value.
_MAX_SNAP = np.pi / 4


@dataclass
class Candidates:
    """Minutiae candidates, one entry each, in image coordinates."""

    x: np.ndarray  # float32 pixels
    y: np.ndarray
    angle: np.ndarray  # image coordinates, radians
    kind: np.ndarray  # ENDING / BIFURCATION
    quality: np.ndarray  # float32 0-100

    def __len__(self) -> int:
        return int(self.x.size)

    def select(self, keep: np.ndarray) -> "Candidates":
        return Candidates(self.x[keep], self.y[keep], self.angle[keep], self.kind[keep], self.quality[keep])


def to_iso_angle(image_angle: np.ndarray) -> np.ndarray:
    """Image-coordinate angle (y down) to the ISO convention (counter-clockwise as seen)."""
    return np.mod(-image_angle, 2 * np.pi)


def _disk_offsets(radius: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(r, r, indexing="ij")
    inside = dx * dx + dy * dy <= radius * radius
    return dy[inside], dx[inside]


def _mean_offsets(labels: np.ndarray, ys: np.ndarray, xs: np.ndarray, targets: np.ndarray,
                  radius: int) -> np.ndarray:
    """Mean (dx, dy) from each point to the pixels of its target label within ``radius``.

    ``targets`` has shape (n,) or (n, k); the result has shape targets.shape + (2,).
    """
    dy, dx = _disk_offsets(radius)
    padded = np.pad(labels, radius)
    patch = padded[(ys + radius)[:, None] + dy[None, :], (xs + radius)[:, None] + dx[None, :]]  # (n, P)
    if targets.ndim == 2:
        patch = patch[:, None, :]
    hit = patch == targets[..., None]
    count = hit.sum(axis=-1)
    sx = (hit * dx).sum(axis=-1)
    sy = (hit * dy).sum(axis=-1)
    safe = np.maximum(count, 1)
    return np.stack([sx / safe, sy / safe], axis=-1).astype(np.float32)


def _resolve_angle(vectors: np.ndarray, orientation: np.ndarray, max_deviation: float) -> np.ndarray:
    """Direction of each vector, snapped to the local ridge orientation when they agree.

    The orientation field is more precise than a few skeleton pixels, but it has no
    sense; the vector gives the sense. Where the two disagree by more than
    ``max_deviation`` (near cores and deltas) the vector's own direction is kept.
    """
    coarse = np.arctan2(vectors[:, 1], vectors[:, 0])
    diff = np.mod(coarse - orientation + np.pi / 2, np.pi) - np.pi / 2  # in [-pi/2, pi/2)
    snapped = coarse - diff
    return np.where(np.abs(diff) <= max_deviation, snapped, coarse).astype(np.float32)


def detect(
    cn: np.ndarray,
    graph: SkeletonGraph,
    orientation: np.ndarray,
    spur_px: float,
    bridge_px: float,
    short_ridge_px: float,
    direction_radius_px: int,
) -> Candidates:
    """Endings and bifurcations of the skeleton, with the structural false ones removed.

    Removed: short isolated ridges and dots (both ends within ``short_ridge_px``), spurs
    (an ending joined to a fork by less than ``spur_px``: both go), bridges and small
    loops (two forks, or a fork with itself, joined by less than ``bridge_px``), and
    forks that do not have exactly three branches.
    """
    b_labels = graph.branch_labels
    n_branches = graph.branch_length.size
    n_junctions = graph.junction_centres.shape[0]
    ey, ex = np.nonzero(cn == 1)
    e_branch = b_labels[ey, ex]

    ends_per_branch = np.bincount(e_branch, minlength=n_branches)
    j_of_edge, b_of_edge = graph.edges[:, 0], graph.edges[:, 1]
    junctions_per_branch = np.bincount(b_of_edge, minlength=n_branches)
    degree = np.bincount(j_of_edge, minlength=n_junctions)
    length = graph.branch_length.astype(np.float32)

    drop_branch_ends = np.zeros(n_branches, dtype=bool)
    drop_junction = np.zeros(n_junctions, dtype=bool)
    drop_junction[0] = True
    drop_junction[degree != 3] = True

    # Islands and short ridges: a branch with two free ends.
    drop_branch_ends |= (ends_per_branch >= 2) & (junctions_per_branch == 0) & (length < short_ridge_px)
    # Spurs: an ending joined to a fork by a short branch.
    spur = (ends_per_branch == 1) & (junctions_per_branch == 1) & (length < spur_px)
    drop_branch_ends |= spur
    # Bridges (two forks) and small loops (a fork with itself): no free end.
    bridge = (ends_per_branch == 0) & (junctions_per_branch == 2) & (length < bridge_px)
    loop = (ends_per_branch == 0) & (junctions_per_branch == 1) & (length < 2 * bridge_px)
    bad_edge = (spur | bridge | loop)[b_of_edge]
    drop_junction[j_of_edge[bad_edge]] = True
    drop_branch_ends[0] = True  # an ending inside a fork's neighbourhood: a one-pixel spur

    if np.any(e_branch == 0):
        # Their forks go too: find the fork next to each such ending.
        grown = cv2.dilate(graph.junction_labels.astype(np.float32), np.ones((5, 5), np.uint8))
        drop_junction[grown[ey[e_branch == 0], ex[e_branch == 0]].astype(np.intp)] = True

    keep_e = ~drop_branch_ends[e_branch]
    ey, ex, e_branch = ey[keep_e], ex[keep_e], e_branch[keep_e]

    # Ending directions: towards the ridge body.
    if ey.size:
        vec = _mean_offsets(b_labels, ey, ex, e_branch, direction_radius_px)
        e_angle = _resolve_angle(vec, orientation[ey, ex], _MAX_SNAP)
    else:
        e_angle = np.empty(0, dtype=np.float32)

    # Bifurcation directions: towards the two branches, i.e. the sum of branch directions.
    good_j = np.nonzero(~drop_junction)[0]
    if good_j.size:
        order = np.argsort(j_of_edge, kind="stable")
        starts = np.searchsorted(j_of_edge[order], good_j)
        branch_ids = b_of_edge[order][starts[:, None] + np.arange(3)[None, :]]  # (n, 3)
        centres = graph.junction_centres[good_j]
        jx = np.clip(np.round(centres[:, 0]).astype(np.intp), 0, b_labels.shape[1] - 1)
        jy = np.clip(np.round(centres[:, 1]).astype(np.intp), 0, b_labels.shape[0] - 1)
        vec = _mean_offsets(b_labels, jy, jx, branch_ids, direction_radius_px + 2)  # (n, 3, 2)
        norm = np.linalg.norm(vec, axis=-1, keepdims=True)
        unit = vec / np.maximum(norm, 1e-6)
        # The stem is the branch most opposite to the other two; the fork opens the
        # other way: along the two branches, against the stem.
        total = unit.sum(axis=1, keepdims=True)
        stem = np.argmin((unit * (total - unit)).sum(axis=-1), axis=1)
        stem_unit = unit[np.arange(len(stem)), stem]
        j_angle = _resolve_angle(total[:, 0] - 2 * stem_unit, orientation[jy, jx], _MAX_SNAP)
        bx, by = centres[:, 0], centres[:, 1]
    else:
        j_angle = np.empty(0, dtype=np.float32)
        bx = by = np.empty(0, dtype=np.float32)

    return Candidates(
        x=np.concatenate([ex.astype(np.float32), bx.astype(np.float32)]),
        y=np.concatenate([ey.astype(np.float32), by.astype(np.float32)]),
        angle=np.concatenate([e_angle, j_angle]).astype(np.float32),
        kind=np.concatenate([np.full(ex.size, ENDING, np.uint8), np.full(bx.size, BIFURCATION, np.uint8)]),
        quality=np.zeros(ex.size + bx.size, dtype=np.float32),
    )


def remove_near_border(c: Candidates, mask: np.ndarray, border_px: float) -> tuple[Candidates, np.ndarray]:
    """Drop minutiae closer than ``border_px`` to the mask's edge or the image's edge.

    Returns the kept candidates and their distance to the border (pixels).
    """
    padded = np.pad(mask.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    xi = np.clip(np.round(c.x).astype(np.intp), 0, mask.shape[1] - 1)
    yi = np.clip(np.round(c.y).astype(np.intp), 0, mask.shape[0] - 1)
    d = dist[yi, xi]
    keep = d >= border_px
    return c.select(keep), d[keep]


def remove_close_pairs(c: Candidates, min_distance_px: float, break_distance_px: float) -> np.ndarray:
    """Boolean keep-mask dropping clustered minutiae and the two ends of broken ridges.

    Any two minutiae closer than ``min_distance_px`` both go (noise makes such clusters).
    Two endings closer than ``break_distance_px`` that face each other (opposite
    directions, each lying ahead of the other along the ridge) are a broken ridge.
    """
    n = len(c)
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    dx = c.x[None, :] - c.x[:, None]
    dy = c.y[None, :] - c.y[:, None]
    dist = np.hypot(dx, dy)
    np.fill_diagonal(dist, np.inf)
    keep &= ~np.any(dist < min_distance_px, axis=1)

    ux, uy = np.cos(c.angle), np.sin(c.angle)
    ending = c.kind == ENDING
    opposite = (ux[:, None] * ux[None, :] + uy[:, None] * uy[None, :]) < -np.cos(np.pi / 4)
    # The line from i to j runs along j's direction (j's ridge continues away from i).
    with np.errstate(invalid="ignore", divide="ignore"):
        along = (dx * ux[None, :] + dy * uy[None, :]) / dist > np.cos(np.pi / 4)
    broken = (dist < break_distance_px) & opposite & along & ending[:, None] & ending[None, :]
    broken |= broken.T
    keep &= ~np.any(broken, axis=1)
    return keep


def remove_at_mask_edge(c: Candidates, mask: np.ndarray, probe_px: float) -> np.ndarray:
    """Boolean keep-mask dropping ridge endings made by the edge of the print.

    A ridge that runs out of the segmented area ends there, and the skeleton reports
    an ending that is not on the finger. Such an ending's ridge would continue outwards,
    against the ending's direction (which points into the ridge body): when the point
    ``probe_px`` ahead of the ending, in that continuation, lies outside ``mask`` (or
    outside the image), the ending goes. Bifurcations are kept. ``probe_px`` <= 0 keeps
    everything.
    """
    keep = np.ones(len(c), dtype=bool)
    if probe_px <= 0 or len(c) == 0:
        return keep
    h, w = mask.shape
    px = np.round(c.x - probe_px * np.cos(c.angle)).astype(np.intp)
    py = np.round(c.y - probe_px * np.sin(c.angle)).astype(np.intp)
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    on_mask = np.zeros(len(c), dtype=bool)
    on_mask[inside] = mask[py[inside], px[inside]]
    keep[(c.kind == ENDING) & ~on_mask] = False
    return keep


def minutia_quality(c: Candidates, coherence: np.ndarray, border_distance: np.ndarray,
                    quality_border_px: float, reliability: np.ndarray | None = None,
                    reliability_full: float = 0.5) -> np.ndarray:
    """Quality 0-100: local ridge coherence and, when given, the enhancement's
    reliability (full marks from ``reliability_full`` up), lowered near the border.

    The geometric mean of coherence and reliability, so a minutia scores high only
    where the orientation is clear *and* the ridge pattern is real.
    """
    xi = np.clip(np.round(c.x).astype(np.intp), 0, coherence.shape[1] - 1)
    yi = np.clip(np.round(c.y).astype(np.intp), 0, coherence.shape[0] - 1)
    border = np.clip(border_distance / max(quality_border_px, 1e-6), 0.0, 1.0)
    local = coherence[yi, xi].astype(np.float64)
    if reliability is not None:
        local = np.sqrt(local * np.clip(reliability[yi, xi] / reliability_full, 0.0, 1.0))
    return np.clip(100.0 * local * np.sqrt(border), 0, 100).astype(np.float32)
