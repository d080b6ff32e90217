r"""The optimal verifier for k i.i.d. drafts: select one draft with law q~, then speculative sampling.

Convention: p = target, q = draft, last axis = vocabulary; k i.i.d. drafts x_1..x_k ~ q.
Source: theory.md 2.3 (the cut, alpha*_iid); docs/optimal-verifier.md (construction and proof).

One verification: draw a level u ~ U(0, 1); the candidates are the drafts in the region (B or C)
of the highest-ranked draft x_top (largest p/q) whose largest gap level up to x_top is <= u; pick
one candidate instance uniformly; accept it with probability min(1, p/q~), otherwise emit
y ~ (p - q~)_+. The selected draft has law q~ (:mod:`.optimal_plan`), so the output law is p and
the acceptance is :math:`\sum_x \min(p, \tilde q) = \alpha^*_{iid}`, the optimum of the OT LP.
"""

from __future__ import annotations

import threading

import numpy as np

from ._sorted import SortedCoverage, SortedPair, _sorted_window, blockwise
from ..distributions import check_k, check_pq
from ..draft_laws import IID
from .base import NodeRule, Verification
from .optimal_plan import OptimalPlan, cut_values, optimal_plan

__all__ = ["NAME", "LAW", "FIXED_K", "rule", "acceptance", "rate", "positional", "plan", "selection_probabilities",
           "verify_plan", "OptimalPlan", "rate_sorted"]

NAME = "optimal"
LAW = IID
FIXED_K = None
#: whether ``rule(...).residual`` depends on the drafts ((p - q~)_+ depends on (p, q, k) only); Monte Carlo uses it
RESIDUAL_DEPENDS_ON_DRAFTS = False

#: plans kept for repeated (p, q, k) (Monte Carlo chunks, enumeration): a few nodes' worth
_CACHE_SIZE = 8
_cache: dict = {}
_cache_lock = threading.Lock()


def plan(p, q, k: int) -> OptimalPlan:
    """The per-node preparation for one pair p, q of shape (n,) (validated; cached by content).

    See :func:`~spechub_theory.methods.optimal_plan.optimal_plan` for the construction, cost and
    numerics.

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int
        Drafts per node.

    Returns
    -------
    OptimalPlan

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``p`` and ``q`` must have shape (n,) for one
        plan.
    """
    p, q = check_pq(p, q)
    if p.ndim != 1 or q.ndim != 1:
        raise ValueError(f"`p` and `q` must have shape (n,) for one plan; got {p.shape} and {q.shape}.")
    k = check_k(k)
    key = (k, hash(p.tobytes()), hash(q.tobytes()))
    found = _cache.get(key)
    if found is None:
        found = optimal_plan(p, q, k)
        with _cache_lock:  # plans may be built in threads (empirical.optimal_torch)
            if len(_cache) >= _CACHE_SIZE:
                _cache.pop(next(iter(_cache)), None)
            _cache[key] = found
    return found


def selection_probabilities(plan: OptimalPlan, drafts) -> np.ndarray:
    r"""P(slot j is the selected draft | drafts), integrated over the level u exactly, (..., k).

    With :math:`g_j` the largest gap level between x_j and x_top (0 for copies of x_top, 1 for a
    draft in the other region or with q = 0) sorted as :math:`g_{(1)} \le \dots \le g_{(k)}`,
    :math:`g_{(k+1)} = 1`, the candidate set on :math:`u \in [g_{(i)}, g_{(i+1)})` has i members, so
    :math:`P(j) = \sum_{i \ge i_j} (g_{(i+1)} - g_{(i)})/i`. O(k log k) per node (O(1) range maxima).

    Parameters
    ----------
    plan : OptimalPlan
    drafts : ndarray of int, shape (..., k)

    Returns
    -------
    numpy.ndarray
    """
    drafts = np.asarray(drafts, dtype=np.int64)
    k = drafts.shape[-1]
    pos = plan.rank[drafts]
    valid = pos >= 0
    top = pos.max(axis=-1, keepdims=True)
    g = np.where(valid, plan.max_gap_level(np.where(valid, pos, top), np.broadcast_to(top, pos.shape)), 1.0)
    g = np.where(valid & ~_same_region(plan, pos, top), 1.0, g)
    order = np.argsort(g, axis=-1, kind="stable")
    gs = np.take_along_axis(g, order, axis=-1)
    steps = np.diff(np.concatenate([gs, np.ones(gs.shape[:-1] + (1,))], axis=-1), axis=-1)
    share = np.cumsum((steps / np.arange(1, k + 1))[..., ::-1], axis=-1)[..., ::-1]
    out = np.empty_like(share)
    np.put_along_axis(out, order, share, axis=-1)
    return np.where((top >= 0), out, 0.0)


def verify_plan(plan: OptimalPlan, drafts, u) -> Verification:
    """One verification per node straight from the plan, with explicit uniforms u (..., k + 1).

    ``u[..., 0]`` is the level (k >= 2); ``u[..., 1]`` (``u[..., 0]`` for k = 1) picks the candidate
    instance, c candidates as floor(c v), and its fractional part c v - floor(c v) (a fresh uniform)
    tests min(1, p/q~); ``u[..., k]`` samples the residual by inverse CDF. O(k + log n) per node.
    Equal in law to :func:`~spechub_theory.verification.verify` (the node rule integrates u).

    Parameters
    ----------
    plan : OptimalPlan
    drafts : ndarray of int, shape (..., k)
    u : ndarray

    Returns
    -------
    Verification

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``u`` must have k + 1 = ... uniforms per node on
        its last axis.
    """
    drafts = np.asarray(drafts, dtype=np.int64)
    u = np.asarray(u, dtype=np.float64)
    k = drafts.shape[-1]
    if u.shape[-1] != k + 1:
        raise ValueError(f"`u` must have k + 1 = {k + 1} uniforms per node on its last axis; got {u.shape[-1]}.")
    pos = plan.rank[drafts]
    top = pos.max(axis=-1, keepdims=True)
    g = plan.max_gap_level(np.maximum(pos, 0), np.broadcast_to(top, pos.shape))
    candidate = (pos >= 0) & _same_region(plan, pos, top) & (g <= u[..., :1])
    count = candidate.sum(axis=-1)
    v = u[..., 1] if k >= 2 else u[..., 0]
    scaled = v * count
    pick = np.minimum(np.floor(scaled).astype(np.int64), np.maximum(count - 1, 0))
    slot = np.argmax(np.cumsum(candidate, axis=-1) > pick[..., None], axis=-1)
    x = np.take_along_axis(drafts, slot[..., None], axis=-1)[..., 0]
    accepted = (count > 0) & (scaled - pick < plan.accept_ratio[x])
    cdf = np.cumsum(plan.residual)
    y = np.minimum(np.searchsorted(cdf, u[..., k] * cdf[-1], side="right"), plan.n - 1)
    return Verification(token=np.where(accepted, x, y).astype(np.int64), slot=np.where(accepted, slot, -1).astype(np.int64))


def rule(p, q, drafts) -> NodeRule:
    """Node rule: accept[j] = P(select j | drafts) min(1, p(x_j)/q~(x_j)), residual (p - q~)_+.

    One plan per distinct row of (p, q) (O(n log n), cached), then O(k log k) per node.

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
    if p.ndim == 1 and q.ndim == 1:
        pl = plan(p, q, k)
        return NodeRule(accept=selection_probabilities(pl, drafts) * pl.accept_ratio[drafts], residual=pl.residual)
    lead = np.broadcast_shapes(p.shape[:-1], q.shape[:-1], drafts.shape[:-1])
    n = p.shape[-1]
    pb, qb = (np.broadcast_to(x, lead + (n,)).reshape(-1, n) for x in (p, q))
    db = np.broadcast_to(drafts, lead + (k,)).reshape(-1, k)
    accept, residual = np.empty(db.shape), np.empty(pb.shape)
    for i in range(len(pb)):
        pl = plan(pb[i], qb[i], k)
        accept[i] = selection_probabilities(pl, db[i]) * pl.accept_ratio[db[i]]
        residual[i] = pl.residual
    return NodeRule(accept=accept.reshape(lead + (k,)), residual=residual.reshape(lead + (n,)))


def acceptance(p, q, k: int) -> np.ndarray:
    r"""Exact acceptance of ``optimal``: the i.i.d. optimum.

    The optimum :math:`\alpha^*_{iid} = \min_i [P_i + 1 - S_i^k]` over the prefixes of the
    p/q-ascending order (theory.md 2.3). O(n log n) per row.

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
    >>> round(float(acceptance([.3, .3, .4], [.6, .3, .1], 2)), 6)      # theory.md 6.1, E2
    0.79
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
    return blockwise(lambda pb, qb: _rate_rows(pb, qb, k), p, q)


def sort_window(q, tv, k: int):
    """Largest p/q breakpoint :func:`rate_sorted` reads.

    The last token of the cut's side B has r <= k, so the window (1, k] serves; None for k = 1
    (closed form, no sort).

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


def rate_sorted(sp: SortedPair, k: int) -> np.ndarray:
    r"""The i.i.d. optimum alpha*_iid from a shared sort, shape (B,).

    From a :class:`~spechub_theory.methods._sorted.SortedPair` (the shared sort of K-SEQ and RRS
    w/o); its window (1 < p/q <= upper) must reach k (it is re-sorted where not).

    Which prefixes can be the first minimiser m of :math:`v_i = P_i + 1 - S_i^k`: from
    :math:`v_m \le v_{m-1}` and :math:`v_m \le v_{m+1}`,
    :math:`r_m \le (S_m^k - S_{m-1}^k)/q_m \le k` and
    :math:`r_{m+1} \ge (S_{m+1}^k - S_m^k)/q_{m+1} \ge k S_m^{k-1}`. So tokens with r > k are
    never in B, and if m ends strictly inside the tokens with r <= a then
    :math:`S_m \le (a/k)^{1/(k-1)}` and :math:`v_m \ge 1 - (a/k)^{k/(k-1)}`. Stage 1 takes the
    minimum W of v over the prefixes that end in the shared window (and at its start). If
    :math:`a = k (1 - W)^{(k-1)/k}` (shrunk by 1e-9) is >= 1, no prefix ending among the tokens
    with r <= 1 can beat W and alpha* = W; otherwise stage 2 sorts only the tokens with
    a < r <= 1 of those rows and takes the minimum over their prefixes as well (a prefix ending
    among r <= a would be >= 1 - (a/k)^{k/(k-1)} > W). Exact, same values as :func:`rate` to
    float64 round-off. Cost: the shared window's O(w) plus one sort of the tokens with
    a < r <= 1 for rows with alpha* > 1 - k^{-k/(k-1)} (0.75 at k = 2).

    Parameters
    ----------
    sp : SortedPair
    k : int
        Drafts per node.

    Returns
    -------
    numpy.ndarray
    """
    if np.any(sp.upper < k):
        sp = sp.restricted(slice(None), np.maximum(sp.upper, k))
    best = _window_min(sp.coverage, k)
    if k == 1:  # r_{m+1} >= 1: a prefix ending among r <= 1 only adds tokens with r = 1 (no change)
        return np.clip(best, 0.0, 1.0)
    a = k * np.maximum(1.0 - best, 0.0) ** ((k - 1) / k) * (1.0 - 1e-9)
    rows = np.flatnonzero(a < 1.0)
    if len(rows):
        every = len(rows) == len(best)
        p, q = (sp.p_rows, sp.q_rows) if every else (sp.p_rows[rows], sp.q_rows[rows])
        inside = p > np.multiply(q, a[rows, None])  # a < r <= 1: sorted here; r <= a: one sum
        inside &= p <= q
        ratio, ps, qs = _sorted_window(p, q, inside)
        G = sp.coverage  # F[:, 0] = p(r <= 1), Qtail[:, 0] = q(r > 1)
        low = G.F[rows, 0] - ps.sum(axis=1)
        best[rows] = np.minimum(best[rows], _window_min(SortedCoverage.from_sorted(ratio, ps, qs, f_below=low, q_above=G.Qtail[rows, 0]), k))
    return np.clip(best, 0.0, 1.0)


def _window_min(G: SortedCoverage, k: int) -> np.ndarray:
    """min over the window's prefixes of P + (1 - S) (1 + S + ... + S^(k-1)), S = 1 - Qtail."""
    U = G.Qtail
    S = 1.0 - U
    poly = np.ones_like(S)
    for _ in range(k - 1):
        poly = poly * S + 1.0
    return (G.F + U * poly).min(axis=1)


def _rate_rows(p, q, k):
    """The cut value's minimum for rows (B, n): one sort per row, float64 running sums."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(q > 0, p / np.where(q > 0, q, 1.0), np.inf)
    order = np.argsort(ratio, axis=-1)  # unstable: the minimum does not depend on tie order
    ps, qs = np.take_along_axis(p, order, axis=-1), np.take_along_axis(q, order, axis=-1)
    return np.clip(cut_values(ps, qs, k, extended=False)[-1].min(axis=-1), 0.0, 1.0)


def positional(p, q, k: int) -> np.ndarray:
    """P(slot j is the accepted draft) = alpha*/k for every slot, shape (..., k).

    The rule is exchangeable in the slots: it sees the multiset of drafts and picks instances
    uniformly.

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
    return np.repeat(rate(p, q, k)[..., None] / k, k, axis=-1)


def _same_region(plan: OptimalPlan, pos, top):
    """Whether each draft lies on the same side of the cut as x_top."""
    return (pos >= plan.m) == (top >= plan.m)
