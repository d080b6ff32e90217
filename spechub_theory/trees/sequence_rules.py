r"""Sequence-level verifiers of a drafted token tree: block verification and Traversal Verification.

Convention: p = target, q = draft, last axis = vocabulary; ``p[b, v]``, ``q[b, v]`` are the
next-token laws *after* node v of drafted tree b, shape (B, size, n); ``tokens[b, v]`` is the
draft at node v (root column ignored). Sources: Sun, Mendlovic, Leviathan, Aharoni, Ro, Beirami,
Suresh, ICLR 2025, arXiv 2403.10444 (block verification, its Algorithm 2); Weng, Hu et al.,
NeurIPS 2025, arXiv 2505.12398 (Traversal Verification); theory.md 5.4.

A node-level verifier decides node by node; these decide on the whole tree, so their rule is a
**tree rule**: given the drafted tree, the exact probability :attr:`TreeOutcome.end` that the
accepted path ends at each node and the law :attr:`TreeOutcome.final` of the token emitted
after it (the bonus token at an untouched leaf, a residual elsewhere). Monte Carlo samples the
outcome from two uniforms, the exact laws average it over the enumerated draft law
(:mod:`spechub_theory.trees.sequence_exact`), so what is proved lossless is what runs. Node-level
methods get the same form through :func:`node_tree_rule` (the walk of
:mod:`spechub_theory.trees.walk`, as exact probabilities), so comparisons use one machinery.

Both verifiers use the sequence-level ratio of a path, rho(root) = 1 and
rho(v) = min(1, rho(u) t_u(x_v) / q_u(x_v)) for v a child of u, where t_u is u's current target
(p_u until a child of u is rejected). Rejecting the last remaining child of u updates u as

.. math::
    r_u = (\rho_u t_u - q_u)_+, \quad R_u = \textstyle\sum_x r_u(x), \quad
    \rho_u \leftarrow \frac{R_u}{R_u + 1 - \rho_u}, \quad t_u \leftarrow r_u / R_u,

(0/0 read as 1 for rho and as the old t_u for t: a branch of probability 0). On a chain this is
block verification's backward pass (h_i = R_i / (R_i + 1 - p_i), residual
max{p_i M_b - M_s, 0} normalised, 2403.10444 Alg. 2), and on one level it is RRS with
replacement; Traversal Verification applies it to every node of a tree, visiting the subtrees
of a node in slot order and the node itself after them (leaves to root, a parent only after all
its children are rejected; 2505.12398 Sec. 3). Children are drafted i.i.d. from q (the draft law
of RRS with replacement; the update keeps q for the siblings, so the siblings must be i.i.d.).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..draft_laws import IID, DraftLaw
from ..methods import get_method
from ..methods.base import RESIDUAL_EPS
from ..methods.single import ratio_accept
from .shapes import Tree
from .walk_result import TreeWalk

__all__ = [
    "TreeOutcome",
    "SequenceMethod",
    "BLOCK",
    "TRAVERSAL",
    "SEQUENCE_METHODS",
    "get_tree_method",
    "block_rule",
    "traversal_rule",
    "node_tree_rule",
    "sample_outcome",
    "walk_by_rule",
    "rejected_child_update",
    "traversal_events",
    "check_tree_for",
]


@dataclass(frozen=True)
class TreeOutcome:
    """Exact outcome law of verifying drafted trees.

    Attributes
    ----------
    end : ndarray, shape (B, size)
        P(the accepted path ends at node v | the drafted tree); rows sum to 1.
    final : ndarray, shape (B, size, n)
        Law of the token emitted after the accepted path when it ends at v.
    """

    end: np.ndarray
    final: np.ndarray


@dataclass(frozen=True)
class SequenceMethod:
    """A tree-level verifier with the attributes tree code reads from a method module.

    Attributes
    ----------
    NAME : str
    LAW : DraftLaw
        Law of the children of every node (i.i.d. for both verifiers here).
    tree_rule : callable
        ``tree_rule(tree, tokens, p, q) -> TreeOutcome``.
    chains_only : bool
        Whether the verifier is defined on chains only (block verification).
    DESCRIPTION : str
    """

    NAME: str
    LAW: DraftLaw
    tree_rule: Callable
    chains_only: bool = False
    DESCRIPTION: str = ""
    FIXED_K = None
    #: no node rule: the tree is verified as a whole (get_method's duck typing reads the attribute)
    rule = None

    def __repr__(self) -> str:
        return f"<sequence-level method {self.NAME!r}>"


def check_tree_for(method, tree: Tree) -> Tree:
    """``tree`` if ``method`` is defined on it; a ValueError for block verification off a chain.

    Parameters
    ----------
    method : str or module
        The verification method (a name or a method module).
    tree : Tree

    Returns
    -------
    Tree

    Raises
    ------
    ValueError
        On bad input (the message names the rule): Method ... verifies a single chain of drafts; the
        tree has a node with ... children (use 'traversal' on trees, or a 'chain-L' tree).
    """
    if getattr(method, "chains_only", False) and not tree.is_chain:
        raise ValueError(
            f"method {method.NAME!r} verifies a single chain of drafts; the tree has a node with "
            f"{max(len(c) for c in tree.children)} children (use 'traversal' on trees, or a 'chain-L' tree)."
        )
    return tree


def block_rule(tree: Tree, tokens, p, q, *, update=None) -> TreeOutcome:
    r"""Block verification of a drafted chain (2403.10444, Algorithm 2), exact given the drafts.

    With p_0 = 1, :math:`p_i = \min\{1, p_{i-1} M_b(X_i) / M_s(X_i)\}` (the paper's weights;
    here ``rho``), :math:`h_i = R_i/(R_i + 1 - p_i)` for i < L, :math:`h_L = p_L`, the accepted
    length is the largest i with :math:`\eta_i \le h_i`:

    .. math::
        P(\tau = i \mid X^L) = h_i \prod_{j > i} (1 - h_j) \quad (h_0 = 1),

    and the emitted token is :math:`\propto (p_i M_b(\cdot|X^i) - M_s(\cdot|X^i))_+` for
    i < L, :math:`M_b(\cdot|X^L)` for i = L. O(L n) per chain. ``update`` replaces
    :func:`rejected_child_update` (for negative controls only).

    Parameters
    ----------
    tree : Tree
    tokens : ndarray of int, shape (B, size)
    p, q : array_like, shape (B, size, n)
        Target and draft laws, last axis = vocabulary.
    update : callable, optional

    Returns
    -------
    TreeOutcome

    Raises
    ------
    ValueError
        If ``tree`` is not a chain.
    """
    check_tree_for(BLOCK, tree)
    update = rejected_child_update if update is None else update
    tokens, p, q = _arrays(tokens, p, q)
    B, size, n = p.shape
    rho = np.ones((B, size))
    h = np.ones((B, size))
    final = np.array(p)
    for v in range(1, size):  # a chain numbered breadth first: node v's parent is v - 1
        x = tokens[:, v : v + 1]
        rho[:, v] = ratio_accept(rho[:, v - 1 : v] * _at(p[:, v - 1], x), _at(q[:, v - 1], x))[:, 0]
    for v in range(size - 1):  # internal nodes: h and residual from the original weights
        h[:, v], final[:, v] = update(rho[:, v], p[:, v], q[:, v])
    h[:, size - 1] = rho[:, size - 1]
    end = np.zeros((B, size))
    alive = np.ones(B)
    for v in range(size - 1, -1, -1):  # backward: the deepest i with eta_i <= h_i
        end[:, v] = alive * h[:, v]
        alive = alive * (1.0 - h[:, v])
    end[:, 0] += alive  # h_0 = 1 up to round-off
    return TreeOutcome(end=end, final=final)


def traversal_rule(tree: Tree, tokens, p, q, *, order=None, update=None) -> TreeOutcome:
    r"""Traversal Verification of drafted trees (2505.12398), exact given the drafts.

    Depth-first from the root, children in slot order: entering node v (child of u) sets
    :math:`\rho_v = \min(1, \rho_u t_u(x_v)/q_u(x_v))` from u's *current* state and
    :math:`t_v = p_v`; after the subtree of each child of v is rejected, v takes the update of
    the module docstring; then v is tested and accepted with probability :math:`\rho_v`. The
    tests run in this post-order, each given that all earlier ones rejected, so

    .. math::
        P(\text{end at } v) = \rho_v^{\text{(at its test)}} \prod_{w \text{ tested before } v} (1 - \rho_w),

    and the emitted token is drawn from :math:`t_v` (p_v at a leaf: the bonus token). The root
    ends with :math:`\rho = 1`. O(size * n) per tree. ``order`` (a function of the tree giving
    the event list of :func:`traversal_events`) and ``update`` exist for negative controls only.

    Parameters
    ----------
    tree : Tree
    tokens : ndarray of int, shape (B, size)
    p, q : array_like, shape (B, size, n)
        Target and draft laws, last axis = vocabulary.
    order : callable, optional
    update : callable, optional

    Returns
    -------
    TreeOutcome
    """
    events = (traversal_events if order is None else order)(tree)
    update = rejected_child_update if update is None else update
    tokens, p, q = _arrays(tokens, p, q)
    B, size, n = p.shape
    rho = np.ones((B, size))
    target = np.array(p)  # [B, size, n] current t_v
    end = np.zeros((B, size))
    final = np.zeros((B, size, n))
    alive = np.ones(B)
    for kind, v in events:
        if kind == "enter":
            u, x = tree.parents[v], tokens[:, v : v + 1]
            rho[:, v] = ratio_accept(rho[:, u : u + 1] * _at(target[:, u], x), _at(q[:, u], x))[:, 0]
        elif kind == "child_rejected":
            rho[:, v], target[:, v] = update(rho[:, v], target[:, v], q[:, v])
        else:  # "test"
            end[:, v] = alive * rho[:, v]
            final[:, v] = target[:, v]
            alive = alive * (1.0 - rho[:, v])
    end[:, 0] += alive  # the root's rho is 1 up to round-off
    return TreeOutcome(end=end, final=final)


def node_tree_rule(method) -> Callable:
    """The tree rule of a node-level method.

    The walk of :func:`~spechub_theory.trees.walk.walk_trees` as exact probabilities (reach v =
    product of accepted slots on its path; end at v = reach x P(no child accepted); leaves emit from
    p). The drafts must come from the method's own law.

    Parameters
    ----------
    method : str or module
        The verification method (a name or a method module).

    Returns
    -------
    Callable
    """
    m = get_method(method)

    def rule(tree: Tree, tokens, p, q) -> TreeOutcome:
        tokens, p, q = _arrays(tokens, p, q)
        B, size, n = p.shape
        reach = np.zeros((B, size))
        reach[:, 0] = 1.0
        end = np.zeros((B, size))
        final = np.array(p)
        for v in range(size):  # parents before children (breadth-first numbering)
            kids = list(tree.children[v])
            if not kids:
                end[:, v] = reach[:, v]
                continue
            r = m.rule(p[:, v], q[:, v], tokens[:, kids])
            accept = np.broadcast_to(r.accept, (B, len(kids)))
            reach[:, kids] = reach[:, v : v + 1] * accept
            end[:, v] = reach[:, v] * np.broadcast_to(r.reject, (B,))
            final[:, v] = np.broadcast_to(r.residual, (B, n))
        return TreeOutcome(end=end, final=final)

    return rule


def sample_outcome(outcome: TreeOutcome, u) -> tuple[np.ndarray, np.ndarray]:
    """End node and emitted token of each tree from uniforms ``u`` (B, 2), by inverse CDF.

    Returns ``(end_node, token)``, int64 arrays of shape (B,).

    Parameters
    ----------
    outcome : TreeOutcome
    u : ndarray

    Returns
    -------
    tuple[numpy.ndarray, numpy.ndarray]
    """
    u = np.asarray(u, dtype=np.float64)
    cdf = np.cumsum(outcome.end, axis=1)
    node = np.minimum((cdf <= (u[:, 0] * cdf[:, -1])[:, None]).sum(axis=1), cdf.shape[1] - 1)
    law = outcome.final[np.arange(len(node)), node]  # [B, n]
    cdf = np.cumsum(law, axis=1)
    token = np.minimum((cdf <= (u[:, 1] * cdf[:, -1])[:, None]).sum(axis=1), law.shape[1] - 1)
    return node.astype(np.int64), token.astype(np.int64)


def walk_by_rule(tree: Tree, method, tokens, p, q, rng) -> list[TreeWalk]:
    """Verify drafted trees with a tree rule and fresh uniforms: one :class:`TreeWalk` per tree.

    ``tokens`` (B, size), ``p``, ``q`` (B, size, n) as for the rules. The walk's ``path`` is the
    accepted path, ``tokens`` its drafts then the final token; ``visited`` and ``slots`` are
    empty (a sequence-level verifier does not decide node by node). O(B * size * n).

    Parameters
    ----------
    tree : Tree
    method : str or module
        The verification method (a name or a method module).
    tokens : ndarray of int, shape (B, size)
    p, q : array_like, shape (B, size, n)
        Target and draft laws, last axis = vocabulary.
    rng : numpy.random.Generator, int or None
        Random source: a Generator or a seed.

    Returns
    -------
    list[TreeWalk]
    """
    _, rule = get_tree_method(method)
    tokens = np.asarray(tokens, dtype=np.int64)
    node, token = sample_outcome(rule(tree, tokens, p, q), rng.random((len(tokens), 2)))
    walks = []
    for b in range(len(tokens)):
        path = tuple(tree.path_to(int(node[b])))
        emitted = tuple(int(tokens[b, v]) for v in path[1:]) + (int(token[b]),)
        walks.append(TreeWalk(path=path, tokens=emitted, visited=(), slots=()))
    return walks


#: block verification of a single draft chain (2403.10444)
BLOCK = SequenceMethod("block", IID, block_rule, chains_only=True, DESCRIPTION="block verification (Sun et al., ICLR 2025)")
#: Traversal Verification of a token tree with i.i.d. siblings (2505.12398)
TRAVERSAL = SequenceMethod("traversal", IID, traversal_rule, DESCRIPTION="Traversal Verification (Weng, Hu et al., NeurIPS 2025)")
#: name -> sequence-level method
SEQUENCE_METHODS: dict[str, SequenceMethod] = {m.NAME: m for m in (BLOCK, TRAVERSAL)}


def get_tree_method(name):
    """Look up ``(method, tree_rule)`` for a sequence-level or a node-level method.

    A sequence-level method by name or as an object with ``tree_rule``; a node-level one gets its
    :func:`node_tree_rule`.

    Parameters
    ----------
    name : str

    Returns
    -------
    tuple

    Raises
    ------
    ValueError
        If ``name`` is neither a node-level nor a sequence-level method.
    """
    if isinstance(name, str) and name in SEQUENCE_METHODS:
        m = SEQUENCE_METHODS[name]
        return m, m.tree_rule
    if callable(getattr(name, "tree_rule", None)):
        return name, name.tree_rule
    try:
        m = get_method(name)
    except ValueError as exc:
        raise ValueError(f"{exc} Sequence-level methods: {', '.join(map(repr, SEQUENCE_METHODS))}.") from None
    return m, node_tree_rule(m)


def rejected_child_update(rho, t, q):
    """(rho', t') of a node after a rejected child.

    rho' = R/(R + 1 - rho), t' = (rho t - q)_+ / R (module docstring; rho (B,), t and q (B, n)).
    O(n) per row.

    Parameters
    ----------
    rho : numpy.ndarray
    t : numpy.ndarray
    q : numpy.ndarray

    Returns
    -------
    tuple
    """
    r = np.maximum(rho[:, None] * t - q, 0.0)
    R = r.sum(axis=-1)
    den = R + 1.0 - rho
    ok = den > RESIDUAL_EPS
    new_rho = np.where(ok, np.minimum(R / np.where(ok, den, 1.0), 1.0), 1.0)
    live = R > RESIDUAL_EPS
    new_t = np.where(live[:, None], r / np.where(live, R, 1.0)[:, None], t)
    return new_rho, new_t


def traversal_events(tree: Tree) -> list[tuple[str, int]]:
    """List the events of the traversal, depth first.

    ("enter", v), then for each child in slot order its events and ("child_rejected", v), then
    ("test", v) (a parent after all its children).

    Parameters
    ----------
    tree : Tree

    Returns
    -------
    list[tuple[str, int]]
    """
    events: list[tuple[str, int]] = []
    stack: list[tuple[int, int]] = [(0, 0)]  # (node, next child index)
    while stack:
        v, j = stack.pop()
        kids = tree.children[v]
        if j == 0 and v != 0:
            events.append(("enter", v))
        if j > 0:
            events.append(("child_rejected", v))
        if j < len(kids):
            stack.append((v, j + 1))
            stack.append((kids[j], 0))
        else:
            events.append(("test", v))
    return events


def _arrays(tokens, p, q):
    tokens = np.asarray(tokens, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.ndim != 3 or p.shape != q.shape or tokens.shape != p.shape[:2]:
        raise ValueError(f"`p`, `q` must be (B, size, n) and `tokens` (B, size); got {p.shape}, {q.shape}, {tokens.shape}.")
    return tokens, p, q


def _at(rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """rows[b, x[b]] for rows (B, n), x (B, 1) -> (B, 1)."""
    return np.take_along_axis(rows, x, axis=1)
