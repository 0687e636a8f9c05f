"""Gaussian smoothing that stays cheap for large scales.

Large-scale smoothing (orientation tensors, local statistics, segmentation) is done on
an area-downsampled copy and interpolated back: the result is a smooth field anyway,
and the cost no longer grows with the square of the scale.
"""

from __future__ import annotations

import cv2
import numpy as np


def smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels (float32 in, float32 out)."""
    if sigma <= 0:
        return image
    factor = int(sigma // 2.5)
    h, w = image.shape
    if factor < 2 or min(h, w) < 4 * factor:
        return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    small = cv2.resize(image, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA)
    # Area averaging already blurs by about factor / sqrt(12).
    residual = np.sqrt(max(sigma**2 - factor**2 / 12.0, 0.25)) / factor
    small = cv2.GaussianBlur(small, (0, 0), residual, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
