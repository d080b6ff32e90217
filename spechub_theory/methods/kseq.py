r"""SpecTr's k-sequential draft selection (K-SEQ) with the best valid rho (Sun et al. 2023).

Convention: p = target, q = draft, last axis = vocabulary (SpecTr writes p for the draft: letters
swapped here). k i.i.d. drafts; accept x_j with probability min(1, p(x_j)/(rho q(x_j))), stop at
the first acceptance; if all are rejected emit y ~ p_res, with
beta(rho) = sum_x min(q(x), p(x)/rho) and p_res proportional to p - min(q, p/rho) (1 - (1-beta)^k)/beta.
Source: theory.md 2.4.
"""

from __future__ import annotations

import numpy as np

from ..coverage import SortedCoverage
from ..distributions import check_k, check_pq
from ..draft_laws import IID
from .base import NodeRule, normalise_residual, slots_from_sequential, take_last
from .single import ratio_accept

__all__ = ["NAME", "LAW", "FIXED_K", "rule", "acceptance", "optimal_rho", "positional"]

NAME = "kseq"
LAW = IID
FIXED_K = None

#: bisection steps on rho in [1, k]: 2^-64 k is below float64 resolution
_BISECTION_STEPS = 64


def optimal_rho(p, q, k: int, *, coverage: SortedCoverage | None = None) -> np.ndarray:
    r"""The smallest valid :math:`\rho \in [1, k]`: the root of :math:`1 - (1 - \beta)^k = \rho\beta`
    with :math:`\beta(\rho) = A(\rho)/\rho`, by bisection on the valid side.

    O(n log n) per row for one sort, then O(log n) per bisection step (64 steps).
    """
    p, q = check_pq(p, q)
    k = check_k(k)
    shape = np.broadcast_shapes(p.shape, q.shape)
    n = shape[-1]
    if coverage is None:
        coverage = SortedCoverage(np.broadcast_to(p, shape).reshape(-1, n), np.broadcast_to(q, shape).reshape(-1, n))
    B = coverage.F.shape[0]
    lo, hi = np.ones(B), np.full(B, float(k))
    if k > 1:
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            beta = coverage(mid) / mid
            valid = 1.0 - (1.0 - beta) ** k <= mid * beta
            hi = np.where(valid, mid, hi)
            lo = np.where(valid, lo, mid)
    return hi.reshape(shape[:-1])


def acceptance(p, q, k: int) -> np.ndarray:
    r"""Exact acceptance :math:`1 - (1 - \beta(\rho^*))^k = A(\rho^*)` of K-SEQ at the best valid rho.

    O(n log n) per row (one sort; the bisection reuses it). Source: theory.md 2.4.

    Examples
    --------
    >>> round(float(acceptance([.4, .4, .2], [.7, .2, .1], 2)), 6)
    0.825367
    """
    p, q = check_pq(p, q)
    k = check_k(k)
    rho = optimal_rho(p, q, k)
    beta = _beta(p, q, rho)
    return 1.0 - (1.0 - beta) ** k


def positional(p, q, k: int) -> np.ndarray:
    """P(slot j accepted) = beta (1 - beta)^j, shape (..., k)."""
    p, q = check_pq(p, q)
    beta = _beta(p, q, optimal_rho(p, q, k))[..., None]
    return beta * (1.0 - beta) ** np.arange(k)


def rule(p, q, drafts) -> NodeRule:
    """Node rule of K-SEQ for i.i.d. drafts of shape (..., k). O(n log n) per distinct (p, q)."""
    p, q = check_pq(p, q)
    drafts = np.asarray(drafts, dtype=np.int64)
    k = drafts.shape[-1]
    rho = optimal_rho(p, q, k)[..., None]
    beta = _beta(p, q, rho[..., 0])[..., None]
    alpha = 1.0 - (1.0 - beta) ** k
    accepted_mass = np.minimum(q, p / rho) * np.where(beta > 0, alpha / np.where(beta > 0, beta, 1.0), 0.0)
    residual = normalise_residual(p - accepted_mass, p)
    cond = ratio_accept(take_last(p, drafts), rho * take_last(q, drafts))
    return NodeRule(accept=slots_from_sequential(cond), residual=residual)


def _beta(p, q, rho):
    return np.minimum(q, p / rho[..., None]).sum(axis=-1)
