r"""SpecTr's k-sequential draft selection (K-SEQ) with the best valid rho (Sun et al. 2023).

Convention: p = target, q = draft, last axis = vocabulary (SpecTr writes p for the draft: letters
swapped here). k i.i.d. drafts; accept x_j with probability min(1, p(x_j)/(rho q(x_j))), stop at
the first acceptance; if all are rejected emit y ~ p_res, with
beta(rho) = sum_x min(q(x), p(x)/rho) and p_res proportional to p - min(q, p/rho) (1 - (1-beta)^k)/beta.
Source: theory.md 2.4.
"""

from __future__ import annotations

import numpy as np

from ._sorted import SortedPair, blockwise, first_true
from ..distributions import check_k, check_pq
from ..draft_laws import IID
from .base import NodeRule, normalise_residual, ratio_accept, slots_from_sequential, take_last

__all__ = ["NAME", "LAW", "FIXED_K", "rule", "acceptance", "rate", "optimal_rho", "positional", "rate_sorted", "sort_window"]

NAME = "kseq"
LAW = IID
FIXED_K = None
#: whether ``rule(...).residual`` depends on the drafts (the residual depends on (p, q, k) only); Monte Carlo uses it
RESIDUAL_DEPENDS_ON_DRAFTS = False


def sort_window(q, tv, k: int):
    """Largest p/q breakpoint :func:`rate_sorted` reads: A(c) on [1, k]; None for k = 1 (no sort).

    Parameters
    ----------
    q : array_like, shape (..., n)
    tv : numpy.ndarray
        Total variation TV(p, q) of each row.
    k : int
        Drafts per node.

    Returns
    -------
    numpy.ndarray, int or None
    """
    return k if k > 1 else None


#: round-off allowance in the validity test: A(rho) is a sum of n terms, exact only to ~1e-16 n, and
#: near rho = 1 an error e in A moves the exact root by sqrt(e); the residual stays >= -1e-14
_VALID_ATOL = 1e-14
#: bisection steps inside one linear piece of A: 2^-64 k is below float64 resolution
_BISECTION_STEPS = 64


def optimal_rho(p, q, k: int) -> np.ndarray:
    r"""The smallest valid :math:`\rho \in [1, k]`.

    The root of :math:`1 - (1 - \beta)^k = \rho\beta` with :math:`\beta(\rho) = A(\rho)/\rho`.

    A is piecewise linear with breakpoints at the ratios p/q; validity is monotone in rho (beta
    decreases, A increases), so a bisection over the breakpoints in (1, k), sorted once (the tokens
    with 1 < p/q < k only: O(n + w log w) per row for w of them), finds the first valid one in
    O(log w) steps. That brackets the root in one linear piece, where 64 vectorised bisection
    steps reach float64 resolution.

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int
        Drafts per node.

    Returns
    -------
    numpy.ndarray
    """
    p, q = check_pq(p, q)
    k = check_k(k)
    sp = SortedPair(p, q, upper=k)
    return _rho_sorted(sp, k)[0].reshape(sp.lead)


def acceptance(p, q, k: int) -> np.ndarray:
    r"""Exact acceptance :math:`1 - (1 - \beta(\rho^*))^k = A(\rho^*)` of K-SEQ at the best valid rho.

    O(n log n) per row at most (one sort of the tokens with 1 < p/q < k; see
    :func:`optimal_rho`). Source: theory.md 2.4.

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int
        Drafts per node.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> round(float(acceptance([.4, .4, .2], [.7, .2, .1], 2)), 6)
    0.825367
    """
    p, q = check_pq(p, q)
    return rate(p, q, check_k(k))


def rate(p, q, k: int) -> np.ndarray:
    """Rate on validated input: :func:`acceptance` without its checks.

    For arrays already validated by :func:`~spechub_theory.distributions.check_pq` and a valid k
    (callers that validate once, like ``acceptance_rates``).

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int
        Drafts per node.

    Returns
    -------
    numpy.ndarray
    """
    return blockwise(lambda pb, qb: rate_sorted(SortedPair(pb, qb, upper=k), k), p, q)


def rate_sorted(sp: SortedPair, k: int) -> np.ndarray:
    """K-SEQ acceptance from a :class:`SortedPair` (shared sort with RRS w/o), shape (B,).

    Its window must reach k (it is re-sorted where it does not).

    Parameters
    ----------
    sp : SortedPair
    k : int
        Drafts per node.

    Returns
    -------
    numpy.ndarray
    """
    rho, A = _rho_sorted(sp, k)
    beta = A / rho
    return 1.0 - (1.0 - beta) ** k


def _rho_sorted(sp: SortedPair, k: int):
    """(rho*, A(rho*)) per row from a SortedPair whose window reaches k."""
    if np.any(sp.upper < k):
        sp = sp.restricted(slice(None), np.maximum(sp.upper, k))
    G, ratio = sp.coverage, sp.ratio
    F, Qt = G.F, G.Qtail
    B = ratio.shape[0]
    rows = np.arange(B)
    first = G.count(np.ones(B))  # breakpoints at p/q = 1 (p > q by an ulp) are not in (1, k)
    if k == 1:
        return np.ones(B), F[rows, first] + Qt[rows, first]
    end = G.count(np.full(B, float(k)), side="left")

    def valid_at_breakpoint(i):
        c = ratio[rows, i]
        A = F[rows, i + 1] + c * Qt[rows, i + 1]
        return _valid(A, c, k)

    with np.errstate(invalid="ignore"):  # pads (p/q = inf) are probed in rows already bracketed
        j = first_true(valid_at_breakpoint, first, end)  # the first valid breakpoint in (1, k), or end
    has = j < end
    upper = np.where(has, ratio[rows, np.minimum(j, end - 1)], float(k))
    lower = np.where(j > 0, ratio[rows, np.maximum(j - 1, 0)], 1.0)
    lower = np.minimum(np.maximum(1.0, lower), upper)
    Fm, Qm = F[rows, j], Qt[rows, j]  # A(rho) = Fm + rho Qm on (lower, upper)
    lo, hi = lower, upper
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        ok = _valid(Fm + mid * Qm, mid, k)
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return hi, Fm + hi * Qm


def _valid(A, rho, k):
    """Validity of rho (the residual of K-SEQ is >= 0): 1 - (1 - A/rho)^k <= A (+ round-off)."""
    return 1.0 - (1.0 - A / rho) ** k <= A + _VALID_ATOL


def positional(p, q, k: int) -> np.ndarray:
    """P(slot j accepted) = beta (1 - beta)^j, shape (..., k).

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int
        Drafts per node.

    Returns
    -------
    numpy.ndarray
    """
    p, q = check_pq(p, q)
    beta = _beta(p, q, optimal_rho(p, q, k))[..., None]
    return beta * (1.0 - beta) ** np.arange(k)


def rule(p, q, drafts) -> NodeRule:
    """Node rule of K-SEQ for i.i.d. drafts of shape (..., k). O(n log n) per distinct (p, q).

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    drafts : ndarray of int, shape (..., k)

    Returns
    -------
    NodeRule
    """
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
