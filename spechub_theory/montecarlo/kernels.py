r"""Fast verification of a chunk of Monte Carlo trials sharing one (p, q): equal in law to ``verify``.

Convention: p = target, q = draft, last axis = vocabulary; drafts (N, k), uniforms u (N, k + 1)
as in :func:`spechub_theory.verification.verify`. Source: theory.md 4.3 (RRS w/o replacement) and 7.

Three paths, none of which builds (N, n) arrays:

1. ``RESIDUAL_DEPENDS_ON_DRAFTS = False`` (single, rrs, kseq, spechub): one ``rule`` call on the
   chunk; its residual is one (n,) law. Identical to ``verify`` with the same uniforms.
2. ``RESIDUAL_FAMILY_K`` = k (rrs_wor at k = 2): O(1) tests per trial and a residual family sampled in O(log n)
   (:class:`ResidualFamily`). Same decisions as ``verify``; residual tokens equal in law.
3. any other rule: evaluated once per distinct draft tuple, in blocks of
   :data:`GROUP_BLOCK_ENTRIES`; residual rows rebuilt only for tuples with a rejected trial.
   Identical to ``verify`` with the same uniforms.
"""

from __future__ import annotations

import math

import numpy as np

from ..methods.base import RESIDUAL_EPS, NodeRule, Verification, normalise_residual, ratio_accept, slots_from_sequential, sum_of_others, verify_from_rule

__all__ = ["verify_chunk", "ResidualFamily", "GROUP_BLOCK_ENTRIES"]

#: rows x vocabulary entries of per-group rule arrays evaluated at once (about 32 MB of float64)
GROUP_BLOCK_ENTRIES = 1 << 22


def verify_chunk(ver, p, q, drafts, u) -> Verification:
    """Verify a chunk of trials: drafts (N, k), uniforms u (N, k + 1), one shared (p, q).

    ``ver`` has ``name`` and either ``module`` (method-like: fast paths of the module docstring)
    or ``function`` (a user's ``f(p, q, drafts, u) -> Verification``, checked for range).

    Parameters
    ----------
    ver : Verifier
        The resolved verifier (:func:`resolve_verifier`).
    p, q : numpy.ndarray
        Target and draft laws, shape (n,).
    drafts : numpy.ndarray
        The int64 drafts, shape (N, k).
    u : numpy.ndarray
        Uniforms in [0, 1), shape (N, k + 1).

    Returns
    -------
    Verification
        The emitted ``token`` and accepted ``slot`` (-1: none) of each trial.

    Raises
    ------
    ValueError
        If a user's function returns the wrong number of outcomes, or a token or slot out of range.
    """
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
    if drafts.shape[-1] == getattr(m, "RESIDUAL_FAMILY_K", None):
        accept, sample_residual, group = _residual_family_path(p, q, drafts)
    else:
        accept, sample_residual, group = _rule_by_tuple(m, p, q, drafts)
    return _verify_grouped(accept, sample_residual, group, drafts, u)


def _residual_family_path(p, q, drafts):
    """RRS w/o replacement, k = 2 (theory.md 4.3): q_2 = q / s(x_1) off x_1, with s(x) the sum of
    the other entries, so both tests are O(1) per trial. The residual (r - q_2)_+ depends on x_1
    only, and is drawn by :class:`ResidualFamily` in O(log n) per rejected trial."""
    n = p.shape[-1]
    x1, x2 = drafts[:, 0], drafts[:, 1]
    s = sum_of_others(q)
    r = normalise_residual(p - q, p)  # p_2, the same for every tuple
    q2 = np.where(s[x1] > 0, q[x2] / np.where(s[x1] > 0, s[x1], 1.0), 1.0 / max(n - 1, 1))
    accept = slots_from_sequential(np.stack([ratio_accept(p[x1], q[x1]), ratio_accept(r[x2], q2)], axis=-1))

    family = ResidualFamily(r, q)
    return accept, lambda first, t: family.sample(first, s, t), x1


class ResidualFamily:
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
        """Residual tokens for first drafts ``first`` (N,), sums of the others ``s`` (n,), uniforms ``t`` (N,).

        Parameters
        ----------
        first : numpy.ndarray
        s : numpy.ndarray
        t : numpy.ndarray

        Returns
        -------
        numpy.ndarray
        """
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
