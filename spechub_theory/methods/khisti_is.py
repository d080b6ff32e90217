r"""Khisti et al.'s importance-sampling verifier: select one of k i.i.d. drafts, then speculative sampling.

Convention: p = target, q = draft, last axis = vocabulary; k i.i.d. drafts x_1..x_k ~ q (Khisti et
al. write p for the draft and q for the target; rewritten here). Source: Khisti, Ebrahimi, Dbouk,
Behboodi, Memisevic, Louizos, ICLR 2025, arXiv 2410.18234 (canonical two-step decomposition: an
importance-sampling selection of one token, then single-draft speculative sampling against the law
of the selected token); theory.md 5.2.

Step 1 (selection). Slot j is selected with probability proportional to its importance weight
w(x_j) = p(x_j)/q(x_j); when every weight is 0 the slot is uniform (1/k each).
Step 2 (single-draft speculative sampling). With s = the law of the selected token (the selection
averaged over the i.i.d. drafts), the selected token y is accepted with probability
min(1, p(y)/s(y)); otherwise the output is drawn from (p - s)_+ / TV(p, s). Step 2 is exactly
lossless for any proposal law s, so the scheme is lossless and its acceptance is
sum_y min(p(y), s(y)) = 1 - TV(p, s).
"""

from __future__ import annotations

import numpy as np

from ..distributions import check_k, check_pq
from ..draft_laws import IID
from .base import NodeRule, normalise_residual, ratio_accept, take_last


__all__ = [
    "NAME", "LAW", "FIXED_K", "MAX_RATE_COST", "rule", "acceptance", "rate", "positional",
    "selection_law", "selection_weights", "rate_cost",
]

NAME = "khisti_is"
LAW = IID
FIXED_K = None
#: the residual (p - s)_+ depends only on (p, q, k), not on the drafts; Monte Carlo uses it
RESIDUAL_DEPENDS_ON_DRAFTS = False
#: a rejection may emit a drafted token that was not selected (the residual (p - s)_+ is positive on
#: such tokens), so "accepted iff the output is a draft" (theory.md 1) does not hold for this scheme
RESIDUAL_AVOIDS_DRAFTS = False
#: largest rows * n^k the exact selection law is computed for (about 10 s of numpy on one core)
MAX_RATE_COST = 2**28
#: (rows x other-draft tuples x vocabulary) entries per chunk of the enumeration (~ 64 MB)
_CHUNK_ENTRIES = 8_000_000


def rate_cost(rows: int, n: int, k: int) -> float:
    """Cost of the exact selection law.

    ``rows * n^k`` (n^(k-1) tuples of the other drafts, each against every token).

    Parameters
    ----------
    rows : int
    n : int
    k : int
        Drafts per node.

    Returns
    -------
    float
    """
    return float(rows) * float(n) ** int(k)


def selection_weights(p, q, drafts) -> np.ndarray:
    r"""Step-1 probabilities of selecting each slot, shape (..., k).

    .. math::
        \beta_j(x_1..x_k) = \frac{w(x_j)}{\sum_i w(x_i)}, \qquad w(x) = p(x)/q(x),

    uniform 1/k when every weight is 0 (all drafts have p = 0). A drafted token always has
    q > 0; a token with q = 0 (never drafted by the law) gets weight 0.

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    drafts : ndarray of int, shape (..., k)

    Returns
    -------
    numpy.ndarray
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    drafts = np.asarray(drafts, dtype=np.int64)
    px, qx = take_last(p, drafts), take_last(q, drafts)
    w = np.where(qx > 0, px / np.where(qx > 0, qx, 1.0), 0.0)
    total = w.sum(axis=-1, keepdims=True)
    k = drafts.shape[-1]
    return np.where(total > 0, w / np.where(total > 0, total, 1.0), 1.0 / k)


def selection_law(p, q, k: int) -> np.ndarray:
    r"""Law s of the selected token (step 1 averaged over k i.i.d. drafts), shape (..., n).

    By the exchangeability of the slots, with S = w(X_2) + ... + w(X_k) over k - 1 i.i.d. drafts:

    .. math::
        s(y) = k\, q(y)\, \mathbb{E}\Big[\frac{w(y)}{w(y) + S}\Big]
        \quad(\text{the ratio read as } 1/k \text{ when } w(y) + S = 0).

    For k = 2: :math:`s(y) = 2 q(y) \sum_z q(z)\, w(y)/(w(y) + w(z))`.

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int
        Drafts per node.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        Beyond :data:`MAX_RATE_COST` (so :func:`rate`, :func:`rule` and a decoder running the rule
        at a real vocabulary refuse at once instead of running for hours).

    Notes
    -----
    Exact: the k - 1 other drafts are enumerated (n^(k-1) tuples), so O(n^k) time per row, in
    chunks of bounded memory; no faster exact form is known here (the kernel w(y)/(w(y)+w(z))
    does not factor).
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    shape = np.broadcast_shapes(p.shape, q.shape)
    n = shape[-1]
    _check_cost(int(np.prod(shape[:-1])), n, k)
    p2 = np.broadcast_to(p, shape).reshape(-1, n)
    q2 = np.broadcast_to(q, shape).reshape(-1, n)
    w = np.where(q2 > 0, p2 / np.where(q2 > 0, q2, 1.0), 0.0)  # [rows, n]
    out = np.zeros_like(w)
    if k == 1:
        return np.array(np.broadcast_to(q, shape))
    for r in range(len(w)):
        others_s, others_m = _sum_law(w[r], q2[r], k - 1)  # law of S: values and masses
        step = max(1, _CHUNK_ENTRIES // n)
        acc = np.zeros(n)
        for lo in range(0, len(others_s), step):
            s_val, s_mass = others_s[lo : lo + step], others_m[lo : lo + step]
            den = w[r][:, None] + s_val[None, :]  # [n, chunk]
            ratio = np.where(den > 0, w[r][:, None] / np.where(den > 0, den, 1.0), 1.0 / k)
            acc += ratio @ s_mass
        out[r] = k * q2[r] * acc
    return out.reshape(shape)


def rule(p, q, drafts) -> NodeRule:
    """Node rule of Khisti et al.'s importance-sampling selection.

    ``accept[j] = beta_j * min(1, p(x_j)/s(x_j))``, residual ``(p - s)_+`` normalised (falls back to
    p when s = p, where rejection has probability 0). O(n^k) per row for s.

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
    s = selection_law(p, q, k)
    beta = selection_weights(p, q, drafts)
    accept = beta * ratio_accept(take_last(p, drafts), take_last(s, drafts))
    return NodeRule(accept=accept, residual=normalise_residual(p - s, p))


def acceptance(p, q, k: int) -> np.ndarray:
    r"""Exact acceptance :math:`\sum_y \min(p(y), s(y))` with s the selection law.

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int
        Drafts per node.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        If ``rows * n^k`` exceeds :data:`MAX_RATE_COST` (the exact law enumerates the other
        k - 1 drafts); the message gives the sizes that are reachable.

    Examples
    --------
    >>> round(float(acceptance([.4, .4, .2], [.7, .2, .1], 2)), 6)
    0.816667
    """
    p, q = check_pq(p, q)
    return rate(p, q, check_k(k))


def rate(p, q, k: int) -> np.ndarray:
    """:func:`acceptance` without the input checks (arrays validated once, at the door).

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
    s = selection_law(p, q, k)
    return np.minimum(p, s).sum(axis=-1)


def positional(p, q, k: int) -> np.ndarray:
    """P(slot j is the accepted draft), shape (..., k).

    The slots are exchangeable (i.i.d. drafts, symmetric selection), so each gets acceptance / k.

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
    alpha = acceptance(p, q, k)
    return np.repeat(alpha[..., None] / check_k(k), k, axis=-1)


def _check_cost(rows: int, n: int, k: int) -> None:
    cost = rate_cost(rows, n, k)
    if cost > MAX_RATE_COST:
        reach = int((MAX_RATE_COST / max(rows, 1)) ** (1.0 / k))
        raise ValueError(
            f"method 'khisti_is': the exact selection law needs rows * n^k = {rows} * {n}^{k} = {cost:.3g} "
            f"operations, above the limit {MAX_RATE_COST:.3g}; exact rates are reachable for n <= {reach} "
            f"at k = {k} with {rows} row(s) (the verifier itself needs s, so it does not run beyond that either)."
        )


def _sum_law(w: np.ndarray, q: np.ndarray, m: int):
    """Values and masses of S = w(X_1) + ... + w(X_m), X_i i.i.d. q, by enumeration of the
    m-tuples of tokens with q > 0 (zero-mass tuples dropped)."""
    support = np.flatnonzero(q > 0)
    vals, mass = np.zeros(1), np.ones(1)
    for _ in range(m):
        vals = (vals[:, None] + w[support][None, :]).ravel()
        mass = (mass[:, None] * q[support][None, :]).ravel()
    return vals, mass
