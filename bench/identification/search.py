"""The unit of 1:N work: one probe shard searched against one gallery shard.

A run is a grid of units (probe shard b, gallery shard g). A unit loads its gallery
shard (whole subjects only, see :func:`.store.shard_bounds`), lets the matcher prepare
the templates if it can (``prepare(template)``), then, for each probe, asks the matcher
for the scores against the shard -- ``compare_many(probe, templates)`` when the matcher
has it, else one ``compare`` per template -- or, in a cascade, against the candidates an
index returned for the probe (``compare_subset(probe, templates, positions)`` when the
matcher has it; the others are not compared: the penetration rate; see :mod:`.cascade`). Scores are reduced at once, so nothing of size "gallery" leaves the
unit:

* the unit's top ``K = L + 1`` subjects per probe (subject score = best template score;
  order: score descending, then gallery subject number), enough to merge exact global
  top-L lists and to compute exact pessimistic mate ranks up to ``L``;
* the mate subject's score, when the mate lives in this shard (each subject lives in
  exactly one gallery shard);
* every mated comparison score (probe, gallery template, score);
* in a cascade, per probe: the index's time, work, candidates and faults, and the mate's
  position in the index's list as a share of the shard;
* histograms of all mated and non-mated comparison scores (see
  :func:`.metrics.histogram_keys`);
* counts (compared, failed) and timings: wall-clock and CPU seconds inside the plugins'
  search calls per probe (the index's, then the matcher's comparisons), preparation and loading per unit, the worker's CPU time
  so far and its peak memory. CPU times (per thread) stay meaningful on a loaded
  machine, where wall-clock times include waiting for a core.

The same function runs in a local worker process and on a Dask worker; workers keep the
matcher and the probe templates between units of the same run.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from bench.metrics.identification import histogram_keys
from bench.identification.cascade import IndexSettings, ShardIndexes, search_index
from bench.identification.store import STATUS_OK, Shard, TemplateStore
from bench.plugins import warm_up
from bench.plugins.loading import PluginSpec
from bench.template import Template

log = logging.getLogger(__name__)

_N_BINS = 1 << 16
_PROBE_SHARDS_KEPT = 4


@dataclass(frozen=True)
class SearchContext:
    """Everything a worker needs to run units of one run (small and picklable)."""

    key: str  # identifies the run (worker caches are keyed by it)
    matcher: PluginSpec
    higher_is_better: bool
    gallery_store: str
    probe_store: str
    candidates: int  # L
    index: IndexSettings | None = None  # a cascade: the index in front of the matcher

    @property
    def keep(self) -> int:
        """Candidates kept per unit and merge: L + 1 (for exact ranks up to L)."""
        return int(self.candidates) + 1


def peak_rss_bytes() -> int:
    """Peak resident memory of this process.

    Linux: VmHWM of /proc/self/status, which starts afresh at exec; ``ru_maxrss`` does
    not (a spawned worker would report its parent's peak). Elsewhere ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource
        import sys

        rss = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        return rss if sys.platform == "darwin" else rss * 1024
    except Exception:  # pragma: no cover
        return 0


class SearchWorker:
    """Per-process (per-thread on Dask) state: the matcher and cached probe shards."""

    def __init__(self, ctx: SearchContext) -> None:
        self.ctx = ctx
        self.matcher = ctx.matcher.build()
        warm_up(self.matcher, ctx.matcher.name)  # one-time set-up (compilation) outside every timed region
        self._probes: OrderedDict[int, tuple[Shard, list[Template | None]]] = OrderedDict()
        self._warned_many = False
        self._warned_subset = False
        self.indexes = ShardIndexes(ctx.index) if ctx.index is not None else None

    # ------------------------------------------------------------------ inputs
    def probes(self, b: int) -> tuple[Shard, list[Template | None], float, float]:
        """Probe shard ``b`` and its templates; the wall and CPU seconds spent preparing
        them (0 when they were cached)."""
        hit = self._probes.get(b)
        if hit is not None:
            self._probes.move_to_end(b)
            return hit[0], hit[1], 0.0, 0.0
        shard = TemplateStore(Path(self.ctx.probe_store)).load(b)
        templates = shard.templates()
        t0, c0 = time.perf_counter(), time.thread_time()
        self._prepare([t for t in templates if t is not None])
        seconds, cpu = time.perf_counter() - t0, time.thread_time() - c0
        self._probes[b] = (shard, templates)
        if len(self._probes) > _PROBE_SHARDS_KEPT:
            self._probes.popitem(last=False)
        return shard, templates, seconds, cpu

    def _prepare(self, templates: Sequence[Template]) -> None:
        prepare = getattr(self.matcher, "prepare", None)
        if callable(prepare):
            for t in templates:
                try:
                    prepare(t)
                except Exception as exc:  # its comparisons will fail and be counted as such
                    log.warning("prepare() failed (%s: %s)", type(exc).__name__, exc)

    # ------------------------------------------------------------------ scoring
    def _scores(self, probe: Template, targets: list[Template]) -> tuple[np.ndarray, np.ndarray]:
        """Scores of ``probe`` against ``targets`` and a mask of failed comparisons."""
        n = len(targets)
        if n == 0:
            return np.empty(0), np.zeros(0, dtype=bool)
        many = getattr(self.matcher, "compare_many", None)
        if callable(many) and n > 1:
            try:
                s = np.asarray(many(probe, targets), dtype=np.float64).ravel()
                if s.shape != (n,):
                    raise ValueError(f"compare_many returned {s.size} scores for {n} templates")
                return s, ~np.isfinite(s)
            except Exception as exc:  # fall back to single calls so each failure is attributed
                if not self._warned_many:
                    log.warning("compare_many failed (%s: %s); comparing one by one", type(exc).__name__, exc)
                    self._warned_many = True
        s = np.empty(n, dtype=np.float64)
        for j, t in enumerate(targets):
            try:
                s[j] = float(self.matcher.compare(probe, t))
            except Exception:
                s[j] = np.nan
        return s, ~np.isfinite(s)

    def _candidate_scores(self, probe: Template, gallery: list[Template],
                          idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores of ``probe`` against an index's candidates ``gallery[idx]``: through the
        matcher's ``compare_subset`` hook when it has one, else as any list of templates."""
        subset = getattr(self.matcher, "compare_subset", None)
        if callable(subset) and idx.size > 1 and not self._warned_subset:
            try:
                s = np.asarray(subset(probe, gallery, idx), dtype=np.float64).ravel()
                if s.shape != (idx.size,):
                    raise ValueError(f"compare_subset returned {s.size} scores for {idx.size} candidates")
                return s, ~np.isfinite(s)
            except Exception as exc:  # the general path attributes each failure
                log.warning("compare_subset failed (%s: %s); comparing the candidates as a list",
                            type(exc).__name__, exc)
                self._warned_subset = True
        return self._scores(probe, [gallery[j] for j in idx])

    # ------------------------------------------------------------------ the unit
    def run(self, b: int, g: int) -> dict[str, Any]:
        t_unit, c_unit = time.perf_counter(), time.thread_time()
        ctx = self.ctx
        pshard, probes, probe_prep, probe_prep_cpu = self.probes(b)
        gshard = TemplateStore(Path(ctx.gallery_store)).load(g)
        live = np.flatnonzero(gshard.status == STATUS_OK)
        gallery = [gshard.template(int(i)) for i in live]
        gsubj = gshard.subject_index[live].astype(np.int64)
        t_loaded, c_loaded = time.perf_counter(), time.thread_time()
        self._prepare(gallery)  # type: ignore[arg-type]
        prep = time.perf_counter() - t_loaded + probe_prep
        prep_cpu = time.thread_time() - c_loaded + probe_prep_cpu
        load = t_loaded - t_unit - probe_prep
        subjects, starts = np.unique(gsubj, return_index=True)  # shards are sorted by subject
        P, K = len(probes), ctx.keep
        cand_subject = np.full((P, K), -1, dtype=np.int32)
        cand_score = np.full((P, K), -np.inf)
        mate_score = np.full(P, np.nan)
        n_compared = np.zeros(P, dtype=np.int64)
        n_failed = np.zeros(P, dtype=np.int64)
        seconds = np.zeros(P)
        cpu = np.zeros(P)
        hist = np.zeros((2, _N_BINS), dtype=np.int64)  # row 0 non-mated, 1 mated
        mated_probe, mated_entry, mated_value = [], [], []
        cascade = _CascadeRecord(P)
        if self.indexes is not None:
            index, build_error, build = self.indexes.get(g, gallery)  # type: ignore[arg-type]
            cascade.build = build
            cascade.build_error = build_error
        sign = 1.0 if ctx.higher_is_better else -1.0
        for i, probe in enumerate(probes):
            if probe is None:
                continue
            mate = int(pshard.subject_index[i])
            t0, c0 = time.perf_counter(), time.thread_time()
            if self.indexes is not None:
                found = search_index(index, build_error, probe, len(gallery), self.indexes.settings)
                cascade.record(i, found, gsubj, mate, len(gallery), time.perf_counter() - t0, time.thread_time() - c0)
                idx = np.sort(found.positions)
                raw, failed = self._candidate_scores(probe, gallery, idx)  # type: ignore[arg-type]
            else:
                idx = np.arange(len(gallery))
                raw, failed = self._scores(probe, gallery)  # type: ignore[arg-type]
            seconds[i] = time.perf_counter() - t0
            cpu[i] = time.thread_time() - c0
            s = raw * sign
            is_mate = gsubj[idx] == mate
            s[failed & is_mate] = -np.inf
            s[failed & ~is_mate] = np.inf
            n_compared[i] = idx.size
            n_failed[i] = int(failed.sum())
            good = ~failed
            if good.any():
                keys = histogram_keys(s[good])
                m = is_mate[good]
                hist[1] += np.bincount(keys[m], minlength=_N_BINS)
                hist[0] += np.bincount(keys[~m], minlength=_N_BINS)
            if mate >= 0 and is_mate.any():
                mated_probe.extend([i] * int(is_mate.sum()))
                mated_entry.extend(live[idx[is_mate]].tolist())
                mated_value.extend(s[is_mate].tolist())
            if subjects.size == 0:
                continue
            full = np.full(len(gallery), -np.inf)
            full[idx] = s
            subj_score = np.maximum.reduceat(full, starts)
            pos = int(np.searchsorted(subjects, mate)) if mate >= 0 else -1
            if 0 <= pos < subjects.size and subjects[pos] == mate:
                mate_score[i] = subj_score[pos]
            cand = np.flatnonzero(subj_score > -np.inf)
            if cand.size > K:
                kth = np.partition(subj_score[cand], cand.size - K)[cand.size - K]
                cand = cand[subj_score[cand] >= kth]
            order = np.lexsort((subjects[cand], -subj_score[cand]))[:K]
            chosen = cand[order]
            cand_subject[i, : chosen.size] = subjects[chosen]
            cand_score[i, : chosen.size] = subj_score[chosen]
        compare_total = float(seconds.sum() - cascade.seconds.sum())  # the matcher's share
        nz = [np.flatnonzero(h) for h in hist]
        return {
            "probe_shard": b,
            "gallery_shard": g,
            "cand_subject": cand_subject,
            "cand_score": cand_score,
            "mate_score": mate_score,
            "n_compared": n_compared,
            "n_failed": n_failed,
            "compare_seconds": seconds,
            "compare_cpu_seconds": cpu,
            "mated_probe": np.asarray(mated_probe, dtype=np.int32),
            "mated_entry": np.asarray(mated_entry, dtype=np.int64),  # position in the gallery shard
            "mated_score": np.asarray(mated_value, dtype=np.float64),
            "hist_nonmated_bins": nz[0].astype(np.uint16),
            "hist_nonmated_counts": hist[0][nz[0]],
            "hist_mated_bins": nz[1].astype(np.uint16),
            "hist_mated_counts": hist[1][nz[1]],
            "unit_seconds": np.float64(time.perf_counter() - t_unit),
            "load_seconds": np.float64(load),
            "prepare_seconds": np.float64(prep),
            "matcher_seconds": np.float64(compare_total),
            "unit_cpu_seconds": np.float64(time.thread_time() - c_unit),
            "prepare_cpu_seconds": np.float64(prep_cpu),
            "matcher_cpu_seconds": np.float64(cpu.sum() - cascade.cpu.sum()),
            "process_cpu_seconds": np.float64(time.process_time()),
            "gallery_templates": np.int64(len(gallery)),
            "peak_rss_bytes": np.int64(peak_rss_bytes()),
            "pid": np.int64(os.getpid()),
            "host": np.asarray(socket.gethostname()),
            **(cascade.result() if self.indexes is not None else {}),
        }


class _CascadeRecord:
    """What a unit records of its index: per probe, then per unit."""

    def __init__(self, P: int) -> None:
        self.seconds = np.zeros(P)
        self.cpu = np.zeros(P)
        self.work = np.zeros(P, dtype=np.int64)
        self.candidates = np.zeros(P, dtype=np.int64)
        self.failed = np.zeros(P, dtype=np.int64)
        self.invalid = np.zeros(P, dtype=np.int64)
        self.duplicates = np.zeros(P, dtype=np.int64)
        self.over_budget = np.zeros(P, dtype=np.int64)
        self.mate_fraction = np.full(P, np.nan)  # nan: the mate is not in this shard
        self.build: dict[str, float] = {}
        self.build_error = ""
        self.first_error = ""

    def record(self, i: int, found: Any, gsubj: np.ndarray, mate: int, n: int, seconds: float, cpu: float) -> None:
        self.seconds[i], self.cpu[i] = seconds, cpu
        self.work[i] = found.work
        self.candidates[i] = found.positions.size
        self.failed[i] = int(bool(found.error))
        self.invalid[i], self.duplicates[i], self.over_budget[i] = found.invalid, found.duplicates, found.over_budget
        if found.error and not self.first_error:
            self.first_error = found.error
        if mate >= 0 and n and (gsubj == mate).any():
            listed = np.flatnonzero(gsubj[found.positions] == mate)
            self.mate_fraction[i] = (listed[0] + 1) / n if listed.size else np.inf

    def result(self) -> dict[str, Any]:
        return {
            "index_seconds": self.seconds, "index_cpu_seconds": self.cpu, "index_work": self.work,
            "index_candidates": self.candidates, "index_failed": self.failed, "index_invalid": self.invalid,
            "index_duplicates": self.duplicates, "index_over_budget": self.over_budget,
            "mate_index_fraction": self.mate_fraction,
            "index_build_seconds": np.float64(self.build.get("seconds", 0.0)),
            "index_build_cpu_seconds": np.float64(self.build.get("cpu_seconds", 0.0)),
            "index_memory_bytes": np.float64(self.build.get("memory_bytes", 0.0)),
            "index_built": np.int64(self.build.get("built", 0.0)),
            "index_error": np.asarray(self.build_error or self.first_error),
        }


# ------------------------------------------------------------------ the job
@dataclass(frozen=True)
class SearchJob:
    """1:N search as a job of the run engine (see :mod:`bench.engine.backends`): a unit
    is one (probe shard, gallery shard) pair; a lost unit is recomputed whole."""

    ctx: SearchContext
    name: ClassVar[str] = "search"
    item_timeout: ClassVar[float | None] = None  # the backend's task timeout
    isolate_items: ClassVar[bool] = False

    @property
    def key(self) -> str:
        return self.ctx.key

    def setup(self) -> SearchWorker:
        return SearchWorker(self.ctx)

    def handle(self, worker: SearchWorker, items: list[tuple[int, int]]) -> list[dict[str, Any]]:
        return [worker.run(b, g) for b, g in items]

    def shared_paths(self) -> list[str]:
        return [self.ctx.gallery_store, self.ctx.probe_store]
