"""Extraction as a job of the engine: templates from images, through the template cache.

:func:`extract_templates` is the one extraction step of every run (1:1 and 1:N): it
reuses what the template cache holds (checked, see :mod:`bench.store.template_cache`), runs the
rest as an :class:`ExtractJob` (a unit per image, on any backend), caches every outcome
the extractor gives every time, and logs one row per sample into the run's
``extractions.csv``.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

from bench.plugins import contract
from bench.datasets.base import ImageError, Sample, read_grayscale
from bench.engine.backends import Backend
from bench.engine.isolation import Task, TaskFailure
from bench.plugins import FailureToEnrol, warm_up
from bench.plugins.loading import PluginSpec
from bench.progress import progress
from bench.store import EXTRACTION_FIELDS, EXTRACTION_OK, EXTRACTION_STATUSES, CsvLog, atomic_write, one_line, sound_rows
from bench.template import Template
from bench.store.template_cache import (
    CACHED_FAILURES, TRANSIENT_EXCEPTIONS, CacheEntryError, extractor_key, is_cacheable, read_entry, sha256_bytes,
    write_record,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractJob:
    """Extraction as an engine job: a unit is one image (or template file)."""

    key: str
    spec: PluginSpec
    dpis: tuple[float, ...]
    item_timeout: float
    name: ClassVar[str] = "extraction"
    isolate_items: ClassVar[bool] = True
    paths: tuple[str, ...] = ()

    def setup(self) -> Any:
        extractor = self.spec.build()
        for dpi in self.dpis:
            warm_up(extractor, self.spec.name, dpi)
        return extractor

    def handle(self, extractor: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return extract_items(extractor, items)

    def shared_paths(self) -> Sequence[str]:
        return self.paths


def extract_items(extractor: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs in a worker: read, extract, cache. Plugin errors become records, not raises."""
    out = []
    for item in items:
        rec: dict[str, Any] = {"status": EXTRACTION_OK, "error": "", "n_minutiae": "", "template_bytes": "", "seconds": ""}
        if item.get("template"):
            # a dataset of template files: the extractor reads the file (bench.formats.plugin)
            reader = getattr(extractor, "extract_file", None)
            if not callable(reader):
                rec.update(status="error", error=f"{item['path']}: a template file, but this extractor "
                                                 f"reads images (use the 'template' extractor)")
                out.append(rec)
                continue

            def call(path=Path(item["path"]), dpi=float(item["dpi"]), options=item.get("options") or {}) -> Template:
                return reader(path, dpi, **options) if options else reader(path, dpi)
        else:
            try:
                image = read_grayscale(Path(item["path"]), item.get("expected_size"))
            except ImageError as exc:
                rec.update(status="unreadable", error=str(exc))
                out.append(rec)
                continue

            def call(image=image, dpi=float(item["dpi"])) -> Template:
                return extractor.extract(image, dpi)
        t0 = time.perf_counter()
        try:
            tpl = call()
            seconds = time.perf_counter() - t0
            contract.check_template(tpl, None if item.get("template") else image.shape)
        except FailureToEnrol as exc:
            rec.update(status="fte", error=f"{item['path']}: {exc}", seconds=time.perf_counter() - t0)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: this item's failure only
            method = "extract_file" if item.get("template") else "extract"
            where = contract.plugin_location(exc, extractor, method) or _last_frame(exc)
            message = f"{type(exc).__name__}: {exc}" + (f" at {where}" if where else "")
            rec.update(status="error", error=f"{item['path']}: {message}", seconds=time.perf_counter() - t0,
                       transient=isinstance(exc, TRANSIENT_EXCEPTIONS))
            if contract.is_interface_error(exc):
                rec[contract.INTERFACE_KEY] = message
        else:
            data = tpl.to_npz_bytes()
            Path(item["cache"]).parent.mkdir(parents=True, exist_ok=True)
            atomic_write(Path(item["cache"]), data)
            rec.update(n_minutiae=len(tpl), template_bytes=tpl.size_bytes, seconds=seconds,
                       template_sha256=sha256_bytes(data))
        out.append(rec)
    return out


def _last_frame(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    return f"{tb[-1].filename}:{tb[-1].lineno}" if tb else ""


@dataclass
class Extraction:
    """What :func:`extract_templates` found and made."""

    #: Folder of this extractor's cache entries.
    folder: Path
    #: sample id -> SHA-256 of its checked template file, for every usable template.
    template_sha: dict[str, str]
    #: sample ids extracted in this session (comparisons that used their old templates are stale).
    extracted_now: set[str] = field(default_factory=set)
    seconds: float = 0.0

    def path(self, digest: str) -> Path:
        return self.folder / f"{digest}.npz"


def extract_templates(samples: dict[str, Sample], ids: Sequence[str], digests: dict[str, str], spec: PluginSpec,
                      desc: dict[str, Any], cache_dir: Path, backend: Backend, ext_log: CsvLog, *,
                      timeout: float, expected_size: tuple[int, int] | None = None, force: bool = False,
                      retry_failed: bool = False, show_progress: bool | None = None) -> Extraction:
    """Make sure every sample of ``ids`` has a logged extraction outcome in ``ext_log``.

    ``digests`` maps each sample whose file exists to its SHA-256 (samples without one are
    logged as missing). Cached templates and the failures the extractor gives every time
    are reused (``force`` ignores the cache; ``retry_failed`` recomputes failures, logged
    or cached); damaged cache entries are recomputed.
    """
    done = {r["sample"]: r for r in sound_rows(ext_log, EXTRACTION_STATUSES)}
    if retry_failed:
        done = {k: v for k, v in done.items() if v["status"] == EXTRACTION_OK}
    key = extractor_key(desc)
    tdir = cache_dir / "templates" / key  # see cached_template_path
    tdir.mkdir(parents=True, exist_ok=True)
    result = Extraction(tdir, {})

    def cache_paths(sid: str) -> tuple[Path, Path]:
        d = digests[sid]
        return tdir / f"{d}.npz", tdir / f"{d}.json"

    def base_row(sid: str) -> dict[str, Any]:
        s = samples[sid]
        return {"sample": sid, "subject": s.subject, "impression": s.impression,
                "file": "" if s.path is None else str(s.path)}

    reused_failures: dict[str, int] = defaultdict(int)
    unusable: list[str] = []  # faults of cache entries that are recomputed
    todo: list[dict[str, Any]] = []
    immediate: list[dict[str, Any]] = []
    for sid in ids:
        s = samples[sid]
        if sid in done and (done[sid]["status"] != EXTRACTION_OK or sid not in digests):
            continue
        if s.path is None or sid not in digests:
            immediate.append({**base_row(sid), "status": "missing",
                              "error": f"{s.path or sid}: file is missing from the dataset"})
            continue
        npz, rec = cache_paths(sid)
        if not force and (rec.exists() or sid in done):
            try:
                cached = read_entry(npz, rec, digests[sid], key)
            except CacheEntryError as exc:
                log.info("template cache entry of %s cannot be used: %s; extracting it again", sid, exc)
                unusable.append(f"{sid}: {exc}")
            else:
                if cached["status"] == EXTRACTION_OK:
                    result.template_sha[sid] = cached["template_sha256"]
                    if sid not in done:
                        immediate.append({**base_row(sid), **{k: cached.get(k, "") for k in EXTRACTION_FIELDS[4:]}})
                    continue
                if not retry_failed and sid not in done:
                    reused_failures[cached["status"]] += 1
                    immediate.append({**base_row(sid), **{k: cached.get(k, "") for k in EXTRACTION_FIELDS[4:]}})
                    continue
        todo.append({"sid": sid, "path": str(s.path), "dpi": s.dpi, "template": bool(s.attributes.get("template")),
                     "options": s.attributes.get("template_options") or {},
                     "expected_size": expected_size, "cache": str(npz)})
    ext_log.append(immediate)
    if unusable:
        log.warning("%d template cache entries cannot be used and are extracted again: %s%s", len(unusable),
                    "; ".join(unusable[:3]), " ..." if len(unusable) > 3 else "")
    if reused_failures:
        log.warning("%d failures to enrol reused from the template cache %s (%s); they are cached because "
                    "the extractor gives them every time (%s); --retry-failed recomputes them",
                    sum(reused_failures.values()), tdir,
                    ", ".join(f"{k}: {v}" for k, v in sorted(reused_failures.items())),
                    "; ".join(f"{k}: {CACHED_FAILURES[k]}" for k in sorted(reused_failures)))

    def record(task: Task, outcome: list[dict[str, Any]] | TaskFailure, interface: list[str]) -> None:
        item = task.items[0]
        if isinstance(outcome, TaskFailure):
            rec = {"status": outcome.status, "error": f"{item['path']}: {outcome.message}",
                   "n_minutiae": "", "template_bytes": "", "seconds": ""}
        else:
            rec = outcome[0]
            rec["error"] = one_line(rec["error"])
        _, rec_path = cache_paths(item["sid"])
        if is_cacheable(rec) and not interface:
            # outcomes the extractor gives every time are cached; crashes, timeouts, transient
            # errors (MemoryError) and interface errors (fixed without a new version, as a
            # rule) are retried next time
            write_record(rec_path, rec, digests[item["sid"]], key)
        else:
            rec_path.unlink(missing_ok=True)
        if rec["status"] == EXTRACTION_OK:
            result.template_sha[item["sid"]] = rec["template_sha256"]
        ext_log.append([{**base_row(item["sid"]), **rec}])
        if rec["status"] != EXTRACTION_OK:
            log.warning("failure to enrol %s: %s%s", item["sid"], rec["error"],
                        "" if is_cacheable(rec) and not interface else " (not cached: retried on the next run)")

    t0 = time.perf_counter()
    if todo:
        dpis = tuple(sorted({float(it["dpi"]) for it in todo}))
        shared = sorted({str(Path(it["path"]).parent) for it in todo} | {str(tdir)})
        job = ExtractJob(key, spec, dpis, timeout, paths=tuple(shared))
        watch = contract.InterfaceWatch(len(todo), f"extractor '{desc['name']}'", contract.PluginInterfaceError,
                                        f"check it with: fingerbench check {spec.target}")
        with progress(len(todo), f"extract {desc['name']}", show_progress) as bar:
            tasks = [Task(it["sid"], [it]) for it in todo]
            with contextlib.closing(backend.run(job, tasks)) as results:  # stops the workers if the watch raises
                for task, outcome in results:
                    interface = contract.pop_interface_errors(outcome) if isinstance(outcome, list) else []
                    for held in watch.see((task, outcome, interface), interface):
                        record(*held)
                    bar.update(1)
            for held in watch.flush():
                record(*held)
    result.seconds = time.perf_counter() - t0
    result.extracted_now = {it["sid"] for it in todo}
    return result
