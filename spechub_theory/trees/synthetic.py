r"""Synthetic language models: a seeded target and draft n-gram pair with a mismatch knob.

Convention: p = target, q = draft, last axis = vocabulary; a *context* is the last ``order``
tokens, indexed ``c = sum_i x_{-order+i} n^(order-1-i)`` (so ``target[c]`` is p after c).
Source: issue 5 (token trees); theory.md 1.1 (tokens per step), 4.1 (single-draft acceptance 1 - TV).

Target logits are LLM-like: a Zipf profile over a random ranking of the vocabulary per context,
``-zipf * log(1 + rank)``, plus ``spread * N(0, 1)``; the draft adds ``mismatch * N(0, 1)`` of
independent noise to the same logits (and may run at its own temperature). The noise is drawn
once from ``seed``, so the pair is a deterministic, continuous function of ``mismatch``: 0 gives
q = p, and the mean single-draft acceptance falls as it grows (:func:`calibrate_mismatch`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..distributions import probs_from_logits
from .markov import context_kernel, stationary_law

__all__ = ["SyntheticPair", "make_pair", "calibrate_mismatch"]

#: vocabulary sizes the generator accepts (issue 5: small vocabularies, exact enumeration)
MAX_CONTEXTS = 40_000
#: bisection steps for the calibration: 2^-50 of the bracket is far below any useful tolerance
_CALIBRATION_STEPS = 50


@dataclass(frozen=True, repr=False)
class SyntheticPair:
    """A target / draft pair of n-gram models over ``n`` tokens.

    Attributes
    ----------
    target, draft : ndarray, shape (n**order, n)
        Next-token laws p and q after each context (rows sum to 1).
    order : int
        Context length (1 = bigram, 2 = trigram).
    params : dict
        How the pair was made (vocab, order, mismatch, zipf, spread, temperatures, seed).

    Examples
    --------
    >>> pair = make_pair(20, mismatch=0.5, seed=1)
    >>> pair.target.shape, pair.num_contexts
    ((20, 20), 20)
    >>> bool(np.allclose(pair.p_after([3, 7]), pair.target[7]))
    True
    """

    target: np.ndarray
    draft: np.ndarray
    order: int = 1
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        order = int(self.order)
        if order < 1:
            raise ValueError(f"`order` must be an integer >= 1; got {self.order!r}.")
        p = np.asarray(self.target, dtype=np.float64)
        q = np.asarray(self.draft, dtype=np.float64)
        if p.ndim != 2 or p.shape != q.shape or p.shape[0] != p.shape[1] ** order:
            raise ValueError(
                f"`target` and `draft` must both have shape (n**order, n) = ({'n' if p.ndim != 2 else p.shape[1] ** order}, n); "
                f"got {p.shape} and {q.shape} with order {order}."
            )
        for name, a in (("target", p), ("draft", q)):
            if not np.isfinite(a).all() or (a < 0).any() or not np.allclose(a.sum(axis=1), 1.0, atol=1e-9):
                raise ValueError(f"`{name}` rows must be probability vectors (finite, >= 0, summing to 1).")
        object.__setattr__(self, "target", p)
        object.__setattr__(self, "draft", q)
        object.__setattr__(self, "order", order)

    # -- structure ------------------------------------------------------------------------------
    @property
    def vocab(self) -> int:
        """Vocabulary size n."""
        return self.target.shape[1]

    @property
    def num_contexts(self) -> int:
        """Number of contexts n**order."""
        return self.target.shape[0]

    @cached_property
    def next_context(self) -> np.ndarray:
        """(n**order, n) int64: the context after appending token x to context c,
        ``(c n + x) mod n**order``."""
        c = np.arange(self.num_contexts, dtype=np.int64)[:, None]
        x = np.arange(self.vocab, dtype=np.int64)[None, :]
        return (c * self.vocab + x) % self.num_contexts

    def context_index(self, context) -> int:
        """Index of the context made of the last ``order`` tokens of ``context`` (a token list).

        Parameters
        ----------
        context : sequence of int

        Returns
        -------
        int

        Raises
        ------
        ValueError
            On bad input (the message names the rule): ``context`` needs at least order = ...
            tokens; or ``context`` tokens must be in [0, ...).
        """
        toks = [int(t) for t in np.ravel(np.asarray(context, dtype=np.int64))]
        if len(toks) < self.order:
            raise ValueError(f"`context` needs at least order = {self.order} tokens; got {len(toks)}.")
        if any(t < 0 or t >= self.vocab for t in toks[-self.order :]):
            raise ValueError(f"`context` tokens must be in [0, {self.vocab}); got {toks[-self.order:]}.")
        c = 0
        for t in toks[-self.order :]:
            c = c * self.vocab + t
        return c

    def p_after(self, context) -> np.ndarray:
        """Target law after ``context`` (a token sequence), shape (n,).

        Parameters
        ----------
        context : sequence of int

        Returns
        -------
        numpy.ndarray
        """
        return self.target[self.context_index(context)]

    def q_after(self, context) -> np.ndarray:
        """Draft law after ``context`` (a token sequence), shape (n,).

        Parameters
        ----------
        context : sequence of int

        Returns
        -------
        numpy.ndarray
        """
        return self.draft[self.context_index(context)]

    # -- statistics -----------------------------------------------------------------------------
    @cached_property
    def transition(self) -> np.ndarray:
        """(C, C) transition matrix of the target chain on contexts."""
        return context_kernel(self.next_context, self.target)

    @cached_property
    def stationary(self) -> np.ndarray:
        """Stationary law of the target chain on contexts, shape (C,) (:func:`stationary_law`)."""
        return stationary_law(self.transition)

    def acceptance(self) -> np.ndarray:
        """Single-draft acceptance 1 - TV(p_c, q_c) per context, shape (C,).

        Returns
        -------
        numpy.ndarray
        """
        return np.minimum(self.target, self.draft).sum(axis=1)

    def mean_acceptance(self) -> float:
        """Mean single-draft acceptance over the target's stationary context law.

        Returns
        -------
        float
        """
        return float(self.stationary @ self.acceptance())

    def summary(self) -> dict:
        """Key statistics under the stationary law: mean 1 - TV, mean max p and max q, entropy of p.

        Returns
        -------
        dict
        """
        w = self.stationary
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = -np.where(self.target > 0, self.target * np.log(self.target), 0.0).sum(axis=1)
        return {
            "mean_acceptance": float(w @ self.acceptance()),
            "mean_max_p": float(w @ self.target.max(axis=1)),
            "mean_max_q": float(w @ self.draft.max(axis=1)),
            "mean_entropy_p_nats": float(w @ ent),
        }

    def to_dict(self) -> dict:
        """The parameters and summary statistics (not the tables).

        Returns
        -------
        dict
        """
        return {"vocab": self.vocab, "order": self.order, "params": dict(self.params), **self.summary()}

    def __repr__(self) -> str:
        return (
            f"SyntheticPair(vocab={self.vocab}, order={self.order}, "
            f"mean_acceptance={self.mean_acceptance():.4f}, params={self.params})"
        )


def make_pair(
    vocab: int = 50,
    *,
    order: int = 1,
    mismatch: float = 0.5,
    zipf: float = 1.5,
    spread: float = 1.0,
    temperature: float = 1.0,
    draft_temperature: float = 1.0,
    seed: int = 0,
) -> SyntheticPair:
    r"""A seeded synthetic target / draft pair (module docstring for the construction).

    .. math::
        z_c(x) = -\mathrm{zipf}\,\log(1 + \mathrm{rank}_c(x)) + \mathrm{spread}\,\varepsilon_c(x),\quad
        p_c = \mathrm{softmax}(z_c / T),\quad
        q_c = \mathrm{softmax}\big((z_c + \mathrm{mismatch}\,\eta_c) / (T\,T_q)\big)

    with independent standard normals epsilon, eta and a uniformly random ranking per context.

    Parameters
    ----------
    vocab : int
        Vocabulary size n (issue 5 uses 20-200; ``n**order`` must stay <= 40,000).
    order : int
        1 = bigram (next law depends on the last token), 2 = trigram.
    mismatch : float
        Draft noise scale (>= 0); 0 makes q = p.
    zipf, spread : float
        Peakedness of the laws: Zipf exponent of the rank profile and logit noise.
    temperature, draft_temperature : float
        Temperature of both models (> 0) and the draft's extra factor (> 0).
    seed : int
        All randomness comes from ``numpy.random.default_rng(seed)``; the draws do not depend on
        ``mismatch`` or the temperatures, so changing them moves the same pair continuously.

    Returns
    -------
    SyntheticPair

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``vocab`` must be an integer >= 2; or ``order``
        must be an integer >= 1; or ``vocab``**``order`` = ... contexts exceeds ...; use a smaller
        vocabulary.

    Notes
    -----
    O(n**(order+1)) time and memory.

    Examples
    --------
    >>> a, b = make_pair(20, seed=3), make_pair(20, seed=3)
    >>> bool((a.target == b.target).all()), round(make_pair(20, mismatch=0.0).mean_acceptance(), 6)
    (True, 1.0)
    """
    if isinstance(vocab, bool) or not isinstance(vocab, (int, np.integer)) or vocab < 2:
        raise ValueError(f"`vocab` must be an integer >= 2; got {vocab!r}.")
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"`order` must be an integer >= 1; got {order!r}.")
    C = int(vocab) ** int(order)
    if C > MAX_CONTEXTS:
        raise ValueError(f"`vocab`**`order` = {C} contexts exceeds {MAX_CONTEXTS}; use a smaller vocabulary.")
    for name, value, low in (("mismatch", mismatch, 0.0), ("zipf", zipf, 0.0), ("spread", spread, 0.0)):
        if not np.isfinite(value) or value < low:
            raise ValueError(f"`{name}` must be a finite number >= {low:g}; got {value!r}.")
    for name, value in (("temperature", temperature), ("draft_temperature", draft_temperature)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"`{name}` must be a finite number > 0; got {value!r}.")
    rng = np.random.default_rng(seed)
    rank = np.argsort(rng.random((C, vocab)), axis=1).argsort(axis=1)  # uniform random ranking per context
    eps = rng.standard_normal((C, vocab))
    eta = rng.standard_normal((C, vocab))
    z = -zipf * np.log1p(rank) + spread * eps
    params = {
        "vocab": int(vocab),
        "order": int(order),
        "mismatch": float(mismatch),
        "zipf": float(zipf),
        "spread": float(spread),
        "temperature": float(temperature),
        "draft_temperature": float(draft_temperature),
        "seed": int(seed),
    }
    return SyntheticPair(
        target=probs_from_logits(z, temperature),
        draft=probs_from_logits(z + mismatch * eta, temperature * draft_temperature),
        order=int(order),
        params=params,
    )


def calibrate_mismatch(acceptance: float, vocab: int = 50, *, tol: float = 1e-6, **kwargs) -> float:
    """The ``mismatch`` at which :func:`make_pair` has the requested mean single-draft acceptance.

    Parameters
    ----------
    acceptance : float
        Requested stationary mean of 1 - TV(p_c, q_c), in (0, 1].
    vocab : int
    tol : float
        Absolute tolerance on the acceptance.
    **kwargs
        The other keyword arguments of :func:`make_pair` (order, zipf, spread, temperatures, seed).

    Returns
    -------
    float: the mismatch (bisection on a bracket found by doubling; the pair's noise is fixed by
    the seed, so the mean acceptance is a continuous function of the mismatch, 1 at 0).

    Raises
    ------
    ValueError
        If the acceptance is outside (0, 1] or not reachable (below the value for a draft whose
        noise swamps the target, mismatch = 1e3).

    Examples
    --------
    >>> m = calibrate_mismatch(0.6, 20, seed=0)
    >>> round(make_pair(20, mismatch=m, seed=0).mean_acceptance(), 4)
    0.6
    """
    if not (0.0 < acceptance <= 1.0):
        raise ValueError(f"`acceptance` must be in (0, 1]; got {acceptance!r}.")
    if "mismatch" in kwargs:
        raise ValueError("`mismatch` is what calibrate_mismatch computes; do not pass it.")

    def rate(m: float) -> float:
        return make_pair(vocab, mismatch=m, **kwargs).mean_acceptance()

    if acceptance >= 1.0:
        return 0.0
    lo, hi = 0.0, 0.5
    while rate(hi) > acceptance:
        lo, hi = hi, 2 * hi
        if hi > 1e3:
            raise ValueError(f"`acceptance` = {acceptance} is not reachable: mismatch 1e3 still gives {rate(hi):.4f}.")
    for _ in range(_CALIBRATION_STEPS):
        mid = 0.5 * (lo + hi)
        value = rate(mid)
        if abs(value - acceptance) <= tol:
            return mid
        lo, hi = (mid, hi) if value > acceptance else (lo, mid)
    return 0.5 * (lo + hi)
