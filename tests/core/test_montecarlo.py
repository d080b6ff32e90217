"""Monte Carlo engine: exact rates inside the intervals, fast paths equal to `verify`, the simulate CLI."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spechub_cli import main
from spechub_theory.methods import METHOD_NAMES, METHODS
from spechub_theory.montecarlo.kernels import verify_chunk as _verify_chunk
from spechub_theory.montecarlo.simulation import MonteCarloResult, resolve_verifier, simulate, wilson_interval
from spechub_theory.montecarlo.mutants import MUTANTS
from spechub_theory.montecarlo.stats import matches_target
from spechub_theory.verification import output_law, sample_drafts, verify
from strategies import pairs

#: examples per method in the hypothesis test; the 99.9% level is family-wise (Bonferroni)
EXAMPLES = 25
LEVEL = 1 - 1e-3 / EXAMPLES
TRIALS = 3000

P3, Q3 = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.4, 0.3, 0.2, 0.1])  # worked example E3


@pytest.mark.parametrize("name", METHOD_NAMES)
@settings(max_examples=EXAMPLES)
@given(pq=pairs(max_n=5), k=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_exact_rate_in_interval_and_output_matches_p(name, pq, k, seed):
    p, q = pq
    m = METHODS[name]
    k = m.FIXED_K or min(k, len(p))
    r = simulate(p, q, k, method=name, n_trials=TRIALS, rng=seed)
    assert r.confidence_interval(LEVEL).contains(r.exact), (r, r.acceptance)
    assert r.slot_counts.sum() == r.accepted and r.token_counts.sum() == TRIALS
    if getattr(m, "RESIDUAL_AVOIDS_DRAFTS", True):  # theory.md 1: accepted iff y in the draft set
        assert r.in_drafts_when_rejected == 0
    test = matches_target(r, p, alpha=1e-3 / EXAMPLES)
    assert test.passed, test.report()
    np.testing.assert_allclose(r.exact_positional.sum(), r.exact, atol=1e-12)


@pytest.mark.parametrize("verifier", ["rrs_wor", *MUTANTS.values()], ids=lambda v: getattr(v, "NAME", v))
@pytest.mark.parametrize("k", [2, 3])
def test_grouped_paths_equal_verify_with_the_same_uniforms(verifier, k):
    rng = np.random.default_rng(11)
    p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6) * 0.5)
    ver = resolve_verifier(verifier)
    drafts = ver.sample(q, k, 20000, rng)
    u = rng.random((20000, k + 1))
    _assert_coupled(ver.module, p, q, drafts, u, _verify_chunk(ver, p, q, drafts, u))


def _assert_coupled(method, p, q, drafts, u, fast):
    """Same accept decisions and tokens as `verify` with the same uniforms; a residual token may
    differ only for RRS w/o replacement k = 2, whose fast path inverts the residual CDF in
    another token order (same law): there it must lie in the residual's support."""
    ref = verify(p, q, drafts, u, method=method)
    np.testing.assert_array_equal(fast.slot, ref.slot)
    if getattr(method, "NAME", method) == "rrs_wor" and drafts.shape[-1] == 2:
        np.testing.assert_array_equal(fast.token[ref.slot >= 0], ref.token[ref.slot >= 0])
        miss = np.flatnonzero(ref.slot < 0)
        residual = METHODS["rrs_wor"].rule(p, q, drafts[miss]).residual
        assert (residual[np.arange(len(miss)), fast.token[miss]] > 0).all()
    else:
        np.testing.assert_array_equal(fast.token, ref.token)


def test_user_callable_gives_the_same_counts_as_the_method():
    def my_rrs(p, q, drafts, u):
        return verify(p, q, drafts, u, method="rrs")

    a = simulate(P3, Q3, 2, method=my_rrs, law="iid", n_trials=50000, rng=3, batch=10000)
    b = simulate(P3, Q3, 2, method="rrs", n_trials=50000, rng=3, batch=10000)
    np.testing.assert_array_equal(a.token_counts, b.token_counts)
    np.testing.assert_array_equal(a.slot_counts, b.slot_counts)
    assert a.exact is None and b.exact == pytest.approx(0.72)


def test_user_law_as_a_callable():
    def hub_sampler(q, k, size, rng):
        return sample_drafts(q, k, method="spechub", size=size, rng=rng)

    r = simulate(P3, Q3, 2, method="spechub", law=hub_sampler, n_trials=20000, rng=1)
    assert r.exact is None and abs(r.acceptance - 0.766667) < 0.02


def test_result_does_not_depend_on_workers():
    a = simulate(P3, Q3, 3, method="kseq", n_trials=100000, rng=5, batch=7000, workers=1)
    b = simulate(P3, Q3, 3, method="kseq", n_trials=100000, rng=5, batch=7000, workers=2)
    np.testing.assert_array_equal(a.token_counts, b.token_counts)
    assert a.seed == 5 and a.to_dict()["n_trials"] == 100000


def test_mutant_exact_rate_comes_from_enumeration():
    m = MUTANTS["rrs_skip_duplicates"]
    r = simulate(P3, Q3, 2, method=m, n_trials=40000, rng=2)
    assert r.exact == pytest.approx(output_law(P3, Q3, 2, method=m).acceptance)
    assert r.confidence_interval(0.999).contains(r.exact)
    assert not matches_target(r, P3, alpha=1e-3).passed  # TV 0.027 is seen at N = 40,000


def test_z_score_at_the_edges():
    r = MonteCarloResult("x", 1, 100, 100, np.array([100]), np.array([100]), exact=1.0)
    assert r.z == 0.0
    r = MonteCarloResult("x", 1, 100, 99, np.array([99]), np.array([100]), exact=1.0)
    assert r.z == -np.inf


def test_wilson_interval_brackets_and_rejects_bad_input():
    ci = wilson_interval(0, 50)
    assert ci.low == 0.0 and 0 < ci.high < 0.1 and ci.contains(0.0)
    with pytest.raises(ValueError, match="`trials` must be >= 1"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="`level` must be in"):
        wilson_interval(1, 2, level=1.5)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="no draft law: pass `law=`"):
        simulate(P3, Q3, 2, method=lambda p, q, d, u: verify(p, q, d, u, method="rrs"), n_trials=10)
    with pytest.raises(ValueError, match="`n_trials` must be an integer >= 1"):
        simulate(P3, Q3, 2, method="rrs", n_trials=0)
    with pytest.raises(ValueError, match="verifies exactly 1 draft"):
        simulate(P3, Q3, 2, method="single", n_trials=10)
    with pytest.raises(ValueError, match="token outside"):
        simulate(P3, Q3, 2, method=lambda p, q, d, u: type(verify(p, q, d, u, method="rrs"))(d[:, 0] + 4, d[:, 0] * 0), law="iid", n_trials=10)
    with pytest.raises(TypeError, match="`verifier` must be"):
        simulate(P3, Q3, 2, method=3, n_trials=10)
    with pytest.raises(ValueError, match="one pair p, q"):
        simulate(np.tile(P3, (2, 1)), Q3, 2, method="rrs", n_trials=10)


def test_simulate_cli_json_agrees_with_bound(capsys):
    args = ["--p", "0.1,0.2,0.3,0.4", "--q", "0.4,0.3,0.2,0.1", "--k", "2"]
    assert main(["bound", *args, "--json"]) == 0
    bound = json.loads(capsys.readouterr().out)["acceptance"]
    assert main(["simulate", *args, "--trials", "200000", "--seed", "4", "--json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["k"] == 2 and out["n_trials"] == 200000 and set(out["methods"]) == set(METHOD_NAMES)
    for name, entry in out["methods"].items():
        assert entry["acceptance_exact"] == pytest.approx(bound[name], abs=1e-12)
        lo, hi = entry["ci999"]
        assert lo <= bound[name] <= hi, name
        assert entry["lossless"] and entry["chi2_pvalue"] > 1e-3
        assert len(entry["positional_mc"]) == (1 if name == "single" else 2)


def test_simulate_cli_table_flags_a_mutant(capsys):
    assert main(["simulate", "--p", "0.1,0.2,0.3,0.4", "--q", "0.4,0.3,0.2,0.1", "--trials", "50000",
                 "--methods", "rrs", "spechub_wrong_q"]) == 0
    out = capsys.readouterr().out
    assert "rrs " in out and "yes" in out and "NO" in out


def test_simulate_cli_errors(capsys):
    assert main(["simulate", "--p", "0.5,0.5;0.2,0.8", "--q", "0.5,0.5;0.5,0.5", "--trials", "10"]) == 2
    assert "one (p, q) pair" in capsys.readouterr().err
    assert main(["simulate", "--p", "0.5,0.5", "--q", "0.5,0.5", "--methods", "spechubb"]) == 2
    assert "did you mean 'spechub'" in capsys.readouterr().err
    assert main(["simulate", "--p", "0.5,0.5", "--q", "0.5,0.5", "--n", "10"]) == 2  # the old name of --trials
    assert "`--n` is now `--trials`" in capsys.readouterr().err


def test_grouped_residuals_in_blocks_equal_one_block(monkeypatch):
    import spechub_theory.montecarlo.kernels as mc

    rng = np.random.default_rng(5)
    p, q = rng.dirichlet(np.ones(8)), rng.dirichlet(np.ones(8))
    ver = resolve_verifier(MUTANTS["rrs_skip_duplicates"])
    drafts, u = ver.sample(q, 3, 5000, rng), rng.random((5000, 4))
    whole = _verify_chunk(ver, p, q, drafts, u)
    monkeypatch.setattr(mc, "GROUP_BLOCK_ENTRIES", 3 * 8)  # three tuples per block
    np.testing.assert_array_equal(_verify_chunk(ver, p, q, drafts, u).token, whole.token)


@pytest.mark.parametrize("case", ["onehot_q", "p_equals_q", "zeros"])
def test_rrs_wor_fast_path_edge_cases_equal_verify(case):
    rng = np.random.default_rng(9)
    p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
    if case == "onehot_q":
        q = np.eye(6)[2]
    elif case == "p_equals_q":
        p = q
    else:
        p[[0, 3]], q[[1, 3]] = 0.0, 0.0
        p, q = p / p.sum(), q / q.sum()
    drafts = sample_drafts(q, 2, method="rrs_wor", size=20000, rng=rng)
    u = rng.random((20000, 3))
    _assert_coupled("rrs_wor", p, q, drafts, u, _verify_chunk(resolve_verifier("rrs_wor"), p, q, drafts, u))
    r = simulate(p, q, 2, method="rrs_wor", n_trials=200_000, rng=1)
    assert r.confidence_interval(0.999).contains(r.exact) and matches_target(r, p, alpha=1e-3).passed


def test_progress_bar_reaches_100_percent(capsys):
    assert main(["simulate", "--p", "0.5,0.5", "--q", "0.9,0.1", "--trials", "300000", "--methods", "rrs", "kseq",
                 "--progress", "--json"]) == 0
    captured = capsys.readouterr()
    assert "100%" in captured.err and "kseq" in captured.err
    assert json.loads(captured.out)["methods"]["kseq"]["lossless"]
