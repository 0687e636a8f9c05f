"""Minutia Cylinder-Code cylinders (Cappelli, Ferrara and Maltoni, IEEE TPAMI 32(12), 2010).

Each minutia gets a cylinder: a disc of radius R centred on it and rotated with its
direction, divided into NS x NS spatial cells, each split into ND directional cells.
A cell records how many neighbouring minutiae lie near its centre (Gaussian in the
distance, sigma_S) with a direction difference near the cell's angle (Gaussian integral
over the cell's angular width, sigma_D), squashed by a sigmoid (MCC-S) or thresholded
to one bit (MCC-Sb).

Coordinates are first converted to the reference resolution (500 dpi) and to a frame
with y pointing up, so that the template's ISO angles (counter-clockwise as seen on
the image) are ordinary mathematical angles. Only the cells whose centre lies inside
the disc are stored (the others can never be valid).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from bench.template import Template

TWO_PI = 2 * np.pi


def wrap(angle: np.ndarray) -> np.ndarray:
    """Angle difference normalised to [-pi, pi)."""
    return np.mod(angle + np.pi, TWO_PI) - np.pi


@dataclass(frozen=True)
class CylinderParams:
    radius: float
    ns: int
    nd: int
    sigma_s: float
    sigma_d: float
    mu_psi: float
    tau_psi: float
    omega: float
    min_valid_cells: float
    min_neighbours: int
    bits: bool
    reference_dpi: float


@dataclass
class CylinderSet:
    """The valid cylinders of one template.

    ``xy`` and ``theta`` describe the minutiae the cylinders belong to (reference
    resolution, y up, radians); ``pairs`` holds, for every two of them, the distance
    (real part) and the direction (imaginary part) of the segment from the first to the
    second, as one complex64 (n, n) matrix so that both are gathered at once. The cells
    are stored packed into uint64 words (bit variant, ``packed``) or as float32 values
    in [0, 1] (sigmoid variant, ``values``); in both cases cells outside the valid area
    are 0. ``valid`` is the spatial validity (n, n_cells) and ``energy`` the
    per-spatial-cell sum of the squared cell values over the directional layers.
    """

    xy: np.ndarray
    theta: np.ndarray
    pairs: np.ndarray
    valid: np.ndarray
    energy: np.ndarray
    n_bits: int
    packed: np.ndarray | None = None
    values: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.theta.size)

    @functools.cached_property
    def set_cells(self) -> tuple[np.ndarray, np.ndarray]:
        """Set bits as (per-cylinder counts, column indices): the rows of a CSR matrix."""
        rows, cols = np.nonzero(self.dense())
        return np.bincount(rows, minlength=len(self)), cols.astype(np.int32)

    @functools.cached_property
    def probe_operands(self) -> "ProbeOperands":
        """The matrices this set contributes when it is the probe of a comparison."""
        partial = np.nonzero((self.valid == 0).any(axis=1))[0]
        cells = np.concatenate([self.energy, self.valid]).T.copy()
        theta = self.theta.astype(np.float32)
        return ProbeOperands(
            cells=self.dense().T.copy(),
            partial=partial,
            lost=(self.valid[partial] == 0).astype(np.float32).T.copy(),
            energy_valid=cells,
            totals=cells.sum(axis=0),
            theta=theta,
            cos=np.cos(theta),
            sin=np.sin(theta),
        )

    @functools.cached_property
    def invalid_cells(self) -> tuple[np.ndarray, np.ndarray]:
        """Invalid spatial cells as (per-cylinder counts, column indices)."""
        rows, cols = np.nonzero(self.valid == 0)
        return np.bincount(rows, minlength=len(self)), cols.astype(np.int32)

    def dense(self) -> np.ndarray:
        """The cells as a float32 (n, n_cells * nd) array."""
        if self.values is not None:
            return self.values
        raw = np.unpackbits(self.packed.view(np.uint8), axis=1, count=self.n_bits)
        return raw.astype(np.float32)


@dataclass
class ProbeOperands:
    """A probe's side of the local-similarity products (see extractors.mcc.matcher)."""

    cells: np.ndarray  # (bits, n) float32 cell values
    partial: np.ndarray  # cylinders with at least one invalid cell
    lost: np.ndarray  # (cells, len(partial)) 1 where those cylinders are invalid
    energy_valid: np.ndarray  # (cells, 2 n): per-cell energy, then validity
    totals: np.ndarray  # (2 n,) column sums of energy_valid
    theta: np.ndarray  # (n,) float32 directions, and their cosines and sines
    cos: np.ndarray
    sin: np.ndarray


def pair_geometry(xy: np.ndarray) -> np.ndarray:
    """Distance + 1j * direction of the segment from point i to point j, (n, n) complex64."""
    d = xy[None, :, :] - xy[:, None, :]  # from i (row) to j (column)
    out = np.empty(d.shape[:2], dtype=np.complex64)
    out.real = np.hypot(d[..., 0], d[..., 1])
    out.imag = np.arctan2(d[..., 1], d[..., 0])
    return out


def cell_offsets(radius: float, ns: int) -> np.ndarray:
    """Centres (C, 2) of the spatial cells inside the disc, relative to the minutia,
    for a minutia pointing along +x; row-major over the NS x NS grid."""
    delta = 2.0 * radius / ns
    idx = np.arange(ns, dtype=np.float64) - (ns - 1) / 2.0
    gx, gy = np.meshgrid(idx * delta, idx * delta, indexing="xy")
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
    return pts[np.hypot(pts[:, 0], pts[:, 1]) <= radius]


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull vertices in counter-clockwise order (Andrew's monotone chain)."""
    pts = np.unique(points, axis=0)
    if len(pts) <= 2:
        return pts

    def half(seq: np.ndarray) -> list:
        out: list = []
        for p in seq:
            while len(out) >= 2:
                u, v = out[-1] - out[-2], p - out[-2]
                if u[0] * v[1] - u[1] * v[0] > 0:
                    break
                out.pop()
            out.append(p)
        return out

    lower = half(pts)
    upper = half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def hull_distance(points: np.ndarray, hull: np.ndarray) -> np.ndarray:
    """Distance of each point to the convex polygon ``hull`` (0 inside)."""
    if len(hull) == 0:
        return np.full(len(points), np.inf)
    if len(hull) == 1:
        return np.hypot(*(points - hull[0]).T)
    a = hull
    b = np.roll(hull, -1, axis=0)
    ab = b - a  # (h, 2)
    ap = points[:, None, :] - a[None, :, :]  # (P, h, 2)
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    nearest = a[None] + t[..., None] * ab[None]
    dist = np.hypot(*(points[:, None, :] - nearest).transpose(2, 0, 1)).min(axis=1)
    if len(hull) >= 3:
        cross = ab[None, :, 0] * ap[..., 1] - ab[None, :, 1] * ap[..., 0]
        dist[np.all(cross >= 0, axis=1)] = 0.0
    return dist


def within_hull(points: np.ndarray, hull: np.ndarray, offset: float) -> np.ndarray:
    """Whether each point lies within ``offset`` of the convex polygon ``hull`` (CCW).

    Signed distances to the edge lines settle most points at once: inside all of them
    means inside the polygon; farther than ``offset`` outside any of them means too far.
    Only the points in between need the exact distance.
    """
    if len(hull) < 3:
        return hull_distance(points, hull) <= offset
    ab = np.roll(hull, -1, axis=0) - hull
    normal = np.stack([ab[:, 1], -ab[:, 0]], axis=1) / np.maximum(np.hypot(ab[:, 0], ab[:, 1]), 1e-12)[:, None]
    beyond = (points @ normal.T - (hull * normal).sum(axis=1)).max(axis=1)  # outward, per point
    result = beyond <= 0
    unsure = (beyond > 0) & (beyond <= offset)
    result[unsure] = hull_distance(points[unsure], hull) <= offset
    return result


def normalised_minutiae(template: Template, p: CylinderParams) -> tuple[np.ndarray, np.ndarray]:
    """Minutiae positions at the reference resolution with y up, and directions in [0, 2 pi).

    Positions that are not finite or lie beyond ``MAX_COORDINATE`` pixels (no image is
    that large; float32 geometry would overflow) are refused by name: they would
    otherwise turn into silently wrong scores.
    """
    m = template.minutiae
    scale = p.reference_dpi / float(template.dpi)
    xy = np.stack([m["x"].astype(np.float64) * scale, -m["y"].astype(np.float64) * scale], axis=1)
    theta = np.mod(m["angle"].astype(np.float64), TWO_PI)
    ok = (np.abs(xy) <= MAX_COORDINATE).all(axis=1) & np.isfinite(theta)  # NaN fails both tests
    if not ok.all():
        source = template.extra.get("source", "the template") if isinstance(template.extra, dict) else "the template"
        bad = np.nonzero(~ok)[0]
        raise ValueError(f"MCC: {source} has minutiae with a non-finite angle or a position beyond "
                         f"{MAX_COORDINATE:g} pixels (minutiae {bad[:5].tolist()})")
    return xy, theta


#: Largest |x| or |y| (pixels at the reference resolution) a minutia may have.
MAX_COORDINATE = 1e6


def empty_cylinders(p: CylinderParams, n_cells: int) -> CylinderSet:
    """A template without any valid cylinder."""
    n_bits = n_cells * p.nd
    return CylinderSet(
        xy=np.empty((0, 2)), theta=np.empty(0), pairs=np.empty((0, 0), np.complex64),
        valid=np.empty((0, n_cells), np.float32),
        energy=np.empty((0, n_cells), np.float32), n_bits=n_bits,
        packed=np.empty((0, (n_bits + 63) // 64), np.uint64) if p.bits else None,
        values=None if p.bits else np.empty((0, n_bits), np.float32),
    )


def build_cylinders(template: Template, p: CylinderParams) -> CylinderSet:
    """The valid cylinders of a template (possibly none)."""
    xy, theta = normalised_minutiae(template, p)
    n = len(theta)
    offsets = cell_offsets(p.radius, p.ns)
    n_cells = len(offsets)
    n_bits = n_cells * p.nd
    empty = empty_cylinders(p, n_cells)
    if n < p.min_neighbours + 1:
        return empty

    # Cylinder validity, part 1: enough neighbours within R + 3 sigma_S.
    diff = xy[None, :, :] - xy[:, None, :]
    dist = np.hypot(diff[..., 0], diff[..., 1])
    neighbours = (dist <= p.radius + 3 * p.sigma_s).sum(axis=1) - 1
    candidates = np.nonzero(neighbours >= p.min_neighbours)[0]
    if candidates.size == 0:
        return empty

    # Cell centres of each candidate cylinder, rotated with its minutia.
    c, s = np.cos(theta[candidates]), np.sin(theta[candidates])
    cx = xy[candidates, 0:1] + c[:, None] * offsets[None, :, 0] - s[:, None] * offsets[None, :, 1]
    cy = xy[candidates, 1:2] + s[:, None] * offsets[None, :, 0] + c[:, None] * offsets[None, :, 1]

    # Cell validity: inside the convex hull of the minutiae, enlarged by omega.
    centres = np.stack([cx.ravel(), cy.ravel()], axis=1)
    valid = within_hull(centres, _hull(xy), p.omega).reshape(len(candidates), n_cells)
    # Cylinder validity, part 2: enough valid cells.
    ok = valid.sum(axis=1) >= p.min_valid_cells * n_cells
    candidates, cx, cy, valid = candidates[ok], cx[ok], cy[ok], valid[ok]
    if candidates.size == 0:
        return empty

    # Only minutiae within R + 3 sigma_S of a cylinder's own can reach its cells: gather
    # them, padded to the largest count (padding and the minutia itself contribute 0).
    near = dist[candidates] <= p.radius + 3 * p.sigma_s
    near[np.arange(len(candidates)), candidates] = False  # a minutia is not its own neighbour
    width = max(int(near.sum(axis=1).max()), 1)
    order = np.argsort(~near, axis=1, kind="stable")[:, :width]  # (k, width) neighbour indices
    real = np.take_along_axis(near, order, axis=1)

    # Spatial contributions: Gaussian of the distance from each cell centre to each
    # neighbour, within 3 sigma_S.  (k, C, width)
    f = np.float32
    dx = cx.astype(f)[:, :, None] - xy[order, 0].astype(f)[:, None, :]
    dy = cy.astype(f)[:, :, None] - xy[order, 1].astype(f)[:, None, :]
    dx *= dx
    dy *= dy
    d2 = np.add(dx, dy, out=dx)
    too_far = (d2 > f(3 * p.sigma_s) ** 2) | ~real[:, None, :]
    spatial = np.exp(d2 * f(-1 / (2 * p.sigma_s**2)), out=dy)
    spatial *= f(1 / (p.sigma_s * np.sqrt(TWO_PI)))
    spatial[too_far] = 0.0

    # Directional contributions: the share of a Gaussian (sigma_D) around each neighbour's
    # direction difference that falls in each directional cell.  (k, width, ND)
    delta_d = TWO_PI / p.nd
    layer = -np.pi + (np.arange(p.nd) + 0.5) * delta_d
    dtheta = wrap(theta[candidates][:, None] - theta[order])  # (k, width)
    alpha = wrap(layer[None, None, :] - dtheta[:, :, None])
    directional = (ndtr((alpha + delta_d / 2) / p.sigma_d) - ndtr((alpha - delta_d / 2) / p.sigma_d)).astype(f)

    total = np.matmul(spatial, directional)  # (k, C, ND)
    if p.bits:
        cells = (total > p.mu_psi).astype(np.float32)
    else:
        cells = (1.0 / (1.0 + np.exp(-p.tau_psi * (total - p.mu_psi)))).astype(np.float32)
    cells *= valid[:, :, None]
    values = np.ascontiguousarray(cells.reshape(len(candidates), n_bits))
    packed = None
    if p.bits:
        raw = np.packbits(values.astype(np.uint8), axis=1)
        pad = (-raw.shape[1]) % 8
        packed = np.ascontiguousarray(np.pad(raw, ((0, 0), (0, pad)))).view(np.uint64)
    return CylinderSet(
        xy=xy[candidates],
        theta=theta[candidates],
        pairs=pair_geometry(xy[candidates]),
        valid=valid.astype(np.float32),
        energy=(cells * cells).sum(axis=2).astype(np.float32),
        n_bits=n_bits,
        packed=packed,
        values=None if p.bits else values,
    )


def popcount_similarity(a: CylinderSet, i: int, b: CylinderSet, j: int) -> tuple[float, int]:
    """Reference MCC-Sb similarity of cylinder ``i`` of ``a`` and ``j`` of ``b``, by popcount.

    Returns ``(similarity, matchable_cells)``: 1 - ||a|b xor b|a|| / (||a|b|| + ||b|a||),
    where x|y is x restricted to the cells valid in both and ||v|| = sqrt(popcount(v)).
    This is the textbook definition on packed bits; the matcher computes the same counts
    with matrix products (see :mod:`extractors.mcc.matcher`).
    """
    if a.packed is None or b.packed is None:
        raise ValueError("popcount_similarity needs bit cylinders")
    nd = a.n_bits // a.valid.shape[1]
    both = np.repeat((a.valid[i] > 0) & (b.valid[j] > 0), nd)
    pad = a.packed.shape[1] * 64 - both.size
    mask = np.packbits(np.pad(both, (0, pad)).astype(np.uint8)).view(np.uint64)
    ca, cb = a.packed[i] & mask, b.packed[j] & mask
    na = int(np.bitwise_count(ca).sum())
    nb = int(np.bitwise_count(cb).sum())
    nx = int(np.bitwise_count(ca ^ cb).sum())
    if na + nb == 0:
        return 0.0, int(both.sum())
    return 1.0 - np.sqrt(nx) / (np.sqrt(na) + np.sqrt(nb)), int(both.sum())
