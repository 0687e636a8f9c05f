"""Ridge frequency: the dominant spatial frequency of the ridge pattern.

Each overlapping window of the normalised image is Hann-weighted and Fourier
transformed (all windows in one batched FFT); the peak of its power spectrum inside
the band of plausible ridge frequencies gives the local frequency. The windows inside
the foreground whose peak stands out clearly are trusted, and their median is the
frequency of the print.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def ridge_frequency(
    normalised: np.ndarray,
    mask: np.ndarray,
    window_px: int,
    min_period_px: float,
    max_period_px: float,
) -> tuple[float, np.ndarray]:
    """The print's ridge frequency (cycles per pixel) and the per-window estimates.

    Returns ``(frequency, local)``, where ``local`` holds the trusted windows'
    frequencies (possibly empty). When no window can be trusted, the middle of the
    plausible band is returned, which keeps the later steps working on poor images.
    """
    w = int(window_px) & ~1
    fallback = 2.0 / (min_period_px + max_period_px)
    h_img, w_img = normalised.shape
    if w < 8 or h_img < w or w_img < w:
        return fallback, np.empty(0, dtype=np.float32)
    half = w // 2
    step = w  # non-overlapping windows: plenty for a median
    windows = sliding_window_view(normalised, (w, w))[::step, ::step]
    inside = sliding_window_view(mask, (w, w))[::step, ::step][..., half, half]
    blocks = windows[inside]
    if blocks.shape[0] == 0:
        return fallback, np.empty(0, dtype=np.float32)
    hann = np.hanning(w).astype(np.float32)
    spectrum = np.fft.rfft2(blocks * np.outer(hann, hann), axes=(-2, -1))
    power = spectrum.real**2 + spectrum.imag**2
    fy = np.fft.fftfreq(w)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    band = (radius >= 1.0 / max_period_px) & (radius <= 1.0 / min_period_px)
    if not band.any():
        return fallback, np.empty(0, dtype=np.float32)
    band_power = power[:, band]
    peak = band_power.argmax(axis=1)
    peak_power = band_power[np.arange(band_power.shape[0]), peak]
    # A clear ridge pattern concentrates its energy in a few bins of the band.
    share = peak_power / (band_power.sum(axis=1) + 1e-12)
    trusted = share > 4.0 / band.sum()
    local = radius[band][peak][trusted].astype(np.float32)
    if local.size == 0:
        return fallback, local
    return float(np.median(local)), local
