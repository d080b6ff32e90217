"""The tree-level exact code against the library-independent brute force of ``tests/reference.py``.

``reference.tree_step_law`` enumerates every drafted tree and integrates the verifier's uniforms
exactly, sharing no code with ``spechub_theory.trees`` (for node-level methods it takes only the
method's node rule, itself checked against ``reference.exact_law``; block and traversal are
written there from their papers). Compared with it, to 1e-12, on small trees and vocabularies
with zeros, one-hots, ties and q = p: the node-level DP (``trees.exact.exact_tree``), the
enumeration of drafted trees (``trees.sequence_exact.exact_sequence_tree`` and ``step_law``) and
the prefix DP of Traversal Verification (``trees.traversal_dp.traversal_exact``); and the chained
law of the first tokens equals the target's (losslessness, by the oracle alone). theory.md 1, 1.1.
"""

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import reference
from spechub_theory.methods import METHODS
from spechub_theory.montecarlo.sequence_mutants import SEQUENCE_MUTANTS
from spechub_theory.trees.exact import exact_tree
from spechub_theory.trees.sequence_exact import exact_sequence_tree, step_law
from spechub_theory.trees.shapes import Tree
from spechub_theory.trees.synthetic import make_pair
from spechub_theory.trees.traversal_dp import traversal_exact
from strategies import distributions

ATOL = 1e-12
#: small shapes: chains, one wide level, mixed per-node counts (``from_branching`` nests per node)
SHAPES = {"chain-1": "chain-1", "chain-3": "chain-3", "3": [3], "2,1": [2, 1], "1,2": [1, 2], "2^2": "2^2",
          "mixed": [[2], [1, 0]]}
CHAINS = ("chain-1", "chain-3")


def _tree(name) -> Tree:
    shape = SHAPES[name]
    return Tree.from_name(shape) if isinstance(shape, str) else Tree.from_branching(shape)


@st.composite
def finite_state_models(draw, max_n=3, max_contexts=3):
    """C contexts with their own p and q rows and an arbitrary next-context table (not only bigrams)."""
    n = draw(st.integers(2, max_n))
    C = draw(st.integers(1, max_contexts))
    target = [draw(distributions(n)) for _ in range(C)]
    draft = [draw(st.one_of(st.just(t), distributions(n))) for t in target]
    nxt = draw(st.lists(st.lists(st.integers(0, C - 1), min_size=n, max_size=n), min_size=C, max_size=C))
    return SimpleNamespace(target=np.array(target), draft=np.array(draft), next_context=np.array(nxt))


def _node_rule(m):
    def pair(p, q, drafts):
        r = m.rule(p, q, drafts)
        return r.accept, r.residual

    return pair


def _oracle(method):
    """Keyword arguments of the reference for a method name."""
    if method in ("block", "traversal"):
        return {"law": "iid", "verifier": method}
    m = METHODS[method]
    return {"law": m.LAW.name, "rule": _node_rule(m)}


def _usable(method, tree: Tree, n: int) -> bool:
    if method == "block" or METHODS.get(method) is METHODS["single"]:
        return tree.is_chain
    widest = max(len(kids) for kids in tree.children)
    return method == "traversal" or not (METHODS[method].LAW.distinct and widest > n)


def _reach(accepted_law):
    """P(accepted >= d) from P(accepted = d)."""
    return np.cumsum(accepted_law[::-1])[::-1]


def _same_law(a: dict, b: dict) -> float:
    return max(abs(a.get(key, 0.0) - b.get(key, 0.0)) for key in set(a) | set(b))


@pytest.mark.parametrize("method", sorted(METHODS))
@settings(max_examples=6)
@given(model=finite_state_models(), shape=st.sampled_from(sorted(SHAPES)))
def test_node_level_dp_and_enumeration_match_the_oracle(method, model, shape):
    tree = _tree(shape)
    assume(_usable(method, tree, model.target.shape[1]))
    dp = exact_tree(tree, method, model, kernel=False)
    enum = exact_sequence_tree(tree, method, model)
    for c in range(model.target.shape[0]):
        accepted = reference.tree_accepted_law(tree.children, model, c, **_oracle(method))
        expected = float(accepted @ (np.arange(len(accepted)) + 1.0))
        assert dp.tokens_per_step[c] == pytest.approx(expected, abs=ATOL)
        assert enum.tokens_per_step[c] == pytest.approx(expected, abs=ATOL)
        np.testing.assert_allclose(dp.reach[c, : len(accepted)], _reach(accepted), atol=ATOL)
        assert np.abs(dp.reach[c, len(accepted):]).max(initial=0.0) <= ATOL


@pytest.mark.parametrize("method", ["block", "traversal"])
@settings(max_examples=10)
@given(model=finite_state_models(), shape=st.sampled_from(sorted(SHAPES)))
def test_sequence_level_enumeration_and_dp_match_the_oracle(method, model, shape):
    tree = _tree(shape)
    assume(_usable(method, tree, model.target.shape[1]))
    enum = exact_sequence_tree(tree, method, model)
    dp = traversal_exact(tree, model) if method == "traversal" else None
    for c in range(model.target.shape[0]):
        accepted = reference.tree_accepted_law(tree.children, model, c, **_oracle(method))
        np.testing.assert_allclose(enum.reach[c, : len(accepted)], _reach(accepted), atol=ATOL)
        if dp is not None:
            np.testing.assert_allclose(dp.reach[c, : len(accepted)], _reach(accepted), atol=ATOL)


@pytest.mark.parametrize("method", ["rrs", "spechub", "block", "traversal"])
@settings(max_examples=6)
@given(model=finite_state_models(), shape=st.sampled_from(sorted(SHAPES)))
def test_step_law_matches_the_oracle_outcome_by_outcome(method, model, shape):
    """The joint law of (accepted drafts, final token) of one step, not only its mean."""
    tree = _tree(shape)
    assume(_usable(method, tree, model.target.shape[1]))
    for c in range(model.target.shape[0]):
        law = step_law(tree, method, model, c)
        library = {tuple(path) + (y,): float(law.final[i, y]) for i, path in enumerate(law.paths)
                   for y in range(law.final.shape[1]) if law.final[i, y] > 0}
        assert _same_law(library, reference.tree_step_law(tree.children, model, c, **_oracle(method))) <= ATOL


@pytest.mark.parametrize("method", sorted(METHODS) + ["block", "traversal"])
@settings(max_examples=4)
@given(model=finite_state_models(max_n=2, max_contexts=2), shape=st.sampled_from(["chain-3", "2,1", "1,2", "mixed"]))
def test_the_oracle_finds_every_verifier_lossless(method, model, shape):
    """Law of the first 3 generated tokens, steps chained, equals the target's (oracle only)."""
    tree = _tree(shape)
    assume(_usable(method, tree, model.target.shape[1]))
    for c in range(model.target.shape[0]):
        law = reference.tree_sequence_law(tree.children, model, c, 3, **_oracle(method))
        assert _same_law(law, reference.target_sequence_law(model, c, 3)) <= ATOL


@pytest.mark.parametrize("mutant", list(SEQUENCE_MUTANTS.values()), ids=lambda m: m.NAME)
def test_a_mutant_sequence_verifier_disagrees_with_the_oracle(mutant):
    """The comparison can fail: each planted bug moves the library's enumeration off the oracle."""
    pair = make_pair(vocab=3, mismatch=2.0, seed=6, zipf=0.5)  # the pair of test_sequence_verifiers' mutant test
    tree = _tree("chain-3" if mutant.chains_only else "2,1")
    real = "block" if mutant.chains_only else "traversal"
    gap = max(_same_law({tuple(p) + (y,): float(law.final[i, y]) for i, p in enumerate(law.paths) for y in range(3)},
                        reference.tree_step_law(tree.children, pair, c, **_oracle(real)))
              for c in range(3) for law in [step_law(tree, mutant, pair, c)])
    assert gap > 1e-3


def test_oracle_argument_errors():
    model = make_pair(vocab=2, seed=0)
    with pytest.raises(ValueError, match="give one of `rule` and `verifier`"):
        reference.tree_step_law([[1], []], model, 0, law="iid")
    with pytest.raises(ValueError, match="block verification needs a chain"):
        reference.tree_step_law([[1, 2], [], []], model, 0, law="iid", verifier="block")
