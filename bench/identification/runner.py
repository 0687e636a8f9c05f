"""Run (or resume) a 1:N benchmark into a run directory.

Layout of an identification run directory::

    manifest.json       schema version, protocol summary and digest, template sources
                        (dataset and extractor, or synthetic model and seed), matcher,
                        settings, backend, environment; "status": running / complete
    protocol.csv        the protocol (role,id,subject,mated): re-importable
    extractions.csv     per dataset image: extraction status (only with a dataset)
    gallery/, probes/   template stores (compact shards, see .store)
    chunks/             one result file per finished unit (probe shard x gallery shard)
    searches.*, candidates.*, mated_scores.*, histogram.csv, units.csv
                        merged tables (see .results)
    metrics.json        derived from the tables by :func:`bench.metrics.summary.evaluate_identification_run`
    index.json          a cascade's index: hit rate against penetration, faults, work,
                        build cost (see .cascade)
    timing.json         throughput on all workers, harness share, memory

Steps: locate the templates (extracting what the cache lacks), write the gallery and
probe stores, check that no probe is identical to a gallery template (unless allowed),
run the units that have no chunk yet on the chosen backend, merge, evaluate. Killing
the process at any point and running the same command again redoes only the units
that were in flight.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import provenance
from bench.plugins import matcher_hooks
from bench.identification import results as res
from bench.identification.cascade import IndexSettings, evaluate_index
from bench.engine.backends import Backend, LocalBackend
from bench.engine.isolation import Task
from bench.metrics.identification import DEFAULT_FPIR_TARGETS
from bench.protocols.identification import IdentificationProtocol
from bench.identification.search import SearchContext, SearchJob, peak_rss_bytes
from bench.identification.sources import TemplateSources, materialize
from bench.identification.store import STATUS_OK, TemplateStore
from bench.progress import progress
from bench.protocols import ProtocolError
from bench.plugins.loading import PluginSpec, describe_plugins
from bench.metrics.summary import evaluate_identification_run
from bench.store import (
    IDENTIFICATION, RunDirError, check_manifest, claim, identity_digest, manifest_header, read_json, stable_json,
    write_json,
)

log = logging.getLogger(__name__)



@dataclass
class IdentificationConfig:
    """Settings of a 1:N run.

    ``candidates``: candidate list length L; ``shard_size``: gallery templates per unit
    (memory per worker grows with it); ``probe_batch``: probes per unit (the matcher's
    gallery preparation is amortised over them); ``index``: an index in front of the
    matcher (a cascade, see :mod:`.cascade`).
    """

    matcher: PluginSpec
    out: Path
    sources: TemplateSources = field(default_factory=TemplateSources)
    candidates: int = 100
    shard_size: int = 1000
    probe_batch: int = 1024
    jobs: int = 0  # template generation processes (0 = all cores)
    force: bool = False
    progress: bool | None = None
    fpir_targets: tuple[float, ...] = DEFAULT_FPIR_TARGETS
    init_timeout: float = 120.0  # seconds allowed to construct the matcher (first in an isolated worker)
    index: IndexSettings | None = None


@dataclass
class IdentificationSummary:
    run_dir: Path
    units_computed: int
    units_reused: int
    metrics: dict[str, Any]
    timing: dict[str, Any]


def _describe_matcher(spec: PluginSpec, matcher: Any) -> dict[str, Any]:
    d = spec.describe(matcher)
    d["higher_is_better"] = bool(getattr(matcher, "higher_is_better", True))
    d["hooks"] = matcher_hooks(matcher)
    return d


def _ordered_gallery(protocol: IdentificationProtocol) -> tuple[list[str], list[str], np.ndarray, list[str]]:
    """Gallery entries sorted by subject number (first appearance), stable."""
    subjects = protocol.subjects
    number = {s: k for k, s in enumerate(subjects)}
    si = np.fromiter((number[s] for s in protocol.gallery_subjects), dtype=np.int64, count=protocol.n_gallery)
    order = np.argsort(si, kind="stable")
    ids = [protocol.gallery_ids[i] for i in order]
    subs = [protocol.gallery_subjects[i] for i in order]
    return ids, subs, si[order], subjects


def deep_nbytes(obj: Any, _seen: set[int] | None = None) -> int:
    """Bytes of the numpy arrays reachable from ``obj`` (a matcher's prepared form)."""
    seen = _seen if _seen is not None else set()
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, (bytes, bytearray)):
        return len(obj)
    if isinstance(obj, dict):
        return sum(deep_nbytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(deep_nbytes(v, seen) for v in obj)
    d = getattr(obj, "__dict__", None)
    if d is not None:
        return deep_nbytes(d, seen)
    return 0


def run_identification(protocol: IdentificationProtocol, config: IdentificationConfig,
                       backend: Backend | None = None) -> IdentificationSummary:
    """Run (or resume) one 1:N benchmark into ``config.out``.

    The folder is locked while the run writes there; one that is not FingerBench's own is
    refused before anything is written (see :func:`bench.store.claim`).
    """
    with claim(config.out):
        return _run_identification(protocol, config, backend)


def _run_identification(protocol: IdentificationProtocol, config: IdentificationConfig,
                        backend: Backend | None = None) -> IdentificationSummary:
    t_start = time.perf_counter()
    backend = backend or LocalBackend()
    run = Path(config.out)
    if config.candidates < 1:
        raise ValueError(f"candidates must be at least 1, got {config.candidates}")
    # a constructor that raises, exits, crashes or hangs fails here, named, not in this process
    described = describe_plugins([config.matcher] + ([config.index.spec] if config.index else []),
                                 config.init_timeout)
    matcher = config.matcher.build()
    mat_desc = _describe_matcher(config.matcher, matcher)
    all_ids = list(protocol.gallery_ids) + list(protocol.probe_ids)
    identity = {
        "protocol": protocol.describe(),
        "templates": config.sources.identity(all_ids),
        "matcher": mat_desc,
        "search": {"candidates": config.candidates, "shard_size": config.shard_size,
                   "probe_batch": config.probe_batch},
    }
    if config.index is not None:
        identity["search"]["index"] = {**described[1], "penetration": config.index.penetration,
                                       "timeout_s": config.index.timeout}
    manifest_path = run / "manifest.json"
    created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if manifest_path.exists() and not config.force:
        old = read_json(manifest_path)
        created = old.get("created", created)
        check_manifest(manifest_path, old, IDENTIFICATION)
        if stable_json({k: old.get(k) for k in identity}) != stable_json(identity):
            differ = [k for k in identity if stable_json(old.get(k)) != stable_json(identity[k])]
            raise RunDirError(f"{run} holds an identification run of another configuration ({', '.join(differ)} "
                              f"differ); choose another --out or pass --force to overwrite it")
        log.info("resuming the identification run in %s", run)
    elif run.exists() and config.force:
        _clear(run)
    run.mkdir(parents=True, exist_ok=True)
    key = identity_digest(identity)
    manifest: dict[str, Any] = {
        **manifest_header(IDENTIFICATION),
        "created": created, "status": "running", "key": key,
        **identity,
        "backend": backend.describe(),
        "environment": provenance.environment(),
        "command": sys.argv,
    }
    write_json(manifest_path, manifest)
    protocol.to_csv(run / "protocol.csv")

    # -------------------------------------------------------------- templates
    t0 = time.perf_counter()
    locators = config.sources.locate(all_ids, run / "extractions.csv" if config.sources.dataset else None)
    gids, gsubs, gnum, subjects = _ordered_gallery(protocol)
    number = {s: k for k, s in enumerate(subjects)}
    pmate = np.array([number.get(s, -1) for s in protocol.probe_subjects], dtype=np.int64)
    gallery = TemplateStore(run / "gallery")
    probes = TemplateStore(run / "probes")
    gbounds = materialize(gallery, gids, gsubs, gnum, locators, config.sources, config.shard_size, config.jobs,
                          config.progress, role="gallery")
    pbounds = materialize(probes, protocol.probe_ids, protocol.probe_subjects, pmate, locators, config.sources,
                          config.probe_batch, config.jobs, config.progress, role="probes")
    template_seconds = time.perf_counter() - t0
    store_info = _check_stores(gallery, probes, gbounds, pbounds, protocol)

    # -------------------------------------------------------------- search
    ctx = SearchContext(key=key, matcher=config.matcher, higher_is_better=mat_desc["higher_is_better"],
                        gallery_store=str(gallery.path.resolve()), probe_store=str(probes.path.resolve()),
                        candidates=int(config.candidates), index=config.index)
    units = [(b, g) for b in range(len(pbounds)) for g in range(len(gbounds))]
    done = res.finished_units(run) & set(units)
    todo = [u for u in units if u not in done]
    log.info("%d units (%d probe shards x %d gallery shards): %d done, %d to run on %s",
             len(units), len(pbounds), len(gbounds), len(done), len(todo), backend.name)
    t_search, c_search = time.perf_counter(), time.process_time()
    if todo:
        with progress(len(todo), "1:N units", config.progress, unit="unit") as bar:
            for _task, result in backend.run(SearchJob(ctx), [Task(u, [u]) for u in todo]):
                res.save_chunk(run, result[0])
                bar.update(1)
    search_wall = time.perf_counter() - t_search
    driver_cpu = time.process_time() - c_search

    # -------------------------------------------------------------- merge
    t_merge = time.perf_counter()
    merged = res.merge_run(run, pbounds, gbounds, protocol.probe_ids, protocol.probe_subjects, pmate,
                           store_info["probe_enrolled"], gids, subjects, config.candidates)
    merge_seconds = time.perf_counter() - t_merge
    metrics = evaluate_identification_run(run, fpir_targets=config.fpir_targets)
    evaluate_index(run)
    timing = _timing(merged, store_info, backend, search_wall, driver_cpu, len(todo), len(units),
                     template_seconds, merge_seconds, matcher, gallery)
    write_json(run / "timing.json", timing)
    manifest["status"] = "complete"
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    manifest["last_session"] = {"wall_seconds": time.perf_counter() - t_start, "units_computed": len(todo),
                                "units_reused": len(done)}
    write_json(manifest_path, manifest)
    return IdentificationSummary(run, len(todo), len(done), metrics, timing)


#: What an identification run writes into its folder; ``--force`` removes these and nothing else.
_OWN_FILES = ("manifest.json", "protocol.csv", "extractions.csv", "metrics.json", "index.json", "timing.json",
              "histogram.csv", "units.csv") + tuple(f"{t}.{ext}" for t in ("searches", "candidates", "mated_scores")
                                   for ext in ("parquet", "csv"))
_OWN_DIRS = ("chunks", "gallery", "probes")


def _clear(run: Path) -> None:
    """Remove what an earlier run wrote (the folder is known to be a FingerBench run: see claim)."""
    import shutil

    for name in _OWN_DIRS:
        shutil.rmtree(run / name, ignore_errors=True)
    for name in _OWN_FILES:
        (run / name).unlink(missing_ok=True)


def _check_stores(gallery: TemplateStore, probes: TemplateStore, gbounds, pbounds,
                  protocol: IdentificationProtocol) -> dict[str, Any]:
    """Read back the stores' status and digests: failures, and identical probe/gallery
    templates (an error unless the protocol allows probes in the gallery)."""
    g_digest, g_ok, g_minutiae = [], 0, 0
    for k in range(len(gbounds)):
        s = gallery.load(k)
        ok = s.status == STATUS_OK
        g_ok += int(ok.sum())
        g_minutiae += int(s.minutiae.size)
        g_digest.append(s.digest[ok])
    p_digest, p_enrolled = [], []
    for k in range(len(pbounds)):
        s = probes.load(k)
        ok = s.status == STATUS_OK
        p_enrolled.append(ok)
        p_digest.append(np.where(ok, s.digest, 0))
    gd = np.concatenate(g_digest) if g_digest else np.empty(0, dtype=np.uint64)
    pd_ = np.concatenate(p_digest)
    enrolled = np.concatenate(p_enrolled)
    if not protocol.allow_probe_in_gallery:
        same = enrolled & np.isin(pd_, gd)
        if same.any():
            idx = np.flatnonzero(same)
            names = [protocol.probe_ids[i] for i in idx[:5]]
            raise ProtocolError(
                f"{idx.size} probe templates are identical to gallery templates ({', '.join(names)}"
                f"{' ...' if idx.size > 5 else ''}): the same impression enrolled and searched (a duplicated file?). "
                f"The protocol forbids probes in the gallery (allow_probe_in_gallery=True to permit it)")
    n_gallery = sum(hi - lo for lo, hi in gbounds)
    if g_ok == 0:
        raise ProtocolError("no gallery template could be enrolled: nothing to search")
    return {"gallery_templates": n_gallery, "gallery_enrolled": g_ok, "gallery_minutiae": g_minutiae,
            "gallery_store_bytes": gallery.bytes_on_disk(), "probe_enrolled": enrolled}


def _timing(merged: dict[str, Any], store: dict[str, Any], backend: Backend, search_wall: float,
            driver_cpu: float, n_run: int, n_units: int, template_seconds: float, merge_seconds: float,
            matcher: Any, gallery: TemplateStore) -> dict[str, Any]:
    """What only the session that ran the search can measure: backend, throughput on all workers,
    harness share, memory (see the keys' notes). The per-search and per-comparison speed is
    the summary's (:func:`bench.metrics.summary.search_speed`), derived from the records."""
    tot = merged["totals"]
    units = merged["units"]
    n_searches = int(np.count_nonzero(store["probe_enrolled"]))  # the searches table's "enrolled" column
    slots = backend.slots()
    comparisons = tot["comparisons"]

    matcher_cpu = tot["matcher_cpu_seconds"] + tot["prepare_cpu_seconds"]
    out: dict[str, Any] = {
        "backend": backend.describe(),
        "units": n_units,
        "units_computed_this_session": n_run,
        "gallery_templates": store["gallery_templates"],
        "gallery_enrolled": store["gallery_enrolled"],
        "searches": n_searches,
        "comparisons": comparisons,
        "failed_comparisons": tot["failed_comparisons"],
        "template_build_seconds": template_seconds,
        "merge_seconds": merge_seconds,
        "totals": {k: v for k, v in tot.items() if k not in ("comparisons", "failed_comparisons",
                                                              "process_cpu_seconds")},
        "memory": {
            "gallery_store_bytes": store["gallery_store_bytes"],
            "store_bytes_per_template": store["gallery_store_bytes"] / max(store["gallery_templates"], 1),
            "minutiae_per_template": store["gallery_minutiae"] / max(store["gallery_enrolled"], 1),
            "peak_worker_rss_bytes": max((u["peak_rss_bytes"] for u in units), default=0),
            "peak_worker_rss_bytes_sum": _rss_sum(units),
            "driver_peak_rss_bytes": peak_rss_bytes(),
        },
    }
    prepare = getattr(matcher, "prepare", None)
    if callable(prepare):
        sample = gallery.load(0)
        sizes = []
        for t in sample.templates()[:50]:
            if t is None:
                continue
            try:
                sizes.append(deep_nbytes(prepare(t)))
            except Exception:  # counted as failed comparisons by the workers; only an estimate here
                continue
        if sizes:
            out["memory"]["prepared_bytes_per_template"] = float(np.mean(sizes))
    if n_run == n_units and n_run > 0 and search_wall > 0:
        worker_cpu = tot["worker_process_cpu_seconds"]
        harness_cpu = driver_cpu + max(worker_cpu - matcher_cpu, 0.0)
        out["throughput"] = {
            "wall_seconds": search_wall,
            "slots": slots,
            "searches_per_second": n_searches / search_wall,
            "comparisons_per_second": comparisons / search_wall,
            "comparisons_per_second_per_slot": comparisons / search_wall / slots,
            "driver_cpu_seconds": driver_cpu,
            "worker_cpu_seconds": worker_cpu,
            "matcher_cpu_seconds": matcher_cpu,
            "harness_cpu_share": harness_cpu / (harness_cpu + matcher_cpu) if harness_cpu + matcher_cpu > 0 else None,
            "matcher_wall_share": (tot["matcher_seconds"] + tot["prepare_seconds"]) / (slots * search_wall),
            "note": "harness_cpu_share: CPU of the driver plus the workers' CPU outside the matcher (start-up, "
                    "loading, reduction, transfer), over all CPU; matcher_wall_share: wall-clock inside the "
                    "matcher (prepare + compare) over slots x wall (below 1 also when the machine is shared)",
        }
    else:
        out["throughput"] = {"note": "resumed or reused run: wall-clock throughput is not measurable; see the "
                                     "speed in metrics.json"}
    return out


def _rss_sum(units: list[dict[str, Any]]) -> int:
    peak: dict[tuple[str, int], int] = {}
    for u in units:
        k = (u["host"], u["pid"])
        peak[k] = max(peak.get(k, 0), u["peak_rss_bytes"])
    return int(sum(peak.values()))
