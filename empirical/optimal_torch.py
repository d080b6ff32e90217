"""The optimal i.i.d. verifier's node rule in torch: host preparation, selection and accept on the device.

Convention: p = target, q = draft, last axis = vocabulary; drafts [..., k] i.i.d. from q.
Source: ``spechub_theory.methods.optimal`` (the numpy reference) and docs/optimal-verifier.md.

The per-node preparation (sort, cut, water levels, gap levels) runs on the host with the core's
:func:`spechub_theory.methods.optimal.plan` (its heap pass is sequential: a device gains nothing
there); the plan's arrays (rank, accept ratio, residual, range-maximum table) go to the device
once per node, and the selection probabilities (exact integral over the level u) and the accept
probabilities of all nodes are computed there in one batched pass.
"""

from __future__ import annotations

import numpy as np

from spechub_theory.methods import optimal

__all__ = ["rule"]


def rule(p, q, drafts):
    """Node rule of ``optimal`` for p, q float64 tensors [..., n] and drafts int64 [..., k].

    Returns a :class:`empirical.torch_rule.TorchNodeRule` (accept [..., k], residual [..., n]) equal
    to ``spechub_theory.methods.optimal.rule`` on the same inputs (parity-tested, float64). Host work:
    one plan per row (cached by content); device work O(k log k) per node plus the residual copy.

    Parameters
    ----------
    p, q : torch.Tensor, shape (..., n)
        Target and draft laws, last axis = vocabulary (float64).
    drafts : torch.Tensor of int64, shape (..., k)

    Returns
    -------
    TorchNodeRule
    """
    import torch

    from .torch_rule import TorchNodeRule

    n, k = p.shape[-1], drafts.shape[-1]
    lead = torch.broadcast_shapes(p.shape[:-1], q.shape[:-1], drafts.shape[:-1])
    pb = p.expand(*lead, n).reshape(-1, n)
    qb = q.expand(*lead, n).reshape(-1, n)
    db = drafts.expand(*lead, k).reshape(-1, k)
    p_host, q_host = pb.detach().cpu().numpy(), qb.detach().cpu().numpy()
    plans = [optimal.plan(p_host[i], q_host[i], k) for i in range(len(pb))]
    device = p.device
    rank = torch.as_tensor(np.stack([pl.rank for pl in plans]), device=device)  # [B, n]
    ratio = torch.as_tensor(np.stack([pl.accept_ratio for pl in plans]), device=device)  # [B, n]
    residual = torch.as_tensor(np.stack([pl.residual for pl in plans]), device=device)  # [B, n]
    cut = torch.as_tensor([pl.m for pl in plans], device=device)[:, None]  # [B, 1]
    table = _tables(plans, device)  # [B, LOG, W]
    pos = torch.gather(rank, 1, db)  # [B, k]
    valid = pos >= 0
    top = pos.max(dim=-1, keepdim=True).values
    lo = torch.where(valid, pos, top)
    g = _range_max(table, lo, top.expand_as(lo))
    same = (pos >= cut) == (top >= cut)
    g = torch.where(valid & same, g, torch.ones_like(g))
    gs, order = torch.sort(g, dim=-1, stable=True)
    steps = torch.diff(torch.cat([gs, torch.ones_like(gs[:, :1])], dim=-1), dim=-1)
    share = torch.flip(torch.cumsum(torch.flip(steps / torch.arange(1, k + 1, device=device, dtype=gs.dtype), [-1]), -1), [-1])
    select = torch.empty_like(share).scatter_(1, order, share)
    select = torch.where(top >= 0, select, torch.zeros_like(select))
    accept = select * torch.gather(ratio, 1, db)
    return TorchNodeRule(accept=accept.reshape(*lead, k), residual=residual.reshape(*lead, n))


def _tables(plans, device):
    """The plans' range-maximum tables padded to one [B, LOG, W] float64 tensor."""
    import torch

    log = max(pl._table.shape[0] for pl in plans)
    width = max(pl._table.shape[1] for pl in plans)
    out = np.zeros((len(plans), log, width))
    for i, pl in enumerate(plans):
        out[i, : pl._table.shape[0], : pl._table.shape[1]] = pl._table
    return torch.as_tensor(out, device=device)


def _range_max(table, lo, hi):
    """max(levels[lo:hi]) per entry (0 where lo >= hi), from the sparse table; lo, hi [B, k]."""
    import torch

    length = hi - lo
    some = length > 0
    j = torch.where(some, torch.floor(torch.log2(length.clamp(min=1).to(torch.float64))).to(torch.long), 0)
    rows = torch.arange(table.shape[0], device=table.device)[:, None].expand_as(lo)
    a = table[rows, j, lo.clamp(min=0).clamp(max=table.shape[2] - 1)]
    b = table[rows, j, (hi - (1 << j)).clamp(min=0).clamp(max=table.shape[2] - 1)]
    return torch.where(some, torch.maximum(a, b), torch.zeros_like(a))
