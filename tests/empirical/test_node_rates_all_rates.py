"""empirical.node_rates.node_rates is lp.all_rates per k: same values, and a failed optimum is
missing (None) at its rows only, the other optimum and the methods unaffected."""

from unittest import mock

import numpy as np

import empirical.node_rates as node_rates_module
import lp.fast
from empirical.node_rates import node_rates
from lp import all_rates


def test_node_rates_are_lp_all_rates_per_k():
    rng = np.random.default_rng(0)
    q, p = rng.dirichlet(np.ones(9), 5), rng.dirichlet(np.ones(9), 5)
    ks = [2, 3, 2, 4, 3]
    got = node_rates(p, q, ks)["acceptance"]
    for k in set(ks):
        rows = [i for i, kk in enumerate(ks) if kk == k]
        want = all_rates(p[rows], q[rows], k)
        for name, values in got.items():
            if want.acceptance.get(name) is not None:
                np.testing.assert_allclose([values[i] for i in rows], want[name], atol=1e-12, rtol=0, err_msg=name)


def test_a_failed_optimum_is_missing_and_the_rest_stays():
    rng = np.random.default_rng(1)
    q, p = rng.dirichlet(np.ones(20), 4), rng.dirichlet(np.ones(20), 4)
    full = node_rates(p, q, [2, 3, 2, 3])["acceptance"]
    real = lp.fast.optimal_acceptance

    def broken(p, q, k=2, law="iid", **kw):
        if law == "wor":
            raise RuntimeError("solver failed")
        return real(p, q, k, law=law, **kw)

    with mock.patch.object(lp.fast, "optimal_acceptance", broken), mock.patch.object(node_rates_module, "optimal_acceptance", broken):
        part = node_rates(p, q, [2, 3, 2, 3])["acceptance"]
    assert part["optimal_wor"][1] is None and part["optimal_wor"][3] is None
    assert part["optimal_wor"][0] == full["optimal_wor"][0] and part["spechub"] == full["spechub"]
    np.testing.assert_allclose(part["optimal_iid"], full["optimal_iid"], atol=1e-12, rtol=0)
