"""The optimal i.i.d. verifier's node rule in torch: host preparation, selection and accept on the device.

Convention: p = target, q = draft, last axis = vocabulary; drafts [..., k] i.i.d. from q.
Source: ``spechub_theory.methods.optimal`` (the numpy reference) and docs/optimal-verifier.md.

The per-node preparation (sort, cut, water levels, gap levels) runs on the host with the core's
:func:`spechub_theory.methods.optimal.plan`, one per distinct row of the broadcast (p, q)
(:mod:`empirical.plan_pool`): in this process, serially or in ``PLAN_THREADS`` threads (the
default; its PAVA and heap parts hold the GIL, so threads overlap only the numpy passes), or with
``$SPECHUB_PLAN_PROCESSES`` = P > 0 in a pool of P spawned processes that run whole plans in
parallel. Across that process boundary, by default (``$SPECHUB_PLAN_TRANSPORT`` = ``shm``), only a
task's few numbers (block name, layout, k, row) and the cut m cross a pipe: p, q and the plan's
arrays (rank, accept ratio, residual, range-maximum blocks and table; 2.4 + 5.9 MB a row at
n = 151,936) are written into one shared-memory block of the parent; ``pipe`` ships them pickled
instead (the old transport). The plans' arrays go to the device once per call, and the selection
probabilities (exact integral over the level u) and the accept probabilities of all nodes are
computed there in one batched pass.
"""

from __future__ import annotations

import os

from spechub_theory.methods.range_max import BLOCK

from .plan_pool import TRANSPORTS, plan_rows, shutdown

__all__ = ["rule", "PLAN_THREADS", "PLAN_PROCESSES_ENV", "PLAN_TRANSPORT_ENV", "plan_processes", "plan_transport",
           "shutdown_plan_pool"]

#: threads building the plans of one batch of rows (a quarter of the cores, at most 4: the
#: experiment driver runs several worker processes on one host)
PLAN_THREADS = max(1, min(4, (os.cpu_count() or 1) // 4))
#: environment variable: P > 0 builds the plans in P spawned processes instead of threads
PLAN_PROCESSES_ENV = "SPECHUB_PLAN_PROCESSES"
#: environment variable: how the processes' plans travel, ``shm`` (default) or ``pipe``
PLAN_TRANSPORT_ENV = "SPECHUB_PLAN_TRANSPORT"


def plan_processes() -> int:
    """Count the processes that build the plans (``$SPECHUB_PLAN_PROCESSES``; 0, the default: threads).

    Returns
    -------
    int
        P >= 0.

    Raises
    ------
    ValueError
        When the variable is set to something other than a non-negative integer.
    """
    raw = os.environ.get(PLAN_PROCESSES_ENV, "0").strip() or "0"
    if not raw.isdigit():
        raise ValueError(f"${PLAN_PROCESSES_ENV} must be a non-negative integer; got {raw!r}.")
    return int(raw)


def plan_transport() -> str:
    """Name how the plan processes' inputs and plans travel (``$SPECHUB_PLAN_TRANSPORT``; default ``shm``).

    Returns
    -------
    str
        ``"shm"`` (shared memory) or ``"pipe"`` (pickled through the pool's pipes).

    Raises
    ------
    ValueError
        When the variable is set to another value.
    """
    raw = os.environ.get(PLAN_TRANSPORT_ENV, "shm").strip() or "shm"
    if raw not in TRANSPORTS:
        raise ValueError(f"${PLAN_TRANSPORT_ENV} must be one of {', '.join(TRANSPORTS)}; got {raw!r}.")
    return raw


def shutdown_plan_pool() -> None:
    """Stop the plan processes of :func:`rule` and unlink their shared memory, if any were started.

    A ``multiprocessing`` worker that returns ends with ``os._exit``, which skips the exit hooks
    (the executor's and :mod:`empirical.plan_pool`'s): its spawned plan processes would outlive it
    and keep its stdout open (on the H200 on 2026-12-02 a driver's output pipe then never closed
    and the call timed out), and its shared-memory block would be left to the resource tracker.
    Call this before a process that used ``rule`` returns; harmless when no pool exists.
    """
    shutdown()


def rule(p, q, drafts):
    """Node rule of ``optimal`` for p, q float64 tensors [..., n] and drafts int64 [..., k].

    Returns a :class:`empirical.torch_rule.TorchNodeRule` (accept [..., k], residual [..., n]) equal
    to ``spechub_theory.methods.optimal.rule`` on the same inputs (parity-tested, float64). Host work:
    one plan per row of the broadcast (p, q) (:func:`empirical.plan_pool.plan_rows`; rows that
    only the drafts' leading axes repeat share a plan); device work O(k log k) per node plus the
    residual copy.

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
    pq_lead = torch.broadcast_shapes(p.shape[:-1], q.shape[:-1])
    lead = torch.broadcast_shapes(pq_lead, drafts.shape[:-1])
    pb = p.expand(*pq_lead, n).reshape(-1, n)  # [R, n]: one plan a row
    qb = q.expand(*pq_lead, n).reshape(-1, n)
    db = drafts.expand(*lead, k).reshape(-1, k)  # [B, k]
    plans = plan_rows(pb, qb, k, processes=plan_processes(), threads=PLAN_THREADS, transport=plan_transport())
    device = p.device
    rows = torch.arange(len(pb), device=device).reshape(pq_lead).expand(lead).reshape(-1)  # [B]: each node's plan
    pos = plans.rank[rows[:, None], db]  # [B, k]
    cut = plans.m[rows][:, None]  # [B, 1]
    valid = pos >= 0
    top = pos.max(dim=-1, keepdim=True).values
    lo = torch.where(valid, pos, top)
    g = _range_max((plans.blocks, plans.table), rows, lo, top.expand_as(lo))
    same = (pos >= cut) == (top >= cut)
    g = torch.where(valid & same, g, torch.ones_like(g))
    gs, order = torch.sort(g, dim=-1, stable=True)
    steps = torch.diff(torch.cat([gs, torch.ones_like(gs[:, :1])], dim=-1), dim=-1)
    share = torch.flip(torch.cumsum(torch.flip(steps / torch.arange(1, k + 1, device=device, dtype=gs.dtype), [-1]), -1), [-1])
    select = torch.empty_like(share).scatter_(1, order, share)
    select = torch.where(top >= 0, select, torch.zeros_like(select))
    accept = select * plans.accept_ratio[rows[:, None], db]
    residual = plans.residual if len(db) == len(pb) else plans.residual[rows]  # [B, n]
    return TorchNodeRule(accept=accept.reshape(*lead, k), residual=residual.reshape(*lead, n))


def _range_max(tables, rows, lo, hi):
    """max(levels[lo:hi]) per entry (0 where lo >= hi), as :meth:`RangeMax.query`, in the plans of
    ``rows`` [B] of tables (blocks [R, NB, BLOCK], table [R, LOG, NB]); lo, hi [B, k]."""
    import torch

    blocks, table = tables
    rows = rows[:, None].expand_as(lo)
    empty = hi <= lo
    last = torch.where(empty, lo, hi - 1)
    b_lo = torch.clamp(lo // BLOCK, max=blocks.shape[1] - 1)
    b_hi = torch.clamp(last // BLOCK, max=blocks.shape[1] - 1)
    col = torch.arange(BLOCK, device=blocks.device)
    pos_lo = (lo - b_lo * BLOCK)[..., None]
    pos_hi = (last - b_hi * BLOCK)[..., None]
    same = (b_lo == b_hi)[..., None]
    zero = torch.zeros((), dtype=blocks.dtype, device=blocks.device)
    head = torch.where((col >= pos_lo) & (~same | (col <= pos_hi)), blocks[rows, b_lo], zero).amax(dim=-1)
    tail = torch.where((col <= pos_hi) & ~same, blocks[rows, b_hi], zero).amax(dim=-1)
    out = torch.maximum(head, tail)
    inner_lo, inner_hi = b_lo + 1, b_hi
    some = inner_hi > inner_lo
    length = torch.where(some, inner_hi - inner_lo, torch.ones_like(inner_hi))
    j = torch.floor(torch.log2(length.to(torch.float64))).to(torch.long)
    a = table[rows, j, torch.where(some, inner_lo, torch.zeros_like(inner_lo))]
    b = table[rows, j, torch.where(some, inner_hi - (1 << j), torch.zeros_like(inner_hi))]
    out = torch.where(some, torch.maximum(out, torch.maximum(a, b)), out)
    return torch.where(empty, zero, out)
