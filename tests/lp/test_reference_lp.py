"""``lp``'s optimum (the reduced LP), its fast optimum and its min-cut against ``tests/reference.py``.

The reference solves the full OT LP of theory.md 2.1 over every k-tuple and enumerates every token
set for the min-cut of 2.3, sharing no code with ``lp``. LP values agree to 1e-8 (HiGHS tolerance),
exact enumerations to 1e-12.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import lp
import reference
from spechub_theory.draft_laws import get_law
from spechub_theory.methods import METHODS
from strategies import pairs

LP_ATOL = 1e-8
ATOL = 1e-12


@pytest.mark.parametrize("law", ("iid", "wor"))
@given(pq=pairs(max_n=5), k=st.integers(1, 3))
def test_lp_optimum_and_fast_optimum_equal_the_reference_lp_and_cut(law, pq, k):
    p, q = pq
    assume(law == "iid" or k <= len(p))
    alpha = reference.lp_optimum(p, q, k, law)
    cut, _ = reference.min_cut(p, q, k, law)
    assert alpha == pytest.approx(cut, abs=LP_ATOL)  # strong duality between the two oracles
    assert lp.solve(p, q, k, law=law).value == pytest.approx(alpha, abs=LP_ATOL)
    assert float(lp.optimal_acceptance(p, q, k, law=law)) == pytest.approx(cut, abs=LP_ATOL)
    if law == "wor" and k == 3 and (q > 0).sum() >= 3:  # the exact-P_3 prefix path (lp.wor3)
        assert float(lp.optimal_acceptance(p, q, 3, law="wor", method="prefix")) == pytest.approx(cut, abs=LP_ATOL)
    assert float(lp.optimal_acceptance(p, q, k, law=law, method="cut")) == pytest.approx(cut, abs=ATOL)
    assert lp.min_cut(get_law(law).enumerate(q, k), p).value == pytest.approx(cut, abs=ATOL)
    if law == "iid":
        assert float(METHODS["optimal"].acceptance(p, q, k)) == pytest.approx(alpha, abs=LP_ATOL)


@given(pq=pairs(max_n=5), k=st.integers(1, 3))
def test_hub_optimum_equals_the_reference_cut(pq, k):
    """The hub law's fast optimum (closed form, theory.md 3.4/3.7) and lp.solve vs the brute force."""
    p, q = pq
    assume(k <= len(p))
    cut, _ = reference.min_cut(p, q, k, "hub")
    assert float(lp.optimal_acceptance(p, q, k, law="hub")) == pytest.approx(cut, abs=ATOL)
    assert lp.solve(p, q, k, law="hub").value == pytest.approx(cut, abs=LP_ATOL)
    assert reference.lp_optimum(p, q, k, "hub") == pytest.approx(cut, abs=LP_ATOL)


def test_reference_on_worked_example_e2_and_the_hub_counterexample():
    """theory.md 6.1 E2 (OPT iid .79, OPT w/o 25/28, OPT hub .85) and 2.3 (hub optimum .967059)."""
    p, q = np.array([.3, .3, .4]), np.array([.6, .3, .1])
    assert reference.lp_optimum(p, q, 2, "iid") == pytest.approx(.79, abs=LP_ATOL)
    assert reference.min_cut(p, q, 2, "wor")[0] == pytest.approx(25 / 28, abs=ATOL)
    assert reference.min_cut(p, q, 2, "hub")[0] == pytest.approx(.85, abs=ATOL)
    p, q = np.array([.6, .18, .22, 0.0]), np.array([.32, .1, .3, .28])
    assert reference.min_cut(p, q, 2, "hub")[0] == pytest.approx(.967059, abs=1e-6)
