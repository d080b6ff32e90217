r"""Monte Carlo verification of any verifier: acceptance with intervals, positional split, output histogram.

Convention: p = target, q = draft, last axis = vocabulary; N independent nodes, each with k drafts
from a draft law and one verification. Source: theory.md 6.3 and 7 (the Monte Carlo oracle).

The engine simulates the accept/reject procedure itself (never the closed form). A verifier is a
method name, a method-like object (``NAME``, ``LAW``, ``rule``: the project's methods and
:mod:`spechub_theory.montecarlo.mutants`), or a plain callable ``f(p, q, drafts, u) -> Verification`` with
the uniforms convention of :func:`spechub_theory.verification.verify`. Trials run in chunks; for a
rule-based method the rule is evaluated without (N, n) arrays (see :func:`simulate`).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as _st

from ..distributions import check_k, check_pq
from .interval import ConfidenceInterval
from ..draft_laws import DraftLaw, get_law
from ..methods import METHODS, get_method
from .kernels import verify_chunk
from ..verification import check_method_k, output_law

__all__ = ["ConfidenceInterval", "MonteCarloResult", "simulate", "wilson_interval", "resolve_verifier", "Verifier"]

#: trials per chunk: drafts, uniforms and outputs of one chunk take about 3 MB
DEFAULT_BATCH = 1 << 16
#: exact rates by enumeration (``output_law``) for unregistered methods up to this many entries
EXACT_ENUMERATION_ENTRIES = 10_000_000


def wilson_interval(successes, trials, level: float = 0.95) -> ConfidenceInterval:
    r"""Wilson score interval for a binomial proportion.

    .. math:: \frac{\hat\alpha + z^2/2N \pm z\sqrt{\hat\alpha(1-\hat\alpha)/N + z^2/4N^2}}{1 + z^2/N}

    with :math:`z = \Phi^{-1}((1 + \text{level})/2)`. O(1). Never empty, stays in [0, 1], and has
    close to nominal coverage even near 0 or 1 (unlike the Wald interval). Source: Wilson (1927);
    Brown, Cai & DasGupta (2001).

    Parameters
    ----------
    successes : int
        Number of successes, between 0 and ``trials``.
    trials : int
        Number of trials N, >= 1.
    level : float, optional
        Confidence level, in (0, 1).

    Returns
    -------
    ConfidenceInterval
        The interval ``(low, high)`` and its ``level``.

    Raises
    ------
    ValueError
        If ``trials < 1`` or ``level`` is outside (0, 1).

    Examples
    --------
    >>> ci = wilson_interval(850, 1000)
    >>> round(ci.low, 4), round(ci.high, 4)
    (0.8265, 0.8708)
    """
    if trials <= 0:
        raise ValueError(f"`trials` must be >= 1; got {trials}.")
    if not 0 < level < 1:
        raise ValueError(f"`level` must be in (0, 1); got {level}.")
    z = float(_st.norm.ppf(0.5 + level / 2))
    a = successes / trials
    den = 1.0 + z * z / trials
    mid = (a + z * z / (2 * trials)) / den
    half = z * math.sqrt(a * (1 - a) / trials + z * z / (4 * trials * trials)) / den
    low = 0.0 if successes <= 0 else max(0.0, mid - half)  # exact ends: no round-off at 0 and N
    high = 1.0 if successes >= trials else min(1.0, mid + half)
    return ConfidenceInterval(low, high, level)


@dataclass(frozen=True)
class MonteCarloResult:
    """Outcome of N simulated verifications of one verifier on one (p, q, k).

    Attributes
    ----------
    method : str
    k, n_trials : int
    accepted : int
        Trials in which a draft was accepted.
    slot_counts : ndarray of int64, shape (k,)
        How often slot j was the accepted draft.
    token_counts : ndarray of int64, shape (n,)
        Histogram of the emitted token (compare with p: :func:`spechub_theory.montecarlo.stats.matches_target`).
    exact : float or None
        Exact acceptance when known (closed form, or enumeration for small unregistered methods).
    exact_positional : ndarray or None
    in_drafts_when_rejected : int
        Rejected trials whose token is nevertheless among the drafts (0 for every method here:
        theory.md 1, "accepted iff y in S"; a user verifier may differ).
    seed : int or None
    """

    method: str
    k: int
    n_trials: int
    accepted: int
    slot_counts: np.ndarray = field(repr=False)
    token_counts: np.ndarray = field(repr=False)
    exact: float | None = None
    exact_positional: np.ndarray | None = field(default=None, repr=False)
    in_drafts_when_rejected: int = 0
    seed: int | None = None

    @property
    def acceptance(self) -> float:
        """Empirical acceptance rate accepted / N."""
        return self.accepted / self.n_trials

    @property
    def positional(self) -> np.ndarray:
        """Empirical P(slot j is the accepted draft), shape (k,)."""
        return self.slot_counts / self.n_trials

    def confidence_interval(self, level: float = 0.95) -> ConfidenceInterval:
        """Wilson interval for the acceptance rate (:func:`wilson_interval`).

        Parameters
        ----------
        level : float, optional

        Returns
        -------
        ConfidenceInterval
        """
        return wilson_interval(self.accepted, self.n_trials, level)

    def positional_intervals(self, level: float = 0.95) -> list[ConfidenceInterval]:
        """Wilson interval of each slot's share, one per slot.

        Parameters
        ----------
        level : float, optional

        Returns
        -------
        list[ConfidenceInterval]
        """
        return [wilson_interval(int(c), self.n_trials, level) for c in self.slot_counts]

    @property
    def z(self) -> float | None:
        r"""z-score :math:`(\hat\alpha - \alpha)/\sqrt{\alpha(1-\alpha)/N}` against the exact rate
        (None when unknown; 0 or +-inf when the exact rate is 0 or 1)."""
        if self.exact is None:
            return None
        diff = self.acceptance - self.exact
        var = self.exact * (1.0 - self.exact) / self.n_trials
        if var <= 0:
            return 0.0 if abs(diff) <= 1e-12 else math.copysign(math.inf, diff)
        return diff / math.sqrt(var)

    def to_dict(self) -> dict:
        """JSON-ready summary: rates, the 95% interval ``ci95``, z, positional splits, counts.

        Returns
        -------
        dict
        """
        ci = self.confidence_interval(0.95)
        out = {
            "method": self.method, "k": self.k, "n_trials": self.n_trials, "seed": self.seed,
            "acceptance_mc": self.acceptance, "ci95": [ci.low, ci.high],
            "acceptance_exact": self.exact, "z": self.z,
            "positional_mc": self.positional.tolist(),
            "positional_exact": None if self.exact_positional is None else np.asarray(self.exact_positional).tolist(),
            "in_drafts_when_rejected": self.in_drafts_when_rejected,
        }
        return out


@dataclass(frozen=True)
class Verifier:
    """A resolved verifier: its display name, draft sampler and verification.

    Display ``name``, the draft sampler, and either a method-like ``module`` (rule-based, fast paths
    available) or a plain ``function(p, q, drafts, u)``.
    """

    name: str
    sample: object
    module: object = None
    function: object = None
    default_law: bool = True


def resolve_verifier(verifier, *, law=None) -> Verifier:
    """Turn a method name / method-like object / callable and an optional ``law`` into a :class:`Verifier`.

    ``law`` may be a :class:`DraftLaw`, a law name (``"iid"``, ``"wor"``, ``"hub"``) or a callable
    ``sample(q, k, size, rng) -> (size, k)``; default: the method's ``LAW``. A plain callable
    without a ``LAW`` attribute needs ``law``.

    Parameters
    ----------
    verifier : str, module, object or callable
        A method name, a method-like object (``NAME``, ``LAW``, ``rule``), or a plain
        ``f(p, q, drafts, u) -> Verification``.
    law : DraftLaw, str or callable, optional
        The draft law; default: the verifier's ``LAW``.

    Returns
    -------
    Verifier
        The name, draft sampler and the module or function to verify with.

    Raises
    ------
    ValueError
        If no draft law is given or found, or a name is unknown.
    TypeError
        If ``verifier`` or ``law`` has none of the accepted types.
    """
    module = function = None
    if isinstance(verifier, str) or all(hasattr(verifier, a) for a in ("NAME", "LAW", "rule")):
        module = get_method(verifier)
        name = module.NAME
    elif callable(verifier):
        function = verifier
        name = getattr(verifier, "NAME", getattr(verifier, "__name__", type(verifier).__name__))
    else:
        raise TypeError(f"`verifier` must be a method name, a method module or a callable; got {type(verifier).__name__}.")
    chosen = law if law is not None else getattr(module if module is not None else verifier, "LAW", None)
    if chosen is None:
        raise ValueError(f"verifier {name!r} has no draft law: pass `law=` (a DraftLaw, 'iid'/'wor'/'hub', or sample(q, k, size, rng)).")
    if isinstance(chosen, str):
        chosen = get_law(chosen)
    if isinstance(chosen, DraftLaw):
        sample = _law_sampler(chosen)
    elif callable(chosen):
        sample = chosen
    else:
        raise TypeError(f"`law` must be a DraftLaw, a law name or a callable; got {type(chosen).__name__}.")
    return Verifier(name, sample, module, function, default_law=law is None)


def simulate(p, q, k: int, *, method, n_trials: int, law=None, rng=None, batch: int | None = None,
             workers: int | None = None, progress=None) -> MonteCarloResult:
    r"""Simulate ``n_trials`` independent verifications of ``method`` on (p, q) with k drafts.

    Parameters
    ----------
    p, q : array_like, shape (n,)
        Target and draft distributions (one pair).
    k : int
        Drafts per node (1 for ``single``).
    method : str, method-like object or callable
        See :func:`resolve_verifier`.
    n_trials : int
    law : DraftLaw, str or callable, optional
        Draft sampler; default the method's own law (then the exact rate is reported).
    rng : numpy Generator or seed, optional
    batch : int, optional
        Trials per chunk (default :data:`DEFAULT_BATCH`). Chunk i draws from the i-th stream
        spawned from ``rng``, so results are reproducible for a given seed and batch, whatever
        ``workers`` is.
    workers : int, optional
        Threads running chunks concurrently (default: the CPU count, at most 8). A plain
        callable verifier runs with one thread unless ``workers`` is given.
    progress : callable, optional
        Called as ``progress(done, total)`` after every chunk.

    Returns
    -------
    MonteCarloResult

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``simulate`` takes one pair p, q of shape (n,);
        loop over positions outside; or ``n_trials`` must be an integer >= 1; or ``batch`` must be
        >= 1.

    Notes
    -----
    Per chunk: drafts from the law, ``k + 1`` uniforms per trial (``u[:, j]`` tests slot j,
    ``u[:, k]`` samples the residual), then one of three paths, all equal in law to
    :func:`~spechub_theory.verification.verify`:

    * methods with ``RESIDUAL_DEPENDS_ON_DRAFTS = False`` (single, rrs, kseq, spechub): one rule
      call on the chunk; the residual is one (n,) law, sampled by one inverse CDF. O(k + log n)
      per trial plus O(n) per chunk.
    * ``rrs_wor`` with k = 2: both tests are O(1) per trial (q_2 = q / s(x_1)) and the residual,
      a one-parameter family in x_1, is drawn in O(log n) per rejected trial.
    * any other rule (rrs_wor with k > 2, mutants, user modules): the rule is evaluated once per
      distinct draft tuple of the chunk (``np.unique`` on an integer code), in blocks of
      :data:`~spechub_theory.montecarlo.kernels.GROUP_BLOCK_ENTRIES` entries. O(distinct tuples x n) per chunk.

    A plain callable is called once per chunk. The output token, accepted slot and (for
    diagnostics) whether a rejected token is among the drafts are accumulated with ``bincount``.

    Examples
    --------
    >>> r = simulate([.3, .3, .4], [.6, .3, .1], 2, method="spechub", n_trials=20000, rng=1)
    >>> round(r.exact, 6), r.confidence_interval(0.999).contains(r.exact)
    (0.85, True)
    """
    p, q = check_pq(p, q)
    if p.ndim != 1 or q.ndim != 1:
        raise ValueError("`simulate` takes one pair p, q of shape (n,); loop over positions outside.")
    n = p.shape[-1]
    ver = resolve_verifier(method, law=law)
    if ver.module is not None:
        k = check_method_k(ver.module, k, n if ver.module.LAW.distinct else None)
    else:
        k = check_k(k)
    if int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"`n_trials` must be an integer >= 1; got {n_trials}.")
    n_trials = int(n_trials)
    batch = DEFAULT_BATCH if batch is None else int(batch)
    if batch < 1:
        raise ValueError(f"`batch` must be >= 1; got {batch}.")
    seed = rng if isinstance(rng, (int, np.integer)) else None
    rng = np.random.default_rng(rng)
    sizes = [min(batch, n_trials - s) for s in range(0, n_trials, batch)]
    streams = _spawn(rng, len(sizes))  # one independent stream per chunk: same result for any `workers`
    totals = _Totals(k, n)

    def run_chunk(i):
        g = streams[i]
        drafts = np.asarray(ver.sample(q, k, sizes[i], g), dtype=np.int64).reshape(sizes[i], k)
        u = g.random((sizes[i], k + 1))
        return drafts, verify_chunk(ver, p, q, drafts, u)

    workers = _workers(1 if workers is None and ver.function is not None else workers, len(sizes))
    if workers == 1:
        outs = map(run_chunk, range(len(sizes)))
    else:
        pool = ThreadPoolExecutor(workers)  # numpy releases the GIL in the chunk kernels
        outs = pool.map(run_chunk, range(len(sizes)))
    try:
        for drafts, out in outs:
            totals.add(drafts, out)
            if progress is not None:
                progress(totals.done, n_trials)
    finally:
        if workers > 1:
            pool.shutdown(cancel_futures=True)
    slots, tokens, in_drafts = totals.slots, totals.tokens, totals.in_drafts
    exact, exact_pos = _exact(ver, p, q, k) if ver.default_law else (None, None)
    return MonteCarloResult(
        method=ver.name, k=k, n_trials=n_trials, accepted=int(n_trials - slots[k]),
        slot_counts=slots[:k].copy(), token_counts=tokens, exact=exact, exact_positional=exact_pos,
        in_drafts_when_rejected=in_drafts, seed=seed,
    )


# -- helpers ------------------------------------------------------------------------------------

class _Totals:
    """Running counts: accepted slots (rejections at index k), output tokens, diagnostics."""

    def __init__(self, k, n):
        self.k, self.n, self.done, self.in_drafts = k, n, 0, 0
        self.slots = np.zeros(k + 1, dtype=np.int64)
        self.tokens = np.zeros(n, dtype=np.int64)

    def add(self, drafts, out):
        k = self.k
        self.slots += np.bincount(np.where(out.slot >= 0, out.slot, k), minlength=k + 1)[: k + 1]
        self.tokens += np.bincount(out.token, minlength=self.n)[: self.n]
        rejected = out.slot < 0
        self.in_drafts += int((drafts[rejected] == out.token[rejected, None]).any(axis=-1).sum())
        self.done += len(drafts)


def _spawn(rng, count):
    """``count`` independent child generators (``Generator.spawn``, numpy >= 1.25; else via the
    seed sequence)."""
    if hasattr(rng, "spawn"):
        return rng.spawn(count)
    return [np.random.default_rng(s) for s in rng.bit_generator._seed_seq.spawn(count)]  # pragma: no cover


def _workers(workers, chunks):
    if workers is None:
        workers = min(os.cpu_count() or 1, 8)
    if int(workers) < 1:
        raise ValueError(f"`workers` must be >= 1; got {workers}.")
    return max(1, min(int(workers), chunks))


def _law_sampler(law: DraftLaw):
    def sample(q, k, size, rng):
        return law.sample(q, k, size=size, rng=rng)

    return sample


def _exact(ver: Verifier, p, q, k):
    """Exact acceptance and positional split when computable cheaply, else (None, None)."""
    m = ver.module
    if m is None:
        return None, None
    if METHODS.get(m.NAME) is m:
        from ..acceptance import EXACT_RRS_WOR_MAX_N, acceptance_rates

        rate = float(acceptance_rates(p, q, k, methods=[m.NAME]).acceptance[m.NAME])
        costly = hasattr(m, "acceptance_bounded") and k > 2 and len(p) > EXACT_RRS_WOR_MAX_N
        return rate, None if costly else np.asarray(m.positional(p, q, k), dtype=np.float64)
    if len(p) ** (k + 1) <= EXACT_ENUMERATION_ENTRIES:
        law = output_law(p, q, k, method=m)
        return law.acceptance, law.positional
    return None, None
