"""Minutiae of a binary ridge pattern: thinning, crossing number, spurious-minutiae
cleanup, and ISO directions.

Directions follow ISO/IEC 19794-2 (and the NIST EFS markup rule): the direction points
along the gap between the two branches of the "Y" - for a ridge ending, along the ridge
away from its end; for a bifurcation, along the valley between the two new ridges, away
from the single ridge. Angles are radians counter-clockwise from the x axis as seen on
the image, in [0, 2*pi).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

from bench.template import TYPE_BIFURCATION, TYPE_ENDING, make_minutiae

# Offsets of the 8 neighbours in circular order (row, col), starting east, counter-clockwise.
_RING = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))


def _drop_small(mask: np.ndarray, area: int, structure: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask, structure=structure)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= area
    keep[0] = False
    return keep[labels]


def clean_ridges(ridges: np.ndarray, period: float) -> np.ndarray:
    """Remove ridge dots and fill valley pores smaller than about half a ridge period
    squared: they are not minutiae and thinning would turn them into pairs of them."""
    area = max(4, int(round(0.6 * period * period)))
    out = _drop_small(ridges.astype(bool), area, np.ones((3, 3), dtype=bool))
    return ~_drop_small(~out, area, ndimage.generate_binary_structure(2, 1))


def _neighbours(skel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Number of skeleton neighbours and crossing number of every pixel."""
    p = np.pad(skel.astype(np.int16), 1)
    h, w = skel.shape
    ring = [p[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w] for dr, dc in _RING]
    count = sum(ring)
    cn = sum(np.abs(ring[i] - ring[(i + 1) % 8]) for i in range(8)) // 2
    return count, cn


def _walk(
    skel: np.ndarray, start: tuple[int, int], first: tuple[int, int], steps: int
) -> tuple[list[tuple[int, int]], bool]:
    """Follow the skeleton from ``start`` through ``first`` for up to ``steps`` pixels.
    Returns the path and whether it stopped at a junction or an end (before ``steps``)."""
    h, w = skel.shape
    path = [first]
    prev, cur = start, first
    for _ in range(steps - 1):
        nxt = []
        for dr, dc in _RING:
            r, c = cur[0] + dr, cur[1] + dc
            if 0 <= r < h and 0 <= c < w and skel[r, c] and (r, c) != prev and (r, c) != start and (r, c) not in path:
                nxt.append((r, c))
        if len(nxt) != 1:
            # Prefer a 4-connected step when the 8-neighbourhood offers a corner and its side.
            four = [q for q in nxt if abs(q[0] - cur[0]) + abs(q[1] - cur[1]) == 1]
            if len(nxt) == 2 and len(four) == 1 and abs(nxt[0][0] - nxt[1][0]) + abs(nxt[0][1] - nxt[1][1]) == 1:
                nxt = four
            else:
                return path, True
        prev, cur = cur, nxt[0]
        path.append(cur)
    return path, False


def prune_spurs(skel: np.ndarray, length: int) -> np.ndarray:
    """Remove branches shorter than ``length`` pixels that end free on one side (thinning
    artefacts on ridge borders, and ridge fragments too short to count)."""
    skel = skel.copy()
    h, w = skel.shape
    for _ in range(2):
        count, _cn = _neighbours(skel)
        removed = False
        for r, c in np.argwhere(skel & (count == 1)):
            start = (int(r), int(c))
            nb = [(start[0] + dr, start[1] + dc) for dr, dc in _RING]
            nb = [q for q in nb if 0 <= q[0] < h and 0 <= q[1] < w and skel[q]]
            if len(nb) != 1 or not skel[start]:
                continue
            path, stopped = _walk(skel, start, nb[0], length)
            if not stopped:
                continue
            skel[start] = False
            for q in path[:-1]:
                skel[q] = False
            removed = True
        if not removed:
            break
    return skeletonize(skel)


def _branch_directions(skel: np.ndarray, core: np.ndarray, radius: int) -> list[np.ndarray]:
    """Unit vectors (x right, y up) from a minutia towards each skeleton branch leaving
    it. ``core`` is a boolean image of the minutia's own skeleton pixels (the end pixel,
    or the junction pixels of a fork). The core and its neighbours are cut out of a
    window of ``radius`` pixels; each remaining piece touching the cut is a branch, and
    its direction is the mean offset of its pixels."""
    h, w = skel.shape
    pts = np.argwhere(core)
    r, c = pts.mean(axis=0)
    r0, r1 = max(int(r) - radius, 0), min(int(r) + radius + 2, h)
    c0, c1 = max(int(c) - radius, 0), min(int(c) + radius + 2, w)
    cut = ndimage.binary_dilation(core[r0:r1, c0:c1], structure=np.ones((3, 3), dtype=bool))
    rest = skel[r0:r1, c0:c1] & ~cut
    yy, xx = np.mgrid[r0:r1, c0:c1]
    rest &= np.hypot(yy - r, xx - c) <= radius
    touching = ndimage.binary_dilation(cut, structure=np.ones((3, 3), dtype=bool)) & ~cut
    labels, n = ndimage.label(rest, structure=np.ones((3, 3), dtype=bool))
    out = []
    for lab in range(1, n + 1):
        piece = labels == lab
        if not (piece & touching).any():
            continue
        v = np.array([xx[piece].mean() - c, -(yy[piece].mean() - r)])
        norm = float(np.hypot(*v))
        if norm > 0:
            out.append(v / norm)
    return out


def extract_minutiae(
    ridges: np.ndarray,
    theta: np.ndarray,
    period: float,
    region: np.ndarray,
) -> np.ndarray:
    """Minutiae (``MINUTIA_DTYPE``) of the binary ridge image ``ridges`` (True = ridge)
    inside ``region``; ``theta`` is the ridge orientation field (radians mod pi), used for
    precise directions; ``period`` the mean ridge period in pixels."""
    skel = skeletonize(ridges.astype(bool))
    spur = max(3, int(round(0.7 * period)))
    skel = prune_spurs(skel, spur)
    count, cn = _neighbours(skel)
    end_mask = skel & (cn == 1) & (count == 1)
    fork_mask = skel & (cn >= 3)

    candidates: list[tuple[np.ndarray, int]] = []  # (core pixels, type)
    for r, c in np.argwhere(end_mask):
        candidates.append((np.array([[r, c]]), TYPE_ENDING))
    labels, n = ndimage.label(fork_mask, structure=np.ones((3, 3)))
    for lab in range(1, n + 1):
        candidates.append((np.argwhere(labels == lab), TYPE_BIFURCATION))

    radius = max(4, int(round(period)))
    xs, ys, angles, types = [], [], [], []
    core = np.zeros(skel.shape, dtype=bool)
    for pts, t in candidates:
        r, c = pts.mean(axis=0)
        ri, ci = int(round(r)), int(round(c))
        if not region[ri, ci]:
            continue
        core[pts[:, 0], pts[:, 1]] = True
        vecs = _branch_directions(skel, core, radius)
        core[pts[:, 0], pts[:, 1]] = False
        if len(vecs) != (3 if t == TYPE_BIFURCATION else 1):
            continue
        # Two branches and a stem: the sum points between the branches, away from the
        # stem; an ending's single branch points into the ridge.
        hint = np.sum(vecs, axis=0)
        th = float(theta[ri, ci])
        d = np.array([np.cos(th), np.sin(th)])
        angle = th if float(hint @ d) >= 0 else th + np.pi
        xs.append(c)
        ys.append(r)
        angles.append(angle)
        types.append(t)
    m = make_minutiae(xs, ys, angles, types, np.full(len(xs), 100))
    return remove_spurious(m, period)


def remove_spurious(m: np.ndarray, period: float) -> np.ndarray:
    """Drop pairs that are thinning artefacts rather than minutiae: two minutiae closer
    than about half a ridge period (spurs, bridges, tiny lakes), and opposite endings
    closer than a ridge period (a ridge broken by a pore)."""
    n = m.size
    if n < 2:
        return m
    xy = np.stack([m["x"], m["y"]], axis=1).astype(np.float64)
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    np.fill_diagonal(d, np.inf)
    drop = np.zeros(n, dtype=bool)
    close = d < 0.6 * period
    ends = m["type"] == TYPE_ENDING
    a = m["angle"].astype(np.float64)
    opposite = np.abs(np.angle(np.exp(1j * (a[:, None] - a[None, :] - np.pi)))) < np.pi / 4
    broken = (d < 1.0 * period) & ends[:, None] & ends[None, :] & opposite
    pair = close | broken
    for i in range(n):
        if drop[i]:
            continue
        js = np.flatnonzero(pair[i] & ~drop)
        if js.size:
            drop[i] = True
            drop[js[0]] = True
    return m[~drop]
