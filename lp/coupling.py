r"""SpecHub's explicit optimal transport plan for the hub (hub-set) draft law, built without an LP.

Convention: p = target, q = draft, last axis = vocabulary; H = the k-1 most probable draft tokens
(k = 2: the hub a = argmax q). Source: theory.md 3.2-3.5 and 3.7.

The plan is the core's node rule (:func:`spechub_theory.methods.spechub.rule`) read as a coupling:
tuple x̄ sends Q(x̄) accept_j(x̄) to its j-th draft, and its rejected mass Q(x̄) reject(x̄) to the
residual. Its acceptance is the closed form
:math:`\min\{1,\ p(H) + \sum_{i \notin H} \min(p(i), q(i)/(1 - q(H)))\}`, which the min-cut
certificate A = H ∪ {i : p(i) <= q(i)/(1 - q(H))} (or A = ∅ when the value is 1) proves optimal.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from spechub_theory.distributions import check_k, check_pq
from spechub_theory.draft_laws import HUB
from spechub_theory.methods import spechub

from .result import OptimumResult, complete_plan, cut_value

__all__ = ["hub_coupling"]

RESIDUALS = ("corner", "rule")


def hub_coupling(p, q, k: int = 2, *, residual: str = "corner") -> OptimumResult:
    r"""The optimal coupling of the hub(-set) draft law and ``p``, with its min-cut certificate.

    Parameters
    ----------
    p, q : array_like, shape (n,)
        Target and draft.
    k : int
        Drafts per node (2 = SpecHub's hub law; k > 2 the hub-set law of theory.md 3.7); k <= n.
    residual : {"corner", "rule"}
        How rejected mass is coupled to the residual tokens. "corner" (default): north-west
        corner rule, at most m + n - 1 entries, O(n log n) in all. "rule": exactly the core
        verifier (every rejected tuple emits the common residual law), a dense m x n block.
        Both have the same marginals and acceptance.

    Returns
    -------
    OptimumResult
        ``solver="closed-form"``, ``draft_law="hub"``; rows = ``HUB.enumerate(q, k)`` tuples
        (k (n - k + 1) of them).

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``residual`` ... is not one of; or
        ``hub_coupling`` takes a single pair p, q of shape (n,).

    Notes
    -----
    The accepted part is O(m k) from the node rule; no LP is solved. Edge cases follow the core:
    argmax ties give the lowest index; when q(V minus H) = 0 the last draft is uniform on V minus H.

    Examples
    --------
    >>> res = hub_coupling([.3, .3, .4], [.6, .3, .1])     # theory.md 6.1, E2
    >>> round(res.value, 6), res.certificate.tokens.tolist(), res.check().status
    (0.85, [0, 1], 'optimal')
    """
    if residual not in RESIDUALS:
        raise ValueError(f"`residual` {residual!r} is not one of {', '.join(map(repr, RESIDUALS))}.")
    p, q = check_pq(p, q)
    if p.ndim != 1 or q.ndim != 1:
        raise ValueError("`hub_coupling` takes a single pair p, q of shape (n,).")
    n = len(p)
    k = check_k(k, n, distinct=True)
    support = HUB.enumerate(q, k)
    node = spechub.rule(p, q, support.tuples)
    m = len(support.mass)
    flow = support.mass[:, None] * node.accept  # (m, k)
    rows = np.repeat(np.arange(m), k)
    cols = support.tuples.ravel()
    if residual == "corner":
        plan = complete_plan(support, p, rows, cols, flow.ravel())
    else:
        rejected = support.mass * node.reject  # (m,)
        dense = rejected[:, None] * node.residual[None, :]
        np.add.at(dense, (rows, cols), flow.ravel())
        plan = sp.csr_array(dense)
        plan.eliminate_zeros()
    return OptimumResult.from_plan(plan, support, p, _certificate(p, q, k, support), "hub", "closed-form")


def _certificate(p, q, k, support):
    """The min-cut set of the closed form: H plus the non-hubs that p under-fills, or the empty set."""
    parts = spechub.HubParts(p, q, k)
    under = ~parts.in_hub & (p <= q + parts.r)
    with_hub = cut_value(support, p, np.flatnonzero(parts.in_hub | under))
    empty = cut_value(support, p, [])
    return with_hub if with_hub.value < empty.value else empty
