r"""Block verification and Traversal Verification of drafted token trees, in torch on the model's device.

Convention: p = target, q = draft, last axis = vocabulary; ``p[b, v]``, ``q[b, v]`` are the laws
*after* node v of drafted tree b (float64 on the device). Source: the numpy reference
:mod:`spechub_theory.trees.sequence_rules` (2403.10444 Alg. 2; 2505.12398 Sec. 3; theory.md 5.4).

The tree rule runs once for all R rows of a decoding batch: the traversal's events (enter a node,
update a node after a rejected child, test a node) are a fixed list for the tree shape, and each
event is one batched [R, n] tensor operation, so the Python loop is over the tree's events
(about 3 x size), never over rows or the vocabulary. Block verification of a chain is the same
computation (on a chain the traversal's backward pass is block verification's, operation for
operation, as in the reference), so ``block`` checks the chain and runs the traversal. Uniforms
come from each row's numpy Generator exactly as the numpy engine draws them (two per row), and
the end node and emitted token are drawn by the same inverse CDFs, so both engines emit the same
tokens for the same Generators (parity-tested in float64 on the CPU).
"""

from __future__ import annotations

import numpy as np

from spechub_theory.methods.base import RESIDUAL_EPS
from spechub_theory.trees.sequence_rules import SEQUENCE_METHODS, check_tree_for, traversal_events
from spechub_theory.trees.walk import TreeWalk

__all__ = ["SEQUENCE_TORCH_METHODS", "TorchTreeOutcome", "tree_outcome", "walk_trees"]

#: sequence-level methods with a torch tree rule
SEQUENCE_TORCH_METHODS = frozenset(SEQUENCE_METHODS)


class TorchTreeOutcome:
    """Outcome law of verifying R drafted trees, on the device.

    Attributes
    ----------
    end : tensor, shape (R, size)
        P(the accepted path ends at node v | the drafted tree), float64; rows sum to 1.
    finals : dict
        Internal node v -> its target at its test, [R, n] float64 (the residual emitted when the
        path ends at v); a leaf emits its own p row (the bonus token), read from ``p``.
    p : tensor, shape (R, size, n)
        The target laws as given (any float dtype; rows are renormalised in float64 when read).
    """

    __slots__ = ("end", "finals", "p")

    def __init__(self, end, finals, p):
        self.end, self.finals, self.p = end, finals, p

    def final(self, node):
        """Law of the emitted token when row b's path ends at ``node[b]``: [R, n].

        Parameters
        ----------
        node : int64 tensor, shape (R,)
            End node of each row.

        Returns
        -------
        tensor, shape (R, n)
            The law each row emits from (a gather per distinct internal node: at most the
            number of internal nodes of the tree, O(R n) each).
        """
        import torch

        from .fast_verify import law64

        rows = torch.arange(len(node), device=node.device)
        law = law64(self.p[rows, node])  # leaves (and the default): the bonus token's law
        for v, t in self.finals.items():
            law = torch.where((node == v)[:, None], t, law)
        return law


def tree_outcome(tree, method: str, tokens, p, q) -> TorchTreeOutcome:
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
        Target laws after each node (any float dtype: a row is renormalised in float64 when first
        read, so a float32 [R, size, n] block is never copied whole).
    q : float64 tensor, shape (R, m, n)
        Draft laws after each internal node (m >= the largest internal node index + 1).

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
    Depth first from the root, children in slot order (the reference's event list): entering v
    (child of u) sets :math:`\rho_v = \min(1, \rho_u t_u(x_v) / q_u(x_v))`; after each child's
    subtree is rejected, v updates :math:`r = (\rho_v t_v - q_v)_+`, :math:`R = \sum r`,
    :math:`\rho_v \leftarrow R / (R + 1 - \rho_v)`, :math:`t_v \leftarrow r / R`; testing v
    ends there with probability alive x rho_v. O(size x R x n) device work, one float64 [R, n]
    target kept per internal node (the leaves' rows are read only for the end node), no host sync.
    """
    import torch

    from .fast_verify import _ratio, law64

    if method not in SEQUENCE_TORCH_METHODS:
        raise ValueError(f"`method` {method!r} is not one of {', '.join(map(repr, sorted(SEQUENCE_TORCH_METHODS)))}.")
    check_tree_for(SEQUENCE_METHODS[method], tree)
    R, size = tokens.shape
    rho = [torch.ones(R, dtype=torch.float64, device=p.device) for _ in range(size)]
    target: dict = {}  # internal node -> current t_v [R, n] float64 (p_v until a child is rejected)

    def current(v):
        if v not in target:
            target[v] = law64(p[:, v])
        return target[v]

    end = torch.zeros(R, size, dtype=torch.float64, device=p.device)
    alive = torch.ones(R, dtype=torch.float64, device=p.device)
    for kind, v in traversal_events(tree):
        if kind == "enter":
            u = tree.parents[v]
            x = tokens[:, v : v + 1]
            num = rho[u] * torch.gather(current(u), 1, x)[:, 0]
            rho[v] = _ratio(num, torch.gather(q[:, u], 1, x)[:, 0])
        elif kind == "child_rejected":
            rho[v], target[v] = _rejected_child_update(rho[v], current(v), q[:, v])
        else:  # "test"
            end[:, v] = alive * rho[v]
            alive = alive * (1.0 - rho[v])
    end[:, 0] += alive  # the root's rho is 1 up to round-off
    return TorchTreeOutcome(end, target, p)


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

    from .fast_verify import _inverse_cdf, law64

    R, device = tokens.shape[0], tokens.device
    if q is None:  # the bare root: no draft law is read
        q = p
    outcome = tree_outcome(tree, method, tokens, p, q)
    u = torch.as_tensor(np.stack([rng.random(2) for rng in rngs]), dtype=torch.float64, device=device)  # [R, 2]
    node = _inverse_cdf(outcome.end, u[:, 0])  # [R] the first node with cdf > u * total
    token = _inverse_cdf(outcome.final(node), u[:, 1])
    walks, drafted = [], tokens.tolist()  # one host copy, not one sync per emitted token
    for b, (v, y) in enumerate(zip(node.tolist(), token.tolist())):
        path = tuple(tree.path_to(int(v)))
        emitted = tuple(int(drafted[b][w]) for w in path[1:]) + (int(y),)
        walks.append((TreeWalk(path=path, tokens=emitted, visited=(), slots=()),
                      lambda w, b=b: law64(p[b, w]).cpu().numpy()))
    return walks


def _rejected_child_update(rho, t, q):
    """(rho', t') after a rejected child, as the core's ``rejected_child_update``: rho [R], t, q [R, n]."""
    import torch

    r = torch.clamp(rho[:, None] * t - q, min=0.0)
    R = r.sum(-1)
    den = R + 1.0 - rho
    ok = den > RESIDUAL_EPS
    new_rho = torch.where(ok, torch.clamp(R / torch.where(ok, den, 1.0), max=1.0), 1.0)
    live = R > RESIDUAL_EPS
    new_t = torch.where(live[:, None], r / torch.where(live, R, 1.0)[:, None], t)
    return new_rho, new_t
