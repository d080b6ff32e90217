"""The optimal plan is a lossless verifier; SpecHub's coupling and the core hub verifier are optimal plans.

theory.md 1 (a coupling is a verifier), 2.2 (reduced LP), 3.4-3.5 (hub optimality).
"""

import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given
from hypothesis import strategies as st

import lp
from lp.result import OptimumResult
from spechub_theory.draft_laws import DraftSupport, get_law
from spechub_theory.methods import spechub
from spechub_theory.verification import output_law
from strategies import pairs


def _output_law_of_plan(res: OptimumResult) -> np.ndarray:
    """Exact output law of the plan read as a verifier: sum_i Q(i) pi(. | tuple i)."""
    rows = [res.support.mass[i] * res.conditional(i) for i in range(len(res.support.mass))]
    return np.sum(rows, axis=0)


@given(pq=pairs(max_n=6), k=st.integers(1, 3), law=st.sampled_from(["iid", "wor", "hub"]))
def test_lp_plan_read_as_verifier_is_lossless(pq, k, law):
    p, q = pq
    assume(law == "iid" or k <= len(p))
    res = lp.solve(p, q, k, law=law).check()
    np.testing.assert_allclose(_output_law_of_plan(res), p, atol=1e-12)
    for i in range(len(res.support.mass)):  # each conditional is a distribution
        assert res.conditional(i).sum() == pytest.approx(1.0, abs=1e-12)


def test_plan_sampled_as_verifier_matches_p_and_acceptance():
    p, q = np.array([.3, .3, .4]), np.array([.6, .3, .1])
    res = lp.solve(p, q, 2, law="wor")
    draws = res.sample(200_000, rng=1)
    freq = np.bincount(draws["token"], minlength=3) / 200_000
    se = np.sqrt(p * (1 - p) / 200_000)
    assert np.all(np.abs(freq - p) < 5 * se)
    accepted = (res.support.tuples[draws["tuple"]] == draws["token"][:, None]).any(axis=1).mean()
    assert abs(accepted - 25 / 28) < 5 * np.sqrt(0.1 / 200_000)


@given(pq=pairs(max_n=7, min_n=2), k=st.integers(2, 4), residual=st.sampled_from(["corner", "rule"]))
def test_hub_coupling_is_optimal_and_exact(pq, k, residual):
    p, q = pq
    assume(k <= len(p))
    res = lp.hub_coupling(p, q, k, residual=residual).check(atol=1e-12)
    assert res.solver == "closed-form" and res.status == "optimal"
    assert res.value == pytest.approx(float(spechub.acceptance(p, q, k)), abs=1e-12)
    assert res.value == pytest.approx(lp.solve(p, q, k, law="hub").value, abs=1e-9)


@given(pq=pairs(max_n=6, min_n=2))
def test_core_hub_verifier_realises_an_optimal_plan(pq):
    """The core's SpecHub rule (every rejection emits the common residual) is an LP-optimal plan."""
    p, q = pq
    plan = lp.hub_coupling(p, q, 2, residual="rule").check()
    law = output_law(p, q, 2, method="spechub")
    np.testing.assert_allclose(_output_law_of_plan(plan), law.output, atol=1e-12)
    assert law.acceptance == pytest.approx(lp.solve(p, q, 2, law="hub").value, abs=1e-9)
    # the plan's per-tuple conditional is exactly the rule's: accept slots, then the residual
    rule = spechub.rule(p, q, plan.support.tuples)
    for i, drafts in enumerate(plan.support.tuples):
        expected = rule.reject[i] * rule.residual
        np.add.at(expected, drafts, rule.accept[i])
        np.testing.assert_allclose(plan.conditional(i), expected, atol=1e-12)


def test_check_catches_a_tampered_plan():
    res = lp.solve([.3, .3, .4], [.6, .3, .1], 2, law="iid")
    bad = res.plan.toarray()
    bad[0, 0] += 1e-6
    tampered = OptimumResult(res.value, sp.csr_array(bad), res.draft_law, res.solver, res.status,
                             res.certificate, res.support, res.p)
    with pytest.raises(lp.SolverError, match="row sums"):
        tampered.check()
    wrong_value = OptimumResult(res.value - 1e-6, res.plan, res.draft_law, res.solver, res.status,
                                res.certificate, res.support, res.p)
    with pytest.raises(lp.SolverError, match="acceptance"):
        wrong_value.check()


def test_tiny_masses_do_not_break_the_solver():
    """Masses spanning 1e-300..1: inequality form is always feasible, the check still closes."""
    q = np.array([1 - 3e-12, 1e-12, 1e-12, 1e-12, 0.0])
    p = np.array([1e-300, 0.5, 0.25, 0.25 - 1e-300, 0.0])
    solvers = ["highs"] + (["cvxpy"] if importlib.util.find_spec("cvxpy") else [])
    for law in ("iid", "wor", "hub"):
        for solver in solvers:
            res = lp.solve(p, q, 2, law=law, solver=solver).check()
            assert res.value == pytest.approx(float(lp.optimal_acceptance(p, q, 2, law=law, method="cut")), abs=1e-9)


def test_solve_accepts_a_custom_support():
    support = DraftSupport(np.array([[0, 1], [1, 2], [2, 2]]), np.array([.5, .25, .25]))
    res = lp.solve([.2, .3, .5], law=support).check()
    assert res.draft_law == "custom"
    assert res.value == pytest.approx(lp.min_cut(support, np.array([.2, .3, .5])).value, abs=1e-12)
    assert res.to_dict(plan=True)["plan"][0].keys() == {"drafts", "token", "mass", "accepted"}


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (("iid", [.5, .5], [.5, .5]), {}, "required"),
        (("nope", [.5, .5], [.5, .5], 2), {}, "not one of"),
        (("iid", [.5, .5], [.5, .5], 2), {"solver": "glpk"}, "solver"),
        (("wor", [.5, .5], [.5, .5], 3), {}, "distinct drafts"),
        ((DraftSupport(np.array([[0, 5]]), np.array([1.0])), [.5, .5]), {}, r"token ids in \[0, 2\)"),
        ((DraftSupport(np.array([[0, 1]]), np.array([.5])), [.5, .5]), {}, "sum to 1"),
        ((DraftSupport(np.array([[0, 1]]), np.array([1.0])), [.5, .5], [.5, .5]), {}, "omitted"),
    ],
)
def test_solve_errors_name_the_argument(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        law, *rest = args
        lp.solve(*rest, law=law, **kwargs)


def test_solver_error_carries_status(monkeypatch):
    err = lp.SolverError(2, "Problem is infeasible.")
    assert isinstance(err, RuntimeError) and err.status == 2 and "infeasible" in str(err)
    calls = []

    def failing_linprog(*args, **kwargs):  # every attempt fails: default, no presolve, ipm
        calls.append((kwargs["method"], kwargs["options"].get("presolve", True)))
        return SimpleNamespace(status=4, message="Numerical difficulties encountered.")

    monkeypatch.setattr("lp.reduced.linprog", failing_linprog)
    with pytest.raises(lp.SolverError, match="status 4.*Numerical difficulties") as info:
        lp.solve([.3, .3, .4], [.6, .3, .1], 2, law="iid")
    assert info.value.status == 4
    assert calls == [("highs", True), ("highs", False), ("highs-ipm", True)]


def test_result_repr_and_dict_are_readable():
    res = lp.solve([.3, .3, .4], [.6, .3, .1], 2, law="wor")
    assert "value=0.89285714" in repr(res) and "MinCut(A=[0, 1]" in repr(res)
    d = res.to_dict()
    assert d["certificate"]["tokens"] == [0, 1] and d["status"] == "optimal" and d["support_size"] == 6
    assert get_law("wor").enumerate([.6, .3, .1], 2).tuples.tolist() == res.support.tuples.tolist()


def test_solve_refuses_the_old_argument_order():
    with pytest.raises(TypeError, match=r"got the string 'wor'.*lp.solve\(p, q, k, law='wor'\)"):
        lp.solve("wor", [.3, .3, .4], [.6, .3, .1], 2)
    support = DraftSupport(np.array([[0, 1]]), np.array([1.0]))
    with pytest.raises(TypeError, match=r"lp.solve\(p, law=support\)"):
        lp.solve(support, [.5, .5])
