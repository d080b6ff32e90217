"""The shared sort (coverage.SortedPair: only the breakpoints in the window are sorted), the
bisection over breakpoints (coverage.first_true) and the K-SEQ / RRS w/o (k = 2) rates read from
it, against direct O(n)-per-value references; edge cases of the window and of the bracket.

theory.md 1 (A(c)), 2.4 (K-SEQ), 4.3 (RRS w/o, k = 2).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spechub_theory import acceptance_rates
from spechub_theory.methods._sorted import SortedPair, first_true
from spechub_theory.methods import kseq, rrs_wor
from strategies import pairs

ATOL = 1e-12


def _kseq_reference(p, q, k, steps=200):
    """K-SEQ rate by bisection on rho itself, A(rho) = sum min(p, rho q) summed directly."""

    def valid(rho):
        A = np.minimum(p, rho * q).sum()
        return 1.0 - (1.0 - A / rho) ** k <= A + 1e-14

    lo, hi = 1.0, float(k)
    if not valid(lo):
        for _ in range(steps):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if valid(mid) else (mid, hi)
    else:
        hi = 1.0
    return 1.0 - (1.0 - np.minimum(p, hi * q).sum() / hi) ** k


def _rrs_wor_reference(p, q):
    """theory.md 4.3 term by term, O(n) per rejected-first token; 1 - q_j as the sum of the others."""
    tv = np.maximum(q - p, 0).sum()
    r = np.maximum(p - q, 0) / tv if tv > 0 else np.zeros_like(p)
    total = np.minimum(p, q).sum()
    for j in np.flatnonzero(q > p):
        rest = np.delete(q, j).sum()
        second = np.minimum(np.delete(r, j), np.delete(q, j) / rest).sum() if rest > 0 else np.minimum(np.delete(r, j), 1 / (len(q) - 1)).sum()
        total += (q[j] - p[j]) * second
    return total


#: two tokens tie at p/q = 1.5, which is exactly K-SEQ's rho* for k = 2 (rho^2 - 2 rho + A(rho) = 0
#: with A(1.5) = 0.75); all entries are exact binary fractions
_TIES_AT_ROOT = (np.array([0.0, 0.1875, 0.1875, 0.625]), np.array([0.5, 0.125, 0.125, 0.25]))


def _edge_pairs():
    """Named (p, q) rows that hit the window and bracket edges."""
    q = np.array([0.4, 0.3, 0.2, 0.1])
    return {
        "p = q (no breakpoint above 1)": (q, q),
        "all ratios <= 1 but one": (np.array([0.4, 0.3, 0.1, 0.2]), q),
        "ties at a breakpoint": (np.array([0.1, 0.45, 0.3, 0.15]), np.array([0.4, 0.3, 0.2, 0.1])),
        "ties at the root": _TIES_AT_ROOT,
        "zeros in p": (np.array([0.0, 0.6, 0.4, 0.0]), q),
        "zeros in q (ratio inf)": (np.array([0.25, 0.25, 0.25, 0.25]), np.array([0.5, 0.5, 0.0, 0.0])),
        "one-hot q": (np.array([0.2, 0.5, 0.3, 0.0]), np.array([0.0, 1.0, 0.0, 0.0])),
        "one-hot p": (np.array([0.0, 0.0, 1.0, 0.0]), q),
        "ratio exactly k = 2": (np.array([0.2, 0.2, 0.4, 0.2]), np.array([0.3, 0.4, 0.2, 0.1])),
        "tiny remaining mass": (np.array([0.2, 0.5, 0.3]), np.array([1 - 2e-13, 1e-13, 1e-13])),
    }


@pytest.mark.parametrize("name", list(_edge_pairs()))
@pytest.mark.parametrize("k", [1, 2, 3])
def test_kseq_edges_match_direct_bisection(name, k):
    p, q = _edge_pairs()[name]
    assert float(kseq.acceptance(p, q, k)) == pytest.approx(_kseq_reference(p, q, k), abs=1e-10)


def test_kseq_root_on_tied_breakpoints():
    p, q = _TIES_AT_ROOT
    assert float(kseq.optimal_rho(p, q, 2)) == pytest.approx(1.5, abs=1e-12)
    assert float(kseq.acceptance(p, q, 2)) == pytest.approx(0.75, abs=ATOL)


@pytest.mark.parametrize("name", list(_edge_pairs()))
def test_rrs_wor_edges_match_term_by_term(name):
    p, q = _edge_pairs()[name]
    tol = 1e-9 if "tiny" in name else ATOL
    assert float(rrs_wor.acceptance(p, q, 2)) == pytest.approx(_rrs_wor_reference(p, q), abs=tol)


@given(pq=pairs(max_n=8), c=st.floats(1.0, 3.0))
def test_window_coverage_equals_direct_sum(pq, c):
    """A(c) = F[m] + c Qtail[m] read off the window, for c in [1, upper]: the tokens outside it
    enter only through the two sums."""
    p, q = pq
    sp = SortedPair(p, q, upper=3.0)
    assert float(sp.coverage(np.array([c]))[0]) == pytest.approx(np.minimum(p, c * q).sum(), abs=ATOL)
    window = (p > q) & (p <= 3.0 * q)
    finite = sp.ratio[0][np.isfinite(sp.ratio[0])]
    assert finite.size == window.sum() and np.all(np.diff(finite) >= 0)


def test_window_only_holds_breakpoints_and_pads():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(50, 0.5), size=6)
    q = rng.dirichlet(np.full(50, 0.5), size=6)
    sp = SortedPair(p, q, upper=2.0)
    counts = ((p > q) & (p <= 2.0 * q)).sum(axis=1)
    assert sp.ratio.shape == (6, max(counts.max(), 1))
    for b in range(6):
        real = sp.ratio[b, : counts[b]]
        assert np.all(np.diff(real) >= 0) and np.all((real >= 1) & (real <= 2))
        assert np.all(np.isinf(sp.ratio[b, counts[b]:])) and not sp.p[b, counts[b]:].any()


@pytest.mark.parametrize("seed", range(4))
def test_first_true_matches_a_scan(seed):
    rng = np.random.default_rng(seed)
    B, n = 50, 17
    flags = np.sort(rng.random((B, n)) < rng.random((B, 1)), axis=1)  # monotone: False..., True...
    lo = rng.integers(0, n + 1, size=B)
    hi = np.maximum(lo, rng.integers(0, n + 1, size=B))  # includes empty ranges lo == hi
    rows = np.arange(B)
    got = first_true(lambda i: flags[rows, i], lo, hi)
    want = [next((i for i in range(lo[b], hi[b]) if flags[b, i]), hi[b]) for b in range(B)]
    np.testing.assert_array_equal(got, want)


def test_narrow_windows_are_widened_not_misread():
    """A SortedPair whose window ends before the largest query (RRS w/o) or before k (K-SEQ)
    gives the same rates: the rows concerned are re-sorted."""
    rng = np.random.default_rng(1)
    q = rng.dirichlet(np.full(8, 0.5), size=40)
    q[:, 0] += 20  # peaked drafts: RRS w/o queries go far above p/q = 2
    q /= q.sum(axis=1, keepdims=True)
    p = rng.dirichlet(np.full(8, 0.5), size=40)
    tv = np.maximum(q - p, 0).sum(axis=1)
    assert np.all(rrs_wor.largest_query(q, tv) > 2)
    want = [_rrs_wor_reference(p[b], q[b]) for b in range(40)]
    np.testing.assert_allclose(rrs_wor.rate_sorted(SortedPair(p, q, upper=1.0)), want, atol=ATOL, rtol=0)
    np.testing.assert_allclose(kseq.rate_sorted(SortedPair(p, q, upper=1.5), 3), kseq.acceptance(p, q, 3), atol=ATOL, rtol=0)


def test_block_boundaries_do_not_change_rates(monkeypatch):
    """acceptance_rates works on blocks of rows; the split must not show in the results."""
    import importlib

    coverage = importlib.import_module("spechub_theory.methods._sorted")  # the package also exports a function `coverage`
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.full(30, 0.3), size=(5, 7))
    q = rng.dirichlet(np.full(30, 0.3), size=(5, 7))
    whole = acceptance_rates(p, q, 2)
    monkeypatch.setattr(coverage, "ROW_BLOCK_ENTRIES", 90)  # 3 rows per block
    blocks = acceptance_rates(p, q, 2)
    for name in whole.acceptance:
        np.testing.assert_allclose(blocks[name], whole[name], atol=ATOL, rtol=0)
    np.testing.assert_allclose(kseq.acceptance(p, q, 3), acceptance_rates(p, q, 3, methods=["kseq"])["kseq"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(rrs_wor.acceptance(p, q, 2), blocks["rrs_wor"], atol=ATOL, rtol=0)
    np.testing.assert_array_equal(blocks.hub, whole.hub)
    assert blocks["kseq"].shape == (5, 7)


def test_rates_renormalise_like_check_pq():
    """acceptance_rates renormalises block by block (check_pq_sums): the same rates as the
    methods' own acceptance, which renormalise the whole input through check_pq."""
    from spechub_theory.methods import METHODS

    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.full(12, 0.5), size=9) * (1 + 1e-8 * rng.standard_normal((9, 1)))
    q = rng.dirichlet(np.full(12, 0.5), size=9) * (1 - 3e-9)
    rates = acceptance_rates(p, q, 2)
    for name, m in METHODS.items():
        np.testing.assert_allclose(rates[name], m.acceptance(p, q, m.FIXED_K or 2), atol=ATOL, rtol=0)
