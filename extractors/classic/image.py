"""Input checking: turn whatever the caller passed into a 2-D float32 gray image.

Everything an extractor cannot work with is refused here with :class:`FailureToEnrol`
and a message that says what was wrong, so that the later steps can assume a finite,
reasonably sized, non-uniform image.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench.plugins import FailureToEnrol

MM_PER_INCH = 25.4


def check_dpi(dpi: Any) -> float:
    """The resolution as a float, or FailureToEnrol when it is not a usable number."""
    try:
        value = float(dpi)
    except (TypeError, ValueError):
        raise FailureToEnrol(f"resolution must be a number, got {dpi!r}") from None
    if not math.isfinite(value) or not 50.0 <= value <= 5000.0:
        raise FailureToEnrol(f"resolution must be between 50 and 5000 dpi, got {dpi!r}")
    return value


def as_image_array(image: Any) -> np.ndarray:
    """The image as an array of a supported shape and pixel type (not converted yet).

    Supported: 2-D arrays of any integer, boolean or floating type, and colour arrays of
    shape (H, W, 1|3|4) in RGB(A) order.
    """
    if not isinstance(image, np.ndarray):
        try:
            image = np.asarray(image)
        except Exception as exc:  # arbitrary objects: report, never crash
            raise FailureToEnrol(f"image is not an array ({type(image).__name__}: {exc})") from None
    if image.dtype == object or image.dtype.kind not in "biuf":
        raise FailureToEnrol(f"image has unsupported pixel type {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))):
        raise FailureToEnrol(f"image must be 2-D grayscale or (H, W, 3|4) colour, got shape {image.shape}")
    if image.size == 0:
        raise FailureToEnrol(f"image is empty (shape {image.shape})")
    return image


def check_size(shape: tuple[int, ...], dpi: float, min_size_mm: float, max_pixels: int) -> None:
    """Refuse images too small to hold a usable print, or too large to process."""
    h, w = int(shape[0]), int(shape[1])
    px_per_mm = dpi / MM_PER_INCH
    if min(h, w) < min_size_mm * px_per_mm or min(h, w) < 32:
        raise FailureToEnrol(
            f"image is too small: {w}x{h} pixels at {dpi:g} dpi is "
            f"{w / px_per_mm:.1f}x{h / px_per_mm:.1f} mm, at least {min_size_mm:g} mm "
            f"(and 32 pixels) a side is needed"
        )
    if h * w > max_pixels:
        raise FailureToEnrol(f"image is too large: {w}x{h} pixels, more than the limit of {max_pixels} pixels")


def to_gray(image: np.ndarray) -> np.ndarray:
    """Convert a checked image (:func:`as_image_array`) to float32 gray levels in [0, 255].

    Colour is converted with the ITU-R BT.601 luma weights. Float images whose values
    lie in [0, 1] are taken as normalised and scaled to [0, 255]; other float images are
    clipped to [0, 255]. Integer images wider than 8 bits are scaled from their range.
    """
    if image.ndim == 3:
        if image.shape[2] == 1:
            image = image[:, :, 0]
        else:
            rgb = image[:, :, :3].astype(np.float32)
            image = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    kind = image.dtype.kind
    if kind == "b":
        gray = image.astype(np.float32) * 255.0
    elif kind == "f":
        gray = image.astype(np.float32)
        finite = np.isfinite(gray)
        if not finite.all():
            bad = int(gray.size - np.count_nonzero(finite))
            raise FailureToEnrol(f"image contains {bad} NaN or infinite pixel values")
        lo, hi = float(gray.min()), float(gray.max())
        if lo >= 0.0 and hi <= 1.0:
            gray *= 255.0
        else:
            np.clip(gray, 0.0, 255.0, out=gray)
    elif image.dtype.itemsize > 1:
        gray = image.astype(np.float32)
        if gray.max() > 255.0 or gray.min() < 0.0:
            info = np.iinfo(image.dtype)
            gray = (gray - float(info.min)) * np.float32(255.0 / (float(info.max) - float(info.min)))
    else:
        gray = image.astype(np.float32)
        if kind == "i":  # int8
            gray += 128.0
    return np.ascontiguousarray(gray, dtype=np.float32)


def check_contrast(gray: np.ndarray, min_contrast: float) -> None:
    """Refuse blank or uniform images (gray-level spread below ``min_contrast``)."""
    lo, hi = np.percentile(gray[:: max(1, gray.shape[0] // 256), :: max(1, gray.shape[1] // 256)], [1, 99])
    if hi - lo < min_contrast:
        raise FailureToEnrol(
            f"image is blank or uniform (gray levels span {hi - lo:.1f} between the 1st and 99th "
            f"percentiles, fewer than {min_contrast:g})"
        )
