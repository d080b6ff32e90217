r"""Fast evaluation of :math:`G(c) = \sum_x \min(f(x), c\,q(x))` for many c, one sort per row.

Convention: ``f`` is a (residual) target mass, ``q`` a draft law, last axis = vocabulary.
:math:`G` is piecewise linear in c with breakpoints at the ratios f/q: sorting the tokens by f/q once
gives :math:`G(c) = F_{m(c)} + c\,Q^{>}_{m(c)}`, where m(c) counts the ratios <= c, F is the prefix
sum of f and Q^> the suffix sum of q in that order. Used by K-SEQ (rho*), RRS without replacement
(k = 2) and the sorted-prefix optimum; :class:`SortedPair` sorts only the breakpoints that a range
of c can reach. Source: theory.md sections 1, 2.3, 2.4, 4.3.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ratio_order", "first_true", "row_blocks", "ROW_BLOCK_ENTRIES", "SortedCoverage", "SortedPair"]

#: batches of rows are processed in blocks of about this many entries: 1 MiB per float64
#: temporary stays in cache (acceptance_rates at 1,000 x 32,000: 1.5-2x faster than whole-batch
#: passes on the benchmark machine)
ROW_BLOCK_ENTRIES = 2**17


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
    """Order each row by ascending f/q (q = 0 counts as +inf). O(n log n) per row.

    Parameters
    ----------
    f : numpy.ndarray
    q : numpy.ndarray

    Returns
    -------
    numpy.ndarray
    """
    return np.argsort(_ratio(np.asarray(f, dtype=np.float64), np.asarray(q, dtype=np.float64)), axis=-1)


def first_true(pred, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per entry, the smallest index i in [lo, hi) with ``pred(i)`` true, or hi where there is none.

    ``pred`` maps an integer array shaped like ``lo`` to booleans and must be monotone in i (false,
    then true) on [lo, hi); it is only ever called with indices i >= 0 that are < hi where lo < hi
    (0 elsewhere). Vectorised bisection: ceil(log2(max(hi - lo) + 1)) calls of ``pred``.

    Parameters
    ----------
    pred : callable
    lo : numpy.ndarray
    hi : numpy.ndarray

    Returns
    -------
    numpy.ndarray
    """
    lo = np.array(lo, dtype=np.int64)
    hi = np.array(hi, dtype=np.int64)
    while (open_ := lo < hi).any():
        mid = np.where(open_, (lo + hi) // 2, 0)
        ok = pred(mid)
        hi = np.where(open_ & ok, mid, hi)
        lo = np.where(open_ & ~ok, mid + 1, lo)
    return hi


def row_blocks(B: int, n: int) -> list:
    """Cut B rows of length n into slices of about :data:`ROW_BLOCK_ENTRIES` entries (>= 1 row) each.

    Parameters
    ----------
    B : int
    n : int

    Returns
    -------
    list
    """
    step = max(1, ROW_BLOCK_ENTRIES // max(n, 1))
    return [slice(i, i + step) for i in range(0, B, step)] or [slice(0, 0)]


def blockwise(rate, p, q) -> np.ndarray:
    """Apply ``rate(p_rows, q_rows)`` (one value per row) block by block.

    Over :func:`row_blocks` of the broadcast, flattened batch; reshaped to the leading shape.

    Parameters
    ----------
    rate : callable
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.

    Returns
    -------
    numpy.ndarray
    """
    shape = np.broadcast_shapes(np.shape(p), np.shape(q))
    p2, q2 = (np.broadcast_to(x, shape).reshape(-1, shape[-1]) for x in (p, q))
    return np.concatenate([rate(p2[sl], q2[sl]) for sl in row_blocks(*p2.shape)]).reshape(shape[:-1])


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
    The attributes are ``ratios`` (B, m) sorted, ``F`` (B, m + 1) prefix sums of f (``F[:, 0]`` =
    the mass of f below the sorted ratios) and ``Qtail`` (B, m + 1) suffix sums of q
    (``Qtail[:, m]`` = the mass of q above them).

    Construction O(n log n) per row (O(n) given ``order``); each evaluation O(log n) per value of c.
    """

    def __init__(self, f: np.ndarray, q: np.ndarray, order: np.ndarray | None = None):
        f = np.atleast_2d(f)
        q = np.atleast_2d(q)
        if order is None:
            order = ratio_order(f, q)
        fs = _take_rows(f, order)
        qs = _take_rows(q, order)
        self._init_sorted(_ratio(fs, qs), fs, qs, 0.0, 0.0)

    @classmethod
    def from_sorted(cls, ratios, fs, qs, *, f_below=0.0, q_above=0.0) -> "SortedCoverage":
        """Build from rows already sorted by ratio.

        Ratios, f and q in that order, shape (B, m); optionally only the part of each row between
        two cuts: ``f_below`` (B,) is the f-mass of the tokens whose ratio lies below every sorted
        one, ``q_above`` (B,) the q-mass of those above. G(c) is then exact for c between the cuts.

        Parameters
        ----------
        ratios : numpy.ndarray
        fs : numpy.ndarray
        qs : numpy.ndarray
        f_below : float, optional
        q_above : float, optional
        """
        obj = cls.__new__(cls)
        obj._init_sorted(ratios, fs, qs, f_below, q_above)
        return obj

    def _init_sorted(self, ratios, fs, qs, f_below, q_above):
        self.ratios = ratios
        self.F = _prefix_sums(fs, f_below)
        self.Qtail = _suffix_sums(qs, q_above)

    def with_f(self, fs: np.ndarray, f_below=0.0) -> "SortedCoverage":
        """The coverage of another f sorted in the same order.

        Same ratios' order and the same q: Qtail is shared, not recomputed.

        Parameters
        ----------
        fs : numpy.ndarray
        f_below : float, optional

        Returns
        -------
        SortedCoverage
        """
        obj = type(self).__new__(type(self))
        obj.ratios, obj.Qtail = self.ratios, self.Qtail
        obj.F = _prefix_sums(fs, f_below)
        return obj

    def count(self, c, rows=None, side="right") -> np.ndarray:
        """Count m(c), the number of sorted ratios <= c in each row.

        ``side="left"`` counts those < c. c has shape (B,) or (B, m); or, with ``rows`` (1-D,
        ascending), c[i] is counted in row ``rows[i]``. One ``searchsorted`` per row: O(log n) per
        value.

        Parameters
        ----------
        c : numpy.ndarray
        rows : ndarray, optional
        side : str, optional

        Returns
        -------
        numpy.ndarray
        """
        c = np.asarray(c, dtype=np.float64)
        if rows is None:
            return np.stack([np.searchsorted(r, cb, side=side) for r, cb in zip(self.ratios, c)]).reshape(c.shape)
        bounds = np.searchsorted(rows, np.arange(self.ratios.shape[0] + 1))
        m = np.empty(c.shape, dtype=np.int64)
        for b in np.flatnonzero(np.diff(bounds)):
            m[bounds[b]:bounds[b + 1]] = np.searchsorted(self.ratios[b], c[bounds[b]:bounds[b + 1]], side=side)
        return m

    def __call__(self, c) -> np.ndarray:
        """G(c) for finite c >= 0 of shape (B,) or (B, m); returns the same shape."""
        c = np.asarray(c, dtype=np.float64)
        c2 = c[:, None] if c.ndim == 1 else c
        m = self.count(c2)
        val = np.take_along_axis(self.F, m, axis=-1) + c2 * np.take_along_axis(self.Qtail, m, axis=-1)
        return val[:, 0] if c.ndim == 1 else val


def _prefix_sums(x: np.ndarray, start) -> np.ndarray:
    """(B, m + 1): start, start + x_0, start + x_0 + x_1, ... (one sequential pass per row)."""
    out = np.empty((x.shape[0], x.shape[1] + 1))
    out[:, 0] = start
    out[:, 1:] = x
    return np.cumsum(out, axis=1, out=out)


def _suffix_sums(x: np.ndarray, end) -> np.ndarray:
    """(B, m + 1): ..., x_{m-1} + end, end (reversed :func:`_prefix_sums`)."""
    return _prefix_sums(x[:, ::-1], end)[:, ::-1]


class SortedPair:
    r"""Rows of (p, q) with their breakpoints of A(c) sorted: the shared work of K-SEQ and RRS w/o.

    Rows are broadcast to shape (..., n) and flattened to (B, n), each with its breakpoints of
    :math:`A(c) = \sum_x \min(p(x), c\,q(x))` on :math:`1 \le c \le` ``upper`` sorted (RRS without
    replacement at k = 2).

    Only the *window* tokens, p > q and p <= upper q, are sorted (by p/q): for c in [1, upper] a
    token with p <= q always gives p(x) and one with p > upper q always gives c q(x), so they enter
    A through two sums only (``coverage.F[:, 0]`` and ``coverage.Qtail[:, -1]``).

    Attributes: ``lead`` (the broadcast leading shape: ``per_row.reshape(sp.lead)`` restores it),
    ``p_rows``, ``q_rows`` (B, n) the rows as given, ``upper`` (B,), ``ratio``, ``p``, ``q``
    (B, W) the window sorted by p/q and padded to the widest row with p/q = inf, p = q = 0,
    ``coverage`` (:class:`SortedCoverage` of p on the window: exact for 1 <= c <= upper).
    O(n) per row plus one argsort of the window, O(w log w) for w window tokens.
    """

    def __init__(self, p: np.ndarray, q: np.ndarray, upper=np.inf):
        shape = np.broadcast_shapes(np.shape(p), np.shape(q))
        self.lead = shape[:-1]
        n = shape[-1]
        self.p_rows = p = np.ascontiguousarray(np.broadcast_to(p, shape).reshape(-1, n))
        self.q_rows = q = np.ascontiguousarray(np.broadcast_to(q, shape).reshape(-1, n))
        B = p.shape[0]
        self.upper = upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), (B,))
        below = p <= q
        work = np.multiply(p, below)  # one float temporary, reused (x * mask is cheaper than np.where)
        p_below = work.sum(axis=1)  # tokens with p <= q: always p(x)
        with np.errstate(invalid="ignore"):  # inf * 0 (q = 0, upper = inf): beyond, with q = 0
            window = p <= np.multiply(q, upper[:, None], out=work)
        window &= ~below
        below |= window  # now: not beyond
        q_above = np.multiply(q, ~below, out=work).sum(axis=1)  # tokens with p > upper q: always c q(x)
        ratio, ps, qs = _sorted_window(p, q, window)
        self.ratio, self.p, self.q = ratio, ps, qs
        self.coverage = SortedCoverage.from_sorted(ratio, ps, qs, f_below=p_below, q_above=q_above)

    def restricted(self, rows: np.ndarray, upper=np.inf) -> "SortedPair":
        """The same pairs for the given rows only, with another window bound.

        Parameters
        ----------
        rows : numpy.ndarray
        upper : numpy.ndarray or None, optional

        Returns
        -------
        SortedPair
        """
        return SortedPair(self.p_rows[rows], self.q_rows[rows], upper)


def _sorted_window(p: np.ndarray, q: np.ndarray, inside: np.ndarray):
    """(ratio, p, q), each (B, W): the tokens where ``inside`` holds, each row sorted by ascending
    p/q and padded with (inf, 0, 0) to W = max(1, widest row). One argsort of (B, W)."""
    B, n = p.shape
    flat = np.flatnonzero(inside)  # row-major: row b's tokens are flat[starts[b]:starts[b + 1]]
    starts = np.searchsorted(flat, np.arange(B + 1) * n)
    counts = np.diff(starts)
    W = max(1, int(counts.max(initial=0)))
    m = flat.size
    pw, qw, rw = np.empty(m + 1), np.empty(m + 1), np.empty(m + 1)  # one (0, 0, inf) pad at the end
    np.take(p.ravel(), flat, out=pw[:m])
    np.take(q.ravel(), flat, out=qw[:m])
    np.divide(pw[:m], qw[:m], out=rw[:m])
    pw[m], qw[m], rw[m] = 0.0, 0.0, np.inf
    padded = np.full(B * W, np.inf)
    padded[np.arange(m) + np.repeat(np.arange(B) * W - starts[:-1], counts)] = rw[:m]
    order = np.argsort(padded.reshape(B, W), axis=1)
    where = np.where(order < counts[:, None], order + starts[:-1, None], m)
    return rw[where], pw[where], qw[where]
