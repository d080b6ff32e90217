"""Exact tokens per step on token trees: DP vs Monte Carlo, closed forms, sequence losslessness,
the gather bug of the authors' code, and ``spechub tree``."""

import json

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from spechub_cli import main
from spechub_theory.methods import get_method
from spechub_theory.trees.synthetic import SyntheticPair, make_pair
from spechub_theory.trees.exact import exact_tree, node_outcomes, positional_model, tokens_per_step_table
from spechub_theory.trees.lossless import sequence_law, target_sequence_law
from spechub_theory.trees.simulation import decode_steps, simulate_tree_decoding
from spechub_theory.trees.walk import draft_trees
from spechub_theory.trees.shapes import Tree

from strategies import pairs

MULTI = ["spechub", "rrs", "rrs_wor", "kseq"]
ALL = ["single", *MULTI]
TREES = ["2^2", "2^3", "2^4", "2^5", "3^2", "3^3", "3^4"]
#: |simulated - exact| must be below this many standard errors (two-sided, ~1e-5 per test)
Z_MAX = 4.5


def context_free_pair(p, q) -> SyntheticPair:
    """A bigram pair whose laws do not depend on the context: i.i.d. acceptance across levels."""
    n = len(p)
    return SyntheticPair(np.tile(p, (n, 1)), np.tile(q, (n, 1)), order=1)


@pytest.fixture(scope="module")
def pair10():
    return make_pair(10, mismatch=1.2, seed=11)


@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_node_outcomes_match_the_method_closed_forms(method, k, pair10):
    if get_method(method).FIXED_K not in (None, k):
        pytest.skip("single verifies one draft")
    out = node_outcomes(method, pair10.target[:4], pair10.draft[:4], k)
    m = get_method(method)
    assert np.allclose(out.output(), pair10.target[:4], atol=1e-12)  # lossless at every context
    assert np.allclose(out.acceptance, m.acceptance(pair10.target[:4], pair10.draft[:4], k), atol=1e-9)
    assert np.allclose(out.positional, m.positional(pair10.target[:4], pair10.draft[:4], k), atol=1e-9)


@pytest.mark.parametrize("length", [1, 2, 4, 7])
def test_chain_reproduces_the_geometric_closed_form(length):
    """theory.md 1.1: a chain of L drafts with i.i.d. acceptance alpha gives (1 - a^(L+1)) / (1 - a)."""
    p, q = np.array([0.5, 0.3, 0.15, 0.05]), np.array([0.25, 0.25, 0.3, 0.2])
    alpha = np.minimum(p, q).sum()
    res = exact_tree(Tree.chain(length), "single", context_free_pair(p, q))
    expected = (1 - alpha ** (length + 1)) / (1 - alpha)
    assert np.allclose(res.tokens_per_step, expected, atol=1e-12)
    assert res.long_run == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("method", MULTI)
@pytest.mark.parametrize("name", ["2^4", "3^3"])
def test_context_free_complete_tree_is_sum_of_alpha_powers(method, name):
    p, q = np.array([0.4, 0.3, 0.2, 0.1]), np.array([0.1, 0.2, 0.3, 0.4])
    tree = Tree.from_name(name)
    k = len(tree.children[0])
    alpha = float(get_method(method).acceptance(p, q, k))
    pair = context_free_pair(p, q)
    expected = sum(alpha**j for j in range(tree.depth + 1))
    assert exact_tree(tree, method, pair).long_run == pytest.approx(expected, abs=1e-12)
    assert positional_model(tree, method, pair) == pytest.approx(expected, abs=1e-12)


@given(pairs(max_n=5, min_n=2), st.sampled_from(MULTI), st.sampled_from(["2^3", "3^2", "2,1,1,2"]))
def test_edge_case_pairs_are_lossless_and_geometric_on_trees(pq, method, name):
    """Zeros, one-hot q, ties, p = q: sequence law = target law, and the context-free DP equals
    the positional model (sum of alpha^j on complete trees)."""
    p, q = pq
    tree = Tree.from_name(name)
    assume(len(tree.children[0]) <= len(p))
    pair = context_free_pair(p, q)
    law = sequence_law(tree, method, pair, 0, 2)
    assert np.abs(law - target_sequence_law(pair, 0, 2)).max() < 1e-12
    res = exact_tree(tree, method, pair)
    assert res.long_run == pytest.approx(positional_model(tree, method, pair), abs=1e-12)


@pytest.mark.parametrize("method", MULTI)
@pytest.mark.parametrize("name", TREES)
def test_exact_dp_matches_monte_carlo_per_context(method, name, pair10):
    """Independent steps from uniformly drawn contexts: mean tokens = mean of the exact values."""
    steps = 3000
    contexts = np.random.default_rng(1).integers(0, pair10.num_contexts, steps)
    exact = exact_tree(name, method, pair10, kernel=False).tokens_per_step[contexts]
    sim = simulate_tree_decoding(name, method, pair10, steps, contexts=contexts, rng=2)
    x = sim.tokens.ravel()
    se = (x - exact).std(ddof=1) / np.sqrt(steps)  # paired: the per-context mean is subtracted
    assert abs(x.mean() - exact.mean()) < Z_MAX * se
    lo, hi = sim.confidence_interval(0.99999).to_list()
    assert lo < exact.mean() < hi


@pytest.mark.parametrize("method", ["spechub", "rrs_wor"])
def test_long_run_value_matches_an_evolving_decoding_run(method, pair10):
    res = exact_tree("2^3", method, pair10)
    assert np.allclose(res.step_kernel.sum(axis=1), 1.0)
    assert np.allclose(res.step_start_law @ res.step_kernel, res.step_start_law, atol=1e-12)
    sim = simulate_tree_decoding("2^3", method, pair10, 4096, runs=64, rng=3)
    lo, hi = sim.confidence_interval(0.99999).to_list()
    assert lo < res.long_run < hi
    assert sim.to_dict()["ci_method"].startswith("means of 64 independent runs")


@pytest.mark.slow
@pytest.mark.parametrize("method", MULTI)
@pytest.mark.parametrize("name", ["2^5", "3^4", "2,1,1,2"])
def test_exact_dp_matches_monte_carlo_large(method, name):
    pair = make_pair(12, order=2, mismatch=1.0, seed=5)
    res = exact_tree(name, method, pair)
    sim = simulate_tree_decoding(name, method, pair, 10_000, runs=100, rng=4)
    lo, hi = sim.confidence_interval(0.99999).to_list()
    assert lo < res.long_run < hi


@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("name", ["2^2", "2^3", "3^2", "2,1,1,2", "chain-2"])
@pytest.mark.parametrize("order", [1, 2])
def test_sequence_law_equals_the_target_law(method, name, order):
    """Sequence-level losslessness, exact: the first 3 generated tokens have the target's law."""
    pair = make_pair(3, order=order, mismatch=1.5, seed=order)
    for context in (0, pair.num_contexts - 1):
        law = sequence_law(name, method, pair, context, 3)
        assert np.abs(law - target_sequence_law(pair, context, 3)).max() < 1e-12


def test_sequence_law_errors():
    pair = make_pair(3)
    with pytest.raises(ValueError, match="`horizon` must be an integer >= 1"):
        sequence_law("2^2", "rrs", pair, 0, 0)
    with pytest.raises(ValueError, match="`context` must be a context id"):
        target_sequence_law(pair, 5, 1)


def _gathered_joint(tokens, parent_nodes, child_nodes, n):
    """Empirical joint law of (parent token, child token) pooled over the given node pairs."""
    joint = np.zeros((n, n))
    for u, v in zip(parent_nodes, child_nodes):
        np.add.at(joint, (tokens[:, u], tokens[:, v]), 1.0)
    return joint / joint.sum()


def test_mixed_branching_drafts_follow_their_own_parent():
    """seed-notes 1.5 item 1: on [2, 1, 1, 2] every one-child node must draft from its own parent's
    q. Checked against the exact law P(parent = x, child = y) = Q_slot(x) q(y | c + x); the seed's
    stride gather (node j of a one-child level reads the j-th of the 2-per-parent tokens) fails."""
    pair = make_pair(6, mismatch=1.0, seed=9)
    tree = Tree.from_branching([2, 1, 1, 2])
    batch, c0 = 40_000, 2
    state = np.zeros((batch, tree.size), dtype=np.int64)
    state[:, 0] = c0

    def q_of(nodes, tokens):
        for v in nodes:
            if v:
                state[:, v] = pair.next_context[state[:, tree.parents[v]], tokens[:, v]]
        return pair.draft[state[:, list(nodes)]]

    tokens = draft_trees("spechub", tree, q_of, np.random.default_rng(0), batch=batch)
    level1, level2 = tree.levels[1], tree.levels[2]
    support = get_method("spechub").LAW.enumerate(pair.draft[c0], 2)
    slot_law = [np.bincount(support.tuples[:, j], weights=support.mass, minlength=pair.vocab) for j in range(2)]
    exact = [slot_law[j][:, None] * pair.draft[pair.next_context[c0]] for j in range(2)]
    buggy = tokens.copy()
    buggy[:, level2[1]] = tokens[:, level1[1]]  # stride gather: node 2 of the level gets parent 0's 2nd token
    for j, (u, v) in enumerate(zip(level1, level2)):
        good = _gathered_joint(tokens, [u], [v], pair.vocab)
        bad = _gathered_joint(buggy, [u], [v], pair.vocab)
        se = np.sqrt(exact[j] * (1 - exact[j]) / batch) + 1e-12
        assert np.abs(good - exact[j]).max() < 5 * se.max()
        if j == 1:
            assert np.abs((bad - exact[j]) / se).max() > 10  # the check has power against the bug
    # and the whole step is exact on this tree: DP = Monte Carlo, sequence law = target law
    res = exact_tree(tree, "spechub", pair, kernel=False)
    walks = decode_steps(tree, "spechub", pair, np.full(20_000, c0), np.random.default_rng(1))
    x = np.array([len(w.tokens) for w in walks])
    assert abs(x.mean() - res.tokens_per_step[c0]) < Z_MAX * x.std() / np.sqrt(len(x))
    assert np.abs(sequence_law(tree, "spechub", make_pair(3, seed=2), 1, 3) - target_sequence_law(make_pair(3, seed=2), 1, 3)).max() < 1e-12


def test_positional_model_differs_when_acceptance_depends_on_the_context(pair10):
    """The positional model treats levels as independent; with context-dependent acceptance the
    exact value differs (the accepted token's context is not a typical context)."""
    res = exact_tree("2^5", "spechub", pair10)
    model = positional_model("2^5", "spechub", pair10, weights=res.target_law)
    assert abs(model - res.target_average) > 1e-4
    # depth 1 agrees exactly: one level has no correlation to ignore
    one = exact_tree("2^2", "spechub", pair10)
    assert positional_model("2^2", "spechub", pair10, weights=one.target_law) == pytest.approx(one.target_average, abs=1e-12)


def test_tokens_per_step_table_shape_and_order(pair10):
    table = tokens_per_step_table(pair10, ["2^2", "2^3", "3^2"], ["rrs", "spechub", "single"])
    assert table["nodes"] == [3, 7, 4]
    assert set(table["methods"]) == {"rrs", "spechub", "single"}
    for rows in table["methods"].values():
        assert len(rows["long_run"]) == 3 and all(1.0 <= v <= 3.0 for v in rows["long_run"])
    # more drafts at the same depth never hurt a method, here: 2^3 beats 2^2
    assert table["methods"]["spechub"]["long_run"][1] > table["methods"]["spechub"]["long_run"][0]


def test_exact_tree_errors(pair10):
    with pytest.raises(ValueError, match="is not one of"):
        exact_tree("2^2", "rrsw", pair10)
    with pytest.raises(ValueError, match="must have `target`, `draft` and `next_context`"):
        exact_tree("2^2", "rrs", object())
    with pytest.raises(ValueError, match="`steps` must be an integer >= 1"):
        simulate_tree_decoding("2^2", "rrs", pair10, 0)


def test_cli_tree_json(capsys):
    assert main(["tree", "--tree", "2^3", "--vocab", "10", "--steps", "256", "--runs", "16", "--json", "--methods", "rrs,spechub,single"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tree"] == "2^3" and out["nodes"] == 7
    for name in ("rrs", "spechub", "single"):
        row = out["methods"][name]
        assert set(row) >= {"exact", "simulated", "ci95", "per_level_acceptance"}
        assert len(row["per_level_acceptance"]) == 2
    assert out["methods"]["single"]["tree_used"] == "chain-2"
    assert out["meta"]["seed"] == 0


def test_cli_tree_errors_and_help(capsys):
    assert main(["tree", "--methods", "rrsw", "--steps", "0"]) == 2
    assert "did you mean" in capsys.readouterr().err
    assert main(["tree", "--tree", "2x3", "--steps", "0"]) == 2
    with pytest.raises(SystemExit):
        main(["tree", "--help"])
    assert "spechub tree --tree 2^4" in capsys.readouterr().out


def test_cli_tree_table_mode_reports_gaps_next_to_the_paper(capsys, tmp_path):
    out_file = tmp_path / "table.json"
    argv = ["tree", "--trees", "2^2,2^3", "--vocab", "8", "--methods", "rrs,rrs_wor,spechub", "--json", "--out", str(out_file)]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {**json.loads(out_file.read_text()), "meta": out["meta"]}
    assert out["nodes"] == [3, 7]
    gap = out["gaps"]["spechub-rrs"]
    assert gap["paper_mean"] == [0.056, 0.134]
    h, r = out["methods"]["spechub"]["long_run"], out["methods"]["rrs"]["long_run"]
    assert gap["synthetic"] == pytest.approx([a - b for a, b in zip(h, r)])
