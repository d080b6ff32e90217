"""The torch range maximum of the optimal verifier equals the core's, and its node rule equals the
numpy rule on a large vocabulary (float64, CPU)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from empirical.optimal_torch import _plan_arrays, _range_max, _tables, rule  # noqa: E402
from spechub_theory.methods import optimal  # noqa: E402


def test_range_max_matches_the_core():
    rng = np.random.default_rng(0)
    pairs = [(rng.dirichlet(np.ones(n) * 0.3), rng.dirichlet(np.ones(n) * 0.3)) for n in (40, 300)]
    plans = [optimal.plan(p, q, 3) for p, q in pairs]
    tables = _tables([_plan_arrays(p, q, 3) for p, q in pairs], "cpu")
    size = min(len(pl.gap_levels) for pl in plans)  # ranges valid in both plans
    lo = rng.integers(0, size + 1, (2, 64))
    hi = rng.integers(0, size + 1, (2, 64))
    got = _range_max(tables, torch.as_tensor(lo), torch.as_tensor(hi)).numpy()
    for i, pl in enumerate(plans):
        np.testing.assert_array_equal(got[i], pl.max_gap_level(lo[i], hi[i]))


def test_rule_matches_numpy_at_a_large_vocabulary():
    rng = np.random.default_rng(1)
    n = 5000
    p = rng.dirichlet(np.ones(n) * 0.05, size=3)
    q = rng.dirichlet(np.ones(n) * 0.05, size=3)
    drafts = np.stack([rng.choice(n, size=(40, 2), p=q[i]) for i in range(3)], axis=1)  # [40, 3, 2]
    got = rule(torch.as_tensor(p), torch.as_tensor(q), torch.as_tensor(drafts))
    want = optimal.rule(p, q, drafts)
    np.testing.assert_allclose(got.accept.numpy(), want.accept, atol=1e-12)
    np.testing.assert_allclose(got.residual.numpy(), np.broadcast_to(want.residual, got.residual.shape), atol=1e-12)


def _serial_and(build, monkeypatch, seed: int, rows: int, k: int):
    """The rule on random Dirichlet pairs with serial plans, and again after ``build()`` changes how
    plans are built (cache cleared in between): (serial, other)."""
    import empirical.optimal_torch as optimal_torch

    rng = np.random.default_rng(seed)
    p, q = (torch.as_tensor(rng.dirichlet(np.ones(300) * 0.2, size=rows)) for _ in range(2))
    drafts = torch.as_tensor(rng.integers(0, 300, size=(rows, k)))
    monkeypatch.setattr(optimal_torch, "PLAN_THREADS", 1)
    serial = rule(p, q, drafts)
    optimal._cache.clear()
    build()
    return serial, rule(p, q, drafts)


def test_plans_built_in_threads_equal_the_serial_ones(monkeypatch):
    import empirical.optimal_torch as optimal_torch

    serial, threaded = _serial_and(lambda: monkeypatch.setattr(optimal_torch, "PLAN_THREADS", 3), monkeypatch, 2, 5, 3)
    assert torch.equal(serial.accept, threaded.accept) and torch.equal(serial.residual, threaded.residual)


def test_plans_built_in_processes_equal_the_serial_ones(monkeypatch):
    """``$SPECHUB_PLAN_PROCESSES``: the same plans from a spawned pool; a bad value is one clear error."""
    import empirical.optimal_torch as optimal_torch

    try:
        serial, pooled = _serial_and(lambda: monkeypatch.setenv(optimal_torch.PLAN_PROCESSES_ENV, "2"), monkeypatch, 3, 4, 2)
        children = list(optimal_torch._pool[1]._processes.values())
        assert children and all(c.is_alive() for c in children)
    finally:
        optimal_torch.shutdown_plan_pool()
    assert optimal_torch._pool is None and not any(c.is_alive() for c in children)  # none outlives the caller
    optimal_torch.shutdown_plan_pool()  # no pool: nothing to do
    assert torch.equal(serial.accept, pooled.accept) and torch.equal(serial.residual, pooled.residual)
    monkeypatch.setenv(optimal_torch.PLAN_PROCESSES_ENV, "two")
    with pytest.raises(ValueError, match="SPECHUB_PLAN_PROCESSES"):
        optimal_torch.plan_processes()
