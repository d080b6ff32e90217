"""The optimal plan's numerical helpers: accurate running sums, the negligible-token mask, and the
per-thread work arrays (never shared with a returned plan)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import spechub_theory.methods.optimal_plan as optimal_plan_module
from spechub_theory.distributions import check_pq
from spechub_theory.methods.optimal_plan import optimal_plan
from real_laws import real_pair


def sorted_negligible(qs, budget):
    """The reference mask: sort the candidates, take the smallest while their running mass <= budget
    (ties at the threshold in index order)."""
    small = qs <= budget
    values = np.sort(qs[small])
    count = int(np.searchsorted(np.cumsum(values), budget, side="right"))
    if count == 0:
        return np.zeros(len(qs), dtype=bool)
    tau = values[count - 1]
    out = qs < tau
    at = np.flatnonzero(qs == tau)
    out[at[: count - int(np.searchsorted(values, tau, side="left"))]] = True
    return out


@pytest.mark.parametrize("T", [0.6, 1.0])
def test_running_sums_are_accurate_at_real_size(T):
    p, q = real_pair(T)
    qs = q[np.argsort(p / q)]
    got = optimal_plan_module._running_sums(qs)
    exact = np.concatenate([[0.0], np.cumsum(qs, dtype=np.longdouble)])
    assert got.shape == (len(qs) + 1,) and got[0] == 0.0
    assert float(np.max(np.abs(got - exact))) <= 5e-16
    assert got[-1] == pytest.approx(math.fsum(qs), abs=4e-16)


@given(n=st.integers(1, 300), seed=st.integers(0, 2**32 - 1))
def test_running_sums_equal_the_extended_sums(n, seed):
    x = np.random.default_rng(seed).exponential(size=n) ** 3
    work = np.full(optimal_plan_module._sums_size(n) + 5, np.nan)
    for out in (None, work):
        got = optimal_plan_module._running_sums(x, out)
        exact = np.concatenate([[0.0], np.cumsum(x, dtype=np.longdouble)]).astype(np.float64)
        np.testing.assert_allclose(got, exact, rtol=1e-14, atol=0.0)


@given(n=st.integers(1, 60), budget_log=st.floats(-40.0, -20.0), ties=st.floats(0.0, 0.6),
       seed=st.integers(0, 2**32 - 1))
def test_negligible_mask_equals_the_sorted_reference(n, budget_log, ties, seed):
    rng = np.random.default_rng(seed)
    qs = np.exp(rng.uniform(-40.0, -20.0, n)) * rng.integers(1, 4, n)
    qs[rng.random(n) < ties] = qs[0]
    budget = float(np.exp(budget_log))
    got = optimal_plan_module._negligible(qs, budget)
    np.testing.assert_array_equal(got, sorted_negligible(qs, budget))
    assert qs[got].sum() <= budget * (1 + 1e-12)


@pytest.mark.parametrize("T", [0.3, 0.6, 1.0])
def test_negligible_mask_at_real_size(T):
    p, q = real_pair(T)
    qs = q[np.argsort(p / q)]
    for k in (2, 3):
        budget = optimal_plan_module.negligible_budget(k)
        got = optimal_plan_module._negligible(qs, budget)
        np.testing.assert_array_equal(got, sorted_negligible(qs, budget))


def exact_selection_law(p, q, plan):
    """q~ = max(p, mu q) on B, min(p, lam q) on C, without any merge (0 off supp q)."""
    B = np.zeros(len(p), dtype=bool)
    B[plan.order[: plan.m]] = True
    return np.where(q > 0, np.where(B, np.maximum(p, plan.mu * q), np.minimum(p, plan.lam * q)), 0.0)


def check_negligible_bound(p, q, k, plan):
    """The law used is within 2 k merged_mass <= NEGLIGIBLE_LAW_ERROR of the exact q~ in total, the
    acceptance within k merged_mass of the exact law's (round-off aside)."""
    exact = exact_selection_law(p, q, plan)
    budget = optimal_plan_module.negligible_budget(k)
    assert plan.merged_mass <= budget * (1 + 1e-12)
    assert 2 * k * budget == pytest.approx(optimal_plan_module.NEGLIGIBLE_LAW_ERROR)
    assert np.abs(plan.q_tilde - exact).sum() <= 2 * k * plan.merged_mass + 1e-15
    used, ideal = np.minimum(p, plan.q_tilde).sum(), np.minimum(p, exact).sum()
    assert abs(used - ideal) <= k * plan.merged_mass + 1e-15


@pytest.mark.parametrize("T", [0.3, 0.6, 1.0])
@pytest.mark.parametrize("k", [2, 3])
def test_negligible_merge_bound_at_real_size(T, k):
    p, q = check_pq(*real_pair(T))
    plan = optimal_plan(p, q, k)
    assert plan.merged_mass > 0.5 * optimal_plan_module.negligible_budget(k)  # the budget is used
    check_negligible_bound(p, q, k, plan)


@given(n=st.integers(3, 40), k=st.integers(2, 4), tiny=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_negligible_merge_bound_on_tiny_tokens_of_any_ratio(n, k, tiny, seed):
    """Tokens of q far below the budget with p/q anywhere (the worst case for the unit averages)."""
    rng = np.random.default_rng(seed)
    q = rng.exponential(size=n)
    p = rng.exponential(size=n)
    small = rng.choice(n, size=min(tiny, n - 2), replace=False)
    q[small] = np.exp(rng.uniform(-36.0, -31.0, len(small)))
    p[small] = q[small] * np.exp(rng.uniform(-3.0, 3.0, len(small)))
    p, q = check_pq(p / p.sum(), q / q.sum())
    plan = optimal_plan(p, q, k)
    check_negligible_bound(p, q, k, plan)


def test_plans_do_not_share_work_arrays():
    """A second plan (same thread, same size) leaves the first plan's arrays as they were."""
    p1, q1 = check_pq(*real_pair(0.6, n=5_000))
    p2, q2 = check_pq(*real_pair(1.0, seed=3, n=5_000))
    first = optimal_plan(p1, q1, 2)
    saved = {name: getattr(first, name).copy() for name in ("order", "rank", "q_tilde", "accept_ratio", "residual", "gap_levels")}
    optimal_plan(p2, q2, 3)
    for name, value in saved.items():
        np.testing.assert_array_equal(getattr(first, name), value)
    again = optimal_plan(p1, q1, 2)
    for name, value in saved.items():
        np.testing.assert_array_equal(getattr(again, name), value)


def _both_sorts(ratio):
    """(packed path or None, radix path) of the ratio sort, -0.0 made 0.0 as the plan does."""
    ratio = ratio + 0.0
    return optimal_plan_module._argsort_packed(ratio), optimal_plan_module._argsort_radix(ratio)


@given(st.lists(st.sampled_from([0.0, -0.0, 1.0, 2.5, 1e-300, 7.0, 1e300]) | st.floats(0, 1e6), min_size=2, max_size=300))
def test_packed_sort_is_the_stable_order_or_declines(values):
    ratio = np.array(values, dtype=np.float64)
    packed, radix = _both_sorts(ratio)
    expected = np.argsort(ratio + 0.0, kind="stable")
    assert np.array_equal(radix, expected)
    assert packed is None or np.array_equal(packed, expected)


def test_packed_sort_declines_on_ratios_equal_in_their_top_bits():
    # 1 and its next float agree in all but the lowest bit; listed high first they come out of order
    ratio = np.array([np.nextafter(1.0, 2.0), 1.0, 0.5])
    packed, radix = _both_sorts(ratio)
    assert packed is None
    assert radix.tolist() == [2, 1, 0]


@pytest.mark.parametrize("T", [0.3, 0.6, 1.0])
@pytest.mark.parametrize("k", [2, 3])
def test_plans_are_the_same_with_either_sort(T, k, monkeypatch):
    p, q = real_pair(T)
    monkeypatch.setattr(optimal_plan_module, "_PACKED_SORT", True)
    packed = optimal_plan(p, q, k)
    monkeypatch.setattr(optimal_plan_module, "_PACKED_SORT", False)
    radix = optimal_plan(p, q, k)
    for name in ("order", "rank", "q_tilde", "accept_ratio", "residual", "gap_levels"):
        assert np.array_equal(getattr(packed, name), getattr(radix, name)), name
