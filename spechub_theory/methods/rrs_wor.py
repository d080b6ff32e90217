r"""Recursive rejection sampling without replacement (Jeon et al. 2024, RSD; Sequoia's SpecTree).

Convention: p = target, q = draft, last axis = vocabulary; k distinct drafts by successive sampling.
Stage j uses q_j = q(. | tokens not yet drafted) (:func:`~spechub_theory.draft_laws.conditional_law`):
accept x_j with probability min(1, p_j(x_j)/q_j(x_j)); on rejection p_{j+1} = (p_j - q_j)_+ / TV.
Source: theory.md 4.3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..coverage import SortedCoverage, SortedPair
from ..distributions import check_k, check_pq
from ..draft_laws import WOR, conditional_law
from .base import NodeRule, normalise_residual, slots_from_sequential, take_last
from .single import ratio_accept

__all__ = ["NAME", "LAW", "FIXED_K", "rule", "acceptance", "acceptance_bounded", "positional", "BoundedRate", "rate_sorted"]

NAME = "rrs_wor"
LAW = WOR
FIXED_K = None
#: whether ``rule(...).residual`` depends on the drafts (q_j and p_j depend on the drafts rejected before slot j); Monte Carlo uses it
RESIDUAL_DEPENDS_ON_DRAFTS = True


def rule(p, q, drafts) -> NodeRule:
    """Node rule for distinct drafts of shape (..., k). O(k n) per node (path dependent)."""
    p, q = check_pq(p, q)
    drafts = np.asarray(drafts, dtype=np.int64)
    k = drafts.shape[-1]
    lead = np.broadcast_shapes(p.shape[:-1], q.shape[:-1], drafts.shape[:-1])
    target = np.broadcast_to(p, lead + p.shape[-1:])
    cond = []
    for j in range(k):
        qj = conditional_law(q, np.broadcast_to(drafts[..., :j], lead + (j,)))
        x = drafts[..., j : j + 1]
        cond.append(ratio_accept(take_last(target, x), take_last(qj, x)))
        target = normalise_residual(target - qj, target)
    return NodeRule(accept=slots_from_sequential(np.concatenate(cond, axis=-1)), residual=target)


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

    evaluated with one sort of p/q per row and prefix sums (O(n log n) per row; the naive form is
    O(n^2)). 1 - q_j is computed as the sum of the other entries. k >= 3: recursion over the
    rejected tokens, O(n^{k-2} n log n) per row; with ``eps > 0`` branches of probability <= eps
    are bounded instead of followed (see :func:`acceptance_bounded`, which also returns the bound).

    Examples
    --------
    >>> round(float(acceptance([.3, .3, .4], [.6, .3, .1], 2)), 6)
    0.775
    """
    return acceptance_bounded(p, q, k, eps=eps).value


def acceptance_bounded(p, q, k: int, *, eps: float = 0.0) -> BoundedRate:
    """Acceptance with its error bound and method (see :class:`BoundedRate`)."""
    p, q = check_pq(p, q)
    n = p.shape[-1]
    k = check_k(k, n, distinct=True)
    shape = np.broadcast_shapes(p.shape, q.shape)
    p2 = np.broadcast_to(p, shape).reshape(-1, n)
    q2 = np.broadcast_to(q, shape).reshape(-1, n)
    if k == 1:
        val = np.minimum(p2, q2).sum(axis=-1)
        return BoundedRate(val.reshape(shape[:-1]), np.zeros(shape[:-1]), "closed form")
    if k == 2:
        val = rate_sorted(SortedPair(p2, q2))
        return BoundedRate(val.reshape(shape[:-1]), np.zeros(shape[:-1]), "closed form")
    vals, errs = np.empty(len(p2)), np.empty(len(p2))
    for b in range(len(p2)):
        vals[b], errs[b] = _recursive(p2[b], q2[b], np.ones(n, dtype=bool), k, 1.0, eps)
    how = "exact recursion" if not errs.any() else f"pruned recursion (eps={eps:g})"
    return BoundedRate(vals.reshape(shape[:-1]), errs.reshape(shape[:-1]), how)


def positional(p, q, k: int) -> np.ndarray:
    """P(slot j is the accepted draft), shape (..., k): stage j of k-draft RRS is stage j of
    j-draft RRS, so the split is the difference of successive rates."""
    rates = np.stack([acceptance(p, q, j) for j in range(1, k + 1)], axis=-1)
    return np.diff(rates, axis=-1, prepend=0.0)


def rate_sorted(sp: SortedPair) -> np.ndarray:
    """Two-draft rate from rows sorted by p/q (the sort K-SEQ shares), shape (B,).

    With r = (p - q)_+ / TV sorted like p/q, G(c) = sum min(r, c q) is read off prefix sums at
    m = #{p/q <= 1 + c TV}; the queries c_x = 1 / sum_{y != x} q(y) for the rejected-first tokens
    (p/q < 1) are answered in one vectorised pass when they fall before the first breakpoint above
    1 + TV (the common case: c_x = 1 + O(q_x)), by a binary search otherwise. O(n log n) per row.
    """
    ratio, ps, qs = sp.ratio, sp.p, sp.q
    Qt = sp.coverage.Qtail
    B, n = ratio.shape
    over = np.maximum(qs - ps, 0.0)  # (B, n) mass of "x drafted first and rejected"
    tv = over.sum(axis=-1)
    first = 1.0 - tv
    r = np.maximum(ps - qs, 0.0) / np.where(tv > 0, tv, 1.0)[:, None]
    Fr = np.zeros((B, n + 1))
    np.cumsum(r, axis=-1, out=Fr[:, 1:])
    before = np.zeros((B, n))
    np.cumsum(qs[:, :-1], axis=-1, out=before[:, 1:])
    others = before + Qt[:, 1:]  # sum_{y != x} q(y), no cancellation
    out = first.copy()
    rows = np.arange(B)
    active = over > 0  # only tokens drafted-and-rejected first contribute (they lead the p/q order)
    with np.errstate(divide="ignore"):
        c = np.where(active, 1.0 / np.where(others > 0, others, np.inf), 0.0)
    t = 1.0 + c * tv[:, None]  # the query m(t) = #{p/q <= t}
    # Most queries have c_x = 1 + O(q_x) and fall before the first breakpoint above 1 + TV: then
    # m(t) = m0 exactly, read off in one vectorised pass; the rest get a binary search each.
    m0 = (ratio <= (1.0 + tv)[:, None]).sum(axis=-1)
    nxt = np.where(m0 < n, ratio[rows, np.minimum(m0, n - 1)], np.inf)
    easy = active & (t >= (1.0 + tv)[:, None]) & (t < nxt[:, None])
    G = np.where(easy, Fr[rows, m0][:, None] + c * Qt[rows, m0][:, None], 0.0)
    out += (over * G).sum(axis=-1)
    hard_rows = np.flatnonzero((active & ~easy).any(axis=-1) & (tv > 0))
    for b in hard_rows:
        if (active[b] & (others[b] <= 0)).any():  # q one-hot: uniform second draft (draft_laws)
            out[b] = _two_stage(ps[b][None], qs[b][None], np.ones((1, n), dtype=bool))[0]
            continue
        x = np.flatnonzero(active[b] & ~easy[b])
        idx = np.searchsorted(ratio[b], t[b, x], side="right")
        out[b] += (over[b, x] * (Fr[b, idx] + c[b, x] * Qt[b, idx])).sum()  # not np.dot: BLAS threads stall
    return out


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
    m = _sum_of_others(qE)
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


def _sum_of_others(w: np.ndarray) -> np.ndarray:
    """``sum_{y != x} w(y)`` for every x of each row, as prefix + suffix sums (shifted, never by
    subtracting w(x) from the total, which cancels when w(x) is close to the total)."""
    zeros = np.zeros(w.shape[:-1] + (1,))
    before = np.concatenate([zeros, np.cumsum(w, axis=-1)[..., :-1]], axis=-1)
    after = np.concatenate([np.cumsum(w[..., ::-1], axis=-1)[..., ::-1][..., 1:], zeros], axis=-1)
    return before + after
