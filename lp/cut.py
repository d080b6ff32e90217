r"""Brute-force min-cut: the exact optimum of any draft law by enumerating all 2^n token sets.

Convention: p = target, q = draft, last axis = vocabulary; a draft law is given by its exact
enumeration (:class:`~spechub_theory.draft_laws.DraftSupport`). Source: theory.md 2.3.

.. math:: \alpha^*(Q, p) = \min_{A \subseteq V} \big[\, p(A) + 1 - Q(S(\bar x) \subseteq A) \,\big]

The reference oracle for every faster method: it assumes nothing about prefixes or orders.
"""

from __future__ import annotations

import numpy as np

from spechub_theory.draft_laws import DraftSupport

from .result import MinCut, cut_value

__all__ = ["MAX_CUT_N", "min_cut", "covered_by_subset"]

#: largest vocabulary for the 2^n enumeration (2^20 float64 tables = 8 MiB each)
MAX_CUT_N = 20


def covered_by_subset(support: DraftSupport, n: int) -> np.ndarray:
    r"""Table of :math:`Q(S(\bar x) \subseteq A)` for every A, indexed by the bit mask of A.

    The mass of each draft set is put at its bit mask and summed over subsets by the zeta
    (subset-sum) transform: O(m k + n 2^n) time, O(2^n) memory.

    Parameters
    ----------
    support : DraftSupport
        The draft law enumerated: ``tuples`` (m, k) and their ``mass`` (m,).
    n : int
        Vocabulary size, at most ``MAX_CUT_N``.

    Returns
    -------
    numpy.ndarray
        The float64 table, shape (2^n,): entry ``mask`` is the mass of the tuples whose drafts all
        lie in the set with bit mask ``mask``.

    Raises
    ------
    ValueError
        If ``n > MAX_CUT_N``.
    """
    if n > MAX_CUT_N:
        raise ValueError(f"brute-force min-cut enumerates 2^n sets; n = {n} exceeds {MAX_CUT_N}.")
    masks = np.bitwise_or.reduce(np.left_shift(np.int64(1), support.tuples), axis=1)
    table = np.bincount(masks, support.mass, minlength=1 << n)
    for i in range(n):
        view = table.reshape(-1, 2, 1 << i)
        view[:, 1, :] += view[:, 0, :]
    return table


def min_cut(support: DraftSupport, p) -> MinCut:
    """The exact optimum :math:`\\alpha^*(Q, p)` and a minimising set A, by enumerating all sets.

    Parameters
    ----------
    support : DraftSupport
        The draft law (``tuples`` of token ids < n, ``mass`` summing to 1).
    p : array_like, shape (n,)
        Target distribution (validated by the caller).

    Returns
    -------
    MinCut
        ``value`` is the optimum; ``tokens`` a minimiser (the first in bit-mask order).

    Notes
    -----
    O(n 2^n + m k); n <= MAX_CUT_N. The covered mass is a subset sum, so ``1 - covered`` may
    cancel to ~1e-16; the returned certificate is re-summed directly (:func:`cut_value`).

    Examples
    --------
    >>> from spechub_theory.draft_laws import IID
    >>> p, q = [.3, .3, .4], [.6, .3, .1]
    >>> round(min_cut(IID.enumerate(q, 2), p).value, 6)   # theory.md 6.1, E2, OPT iid
    0.79
    """
    p = np.asarray(p, dtype=np.float64)
    n = len(p)
    covered = covered_by_subset(support, n)
    p_of = np.zeros(1)
    for x in p:  # p(A) for every mask, doubling the table once per token
        p_of = np.concatenate([p_of, p_of + x])
    values = p_of + (support.mass.sum() - covered)
    best = int(np.argmin(values))
    return cut_value(support, p, np.flatnonzero((best >> np.arange(n)) & 1))
