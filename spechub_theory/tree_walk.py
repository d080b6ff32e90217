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

from dataclasses import dataclass

import numpy as np

from .methods import get_method
from .methods.base import verify_from_rule
from .trees import Tree
from .verification import check_method_k

__all__ = ["TreeWalk", "draft_tree_level", "draft_tree", "walk_tree"]


@dataclass(frozen=True)
class TreeWalk:
    """Result of one verification walk.

    Attributes
    ----------
    path : tuple of int
        Accepted nodes, root first (``path[0] == 0``).
    tokens : tuple of int
        Emitted tokens: the accepted drafts, then the bonus (leaf) or residual (rejection) token.
    visited : tuple of int
        Nodes at which a verification happened (internal nodes on the path), in order.
    slots : tuple of int
        Accepted slot at each visited node (-1 for the final rejection).
    """

    path: tuple
    tokens: tuple
    visited: tuple
    slots: tuple

    @property
    def accepted(self) -> int:
        """Number of accepted drafts (tokens per step minus one)."""
        return len(self.path) - 1


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
    m = get_method(method)
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
    """Draft every node of ``tree``; ``q_of(level_nodes, tokens) -> (len(level_nodes), n)`` returns
    the draft laws after the given nodes (tokens so far are passed for synthetic/real models).
    Returns the token of each node (root entry -1, filled by the caller)."""
    tokens = np.full(tree.size, -1, dtype=np.int64)
    for level in tree.levels[:-1]:
        parents = [v for v in level if tree.children[v]]
        if not parents:
            continue
        q_rows = q_of(parents, tokens)
        kids = draft_tree_level(method, q_rows, [len(tree.children[v]) for v in parents], rng)
        for v, toks in zip(parents, kids):
            tokens[list(tree.children[v])] = toks
    return tokens


def walk_tree(tree: Tree, method, tokens, p, q, rng) -> TreeWalk:
    """Verify a drafted tree and return the accepted path and emitted tokens.

    Parameters
    ----------
    tree : Tree
    method : str or module
    tokens : array_like of int, shape (size,)   drafted token of each node (root ignored)
    p, q : array_like, shape (size, n) or callables ``f(v) -> (n,)``
        Target / draft next-token laws after each node (only rows of visited nodes are read).
    rng : numpy Generator   fresh uniforms for this step

    Notes
    -----
    O(depth * k n): one node rule per visited node.
    """
    m = get_method(method)
    get_p = p if callable(p) else (lambda v, a=np.asarray(p, dtype=np.float64): a[v])
    get_q = q if callable(q) else (lambda v, a=np.asarray(q, dtype=np.float64): a[v])
    tokens = np.asarray(tokens, dtype=np.int64)
    v, path, emitted, visited, slots = 0, [0], [], [], []
    while True:
        kids = tree.children[v]
        pv = np.asarray(get_p(v), dtype=np.float64)
        if not kids:  # leaf: bonus token from the target
            cdf = np.cumsum(pv)
            emitted.append(int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(pv) - 1)))
            break
        check_method_k(m, len(kids))
        drafts = tokens[list(kids)]
        res = verify_from_rule(m.rule(pv, get_q(v), drafts), drafts, rng.random(len(kids) + 1))
        visited.append(v)
        slots.append(int(res.slot))
        emitted.append(int(res.token))
        if res.slot < 0:
            break
        v = kids[int(res.slot)]
        path.append(v)
    return TreeWalk(path=tuple(path), tokens=tuple(emitted), visited=tuple(visited), slots=tuple(slots))
