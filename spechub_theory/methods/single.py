r"""Single-draft speculative sampling (Leviathan et al. 2023; Chen et al. 2023).

Convention: p = target, q = draft, last axis = vocabulary; k = 1 draft x ~ q.
Accept x with probability min(1, p(x)/q(x)); otherwise emit y ~ (p - q)_+ / TV (theory.md 4.1).
"""

from __future__ import annotations

import numpy as np

from ..distributions import check_pq
from ..draft_laws import IID
from .base import NodeRule, normalise_residual, ratio_accept, take_last

__all__ = ["NAME", "LAW", "FIXED_K", "rule", "acceptance", "rate", "positional", "ratio_accept"]

NAME = "single"
LAW = IID
#: single-draft speculative sampling always verifies one draft
FIXED_K = 1
#: whether ``rule(...).residual`` depends on the drafts (the residual (p - q)_+ is the same for every draft); Monte Carlo uses it
RESIDUAL_DEPENDS_ON_DRAFTS = False


def rule(p, q, drafts) -> NodeRule:
    """Node rule for one draft.

    ``accept = min(1, p(x)/q(x))``, residual ``(p - q)_+`` normalised (falls back to p when TV = 0,
    where rejection has probability 0). O(n) per node.

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
    x = np.asarray(drafts, dtype=np.int64)[..., :1]
    return NodeRule(accept=ratio_accept(take_last(p, x), take_last(q, x)), residual=normalise_residual(p - q, p))


def acceptance(p, q, k: int = 1) -> np.ndarray:
    r"""Exact acceptance :math:`1 - \mathrm{TV}(p, q) = \sum_x \min(p(x), q(x))`; O(n) per row.

    ``k`` is accepted for a uniform signature and ignored (one draft).

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int, optional
        Drafts per node.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> round(float(acceptance([.4, .4, .2], [.7, .2, .1])), 6)
    0.7
    """
    p, q = check_pq(p, q)
    return rate(p, q)


def rate(p, q, k: int = 1) -> np.ndarray:
    """Rate on validated input: :func:`acceptance` without its checks.

    For arrays already validated by :func:`~spechub_theory.distributions.check_pq` and a valid k
    (callers that validate once, like ``acceptance_rates``).

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int, optional
        Drafts per node.

    Returns
    -------
    numpy.ndarray
    """
    return np.minimum(p, q).sum(axis=-1)


def positional(p, q, k: int = 1) -> np.ndarray:
    """P(the single draft is accepted), shape (..., 1).

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int, optional
        Drafts per node.

    Returns
    -------
    numpy.ndarray
    """
    return acceptance(p, q)[..., None]
