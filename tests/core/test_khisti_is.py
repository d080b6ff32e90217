"""Khisti et al.'s importance-sampling verifier (arXiv 2410.18234): the selection law against its
k = 2 formula and against Monte Carlo of the selection alone, the optimum as an upper bound, and
the refusal beyond the exact computation's reach. (Losslessness by enumeration, the closed form
against the enumeration and the positional split are in test_exact_laws.py, which loops over
every registered method.)"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spechub_theory import acceptance_rates
from spechub_theory.methods import khisti_is
from spechub_theory.verification import output_law
from strategies import pairs

ATOL = 1e-12


@given(pq=pairs(max_n=7))
def test_selection_law_k2_matches_the_pairwise_formula(pq):
    """s(y) = 2 q(y) sum_z q(z) w(y)/(w(y) + w(z)), w = p/q, the ratio 1/2 at 0/0."""
    p, q = pq
    w = np.where(q > 0, p / np.where(q > 0, q, 1), 0.0)
    den = w[:, None] + w[None, :]
    ratio = np.where(den > 0, w[:, None] / np.where(den > 0, den, 1), 0.5)
    expected = 2 * q * (ratio @ q)
    s = khisti_is.selection_law(p, q, 2)
    assert np.abs(s - expected).max() <= ATOL
    assert s.sum() == pytest.approx(1.0, abs=ATOL)


@given(pq=pairs(max_n=5, min_n=2), k=st.integers(2, 3))
def test_at_most_the_iid_optimum_and_equal_to_one_minus_tv_of_s(pq, k):
    lp = pytest.importorskip("lp")
    p, q = pq
    alpha = float(khisti_is.acceptance(p, q, k))
    s = khisti_is.selection_law(p, q, k)
    assert alpha == pytest.approx(1.0 - 0.5 * np.abs(p - s).sum(), abs=ATOL)
    assert alpha <= float(lp.optimal_acceptance(p, q, k, law="iid")) + 1e-9


def test_selection_law_matches_sampled_selection():
    """The exchangeability formula for s against the selection step run on sampled drafts."""
    rng = np.random.default_rng(3)
    p, q = rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(5))
    drafts = rng.choice(5, size=(200_000, 3), p=q)
    beta = khisti_is.selection_weights(p, q, drafts)
    counts = np.zeros(5)
    np.add.at(counts, drafts.ravel(), beta.ravel())
    s = khisti_is.selection_law(p, q, 3)
    se = np.sqrt(s * (1 - s) / len(drafts))
    assert np.all(np.abs(counts / len(drafts) - s) <= 5 * se + 1e-12)


def test_worked_example_e1():
    """theory.md 6.1 E1 (p = (.4, .4, .2), q = (.7, .2, .1)): s = (0.5833.., 0.2833.., 0.1333..)
    for k = 2, so the acceptance is .4 + .2833.. + .1333.. = 0.816667 (between RRS .79 and the
    i.i.d. optimum .91)."""
    p, q = [.4, .4, .2], [.7, .2, .1]
    assert float(khisti_is.acceptance(p, q, 2)) == pytest.approx(0.816667, abs=1e-6)
    assert output_law(p, q, 2, method="khisti_is").max_error(p) <= ATOL


def test_one_hot_and_zero_weight_drafts_have_no_nan():
    p, q = np.array([0.0, 1.0, 0.0]), np.array([0.5, 0.0, 0.5])  # every draft has p = 0
    law = output_law(p, q, 2, method="khisti_is")
    assert law.acceptance == 0.0 and law.max_error(p) <= ATOL
    p, q = np.array([1.0, 0.0]), np.array([1.0, 0.0])
    assert output_law(p, q, 3, method="khisti_is").acceptance == pytest.approx(1.0, abs=ATOL)


def test_rate_refuses_beyond_its_cost_and_acceptance_rates_omits_it():
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(2000)), rng.dirichlet(np.ones(2000))
    with pytest.raises(ValueError, match=r"khisti_is.*2000\^3.*limit.*reachable for n <= \d+"):
        khisti_is.acceptance(p, q, 3)
    rates = acceptance_rates(p, q, 3)
    assert "khisti_is" not in rates.acceptance and "omitted" in rates.notes["khisti_is"]
