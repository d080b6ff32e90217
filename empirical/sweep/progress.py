"""Progress of a sweep on stderr: a bar for one process, one line per finished job for many.

Convention: progress counts prompts; with several ranks every rank prints its own lines,
``[rank 1/4] 3/12 jobs  T=0.6 2^3 spechub seed=0 shard 2 (25 prompts) 41.2 s, eta 6 min``, so a
log collected from all ranks (torchrun's ``--tee``) shows who is where and who is slow.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

from ..progress import progress_bar

__all__ = ["sweep_progress"]


@contextmanager
def sweep_progress(ranks, jobs, *, enabled: bool = True):
    """Yield ``done(job, seconds)``, called after each finished job of this rank.

    Parameters
    ----------
    ranks : empirical.sweep.ranks.Ranks
    jobs : sequence of empirical.sweep.plan.Job
        This rank's share.
    enabled : bool
        False: nothing is printed.

    Yields
    ------
    callable
        ``done(job, seconds)``.
    """
    if not enabled or ranks.world_size == 1:
        with progress_bar(total=sum(j.size for j in jobs), enabled=enabled, desc="sweep") as bar:
            yield lambda job, seconds: bar.update(job.size)
        return
    lines = _RankLines(ranks.label, len(jobs))
    yield lines.done


class _RankLines:
    """Per-rank progress lines with an estimate of the time left (mean seconds per job so far)."""

    def __init__(self, label: str, total: int):
        self.label, self.total, self.count, self.start = label, total, 0, time.perf_counter()

    def done(self, job, seconds: float) -> None:
        """Print the line of a finished job."""
        self.count += 1
        left = (time.perf_counter() - self.start) / self.count * (self.total - self.count)
        eta = f"{left:.0f} s" if left < 120 else f"{left / 60:.0f} min"
        sys.stderr.write(f"[{self.label}] {self.count}/{self.total} jobs  {job.cell.label} shard {job.shard} "
                         f"({job.size} prompts) {seconds:.1f} s, eta {eta}\n")
        sys.stderr.flush()
