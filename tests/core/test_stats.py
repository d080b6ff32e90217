"""Pooled chi-square lossless test, power analysis, assert_lossless and its negative controls."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from spechub_theory.methods import METHOD_NAMES, METHODS
from spechub_theory.montecarlo.mutants import MUTANTS
from spechub_theory.montecarlo.stats import (
    MIN_EXPECTED,
    assert_lossless,
    matches_target,
    pooled_bins,
    sample_size_for,
    samples_needed,
)
from spechub_theory.verification import output_law, verify

P3, Q3 = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.4, 0.3, 0.2, 0.1])  # worked example E3, k = 2


def _mutant_tv(mutant, k=2):
    return 0.5 * float(np.abs(output_law(P3, Q3, k, method=mutant).output - P3).sum())


@pytest.mark.parametrize("name", list(MUTANTS))
def test_every_negative_control_is_rejected_at_its_documented_sample_size(name):
    mutant = MUTANTS[name]
    tv = _mutant_tv(mutant)
    assert tv > 0.02  # E3 is a case where each mutant is wrong (exact law by enumeration)
    with pytest.raises(AssertionError, match=r"not lossless(.|\n)*token \d: observed"):
        assert_lossless(mutant, P3, Q3, 2, tv=tv, rng=7)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_real_methods_pass_assert_lossless(name):
    k = METHODS[name].FIXED_K or 2
    test = assert_lossless(name, P3, Q3, k, tv=0.03, rng=7)
    assert test.passed and test.n == sample_size_for(P3, 0.03)


def test_assert_lossless_on_a_user_callable():
    def my_verifier(p, q, drafts, u):
        return verify(p, q, drafts, u, method="spechub")

    assert assert_lossless(my_verifier, P3, Q3, k=2, tv=0.05, law="hub", rng=1).passed


def test_mutants_look_like_methods():
    m = MUTANTS["rrs_wor_no_renorm"]
    drafts = np.array([[0, 1], [2, 3]])
    u = np.full((2, 3), 0.5)
    np.testing.assert_array_equal(m(P3, Q3, drafts, u).token, verify(P3, Q3, drafts, u, method=m).token)
    assert "not renormalised" in repr(m)


def test_exact_counts_pass_and_report_is_readable():
    t = matches_target(np.array([100, 200, 300, 400]), P3)
    assert t.passed and t.statistic == 0.0 and t.decision == "lossless" and "df = 3" in t.report()
    assert t.to_dict()["passed"] is True


def test_sample_on_zero_probability_token_is_an_immediate_failure():
    p = np.array([0.5, 0.0, 0.5])
    t = matches_target(np.array([0, 2, 2, 1, 0]), p, kind="samples")
    assert not t.passed and t.pvalue == 0.0 and t.statistic == np.inf
    assert "zero-probability tokens [1]" in t.reason
    assert t.worst[0].token == 1 and t.worst[0].z == np.inf
    assert matches_target(np.array([0, 2, 2, 0]), p, kind="samples").passed  # zeros without samples: fine


def test_vocabulary_of_50000_with_zeros_pools_rare_tokens():
    rng = np.random.default_rng(0)
    n = 50_000
    p = 1.0 / np.arange(1, n + 1) ** 1.1  # Zipf-like, as for a language model
    p[rng.random(n) < 0.1] = 0.0
    p /= p.sum()
    samples = rng.choice(n, size=300_000, p=p)
    t = matches_target(samples, p, alpha=1e-3)
    assert t.passed and t.pooled_tokens > 40_000 and t.n_bins < n // 2 and t.df == t.n_bins - 1
    bad = samples.copy()
    bad[:1] = np.flatnonzero(p == 0)[0]
    assert not matches_target(bad, p).passed


@settings(max_examples=40)
@given(n=st.integers(2, 60), N=st.integers(1, 5000), seed=st.integers(0, 2**31), zeros=st.booleans())
def test_pooled_bins_have_enough_expected_counts(n, N, seed, zeros):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(n, 0.3))
    if zeros:
        p[rng.random(n) < 0.3] = 0.0
        p[np.argmax(p)] += 1e-9
        p /= p.sum()
    bins = pooled_bins(p, N)
    assert ((bins == -1) == (p == 0)).all()
    expected = np.bincount(bins[p > 0], weights=N * p[p > 0])
    assert set(np.unique(bins[p > 0])) == set(range(len(expected)))  # labels 0..B-1, none empty
    if N >= MIN_EXPECTED:
        assert expected.min() >= MIN_EXPECTED * (1 - 1e-9)


def test_one_bin_has_nothing_to_test():
    t = matches_target(np.array([0, 7, 0]), np.array([0.0, 1.0, 0.0]))
    assert t.passed and t.df == 0 and t.pvalue == 1.0


@pytest.mark.parametrize("n_tokens, tv", [(2, 0.1), (4, 0.03), (1000, 0.01), (50_000, 0.01)])
def test_samples_needed_reaches_the_power_against_the_worst_spread(n_tokens, tv):
    alpha, power = 1e-3, 0.99
    N = samples_needed(n_tokens, tv, alpha, power)
    df = n_tokens - 1
    crit = stats.chi2.isf(alpha, df)
    assert stats.ncx2.sf(crit, df, 4 * N * tv**2) >= power
    assert stats.ncx2.sf(crit, df, 4 * (N - 2) * tv**2) < power  # and it is the smallest such N
    assert samples_needed(n_tokens, tv / 2, alpha, power) > 3.9 * N


def test_sample_size_for_p_uses_fewer_bins_when_p_is_concentrated():
    p = np.r_[0.999, np.full(9999, 0.001 / 9999)]  # rare tokens: N p ~ 0.2, pooled by the 25
    assert sample_size_for(p, 0.01) < samples_needed(10_000, 0.01)


def test_power_is_real_for_the_worst_case_deviation():
    # |p' - p| proportional to p, + on half of the mass and - on the other: chi2 distance = 4 TV^2
    rng = np.random.default_rng(3)
    p, tv = np.array([0.4, 0.3, 0.2, 0.1]), 0.05
    p_alt = p + np.array([1.0, -1.0, -1.0, 1.0]) * p * 2 * tv
    assert 0.5 * np.abs(p_alt - p).sum() == pytest.approx(tv)
    N = samples_needed(4, tv, alpha=1e-3, power=0.99)
    rejected = sum(not matches_target(rng.multinomial(N, p_alt), p, alpha=1e-3).passed for _ in range(300))
    assert rejected >= 0.95 * 300  # 99% expected; 95% leaves 5 binomial SDs of slack


def test_bad_arguments():
    with pytest.raises(ValueError, match="`alpha` must be in"):
        matches_target([1, 2, 3, 4], P3, alpha=0)
    with pytest.raises(ValueError, match="counts must have length n = 4"):
        matches_target([1, 2, 3], P3, kind="counts")
    with pytest.raises(ValueError, match=r"token ids in \[0, 4\)"):
        matches_target([0, 1, 9], P3, kind="samples")
    with pytest.raises(ValueError, match="`kind` must be"):
        matches_target([0, 1], P3, kind="histogram")
    with pytest.raises(ValueError, match="holds no samples"):
        matches_target([0, 0, 0, 0], P3)
    with pytest.raises(ValueError, match="`tv` must be in"):
        samples_needed(4, 0.0)
    with pytest.raises(ValueError, match="`n_tokens` must be >= 2"):
        samples_needed(1, 0.1)


def test_observed_must_be_integer_samples_or_counts():
    with pytest.raises(ValueError, match="1-D array of integer samples or counts"):
        matches_target(np.array([0.5, 1.0, 2.0, 3.0]), P3)
    with pytest.raises(ValueError, match="1-D array of integer samples or counts"):
        matches_target(np.ones((2, 4), dtype=int), P3)
    assert matches_target(np.array([10.0, 20.0, 30.0, 40.0]), P3).passed  # float counts that are integers
