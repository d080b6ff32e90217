r"""What an exact token-tree computation costs, stated before it starts, and refused beyond a limit.

Convention: p = target, q = draft, last axis = vocabulary (n tokens, C contexts of the model).
Source: issue 15 ("Bad input and big trees"): a typo such as ``--tree 9^9`` must not look like a
hang. Costs are upper bounds in elementary operations (a multiply-add on one vocabulary entry):

* node-level DP (:func:`~spechub_theory.trees.exact.exact_tree`): for each distinct child count
  k, the draft law is enumerated per context: C * |support(k)| * (k + n), with |support| =
  n^k (i.i.d.), n!/(n-k)! (without replacement), n - k + 1 (hub set); plus the recursion,
  classes * C * n * (depth + C);
* Traversal Verification and block verification: the DP over path prefixes
  (:func:`~spechub_theory.trees.traversal_dp.traversal_exact`), C * sum_v n^depth(v) * k_v * n;
* any other tree rule (e.g. a mutant): exhaustive enumeration
  (:func:`~spechub_theory.trees.sequence_exact.exact_sequence_tree`), C * n^(size - 1) drafted trees,
  each verified in size * n.

:func:`exact_tokens_per_step` runs the computation that :func:`exact_cost` prices.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .sequence_exact import MAX_EXACT_TREES, enumeration_size, exact_sequence_tree
from .sequence_rules import SEQUENCE_METHODS, check_tree_for, get_tree_method
from .traversal_dp import MAX_PREFIXES, prefix_count, traversal_exact
from .exact import exact_tree
from .shapes import Tree
from .walk import tree_for_method

__all__ = [
    "MAX_TREE_NODES", "MAX_EXACT_OPERATIONS", "ANNOUNCE_SECONDS", "RATES", "ExactCost", "exact_cost", "check_exact_cost",
    "check_tree_name", "exact_tokens_per_step",
]

#: largest tree ``spechub tree`` builds (exact or simulated): 10^5 nodes is ~ a second per simulated step
MAX_TREE_NODES = 100_000
#: largest node-level exact computation started (about a minute: ~1.6e7 operations/s measured on
#: one core for RRS at k = 3, n = 50)
MAX_EXACT_OPERATIONS = 10**9
#: computations expected to take longer than this (seconds) are announced, with progress
ANNOUNCE_SECONDS = 3.0
#: measured throughput (units per second, one core, numpy): node-level DP operations, prefix-DP
#: operations, enumerated drafted trees (RRS k = 3, n = 50; traversal 2^4, n = 50; chain-3, n = 50)
RATES = {"operations": 1.6e7, "prefix operations": 7e6, "drafted trees": 5e4}

_SUPPORT = {
    "iid": lambda n, k: float(n) ** k if k * math.log10(max(n, 1)) < 300 else math.inf,
    "wor": lambda n, k: float(math.perm(n, k)) if k * math.log10(max(n, 1)) < 300 else math.inf,
    "hub": lambda n, k: float(max(n - k + 1, 1)),
}


@dataclass(frozen=True)
class ExactCost:
    """Cost of one exact computation.

    Attributes
    ----------
    method : str
    operations : float
        Upper bound on the work, in ``unit``.
    how : str
        What is enumerated, in words (for the announcement and the refusal).
    limit : float
    unit : str
    """

    method: str
    operations: float
    how: str
    limit: float
    unit: str = "operations"

    @property
    def feasible(self) -> bool:
        """Whether the computation is within the limit."""
        return self.operations <= self.limit

    @property
    def seconds(self) -> float:
        """Rough time on one core (:data:`RATES`)."""
        return self.operations / RATES.get(self.unit, RATES["operations"])

    @property
    def slow(self) -> bool:
        """Whether it is expected to take longer than :data:`ANNOUNCE_SECONDS`."""
        return self.seconds > ANNOUNCE_SECONDS

    def message(self) -> str:
        """One line: the method, what is enumerated and its cost against the limit.

        Returns
        -------
        str
        """
        return (f"exact {self.method!r}: {self.how}: ~{self.operations:.3g} {self.unit} (limit {self.limit:.3g}), "
                f"about {self.seconds:.0f} s")


def exact_cost(tree: Tree, method, n: int, contexts: int, *, limit: float = MAX_EXACT_OPERATIONS) -> ExactCost:
    """Cost of the exact tokens per step of ``method`` on ``tree`` with an (n, C) model (module docstring).

    Parameters
    ----------
    tree : Tree
        The draft tree.
    method : str
        A tree method name.
    n : int
        Vocabulary size.
    contexts : int
        Number of contexts C of the model.
    limit : float, optional
        Most operations allowed for the node-level DP.

    Returns
    -------
    ExactCost
        The operation bound, what is enumerated, and the limit that applies.
    """
    m, _ = get_tree_method(method)
    tree = check_tree_for(m, tree_for_method(tree, m))
    if _uses_dp(m):
        how = f"{contexts} contexts x path prefixes ({n}^depth per node, depth {tree.depth})"
        return ExactCost(m.NAME, prefix_count(tree, n, contexts), how, MAX_PREFIXES, "prefix operations")
    if getattr(m, "tree_rule", None) is not None:
        how = f"{contexts} contexts x {n}^{tree.size - 1} drafted trees, each verified in {tree.size} x {n}"
        return ExactCost(m.NAME, enumeration_size(tree, n, contexts), how, MAX_EXACT_TREES, "drafted trees")
    support = _SUPPORT.get(getattr(m.LAW, "name", ""), _SUPPORT["iid"])
    ks = sorted({len(c) for c in tree.children} - {0})
    ops = sum(contexts * support(n, k) * (k + n) for k in ks)
    classes = len(tree.subtree_classes.children)
    ops += classes * contexts * n * (tree.depth + contexts)
    how = f"{contexts} contexts x draft law enumerated at k = {', '.join(map(str, ks)) or '-'}"
    return ExactCost(m.NAME, float(ops), how, limit)


def check_exact_cost(tree: Tree, methods, n: int, contexts: int, *, limit: float = MAX_EXACT_OPERATIONS) -> list[ExactCost]:
    """The costs of every method, or one ValueError listing those beyond the limit, with the alternative.

    Parameters
    ----------
    tree : Tree
        The draft tree.
    methods : iterable of str
        Tree method names.
    n : int
        Vocabulary size.
    contexts : int
        Number of contexts C of the model.
    limit : float, optional
        Most operations allowed for the node-level DP.

    Returns
    -------
    list of ExactCost
        One cost per method, all within their limits.

    Raises
    ------
    ValueError
        If any method's exact computation exceeds its limit.
    """
    costs = [exact_cost(tree, m, n, contexts, limit=limit) for m in methods]
    bad = [c for c in costs if not c.feasible]
    if bad:
        raise ValueError(
            "; ".join(c.message() for c in bad)
            + f". Refused: the exact value cannot finish in reasonable time on a tree of {tree.size} nodes; "
            "use simulation only (--no-exact --steps 2000) or a smaller tree or --vocab."
        )
    return costs


def check_tree_name(name: str, *, max_nodes: int = MAX_TREE_NODES) -> None:
    """Refuse a tree name whose tree would exceed ``max_nodes`` nodes, before building it.

    ``"k^d"`` has (k^d - 1)/(k - 1) nodes (d for k = 1); a branching list has the product sums.

    Parameters
    ----------
    name : str
        A tree name for :meth:`Tree.from_name`.
    max_nodes : int, optional
        Largest number of nodes accepted.

    Raises
    ------
    ValueError
        If the named tree has more than ``max_nodes`` nodes.
    """
    text = str(name).strip()
    size = None
    m = re.fullmatch(r"(\d+)\^(\d+)", text)
    if m:
        k, d = int(m.group(1)), int(m.group(2))
        size = d if k == 1 else (k**d - 1) // (k - 1) if d < 64 else math.inf
    elif re.fullmatch(r"\d+(\s*,\s*\d+)*", text):
        level, size = 1, 1
        for c in (int(x) for x in text.split(",")):
            level *= c
            size += level
            if size > max_nodes:
                break
    elif re.fullmatch(r"chain-(\d+)", text):
        size = int(text.split("-")[1]) + 1
    if size is not None and size > max_nodes:
        raise ValueError(
            f"tree {name!r} has {size:.4g} nodes, above the limit of {max_nodes:,} nodes for token-tree "
            "computations (exact or simulated); use a smaller tree (e.g. '2^5', '3^4')."
        )


def exact_tokens_per_step(tree, method, model, *, outcomes: dict | None = None, progress=None):
    """Exact tokens per step of any method, by the computation :func:`exact_cost` prices.

    Node-level methods: the DP of :func:`~spechub_theory.trees.exact.exact_tree` (``outcomes`` is
    its cache); ``traversal`` and ``block``: :func:`~spechub_theory.trees.traversal_dp.traversal_exact`;
    any other tree rule: :func:`~spechub_theory.trees.sequence_exact.exact_sequence_tree`.

    Parameters
    ----------
    tree : Tree
        The draft tree.
    method : str
        A tree method name.
    model : SyntheticPair or object
        A finite-state model (see :func:`model_tables`).
    outcomes : dict, optional
        Cache of the node-level DP.
    progress : callable, optional
        Progress callback passed to the computation.

    Returns
    -------
    TreeExact
        The exact tokens per step and its details.
    """
    m, _ = get_tree_method(method)
    tree = Tree.from_name(tree) if isinstance(tree, str) else tree
    if _uses_dp(m):
        return traversal_exact(tree, model, method=m, progress=progress)
    if getattr(m, "tree_rule", None) is not None:
        return exact_sequence_tree(tree, m, model, progress=progress)
    return exact_tree(tree, m, model, outcomes=outcomes, progress=progress)


def _uses_dp(m) -> bool:
    return SEQUENCE_METHODS.get(m.NAME) is m
