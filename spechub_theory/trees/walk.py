r"""Tree speculative decoding, one step: draft a token tree level by level, then walk it.

Convention: p = target, q = draft; ``p[v]``, ``q[v]`` are the next-token laws *after* node v
(shape (size, n)). Children of v are drafted from the method's draft law at k = len(children)
(hub law for SpecHub, i.i.d. for RRS/K-SEQ, without replacement for RRS w/o), so a mixed tree such
as ``[2, 1, 1, 2]`` gets per-parent drafts by construction (the authors' gather bug,
seed-notes 1.5 item 1, cannot happen). The walk verifies the children of the current node with
the method's node rule, moves to the accepted child, and ends with the residual token on a
rejection or a sample from p at a leaf. Tokens per step = accepted drafts + 1.
"""

from __future__ import annotations

import numpy as np

from ..methods import get_method
from ..methods.base import verify_from_rule
from .sequence_rules import SEQUENCE_METHODS, walk_by_rule
from .shapes import Tree
from .walk_result import TreeWalk
from ..verification import check_method_k

__all__ = ["TreeWalk", "resolve_method", "tree_for_method", "draft_tree_level", "draft_tree", "draft_trees", "walk_tree", "walk_trees"]


def resolve_method(method):
    """Look up a node-level or a sequence-level method.

    A node-level method module (:func:`~spechub_theory.methods.get_method`) or a sequence-level
    one (``block``, ``traversal``: :data:`~spechub_theory.trees.sequence_rules.SEQUENCE_METHODS`).

    Parameters
    ----------
    method : str or module
        A method name or method object.

    Returns
    -------
    module or object
        The method.

    Raises
    ------
    ValueError
        If ``method`` names neither kind of method.
    """
    try:
        return get_method(method)
    except ValueError:
        if isinstance(method, str) and method in SEQUENCE_METHODS:
            return SEQUENCE_METHODS[method]
        raise


def tree_for_method(tree: Tree, method) -> Tree:
    """The tree a method actually drafts.

    That is ``tree`` itself, except for a single-draft method (``FIXED_K = 1``, i.e. ``single``)
    on a tree with branching, which is defined as the chain with the same number of draft levels
    (``Tree.chain(tree.depth)``).

    Parameters
    ----------
    tree : Tree
        The requested tree.
    method : str or module
        The method.

    Returns
    -------
    Tree
        The tree the method drafts.

    Raises
    ------
    ValueError
        If the method verifies a fixed number of drafts per node that the tree does not have.

    Examples
    --------
    >>> tree_for_method(Tree.from_name("2^3"), "single").parents
    (-1, 0, 1)
    >>> tree_for_method(Tree.from_name("2^3"), "rrs").size
    7
    """
    m = resolve_method(method)
    if m.FIXED_K is not None and any(len(kids) not in (0, m.FIXED_K) for kids in tree.children):
        if m.FIXED_K != 1:  # pragma: no cover - no such method today
            raise ValueError(f"method {m.NAME!r} verifies exactly {m.FIXED_K} drafts per node; tree has other counts.")
        return Tree.chain(tree.depth)
    return tree


def draft_tree_level(method, q_rows, counts, rng) -> list[np.ndarray]:
    """Children tokens for the nodes of one level.

    Parameters
    ----------
    method : str or module
    q_rows : ndarray, shape (m, n)   draft laws after each node of the level
    counts : sequence of int, length m   children per node
    rng : numpy Generator

    Returns
    -------
    list of m int64 arrays (the i-th has ``counts[i]`` tokens, in slot order). Nodes with the same
    child count are sampled in one batched call. O(k n) per node.
    """
    m = resolve_method(method)
    q_rows = np.asarray(q_rows, dtype=np.float64)
    counts = [int(c) for c in counts]
    out: list[np.ndarray] = [np.zeros(0, dtype=np.int64) for _ in counts]
    for c in sorted(set(counts) - {0}):
        idx = [i for i, ci in enumerate(counts) if ci == c]
        tuples = m.LAW.sample(q_rows[idx], c, rng=rng)
        for row, i in enumerate(idx):
            out[i] = tuples[row]
    return out


def draft_tree(method, tree: Tree, q_of, rng) -> np.ndarray:
    """Draft every node of ``tree``: one tree of :func:`draft_trees`.

    Parameters
    ----------
    method : str or module
        The method (its draft law).
    tree : Tree
        The tree to draft.
    q_of : callable
        ``q_of(level_nodes, tokens) -> (len(level_nodes), n)``: the draft laws after the given
        nodes (tokens so far are passed for synthetic/real models).
    rng : numpy.random.Generator
        The random source.

    Returns
    -------
    numpy.ndarray
        The token of each node, shape (size,) (root entry -1, filled by the caller).
    """
    return draft_trees(method, tree, lambda nodes, toks: np.asarray(q_of(nodes, toks[0]))[None], rng, batch=1)[0]


def draft_trees(method, tree: Tree, q_of, rng, *, batch: int) -> np.ndarray:
    """Draft ``batch`` independent copies of ``tree`` at once.

    Parameters
    ----------
    method : str or module
    tree : Tree
    q_of : callable ``q_of(level_nodes, tokens) -> (batch, len(level_nodes), n)``
        Draft laws after the given nodes of each copy; ``tokens`` (batch, size) holds the tokens
        drafted so far (ancestors of ``level_nodes`` are filled).
    rng : numpy Generator
    batch : int

    Returns
    -------
    ndarray of int64, shape (batch, size): token of each node (root column -1).

    Notes
    -----
    Level by level; the children of every node are drafted from that node's own q with the
    method's law at k = its number of children, one batched sampler call per distinct k and level.
    O(batch * size * k n).
    """
    m = resolve_method(method)
    tokens = np.full((batch, tree.size), -1, dtype=np.int64)
    for level in tree.levels[:-1]:
        parents = [v for v in level if tree.children[v]]
        if not parents:
            continue
        q_rows = np.asarray(q_of(parents, tokens), dtype=np.float64)  # [batch, len(parents), n]
        for c in sorted({len(tree.children[v]) for v in parents}):
            sel = [i for i, v in enumerate(parents) if len(tree.children[v]) == c]
            kids = np.array([tree.children[parents[i]] for i in sel], dtype=np.int64)  # [len(sel), c]
            rows = q_rows[:, sel].reshape(-1, q_rows.shape[-1])
            tokens[:, kids] = m.LAW.sample(rows, check_method_k(m, c), rng=rng).reshape(batch, len(sel), c)
    return tokens


def walk_tree(tree: Tree, method, tokens, p, q, rng) -> TreeWalk:
    """Verify a drafted tree and return the accepted path and emitted tokens.

    Parameters
    ----------
    tree : Tree
        The drafted tree.
    method : str or module
        The method.
    tokens : array_like of int, shape (size,)
        Drafted token of each node (root ignored).
    p, q : array_like, shape (size, n) or callables ``f(v) -> (n,)``
        Target / draft next-token laws after each node (only rows of visited nodes are read).
    rng : numpy.random.Generator
        Fresh uniforms for this step.

    Returns
    -------
    TreeWalk
        The accepted path and the emitted tokens.

    Notes
    -----
    O(depth * k n): one node rule per visited node. One tree of :func:`walk_trees`.
    """
    get_p = p if callable(p) else (lambda v, a=np.asarray(p, dtype=np.float64): a[v])
    get_q = q if callable(q) else (lambda v, a=np.asarray(q, dtype=np.float64): a[v])

    def rows_of(get):
        return lambda seqs, nodes: np.stack([np.asarray(get(int(v)), dtype=np.float64) for v in nodes])

    tokens = np.asarray(tokens, dtype=np.int64)[None]
    return walk_trees(tree, method, tokens, rows_of(get_p), rows_of(get_q), rng)[0]


def walk_trees(tree: Tree, method, tokens, p_of, q_of, rng) -> list[TreeWalk]:
    """Verify ``batch`` drafted copies of ``tree`` at once.

    Parameters
    ----------
    tree : Tree
    method : str or module
    tokens : array_like of int, shape (batch, size)
    p_of, q_of : callables ``f(seqs, nodes) -> (len(seqs), n)``
        Target / draft laws after node ``nodes[i]`` of copy ``seqs[i]``.
    rng : numpy Generator

    Returns
    -------
    list of :class:`TreeWalk`, one per copy.

    Notes
    -----
    All copies advance one level per round; at each round the copies standing on nodes with the
    same number of children are verified in one batched node rule (uniforms ``(m, k + 1)``),
    and those standing on leaves draw the bonus token from p by inverse CDF. O(batch * depth * k n).
    """
    m = resolve_method(method)
    tokens = np.asarray(tokens, dtype=np.int64)
    batch = tokens.shape[0]
    if getattr(m, "tree_rule", None) is not None:  # sequence-level: the whole tree at once
        return _walk_sequence_level(tree, m, tokens, p_of, q_of, rng)
    kid_count = np.array([len(kids) for kids in tree.children])
    cur = np.zeros(batch, dtype=np.int64)
    live = np.ones(batch, dtype=bool)
    paths = [[0] for _ in range(batch)]
    emitted: list[list[int]] = [[] for _ in range(batch)]
    visited: list[list[int]] = [[] for _ in range(batch)]
    slots: list[list[int]] = [[] for _ in range(batch)]
    while live.any():
        counts = np.where(live, kid_count[cur], -1)  # snapshot: every copy moves at most one level per round
        for c in sorted(set(counts[live].tolist())):
            seqs = np.flatnonzero(counts == c)
            nodes = cur[seqs]
            pv = np.asarray(p_of(seqs, nodes), dtype=np.float64)  # [m, n]
            if c == 0:  # leaves: bonus token from the target
                cdf = np.cumsum(pv, axis=-1)
                u = rng.random(len(seqs))
                y = np.minimum((cdf <= (u * cdf[:, -1])[:, None]).sum(axis=-1), pv.shape[-1] - 1)
                for s, tok in zip(seqs, y):
                    emitted[s].append(int(tok))
                live[seqs] = False
                continue
            check_method_k(m, c)
            kids = np.array([tree.children[v] for v in nodes], dtype=np.int64)  # [m, c]
            drafts = np.take_along_axis(tokens[seqs], kids, axis=1)
            res = verify_from_rule(m.rule(pv, q_of(seqs, nodes), drafts), drafts, rng.random((len(seqs), c + 1)))
            for i, s in enumerate(seqs):
                slot = int(res.slot[i])
                visited[s].append(int(nodes[i]))
                slots[s].append(slot)
                emitted[s].append(int(res.token[i]))
                if slot < 0:
                    live[s] = False
                else:
                    cur[s] = kids[i, slot]
                    paths[s].append(int(cur[s]))
    return [
        TreeWalk(path=tuple(paths[s]), tokens=tuple(emitted[s]), visited=tuple(visited[s]), slots=tuple(slots[s]))
        for s in range(batch)
    ]


def _walk_sequence_level(tree: Tree, m, tokens, p_of, q_of, rng) -> list[TreeWalk]:
    """Read p at every node and q at the internal nodes (a leaf's q is never used; p stands in),
    then verify with the method's tree rule (:func:`~spechub_theory.trees.sequence_rules.walk_by_rule`)."""
    batch = tokens.shape[0]
    seqs = np.repeat(np.arange(batch), tree.size)
    nodes = np.tile(np.arange(tree.size), batch)
    p = np.asarray(p_of(seqs, nodes), dtype=np.float64).reshape(batch, tree.size, -1)  # [batch, size, n]
    q = np.array(p)
    internal = [v for v in range(tree.size) if tree.children[v]]
    if internal:
        seqs = np.repeat(np.arange(batch), len(internal))
        rows = np.asarray(q_of(seqs, np.tile(internal, batch)), dtype=np.float64)
        q[:, internal] = rows.reshape(batch, len(internal), -1)
    return walk_by_rule(tree, m, tokens, p, q, rng)
