"""Local Similarity Sort with Relaxation (LSS-R), batched over many comparisons.

From the matrix of local (cylinder) similarities of two templates, LSS-R takes the
n_R = min(n_A, n_B) most similar cylinder pairs, then lets each pair's similarity be
supported by the pairs that are geometrically compatible with it (relaxation): two
pairs are compatible when the distance between the two minutiae, their direction
difference and the direction of the segment joining them agree in both templates.
After n_rel iterations the n_P pairs whose similarity held up best (highest ratio of
relaxed to initial similarity, the "efficiency") are averaged into the global score.

All functions work on a batch of comparisons of the same shape, one per row, and every
row is computed independently of the others, so a comparison gives exactly the same
score alone or inside any batch.
"""

from __future__ import annotations

import numpy as np


def sigmoid(v: np.ndarray | float, mu: float, tau: float) -> np.ndarray:
    """Z(v; mu, tau) = 1 / (1 + exp(-tau (v - mu)))."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-tau * (np.asarray(v) - mu)))


def n_pairs(n_min: np.ndarray | int, min_np: int, max_np: int, mu_p: float, tau_p: float) -> np.ndarray | int:
    """n_P = minNP + round(Z(min(nA, nB); mu_P, tau_P) * (maxNP - minNP)), elementwise."""
    z = sigmoid(np.asarray(n_min, dtype=np.float64), mu_p, tau_p)
    n_p = min_np + np.floor(z * (max_np - min_np) + 0.5).astype(np.int64)
    return int(n_p) if np.ndim(n_p) == 0 else n_p


def select_pairs(gamma: np.ndarray, n_r: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions and values of the ``n_r`` largest entries of each row of a (G, L) batch.

    Ties at the n_r-th value go to the lowest positions, and positions come in increasing
    order, so the selection (and through it the relaxation) is defined by the values
    alone, not by the internals of a partial sort.
    """
    g, size = gamma.shape
    if n_r >= size:
        idx = np.broadcast_to(np.arange(size), (g, size))
    else:
        kth = -np.partition(-gamma, n_r - 1, axis=1)[:, n_r - 1 : n_r]
        above = gamma > kth
        equal = gamma == kth
        wanted = n_r - above.sum(axis=1, keepdims=True)
        chosen = above | (equal & (np.cumsum(equal, axis=1) <= wanted))
        idx = np.nonzero(chosen)[1].reshape(g, n_r)
    return idx, np.take_along_axis(gamma, idx, axis=1)


def _wrap32(angle: np.ndarray) -> np.ndarray:
    """Angle to [-pi, pi] in place (float32; inputs within a few turns)."""
    turns = np.rint(angle * np.float32(1 / (2 * np.pi)))
    angle -= turns * np.float32(2 * np.pi)
    return angle


def relaxed_scores(
    delta: np.ndarray,
    a_pairs: np.ndarray,
    b_pairs: np.ndarray,
    lam0: np.ndarray,
    mask: np.ndarray,
    n_real: np.ndarray,
    n_p: np.ndarray,
    w_r: float,
    n_rel: int,
    rho_mu: tuple[float, float, float],
    rho_tau: tuple[float, float, float],
) -> np.ndarray:
    """Global scores of a batch of G comparisons, each with up to P selected pairs.

    For pairs t = (a_t, b_t): ``delta`` (G, P) is the rotation theta(a_t) - theta(b_t)
    that maps the B minutia onto the A one; ``a_pairs`` / ``b_pairs`` (G, P, P) hold
    the distance a_t-a_k (real part) and the direction of the segment a_t->a_k
    (imaginary part), and the same in B; ``lam0`` (G, P) the local similarities.
    ``mask`` (G, P) marks the real pairs (the first ``n_real`` of each row; the others
    are padding and take no part); ``n_p`` (G,) is n_P of each row.

    Compatibility of pairs t and k (Cappelli et al., eq. 24-27) is the product of three
    sigmoids of: d1 = |d(a_t,a_k) - d(b_t,b_k)|; d2 = |dphi(dphi(theta a_t, theta a_k),
    dphi(theta b_t, theta b_k))| = |dphi(delta_t, delta_k)|; d3 = the difference between
    the segment's direction relative to the minutia in A and in B, = |dphi(delta_t,
    dir(a_t->a_k) - dir(b_t->b_k))|. The array arguments may be overwritten.
    """
    g, n = lam0.shape
    if n == 0:
        return np.zeros(g)
    f = np.float32
    # Each sigmoid Z(d; mu, tau) = 1 / (1 + exp(-tau (d - mu))); their product is
    # 1 / ((1 + e1)(1 + e2)(1 + e3)).
    diff = np.subtract(a_pairs, b_pairs, out=a_pairs)
    d1 = np.abs(diff.real)
    denom = _one_plus_exp(d1, rho_mu[0], rho_tau[0])
    d2 = _wrap32(delta[:, :, None] - delta[:, None, :])
    np.abs(d2, out=d2)
    denom *= _one_plus_exp(d2, rho_mu[1], rho_tau[1])
    d3 = np.subtract(delta[:, :, None], diff.imag)
    d3 = _wrap32(d3)
    np.abs(d3, out=d3)
    denom *= _one_plus_exp(d3, rho_mu[2], rho_tau[2])
    rho = np.reciprocal(denom, out=denom)
    rho *= mask[:, :, None] & mask[:, None, :]
    rho[:, np.arange(n), np.arange(n)] = 0.0

    lam = lam0.astype(f)
    support = ((1.0 - w_r) / np.maximum(n_real - 1, 1)).astype(f)[:, None]
    for _ in range(int(n_rel)):
        lam = f(w_r) * lam + support * np.einsum("gtk,gk->gt", rho, lam)
    # The n_P pairs with the highest efficiency (relaxed / initial similarity).
    real = mask & (lam0 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        efficiency = np.where(real, lam / lam0, f(-1))
    order = np.argsort(-efficiency, axis=1, kind="stable")
    rank_ok = np.arange(n)[None, :] < n_p[:, None]
    chosen = np.take_along_axis(lam, order, axis=1) * (rank_ok & np.take_along_axis(real, order, axis=1))
    return chosen.astype(np.float64).sum(axis=1) / np.maximum(n_p, 1)


def _one_plus_exp(d: np.ndarray, mu: float, tau: float) -> np.ndarray:
    """1 + exp(-tau (d - mu)), computed in place in ``d``.

    The exponent is capped at 25 (the sigmoid is then below 1e-10 anyway), so that
    neither exp nor the product of three such terms overflows float32, which would
    send them down a slow path.
    """
    d -= np.float32(mu)
    d *= np.float32(-tau)
    np.minimum(d, np.float32(25), out=d)
    np.exp(d, out=d)
    d += np.float32(1)
    return d
