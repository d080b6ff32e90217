"""The optimal verifier for k i.i.d. drafts: output law = p, acceptance = the LP optimum, selection
law = q~, gap levels in [0, 1] (enumeration, LP, Monte Carlo), at small n and at n = 151,936."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lp
from spechub_theory.distributions import check_pq
from spechub_theory.draft_laws import IID
from spechub_theory.methods import optimal, single
from spechub_theory.methods.optimal_plan import optimal_plan
from spechub_theory.montecarlo import simulate
from spechub_theory.montecarlo.mutants import MUTANTS
from spechub_theory.montecarlo.stats import assert_lossless, matches_target
from spechub_theory.verification import output_law
from real_laws import real_pair
from strategies import pairs

ATOL = 1e-12
OPTIMAL_MUTANTS = ("optimal_no_priority", "optimal_uniform_pick", "optimal_wrong_level")


def selection_law(plan, q, k):
    """P(selected = x) by enumerating the k-tuples of q and the exact selection rule."""
    support = IID.enumerate(q, k)
    share = optimal.selection_probabilities(plan, support.tuples)
    law = np.zeros(len(q))
    np.add.at(law, support.tuples.ravel(), (support.mass[:, None] * share).ravel())
    return law


def realised_law(plan, q):
    """The selection law the gap levels realise, by an independent sweep: gaps merged in order
    of level; a block [lo, hi] alive on [birth, death) gives its tokens density c (death - birth),
    c the chord slope of s^k over its q-interval (accumulated by a difference array)."""
    k, order = plan.k, plan.order
    qs = q[order]
    S = np.concatenate([[0.0], np.cumsum(qs.astype(np.longdouble))])
    M = len(order)
    end_of, start_of = list(range(M)), list(range(M))  # block starting at i ends at end_of[i]; and back
    birth = [0.0] * M  # keyed by a block's first token
    diff = np.zeros(M + 1, dtype=np.longdouble)

    def close(lo, hi, death):
        a, b = S[lo], S[hi + 1]
        c = sum(b**i * a ** (k - 1 - i) for i in range(k))
        diff[lo] += c * (death - birth[lo])
        diff[hi + 1] -= c * (death - birth[lo])

    for g in np.argsort(plan.gap_levels, kind="stable"):
        w = float(plan.gap_levels[g])
        if w >= 1.0:
            break
        lo, hi = start_of[g], end_of[g + 1]
        close(lo, g, w)
        close(g + 1, hi, w)
        end_of[lo], start_of[hi], birth[lo] = hi, lo, w
    i = 0
    while i < M:
        close(i, end_of[i], 1.0)
        i = end_of[i] + 1
    out = np.zeros(len(q))
    out[order] = (np.cumsum(diff)[:M] * qs).astype(np.float64)
    return out


def _check_plan(p, q, k, plan):
    assert (plan.gap_levels >= 0).all() and (plan.gap_levels <= 1).all()
    assert plan.level_excess <= ATOL
    assert plan.q_tilde.sum() == pytest.approx(1.0, abs=ATOL)
    assert (plan.q_tilde[q == 0] == 0).all()


@given(pq=pairs(max_n=6), k=st.integers(1, 4))
def test_output_law_acceptance_and_selection_law_are_exact(pq, k):
    """Oracle 1 (enumeration) and oracle 2 (the LP and its fast optimum)."""
    p, q = check_pq(*pq)
    law = output_law(p, q, k, method="optimal")
    assert law.max_error(p) <= ATOL
    fast = float(lp.optimal_acceptance(p, q, k, law="iid"))
    assert law.acceptance == pytest.approx(fast, abs=ATOL)
    assert float(optimal.acceptance(p, q, k)) == pytest.approx(fast, abs=ATOL)
    plan = optimal.plan(p, q, k)
    assert plan.alpha == pytest.approx(fast, abs=ATOL)
    _check_plan(p, q, k, plan)
    np.testing.assert_allclose(selection_law(plan, q, k), plan.q_tilde, atol=ATOL)
    np.testing.assert_allclose(realised_law(plan, q), plan.q_tilde, atol=ATOL)
    np.testing.assert_allclose(np.minimum(p, plan.q_tilde).sum(), fast, atol=ATOL)


@settings(max_examples=25)
@given(pq=pairs(max_n=5), k=st.integers(1, 3))
def test_acceptance_equals_the_lp_optimum(pq, k):
    p, q = check_pq(*pq)
    if k == 3 and len(p) > 4:
        k = 2
    assert float(optimal.acceptance(p, q, k)) == pytest.approx(lp.solve(p, q, k, law="iid").value, abs=1e-8)


@given(pq=pairs(max_n=6))
def test_one_draft_is_plain_speculative_sampling(pq):
    p, q = check_pq(*pq)
    drafts = IID.enumerate(q, 1).tuples
    np.testing.assert_allclose(optimal.rule(p, q, drafts).accept, single.rule(p, q, drafts).accept, atol=ATOL)
    assert float(optimal.acceptance(p, q, 1)) == pytest.approx(float(single.acceptance(p, q)), abs=ATOL)


@pytest.mark.parametrize("p, q, k", [
    ([0.2, 0.5, 0.3, 0.0], [0.0, 1.0, 0.0, 0.0], 2),            # one-hot q, support < k
    ([1.0, 0.0, 0.0], [0.2, 0.3, 0.5], 3),                      # one-hot p
    ([0.5, 0.3, 0.2], [0.5, 0.3, 0.2], 2),                      # p = q
    ([0.25, 0.25, 0.25, 0.25], [0.4, 0.4, 0.1, 0.1], 3),         # ties in q and in p/q
    ([0.1, 0.0, 0.6, 0.3], [0.0, 0.5, 0.5, 0.0], 4),            # p = 0 on a drafted token, q = 0 on wanted ones
    ([0.0, 0.0, 1.0], [0.5, 0.5, 0.0], 2),                      # disjoint supports
])
def test_edge_cases(p, q, k):
    p, q = check_pq(p, q)
    law = output_law(p, q, k, method="optimal")
    assert law.max_error(p) <= ATOL
    assert law.acceptance == pytest.approx(float(lp.optimal_acceptance(p, q, k, law="iid")), abs=ATOL)
    plan = optimal.plan(p, q, k)
    _check_plan(p, q, k, plan)
    np.testing.assert_allclose(selection_law(plan, q, k), plan.q_tilde, atol=ATOL)


def test_equal_laws_accept_everything():
    p = np.array([0.5, 0.3, 0.2])
    assert float(optimal.acceptance(p, p, 3)) == pytest.approx(1.0, abs=ATOL)


@pytest.mark.parametrize("T", [0.3, 0.6, 1.0])
def test_real_vocabulary_laws_are_exact(T):
    """n = 151,936, k = 2: levels in [0, 1], the levels realise q~, the law is p, alpha = alpha*."""
    p, q = check_pq(*real_pair(T))
    plan = optimal_plan(p, q, 2)
    _check_plan(p, q, 2, plan)
    realised = realised_law(plan, q)
    assert np.abs(realised - plan.q_tilde).sum() <= ATOL
    output = realised * plan.accept_ratio
    output = output + (1.0 - output.sum()) * plan.residual
    assert np.abs(output - p).max() <= ATOL
    alpha = float(optimal.rate(p, q, 2))
    assert np.minimum(p, plan.q_tilde).sum() == pytest.approx(alpha, abs=ATOL)
    assert plan.alpha == pytest.approx(alpha, abs=ATOL)


@pytest.mark.slow
@pytest.mark.parametrize("k", [3, 4])
def test_real_vocabulary_laws_more_drafts(k):
    p, q = check_pq(*real_pair(0.6, seed=2))
    plan = optimal_plan(p, q, k)
    _check_plan(p, q, k, plan)
    assert np.abs(realised_law(plan, q) - plan.q_tilde).sum() <= ATOL


@pytest.mark.parametrize("seed, k", [(0, 2), (1, 3)])
def test_monte_carlo_agrees(seed, k):
    """Oracle 3: simulated acceptance in its interval around alpha*; output histogram = p."""
    rng = np.random.default_rng(seed)
    p, q = rng.dirichlet(np.ones(8)), rng.dirichlet(np.ones(8) * 0.5)
    r = simulate(p, q, k, method="optimal", n_trials=200_000, rng=seed)
    assert r.exact == pytest.approx(float(lp.optimal_acceptance(p, q, k)), abs=ATOL)
    assert r.confidence_interval(0.999).contains(r.exact)
    assert matches_target(r, p, alpha=1e-3).passed


def test_direct_path_agrees_in_law():
    """verify_plan (one level uniform, one pick/accept uniform) against the exact rates."""
    rng = np.random.default_rng(5)
    p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6) * 0.5)
    plan = optimal.plan(p, q, 3)

    def direct(p_, q_, drafts, u):
        return optimal.verify_plan(plan, drafts, u)

    r = simulate(p, q, 3, method=direct, law="iid", n_trials=200_000, rng=3)
    assert matches_target(r, p, alpha=1e-3).passed
    exact = optimal.positional(p, q, 3)
    for j, ci in enumerate(r.positional_intervals(0.999)):
        assert ci.contains(exact[j])


@pytest.mark.parametrize("name", OPTIMAL_MUTANTS)
def test_mutants_are_caught_exactly_and_statistically(name):
    mutant = MUTANTS[name]
    p, q = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.4, 0.3, 0.2, 0.1])
    tv = 0.5 * float(np.abs(output_law(p, q, 2, method=mutant).output - p).sum())
    assert tv > 0.02
    with pytest.raises(AssertionError, match="not lossless"):
        assert_lossless(mutant, p, q, 2, tv=tv, rng=7)
    assert assert_lossless("optimal", p, q, 2, tv=tv, rng=7).passed


def test_bad_input_raises_a_clear_error():
    p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    with pytest.raises(ValueError, match=r"shape \(n,\) for one plan"):
        optimal.plan(np.stack([p, p]), np.stack([q, q]), 2)
    with pytest.raises(ValueError, match=r"k \+ 1 = 3 uniforms"):
        optimal.verify_plan(optimal.plan(p, q, 2), np.array([[0, 1]]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="`k` must be"):
        optimal.acceptance(p, q, 0)


def test_batched_rule_equals_row_by_row():
    rng = np.random.default_rng(9)
    p, q = rng.dirichlet(np.ones(5), size=3), rng.dirichlet(np.ones(5), size=3)
    drafts = rng.integers(0, 5, size=(3, 2))
    batch = optimal.rule(p, q, drafts)
    for i in range(3):
        one = optimal.rule(p[i], q[i], drafts[i])
        np.testing.assert_allclose(batch.accept[i], one.accept, atol=ATOL)
        np.testing.assert_allclose(batch.residual[i], one.residual, atol=ATOL)
