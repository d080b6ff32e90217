r"""Exact tokens per step of Traversal Verification (and block verification) by a DP over path prefixes.

Convention: p = target, q = draft, last axis = vocabulary; a model has ``target``, ``draft`` and
``next_context`` tables (C, n). Source: Weng, Hu et al., arXiv 2505.12398 (the rule, as in
:mod:`spechub_theory.trees.sequence_rules`); the DP is this project's (issue 15).

Why a DP exists. In the traversal every state update of a node v (its rho and target after each
rejected child) uses only v's own state, and v is entered from its parent's state after
slot(v) rejections. So rho and the target of v at every moment are functions of the tokens on the
path root -> v alone, not of the sibling subtrees. Given the path to v, the subtrees of v's
children are drafted independently, so with

.. math::
    S_c = \mathbb{E}_{x_c \sim q_v}\Big[(1 - \rho_c^{\rm test}) \prod_{c' \in {\rm kids}(c)} S_{c'}\Big]
    \quad\text{(the subtree of c is rejected entirely)},

    P(\text{end at } v, \text{path}) = Q(\text{path})\, \rho_v^{\rm test}
    \prod_{c \in {\rm kids}(v)} S_c \prod_{a \to b \text{ on the path}}\ \prod_{s \in {\rm kids}(a),\, {\rm slot}(s) < {\rm slot}(b)} S_s,

where Q(path) is the draft probability of the path's tokens: the tests before v are exactly v's
subtree and the subtrees of earlier siblings along the path (post-order). The emitted token is
drawn from v's final target. Cost per start context: sum_v n^depth(v) path prefixes, O(k_v n)
for an internal v and O(1) for a leaf: O(n^(depth+1) * width) instead of n^(size-1) drafted
trees for the enumeration. A chain is block verification (2403.10444 Alg. 2 = this rule on a
chain).
"""

from __future__ import annotations

import numpy as np

from ..methods.single import ratio_accept
from .sequence_rules import SEQUENCE_METHODS, rejected_child_update, check_tree_for, get_tree_method
from .markov import context_kernel, model_tables, stationary_law
from .exact import TreeExact
from .shapes import Tree

__all__ = ["MAX_PREFIXES", "prefix_count", "traversal_exact"]

#: operations (:func:`prefix_count`) the DP runs at most (about 45 s of numpy on one core)
MAX_PREFIXES = 3 * 10**8


def prefix_count(tree: Tree, n: int, contexts: int = 1) -> float:
    """Count the operations of the DP (``inf`` when beyond float range).

    contexts * (sum over internal v of n^depth(v) * k_v * n, plus n^depth(v) per leaf).

    Parameters
    ----------
    tree : Tree
        The draft tree.
    n : int
        Vocabulary size.
    contexts : int, optional
        Number of contexts.

    Returns
    -------
    float
        The operation count.
    """
    if tree.depth * np.log10(max(n, 1)) > 300:
        return float("inf")
    ops = sum(float(n) ** int(d) * (len(k) * n if k else 1) for d, k in zip(tree.depths, tree.children))
    return float(contexts) * ops


def traversal_exact(tree, model, *, method="traversal", progress=None) -> TreeExact:
    """Exact tokens per step, reach and step kernel of Traversal Verification (block on a chain).

    Parameters
    ----------
    tree : Tree or str
    model : SyntheticPair or any finite-state model
    method : {"traversal", "block"}
        ``block`` requires a chain (ValueError otherwise) and runs the same rule.
    progress : callable, optional
        ``progress(done, total)`` after each start context.

    Returns
    -------
    TreeExact

    Raises
    ------
    ValueError
        When the prefixes exceed :data:`MAX_PREFIXES` (with the alternative), or block off a chain.
    """
    m, _ = get_tree_method(method)
    if m not in (SEQUENCE_METHODS["traversal"], SEQUENCE_METHODS["block"]):
        raise ValueError(f"`method` must be 'traversal' or 'block' for this DP; got {m.NAME!r}.")
    tree = check_tree_for(m, Tree.from_name(tree) if isinstance(tree, str) else tree)
    tables = model_tables(model)
    C, n = tables.p.shape
    count = prefix_count(tree, n, C)
    if count > MAX_PREFIXES:
        raise ValueError(
            f"exact {m.NAME!r} on a tree of {tree.size} nodes (depth {tree.depth}) runs over {C} contexts x "
            f"the path prefixes ({n}^depth per node): {count:.3g} operations, above the limit {MAX_PREFIXES:.3g}; "
            "use simulation only (--no-exact --steps N) or a smaller tree or vocabulary."
        )
    depth = tree.depth
    tokens = np.zeros(C)
    reach = np.zeros((C, depth + 1))
    kernel = np.zeros((C, C))
    for c in range(C):
        per_depth, row = _one_context(tree, tables, c)
        tokens[c] = per_depth @ (np.arange(depth + 1) + 1.0)
        reach[c] = np.cumsum(per_depth[::-1])[::-1]
        kernel[c] = row
        if progress is not None:
            progress(c + 1, C)
    return TreeExact(
        tree=tree, method=m.NAME, tokens_per_step=tokens, reach=reach,
        target_law=stationary_law(context_kernel(tables.next_context, tables.p)),
        step_kernel=kernel, step_start_law=stationary_law(kernel),
    )


def _one_context(tree: Tree, tables, context: int):
    """(P(end depth = d) for d = 0..depth, law of the next context) from one start context."""
    p, q, N = tables.p, tables.q, tables.next_context
    C, n = p.shape
    kids = tree.children
    # top-down: per node, arrays over its path prefixes (prefix index of a child = parent index * n + x)
    ctx = {0: np.array([context])}
    mass = {0: np.ones(1)}
    enter_rho = {0: np.ones(1)}
    test_rho, final = {}, {}
    for v in range(tree.size):  # breadth-first: parents first
        rho = enter_rho[v]
        if not kids[v]:
            test_rho[v] = rho
            continue
        t = p[ctx[v]]  # [P_v, n]
        qv = q[ctx[v]]
        for child in kids[v]:  # child j sees v's state after j rejections
            enter = ratio_accept(rho[:, None] * t, qv)  # [P_v, n]: rho_child for every token x
            enter_rho[child] = enter.ravel()
            mass[child] = (mass[v][:, None] * qv).ravel()
            ctx[child] = N[ctx[v]].ravel()
            rho, t = rejected_child_update(rho, t, qv)
        test_rho[v], final[v] = rho, t
    # bottom-up: S[c] over the parent's prefixes = P(subtree of c entirely rejected | parent prefix)
    below = {v: np.ones(len(mass[v])) for v in range(tree.size)}  # prod of S over v's children
    S = {}
    for v in range(tree.size - 1, 0, -1):
        u = tree.parents[v]
        rejected = (1.0 - test_rho[v]) * below[v]  # [P_v]
        S[v] = (q[ctx[u]] * rejected.reshape(-1, n)).sum(axis=1)  # [P_u]
        below[u] = below[u] * S[v]
    # top-down: the earlier-sibling factor, then the end mass of every node
    before = {0: np.ones(1)}
    per_depth = np.zeros(tree.depth + 1)
    row = np.zeros(C)
    leaf_ctx = np.zeros(C)  # end mass of the leaves per context after them: they emit from p
    for v in range(tree.size):
        end = mass[v] * before[v] * below[v] * test_rho[v]  # [P_v]
        per_depth[tree.depths[v]] += end.sum()
        if v in final:
            row += np.bincount(N[ctx[v]].ravel(), weights=(end[:, None] * final[v]).ravel(), minlength=C)
        else:
            leaf_ctx += np.bincount(ctx[v], weights=end, minlength=C)
        earlier = np.ones(len(mass[v]))
        for child in kids[v]:
            before[child] = np.repeat(before[v] * earlier, n)
            earlier = earlier * S[child]
    return per_depth, row + leaf_ctx @ context_kernel(N, p)
