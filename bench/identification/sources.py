"""Where a protocol's templates come from, and how they become template stores.

Two sources, chosen per template id:

* ids of the form ``syn:S<subject>_<impression>`` are made by the synthetic minutiae
  model (:mod:`.synthetic`) from the run's model parameters and seed;
* any other id names a sample of the dataset, whose template is extracted by the
  extractor once and cached exactly as ``fingerbench run`` caches it (same cache
  folder and keys, so both commands share extractions).

An id that neither source knows, or a dataset sample whose image file is absent, is an
error naming the ids (a benchmark silently smaller than its protocol is worse than none).
A failed extraction (failure to enrol, unreadable image, crash, timeout) is not: the
template is marked as failed and the metrics count it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bench.datasets.base import Dataset, sha256_file
from bench.synthetic import model as syn
from bench.identification.store import Shard, TemplateStore, shard_bounds
from bench.plugins.loading import PluginSpec, describe_plugins
from bench.progress import progress as progress_bar
from bench.protocols import ProtocolError
from bench.store import EXTRACTION_FIELDS, CsvLog, one_line
from bench.template import Template, TemplateError
from bench.store.template_cache import sha256_bytes

log = logging.getLogger(__name__)

#: Below this many templates to write, stores are written in this process.
_PARALLEL_FROM = 4000
#: Locators: how to get one template.
SYNTHETIC = "synthetic"
CACHED = "cached"
FAILED = "failed"


class MissingTemplatesError(ProtocolError):
    """The protocol names templates that no source has."""


@dataclass
class TemplateSources:
    """The dataset (with its extractor) and the synthetic model a run draws templates from."""

    dataset: Dataset | None = None
    extractor: PluginSpec | None = None
    cache_dir: Path | None = None
    model: syn.MinutiaeModel = field(default_factory=syn.MinutiaeModel)
    seed: int = 0
    jobs: int = 0
    extract_timeout: float = 60.0
    progress: bool | None = None
    init_timeout: float = 120.0
    _digests: dict[str, str] = field(default_factory=dict, repr=False)
    _extractor_desc: dict[str, Any] | None = field(default=None, repr=False)

    def _describe_extractor(self) -> dict[str, Any]:
        """The extractor's name, target, version, parameters and code fingerprint, from constructing it in an
        isolated worker (a constructor that crashes or hangs becomes a PluginError)."""
        assert self.extractor is not None
        if self._extractor_desc is None:
            desc = describe_plugins([self.extractor], self.init_timeout, self.cache_dir)[0]
            self._extractor_desc = {k: desc[k] for k in ("name", "target", "version", "params", "code_sha256")}
        return dict(self._extractor_desc)

    def identity(self, ids: Sequence[str]) -> dict[str, Any]:
        """What the templates of ``ids`` depend on (part of a run's identity)."""
        out: dict[str, Any] = {}
        if any(syn.parse_id(i) is not None for i in ids):
            out["synthetic"] = {"model": self.model.to_dict(), "seed": int(self.seed)}
        dataset_ids = [i for i in ids if syn.parse_id(i) is None]
        self.check_ids(ids)
        if dataset_ids:
            if self.extractor is None:
                raise MissingTemplatesError(
                    f"the protocol names {len(dataset_ids)} dataset templates ({', '.join(dataset_ids[:3])}"
                    f"{' ...' if len(dataset_ids) > 3 else ''}): an extractor is needed to make them")
            blob = "".join(f"{k}:{self._digest(k)}\n" for k in sorted(dataset_ids))
            out["dataset"] = {"name": self.dataset.name, "params": self.dataset.params,
                              "sha256": hashlib.sha256(blob.encode()).hexdigest()}
            out["extractor"] = self._describe_extractor()
        return out

    def _digest(self, sid: str) -> str:
        d = self._digests.get(sid)
        if d is None:
            assert self.dataset is not None
            d = self._digests[sid] = sha256_file(self.dataset.sample(sid).path)  # type: ignore[arg-type]
        return d

    def check_ids(self, ids: Sequence[str]) -> None:
        """Raise MissingTemplatesError naming every id no source can provide."""
        samples = {s.id: s for s in self.dataset.samples} if self.dataset is not None else {}
        unknown, absent = [], []
        for i in ids:
            if syn.parse_id(i) is not None:
                continue
            s = samples.get(i)
            if s is None:
                unknown.append(i)
            elif s.path is None or not Path(s.path).is_file():
                absent.append(i)
        problems = []
        if unknown:
            where = f"dataset {self.dataset.name}" if self.dataset is not None else "any source (no dataset given)"
            problems.append(f"{len(unknown)} ids are not in {where} nor synthetic ids: "
                            f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}")
        if absent:
            problems.append(f"{len(absent)} samples have no image file: {', '.join(absent[:5])}"
                            f"{' ...' if len(absent) > 5 else ''}")
        if problems:
            raise MissingTemplatesError("the protocol references missing templates: " + "; ".join(problems))

    # ------------------------------------------------------------------ locate
    def locate(self, ids: Sequence[str], extractions: Path | None = None) -> dict[str, tuple]:
        """A locator per id: ``("synthetic",)``, ``("cached", npz path)`` or
        ``("failed", status, error)``; extracts (and caches) what is not cached yet."""
        self.check_ids(ids)
        out: dict[str, tuple] = {}
        dataset_ids = []
        for i in ids:
            if syn.parse_id(i) is not None:
                out[i] = (SYNTHETIC,)
            else:
                dataset_ids.append(i)
        if dataset_ids:
            out.update(self._extract(sorted(set(dataset_ids)), extractions))
        return out

    def _extract(self, sample_ids: list[str], extractions: Path | None) -> dict[str, tuple]:
        """The one extraction step of the engine (:func:`bench.engine.extraction.extract_templates`),
        on the local pool; outcomes are logged into ``extractions`` (or only cached)."""
        assert self.dataset is not None and self.extractor is not None
        from bench.engine.backends import LocalBackend
        from bench.engine.extraction import extract_templates
        from bench.store.template_cache import default_cache_dir

        samples = {s.id: s for s in self.dataset.samples}
        digests = {sid: self._digest(sid) for sid in sample_ids}
        with tempfile.TemporaryDirectory() as scratch:  # without a run, outcomes are only cached
            ext_log = CsvLog(extractions if extractions is not None else Path(scratch) / "extractions.csv",
                             EXTRACTION_FIELDS)
            ext = extract_templates(samples, sample_ids, digests, self.extractor, self._describe_extractor(),
                                    self.cache_dir or default_cache_dir(), LocalBackend(self.jobs), ext_log,
                                    timeout=self.extract_timeout, expected_size=self.dataset.info.image_size,
                                    show_progress=self.progress)
            rows = {r["sample"]: r for r in ext_log.rows()}
        out: dict[str, tuple] = {}
        for sid in sample_ids:
            if sid in ext.template_sha:
                out[sid] = (CACHED, str(ext.path(digests[sid])), ext.template_sha[sid])
            else:
                r = rows.get(sid, {})
                out[sid] = (FAILED, str(r.get("status", "error")), one_line(str(r.get("error", ""))))
        return out


# ------------------------------------------------------------------ stores
def _make_templates(ids: Sequence[str], locators: Sequence[tuple], model: dict[str, Any], seed: int) -> list[Template | None]:
    mdl = syn.MinutiaeModel.from_dict(model)
    out: list[Template | None] = [None] * len(ids)
    synthetic_pos = [k for k, loc in enumerate(locators) if loc[0] == SYNTHETIC]
    if synthetic_pos:
        made = syn.make_templates(mdl, seed, [ids[k] for k in synthetic_pos])
        for k, t in zip(synthetic_pos, made):
            out[k] = t
    for k, loc in enumerate(locators):
        if loc[0] == CACHED:
            data = Path(loc[1]).read_bytes()
            if sha256_bytes(data) != loc[2]:
                raise TemplateError(f"{loc[1]}: template file changed since it was checked (SHA-256 differs)")
            out[k] = Template.from_npz_bytes(data, source=str(loc[1]))
    return out


def _build_shard(path: str, ids: list[str], subjects: list[str], subject_index: list[int],
                 locators: list[tuple], model: dict[str, Any], seed: int) -> int:
    """Runs in a generator process: make or load the templates, write one shard."""
    templates = _make_templates(ids, locators, model, seed)
    Shard.build(ids, subjects, subject_index, templates).save(Path(path))
    return len(ids)


def materialize(
    store: TemplateStore,
    ids: Sequence[str],
    subjects: Sequence[str],
    subject_index: Sequence[int],
    locators: dict[str, tuple],
    sources: TemplateSources,
    shard_size: int,
    jobs: int = 0,
    progress: bool | None = None,
    role: str = "gallery",
) -> list[tuple[int, int]]:
    """Write the entries (sorted by ``subject_index``) into ``store``, shard by shard;
    shards already there with the same ids are kept. Returns the shard bounds."""
    si = np.asarray(subject_index, dtype=np.int64)
    bounds = shard_bounds(si if role == "gallery" else np.arange(si.size), shard_size)
    store.path.mkdir(parents=True, exist_ok=True)
    todo = [(k, lo, hi) for k, (lo, hi) in enumerate(bounds) if not store.shard_is_valid(k, ids[lo:hi])]
    model = sources.model.to_dict()
    if todo:
        args = [(str(store.shard_path(k)), list(ids[lo:hi]), list(subjects[lo:hi]), [int(v) for v in si[lo:hi]],
                 [locators[i] for i in ids[lo:hi]], model, int(sources.seed)) for k, lo, hi in todo]
        n_jobs = min(jobs if jobs > 0 else (os.cpu_count() or 1), len(args))
        if sum(hi - lo for _, lo, hi in todo) < _PARALLEL_FROM:
            n_jobs = 1  # starting processes would cost more than it saves
        with progress_bar(sum(hi - lo for _, lo, hi in todo), f"{role} templates", progress, unit="tpl") as bar:
            if n_jobs <= 1:
                for a in args:
                    bar.update(_build_shard(*a))
            else:
                with ProcessPoolExecutor(n_jobs, mp_context=get_context("spawn")) as pool:
                    for n in pool.map(_build_shard, *zip(*args)):
                        bar.update(n)
    store.write_meta({"role": role, "n_entries": len(ids), "n_shards": len(bounds), "shard_size": shard_size,
                      "bounds": [list(b) for b in bounds]})
    return bounds
