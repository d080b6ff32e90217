"""The fast gap levels (fans of the lower hull, strips of items, heap fallback) equal the heap pass (the
reference) and the hull characterisation, on random units and on real-shaped laws at n = 151,936."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import spechub_theory.methods.optimal_levels as optimal_levels
from spechub_theory.distributions import check_pq
from spechub_theory.methods.optimal_levels import kinetic_levels, region_levels
from spechub_theory.methods.optimal_plan import optimal_plan
from real_laws import real_pair
from test_optimal_levels import hull_levels


def random_units(rng, U, upper, tiny=-40.0):
    """U units with heavy-tailed q-masses (a few seeds among units down to e^tiny) and increasing
    densities."""
    Q = np.exp(rng.uniform(tiny * 0.75, 0.0, U)) * (rng.random(U) < 0.2) + np.exp(rng.uniform(tiny, tiny / 2, U))
    Q = Q / Q.sum() * rng.uniform(0.2, 0.9)
    start = (1.0 - Q.sum()) * rng.random() if upper else 0.0
    e = start + np.concatenate([[0.0], np.cumsum(Q)])
    rho = np.sort(rng.uniform(0.0, 3.0, U))
    rho += np.arange(U) * 1e-7  # distinct (equal densities are one unit in the plan)
    return Q, rho * Q, e


#: fan rounds before strips / the heap are tried: 0 sends every block of 3+ units to them at once
FAN_ROUNDS = st.sampled_from([0, 1, 2])


@given(U=st.integers(2, 60), k=st.integers(2, 4), upper=st.booleans(), fan_rounds=FAN_ROUNDS,
       strip_min=st.sampled_from([0, 32]), seed=st.integers(0, 2**32 - 1))
def test_fast_levels_equal_the_heap_pass(U, k, upper, fan_rounds, strip_min, seed):
    Q, A, e = random_units(np.random.default_rng(seed), U, upper)
    stats = {}
    fast = region_levels(Q, A, e, k, fan_rounds=fan_rounds, strip_min_units=strip_min, stats=stats)
    heap = np.array(kinetic_levels(Q.tolist(), A.tolist(), e.tolist(), k))
    assert stats["fan_vertices"] + stats["strip_vertices"] + stats["heap_vertices"] == U - 1
    np.testing.assert_allclose(fast, heap, rtol=1e-9, atol=1e-13)


@given(U=st.integers(2, 9), k=st.integers(2, 4), fan_rounds=FAN_ROUNDS, seed=st.integers(0, 2**32 - 1))
def test_fast_levels_are_the_hull_exit_levels(U, k, fan_rounds, seed):
    Q, A, e = random_units(np.random.default_rng(seed), U, False, tiny=-6.0)  # the O(U^3) oracle in float64
    fast = region_levels(Q, A, e, k, fan_rounds=fan_rounds, strip_min_units=0)
    np.testing.assert_allclose(fast, hull_levels(Q, A, e, k), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("seed, U, k", [(0, 200, 2), (1, 200, 3)])
def test_strip_whose_item_certificate_fails_is_redone_by_the_heap(seed, U, k, monkeypatch):
    """Strips of items with the split of items switched off: the fixed point settles on items that
    are not blocks at their level, the certificate (each item's levels <= its absorption level,
    checked once the items are solved) catches it, and the block is redone by the heap pass."""
    monkeypatch.setattr(optimal_levels, "_over_level", lambda *args: np.zeros(0, dtype=np.int64))
    Q, A, e = random_units(np.random.default_rng(seed), U, False)
    stats = {}
    fast = region_levels(Q, A, e, k, fan_rounds=0, strip_min_units=0, stats=stats)
    heap = np.array(kinetic_levels(Q.tolist(), A.tolist(), e.tolist(), k))
    assert stats["strip_failures"] > 0 and stats["heap_vertices"] > 0
    np.testing.assert_allclose(fast, heap, rtol=1e-9, atol=1e-13)


def test_every_path_is_taken():
    """On a real-shaped region the fans, the strips and the fallback all resolve vertices."""
    p, q = check_pq(*real_pair(1.0))
    seen = {}
    inner = optimal_levels.region_levels

    def spy(Q, A, e, k, **_):
        s = {}
        out = inner(Q, A, e, k, stats=s)
        for key in ("fan_vertices", "strip_vertices", "heap_vertices"):
            seen[key] = seen.get(key, 0) + s[key]
        return out

    import spechub_theory.methods.optimal_plan as plan_module
    old = plan_module.region_levels
    plan_module.region_levels = spy
    try:
        optimal_plan(p, q, 2)
    finally:
        plan_module.region_levels = old
    assert seen["fan_vertices"] > 0 and seen["strip_vertices"] > 0 and seen["heap_vertices"] >= 0


@pytest.mark.parametrize("T", [0.3, 0.6, 1.0])
def test_real_laws_fast_plan_equals_the_heap_plan(T):
    """n = 151,936, k = 2: same cut, law and levels (to 1e-9 relative) as the reference pass."""
    p, q = check_pq(*real_pair(T))
    fast, heap = optimal_plan(p, q, 2), optimal_plan(p, q, 2, levels_by="heap")
    assert fast.m == heap.m and fast.mu == heap.mu and fast.lam == heap.lam
    np.testing.assert_array_equal(fast.q_tilde, heap.q_tilde)
    np.testing.assert_allclose(fast.gap_levels, heap.gap_levels, rtol=1e-9, atol=1e-14)
    assert ((fast.gap_levels >= 0) & (fast.gap_levels <= 1)).all()


def test_bad_levels_by_raises_a_clear_error():
    p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    with pytest.raises(ValueError, match="`levels_by` must be 'hull' or 'heap'; got 'fast'"):
        optimal_plan(p, q, 2, levels_by="fast")
