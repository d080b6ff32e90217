"""Drafting and verifying a token tree of uniform branching per level with fixed shapes, on the device.

Convention: p = target, q = draft, last axis = vocabulary; uniforms pre-drawn per row in the order
the core consumes them (``spechub_theory.trees.walk``): the draft levels, then per visited depth
c + 1 and a last one for the bonus. The node rules are those of :mod:`empirical.fast_verify`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fast_verify import _verify, law64, rule, sample_drafts
from .inverse_cdf import inverse_cdf
from .sequence_torch import SEQUENCE_TORCH_METHODS

__all__ = ["UniformLayout", "uniform_branching", "device_walk", "sequence_walk", "sample_level", "draft_method"]


def uniform_branching(tree):
    """Children per node of each level, if every node of a level has the same number of them.

    True of complete k^d trees, chains and branching lists of ints. O(size of the tree).

    Parameters
    ----------
    tree : Tree
        The draft tree (``levels``, ``children``, ``depth``).

    Returns
    -------
    tuple of int or None
        ``(c_0, ..., c_{D-1})``, children per node of levels 0..D-1 (``()`` for the root alone),
        or None when some level mixes child counts.
    """
    counts = []
    for d, level in enumerate(tree.levels[:-1] if tree.depth else ()):
        c = {len(tree.children[v]) for v in level}
        if len(c) != 1 or 0 in c:
            return None
        counts.append(c.pop())
    return tuple(counts)


@dataclass(frozen=True)
class UniformLayout:
    """Where each use of a row's pre-drawn uniforms sits in its stream of ``total`` values.

    ``draft[d]``: start of level d's block ([nodes of level d, c_d], row-major); ``walk[d]``: start
    of the c_d + 1 values of the node verified at depth d; ``bonus``: the leaf's one value. A
    sequence-level layout (:meth:`for_sequence`, ``whole``) has no per-depth values: ``bonus`` is
    the first of the two values of the tree rule (end node, emitted token), always both used.
    """

    draft: tuple
    walk: tuple
    bonus: int
    total: int
    whole: bool = False

    @classmethod
    def of(cls, tree, branching) -> "UniformLayout":
        """The layout of ``tree`` with per-level children ``branching``.

        Parameters
        ----------
        tree : Tree
            The draft tree (its ``levels``).
        branching : tuple of int
            Children per node of each level, from :func:`uniform_branching`.

        Returns
        -------
        UniformLayout
            Draft blocks first (level d: ``len(levels[d]) * c_d`` values), then ``c_d + 1`` per
            depth of the walk, then one for the bonus.
        """
        draft, at = [], 0
        for d, c in enumerate(branching):
            draft.append(at)
            at += len(tree.levels[d]) * c
        walk = []
        for c in branching:
            walk.append(at)
            at += c + 1
        return cls(draft=tuple(draft), walk=tuple(walk), bonus=at, total=at + 1)

    @classmethod
    def for_sequence(cls, tree, branching) -> "UniformLayout":
        """The layout of a sequence-level method (block, traversal) on ``tree``.

        Parameters
        ----------
        tree : Tree
            The draft tree (its ``levels``).
        branching : tuple of int
            Children per node of each level, from :func:`uniform_branching`.

        Returns
        -------
        UniformLayout
            The draft blocks of :meth:`of`, then two values for the tree rule, as
            :func:`empirical.sequence_torch.walk_trees` draws them.
        """
        blocks = cls.of(tree, branching)
        at = blocks.walk[0] if blocks.walk else blocks.bonus
        return cls(draft=blocks.draft, walk=(), bonus=at, total=at + 2, whole=True)

    def used(self, accepted, branching) -> np.ndarray:
        """Count the uniforms each row consumed, given its accepted depth.

        The walk stops after a rejection at depth ``accepted`` or takes the bonus when it reaches
        the leaves (``accepted == D``), so a row used its stream up to that point.

        Parameters
        ----------
        accepted : array_like of int, shape (R,)
            Accepted depth of each row, in 0..D.
        branching : tuple of int
            Children per node of each level (as given to :meth:`of`).

        Returns
        -------
        numpy.ndarray of int64, shape (R,)
            Number of values of its stream each row consumed.
        """
        accepted = np.asarray(accepted, dtype=np.int64)
        if self.whole:
            return np.full(accepted.shape, self.total, dtype=np.int64)
        ends = np.array([w + c + 1 for w, c in zip(self.walk, branching)] + [self.total], dtype=np.int64)
        return ends[accepted]


def draft_method(method: str) -> str:
    """The node method whose draft law ``method`` samples: sequence-level verifiers draft i.i.d. (as rrs).

    Parameters
    ----------
    method : str
        A verification method name.

    Returns
    -------
    str
        ``"rrs"`` for block and traversal, else ``method``.
    """
    return "rrs" if method in SEQUENCE_TORCH_METHODS else method


def sample_level(method: str, q_level, c: int, u):
    """Draft c children for every node of one level of R rows, from pre-drawn uniforms.

    As ``TorchEngine.draft_level_batch`` with one child count: one batched
    :func:`empirical.fast_verify.sample_drafts` over the R * m laws, O(R m (n + c)) device work.

    Parameters
    ----------
    method : str
        The verification method whose draft law is sampled (single, rrs, rrs_wor or spechub).
    q_level : torch.Tensor of float64, shape (R, m, n)
        Draft laws of the level's m nodes in each row.
    c : int
        Children per node.
    u : torch.Tensor of float64, shape (R, m * c)
        Uniforms in [0, 1), row-major by node.

    Returns
    -------
    torch.Tensor of int64, shape (R, m, c)
        The drafted tokens.
    """
    R, m, n = q_level.shape
    return sample_drafts(q_level.reshape(R * m, n), c, u.reshape(R * m, c), method=method).reshape(R, m, c)


def device_walk(kids, tokens, p, q, u, layout: UniformLayout, branching, *, method: str, out=None):
    """Walk R drafted trees down together with no host synchronisation.

    Parameters
    ----------
    kids : int64 tensor [size, max c]
        Children of each node, padded with 0.
    tokens : int64 tensor [R, size]
    p : tensor [R, size, n]
        Target laws (renormalised in float64 at the nodes used).
    q : float64 tensor [R, internal nodes, n]
    u : float64 tensor [R, layout.total]
    layout : UniformLayout
        From :meth:`UniformLayout.of`: where each use of ``u`` sits.
    branching : tuple of int
        Children per node of each level, from :func:`uniform_branching`.
    method : str
        One of single, rrs, rrs_wor or spechub.
    out : int64 tensor [R, 3 (D + 1) + 1], optional
        Written in place and returned (no copy of a fresh result).

    Returns
    -------
    int64 tensor [R, 3 (D + 1) + 1]: per row the path nodes (D + 1, node 0 first, unused entries 0),
    the emitted tokens (D + 1: accepted drafts then the residual or bonus token) and the slots
    per depth (D + 1, -1 = rejected or not reached), then the accepted depth in the last column.

    Notes
    -----
    Per depth one batched node rule over all R rows (O(R k n)); rows that stopped compute a
    masked-out rule, so shapes never depend on the outcome (CUDA-graph safe). The rows' uniforms
    of a depth sit at a fixed offset, which is what uniform branching buys. The columns are kept
    as [R] tensors and stacked once at the end; depth 0 masks nothing (every row is alive there).
    """
    import torch

    R, device = tokens.shape[0], tokens.device
    rows = torch.arange(R, device=device)
    root = torch.zeros(R, dtype=torch.long, device=device)
    node, alive, accepted = None, None, None  # None: every row at the root, alive, none accepted (depth 0)
    path, emitted, slots = [root], [], []
    for d, c in enumerate(branching):
        children = kids[:1, :c].expand(R, c) if node is None else kids[node, :c]  # [R, c]
        drafts = torch.gather(tokens, 1, children)
        token, slot = _verify(rule(_law_at(p, rows, node), q[rows, root if node is None else node], drafts, method=method),
                              drafts, u[:, layout.walk[d]: layout.walk[d] + c + 1])
        if alive is not None:  # a stopped row emits 0 and has slot -1
            token, slot = torch.where(alive, token, 0), torch.where(alive, slot, -1)
        alive = slot >= 0  # moved down
        node = torch.where(alive, torch.gather(children, 1, slot.clamp(min=0)[:, None])[:, 0], 0 if node is None else node)
        path.append(torch.where(alive, node, 0))
        emitted.append(token)
        slots.append(slot)
        accepted = alive.long() if accepted is None else accepted + alive
    bonus = inverse_cdf(_law_at(p, rows, node), u[:, layout.bonus, None])[:, 0]
    emitted.append(bonus if alive is None else torch.where(alive, bonus, 0))
    slots.append(torch.full_like(root, -1))
    return torch.stack(path + emitted + slots + [torch.zeros_like(root) if accepted is None else accepted], dim=1,
                       out=out)


def _law_at(p, rows, node):
    """law64 of row b's target law at node[b]: [R, n] float64; node None: the root's, read through a view.

    The view saves the gather (p[:, 0] is cast to a fresh contiguous float64 tensor either way, so
    the values and the sum are those of the gathered rows). O(R n).
    """
    return law64(p[:, 0] if node is None else p[rows, node])


def sequence_walk(plan, paths, tokens, p, q, u, *, out=None):
    """Verify R drafted trees with a sequence-level rule (block, traversal), with no host synchronisation.

    Parameters
    ----------
    plan : empirical.sequence_torch.TreeRulePlan
        The tree rule's index tensors for these shapes.
    paths : int64 tensor [size, D + 2]
        Per node its path from the root (D + 1 entries, padded with 0), then its depth.
    tokens : int64 tensor [R, size]
    p : tensor [R, size, n]
    q : float64 tensor [R, internal nodes, n]
    u : float64 tensor [R, 2]
        The two uniforms of the rule (end node, emitted token).
    out : int64 tensor [R, 3 (D + 1) + 1], optional
        Written in place and returned (no copy of a fresh result).

    Returns
    -------
    int64 tensor [R, 3 (D + 1) + 1]
        As :func:`device_walk`: path nodes, emitted tokens (the drafts on the path, then the
        token drawn from the end node's law), slots (all -1: a sequence rule visits no node), the
        accepted depth.

    Notes
    -----
    O(size x R x n) device work (:meth:`~empirical.sequence_torch.TreeRulePlan.outcome`) and two
    inverse CDFs (:meth:`~empirical.sequence_torch.TorchTreeOutcome.draw`, as
    :func:`empirical.sequence_torch.walk_trees`), so both give the same tokens for the same uniforms.
    """
    import torch

    node, token = plan.outcome(tokens, p, q).draw(u)
    D = paths.shape[1] - 2
    row = paths[node]  # [R, D + 2]: one gather of the end nodes' paths and depths
    path, accepted = row[:, : D + 1], row[:, D + 1]
    on_path = torch.gather(tokens, 1, path[:, 1:])  # [R, D] drafts on the path (padding reads node 0)
    emitted = torch.cat([on_path, torch.zeros_like(on_path[:, :1])], dim=1)
    depth = torch.arange(D + 1, device=tokens.device)[None]
    emitted = torch.where(depth == accepted[:, None], token[:, None], torch.where(depth < accepted[:, None], emitted, 0))
    slots = torch.full_like(path, -1)
    return torch.cat([path, emitted, slots, accepted[:, None]], dim=1, out=out)
