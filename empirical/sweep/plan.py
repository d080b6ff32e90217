"""The sweep's plan: (cell, prompt-shard) jobs in a fixed order, and each rank's share of them.

Convention: a cell is (temperature, tree, method, seed); shard s holds the prompts with global
indices [s * shard_size, min((s + 1) * shard_size, num_prompts)). The order is the config's:
groups in file order, then temperatures, seeds, trees, methods, shards. Rank r of W takes the
jobs at positions r, r + W, r + 2W, ... of the jobs left to do (a partition, the same on every
rank because all ranks are handed the same list).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..decode_types import AR
from ..run import AR_TREE

__all__ = ["Cell", "Job", "plan_jobs", "rank_share", "cells_of"]


@dataclass(frozen=True, order=True)
class Cell:
    """One setting decoded over all prompts: temperature, tree, method and seed.

    Attributes
    ----------
    temperature : float
    tree : str
        Tree name (``"none"`` for ``ar``, which uses no tree).
    method : str
    seed : int
    """

    temperature: float
    tree: str
    method: str
    seed: int

    @property
    def label(self) -> str:
        """``T=0.6 2^3 spechub seed=0``."""
        return f"T={self.temperature:g} {self.tree} {self.method} seed={self.seed}"


@dataclass(frozen=True)
class Job:
    """One shard of prompts decoded in one cell (the unit of work and of resumption).

    Attributes
    ----------
    cell : Cell
    shard : int
        Shard index; the job decodes prompts ``start`` ... ``stop - 1`` (global indices).
    start, stop : int
    """

    cell: Cell
    shard: int
    start: int
    stop: int

    @property
    def key(self) -> str:
        """Identity of the job across runs and ranks, e.g. ``T=0.6|2^3|spechub|seed=0|shard=1``."""
        c = self.cell
        return f"T={c.temperature!r}|{c.tree}|{c.method}|seed={c.seed}|shard={self.shard}"

    @property
    def size(self) -> int:
        """Prompts in the job."""
        return self.stop - self.start


def cells_of(config) -> tuple:
    """The distinct cells of a :class:`~empirical.sweep.config.SweepConfig`, in plan order.

    Parameters
    ----------
    config : SweepConfig

    Returns
    -------
    tuple of Cell
        A cell listed by two groups appears once, where it first appears; ``ar`` appears once per
        (temperature, seed) under the tree ``"none"``.
    """
    cells: dict = {}
    for group in config.groups:
        for temperature in config.temperatures:
            for seed in group.seeds:
                for tree in group.trees or (AR_TREE,):
                    for method in group.methods:
                        cell = Cell(float(temperature), AR_TREE if method == AR else tree, method, int(seed))
                        cells.setdefault(cell, None)
    return tuple(cells)


def plan_jobs(config, num_prompts: int | None = None, *, done=frozenset()) -> tuple:
    """Every (cell, shard) job of the sweep not yet done, in plan order.

    Parameters
    ----------
    config : SweepConfig
    num_prompts : int, optional
        Prompts actually available (a prompts file may hold fewer than ``config.num_prompts``);
        default ``config.num_prompts``.
    done : set of str
        :attr:`Job.key` of finished jobs, left out.

    Returns
    -------
    tuple of Job
        ``len(cells) * ceil(num_prompts / shard_size)`` jobs minus the done ones. O(jobs).

    Raises
    ------
    ValueError
        If ``num_prompts`` is not a positive integer.
    """
    n = config.num_prompts if num_prompts is None else int(num_prompts)
    if n < 1:
        raise ValueError(f"`num_prompts` must be >= 1; got {num_prompts}.")
    size = config.shard_size
    shards = [(s, s * size, min((s + 1) * size, n)) for s in range((n + size - 1) // size)]
    jobs = (Job(cell, s, lo, hi) for cell in cells_of(config) for s, lo, hi in shards)
    return tuple(job for job in jobs if job.key not in done)


def rank_share(jobs, rank: int, world_size: int) -> tuple:
    """The jobs rank ``rank`` of ``world_size`` runs: every ``world_size``-th, from position ``rank``.

    Parameters
    ----------
    jobs : sequence of Job
        The same list on every rank (see :func:`plan_jobs`).
    rank : int
        In [0, world_size).
    world_size : int
        At least 1.

    Returns
    -------
    tuple of Job
        The shares of ranks 0 ... W-1 partition ``jobs``: disjoint, together all of them, in order;
        their sizes differ by at most one job.

    Raises
    ------
    ValueError
        If ``world_size < 1`` or ``rank`` is outside [0, world_size).
    """
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"`world_size` must be an integer >= 1; got {world_size!r}.")
    if not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"`rank` must be an integer in [0, {world_size}); got {rank!r}.")
    return tuple(jobs[rank::world_size])
