r"""The k = 3 without-replacement optimum over p/q-sorted prefixes, exact P_3(A), O(n^2) per row.

Convention: p = target, q = draft, last axis = vocabulary. Source: theory.md 2.3 (P_k(A), the
sorted-prefix evidence). The prefix property is unproved (docs/lp.md: 8,131 random k = 3 cases
and 500 adversarial searches, no counterexample).

.. math::

    P_3(A) = \sum_{a \ne b \in A} h(a, b)\, q(A \setminus \{a, b\}), \qquad
    h(a, b) = \frac{q_a\, q_b}{(1 - q_a)(1 - q_a - q_b)}

(ordered pairs: first draft a, second b, third anywhere else in A). Adding a token x to a prefix
adds the pairs (x, y), (y, x), y in A: O(|A|) per step, O(n^2) per row. Precision: the two largest
tokens t1, t2 of q are kept apart, so every ``1 - q_a - q_b`` and every ``q(A minus {a, b})`` is a sum
of non-negative terms that never contains a token it subtracts (near-one-hot q stays exact).
"""

from __future__ import annotations

import numpy as np

__all__ = ["WOR3_MAX_N", "wor3_prefix_min"]

#: largest n for the O(n^2) loop (about 1 s per row at n = 4,096 on one core)
WOR3_MAX_N = 8192


def wor3_prefix_min(p: np.ndarray, q: np.ndarray) -> float:
    r"""Minimum over the n + 1 p/q-sorted prefixes A of :math:`p(A) + 1 - P_3(A)`, for one row.

    Parameters
    ----------
    p, q : ndarray, shape (n,)
        Validated; q must have at least 3 positive entries (otherwise the law draws uniform
        fallbacks and the caller uses the brute-force cut).

    Returns
    -------
    float in [0, 1].

    Notes
    -----
    O(n^2) time, O(n) memory (a Python loop over n with vector steps of length <= n).
    """
    n = len(q)
    big = np.zeros(n, dtype=bool)
    big[np.argsort(-q, kind="stable")[:2]] = True  # t1, t2
    small_q = np.where(big, 0.0, q)
    small_total = small_q.sum()  # q(V minus {t1, t2})
    ratio = np.divide(p, q, out=np.full(p.shape, np.inf), where=q > 0)
    ratio[(q <= 0) & (p <= 0)] = 0.0
    order = np.argsort(ratio)
    ps, qs, bs, ss = p[order], q[order], big[order], small_q[order]
    big_q = q[big].sum()
    t1, t2 = np.flatnonzero(bs)
    other_big = np.zeros(n)  # for t1 and t2: the other one's mass (never big_q - q_t: it cancels)
    other_big[t1], other_big[t2] = qs[t2], qs[t1]
    outside = np.concatenate([np.cumsum(qs[::-1])[::-1][1:], [0.0]])  # q after position x
    # 1 - q_a for every token, from sums of non-negative terms: the big ones plus the small rest
    not_a = np.where(bs, other_big + small_total, big_q + (small_total - ss))
    state = {"G_ss": 0.0, "H_ss": 0.0, "G": np.zeros(n), "H": np.zeros(n), "W12": 0.0}
    small_A = big_A = p_A = 0.0
    big_in: list[int] = []
    best = 1.0  # the empty prefix
    for x in range(n):
        if qs[x] > 0 and x:
            _add_pairs(x, qs, bs, ss, not_a, other_big, small_total, state, big_in)
        p_A += ps[x]
        if bs[x]:
            big_A += qs[x]
            big_in.append(x)
        else:
            small_A += qs[x]
        P3 = (small_A + big_A) * state["G_ss"] - state["H_ss"]
        for t in big_in:
            rest_big = other_big[t] if len(big_in) == 2 else 0.0
            P3 += (small_A + rest_big) * state["G"][t] - state["H"][t]  # q(A minus {t, b}) + q_b
        if len(big_in) == 2:
            P3 += state["W12"] * small_A
        best = min(best, p_A + outside[x] + (small_A + big_A - P3))
    return float(min(max(best, 0.0), 1.0))


def _add_pairs(x, qs, bs, ss, not_a, other_big, small_total, state, big_in):
    """Accumulate h(x, y) + h(y, x) for every y before x, by kind of pair."""
    y = np.arange(x)
    qx, qy = qs[x], qs[y]
    big_q = other_big.sum()  # q_t1 + q_t2
    if bs[x]:
        rest = np.where(bs[y], small_total, other_big[x] + (small_total - ss[y]))
    else:
        rest = np.where(bs[y], other_big[y] + (small_total - ss[x]), big_q + (small_total - ss[x] - ss[y]))
    rest = np.maximum(rest, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (rest > 0) & (qy > 0)
        w = np.where(ok, qx * qy * (1.0 / (not_a[x] * rest) + 1.0 / (not_a[y] * rest)), 0.0)
    if bs[x]:
        small = ~bs[y]
        state["G"][x] += w[small].sum()
        state["H"][x] += (w[small] * qy[small]).sum()
        state["W12"] += w[bs[y]].sum()
    else:
        small = ~bs[y]
        state["G_ss"] += w[small].sum()
        state["H_ss"] += (w[small] * (qx + qy[small])).sum()
        for t in big_in:
            state["G"][t] += w[t]
            state["H"][t] += w[t] * qx
