"""Ridge orientation field from smoothed gradient tensors, with its coherence.

Angles here are in *image* coordinates (x right, y down, angle from +x towards +y),
as orientations modulo pi. The conversion to the ISO convention happens only when
minutiae are written out.
"""

from __future__ import annotations

import cv2
import numpy as np

from extractors.classic.smoothing import smooth


def orientation_field(
    normalised: np.ndarray, gradient_sigma: float, block_sigma: float, smooth_sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel ridge orientation in [0, pi) and coherence in [0, 1].

    The structure tensor (Kass and Witkin 1987; Bazen and Gerez 2002) of the image
    gradient, averaged with a Gaussian of ``block_sigma``, gives the dominant gradient
    direction; ridges run perpendicular to it. The doubled-angle vector field is then
    smoothed again with ``smooth_sigma`` (which weights by local energy, so noisy, weak
    areas follow their neighbours). Coherence is (l1 - l2) / (l1 + l2) of the tensor
    before the second smoothing: 1 for perfectly parallel ridges, 0 for isotropic noise.
    """
    img = cv2.GaussianBlur(normalised, (0, 0), gradient_sigma) if gradient_sigma > 0 else normalised
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    gxx = smooth(gx * gx, block_sigma)
    gyy = smooth(gy * gy, block_sigma)
    gxy = smooth(gx * gy, block_sigma)
    c = gxx - gyy
    s = 2.0 * gxy
    coherence = np.sqrt(c * c + s * s) / (gxx + gyy + 1e-6)
    if smooth_sigma > 0:
        c = smooth(c, smooth_sigma)
        s = smooth(s, smooth_sigma)
    gradient_angle = 0.5 * np.arctan2(s, c)
    ridge_angle = np.mod(gradient_angle + np.pi / 2, np.pi).astype(np.float32)
    return ridge_angle, np.clip(coherence, 0.0, 1.0).astype(np.float32)
