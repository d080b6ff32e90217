r"""Fast evaluation of :math:`G(c) = \sum_x \min(f(x), c\,q(x))` for many c, one sort per row.

Convention: ``f`` is a (residual) target mass, ``q`` a draft law, last axis = vocabulary.
:math:`G` is piecewise linear in c with breakpoints at the ratios f/q: sorting the tokens by f/q once
gives :math:`G(c) = F_{m(c)} + c\,Q^{>}_{m(c)}`, where m(c) counts the ratios <= c, F is the prefix
sum of f and Q^> the suffix sum of q in that order. Used by K-SEQ (rho*), RRS without replacement
(k = 2) and the sorted-prefix optimum. Source: theory.md sections 1, 2.3, 2.4, 4.3.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ratio_order", "SortedCoverage", "SortedPair"]


def _ratio(f: np.ndarray, q: np.ndarray) -> np.ndarray:
    """f/q with q = 0 read as +inf (f > 0) or 0 (f = 0). One division; the q = 0 entries are
    patched in place only when there are any (no full-size temporaries otherwise)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = f / q
    zero = q == 0
    if zero.any():
        r[zero] = np.where(f[zero] > 0, np.inf, 0.0)
    return r


def ratio_order(f: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Indices sorting each row by ascending f/q (q = 0 counts as +inf). O(n log n) per row."""
    return np.argsort(_ratio(np.asarray(f, dtype=np.float64), np.asarray(q, dtype=np.float64)), axis=-1)


def _take_rows(a: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``take_along_axis(a, order, -1)`` for 2-D arrays through one flat gather (faster)."""
    B, n = order.shape
    flat = (order + (np.arange(B) * n)[:, None]).ravel()
    return np.ascontiguousarray(a).ravel().take(flat).reshape(B, n)


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
        fs = _take_rows(f, order)
        qs = _take_rows(q, order)
        self._init_sorted(_ratio(fs, qs), fs, qs)

    @classmethod
    def from_sorted(cls, ratios: np.ndarray, fs: np.ndarray, qs: np.ndarray) -> "SortedCoverage":
        """Build from rows already sorted by ratio (ratios, f and q in that order)."""
        obj = cls.__new__(cls)
        obj._init_sorted(ratios, fs, qs)
        return obj

    def _init_sorted(self, ratios, fs, qs):
        self.ratios = ratios
        B, n = fs.shape
        self.F = np.zeros((B, n + 1))
        np.cumsum(fs, axis=-1, out=self.F[:, 1:])
        self.Qtail = np.zeros((B, n + 1))
        np.cumsum(qs[:, ::-1], axis=-1, out=self.Qtail[:, n - 1::-1] if n > 0 else None)

    def count(self, c) -> np.ndarray:
        """m(c): number of ratios <= c per row, for c of shape (B,) or (B, m)."""
        c2 = np.asarray(c, dtype=np.float64)
        c2 = c2[:, None] if c2.ndim == 1 else c2
        m = np.empty(c2.shape, dtype=np.int64)
        for b in range(c2.shape[0]):
            m[b] = np.searchsorted(self.ratios[b], c2[b], side="right")
        return m

    def __call__(self, c) -> np.ndarray:
        """G(c) for finite c >= 0 of shape (B,) or (B, m); returns the same shape."""
        c = np.asarray(c, dtype=np.float64)
        c2 = c[:, None] if c.ndim == 1 else c
        m = self.count(c2)
        val = np.take_along_axis(self.F, m, axis=-1) + c2 * np.take_along_axis(self.Qtail, m, axis=-1)
        return val[:, 0] if c.ndim == 1 else val


class SortedPair:
    """Rows of (p, q), broadcast to shape (..., n) and flattened to (B, n), sorted once by
    ascending p/q: the shared work of K-SEQ, RRS without replacement (k = 2) and the sorted-prefix
    optimum.

    Attributes: ``lead`` (the broadcast leading shape: ``per_row.reshape(sp.lead)`` restores it),
    ``ratio`` (sorted p/q), ``q`` and ``p`` in that order, ``coverage`` (:class:`SortedCoverage` of
    p). One argsort and three gathers: O(n log n) per row.
    """

    def __init__(self, p: np.ndarray, q: np.ndarray):
        shape = np.broadcast_shapes(np.shape(p), np.shape(q))
        self.lead = shape[:-1]
        p = np.broadcast_to(p, shape).reshape(-1, shape[-1])
        q = np.broadcast_to(q, shape).reshape(-1, shape[-1])
        ratio = _ratio(p, q)
        order = np.argsort(ratio, axis=-1)
        self.q = _take_rows(q, order)
        self.p = _take_rows(p, order)
        self.ratio = _take_rows(ratio, order)
        self.coverage = SortedCoverage.from_sorted(self.ratio, self.p, self.q)
