r"""Recursive rejection sampling without replacement (Jeon et al. 2024, RSD; Sequoia's SpecTree).

Convention: p = target, q = draft, last axis = vocabulary; k distinct drafts by successive sampling.
Stage j uses q_j = q(. | tokens not yet drafted) (:func:`~spechub_theory.draft_laws.conditional_law`):
accept x_j with probability min(1, p_j(x_j)/q_j(x_j)); on rejection p_{j+1} = (p_j - q_j)_+ / TV.
Source: theory.md 4.3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._sorted import SortedCoverage, SortedPair, blockwise
from ..distributions import check_k, check_pq
from ..draft_laws import WOR, conditional_law
from .base import NodeRule, normalise_residual, recursive_rule, sum_of_others

__all__ = ["NAME", "LAW", "FIXED_K", "rule", "acceptance", "rate", "acceptance_bounded", "positional", "BoundedRate", "rate_sorted", "largest_query", "sort_window", "size_limit"]

NAME = "rrs_wor"
LAW = WOR
FIXED_K = None
#: whether ``rule(...).residual`` depends on the drafts (q_j and p_j depend on the drafts rejected before slot j); Monte Carlo uses it
RESIDUAL_DEPENDS_ON_DRAFTS = True
#: from k = 3 on the rate is a recursion over the rejected drafts (:func:`acceptance_bounded`)
RECURSION_FROM_K = 3
#: the recursion costs ~17 s per node at n = 49,152 (measured), so node tables stop above this n
RECURSION_MAX_N = 64
#: at k = 2 the residual is (r - q / s(x_1))_+: set by the first draft only (Monte Carlo's residual family)
RESIDUAL_FAMILY_K = 2


def sort_window(q, tv, k: int):
    """Largest p/q breakpoint :func:`rate_sorted` reads (k = 2: :func:`largest_query`); None for k != 2.

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
    return np.maximum(k, largest_query(q, tv)) if k == 2 else None


def size_limit(k: int):
    """Largest vocabulary at which the rate is affordable per node: :data:`RECURSION_MAX_N` for k >= 3.

    Parameters
    ----------
    k : int
        Drafts per node.

    Returns
    -------
    int or None
    """
    return RECURSION_MAX_N if k >= RECURSION_FROM_K else None


def rule(p, q, drafts) -> NodeRule:
    """Node rule for distinct drafts of shape (..., k). O(k n) per node (path dependent).

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    drafts : ndarray of int, shape (..., k)

    Returns
    -------
    NodeRule
    """
    return recursive_rule(p, q, drafts, stage_law=conditional_law)


@dataclass(frozen=True)
class BoundedRate:
    """An acceptance rate with a proven error bound: the true value is within ``error`` of ``value``.

    ``how`` says how it was computed: "closed form" (k <= 2), "exact recursion" (every branch), or
    "pruned recursion" (branches of probability <= eps bounded by [0, mass], midpoint returned).
    """

    value: np.ndarray
    error: np.ndarray
    how: str


def acceptance(p, q, k: int, *, eps: float = 0.0) -> np.ndarray:
    r"""Exact acceptance of RRS without replacement with k drafts.

    k = 1: 1 - TV. k = 2 (closed form, theory.md 4.3), with r = (p - q)_+ / TV:

    .. math:: \alpha = A(1) + \sum_{j: q_j > p_j} (q_j - p_j) \sum_{x} \min\big(r(x), q(x)/(1 - q_j)\big)

    evaluated with prefix sums over the tokens with 1 < p/q <= 1 + TV / (1 - max q), sorted once
    (O(n log n) per row at most, O(n) plus the sort of those tokens; the naive form is O(n^2)).
    1 - q_j is never a cancelling subtraction (the sum of the other entries where q_j > 1/2).
    k >= 3: recursion over the rejected tokens, O(n^{k-2} n log n) per row; with ``eps > 0`` branches of probability <= eps
    are bounded instead of followed (see :func:`acceptance_bounded`, which also returns the bound).

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int
        Drafts per node.
    eps : float, optional

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> round(float(acceptance([.3, .3, .4], [.6, .3, .1], 2)), 6)
    0.775
    """
    return acceptance_bounded(p, q, k, eps=eps).value


def acceptance_bounded(p, q, k: int, *, eps: float = 0.0) -> BoundedRate:
    """Acceptance with its error bound and method (see :class:`BoundedRate`).

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int
        Drafts per node.
    eps : float, optional

    Returns
    -------
    BoundedRate
    """
    p, q = check_pq(p, q)
    return _bounded(p, q, check_k(k, p.shape[-1], distinct=True), eps)


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
    return _bounded(p, q, k, 0.0).value


def _bounded(p, q, k, eps) -> BoundedRate:
    """:func:`acceptance_bounded` after its checks."""
    n = p.shape[-1]
    shape = np.broadcast_shapes(p.shape, q.shape)
    p2 = np.broadcast_to(p, shape).reshape(-1, n)
    q2 = np.broadcast_to(q, shape).reshape(-1, n)
    if k == 1:
        val = np.minimum(p2, q2).sum(axis=-1)
        return BoundedRate(val.reshape(shape[:-1]), np.zeros(shape[:-1]), "closed form")
    if k == 2:
        val = blockwise(_closed_form_k2, p2, q2)
        return BoundedRate(val.reshape(shape[:-1]), np.zeros(shape[:-1]), "closed form")
    vals, errs = np.empty(len(p2)), np.empty(len(p2))
    for b in range(len(p2)):
        vals[b], errs[b] = _recursive(p2[b], q2[b], np.ones(n, dtype=bool), k, 1.0, eps)
    how = "exact recursion" if not errs.any() else f"pruned recursion (eps={eps:g})"
    return BoundedRate(vals.reshape(shape[:-1]), errs.reshape(shape[:-1]), how)


def positional(p, q, k: int) -> np.ndarray:
    """P(slot j is the accepted draft), shape (..., k).

    Stage j of k-draft RRS is stage j of j-draft RRS, so the split is the difference of successive
    rates.

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
    rates = np.stack([acceptance(p, q, j) for j in range(1, k + 1)], axis=-1)
    return np.diff(rates, axis=-1, prepend=0.0)


def largest_query(q: np.ndarray, tv: np.ndarray) -> np.ndarray:
    """Per row, an upper bound on the p/q values :func:`rate_sorted` reads, for q of shape (B, n) and TV (B,).

    1 + TV / (1 - max q), with a rounding allowance (inf when 1 - max q is ~ 0). A
    :class:`SortedPair` with this ``upper`` serves the k = 2 closed form without re-sorting.

    Parameters
    ----------
    q : numpy.ndarray
    tv : numpy.ndarray

    Returns
    -------
    numpy.ndarray
    """
    total = q.sum(axis=-1)
    rest = (total - q.max(axis=-1)) * (1.0 - 1e-9) - 1e-15 * total  # <= every sum of the others
    return np.where(rest > 0, 1.0 + tv / np.where(rest > 0, rest, 1.0), np.inf)


def _closed_form_k2(p, q):
    """The k = 2 rate for rows p, q (B, n): one SortedPair whose window reaches every query."""
    return rate_sorted(SortedPair(p, q, upper=largest_query(q, np.maximum(q - p, 0.0).sum(axis=-1))))


def rate_sorted(sp: SortedPair, k: int = 2) -> np.ndarray:
    """Two-draft rate from a :class:`SortedPair` (the sort K-SEQ shares), shape (B,).

    With r = (p - q)_+ / TV, G(c) = sum_x min(r(x), c q(x)) = F_r(m) + c Qtail(m) at
    m = #{p/q <= 1 + c TV} (window prefix sums); token x rejected first (q(x) > p(x)) queries
    c_x = 1 / sum_{y != x} q(y) with weight over(x) = q(x) - p(x). The queries before the first
    breakpoint above 1 + TV share one linear piece (m0), so they add up to
    F_r(m0) sum_x over(x) + Qtail(m0) sum_x over(x) c_x: O(n) per row. The few tokens whose query
    may reach that breakpoint (q(x) >= sum q - TV / (breakpoint - 1)) or whose sum of the others
    would cancel in sum q - q(x) (q(x) > sum q / 2: the exact sum of the others is used) are
    answered one by one, O(log n) each (a query within rounding of a breakpoint may read either
    adjacent piece: G is continuous there, so the difference is of the order of the rounding). Rows whose queries pass ``sp.upper`` are re-sorted with
    an unbounded window; a one-hot q (uniform second draft) goes to the two-stage helper.

    Parameters
    ----------
    sp : SortedPair
    k : int, optional
        Drafts per node.

    Returns
    -------
    numpy.ndarray
    """
    p, q = sp.p_rows, sp.q_rows
    B, n = p.shape
    rows = np.arange(B)
    over = np.subtract(q, p)
    np.maximum(over, 0.0, out=over)  # mass of "x drafted first and rejected"
    tv = over.sum(axis=1)
    total = q.sum(axis=1)  # sum_{y != x} q(y) = total - q(x) where q(x) <= total / 2
    G = sp.coverage.with_f((sp.p - sp.q) / np.where(tv > 0, tv, 1.0)[:, None])  # r: p > q on the window
    m0 = G.count(1.0 + tv)
    nxt = np.where(m0 < sp.ratio.shape[1], sp.ratio[rows, np.minimum(m0, sp.ratio.shape[1] - 1)], np.inf)
    reach = total - tv / (nxt - 1.0)  # q(x) >= reach  <=>  1 + c_x TV >= nxt (up to rounding)
    hard = over > 0
    hard &= q >= np.minimum(reach, 0.5 * total)[:, None]
    hb, hx = np.divmod(np.flatnonzero(hard), n)  # row-major: rows ascending
    weight = over[hb, hx]
    over[hb, hx] = 0.0
    others = np.subtract(total[:, None], q)
    np.maximum(others, 0.5 * total[:, None], out=others)  # changes only tokens with over = 0 now (no 0/0)
    over_c = np.divide(over, others, out=others)
    out = 1.0 - tv + G.F[rows, m0] * over.sum(axis=1) + G.Qtail[rows, m0] * over_c.sum(axis=1)
    others_x = _others(q, total, hb, hx)
    with np.errstate(divide="ignore", invalid="ignore"):  # q one-hot (others = 0): row redone below
        c = 1.0 / others_x
        t = 1.0 + c * tv[hb]
        m = G.count(t, hb)
        out += np.bincount(hb, weights=weight * (G.F[hb, m] + c * G.Qtail[hb, m]), minlength=B)
    onehot = np.unique(hb[others_x <= 0])
    for b in onehot:  # q one-hot: uniform second draft (draft_laws)
        out[b] = _two_stage(p[b][None], q[b][None], np.ones((1, n), dtype=bool))[0]
    narrow = np.setdiff1d(hb[t > sp.upper[hb]], onehot)
    if narrow.size:
        out[narrow] = rate_sorted(sp.restricted(narrow))
    return out


def _others(q, total, rows, cols):
    """sum_{y != x} q(y) at the tokens (rows, cols): total - q(x) where q(x) <= total / 2, else
    the sum of the other entries (never a subtraction that cancels)."""
    qx = q[rows, cols]
    others = total[rows] - qx
    big = qx > 0.5 * total[rows]
    if big.any():
        rb, xb = rows[big], cols[big]
        others[big] = np.where(np.arange(q.shape[1]) == xb[:, None], 0.0, q[rb]).sum(axis=1)
    return others


def _two_stage(p1, q, allowed):
    """Two-draft rate for rows of current target p1 (B, n), original q, allowed tokens (not yet drafted)."""
    qE = np.where(allowed, q, 0.0)
    sE = qE.sum(axis=-1, keepdims=True)
    N = allowed.sum(axis=-1, keepdims=True)
    qj = np.where(sE > 0, qE / np.where(sE > 0, sE, 1.0), allowed / N)
    first = np.minimum(p1, qj).sum(axis=-1)
    over = np.maximum(qj - p1, 0.0)  # mass of "x drafted and rejected"
    r = normalise_residual(p1 - qj, p1)
    # remaining mass after also removing x: prefix + suffix sums (no 1 - q(x) cancellation)
    m = sum_of_others(qE)
    uniform_next = np.minimum(r, 1.0 / np.maximum(N - 1, 1)).sum(axis=-1, keepdims=True)  # r(x) = 0 there
    regular = (sE > 0) & (m > 0)
    G = SortedCoverage(r, qE)
    second = np.where(regular, G(np.where(regular, 1.0 / np.where(m > 0, m, 1.0), 0.0)), uniform_next)
    return first + (over * second).sum(axis=-1)


def _recursive(p1, q, allowed, k, mass, eps):
    """(value, error) of k-draft RRS w/o replacement from target p1 with drafts from q on `allowed`."""
    if k == 2:
        return float(_two_stage(p1[None], q[None], allowed[None])[0]), 0.0
    qj = conditional_law(q, np.flatnonzero(~allowed))
    value = float(np.minimum(p1, qj).sum())
    over = np.maximum(qj - p1, 0.0)
    r = normalise_residual(p1 - qj, p1)
    error = 0.0
    for x in np.argsort(-over, kind="stable"):
        w = over[x]
        if w <= 0:
            break
        if mass * w <= eps:  # the branch's rate is in [0, 1]: count the midpoint, bound the rest
            value += w / 2
            error += w / 2
            continue
        nxt = allowed.copy()
        nxt[x] = False
        v, e = _recursive(r, q, nxt, k - 1, mass * w, eps)
        value += w * v
        error += w * e
    return value, error
