r"""Exact acceptance rates of every method for one or many (p, q) pairs: the notebook entry point.

Convention: p = target, q = draft, last axis = vocabulary, leading axes = positions; float64.
Source: theory.md sections 3.4, 4 (closed forms) and 6 (worked examples).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce

import numpy as np

from .distributions import check_k, check_pq_sums, renormalised
from .methods._sorted import SortedPair, row_blocks
from .methods import METHODS

__all__ = ["AcceptanceRates", "acceptance_rates", "EXACT_RRS_WOR_MAX_N", "RRS_WOR_EPS"]

#: up to this vocabulary size RRS without replacement for k >= 3 follows every branch (exact)
EXACT_RRS_WOR_MAX_N = 12
#: above it, branches of probability <= this are bounded, not followed (error reported)
RRS_WOR_EPS = 1e-4


@dataclass(frozen=True)
class AcceptanceRates:
    """Acceptance rates of the methods for (p, q) at k drafts.

    Attributes
    ----------
    k, n : int
    tv : ndarray, shape (...)   total variation TV(p, q)
    hub : ndarray of int, shape (...)   a = argmax q (lowest index on ties)
    acceptance : dict[str, ndarray]   method name -> exact rate, shape (...)
    notes : dict[str, str]   how a rate was computed where it is not a closed form
    """

    k: int
    n: int
    tv: np.ndarray
    hub: np.ndarray
    acceptance: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)

    def __getitem__(self, method: str) -> np.ndarray:
        return self.acceptance[method]

    def to_dict(self, digits: int = 12) -> dict:
        """JSON-ready dict: ``{"k", "n", "tv", "hub", "acceptance": {...}}`` (+ ``"notes"``).

        Floats are rounded to ``digits`` decimals (the rates are exact to about 1e-13, so E1's
        single rate prints as 0.7, not 0.7000000000000001).

        Parameters
        ----------
        digits : int, optional

        Returns
        -------
        dict
        """

        def py(x):
            x = np.asarray(x)
            if x.dtype.kind == "f":
                x = np.round(x, digits)
            return x.item() if x.ndim == 0 else x.tolist()

        out = {"k": self.k, "n": self.n, "tv": py(self.tv), "hub": py(self.hub),
               "acceptance": {m: py(v) for m, v in self.acceptance.items()}}
        if self.notes:
            out["notes"] = dict(self.notes)
        return out

    def with_rates(self, extra: dict, notes: dict | None = None) -> "AcceptanceRates":
        """A copy with more rates (e.g. the optimum from ``lp``) appended.

        Parameters
        ----------
        extra : dict
        notes : dict or None, optional

        Returns
        -------
        AcceptanceRates
        """
        return AcceptanceRates(self.k, self.n, self.tv, self.hub, {**self.acceptance, **extra}, {**self.notes, **(notes or {})})


def acceptance_rates(p, q, k: int = 2, *, methods=None) -> AcceptanceRates:
    r"""Exact acceptance rate of each method (single, rrs, rrs_wor, kseq, spechub, optimal) at k drafts.

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft distributions (validated, renormalised in float64).
    k : int
        Drafts per node (``single`` always uses one; ``spechub`` is the hub-set law for k > 2).
    methods : iterable of str, optional
        Subset of method names (default: all).

    Returns
    -------
    AcceptanceRates

    Notes
    -----
    Costs per row: single, rrs O(k n); spechub O(n) for k = 2; kseq and rrs_wor (k = 2) O(n)
    plus one shared sort of the tokens with 1 < p/q <= max(k, 1 + TV/(1 - max q)), the only
    breakpoints they read: O(n log n) at most; optimal (alpha*_iid, the cut) reads the same window
    plus, where its bound needs it, a sort of the few tokens with a < p/q <= 1
    (:func:`~spechub_theory.methods.optimal.rate_sorted`). rrs_wor for k >= 3 is an exact recursion for
    n <= 12 and a pruned recursion with a reported error bound otherwise (``notes["rrs_wor"]``).
    Methods whose draft law needs k distinct tokens are omitted when k > n. The closed forms run
    on blocks of rows (:func:`~spechub_theory.methods._sorted.row_blocks`) so that temporaries stay in cache.

    Examples
    --------
    >>> r = acceptance_rates([.4, .4, .2], [.7, .2, .1], k=2)
    >>> {m: round(float(v), 6) for m, v in r.acceptance.items()}
    {'single': 0.7, 'rrs': 0.79, 'rrs_wor': 1.0, 'kseq': 0.825367, 'spechub': 1.0, 'khisti_is': 0.816667, 'optimal': 0.91}
    """
    p, q, p_sums, q_sums = check_pq_sums(p, q)  # renormalised block by block below: no full copy
    n = p.shape[-1]
    k = check_k(k)
    names = list(METHODS) if methods is None else [METHODS[m].NAME if m in METHODS else _unknown(m) for m in methods]
    shape = np.broadcast_shapes(p.shape, q.shape)
    p2, q2 = (np.broadcast_to(x, shape).reshape(-1, n) for x in (p, q))
    p_sums, q_sums = (np.broadcast_to(s, shape[:-1] + (1,)).reshape(-1, 1) for s in (p_sums, q_sums))

    def rows(sl):
        return renormalised(p2[sl], p_sums[sl]), renormalised(q2[sl], q_sums[sl])

    drafts = {name: METHODS[name].FIXED_K or k for name in names}
    notes = {name: f"omitted: k = {kk} distinct drafts need n >= {kk}" for name, kk in drafts.items()
             if METHODS[name].LAW.distinct and kk > n}
    notes.update({name: f"omitted: the exact rate costs {METHODS[name].rate_cost(len(p2), n, kk):.3g} > {METHODS[name].MAX_RATE_COST:.3g} operations"
                  for name, kk in drafts.items() if name not in notes and _too_costly(METHODS[name], len(p2), n, kk)})
    recursive = [name for name in names if name not in notes and _recursive(METHODS[name], drafts[name])]
    closed = {name: kk for name, kk in drafts.items() if name not in notes and name not in recursive}
    blocks = [_closed_forms(*rows(sl), closed) for sl in row_blocks(len(p2), n)]
    per_row = {key: np.concatenate([blk[key] for blk in blocks]) for key in blocks[0]}
    for name in recursive:
        bounded = METHODS[name].acceptance_bounded(*rows(slice(None)), drafts[name], eps=0.0 if n <= EXACT_RRS_WOR_MAX_N else RRS_WOR_EPS)
        per_row[name] = bounded.value
        notes[name] = bounded.how + (f", |error| <= {float(np.max(bounded.error)):.3g}" if np.any(bounded.error) else "")
    lead = shape[:-1]
    rates = {name: per_row[name].reshape(lead) for name in names if name in per_row}
    return AcceptanceRates(k=k, n=n, tv=per_row["tv"].reshape(lead), hub=per_row["hub"].reshape(lead), acceptance=rates, notes=notes)


def _closed_forms(p, q, drafts):
    """{"tv", "hub", and each method's rate} for rows p, q (B, n); ``drafts``: name -> k.
    Methods with a ``sort_window`` at their k (K-SEQ, RRS w/o at k = 2) share one sort of the
    breakpoints they read, up to the largest window."""
    over = np.subtract(q, p)
    out = {"tv": np.maximum(over, 0.0, out=over).sum(axis=-1), "hub": np.argmax(q, axis=-1)}
    windows = {name: _window(METHODS[name], q, out["tv"], kk) for name, kk in drafts.items()}
    windows = {name: w for name, w in windows.items() if w is not None}
    if windows:  # one sort of the breakpoints serves every method that reads them
        sorted_pair = SortedPair(p, q, reduce(np.maximum, windows.values()))
    for name, kk in drafts.items():
        if name in windows:
            out[name] = METHODS[name].rate_sorted(sorted_pair, kk)
        else:
            out[name] = METHODS[name].rate(p, q, kk)  # validated once, at the door
    return out


def _too_costly(method, rows: int, n: int, k: int) -> bool:
    """Whether a method's exact rate (``rate_cost``, when it declares one) exceeds its ``MAX_RATE_COST``."""
    cost = getattr(method, "rate_cost", None)
    return cost is not None and cost(rows, n, k) > method.MAX_RATE_COST


def _window(method, q, tv, k):
    """The method's ``sort_window`` at k, or None (no shared sort; see methods/base.py)."""
    window = getattr(method, "sort_window", None)
    return None if window is None else window(q, tv, k)


def _recursive(method, k) -> bool:
    """Whether the method's rate at k is a recursion with an error bound (``RECURSION_FROM_K``)."""
    start = getattr(method, "RECURSION_FROM_K", None)
    return start is not None and k >= start


def _unknown(name):
    from .methods import get_method

    return get_method(name).NAME
