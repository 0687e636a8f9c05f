"""1:N pre-selection (indexes) built on Minutia Cylinder-Code cylinders.

* :class:`MccLshIndex`: locality-sensitive hashing of the bit cylinders (MCC-Sb), after
  Cappelli, Ferrara and Maltoni, "Fingerprint indexing based on Minutia Cylinder-Code",
  IEEE TPAMI 33(5), 2011: every cylinder of every gallery template is hashed by ``tables``
  bit-sampling functions (each reads ``bits`` cell bits chosen at random, the LSH family
  for the Hamming distance), so that two similar cylinders collide in many tables; a
  probe's cylinders are looked up in each table and a gallery template is scored by how
  strongly its cylinders collide with the probe's. The candidates are the templates with
  the highest scores.
* :class:`MccVectorIndex`: one fixed-length vector per template (the mean of its bit
  cylinders: the share of cylinders in which each cell is set, invariant to translation
  and rotation as the cylinders are), searched with an HNSW graph (the ``usearch``
  package; ``pip install 'fingerbench[ann]'``).

Both follow the index interface of :class:`bench.plugins.Index`: ``build(gallery)``, then
``search(probe, budget) -> (positions, work)``.
"""

from __future__ import annotations

import math
import weakref
from typing import Any, Sequence

import numpy as np

from bench import references
from bench.plugins import get_params
from bench.template import Template
from extractors.mcc import compiled
from extractors.mcc.cylinders import CylinderParams, build_cylinders, cell_offsets


def _cylinder_params(radius: float, ns: int, nd: int, sigma_s: float, sigma_d: float,
                     reference_dpi: float) -> CylinderParams:
    """Bit cylinders (MCC-Sb) with the matcher's defaults for everything but the grid."""
    return CylinderParams(radius=float(radius), ns=int(ns), nd=int(nd), sigma_s=float(sigma_s),
                          sigma_d=float(sigma_d), mu_psi=0.01, tau_psi=400.0, omega=50.0, min_valid_cells=0.75,
                          min_neighbours=2, bits=True, reference_dpi=float(reference_dpi))


_PROBE_CELLS: dict[CylinderParams, weakref.WeakKeyDictionary] = {}


def cylinder_bits(template: Template, params: CylinderParams) -> np.ndarray:
    """The template's valid bit cylinders as a (cylinders, cells x nd) uint8 0/1 array
    (the compiled cylinder builder's when it is available: the same cylinders)."""
    if compiled.AVAILABLE:
        cyl, _layout = compiled.build(template, params)
    else:
        cyl = build_cylinders(template, params)
    return cyl.dense().astype(np.uint8) if len(cyl) else np.zeros((0, cyl.n_bits), dtype=np.uint8)


def probe_bits(template: Template, params: CylinderParams) -> np.ndarray:
    """:func:`cylinder_bits` of a probe, kept while the probe lives: a probe is searched in
    every gallery shard, each with an index of its own."""
    cache = _PROBE_CELLS.setdefault(params, weakref.WeakKeyDictionary())
    try:
        return cache[template]
    except KeyError:
        cells = cache[template] = cylinder_bits(template, params)
        return cells
    except TypeError:  # not weak-referenceable
        return cylinder_bits(template, params)


class MccLshIndex:
    """MCC-based locality-sensitive hashing (bit sampling on MCC-Sb cylinders).

    Parameters: ``tables`` hash functions of ``bits`` sampled bits each (``seed`` chooses
    them); the cylinder grid ``ns`` x ``ns`` x ``nd`` (coarser than the matcher's: a short
    vector whose bits are set often enough to be sampled). A hash value whose sampled bits
    are all 0 says nothing about a cylinder (most cells of any cylinder are 0), so it is not
    indexed, and a bucket holding more than the share ``max_bucket`` of the gallery's
    cylinders is not visited: like a word found in every document, it costs much work and
    says little (the stop words of text retrieval). The score of a gallery template is the
    sum, over the probe's cylinders, of ``c ** power``, where ``c`` is the largest number of
    tables in which that cylinder collides with one of the template's cylinders: a power
    above 1 weighs a few cylinders that collide in many tables (a cylinder of the same
    minutia) above many that collide in a few (chance resemblance).

    The defaults (128 tables, power 2) were chosen on synthetic galleries of another seed
    than those reported (seed 7; 10,000 templates, 300 mated searches in shards of 1,000):
    of the mates that exhaustive MCC ranks first, the share within 5 % penetration was
    0.891 with 64 tables and power 1 (version 1.0's defaults), 0.926 with power 2, 0.972
    with 128 tables and 0.993 with 256 (at twice the search time and memory).

    The scores are computed by the compiled kernel
    (:func:`extractors.mcc.compiled.lsh_scores`), one pass over the visited bucket
    entries; :meth:`reference_scores` is the numpy definition it is tested against, and
    the fallback where numba is missing.
    """

    version = "2.0"
    bibtex = references.MCC
    accepted_formats = ("minutiae",)
    work_unit = "cylinder collisions visited"

    def __init__(self, tables: int = 128, bits: int = 20, ns: int = 8, nd: int = 5, radius: float = 70.0,
                 sigma_s: float = 28.0 / 3.0, sigma_d: float = 2.0 * math.pi / 9.0, reference_dpi: float = 500.0,
                 max_bucket: float = 0.002, power: float = 2.0, seed: int = 0) -> None:
        self.tables = tables
        self.power = power
        self.bits = bits
        self.max_bucket = max_bucket
        self.ns = ns
        self.nd = nd
        self.radius = radius
        self.sigma_s = sigma_s
        self.sigma_d = sigma_d
        self.reference_dpi = reference_dpi
        self.seed = seed

    def _params(self) -> CylinderParams:
        return _cylinder_params(self.radius, self.ns, self.nd, self.sigma_s, self.sigma_d, self.reference_dpi)

    def _keys(self, cells: np.ndarray) -> np.ndarray:
        """(cylinders x tables,) int64 hash values: the sampled bits of each table as one
        integer, 0 when none is set, else tagged with the table's number above the bits."""
        if compiled.AVAILABLE:
            out = np.empty(len(cells) * int(self.tables), dtype=np.int64)
            compiled.lsh_keys(np.ascontiguousarray(cells), self._positions, out)
            return out
        return self.reference_keys(cells)

    def reference_keys(self, cells: np.ndarray) -> np.ndarray:
        """:meth:`_keys` in numpy (the definition)."""
        sampled = cells[:, self._positions]  # (n, tables, bits)
        value = (sampled.astype(np.int64) << np.arange(int(self.bits), dtype=np.int64)).sum(axis=2)
        table = np.arange(int(self.tables), dtype=np.int64) << int(self.bits)
        return np.where(value != 0, value | table, 0).ravel()

    def warm_up(self) -> None:
        """Compile the kernels (or load them from numba's disk cache) on a tiny gallery, so
        that no timed build or search pays for it (the harness calls this first)."""
        if compiled.AVAILABLE:
            a, b = compiled.warm_up_templates()
            tiny = MccLshIndex(**{**get_params(self), "tables": 2})
            tiny.build([a])
            tiny.search(b, 1)

    def build(self, gallery: Sequence[Template]) -> None:
        if not 1 <= int(self.bits) <= 47 or not 1 <= int(self.tables) <= 1 << 15:
            raise ValueError(f"bits must be in 1..47 and tables in 1..32768, got {self.bits} and {self.tables}")
        params = self._params()
        n_bits = len(cell_offsets(params.radius, params.ns)) * params.nd
        per = [cylinder_bits(t, params) for t in gallery]
        counts = np.array([len(c) for c in per], dtype=np.int64)
        owner = np.repeat(np.arange(len(per), dtype=np.int32), counts)  # cylinder -> template
        self._n_templates = len(per)
        self._n_cylinders = int(counts.sum())
        cells = np.concatenate(per) if per else np.zeros((0, n_bits), dtype=np.uint8)
        rng = np.random.default_rng(self.seed)
        self._positions = np.stack([rng.choice(n_bits, size=int(self.bits), replace=False)
                                    for _ in range(int(self.tables))])
        # every (cylinder, table) pair, one table of buckets for all; in blocks of cylinders
        # (the sampled bits of one cylinder take tables x bits x 8 bytes while they are summed)
        keys = np.concatenate([self._keys(cells[i : i + 2048]) for i in range(0, len(cells), 2048)]
                              or [np.zeros(0, dtype=np.int64)])
        cyl = np.repeat(np.arange(len(cells), dtype=np.int64), int(self.tables))
        live = np.flatnonzero(keys != 0)
        order = live[np.argsort(keys[live], kind="stable")]
        sorted_keys = keys[order]
        # Buckets over max_bucket are never visited: their entries are not kept.
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]) if sorted_keys.size else order
        sizes = np.diff(np.r_[starts, sorted_keys.size])
        keep = np.repeat(sizes <= self._max_entries(), sizes)
        self._sorted_keys = sorted_keys[keep]
        members = cyl[order][keep].astype(np.int32)
        # each bucket entry's cylinder and template side by side (one cache line per bucket)
        self._entries = np.ascontiguousarray(np.stack([members, owner[members]], axis=1))
        self._owner = owner
        if self._entries.shape[0] >= 1 << 31:  # the directory keeps an entry's position in 31 bits
            raise ValueError(f"{self._entries.shape[0]:,} bucket entries exceed one index's 2**31: "
                             f"use smaller gallery shards or fewer tables")
        if compiled.AVAILABLE:
            distinct = int((sizes <= self._max_entries()).sum())
            self._slot_bits = max(4, int(math.ceil(math.log2(1.5 * distinct + 1))))
            self._directory = compiled.lsh_directory(self._sorted_keys, self._slot_bits)

    def _max_entries(self) -> int:
        """The largest bucket visited (``max_bucket`` of the gallery's cylinders)."""
        return int(math.floor(self.max_bucket * max(self._n_cylinders, 1)))

    def scores(self, probe: Template) -> tuple[np.ndarray, int]:
        """Every gallery template's score for ``probe`` (float64) and the bucket entries visited."""
        cells = probe_bits(probe, self._params())
        if len(cells) == 0 or self._n_templates == 0:
            return np.zeros(self._n_templates, dtype=np.float64), 0
        keys = self._keys(cells)
        if not compiled.AVAILABLE:
            return self.reference_scores(keys)
        score = np.empty(self._n_templates, dtype=np.float64)
        visited = compiled.lsh_scores(keys, int(self.tables), self._directory, self._slot_bits, self._entries,
                                      self._n_cylinders, self._n_templates, self._max_entries(), float(self.power),
                                      score)
        return score, int(visited)

    def reference_scores(self, keys: np.ndarray) -> tuple[np.ndarray, int]:
        """:meth:`scores` from the probe's hash values in numpy (the definition)."""
        m = keys.size // int(self.tables)
        lo = np.searchsorted(self._sorted_keys, keys, side="left")
        hi = np.searchsorted(self._sorted_keys, keys, side="right")
        n = hi - lo
        n[(keys == 0) | (n > self._max_entries())] = 0
        total = int(n.sum())
        if total == 0:
            return np.zeros(self._n_templates, dtype=np.float64), 0
        probe_cyl = np.repeat(np.arange(m, dtype=np.int64).repeat(int(self.tables)), n)
        entry = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(total)  # the members of each bucket
        pair, collisions = np.unique(probe_cyl * self._n_cylinders + self._entries[entry, 0], return_counts=True)
        # per probe cylinder, its most colliding cylinder in each template; summed over the probe's cylinders
        template = self._owner[pair % self._n_cylinders].astype(np.int64)
        best = np.zeros(m * self._n_templates, dtype=np.int64)
        np.maximum.at(best, (pair // self._n_cylinders) * self._n_templates + template, collisions)
        score = (best.astype(np.float64) ** float(self.power)).reshape(m, self._n_templates).sum(axis=0)
        return score, total

    def search(self, probe: Template, budget: int) -> tuple[np.ndarray, int]:
        score, visited = self.scores(probe)
        hit = np.flatnonzero(score > 0)
        k = min(int(budget), hit.size)
        if k <= 0:
            return np.empty(0, dtype=np.int64), visited
        if k < hit.size:
            hit = hit[np.argpartition(-score[hit], k - 1)[:k]]
        order = np.lexsort((hit, -score[hit]))
        return hit[order].astype(np.int64), visited

    def memory_bytes(self) -> int:
        arrays = [self._sorted_keys, self._entries, self._owner, self._positions, *([self._directory] if compiled.AVAILABLE else [])]
        return int(sum(a.nbytes for a in arrays))


class MccVectorIndex:
    """One vector per template, the mean of its MCC-Sb cylinders (``ns`` x ``ns`` x ``nd``
    cells: the share of the template's cylinders in which each cell is set), searched by
    cosine similarity in an HNSW graph (usearch) with ``connectivity`` links per node and
    ``expansion_add`` / ``expansion_search`` candidates explored when building / searching.
    A template without a valid cylinder has no vector and is never a candidate."""

    version = "1.0"
    accepted_formats = ("minutiae",)
    work_unit = "distances computed"

    def __init__(self, ns: int = 8, nd: int = 5, radius: float = 70.0, sigma_s: float = 28.0 / 3.0,
                 sigma_d: float = 2.0 * math.pi / 9.0, reference_dpi: float = 500.0, connectivity: int = 16,
                 expansion_add: int = 128, expansion_search: int = 64) -> None:
        self.ns = ns
        self.nd = nd
        self.radius = radius
        self.sigma_s = sigma_s
        self.sigma_d = sigma_d
        self.reference_dpi = reference_dpi
        self.connectivity = connectivity
        self.expansion_add = expansion_add
        self.expansion_search = expansion_search

    @staticmethod
    def check_available() -> str:
        import importlib.util

        if importlib.util.find_spec("usearch") is None:
            return "needs the usearch package (pip install 'fingerbench[ann]')"
        return ""

    def vector(self, template: Template, probe: bool = False) -> np.ndarray | None:
        """The template's fixed-length vector (unit length), or None without a valid cylinder."""
        params = _cylinder_params(self.radius, self.ns, self.nd, self.sigma_s, self.sigma_d, self.reference_dpi)
        cells = probe_bits(template, params) if probe else cylinder_bits(template, params)
        if len(cells) == 0:
            return None
        v = cells.mean(axis=0, dtype=np.float64)
        norm = float(np.linalg.norm(v))
        return (v / norm).astype(np.float32) if norm > 0 else None

    def build(self, gallery: Sequence[Template]) -> None:
        from usearch.index import Index

        vectors = [self.vector(t) for t in gallery]
        keep = np.array([i for i, v in enumerate(vectors) if v is not None], dtype=np.uint64)
        self._n = len(gallery)
        dim = len(next((v for v in vectors if v is not None), np.zeros(1)))
        self._index = Index(ndim=dim, metric="cos", dtype="f32", connectivity=int(self.connectivity),
                            expansion_add=int(self.expansion_add), expansion_search=int(self.expansion_search))
        if keep.size:
            self._index.add(keep, np.stack([vectors[int(i)] for i in keep]), threads=1)

    def search(self, probe: Template, budget: int) -> tuple[np.ndarray, int]:
        v = self.vector(probe, probe=True)
        k = min(int(budget), len(self._index))
        if v is None or k <= 0:
            return np.empty(0, dtype=np.int64), 0
        found: Any = self._index.search(v, count=k, threads=1)
        work = int(getattr(found, "computed_distances", 0) or 0)
        return np.asarray(found.keys, dtype=np.int64)[:k], work

    def memory_bytes(self) -> int:
        return int(self._index.memory_usage)
