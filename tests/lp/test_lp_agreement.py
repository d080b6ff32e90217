"""Four independent routes to the optimum agree: textbook LP, reduced LP, brute-force min-cut, fast formula.

theory.md 2.1-2.3 (LP, min-cut, prefixes), 3.4/3.7 (hub closed form), 6.1 (worked examples).
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import lp
from lp.cut import min_cut
from spechub_theory.draft_laws import get_law
from spechub_theory.methods import METHODS
from strategies import pairs
from worked_examples import WORKED_EXAMPLES

LAWS = ("iid", "wor", "hub")

#: theory.md 6.1, columns OPT iid, OPT w/o, OPT hub (k = 2) and the k = 3 values (OPT greedy = hub-set law)
OPTIMA = {
    2: {
        "E1": (.91, 1.0, 1.0),
        "E2": (.79, .892857, .85),
        "E3": (.79, .834524, .766667),
        "E4": (.7296, .818246, .666667),
        "E5": (.46, 1.0, 1.0),
        "E6": (1.0, 1.0, 1.0),
    },
    3: {"E3": (.871, 1.0, .933333), "E4": (.859392, 1.0, 1.0)},
}
#: theory.md 2.3: the hub law's optimum is not at a p/q-sorted prefix
HUB_COUNTEREXAMPLE = ((.6, .18, .22, 0.0), (.32, .1, .3, .28), .967059)


def _valid(law, k, n):
    return law == "iid" or k <= n


@given(pq=pairs(max_n=7), k=st.integers(1, 3), law=st.sampled_from(LAWS))
def test_reduced_lp_equals_bruteforce_cut_equals_fast(pq, k, law):
    p, q = pq
    assume(_valid(law, k, len(p)))
    support = get_law(law).enumerate(q, k)
    cut = min_cut(support, p).value
    res = lp.solve(p, q, k, law=law).check()
    assert res.value == pytest.approx(cut, abs=1e-8)
    if law != "wor" or k <= 2:
        assert float(lp.optimal_acceptance(p, q, k, law=law)) == pytest.approx(cut, abs=1e-8)
    elif k == 3 and (q > 0).sum() >= 3:  # the O(n^2) exact-P_3 prefix path (lp.wor3)
        assert float(lp.optimal_acceptance(p, q, 3, law="wor", method="prefix")) == pytest.approx(cut, abs=1e-8)
    assert float(lp.optimal_acceptance(p, q, k, law=law, method="cut")) == pytest.approx(cut, abs=1e-12)


@settings(max_examples=30)
@given(pq=pairs(max_n=7), k=st.integers(1, 3), law=st.sampled_from(LAWS))
def test_textbook_lp_equals_reduced_lp(pq, k, law):
    pytest.importorskip("cvxpy")
    p, q = pq
    assume(_valid(law, k, len(p)) and not (k == 3 and len(p) > 5))
    textbook = lp.solve(p, q, k, law=law, solver="cvxpy").check(atol=1e-8)
    assert textbook.value == pytest.approx(lp.solve(p, q, k, law=law).value, abs=1e-8)


@given(pq=pairs(max_n=7, min_n=2), k=st.integers(1, 3))
def test_every_core_method_is_below_the_optimum_of_its_law(pq, k):
    p, q = pq
    for name, method in METHODS.items():
        kk = method.FIXED_K or k
        if method.LAW.distinct and kk > len(p):
            continue
        opt = float(lp.optimal_acceptance(p, q, kk, law=method.LAW.name, method="cut"))
        rate = float(method.acceptance(p, q, kk))
        assert rate <= opt + 1e-9, name
        if name == "spechub":
            assert rate == pytest.approx(opt, abs=1e-9)


@pytest.mark.parametrize("k, name", [(k, name) for k in OPTIMA for name in sorted(OPTIMA[k])])
def test_worked_example_optima(k, name):
    p, q = WORKED_EXAMPLES[name][:2]
    for law, expected in zip(LAWS, OPTIMA[k][name]):
        assert round(float(lp.optimal_acceptance(p, q, k, law=law, method="cut")), 6) == pytest.approx(expected, abs=1e-12)
        assert round(lp.solve(p, q, k, law=law).value, 6) == pytest.approx(expected, abs=1e-12)
        if law != "wor" or k == 2:
            assert round(float(lp.optimal_acceptance(p, q, k, law=law)), 6) == pytest.approx(expected, abs=1e-12)


def test_hub_counterexample_is_not_a_sorted_prefix():
    p, q, expected = HUB_COUNTEREXAMPLE
    assert round(float(lp.optimal_acceptance(p, q, 2, law="hub")), 6) == expected
    assert round(lp.solve(p, q, 2, law="hub").value, 6) == expected
    assert round(lp.hub_coupling(p, q, 2).value, 6) == expected
    # the trap: the best p/q-sorted prefix for the hub law's own P(S subset A) gives 1.0
    support = get_law("hub").enumerate(q, 2)
    order = np.argsort(np.divide(p, q), kind="stable")
    prefixes = [lp.result.cut_value(support, np.array(p), order[:L]).value for L in range(len(p) + 1)]
    assert min(prefixes) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="prefix"):
        lp.optimal_acceptance(p, q, 2, law="hub", method="prefix")


def test_wor_k2_prefix_matches_cut_on_adversarial_families():
    """Deterministic sweep of the families of docs/lp.md (the full evidence run is a script)."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(2, 8))
        alpha = rng.choice([0.05, 0.3, 1.0, 5.0])
        p, q = rng.dirichlet(np.full(n, alpha)), rng.dirichlet(np.full(n, alpha))
        if rng.random() < 0.3:
            p = q * np.exp(rng.normal(0, 1, n))
            p /= p.sum()
        fast = float(lp.optimal_acceptance(p, q, 2, law="wor"))
        assert fast == pytest.approx(min_cut(get_law("wor").enumerate(q, 2), p).value, abs=1e-10)
