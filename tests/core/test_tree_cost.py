"""Big trees and bad input for exact token-tree computations (issue 15): the cost is stated before
the work, a computation that cannot finish is refused at once with the limit and the alternative,
and ``spechub tree`` reports it in one line with exit status 2."""

import json

import pytest

from spechub_cli import main
from spechub_theory.trees.traversal_dp import traversal_exact
from spechub_theory.trees.synthetic import make_pair
from spechub_theory.trees.cost import check_exact_cost, check_tree_name, exact_cost, exact_tokens_per_step
from spechub_theory.trees.exact import exact_tree
from spechub_theory.trees.shapes import Tree


@pytest.mark.parametrize("argv, match", [
    (["--tree", "9^9"], r"'9\^9' has 4.843e\+07 nodes, above the limit of 100,000"),
    (["--tree", "5^6", "--steps", "0"], r"exact 'rrs': 50 contexts x draft law enumerated at k = 5: ~8.59e\+11 operations.*--no-exact --steps"),
    (["--tree", "2^5", "--methods", "traversal", "--steps", "0"], r"exact 'traversal'.*operations \(limit.*--no-exact"),
    (["--tree", "2^3", "--methods", "block", "--steps", "0"], r"'block' verifies a single chain"),
    (["--trees", "2^2,2^3", "--methods", "traversal"], r"table mode.*--tree"),
    (["--tree", "2^2", "--no-exact", "--steps", "0"], r"nothing to compute"),
])
def test_refusals_are_one_line_exit_2(argv, match, capsys):
    assert main(["tree", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("spechub tree: error:")
    assert __import__("re").search(match, err), err


def test_chain3_single_block_traversal_exact_json(capsys):
    """The issue's command, on a small vocabulary to keep the test quick."""
    assert main(["tree", "--tree", "chain-3", "--methods", "single,block,traversal", "--steps", "0", "--vocab", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["methods"]
    assert rows["block"]["exact"] == pytest.approx(rows["traversal"]["exact"], abs=1e-12)
    assert rows["block"]["exact"] >= rows["single"]["exact"] - 1e-12
    assert rows["block"]["positional_model"] is None


def test_simulation_only_mode(capsys):
    assert main(["tree", "--tree", "2^3", "--methods", "traversal,rrs", "--no-exact", "--steps", "256", "--vocab", "8", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["methods"]
    assert "exact" not in rows["traversal"] and rows["traversal"]["steps"] >= 256


def test_slow_exact_is_announced_with_progress(capsys, monkeypatch):
    monkeypatch.setattr("spechub_theory.trees.cost.ANNOUNCE_SECONDS", 0.0)
    assert main(["tree", "--tree", "3^3", "--methods", "traversal", "--steps", "0", "--vocab", "20"]) == 0
    err = capsys.readouterr().err
    assert "exact 'traversal': 20 contexts x path prefixes" in err and "traversal (exact): 20/20 contexts" in err


def test_costs_are_upper_bounds_and_dispatch_matches():
    pair = make_pair(4, seed=0)
    tree = Tree.from_name("2,1")
    for method in ("rrs", "spechub", "traversal"):
        cost = exact_cost(tree, method, 4, 4)
        assert cost.feasible and cost.operations > 0
    assert exact_tokens_per_step(tree, "traversal", pair).long_run == pytest.approx(traversal_exact(tree, pair).long_run, abs=1e-12)
    assert exact_tokens_per_step(tree, "rrs", pair).long_run == pytest.approx(exact_tree(tree, "rrs", pair).long_run, abs=1e-12)
    assert exact_cost(Tree.from_name("5^6"), "spechub", 50, 50).feasible  # the hub-set law has ~n tuples
    with pytest.raises(ValueError, match="Refused"):
        check_exact_cost(Tree.from_name("4^2"), ["rrs"], 2000, 2000)
    check_tree_name("chain-3")
    with pytest.raises(ValueError, match="nodes, above the limit"):
        check_tree_name("2,100,100,100")
