"""Normalisation and segmentation: local contrast, and the foreground (finger) mask."""

from __future__ import annotations

import cv2
import numpy as np

from extractors.classic.smoothing import smooth


def normalise(gray: np.ndarray, sigma_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Local zero-mean, unit-variance image with ridges positive, and the local contrast.

    ``gray`` has dark ridges (0 = black). The local mean and standard deviation are
    Gaussian-weighted with ``sigma_px``, which should span about one ridge period so that
    uneven pressure and illumination disappear while the ridges stay. Returns
    ``(normalised, contrast)``; ``contrast`` is the local standard deviation in gray levels.
    """
    inverted = 255.0 - gray
    centred = inverted - smooth(inverted, sigma_px)
    var = smooth(centred * centred, sigma_px)
    contrast = np.sqrt(np.maximum(var, 0.0))
    normalised = centred / (contrast + 1.0)
    return normalised, contrast


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill the background regions that do not touch the image border."""
    h, w = mask.shape
    inverse = (~mask).astype(np.uint8)
    n, labels = cv2.connectedComponents(inverse, connectivity=4)
    if n <= 2:
        return mask
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    keep_background = np.zeros(n, dtype=bool)
    keep_background[border] = True
    keep_background[0] = False  # label 0 is the foreground itself
    return ~keep_background[labels]


def foreground_mask(
    contrast: np.ndarray,
    coherence: np.ndarray,
    threshold: float,
    smooth_px: float,
    min_component_fraction: float = 0.1,
) -> np.ndarray:
    """Where the finger is: enough local contrast, smoothed, cleaned and without holes.

    A pixel is foreground when its smoothed local contrast, raised by the local ridge
    coherence, exceeds ``threshold`` times the image's high (95th percentile) contrast.
    Small blobs (under ``min_component_fraction`` of the largest one) are dropped and
    holes filled, so the mask is a few solid regions with smooth borders.
    """
    score = smooth(contrast * (0.5 + coherence), smooth_px)
    ref = float(np.percentile(score, 95))
    if not ref > 0:
        return np.zeros(score.shape, dtype=bool)
    return clean_mask(score > threshold * ref, smooth_px, min_component_fraction)


def clean_mask(mask: np.ndarray, smooth_px: float, min_component_fraction: float = 0.1) -> np.ndarray:
    """Open and close with a disc of about ``smooth_px``, drop the components smaller
    than ``min_component_fraction`` of the largest one, and fill holes."""
    mask = mask.astype(np.uint8)
    k = max(3, int(round(smooth_px)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return np.zeros(mask.shape, dtype=bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, dtype=bool)
    keep[1:] = areas >= min_component_fraction * areas.max()
    return fill_holes(keep[labels])


def refine_mask(mask: np.ndarray, reliability: np.ndarray, threshold: float, smooth_px: float,
                min_component_fraction: float = 0.1) -> np.ndarray:
    """The part of ``mask`` where the enhancement found a ridge pattern.

    Contrast alone takes in the flat rim of a print, smudges, latent prints and sensor
    noise, where the Gabor filters would draw ridges that are not there. Keeping only
    the pixels whose ``reliability`` (share of energy that the oriented filters kept)
    exceeds ``threshold`` removes them; the result is cleaned like the first mask. A
    threshold of 0 returns ``mask`` unchanged.
    """
    if threshold <= 0:
        return mask
    return clean_mask(mask & (reliability > threshold), smooth_px, min_component_fraction)
