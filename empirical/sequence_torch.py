r"""Block verification and Traversal Verification of drafted token trees, in torch on the model's device.

Convention: p = target, q = draft, last axis = vocabulary; ``p[b, v]``, ``q[b, v]`` are the laws
*after* node v of drafted tree b (float64 on the device). Source: the numpy reference
:mod:`spechub_theory.trees.sequence_rules` (2403.10444 Alg. 2; 2505.12398 Sec. 3; theory.md 5.4).

The tree rule runs once for all R rows of a decoding batch. A node's states (its ratio and current
target after each rejected child) do not depend on what happens inside its children's subtrees, so
they are computed level by level, all internal nodes of a level and all rows in one batched update
per child slot ([R, nodes, n] float64 tensors, in groups of bounded memory), and the reference's
post-order of tests becomes one cumulative product: O(depth x max children) batched calls per
step, never a loop over rows or the vocabulary. Block verification of a chain is the same
computation (on a chain the traversal's backward pass is block verification's, operation for
operation, as in the reference), so ``block`` checks the chain and runs the traversal. Uniforms
come from each row's numpy Generator exactly as the numpy engine draws them (two per row), and
the end node and emitted token are drawn by the same inverse CDFs, so both engines emit the same
tokens for the same Generators (parity-tested in float64 on the CPU).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from spechub_theory.methods.base import RESIDUAL_EPS
from spechub_theory.trees.sequence_rules import SEQUENCE_METHODS, check_tree_for, traversal_events
from spechub_theory.trees.walk import TreeWalk

__all__ = ["SEQUENCE_TORCH_METHODS", "TorchTreeOutcome", "TreeRulePlan", "tree_outcome", "walk_trees"]

#: sequence-level methods with a torch tree rule
SEQUENCE_TORCH_METHODS = frozenset(SEQUENCE_METHODS)
#: bound on rows x nodes x vocabulary of the float64 targets a level processes at once (2^27: 1 GiB)
GROUP_ENTRIES = 2**27


class TorchTreeOutcome:
    """Outcome law of verifying R drafted trees, on the device.

    Attributes
    ----------
    end : tensor, shape (R, size)
        P(the accepted path ends at node v | the drafted tree), float64; rows sum to 1.
    finals : list of (list of int, _GroupTargets)
        Groups of internal nodes and their targets after their last child (the residual emitted
        when the path ends there; ``rows(rows, at)`` reads one per row); a leaf emits its own p row
        (the bonus token).
    p : tensor, shape (R, size, n)
        The target laws as given (any float dtype; rows are renormalised in float64 when read).
    slot_maps : list of tensor
        Per group of ``finals``: [size] int64, the position of each node in the group, -1 elsewhere.
    """

    __slots__ = ("end", "finals", "p", "slot_maps")

    def __init__(self, end, finals, p, slot_maps):
        self.end, self.finals, self.p, self.slot_maps = end, finals, p, slot_maps

    def final(self, node):
        """Law of the emitted token when row b's path ends at ``node[b]``: [R, n].

        Parameters
        ----------
        node : int64 tensor, shape (R,)
            End node of each row.

        Returns
        -------
        tensor, shape (R, n)
            The law each row emits from: one gather per group of internal nodes, O(R n) each.
        """
        import torch

        from .fast_verify import law64

        rows = torch.arange(len(node), device=node.device)
        law = law64(self.p[rows, node])  # leaves (and the default): the bonus token's law
        for (_, targets), slot in zip(self.finals, self.slot_maps):
            at = slot[node]  # [R] position of the end node in this group, -1 if elsewhere
            law = torch.where((at >= 0)[:, None], targets.rows(rows, at.clamp(min=0)), law)
        return law

    def draw(self, u):
        """The end node and the emitted token of each row from its two uniforms, by inverse CDFs.

        Parameters
        ----------
        u : float64 tensor, shape (R, 2)
            Per row: the uniform of the end node, then that of the emitted token.

        Returns
        -------
        tuple of int64 tensors, shape (R,)
            (end node, emitted token); O(R size + R n) device work, no host sync.
        """
        from .inverse_cdf import inverse_cdf

        node = inverse_cdf(self.end, u[:, :1])[:, 0]  # [R] the first node with cdf > u * total
        return node, inverse_cdf(self.final(node), u[:, 1:])[:, 0]


def tree_outcome(tree, method: str, tokens, p, q, *, group_entries: int = GROUP_ENTRIES,
                 lazy: bool = False) -> TorchTreeOutcome:
    r"""The exact outcome law of ``method`` (``block`` or ``traversal``) on drafted trees, batched.

    Parameters
    ----------
    tree : Tree
        The drafted tree (a chain for ``block``).
    method : str
        ``"block"`` or ``"traversal"``.
    tokens : int64 tensor, shape (R, size)
        Drafted token of each node (root column ignored).
    p : tensor, shape (R, size, n)
        Target laws after each node (any float dtype: rows are renormalised in float64 as a level
        reads them, so a float32 [R, size, n] block is never copied whole).
    q : float64 tensor, shape (R, m, n)
        Draft laws after each internal node (m >= the largest internal node index + 1).
    group_entries : int
        Bound on R x nodes x n of the float64 targets processed at once (device memory).
    lazy : bool
        As :meth:`TreeRulePlan.outcome`.

    Returns
    -------
    TorchTreeOutcome
        End-node probabilities and the emitted laws.

    Raises
    ------
    ValueError
        If ``method`` is not sequence-level, or is ``block`` and ``tree`` is not a chain.

    Notes
    -----
    The reference walks the events depth first (:func:`~spechub_theory.trees.sequence_rules.traversal_events`).
    A node's states do not depend on what happens inside its children's subtrees: entering v with
    :math:`\rho_v^{(0)}` and :math:`t_v^{(0)} = p_v`, its j-th child c_j enters with
    :math:`\rho_{c_j} = \min(1, \rho_v^{(j-1)} t_v^{(j-1)}(x_{c_j}) / q_v(x_{c_j}))` and the rejection of
    c_j's subtree gives :math:`(\rho_v^{(j)}, t_v^{(j)})` = the update :math:`r = (\rho t - q_v)_+`,
    :math:`\rho \leftarrow R/(R + 1 - \rho)`, :math:`t \leftarrow r/R` (R = sum r). So the states are
    computed level by level, all internal nodes of a level (and all rows) at once, one batched
    update per child slot; then the tests in the reference's post-order give
    P(end at v) = rho_v^(final) prod_{w tested before v} (1 - rho_w^(final)) as one cumulative
    product. O(size x R x n) device work in O(depth x max children) batched calls, no host sync.
    """
    plan = TreeRulePlan(tree, method, rows=tokens.shape[0], n=p.shape[-1], device=p.device, group_entries=group_entries)
    return plan.outcome(tokens, p, q, lazy=lazy)


class TreeRulePlan:
    """The index tensors of :func:`tree_outcome` for one (tree, method, rows, n, device), built once.

    :meth:`outcome` then reads no host data and never synchronises, so it can be captured as a CUDA
    graph (the fast runtime's verification piece); :func:`tree_outcome` builds one per call.

    Parameters
    ----------
    tree : Tree
        The drafted tree (a chain for ``block``).
    method : str
        ``"block"`` or ``"traversal"``.
    rows : int
        R, rows verified together.
    n : int
        Vocabulary size.
    device : torch.device or str
    group_entries : int
        Bound on R x nodes x n of the float64 targets processed at once.

    Raises
    ------
    ValueError
        If ``method`` is not sequence-level, or is ``block`` and ``tree`` is not a chain.
    """

    def __init__(self, tree, method: str, *, rows: int, n: int, device, group_entries: int = GROUP_ENTRIES):
        import torch

        if method not in SEQUENCE_TORCH_METHODS:
            raise ValueError(f"`method` {method!r} is not one of {', '.join(map(repr, sorted(SEQUENCE_TORCH_METHODS)))}.")
        check_tree_for(SEQUENCE_METHODS[method], tree)
        self.tree, self.size = tree, tree.size
        width = max(1, int(group_entries) // max(int(rows) * int(n), 1))
        tensor = partial(torch.as_tensor, device=device)
        index = partial(_index, device=device)
        # (nodes, at, [(kids, live kids, live positions or None, mask or None) per child slot]); an
        # index is a slice where the nodes are evenly spaced (a view, no gather), None: all of them
        self.groups = []
        for level in tree.levels:
            internal = [v for v in level if tree.children[v]]
            for lo in range(0, len(internal), width):
                group = internal[lo: lo + width]
                slots = []
                for j in range(max(len(tree.children[v]) for v in group)):
                    has = [len(tree.children[v]) > j for v in group]
                    kids = [tree.children[v][j] if h else v for v, h in zip(group, has)]
                    live = [i for i, h in enumerate(has) if h]
                    slots.append((index(kids), index([kids[i] for i in live]), None if all(has) else tensor(live),
                                  None if all(has) else tensor(has)))
                self.groups.append((group, index(group), slots))
        self.order = tensor([v for kind, v in traversal_events(tree) if kind == "test"])
        self.slot_maps = [_slot_map(group, self.size, device) for group, _, _ in self.groups]

    def outcome(self, tokens, p, q, *, lazy: bool = False) -> TorchTreeOutcome:
        """The outcome law on drafted trees (see :func:`tree_outcome`).

        Parameters
        ----------
        tokens : int64 tensor, shape (R, size)
        p : tensor, shape (R, size, n)
        q : float64 tensor, shape (R, m, n)
        lazy : bool
            Keep each node's current target t as its recipe (p, q and the scalars of the updates so
            far) instead of a float64 [R, m, n] tensor (:class:`_GroupTargets`): every update is then
            one reduction over p and q, and only the end node's t is built. The same values either
            way, to rounding. Off by default: run eagerly the recipe recomputes op by op (0.74-0.88x
            on a 2-core CPU); through inductor there it is 0.93x at 1 row and 1.24x at 16 rows
            (BENCHMARKS.md §10.7). Not measured on a GPU yet (``benchmarks/bench_tree_outcome.py``).

        Returns
        -------
        TorchTreeOutcome
        """
        import torch

        from .fast_verify import _ratio

        R = tokens.shape[0]
        rho = torch.ones(R, self.size, dtype=torch.float64, device=p.device)  # entry rho, then (internal) final rho
        finals = []
        for group, at, slots in self.groups:
            t = _GroupTargets(p[:, at], q[:, at], lazy=lazy)  # the nodes' current targets
            r = rho[:, at].clone()  # [R, m]; not a view: t's recipe keeps it, and rho[:, at] is rewritten below
            for kids, live_kids, live, mask in slots:
                x = tokens[:, kids][..., None]  # [R, m, 1]
                tx, qx = t.at_tokens(x)
                entered = _ratio(r * tx, qx)
                rho[:, live_kids] = entered if live is None else entered[:, live]
                r = t.reject(r, mask)  # nodes with fewer children (mask False) keep their state
            rho[:, at] = r
            finals.append((group, t))
        tested = rho[:, self.order]  # [R, size] in test order
        survive = torch.cumprod(1.0 - tested, dim=1)
        before = torch.cat([torch.ones_like(survive[:, :1]), survive[:, :-1]], dim=1)
        end = torch.empty_like(rho)
        end[:, self.order] = tested * before
        end[:, 0] += survive[:, -1]  # the root's rho is 1 up to round-off
        return TorchTreeOutcome(end, finals, p, self.slot_maps)


def _index(values, *, device):
    """``values`` (node indices) as a slice when they are evenly spaced and increasing, else an int64 tensor.

    Indexing a tensor's axis with the slice is a view (no gather kernel, no copy); with the tensor it
    is a gather. Both select the same entries in the same order. O(len(values)).

    Parameters
    ----------
    values : list of int
        Distinct node indices, at least one.
    device : torch.device or str
        Where the tensor form lives.

    Returns
    -------
    slice or torch.Tensor
        ``slice(first, last + 1, step)``, or the int64 tensor of ``values``.
    """
    import torch

    step = values[1] - values[0] if len(values) > 1 else 1
    if step > 0 and all(b - a == step for a, b in zip(values, values[1:])):
        return slice(values[0], values[-1] + 1, step)
    return torch.as_tensor(values, device=device)


def _slot_map(group, size: int, device):
    """[size] int64: the position of each node in ``group``, -1 for the others."""
    import torch

    slot = torch.full((size,), -1, dtype=torch.long, device=device)
    slot[torch.as_tensor(group, device=device)] = torch.arange(len(group), device=device)
    return slot


def walk_trees(tree, method: str, tokens, p, q, rngs) -> list:
    """Verify R drafted trees with a sequence-level method, each row drawing two uniforms from its Generator.

    Parameters
    ----------
    tree : Tree
        The drafted tree.
    method : str
        ``"block"`` or ``"traversal"``.
    tokens : int64 tensor, shape (R, size)
        Drafted tokens (root column ignored).
    p : tensor, shape (R, size, n)
        Target laws (any float dtype; renormalised in float64).
    q : float64 tensor, shape (R, m, n), or None
        Draft laws after the internal nodes; None for the bare root.
    rngs : list of numpy Generators
        One per row; each gives ``random(2)``, as the numpy engine's walk.

    Returns
    -------
    list of (TreeWalk, callable)
        Per row, the walk (accepted path, drafts then the final token; ``visited`` and ``slots``
        empty, as in the reference) and ``node -> host float64 p row``.

    Raises
    ------
    ValueError
        As :func:`tree_outcome`.

    Notes
    -----
    O(size x R x n) device work and one host sync (the end nodes and tokens); float64 device
    memory of one [R, n] row per internal node.
    """
    import torch

    from .fast_verify import law64

    R, device = tokens.shape[0], tokens.device
    if q is None:  # the bare root: no draft law is read
        q = p
    outcome = tree_outcome(tree, method, tokens, p, q)
    u = torch.as_tensor(np.stack([rng.random(2) for rng in rngs]), dtype=torch.float64, device=device)  # [R, 2]
    node, token = outcome.draw(u)
    walks, drafted = [], tokens.tolist()  # one host copy, not one sync per emitted token
    for b, (v, y) in enumerate(zip(node.tolist(), token.tolist())):
        path = tuple(tree.path_to(int(v)))
        emitted = tuple(int(drafted[b][w]) for w in path[1:]) + (int(y),)
        walks.append((TreeWalk(path=path, tokens=emitted, visited=(), slots=()),
                      lambda w, b=b: law64(p[b, w]).cpu().numpy()))
    return walks


class _GroupTargets:
    r"""The current targets :math:`t_v^{(j)}` of a group of internal nodes, through their child slots.

    :math:`t^{(0)} = p_v / \sum p_v` and, after the j-th rejected child,
    :math:`r = (\rho^{(j-1)} t^{(j-1)} - q_v)_+`, :math:`t^{(j)} = r / \sum r` (kept where
    :math:`\sum r \le` ``RESIDUAL_EPS``), :math:`\rho^{(j)} = \sum r / (\sum r + 1 - \rho^{(j-1)})`,
    as the core's ``rejected_child_update``. Eager (``lazy`` False) each t is one float64 [R, m, n]
    tensor, updated in place of the last. Lazy, t is its recipe: the float32 p rows, q and the
    scalars (ρ, Σ r) of each update, so an update is one reduction over p and q (4 + 8 bytes an
    entry, nothing written) and a token's or a row's t is rebuilt from them. The same operations in
    the same order either way, so the same values to rounding (an op over other shapes may round
    differently: ATen divides by a one-element tensor through its reciprocal).

    Parameters
    ----------
    p : tensor, shape (R, m, n)
        The nodes' target laws (any float dtype; renormalised in float64 as read).
    q : float64 tensor, shape (R, m, n)
        The nodes' draft laws.
    lazy : bool
        Keep the recipe (True) or the tensor (False).
    """

    __slots__ = ("p", "q", "mass", "rhos", "sums", "t")

    def __init__(self, p, q, *, lazy: bool):
        self.p, self.q = p, q
        rows = p.double()
        self.mass = rows.sum(-1)  # [R, m] the normaliser of t^(0)
        self.rhos, self.sums = [], []  # per update: rho before it, sum of r (0 where the node had no such child)
        self.t = None if lazy else rows / self.mass[..., None]  # t^(0), as _replay builds it (one cast of p)

    @staticmethod
    def _replay(p, q, mass, rhos, sums):
        """t after the updates (rhos, sums) from rows p, q: [..., n] float64 (scalars broadcast over n)."""
        import torch

        t = p.double() / mass[..., None]
        for rho, total in zip(rhos, sums):
            r = (rho[..., None] * t).sub_(q).clamp_(min=0.0)
            t = torch.where((total > RESIDUAL_EPS)[..., None], r.div_(total[..., None]), t)
        return t

    def current(self):
        """The current targets, [R, m, n] float64 (built from the recipe when lazy)."""
        return self.t if self.t is not None else self._replay(self.p, self.q, self.mass, self.rhos, self.sums)

    def at_tokens(self, x):
        """(t(x), q(x)) at tokens x [R, m, 1]: two [R, m] float64 tensors."""
        import torch

        qx = torch.gather(self.q, 2, x)
        if self.t is not None:
            return torch.gather(self.t, 2, x)[..., 0], qx[..., 0]
        tx = self._replay(torch.gather(self.p, 2, x), qx, self.mass, self.rhos, self.sums)
        return tx[..., 0], qx[..., 0]

    def reject(self, rho, mask):
        """Apply the update of a rejected child; returns the new rho [R, m].

        Parameters
        ----------
        rho : float64 tensor, shape (R, m)
            The nodes' ratio before the update.
        mask : bool tensor, shape (m,), or None
            Nodes that have this child (None: all); the others keep rho and t.

        Returns
        -------
        float64 tensor, shape (R, m)
        """
        import torch

        t = self.current()
        r = (rho[..., None] * t).sub_(self.q).clamp_(min=0.0)
        total = r.sum(-1)
        den = total + 1.0 - rho
        # the quotients of entries the where discards (den or total <= RESIDUAL_EPS) are never read
        new_rho = torch.where(den > RESIDUAL_EPS, (total / den).clamp_(max=1.0), 1.0)
        if mask is not None:
            new_rho, total = torch.where(mask, new_rho, rho), torch.where(mask, total, 0.0)
        if self.t is not None:
            self.t = torch.where((total > RESIDUAL_EPS)[..., None], r.div_(total[..., None]), t)
        self.rhos.append(rho)
        self.sums.append(total)
        return new_rho

    def rows(self, rows, at):
        """Row b's target at its group position at[b], for rows ``rows``: [R, n] float64."""
        if self.t is not None:
            return self.t[rows, at]
        pick = [v[rows, at] for v in self.rhos], [v[rows, at] for v in self.sums]
        return self._replay(self.p[rows, at], self.q[rows, at], self.mass[rows, at], *pick)


