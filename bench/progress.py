"""Progress of a run's long steps."""

from __future__ import annotations

from tqdm import tqdm


def progress(total: int, desc: str, enabled: bool | None):
    """A progress bar over ``total`` items (``enabled`` None: only on a terminal)."""
    disable = None if enabled is None else (not enabled)
    return tqdm(total=total, desc=desc, unit="it", disable=disable, dynamic_ncols=True, leave=False)
