"""Binarisation, thinning, crossing numbers, and the skeleton as a graph of branches."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage.morphology import skeletonize

# The 8 neighbours in circular order (dy, dx), starting north, clockwise on screen.
NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def binarise(enhanced: np.ndarray, mask: np.ndarray, min_blob_px: int) -> np.ndarray:
    """Ridges (True) where the enhanced image is positive inside the mask.

    Ridge blobs and valley holes smaller than ``min_blob_px`` pixels are removed, as they
    would become tiny skeleton islands or loops.
    """
    ridges = ((enhanced > 0) & mask).astype(np.uint8)
    if min_blob_px > 0:
        ridges = _drop_small(ridges, min_blob_px)
        holes = _drop_small((1 - ridges) * mask.astype(np.uint8), min_blob_px)
        ridges = (mask & (holes == 0)).astype(np.uint8)
    return ridges.astype(bool)


def _drop_small(binary: np.ndarray, min_px: int) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_px
    keep[0] = False
    return keep[labels].astype(np.uint8)


def thin(ridges: np.ndarray) -> np.ndarray:
    """One-pixel-wide, 8-connected ridge skeleton (Zhang and Suen, via scikit-image)."""
    return skeletonize(ridges)


def crossing_number(skel: np.ndarray) -> np.ndarray:
    """Crossing number (Rutovitz) of each skeleton pixel: 1 ending, 2 ridge, 3+ branching.

    Half the number of 0/1 transitions around the 8-neighbourhood; 0 off the skeleton.
    """
    h, w = skel.shape
    p = np.pad(skel.astype(np.int8), 1)
    ring = [p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in NEIGHBOURS]
    cn = np.zeros((h, w), dtype=np.int8)
    for i in range(8):
        cn += np.abs(ring[i] - ring[(i + 1) % 8])
    cn //= 2
    cn[~skel] = 0
    return cn


@dataclass
class SkeletonGraph:
    """The skeleton cut at its branching points.

    ``branch_labels`` labels each branch (connected skeleton piece once the 3x3
    neighbourhoods of branching pixels are removed; 0 elsewhere); ``junction_labels``
    labels each cluster of adjacent branching pixels. ``edges`` are the (junction,
    branch) adjacencies, one row per pair.
    """

    branch_labels: np.ndarray
    branch_length: np.ndarray  # pixels per branch label (index 0 unused)
    junction_labels: np.ndarray
    junction_centres: np.ndarray  # (n_junctions + 1, 2) x, y (row 0 unused)
    edges: np.ndarray  # (n_edges, 2) junction label, branch label


def skeleton_graph(skel: np.ndarray, cn: np.ndarray) -> SkeletonGraph:
    junction = (cn >= 3).astype(np.uint8)
    n_j, j_labels, _, j_centroids = cv2.connectedComponentsWithStats(junction, connectivity=8)
    near_junction = cv2.dilate(junction, np.ones((3, 3), np.uint8))
    branches = (skel & (near_junction == 0)).astype(np.uint8)
    n_b, b_labels, b_stats, _ = cv2.connectedComponentsWithStats(branches, connectivity=8)
    if n_j > 1:
        # The label of the junction within two pixels of each branch pixel next to it.
        grown = cv2.dilate(j_labels.astype(np.float32), np.ones((5, 5), np.uint8)).astype(np.int32)
        touching = (b_labels > 0) & (grown > 0)
        pairs = np.stack([grown[touching], b_labels[touching]], axis=1)
        edges = np.unique(pairs, axis=0) if pairs.size else np.empty((0, 2), dtype=np.int32)
    else:
        edges = np.empty((0, 2), dtype=np.int32)
    return SkeletonGraph(
        branch_labels=b_labels,
        branch_length=b_stats[:, cv2.CC_STAT_AREA].astype(np.int32),
        junction_labels=j_labels,
        junction_centres=j_centroids.astype(np.float32),
        edges=edges.astype(np.int32),
    )
