"""Verification from explicit uniforms: deterministic, coupled, and consistent with the node rule."""

import numpy as np
import pytest

from spechub_theory.methods import METHODS
from spechub_theory.verification import output_law, sample_drafts, verify

P = np.array([0.1, 0.2, 0.3, 0.4])
Q = np.array([0.4, 0.3, 0.2, 0.1])


@pytest.mark.parametrize("method", list(METHODS))
def test_same_uniforms_same_output(method):
    k = METHODS[method].FIXED_K or 2
    rng = np.random.default_rng(0)
    drafts = sample_drafts(Q, k, method=method, size=1000, rng=rng)
    u = rng.random((1000, k + 1))
    a = verify(P, Q, drafts, u, method=method)
    b = verify(P, Q, drafts, u.copy(), method=method)
    assert (a.token == b.token).all() and (a.slot == b.slot).all()
    # accepted <=> the token is one of the drafts in the accepted slot
    acc = a.slot >= 0
    assert (a.token[acc] == drafts[acc, a.slot[acc]]).all()


@pytest.mark.parametrize("method", list(METHODS))
def test_monte_carlo_agrees_with_exact_law(method):
    """Third oracle: 200k verified draws, acceptance within 5 SE, output histogram chi-square."""
    from scipy import stats

    k = METHODS[method].FIXED_K or 2
    rng = np.random.default_rng(1)
    N = 200_000
    drafts = sample_drafts(Q, k, method=method, size=N, rng=rng)
    res = verify(P, Q, drafts, rng.random((N, k + 1)), method=method)
    exact = output_law(P, Q, k, method=method)
    rate = res.accepted.mean()
    assert abs(rate - exact.acceptance) <= 5 * np.sqrt(exact.acceptance * (1 - exact.acceptance) / N) + 1e-12
    counts = np.bincount(res.token, minlength=4)
    assert stats.chisquare(counts, P * N).pvalue > 1e-4


def test_verify_checks_inputs():
    with pytest.raises(ValueError, match="k \\+ 1 = 3 uniforms"):
        verify(P, Q, np.array([[0, 1]]), np.zeros((1, 2)), method="rrs")
    with pytest.raises(ValueError, match="token ids in \\[0, 4\\)"):
        verify(P, Q, np.array([[0, 9]]), np.zeros((1, 3)), method="rrs")
    with pytest.raises(ValueError, match="exactly 1 draft"):
        verify(P, Q, np.array([[0, 1]]), np.zeros((1, 3)), method="single")
    with pytest.raises(ValueError, match="did you mean 'rrs_wor'"):
        verify(P, Q, np.array([[0, 1]]), np.zeros((1, 3)), method="rrsw")


@pytest.mark.parametrize(
    "call, new_order",
    [
        (lambda: output_law("spechub", P, Q, 2), r"output_law\(p, q, k, method='spechub'\)"),
        (lambda: verify("rrs", P, Q, np.array([[0, 1]]), np.zeros((1, 3))), r"verify\(p, q, drafts, u, method='rrs'\)"),
        (lambda: sample_drafts("rrs", Q, 2), r"sample_drafts\(q, k, method='rrs'\)"),
        (lambda: output_law(METHODS["kseq"], P, Q, 2), r"output_law\(p, q, k, method='kseq'\)"),
    ],
)
def test_old_argument_order_is_refused_with_the_new_order(call, new_order):
    with pytest.raises(TypeError, match="`[pq]` must be an array of probabilities; got the .* now a keyword: " + new_order):
        call()
