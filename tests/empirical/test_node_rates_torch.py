"""Two-draft node rates on the device (empirical.node_rates_torch) equal the float64 numpy core's
(empirical.node_rates.node_rates: spechub_theory closed forms, lp optima) on edge-case pairs, and the
theory.md 3.6 conditions P2 / P3 imply SpecHub >= RRS / RRS w/o."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from empirical.node_rates import node_rates

from strategies import pairs

torch = pytest.importorskip("torch")

from empirical.node_rates_torch import DEVICE_NODE_METHODS, kseq_k2, node_rates_k2  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.lists(pairs(max_n=7, min_n=2), min_size=1, max_size=4).filter(lambda rows: len({len(p) for p, _ in rows}) == 1))
def test_matches_the_numpy_core(rows):
    p = np.array([r[0] for r in rows])
    q = np.array([r[1] for r in rows])
    got = node_rates_k2(torch.as_tensor(p), torch.as_tensor(q))
    ref = node_rates(p, q, [2] * len(p), methods=DEVICE_NODE_METHODS)
    for m in DEVICE_NODE_METHODS:
        want = np.array([np.nan if v is None else v for v in ref["acceptance"][m]])
        np.testing.assert_allclose(got[m], want, atol=1e-12, err_msg=m)
    np.testing.assert_allclose(got["tv"], ref["tv"], atol=1e-15)
    np.testing.assert_allclose(got["hub_q"], ref["hub_q"], atol=1e-15)
    h, r, w = got["spechub"], got["rrs"], got["rrs_wor"]
    assert np.all(h[got["p2"]] >= r[got["p2"]] - 1e-12) and np.all(h[got["p3"]] >= w[got["p3"]] - 1e-12)


def test_kseq_large_vocabulary_and_bad_input():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 3, (5, 4096))
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    p = np.exp(z + rng.normal(0, 1, z.shape))
    p /= p.sum(1, keepdims=True)
    ref = node_rates(p, q, [2] * 5, methods=("kseq",))["acceptance"]["kseq"]
    np.testing.assert_allclose(kseq_k2(torch.as_tensor(p), torch.as_tensor(q)).numpy(), ref, atol=1e-12)
    with pytest.raises(ValueError, match="node method 'nope'"):
        node_rates_k2(torch.as_tensor(p), torch.as_tensor(q), ("nope",))
    with pytest.raises(ValueError, match="same shape|shape"):
        node_rates_k2(torch.as_tensor(p), torch.as_tensor(q[:, :10]))
