"""The one layout in which the optimal verifier's plans of a batch of rows travel and go to the device.

Convention: p = target, q = draft, last axis = vocabulary; row i holds the plan of (p[i], q[i], k).
Source: :mod:`empirical.plan_pool` (who writes it); :mod:`spechub_theory.methods.optimal_plan`.

Field by field over the rows, in one buffer of float64 words (a numpy array, or a shared-memory
block): p, q [R, n] (the pool's inputs), rank (int64), accept ratio and residual [R, n], the
range-maximum blocks [R, NB, BLOCK] and the sparse table [R, LOG, NB], zero-padded to the largest
NB and LOG that n tokens can need: each field of the first B rows is one contiguous array, which
goes to the device in one copy. A row takes ``row_words(n)`` words (~7n at n = 151,936).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from spechub_theory.methods import optimal
from spechub_theory.methods.range_max import BLOCK, padded_size

__all__ = ["PlanRows", "PlanArrays", "Slots", "plan_arrays", "row_words", "slots", "write_", "tensors"]


@dataclass(frozen=True)
class PlanRows:
    """The plans of B rows of one vocabulary as tensors on one device.

    Attributes
    ----------
    rank : torch.Tensor of int64, shape (B, n)
        Position of each token in the plan's order (-1 where q = 0).
    accept_ratio : torch.Tensor, shape (B, n)
        min(1, p/q~).
    residual : torch.Tensor, shape (B, n)
        (p - q~)_+ normalised.
    m : torch.Tensor of int64, shape (B,)
        The cuts.
    blocks : torch.Tensor, shape (B, NB, BLOCK)
        Range-maximum blocks of the gap levels, zero past each row's own.
    table : torch.Tensor, shape (B, LOG, NB)
        Sparse table over the block maxima, zero past each row's own.
    """

    rank: object
    accept_ratio: object
    residual: object
    m: object
    blocks: object
    table: object


class PlanArrays(NamedTuple):
    """What the device needs of one plan (picklable, so the pipe transport can return it).

    Attributes
    ----------
    rank : ndarray of int64, shape (n,)
    accept_ratio : ndarray, shape (n,)
    residual : ndarray, shape (n,)
    m : int
    blocks : ndarray, shape (nb, BLOCK)
        Range-maximum blocks of the gap levels.
    table : ndarray, shape (log, nb)
        Sparse table over the block maxima.
    """

    rank: np.ndarray
    accept_ratio: np.ndarray
    residual: np.ndarray
    m: int
    blocks: np.ndarray
    table: np.ndarray


class Slots(NamedTuple):
    """Views of the layout over a buffer of R rows (module docstring).

    Attributes
    ----------
    p, q : ndarray, shape (R, n)
    rank : ndarray of int64, shape (R, n)
    accept_ratio, residual : ndarray, shape (R, n)
    blocks : ndarray, shape (R, NB, BLOCK)
    table : ndarray, shape (R, LOG, NB)
    """

    p: np.ndarray
    q: np.ndarray
    rank: np.ndarray
    accept_ratio: np.ndarray
    residual: np.ndarray
    blocks: np.ndarray
    table: np.ndarray


def plan_arrays(p, q, k: int) -> PlanArrays:
    """The arrays of ``optimal.plan(p, q, k)`` that the device reads (no copy; cached by content).

    Parameters
    ----------
    p, q : array_like, shape (n,)
        Target and draft laws.
    k : int
        Drafts per node.

    Returns
    -------
    PlanArrays
        Views of the plan's arrays. O(n log n) for a new plan (:func:`spechub_theory.methods.optimal.plan`).
    """
    pl = optimal.plan(p, q, k)
    return PlanArrays(pl.rank, pl.accept_ratio, pl.residual, pl.m, pl._table.blocks, pl._table.table)


def row_words(n: int) -> int:
    """Count the float64 words of one row of the layout for a vocabulary of n.

    Parameters
    ----------
    n : int
        Vocabulary size.

    Returns
    -------
    int
        5 n + NB BLOCK + LOG NB, NB = ceil((n - 1) / BLOCK) (at least 1) and LOG = its bit length. O(1).
    """
    nb, log = _caps(n)
    return 5 * n + nb * BLOCK + log * nb


def slots(buffer, rows: int, n: int) -> Slots:
    """The layout's views over the first ``rows * row_words(n)`` float64 words of ``buffer``.

    Parameters
    ----------
    buffer : buffer
        Writable memory of at least that many words (a numpy array, ``SharedMemory.buf``).
    rows : int
        Rows R the layout is laid out for (the field offsets depend on it).
    n : int
        Vocabulary size.

    Returns
    -------
    Slots
        Views, no copy; O(1).
    """
    nb, log = _caps(n)
    flat = np.ndarray((rows * row_words(n),), np.float64, buffer=buffer)
    ends = np.cumsum((0, n, n, n, n, n, nb * BLOCK, log * nb)) * rows
    p, q, rank, ratio, residual, blocks, table = (flat[a:b].reshape(rows, -1) for a, b in zip(ends[:-1], ends[1:]))
    return Slots(p, q, rank.view(np.int64), ratio, residual, blocks.reshape(rows, nb, BLOCK), table.reshape(rows, log, nb))


def write_(rows: Slots, i: int, plan: PlanArrays) -> int:
    """Write one plan into row i of ``rows``, in place, zero past its blocks and table.

    Parameters
    ----------
    rows : Slots
        The layout written into.
    i : int
        Row.
    plan : PlanArrays
        Its n-long arrays, blocks and table (at most the layout's NB and LOG).

    Returns
    -------
    int
        The plan's cut m. O(n) copies.
    """
    rows.rank[i] = plan.rank
    rows.accept_ratio[i] = plan.accept_ratio
    rows.residual[i] = plan.residual
    log, nb = plan.table.shape
    rows.blocks[i, :nb] = plan.blocks
    rows.blocks[i, nb:] = 0.0
    rows.table[i, :log, :nb] = plan.table
    rows.table[i, :log, nb:] = 0.0
    rows.table[i, log:] = 0.0
    return int(plan.m)


def tensors(rows: Slots, m, device, *, copy: bool) -> PlanRows:
    """The first ``len(m)`` rows of the layout as tensors on ``device``.

    Parameters
    ----------
    rows : Slots
        The layout, filled by :func:`write_`.
    m : sequence of int
        The rows' cuts.
    device : torch.device or str
        Where the tensors go.
    copy : bool
        Copy even on the CPU (for memory that a later batch overwrites); else a CPU tensor shares
        the buffer.

    Returns
    -------
    PlanRows
        One copy per field (none on the CPU without ``copy``).
    """
    import torch

    count = len(m)

    def move(a):
        return torch.from_numpy(a[:count]).to(device, copy=copy)

    return PlanRows(move(rows.rank), move(rows.accept_ratio), move(rows.residual),
                    torch.as_tensor(m, dtype=torch.int64, device=device), move(rows.blocks), move(rows.table))


def _caps(n: int):
    """(NB, LOG): the most blocks and table rows of a plan over n tokens (n - 1 gaps at most)."""
    nb = padded_size(n - 1) // BLOCK
    return nb, nb.bit_length()
