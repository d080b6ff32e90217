"""Three-way exactness on small vocabularies: every verifier's output law equals p (1e-12), and
every closed form (rate, positional split) equals the enumeration of its draft law and node rule."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from spechub_theory.methods import METHODS
from spechub_theory.verification import output_law
from strategies import pairs

ATOL = 1e-12


def _ks(method, n, k):
    m = METHODS[method]
    kk = m.FIXED_K or k
    return None if (m.LAW.distinct and kk > n) else kk


@pytest.mark.parametrize("method", list(METHODS))
@given(pq=pairs(max_n=6), k=st.integers(1, 3))
def test_output_law_is_target_and_closed_forms_agree(method, pq, k):
    """Oracle 1 (enumeration) against the target and against every closed form."""
    p, q = pq
    kk = _ks(method, len(p), k)
    assume(kk is not None)
    law = output_law(p, q, kk, method=method)
    assert law.max_error(p) <= ATOL
    assert 0.0 <= law.acceptance <= 1.0 + ATOL
    m = METHODS[method]
    assert float(m.acceptance(p, q, kk)) == pytest.approx(law.acceptance, abs=ATOL)
    positional = m.positional(p, q, kk)
    assert np.abs(positional - law.positional).max() <= ATOL
    assert positional.sum() == pytest.approx(law.acceptance, abs=ATOL)


@given(pq=pairs(max_n=6, min_n=2), k=st.integers(1, 3))
def test_orderings_that_are_theorems(pq, k):
    """theory.md 3.6 and 4.4: 1 - TV <= every method; SpecHub >= RRS when q(a)/(1-q(a)) >= TV."""
    p, q = pq
    base = float(METHODS["single"].acceptance(p, q))
    for name, m in METHODS.items():
        kk = _ks(name, len(p), k)
        if kk is not None:
            assert float(m.acceptance(p, q, kk)) >= base - ATOL, name
    tv = float(np.maximum(q - p, 0).sum())
    qa = q.max()
    rest = q.sum() - qa
    if rest > 0 and qa / rest >= tv:
        assert float(METHODS["spechub"].acceptance(p, q, 2)) >= float(METHODS["rrs"].acceptance(p, q, 2)) - ATOL
    if qa >= tv:  # P3
        assert float(METHODS["spechub"].acceptance(p, q, 2)) >= float(METHODS["rrs_wor"].acceptance(p, q, 2)) - ATOL


def test_batched_rates_equal_row_by_row():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.full(9, 0.5), size=7)
    q = rng.dirichlet(np.full(9, 0.5), size=7)
    for name, m in METHODS.items():
        k = m.FIXED_K or 2
        batch = m.acceptance(p, q, k)
        rows = [float(m.acceptance(p[i], q[i], k)) for i in range(7)]
        assert batch.shape == (7,)
        assert np.abs(batch - rows).max() <= ATOL, name


def test_spechub_onehot_q_has_no_nan():
    p = np.array([0.2, 0.5, 0.3, 0.0])
    q = np.array([0.0, 1.0, 0.0, 0.0])
    law = output_law(p, q, 2, method="spechub")
    assert law.max_error(p) <= ATOL
    # second draft is uniform on V minus {a} (documented fallback): min(1, p(a) + sum min(p, 1/3))
    expected = min(1.0, 0.5 + min(0.2, 1 / 3) + min(0.3, 1 / 3) + 0.0)
    assert float(METHODS["spechub"].acceptance(p, q, 2)) == pytest.approx(expected, abs=ATOL)


def test_residual_zero_mass_returns_target():
    """p = q: every draft is accepted; the unused residual is p itself, never 0/0."""
    p = np.array([0.5, 0.3, 0.2])
    for name, m in METHODS.items():
        k = m.FIXED_K or 2
        rule = m.rule(p, p, np.array([[0, 1]])[:, :k])
        assert np.isfinite(rule.residual).all() and rule.residual.sum() == pytest.approx(1.0)
        assert float(m.acceptance(p, p, k)) == pytest.approx(1.0, abs=ATOL)


def test_rrs_wor_tiny_remaining_mass_no_cancellation():
    """q(a) = 1 - 1e-13: 1 - q(a) computed as the sum of the others keeps RRS w/o exact."""
    q = np.array([1 - 2e-13, 1e-13, 1e-13])
    p = np.array([0.2, 0.5, 0.3])
    law = output_law(p, q, 2, method="rrs_wor")
    assert float(METHODS["rrs_wor"].acceptance(p, q, 2)) == pytest.approx(law.acceptance, abs=1e-9)
    assert law.max_error(p) <= 1e-9
