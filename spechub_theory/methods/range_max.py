r"""Range maxima over a fixed array of levels: blocks of 16 and a sparse table over the block maxima.

Convention: ``values`` float64 >= 0 of length L; a query (lo, hi) asks max(values[lo:hi]), 0 if empty.
Source: the standard block decomposition of the range-maximum query (sparse table of Bender and
Farach-Colton's scheme without the in-block tables: a scan of at most 2 blocks instead).

Build O(L) (one reshape-max and a sparse table over L / 16 block maxima); query O(1): two scans of
one block each and two table lookups, vectorised over any number of queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["RangeMax", "range_max", "range_max_of_blocks", "padded_size", "BLOCK"]

#: values per block (a query scans at most two blocks)
BLOCK = 16


@dataclass(frozen=True)
class RangeMax:
    """Range-maximum structure over ``values`` (see :func:`range_max`).

    Attributes
    ----------
    blocks : ndarray, shape (nb, BLOCK)
        The values, zero-padded to whole blocks.
    table : ndarray, shape (LOG, nb)
        Row j holds the maximum of the block maxima over blocks [b, b + 2^j) (0 past the end).
    """

    blocks: np.ndarray = field(repr=False)
    table: np.ndarray = field(repr=False)

    @property
    def size(self) -> int:
        """Number of padded values (a multiple of BLOCK)."""
        return self.blocks.size

    def query(self, lo, hi) -> np.ndarray:
        """The range maxima ``max(values[lo:hi])`` per entry, 0 where lo >= hi.

        ``lo`` and ``hi`` are integer arrays (broadcast).

        Parameters
        ----------
        lo, hi : array_like of int
            Half-open ranges, 0 <= lo, hi <= len(values).

        Returns
        -------
        ndarray of float64
            The range maxima (0 for empty ranges).
        """
        lo, hi = np.broadcast_arrays(np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64))
        empty = hi <= lo
        last = np.where(empty, lo, hi - 1)
        b_lo, b_hi = lo // BLOCK, last // BLOCK
        b_lo = np.minimum(b_lo, len(self.blocks) - 1)
        b_hi = np.minimum(b_hi, len(self.blocks) - 1)
        col = np.arange(BLOCK)
        head_row = self.blocks[b_lo]  # (..., BLOCK)
        tail_row = self.blocks[b_hi]
        pos_lo = (lo - b_lo * BLOCK)[..., None]
        pos_hi = (last - b_hi * BLOCK)[..., None]
        same = (b_lo == b_hi)[..., None]
        head = np.where((col >= pos_lo) & (~same | (col <= pos_hi)), head_row, 0.0).max(axis=-1)
        tail = np.where((col <= pos_hi) & ~same, tail_row, 0.0).max(axis=-1)
        out = np.maximum(head, tail)
        inner_lo, inner_hi = b_lo + 1, b_hi  # whole blocks strictly between
        some = inner_hi > inner_lo
        if some.any():
            length = np.where(some, inner_hi - inner_lo, 1)
            j = np.floor(np.log2(length)).astype(np.int64)
            a = self.table[j, np.where(some, inner_lo, 0)]
            b = self.table[j, np.where(some, inner_hi - (np.int64(1) << j), 0)]
            out = np.where(some, np.maximum(out, np.maximum(a, b)), out)
        return np.where(empty, 0.0, out)


def range_max(values) -> RangeMax:
    """Build the range-maximum structure over ``values`` (float64, >= 0).

    Parameters
    ----------
    values : array_like, shape (L,)
        The levels (nonnegative: the padding and empty ranges read 0).

    Returns
    -------
    RangeMax
        The structure; ``query(lo, hi)`` gives max(values[lo:hi]).
    """
    values = np.asarray(values, dtype=np.float64)
    blocks = np.zeros(padded_size(len(values)))
    blocks[: len(values)] = values
    return range_max_of_blocks(blocks.reshape(-1, BLOCK))


def padded_size(L: int) -> int:
    """Count the entries of the zero-padded block layout of L values (a multiple of BLOCK, >= BLOCK).

    Parameters
    ----------
    L : int
        Number of values.

    Returns
    -------
    int
        ``BLOCK * max(1, ceil(L / BLOCK))``. O(1).
    """
    return BLOCK * max(1, -(-L // BLOCK))


def range_max_of_blocks(blocks: np.ndarray) -> RangeMax:
    """Build the structure over values already laid out in blocks (no copy: ``blocks`` is kept).

    Parameters
    ----------
    blocks : ndarray of float64, shape (nb, BLOCK)
        The values (>= 0) row by row, zero past the last one; a caller that fills a flat array of
        :func:`padded_size` entries and views its first L as the values spares :func:`range_max`'s
        copy.

    Returns
    -------
    RangeMax
        The structure; O(nb * BLOCK) to build (one row maximum and a sparse table over nb values).
    """
    nb = len(blocks)
    table = np.empty((max(1, nb.bit_length()), nb))  # row j for spans 2^j <= nb, filled in place (one row when nb = 0)
    np.copyto(table[0], blocks[:, 0])  # the block maxima, column by column (3x blocks.max(axis=1))
    for c in range(1, blocks.shape[1]):
        np.maximum(table[0], blocks[:, c], out=table[0])
    for j in range(1, len(table)):
        span, valid = 1 << (j - 1), nb - (1 << j) + 1
        np.maximum(table[j - 1, :valid], table[j - 1, span : span + valid], out=table[j, :valid])
        table[j, valid:] = 0.0
    return RangeMax(blocks, table)
