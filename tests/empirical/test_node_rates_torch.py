"""Two-draft node rates on the device (empirical.node_rates_torch) equal the float64 numpy core's
(lp.all_rates, and empirical.node_rates.node_rates built on it) on edge-case pairs, and the
theory.md 3.6 conditions P2 / P3 imply SpecHub >= RRS / RRS w/o."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from empirical.node_rates import node_rates
from lp import OPTIMA
from lp import all_rates as all_rates_numpy

from strategies import pairs

torch = pytest.importorskip("torch")

from empirical.node_rates_torch import DEVICE_NODE_METHODS, TORCH_METHODS, all_rates, kseq_k2, node_scalars  # noqa: E402

same_n_rows = st.lists(pairs(max_n=7, min_n=2), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(same_n_rows)
def test_matches_the_numpy_core(rows):
    assume(len({len(p) for p, _ in rows}) == 1)
    p = np.array([r[0] for r in rows])
    q = np.array([r[1] for r in rows])
    got = all_rates(torch.as_tensor(p), torch.as_tensor(q), 2)
    ref = node_rates(p, q, [2] * len(p), methods=DEVICE_NODE_METHODS)
    for m in DEVICE_NODE_METHODS:
        want = np.array([np.nan if v is None else v for v in ref["acceptance"][m]])
        np.testing.assert_allclose(got[m], want, atol=1e-12, err_msg=m)
    scalars = node_scalars(torch.as_tensor(p), torch.as_tensor(q))
    np.testing.assert_allclose(got.tv, ref["tv"], atol=1e-15)
    np.testing.assert_allclose(scalars["hub_q"], ref["hub_q"], atol=1e-15)
    np.testing.assert_allclose(scalars["hub_p"], ref["hub_p"], atol=1e-15)
    h, r, w = got["spechub"], got["rrs"], got["rrs_wor"]
    assert np.all(h[scalars["p2"]] >= r[scalars["p2"]] - 1e-12) and np.all(h[scalars["p3"]] >= w[scalars["p3"]] - 1e-12)


@pytest.mark.parametrize("n", [2, 9, 300])
def test_parity_with_lp_all_rates_on_random_batches(n):
    """Same result class, names, notes and values (1e-12) as the numpy entry point, CPU float64."""
    rng = np.random.default_rng(n)
    z = rng.normal(0, 2, (7, n))
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    p = np.exp(z + rng.normal(0, 1, z.shape))
    p /= p.sum(1, keepdims=True)
    q[0] = p[0]  # TV = 0
    want = all_rates_numpy(p, q, 2, methods=TORCH_METHODS)
    got = all_rates(torch.as_tensor(p), torch.as_tensor(q), 2, methods=TORCH_METHODS, chunk=3)
    assert type(got) is type(want) and (got.k, got.n) == (want.k, want.n)
    assert list(got.acceptance) == list(want.acceptance) and got.notes == want.notes
    for m in want.acceptance:
        np.testing.assert_allclose(got[m], want[m], atol=1e-12, rtol=0, err_msg=m)
    np.testing.assert_allclose(got.tv, want.tv, atol=1e-15, rtol=0)
    np.testing.assert_array_equal(got.hub, want.hub)


def test_out_of_reach_is_none_with_a_note_and_bad_input_raises():
    p = torch.tensor([[0.3, 0.3, 0.4]], dtype=torch.float64)
    q = torch.tensor([[0.6, 0.3, 0.1]], dtype=torch.float64)
    got = all_rates(p, q, 2, methods=("spechub", "khisti_is"), optima=("optimal_wor",))
    assert got["khisti_is"] is None and "torch" in got.notes["khisti_is"]
    assert list(got.acceptance) == ["spechub", "khisti_is", "optimal_wor"]
    np.testing.assert_allclose(got["optimal_wor"], all_rates_numpy(p.numpy(), q.numpy(), 2)["optimal_wor"], atol=1e-12)
    with pytest.raises(ValueError, match="`k` must be 2"):
        all_rates(p, q, 3)
    with pytest.raises(ValueError, match="`methods` entry 'nope'"):
        all_rates(p, q, 2, methods=("nope",))
    with pytest.raises(ValueError, match="`optima` entry 'optimal'"):
        all_rates(p, q, 2, methods=(), optima=("optimal",))
    assert set(OPTIMA) <= set(DEVICE_NODE_METHODS)


def test_kseq_large_vocabulary_and_bad_input():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 3, (5, 4096))
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    p = np.exp(z + rng.normal(0, 1, z.shape))
    p /= p.sum(1, keepdims=True)
    ref = node_rates(p, q, [2] * 5, methods=("kseq",))["acceptance"]["kseq"]
    np.testing.assert_allclose(kseq_k2(torch.as_tensor(p), torch.as_tensor(q)).numpy(), ref, atol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        all_rates(torch.as_tensor(p), torch.as_tensor(q[:, :10]), 2)
    with pytest.raises(ValueError, match="shape"):
        node_scalars(torch.as_tensor(p), torch.as_tensor(q[:, :10]))
