"""Small pieces the adapters share: the version string of an installed distribution and
the check of the image an extractor receives."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import numpy as np

from bench.plugins import FailureToEnrol


def distribution_version(distribution: str, label: str | None = None) -> str:
    """``"<label> <version>"`` of an installed distribution, or ``"<label> (not installed)"``."""
    label = label or distribution
    try:
        return f"{label} {importlib.metadata.version(distribution)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{label} (not installed)"


def gray_image(image: Any) -> np.ndarray:
    """The image as a C-contiguous 2-D uint8 array; anything else is a failure to enrol."""
    if not isinstance(image, np.ndarray) or image.ndim != 2 or image.dtype != np.uint8 or image.size == 0:
        raise FailureToEnrol("expected a non-empty 2-D uint8 image")
    return np.ascontiguousarray(image)
