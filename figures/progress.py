"""Progress lines on stderr for the report: ``[report 2/6 12.3 s] gap map: 5120/20000 pairs``.

Convention: one line per event, flushed, never on stdout (stdout holds only the final paths).
"""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """Stage counter with elapsed time; ``stage(name)`` starts a stage, ``__call__(msg)`` logs in it.

    Examples
    --------
    >>> import io
    >>> buf = io.StringIO()
    >>> p = Progress(2, stream=buf, clock=lambda: 0.0)
    >>> p.stage("sweep"); p("half done")
    >>> buf.getvalue().splitlines()
    ['[report 1/2    0.0 s] sweep', '[report 1/2    0.0 s]   half done']
    """

    def __init__(self, stages: int, *, stream=None, enabled: bool = True, clock=time.perf_counter):
        self.stages = int(stages)
        self.current = 0
        self.stream = stream
        self.enabled = enabled
        self._clock = clock
        self._start = clock()

    def stage(self, name: str) -> None:
        """Start the next stage and print its name.

        Parameters
        ----------
        name : str
        """
        self.current += 1
        self._emit(name)

    def __call__(self, message: str) -> None:
        """Print a progress message inside the current stage."""
        self._emit(f"  {message}")

    def elapsed(self) -> float:
        """The seconds since the start.

        Returns
        -------
        float
        """
        return self._clock() - self._start

    def _emit(self, text: str) -> None:
        if self.enabled:
            stream = self.stream if self.stream is not None else sys.stderr
            print(f"[report {self.current}/{self.stages} {self.elapsed():6.1f} s] {text}", file=stream, flush=True)
