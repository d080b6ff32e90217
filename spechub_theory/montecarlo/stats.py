r"""Statistical lossless tests: pooled chi-square goodness of fit, power analysis, ``assert_lossless``.

Convention: p = target, last axis = vocabulary; a verifier is lossless iff its output token ~ p.
Source: theory.md 6.3 and 7 (the Monte Carlo oracle); Cressie & Read (1984); Cohen (1988) ch. 7.

The test is Pearson's chi-square on bins: every token with expected count N p(x) >= 5 is its own
bin, the others are pooled (in increasing order of p) into bins of expected count >= 5, so the
chi-square approximation holds. A sample on a token with p(x) = 0 fails at once. Sample sizes
come from the noncentral chi-square with the worst-case noncentrality 4 N TV^2 (see
:func:`samples_needed`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats as _st

from ..distributions import check_distribution

__all__ = ["TokenDeviation", "LosslessTest", "matches_target", "pooled_bins", "samples_needed", "assert_lossless", "MIN_EXPECTED"]

#: minimum expected count per bin (Cochran's rule for the chi-square approximation)
MIN_EXPECTED = 5.0
#: tokens listed in a report
WORST_SHOWN = 5


@dataclass(frozen=True)
class TokenDeviation:
    """One token's ``observed`` count against ``expected`` = N p(x), and z = (O - E)/sqrt(N p (1 - p))."""

    token: int
    observed: int
    expected: float
    z: float

    def to_dict(self) -> dict:
        """``{"token", "observed", "expected", "z"}``.

        Returns
        -------
        dict
        """
        return {"token": self.token, "observed": self.observed, "expected": self.expected, "z": self.z}


@dataclass(frozen=True)
class LosslessTest:
    """Result of a goodness-of-fit test of an output histogram against p.

    Attributes
    ----------
    statistic : float
        Pearson's X^2 over the bins (inf when a zero-probability token was sampled).
    df : int
        Bins - 1.
    pvalue : float
    alpha : float
    passed : bool
        ``pvalue > alpha`` and no sample on a zero-probability token.
    n : int
        Sample size.
    n_bins, pooled_tokens : int
        Bins used; tokens that were pooled into shared bins.
    method : str
    worst : tuple of TokenDeviation
        The tokens with the largest |z| (zero-probability tokens with samples first).
    reason : str
        Why it failed ("" when passed).
    """

    statistic: float
    df: int
    pvalue: float
    alpha: float
    passed: bool
    n: int
    n_bins: int
    pooled_tokens: int
    method: str
    worst: tuple = field(default=(), repr=False)
    reason: str = ""

    @property
    def decision(self) -> str:
        """The decision: "lossless" (not rejected at ``alpha``) or "not lossless"."""
        return "lossless" if self.passed else "not lossless"

    def report(self) -> str:
        """Multi-line human-readable summary with the worst tokens.

        Returns
        -------
        str
        """
        head = (f"{self.decision}: {self.method}, X^2 = {self.statistic:.4g}, df = {self.df}, "
                f"p-value = {self.pvalue:.3g} (alpha = {self.alpha:g}), N = {self.n}, bins = {self.n_bins}"
                f" ({self.pooled_tokens} tokens pooled)")
        lines = [head] + ([f"reason: {self.reason}"] if self.reason else [])
        lines += [f"  token {d.token}: observed {d.observed}, expected {d.expected:.1f}, z = {d.z:+.2f}" for d in self.worst]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready dict (``worst`` as a list of dicts).

        Returns
        -------
        dict
        """
        return {"statistic": self.statistic, "df": self.df, "pvalue": self.pvalue, "alpha": self.alpha,
                "passed": self.passed, "decision": self.decision, "n": self.n, "n_bins": self.n_bins,
                "pooled_tokens": self.pooled_tokens, "method": self.method,
                "worst": [d.to_dict() for d in self.worst], "reason": self.reason}


def pooled_bins(p, n_samples: int, min_expected: float = MIN_EXPECTED) -> np.ndarray:
    """Bin index of every token (-1 for p(x) = 0), for the chi-square test at N samples.

    Tokens with N p >= ``min_expected`` get a bin alone, the rest are pooled in increasing order
    of p into bins of expected count >= ``min_expected`` (a last short bin joins the previous
    pooled bin, or the smallest single bin). O(n log n).

    The bins depend on p and N only, never on the data, so the test keeps its level.

    Parameters
    ----------
    p : array_like
        The law under test, shape (n,).
    n_samples : int
        Number of samples N.
    min_expected : float, optional
        Smallest expected count of a bin.

    Returns
    -------
    numpy.ndarray
        The int64 bin index of each token, shape (n,).

    Raises
    ------
    ValueError
        If ``p`` is not a distribution.

    Examples
    --------
    >>> pooled_bins([.5, .3, .1, .05, .05, 0.0], 40).tolist()
    [0, 1, 2, 2, 2, -1]
    """
    p = check_distribution(p, "p")
    e = n_samples * p
    bins = np.full(len(p), -1, dtype=np.int64)
    big = np.flatnonzero(e >= min_expected)
    bins[big] = np.arange(len(big))
    small = np.flatnonzero((e > 0) & (e < min_expected))
    small = small[np.argsort(e[small], kind="stable")]
    label = np.empty(len(small), dtype=np.int64)
    b, acc = len(big), 0.0
    for j, x in enumerate(e[small].tolist()):  # greedy: close a bin once it reaches min_expected
        label[j] = b
        acc += x
        if acc >= min_expected:
            b, acc = b + 1, 0.0
    if acc > 0:  # a short last bin joins the previous pooled bin, else the smallest single bin
        short = label == b
        if b > len(big):
            label[short] = b - 1
        elif len(big):
            label[short] = bins[big[np.argmin(e[big])]]
    bins[small] = label
    return bins


def matches_target(observed, p, *, alpha: float = 0.01, kind: str = "auto") -> LosslessTest:
    r"""Pooled Pearson chi-square test of "the observed tokens are drawn from p".

    .. math:: X^2 = \sum_{\text{bins } b} \frac{(O_b - N p_b)^2}{N p_b} \;\sim\; \chi^2_{B - 1}

    Parameters
    ----------
    observed : array_like of int, or a MonteCarloResult
        Token samples (shape (N,)) or counts per token (shape (n,)); a ``MonteCarloResult`` gives
        its ``token_counts``.
    p : array_like, shape (n,)
    alpha : float
        Level: the probability of rejecting a lossless verifier.
    kind : {"auto", "samples", "counts"}
        "auto" reads a 1-D integer array of length n as counts and anything else as samples.

    Returns
    -------
    LosslessTest

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``alpha`` must be in (0, 1); or ``p`` must have
        shape (n,); or ``observed`` holds no samples.

    Notes
    -----
    O(N + n log n) time, O(n) memory (``np.bincount``): fine for n = 50,000. Bins: see
    :func:`pooled_bins`. A sample on a token with p(x) = 0 is an immediate failure (statistic inf,
    p-value 0). With one bin (p one-hot) there is nothing to test: df = 0, p-value 1.

    Examples
    --------
    >>> t = matches_target([30, 30, 40], [.3, .3, .4])
    >>> t.passed, t.df, round(t.pvalue, 6)
    (True, 2, 1.0)
    """
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be in (0, 1); got {alpha}.")
    p = check_distribution(p, "p")
    if p.ndim != 1:
        raise ValueError(f"`p` must have shape (n,); got {p.shape}.")
    counts = _counts(observed, len(p), kind)
    N = int(counts.sum())
    if N == 0:
        raise ValueError("`observed` holds no samples.")
    bins = pooled_bins(p, N)
    e = N * p
    z = np.where(e > 0, (counts - e) / np.sqrt(np.maximum(e * (1 - p), 1e-300)), np.where(counts > 0, np.inf, 0.0))
    order = np.argsort(-np.abs(z), kind="stable")[:WORST_SHOWN]
    worst = tuple(TokenDeviation(int(i), int(counts[i]), float(e[i]), float(z[i])) for i in order if counts[i] != e[i])
    n_bins = int(bins.max()) + 1 if (bins >= 0).any() else 0
    pooled = int(((e > 0) & (e < MIN_EXPECTED)).sum())
    method = f"Pearson chi-square, tokens with N p < {MIN_EXPECTED:g} pooled"
    bad = int(counts[p == 0].sum())
    if bad:
        return LosslessTest(math.inf, max(n_bins - 1, 0), 0.0, alpha, False, N, n_bins, pooled, method, worst,
                            f"{bad} sample(s) on zero-probability tokens {np.flatnonzero((p == 0) & (counts > 0))[:WORST_SHOWN].tolist()}")
    O = np.bincount(bins[p > 0], weights=counts[p > 0], minlength=n_bins)
    E = np.bincount(bins[p > 0], weights=e[p > 0], minlength=n_bins)
    stat = float(((O - E) ** 2 / E).sum())
    df = n_bins - 1
    pvalue = float(_st.chi2.sf(stat, df)) if df > 0 else 1.0
    passed = pvalue > alpha
    reason = "" if passed else f"p-value {pvalue:.3g} <= alpha {alpha:g}"
    return LosslessTest(stat, df, pvalue, alpha, passed, N, n_bins, pooled, method, worst, reason)


def samples_needed(n_tokens: int, tv: float, alpha: float = 1e-3, power: float = 0.99) -> int:
    r"""Sample size at which :func:`matches_target` detects any deviation of total variation ``tv``.

    The test statistic is noncentral chi-square with df = B - 1 <= n - 1 and noncentrality
    :math:`\lambda = N \chi^2(p' \| p)`, and for every p and every p' with TV(p', p) = tv,

    .. math:: \chi^2(p' \| p) = \sum_x \frac{(p'(x) - p(x))^2}{p(x)} \ge \Big(\sum_x |p'(x) - p(x)|\Big)^2 = 4\,\mathrm{tv}^2

    (Cauchy-Schwarz; equality when |p' - p| is proportional to p: the deviation spread hardest
    to see). So N = ceil(lambda* / (4 tv^2)), lambda* solving
    ``ncx2.sf(chi2.isf(alpha, df), df, lambda) = power`` with the conservative df = n - 1.

    Parameters
    ----------
    n_tokens : int
        Number of tokens (bins) of the tested law, >= 2.
    tv : float
        Total variation to detect, in (0, 1].
    alpha : float, optional
        Significance level of the test, in (0, 1).
    power : float, optional
        Probability of detecting a deviation of size ``tv``, in (0, 1).

    Returns
    -------
    int
        The number of samples N.

    Raises
    ------
    ValueError
        If ``n_tokens < 2``, ``tv`` is outside (0, 1], or ``alpha`` or ``power`` is outside (0, 1).

    Notes
    -----
    Worst case over how the deviation spreads, for any p. Pooling merges rare tokens, and the
    bound then applies to the TV between the pooled laws: a deviation that only moves mass
    between tokens of one pooled bin is not seen (no test can see it at this N). O(log) root
    finding.

    Examples
    --------
    >>> samples_needed(4, 0.05, alpha=1e-3, power=0.99)
    3794
    """
    n_tokens = int(n_tokens)
    if n_tokens < 2:
        raise ValueError(f"`n_tokens` must be >= 2 (a one-token law needs no test); got {n_tokens}.")
    if not 0 < tv <= 1:
        raise ValueError(f"`tv` must be in (0, 1]; got {tv}.")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"`alpha` and `power` must be in (0, 1); got {alpha} and {power}.")
    return _samples_for_df(n_tokens - 1, tv, alpha, power)


def assert_lossless(verifier, p, q, k: int, *, tv: float = 0.01, alpha: float = 1e-3, power: float = 0.99,
                    rng=None, law=None, batch: int | None = None) -> LosslessTest:
    """Raise ``AssertionError`` unless ``verifier``'s output law matches p at the chosen power.

    Simulates N verifications (:func:`spechub_theory.montecarlo.simulation.simulate`) with N from the power
    analysis (:func:`samples_needed`, refined with the bins that p gives at that N), then runs
    :func:`matches_target`. A lossless verifier fails with probability ``alpha``; one whose
    output law is ``tv`` away from p passes with probability at most ``1 - power``.

    Parameters
    ----------
    verifier : str, method-like object or callable ``f(p, q, drafts, u) -> Verification``
    p, q : array_like, shape (n,)
    k : int
    tv, alpha, power : float
    rng : numpy Generator or seed, optional
    law : DraftLaw, str or callable, optional
        Draft sampler (default the verifier's ``LAW``).
    batch : int, optional

    Returns
    -------
    LosslessTest
        When the test passes.

    Raises
    ------
    AssertionError
        If the verifier fails the lossless test (the message lists the worst tokens and the TV
        and power the test was sized for).

    Examples
    --------
    >>> assert_lossless("spechub", [.3, .3, .4], [.6, .3, .1], 2, tv=0.05, rng=0).passed
    True
    """
    from .simulation import simulate

    p = check_distribution(p, "p")
    N = sample_size_for(p, tv, alpha, power)
    result = simulate(p, q, k, method=verifier, n_trials=N, law=law, rng=rng, batch=batch)
    test = matches_target(result.token_counts, p, alpha=alpha, kind="counts")
    if not test.passed:
        raise AssertionError(f"verifier {result.method!r} is not lossless on this (p, q, k = {result.k}) "
                             f"[test sized for TV >= {tv:g} at power {power:g}]\n" + test.report())
    return test


def sample_size_for(p, tv: float, alpha: float = 1e-3, power: float = 0.99) -> int:
    """Compute :func:`samples_needed` for a known p, with the df of the bins p actually has.

    The df is taken from the bins p has at the conservative size N0 (``pooled_bins``); since the
    bins only merge as N shrinks, the smaller N it returns keeps the requested power.

    Parameters
    ----------
    p : array_like
        The law under test, shape (n,).
    tv : float
        Total variation to detect, in (0, 1].
    alpha : float, optional
        Significance level of the test, in (0, 1).
    power : float, optional
        Probability of detecting a deviation of size ``tv``, in (0, 1).

    Returns
    -------
    int
        The number of samples N, at most :func:`samples_needed` of the support size.

    Raises
    ------
    ValueError
        If ``p`` is not a distribution.
    """
    p = check_distribution(p, "p")
    support = int((p > 0).sum())
    if support < 2:
        return _samples_for_df(1, tv, alpha, power)
    n0 = samples_needed(support, tv, alpha, power)
    df = max(int(pooled_bins(p, n0).max()), 1)
    return min(n0, _samples_for_df(df, tv, alpha, power))


def _samples_for_df(df: int, tv: float, alpha: float, power: float) -> int:
    crit = _st.chi2.isf(alpha, df)
    lam = optimize.brentq(lambda x: _st.ncx2.sf(crit, df, x) - power, 1e-9, 1e3 + 100.0 * df, xtol=1e-10)
    return int(math.ceil(lam / (4.0 * tv * tv)))


def _counts(observed, n: int, kind: str) -> np.ndarray:
    if hasattr(observed, "token_counts"):
        observed, kind = observed.token_counts, "counts"
    if kind not in ("auto", "samples", "counts"):
        raise ValueError(f"`kind` must be 'auto', 'samples' or 'counts'; got {kind!r}.")
    x = np.asarray(observed)
    integral = np.issubdtype(x.dtype, np.integer) or (x.dtype.kind in "fb" and bool(np.all(x == np.round(x))))
    if x.ndim != 1 or not integral:
        raise ValueError(f"`observed` must be a 1-D array of integer samples or counts; got shape {x.shape}, dtype {x.dtype}.")
    x = x.astype(np.int64)
    if kind == "counts" or (kind == "auto" and len(x) == n):
        if len(x) != n:
            raise ValueError(f"`observed` counts must have length n = {n}; got {len(x)}.")
        if (x < 0).any():
            raise ValueError("`observed` counts must be >= 0.")
        return x
    if x.size and (x.min() < 0 or x.max() >= n):
        raise ValueError(f"`observed` samples must be token ids in [0, {n}); got a value {int(x.min() if x.min() < 0 else x.max())}.")
    return np.bincount(x, minlength=n)
