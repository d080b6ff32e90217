"""Hypothesis strategies for (p, q) pairs that hit the edge cases: zeros, one-hots, ties, p = q."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st


@st.composite
def distributions(draw, n: int, *, allow_zeros: bool = True):
    """A probability vector of length n; sometimes one-hot, with zeros, with ties, or uniform."""
    kind = draw(st.sampled_from(["dirichlet", "zeros", "onehot", "ties", "uniform", "peaked"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if kind == "onehot":
        x = np.zeros(n)
        x[draw(st.integers(0, n - 1))] = 1.0
        return x
    if kind == "uniform":
        return np.full(n, 1.0 / n)
    if kind == "ties":
        vals = rng.integers(1, 3, size=n).astype(float)
        return vals / vals.sum()
    x = rng.dirichlet(np.full(n, 0.3 if kind == "peaked" else 1.0))
    if kind == "zeros" and allow_zeros and n > 1:
        zero = rng.random(n) < 0.4
        zero[rng.integers(n)] = False
        x = np.where(zero, 0.0, x)
    return x / x.sum()


@st.composite
def pairs(draw, max_n: int = 6, min_n: int = 1):
    """(p, q) of a common length n in [min_n, max_n]; sometimes p = q or p, q share zeros."""
    n = draw(st.integers(min_n, max_n))
    q = draw(distributions(n))
    relation = draw(st.sampled_from(["independent", "independent", "equal", "perturbed"]))
    if relation == "equal":
        return q.copy(), q
    if relation == "perturbed":
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        p = q * np.exp(rng.normal(0, 0.7, size=n))
        if p.sum() == 0:
            p = np.full(n, 1.0 / n)
        return p / p.sum(), q
    return draw(distributions(n)), q
