r"""What every verification method shares: the node rule, verification from uniforms, exact laws.

Convention: p = target, q = draft, last axis = vocabulary; a node has k ordered drafts (slots).

A method is described by its **node rule**: given the drafts of a node, the probability that each
slot is the accepted one, and the residual law sampled when none is. The same rule drives
Monte Carlo verification (:func:`verify`, from explicit uniforms), the exact output law
(:func:`output_law`, by enumerating the draft law) and tree decoding, so what is proved lossless on
small vocabularies is exactly what runs. Source: theory.md sections 1 and 7.

**The method interface.** Every module of :mod:`spechub_theory.methods` (and any user method or
mutant passed as an object) exposes the same names, so generic loops ask the method, never its name:

========================== ======== ================================================================
name                       required meaning (default used by generic code when absent)
========================== ======== ================================================================
``NAME``                   yes      registry name (``"rrs_wor"``)
``LAW``                    yes      its draft law (:class:`~spechub_theory.draft_laws.DraftLaw`)
``FIXED_K``                yes      1 for single-draft methods, else None (any k)
``rule(p, q, drafts)``     yes      the :class:`NodeRule` of a node
``acceptance(p, q, k)``    yes      exact rate, validated inputs, batched over leading axes
``rate(p, q, k)``          yes      the same on arrays validated once (no checks)
``positional(p, q, k)``    yes      per-slot split of the rate, shape (..., k)
``RESIDUAL_DEPENDS_ON_``   no       whether ``rule(...).residual`` depends on the drafts (True:
``DRAFTS``                          Monte Carlo evaluates the rule per draft tuple)
``sort_window(q, tv, k)``  no       the largest p/q breakpoint :func:`rate_sorted` reads at this k,
                                    or None when the rate does not use the shared sort (None)
``rate_sorted(sp, k)``     no       the rate from a shared :class:`~._sorted.SortedPair`
``RECURSION_FROM_K``       no       k at and above which the rate is a recursion with an error
                                    bound, ``acceptance_bounded(p, q, k, eps=)`` (None: never)
``size_limit(k)``          no       largest vocabulary at which the rate is affordable per node
                                    (measurement loops record None above it; None: no limit)
``RESIDUAL_FAMILY_K``      no       k at which the residual is :math:`(r - c\,q)_+` with c set by
                                    the first draft only, drawn in O(log n) (None: never)
========================== ======== ================================================================

The optional attributes are read with ``getattr(method, name, default)`` and the defaults above,
so a new method module needs only the required ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..distributions import check_pq

__all__ = [
    "NodeRule",
    "Verification",
    "ExactLaw",
    "normalise_residual",
    "verify_from_rule",
    "law_from_rule",
    "slots_from_sequential",
    "take_last",
    "ratio_accept",
    "recursive_rule",
    "residual_update",
    "sum_of_others",
]

#: residual mass below which the rejection branch is treated as unreachable (float64 round-off)
RESIDUAL_EPS = 1e-15


@dataclass(frozen=True)
class NodeRule:
    """Conditional outcome law of one verification given its drafts.

    Attributes
    ----------
    accept : ndarray, shape (..., k)
        ``accept[..., j]`` = P(slot j is the accepted draft | drafts); rows sum to at most 1.
    residual : ndarray, shape (..., n)
        Law of the output token when no draft is accepted (normalised; see
        :func:`normalise_residual` for the zero-mass fallback).
    """

    accept: np.ndarray
    residual: np.ndarray

    @property
    def reject(self) -> np.ndarray:
        """P(no draft accepted | drafts), shape (...)."""
        return np.clip(1.0 - self.accept.sum(axis=-1), 0.0, 1.0)

    def sequential(self) -> np.ndarray:
        """Conditional acceptance probability of slot j given slots < j were rejected, (..., k).

        This is the form in which an implementation tests drafts one by one with one uniform
        each; it reproduces ``accept`` exactly.

        Returns
        -------
        numpy.ndarray
        """
        before = np.cumsum(self.accept, axis=-1) - self.accept
        left = 1.0 - before
        return np.where(left > 0, np.minimum(self.accept / np.where(left > 0, left, 1.0), 1.0), 0.0)


@dataclass(frozen=True)
class Verification:
    """Outcome of verifying many nodes: the emitted ``token`` and the accepted ``slot`` (-1: none)."""

    token: np.ndarray
    slot: np.ndarray

    @property
    def accepted(self) -> np.ndarray:
        """Boolean array: was a draft accepted."""
        return self.slot >= 0


@dataclass(frozen=True)
class ExactLaw:
    """Exact behaviour of a method at one node, by enumeration of its draft law.

    Attributes
    ----------
    output : ndarray, shape (n,)
        Law of the emitted token; equals ``p`` for a lossless method.
    acceptance : float
        P(some draft accepted).
    positional : ndarray, shape (k,)
        P(slot j is the accepted draft); sums to ``acceptance``.
    """

    output: np.ndarray
    acceptance: float
    positional: np.ndarray = field(repr=False)

    def max_error(self, p) -> float:
        """Largest absolute deviation of the output law from the target ``p``.

        Parameters
        ----------
        p : array_like, shape (..., n)

        Returns
        -------
        float
        """
        return float(np.max(np.abs(self.output - np.asarray(p, dtype=np.float64))))


def normalise_residual(r: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Normalise residual masses ``r`` (..., n) along the last axis.

    Where the total is <= RESIDUAL_EPS the rejection branch has (up to round-off) probability 0
    and ``fallback`` (broadcast to r) is returned instead, so no 0/0 ever occurs.

    Parameters
    ----------
    r : numpy.ndarray
    fallback : numpy.ndarray

    Returns
    -------
    numpy.ndarray
    """
    r = np.maximum(r, 0.0)
    s = r.sum(axis=-1, keepdims=True)
    ok = s > RESIDUAL_EPS
    return np.where(ok, r / np.where(ok, s, 1.0), np.broadcast_to(fallback, r.shape))


def verify_from_rule(rule: NodeRule, drafts: np.ndarray, u: np.ndarray) -> Verification:
    """Sequential verification with explicit uniforms.

    ``u[..., j]`` (j < k) tests slot j against :meth:`NodeRule.sequential`; ``u[..., k]`` samples
    the residual by inverse CDF. O(k + n) per node.

    Parameters
    ----------
    rule : NodeRule
    drafts : numpy.ndarray
    u : numpy.ndarray

    Returns
    -------
    Verification

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``u`` must have k + 1 = ... uniforms per node on
        its last axis.
    """
    drafts = np.asarray(drafts, dtype=np.int64)
    k = drafts.shape[-1]
    u = np.asarray(u, dtype=np.float64)
    if u.shape[-1] != k + 1:
        raise ValueError(f"`u` must have k + 1 = {k + 1} uniforms per node on its last axis; got {u.shape[-1]}.")
    lead = np.broadcast_shapes(drafts.shape[:-1], u.shape[:-1], rule.accept.shape[:-1])
    cond = np.broadcast_to(rule.sequential(), lead + (k,))
    hit = np.broadcast_to(u[..., :k], lead + (k,)) < cond
    any_hit = hit.any(axis=-1)
    slot = np.where(any_hit, np.argmax(hit, axis=-1), -1)
    drafts_b = np.broadcast_to(drafts, lead + (k,))
    token = np.take_along_axis(drafts_b, np.maximum(slot, 0)[..., None], axis=-1)[..., 0]
    if (~any_hit).any():
        miss = ~any_hit
        t = np.broadcast_to(u[..., k], lead)[miss]
        if rule.residual.ndim == 1:  # one residual for every node: a single CDF, O(log n) per node
            cdf = np.cumsum(rule.residual)
            y = np.searchsorted(cdf, t * cdf[-1], side="right")
        else:
            res = np.broadcast_to(rule.residual, lead + rule.residual.shape[-1:])
            cdf = np.cumsum(res[miss], axis=-1)
            y = (cdf <= (t * cdf[:, -1])[:, None]).sum(axis=-1)
        token = np.array(token)
        token[miss] = np.minimum(y, rule.residual.shape[-1] - 1)
    return Verification(token=np.asarray(token, dtype=np.int64), slot=np.asarray(slot, dtype=np.int64))


def law_from_rule(rule: NodeRule, tuples: np.ndarray, mass: np.ndarray, n: int) -> ExactLaw:
    """Average a node rule over an enumerated draft law: exact output law and acceptance.

    Parameters
    ----------
    rule : NodeRule
    tuples : numpy.ndarray
    mass : numpy.ndarray
    n : int

    Returns
    -------
    ExactLaw
    """
    k = tuples.shape[1]
    out = np.zeros(n)
    weighted = mass[:, None] * np.broadcast_to(rule.accept, (len(mass), k))  # (m, k)
    np.add.at(out, tuples.ravel(), weighted.ravel())
    reject = np.broadcast_to(mass * rule.reject, mass.shape)
    out += reject @ np.broadcast_to(rule.residual, (len(mass), n))
    positional = weighted.sum(axis=0) if k else np.zeros(0)
    return ExactLaw(output=out, acceptance=float(weighted.sum()), positional=positional)


def slots_from_sequential(cond: np.ndarray) -> np.ndarray:
    """Slot probabilities from sequential acceptance probabilities.

    ``accept[j] = cond[j] * prod_{l<j} (1 - cond[l])``, shape (..., k).

    Parameters
    ----------
    cond : numpy.ndarray

    Returns
    -------
    numpy.ndarray
    """
    survive = np.cumprod(1.0 - cond, axis=-1)
    before = np.concatenate([np.ones(cond.shape[:-1] + (1,)), survive[..., :-1]], axis=-1)
    return cond * before


def take_last(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``a[..., idx]`` along the last axis with broadcasting of the leading axes.

    Parameters
    ----------
    a : numpy.ndarray
    idx : numpy.ndarray

    Returns
    -------
    numpy.ndarray
    """
    lead = np.broadcast_shapes(a.shape[:-1], idx.shape[:-1])
    return np.take_along_axis(np.broadcast_to(a, lead + a.shape[-1:]), np.broadcast_to(idx, lead + idx.shape[-1:]), axis=-1)


def ratio_accept(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Acceptance min(1, num/den), with den = 0 read as "accept iff num > 0" (never divides by zero).

    Parameters
    ----------
    num : numpy.ndarray
    den : numpy.ndarray

    Returns
    -------
    numpy.ndarray
    """
    ok = den > 0
    return np.where(ok, np.minimum(num / np.where(ok, den, 1.0), 1.0), (num > 0).astype(np.float64))


def residual_update(target: np.ndarray, qj: np.ndarray) -> np.ndarray:
    """The target after a rejection at one stage: :math:`(t_j - q_j)_+` normalised (theory.md 4.2).

    Parameters
    ----------
    target : numpy.ndarray
    qj : numpy.ndarray

    Returns
    -------
    numpy.ndarray
    """
    return normalise_residual(target - qj, target)


def recursive_rule(p, q, drafts, *, stage_law, update=residual_update, skip_duplicates=False) -> NodeRule:
    """Recursive rejection over the slots: the node rule shared by RRS w/o replacement and its mutants.

    Slot j accepts x_j with probability min(1, t_j(x_j) / q_j(x_j)) where
    ``q_j = stage_law(q, drafts[..., :j])`` and t_0 = p; on rejection ``t_{j+1} = update(t_j, q_j)``.
    With ``skip_duplicates`` a repeated draft is neither tested nor updates the target.
    O(k n) per node; p and q are validated here (:func:`~spechub_theory.distributions.check_pq`),
    drafts have shape (..., k).

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    drafts : ndarray of int, shape (..., k)
    stage_law : callable
    update : callable, optional
    skip_duplicates : bool, optional

    Returns
    -------
    NodeRule
    """
    p, q = check_pq(p, q)
    drafts = np.asarray(drafts, dtype=np.int64)
    k = drafts.shape[-1]
    lead = np.broadcast_shapes(p.shape[:-1], q.shape[:-1], drafts.shape[:-1])
    target = np.broadcast_to(p, lead + p.shape[-1:])
    cond = []
    for j in range(k):
        qj = stage_law(q, np.broadcast_to(drafts[..., :j], lead + (j,)))
        x = drafts[..., j : j + 1]
        c = ratio_accept(take_last(target, x), take_last(qj, x))
        nxt = update(target, qj)
        if skip_duplicates and j:
            dup = (drafts[..., :j] == x).any(axis=-1, keepdims=True)
            c = np.where(dup, 0.0, c)
            nxt = np.where(dup, target, nxt)
        cond.append(c)
        target = nxt
    return NodeRule(accept=slots_from_sequential(np.concatenate(cond, axis=-1)), residual=target)


def sum_of_others(w: np.ndarray) -> np.ndarray:
    """Sum of the other entries, ``sum_{y != x} w(y)``, for every x of each row.

    As prefix + suffix sums (shifted, never by subtracting w(x) from the total, which cancels when
    w(x) is close to the total).

    Parameters
    ----------
    w : numpy.ndarray

    Returns
    -------
    numpy.ndarray
    """
    zeros = np.zeros(w.shape[:-1] + (1,))
    before = np.concatenate([zeros, np.cumsum(w, axis=-1)[..., :-1]], axis=-1)
    after = np.concatenate([np.cumsum(w[..., ::-1], axis=-1)[..., ::-1][..., 1:], zeros], axis=-1)
    return before + after
