r"""Fast evaluation of :math:`G(c) = \sum_x \min(f(x), c\,q(x))` for many c, one sort per row.

Convention: ``f`` is a (residual) target mass, ``q`` a draft law, last axis = vocabulary.
:math:`G` is piecewise linear in c with breakpoints at the ratios f/q: sorting the tokens by f/q once
gives :math:`G(c) = F_{m(c)} + c\,Q^{>}_{m(c)}`, where m(c) counts the ratios <= c, F is the prefix
sum of f and Q^> the suffix sum of q in that order. Used by K-SEQ (bisection on rho), RRS without
replacement (k = 2) and the sorted-prefix optimum. Source: theory.md sections 1, 2.3, 2.4, 4.3.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ratio_order", "SortedCoverage"]


def ratio_order(f: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Indices sorting each row by ascending f/q (q = 0 counts as +inf). O(n log n) per row."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(q > 0, f / np.where(q > 0, q, 1.0), np.where(f > 0, np.inf, 0.0))
    return np.argsort(ratio, axis=-1, kind="stable")


class SortedCoverage:
    r"""Precomputed :math:`G(c) = \sum_x \min(f(x), c\,q(x))` for rows of f, q of shape (B, n).

    Parameters
    ----------
    f, q : ndarray, shape (B, n)
        Non-negative float64 (not validated: internal helper).
    order : ndarray of int, shape (B, n), optional
        An ordering by ascending f/q; any order that sorts f/q works (e.g. the order of p/q when
        f = (p - q)_+ / s, a monotone function of p/q), so one sort can serve several f.

    Notes
    -----
    Construction O(n log n) per row (O(n) given ``order``); each evaluation O(log n) per value of c.
    """

    def __init__(self, f: np.ndarray, q: np.ndarray, order: np.ndarray | None = None):
        f = np.atleast_2d(f)
        q = np.atleast_2d(q)
        if order is None:
            order = ratio_order(f, q)
        fs = np.take_along_axis(f, order, axis=-1)
        qs = np.take_along_axis(q, order, axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.ratios = np.where(qs > 0, fs / np.where(qs > 0, qs, 1.0), np.where(fs > 0, np.inf, 0.0))
        B, n = fs.shape
        self.F = np.zeros((B, n + 1))
        np.cumsum(fs, axis=-1, out=self.F[:, 1:])
        self.Qtail = np.zeros((B, n + 1))
        self.Qtail[:, :n] = np.cumsum(qs[:, ::-1], axis=-1)[:, ::-1]

    def __call__(self, c) -> np.ndarray:
        """G(c) for finite c >= 0 of shape (B,) or (B, m); returns the same shape."""
        c = np.asarray(c, dtype=np.float64)
        squeeze = c.ndim == 1
        c2 = c[:, None] if squeeze else c
        m = np.empty(c2.shape, dtype=np.int64)
        for b in range(c2.shape[0]):
            m[b] = np.searchsorted(self.ratios[b], c2[b], side="right")
        F = np.take_along_axis(self.F, m, axis=-1)
        Q = np.take_along_axis(self.Qtail, m, axis=-1)
        val = F + c2 * Q
        return val[:, 0] if squeeze else val
