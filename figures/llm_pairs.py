r"""Synthetic LLM-like target/draft logit pairs and the exact rates of every method on them.

Convention: p = target, q = draft, last axis = vocabulary; temperature divides both logits.
Source: theory.md 3.6 (q = softmax(z), p = softmax(z + noise)); rates from :func:`lp.all_rates`
(``acceptance_rates``, theory.md 3.4, 4, and the optima of ``lp.optimal_rates``, theory.md 2.3).

Draft logits follow a Zipf-like profile plus Gaussian spread,
:math:`z(x) = -\mathrm{zipf}\,\log(1 + r(x)) + \mathrm{spread}\,\varepsilon(x)` with rank
:math:`r(x) = x`, and the target adds independent noise: :math:`z_p = z + \mathrm{noise}\,\eta`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lp import all_rates
from spechub_theory.distributions import probs_from_logits

from .style import METHODS, OPTIMA

__all__ = ["LogitPairs", "MethodRates", "draw_logits", "rates_at", "optimum_rates", "ZIPF", "SPREAD"]

#: Zipf exponent and logit spread of the default profile: at T = 1, n = 2,000 the draft's top token
#: has mean probability about 0.25 and about 0.55 at T = 0.6 (LLM-like peakedness)
ZIPF = 1.2
SPREAD = 1.0


@dataclass(frozen=True)
class LogitPairs:
    """Draft and target logits of ``positions`` synthetic positions, each of shape (positions, n)."""

    draft: np.ndarray
    target: np.ndarray

    def probs(self, temperature: float) -> tuple:
        """``(p, q)`` = softmax of target and draft logits at ``temperature`` (both tempered).

        Parameters
        ----------
        temperature : float

        Returns
        -------
        tuple
        """
        return probs_from_logits(self.target, temperature), probs_from_logits(self.draft, temperature)


@dataclass(frozen=True)
class MethodRates:
    """Exact acceptance per name (``values``: name -> ndarray of shape (...)) and ``notes``.

    Name -> why it was skipped or how it was approximated.
    """

    values: dict
    notes: dict


def draw_logits(positions: int, n: int, *, noise, zipf=ZIPF, spread=SPREAD, rng=None) -> LogitPairs:
    """Draw ``positions`` LLM-like (draft, target) logit rows over ``n`` tokens.

    Parameters
    ----------
    positions, n : int
        Rows and vocabulary size (>= 1 and >= 2).
    noise, zipf, spread : float or array_like of shape (positions,)
        Target noise scale, Zipf exponent and spread; arrays give each row its own value.
    rng : numpy Generator or seed
        The only randomness: spread noise then target noise, each a (positions, n) normal draw.

    Returns
    -------
    LogitPairs

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``positions`` must be >= 1 and ``n`` >= 2.

    Notes
    -----
    O(positions n) time and memory.

    Examples
    --------
    >>> pairs = draw_logits(3, 10, noise=0.5, rng=0)
    >>> pairs.draft.shape, bool(np.all(np.isfinite(pairs.target)))
    ((3, 10), True)
    """
    if int(positions) < 1 or int(n) < 2:
        raise ValueError(f"`positions` must be >= 1 and `n` >= 2; got {positions} and {n}.")
    rng = np.random.default_rng(rng)
    col = lambda v: np.asarray(v, dtype=np.float64).reshape(-1, 1)  # noqa: E731  per-row scalars
    z = -col(zipf) * np.log1p(np.arange(n, dtype=np.float64)) + col(spread) * rng.standard_normal((positions, n))
    return LogitPairs(draft=z, target=z + col(noise) * rng.standard_normal((positions, n)))


def rates_at(p, q, k: int = 2, *, methods=METHODS, optima=OPTIMA) -> MethodRates:
    """Exact acceptance of ``methods`` and of the available ``optima`` at every row of (p, q).

    The numbers are :func:`lp.all_rates`'s; an optimum out of reach at this (n, k) is left out of
    ``values`` and noted as ``"skipped: <reason>"``, never an error.

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int, optional
        Drafts per node.
    methods : sequence of str, optional
    optima : sequence of str, optional

    Returns
    -------
    MethodRates (a skipped name is in ``notes`` only).

    Examples
    --------
    >>> r = rates_at([.3, .3, .4], [.6, .3, .1], 2, methods=["rrs", "spechub"], optima=())
    >>> {m: round(float(v), 6) for m, v in r.values.items()}
    {'rrs': 0.73, 'spechub': 0.85}
    """
    optima = tuple(optima)
    result = all_rates(p, q, k, methods=methods, optima=optima)
    values = {name: v for name, v in result.acceptance.items() if v is not None}
    notes = {name: note for name, note in result.notes.items() if name not in optima}
    notes.update({name: f"skipped: {result.notes.get(name, 'out of reach')}" for name in optima if name not in values})
    return MethodRates(values, notes)


def optimum_rates(p, q, k: int = 2, *, optima=OPTIMA) -> MethodRates:
    """The :class:`MethodRates` of the optimum per draft law (:func:`rates_at` without methods).

    A law without an exact method at this (n, k) becomes a note, never an error.

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int, optional
        Drafts per node.
    optima : sequence of str, optional

    Returns
    -------
    MethodRates
    """
    return rates_at(p, q, k, methods=(), optima=optima)
