"""optimal.rate_sorted (alpha*_iid on the shared sorted window of acceptance_rates) against the
full-sort cut optimal.rate: equal to 1e-12 on hypothesis cases, batches and real-size laws."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spechub_theory.acceptance import acceptance_rates
from spechub_theory.methods._sorted import SortedPair
from spechub_theory.methods import optimal
from real_laws import real_pair
from strategies import pairs

ATOL = 1e-12


@given(pairs(max_n=8), st.integers(1, 5), st.floats(0.0, 3.0))
def test_rate_sorted_equals_the_full_cut(pq, k, extra):
    p, q = pq
    upper = k + extra  # any window reaching k (acceptance_rates widens it for RRS w/o)
    assert abs(optimal.rate_sorted(SortedPair(p, q, upper), k)[0] - optimal.rate(p, q, k)) <= ATOL


@given(pairs(max_n=8), st.integers(1, 4))
def test_rate_sorted_window_below_k_is_widened(pq, k):
    p, q = pq
    assert abs(optimal.rate_sorted(SortedPair(p, q, 1.0), k)[0] - optimal.rate(p, q, k)) <= ATOL


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_acceptance_rates_optimal_on_llm_like_batches(k):
    rng = np.random.default_rng(k)
    z = 3.0 * rng.standard_normal((40, 2000))
    q = np.exp(z - z.max(axis=1, keepdims=True))
    zp = z + rng.uniform(0.05, 2.0, (40, 1)) * rng.standard_normal((40, 2000))  # from p ~ q to far apart
    p = np.exp(zp - zp.max(axis=1, keepdims=True))
    p, q = p / p.sum(axis=1, keepdims=True), q / q.sum(axis=1, keepdims=True)
    got = acceptance_rates(p, q, k, methods=["optimal", "kseq"])["optimal"]
    np.testing.assert_allclose(got, optimal.rate(p, q, k), rtol=0, atol=ATOL)


@pytest.mark.parametrize("T", [0.3, 0.6, 1.0])
def test_rate_sorted_at_real_size(T):
    p, q = real_pair(T)
    for k in (2, 3):
        assert abs(optimal.rate_sorted(SortedPair(p, q, k), k)[0] - optimal.rate(p, q, k)) <= ATOL
