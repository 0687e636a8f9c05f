"""Ridge pattern of a master print: footprint, ridge-period map and the pattern itself,
grown from random seeds by iterative contextual Gabor filtering (as SFinGe does).

Each iteration filters the current pattern with a bank of even Gabor kernels (one per
orientation bin and ridge-period bin, applied by FFT) and blends, at every pixel, the
responses of the bins around the local orientation and period; a soft clamp then keeps
the values in [-1, 1]. Ridges spread from the seeds along the orientation field; where
fronts grown from different seeds meet out of phase, ridges end or fork: these are the
minutiae of the master print.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from bench.synthetic.fields import quantize, smooth_noise
from bench.synthetic.orientation import PatternSpec

ORIENTATION_BINS = 12
#: Growth state is rounded to this grid after every iteration (see fields.quantize).
_STATE_QUANTUM = 2.0**-12


@dataclass(frozen=True)
class Footprint:
    """Finger-shaped contact footprint: a super-ellipse whose lower half is taller and
    squarer (the finger continues below the print)."""

    cx: float
    cy: float
    half_width: float
    half_height_top: float
    half_height_bottom: float
    exponent_top: float = 2.0
    exponent_bottom: float = 3.0

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        h, w = shape
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        return self.distance(x, y) <= 1.0

    def distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Normalised super-ellipse 'radius' (1 on the border) of points (x, y)."""
        dx = np.abs(x - self.cx) / self.half_width
        top = y < self.cy
        hh = np.where(top, self.half_height_top, self.half_height_bottom)
        p = np.where(top, self.exponent_top, self.exponent_bottom)
        dy = np.abs(y - self.cy) / hh
        return (dx**p + dy**p) ** (1.0 / p)

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 3) for k, v in self.__dict__.items()}


def period_map(
    rng: np.random.Generator, spec: PatternSpec, shape: tuple[int, int], base_period: float, scale: float
) -> np.ndarray:
    """Ridge period (pixels) at every pixel: ``base_period`` with smooth random variation,
    wider ridges above the northernmost core and below the southernmost delta (as in real
    prints, and SFinGe's model)."""
    h, w = shape
    y = np.arange(h, dtype=np.float64)[:, None]
    period = base_period * (1.0 + 0.055 * smooth_noise(rng, shape, 70.0 * scale))
    cores = [s.y for s in spec.cores]
    deltas = [s.y for s in spec.deltas]
    if cores:
        top = min(cores) - 30.0 * scale
        period = period + 0.06 * base_period / (1.0 + np.exp((y - top) / (25.0 * scale)))
    if deltas:
        bottom = max(deltas) + 30.0 * scale
        period = period + 0.05 * base_period / (1.0 + np.exp(-(y - bottom) / (25.0 * scale)))
    return quantize(np.clip(period, 0.75 * base_period, 1.3 * base_period) + np.zeros((1, w)))


def _gabor_kernel(theta: float, period: float, size: int) -> np.ndarray:
    """Even Gabor kernel for ridges of orientation ``theta`` (ISO angle) and ``period``,
    zero mean, on a ``size`` x ``size`` grid (rows y down)."""
    r = size // 2
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    c, s = np.cos(theta), np.sin(theta)
    along = xx * c - yy * s  # y down: the ISO direction (c, s) is (c, -s) in (x, row)
    across = -xx * s - yy * c
    env = np.exp(-0.5 * (across / (0.5 * period)) ** 2 - 0.5 * (along / (0.62 * period)) ** 2)
    g = env * np.cos(2 * np.pi * across / period)
    g -= env * (g.sum() / env.sum())
    return g / np.abs(g).sum()


def _bin_weights(values: np.ndarray, centres: np.ndarray, circular: bool) -> list[np.ndarray]:
    """Linear interpolation weights of ``values`` between neighbouring ``centres``."""
    n = len(centres)
    out = [np.zeros(values.shape, dtype=np.float32) for _ in range(n)]
    if n == 1:
        out[0][:] = 1.0
        return out
    if circular:
        step = np.pi / n
        pos = np.mod(values, np.pi) / step
        i0 = np.floor(pos).astype(np.int64) % n
        i1 = (i0 + 1) % n
    else:
        pos = np.interp(values, centres, np.arange(n, dtype=np.float64))
        i0 = np.minimum(np.floor(pos).astype(np.int64), n - 2)
        i1 = i0 + 1
    f = (pos - np.floor(pos)).astype(np.float32)
    if not circular:
        f = (pos - i0).astype(np.float32)
    for k in range(n):
        out[k] += np.where(i0 == k, 1.0 - f, 0.0).astype(np.float32) + np.where(i1 == k, f, 0.0).astype(np.float32)
    return out


def grow_ridges(
    rng: np.random.Generator,
    theta: np.ndarray,
    period: np.ndarray,
    seeds: int,
    iterations: int = 14,
) -> np.ndarray:
    """Ridge pattern in [-1, 1] (ridges positive) grown from ``seeds`` random seeds by
    ``iterations`` rounds of contextual Gabor filtering."""
    h, w = theta.shape
    p_lo, p_hi = float(period.min()), float(period.max())
    n_periods = 1 if p_hi - p_lo < 0.5 else 2 if p_hi - p_lo < 2.5 else 3
    periods = np.linspace(p_lo, p_hi, n_periods)
    size = int(2 * np.ceil(1.5 * p_hi) + 1)
    fh, fw = sfft.next_fast_len(h + size, real=True), sfft.next_fast_len(w + size, real=True)
    orient_centres = np.arange(ORIENTATION_BINS) * (np.pi / ORIENTATION_BINS)

    ow = _bin_weights(theta, orient_centres, circular=True)
    pw = _bin_weights(period, periods, circular=False)
    bank: list[tuple[np.ndarray, np.ndarray]] = []
    r = size // 2
    for k, t in enumerate(orient_centres):
        for j, p in enumerate(periods):
            weight = ow[k] * pw[j]
            if not weight.any():
                continue
            kern = np.zeros((fh, fw), dtype=np.float32)
            kern[:size, :size] = _gabor_kernel(float(t), float(p), size)
            kern = np.roll(kern, (-r, -r), axis=(0, 1))  # centre the kernel on the origin
            bank.append((sfft.rfft2(kern, workers=1), weight))

    state = np.zeros((fh, fw), dtype=np.float32)
    ys = rng.integers(0, h, seeds)
    xs = rng.integers(0, w, seeds)
    state[ys, xs] = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), seeds)

    for _ in range(iterations):
        spectrum = sfft.rfft2(state, workers=1)
        acc = np.zeros((h, w), dtype=np.float32)
        for kspec, weight in bank:
            resp = sfft.irfft2(spectrum * kspec, s=(fh, fw), workers=1)[:h, :w]
            acc += weight * resp
        scale = float(np.sqrt(np.mean(acc.astype(np.float64) ** 2))) + 1e-12
        new = np.tanh(acc * np.float32(2.5 / scale))
        state = np.zeros((fh, fw), dtype=np.float32)
        state[:h, :w] = quantize(new, _STATE_QUANTUM)
    return state[:h, :w].astype(np.float64)
