r"""Draw the trials of a model-level audit in several forked worker processes (CPU).

Convention: p = target, q = draft; a trial is one call ``sampler(rng) -> tokens`` and trials are
independent, so they may run anywhere as long as each has its own seed. With ``workers = 1`` the
trials run here on the audit's stream (``sampler(g)`` in turn, as before); with ``workers >= 2``
trial i runs in a forked child on ``default_rng(seed_i)``, seed_i drawn from the audit's stream up
front, so the outcome is the same for any worker count >= 2 and any chunking. Fork shares the loaded
models copy-on-write (no reload) and is CPU only: a process that has initialised CUDA cannot fork.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["draw_trials", "check_workers"]

#: trials per task handed to a worker (progress granularity vs. scheduling overhead)
CHUNK = 32

_SAMPLER = None  # the sampler inherited by forked workers


def check_workers(workers) -> int:
    """Validate ``workers`` (an integer >= 1) and return it as int.

    Parameters
    ----------
    workers : int
        Number of processes; a bool or a non-integer is refused.

    Returns
    -------
    int
        ``workers`` as a Python int.

    Raises
    ------
    ValueError
        If ``workers`` is a bool, not integral, or below 1.
    """
    if isinstance(workers, bool) or int(workers) != workers or workers < 1:
        raise ValueError(f"`workers` must be an integer >= 1; got {workers!r}.")
    return int(workers)


def draw_trials(sampler, g, n_trials: int, *, workers: int = 1, progress=None, every: int = 16):
    """Yield ``np.asarray(sampler(...))`` for ``n_trials`` independent trials (module docstring).

    Parameters
    ----------
    sampler : callable ``sampler(rng) -> tokens``
    g : numpy Generator
        The audit's stream.
    n_trials : int
    workers : int, optional
        Processes; >= 2 forks (CPU models only).
    progress : callable ``progress(done, total)``, optional
    every : int, optional
        Progress call interval in the sequential path.

    Yields
    ------
    ndarray
        One trial's tokens, in trial order.

    Raises
    ------
    ValueError
        If ``workers`` is not an integer >= 1, or ``workers >= 2`` while CUDA is initialised.
    """
    workers = check_workers(workers)
    if workers == 1 or n_trials <= CHUNK:
        for i in range(n_trials):
            yield np.asarray(sampler(g))
            if progress is not None and ((i + 1) % every == 0 or i + 1 == n_trials):
                progress(i + 1, n_trials)
        return
    _refuse_cuda()
    import multiprocessing as mp

    global _SAMPLER
    seeds = g.integers(2**63 - 1, size=n_trials, dtype=np.int64)
    chunks = [seeds[s : s + CHUNK] for s in range(0, n_trials, CHUNK)]
    _SAMPLER, done = sampler, 0
    try:
        with mp.get_context("fork").Pool(workers) as pool:
            for part in pool.imap(_run_chunk, chunks):
                for tokens in part:
                    yield tokens
                done += len(part)
                if progress is not None:
                    progress(done, n_trials)
    finally:
        _SAMPLER = None


def _run_chunk(seeds) -> list:
    """Worker: the trials of one chunk, each on its own seed."""
    return [np.asarray(_SAMPLER(np.random.default_rng(int(s)))) for s in seeds]


def _refuse_cuda() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise ValueError("`workers` >= 2 forks, which CUDA does not allow once initialised: use workers = 1 on a GPU "
                         "(or one process per setting).")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
