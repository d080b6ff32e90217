"""Exact acceptance of every method (and the optimum) at the verified nodes of a real decoding run.

Convention: p = target, q = draft, last axis = vocabulary; one row per verified node, with the
node's own k (children count). Rates come from :func:`lp.all_rates` (the float64 core's
``acceptance_rates`` plus ``lp.optimal_rates`` for optimal_iid / optimal_wor), one call per k.
"""

from __future__ import annotations

import numpy as np

from lp import all_rates, optimal_acceptance
from spechub_theory.methods import METHOD_NAMES, METHODS, rrs_wor

__all__ = ["NODE_METHODS", "OPTIMAL_METHODS", "RRS_WOR_RECURSION_MAX_N", "available_node_methods", "node_rates"]

#: RRS without replacement at k >= 3 has no closed form; above this vocabulary size its rate is
#: recorded as missing (None): the method's own ``size_limit`` (methods/base.py)
RRS_WOR_RECURSION_MAX_N = rrs_wor.RECURSION_MAX_N
#: the optimum over couplings for i.i.d. / without-replacement drafts, by method name
OPTIMAL_METHODS = {"optimal_iid": "iid", "optimal_wor": "wor"}
#: what a failed optimum raises (recorded as missing, never averaged in)
_SOLVE_ERRORS = (ValueError, RuntimeError, ArithmeticError)
#: every name a node row may carry, in report order
NODE_METHODS = tuple(METHOD_NAMES) + tuple(OPTIMAL_METHODS)


def available_node_methods() -> tuple:
    """The node methods computable here: every method and both optima (``lp`` ships with this package).

    Returns
    -------
    tuple
    """
    return NODE_METHODS


def node_rates(p, q, k, *, methods=None) -> dict:
    """Per-node exact acceptance rates and the node's TV and hub masses, as JSON-ready columns.

    Parameters
    ----------
    p, q : ndarray, shape (m, n)
        Target and draft laws at m verified nodes (float64).
    k : sequence of int, length m
        Drafts verified at each node.
    methods : iterable of str, optional
        Names from :data:`NODE_METHODS` (default: :func:`available_node_methods`).

    Returns
    -------
    dict with lists of length m: ``k``, ``tv``, ``hub_q`` (q(a) for a = argmax q), ``hub_p``
    (p(a)), and ``acceptance``: {method: list of float or None}. ``None`` marks a rate that could
    not be computed at that node (k > n for distinct drafts, a failed or unavailable optimum,
    rrs_wor at k >= 3 above :data:`RRS_WOR_RECURSION_MAX_N` tokens), counted by the summary and
    never averaged in.

    Raises
    ------
    ValueError
        If a method is not one of the node methods.

    Notes
    -----
    Rows sharing k are one :func:`lp.all_rates` call; O(n log n) per row and method for the
    closed forms; the optimum costs what ``lp.optimal_rates`` costs (one sort per row for k = 2).
    """
    names = available_node_methods() if methods is None else tuple(methods)
    unknown = [m for m in names if m not in NODE_METHODS]
    if unknown:
        raise ValueError(f"node method {unknown[0]!r} is not one of {', '.join(map(repr, NODE_METHODS))}.")
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    ks = np.asarray(k, dtype=np.int64)
    m = len(ks)
    hub = np.argmax(q, axis=-1) if m else np.zeros(0, dtype=np.int64)
    out = {
        "k": ks.tolist(),
        "tv": (0.5 * np.abs(p - q).sum(axis=-1)).tolist() if m else [],
        "hub_q": q[np.arange(m), hub].tolist() if m else [],
        "hub_p": p[np.arange(m), hub].tolist() if m else [],
        "acceptance": {name: [None] * m for name in names},
    }
    optimal = [n for n in names if n in OPTIMAL_METHODS]
    for kk in sorted(set(ks.tolist())):
        rows = np.flatnonzero(ks == kk)
        closed = [n for n in names if n in METHOD_NAMES and not _too_costly(n, kk, p.shape[-1])]
        if not closed and not optimal:
            continue
        try:
            rates = all_rates(p[rows], q[rows], kk, methods=closed, optima=optimal).acceptance
        except _SOLVE_ERRORS:  # a failed optimum is recorded as missing; the others still count
            rates = all_rates(p[rows], q[rows], kk, methods=closed, optima=()).acceptance if closed else {}
            rates.update({name: _optimum(p[rows], q[rows], kk, name) for name in optimal})
        for name, values in rates.items():
            _fill(out["acceptance"][name], rows, values)
    return out


def _too_costly(method: str, k: int, n: int) -> bool:
    """Whether n exceeds the method's ``size_limit(k)`` (none by default, methods/base.py)."""
    limit = getattr(METHODS[method], "size_limit", None)
    bound = None if limit is None else limit(k)
    return bound is not None and n > bound


def _optimum(p, q, k: int, name: str):
    """One optimum alone, ``lp.optimal_acceptance`` of its law (``None`` where its solve fails)."""
    try:
        return optimal_acceptance(p, q, k, law=OPTIMAL_METHODS[name])
    except _SOLVE_ERRORS:
        return None


def _fill(column: list, rows, values) -> None:
    """Write ``values`` (shape (len(rows),), or None: out of reach at every row) into ``column``."""
    if values is None:
        return
    values = np.atleast_1d(np.asarray(values, dtype=np.float64))
    for r, v in zip(rows, values):
        column[int(r)] = float(v) if np.isfinite(v) else None
