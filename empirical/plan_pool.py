"""The optimal verifier's host plans for a batch of rows: serially, in threads, or in spawned processes.

Convention: p = target, q = draft, last axis = vocabulary; row i gets ``optimal.plan(p[i], q[i], k)``.
Source: :mod:`spechub_theory.methods.optimal`; docs/optimal-verifier.md §7; BENCHMARKS.md §8.1.

Every path writes the plans into the one layout of :mod:`empirical.plan_layout` (each field of a
batch one contiguous array, one copy to the device). The process pool has two transports:

* ``"shm"`` (the default): p, q and that layout live in one ``multiprocessing.shared_memory`` block
  that the parent allocates (named ``SHM_PREFIX`` + pid + a random tag, grown by replacement when a
  batch does not fit, reused otherwise); a child attaches to it by name (kept attached until the
  name changes), copies its row of p and q out, builds the plan and writes the arrays into its row.
  A task and its answer are a few numbers (block name, rows, n, k, row; m); the parent copies the
  fields out (to the device, or a copy on the CPU: the next batch overwrites the block).
* ``"pipe"``: p and q go to the children and the plan's arrays come back pickled (2.4 MB in,
  5.9 MB out a plan at n = 151,936), the transport before the shared memory, kept for comparison
  and as the fallback when ``SHM_DIR`` has no room for a larger block.

Plans built in processes do not use the parent's cache (``optimal._cache``, content-keyed: hashing
a row of p and q costs ~0.7 ms of the parent's time at n = 151,936, and the rows of a decoding level
are distinct); each child's own ``optimal.plan`` keeps its cache, which serves a repeated row only
when the same child gets it. Threads and the serial path go through the parent's cache.
"""

from __future__ import annotations

import atexit
import os
import secrets
import threading
import warnings
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import shared_memory
from typing import NamedTuple

import numpy as np

from .plan_layout import PlanRows, Slots, plan_arrays, row_words, slots, tensors, write_

__all__ = ["PlanRows", "plan_rows", "shutdown", "TRANSPORTS", "SHM_PREFIX", "SHM_DIR"]

#: how a process pool's plans travel: through shared memory or pickled through the pool's pipes
TRANSPORTS = ("shm", "pipe")
#: names of the parent's shared-memory blocks start with this, then its pid (tests look for leftovers)
SHM_PREFIX = "spechub_plan_"
#: where Linux keeps POSIX shared memory (its free space is checked before a block grows)
SHM_DIR = "/dev/shm"

_lock = threading.RLock()  # one shared-memory batch at a time; pool changes
_pool = None  # (processes, ProcessPoolExecutor) of the parent, made on first use
_block = None  # the parent's SharedMemory holding the pool's inputs and outputs
_attached = None  # in a plan process: the block it last attached to


def plan_rows(p, q, k: int, *, processes: int = 0, threads: int = 1, transport: str = "shm") -> PlanRows:
    """Build one plan per row, in ``processes`` spawned processes, else in ``threads`` threads.

    Parameters
    ----------
    p, q : torch.Tensor, shape (B, n)
        Target and draft laws, one row per plan (float64; any device).
    k : int
        Drafts per node.
    processes : int, optional
        P > 0 builds the plans in a pool of P spawned processes (kept for later calls; one row is
        planned here). 0: threads.
    threads : int, optional
        Threads building the plans when ``processes`` is 0 (1: serially).
    transport : {"shm", "pipe"}, optional
        How the pool's plans travel (module docstring).

    Returns
    -------
    PlanRows
        On ``p.device``; never a view of memory that a later call writes.

    Raises
    ------
    ValueError
        When ``transport`` is not one of ``TRANSPORTS``, or a row is not a valid pair (the message
        names the row and the rule broken, also from a plan process).
    RuntimeError
        When a plan process died (the pool is shut down; the next call starts a new one).

    Notes
    -----
    Parent's work per row: O(n) copies (p and q in, the plan's ~5n + 2n/BLOCK log n words out);
    the plans themselves (O(n log n) each) run in parallel.
    """
    if transport not in TRANSPORTS:
        raise ValueError(f"`transport` must be one of {', '.join(map(repr, TRANSPORTS))}; got {transport!r}.")
    rows, n = p.shape
    pooled = processes > 0 and rows > 1
    if pooled and transport == "shm":
        with _lock:
            block = _block_for(rows, n)
            if block is not None:
                layout = slots(block.buf, block.size // (8 * row_words(n)), n)
                return _in_shared_memory(layout, block.name, p, q, k, processes)
    layout = slots(np.empty(rows * row_words(n)), rows, n)
    p_host, q_host = (x.detach().cpu().numpy() for x in (p, q))
    if pooled:
        pool = _executor(processes)
        futures = [pool.submit(plan_arrays, p_host[i], q_host[i], k) for i in range(rows)]
    elif threads > 1 and rows > 1:
        with ThreadPoolExecutor(min(threads, rows)) as pool:
            futures = [pool.submit(plan_arrays, p_host[i], q_host[i], k) for i in range(rows)]
    else:
        futures = [_run_here(plan_arrays, p_host[i], q_host[i], k) for i in range(rows)]
    m = [write_(layout, i, arrays) for i, arrays in enumerate(_results(futures))]
    return tensors(layout, m, p.device, copy=False)


def shutdown() -> None:
    """Stop the plan processes and unlink the shared-memory block, if there are any.

    Registered with :mod:`atexit`; harmless when nothing was started.
    """
    global _block
    with _lock:
        _stop_pool()
        if _block is not None:
            _release(_block, unlink=True)
            _block = None


atexit.register(shutdown)


class _Task(NamedTuple):
    """One row for a plan process: where the block is and how it is laid out."""

    block: str
    rows: int
    n: int
    k: int
    row: int


def _in_shared_memory(layout: Slots, name: str, p, q, k: int, processes: int) -> PlanRows:
    """The shm transport: p, q into the block, one task a row, the fields copied out."""
    import torch

    rows, n = p.shape
    torch.from_numpy(layout.p[:rows]).copy_(p)
    torch.from_numpy(layout.q[:rows]).copy_(q)
    pool = _executor(processes)
    futures = [pool.submit(_plan_shared, _Task(name, len(layout.p), n, k, i)) for i in range(rows)]
    return tensors(layout, _results(futures), p.device, copy=True)


def _plan_shared(task: _Task) -> int:
    """In a plan process: attach to the block (again only when its name changed), plan one row."""
    global _attached
    if _attached is None or _attached.name != task.block:
        if _attached is not None:
            _release(_attached, unlink=False)
        _attached = shared_memory.SharedMemory(name=task.block)
    layout = slots(_attached.buf, task.rows, task.n)
    p, q = layout.p[task.row].copy(), layout.q[task.row].copy()  # the plan keeps nothing of the block
    return write_(layout, task.row, plan_arrays(p, q, task.k))


def _results(futures) -> list:
    """The futures' results in order, after all have finished (no task of a failed batch still writes)."""
    wait(futures)
    for i, future in enumerate(futures):
        exc = future.exception()
        if isinstance(exc, BrokenProcessPool):
            _stop_pool()
            raise RuntimeError(f"a plan process died while planning row {i} ({exc}); the pool was shut down "
                               "and the next call starts a new one.") from exc
        if isinstance(exc, ValueError):
            raise ValueError(f"the plan of row {i}: {exc}") from exc
        if exc is not None:
            raise RuntimeError(f"the plan of row {i} failed: {exc!r}") from exc
    return [future.result() for future in futures]


def _run_here(fn, *args) -> Future:
    """``fn(*args)`` run now, as a finished future (the serial path shares the pools' error handling)."""
    future = Future()
    try:
        future.set_result(fn(*args))
    except Exception as exc:  # noqa: BLE001 - handed on by _results
        future.set_exception(exc)
    return future


def _executor(processes: int):
    """The pool of ``processes`` spawned processes (a pool of another size is stopped first)."""
    global _pool
    with _lock:
        if _pool is None or _pool[0] != processes:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            _stop_pool()
            _pool = (processes, ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")))
        return _pool[1]


def _stop_pool() -> None:
    global _pool
    if _pool is not None:
        _pool[1].shutdown(wait=True, cancel_futures=True)
        _pool = None


def _block_for(rows: int, n: int):
    """The parent's block, replaced by a larger one (2x, or just large enough where ``SHM_DIR``
    has room only for that) when ``rows`` rows of n do not fit; None (with a warning: the caller
    falls back to the pipes) when it has room for neither."""
    global _block
    need = 8 * rows * row_words(n)
    if _block is not None and _block.size >= need:
        return _block
    free = _free_bytes()  # the old block's pages stay until every child has moved to the new one
    size = next((s for s in (max(need, 2 * _block.size if _block is not None else 0), need) if s <= free), None)
    if size is None:
        warnings.warn(f"{SHM_DIR} has {free / 2**20:.0f} MiB free, the plans' shared memory needs {need / 2**20:.0f} MiB "
                      "for this batch: planning it through the pool's pipes instead.", RuntimeWarning, stacklevel=3)
        return None
    if _block is not None:
        _release(_block, unlink=True)
        _block = None
    _block = shared_memory.SharedMemory(name=f"{SHM_PREFIX}{os.getpid()}_{secrets.token_hex(4)}", create=True, size=size)
    return _block


def _free_bytes() -> float:
    """Free bytes in ``SHM_DIR`` (infinite where there is no such folder: other systems)."""
    try:
        st = os.statvfs(SHM_DIR)
    except OSError:
        return float("inf")
    return st.f_bavail * st.f_frsize


def _release(block, *, unlink: bool) -> None:
    """Close a block (and unlink it: the parent); a view still alive keeps the mapping, not the name."""
    try:
        block.close()
    except BufferError:
        pass
    if unlink:
        block.unlink()
