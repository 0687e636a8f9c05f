"""Small numerical helpers shared by the generator: smooth random fields, and rounding
that keeps results identical across machines.

Results must be bit-identical for a given seed on any machine. NumPy's transcendental
functions may take different SIMD code paths on different processors and differ in the
last bit; rounding every intermediate field to a coarse binary grid (``quantize``) makes
such differences vanish except with negligible probability.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Grid to which intermediate fields are rounded (a power of two: the division is exact).
QUANTUM = 2.0**-20


def quantize(a: np.ndarray | float, quantum: float = QUANTUM) -> np.ndarray:
    """``a`` rounded to a multiple of ``quantum`` (float64)."""
    return np.round(np.asarray(a, dtype=np.float64) / quantum) * quantum


def _bspline_weights(n: int, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices (n x 4) into a coarse grid and cubic B-spline weights (n x 4) normalised
    so that white noise on the grid gives unit variance at every output position."""
    pos = np.arange(n, dtype=np.float64) / cell
    base = np.floor(pos).astype(np.int64)
    t = pos - base
    w = np.stack(
        [(1 - t) ** 3 / 6, (3 * t**3 - 6 * t**2 + 4) / 6, (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6, t**3 / 6], axis=1
    )
    w /= np.sqrt(np.sum(w * w, axis=1, keepdims=True))
    return base[:, None] + np.arange(4)[None, :], w


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Smooth random field of ``shape`` with features about ``cell`` pixels apart, zero
    mean and unit standard deviation at every pixel (a cubic B-spline through white
    noise on a coarse grid), float64."""
    h, w = shape
    gh, gw = int(np.floor((h - 1) / cell)) + 4, int(np.floor((w - 1) / cell)) + 4
    coarse = rng.standard_normal((gh, gw))
    iy, wy = _bspline_weights(h, cell)
    ix, wx = _bspline_weights(w, cell)
    rows = sum(coarse[:, ix[:, k]] * wx[None, :, k] for k in range(4))  # gh x w
    out = sum(rows[iy[:, k], :] * wy[:, k, None] for k in range(4))  # h x w
    return quantize(out)


def blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur in float64 with a deterministic (non-SIMD-dependent) implementation."""
    if sigma <= 0:
        return np.asarray(a, dtype=np.float64)
    return ndimage.gaussian_filter(np.asarray(a, dtype=np.float64), sigma, mode="nearest", truncate=3.0)
