r"""The reduced (membership-only) OT LP = a bipartite max-flow, solved by HiGHS through scipy.

Convention: p = target, q = draft; a draft law is its enumeration (tuples, masses). Source:
theory.md 2.2 (reduced LP), 2.3 (min-cut dual), 3.5 (variable counts).

.. math::

    \max \sum f(s, y) \quad\text{s.t.}\quad \sum_{y \in s} f(s, y) \le Q(s),\quad
    \sum_{s \ni y} f(s, y) \le p(y),\quad f \ge 0,

over draft *sets* s (tuples with the same set are merged: the cost depends on membership only)
and y in s. Inequality form: always feasible (f = 0) and bounded, so tiny masses cannot make the
solver report infeasibility. The flow of a set is split over its tuples in proportion to Q.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from spechub_theory.draft_laws import DraftSupport

from .result import OptimumResult, SolverError, complete_plan, cut_from_orders

__all__ = ["solve_reduced", "draft_sets"]

#: HiGHS tolerances: tighter than the 1e-7 defaults so that ``check(atol=1e-9)`` passes
_HIGHS_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}


def draft_sets(support: DraftSupport) -> dict:
    """Merge tuples with the same draft set.

    O(m k log m).

    Parameters
    ----------
    support : DraftSupport
        The draft law enumerated: ``tuples`` (m, k) and their ``mass`` (m,).

    Returns
    -------
    dict
        ``{"sets": (s, k) int64 sorted members padded with -1, "of_tuple": (m,) set index,
        "mass": (s,) set masses}``.
    """
    t = np.sort(support.tuples, axis=1)
    dup = np.zeros(t.shape, dtype=bool)
    dup[:, 1:] = t[:, 1:] == t[:, :-1]
    t = np.where(dup, -1, t)
    t = np.sort(t, axis=1)[:, ::-1]  # members first (descending), padding last
    sets, of_tuple = np.unique(t, axis=0, return_inverse=True)
    of_tuple = np.asarray(of_tuple).ravel()
    return {"sets": sets, "of_tuple": of_tuple, "mass": np.bincount(of_tuple, support.mass, minlength=len(sets))}


def solve_reduced(support: DraftSupport, p, *, law: str = "custom") -> OptimumResult:
    """Optimal acceptance and plan of a draft law by the reduced LP (scipy ``linprog``, HiGHS).

    Parameters
    ----------
    support : DraftSupport
        Exact draft law; tuples of token ids < n.
    p : ndarray, shape (n,)
        Validated target distribution.
    law : str
        Label stored in the result.

    Returns
    -------
    OptimumResult
        ``solver="highs"``; the certificate is the best threshold set of the LP's token duals
        (theory.md 2.3), so ``gap`` certifies optimality.

    Raises
    ------
    SolverError
        When HiGHS fails with and without presolve (status and message included).

    Notes
    -----
    At most k * (number of distinct draft sets) variables, e.g. 2 C(n, 2) + n for i.i.d. k = 2;
    one sparse constraint row per set and per token with p > 0. Tokens with p = 0 get no variable.
    """
    p = np.asarray(p, dtype=np.float64)
    n = len(p)
    grouped = draft_sets(support)
    sets, set_mass = grouped["sets"], grouped["mass"]
    s_idx, slot = np.nonzero((sets >= 0) & (p[np.maximum(sets, 0)] > 0))
    y = sets[s_idx, slot]
    nv, ns = len(y), len(sets)
    if nv == 0:  # no draft set meets the support of p: acceptance 0
        flow_rows, flow_cols, flow = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        duals = np.zeros(n)
    else:
        A = sp.csr_array(
            (np.ones(2 * nv), (np.concatenate([s_idx, ns + y]), np.tile(np.arange(nv), 2))), shape=(ns + n, nv)
        )
        b = np.concatenate([set_mass, p])
        res = _linprog(A, b, nv)
        f_set = np.maximum(res.x, 0.0)
        duals = np.clip(-np.asarray(res.ineqlin.marginals)[ns:], 0.0, 1.0)
        # split each set's flow over its tuples in proportion to Q(tuple) / Q(set)
        of_tuple = grouped["of_tuple"]
        share = support.mass / set_mass[of_tuple]
        by_set = sp.csr_array((f_set, (s_idx, y)), shape=(ns, n))
        T = sp.csr_array((share, (np.arange(len(share)), of_tuple)), shape=(len(share), ns))
        flow_mat = (T @ by_set).tocoo()
        flow_rows, flow_cols, flow = flow_mat.row, flow_mat.col, flow_mat.data
    plan = complete_plan(support, p, flow_rows, flow_cols, flow)
    set_mass_of = support.set_mass(n)
    orders = [
        np.argsort(-duals, kind="stable"),
        np.argsort(np.where(set_mass_of > 0, p / np.where(set_mass_of > 0, set_mass_of, 1.0), np.inf), kind="stable"),
    ]
    return OptimumResult.from_plan(plan, support, p, cut_from_orders(support, p, orders), law, "highs")


def _linprog(A, b, nv):
    """Run HiGHS; retry without presolve, then with the interior-point solver; raise on failure."""
    attempts = [("highs", {}), ("highs", {"presolve": False}), ("highs-ipm", {})]
    res = None
    for method, extra in attempts:
        res = linprog(-np.ones(nv), A_ub=A, b_ub=b, bounds=(0, None), method=method,
                      options={**_HIGHS_OPTIONS, **extra})
        if res.status == 0:
            return res
    raise SolverError(res.status, res.message)
