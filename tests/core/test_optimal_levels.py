"""The gap levels of the optimal verifier's agglomerative pass have a closed characterisation (a
second, independent check of the pass and the reference for a faster algorithm): boundary i leaves
the lower convex hull of the points (e_j, F_j - w e_j^k) at w = min over j < i < l of
D_F(j, i, l) / D_g(j, i, l), D the height of the chord (j, l) above the point i for F (cumulative
q~-mass) and for g = s^k."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from spechub_theory.methods.optimal_plan import _kinetic_levels


def hull_levels(Q, A, e, k):
    """min over j < i < l of D_F / D_g per interior boundary i, O(U^3)."""
    F = np.concatenate([[0.0], np.cumsum(A)])
    g = e**k
    out = []
    for i in range(1, len(Q)):
        j = np.arange(i)[:, None]
        l = np.arange(i + 1, len(Q) + 1)[None, :]
        x = (e[i] - e[j]) / (e[l] - e[j])
        DF = F[j] + x * (F[l] - F[j]) - F[i]
        Dg = g[j] + x * (g[l] - g[j]) - g[i]
        out.append((DF / Dg).min())
    return np.array(out)


@given(st.integers(2, 8), st.integers(2, 4), st.integers(0, 2**32 - 1))
def test_heap_levels_are_the_hull_exit_levels(U, k, seed):
    rng = np.random.default_rng(seed)
    Q = rng.dirichlet(np.ones(U)) * rng.uniform(0.2, 1.0)
    e = rng.uniform(0.0, 1.0 - Q.sum()) + np.concatenate([[0.0], np.cumsum(Q)])
    rho = np.sort(rng.uniform(0.0, 3.0, U))  # densities nondecreasing, as t = q~/q in a region
    rho += np.arange(U) * 1e-6  # distinct (equal densities are one unit in the plan)
    A = rho * Q
    levels = np.array(_kinetic_levels(Q.tolist(), A.tolist(), e.tolist(), k))
    np.testing.assert_allclose(levels, hull_levels(Q, A, e, k), rtol=1e-8, atol=1e-10)
