"""Every method simulated and tested on one (p, q, k): the table behind ``spechub simulate``.

Convention: p = target, q = draft, last axis = vocabulary; acceptance with Wilson intervals, the
positional split and a pooled chi-square lossless test per method. Source: theory.md 6.3 and 7.
"""

from __future__ import annotations

import time

from ..distributions import check_k
from ..methods import get_method
from .mutants import MUTANTS
from .simulation import simulate
from .stats import matches_target

__all__ = ["simulate_methods", "DEFAULT_ALPHA"]

#: default level of the lossless test (five methods at 1e-3: family-wise false alarm <= 0.5%)
DEFAULT_ALPHA = 1e-3


def simulate_methods(p, q, k: int, methods, *, n_trials: int, seed: int = 0, alpha: float = DEFAULT_ALPHA,
                     workers=None, progress=None) -> dict:
    """Simulate each method and test it: the JSON-ready ``{"k", "n", "n_trials", "seed", "alpha", "methods"}``.

    Methods whose draft law needs more distinct tokens than n are listed under ``"notes"``.
    Each method gets its own stream ``seed + index`` so adding a method changes no other result.
    Each method is then tested for losslessness by :func:`matches_target` on its token counts.

    Parameters
    ----------
    p, q : numpy.ndarray
        Target and draft laws, shape (n,).
    k : int
        Number of drafts (a method with a fixed k uses its own).
    methods : iterable of str
        Method or mutant names.
    n_trials : int
        Trials per method.
    seed : int, optional
        Base seed; method number ``index`` uses ``seed + index``.
    alpha : float, optional
        Significance level of the lossless test.
    workers : int, optional
        Threads per simulation, as in :func:`simulate`.
    progress : object, optional
        A progress reporter with ``bind(name)`` returning the ``progress`` callable of
        :func:`simulate` for that method.

    Returns
    -------
    dict
        ``{"k", "n", "n_trials", "seed", "alpha", "methods"}`` (plus ``"notes"`` when a method
        is omitted); ``"methods"`` maps each name to its rates, intervals and test results.

    Raises
    ------
    ValueError
        If ``k`` is not a positive integer or a name is neither a method nor a mutant.
    """
    k = check_k(k)
    n = p.shape[-1]
    out, notes = {}, {}
    for index, name in enumerate(methods):
        m = MUTANTS[name] if name in MUTANTS else get_method(name)
        kk = m.FIXED_K or k
        if m.LAW.distinct and kk > n:
            notes[m.NAME] = f"omitted: k = {kk} distinct drafts need n >= {kk}"
            continue
        start = time.perf_counter()
        result = simulate(p, q, kk, method=m, n_trials=n_trials, rng=seed + index, workers=workers,
                          progress=None if progress is None else progress.bind(m.NAME))
        test = matches_target(result.token_counts, p, alpha=alpha, kind="counts")
        entry = result.to_dict()
        for key in ("method", "n_trials", "seed"):
            entry.pop(key)
        entry["ci999"] = list(_interval(result, 0.999))
        entry["positional_ci95"] = [[c.low, c.high] for c in result.positional_intervals(0.95)]
        entry.update(chi2_pvalue=test.pvalue, chi2_statistic=test.statistic, chi2_df=test.df,
                     lossless=test.passed, seconds=time.perf_counter() - start)
        if not test.passed:
            entry["worst_tokens"] = [d.to_dict() for d in test.worst]
        out[m.NAME] = entry
    summary = {"k": k, "n": n, "n_trials": n_trials, "seed": seed, "alpha": alpha, "methods": out}
    if notes:
        summary["notes"] = notes
    return summary


def _interval(result, level):
    ci = result.confidence_interval(level)
    return ci.low, ci.high
