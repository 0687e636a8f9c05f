"""The compiled MCC kernel: cylinder creation and the whole comparison in numba.

Same definitions as the numpy reference (:mod:`extractors.mcc.cylinders`,
:mod:`extractors.mcc.matcher`, :mod:`extractors.mcc.consolidation`), computed one
comparison at a time with no Python work inside:

- local similarities of bit cylinders by popcount on packed 64-bit words: for a cylinder
  pair (a, b), with x|y meaning x restricted to the cells valid in both,
  ``1 - sqrt(|a|b| + |b|a| - 2 |a and b|) / (sqrt(|a|b|) + sqrt(|b|a|))``; every count is
  an exact integer and the rest is the reference's float32 arithmetic, so the local
  similarities are bit-identical to the reference's;
- the selection of the n_R most similar pairs (ties: lowest flat index first, the rule the
  reference follows too), LSS-R relaxation and the n_P most efficient pairs in float32.

The relaxation sums and ``exp`` are the only operations whose rounding may differ from
numpy's (float32, a few units in the last place), so scores agree with the reference to
about 1e-6 (see tests/test_mcc_compiled.py for the tolerance that is checked).

numba is a default dependency, but the matcher falls back to the reference where it cannot
be installed: :data:`AVAILABLE` says whether it imported, and :data:`UNAVAILABLE_REASON` why
not. Compiled functions are cached on disk (numba's
``cache=True``, next to this file or in ``NUMBA_CACHE_DIR``), so the first-call
compilation is paid once per machine; :func:`warm_up` compiles them ahead of any timed
region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

try:  # pragma: no cover - exercised by whichever environment runs the tests
    import numba
    from numba import njit

    AVAILABLE = True
    UNAVAILABLE_REASON = ""
except ImportError as exc:  # pragma: no cover
    numba = None
    AVAILABLE = False
    UNAVAILABLE_REASON = f"numba is not installed ({exc}); install fingerbench with its default dependencies"

    def njit(*args, **kwargs):  # type: ignore[no-redef]
        """Stand-in so that the module imports without numba; nothing here is then called."""
        if args and callable(args[0]):
            return args[0]
        return lambda f: f

from extractors.mcc.cylinders import CylinderParams, CylinderSet, cell_offsets

_JIT = dict(cache=True, nogil=True, error_model="numpy")

F32 = np.float32
TWO_PI = 2.0 * math.pi


# ------------------------------------------------------------------ prepared templates
@dataclass
class Prepared:
    """One template (or a stacked gallery) in the layout of the compiled comparison.

    Per cylinder: ``words`` holds the packed bits, then the bit-level validity mask, then
    the cell-level validity mask (uint64 words); ``counts`` its set bits, its valid cells
    and whether every cell is valid; ``angles`` the float32 direction, its cosine and sine.
    ``geometry`` holds every template's (n, n) pair distances and directions, flattened
    one template after the other. For a stack, ``starts``/``sizes``/``geometry_starts``
    locate each template's rows; a single template has one entry.
    """

    words: np.ndarray  # (N, 2 W + Wc) uint64
    counts: np.ndarray  # (N, 3) int32: set bits, valid cells, all cells valid
    angles: np.ndarray  # (N, 3) float32: theta, cos, sin
    geometry: np.ndarray  # (sum n_i^2, 2) float32: distance, direction
    starts: np.ndarray  # (G,) int64
    sizes: np.ndarray  # (G,) int64
    geometry_starts: np.ndarray  # (G,) int64

    def __len__(self) -> int:
        return int(self.sizes.size)


def pack_rows(bits: np.ndarray) -> np.ndarray:
    """0/1 rows (n, m) packed into uint64 words (n, ceil(m / 64)), as the reference packs."""
    raw = np.packbits(bits.astype(np.uint8, copy=False), axis=1)
    pad = (-raw.shape[1]) % 8
    return np.ascontiguousarray(np.pad(raw, ((0, 0), (0, pad)))).view(np.uint64)


def word_counts(n_cells: int, n_bits: int) -> tuple[int, int]:
    """64-bit words per row of bits and per row of cells."""
    return (n_bits + 63) // 64, (n_cells + 63) // 64


def prepared_from_cylinders(c: CylinderSet, nd: int) -> Prepared:
    """The compiled layout of one template's bit cylinders."""
    n = len(c)
    n_cells = c.valid.shape[1]
    n_words, n_cell_words = word_counts(n_cells, c.n_bits)
    words = np.zeros((n, 2 * n_words + n_cell_words), dtype=np.uint64)
    counts = np.zeros((n, 3), dtype=np.int32)
    if n:
        valid = c.valid > 0
        bits_words = c.packed.shape[1]
        words[:, :bits_words] = c.packed
        words[:, n_words : n_words + bits_words] = pack_rows(np.repeat(valid, nd, axis=1))
        cell_words = pack_rows(valid)
        words[:, 2 * n_words : 2 * n_words + cell_words.shape[1]] = cell_words
        counts[:, 0] = np.rint(c.energy.sum(axis=1))
        counts[:, 1] = valid.sum(axis=1)
        counts[:, 2] = valid.all(axis=1)
    geometry = np.empty((n * n, 2), dtype=np.float32)
    geometry[:, 0] = c.pairs.real.ravel()
    geometry[:, 1] = c.pairs.imag.ravel()
    return single_template(words, counts, c.theta, geometry)


def single_template(words: np.ndarray, counts: np.ndarray, theta: np.ndarray, geometry: np.ndarray) -> Prepared:
    """One template's :class:`Prepared`: its directions in float32 with their cosines and
    sines (numpy's, as the reference computes them), and the one-entry gallery index."""
    theta32 = theta.astype(np.float32)
    angles = np.empty((theta32.size, 3), dtype=np.float32)
    angles[:, 0] = theta32
    angles[:, 1] = np.cos(theta32)
    angles[:, 2] = np.sin(theta32)
    zero = np.zeros(1, dtype=np.int64)
    return Prepared(words, counts, angles, geometry, zero, np.array([theta32.size], dtype=np.int64), zero.copy())


def stack_prepared(parts: list[Prepared], n_columns: int) -> Prepared:
    """Several single templates stacked into one gallery."""
    sizes = np.array([int(p.sizes[0]) for p in parts], dtype=np.int64)
    starts = np.zeros(len(parts), dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    geometry_starts = np.zeros(len(parts), dtype=np.int64)
    np.cumsum((sizes * sizes)[:-1], out=geometry_starts[1:])

    def cat(arrays: list[np.ndarray], shape: tuple[int, ...], dtype) -> np.ndarray:
        arrays = [a for a in arrays if len(a)]
        return np.ascontiguousarray(np.concatenate(arrays)) if arrays else np.zeros(shape, dtype=dtype)

    return Prepared(
        words=cat([p.words for p in parts], (0, n_columns), np.uint64),
        counts=cat([p.counts for p in parts], (0, 3), np.int32),
        angles=cat([p.angles for p in parts], (0, 3), np.float32),
        geometry=cat([p.geometry for p in parts], (0, 2), np.float32),
        starts=starts,
        sizes=sizes,
        geometry_starts=geometry_starts,
    )


@dataclass(frozen=True)
class ComparisonConstants:
    """Matcher parameters as the kernel takes them (see :func:`comparison_constants`)."""

    floats: np.ndarray  # float64: min_cos, min_both, w_r, 1 - w_r, rho_mu (3), -rho_tau (3)
    ints: np.ndarray  # int64: words per bit row, words per cell row, n_rel, cells per cylinder
    n_pairs_table: np.ndarray  # int64: n_P for n_R = 0, 1, ...; constant beyond its end


def comparison_constants(matcher, n_cells: int, n_bits: int) -> ComparisonConstants:
    """Pack an :class:`~extractors.mcc.MccMatcher`'s comparison parameters."""
    from extractors.mcc.consolidation import n_pairs

    limit = float(matcher.max_angle_difference)
    min_cos = math.cos(limit) if limit < math.pi else -2.0
    rho_mu, rho_tau = tuple(matcher.rho_mu), tuple(matcher.rho_tau)
    w_r = float(matcher.w_r)
    floats = np.array(
        [min_cos, float(matcher.min_matchable_cells) * n_cells, w_r, 1.0 - w_r,
         rho_mu[0], rho_mu[1], rho_mu[2], -rho_tau[0], -rho_tau[1], -rho_tau[2]],
        dtype=np.float64,
    )
    ints = np.array([*word_counts(n_cells, n_bits), int(matcher.n_rel), n_cells], dtype=np.int64)
    # n_P saturates at max_np long before 4096 pairs (the sigmoid is 1 to float precision).
    table = np.asarray(n_pairs(np.arange(4097), int(matcher.min_np), int(matcher.max_np), float(matcher.mu_p),
                               float(matcher.tau_p)), dtype=np.int64)
    return ComparisonConstants(floats, ints, table)


# ------------------------------------------------------------------ comparison kernel
@njit(**_JIT)
def _popcount64(x):
    # SWAR popcount; LLVM turns this into the processor's popcount instruction.
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(**_JIT)
def _wrap32(x):
    turns = np.rint(x * F32(1.0 / TWO_PI))
    return x - turns * F32(TWO_PI)


# float32 exp for the relaxation's vectorised loops: Cody-Waite range reduction and the
# degree-6 minimax polynomial of Cephes' expf (about 1 ulp); 2**n is made from integer
# shifts, so that the loop has no call, no table and no branch and becomes SIMD code.
_LOG2E = F32(1.4426950408889634)
_LN2_HI = F32(0.693359375)
_LN2_LO = F32(-2.12194440e-4)
_EXP_P = (F32(1.9875691500e-4), F32(1.3981999507e-3), F32(8.3334519073e-3), F32(4.1665795894e-2),
          F32(1.6666665459e-1), F32(5.0000001201e-1))
_TWO_TO_MINUS_40 = F32(2.0**-40)
#: Exponents below this give 1 + exp(x) == 1 in float32 (exp(-20) < half an ulp of 1), so
#: clamping there changes no result and keeps 2**n within the shifts' range.
_EXP_FLOOR = F32(-20.0)


@njit(**_JIT)
def _exp32(x):
    """exp(x) in float32 for x in [-20, 25] (the relaxation's range)."""
    n = np.rint(x * _LOG2E)
    r = x - n * _LN2_HI
    r = r - n * _LN2_LO
    r2 = r * r
    p = _EXP_P[0]
    p = p * r + _EXP_P[1]
    p = p * r + _EXP_P[2]
    p = p * r + _EXP_P[3]
    p = p * r + _EXP_P[4]
    p = p * r + _EXP_P[5]
    p = p * r2 + r + F32(1.0)
    k = np.int64(n)
    half = k >> 1  # 2**n = 2**half * 2**(n - half), each factor an exact float from a shift
    scale = F32(np.int64(1) << (half + 20)) * F32(np.int64(1) << (k - half + 20)) * _TWO_TO_MINUS_40
    return p * scale


@njit(**_JIT)
def _one_plus_exp(d, mu, minus_tau):
    """1 + exp(-tau (d - mu)) with the exponent capped at 25, as the reference computes it."""
    e = (d - mu) * minus_tau
    if e > F32(25.0):
        e = F32(25.0)
    if not e >= _EXP_FLOOR:  # also NaN, which must not reach the shifts
        e = _EXP_FLOOR
    return F32(1.0) + _exp32(e)


@njit(**_JIT)
def _local_similarities(pw, pc, pa, p0, n_a, gw, gc, ga, g0, n_b, floats, ints, gamma):
    """gamma[b * n_a + a]: similarity of probe cylinder a and gallery cylinder b (0 if not matchable)."""
    n_words = ints[0]
    n_cell_words = ints[1]
    n_cells = ints[3]
    min_cos = F32(floats[0])
    min_both = F32(floats[1])
    candidates = np.empty(n_a, dtype=np.int64)
    for b in range(n_b):
        jb = g0 + b
        cos_b = ga[jb, 1]
        sin_b = ga[jb, 2]
        full_b = gc[jb, 2] != 0
        pop_b = gc[jb, 0]
        row = gamma[b * n_a : (b + 1) * n_a]
        # Directions within the limit, gathered without branches (half of them pass).
        n_c = 0
        for a in range(n_a):
            row[a] = F32(0.0)
            cos_d = cos_b * pa[p0 + a, 1] + sin_b * pa[p0 + a, 2]
            candidates[n_c] = a
            n_c += cos_d >= min_cos
        for c in range(n_c):
            a = candidates[c]
            ia = p0 + a
            full_a = pc[ia, 2] != 0
            if full_a and full_b:
                both = n_cells
            else:
                both = 0
                for w in range(n_cell_words):
                    both += _popcount64(pw[ia, 2 * n_words + w] & gw[jb, 2 * n_words + w])
            if F32(both) < min_both:
                continue
            ab = 0
            for w in range(n_words):
                ab += _popcount64(pw[ia, w] & gw[jb, w])
            if full_b:
                na = pc[ia, 0]
            else:
                na = 0
                for w in range(n_words):
                    na += _popcount64(pw[ia, w] & gw[jb, n_words + w])
            if full_a:
                nb = pop_b
            else:
                nb = 0
                for w in range(n_words):
                    nb += _popcount64(gw[jb, w] & pw[ia, n_words + w])
            denom = np.sqrt(F32(na)) + np.sqrt(F32(nb))
            if denom > F32(0.0):
                diff = F32(na) + F32(nb) - F32(2 * ab)
                row[a] = F32(1.0) - np.sqrt(diff) / denom


@njit(**_JIT)
def _kth_largest(values, n, k):
    """The k-th largest (0-based) of values[:n], by quickselect; reorders values."""
    lo = 0
    hi = n - 1
    while hi > lo:
        mid = (lo + hi) // 2
        a, b, c = values[lo], values[mid], values[hi]
        pivot = max(min(a, b), min(max(a, b), c))  # median of three
        i = lo
        j = hi
        while i <= j:
            while values[i] > pivot:
                i += 1
            while values[j] < pivot:
                j -= 1
            if i <= j:
                values[i], values[j] = values[j], values[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return values[k]


@njit(**_JIT)
def _select(gamma, size, n_r, scratch, chosen):
    """Flat indices of the n_r largest of gamma[:size], ties to the lowest index, ascending.

    ``scratch`` is (3, size) float64 working space.
    """
    if n_r >= size:
        for t in range(size):
            chosen[t] = t
        return
    # A coarse histogram finds a lower bound of the n_r-th value; only the values above it
    # (a few times n_r) go to the quickselect. Loops are branch-free: which pairs pass is
    # unpredictable.
    # Four interleaved histograms, so that runs of equal buckets do not serialise the
    # increments through memory.
    hist = np.zeros((4, _BUCKETS), dtype=np.int32)
    for t in range(size):
        hist[t & 3, min(np.int64(gamma[t] * F32(_BUCKETS)), _BUCKETS - 1)] += 1
    bucket = _BUCKETS - 1
    count = hist[0, bucket] + hist[1, bucket] + hist[2, bucket] + hist[3, bucket]
    while count < n_r and bucket > 0:
        bucket -= 1
        count += hist[0, bucket] + hist[1, bucket] + hist[2, bucket] + hist[3, bucket]
    lower = F32(bucket) / F32(_BUCKETS) if bucket > 0 else F32(-1.0)
    # The candidates (value >= lower), in increasing position: at least n_r of them.
    values = scratch[0]
    positions = scratch[1]
    m = 0
    for t in range(size):
        g = gamma[t]
        values[m] = g
        positions[m] = t
        m += g >= lower
    work = scratch[2]
    work[:m] = values[:m]
    kth = _kth_largest(work, m, n_r - 1)
    above = 0
    for t in range(m):
        above += values[t] > kth
    equal_left = n_r - above
    k = 0
    for t in range(m):
        g = values[t]
        tie = (g == kth) & (equal_left > 0)
        chosen[k] = np.int64(positions[t])  # float64 holds positions exactly
        k += (g > kth) | tie
        equal_left -= tie


_BUCKETS = 32
_LANES = 16  # float32 lanes of a 512-bit vector: rows of the compatibility matrix are padded to them


@njit(**_JIT)
def _score(pa, pgeo, n_a, ga, ggeo, g0, gg0, n_b, floats, ints, table, gamma, scratch, index, work, rho_t, offs):
    """LSS-R global score of one comparison whose local similarities are in gamma."""
    n_r = min(n_a, n_b)
    n_pad = (n_r + _LANES - 1) // _LANES * _LANES
    chosen = index[0]
    _select(gamma, n_a * n_b, n_r, scratch, chosen)
    w_r = F32(floats[2])
    mu1, mu2, mu3 = F32(floats[4]), F32(floats[5]), F32(floats[6])
    t1, t2, t3 = F32(floats[7]), F32(floats[8]), F32(floats[9])
    n_rel = ints[2]
    ra = index[1]
    rb = index[2]
    lam0 = work[0]
    delta = work[1]
    lam = work[2]
    nxt = work[3]
    for t in range(n_r):
        idx = chosen[t]
        rb[t] = idx // n_a
        ra[t] = idx % n_a
        lam0[t] = gamma[idx]
        delta[t] = pa[ra[t], 0] - ga[g0 + rb[t], 0]
        lam[t] = lam0[t]
    # rho_t[k, t] = compatibility of pairs t and k, built column by column so that the
    # inner loops run over contiguous float32 rows.
    dist_a = work[4]
    dist_b = work[5]
    dir_a = work[6]
    dir_b = work[7]
    # Pair geometry through flat unsigned offsets: numba wraps negative signed indices, and
    # that per-load check keeps the gathers below from vectorising (8 % of a comparison).
    pflat = pgeo.reshape(-1)
    gflat = ggeo.reshape(-1)
    row_a = offs[0]
    row_b = offs[1]
    for t in range(n_r):
        row_a[t] = np.uint64(2 * ra[t] * n_a)
        row_b[t] = np.uint64(2 * (gg0 + rb[t] * n_b))
    for k in range(n_r):
        col_a = np.uint64(2 * ra[k])
        col_b = np.uint64(2 * rb[k])
        for t in range(n_r):
            ia = row_a[t] + col_a
            ib = row_b[t] + col_b
            dist_a[t] = pflat[ia]
            dir_a[t] = pflat[ia + np.uint64(1)]
            dist_b[t] = gflat[ib]
            dir_b[t] = gflat[ib + np.uint64(1)]
        dk = delta[k]
        row = rho_t[k]
        # Whole SIMD blocks: the entries from n_r to n_pad are computed from finite
        # leftovers (the arrays start zeroed) and never read.
        for t in range(n_pad):
            dt = delta[t]
            e = _one_plus_exp(abs(dist_a[t] - dist_b[t]), mu1, t1)
            e *= _one_plus_exp(abs(_wrap32(dt - dk)), mu2, t2)
            e *= _one_plus_exp(abs(_wrap32(dt - (dir_a[t] - dir_b[t]))), mu3, t3)
            row[t] = F32(1.0) / e
        row[k] = F32(0.0)
    support = F32(floats[3] / max(n_r - 1, 1))
    for _ in range(n_rel):
        for t in range(n_r):
            nxt[t] = F32(0.0)
        for k in range(n_r):
            lk = lam[k]
            row = rho_t[k]
            for t in range(n_r):
                nxt[t] += row[t] * lk
        for t in range(n_r):
            lam[t] = w_r * lam[t] + support * nxt[t]
    # The n_P pairs of highest efficiency lam / lam0 (ties: first pair first).
    n_p = table[min(n_r, table.size - 1)]
    eff = nxt
    for t in range(n_r):
        eff[t] = lam[t] / lam0[t] if lam0[t] > F32(0.0) else F32(-1.0)
    total = 0.0
    for _ in range(min(n_p, n_r)):
        best = -1
        for t in range(n_r):
            if eff[t] >= F32(0.0) and (best < 0 or eff[t] > eff[best]):
                best = t
        if best < 0:
            break
        total += float(lam[best])
        eff[best] = F32(-2.0)
    score = total / max(n_p, 1)
    return min(max(score, 0.0), 1.0)


@njit(**_JIT)
def compare_gallery(pw, pc, pa, pgeo, gw, gc, ga, ggeo, starts, sizes, geometry_starts, floats, ints, table, out):
    """Scores of one probe (a single prepared template) against every gallery template."""
    n_a = pw.shape[0]
    max_b = 0
    for g in range(sizes.size):
        max_b = max(max_b, sizes[g])
    longest = max(max_b, n_a)
    gamma = np.empty(max(n_a * max_b, 1), dtype=np.float32)
    scratch = np.empty((3, gamma.size), dtype=np.float64)
    index = np.empty((3, longest), dtype=np.int64)
    work = np.zeros((8, longest + _LANES), dtype=np.float32)
    rho = np.zeros((longest, longest + _LANES), dtype=np.float32)
    offs = np.empty((2, longest), dtype=np.uint64)
    for g in range(sizes.size):
        n_b = sizes[g]
        if n_a == 0 or n_b == 0:
            out[g] = 0.0
            continue
        _local_similarities(pw, pc, pa, 0, n_a, gw, gc, ga, starts[g], n_b, floats, ints, gamma)
        out[g] = _score(pa, pgeo, n_a, ga, ggeo, starts[g], geometry_starts[g], n_b, floats, ints, table,
                        gamma, scratch, index, work, rho, offs)


@njit(**_JIT)
def local_similarity_matrix(pw, pc, pa, n_a, gw, gc, ga, n_b, floats, ints):
    """(n_a, n_b) local similarities of two single templates (for tests and diagnostics)."""
    gamma = np.zeros(max(n_a * n_b, 1), dtype=np.float32)
    _local_similarities(pw, pc, pa, 0, n_a, gw, gc, ga, 0, n_b, floats, ints, gamma)
    out = np.zeros((n_a, n_b), dtype=np.float32)
    for b in range(n_b):
        for a in range(n_a):
            out[a, b] = gamma[b * n_a + a]
    return out


# ------------------------------------------------------------------ LSH collision scores
_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the multiplier spreads any key's bits


@njit(**_JIT)
def _slot(key, slot_bits):
    return np.int64((np.uint64(key) * _MIX) >> np.uint64(64 - slot_bits))


@njit(**_JIT)
def lsh_keys(cells, positions, out):
    """out[i * tables + j]: the hash value of cylinder i (0/1 cells) in table j, the bits
    at ``positions[j]`` read as an integer (first position lowest), tagged with j above
    them, or 0 where none of those bits is set (see :meth:`MccLshIndex._keys`)."""
    tables, bits = positions.shape
    for i in range(cells.shape[0]):
        for j in range(tables):
            value = np.int64(0)
            for b in range(bits):
                value |= np.int64(cells[i, positions[j, b]]) << b
            out[i * tables + j] = (value | (np.int64(j) << bits)) if value != 0 else 0


@njit(**_JIT)
def lsh_directory(sorted_keys, slot_bits):
    """An open-addressing table (``2 ** slot_bits`` slots, linear probing) from each
    distinct hash value of ``sorted_keys`` (none 0) to its entries: per slot, the value
    and ``first << 32 | count`` side by side, one cache line per look-up."""
    n_slots = np.int64(1) << slot_bits
    table = np.zeros((n_slots, 2), dtype=np.int64)
    e = 0
    while e < sorted_keys.size:
        key = sorted_keys[e]
        end = e + 1
        while end < sorted_keys.size and sorted_keys[end] == key:
            end += 1
        h = _slot(key, slot_bits)
        while table[h, 0] != 0:
            h = (h + 1) & (n_slots - 1)
        table[h, 0] = key
        table[h, 1] = (np.int64(e) << 32) | (end - e)
        e = end
    return table


@njit(**_JIT)
def lsh_scores(keys, tables, directory, slot_bits, entries, n_cylinders, n_templates, max_entries, power, score):
    """The score of every gallery template for one probe (:class:`extractors.mcc.index.MccLshIndex`).

    ``keys`` holds the probe's hash values, ``tables`` per cylinder (0: not indexed). The
    gallery's bucket entries (``entries``: the cylinder of each and its template) are
    sorted by hash value, and the ``directory`` of :func:`lsh_directory` finds a value's
    entries. A probe cylinder's collisions with a gallery cylinder are the tables in which
    their hash values are equal (a bucket holds a cylinder at most once: the table is part
    of the value); its contribution to a template is ``c ** power`` for the template's most
    colliding cylinder, ``c`` collisions. Buckets of more than ``max_entries`` entries are
    skipped. ``score`` (n_templates float64) receives the sums; returns the entries visited.
    """
    n_slots = np.int64(1) << slot_bits
    # Every bucket first, in one loop of independent look-ups (their cache misses overlap).
    first = np.zeros(keys.size, dtype=np.int64)
    count = np.zeros(keys.size, dtype=np.int64)
    visited = 0
    for j in range(keys.size):
        key = keys[j]
        if key == 0:
            continue
        h = _slot(key, slot_bits)
        while directory[h, 0] != key and directory[h, 0] != 0:
            h = (h + 1) & (n_slots - 1)
        n = directory[h, 1] & 0xFFFFFFFF
        if directory[h, 0] == key and n <= max_entries:
            first[j] = directory[h, 1] >> 32
            count[j] = n
            visited += n
    weight = np.empty(tables + 1, dtype=np.float64)  # c ** power for c collisions
    for c in range(tables + 1):
        weight[c] = np.float64(c) ** power
    hits = np.zeros(n_cylinders, dtype=np.uint16)  # collisions <= tables <= 32768
    best = np.zeros(n_templates, dtype=np.uint16)
    seen = np.empty(n_templates, dtype=np.int32)
    for t in range(n_templates):
        score[t] = 0.0
    for i in range(keys.size // tables):
        n_seen = 0
        for j in range(i * tables, (i + 1) * tables):
            for e in range(first[j], first[j] + count[j]):  # branch-free: which entries raise a best is unpredictable
                c = entries[e, 0]
                t = entries[e, 1]
                n_hits = hits[c] + np.uint16(1)
                hits[c] = n_hits
                before = best[t]
                seen[n_seen] = t
                n_seen += before == 0
                best[t] = max(before, n_hits)
        for j in range(i * tables, (i + 1) * tables):
            for e in range(first[j], first[j] + count[j]):
                hits[entries[e, 0]] = 0
        for u in range(n_seen):
            t = seen[u]
            score[t] += weight[best[t]]
            best[t] = 0
    return visited


# ------------------------------------------------------------------ cylinder creation
@njit(**_JIT)
def _wrap64(x):
    """np.mod(x + pi, 2 pi) - pi, bit for bit: within (-3 pi, pi) one subtraction or addition
    of 2 pi is what numpy's remainder does (exactly, or with the same rounding), without
    the cost of fmod."""
    a = x + math.pi
    if 0.0 <= a < TWO_PI:
        return a - math.pi
    if TWO_PI <= a < 2.0 * TWO_PI:
        return (a - TWO_PI) - math.pi
    if -TWO_PI < a < 0.0:
        return (a + TWO_PI) - math.pi
    return np.mod(a, TWO_PI) - math.pi


@njit(**_JIT)
def _ndtr(x):
    """Standard normal distribution function (as scipy.special.ndtr)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@njit(**_JIT)
def _convex_hull(xy):
    """Convex hull vertices in counter-clockwise order (Andrew's monotone chain), as
    :func:`extractors.mcc.cylinders._hull` computes it: duplicates removed first."""
    n = xy.shape[0]
    order = np.argsort(xy[:, 1], kind="mergesort")
    order = order[np.argsort(xy[order, 0], kind="mergesort")]  # by x, then y
    pts = np.empty((n, 2), dtype=np.float64)
    m = 0
    for i in range(n):
        x, y = xy[order[i], 0], xy[order[i], 1]
        if m == 0 or x != pts[m - 1, 0] or y != pts[m - 1, 1]:
            pts[m, 0] = x
            pts[m, 1] = y
            m += 1
    if m <= 2:
        return pts[:m].copy()
    chain = np.empty((2 * m, 2), dtype=np.float64)
    out = np.empty((2 * m, 2), dtype=np.float64)
    n_out = 0
    for direction in range(2):
        k = 0
        for step in range(m):
            i = step if direction == 0 else m - 1 - step
            px, py = pts[i, 0], pts[i, 1]
            while k >= 2:
                ux = chain[k - 1, 0] - chain[k - 2, 0]
                uy = chain[k - 1, 1] - chain[k - 2, 1]
                vx = px - chain[k - 2, 0]
                vy = py - chain[k - 2, 1]
                if ux * vy - uy * vx > 0:
                    break
                k -= 1
            chain[k, 0] = px
            chain[k, 1] = py
            k += 1
        for i in range(k - 1):
            out[n_out, 0] = chain[i, 0]
            out[n_out, 1] = chain[i, 1]
            n_out += 1
    return out[:n_out].copy()


@njit(**_JIT)
def _hull_distance(px, py, hull):
    """Distance of a point to the convex polygon ``hull`` (0 inside)."""
    h = hull.shape[0]
    if h == 0:
        return np.inf
    if h == 1:
        return math.hypot(px - hull[0, 0], py - hull[0, 1])
    # Squared distances (one square root at the end), and only to the edges the point is
    # outside of: for a convex polygon the nearest edge is one of them (for a polygon of
    # fewer than three vertices every edge counts).
    best = np.inf
    inside = h >= 3
    for e in range(h):
        ax, ay = hull[e, 0], hull[e, 1]
        bx, by = hull[(e + 1) % h, 0], hull[(e + 1) % h, 1]
        abx, aby = bx - ax, by - ay
        apx, apy = px - ax, py - ay
        outside = abx * apy - aby * apx < 0
        if outside:
            inside = False
        elif h >= 3:
            continue
        t = (apx * abx + apy * aby) / max(abx * abx + aby * aby, 1e-12)
        t = min(max(t, 0.0), 1.0)
        dx = px - (ax + t * abx)
        dy = py - (ay + t * aby)
        best = min(best, dx * dx + dy * dy)
    return 0.0 if inside else math.sqrt(best)


@njit(**_JIT)
def _cell_validity(cx, cy, hull, omega, valid, beyond):
    """valid[i] = cell centre i lies within ``omega`` of the convex polygon ``hull``.

    The signed distances to the edge lines settle most cells (inside all of them: inside;
    farther than ``omega`` outside one: too far), edge by edge over all cells at once;
    only the cells in between need the exact distance to the polygon.
    """
    h = hull.shape[0]
    n = cx.size
    if h < 3:
        for i in range(n):
            valid[i] = _hull_distance(cx[i], cy[i], hull) <= omega
        return
    beyond[:n] = -np.inf
    for e in range(h):
        abx = hull[(e + 1) % h, 0] - hull[e, 0]
        aby = hull[(e + 1) % h, 1] - hull[e, 1]
        length = max(math.hypot(abx, aby), 1e-12)
        nx, ny = aby / length, -abx / length
        offset = hull[e, 0] * nx + hull[e, 1] * ny
        for i in range(n):
            beyond[i] = max(beyond[i], cx[i] * nx + cy[i] * ny - offset)
    for i in range(n):
        b = beyond[i]
        if b <= 0:
            valid[i] = True
        elif b <= omega:
            valid[i] = _hull_distance(cx[i], cy[i], hull) <= omega
        else:
            valid[i] = False


@njit(**_JIT)
def cylinder_cells(xy, theta, offsets, radius, sigma_s, sigma_d, nd, mu_psi, omega, min_valid_cells,
                   min_neighbours):
    """Valid cylinders of one template's minutiae (reference resolution, y up, radians).

    Returns (indices of the minutiae with a valid cylinder, cell validity (k, C) as uint8,
    bit cells (k, C, nd) as uint8, 0 outside the valid cells), following
    :func:`extractors.mcc.cylinders.build_cylinders` step by step.
    """
    n = theta.size
    n_cells = offsets.shape[0]
    reach = radius + 3 * sigma_s
    dist = np.empty((n, n), dtype=np.float64)
    candidates = np.empty(n, dtype=np.int64)
    n_cand = 0
    for i in range(n):
        count = -1
        for j in range(n):
            d = math.hypot(xy[j, 0] - xy[i, 0], xy[j, 1] - xy[i, 1])
            dist[i, j] = d
            count += d <= reach
        if count >= min_neighbours:
            candidates[n_cand] = i
            n_cand += 1
    empty = (np.empty(0, np.int64), np.zeros((0, n_cells), np.uint8), np.zeros((0, n_cells, nd), np.uint8))
    if n_cand == 0:
        return empty
    hull = _convex_hull(xy)

    f = np.float32
    two_sigma = f(3 * sigma_s)
    far2 = two_sigma * two_sigma
    gauss_scale = f(-1.0 / (2.0 * sigma_s * sigma_s))
    gauss_norm = f(1.0 / (sigma_s * math.sqrt(TWO_PI)))
    threshold = f(mu_psi)
    delta_d = TWO_PI / nd
    keep = np.empty(n_cand, dtype=np.int64)
    valid_out = np.zeros((n_cand, n_cells), dtype=np.uint8)
    cells_out = np.zeros((n_cand, n_cells, nd), dtype=np.uint8)
    cx = np.empty(n_cells, dtype=np.float64)
    cy = np.empty(n_cells, dtype=np.float64)
    valid = np.empty(n_cells, dtype=np.bool_)
    beyond = np.empty(n_cells, dtype=np.float64)
    neighbours = np.empty(n, dtype=np.int64)
    directional = np.empty((n, nd), dtype=np.float32)
    nx32 = np.empty(n, dtype=np.float32)
    ny32 = np.empty(n, dtype=np.float32)
    qx32 = np.empty(n_cells, dtype=np.float32)
    qy32 = np.empty(n_cells, dtype=np.float32)
    spatial_row = np.empty(n_cells, dtype=np.float32)
    totals = np.empty((nd, n_cells), dtype=np.float32)
    n_keep = 0
    for ci in range(n_cand):
        i = candidates[ci]
        c, s = math.cos(theta[i]), math.sin(theta[i])
        for q in range(n_cells):
            cx[q] = xy[i, 0] + c * offsets[q, 0] - s * offsets[q, 1]
            cy[q] = xy[i, 1] + s * offsets[q, 0] + c * offsets[q, 1]
        _cell_validity(cx, cy, hull, omega, valid, beyond)
        n_valid = 0
        for q in range(n_cells):
            n_valid += valid[q]
        if n_valid < min_valid_cells * n_cells:
            continue
        # Neighbours within R + 3 sigma_S (not the minutia itself), in index order, with
        # their directional contributions.
        n_nb = 0
        for j in range(n):
            if j != i and dist[i, j] <= reach:
                neighbours[n_nb] = j
                nx32[n_nb] = f(xy[j, 0])
                ny32[n_nb] = f(xy[j, 1])
                dtheta = _wrap64(theta[i] - theta[j])
                for d in range(nd):
                    alpha = _wrap64(-math.pi + (d + 0.5) * delta_d - dtheta)
                    directional[n_nb, d] = f(_ndtr((alpha + delta_d / 2) / sigma_d)
                                             - _ndtr((alpha - delta_d / 2) / sigma_d))
                n_nb += 1
        # Cell values, one neighbour at a time over all cells (contiguous float32 rows, so
        # the loops become SIMD code); each cell still sums its neighbours in index order.
        for q in range(n_cells):
            qx32[q] = f(cx[q])
            qy32[q] = f(cy[q])
        totals[:, :] = f(0.0)
        for w in range(n_nb):
            xw = nx32[w]
            yw = ny32[w]
            for q in range(n_cells):
                dx = qx32[q] - xw
                dy = qy32[q] - yw
                d2 = dx * dx + dy * dy
                spatial = _exp32(max(d2 * gauss_scale, _EXP_FLOOR)) * gauss_norm  # beyond 3 sigma: zeroed below
                spatial_row[q] = spatial if d2 <= far2 else f(0.0)
            for d in range(nd):
                weight = directional[w, d]
                row = totals[d]
                for q in range(n_cells):
                    row[q] += spatial_row[q] * weight
        for q in range(n_cells):
            valid_out[n_keep, q] = valid[q]
            if valid[q]:
                for d in range(nd):
                    cells_out[n_keep, q, d] = totals[d, q] > threshold
        keep[n_keep] = i
        n_keep += 1
    return keep[:n_keep].copy(), valid_out[:n_keep].copy(), cells_out[:n_keep].copy()


@njit(**_JIT)
def _pack_into(bits, out, column):
    """Pack 0/1 values into out[column:] as np.packbits(...).view(np.uint64) would."""
    n = bits.size
    for w in range((n + 63) // 64):
        value = np.uint64(0)
        for j in range(min(64, n - 64 * w)):
            value |= np.uint64(bits[64 * w + j] != 0) << np.uint64(8 * (j // 8) + 7 - j % 8)
        out[column + w] = value


@njit(**_JIT)
def cylinder_layout(xy, keep, valid, cells, n_words, n_cell_words):
    """Everything else both kernels keep of the cylinders, in one pass: packed bits, the
    bit- and cell-level validity masks (the compiled layout's words), per-cell energy,
    per-cylinder counts, and the pair geometry (distance, direction) of the kept minutiae."""
    k, n_cells, nd = cells.shape
    words = np.zeros((k, 2 * n_words + n_cell_words), dtype=np.uint64)
    energy = np.zeros((k, n_cells), dtype=np.float32)
    counts = np.zeros((k, 3), dtype=np.int32)
    flat = np.empty(n_cells * nd, dtype=np.uint8)
    mask = np.empty(n_cells * nd, dtype=np.uint8)
    for i in range(k):
        n_set = 0
        n_valid = 0
        for q in range(n_cells):
            e = 0
            for d in range(nd):
                flat[q * nd + d] = cells[i, q, d]
                mask[q * nd + d] = valid[i, q]
                e += cells[i, q, d]
            energy[i, q] = e
            n_set += e
            n_valid += valid[i, q]
        _pack_into(flat, words[i], 0)
        _pack_into(mask, words[i], n_words)
        _pack_into(valid[i], words[i], 2 * n_words)
        counts[i, 0] = n_set
        counts[i, 1] = n_valid
        counts[i, 2] = n_valid == n_cells
    geometry = np.empty((k * k, 2), dtype=np.float32)
    for i in range(k):
        for j in range(k):
            dx = xy[keep[j], 0] - xy[keep[i], 0]
            dy = xy[keep[j], 1] - xy[keep[i], 1]
            geometry[i * k + j, 0] = np.float32(math.hypot(dx, dy))
            geometry[i * k + j, 1] = np.float32(math.atan2(dy, dx))
    return words, energy, counts, geometry


def build(template, p: CylinderParams) -> tuple[CylinderSet, Prepared]:
    """:func:`extractors.mcc.cylinders.build_cylinders` for bit cylinders, compiled, and
    the same cylinders in the compiled comparison's layout."""
    from extractors.mcc import cylinders as reference

    if not p.bits:
        raise ValueError("the compiled cylinder builder makes bit cylinders (MCC-Sb) only")
    xy, theta = reference.normalised_minutiae(template, p)
    offsets = _offsets(p.radius, p.ns)
    n_cells = len(offsets)
    n_bits = n_cells * p.nd
    if len(theta) >= p.min_neighbours + 1:
        keep, valid, cells = cylinder_cells(
            np.ascontiguousarray(xy), np.ascontiguousarray(theta), offsets, float(p.radius), float(p.sigma_s),
            float(p.sigma_d), int(p.nd), float(p.mu_psi), float(p.omega), float(p.min_valid_cells),
            int(p.min_neighbours))
    else:
        keep = np.empty(0, np.int64)
    if keep.size == 0:
        empty = reference.empty_cylinders(p, n_cells)
        return empty, prepared_from_cylinders(empty, p.nd)
    n_words, n_cell_words = word_counts(n_cells, n_bits)
    words, energy, counts, geometry = cylinder_layout(xy, keep, valid, cells, n_words, n_cell_words)
    k = keep.size
    pairs = np.empty((k, k), dtype=np.complex64)
    pairs.real = geometry[:, 0].reshape(k, k)
    pairs.imag = geometry[:, 1].reshape(k, k)
    cylinders = CylinderSet(
        xy=xy[keep], theta=theta[keep], pairs=pairs, valid=valid.astype(np.float32), energy=energy,
        n_bits=n_bits, packed=np.ascontiguousarray(words[:, : (n_bits + 63) // 64]),
    )
    return cylinders, single_template(words, counts, cylinders.theta, geometry)


_OFFSETS: dict[tuple[float, int], np.ndarray] = {}


def _offsets(radius: float, ns: int) -> np.ndarray:
    key = (float(radius), int(ns))
    if key not in _OFFSETS:
        _OFFSETS[key] = np.ascontiguousarray(cell_offsets(float(radius), int(ns)))
    return _OFFSETS[key]


def warm_up_templates():
    """Two small templates of the same finger (16 minutiae on a grid, the second moved a
    little): what the warm-ups of the compiled matcher and index run on."""
    from bench.template import Template, make_minutiae

    k = np.arange(16, dtype=np.float64)
    minutiae = make_minutiae(60 + 25 * (k % 4) + 3 * (k // 4), 60 + 25 * (k // 4), 0.4 * k)
    a = Template(minutiae, 300, 300, 500)
    b = Template(make_minutiae(minutiae["x"] + 4, minutiae["y"] - 3, minutiae["angle"] + 0.05), 300, 300, 500)
    return a, b


def warm_up(matcher) -> None:
    """Compile the kernels, or load them from numba's disk cache, with one small comparison,
    so that no timed call pays for it (the harness calls ``Matcher.warm_up`` first)."""
    a, b = warm_up_templates()
    matcher.compare_many(a, [a, b])
    matcher.compare(a, b)
