"""Access to the nbis-py bindings: lazy import, version, and shared extractor objects.

Creating an ``nbis.NbisExtractor`` takes about half a second (it loads the NFIQ 2
model even when NFIQ 2 is not requested), so they are created on first use and shared
by every plugin instance in the process, one per settings combination.
"""

from __future__ import annotations

import functools
from typing import Any

from extractors.common import distribution_version

DISTRIBUTION = "nbis-py"


def nbis_version() -> str:
    return distribution_version(DISTRIBUTION)


def unavailable_reason() -> str:
    """Empty when nbis-py can be imported, else why not."""
    try:
        import_nbis()
    except ImportError as exc:
        return str(exc)
    return ""


def import_nbis() -> Any:
    try:
        import nbis
    except ImportError as exc:  # also an OSError from the shared library, raised as ImportError
        raise ImportError(
            f"the NBIS plugins need the '{DISTRIBUTION}' package (pip install {DISTRIBUTION}): {exc}"
        ) from exc
    return nbis


@functools.lru_cache(maxsize=16)
def nbis_extractor(min_quality: float, compute_nfiq2: bool, ppi: float) -> Any:
    """The shared ``nbis.NbisExtractor`` for these settings."""
    nbis = import_nbis()
    settings = nbis.NbisExtractorSettings(
        min_quality=float(min_quality),
        get_center=False,
        check_fingerprint=False,
        compute_nfiq2=bool(compute_nfiq2),
        ppi=float(ppi),
    )
    return nbis.new_nbis_extractor(settings)


def template_loader() -> Any:
    """An extractor to read template bytes with (reading does not depend on the settings)."""
    return nbis_extractor(0.0, False, 500.0)
