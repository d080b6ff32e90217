"""Every method's exact acceptance rate plus the optimum per draft law, for one or many (p, q).

Convention: p = target, q = draft, last axis = vocabulary, leading axes = positions; float64.
The numpy entry point behind ``spechub bound``, the figures and the decoder's node table (the
torch twin, same name and signature, is :func:`empirical.node_rates_torch.all_rates`).
Source: theory.md 3.4-3.5, 4; docs/lp.md.
"""

from __future__ import annotations

from spechub_theory.acceptance import AcceptanceRates, acceptance_rates

from .fast import optimal_rates

__all__ = ["all_rates", "OPTIMA"]

#: the optima reported beside the methods, one per draft law
OPTIMA = ("optimal_iid", "optimal_wor")


def all_rates(p, q, k: int = 2, *, methods=None, optima=OPTIMA) -> AcceptanceRates:
    """Exact acceptance of each method and the optimal-transport optimum of each draft law.

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft distributions.
    k : int
        Drafts per node.
    methods : iterable of str, optional
        Method names (default: all of :data:`spechub_theory.METHOD_NAMES`).
    optima : iterable of str
        Subset of :data:`OPTIMA` to add (default both).

    Returns
    -------
    AcceptanceRates
        ``acceptance`` maps every requested name to an array of shape (...); an optimum out of
        reach (no exact method at this (n, k)) is ``None`` with the reason in ``notes``.

    Raises
    ------
    ValueError
        On invalid p, q or k (from :func:`~spechub_theory.acceptance_rates`).

    Notes
    -----
    Costs: :func:`~spechub_theory.acceptance_rates` plus :func:`lp.fast.optimal_rates` (one sort
    per row for k = 2).

    Examples
    --------
    >>> r = all_rates([.3, .3, .4], [.6, .3, .1], 2)
    >>> round(float(r["spechub"]), 6), round(float(r["optimal_wor"]), 6)
    (0.85, 0.892857)
    """
    rates = acceptance_rates(p, q, k, methods=None if methods is None else list(methods))
    optima = tuple(optima)
    if not optima:
        return rates
    found = optimal_rates(p, q, k)
    notes = found.pop("notes")
    return rates.with_rates({name: found[name] for name in optima}, {name: notes[name] for name in optima if name in notes})
