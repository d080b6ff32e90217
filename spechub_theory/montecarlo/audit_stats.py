r"""Audit statistics: one sampler's output law against its target law, with power, TV interval and distortion.

Convention: p = the law the sampler must reproduce (target), last axis = vocabulary; ``counts`` is
the sampler's output histogram. Source: theory.md 6.3 and 7; docs/montecarlo.md (pooled Pearson test).

An audit either knows the sampler's output law exactly (:func:`exact_audit`, when the audit can
enumerate its randomness) or tests a histogram (:func:`counts_audit`) with the pooled chi-square of
:func:`spechub_theory.montecarlo.stats.matches_target`, sized by :func:`spechub_theory.montecarlo.stats.sample_size_for`.
Several tests of one sampler (per position, conditional laws) combine by :func:`combined_test`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as _st

from ..distributions import check_distribution
from .interval import ConfidenceInterval
from .stats import LosslessTest, matches_target, pooled_bins

__all__ = ["check_sizing", "TVEstimate", "AuditResult", "Distortion", "distortion", "pooled_tv", "combined_test",
           "exact_audit", "counts_audit", "json_ready", "EXACT_ATOL", "BOOTSTRAP_DRAWS"]

#: an exact output law passes when it equals p to this max-abs error (float64 round-off over n terms)
EXACT_ATOL = 1e-9
#: bootstrap resamples of the pooled histogram for the TV interval
BOOTSTRAP_DRAWS = 400


@dataclass(frozen=True)
class Distortion:
    r"""How far an output law ``law`` is from p, in TV and KL.

    :math:`\mathrm{TV} = \frac12\sum|law - p|` and :math:`\mathrm{KL}(law \| p) = \sum law
    \log(law / p)` (inf when law has mass where p = 0).
    """

    tv: float
    kl: float

    def to_dict(self) -> dict:
        """``{"tv", "kl"}`` (kl None when infinite, for JSON).

        Returns
        -------
        dict
        """
        return {"tv": self.tv, "kl": self.kl if math.isfinite(self.kl) else None}


@dataclass(frozen=True)
class TVEstimate:
    """Plug-in TV between the pooled output histogram and pooled p, with a bootstrap interval.

    Attributes
    ----------
    value : float
        :math:`\\frac12 \\sum_b |O_b / N - p_b|` over the test's bins (tokens with p = 0 that were
        hit form one extra bin of mass 0). Pooling only merges tokens, so up to sampling noise this
        is a lower bound of the true TV.
    interval : ConfidenceInterval
        Basic (reverse-percentile) bootstrap interval ``[2 v - b_hi, 2 v - b_lo]`` clipped to [0, 1],
        b = quantiles of the plug-in TV over multinomial resamples of the binned counts; unlike the
        percentile interval it corrects for the upward bias of the plug-in, so it can reach 0.
    noise : float
        Median plug-in TV of a sample of the same size drawn from p itself: what "TV 0" reads as at
        this N (the plug-in is biased upwards by about this much).
    kl : float
        Plug-in KL(observed || p) on the same bins (inf on a zero-probability hit).
    """

    value: float
    interval: ConfidenceInterval
    noise: float
    kl: float

    def to_dict(self) -> dict:
        """``{"value", "low", "high", "level", "noise", "kl"}``.

        Returns
        -------
        dict
        """
        return {"value": self.value, "low": self.interval.low, "high": self.interval.high,
                "level": self.interval.level, "noise": self.noise, "kl": self.kl if math.isfinite(self.kl) else None}


@dataclass(frozen=True)
class AuditResult:
    """Outcome of one audit of one sampler at one setting.

    Attributes
    ----------
    level : str
        "function", "generator" or "generate" (end to end).
    sampler : str
    passed : bool
        Exact mode: the output law equals p to :data:`EXACT_ATOL`. Test mode: every part passed
        (p-value > alpha, no sample on a zero-probability token).
    mode : str
        "exact" or "chi-square".
    n_samples : int
        Sampler calls (0 in exact mode).
    seconds : float
    tv, alpha, power : float or None
        What the test was sized for: a sampler whose law is ``tv`` away from p is refuted with
        probability >= ``power``; a lossless one with probability ``alpha`` (None in exact mode).
    pvalue, statistic : float
    df : int
    tv_estimate : TVEstimate or Distortion
        Measured distance (exact TV and KL in exact mode).
    parts : tuple of dict
        Each component test (``name`` plus the LosslessTest fields).
    settings : dict
        Sampling settings and parameters (temperature, top_k, top_p, ensemble weight, seed, ...).
    reason : str
        Why it failed ("" when passed).
    """

    level: str
    sampler: str
    passed: bool
    mode: str
    n_samples: int
    seconds: float
    tv: float | None
    alpha: float | None
    power: float | None
    pvalue: float
    statistic: float
    df: int
    tv_estimate: object
    parts: tuple = field(default=(), repr=False)
    settings: dict = field(default_factory=dict, repr=False)
    reason: str = ""

    @property
    def verdict(self) -> str:
        """The verdict: "pass" or "refuted"."""
        return "pass" if self.passed else "refuted"

    def report(self) -> str:
        """One or two human-readable lines.

        Returns
        -------
        str
        """
        est = self.tv_estimate
        if isinstance(est, TVEstimate):
            tv = f"TV ~ {est.value:.4f} [{est.interval.low:.4f}, {est.interval.high:.4f}] (noise {est.noise:.4f})"
            sized = f"sized for TV {self.tv:g} at power {self.power:g}, alpha {self.alpha:g}; "
        else:
            tv, sized = f"exact TV {est.tv:.3g}, KL {est.kl:.3g}", ""
        head = (f"{self.verdict}: {self.level} {self.sampler} ({self.mode}; {sized}N = {self.n_samples}, "
                f"p-value {self.pvalue:.3g}, {tv}, {self.seconds:.1f} s)")
        return head + (f"\n  reason: {self.reason}" if self.reason else "")

    def to_dict(self) -> dict:
        """JSON-ready dict (infinite statistics as None).

        Returns
        -------
        dict
        """
        finite = lambda x: x if x is None or math.isfinite(x) else None  # noqa: E731
        return {"level": self.level, "sampler": self.sampler, "passed": self.passed, "verdict": self.verdict,
                "mode": self.mode, "n_samples": self.n_samples, "seconds": self.seconds, "tv": self.tv,
                "alpha": self.alpha, "power": self.power, "pvalue": self.pvalue, "statistic": finite(self.statistic),
                "df": self.df, "tv_estimate": self.tv_estimate.to_dict(), "parts": list(self.parts),
                "settings": dict(self.settings), "reason": self.reason}


def check_sizing(tv: float, alpha: float, power: float) -> None:
    """Raise ValueError unless ``tv`` in (0, 1] and ``alpha``, ``power`` in (0, 1).

    Parameters
    ----------
    tv : float
        Total variation the test is sized for.
    alpha : float
        Significance level.
    power : float
        Probability of refuting a sampler ``tv`` away from p.

    Raises
    ------
    ValueError
        If a value is out of its range.
    """
    if not 0 < tv <= 1:
        raise ValueError(f"`tv` must be in (0, 1]; got {tv}.")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"`alpha` and `power` must be in (0, 1); got {alpha} and {power}.")


def distortion(law, p) -> Distortion:
    """TV and KL(law || p) of an exact output law. O(n).

    Parameters
    ----------
    law : array_like
        The exact output law, shape (n,).
    p : array_like
        The target law, shape (n,).

    Returns
    -------
    Distortion
        ``tv`` and ``kl``.

    Raises
    ------
    ValueError
        If the shapes differ.

    Examples
    --------
    >>> d = distortion([.5, .5], [.25, .75])
    >>> round(d.tv, 6), round(d.kl, 6)
    (0.25, 0.143841)
    """
    law = check_distribution(law, "law")
    p = check_distribution(p, "p")
    if law.shape != p.shape:
        raise ValueError(f"`law` and `p` must have the same shape; got {law.shape} and {p.shape}.")
    return Distortion(0.5 * float(np.abs(law - p).sum()), _kl(law, p))


def pooled_tv(counts, p, *, level: float = 0.95, draws: int = BOOTSTRAP_DRAWS, rng=0) -> TVEstimate:
    """:class:`TVEstimate` of an output histogram ``counts`` (n,) against p on the test's bins.

    O(n log n + draws x bins). Seeded (``rng``), so a report is reproducible.

    Parameters
    ----------
    counts : array_like of int
        Output histogram, shape (n,).
    p : array_like
        The target law, shape (n,).
    level : float, optional
        Confidence level of the interval.
    draws : int, optional
        Bootstrap draws.
    rng : numpy.random.Generator or int, optional
        The random source of the bootstrap.

    Returns
    -------
    TVEstimate
        The pooled TV, its interval, the median under the null and the KL.

    Raises
    ------
    ValueError
        If ``counts`` has the wrong shape or holds no samples.

    Examples
    --------
    >>> est = pooled_tv([4000, 2000, 4000], [.25, .25, .5])
    >>> round(est.value, 6), est.interval.contains(0.15)
    (0.15, True)
    """
    p = check_distribution(p, "p")
    counts = np.asarray(counts, dtype=np.int64)
    if counts.shape != p.shape:
        raise ValueError(f"`counts` must have shape {p.shape} (one count per token); got {counts.shape}.")
    N = int(counts.sum())
    if N < 1:
        raise ValueError("`counts` holds no samples.")
    bins = pooled_bins(p, N)
    nb = int(bins.max()) + 1 if (bins >= 0).any() else 0
    inside = bins >= 0
    O = np.append(np.bincount(bins[inside], weights=counts[inside], minlength=nb), counts[~inside].sum())
    P = np.append(np.bincount(bins[inside], weights=p[inside], minlength=nb), 0.0)
    g = np.random.default_rng(rng)
    tv = lambda obs: 0.5 * np.abs(obs / N - P).sum(axis=-1)  # noqa: E731
    boot = tv(g.multinomial(N, O / N, size=draws))
    null = tv(g.multinomial(N, P / P.sum(), size=draws))
    v = float(tv(O))
    b_lo, b_hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    interval = ConfidenceInterval(float(np.clip(2 * v - b_hi, 0, 1)), float(np.clip(2 * v - b_lo, 0, 1)), level)
    return TVEstimate(v, interval, float(np.median(null)), _kl(O / N, P))


def combined_test(parts, *, alpha: float, method: str = "sum of independent pooled chi-squares") -> LosslessTest:
    r"""Sum independent pooled chi-square statistics: :math:`X^2 = \sum_i X_i^2 \sim \chi^2_{\sum df_i}`.

    ``parts`` are :class:`~spechub_theory.montecarlo.stats.LosslessTest` objects of independent samples, or of
    the conditional laws of one sample given the conditioning counts (a second token given the
    first). A zero-probability hit in any part fails the whole. O(parts).

    Parameters
    ----------
    parts : sequence of LosslessTest
        The component tests.
    alpha : float
        Significance level of the combined test.
    method : str, optional
        The method's description stored in the result.

    Returns
    -------
    LosslessTest
        The combined test.

    Raises
    ------
    ValueError
        If ``parts`` is empty.

    Examples
    --------
    >>> a = matches_target([50, 50], [.5, .5]); t = combined_test([a, a], alpha=0.01)
    >>> t.df, t.passed
    (2, True)
    """
    parts = list(parts)
    if not parts:
        raise ValueError("`parts` is empty.")
    n = sum(t.n for t in parts)
    bins = sum(t.n_bins for t in parts)
    pooled = sum(t.pooled_tokens for t in parts)
    df = int(sum(t.df for t in parts))
    worst = tuple(d for t in parts for d in t.worst)[:5]
    bad = [t.reason for t in parts if math.isinf(t.statistic)]
    if bad:
        return LosslessTest(math.inf, df, 0.0, alpha, False, n, bins, pooled, method, worst, bad[0])
    stat = float(sum(t.statistic for t in parts))
    pvalue = float(_st.chi2.sf(stat, df)) if df > 0 else 1.0
    passed = pvalue > alpha
    return LosslessTest(stat, df, pvalue, alpha, passed, n, bins, pooled, method, worst,
                        "" if passed else f"p-value {pvalue:.3g} <= alpha {alpha:g}")


def exact_audit(law, p, *, level: str, sampler: str, seconds: float = 0.0, settings=None,
                atol: float = EXACT_ATOL) -> AuditResult:
    """:class:`AuditResult` of an exactly known output law: passes iff max |law - p| <= ``atol``.

    Parameters
    ----------
    law : array_like
        The exact output law, shape (n,).
    p : array_like
        The target law, shape (n,).
    level : str
        "function", "generator" or "generate" (end to end).
    sampler : str
        The sampler's name.
    seconds : float, optional
        Time the audit took.
    settings : dict, optional
        Sampling settings and parameters, stored in the result.
    atol : float, optional
        Largest accepted entrywise difference.

    Returns
    -------
    AuditResult
        The audit in exact mode.

    Examples
    --------
    >>> exact_audit([.3, .7], [.3, .7], level="function", sampler="x").passed
    True
    """
    d = distortion(law, p)
    err = float(np.abs(np.asarray(law, dtype=np.float64) - np.asarray(p, dtype=np.float64)).max())
    passed = err <= atol
    reason = "" if passed else f"exact output law differs from p: max error {err:.3g}, TV {d.tv:.3g}"
    return AuditResult(level, sampler, passed, "exact", 0, seconds, None, None, None, 1.0 if passed else 0.0,
                       err, 0, d, (), dict(settings or {}), reason)


def counts_audit(named_tests, first_counts, first_p, *, level: str, sampler: str, tv: float, alpha: float,
                 power: float, seconds: float, settings=None, rng=0) -> AuditResult:
    """:class:`AuditResult` from component tests, combined by Bonferroni.

    Each part is run at level ``alpha / len(named_tests)`` (Bonferroni: the family-wise
    false-alarm rate stays <= ``alpha``); it passes iff every part passes; p-value = min(1,
    parts x smallest part p-value). The TV estimate is taken on the first part's histogram
    ``first_counts`` against ``first_p``.

    Parameters
    ----------
    named_tests : sequence of (str, LosslessTest)
        The component tests and their names.
    first_counts : array_like of int
        Histogram of the first part, shape (n,).
    first_p : array_like
        Target law of the first part, shape (n,).
    level : str
        "function", "generator" or "generate" (end to end).
    sampler : str
        The sampler's name.
    tv, alpha, power : float
        What the test was sized for (see :class:`AuditResult`).
    seconds : float
        Time the audit took.
    settings : dict, optional
        Sampling settings and parameters, stored in the result.
    rng : numpy.random.Generator or int, optional
        The random source of the TV bootstrap.

    Returns
    -------
    AuditResult
        The audit in chi-square mode.

    Raises
    ------
    ValueError
        If ``named_tests`` is empty.
    """
    tests = [t for _, t in named_tests]
    if not tests:
        raise ValueError("`named_tests` is empty.")
    m = len(tests)
    pvalue = min(1.0, m * min(t.pvalue for t in tests))
    failed = [(name, t) for name, t in named_tests if not t.passed]
    reason = "; ".join(f"{name}: {t.reason}" for name, t in failed)
    parts = tuple({"name": name, **t.to_dict()} for name, t in named_tests)
    est = pooled_tv(first_counts, first_p, rng=rng)
    stat = float(sum(t.statistic for t in tests))
    return AuditResult(level, sampler, not failed, "chi-square", max(t.n for t in tests), seconds, tv, alpha, power,
                       pvalue, stat, int(sum(t.df for t in tests)), est, parts, dict(settings or {}), reason)


def histogram_test(counts, p, *, alpha: float) -> LosslessTest:
    """Run :func:`~spechub_theory.montecarlo.stats.matches_target` on a count vector.

    Kept here so callers need one import.

    Parameters
    ----------
    counts : array_like of int
        Output histogram, shape (n,).
    p : array_like
        The target law, shape (n,).
    alpha : float
        Significance level.

    Returns
    -------
    LosslessTest
        The pooled chi-square test.
    """
    return matches_target(np.asarray(counts, dtype=np.int64), p, alpha=alpha, kind="counts")


def json_ready(obj):
    """Replace every non-finite float in ``obj`` by None.

    JSON has no inf, and an infinite chi-square means a zero-probability hit, stated in the
    ``reason``.

    Parameters
    ----------
    obj : object
        Dicts, lists, tuples and floats, nested.

    Returns
    -------
    object
        The same structure (tuples become lists), non-finite floats as None.
    """
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _kl(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if (a[b <= 0] > 0).any():
        return math.inf
    m = a > 0
    return max(0.0, float(np.sum(a[m] * np.log(a[m] / b[m]))))  # >= 0 (Gibbs); clip round-off
