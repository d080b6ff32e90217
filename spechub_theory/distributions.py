r"""Validated probability vectors and the basic functionals of a (target, draft) pair.

Convention: ``p`` = target, ``q`` = draft, last axis = vocabulary (size ``n``); leading axes are
batches of positions. Everything is float64. Source: theory.md section 1.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SUM_ATOL",
    "check_distribution",
    "check_pq",
    "check_pq_sums",
    "renormalised",
    "check_k",
    "total_variation",
    "coverage",
    "probs_from_logits",
]

#: tolerance on ``sum(p) == 1`` before renormalising (float32 softmax sums drift by ~1e-7 per 1e5 terms)
SUM_ATOL = 1e-6


def check_distribution(x, name: str = "p", *, atol: float = SUM_ATOL) -> np.ndarray:
    """Validate a (batch of) probability vector(s) and return it renormalised in float64.

    Parameters
    ----------
    x : array_like, shape (..., n)
        Non-negative finite entries summing to 1 within ``atol`` along the last axis.
    name : str
        The argument's name, used in error messages.
    atol : float
        Tolerance on the sum before renormalising.

    Returns
    -------
    ndarray, shape (..., n), float64, rows summing to 1.

    Raises
    ------
    ValueError
        Naming the argument, the (first) offending index and the problem: not 1-D or more, empty,
        not finite, negative, or not summing to 1.

    Examples
    --------
    >>> check_distribution([0.25, 0.75]).tolist()
    [0.25, 0.75]
    """
    return renormalised(*_checked_with_sums(x, name, atol))


def renormalised(x: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """Divide ``x`` by its row sums, or return ``x`` itself when every sum is exactly 1.

    Read-only use everywhere: no copy is needed when nothing changes. O(n) per row.

    Parameters
    ----------
    x : numpy.ndarray
        The float64 rows, shape (..., n).
    sums : numpy.ndarray
        Their row sums with the last axis kept, shape (..., 1).

    Returns
    -------
    numpy.ndarray
        ``x / sums``, or ``x`` itself.
    """
    if (sums == 1.0).all():
        return x
    return x / sums


def _checked_with_sums(x, name: str, atol: float) -> tuple[np.ndarray, np.ndarray]:
    """The checks of :func:`check_distribution`: (x as float64, its row sums keeping the last axis)."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{name}` must be an array of numbers; {exc}") from None
    if arr.ndim == 0:
        raise ValueError(f"`{name}` must be a vector (shape (n,) or (..., n)); got a scalar.")
    if arr.shape[-1] == 0:
        raise ValueError(f"`{name}` must not be empty.")
    s = arr.sum(axis=-1, keepdims=True)  # one pass: NaN/inf anywhere makes a row sum non-finite
    if not np.isfinite(s).all():
        bad = ~np.isfinite(arr)
        if bad.any():
            idx = _first_index(bad)
            raise ValueError(f"`{name}` must be finite; {name}{_fmt(idx)} = {arr[idx]}.")
    if arr.min() < 0:
        idx = _first_index(arr < 0)
        raise ValueError(f"`{name}` must be non-negative; {name}{_fmt(idx)} = {arr[idx]:.6g}.")
    off = np.abs(s - 1.0) > atol
    if off.any():
        row = _first_index(off[..., 0]) if arr.ndim > 1 else ()
        where = f"row {_fmt(row)[1:-1]} sums" if arr.ndim > 1 else "it sums"
        raise ValueError(
            f"`{name}` must sum to 1 along the last axis within {atol:g}; {where} to {float(s[row][0]):.6g}."
        )
    return arr, s


def check_pq(p, q, *, atol: float = SUM_ATOL) -> tuple[np.ndarray, np.ndarray]:
    """Validate a target ``p`` and a draft ``q`` of the same vocabulary; return float64 copies.

    Shapes must agree on the last axis (the vocabulary) and broadcast on the leading ones.
    O(n) per row.

    Parameters
    ----------
    p, q : array_like
        Target and draft laws, shape (..., n); each row non-negative and summing to 1.
    atol : float, optional
        Tolerance on each row's sum before it is renormalised.

    Returns
    -------
    p : numpy.ndarray
        A float64 copy of ``p``, each row renormalised to sum to 1 up to rounding.
    q : numpy.ndarray
        The same for ``q``.

    Raises
    ------
    ValueError
        If either is not a distribution (see :func:`check_distribution`) or the shapes differ.
    """
    p, q, p_sums, q_sums = check_pq_sums(p, q, atol=atol)
    return renormalised(p, p_sums), renormalised(q, q_sums)


def check_pq_sums(p, q, *, atol: float = SUM_ATOL):
    """Validate like :func:`check_pq` without its renormalisation.

    :func:`renormalised` finishes the job, e.g. block by block on a large batch instead of copying
    it whole. O(n) per row.

    Parameters
    ----------
    p, q : array_like
        Target and draft laws, shape (..., n).
    atol : float, optional
        Tolerance on each row's sum.

    Returns
    -------
    p : numpy.ndarray
        ``p`` as float64.
    q : numpy.ndarray
        ``q`` as float64.
    p_sums : numpy.ndarray
        Row sums of ``p``, the last axis kept.
    q_sums : numpy.ndarray
        Row sums of ``q``, the last axis kept.

    Raises
    ------
    ValueError
        If either is not a distribution, or the last axes differ, or the shapes do not broadcast.
    """
    p, p_sums = _checked_with_sums(p, "p", atol)
    q, q_sums = _checked_with_sums(q, "q", atol)
    if p.shape[-1] != q.shape[-1]:
        raise ValueError(f"`p` and `q` must have the same length; got {p.shape} and {q.shape}.")
    try:
        np.broadcast_shapes(p.shape, q.shape)
    except ValueError:
        raise ValueError(f"`p` and `q` must have broadcastable shapes; got {p.shape} and {q.shape}.") from None
    return p, q, p_sums, q_sums


def check_k(k, n: int | None = None, *, distinct: bool = False, name: str = "k") -> int:
    """Validate a number of drafts ``k`` (an integer >= 1; <= n when the drafts must be distinct).

    Parameters
    ----------
    k : int
        The number to check; an integral float is accepted, a bool is not.
    n : int, optional
        Vocabulary size, needed for the ``distinct`` check.
    distinct : bool, optional
        Whether the drafts must be distinct tokens (then ``k <= n``).
    name : str, optional
        The argument's name in the error message.

    Returns
    -------
    int
        ``k`` as a Python int.

    Raises
    ------
    ValueError
        If ``k`` is not an integer >= 1, or exceeds ``n`` when ``distinct``.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        if isinstance(k, float) and float(k).is_integer():
            k = int(k)
        else:
            raise ValueError(f"`{name}` must be an integer >= 1; got {k!r}.")
    k = int(k)
    if k < 1:
        raise ValueError(f"`{name}` must be an integer >= 1; got {k}.")
    if distinct and n is not None and k > n:
        raise ValueError(f"`{name}` = {k} distinct drafts need a vocabulary of at least {k} tokens; n = {n}.")
    return k


def total_variation(p, q) -> np.ndarray:
    r"""Total variation distance :math:`\mathrm{TV}(p,q) = \sum_x (q(x) - p(x))_+`.

    Computed as the positive part (not half the L1 norm) so that it is exactly ``1 - sum(min(p, q))``
    in floating point up to one rounding. O(n) per row.

    Parameters
    ----------
    p, q : array_like
        Target and draft laws, shape (..., n).

    Returns
    -------
    numpy.ndarray
        The float64 distances in [0, 1], shape (...).

    Raises
    ------
    ValueError
        If ``p`` or ``q`` is not a distribution (see :func:`check_pq`).

    Examples
    --------
    >>> round(float(total_variation([.4, .4, .2], [.7, .2, .1])), 6)
    0.3
    """
    p, q = check_pq(p, q)
    return np.maximum(q - p, 0.0).sum(axis=-1)


def coverage(p, q, c) -> np.ndarray:
    r"""The coverage function :math:`A(c) = \sum_x \min(p(x), c\,q(x))` (theory.md section 1).

    Non-decreasing and concave in ``c``; ``A(1) = 1 - TV(p, q)``. ``c`` broadcasts against the
    leading axes of ``p`` and ``q``. O(n) per row and value of ``c``.

    Parameters
    ----------
    p, q : array_like
        Target and draft laws, shape (..., n).
    c : float or array_like
        The scale(s) of ``q``; broadcasts against the leading axes.

    Returns
    -------
    numpy.ndarray
        The float64 values of :math:`A(c)`, shape ``broadcast(c.shape, p.shape[:-1])``.

    Raises
    ------
    ValueError
        If ``p`` or ``q`` is not a distribution (see :func:`check_pq`).

    Examples
    --------
    >>> round(float(coverage([.4, .4, .2], [.7, .2, .1], 1.3)), 6)
    0.79
    """
    p, q = check_pq(p, q)
    c = np.asarray(c, dtype=np.float64)
    return np.minimum(p, c[..., None] * q).sum(axis=-1)


def probs_from_logits(logits, temperature: float = 1.0, top_p: float = 1.0) -> np.ndarray:
    r"""Compute probabilities :math:`\mathrm{softmax}(z / T)` with optional nucleus (top-p) truncation.

    Parameters
    ----------
    logits : array_like, shape (..., n)
        Finite logits (``-inf`` allowed for masked tokens, at least one finite per row).
    temperature : float
        ``T > 0`` divides the logits; ``T == 0`` is greedy: one-hot at the argmax (lowest index on
        ties). Negative values raise.
    top_p : float in (0, 1]
        Keep the smallest set of most probable tokens whose mass reaches ``top_p`` (ties broken by
        index), renormalise. ``1.0`` keeps everything.

    Returns
    -------
    ndarray, shape (..., n), float64.

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``logits`` must be a non-empty vector (shape (n,)
        or (..., n)); or ``logits`` must not contain NaN or +inf; or ``logits`` must have at least
        one finite entry per row.

    Notes
    -----
    O(n) per row without top-p, O(n log n) with it. Computed in float64 after a max-shift.

    Examples
    --------
    >>> probs_from_logits([0.0, 0.0], temperature=0).tolist()
    [1.0, 0.0]
    """
    try:
        z = np.array(logits, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`logits` must be an array of numbers; {exc}") from None
    if z.ndim == 0 or z.shape[-1] == 0:
        raise ValueError("`logits` must be a non-empty vector (shape (n,) or (..., n)).")
    if np.isnan(z).any() or np.isposinf(z).any():
        raise ValueError("`logits` must not contain NaN or +inf.")
    if not np.isfinite(z).any(axis=-1).all():
        raise ValueError("`logits` must have at least one finite entry per row.")
    temperature = float(temperature)
    if not np.isfinite(temperature) or temperature < 0:
        raise ValueError(f"`temperature` must be >= 0 (0 = greedy); got {temperature}.")
    top_p = float(top_p)
    if not (0.0 < top_p <= 1.0):
        raise ValueError(f"`top_p` must be in (0, 1]; got {top_p}.")
    if temperature == 0.0:
        out = np.zeros_like(z)
        np.put_along_axis(out, np.argmax(z, axis=-1)[..., None], 1.0, axis=-1)
        return out
    z = z / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    probs = e / e.sum(axis=-1, keepdims=True)
    if top_p < 1.0:
        order = np.argsort(-probs, axis=-1, kind="stable")
        sorted_p = np.take_along_axis(probs, order, axis=-1)
        before = np.cumsum(sorted_p, axis=-1) - sorted_p  # mass strictly before each token
        keep_sorted = before < top_p
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=-1)
        probs = np.where(keep, probs, 0.0)
        probs = probs / probs.sum(axis=-1, keepdims=True)
    return probs


def _first_index(mask: np.ndarray) -> tuple:
    """Index tuple of the first True entry of ``mask`` (C order)."""
    flat = int(np.flatnonzero(mask.ravel())[0])
    return tuple(int(i) for i in np.unravel_index(flat, mask.shape)) if mask.ndim else ()


def _fmt(idx: tuple) -> str:
    """Format an index tuple as ``[i, j]``."""
    return "[" + ", ".join(str(i) for i in idx) + "]"
