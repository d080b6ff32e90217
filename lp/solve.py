r"""One entry point for the optimal-transport LP of a draft law: ``lp.solve(p, q, k, law=law)``.

Convention: p = target, q = draft, last axis = vocabulary. Source: theory.md 2.1-2.3, 3.5.
The law is a name (its support enumerated from q and k) or an explicit ``DraftSupport``.
"""

from __future__ import annotations

import numpy as np

from spechub_theory.argorder import refuses_old_order
from spechub_theory.distributions import check_distribution, check_k, check_pq
from spechub_theory.draft_laws import DraftLaw, DraftSupport, get_law

from .reduced import solve_reduced
from .result import OptimumResult

__all__ = ["solve", "SOLVERS"]

#: "highs": reduced LP with scipy's HiGHS; "cvxpy" (or "cvxpy:<SOLVER>"): the textbook LP
SOLVERS = ("highs", "cvxpy")


@refuses_old_order("p", "lp.solve(p, q, k, law={name!r})", keyword="law")
def solve(p, q=None, k=None, *, law, solver: str = "highs") -> OptimumResult:
    r"""Optimal acceptance of a draft law against ``p``, with the optimal plan and a certificate.

    .. math:: \alpha^*(Q, p) = \max_{\pi \in \Pi(Q, p)} \pi\big(y \in S(\bar x)\big)
              = \min_{A \subseteq V} \big[p(A) + 1 - Q(S(\bar x) \subseteq A)\big]

    Parameters
    ----------
    p : array_like, shape (n,)
        Target distribution.
    q : array_like, shape (n,), optional
        Draft distribution (with a law name).
    k : int, optional
        Drafts per node (with a law name).
    law : {"iid", "wor", "hub", "hubset"} or DraftLaw or DraftSupport, keyword-only
        A draft-law name (needs ``q`` and ``k``: ``solve(p, q, k, law="wor")``) or an explicit
        enumeration whose tuples index ``p`` (then ``q`` and ``k`` are omitted:
        ``solve(p, law=support)``).
    solver : {"highs", "cvxpy"} or "cvxpy:<SOLVER>"
        "highs": the reduced LP (at most k n^k variables, scipy only); "cvxpy": the textbook LP
        over supp(Q) x V (n^{k+1} variables; HiGHS inside cvxpy when installed, else CLARABEL/ECOS).

    Returns
    -------
    OptimumResult
        ``.value``, ``.plan`` (sparse, rows = ``.support.tuples``), ``.certificate`` (a token set
        A), ``.check()``.

    Raises
    ------
    TypeError
        A law name or support in the place of ``p`` (the old order ``solve(law, p, q, k)``).
    ValueError
        Bad p, q, k, law or solver; a support whose tuples are out of range or masses not summing to 1.
    SolverError
        The solver failed (after a retry without presolve and with the interior-point method).

    Notes
    -----
    Cost: enumeration O(n^k); reduced LP of at most k * (#draft sets) variables (HiGHS, sparse);
    textbook LP dense (m n variables). Use :func:`lp.optimal_acceptance` for the value alone at
    large n.

    Examples
    --------
    >>> res = solve([.3, .3, .4], [.6, .3, .1], 2, law="wor")      # theory.md 6.1, E2: 25/28
    >>> round(res.value, 6), res.certificate.tokens.tolist(), res.status
    (0.892857, [0, 1], 'optimal')
    """
    support, p, name = _resolve(law, p, q, k)
    if solver == "highs":
        return solve_reduced(support, p, law=name)
    if isinstance(solver, str) and (solver == "cvxpy" or solver.startswith("cvxpy:")):
        from .textbook import solve_textbook

        return solve_textbook(support, p, law=name, cvxpy_solver=solver.partition(":")[2] or None)
    raise ValueError(f"`solver` {solver!r} is not one of 'highs', 'cvxpy', 'cvxpy:<SOLVER>'.")


def _resolve(law, p, q, k):
    """(support, p, law name) from the arguments of :func:`solve`."""
    if isinstance(law, DraftSupport):
        if q is not None or k is not None:
            raise ValueError("`q` and `k` must be omitted when `law` is a DraftSupport.")
        p = check_distribution(p, "p")
        if p.ndim != 1:
            raise ValueError("`p` must have shape (n,) for `solve`.")
        tuples = np.asarray(law.tuples, dtype=np.int64)
        mass = np.asarray(law.mass, dtype=np.float64)
        if tuples.ndim != 2 or len(tuples) != len(mass) or len(mass) == 0:
            raise ValueError("`law` must have tuples of shape (m, k) and m masses, m >= 1.")
        if tuples.min() < 0 or tuples.max() >= len(p):
            raise ValueError(f"`law` tuples must be token ids in [0, {len(p)}).")
        if (mass < 0).any() or abs(mass.sum() - 1.0) > 1e-9:
            raise ValueError(f"`law` masses must be >= 0 and sum to 1; they sum to {mass.sum():.12g}.")
        keep = mass > 0
        return DraftSupport(tuples[keep], mass[keep] / mass.sum()), p, "custom"
    draft_law = law if isinstance(law, DraftLaw) else get_law(law)
    if q is None or k is None:
        raise ValueError(f"`q` and `k` are required with the draft law {draft_law.name!r}.")
    p, q = check_pq(p, q)
    if p.ndim != 1 or q.ndim != 1:
        raise ValueError("`p` and `q` must have shape (n,) for `solve` (one position at a time).")
    k = check_k(k, len(p), distinct=draft_law.distinct)
    return draft_law.enumerate(q, k), p, draft_law.name
