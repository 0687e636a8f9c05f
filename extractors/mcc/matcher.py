"""The MCC matcher: cylinders per template (cached), local similarities, LSS-R.

Local similarities
------------------
For bit cylinders (MCC-Sb) the similarity of cylinders a and b is

    1 - ||a|b xor b|a|| / (||a|b|| + ||b|a||),   ||v|| = sqrt(popcount(v)),

where x|y is x restricted to the cells valid in both. Because a cylinder's bits are 0
outside its own valid cells, every count is a product of 0/1 matrices:

    popcount(a|b)           = sum over cells of bits(a) * valid(b)
    popcount(b|a)           = sum over cells of bits(b) * valid(a)
    popcount(a|b xor b|a)   = popcount(a|b) + popcount(b|a) - 2 popcount(a and b)

so one probe is compared with every cylinder of a gallery by a few matrix products.
Bits are sparse (about 7 % set) and validity is almost everywhere 1, so the gallery side
is kept as sparse matrices of its set bits and of its *invalid* cells, and the terms
above are computed as "everything minus what the invalid cells remove"; sums of 0/1
values are exact in float32. On the development machine this was three to four times
faster than a dense BLAS product and than numpy popcounts over packed uint64 words
(:func:`extractors.mcc.cylinders.popcount_similarity` is that textbook version, used by
the tests as the reference). Cylinders are stored packed (uint64 words) per template.

Consolidation
-------------
LSS-R (:mod:`extractors.mcc.consolidation`), batched over the gallery. Comparisons are
grouped by shape and padded to a few fixed sizes; the padding depends only on the two
templates' cylinder counts, so a comparison gives bit-for-bit the same score through
:meth:`MccMatcher.compare` or inside any :meth:`MccMatcher.compare_many` batch.
"""

from __future__ import annotations

import math
import operator
import weakref
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import scipy.sparse as sp

from bench import references
from bench.template import Template
from extractors.mcc import compiled, consolidation, gpu
from extractors.mcc.cylinders import CylinderParams, CylinderSet, build_cylinders, cell_offsets

# Gallery cylinders per block of local similarities, and array elements per chunk of the
# relaxation: both keep the temporaries cache-sized.
_BLOCK_CYLINDERS = 1024
_RELAX_ELEMENTS = 65536
# Number of pairs n_R is padded up to a multiple of this, so that few shapes remain.
_PAIR_BUCKET = 8


@dataclass
class _Stack:
    """Cylinders of a gallery, stacked row-wise, with their pair geometry."""

    # Row blocks. Bit variant: CSR 0/1 matrices of the set bits and of the *invalid*
    # spatial cells, and CSC matrices of the set bits per spatial cell (energy).
    # Sigmoid variant: dense cell values, dense validity, dense energy.
    cells: list[Any]
    support: list[Any]
    energy: list[Any]
    popcount: np.ndarray  # (N,) float32 set bits (sum of squared values) per cylinder
    theta: np.ndarray  # (N,) float32
    cos: np.ndarray  # (N,) float32
    sin: np.ndarray  # (N,) float32
    pairs: np.ndarray  # concatenated flattened (n_g, n_g) pair geometry, complex64
    counts: np.ndarray  # (G,) cylinders per template
    starts: np.ndarray  # (G,) first row of each template
    pair_starts: np.ndarray  # (G,) first entry of each template in pairs
    groups: dict[int, np.ndarray]  # cylinder count -> templates with that many

    @property
    def n_rows(self) -> int:
        return int(self.theta.size)


class MccMatcher:
    """Minutia Cylinder-Code matcher (Cappelli, Ferrara, Maltoni, IEEE TPAMI 32(12), 2010).

    Bit cylinders (MCC-Sb) compared by popcount similarity, consolidated by Local
    Similarity Sort with Relaxation (LSS-R). Lengths are in pixels at ``reference_dpi``
    (500 dpi); templates of other resolutions are rescaled first. Defaults are the
    paper's. Scores lie in [0, 1]; templates with fewer than three minutiae, or without
    any valid cylinder, score 0.

    Cylinders are computed once per Template object (kept while the template lives) and
    the last gallery passed to :meth:`compare_many` stays stacked, so one probe against
    the same gallery again only pays for the comparisons.

    Parameters
    ----------
    radius : float, default 70
        Cylinder radius R.
    ns : int, default 16
        Spatial cells per side (NS); 8 is faster and a little less accurate.
    nd : int, default 6
        Directional cells (ND).
    sigma_s : float, default 28/3
        Spatial Gaussian sigma_S.
    sigma_d : float, default 2*pi/9
        Directional Gaussian sigma_D.
    mu_psi, tau_psi : float, default 0.01, 400
        Sigmoid Psi; the bit variant thresholds at ``mu_psi`` and ignores ``tau_psi``.
    omega : float, default 50
        Offset by which the minutiae's convex hull is enlarged for cell validity.
    min_valid_cells : float, default 0.75
        A cylinder is valid with at least this share of its in-disc cells valid (minVC).
    min_neighbours : int, default 2
        ... and at least this many other minutiae within R + 3 sigma_S (minM).
    min_matchable_cells : float, default 0.6
        Two cylinders are compared only if this share of in-disc cells is valid in
        both (minME).
    max_angle_difference : float, default pi/2
        ... and their minutiae directions differ by at most this (delta_theta).
    bits : bool, default True
        MCC-Sb (bit cylinders); False for MCC-S (sigmoid values, dense and slower; its
        batched scores may differ from single comparisons in the last float digits).
    min_np, max_np, mu_p, tau_p : default 4, 12, 20, 2/5
        Number of pairs n_P averaged into the score.
    w_r, n_rel : default 0.5, 5
        Relaxation weight and iterations.
    rho_mu, rho_tau : default (5, pi/12, pi/12), (-8/5, -30, -30)
        Sigmoids of the pair compatibility (distance, direction, radial angle).
    reference_dpi : float, default 500
        Resolution the lengths above refer to.
    kernel : {"auto", "numba", "numpy", "torch"}, default "auto"
        Implementation of the comparison. ``"numba"`` is the compiled kernel
        (:mod:`extractors.mcc.compiled`; bit cylinders only); ``"numpy"`` the reference it
        is tested against; ``"auto"`` takes the compiled kernel when numba is installed
        and ``bits`` is true, the reference otherwise. ``"torch"`` scores whole galleries
        on ``device`` with PyTorch (:mod:`extractors.mcc.gpu`, for large 1:N); where
        PyTorch or the device is missing it falls back to ``"auto"`` on the CPU. All give
        the same scores within float32 rounding.
    device : str, default "cuda"
        PyTorch device of the ``"torch"`` kernel (``"cpu"`` runs the same code on the CPU).
    """

    version = "1.1"
    bibtex = references.MCC
    higher_is_better = True
    batched = True  # compare_many scores a whole gallery at once (bench.plugins.BatchMatcher)
    accepted_formats = ("minutiae",)

    def __init__(
        self,
        radius: float = 70.0,
        ns: int = 16,
        nd: int = 6,
        sigma_s: float = 28.0 / 3.0,
        sigma_d: float = 2.0 * math.pi / 9.0,
        mu_psi: float = 0.01,
        tau_psi: float = 400.0,
        omega: float = 50.0,
        min_valid_cells: float = 0.75,
        min_neighbours: int = 2,
        min_matchable_cells: float = 0.6,
        max_angle_difference: float = math.pi / 2,
        bits: bool = True,
        min_np: int = 4,
        max_np: int = 12,
        mu_p: float = 20.0,
        tau_p: float = 0.4,
        w_r: float = 0.5,
        n_rel: int = 5,
        rho_mu: tuple[float, float, float] = (5.0, math.pi / 12, math.pi / 12),
        rho_tau: tuple[float, float, float] = (-1.6, -30.0, -30.0),
        reference_dpi: float = 500.0,
        kernel: str = "auto",
        device: str = "cuda",
    ) -> None:
        self.radius = radius
        self.ns = ns
        self.nd = nd
        self.sigma_s = sigma_s
        self.sigma_d = sigma_d
        self.mu_psi = mu_psi
        self.tau_psi = tau_psi
        self.omega = omega
        self.min_valid_cells = min_valid_cells
        self.min_neighbours = min_neighbours
        self.min_matchable_cells = min_matchable_cells
        self.max_angle_difference = max_angle_difference
        self.bits = bits
        self.min_np = min_np
        self.max_np = max_np
        self.mu_p = mu_p
        self.tau_p = tau_p
        self.w_r = w_r
        self.n_rel = n_rel
        self.rho_mu = rho_mu
        self.rho_tau = rho_tau
        self.reference_dpi = reference_dpi
        self.kernel = kernel
        self.device = device

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ns={self.ns}, nd={self.nd}, bits={self.bits}, kernel={self.kernel!r})"

    @property
    def kernel_in_use(self) -> str:
        """The implementation that compares: ``"numba"``, ``"numpy"`` or ``"torch"``."""
        kernel = str(self.kernel)
        if kernel not in ("auto", "numba", "numpy", "torch"):
            raise ValueError(f"MccMatcher: kernel must be 'auto', 'numba', 'numpy' or 'torch', not {kernel!r}")
        if kernel == "torch":
            if not self.bits:
                raise ValueError("MccMatcher(kernel='torch') compares bit cylinders only: use bits=True")
            if gpu.AVAILABLE and (not str(self.device).startswith("cuda") or gpu.cuda_available()):
                return "torch"
            kernel = "auto"  # the CPU fallback
        if kernel == "numpy" or (kernel == "auto" and not (compiled.AVAILABLE and self.bits)):
            return "numpy"
        if not compiled.AVAILABLE:
            raise RuntimeError(f"MccMatcher(kernel='numba'): {compiled.UNAVAILABLE_REASON}")
        if not self.bits:
            raise ValueError("MccMatcher(kernel='numba') compares bit cylinders only: use bits=True or kernel='numpy'")
        return "numba"

    def __getstate__(self) -> dict[str, Any]:
        # Caches hold weak references; they are rebuilt on demand after unpickling.
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def warm_up(self) -> None:
        """Compile the numba kernel (or load it from the disk cache) before any timed call."""
        if self.kernel_in_use in ("numba", "torch"):
            compiled.warm_up(self)

    # ---------------------------------------------------------------- preparation
    def _cylinder_params(self) -> CylinderParams:
        return CylinderParams(
            radius=float(self.radius), ns=int(self.ns), nd=int(self.nd), sigma_s=float(self.sigma_s),
            sigma_d=float(self.sigma_d), mu_psi=float(self.mu_psi), tau_psi=float(self.tau_psi),
            omega=float(self.omega), min_valid_cells=float(self.min_valid_cells),
            min_neighbours=int(self.min_neighbours), bits=bool(self.bits),
            reference_dpi=float(self.reference_dpi),
        )

    def _caches(self) -> tuple[weakref.WeakKeyDictionary, dict]:
        """Per-template (cylinders, single-template stack) and the last stacked gallery,
        for the current parameters."""
        params = self._cylinder_params()
        state = self.__dict__.get("_cache_state")
        if state is None or state[0] != params:
            state = (params, weakref.WeakKeyDictionary(), {})
            self._cache_state = state
        return state[1], state[2]

    def _prepared(self, template: Template) -> list:
        """The cache entry of a template: [cylinders, stack of this template alone or None,
        compiled layout or None]."""
        per_template, _ = self._caches()
        try:
            return per_template[template]
        except KeyError:
            pass
        except TypeError:  # not weak-referenceable: no caching
            return self._build(template)
        entry = self._build(template)
        per_template[template] = entry
        return entry

    def _build(self, template: Template) -> list:
        """A new cache entry: the compiled builder also gives the compiled layout."""
        if self.bits and compiled.AVAILABLE and self.kernel_in_use != "numpy":
            cylinders, layout = compiled.build(template, self._cylinder_params())
            return [cylinders, None, layout]
        return [build_cylinders(template, self._cylinder_params()), None, None]

    def _compiled_form(self, template: Template) -> compiled.Prepared:
        """The template's cylinders in the compiled kernel's layout (cached with them)."""
        entry = self._prepared(template)
        if entry[2] is None:
            entry[2] = compiled.prepared_from_cylinders(entry[0], int(self.nd))
        return entry[2]

    def _compiled_constants(self) -> compiled.ComparisonConstants:
        key = (self._cylinder_params(), self.min_matchable_cells, self.max_angle_difference, self.min_np,
               self.max_np, self.mu_p, self.tau_p, self.w_r, self.n_rel, tuple(self.rho_mu), tuple(self.rho_tau))
        cached = self.__dict__.get("_constants")
        if cached is None or cached[0] != key:
            n_cells = len(cell_offsets(float(self.radius), int(self.ns)))
            cached = (key, compiled.comparison_constants(self, n_cells, n_cells * int(self.nd)))
            self._constants = cached
        return cached[1]

    def _last_gallery(self, kind: str, gallery: Sequence[Template], build: Callable[[], Any]) -> Any:
        """``build()``'s result for this gallery, kept (one per ``kind``, with the Template
        objects it was built from) for as long as the same objects come back: repeated 1:N
        calls against one gallery, and a cascade's candidates of one shard. The check is
        one identity comparison per template in C (15 us for 1,000 templates)."""
        _, stacks = self._caches()
        device = str(self.device)
        cached = stacks.get(kind)
        if (cached is not None and cached[0] == device and len(cached[1]) == len(gallery)
                and all(map(operator.is_, cached[1], gallery))):
            return cached[2]
        value = build()
        stacks[kind] = (device, list(gallery), value)
        return value

    def _compiled_stack(self, gallery: Sequence[Template]) -> compiled.Prepared:
        c = self._compiled_constants()
        return compiled.stack_prepared([self._compiled_form(t) for t in gallery], int(2 * c.ints[0] + c.ints[1]))

    def _compiled_gallery(self, gallery: Sequence[Template]) -> compiled.Prepared:
        """The gallery in the compiled layout; the last one is kept for repeated 1:N calls."""
        if len(gallery) == 1:
            return self._compiled_form(gallery[0])
        return self._last_gallery("compiled", gallery, lambda: self._compiled_stack(gallery))

    def _compare_on_device(self, probe: Template, gallery: Sequence[Template]) -> np.ndarray:
        if len(gallery) == 0:
            return np.zeros(0, dtype=np.float64)
        on_device = self._last_gallery("device", gallery, lambda: gpu.DeviceGallery(
            self._compiled_stack(gallery), self._compiled_constants(), str(self.device)))
        return gpu.compare_gallery(self._compiled_form(probe), on_device, self._compiled_constants())

    def _compare_compiled(self, probe: Template, gallery: Sequence[Template]) -> np.ndarray:
        scores = np.zeros(len(gallery), dtype=np.float64)
        if len(gallery) == 0:
            return scores
        a = self._compiled_form(probe)
        g = self._compiled_gallery(gallery)
        c = self._compiled_constants()
        compiled.compare_gallery(a.words, a.counts, a.angles, a.geometry, g.words, g.counts, g.angles, g.geometry,
                                 g.starts, g.sizes, g.geometry_starts, c.floats, c.ints, c.n_pairs_table, scores)
        return scores

    def prepare(self, template: Template) -> CylinderSet:
        """The template's valid cylinders, computed once per Template object."""
        return self._prepared(template)[0]

    def _stack(self, gallery: Sequence[Template]) -> _Stack:
        """The gallery's cylinders stacked. A one-template stack is kept with the
        template (for 1:1 comparisons); the last larger one is kept for repeated 1:N calls."""
        if len(gallery) == 1:
            entry = self._prepared(gallery[0])
            if entry[1] is None:
                entry[1] = self._build_stack([entry[0]])
            return entry[1]
        return self._last_gallery("numpy", gallery, lambda: self._build_stack([self.prepare(t) for t in gallery]))

    def _build_stack(self, sets: list[CylinderSet]) -> _Stack:
        counts = np.array([len(c) for c in sets], dtype=np.intp)
        n_cells = len(cell_offsets(float(self.radius), int(self.ns)))
        n_bits = n_cells * int(self.nd)
        live = [c for c in sets if len(c)]
        n_rows = int(counts.sum())
        theta = _concat([c.theta for c in live], (0,), np.float32)
        if self.bits:
            cells = _csr([c.set_cells for c in live], n_rows, n_bits)
            support = _csr([c.invalid_cells for c in live], n_rows, n_cells)
            energy = sp.csc_matrix(_concat([c.energy for c in live], (0, n_cells), np.float32))
        else:
            cells = _concat([c.dense() for c in live], (0, n_bits), np.float32)
            support = _concat([c.valid for c in live], (0, n_cells), np.float32)
            energy = _concat([c.energy for c in live], (0, n_cells), np.float32)
        blocks = range(0, n_rows, _BLOCK_CYLINDERS)
        return _Stack(
            cells=[cells[lo : lo + _BLOCK_CYLINDERS] for lo in blocks],
            support=[support[lo : lo + _BLOCK_CYLINDERS] for lo in blocks],
            energy=[energy[lo : lo + _BLOCK_CYLINDERS] for lo in blocks],
            popcount=_concat([c.energy.sum(axis=1) for c in live], (0,), np.float32),
            theta=theta,
            cos=np.cos(theta),
            sin=np.sin(theta),
            pairs=_concat([c.pairs.ravel() for c in live], (0,), np.complex64),
            counts=counts,
            starts=np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp),
            pair_starts=np.concatenate([[0], np.cumsum(counts * counts)[:-1]]).astype(np.intp),
            groups={int(n): np.nonzero(counts == n)[0] for n in np.unique(counts) if n > 0},
        )

    # ---------------------------------------------------------------- comparison
    def compare(self, probe: Template, reference: Template) -> float:
        """Similarity in [0, 1]; 0 when either template has no valid cylinder."""
        return float(self.compare_many(probe, [reference])[0])

    def compare_subset(self, probe: Template, gallery: Sequence[Template], positions: Any) -> np.ndarray:
        """Similarities of one probe with ``gallery[positions]``, exactly those of
        :meth:`compare_many` on that subset. With the compiled kernel the whole gallery
        stays stacked across calls (as in exhaustive 1:N) and only the candidates are
        compared, so an index's candidates are not stacked again for every probe."""
        pos = np.asarray(positions, dtype=np.int64).ravel()
        if pos.size and (pos.min() < 0 or pos.max() >= len(gallery)):
            raise IndexError(f"positions outside a gallery of {len(gallery)} templates")
        if self.kernel_in_use != "numba" or pos.size == 0 or len(gallery) < 2:
            return self.compare_many(probe, [gallery[int(i)] for i in pos])
        scores = np.zeros(pos.size, dtype=np.float64)
        a = self._compiled_form(probe)
        g = self._compiled_gallery(gallery)
        c = self._compiled_constants()
        compiled.compare_gallery(a.words, a.counts, a.angles, a.geometry, g.words, g.counts, g.angles, g.geometry,
                                 g.starts[pos], g.sizes[pos], g.geometry_starts[pos], c.floats, c.ints,
                                 c.n_pairs_table, scores)
        return scores

    def compare_many(self, probe: Template, gallery: Sequence[Template]) -> np.ndarray:
        """Similarities of one probe with each gallery template (same as compare, exactly)."""
        kernel = self.kernel_in_use
        if kernel == "numba":
            return self._compare_compiled(probe, gallery)
        if kernel == "torch":
            return self._compare_on_device(probe, gallery)
        scores = np.zeros(len(gallery), dtype=np.float64)
        a = self.prepare(probe)
        if len(a) == 0 or len(gallery) == 0:
            return scores
        stack = self._stack(gallery)
        if not stack.groups:
            return scores
        gamma = self._local_similarities(a, stack)  # (N, n_A)
        n_a = len(a)

        # LSS: the n_R = min(n_A, n_B) most similar pairs of each comparison, padded to
        # a multiple of _PAIR_BUCKET pairs (padding pairs are masked out).
        by_size: dict[int, list] = defaultdict(list)
        for n_b, members in stack.groups.items():
            rows = stack.starts[members][:, None] + np.arange(n_b)[None, :]
            flat = gamma[rows].reshape(len(members), n_b * n_a)
            n_r = min(n_a, n_b)
            idx, lam0 = consolidation.select_pairs(flat, n_r)
            size = -(-n_r // _PAIR_BUCKET) * _PAIR_BUCKET
            by_size[size].append((members, n_r, idx // n_a, idx % n_a, lam0))

        a_theta = a.probe_operands.theta
        for size, parts in by_size.items():
            members = np.concatenate([p[0] for p in parts])
            n_real = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
            cols = _pad_columns([p[2] for p in parts], size, 0)  # B minutiae (within template)
            rows = _pad_columns([p[3] for p in parts], size, 0)  # A minutiae
            lam0 = _pad_columns([p[4] for p in parts], size, 0.0).astype(np.float32)
            mask = np.arange(size)[None, :] < n_real[:, None]
            n_p = consolidation.n_pairs(n_real, int(self.min_np), int(self.max_np), float(self.mu_p),
                                        float(self.tau_p))
            chunk = max(1, _RELAX_ELEMENTS // (size * size))
            for lo in range(0, len(members), chunk):
                sl = slice(lo, lo + chunk)
                scores[members[sl]] = self._relax(a, a_theta, stack, members[sl], rows[sl], cols[sl], lam0[sl],
                                                  mask[sl], n_real[sl], n_p[sl])
        return np.clip(scores, 0.0, 1.0)

    def local_similarities(self, probe: Template, reference: Template) -> np.ndarray:
        """(n_A, n_B) similarities of the two templates' valid cylinders (0: not matchable)."""
        a, b = self.prepare(probe), self.prepare(reference)
        if len(a) == 0 or len(b) == 0:
            return np.zeros((len(a), len(b)), dtype=np.float32)
        if compiled.AVAILABLE and self.kernel_in_use in ("numba", "torch"):
            pa, pb, c = self._compiled_form(probe), self._compiled_form(reference), self._compiled_constants()
            return compiled.local_similarity_matrix(pa.words, pa.counts, pa.angles, len(a), pb.words, pb.counts,
                                                    pb.angles, len(b), c.floats, c.ints)
        return self._local_similarities(a, self._build_stack([b])).T.copy()

    def _local_similarities(self, a: CylinderSet, stack: _Stack) -> np.ndarray:
        """(N, n_A) similarities of every gallery cylinder with every probe cylinder.

        0 where the two are not matchable (too few cells valid in both, or directions
        more than ``max_angle_difference`` apart).
        """
        n_a = len(a)
        out = np.empty((stack.n_rows, n_a), dtype=np.float32)
        # popcount(b|a) = popcount(b) - (set bits of b on a's invalid cells): only the
        # probe cylinders with invalid cells ("partial") need the second term; popcount(a|b)
        # and the cells valid in both come from what a loses on b's invalid cells.
        probe = a.probe_operands
        partial = probe.partial
        min_both = np.float32(float(self.min_matchable_cells) * a.valid.shape[1])
        limit = float(self.max_angle_difference)
        min_cos = np.float32(math.cos(limit) if limit < math.pi else -2.0)  # -2: no limit
        lo = 0
        for k, cells in enumerate(stack.cells):
            hi = lo + cells.shape[0]
            ab = np.asarray(cells @ probe.cells, dtype=np.float32)  # popcount(a and b)
            if self.bits:
                nb = np.empty_like(ab)
                nb[:] = stack.popcount[lo:hi, None]
                if partial.size:
                    nb[:, partial] -= np.asarray(stack.energy[k] @ probe.lost, dtype=np.float32)
                na_both = np.asarray(stack.support[k] @ probe.energy_valid, dtype=np.float32)
                np.subtract(probe.totals, na_both, out=na_both)
            else:
                # Sigmoid values: 1 - sqrt(|a|^2 + |b|^2 - 2 a.b) / ... cancels for similar
                # cylinders, so these sums are taken in float64.
                ab = np.asarray(cells.astype(np.float64) @ probe.cells.astype(np.float64))
                nb = stack.energy[k].astype(np.float64) @ a.valid.T.astype(np.float64)
                na_both = stack.support[k].astype(np.float64) @ probe.energy_valid.astype(np.float64)
            na, both = na_both[:, :n_a], na_both[:, n_a:]  # popcount(a|b), cells valid in both
            ok = both >= min_both
            cos_d = np.multiply.outer(stack.cos[lo:hi], probe.cos)
            cos_d += np.multiply.outer(stack.sin[lo:hi], probe.sin)
            ok &= cos_d >= min_cos
            # 1 - ||a|b xor b|a|| / (||a|b|| + ||b|a||), ||a|b xor b|a||^2 = |a|b| + |b|a| - 2 |a and b|
            target = out[lo:hi]
            sim = target if na.dtype == out.dtype else np.empty(na.shape, na.dtype)
            np.add(na, nb, out=sim)
            ab *= 2
            sim -= ab
            if not self.bits:
                np.maximum(sim, 0, out=sim)  # rounding; bit counts are exact
            np.sqrt(sim, out=sim)
            denom = np.sqrt(na, out=ab)
            denom += np.sqrt(nb, out=nb)
            ok &= denom > 0
            with np.errstate(divide="ignore", invalid="ignore"):
                np.divide(sim, denom, out=sim)
            np.subtract(1, sim, out=sim)
            np.copyto(sim, 0, where=~ok)  # also replaces the NaN of 0 / 0
            if sim is not target:
                target[...] = sim
            lo = hi
        return out

    def _relax(self, a: CylinderSet, a_theta: np.ndarray, stack: _Stack, members: np.ndarray, rows: np.ndarray,
               cols: np.ndarray, lam0: np.ndarray, mask: np.ndarray, n_real: np.ndarray,
               n_p: np.ndarray) -> np.ndarray:
        """LSS-R scores of a chunk of comparisons padded to the same number of pairs."""
        n_a = len(a)
        n_b = stack.counts[members][:, None]
        a_pairs = (rows * n_a)[:, :, None] + rows[:, None, :]
        b_pairs = (stack.pair_starts[members][:, None] + cols * n_b)[:, :, None] + cols[:, None, :]
        delta = a_theta[rows] - stack.theta[stack.starts[members][:, None] + cols]
        return consolidation.relaxed_scores(
            delta, a.pairs.take(a_pairs), stack.pairs.take(b_pairs), lam0, mask, n_real, n_p,
            float(self.w_r), int(self.n_rel), tuple(self.rho_mu), tuple(self.rho_tau),
        )


def _concat(arrays: list[np.ndarray], empty_shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    arrays = [x for x in arrays if len(x)]
    if not arrays:
        return np.zeros(empty_shape, dtype=dtype)
    return np.concatenate(arrays).astype(dtype, copy=False)


def _csr(parts: list[tuple[np.ndarray, np.ndarray]], n_rows: int, n_cols: int) -> sp.csr_matrix:
    """A 0/1 float32 CSR matrix from per-template (row counts, column indices)."""
    counts = _concat([p[0] for p in parts], (0,), np.int64)
    indices = _concat([p[1] for p in parts], (0,), np.int32)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    data = np.ones(indices.size, dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr.astype(np.int32)), shape=(n_rows, n_cols))


def _pad_columns(blocks: list[np.ndarray], width: int, fill: Any) -> np.ndarray:
    """Stack (g_i, w_i) blocks into (sum g_i, width), padding each row with ``fill``."""
    out = np.full((sum(b.shape[0] for b in blocks), width), fill, dtype=blocks[0].dtype)
    lo = 0
    for b in blocks:
        out[lo : lo + b.shape[0], : b.shape[1]] = b
        lo += b.shape[0]
    return out
