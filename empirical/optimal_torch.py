"""The optimal i.i.d. verifier's node rule in torch: host preparation, selection and accept on the device.

Convention: p = target, q = draft, last axis = vocabulary; drafts [..., k] i.i.d. from q.
Source: ``spechub_theory.methods.optimal`` (the numpy reference) and docs/optimal-verifier.md.

The per-node preparation (sort, cut, water levels, gap levels) runs on the host with the core's
:func:`spechub_theory.methods.optimal.plan`, one per visited node and row, in a few threads or,
with ``$SPECHUB_PLAN_PROCESSES`` = P > 0, in a pool of P spawned processes (its PAVA and heap parts
hold the GIL, so threads overlap only the numpy passes; processes run whole plans in parallel, at
the cost of shipping p, q and the plan's arrays, ~6 MB a plan at n = 151,936, through a pipe); the
plan's arrays (rank, accept ratio, residual, range-maximum blocks) go to the device once per node,
and the selection probabilities (exact integral over the level u) and the accept probabilities of
all nodes are computed there in one batched pass.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from spechub_theory.methods import optimal
from spechub_theory.methods.range_max import BLOCK

__all__ = ["rule", "PLAN_THREADS", "PLAN_PROCESSES_ENV", "plan_processes", "shutdown_plan_pool"]

#: threads building the plans of one batch of rows (a quarter of the cores, at most 4: the
#: experiment driver runs several worker processes on one host)
PLAN_THREADS = max(1, min(4, (os.cpu_count() or 1) // 4))
#: environment variable: P > 0 builds the plans in P spawned processes instead of threads
PLAN_PROCESSES_ENV = "SPECHUB_PLAN_PROCESSES"
_pool = None  # (processes, executor), made on first use and kept for the process's lifetime


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


def shutdown_plan_pool() -> None:
    """Stop the plan processes of :func:`rule` (``$SPECHUB_PLAN_PROCESSES``), if any were started.

    A ``multiprocessing`` worker that returns ends with ``os._exit``, which skips the executor's own
    exit hook: its spawned plan processes would outlive it and keep its stdout open (on the H200 on
    2026-12-02 a driver's output pipe then never closed and the call timed out). Call this before a
    process that used ``rule`` returns; harmless when no pool exists.
    """
    global _pool
    if _pool is not None:
        _pool[1].shutdown(wait=True, cancel_futures=True)
        _pool = None


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
    plans = _plans(p_host, q_host, k)
    device = p.device
    rank = torch.as_tensor(np.stack([pl.rank for pl in plans]), device=device)  # [B, n]
    ratio = torch.as_tensor(np.stack([pl.accept_ratio for pl in plans]), device=device)  # [B, n]
    residual = torch.as_tensor(np.stack([pl.residual for pl in plans]), device=device)  # [B, n]
    cut = torch.as_tensor([pl.m for pl in plans], device=device)[:, None]  # [B, 1]
    table = _tables(plans, device)  # blocks [B, NB, BLOCK], table [B, LOG, NB]
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


class _PlanArrays(NamedTuple):
    """What the device needs of one plan (picklable, so a process pool can return it)."""

    rank: np.ndarray
    accept_ratio: np.ndarray
    residual: np.ndarray
    m: int
    blocks: np.ndarray  # range-maximum blocks [NB, BLOCK]
    table: np.ndarray  # sparse table over the block maxima [LOG, NB]


def _plan_arrays(p, q, k: int) -> _PlanArrays:
    pl = optimal.plan(p, q, k)
    return _PlanArrays(pl.rank, pl.accept_ratio, pl.residual, pl.m, pl._table.blocks, pl._table.table)


def _plans(p_host, q_host, k):
    """:func:`_plan_arrays` of every row: in a pool of :func:`plan_processes` spawned processes
    when that is > 0, else in up to PLAN_THREADS threads (numpy's sorts and array passes run
    without the GIL; the PAVA and heap parts do not, so the gain of threads is partial: 1.4x with
    2 threads on a loaded 2-core machine)."""
    global _pool
    args = (p_host, q_host, [k] * len(p_host))
    processes = plan_processes()
    if len(p_host) <= 1 or (processes == 0 and PLAN_THREADS <= 1):
        return list(map(_plan_arrays, *args))
    if processes > 0:
        if _pool is None or _pool[0] != processes:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            _pool = (processes, ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")))
        return list(_pool[1].map(_plan_arrays, *args))
    with ThreadPoolExecutor(min(PLAN_THREADS, len(p_host))) as pool:
        return list(pool.map(_plan_arrays, *args))


def _tables(plans, device):
    """The plans' range-maximum structures padded to tensors: blocks [B, NB, BLOCK], table [B, LOG, NB]."""
    import torch

    nb = max(pl.blocks.shape[0] for pl in plans)
    log = max(pl.table.shape[0] for pl in plans)
    blocks = np.zeros((len(plans), nb, BLOCK))
    table = np.zeros((len(plans), log, nb))
    for i, pl in enumerate(plans):
        blocks[i, : pl.blocks.shape[0]] = pl.blocks
        table[i, : pl.table.shape[0], : pl.table.shape[1]] = pl.table
    return torch.as_tensor(blocks, device=device), torch.as_tensor(table, device=device)


def _range_max(tables, lo, hi):
    """max(levels[lo:hi]) per entry (0 where lo >= hi), as :meth:`RangeMax.query`; lo, hi [B, k]."""
    import torch

    blocks, table = tables
    rows = torch.arange(blocks.shape[0], device=blocks.device)[:, None].expand_as(lo)
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
