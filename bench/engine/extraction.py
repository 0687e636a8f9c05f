"""Extraction as a job of the engine: templates from images, through the template cache;
and image quality (:func:`assess_quality`), the other job done once per image.

:func:`extract_templates` is the one extraction step of every run (1:1 and 1:N): it
reuses what the template cache holds (checked, see :mod:`bench.store.template_cache`), runs the
rest as an :class:`ExtractJob` (a unit per image, on any backend), caches every outcome
the extractor gives every time, and logs one row per sample into the run's
``extractions.csv``.
"""

from __future__ import annotations

import contextlib
import hashlib
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
from bench.plugins import FailureToEnrol, QualityNotApplicable, warm_up
from bench.plugins.loading import PluginSpec
from bench.progress import progress
from bench.store import (
    EXTRACTION_FIELDS, EXTRACTION_OK, EXTRACTION_STATUSES, QUALITY_OK, QUALITY_STATUSES, CsvLog, atomic_write, one_line,
    rewrite_log, sound_rows, stable_json,
)
from bench.template import Template
from bench.store.template_cache import (
    CACHED_FAILURES, TRANSIENT_EXCEPTIONS, CacheEntryError, extractor_key, is_cacheable, read_entry, sha256_bytes,
    write_record,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class _ImageJob:
    """An engine job whose unit is one image, each isolated: the plugin is built and warmed
    up once per worker at every resolution the images have. ``key`` names the job's
    configuration (a worker keeps one set-up plugin per key)."""

    key: str
    spec: PluginSpec
    dpis: tuple[float, ...]
    item_timeout: float
    isolate_items: ClassVar[bool] = True
    paths: tuple[str, ...] = ()

    def setup(self) -> Any:
        plugin = self.spec.build()
        for dpi in self.dpis:
            warm_up(plugin, self.spec.name, dpi)
        return plugin

    def shared_paths(self) -> Sequence[str]:
        return self.paths


@dataclass(frozen=True, kw_only=True)
class ExtractJob(_ImageJob):
    """Extraction as an engine job: a unit is one image (or template file)."""

    name: ClassVar[str] = "extraction"

    def handle(self, extractor: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return extract_items(extractor, items)


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
        job = ExtractJob(key=key, spec=spec, dpis=dpis, item_timeout=timeout, paths=tuple(shared))
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


# ------------------------------------------------------------------------ image quality
@dataclass(frozen=True, kw_only=True)
class QualityJob(_ImageJob):
    """Image quality as an engine job: a unit is one image, isolated like an extraction."""

    score_range: tuple[float, float]
    name: ClassVar[str] = "quality"

    def handle(self, assessor: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return assess_items(assessor, items, self.score_range)


def assess_items(assessor: Any, items: list[dict[str, Any]], score_range: tuple[float, float]) -> list[dict[str, Any]]:
    """Runs in a worker: read each image and assess its quality. A plugin error, a value that
    is not a finite number within ``score_range``, or an image the plugin declares itself not
    applicable to becomes the item's record (status and message naming the file), never a raise."""
    lo, hi = score_range
    out = []
    for item in items:
        rec: dict[str, Any] = {"status": QUALITY_OK, "error": "", "quality": "", "seconds": ""}
        try:
            image = read_grayscale(Path(item["path"]), item.get("expected_size"))
        except ImageError as exc:
            rec.update(status="unreadable", error=str(exc))
            out.append(rec)
            continue
        t0 = time.perf_counter()
        try:
            value = assessor.assess(image, float(item["dpi"]))
            seconds = time.perf_counter() - t0
        except QualityNotApplicable as exc:
            rec.update(status="not_applicable", error=f"{item['path']}: {exc}", seconds=time.perf_counter() - t0)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: this item's failure only
            where = contract.plugin_location(exc, assessor, "assess") or _last_frame(exc)
            rec.update(status="error", error=f"{item['path']}: {type(exc).__name__}: {exc}"
                                             + (f" at {where}" if where else ""),
                       seconds=time.perf_counter() - t0)
        else:
            try:
                q = float(value)
            except (TypeError, ValueError):
                q = float("nan")
            if isinstance(value, bool) or not (lo <= q <= hi):  # NaN fails the comparison too
                rec.update(status="out_of_range", seconds=seconds,
                           error=f"{item['path']}: quality {value!r} is not a number within the declared "
                                 f"score_range [{lo:g}, {hi:g}]")
            else:
                rec.update(quality=q, seconds=seconds)
        out.append(rec)
    return out


def assess_quality(samples: dict[str, Sample], ids: Sequence[str], digests: dict[str, str], spec: PluginSpec,
                   desc: dict[str, Any], backend: Backend, quality_log: CsvLog, *, timeout: float,
                   expected_size: tuple[int, int] | None = None, retry_failed: bool = False,
                   show_progress: bool | None = None) -> int:
    """Make sure every sample of ``ids`` has a logged quality outcome in ``quality_log``;
    return how many were assessed now.

    A run resumed finds the outcomes it logged already and assesses only the rest
    (``retry_failed``: failures again too; "not_applicable" is no failure). Samples whose
    file is missing are logged as missing.
    """
    done = {r["sample"]: r for r in sound_rows(quality_log, QUALITY_STATUSES)}
    if retry_failed and any(r["status"] not in (QUALITY_OK, "not_applicable") for r in done.values()):
        done = {k: v for k, v in done.items() if v["status"] in (QUALITY_OK, "not_applicable")}
        rewrite_log(quality_log, list(done.values()))
    immediate, todo = [], []
    for sid in ids:
        if sid in done:
            continue
        s = samples[sid]
        base = {"sample": sid, "file": "" if s.path is None else str(s.path)}
        if s.path is None or sid not in digests:
            immediate.append({**base, "status": "missing", "error": f"{s.path or sid}: file is missing from the dataset"})
            continue
        if s.attributes.get("template"):
            immediate.append({**base, "status": "not_applicable",
                              "error": f"{s.path}: a template file, not an image: no image quality"})
            continue
        todo.append({"sid": sid, "path": str(s.path), "dpi": s.dpi, "expected_size": expected_size})
    quality_log.append(immediate)
    if not todo:
        return 0
    score_range = (float(desc["score_range"][0]), float(desc["score_range"][1]))
    key = hashlib.sha256(f"{spec.target} {stable_json(spec.params)}".encode()).hexdigest()
    job = QualityJob(key=f"quality-{key}", spec=spec, dpis=tuple(sorted({float(it["dpi"]) for it in todo})),
                     score_range=score_range, item_timeout=timeout, paths=tuple(sorted({str(Path(it["path"]).parent) for it in todo})))
    failures: dict[str, int] = defaultdict(int)
    first_error = ""
    with progress(len(todo), f"quality {desc['name']}", show_progress) as bar:
        with contextlib.closing(backend.run(job, [Task(it["sid"], [it]) for it in todo])) as results:
            for task, outcome in results:
                item = task.items[0]
                if isinstance(outcome, TaskFailure):
                    rec = {"status": outcome.status, "error": f"{item['path']}: {outcome.message}",
                           "quality": "", "seconds": ""}
                else:
                    rec = outcome[0]
                rec["error"] = one_line(rec["error"])
                if rec["status"] != QUALITY_OK:
                    failures[rec["status"]] += 1
                    first_error = first_error or rec["error"]
                quality_log.append([{"sample": item["sid"], "file": item["path"], **rec}])
                bar.update(1)
    if failures:
        log.warning("quality '%s': %s of %d images have no quality score (%s; first: %s); see %s", desc["name"],
                    sum(failures.values()), len(todo), ", ".join(f"{k}: {v}" for k, v in sorted(failures.items())),
                    first_error, quality_log.path)
    return len(todo)
