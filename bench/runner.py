"""Run a benchmark: extract templates once, compare the protocol's pairs, store everything.

Extraction results are cached per (image content, extractor, version, parameters) under
the cache directory as NPZ templates with a JSON record beside each, so a second run,
or a run with another matcher, reuses them. Comparisons are grouped by probe so a matcher
with ``compare_many`` gets one probe against many references. Every plugin call runs in
an isolated worker process (see :mod:`bench.isolation`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import sys
import time
import traceback
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from bench import contract, provenance, registry
from bench.datasets.base import Dataset, ImageError, read_grayscale, sha256_file
from bench.isolation import IsolatedPool, Task, TaskFailure, WorkerSetupError
from bench.plugins import FailureToEnrol, accepts, get_params, warm_up
from bench.progress import progress
from bench.protocols import PairList
from bench.store import (
    COMPARISON_OK, COMPARISON_STATUSES, ENROL_FAILED, EXTRACTION_FIELDS, EXTRACTION_OK, EXTRACTION_STATUSES,
    SCHEMA_VERSION, SCORE_FIELDS,
    CsvLog, RunDir, RunDirError, atomic_write, claim, one_line, unique_tmp, write_json,
)
from bench.template import Template, TemplateError
from bench.template_cache import (
    CACHED_FAILURES, TRANSIENT_EXCEPTIONS, CacheEntryError, is_cacheable, read_entry, sha256_bytes, write_record,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- plugins
@dataclass(frozen=True)
class PluginSpec:
    """How to build a plugin in any process: an importable target and its parameters.

    ``target`` is ``package.module:Class`` or ``path/to/file.py:Class``.
    """

    kind: str
    name: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def resolve(cls, kind: str, name_or_target: str, params: dict[str, Any] | None = None) -> "PluginSpec":
        params = dict(params or {})
        if ":" in name_or_target:
            return cls(kind, name_or_target.rsplit(":", 1)[1], name_or_target, params)
        e = registry.entry(kind, name_or_target)
        ok, reason = e.availability()
        if not ok:
            raise registry.PluginError(f"{kind} '{e.name}' is unavailable: {reason}")
        return cls(kind, e.name, e.target, params)

    def build(self) -> Any:
        obj = load_target(self.target)
        try:
            return obj(**self.params)
        except TypeError as exc:
            raise registry.PluginError(f"{self.kind} '{self.name}': bad parameters {self.params}: {exc}") from exc

    def describe(self, instance: Any) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "version": str(getattr(instance, "version", "unknown")),
            "params": get_params(instance),
            "code_sha256": code_fingerprint(type(instance)),
        }


def code_fingerprint(cls: type) -> str:
    """SHA-256 of the Python source next to a plugin class: every ``.py`` file in the folder
    of the module that defines it (a family's extractor or matcher and its helpers, or a
    single ``path/file.py``). Part of the template cache key and of a run's identity, so
    that changed code is never mistaken for the code that made a stored result, whether or
    not its ``version`` was bumped. "" where the class has no source file."""
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if not path:
        return ""
    h = hashlib.sha256()
    for f in sorted(Path(path).resolve().parent.glob("*.py")):
        h.update(f.name.encode() + b"\0")
        try:
            h.update(f.read_bytes())
        except OSError:
            continue
        h.update(b"\0")
    return h.hexdigest()


#: Module-name prefix of plugins loaded from a file (``path/file.py:Class``).
USER_MODULE_PREFIX = "fingerbench_user_"


def load_target(target: str) -> Any:
    module_name, _, attr = target.rpartition(":")
    if not module_name or not attr:
        raise registry.PluginError(f"'{target}' is not of the form module:Class or file.py:Class")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).resolve()
            if not path.is_file():
                raise registry.PluginError(f"{path}: no such file")
            mod_name = USER_MODULE_PREFIX + hashlib.sha1(str(path).encode()).hexdigest()[:10]
            module = sys.modules.get(mod_name)
            if module is None:
                spec = importlib.util.spec_from_file_location(mod_name, path)
                assert spec and spec.loader
                module = importlib.util.module_from_spec(spec)
                sys.modules[mod_name] = module
                spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except registry.PluginError:
        raise
    except Exception as exc:
        raise registry.PluginError(f"cannot import {module_name}: {type(exc).__name__}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        where = f"; {registry.classes_hint(module_name)}" if module_name.endswith(".py") else ""
        raise registry.PluginError(f"{module_name} has no attribute {attr}{where}") from exc


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


def default_cache_dir() -> Path:
    env = os.environ.get("FINGERBENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fingerbench"


def _stable_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def extractor_key(desc: dict[str, Any]) -> str:
    """Cache key of an extractor: name, target, version, parameters and code fingerprint."""
    blob = _stable_json({k: desc.get(k, "") for k in ("name", "target", "version", "params", "code_sha256")})
    return f"{desc['name']}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def cached_template_path(manifest: dict[str, Any], sample_id: str) -> Path | None:
    """Where the run's template of ``sample_id`` is cached, or None if it is not there.

    Reports use this to draw minutiae; the cache may have been cleared since the run, and
    an entry that fails its checks (see :func:`bench.template_cache.read_entry`) is not used.
    """
    digest = manifest.get("dataset", {}).get("files_sha256", {}).get(sample_id)
    cache_dir = manifest.get("settings", {}).get("cache_dir")
    if not digest or not cache_dir:
        return None
    key = extractor_key(manifest["extractor"])
    path = Path(cache_dir) / "templates" / key / f"{digest}.npz"
    try:
        entry = read_entry(path, path.with_suffix(".json"), digest, key)
    except CacheEntryError:
        return None
    return path if entry["status"] == EXTRACTION_OK else None


# ------------------------------------------------------------ worker-side handlers
def _no_setup() -> None:
    return None


def _describe_items(_state: None, items: list[PluginSpec]) -> list[dict[str, Any]]:
    """Runs in a worker: construct each plugin and describe it; a failure becomes a record."""
    out = []
    for spec in items:
        try:
            instance = spec.build()
            desc = spec.describe(instance)
            if spec.kind == "extractor":
                desc["template_format"] = getattr(instance, "template_format", "minutiae")
            else:
                desc["higher_is_better"] = bool(getattr(instance, "higher_is_better", True))
                desc["accepted_formats"] = list(getattr(instance, "accepted_formats", ("minutiae",)))
            out.append({"description": desc, "batched": callable(getattr(instance, "compare_many", None))})
        except registry.PluginError as exc:
            out.append({"error": str(exc)})
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too
            out.append({"error": f"{spec.kind} '{spec.name}' could not be constructed: "
                                 f"{type(exc).__name__}: {one_line(str(exc), 500)}"})
    return out


def describe_plugins(specs: list[PluginSpec], timeout: float) -> list[dict[str, Any]]:
    """Construct each plugin in an isolated worker, ``timeout`` seconds each, and describe it.

    A constructor that raises, exits, crashes the process or hangs raises PluginError
    naming the plugin and the fault, instead of taking the caller down with it.
    """
    return [r["description"] for r in _inspect_plugins(specs, timeout)]


def _inspect_plugins(specs: list[PluginSpec], timeout: float) -> list[dict[str, Any]]:
    """:func:`describe_plugins`, with what the worker saw of each plugin beside its description."""
    pool = IsolatedPool(1, _no_setup, (), _describe_items, timeout_per_item=timeout)
    found: dict[int, dict[str, Any]] = {}
    for task, result in pool.run([Task(i, [spec], attempt_split=False) for i, spec in enumerate(specs)]):
        spec = specs[task.key]
        if isinstance(result, TaskFailure):
            raise registry.PluginError(f"{spec.kind} '{spec.name}' could not be constructed: {result.message}")
        if "error" in result[0]:
            raise registry.PluginError(result[0]["error"])
        found[task.key] = result[0]
    return [found[i] for i in range(len(specs))]


def _setup_extractor(spec: PluginSpec, dpis: tuple[float, ...] = ()) -> Any:
    extractor = spec.build()
    for dpi in dpis:
        warm_up(extractor, spec.name, dpi)
    return extractor


def _extract_items(extractor: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
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


def _setup_matcher(spec: PluginSpec) -> dict[str, Any]:
    matcher = spec.build()
    warm_up(matcher, spec.name)
    return {"matcher": matcher, "templates": OrderedDict()}


def _load_template(state: dict[str, Any], path: str, sha256: str) -> Template:
    """A cached template, checked against the SHA-256 its cache record holds."""
    cache: OrderedDict = state["templates"]
    tpl = cache.get((path, sha256))
    if tpl is None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise TemplateError(f"{path}: unreadable ({exc})") from exc
        if sha256_bytes(data) != sha256:
            raise TemplateError(f"{path}: template file changed since it was checked (SHA-256 differs)")
        tpl = Template.from_npz_bytes(data, source=path)
        cache[(path, sha256)] = tpl
        if len(cache) > 4096:
            cache.popitem(last=False)
    else:
        cache.move_to_end((path, sha256))
    return tpl


def _compare_items(state: dict[str, Any], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs in a worker: compare pairs that share one probe."""
    matcher = state["matcher"]
    try:
        probe = _load_template(state, items[0]["probe_template"], items[0]["probe_sha256"])
    except TemplateError as exc:
        return [{"score": "", "status": "failed", "error": one_line(str(exc)), "seconds": ""} for _ in items]
    refs: list[Template | None] = []
    load_errors: dict[int, str] = {}
    for i, it in enumerate(items):
        try:
            refs.append(_load_template(state, it["reference_template"], it["reference_sha256"]))
        except TemplateError as exc:
            refs.append(None)
            load_errors[i] = one_line(str(exc))
    many = getattr(matcher, "compare_many", None)
    if callable(many) and len(items) > 1 and not load_errors:
        t0 = time.perf_counter()
        try:
            returned = many(probe, refs)
        except BaseException:  # SystemExit and KeyboardInterrupt too
            pass  # fall back to one call per pair, so each failure is attributed
        else:
            try:
                scores = contract.check_scores(returned, len(refs))
            except contract.ContractError as exc:  # a wrong result is refused, not repaired
                where = contract.plugin_location(None, matcher, "compare_many")
                message = f"{exc}" + (f" (compare_many at {where})" if where else "")
                return [{"score": "", "status": "failed", "error": one_line(message), "seconds": "",
                         contract.INTERFACE_KEY: message} for _ in refs]
            per = (time.perf_counter() - t0) / len(items)
            return [_score_record(s, per) for s in scores]
    out = []
    for i, ref in enumerate(refs):
        if ref is None:
            out.append({"score": "", "status": "failed", "error": load_errors[i], "seconds": ""})
            continue
        t0 = time.perf_counter()
        try:
            s = contract.check_score(matcher.compare(probe, ref))
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: this pair's failure only
            where = contract.plugin_location(exc, matcher, "compare")
            message = f"{type(exc).__name__}: {exc}" + (f" at {where}" if where else "")
            rec = {"score": "", "status": "failed", "error": one_line(message), "seconds": time.perf_counter() - t0}
            if contract.is_interface_error(exc):
                rec[contract.INTERFACE_KEY] = message
            out.append(rec)
            continue
        out.append(_score_record(s, time.perf_counter() - t0))
    return out


def _score_record(score: float, seconds: float) -> dict[str, Any]:
    if not np.isfinite(score):
        return {"score": "", "status": "failed", "error": f"matcher returned {score}", "seconds": seconds}
    return {"score": repr(float(score)), "status": COMPARISON_OK, "error": "", "seconds": seconds}


# --------------------------------------------------------------------- the runner
class PluginInterfaceError(registry.PluginError):
    """A plugin broke the plugin contract the same way on the first items of a run."""


@dataclass
class RunSummary:
    run_dir: Path
    n_extracted: int
    n_compared: int
    seconds: float
    metrics: dict[str, Any]


def _jobs(n: int) -> int:
    return n if n and n > 0 else (os.cpu_count() or 1)


def _progress(total: int, desc: str, enabled: bool | None):
    return progress(total, desc, enabled)


def run_benchmark(dataset: Dataset, pairs: PairList, config: RunConfig) -> RunSummary:
    """Run (or resume) one benchmark into ``config.out`` and return its summary.

    The run folder is locked while the run writes there (a second run on it is refused),
    and a folder that is not FingerBench's own is refused before anything is written.
    """
    with claim(config.out):
        try:
            return _run_benchmark(dataset, pairs, config)
        except WorkerSetupError as exc:  # a plugin that constructed once failed to in a worker
            raise registry.PluginError(str(exc)) from exc


def _run_benchmark(dataset: Dataset, pairs: PairList, config: RunConfig) -> RunSummary:
    t_start = time.perf_counter()
    ext_seen, mat_seen = _inspect_plugins([config.extractor, config.matcher], config.init_timeout)
    ext_desc, mat_desc = ext_seen["description"], mat_seen["description"]
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
    if run.exists() and not config.force:
        old = run.read_manifest()
        old_identity = {k: old.get(k) for k in identity}
        old_identity["dataset"] = {k: (old.get("dataset") or {}).get(k) for k in ("name", "params", "sha256")}
        if _stable_json(old_identity) != _stable_json(identity):
            raise RunDirError(
                f"{run.path} holds a run of another configuration (dataset, protocol or plugins differ); "
                f"choose another --out or pass --force to overwrite it"
            )
        log.info("resuming the run in %s", run.path)
    elif run.path.exists() and config.force:
        run.remove_own_files()
    run.path.mkdir(parents=True, exist_ok=True)

    manifest = {
        "schema_version": SCHEMA_VERSION,
        "tool": "fingerbench",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "status": "running",
        "dataset": {**identity["dataset"], "root": str(dataset.root), "dpi": dataset.info.dpi,
                    "image_size": dataset.info.image_size, "n_samples": len(dataset.samples),
                    "n_problems": len(dataset.problems), "files_sha256": digests},
        "protocol": identity["protocol"],
        "extractor": ext_desc,
        "matcher": mat_desc,
        "settings": {"jobs": _jobs(config.jobs), "extract_timeout_s": config.extract_timeout,
                     "compare_timeout_s": config.compare_timeout, "chunk_size": config.chunk_size,
                     "cache_dir": str(config.cache_dir)},
        "environment": provenance.environment(),
        "command": sys.argv,
    }
    write_json(run.manifest, manifest)
    pairs.to_csv(run.pairs)
    write_json(run.problems, [p.__dict__ for p in dataset.problems])

    # ---------------------------------------------------------------- extraction
    ext_log = CsvLog(run.extractions, EXTRACTION_FIELDS)
    done = {r["sample"]: r for r in _sound_rows(ext_log, EXTRACTION_STATUSES)}
    if config.retry_failed:
        done = {k: v for k, v in done.items() if v["status"] == EXTRACTION_OK}
    key = extractor_key(ext_desc)
    tdir = config.cache_dir / "templates" / key  # see cached_template_path
    tdir.mkdir(parents=True, exist_ok=True)

    def cache_paths(sid: str) -> tuple[Path, Path]:
        d = digests[sid]
        return tdir / f"{d}.npz", tdir / f"{d}.json"

    def base_row(sid: str) -> dict[str, Any]:
        s = samples[sid]
        return {"sample": sid, "subject": s.subject, "impression": s.impression,
                "file": "" if s.path is None else str(s.path)}

    template_sha: dict[str, str] = {}  # sample -> SHA-256 of its checked template file
    reused_failures: dict[str, int] = defaultdict(int)
    unusable: list[str] = []  # faults of cache entries that are recomputed
    todo: list[dict[str, Any]] = []
    immediate: list[dict[str, Any]] = []
    for sid in needed_ids:
        s = samples[sid]
        if sid in done and (done[sid]["status"] != EXTRACTION_OK or sid not in digests):
            continue
        if s.path is None or sid not in digests:
            immediate.append({**base_row(sid), "status": "missing",
                              "error": f"{s.path or sid}: file is missing from the dataset"})
            continue
        npz, rec = cache_paths(sid)
        if not config.force and (rec.exists() or sid in done):
            try:
                cached = read_entry(npz, rec, digests[sid], key)
            except CacheEntryError as exc:
                log.info("template cache entry of %s cannot be used: %s; extracting it again", sid, exc)
                unusable.append(str(exc))
            else:
                if cached["status"] == EXTRACTION_OK:
                    template_sha[sid] = cached["template_sha256"]
                    if sid not in done:
                        immediate.append({**base_row(sid), **{k: cached.get(k, "") for k in EXTRACTION_FIELDS[4:]}})
                    continue
                if not config.retry_failed and sid not in done:
                    reused_failures[cached["status"]] += 1
                    immediate.append({**base_row(sid), **{k: cached.get(k, "") for k in EXTRACTION_FIELDS[4:]}})
                    continue
        todo.append({"sid": sid, "path": str(s.path), "dpi": s.dpi, "template": bool(s.attributes.get("template")),
                     "options": s.attributes.get("template_options") or {},
                     "expected_size": dataset.info.image_size, "cache": str(npz)})
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

    def record_extraction(task: Task, result: list[dict[str, Any]] | TaskFailure, interface: list[str]) -> None:
        item = task.items[0]
        if isinstance(result, TaskFailure):
            rec = {"status": result.status, "error": f"{item['path']}: {result.message}",
                   "n_minutiae": "", "template_bytes": "", "seconds": ""}
        else:
            rec = result[0]
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
            template_sha[item["sid"]] = rec["template_sha256"]
        ext_log.append([{**base_row(item["sid"]), **rec}])
        if rec["status"] != EXTRACTION_OK:
            log.warning("failure to enrol %s: %s%s", item["sid"], rec["error"],
                        "" if is_cacheable(rec) and not interface else " (not cached: retried on the next run)")

    t_ext = time.perf_counter()
    if todo:
        dpis = tuple(sorted({float(it["dpi"]) for it in todo}))
        pool = IsolatedPool(_jobs(config.jobs), _setup_extractor, (config.extractor, dpis), _extract_items,
                            timeout_per_item=config.extract_timeout)
        watch = contract.InterfaceWatch(len(todo), f"extractor '{ext_desc['name']}'", PluginInterfaceError,
                                        f"check it with: fingerbench check {config.extractor.target}")
        with _progress(len(todo), f"extract {ext_desc['name']}", config.progress) as bar:
            tasks = [Task(it["sid"], [it]) for it in todo]
            with contextlib.closing(pool.run(tasks)) as results:  # stops the workers if the watch raises
                for task, result in results:
                    interface = contract.pop_interface_errors(result) if isinstance(result, list) else []
                    for held in watch.see((task, result, interface), interface):
                        record_extraction(*held)
                    bar.update(1)
            for held in watch.flush():
                record_extraction(*held)
    ext_seconds = time.perf_counter() - t_ext
    ext_rows = {r["sample"]: r for r in ext_log.rows()}
    enrolled = {sid for sid, r in ext_rows.items() if r["status"] == EXTRACTION_OK and sid in template_sha}
    # every stored comparison that used a template extracted again now is stale
    extracted_now = {it["sid"] for it in todo}

    # ---------------------------------------------------------------- comparison
    score_log = CsvLog(run.scores, SCORE_FIELDS)

    def keep(r: dict[str, str]) -> bool:
        if r["probe"] in extracted_now or r["reference"] in extracted_now:
            return False
        return not (config.retry_failed and r["status"] not in (COMPARISON_OK, ENROL_FAILED))

    stored = _sound_rows(score_log, COMPARISON_STATUSES)
    kept = [r for r in stored if keep(r)]
    if len(kept) < len(stored):
        n_stale = sum(r["probe"] in extracted_now or r["reference"] in extracted_now for r in stored)
        if n_stale:
            log.info("%d stored comparisons used templates extracted again in this session: recomputing them",
                     n_stale)
        _rewrite_log(score_log, kept)
    done_pairs = {(r["probe"], r["reference"]) for r in kept}

    def pair_row(p) -> dict[str, Any]:
        return {"probe": p.probe, "reference": p.reference, "probe_subject": samples[p.probe].subject,
                "reference_subject": samples[p.reference].subject, "genuine": int(p.genuine)}

    ghost_rows = []
    by_probe: dict[str, list] = defaultdict(list)
    for p in pairs.pairs:
        if (p.probe, p.reference) in done_pairs:
            continue
        if p.probe not in enrolled or p.reference not in enrolled:
            failed = [s for s in (p.probe, p.reference) if s not in enrolled]
            ghost_rows.append({**pair_row(p), "status": ENROL_FAILED,
                               "error": f"no template for {', '.join(failed)} (failure to enrol)"})
            continue
        by_probe[p.probe].append(p)
    score_log.append(ghost_rows)

    tasks = []
    for probe_id, plist in by_probe.items():
        for i in range(0, len(plist), config.chunk_size):
            chunk = plist[i : i + config.chunk_size]
            tasks.append(Task((probe_id, i), [
                {"pair": (p.probe, p.reference), "probe_template": str(cache_paths(p.probe)[0]),
                 "probe_sha256": template_sha[p.probe], "reference_template": str(cache_paths(p.reference)[0]),
                 "reference_sha256": template_sha[p.reference]} for p in chunk]))
    pair_by_key = {(p.probe, p.reference): p for plist in by_probe.values() for p in plist}
    n_todo = sum(len(t.items) for t in tasks)
    t_cmp = time.perf_counter()
    if tasks:
        pool = IsolatedPool(_jobs(config.jobs), _setup_matcher, (config.matcher,), _compare_items,
                            timeout_per_item=config.compare_timeout)
        batched = bool(mat_seen["batched"])
        watch = contract.InterfaceWatch(len(tasks), f"matcher '{mat_desc['name']}'", PluginInterfaceError,
                                        f"check it with: fingerbench check {config.matcher.target}")
        with _progress(n_todo, f"compare {mat_desc['name']}", config.progress) as bar:
            with contextlib.closing(pool.run(tasks)) as results:
                for task, result in results:
                    if isinstance(result, TaskFailure):
                        result = [{"score": "", "status": result.status, "error": result.message, "seconds": ""}]
                    interface = contract.pop_interface_errors(result)
                    channel = "compare_many" if batched and len(task.items) > 1 else "compare"
                    for held_task, held in watch.see((task, result), interface, channel):
                        score_log.append([{**pair_row(pair_by_key[tuple(item["pair"])]), **rec}
                                          for item, rec in zip(held_task.items, held)])
                    bar.update(len(result))
            for held_task, held in watch.flush():
                score_log.append([{**pair_row(pair_by_key[tuple(item["pair"])]), **rec}
                                  for item, rec in zip(held_task.items, held)])
    cmp_seconds = time.perf_counter() - t_cmp

    # ------------------------------------------------------------------ metrics
    from bench.evaluate import evaluate_run

    metrics = evaluate_run(run.path)
    manifest["status"] = "complete"
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    manifest["last_session"] = {"wall_seconds": time.perf_counter() - t_start,
                                "extraction_wall_seconds": ext_seconds, "comparison_wall_seconds": cmp_seconds,
                                "extracted": len(todo), "compared": n_todo}
    write_json(run.manifest, manifest)
    return RunSummary(run.path, len(todo), n_todo, time.perf_counter() - t_start, metrics)


def _row_fault(row: dict[str, Any], fields: list[str], statuses: tuple[str, ...]) -> str | None:
    """What is wrong with one stored row, or None; a row of scores.csv also needs a finite ok score."""
    if None in row or any(row.get(k) is None for k in fields):
        return "wrong number of fields (a truncated or damaged row)"
    if row["status"] not in statuses:
        return f"unknown status {row['status']!r}"
    if "score" in row and row["status"] == COMPARISON_OK:
        try:
            ok = np.isfinite(float(row["score"]))
        except ValueError:
            ok = False
        if not ok:
            return f"score {row['score']!r} of a comparison with status ok is not a finite number"
    return None


def _sound_rows(log_: CsvLog, statuses: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of a record table; damaged rows are dropped from the file (and so recomputed)."""
    rows = log_.rows()
    faults = [(i + 2, f) for i, r in enumerate(rows) if (f := _row_fault(r, log_.fields, statuses))]
    if not faults:
        return rows
    bad = {line - 2 for line, _ in faults}
    kept = [r for i, r in enumerate(rows) if i not in bad]
    log.warning("%s: %d damaged rows are dropped and recomputed (first: line %d: %s)",
                log_.path, len(faults), faults[0][0], faults[0][1])
    _rewrite_log(log_, kept)
    return kept


def _rewrite_log(log_: CsvLog, keep: list[dict[str, str]]) -> None:
    """Replace a record table by the rows ``keep`` (atomically)."""
    tmp = unique_tmp(log_.path)
    try:
        fresh = CsvLog(tmp, log_.fields)
        fresh.append(keep)
        tmp.replace(log_.path)
    finally:
        tmp.unlink(missing_ok=True)
