"""MCC 1:N on a GPU with PyTorch (optional extra ``fingerbench[gpu]``).

The same comparison as the reference and the compiled kernel, written as batched tensor
operations so that one probe is scored against a whole gallery at once:

- local similarities from exact bit counts, obtained as float32 products of 0/1 matrices
  (exact: every count is an integer below 2**24; TF32 is switched off), then the
  reference's float32 formula;
- the n_R most similar pairs of each comparison with the reference's tie rule (lowest
  flat index first), templates grouped by cylinder count so that no padding is needed;
- LSS-R relaxation and the n_P most efficient pairs as batched float32 tensor operations.

Scores agree with the reference within float32 rounding of the relaxation (tests use
the tolerance of the compiled kernel). ``device="cpu"`` runs the same code on the CPU,
which is how the tests check it on machines without a GPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

import importlib
import importlib.util

# PyTorch takes a second to import: it is imported when this path is first used, not
# whenever the matcher is.
AVAILABLE = importlib.util.find_spec("torch") is not None
UNAVAILABLE_REASON = "" if AVAILABLE else "PyTorch is not installed; install fingerbench[gpu]"


def __getattr__(name: str) -> Any:
    if name == "torch":
        return importlib.import_module("torch")
    raise AttributeError(name)

from extractors.mcc import compiled

if TYPE_CHECKING:  # annotations only
    import torch
from extractors.mcc.compiled import ComparisonConstants, Prepared

#: Gallery cylinders per block of local similarities, and comparisons per relaxation batch:
#: both bound the device memory a search needs (about 1 GB at the defaults).
ROWS_PER_BLOCK = 65536
COMPARISONS_PER_BATCH = 8192


def cuda_available() -> bool:
    return bool(AVAILABLE and importlib.import_module("torch").cuda.is_available())


class DeviceGallery:
    """A stacked gallery (see :class:`extractors.mcc.compiled.Prepared`) held on a device."""

    def __init__(self, g: Prepared, constants: ComparisonConstants, device: str) -> None:
        torch = importlib.import_module("torch")
        self.device = torch.device(device)
        n_words, n_cell_words = int(constants.ints[0]), int(constants.ints[1])
        words = torch.from_numpy(g.words.view(np.int64)).to(self.device)
        self.bits = words[:, :n_words]
        self.vmask = words[:, n_words : 2 * n_words]
        self.cells = words[:, 2 * n_words : 2 * n_words + n_cell_words]
        self.angles = torch.from_numpy(g.angles).to(self.device)
        self.geometry = torch.from_numpy(g.geometry).to(self.device)
        self.sizes = g.sizes
        self.starts = g.starts
        self.geometry_starts = g.geometry_starts
        self.n_rows = int(g.words.shape[0])


def unpack(words: "torch.Tensor") -> "torch.Tensor":
    """(rows, W) int64 words as (rows, 64 W) float32 0/1 values. The bit order is not the
    packing order, but it is the same for every row, which is all dot products need; the
    padding bits are 0 in every row."""
    torch = importlib.import_module("torch")
    shifts = torch.arange(64, device=words.device, dtype=torch.int64)
    bits = (words.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(words.shape[0], -1).to(torch.float32)


def _wrap(x: "torch.Tensor") -> "torch.Tensor":
    torch = importlib.import_module("torch")
    return x - torch.round(x * np.float32(1 / (2 * np.pi))) * np.float32(2 * np.pi)


def _exp32(x: "torch.Tensor") -> "torch.Tensor":
    """float32 exp with the compiled kernel's polynomial (:func:`extractors.mcc.compiled._exp32`),
    so that both round alike: library exps differ in the last bit, and that is enough to
    reorder near-equal efficiencies."""
    torch = importlib.import_module("torch")
    n = torch.round(x * float(compiled._LOG2E))
    r = x - n * float(compiled._LN2_HI)
    r = r - n * float(compiled._LN2_LO)
    r2 = r * r
    c = [float(v) for v in compiled._EXP_P]
    p = torch.full_like(r, c[0])
    for coefficient in c[1:]:
        p = p * r + coefficient
    p = p * r2 + r + 1.0
    return torch.ldexp(p, n.to(torch.int32))


def _one_plus_exp(d: "torch.Tensor", mu: float, minus_tau: float) -> "torch.Tensor":
    torch = importlib.import_module("torch")
    e = (d - np.float32(mu)) * np.float32(minus_tau)
    return _exp32(torch.clamp(e, min=float(compiled._EXP_FLOOR), max=25.0)) + 1.0


def compare_gallery(a: Prepared, g: DeviceGallery, c: ComparisonConstants) -> np.ndarray:
    """Scores of one probe against every template of a device gallery (float64, numpy)."""
    torch = importlib.import_module("torch")
    dev = g.device
    n_a = int(a.words.shape[0])
    scores = np.zeros(len(g.sizes), dtype=np.float64)
    if n_a == 0 or g.n_rows == 0:
        return scores
    torch.backends.cuda.matmul.allow_tf32 = False
    n_words, n_cell_words, n_rel, n_cells = (int(v) for v in c.ints)
    min_cos, min_both, w_r, one_minus_w = (float(v) for v in c.floats[:4])
    mu, minus_tau = c.floats[4:7], c.floats[7:10]
    pw = torch.from_numpy(a.words.view(np.int64)).to(dev)
    a_bits = unpack(pw[:, :n_words])
    a_vmask = unpack(pw[:, n_words : 2 * n_words])
    a_cells = unpack(pw[:, 2 * n_words : 2 * n_words + n_cell_words])
    a_angles = torch.from_numpy(a.angles).to(dev)
    a_geometry = torch.from_numpy(a.geometry).to(dev).reshape(n_a, n_a, 2)

    root = torch.sqrt(torch.arange(64 * n_words + 1, dtype=torch.float64, device=dev)).float()
    # Local similarities (rows of the gallery x probe cylinders), block by block.
    gamma = torch.empty((g.n_rows, n_a), dtype=torch.float32, device=dev)
    for lo in range(0, g.n_rows, ROWS_PER_BLOCK):
        hi = min(lo + ROWS_PER_BLOCK, g.n_rows)
        b_bits = unpack(g.bits[lo:hi])
        ab = b_bits @ a_bits.T
        na = unpack(g.vmask[lo:hi]) @ a_bits.T  # |a|b|
        nb = b_bits @ a_vmask.T  # |b|a|
        both = unpack(g.cells[lo:hi]) @ a_cells.T
        del b_bits
        cos_d = g.angles[lo:hi, 1:2] * a_angles[:, 1] + g.angles[lo:hi, 2:3] * a_angles[:, 2]
        # Square roots from a table and the quotient in float64, then rounded once: the
        # correctly rounded float32 results of the reference, whatever the device's own
        # float32 sqrt and division do (PyTorch's CPU ones are not correctly rounded).
        denom = root[na.long()] + root[nb.long()]
        ok = (both >= np.float32(min_both)) & (cos_d >= np.float32(min_cos)) & (denom > 0)
        sim = 1.0 - (root[(na + nb - 2.0 * ab).long()].double() / denom.double()).float()
        gamma[lo:hi] = torch.where(ok, sim, torch.zeros((), device=dev))

    table = c.n_pairs_table
    sizes = g.sizes
    for n_b in np.unique(sizes[sizes > 0]):
        n_b = int(n_b)
        members_all = np.nonzero(sizes == n_b)[0]
        n_r = min(n_a, n_b)
        n_p = int(table[min(n_r, table.size - 1)])
        for lo in range(0, len(members_all), COMPARISONS_PER_BATCH):
            members = members_all[lo : lo + COMPARISONS_PER_BATCH]
            m = len(members)
            rows = torch.from_numpy(g.starts[members][:, None] + np.arange(n_b)[None, :]).to(dev)
            flat = gamma[rows.reshape(-1)].reshape(m, n_b * n_a)
            idx = _select(flat, n_r)  # (m, n_r), ascending flat positions
            lam0 = torch.gather(flat, 1, idx)
            cb, ra = idx // n_a, idx % n_a  # gallery cylinder within its template, probe cylinder
            starts = torch.from_numpy(g.starts[members]).to(dev)[:, None]
            delta = a_angles[ra, 0] - g.angles[starts + cb, 0]
            a_pairs = a_geometry[ra[:, :, None], ra[:, None, :]]  # (m, n_r, n_r, 2)
            gstart = torch.from_numpy(g.geometry_starts[members]).to(dev)[:, None, None]
            b_index = gstart + cb[:, :, None] * n_b + cb[:, None, :]
            b_pairs = g.geometry[b_index]
            diff = a_pairs - b_pairs
            e = _one_plus_exp(diff[..., 0].abs(), mu[0], minus_tau[0])
            e = e * _one_plus_exp(_wrap(delta[:, :, None] - delta[:, None, :]).abs(), mu[1], minus_tau[1])
            e = e * _one_plus_exp(_wrap(delta[:, :, None] - diff[..., 1]).abs(), mu[2], minus_tau[2])
            rho = (1.0 / e.double()).float()  # correctly rounded, as the reference's
            rho.diagonal(dim1=1, dim2=2).zero_()
            lam = lam0.clone()
            support = np.float32(one_minus_w / max(n_r - 1, 1))
            for _ in range(n_rel):
                # Summed pair by pair, in order: a matrix product would round the sums in
                # another order, and near-equal efficiencies then rank differently.
                acc = torch.zeros_like(lam)
                for k in range(n_r):
                    acc += rho[:, :, k] * lam[:, k : k + 1]
                lam = np.float32(w_r) * lam + support * acc
            real = lam0 > 0
            ratio = (lam.double() / torch.where(real, lam0, torch.ones((), device=dev)).double()).float()
            efficiency = torch.where(real, ratio, torch.full((), -1.0, device=dev))
            order = torch.sort(efficiency, dim=1, descending=True, stable=True).indices[:, :n_p]
            chosen = torch.gather(lam, 1, order) * torch.gather(real, 1, order)
            total = chosen.to(torch.float64).sum(dim=1) / max(n_p, 1)
            scores[members] = total.clamp(0.0, 1.0).cpu().numpy()
    return scores


def _select(flat: "torch.Tensor", n_r: int) -> "torch.Tensor":
    """Positions of the n_r largest entries of each row, ties to the lowest position,
    in increasing order (the rule of :func:`extractors.mcc.consolidation.select_pairs`)."""
    torch = importlib.import_module("torch")
    m, size = flat.shape
    if n_r >= size:
        return torch.arange(size, device=flat.device).expand(m, size)
    kth = torch.topk(flat, n_r, dim=1, sorted=True).values[:, n_r - 1 : n_r]
    above = flat > kth
    equal = flat == kth
    wanted = n_r - above.sum(dim=1, keepdim=True)
    chosen = above | (equal & (torch.cumsum(equal.to(torch.int32), dim=1) <= wanted))
    return torch.nonzero(chosen)[:, 1].reshape(m, n_r)


def describe_device(device: str) -> dict[str, Any]:
    """Name and memory of the device (recorded with benchmark results)."""
    if device.startswith("cuda") and cuda_available():
        torch = importlib.import_module("torch")
        p = torch.cuda.get_device_properties(torch.device(device))
        return {"device": device, "name": p.name, "memory_gib": round(p.total_memory / 2**30, 1)}
    return {"device": device, "name": "cpu"}


