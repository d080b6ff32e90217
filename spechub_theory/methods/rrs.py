r"""Recursive rejection sampling with replacement (SpecInfer's multi-step speculative sampling).

Convention: p = target, q = draft, last axis = vocabulary; k i.i.d. drafts x_1..x_k ~ q.
Stage j accepts x_j with probability min(1, p_j(x_j)/q(x_j)); on rejection
p_{j+1} = (p_j - q)_+ / TV(p_j, q); if all k are rejected, emit y ~ p_{k+1}.
Source: Miao et al. 2024 (SpecInfer); theory.md 4.2.
"""

from __future__ import annotations

import numpy as np

from ..distributions import check_k, check_pq
from ..draft_laws import IID
from .base import NodeRule, normalise_residual, ratio_accept, slots_from_sequential, take_last

__all__ = ["NAME", "LAW", "FIXED_K", "rule", "acceptance", "rate", "positional", "stage_targets", "multipliers"]

NAME = "rrs"
LAW = IID
FIXED_K = None
#: whether ``rule(...).residual`` depends on the drafts (the stage targets p_j do not depend on which drafts were rejected); Monte Carlo uses it
RESIDUAL_DEPENDS_ON_DRAFTS = False


def stage_targets(p: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """Residual targets p_1 = p, ..., p_{k+1}, shape (k+1, ..., n).

    A stage with TV(p_j, q) = 0 accepts surely, so its successor is unreachable; it is set to p_j.

    Parameters
    ----------
    p, q : numpy.ndarray
        Target and draft laws, last axis = vocabulary.
    k : int
        Drafts per node.

    Returns
    -------
    numpy.ndarray
    """
    out = [np.broadcast_to(p, np.broadcast_shapes(p.shape, q.shape))]
    for _ in range(k):
        out.append(normalise_residual(out[-1] - q, out[-1]))
    return np.stack(out)


def rule(p, q, drafts) -> NodeRule:
    """Node rule of RRS with replacement for drafts of shape (..., k). O(k n) per node.

    Duplicated drafts are handled like any other draft (after x is rejected p_{j+1}(x) = 0, so a
    repeat of x is rejected and applies its residual update; EAGLE's skip is a bug, seed-notes 1.5).

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    drafts : ndarray of int, shape (..., k)

    Returns
    -------
    NodeRule
    """
    p, q = check_pq(p, q)
    drafts = np.asarray(drafts, dtype=np.int64)
    k = drafts.shape[-1]
    targets = stage_targets(p, q, k)
    cond = np.concatenate(
        [ratio_accept(take_last(targets[j], drafts[..., j : j + 1]), take_last(q, drafts[..., j : j + 1])) for j in range(k)],
        axis=-1,
    )
    return NodeRule(accept=slots_from_sequential(cond), residual=targets[k])


def multipliers(p: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    r"""The multipliers :math:`c_1 = 1,\ c_{j+1} = c_j + 1 - A(c_j)`, shape (k, ...).

    Parameters
    ----------
    p, q : numpy.ndarray
        Target and draft laws, last axis = vocabulary.
    k : int
        Drafts per node.

    Returns
    -------
    numpy.ndarray
    """
    c = [np.ones(np.broadcast_shapes(p.shape, q.shape)[:-1])]
    for _ in range(k - 1):
        c.append(c[-1] + 1.0 - np.minimum(p, c[-1][..., None] * q).sum(axis=-1))
    return np.stack(c)


def acceptance(p, q, k: int) -> np.ndarray:
    r"""Exact acceptance of RRS with k i.i.d. drafts: :math:`\alpha = A(c_k)`.

    With :math:`A(c) = \sum_x \min(p(x), c\,q(x))`, :math:`c_1 = 1` and
    :math:`c_{j+1} = c_j + 1 - A(c_j)`; equivalently :math:`1 - \prod_j \mathrm{TV}(p_j, q)`.
    For k = 2, :math:`\alpha = \sum_x \min(p(x), (1 + \mathrm{TV})\,q(x))`. O(k n) per row.
    Source: theory.md 4.2.

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int
        Drafts per node.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> round(float(acceptance([.4, .4, .2], [.7, .2, .1], 2)), 6)
    0.79
    """
    p, q = check_pq(p, q)
    return rate(p, q, check_k(k))


def rate(p, q, k: int) -> np.ndarray:
    """Rate on validated input: :func:`acceptance` without its checks.

    For arrays already validated by :func:`~spechub_theory.distributions.check_pq` and a valid k
    (callers that validate once, like ``acceptance_rates``).

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int
        Drafts per node.

    Returns
    -------
    numpy.ndarray
    """
    c = multipliers(p, q, k)[-1]
    return np.minimum(p, c[..., None] * q).sum(axis=-1)


def positional(p, q, k: int) -> np.ndarray:
    """P(slot j is the accepted draft), shape (..., k).

    The first j stages of k-draft RRS are j-draft RRS, so the split is the difference of successive
    rates A(c_j). O(k n).

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int
        Drafts per node.

    Returns
    -------
    numpy.ndarray
    """
    p, q = check_pq(p, q)
    k = check_k(k)
    c = multipliers(p, q, k)
    rates = np.stack([np.minimum(p, c[j][..., None] * q).sum(axis=-1) for j in range(k)], axis=-1)
    return np.diff(rates, axis=-1, prepend=0.0)
