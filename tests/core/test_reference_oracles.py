"""Every method's fast path against the library-independent brute force of ``tests/reference.py``.

For each method of :data:`spechub_theory.methods.METHODS`: its node rule, averaged over the
reference enumeration of its draft law, emits p (1e-12), and its closed-form ``acceptance`` and
``positional`` equal that enumeration (1e-12); the library's own enumerations (``DraftLaw.enumerate``,
``output_law``) equal the reference too. theory.md 1, 3.2, 3.7.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import reference
from spechub_theory.draft_laws import get_law
from spechub_theory.methods import METHODS
from spechub_theory.montecarlo.mutants import MUTANTS
from spechub_theory.verification import output_law
from strategies import pairs

ATOL = 1e-12


def _as_pair(rule):
    """Adapt a library rule (returning a NodeRule) to the reference's (accept, residual) callable."""

    def pair(p, q, drafts):
        r = rule(p, q, drafts)
        return r.accept, r.residual

    return pair


def _k_for(m, n, k):
    kk = m.FIXED_K or k
    return None if (m.LAW.distinct and kk > n) else kk


@pytest.mark.parametrize("law", reference.LAWS)
@given(pq=pairs(max_n=5), k=st.integers(1, 3))
def test_library_draft_law_enumeration_equals_reference(law, pq, k):
    _, q = pq
    assume(law == "iid" or k <= len(q))
    expected = reference.draft_law(q, k, law)
    support = get_law(law).enumerate(q, k)
    got = {tuple(int(x) for x in t): float(m) for t, m in zip(support.tuples, support.mass)}
    assert set(got) == set(expected)
    assert max(abs(got[t] - expected[t]) for t in expected) <= ATOL


@pytest.mark.parametrize("method", list(METHODS))
@given(pq=pairs(max_n=5), k=st.integers(1, 3))
def test_method_is_lossless_and_its_rates_equal_the_reference(method, pq, k):
    p, q = pq
    m = METHODS[method]
    kk = _k_for(m, len(p), k)
    assume(kk is not None)
    output, acceptance, positional = reference.exact_law(_as_pair(m.rule), p, q, kk, m.LAW.name)
    assert np.abs(output - p).max() <= ATOL
    assert float(m.acceptance(p, q, kk)) == pytest.approx(acceptance, abs=ATOL)
    assert np.abs(m.positional(p, q, kk) - positional).max() <= ATOL
    law = output_law(p, q, kk, method=method)  # the library's own enumeration agrees with the reference
    assert np.abs(law.output - output).max() <= ATOL
    assert law.acceptance == pytest.approx(acceptance, abs=ATOL)


@pytest.mark.parametrize("name", list(MUTANTS))
def test_reference_catches_every_mutant(name):
    """The reference oracle has teeth: each broken verifier's output law misses p somewhere."""
    mutant = MUTANTS[name]
    rng = np.random.default_rng(5)
    worst = 0.0
    for _ in range(20):
        p, q = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(4))
        output, _, _ = reference.exact_law(_as_pair(mutant.rule), p, q, 2, mutant.LAW.name)
        worst = max(worst, float(np.abs(output - p).max()))
    assert worst > 1e-3


def test_reference_hub_law_is_theory_3_2():
    """Q(i, a) = q(i), Q(a, i) = q(a) q(i) / (1 - q(a)) (theory.md 3.2), hub a = argmax q."""
    q = np.array([0.2, 0.5, 0.3])
    law = reference.draft_law(q, 2, "hub")
    expected = {(0, 1): 0.2, (2, 1): 0.3, (1, 0): 0.5 * 0.2 / 0.5, (1, 2): 0.5 * 0.3 / 0.5}
    assert set(law) == set(expected)
    assert max(abs(law[t] - expected[t]) for t in law) <= 1e-15


def test_reference_imports_no_library_code():
    """tests/reference.py imports numpy, scipy and itertools only (issue 13 item 6)."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(reference.__file__).read_text())
    roots = {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    roots |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert roots <= {"__future__", "itertools", "numpy", "scipy"}, roots
