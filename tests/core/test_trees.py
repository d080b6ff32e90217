"""Token trees: names, structure, masks, subtree classes, and the batched draft/walk."""

import numpy as np
import pytest

from spechub_theory.trees.synthetic import make_pair
from spechub_theory.trees.simulation import decode_steps
from spechub_theory.trees.walk import draft_tree, draft_trees, tree_for_method, walk_tree, walk_trees
from spechub_theory.trees.shapes import Tree

# seed-notes.md section 2: sizes include the root; "k^d" has d levels counting the root
NAMED_SIZES = {"2^2": 3, "2^3": 7, "2^4": 15, "2^5": 31, "3^2": 4, "3^3": 13, "3^4": 40}


@pytest.mark.parametrize("name,size", NAMED_SIZES.items())
def test_named_trees_sizes_and_depths(name, size):
    k, d = map(int, name.split("^"))
    t = Tree.from_name(name)
    assert t.size == size == (k**d - 1) // (k - 1)
    assert t.depth == d - 1
    assert t.num_drafts == size - 1
    assert [len(level) for level in t.levels] == [k**j for j in range(d)]
    # seed growmaps: Successors[n] = [k n + 1, ..., k n + k]
    for v, kids in enumerate(t.children):
        if kids:
            assert kids == tuple(range(k * v + 1, k * v + k + 1))


def test_branching_lists_and_mixed_trees():
    t = Tree.from_branching([2, 1, 1, 2])
    assert t.size == 1 + 2 + 2 + 2 + 4
    assert t.branching == ((2,), (1, 1), (1, 1), (2, 2))
    assert Tree.from_branching(t.branching) == t
    assert Tree.from_name("2,1,1,2") == t
    assert Tree.from_name("4,2,1").size == 1 + 4 + 8 + 8
    ragged = Tree.from_branching([[2], [0, 1]])
    assert ragged.parents == (-1, 0, 0, 2)
    assert ragged.leaves == (1, 3)


def test_chain():
    assert Tree.chain(3) == Tree.from_name("chain-3") == Tree.from_branching([1, 1, 1])
    assert Tree.chain(3).is_chain and not Tree.from_name("2^2").is_chain
    assert Tree.chain(0).size == 1


def test_ancestor_mask_depths_and_paths():
    t = Tree.from_name("3^3")
    mask = t.ancestor_mask
    for v in range(t.size):
        path = t.path_to(v)
        assert path[0] == 0 and path[-1] == v
        assert set(np.flatnonzero(mask[v])) == set(path)
        assert t.depths[v] == len(path) - 1  # position offset of the node
    assert t.slot.tolist()[:4] == [-1, 0, 1, 2]


def test_from_parents_renumbers_breadth_first():
    t = Tree.from_parents([-1, 0, 1, 0])  # node 3 is a child of the root: becomes node 2
    assert t.parents == (-1, 0, 0, 1)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: Tree.from_name("2x4"), "is not 'k\\^d'"),
        (lambda: Tree.from_name("0^3"), "k and d must be >= 1"),
        (lambda: Tree.from_branching([[2], [1]]), "lists 1 branch counts for 2 nodes"),
        (lambda: Tree.from_branching([-1]), "negative branch count"),
        (lambda: Tree((0, 0)), "must start with -1"),
        (lambda: Tree((-1, 1)), "must be an earlier node"),
        (lambda: Tree.chain(-1), "`length` must be an integer >= 0"),
    ],
)
def test_tree_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("name", ["2^4", "3^3", "2,1,1,2", "chain-3"])
def test_subtree_classes_group_equal_shapes(name):
    t = Tree.from_name(name)
    cls = t.subtree_classes
    for c, kids in enumerate(cls.children):
        assert all(k < c for k in kids)  # bottom-up numbering
    for v in range(t.size):
        assert cls.children[cls.of_node[v]] == tuple(cls.of_node[c] for c in t.children[v])
    if name in ("2^4", "3^3"):
        assert len(cls.children) == t.depth + 1


def test_to_dict():
    d = Tree.from_name("2^3").to_dict()
    assert d == {"parents": [-1, 0, 0, 1, 1, 2, 2], "size": 7, "depth": 2, "branching": [[2], [2, 2]]}


def test_single_uses_the_chain_of_the_tree_depth():
    assert tree_for_method(Tree.from_name("3^4"), "single") == Tree.chain(3)
    assert tree_for_method(Tree.chain(2), "single") == Tree.chain(2)
    assert tree_for_method(Tree.from_name("3^4"), "spechub") == Tree.from_name("3^4")


@pytest.mark.parametrize("method", ["rrs", "spechub"])
def test_walk_tree_is_one_copy_of_walk_trees(method):
    """The single-step walk and the batched walk consume the same uniforms the same way."""
    pair = make_pair(8, mismatch=1.0, seed=3)
    tree = Tree.from_name("2^3")
    q = np.tile(pair.draft[2], (tree.size, 1))
    p = np.tile(pair.target[2], (tree.size, 1))
    tokens = draft_tree(method, tree, lambda nodes, toks: q[list(nodes)], np.random.default_rng(0))
    batched = draft_trees(method, tree, lambda nodes, toks: q[list(nodes)][None], np.random.default_rng(0), batch=1)
    assert tokens.tolist() == batched[0].tolist()
    one = walk_tree(tree, method, tokens, p, q, np.random.default_rng(7))
    many = walk_trees(tree, method, tokens[None], lambda s, v: p[v], lambda s, v: q[v], np.random.default_rng(7))
    assert one == many[0]
    assert one.path[0] == 0 and len(one.tokens) == one.accepted + 1


def test_walk_with_identical_models_accepts_the_first_draft_everywhere():
    pair = make_pair(6, mismatch=0.0, seed=1)
    walks = decode_steps(Tree.from_name("3^3"), "rrs_wor", pair, np.arange(6), np.random.default_rng(0))
    for w in walks:
        assert w.slots == (0, 0) and w.accepted == 2
