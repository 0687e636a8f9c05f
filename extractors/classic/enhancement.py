"""Contextual Gabor enhancement (Hong, Wan and Jain, IEEE TPAMI 20(8), 1998).

Each pixel is filtered with an even Gabor filter tuned to the local ridge orientation
and to the ridge frequency. The filter bank (one filter per quantised orientation) is
applied in the Fourier domain: one forward transform of the image, then one product and
one inverse transform per orientation, which is exact linear convolution thanks to the
zero padding. Each pixel then takes the response of its own orientation, interpolated
linearly between the two nearest filters of the bank.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft

from extractors.classic.smoothing import smooth


@functools.lru_cache(maxsize=32)
def _filter_bank(shape: tuple[int, int], frequency: float, n_orientations: int,
                 sigma_across: float, sigma_along: float) -> tuple[int, int, np.ndarray]:
    """Frequency responses of the even Gabor filters, on the band where they are not ~0.

    Filter ``k`` has its wave vector (the ridge normal) at angle ``k * pi / n`` from +x
    towards +y. The response of a Gaussian-windowed cosine is a pair of Gaussians at
    plus and minus the wave vector; the DC term is removed so flat areas give 0. Only
    frequencies up to ``reach`` (cycles per pixel) are kept, where the Gaussians have
    fallen below exp(-12): returns ``(rows, cols, bank)`` where ``bank`` has shape
    (n, 2 * rows, cols) and covers the first and last ``rows`` rows and the first
    ``cols`` columns of the (H, W // 2 + 1) half spectrum.
    """
    reach = frequency + np.sqrt(12.0) / (2 * np.pi * min(sigma_across, sigma_along))
    rows = min(shape[0] // 2, int(np.ceil(reach * shape[0])) + 1)
    cols = min(shape[1] // 2 + 1, int(np.ceil(reach * shape[1])) + 1)
    fy_all = np.fft.fftfreq(shape[0]).astype(np.float32)
    fy = np.concatenate([fy_all[:rows], fy_all[shape[0] - rows :]])[:, None]
    fx = np.fft.rfftfreq(shape[1]).astype(np.float32)[None, :cols]
    bank = np.empty((n_orientations, fy.shape[0], cols), dtype=np.float32)
    ax = np.float32(2 * np.pi**2 * sigma_across**2)
    al = np.float32(2 * np.pi**2 * sigma_along**2)
    for k in range(n_orientations):
        phi = k * np.pi / n_orientations
        c, s = np.float32(np.cos(phi)), np.float32(np.sin(phi))
        u = fx * c + fy * s
        v = fy * c - fx * s
        along = al * v * v
        bank[k] = np.exp(-(ax * (u - frequency) ** 2 + along)) + np.exp(-(ax * (u + frequency) ** 2 + along))
    bank[:, 0, 0] = 0.0
    bank /= bank.max()
    return rows, cols, bank


def gabor_enhance(
    normalised: np.ndarray,
    mask: np.ndarray,
    orientation: np.ndarray,
    frequency: float,
    n_orientations: int,
    sigma_across: float,
    sigma_along: float,
) -> np.ndarray:
    """Enhanced image: positive on ridges, negative in valleys, 0 outside ``mask``.

    ``orientation`` is the ridge orientation in [0, pi) (image coordinates); the sigmas
    are the Gaussian envelope's standard deviations in pixels, across and along ridges.
    """
    h, w = normalised.shape
    k_total = int(n_orientations)
    pad = int(np.ceil(3 * max(sigma_across, sigma_along)))
    shape = (scipy.fft.next_fast_len(h + pad, real=True), scipy.fft.next_fast_len(w + pad, real=True))
    quantised = round(float(frequency) * 400) / 400  # lets similar prints share a filter bank
    rows, cols, bank = _filter_bank(shape, quantised, k_total, round(float(sigma_across), 2),
                                    round(float(sigma_along), 2))
    spectrum = scipy.fft.rfft2(normalised, s=shape, workers=1)
    band = np.concatenate([spectrum[:rows, :cols], spectrum[shape[0] - rows :, :cols]])
    filtered = np.zeros_like(spectrum)

    # Each foreground pixel mixes the two filters nearest to its ridge normal.
    ys, xs = np.nonzero(mask)
    position = np.mod(orientation[ys, xs] + np.pi / 2, np.pi) * (k_total / np.pi)
    lower = np.floor(position).astype(np.intp)
    frac = (position - lower).astype(np.float32)
    lower %= k_total
    order = np.argsort(lower, kind="stable")
    bounds = np.searchsorted(lower[order], np.arange(k_total + 1))
    padded_index = ys * shape[1] + xs
    out = np.zeros(h * w, dtype=np.float32)
    out_index = ys * w + xs
    for k in range(k_total):
        j = (k - 1) % k_total
        as_lower = order[bounds[k] : bounds[k + 1]]  # pixels whose lower filter is k
        as_upper = order[bounds[j] : bounds[j + 1]]  # pixels whose upper filter is k
        if as_lower.size == 0 and as_upper.size == 0:
            continue
        product = band * bank[k]
        filtered[:rows, :cols] = product[:rows]
        filtered[shape[0] - rows :, :cols] = product[rows:]
        response = scipy.fft.irfft2(filtered, s=shape, workers=1).ravel()
        out[out_index[as_lower]] += (1.0 - frac[as_lower]) * response[padded_index[as_lower]]
        out[out_index[as_upper]] += frac[as_upper] * response[padded_index[as_upper]]
    return out.reshape(h, w)


def reliability(enhanced: np.ndarray, masked: np.ndarray, sigma_px: float) -> np.ndarray:
    """Share of the local energy that the oriented filters kept, in [0, 1].

    A ridge pattern at the tuned orientation and frequency passes the filter almost
    whole (0.3 to 0.7 on real prints, after the envelope's losses); noise, smudges and the
    flat rim of a print spread their energy over the whole spectrum and keep only the
    filter's share of the band (about 0.01 to 0.05). It is a ratio, so it does not
    depend on the sensor's contrast. Both energies are Gaussian-averaged with
    ``sigma_px`` (about one ridge period).
    """
    kept = smooth(enhanced * enhanced, sigma_px)
    total = smooth(masked * masked, sigma_px)
    return np.clip(kept / (total + 1e-3), 0.0, 1.0).astype(np.float32)
