r"""Exact laws of one tree-verification step by enumerating every drafted tree (any tree rule).

Convention: p = target, q = draft, last axis = vocabulary; a model has ``target``, ``draft`` and
``next_context`` tables (C, n) (:class:`~spechub_theory.trees.synthetic.SyntheticPair`). Source:
theory.md 1 (losslessness), 1.1 (tokens per step); issue 15.

A step from context c drafts the tree level by level (children of v from the method's draft law
at v's context) and verifies it with a tree rule (:mod:`spechub_theory.trees.sequence_rules`). All
drafted trees are enumerated with their masses, so the law of the emitted sequence (accepted
path, then the final token), the tokens per step and the law of the next step's context are
exact sums: **exhaustive enumeration**, at most C * prod_v n^(k_v) = C * n^(size - 1) trees for
i.i.d. drafts (zero-mass branches are dropped), each verified in O(size * n). Sequence-level
verifiers need it, because their decisions depend on the whole drafted tree; node-level methods
run through it too (their :func:`~spechub_theory.trees.sequence_rules.node_tree_rule`), which checks it
against the node-level DP of :mod:`spechub_theory.trees.exact`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sequence_rules import check_tree_for, get_tree_method
from .markov import model_tables, stationary_law, context_kernel
from .exact import TreeExact
from .walk import tree_for_method
from .shapes import Tree

__all__ = [
    "MAX_EXACT_TREES",
    "StepLaw",
    "enumeration_size",
    "check_enumeration",
    "step_law",
    "exact_sequence_tree",
    "sequence_law_enumerated",
]

#: contexts x drafted trees an exact computation enumerates at most (about a minute of numpy)
MAX_EXACT_TREES = 2 * 10**7
#: drafted trees verified per batch (bounds memory to ~ CHUNK * size * n floats)
_CHUNK = 8192


@dataclass(frozen=True)
class StepLaw:
    """Exact law of one step from one context, as a list of weighted outcomes.

    Attributes
    ----------
    paths : tuple of tuple of int
        Accepted draft tokens of each outcome (possibly empty).
    final : ndarray, shape (m, n)
        Mass of each emitted final token for each path (rows sum to the path's probability).
    context_after : ndarray of int, shape (m,)
        Context after the path's tokens (before the final token).
    """

    paths: tuple
    final: np.ndarray
    context_after: np.ndarray

    @property
    def tokens_per_step(self) -> float:
        """E[accepted drafts + 1]."""
        return float(sum((len(path) + 1) * self.final[i].sum() for i, path in enumerate(self.paths)))

    def reach(self, depth: int) -> np.ndarray:
        """P(the accepted path has >= d drafts), d = 0..depth.

        Parameters
        ----------
        depth : int

        Returns
        -------
        numpy.ndarray
        """
        mass = np.array([self.final[i].sum() for i in range(len(self.paths))])
        lengths = np.array([len(path) for path in self.paths])
        return np.array([mass[lengths >= d].sum() for d in range(depth + 1)])


def enumeration_size(tree: Tree, n: int, contexts: int = 1) -> float:
    """Upper bound on the drafted trees an exact computation enumerates: contexts * n^(size - 1).

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
        The bound (``inf`` beyond float range).
    """
    if (tree.size - 1) * np.log10(max(n, 1)) > 300:  # beyond float64: no enumeration of that size runs anyway
        return float("inf")
    return float(contexts) * float(n) ** (tree.size - 1)


def check_enumeration(tree: Tree, method_name: str, n: int, contexts: int, *, limit: int = MAX_EXACT_TREES) -> float:
    """The enumeration size, or a ValueError with the limit and the alternative when it exceeds ``limit``.

    Parameters
    ----------
    tree : Tree
        The draft tree.
    method_name : str
        The method's name, for the error message.
    n : int
        Vocabulary size.
    contexts : int
        Number of contexts.
    limit : int, optional
        Most drafted trees allowed.

    Returns
    -------
    float
        The enumeration size (:func:`enumeration_size`).

    Raises
    ------
    ValueError
        If the size exceeds ``limit``.
    """
    size = enumeration_size(tree, n, contexts)
    if size > limit:
        raise ValueError(
            f"exact {method_name!r} on a tree of {tree.size} nodes enumerates up to {contexts} contexts x "
            f"{n}^{tree.size - 1} drafted trees = {size:.3g}, above the limit {limit:.3g}; "
            f"use simulation only (--no-exact --steps N) or a smaller tree or vocabulary."
        )
    return size


def step_law(tree, method, model, context: int) -> StepLaw:
    """Exact law of one verification step from ``context`` (module docstring).

    Parameters
    ----------
    tree : Tree or str
    method : str or method object
        A sequence-level method (``block``, ``traversal``) or a node-level one.
    model : SyntheticPair or any finite-state model
    context : int

    Returns
    -------
    StepLaw

    Notes
    -----
    O(T * size * n) for T drafted trees (<= n^(size - 1)), in batches of bounded memory.
    """
    m, rule = get_tree_method(method)
    tree = check_tree_for(m, tree_for_method(Tree.from_name(tree) if isinstance(tree, str) else tree, m))
    tables = model_tables(model)
    acc: dict[tuple, np.ndarray] = {}
    ctx_of: dict[tuple, int] = {}
    for tokens, ctx, mass, out in _verified_trees(tree, m, rule, tables, int(context)):
        weighted = mass[:, None, None] * out.end[:, :, None] * out.final  # [B, size, n]
        for v in range(tree.size):
            path_nodes = tree.path_to(v)[1:]
            keys = tokens[:, path_nodes] if path_nodes else np.zeros((len(tokens), 0), dtype=np.int64)
            uniq, inv = np.unique(keys, axis=0, return_inverse=True)
            sums = np.zeros((len(uniq), weighted.shape[-1]))
            np.add.at(sums, inv.ravel(), weighted[:, v])
            first = np.zeros(len(uniq), dtype=np.int64)
            first[inv.ravel()[::-1]] = np.arange(len(inv))[::-1]
            for i, key in enumerate(map(tuple, uniq)):
                acc[key] = acc.get(key, 0.0) + sums[i]
                ctx_of[key] = int(ctx[first[i], v])
    keys = sorted(acc, key=lambda t: (len(t), t))
    return StepLaw(paths=tuple(keys), final=np.array([acc[k] for k in keys]), context_after=np.array([ctx_of[k] for k in keys]))


def exact_sequence_tree(tree, method, model, *, progress=None, limit: int = MAX_EXACT_TREES) -> TreeExact:
    """Exact tokens per step of any method on a tree, by exhaustive enumeration of drafted trees.

    Parameters
    ----------
    tree : Tree or str
    method : str or method object
    model : SyntheticPair or any finite-state model
    progress : callable, optional
        ``progress(done, total)`` after each context.
    limit : int
        Largest enumeration (contexts x drafted trees) accepted.

    Returns
    -------
    TreeExact
        As :func:`~spechub_theory.trees.exact.exact_tree`: per-context tokens per step, reach, the
        step kernel and its stationary law (long-run tokens per step).

    Raises
    ------
    ValueError
        Before any work, when the enumeration exceeds ``limit`` (:func:`check_enumeration`).
    """
    m, _ = get_tree_method(method)
    tree = check_tree_for(m, tree_for_method(Tree.from_name(tree) if isinstance(tree, str) else tree, m))
    tables = model_tables(model)
    C, n = tables.p.shape
    check_enumeration(tree, m.NAME, n, C, limit=limit)
    _, rule = get_tree_method(m)
    depth = tree.depth
    depths = tree.depths
    tokens = np.zeros(C)
    reach = np.zeros((C, depth + 1))
    kernel = np.zeros((C, C))
    for c in range(C):
        for drafted, ctx, mass, out in _verified_trees(tree, m, rule, tables, c):
            ends = mass[:, None] * out.end  # [B, size]
            per_depth = np.bincount(np.broadcast_to(depths, ends.shape).ravel(), weights=ends.ravel(), minlength=depth + 1)
            tokens[c] += per_depth @ (np.arange(depth + 1) + 1.0)
            reach[c] += np.cumsum(per_depth[::-1])[::-1]
            nxt = tables.next_context[ctx]  # [B, size, n] context after the final token
            kernel[c] += np.bincount(nxt.ravel(), weights=(ends[:, :, None] * out.final).ravel(), minlength=C)
        if progress is not None:
            progress(c + 1, C)
    return TreeExact(
        tree=tree,
        method=m.NAME,
        tokens_per_step=tokens,
        reach=reach,
        target_law=stationary_law(context_kernel(tables.next_context, tables.p)),
        step_kernel=kernel,
        step_start_law=stationary_law(kernel),
    )


def sequence_law_enumerated(tree, method, model, context: int, horizon: int) -> np.ndarray:
    """Exact law of the first ``horizon`` generated tokens, steps chained as in decoding.

    Each step's law is :func:`step_law` (all drafted trees enumerated); a step that emits more
    tokens than remain is truncated (its tokens beyond the horizon are marginalised). Equals
    :func:`~spechub_theory.trees.lossless.target_sequence_law` for a lossless method. For tiny n
    (<= 4) and trees of <= 7 nodes.

    Parameters
    ----------
    tree : Tree or str
        The draft tree.
    method : str or module
        A tree method.
    model : SyntheticPair or object
        A finite-state model (see :func:`model_tables`).
    context : int
        The starting context id.
    horizon : int
        Number of tokens, >= 1.

    Returns
    -------
    numpy.ndarray
        The float64 law of the first ``horizon`` tokens, shape (n,) * horizon.

    Raises
    ------
    ValueError
        If the model's tables are invalid or ``horizon < 1``.
    """
    tables = model_tables(model)
    n = tables.p.shape[1]
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"`horizon` must be an integer >= 1; got {horizon!r}.")
    laws: dict[int, StepLaw] = {}
    memo: dict[tuple, np.ndarray] = {}

    def law(c: int, h: int) -> np.ndarray:  # flat law over n**h sequences
        if h == 0:
            return np.ones(1)
        if (c, h) in memo:
            return memo[(c, h)]
        if c not in laws:
            laws[c] = step_law(tree, method, model, c)
        step = laws[c]
        out = np.zeros(n**h)
        for i, path in enumerate(step.paths):
            for y in np.flatnonzero(step.final[i] > 0):
                seq = tuple(path) + (int(y),)
                mass = step.final[i, y]
                head = seq[:h]
                index = int(np.ravel_multi_index(head, (n,) * len(head))) if head else 0
                rest = h - len(head)
                if rest == 0:
                    out[index] += mass
                    continue
                nxt = int(c)
                for tok in seq:
                    nxt = int(tables.next_context[nxt, tok])
                out[index * n**rest : (index + 1) * n**rest] += mass * law(nxt, rest)
        memo[(c, h)] = out
        return out

    return law(int(context), int(horizon)).reshape((n,) * int(horizon))


def _verified_trees(tree: Tree, method, rule, tables, context: int):
    """Yield ``(tokens, ctx, mass, outcome)`` batches: every drafted tree and its tree rule."""
    for tokens, ctx, mass in _drafted_trees(tree, method.LAW, tables, context):
        yield tokens, ctx, mass, rule(tree, tokens, tables.p[ctx], tables.q[ctx])


def _drafted_trees(tree: Tree, law, tables, context: int):
    """Yield ``(tokens, ctx, mass)`` batches covering every drafted tree from ``context``:
    tokens (B, size) (root -1), ctx (B, size) the context after each node, mass (B,) > 0."""
    internal = [v for v in range(tree.size) if tree.children[v]]
    cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def support(c: int, k: int):
        if (c, k) not in cache:
            s = law.enumerate(tables.q[c], k)
            cache[(c, k)] = (s.tuples, s.mass)
        return cache[(c, k)]

    def expand(tokens, ctx, mass, i):
        if i == len(internal):
            yield tokens, ctx, mass
            return
        v = internal[i]
        kids = list(tree.children[v])
        parts = []
        for c in np.unique(ctx[:, v]):
            rows = np.flatnonzero(ctx[:, v] == c)
            tuples, tmass = support(int(c), len(kids))
            t = np.repeat(tokens[rows], len(tmass), axis=0)
            x = np.repeat(ctx[rows], len(tmass), axis=0)
            t[:, kids] = np.tile(tuples, (len(rows), 1))
            x[:, kids] = tables.next_context[int(c)][t[:, kids]]
            parts.append((t, x, np.outer(mass[rows], tmass).ravel()))
        t = np.concatenate([a for a, _, _ in parts])
        x = np.concatenate([b for _, b, _ in parts])
        w = np.concatenate([c for _, _, c in parts])
        for lo in range(0, len(w), _CHUNK):
            yield from expand(t[lo : lo + _CHUNK], x[lo : lo + _CHUNK], w[lo : lo + _CHUNK], i + 1)

    tokens0 = np.full((1, tree.size), -1, dtype=np.int64)
    ctx0 = np.full((1, tree.size), int(context), dtype=np.int64)
    yield from expand(tokens0, ctx0, np.ones(1), 0)
