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
from typing import Any

import numpy as np
from tqdm import tqdm

from bench import contract, provenance, registry
from bench.datasets.base import Dataset, ImageError, read_grayscale, sha256_file
from bench.isolation import IsolatedPool, Task, TaskFailure
from bench.plugins import FailureToEnrol, accepts, get_params
from bench.protocols import PairList
from bench.store import (
    COMPARISON_OK, ENROL_FAILED, EXTRACTION_FIELDS, EXTRACTION_OK, SCHEMA_VERSION, SCORE_FIELDS,
    CsvLog, RunDir, RunDirError, one_line, write_json,
)
from bench.template import Template

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
        }


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
        raise registry.PluginError(f"{module_name} has no attribute {attr}") from exc


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
    """Cache key of an extractor: name, target, version and parameters."""
    blob = _stable_json({k: desc[k] for k in ("name", "target", "version", "params")})
    return f"{desc['name']}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def cached_template_path(manifest: dict[str, Any], sample_id: str) -> Path | None:
    """Where the run's template of ``sample_id`` is cached, or None if it is not there.

    Reports use this to draw minutiae; the cache may have been cleared since the run.
    """
    digest = manifest.get("dataset", {}).get("files_sha256", {}).get(sample_id)
    cache_dir = manifest.get("settings", {}).get("cache_dir")
    if not digest or not cache_dir:
        return None
    path = Path(cache_dir) / "templates" / extractor_key(manifest["extractor"]) / f"{digest}.npz"
    return path if path.is_file() else None


# ------------------------------------------------------------ worker-side handlers
def _setup_extractor(spec: PluginSpec, dpis: tuple[float, ...] = ()) -> Any:
    extractor = spec.build()
    warm_up = getattr(extractor, "warm_up", None)
    if callable(warm_up):
        for dpi in dpis:
            try:
                warm_up(dpi)
            except Exception as exc:  # the timed calls will meet (and record) the same problem
                log.warning("warm-up of %s at %s dpi failed: %s", spec.name, dpi, exc)
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
        except Exception as exc:
            method = "extract_file" if item.get("template") else "extract"
            where = contract.plugin_location(exc, extractor, method) or _last_frame(exc)
            message = f"{type(exc).__name__}: {exc}" + (f" at {where}" if where else "")
            rec.update(status="error", error=f"{item['path']}: {message}", seconds=time.perf_counter() - t0)
            if contract.is_interface_error(exc):
                rec[contract.INTERFACE_KEY] = message
        else:
            Template.save(tpl, Path(item["cache"]))
            rec.update(n_minutiae=len(tpl), template_bytes=tpl.size_bytes, seconds=seconds)
        out.append(rec)
    return out


def _last_frame(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    return f"{tb[-1].filename}:{tb[-1].lineno}" if tb else ""


def _setup_matcher(spec: PluginSpec) -> dict[str, Any]:
    matcher = spec.build()
    warm_up = getattr(matcher, "warm_up", None)
    if callable(warm_up):
        try:
            warm_up()
        except Exception as exc:
            log.warning("warm-up of %s failed: %s", spec.name, exc)
    return {"matcher": matcher, "templates": OrderedDict()}


def _load_template(state: dict[str, Any], path: str) -> Template:
    cache: OrderedDict = state["templates"]
    tpl = cache.get(path)
    if tpl is None:
        tpl = Template.load(Path(path))
        cache[path] = tpl
        if len(cache) > 4096:
            cache.popitem(last=False)
    else:
        cache.move_to_end(path)
    return tpl


def _compare_items(state: dict[str, Any], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs in a worker: compare pairs that share one probe."""
    matcher = state["matcher"]
    probe = _load_template(state, items[0]["probe_template"])
    refs = [_load_template(state, it["reference_template"]) for it in items]
    many = getattr(matcher, "compare_many", None)
    if callable(many) and len(items) > 1:
        t0 = time.perf_counter()
        try:
            returned = many(probe, refs)
        except Exception:
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
    for ref in refs:
        t0 = time.perf_counter()
        try:
            s = contract.check_score(matcher.compare(probe, ref))
        except Exception as exc:
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
    disable = None if enabled is None else (not enabled)
    return tqdm(total=total, desc=desc, unit="it", disable=disable, dynamic_ncols=True, leave=False)


def run_benchmark(dataset: Dataset, pairs: PairList, config: RunConfig) -> RunSummary:
    """Run (or resume) one benchmark into ``config.out`` and return its summary."""
    t_start = time.perf_counter()
    extractor = config.extractor.build()
    matcher = config.matcher.build()
    ext_desc = config.extractor.describe(extractor)
    ext_desc["template_format"] = getattr(extractor, "template_format", "minutiae")
    mat_desc = config.matcher.describe(matcher)
    mat_desc["higher_is_better"] = bool(getattr(matcher, "higher_is_better", True))
    mat_desc["accepted_formats"] = list(getattr(matcher, "accepted_formats", ("minutiae",)))
    if not accepts(matcher, ext_desc["template_format"]):
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
        for p in (run.extractions, run.scores, run.metrics, run.manifest):
            p.unlink(missing_ok=True)
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
    done = {r["sample"]: r for r in ext_log.rows()}
    if config.retry_failed:
        done = {k: v for k, v in done.items() if v["status"] == EXTRACTION_OK}
    tdir = config.cache_dir / "templates" / extractor_key(ext_desc)  # see cached_template_path
    tdir.mkdir(parents=True, exist_ok=True)

    def cache_paths(sid: str) -> tuple[Path, Path]:
        d = digests[sid]
        return tdir / f"{d}.npz", tdir / f"{d}.json"

    def base_row(sid: str) -> dict[str, Any]:
        s = samples[sid]
        return {"sample": sid, "subject": s.subject, "impression": s.impression,
                "file": "" if s.path is None else str(s.path)}

    todo: list[dict[str, Any]] = []
    immediate: list[dict[str, Any]] = []
    for sid in needed_ids:
        if sid in done:
            continue
        s = samples[sid]
        if s.path is None or sid not in digests:
            immediate.append({**base_row(sid), "status": "missing",
                              "error": f"{s.path or sid}: file is missing from the dataset"})
            continue
        npz, rec = cache_paths(sid)
        if rec.exists() and not config.force and not config.retry_failed:
            try:
                cached = json.loads(rec.read_text())
                if cached.get("status") != EXTRACTION_OK or npz.exists():
                    immediate.append({**base_row(sid), **{k: cached.get(k, "") for k in
                                      ("status", "error", "n_minutiae", "template_bytes", "seconds")}})
                    continue
            except (OSError, json.JSONDecodeError):
                pass
        todo.append({"sid": sid, "path": str(s.path), "dpi": s.dpi, "template": bool(s.attributes.get("template")),
                     "options": s.attributes.get("template_options") or {},
                     "expected_size": dataset.info.image_size, "cache": str(npz)})
    ext_log.append(immediate)

    def record_extraction(task: Task, result: list[dict[str, Any]] | TaskFailure, interface: list[str]) -> None:
        item = task.items[0]
        if isinstance(result, TaskFailure):
            rec = {"status": result.status, "error": f"{item['path']}: {result.message}",
                   "n_minutiae": "", "template_bytes": "", "seconds": ""}
        else:
            rec = result[0]
            rec["error"] = one_line(rec["error"])
        _, rec_path = cache_paths(item["sid"])
        if rec["status"] in (EXTRACTION_OK, "fte", "unreadable", "error") and not interface:
            # deterministic outcomes are cached; crashes, timeouts and interface errors (fixed
            # without a new version, as a rule) are retried next time
            tmp = rec_path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(rec))
            tmp.replace(rec_path)
        ext_log.append([{**base_row(item["sid"]), **rec}])
        if rec["status"] != EXTRACTION_OK:
            log.warning("failure to enrol %s: %s", item["sid"], rec["error"])

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
    enrolled = {sid for sid, r in ext_rows.items() if r["status"] == EXTRACTION_OK}

    # ---------------------------------------------------------------- comparison
    score_log = CsvLog(run.scores, SCORE_FIELDS)
    done_pairs = {(r["probe"], r["reference"]) for r in score_log.rows()
                  if not (config.retry_failed and r["status"] not in (COMPARISON_OK, ENROL_FAILED))}
    if config.retry_failed:
        _rewrite_without_failures(score_log)

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
                 "reference_template": str(cache_paths(p.reference)[0])} for p in chunk]))
    pair_by_key = {(p.probe, p.reference): p for plist in by_probe.values() for p in plist}
    n_todo = sum(len(t.items) for t in tasks)
    t_cmp = time.perf_counter()
    if tasks:
        pool = IsolatedPool(_jobs(config.jobs), _setup_matcher, (config.matcher,), _compare_items,
                            timeout_per_item=config.compare_timeout)
        batched = callable(getattr(matcher, "compare_many", None))
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


def _rewrite_without_failures(log_: CsvLog) -> None:
    keep = [r for r in log_.rows() if r["status"] in (COMPARISON_OK, ENROL_FAILED)]
    tmp = log_.path.with_name(log_.path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fresh = CsvLog(tmp, log_.fields)
    fresh.append(keep)
    tmp.replace(log_.path)
