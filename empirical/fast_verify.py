"""The core's draft laws, node rules and tree walk, in torch float64 on the model's device.

Convention: p = target, q = draft, last axis = vocabulary. Same names, arguments and randomness
as ``spechub_theory.trees.walk`` (uniforms drawn from the same numpy Generator in the same order),
so that for equal inputs both paths emit the same tokens; parity is tested. Methods: single, rrs,
rrs_wor, spechub (hub set for k > 2), optimal (host plan, device selection: :mod:`empirical.optimal_torch`);
K-SEQ stays on the numpy path (:data:`FAST_METHODS`).
"""

from __future__ import annotations

import numpy as np

from spechub_theory.argorder import refuses_old_order
from spechub_theory.methods.base import RESIDUAL_EPS
from spechub_theory.trees.walk import TreeWalk

from .inverse_cdf import inverse_cdf
from .torch_rule import TorchNodeRule

__all__ = ["FAST_METHODS", "TorchNodeRule", "rule", "sample_drafts", "draft_tree_level", "walk_tree", "walk_trees", "law64"]


@refuses_old_order("p", "rule(p, q, drafts, method={name!r})")
def rule(p, q, drafts, *, method: str) -> TorchNodeRule:
    """Node rule of ``method``.

    p, q float64 [..., n], drafts int64 [..., k] (any leading axes: one node, or a batch of nodes).

    Mirrors ``spechub_theory.methods.<method>.rule``; O(k n) device work per node, no host sync.
    The old order ``rule(method, p, q, drafts)`` raises a ``TypeError`` naming the new one.

    Parameters
    ----------
    p, q : torch.Tensor, shape (..., n)
        Target and draft laws, last axis = vocabulary (float64).
    drafts : torch.Tensor of int64, shape (..., k)
    method : str
        The verification method (a name or a method module).

    Returns
    -------
    TorchNodeRule
    """
    return _RULES[method](p, q, drafts)


@refuses_old_order("q", "sample_drafts(q, k, u, method={name!r})")
def sample_drafts(q, k: int, u, *, method: str):
    """Draft tuples [m, k] for rows q [m, n] (float64) from uniforms u [m, k] (the method's law).

    Argument order as :func:`spechub_theory.verification.sample_drafts`; the old order
    ``sample_drafts(method, q, k, u)`` raises a ``TypeError`` naming the new one.

    Parameters
    ----------
    q : array_like, shape (..., n)
    k : int
        Drafts per node.
    u : ndarray
    method : str
        The verification method (a name or a method module).

    Returns
    -------
    torch.Tensor
    """
    return _LAWS[method](q, k, u)


def draft_tree_level(method: str, q_rows, counts, rng) -> list:
    """Children tokens of the nodes of one level (as ``spechub_theory.trees.walk.draft_tree_level``).

    q_rows: float64 tensor [m, n]; counts: children per node; rng: numpy Generator. Returns a list
    of m int64 tensors. One uniform draw and one batched sample per distinct child count.

    Parameters
    ----------
    method : str
        The verification method (a name or a method module).
    q_rows : numpy.ndarray or torch.Tensor, shape (m, n)
    counts : sequence of int
    rng : numpy.random.Generator, int or None
        Random source: a Generator or a seed.

    Returns
    -------
    list
    """
    import torch

    out = [None] * len(counts)
    for c in sorted(set(counts) - {0}):
        idx = [i for i, ci in enumerate(counts) if ci == c]
        u = torch.as_tensor(rng.random((len(idx), c)), device=q_rows.device)
        tuples = sample_drafts(q_rows[idx], c, u, method=method)  # [len(idx), c]
        for row, i in enumerate(idx):
            out[i] = tuples[row]
    return out


def walk_tree(tree, method: str, tokens, p, q, rng) -> TreeWalk:
    """Verify a drafted tree on the device (as ``spechub_theory.trees.walk.walk_tree``).

    tokens: int64 tensor [size]; p: float64 tensor [size, n]; q: float64 tensor [>= internal
    nodes, n]; rng: numpy Generator. One host sync per visited node (the accepted slot).

    Parameters
    ----------
    tree : Tree
    method : str
        The verification method (a name or a method module).
    tokens : torch.Tensor of int64, shape (size,)
    p, q : torch.Tensor, shape (..., n)
        Target and draft laws, last axis = vocabulary (float64).
    rng : numpy.random.Generator, int or None
        Random source: a Generator or a seed.

    Returns
    -------
    TreeWalk
    """
    return walk_trees(tree, method, tokens[None], p[None], q[None] if q is not None else None, [rng])[0][0]


def walk_trees(tree, method: str, tokens, p, q, rngs) -> list:
    """Verify R drafted trees at once, each row consuming its own Generator as :func:`walk_tree`.

    Parameters
    ----------
    tree : Tree
    method : str
        The verification method (a name or a method module).
    tokens : int64 tensor [R, size]
    p : tensor [R, size, n]   target laws (any float dtype; rows used are renormalised in float64)
    q : float64 tensor [R, >= internal nodes, n], or None for a tree without drafts
    rngs : R numpy Generators

    Returns
    -------
    list of R (TreeWalk, {visited node: float64 p row tensor}) pairs.

    Notes
    -----
    All rows step down the tree together: per depth, one batched node rule per distinct child
    count (O(rows k n) device work) and one host sync, instead of one per row and node.
    """
    import torch

    R, device = tokens.shape[0], tokens.device
    node = [0] * R
    paths, emitted = [[0] for _ in range(R)], [[] for _ in range(R)]
    visited, slots, p_rows = [[] for _ in range(R)], [[] for _ in range(R)], [{} for _ in range(R)]
    live = list(range(R))
    while live:
        leaves = [b for b in live if not tree.children[node[b]]]
        if leaves:
            at = torch.as_tensor(leaves, device=device)
            w = law64(p[at, torch.as_tensor([node[b] for b in leaves], device=device)])
            u = torch.as_tensor([rngs[b].random() for b in leaves], dtype=torch.float64, device=device)
            for b, t in zip(leaves, inverse_cdf(w, u[:, None])[:, 0].tolist()):
                emitted[b].append(int(t))
        live = [b for b in live if tree.children[node[b]]]
        groups: dict = {}
        for b in live:  # snapshot: a row moves down at most one level per pass
            groups.setdefault(len(tree.children[node[b]]), []).append(b)
        for c, rows in sorted(groups.items()):
            at = torch.as_tensor(rows, device=device)
            v = torch.as_tensor([node[b] for b in rows], device=device)
            kids = torch.as_tensor([tree.children[node[b]] for b in rows], device=device)  # [m, c]
            drafts = torch.gather(tokens[at], 1, kids)
            u = torch.as_tensor(np.stack([rngs[b].random(c + 1) for b in rows]), device=device)
            pv = law64(p[at, v])
            token, slot = _verify(rule(pv, q[at, v], drafts, method=method), drafts, u)
            for i, (b, sl, t) in enumerate(zip(rows, *torch.stack([slot, token]).tolist())):
                visited[b].append(node[b])
                slots[b].append(int(sl))
                emitted[b].append(int(t))
                p_rows[b][node[b]] = pv[i]
                if sl >= 0:
                    node[b] = tree.children[node[b]][sl]
                    paths[b].append(node[b])
                else:
                    live.remove(b)
    return [(TreeWalk(path=tuple(paths[b]), tokens=tuple(emitted[b]), visited=tuple(visited[b]), slots=tuple(slots[b])),
             p_rows[b]) for b in range(R)]


# -- verification and residuals ---------------------------------------------------------------
def law64(rows):
    """Cast rows of probabilities [..., n] to float64 and renormalise them.

    Float32 sums over a large vocabulary drift by ~1e-6; the core checks sums at that tolerance.

    Parameters
    ----------
    rows : ndarray

    Returns
    -------
    torch.Tensor
    """
    rows = rows.double()
    return rows / rows.sum(-1, keepdim=True)


def _take(x, index):
    """x[..., index] per row: x [..., n], index [..., j] -> [..., j]."""
    import torch

    return torch.gather(x, -1, index)


def _verify(node_rule: TorchNodeRule, drafts, u):
    """(token, slot) tensors [...]: slot j tested against P(j | slots < j rejected), residual by
    inverse CDF. drafts [..., k], u [..., k + 1]."""
    import torch

    accept = node_rule.accept
    k = accept.shape[-1]
    left = 1.0 - (torch.cumsum(accept, -1) - accept)
    cond = torch.where(left > 0, (accept / left).clamp_(max=1.0), 0.0)  # entries with left <= 0 are discarded
    hit = u[..., :k] < cond
    slot = torch.where(hit.any(-1), torch.argmax(hit.to(torch.int8), -1), -1)
    drafted = _take(drafts, slot.clamp(min=0)[..., None])[..., 0]
    token = torch.where(slot >= 0, drafted, inverse_cdf(node_rule.residual, u[..., k:])[..., 0])
    return token, slot


def _ratio(num, den):
    """min(1, num/den), with den <= 0 read as "accept iff num > 0".

    Five elementwise ops: the quotient's entries at den <= 0 (inf or NaN) are discarded by the
    ``where``, whose bool branch is promoted to num's dtype (1.0 or 0.0).
    """
    import torch

    return torch.where(den > 0, (num / den).clamp_(max=1.0), num > 0)


def _normalise(r, fallback):
    """r clamped at 0 and normalised along the last axis; ``fallback`` where its sum is <= RESIDUAL_EPS.

    Five ops over [..., n] (the quotient of a discarded row is not read).
    """
    import torch

    r = r.clamp(min=0.0)
    s = r.sum(-1, keepdim=True)
    return torch.where(s > RESIDUAL_EPS, r / s, fallback)


def _conditional(q, excluded):
    """q(. | V minus excluded) for rows q [..., n] and excluded [..., j]; uniform when no mass left."""
    import torch

    if not excluded.shape[-1]:
        return _renormalised(q)
    return _conditional_on(q, torch.ones_like(q, dtype=torch.bool).scatter(-1, excluded, False))


def _conditional_on(q, allowed):
    """q(. | allowed) for rows q [..., n] and a bool mask [..., n]; uniform on ``allowed`` (float32 1/count) when no mass left."""
    import torch

    w = torch.where(allowed, q, 0.0)
    s = w.sum(-1, keepdim=True)
    uniform = allowed / allowed.sum(-1, keepdim=True).clamp(min=1)
    return torch.where(s > 0, w / s, uniform)  # a row with s = 0 reads the uniform law, not w / s


def _renormalised(q):
    """q(. | V): :func:`_conditional_on` with every token allowed, in three ops over [..., n] instead of seven.

    The uniform law of a row without mass is the same float32 1/n, a scalar here.
    """
    import torch

    s = q.sum(-1, keepdim=True)
    return torch.where(s > 0, q / s, float(np.float32(1.0) / np.float32(q.shape[-1])))


def _slots(cond):
    """accept[..., j] = cond[..., j] prod_{l<j} (1 - cond[..., l])."""
    import torch

    if cond.shape[-1] == 1:  # cond * 1.0, exactly
        return cond
    survive = torch.cumprod(1.0 - cond[..., :-1], -1)  # the prefix products the slots after the first need
    return torch.cat([cond[..., :1], cond[..., 1:] * survive], -1)  # slot 0: cond * 1.0, exactly


# -- node rules (p, q [..., n], drafts [..., k]) --------------------------------------------------
def _single(p, q, drafts):
    x = drafts[..., :1]
    return TorchNodeRule(_ratio(_take(p, x), _take(q, x)), _normalise(p - q, p))


def _rrs(p, q, drafts):
    """Recursive rejection sampling: one gather of q at all drafts, one ratio over the k slots."""
    target, num = p, []
    for j in range(drafts.shape[-1]):
        num.append(_take(target, drafts[..., j : j + 1]))
        target = _normalise(target - q, target)
    return TorchNodeRule(_slots(_ratio(_cat_last(num), _take(q, drafts))), target)


def _rrs_wor(p, q, drafts):
    """RRS without replacement: draft j is tested against q conditioned off drafts < j; one ratio over the k slots."""
    target, num, den = p, [], []
    for j in range(drafts.shape[-1]):
        qj = _conditional(q, drafts[..., :j])
        x = drafts[..., j : j + 1]
        num.append(_take(target, x))
        den.append(_take(qj, x))
        target = _normalise(target - qj, target)
    return TorchNodeRule(_slots(_ratio(_cat_last(num), _cat_last(den))), target)


def _cat_last(parts):
    """Tensors [..., 1] side by side along the last axis (the one tensor itself when there is one)."""
    import torch

    return parts[0] if len(parts) == 1 else torch.cat(parts, -1)


def _spechub(p, q, drafts):
    """Hub-set rule (spechub_theory.methods.spechub, steps 1-5), batched over leading axes, no host sync."""
    import torch

    k = drafts.shape[-1]
    H = _hub_set(q, k - 1)  # [..., k-1]
    in_hub = torch.zeros_like(q, dtype=torch.bool).scatter(-1, H, True)
    out = ~in_hub
    r = torch.where(out, _take(q, H).sum(-1, keepdim=True) * _conditional_on(q, out), 0.0)
    pp = torch.where(out, (p - q).clamp(min=0.0), 0.0)
    p_hub = torch.where(in_hub, p, 0.0)
    pH = p_hub.sum(-1, keepdim=True)
    S1 = torch.where(out, (q - p).clamp(min=0.0), 0.0).sum(-1, keepdim=True)
    S2 = (r - pp).clamp(min=0.0).sum(-1, keepdim=True)
    share = torch.where(pH > 0, p_hub / pH, 0.0)  # p(h)/p(H) on H, 0 off it; rows with p(H) = 0 are discarded
    in_hub_d = _take(in_hub, drafts)  # [..., k]
    type1 = ~in_hub_d[..., :1]
    i = torch.where(type1, drafts[..., :1], drafts[..., k - 1 : k])
    # the four ratios in one call: c_i of a type-1 and a type-2 draft, then the hub factor of each type
    rates = _ratio(torch.cat([_take(p, i), _take(pp, i), (pH - S2).clamp(min=0.0), pH], -1),
                   torch.cat([_take(q, i), _take(r, i), S1, S2], -1))  # [..., 4]
    c_i = torch.where(type1, rates[..., 0:1], rates[..., 1:2])  # [..., 1]
    hub_accept = (1.0 - c_i) * torch.where(type1, rates[..., 2:3], rates[..., 3:4])
    accept = torch.where(in_hub_d, hub_accept * _take(share, drafts), 0.0)
    slot_i = torch.where(type1, 0, k - 1)
    accept = accept + (torch.arange(k, device=q.device) == slot_i) * c_i
    residual = torch.where(in_hub, share * (pH - S1 - S2).clamp(min=0.0), (pp - r).clamp(min=0.0))
    return TorchNodeRule(accept, _normalise(residual, p))


# -- draft laws -----------------------------------------------------------------------------------
def _hub_set(q, size: int):
    """The ``size`` most probable tokens per row, descending, ties to the lowest index: [m, size]."""
    import torch

    if size <= 0:
        return torch.zeros(q.shape[:-1] + (0,), dtype=torch.long, device=q.device)
    if size == 1:
        return torch.argmax(q, -1, keepdim=True)
    return torch.sort(-q, dim=-1, stable=True).indices[..., :size]


def _iid(q, k, u):
    return inverse_cdf(q, u)


def _wor(q, k, u):
    import torch

    out = torch.empty(q.shape[0], k, dtype=torch.long, device=q.device)
    for j in range(k):
        out[:, j] = inverse_cdf(_conditional(q, out[:, :j]), u[:, j : j + 1])[:, 0]
    return out


def _hub(q, k, u):
    """Hub-set law: first ~ q; the hubs follow, or (first in H) H without it then last ~ q(. | V minus H)."""
    import torch

    H = _hub_set(q, k - 1)  # [m, k-1]
    first = inverse_cdf(q, u[:, :1])[:, 0]
    if k == 1:
        return first[:, None]
    last = inverse_cdf(_conditional(q, H), u[:, 1:2])[:, 0]
    in_hub = (H == first[:, None]).any(-1)
    keep = H != first[:, None]  # for in-hub rows exactly k-2 entries, in order
    order = torch.sort((~keep).to(torch.int8), dim=-1, stable=True).indices[:, : k - 2]
    filled = torch.cat([torch.gather(H, 1, order), last[:, None]], dim=1)
    return torch.cat([first[:, None], torch.where(in_hub[:, None], filled, H)], dim=1)


def _optimal(p, q, drafts):
    from .optimal_torch import rule as optimal_rule

    return optimal_rule(p, q, drafts)


_RULES = {"single": _single, "rrs": _rrs, "rrs_wor": _rrs_wor, "spechub": _spechub, "optimal": _optimal}
_LAWS = {"single": _iid, "rrs": _iid, "rrs_wor": _wor, "spechub": _hub, "optimal": _iid}
#: methods with a torch path; others (kseq) verify through the numpy core
FAST_METHODS = frozenset(_RULES)
