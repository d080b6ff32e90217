"""Draft laws: samplers agree with the exact enumeration; the hub law has the stated structure."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from spechub_theory.draft_laws import DRAFT_LAWS, HUB, IID, WOR, hub_set
from strategies import distributions

LAWS = [IID, WOR, HUB]


def _codes(tuples, n):
    return (tuples * n ** np.arange(tuples.shape[-1])).sum(axis=-1)


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.name)
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("batched", [False, True])
def test_sampler_matches_enumeration(law, k, batched):
    q = np.array([0.05, 0.45, 0.3, 0.0, 0.2])
    support = law.enumerate(q, k)
    assert support.mass.sum() == pytest.approx(1.0, abs=1e-12)
    n_draws = 40_000
    draws = law.sample(np.tile(q, (n_draws, 1)), k, rng=7) if batched else law.sample(q, k, size=n_draws, rng=7)
    assert draws.shape == (n_draws, k)
    index = {c: i for i, c in enumerate(_codes(support.tuples, 5))}
    obs = np.bincount([index[c] for c in _codes(draws, 5)], minlength=len(index))  # KeyError = outside support
    pvalue = stats.chisquare(obs, support.mass * n_draws).pvalue
    assert pvalue > 1e-4


@given(q=st.integers(2, 6).flatmap(distributions), k=st.integers(1, 3))
def test_enumeration_is_a_law(q, k):
    for law in LAWS:
        if law.distinct and k > len(q):
            continue
        support = law.enumerate(q, k)
        assert support.mass.sum() == pytest.approx(1.0, abs=1e-12)
        if law.distinct:
            assert all(len(set(t)) == k for t in support.tuples.tolist())


@given(q=st.integers(2, 6).flatmap(distributions))
def test_hub_law_structure(q):
    """theory.md 3.2: Q(i, a) = q(i), Q(a, i) = q(a) q(i) / (1 - q(a)); first slot ~ q."""
    support = HUB.enumerate(q, 2)
    a = int(hub_set(q, 1)[0])
    assert (support.tuples == a).any(axis=1).all()
    first = np.bincount(support.tuples[:, 0], weights=support.mass, minlength=len(q))
    assert np.abs(first - q).max() <= 1e-12
    rest = np.delete(q, a).sum()  # 1 - q(a) as the sum of the others
    for (x1, x2), m in zip(support.tuples.tolist(), support.mass):
        if x1 != a:
            assert x2 == a and m == pytest.approx(q[x1], abs=1e-15)
        elif rest > 0:
            assert m == pytest.approx(q[a] * q[x2] / rest, rel=1e-12, abs=1e-15)


def test_hub_ties_take_lowest_index():
    q = np.array([0.1, 0.4, 0.4, 0.1])
    assert hub_set(q, 1).tolist() == [1]
    assert hub_set(q, 3).tolist() == [1, 2, 0]


def test_onehot_q_uniform_fallback_no_nan():
    q = np.array([0.0, 1.0, 0.0, 0.0])
    for law in (WOR, HUB):
        draws = law.sample(q, 3, size=2000, rng=1)
        assert (draws[:, 0] == 1).all()
        assert len({tuple(t) for t in draws.tolist()}) > 1  # later slots are uniform on the rest
        support = law.enumerate(q, 3)
        assert np.isfinite(support.mass).all() and support.mass.sum() == pytest.approx(1.0)


def test_registry_and_errors():
    assert set(DRAFT_LAWS) == {"iid", "wor", "hub", "hubset"}
    with pytest.raises(ValueError, match="distinct drafts need a vocabulary of at least 4"):
        WOR.sample([0.5, 0.3, 0.2], 4, rng=0)
    with pytest.raises(ValueError, match="`k` must be an integer >= 1"):
        IID.sample([0.5, 0.5], 0, rng=0)
