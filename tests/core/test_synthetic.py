"""Synthetic n-gram target/draft pairs: shapes, reproducibility, the mismatch knob, calibration."""

import numpy as np
import pytest

from spechub_theory.trees.markov import context_kernel, model_tables, stationary_law
from spechub_theory.trees.synthetic import SyntheticPair, calibrate_mismatch, make_pair


@pytest.mark.parametrize("order", [1, 2])
def test_shapes_and_context_indexing(order):
    pair = make_pair(12, order=order, mismatch=0.7, seed=2)
    assert pair.target.shape == pair.draft.shape == (12**order, 12)
    assert np.allclose(pair.target.sum(axis=1), 1) and np.allclose(pair.draft.sum(axis=1), 1)
    ctx = [5, 3, 9]
    c = pair.context_index(ctx)
    assert c == (9 if order == 1 else 3 * 12 + 9)
    assert np.array_equal(pair.p_after(ctx), pair.target[c])
    assert np.array_equal(pair.q_after(ctx), pair.draft[c])
    # appending a token moves to the context of the longer sequence
    assert pair.next_context[c, 4] == pair.context_index(ctx + [4])


def test_seeded_and_reproducible():
    a, b, c = make_pair(20, seed=5), make_pair(20, seed=5), make_pair(20, seed=6)
    assert np.array_equal(a.target, b.target) and np.array_equal(a.draft, b.draft)
    assert not np.array_equal(a.target, c.target)
    # the target does not depend on the mismatch: the knob only moves the draft
    assert np.array_equal(make_pair(20, mismatch=0.1, seed=5).target, make_pair(20, mismatch=3.0, seed=5).target)


def test_mismatch_zero_is_identical_and_acceptance_falls_with_mismatch():
    assert make_pair(30, mismatch=0.0).mean_acceptance() == pytest.approx(1.0, abs=1e-12)
    rates = [make_pair(30, mismatch=m, seed=0).mean_acceptance() for m in (0.25, 0.5, 1.0, 2.0, 4.0)]
    assert all(x > y for x, y in zip(rates, rates[1:]))


def test_laws_are_peaked_like_llm_next_token_laws():
    s = make_pair(50, seed=0).summary()
    assert 0.25 < s["mean_max_p"] < 0.8  # a clear favourite, but not one-hot
    assert s["mean_entropy_p_nats"] < 0.75 * np.log(50)


@pytest.mark.parametrize("target", [0.3, 0.6, 0.9])
def test_calibration_reaches_the_requested_acceptance(target):
    m = calibrate_mismatch(target, 20, seed=1, tol=1e-7)
    assert make_pair(20, mismatch=m, seed=1).mean_acceptance() == pytest.approx(target, abs=1e-6)


def test_calibration_errors():
    with pytest.raises(ValueError, match="`acceptance` must be in"):
        calibrate_mismatch(0.0, 10)
    with pytest.raises(ValueError, match="not reachable"):
        calibrate_mismatch(1e-6, 10)
    with pytest.raises(ValueError, match="do not pass it"):
        calibrate_mismatch(0.5, 10, mismatch=1.0)


def test_stationary_law_of_the_target_chain():
    pair = make_pair(10, order=2, mismatch=1.0, seed=4)
    pi = pair.stationary
    assert pi.shape == (100,) and pi.min() >= 0 and pi.sum() == pytest.approx(1.0)
    assert np.allclose(pi @ pair.transition, pi, atol=1e-12)
    assert np.allclose(pair.transition.sum(axis=1), 1.0)
    assert np.array_equal(context_kernel(pair.next_context, pair.target), pair.transition)


def test_stationary_law_errors():
    with pytest.raises(ValueError, match="square matrix"):
        stationary_law(np.ones((2, 3)))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(vocab=1), "`vocab` must be an integer >= 2"),
        (dict(vocab=10, order=0), "`order` must be an integer >= 1"),
        (dict(vocab=300, order=2), "exceeds"),
        (dict(vocab=10, mismatch=-1.0), "`mismatch` must be a finite number >= 0"),
        (dict(vocab=10, temperature=0.0), "`temperature` must be a finite number > 0"),
    ],
)
def test_make_pair_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_pair(**kwargs)


def test_pair_and_model_validation():
    good = np.full((3, 3), 1 / 3)
    with pytest.raises(ValueError, match="shape \\(n\\*\\*order, n\\)"):
        SyntheticPair(good, good, order=2)
    with pytest.raises(ValueError, match="`draft` rows must be probability vectors"):
        SyntheticPair(good, good * 2)
    with pytest.raises(ValueError, match="at least order = 2 tokens"):
        make_pair(5, order=2).context_index([1])
    with pytest.raises(ValueError, match="must have `target`, `draft` and `next_context`"):
        model_tables(object())
    assert "mean_acceptance" in make_pair(5).to_dict()
