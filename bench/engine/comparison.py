"""Comparison as a job of the engine: the pairs of a 1:1 protocol.

Units hold consecutive pairs of the protocol, grouped by probe (all the pairs of one
probe, then the next probe's, up to ``chunk_size`` pairs), so a matcher that declares its
``compare_many`` batched gets one probe against many references in one call. A worker keeps
the templates it has loaded (checked against their SHA-256) and calls the matcher's
``prepare`` hook once per template, outside the timed calls: a comparison's ``seconds`` is
the time of the matcher's own call for that pair (for a batched matcher, the batch's time
divided by the pairs it scored), not of loading, preparing or queueing. A ``compare_many``
not declared batched is a loop over ``compare`` (see :func:`bench.plugins.matcher_hooks`):
calling ``compare`` per pair costs the same and times each pair exactly (BOZORTH3 takes
about ten times longer over a genuine pair than over an impostor one: a batch mean would
hide that and make the time per comparison depend on the protocol's mix of pairs). A unit lost to a crash or a timeout is split and
its pairs retried one by one (see :mod:`bench.engine.backends`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

from bench.plugins import contract
from bench.datasets.base import Sample
from bench.engine.backends import Backend
from bench.engine.extraction import Extraction
from bench.engine.isolation import Task, TaskFailure
from bench.plugins import matcher_hooks, warm_up
from bench.plugins.loading import PluginSpec
from bench.progress import progress
from bench.protocols import PairList
from bench.store import (
    COMPARISON_OK, COMPARISON_STATUSES, ENROL_FAILED, CsvLog, one_line, rewrite_log, sound_rows,
)
from bench.template import Template, TemplateError
from bench.store.template_cache import sha256_bytes

log = logging.getLogger(__name__)

#: Templates a worker keeps loaded (and prepared) between units.
TEMPLATES_KEPT = 4096


@dataclass(frozen=True)
class CompareJob:
    """Comparison as an engine job: a unit is a run of consecutive pairs of the protocol."""

    key: str
    spec: PluginSpec
    item_timeout: float
    paths: tuple[str, ...] = ()
    name: ClassVar[str] = "comparison"
    isolate_items: ClassVar[bool] = True

    def setup(self) -> dict[str, Any]:
        matcher = self.spec.build()
        warm_up(matcher, self.spec.name)
        return {"matcher": matcher, "hooks": matcher_hooks(matcher), "templates": OrderedDict()}

    def handle(self, state: dict[str, Any], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [rec for lo, hi in _probe_runs(items) for rec in _compare_group(state, items[lo:hi])]

    def shared_paths(self) -> Sequence[str]:
        return self.paths


def _probe_runs(items: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Bounds of the runs of consecutive pairs that share a probe (one matcher call each)."""
    bounds, start = [], 0
    for k in range(1, len(items) + 1):
        if k == len(items) or items[k]["pair"][0] != items[start]["pair"][0]:
            bounds.append((start, k))
            start = k
    return bounds


def _load_template(state: dict[str, Any], path: str, sha256: str) -> Template:
    """A cached template, checked against the SHA-256 its cache record holds, and prepared
    by the matcher (untimed) the first time this worker loads it."""
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
        if state["hooks"]["prepare"]:
            try:
                state["matcher"].prepare(tpl)
            except BaseException as exc:  # its comparisons meet the same fault and record it
                log.debug("prepare(%s) failed: %s: %s", path, type(exc).__name__, exc)
        cache[(path, sha256)] = tpl
        if len(cache) > TEMPLATES_KEPT:
            cache.popitem(last=False)
    else:
        cache.move_to_end((path, sha256))
    return tpl


def _compare_group(state: dict[str, Any], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
    if state["hooks"]["batched"] and len(items) > 1 and not load_errors:
        t0 = time.perf_counter()
        try:
            returned = matcher.compare_many(probe, refs)
        except BaseException:  # SystemExit and KeyboardInterrupt too
            pass  # fall back to one call per pair, so each failure is attributed
        else:
            per = (time.perf_counter() - t0) / len(items)
            try:
                scores = contract.check_scores(returned, len(refs))
            except contract.ContractError as exc:  # a wrong result is refused, not repaired
                where = contract.plugin_location(None, matcher, "compare_many")
                message = f"{exc}" + (f" (compare_many at {where})" if where else "")
                return [{"score": "", "status": "failed", "error": one_line(message), "seconds": "",
                         contract.INTERFACE_KEY: message} for _ in refs]
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
    if not math.isfinite(score):
        return {"score": "", "status": "failed", "error": f"matcher returned {score}", "seconds": seconds}
    return {"score": repr(float(score)), "status": COMPARISON_OK, "error": "", "seconds": seconds}


def units(pairs: Sequence[Any], chunk_size: int) -> list[list[Any]]:
    """Consecutive pairs grouped by probe (in order of the probe's first pair), cut into
    units of at most ``chunk_size`` pairs."""
    by_probe: dict[str, list[Any]] = defaultdict(list)
    for p in pairs:
        by_probe[p.probe].append(p)
    out: list[list[Any]] = []
    current: list[Any] = []
    for plist in by_probe.values():
        for p in plist:
            current.append(p)
            if len(current) >= chunk_size:
                out.append(current)
                current = []
    if current:
        out.append(current)
    return out


def compare_pairs(pairs: PairList, samples: dict[str, Sample], digests: dict[str, str], extraction: Extraction,
                  spec: PluginSpec, desc: dict[str, Any], backend: Backend, score_log: CsvLog, *, key: str,
                  timeout: float, chunk_size: int, retry_failed: bool = False,
                  show_progress: bool | None = None) -> int:
    """Make sure every pair of the protocol has a sound row in ``score_log``; return the
    number of pairs compared now. Stored rows are kept unless a side's template was
    extracted again in this session (the row used the old one) or, with
    ``retry_failed``, the comparison failed."""
    extracted_now = extraction.extracted_now

    def keep(r: dict[str, str]) -> bool:
        if r["probe"] in extracted_now or r["reference"] in extracted_now:
            return False
        return not (retry_failed and r["status"] not in (COMPARISON_OK, ENROL_FAILED))

    stored = sound_rows(score_log, COMPARISON_STATUSES)
    kept = [r for r in stored if keep(r)]
    if len(kept) < len(stored):
        n_stale = sum(r["probe"] in extracted_now or r["reference"] in extracted_now for r in stored)
        if n_stale:
            log.info("%d stored comparisons used templates extracted again in this session: recomputing them",
                     n_stale)
        rewrite_log(score_log, kept)
    done_pairs = {(r["probe"], r["reference"]) for r in kept}
    enrolled = extraction.template_sha

    def pair_row(p) -> dict[str, Any]:
        return {"probe": p.probe, "reference": p.reference, "probe_subject": samples[p.probe].subject,
                "reference_subject": samples[p.reference].subject, "genuine": int(p.genuine)}

    ghost_rows, todo = [], []
    for p in pairs.pairs:
        if (p.probe, p.reference) in done_pairs:
            continue
        if p.probe not in enrolled or p.reference not in enrolled:
            failed = [s for s in (p.probe, p.reference) if s not in enrolled]
            ghost_rows.append({**pair_row(p), "status": ENROL_FAILED,
                               "error": f"no template for {', '.join(failed)} (failure to enrol)"})
            continue
        todo.append(p)
    score_log.append(ghost_rows)
    if not todo:
        return 0

    def item(p) -> dict[str, Any]:
        return {"pair": (p.probe, p.reference),
                "probe_template": str(extraction.path(digests[p.probe])), "probe_sha256": enrolled[p.probe],
                "reference_template": str(extraction.path(digests[p.reference])),
                "reference_sha256": enrolled[p.reference]}

    tasks = [Task(k, [item(p) for p in unit]) for k, unit in enumerate(units(todo, chunk_size))]
    pair_by_key = {(p.probe, p.reference): p for p in todo}
    job = CompareJob(key, spec, timeout, paths=(str(extraction.folder),))
    many = bool(desc.get("hooks", {}).get("batched"))
    # the watch judges matcher calls: one per probe of a unit (compare_many's, or a run of compare's)
    n_calls = sum(len(_probe_runs(t.items)) for t in tasks)
    watch = contract.InterfaceWatch(n_calls, f"matcher '{desc['name']}'", contract.PluginInterfaceError,
                                    f"check it with: fingerbench check {spec.target}")

    def record(items: list[dict[str, Any]], results: list[dict[str, Any]]) -> None:
        score_log.append([{**pair_row(pair_by_key[tuple(it["pair"])]), **rec} for it, rec in zip(items, results)])

    with progress(len(todo), f"compare {desc['name']}", show_progress) as bar:
        with contextlib.closing(backend.run(job, tasks)) as results:
            for task, result in results:
                if isinstance(result, TaskFailure):
                    result = [{"score": "", "status": result.status, "error": result.message, "seconds": ""}]
                for lo, hi in _probe_runs(task.items):
                    items, recs = task.items[lo:hi], result[lo:hi]
                    interface = contract.pop_interface_errors(recs)
                    channel = "compare_many" if many and len(items) > 1 else "compare"
                    for held in watch.see((items, recs), interface, channel):
                        record(*held)
                bar.update(len(result))
        for held in watch.flush():
            record(*held)
    return len(todo)
