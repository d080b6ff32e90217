r"""Verify drafts with any method, and its exact output law on small vocabularies.

Convention: p = target, q = draft, last axis = vocabulary. These functions loop over nothing
method-specific: each method contributes its draft law and node rule
(:mod:`spechub_theory.methods`). Source: theory.md sections 1 and 7.
"""

from __future__ import annotations

import numpy as np

from .argorder import refuses_old_order
from .distributions import check_k, check_pq
from .methods import get_method
from .methods.base import ExactLaw, Verification, law_from_rule, verify_from_rule

__all__ = ["sample_drafts", "verify", "output_law", "check_method_k"]


def check_method_k(method, k, n: int | None = None) -> int:
    """Validate k for a method (single-draft methods need k = 1; distinct laws need k <= n).

    Parameters
    ----------
    method : str or module
        The verification method (a name or a method module).
    k : int
        Drafts per node.
    n : int or None, optional

    Returns
    -------
    int

    Raises
    ------
    ValueError
        On bad input (the message names the rule): Method ... verifies exactly ... draft(s).
    """
    m = get_method(method)
    k = check_k(k, n, distinct=m.LAW.distinct)
    fixed = getattr(m, "FIXED_K", None)
    if fixed is not None and k != fixed:
        raise ValueError(f"method {m.NAME!r} verifies exactly {fixed} draft(s); got k = {k}.")
    return k


@refuses_old_order("q", "sample_drafts(q, k, method={name!r})")
def sample_drafts(q, k: int, *, method, size=None, rng=None) -> np.ndarray:
    """Draw draft tuples from the method's draft law (see :meth:`DraftLaw.sample`).

    Parameters
    ----------
    q : array_like, shape (..., n)
        Draft law.
    k : int
        Drafts per node (1 for a single-draft method).
    method : str or method module
        The verification method whose draft law is sampled (i.i.d., without replacement, hub set).
    size : int or tuple of int, optional
        Number of draft tuples per row of ``q`` (shape of the leading axes added).
    rng : numpy.random.Generator or int, optional
        Source of randomness.

    Returns
    -------
    numpy.ndarray of int64, shape (..., k)
        The drawn draft tuples.

    Raises
    ------
    TypeError
        When a method name is passed as ``q`` (the old order ``sample_drafts(method, q, k)``).
    ValueError
        For an unknown method or a ``k`` the method does not take.
    """
    m = get_method(method)
    return m.LAW.sample(q, check_method_k(m, k), size=size, rng=rng)


@refuses_old_order("p", "verify(p, q, drafts, u, method={name!r})")
def verify(p, q, drafts, u, *, method) -> Verification:
    """Verify drafts (..., k) against (p, q) with explicit uniforms ``u`` (..., k + 1) in [0, 1).

    ``u[..., j]`` tests slot j in order (against P(slot j | slots < j rejected)), ``u[..., k]``
    samples the residual. Returns the emitted token and the accepted slot (-1 when rejected).
    Feeding the same uniforms to two implementations gives identical outputs. O(k n) per node.

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws.
    drafts : array_like of int, shape (..., k)
        The drafted token ids of each node.
    u : array_like, shape (..., k + 1)
        Uniforms in [0, 1): one per slot test, the last for the residual.
    method : str or method module
        The verification method.

    Returns
    -------
    Verification
        The emitted ``token`` and the accepted ``slot`` (-1: none) of every node.

    Raises
    ------
    TypeError
        When a method name is passed as ``p`` (the old order ``verify(method, p, ...)``).
    ValueError
        For invalid laws, token ids outside [0, n), a wrong number of uniforms or an unknown method.
    """
    m = get_method(method)
    p, q = check_pq(p, q)
    drafts = np.asarray(drafts, dtype=np.int64)
    check_method_k(m, drafts.shape[-1])
    if drafts.size and (drafts.min() < 0 or drafts.max() >= p.shape[-1]):
        raise ValueError(f"`drafts` must be token ids in [0, {p.shape[-1]}).")
    return verify_from_rule(m.rule(p, q, drafts), drafts, u)


@refuses_old_order("p", "output_law(p, q, k, method={name!r})")
def output_law(p, q, k: int, *, method) -> ExactLaw:
    """Exact law of the emitted token, acceptance and positional split at one node.

    Enumerates the method's draft law (O(n^k) tuples) and averages its node rule: for a lossless
    method ``output_law(...).output`` equals ``p`` to round-off (1e-12).

    Parameters
    ----------
    p, q : array_like, shape (n,)
        Target and draft laws of one node.
    k : int
        Drafts per node.
    method : str or method module
        The verification method (a registered name, or any object with ``NAME``, ``LAW`` and ``rule``).

    Returns
    -------
    ExactLaw
        The output law, the acceptance probability and its per-slot split.

    Raises
    ------
    TypeError
        When a method name is passed as ``p`` (the old order ``output_law(method, p, q, k)``).
    ValueError
        For invalid laws, an unknown method or a ``k`` the method does not take.

    Examples
    --------
    >>> law = output_law([.4, .4, .2], [.7, .2, .1], 2, method="spechub")
    >>> round(law.acceptance, 6), round(law.max_error([.4, .4, .2]), 12)
    (1.0, 0.0)

    A method name in the place of ``p`` (the old order ``output_law(method, p, q, k)``) raises
    ``TypeError`` naming the new order.
    """
    m = get_method(method)
    p, q = check_pq(p, q)
    if p.ndim != 1 or q.ndim != 1:
        raise ValueError("`output_law` takes a single pair p, q of shape (n,).")
    k = check_method_k(m, k, p.shape[-1])
    support = m.LAW.enumerate(q, k)
    return law_from_rule(m.rule(p, q, support.tuples), support.tuples, support.mass, p.shape[-1])
