"""The torch range maximum of the optimal verifier equals the core's, and its node rule equals the
numpy rule on a large vocabulary (float64, CPU); plans built in threads or in spawned processes
(shared memory or pipes) give the same rule bit for bit, and the pool leaves no shared memory."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import empirical.optimal_torch as optimal_torch  # noqa: E402
from empirical import plan_layout, plan_pool  # noqa: E402
from empirical.optimal_torch import _range_max, rule  # noqa: E402
from spechub_theory.methods import optimal  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from real_laws import real_pair  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _ours(pid=None):
    """Names of this process's (or ``pid``'s) shared-memory blocks left in /dev/shm."""
    prefix = f"{plan_pool.SHM_PREFIX}{os.getpid() if pid is None else pid}_"
    return sorted(f for f in os.listdir(plan_pool.SHM_DIR) if f.startswith(prefix))


def _dirichlet(seed: int, rows: int, k: int, n: int = 300):
    rng = np.random.default_rng(seed)
    p, q = (torch.as_tensor(rng.dirichlet(np.ones(n) * 0.2, size=rows)) for _ in range(2))
    return p, q, torch.as_tensor(rng.integers(0, n, size=(rows, k)))


def _serial(p, q, drafts, monkeypatch):
    """The rule with plans built here, one after another (the plan cache cleared before and after)."""
    with monkeypatch.context() as m:
        m.setenv(optimal_torch.PLAN_PROCESSES_ENV, "0")
        m.setattr(optimal_torch, "PLAN_THREADS", 1)
        optimal._cache.clear()
        out = rule(p, q, drafts)
    optimal._cache.clear()
    return out


def _assert_same(a, b):
    assert torch.equal(a.accept, b.accept) and torch.equal(a.residual, b.residual)


def test_range_max_matches_the_core():
    rng = np.random.default_rng(0)
    n = 300
    q_sparse = rng.dirichlet(np.ones(n) * 0.3) * (rng.random(n) < 0.2)  # fewer drafted tokens: fewer blocks
    pairs = [(rng.dirichlet(np.ones(n) * 0.3), rng.dirichlet(np.ones(n) * 0.3)),
             (rng.dirichlet(np.ones(n) * 0.3), q_sparse / q_sparse.sum())]
    plans = [optimal.plan(p, q, 3) for p, q in pairs]
    rows = plan_pool.plan_rows(*(torch.as_tensor(np.stack(x)) for x in zip(*pairs)), 3)
    size = min(len(pl.gap_levels) for pl in plans)  # ranges valid in both plans
    lo = rng.integers(0, size + 1, (2, 64))
    hi = rng.integers(0, size + 1, (2, 64))
    got = _range_max((rows.blocks, rows.table), torch.arange(2), torch.as_tensor(lo), torch.as_tensor(hi)).numpy()
    for i, pl in enumerate(plans):
        np.testing.assert_array_equal(got[i], pl.max_gap_level(lo[i], hi[i]))


def test_rule_matches_numpy_at_a_large_vocabulary():
    rng = np.random.default_rng(1)
    n = 5000
    p = rng.dirichlet(np.ones(n) * 0.05, size=3)
    q = rng.dirichlet(np.ones(n) * 0.05, size=3)
    drafts = np.stack([rng.choice(n, size=(40, 2), p=q[i]) for i in range(3)], axis=1)  # [40, 3, 2]: 3 plans
    got = rule(torch.as_tensor(p), torch.as_tensor(q), torch.as_tensor(drafts))
    want = optimal.rule(p, q, drafts)
    np.testing.assert_allclose(got.accept.numpy(), want.accept, atol=1e-12)
    np.testing.assert_allclose(got.residual.numpy(), np.broadcast_to(want.residual, got.residual.shape), atol=1e-12)


def test_plans_built_in_threads_equal_the_serial_ones(monkeypatch):
    p, q, drafts = _dirichlet(2, 5, 3)
    serial = _serial(p, q, drafts, monkeypatch)
    monkeypatch.setattr(optimal_torch, "PLAN_THREADS", 3)
    _assert_same(serial, rule(p, q, drafts))


def test_bad_settings_are_one_clear_error(monkeypatch):
    monkeypatch.setenv(optimal_torch.PLAN_PROCESSES_ENV, "two")
    with pytest.raises(ValueError, match="SPECHUB_PLAN_PROCESSES must be a non-negative integer; got 'two'"):
        optimal_torch.plan_processes()
    monkeypatch.setenv(optimal_torch.PLAN_TRANSPORT_ENV, "mmap")
    with pytest.raises(ValueError, match="SPECHUB_PLAN_TRANSPORT must be one of shm, pipe; got 'mmap'"):
        optimal_torch.plan_transport()
    with pytest.raises(ValueError, match="`transport` must be one of 'shm', 'pipe'; got 'mmap'"):
        plan_pool.plan_rows(torch.ones(1, 2) / 2, torch.ones(1, 2) / 2, 2, transport="mmap")


@pytest.fixture(scope="module")
def pool():
    """``$SPECHUB_PLAN_PROCESSES`` = 2 for the tests below; one spawned pool for all of them (spawn
    startup is slow), shut down at the end: none of its processes nor its shared memory remains."""
    with pytest.MonkeyPatch.context() as m:
        m.setenv(optimal_torch.PLAN_PROCESSES_ENV, "2")
        m.delenv(optimal_torch.PLAN_TRANSPORT_ENV, raising=False)
        yield
        children = list(plan_pool._pool[1]._processes.values()) if plan_pool._pool else []
        optimal_torch.shutdown_plan_pool()
    assert plan_pool._pool is None and plan_pool._block is None
    assert not any(c.is_alive() for c in children)
    assert _ours() == []


def test_processes_over_shared_memory_equal_the_serial_plans(pool, monkeypatch):
    p, q, drafts = _dirichlet(3, 4, 2)
    serial = _serial(p, q, drafts, monkeypatch)
    _assert_same(serial, rule(p, q, drafts))
    assert _ours() == [plan_pool._block.name]  # the inputs and plans went through our one block
    children = list(plan_pool._pool[1]._processes.values())
    assert len(children) == 2 and all(c.is_alive() for c in children)
    monkeypatch.setenv(optimal_torch.PLAN_TRANSPORT_ENV, "pipe")
    _assert_same(serial, rule(p, q, drafts))


def test_processes_equal_the_serial_plans_on_real_shaped_laws(pool, monkeypatch):
    pairs = [real_pair(T, seed=s) for T, s in ((0.6, 1), (1.0, 2))]  # n = 151,936
    p, q = (torch.as_tensor(np.stack(x)) for x in zip(*pairs))
    drafts = torch.as_tensor(np.random.default_rng(0).integers(0, p.shape[1], size=(2, 2)))
    drafts[:, 0] = torch.argmax(q, dim=-1)  # a draft where q has mass
    _assert_same(_serial(p, q, drafts, monkeypatch), rule(p, q, drafts))


def _capacity(n: int) -> int:
    """Rows of n that the pool's current block holds."""
    return plan_pool._block.size // (8 * plan_layout.row_words(n))


def test_the_block_grows_with_the_rows_and_is_reused(pool, monkeypatch):
    n = 20_000  # ~1 MB a row: a block of a few rows
    names = []

    def call(rows):
        p, q, drafts = _dirichlet(rows, rows, 2, n)
        _assert_same(_serial(p, q, drafts, monkeypatch), rule(p, q, drafts))
        names.append(plan_pool._block.name)

    call(2)
    full = _capacity(n)
    call(full)  # fits
    call(full + 1)  # grows
    call(full + 1)
    call(2)  # a smaller batch, then a smaller vocabulary, fit the grown block
    p, q, drafts = _dirichlet(9, 5, 2, 300)
    _assert_same(_serial(p, q, drafts, monkeypatch), rule(p, q, drafts))
    names.append(plan_pool._block.name)
    assert names[0] == names[1] != names[2] == names[3] == names[4] == names[5]
    assert _capacity(n) >= 2 * full  # grown by at least 2x: a batch one row larger does not reallocate again
    assert _ours() == [names[-1]]  # the replaced block is unlinked


def test_a_full_dev_shm_falls_back_to_the_pipes(pool, monkeypatch):
    n = 20_000
    rule(*_dirichlet(4, 2, 2, n))  # a block exists
    p, q, drafts = _dirichlet(4, _capacity(n) + 1, 2, n)  # one row more than it holds
    monkeypatch.setattr(plan_pool, "_free_bytes", lambda: 0)
    name = plan_pool._block.name
    with pytest.warns(RuntimeWarning, match="/dev/shm has 0 MiB free.*through the pool's pipes"):
        got = rule(p, q, drafts)
    assert plan_pool._block.name == name  # the old block is kept for batches that fit
    _assert_same(_serial(p, q, drafts, monkeypatch), got)


def test_an_error_in_a_plan_process_names_the_row_and_the_rule(pool):
    p, q, drafts = _dirichlet(5, 3, 2)
    p[1, 7] = -0.1
    with pytest.raises(ValueError, match=r"the plan of row 1: `p` must be non-negative; p\[7\] = -0.1"):
        rule(p, q, drafts)
    p[1, 7] = 0.0
    p = p / p.sum(-1, keepdim=True)
    rule(p, q, drafts)  # the pool still serves


def test_exit_without_shutdown_leaves_no_shared_memory_and_no_warning():
    """The atexit hook unlinks the block; the resource tracker finds nothing to clean or to warn of."""
    code = ("import os, torch; from empirical.optimal_torch import rule; os.environ['SPECHUB_PLAN_PROCESSES'] = '1'; "
            "p = torch.full((3, 50), 0.02, dtype=torch.float64); d = torch.zeros((3, 2), dtype=torch.long); "
            "rule(p, p, d); print(os.getpid())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no "resource_tracker: ... leaked shared_memory objects"
    assert _ours(int(done.stdout.strip())) == []
