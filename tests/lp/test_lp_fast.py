"""The fast exact optimum: batching, edge cases, large n, error messages, torch parity.

theory.md 2.3 (prefix formulas), 3.4/3.7 (hub closed form).
"""

import numpy as np
import pytest

import lp
from spechub_theory import acceptance_rates
from spechub_theory.methods._sorted import ratio_order
from spechub_theory.methods import kseq, rrs, rrs_wor


def _wor2_cut(p, q, inside):
    """The k = 2 w/o-replacement cut bound of one set A (theory.md 2.3), O(n)."""
    lam = q[~inside].sum()
    return p[inside].sum() + lam * (1 + (q[inside] / (1 - q[inside])).sum())


def _iid_cut(p, q, inside, k):
    return p[inside].sum() + 1 - q[inside].sum() ** k


def test_batched_equals_row_by_row():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.full(6, .5), size=(4, 5))
    q = rng.dirichlet(np.full(6, .5), size=(5,))
    for drafts, k in (("iid", 3), ("wor", 2), ("hub", 2), ("hub", 3), ("wor", 3)):
        batch = lp.optimal_acceptance(p, q, k, law=drafts)
        assert batch.shape == (4, 5)
        rows = [[float(lp.optimal_acceptance(p[i, j], q[j], k, law=drafts, method="lp")) for j in range(5)] for i in range(4)]
        np.testing.assert_allclose(batch, rows, atol=1e-9)


@pytest.mark.parametrize("n", [2000, 49152])
def test_large_n_prefix_optimum_is_below_every_neighbouring_set(n):
    """No random set, and no one-token change of the optimal prefix, beats the fast value."""
    rng = np.random.default_rng(n)
    q = rng.dirichlet(np.full(n, 0.05))
    p = q * np.exp(rng.normal(0, 1.0, n))
    p /= p.sum()
    best = {"iid": float(lp.optimal_acceptance(p, q, 2, law="iid")), "wor": float(lp.optimal_acceptance(p, q, 2, law="wor"))}
    order = ratio_order(p, q)
    L = int(np.argmin(lp.fast.prefix_values(p, q, 2, law="wor")))
    base = np.zeros(n, dtype=bool)
    base[order[:L]] = True
    assert _wor2_cut(p, q, base) == pytest.approx(best["wor"], abs=1e-12)
    for flip in rng.choice(n, 300, replace=False):
        inside = base.copy()
        inside[flip] = ~inside[flip]
        assert _wor2_cut(p, q, inside) >= best["wor"] - 1e-12
        assert _iid_cut(p, q, inside, 2) >= best["iid"] - 1e-12
    for _ in range(50):
        inside = rng.random(n) < rng.random()
        assert _wor2_cut(p, q, inside) >= best["wor"] - 1e-12
    rates = acceptance_rates(p, q, 2, methods=["rrs", "kseq", "rrs_wor"])
    assert max(float(rates["rrs"]), float(rates["kseq"])) <= best["iid"] + 1e-12
    assert float(rates["rrs_wor"]) <= best["wor"] + 1e-12


def test_k1_is_one_minus_tv_for_every_law():
    p, q = [.4, .4, .2], [.7, .2, .1]
    for drafts in ("iid", "wor", "hub"):
        assert round(float(lp.optimal_acceptance(p, q, 1, law=drafts)), 12) == 0.7


def test_onehot_q_without_replacement_uses_the_uniform_fallback():
    """One-hot q: the second draft is uniform on the other tokens (the core's law)."""
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 7):
        for _ in range(20):
            p = rng.dirichlet(np.full(n, .4))
            q = np.eye(n)[rng.integers(n)]
            fast = float(lp.optimal_acceptance(p, q, 2, law="wor"))
            assert fast == pytest.approx(float(lp.optimal_acceptance(p, q, 2, law="wor", method="cut")), abs=1e-12)


def test_near_onehot_q_has_no_cancellation():
    """1 - q(a) ~ 1e-13: the formulas use sums of the other entries, not 1 - q(a)."""
    q = np.array([1 - 3e-13, 1e-13, 1e-13, 1e-13])
    p = np.array([.1, .3, .3, .3])
    for drafts in ("iid", "wor", "hub"):
        fast = float(lp.optimal_acceptance(p, q, 2, law=drafts))
        assert fast == pytest.approx(float(lp.optimal_acceptance(p, q, 2, law=drafts, method="cut")), abs=1e-9)
    assert float(lp.optimal_acceptance(p, q, 2, law="wor")) == pytest.approx(1.0, abs=1e-9)


def test_wor_k3_beyond_the_cut_uses_exact_prefixes_and_k4_raises():
    rng = np.random.default_rng(1)
    p, q = rng.dirichlet(np.full(14, .5), size=3), rng.dirichlet(np.full(14, .5), size=3)
    np.testing.assert_allclose(lp.optimal_acceptance(p, q, 3, law="wor"),  # n = 14 > 12: O(n^2) prefixes
                               lp.optimal_acceptance(p, q, 3, law="wor", method="lp"), atol=1e-9)
    p, q = rng.dirichlet(np.ones(40)), rng.dirichlet(np.ones(40))
    with pytest.raises(ValueError, match="no exact large-n method"):
        lp.optimal_acceptance(p, q, 4, law="wor")
    with pytest.raises(ValueError, match="3 positive q entries"):
        lp.optimal_acceptance(p, np.eye(40)[0], 3, law="wor")
    assert round(float(lp.optimal_acceptance([.1, .2, .3, .4], [.4, .3, .2, .1], 3, law="wor")), 6) == 1.0


def test_optimal_rates_for_bound():
    r = lp.optimal_rates([.1, .2, .3, .4], [.4, .3, .2, .1], 3)
    assert round(float(r["optimal_iid"]), 6) == .871 and round(float(r["optimal_wor"]), 6) == 1.0
    assert "brute-force" in r["notes"]["optimal_wor"]
    rng = np.random.default_rng(2)
    big = lp.optimal_rates(rng.dirichlet(np.ones(100)), rng.dirichlet(np.ones(100)), 3)
    assert 0 < float(big["optimal_wor"]) <= 1 and "P_3" in big["notes"]["optimal_wor"]
    big = lp.optimal_rates(rng.dirichlet(np.ones(100)), rng.dirichlet(np.ones(100)), 4)
    assert big["optimal_wor"] is None and "no exact large-n method" in big["notes"]["optimal_wor"]
    assert lp.optimal_rates([.5, .5], [.5, .5], 3)["optimal_wor"] is None


def test_core_rates_below_optimum_on_a_batch():
    rng = np.random.default_rng(5)
    p, q = rng.dirichlet(np.full(50, .3), size=64), rng.dirichlet(np.full(50, .3), size=64)
    iid = lp.optimal_acceptance(p, q, 2, law="iid")
    assert np.all(rrs.acceptance(p, q, 2) <= iid + 1e-12)
    assert np.all(kseq.acceptance(p, q, 2) <= iid + 1e-12)
    assert np.all(rrs_wor.acceptance(p, q, 2) <= lp.optimal_acceptance(p, q, 2, law="wor") + 1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"law": "greedy"}, "`law` 'greedy' is not one of"),
        ({"method": "simplex"}, "`method` 'simplex' is not one of"),
        ({"k": 0}, "`k` must be an integer >= 1"),
        ({"k": 4, "law": "wor"}, "distinct drafts"),
        ({"law": "hub", "method": "prefix"}, "wrong for the hub law"),
        ({"law": "wor", "k": 3, "p": [.5, .5, 0, 0], "q": [.5, .5, 0, 0], "method": "prefix"}, "3 positive q"),
    ],
)
def test_errors_name_the_argument(kwargs, match):
    args = {"p": [.3, .3, .4], "q": [.6, .3, .1], "k": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        lp.optimal_acceptance(args.pop("p"), args.pop("q"), args.pop("k"), **args)


def test_bad_distribution_is_a_value_error():
    with pytest.raises(ValueError, match="`q` must sum to 1"):
        lp.optimal_acceptance([.5, .5], [.5, .4], 2)
    with pytest.raises(ValueError, match="'cut' enumerates 2\\^n"):
        lp.optimal_acceptance(np.full(30, 1 / 30), np.full(30, 1 / 30), 2, method="cut")


@pytest.mark.parametrize("drafts, k", [("iid", 1), ("iid", 2), ("iid", 4), ("wor", 2), ("hub", 2), ("hub", 3)])
def test_torch_matches_numpy_float64(drafts, k):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(k)
    p = rng.dirichlet(np.full(300, .2), size=128)
    q = rng.dirichlet(np.full(300, .2), size=128)
    q[0] = np.eye(300)[7]  # one-hot row
    q[1, :150] = 0.0  # zeros
    q[1] /= q[1].sum()
    p[2] = q[2]  # p = q
    q[3] = np.full(300, 1 / 300)  # ties everywhere
    expected = lp.optimal_acceptance(p, q, k, law=drafts)
    got = lp.optimal_acceptance(torch.from_numpy(p), torch.from_numpy(q), k, law=drafts)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-9, rtol=0)
    f32 = lp.fast_torch.optimal_acceptance(torch.from_numpy(p), torch.from_numpy(q), k, law=drafts, sort_dtype=torch.float32)
    np.testing.assert_allclose(f32.numpy(), expected, atol=1e-6, rtol=0)


def test_torch_errors_and_import_lightness():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="numpy-only"):
        lp.optimal_acceptance(torch.tensor([.5, .5]), torch.tensor([.5, .5]), 2, method="cut")
    with pytest.raises(ValueError, match="`q` must sum to 1"):
        lp.optimal_acceptance(torch.tensor([.5, .5]), torch.tensor([.5, .4]), 2)
    import subprocess
    import sys

    code = "import lp, sys; print('torch' in sys.modules, 'cvxpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
