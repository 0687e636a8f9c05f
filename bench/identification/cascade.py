"""Cascades: an index (1:N pre-selection) in front of a matcher.

A run with an index (``IdentificationConfig.index``) searches every gallery shard in two
steps, inside the same search unit as any 1:N run (so with the same resume and Dask
execution): the index, built from the shard's templates (once per worker and shard),
returns candidates for the probe within the shard's budget, ``ceil(penetration x shard
size)``; the matcher compares the probe with those candidates only. The index's output
is checked before anything is compared, and every fault is recorded per search, never
dropped silently:

* ``search`` raises or outlives ``index_timeout`` (``index_failed``): no candidates from
  that shard;
* positions outside the shard (``index_invalid``): dropped;
* a position listed twice (``index_duplicates``): the first kept;
* more positions than the budget (``index_over_budget``): those past the budget dropped;
* ``build`` raises: no candidates from that shard for any probe (``index_failed``).

A mate that the index did not return is never compared: it is a miss, and counts in
FNIR and rank-1 like any other. Each search also records the index's work (in the
index's ``work_unit``), its time, and the position of the mate in the index's list as a
share of the shard (``mate_index_fraction``: the penetration the index needed to pass the
mate on), from which the hit rate at every penetration up to the budget follows
(:func:`bench.metrics.identification.hit_rate_curve`). :func:`evaluate_index` writes
``index.json``.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from bench.plugins import warm_up
from bench.plugins.loading import PluginSpec
from bench.template import Template

_INDEXES_KEPT = 2


@dataclass(frozen=True)
class IndexSettings:
    """The index of a cascade, its budget (a share of each gallery shard) and the seconds
    one ``search`` call may take."""

    spec: PluginSpec
    penetration: float = 1.0
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.penetration <= 1:
            raise ValueError(f"penetration must be in (0, 1], got {self.penetration}")

    def budget(self, n: int) -> int:
        """Candidates allowed from a shard of ``n`` templates (at least one)."""
        return min(n, max(1, math.ceil(self.penetration * n - 1e-9))) if n else 0


class IndexTimeout(Exception):
    """An index call outlived its deadline."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`IndexTimeout` in the block after ``seconds`` (main thread only: a
    Dask worker thread runs the block without a deadline, the backend's task timeout
    still applies)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise IndexTimeout(f"no answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Checked:
    """An index's answer after the checks: the positions kept (index order) and the faults."""

    positions: np.ndarray
    work: int = 0
    invalid: int = 0
    duplicates: int = 0
    over_budget: int = 0
    error: str = ""


def check_candidates(answer: Any, n: int, budget: int) -> Checked:
    """Check what ``search`` returned for a shard of ``n`` templates and a budget.

    The answer must be ``(positions, work)`` with integer positions; anything else is an
    error (no candidates). Positions outside ``0..n-1`` and repeats are dropped, and the
    list is cut at the budget; each is counted.
    """
    empty = np.empty(0, dtype=np.int64)
    if not isinstance(answer, tuple) or len(answer) != 2:
        return Checked(empty, error=f"search() returned {type(answer).__name__}, not (positions, work)")
    raw, work = answer
    try:
        work = int(work)
    except (TypeError, ValueError):
        return Checked(empty, error=f"search() returned work {work!r}, not a number")
    try:
        pos = np.asarray(raw)
    except Exception as exc:
        return Checked(empty, work, error=f"search() returned positions that are not an array ({exc})")
    if pos.size == 0:
        return Checked(empty, work)
    if pos.ndim != 1 or not np.issubdtype(pos.dtype, np.integer):
        return Checked(empty, work, error=f"search() returned positions of dtype {pos.dtype} and shape {pos.shape}, "
                                          f"not a 1-D integer array")
    pos = pos.astype(np.int64)
    inside = (pos >= 0) & (pos < n)
    invalid = int((~inside).sum())
    pos = pos[inside]
    _, first = np.unique(pos, return_index=True)
    duplicates = int(pos.size - first.size)
    pos = pos[np.sort(first)]
    over = max(0, int(pos.size) - int(budget))
    return Checked(pos[:budget], work, invalid, duplicates, over)


class ShardIndexes:
    """A worker's built indexes, one per gallery shard, the last few kept."""

    def __init__(self, settings: IndexSettings) -> None:
        self.settings = settings
        self._built: OrderedDict[int, tuple[Any, str]] = OrderedDict()
        self._warmed = False

    def get(self, g: int, gallery: Sequence[Template]) -> tuple[Any, str, dict[str, float]]:
        """The index of shard ``g`` (None when its build failed), the build error, and the
        build's cost (zero when it was already built in this worker)."""
        hit = self._built.get(g)
        if hit is not None:
            self._built.move_to_end(g)
            return hit[0], hit[1], {"seconds": 0.0, "cpu_seconds": 0.0, "memory_bytes": 0.0, "built": 0.0}
        index, error = None, ""
        try:
            index = self.settings.spec.build()
        except Exception as exc:
            error = f"the constructor failed: {type(exc).__name__}: {exc}"
        if index is not None and not self._warmed:  # one-time set-up (compilation), outside the timed build
            warm_up(index, self.settings.spec.name)
            self._warmed = True
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            if index is not None:
                index.build(list(gallery))
        except Exception as exc:
            index, error = None, f"build() failed: {type(exc).__name__}: {exc}"
        cost = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.thread_time() - c0,
                "memory_bytes": float(index_memory(index)) if index is not None else 0.0, "built": 1.0}
        self._built[g] = (index, error)
        if len(self._built) > _INDEXES_KEPT:
            self._built.popitem(last=False)
        return index, error, cost


def index_memory(index: Any) -> int:
    """The built index's size: its ``memory_bytes()`` if it has one, else its arrays."""
    hook = getattr(index, "memory_bytes", None)
    if callable(hook):
        try:
            return int(hook())
        except Exception:
            pass
    from bench.identification.runner import deep_nbytes

    return deep_nbytes(index)


def search_index(index: Any, build_error: str, probe: Template, n: int, settings: IndexSettings) -> Checked:
    """One checked index search of a shard of ``n`` templates."""
    if index is None:
        return Checked(np.empty(0, dtype=np.int64), error=build_error or "no index")
    try:
        with deadline(settings.timeout):
            answer = index.search(probe, settings.budget(n))
    except Exception as exc:
        return Checked(np.empty(0, dtype=np.int64), error=f"search() failed: {type(exc).__name__}: {exc}")
    return check_candidates(answer, n, settings.budget(n))


# ------------------------------------------------------------------ evaluation
def evaluate_index(run: Path) -> dict[str, Any] | None:
    """``index.json`` of a cascade run, from its stored tables (None for a run without an
    index): hit rate against penetration, index faults, work, time, build cost."""
    from bench.identification import results as res
    from bench.metrics.identification import index_summary
    from bench.store import read_json, write_json

    run = Path(run)
    manifest = read_json(run / "manifest.json")
    settings = (manifest.get("search") or {}).get("index")
    if not settings:
        return None
    table = res.read_table(run / "searches")
    units = res.read_units(run / "units.csv")
    summary = index_summary(table, units, float(settings["penetration"]),
                            int(manifest["protocol"]["n_gallery_templates"]))
    summary["index"] = settings
    write_json(run / "index.json", summary)
    return summary
