r"""Brute-force reference oracles, written from the definitions and independent of the library.

Convention: p = target, q = draft, tokens 0..n-1; a draft tuple is an ordered k-tuple.
Source: theory.md 1 (draft laws), 2.1 (the OT LP), 2.2/2.3 (min-cut), 3.2/3.7 (hub law).

Imports numpy, scipy and itertools only (never ``spechub_theory`` or ``lp``): every quantity is
recomputed by plain enumeration, one tuple or one subset at a time, so a fast path and its check
share no code. Small n, k only (n^k tuples, 2^n subsets, n^{k+1} LP variables).

Degenerate-case conventions (theory.md 1 and the draft-law docstring, restated here on purpose):
"q conditioned on the tokens still allowed" is q restricted to them and divided by its restricted
sum; if that sum is 0 the draw is uniform on the allowed tokens. The hub set is the k-1 largest
entries of q, ties to the lowest index.
"""

from __future__ import annotations

from itertools import combinations, permutations, product

import numpy as np
from scipy.optimize import linprog

__all__ = ["LAWS", "draft_law", "exact_law", "lp_optimum", "min_cut"]

LAWS = ("iid", "wor", "hub")


def _conditional(q, excluded):
    """q(. | V minus excluded) as a list: restricted and renormalised, uniform if no mass is left."""
    allowed = [x for x in range(len(q)) if x not in set(excluded)]
    total = sum(float(q[x]) for x in allowed)
    out = [0.0] * len(q)
    for x in allowed:
        out[x] = float(q[x]) / total if total > 0 else 1.0 / len(allowed)
    return out


def _hub_set(q, size):
    """The ``size`` largest entries of q, descending, ties to the lowest index."""
    return sorted(range(len(q)), key=lambda x: (-float(q[x]), x))[:size]


def draft_law(q, k: int, law: str) -> dict:
    r"""Exact draft law as ``{tuple: mass}`` over the tuples of positive mass.

    * ``iid``: :math:`Q(\bar x) = \prod_j q(x_j)`.
    * ``wor``: successive sampling, :math:`Q(\bar x) = \prod_j q(x_j \mid V \setminus \{x_l\}_{l<j})`.
    * ``hub``: hub set H = top-(k-1) of q; :math:`x_1 \sim q`; if :math:`x_1 \notin H` the other slots
      are H in descending order, else H minus :math:`x_1` in order and a last slot
      :math:`i \sim q(\cdot \mid V \setminus H)` (k = 2: Q(i, a) = q(i), Q(a, i) = q(a) q(i)/(1 - q(a))).
    """
    n = len(q)
    out: dict = {}
    if law == "iid":
        for t in product(range(n), repeat=k):
            out[t] = float(np.prod([float(q[x]) for x in t]))
    elif law == "wor":
        for t in permutations(range(n), k):
            mass = 1.0
            for j, x in enumerate(t):
                mass *= _conditional(q, t[:j])[x]
            out[t] = mass
    elif law == "hub":
        hub = _hub_set(q, k - 1)
        last = _conditional(q, hub)
        for x1 in range(n):
            if x1 not in hub:
                out[(x1, *hub)] = float(q[x1])
                continue
            others = [h for h in hub if h != x1]
            for i in range(n):
                if i not in hub:
                    out[(x1, *others, i)] = float(q[x1]) * last[i]
    else:
        raise ValueError(f"`law` {law!r} is not one of {LAWS}.")
    return {t: m for t, m in out.items() if m > 0}


def exact_law(rule, p, q, k: int, law: str):
    r"""Exact output law, acceptance and positional split of a node rule under a draft law.

    ``rule(p, q, drafts)`` takes drafts of shape (m, k) and returns ``(accept, residual)``
    broadcastable to (m, k) and (m, n): P(slot j accepted | drafts) and the residual law.
    Output :math:`P(y) = \sum_{\bar x} Q(\bar x) [\sum_{j: x_j = y} a_j(\bar x) + (1 - \sum_j a_j(\bar x)) r_{\bar x}(y)]`.

    Returns
    -------
    (output, acceptance, positional) : ndarray (n,), float, ndarray (k,)
    """
    n = len(p)
    Q = draft_law(q, k, law)
    tuples = list(Q)
    accept, residual = rule(p, q, np.array(tuples, dtype=np.int64).reshape(-1, k))
    accept = np.broadcast_to(np.asarray(accept, dtype=np.float64), (len(tuples), k))
    residual = np.broadcast_to(np.asarray(residual, dtype=np.float64), (len(tuples), n))
    output = np.zeros(n)
    positional = np.zeros(k)
    for row, t in enumerate(tuples):
        mass = Q[t]
        for j, x in enumerate(t):
            output[x] += mass * accept[row, j]
            positional[j] += mass * accept[row, j]
        rejected = max(0.0, 1.0 - float(accept[row].sum()))
        output += mass * rejected * residual[row]
    return output, float(positional.sum()), positional


def lp_optimum(p, q, k: int, law: str) -> float:
    r"""The OT optimum :math:`\alpha^*(Q, p)` from the full LP of theory.md 2.1.

    Variables :math:`\pi(\bar x, y) \ge 0` for every tuple of positive mass and every token;
    rows :math:`\sum_y \pi(\bar x, y) = Q(\bar x)`, columns :math:`\sum_{\bar x} \pi(\bar x, y) = p(y)`;
    maximise :math:`\sum \pi(\bar x, y)\, 1\{y \in S(\bar x)\}`. HiGHS (tolerance ~1e-9).
    """
    n = len(p)
    Q = draft_law(q, k, law)
    tuples = list(Q)
    m = len(tuples)
    c = np.zeros(m * n)
    A = np.zeros((m + n, m * n))
    for row, t in enumerate(tuples):
        for y in range(n):
            v = row * n + y
            c[v] = -1.0 if y in t else 0.0
            A[row, v] = 1.0
            A[m + y, v] = 1.0
    b = np.concatenate([[Q[t] for t in tuples], np.asarray(p, dtype=np.float64)])
    # one of the m + n rows is redundant (both marginals sum to 1): drop the last column row so
    # that round-off in the two totals cannot make the system infeasible
    A, b = A[:-1], b[:-1]
    for options in ({}, {"presolve": False}):
        res = linprog(c, A_eq=A, b_eq=b, bounds=(0, None), method="highs", options=options)
        if res.status == 0:
            return float(-res.fun)
    raise RuntimeError(f"reference LP failed: {res.message}")


def min_cut(p, q, k: int, law: str):
    r"""The min-cut dual of theory.md 2.3 by enumerating every token set A:
    :math:`\alpha^* = \min_A [p(A) + Q(S(\bar x) \not\subseteq A)]`.

    Returns (value, A) with A the first minimiser in (size, lexicographic) order.
    """
    n = len(p)
    Q = draft_law(q, k, law)
    best = (np.inf, ())
    for size in range(n + 1):
        for A in combinations(range(n), size):
            inside = set(A)
            uncovered = sum(m for t, m in Q.items() if not set(t) <= inside)
            value = sum(float(p[x]) for x in A) + uncovered
            if value < best[0]:
                best = (value, A)
    return best
