"""Run a 1:1 benchmark: extract templates once, compare the protocol's pairs, store everything.

The steps are jobs of the run engine (:mod:`bench.engine`): extraction
(:func:`bench.engine.extraction.extract_templates`, through the template cache, so a
second run, or a run with another matcher, reuses the templates) and comparison
(:func:`bench.engine.comparison.compare_pairs`), each on the chosen backend: isolated
local processes (default) or a Dask cluster, with identical scores. When every pair is
stored, the record tables are rewritten in protocol order, so two runs of the same
inputs give the same tables apart from the timing column.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench import provenance
from bench.plugins import registry
from bench.datasets.base import Dataset, sha256_file
from bench.engine.backends import Backend, BackendError, LocalBackend
from bench.engine.comparison import compare_pairs
from bench.engine.extraction import assess_quality, extract_templates
from bench.engine.isolation import WorkerSetupError
from bench.plugins import accepts
from bench.plugins.loading import PluginSpec, describe_plugins
from bench.protocols import PairList
from bench.store import (
    EXTRACTION_FIELDS, QUALITY_FIELDS, SCORE_FIELDS, VERIFICATION, CsvLog, RunDir, RunDirError, claim, identity_digest,
    manifest_header, rewrite_log, stable_json, write_json,
)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------- configuration
@dataclass
class RunConfig:
    extractor: PluginSpec
    matcher: PluginSpec
    out: Path
    cache_dir: Path
    jobs: int = 0  # 0 = all cores
    extract_timeout: float = 60.0
    compare_timeout: float = 10.0
    chunk_size: int = 64
    init_timeout: float = 120.0  # seconds allowed to construct a plugin
    force: bool = False
    retry_failed: bool = False
    progress: bool | None = None  # None = only on a terminal
    quality: PluginSpec | None = None  # image quality per sample (quality.csv); None = none
    quality_timeout: float = 60.0


# --------------------------------------------------------------------- the runner
@dataclass
class RunSummary:
    run_dir: Path
    n_extracted: int
    n_compared: int
    seconds: float
    metrics: dict[str, Any]


def run_benchmark(dataset: Dataset, pairs: PairList, config: RunConfig, backend: Backend | None = None) -> RunSummary:
    """Run (or resume) one benchmark into ``config.out`` and return its summary.

    ``backend`` runs the extraction and comparison units (default: local isolated
    processes, ``config.jobs`` of them). The run folder is locked while the run writes
    there (a second run on it is refused), and a folder that is not FingerBench's own is
    refused before anything is written.
    """
    with claim(config.out):
        try:
            return _run_benchmark(dataset, pairs, config, backend or LocalBackend(config.jobs))
        except (WorkerSetupError, BackendError) as exc:  # e.g. a plugin that constructed once failed to in a worker
            if isinstance(exc, BackendError) and not isinstance(exc.__cause__, WorkerSetupError):
                raise
            raise registry.PluginError(str(exc)) from exc


def _run_benchmark(dataset: Dataset, pairs: PairList, config: RunConfig, backend: Backend) -> RunSummary:
    t_start = time.perf_counter()
    specs = [config.extractor, config.matcher] + ([config.quality] if config.quality is not None else [])
    ext_desc, mat_desc, *quality_desc = describe_plugins(specs, config.init_timeout, config.cache_dir)
    if not accepts(SimpleNamespace(accepted_formats=tuple(mat_desc["accepted_formats"])), ext_desc["template_format"]):
        raise registry.PluginError(
            f"matcher '{mat_desc['name']}' accepts {mat_desc['accepted_formats']}, not the "
            f"'{ext_desc['template_format']}' templates of extractor '{ext_desc['name']}'"
        )

    needed_ids = sorted({p.probe for p in pairs.pairs} | {p.reference for p in pairs.pairs})
    samples = {s.id: s for s in dataset.samples}
    missing_ids = [i for i in needed_ids if i not in samples]
    if missing_ids:
        raise RunDirError(f"the pair list names samples that are not in the dataset: {missing_ids[:5]}")
    digests = {sid: sha256_file(samples[sid].path) for sid in needed_ids
               if samples[sid].path is not None and samples[sid].path.is_file()}
    dataset_digest = hashlib.sha256("".join(f"{k}:{v}\n" for k, v in sorted(digests.items())).encode()).hexdigest()

    run = RunDir(config.out)
    identity = {
        "dataset": {"name": dataset.name, "params": dataset.params, "sha256": dataset_digest},
        "protocol": pairs.describe(),
        "extractor": ext_desc,
        "matcher": mat_desc,
    }
    old_quality = None
    if run.exists() and not config.force:
        old = run.read_manifest()
        old_quality = old.get("quality")
        old_identity = {k: old.get(k) for k in identity}
        old_identity["dataset"] = {k: (old.get("dataset") or {}).get(k) for k in ("name", "params", "sha256")}
        if stable_json(old_identity) != stable_json(identity):
            raise RunDirError(
                f"{run.path} holds a run of another configuration (dataset, protocol or plugins differ); "
                f"choose another --out or pass --force to overwrite it"
            )
        log.info("resuming the run in %s", run.path)
    elif run.path.exists() and config.force:
        run.remove_own_files()
    run.path.mkdir(parents=True, exist_ok=True)

    manifest = {
        **manifest_header(VERIFICATION),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "status": "running",
        "dataset": {**identity["dataset"], "root": str(dataset.root), "dpi": dataset.info.dpi,
                    "image_size": dataset.info.image_size, "n_samples": len(dataset.samples),
                    "n_problems": len(dataset.problems), "files_sha256": digests},
        "protocol": identity["protocol"],
        "extractor": ext_desc,
        "matcher": mat_desc,
        "backend": backend.describe(),
        "settings": {"jobs": backend.slots(), "extract_timeout_s": config.extract_timeout,
                     "compare_timeout_s": config.compare_timeout, "chunk_size": config.chunk_size,
                     "cache_dir": str(config.cache_dir)},
        "environment": provenance.environment(),
        "command": sys.argv,
    }
    # image quality is not part of the run's identity (the scores do not depend on it): a run
    # resumed without a quality plugin keeps the quality it has; one with another plugin (or
    # another version or parameters of it) assesses every image again
    quality = quality_desc[0] if quality_desc else old_quality
    if quality is not None:
        manifest["quality"] = quality
        manifest["settings"]["quality_timeout_s"] = config.quality_timeout
    if quality_desc and old_quality is not None and stable_json(old_quality) != stable_json(quality_desc[0]):
        log.info("the quality plugin changed since this run assessed its images; assessing them again")
        run.quality.unlink(missing_ok=True)
    elif quality is None:
        run.quality.unlink(missing_ok=True)
    write_json(run.manifest, manifest)
    pairs.to_csv(run.pairs)
    write_json(run.problems, [p.__dict__ for p in dataset.problems])

    # ---------------------------------------------------------------- extraction
    ext_log = CsvLog(run.extractions, EXTRACTION_FIELDS)
    extraction = extract_templates(samples, needed_ids, digests, config.extractor, ext_desc, config.cache_dir, backend,
                                   ext_log, timeout=config.extract_timeout, expected_size=dataset.info.image_size,
                                   force=config.force, retry_failed=config.retry_failed,
                                   show_progress=config.progress)

    # ------------------------------------------------------------------- quality
    quality_log = None
    if quality_desc:
        quality_log = CsvLog(run.quality, QUALITY_FIELDS)
        assess_quality(samples, needed_ids, digests, config.quality, quality_desc[0], backend, quality_log,
                       timeout=config.quality_timeout, expected_size=dataset.info.image_size,
                       retry_failed=config.retry_failed, show_progress=config.progress)
    elif quality is not None and run.quality.exists():
        quality_log = CsvLog(run.quality, QUALITY_FIELDS)

    # ---------------------------------------------------------------- comparison
    score_log = CsvLog(run.scores, SCORE_FIELDS)
    t_cmp = time.perf_counter()
    run_key = identity_digest(identity)
    n_todo = compare_pairs(pairs, samples, digests, extraction, config.matcher, mat_desc, backend, score_log,
                           key=run_key, timeout=config.compare_timeout, chunk_size=config.chunk_size,
                           retry_failed=config.retry_failed, show_progress=config.progress)
    cmp_seconds = time.perf_counter() - t_cmp
    _protocol_order(ext_log, score_log, needed_ids, pairs, quality_log)

    # ------------------------------------------------------------------ metrics
    from bench.metrics.summary import evaluate_run

    metrics = evaluate_run(run.path)
    manifest["status"] = "complete"
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    manifest["last_session"] = {"wall_seconds": time.perf_counter() - t_start,
                                "extraction_wall_seconds": extraction.seconds, "comparison_wall_seconds": cmp_seconds,
                                "extracted": len(extraction.extracted_now), "compared": n_todo}
    write_json(run.manifest, manifest)
    return RunSummary(run.path, len(extraction.extracted_now), n_todo, time.perf_counter() - t_start, metrics)


def _protocol_order(ext_log: CsvLog, score_log: CsvLog, ids: list[str], pairs: PairList,
                    quality_log: CsvLog | None = None) -> None:
    """Rewrite the record tables in protocol order (samples sorted, pairs as listed), so
    their bytes depend on the inputs, not on the order in which units finished."""
    position = {sid: k for k, sid in enumerate(ids)}
    for sample_log in (ext_log, quality_log):
        if sample_log is None:
            continue
        rows = sample_log.rows()
        ordered = sorted(rows, key=lambda r: position.get(r["sample"], len(position)))
        if ordered != rows:
            rewrite_log(sample_log, ordered)
    position = {(p.probe, p.reference): k for k, p in enumerate(pairs.pairs)}
    rows = score_log.rows()
    ordered = sorted(rows, key=lambda r: position.get((r["probe"], r["reference"]), len(position)))
    if ordered != rows:
        rewrite_log(score_log, ordered)
