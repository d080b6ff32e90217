r"""Monte Carlo verification of any verifier: acceptance with intervals, positional split, output histogram.

Convention: p = target, q = draft, last axis = vocabulary; N independent nodes, each with k drafts
from a draft law and one verification. Source: theory.md 6.3 and 7 (the Monte Carlo oracle).

The engine simulates the accept/reject procedure itself (never the closed form). A verifier is a
method name, a method-like object (``NAME``, ``LAW``, ``rule``: the project's methods and
:mod:`spechub_theory.mutants`), or a plain callable ``f(p, q, drafts, u) -> Verification`` with
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

from .distributions import check_pq
from .draft_laws import DraftLaw, get_law
from .methods import METHODS, get_method
from .methods.base import RESIDUAL_EPS, NodeRule, Verification, normalise_residual, slots_from_sequential, verify_from_rule
from .methods.single import ratio_accept
from .verification import check_method_k, output_law

__all__ = ["ConfidenceInterval", "MonteCarloResult", "simulate", "wilson_interval", "resolve_verifier", "Verifier"]

#: trials per chunk: drafts, uniforms and outputs of one chunk take about 3 MB
DEFAULT_BATCH = 1 << 16
#: rows x vocabulary entries of per-group rule arrays evaluated at once (about 32 MB of float64)
GROUP_BLOCK_ENTRIES = 1 << 22
#: exact rates by enumeration (``output_law``) for unregistered methods up to this many entries
EXACT_ENUMERATION_ENTRIES = 10_000_000


@dataclass(frozen=True)
class ConfidenceInterval:
    """Two-sided interval ``[low, high]`` at confidence ``level`` for a probability."""

    low: float
    high: float
    level: float = 0.95

    def contains(self, x: float) -> bool:
        """Whether ``low <= x <= high``."""
        return bool(self.low <= x <= self.high)

    def to_dict(self) -> dict:
        """``{"low", "high", "level"}``."""
        return {"low": self.low, "high": self.high, "level": self.level}


def wilson_interval(successes, trials, level: float = 0.95) -> ConfidenceInterval:
    r"""Wilson score interval for a binomial proportion.

    .. math:: \frac{\hat\alpha + z^2/2N \pm z\sqrt{\hat\alpha(1-\hat\alpha)/N + z^2/4N^2}}{1 + z^2/N}

    with :math:`z = \Phi^{-1}((1 + \text{level})/2)`. O(1). Never empty, stays in [0, 1], and has
    close to nominal coverage even near 0 or 1 (unlike the Wald interval). Source: Wilson (1927);
    Brown, Cai & DasGupta (2001).

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
        Histogram of the emitted token (compare with p: :func:`spechub_theory.stats.matches_target`).
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
        """Wilson interval for the acceptance rate (:func:`wilson_interval`)."""
        return wilson_interval(self.accepted, self.n_trials, level)

    def positional_intervals(self, level: float = 0.95) -> list[ConfidenceInterval]:
        """Wilson interval of each slot's share, one per slot."""
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
        """JSON-ready summary: rates, the 95% interval ``ci95``, z, positional splits, counts."""
        ci = self.confidence_interval(0.95)
        out = {
            "method": self.method, "k": self.k, "n_draws": self.n_trials, "seed": self.seed,
            "acceptance_mc": self.acceptance, "ci95": [ci.low, ci.high],
            "acceptance_exact": self.exact, "z": self.z,
            "positional_mc": self.positional.tolist(),
            "positional_exact": None if self.exact_positional is None else np.asarray(self.exact_positional).tolist(),
            "in_drafts_when_rejected": self.in_drafts_when_rejected,
        }
        return out


@dataclass(frozen=True)
class Verifier:
    """A resolved verifier: display ``name``, the draft sampler, and either a method-like ``module``
    (rule-based, fast paths available) or a plain ``function(p, q, drafts, u)``."""

    name: str
    sample: object
    module: object = None
    function: object = None
    default_law: bool = True


def resolve_verifier(verifier, law=None) -> Verifier:
    """Turn a method name / method-like object / callable and an optional ``law`` into a :class:`Verifier`.

    ``law`` may be a :class:`DraftLaw`, a law name (``"iid"``, ``"wor"``, ``"hub"``) or a callable
    ``sample(q, k, size, rng) -> (size, k)``; default: the method's ``LAW``. A plain callable
    without a ``LAW`` attribute needs ``law``.
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

    Notes
    -----
    Per chunk: drafts from the law, ``k + 1`` uniforms per trial (``u[:, j]`` tests slot j,
    ``u[:, k]`` samples the residual), then one of three paths, all equal in law to
    :func:`~spechub_theory.verification.verify`:

    * methods with ``RESIDUAL_DEPENDS_ON_DRAFTS = False`` (single, rrs, kseq, spechub): one rule
      call on the chunk; the residual is one (n,) law, sampled by one inverse CDF. O(k + log n)
      per trial plus O(n) per chunk.
    * ``rrs_wor`` with k = 2: stage 2 and the residual depend on x_1 only, so they are built once
      per distinct x_1 (at most n rows per chunk).
    * any other rule (rrs_wor with k > 2, mutants, user modules): the rule is evaluated once per
      distinct draft tuple of the chunk (``np.unique`` on an integer code), in blocks of
      :data:`GROUP_BLOCK_ENTRIES` entries. O(distinct tuples x n) per chunk.

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
    ver = resolve_verifier(method, law)
    if ver.module is not None:
        k = check_method_k(ver.module, k, n if ver.module.LAW.distinct else None)
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
        return drafts, _verify_chunk(ver, p, q, drafts, u)

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


# -- chunk kernels ------------------------------------------------------------------------------

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


def _verify_chunk(ver: Verifier, p, q, drafts, u) -> Verification:
    if ver.function is not None:
        out = ver.function(p, q, drafts, u)
        token = np.asarray(out.token, dtype=np.int64).reshape(-1)
        slot = np.asarray(out.slot, dtype=np.int64).reshape(-1)
        k = drafts.shape[-1]
        if token.shape != (len(drafts),) or slot.shape != token.shape:
            raise ValueError(f"verifier {ver.name!r} returned {token.shape[0]} tokens for {len(drafts)} nodes.")
        if token.min() < 0 or token.max() >= len(p) or slot.min() < -1 or slot.max() >= k:
            raise ValueError(f"verifier {ver.name!r} returned a token outside [0, {len(p)}) or a slot outside [-1, {k}).")
        return Verification(token, slot)
    m = ver.module
    if not getattr(m, "RESIDUAL_DEPENDS_ON_DRAFTS", True):
        return verify_from_rule(m.rule(p, q, drafts), drafts, u)
    if m is METHODS.get("rrs_wor") and drafts.shape[-1] == 2:
        accept, sample_residual, group = _rrs_wor_two(p, q, drafts)
    else:
        accept, sample_residual, group = _rule_by_tuple(m, p, q, drafts)
    return _verify_grouped(accept, sample_residual, group, drafts, u)


def _rrs_wor_two(p, q, drafts):
    """RRS w/o replacement, k = 2 (theory.md 4.3): q_2 = q / s(x_1) off x_1, with s(x) the sum of
    the other entries, so both tests are O(1) per trial. The residual (r - q_2)_+ depends on x_1
    only, and is drawn by :class:`_ResidualFamily` in O(log n) per rejected trial."""
    n = p.shape[-1]
    x1, x2 = drafts[:, 0], drafts[:, 1]
    s = _sum_of_others(q)
    r = normalise_residual(p - q, p)  # p_2, the same for every tuple
    q2 = np.where(s[x1] > 0, q[x2] / np.where(s[x1] > 0, s[x1], 1.0), 1.0 / max(n - 1, 1))
    accept = slots_from_sequential(np.stack([ratio_accept(p[x1], q[x1]), ratio_accept(r[x2], q2)], axis=-1))

    family = _ResidualFamily(r, q)
    return accept, lambda first, t: family.sample(first, s, t), x1


class _ResidualFamily:
    r"""Draws from the RRS w/o replacement residuals :math:`(r - c\,q)_+ / Z(c)` for many c at once.

    With the tokens sorted by r/q (descending), the support of :math:`(r - c q)_+` is a prefix of
    length J(c) and its CDF there is :math:`R_j - c Q_j` (prefix sums of r and q in that order),
    increasing in j; a vectorised binary search inverts it. O(n log n) once, then O(log n) per
    draw and no (draws, n) arrays. The first draft x_1 (c = 1/s(x_1)) needs no masking: a
    rejected x_1 has r(x_1) = 0. Zero mass falls back to r, like ``normalise_residual``;
    s(x_1) = 0 (q one-hot at x_1) uses the uniform law on the others, built row by row.
    """

    def __init__(self, r, q):
        ratio = np.where(q > 0, r / np.where(q > 0, q, 1.0), np.where(r > 0, np.inf, 0.0))
        self.order = np.argsort(-ratio, kind="stable")
        self.neg_ratio = -ratio[self.order]
        self.R = np.cumsum(r[self.order])
        self.Q = np.cumsum(q[self.order])
        self.r, self.q, self.r_cdf = r, q, np.cumsum(r)

    def sample(self, first, s, t):
        n = len(self.r)
        s1 = s[first]
        c = 1.0 / np.where(s1 > 0, s1, 1.0)
        J = np.searchsorted(self.neg_ratio, -c, side="left")  # tokens with r/q > c
        last = np.maximum(J - 1, 0)
        Z = np.where(J > 0, self.R[last] - c * self.Q[last], 0.0)
        target = t * Z
        lo, hi = np.zeros(len(t), dtype=np.int64), last.copy()
        for _ in range(int(np.ceil(np.log2(max(n, 2)))) + 1):
            mid = (lo + hi) // 2
            above = self.R[mid] - c * self.Q[mid] > target
            hi = np.where(above, mid, hi)
            lo = np.where(above, lo, np.minimum(mid + 1, hi))
        token = self.order[lo]
        empty = Z <= RESIDUAL_EPS
        if empty.any():  # the rejection branch has (round-off) probability 0: normalise_residual's fallback
            token[empty] = np.minimum(np.searchsorted(self.r_cdf, t[empty] * self.r_cdf[-1], side="right"), n - 1)
        onehot = s1 <= 0
        if onehot.any():
            rows = np.maximum(self.r - 1.0 / max(n - 1, 1), 0.0)[None].repeat(onehot.sum(), 0)
            rows[np.arange(len(rows)), first[onehot]] = 0.0
            rows = normalise_residual(rows, self.r)
            token[onehot] = _search_shifted(_shifted_cdfs(rows), n, np.arange(len(rows)), t[onehot])
        return token


def _rule_by_tuple(m, p, q, drafts):
    """Evaluate ``m.rule`` once per distinct draft tuple, in blocks of GROUP_BLOCK_ENTRIES; the
    residual rows are recomputed (in blocks) only for tuples with a rejected trial."""
    n, k = p.shape[-1], drafts.shape[-1]
    if k * math.log2(max(n, 2)) < 62:
        code = np.ravel_multi_index(tuple(drafts.T), (n,) * k)
        _, first, group = np.unique(code, return_index=True, return_inverse=True)
        uniq = drafts[first]
    else:
        uniq, group = np.unique(drafts, axis=0, return_inverse=True)
    block = max(1, GROUP_BLOCK_ENTRIES // n)
    accept = np.empty((len(uniq), k))
    for s in range(0, len(uniq), block):
        part = uniq[s : s + block]
        accept[s : s + block] = np.broadcast_to(m.rule(p, q, part).accept, (len(part), k))

    def residual_rows(ids):
        return np.broadcast_to(m.rule(p, q, uniq[ids]).residual, (len(ids), n))

    return accept[group.reshape(-1)], _rows_sampler(residual_rows, n), group.reshape(-1)


def _verify_grouped(accept, sample_residual, group, drafts, u) -> Verification:
    """Sequential test with per-trial ``accept`` (N, k); a rejected trial draws its token with
    ``sample_residual(group ids, uniforms)``."""
    k = drafts.shape[-1]
    hit = u[:, :k] < NodeRule(accept, np.zeros(1)).sequential()
    any_hit = hit.any(axis=-1)
    slot = np.where(any_hit, np.argmax(hit, axis=-1), -1)
    token = drafts[np.arange(len(drafts)), np.maximum(slot, 0)]
    miss = np.flatnonzero(~any_hit)
    if len(miss):
        token[miss] = sample_residual(group[miss], u[miss, k])
    return Verification(token=token, slot=slot)


def _rows_sampler(residual_rows, n):
    """Residual sampler from ``residual_rows(ids) -> (len(ids), n)``: rows built only for the
    distinct ids of rejected trials, GROUP_BLOCK_ENTRIES entries at a time, each block served by
    one search over its shifted CDFs."""
    block = max(1, GROUP_BLOCK_ENTRIES // n)

    def sample(ids, t):
        distinct, row = np.unique(ids, return_inverse=True)
        row = row.reshape(-1)
        if len(distinct) <= block:
            return _search_shifted(_shifted_cdfs(residual_rows(distinct)), n, row, t)
        out = np.empty(len(ids), dtype=np.int64)
        for s in range(0, len(distinct), block):
            mine = np.flatnonzero((row >= s) & (row < s + block))
            out[mine] = _search_shifted(_shifted_cdfs(residual_rows(distinct[s : s + block])), n, row[mine] - s, t[mine])
        return out

    return sample


def _shifted_cdfs(rows):
    """Normalised CDF of row j shifted by j, flattened: nondecreasing, so one binary search
    serves every row (a shift by j < 2^20 costs at most 20 of the 53 bits of a uniform)."""
    cdf = np.cumsum(rows, axis=-1)
    return (cdf / cdf[:, -1:] + np.arange(len(rows))[:, None]).ravel()


def _search_shifted(keys, n, row, t):
    """Inverse CDF of row ``row[i]`` at ``t[i]``: the first index whose CDF exceeds t."""
    target = row + t
    order = np.argsort(target)  # sorted queries walk the keys once (cache friendly)
    y = np.empty(len(t), dtype=np.int64)
    y[order] = np.searchsorted(keys, target[order], side="right")
    return np.minimum(y - row * n, n - 1)


def _sum_of_others(w: np.ndarray) -> np.ndarray:
    """sum_{y != x} w(y) for every x, as prefix + suffix sums (no cancellation near w(x) = 1)."""
    before = np.concatenate([[0.0], np.cumsum(w)[:-1]])
    after = np.concatenate([np.cumsum(w[::-1])[::-1][1:], [0.0]])
    return before + after


def _exact(ver: Verifier, p, q, k):
    """Exact acceptance and positional split when computable cheaply, else (None, None)."""
    m = ver.module
    if m is None:
        return None, None
    if METHODS.get(m.NAME) is m:
        from .acceptance import EXACT_RRS_WOR_MAX_N, acceptance_rates

        rate = float(acceptance_rates(p, q, k, methods=[m.NAME]).acceptance[m.NAME])
        costly = hasattr(m, "acceptance_bounded") and k > 2 and len(p) > EXACT_RRS_WOR_MAX_N
        return rate, None if costly else np.asarray(m.positional(p, q, k), dtype=np.float64)
    if len(p) ** (k + 1) <= EXACT_ENUMERATION_ENTRIES:
        law = output_law(m, p, q, k)
        return law.acceptance, law.positional
    return None, None
