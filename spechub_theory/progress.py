"""A one-line progress bar on stderr with no dependency: ``[#####.....] 52% spechub 3.1 s``.

Convention: ``bar.bind(label)`` gives the ``progress(done, total)`` callback that long library loops
(``simulate``) accept; consecutive runs add up to ``total``.
"""

from __future__ import annotations

import sys
import time

__all__ = ["ProgressBar"]


class ProgressBar:
    """A one-line progress bar on stderr (no dependency): ``[#####.....] 52% spechub 3.1 s``."""

    def __init__(self, total: int, width: int = 30, stream=None):
        self.total, self.width, self.stream = max(int(total), 1), width, stream or sys.stderr
        self.base, self.start, self.last = 0, time.perf_counter(), 0.0

    def bind(self, label: str):
        """A ``progress(done, total)`` callback for one run; runs are counted one after another.

        Parameters
        ----------
        label : str

        Returns
        -------
        callable
        """

        def callback(done, total):
            self.update(self.base + done, label)
            if done >= total:
                self.base += total

        return callback

    def update(self, done: int, label: str = "") -> None:
        """Redraw at most 10 times a second.

        Parameters
        ----------
        done : int
        label : str, optional
        """
        now = time.perf_counter()
        if now - self.last < 0.1 and done < self.total:
            return
        self.last = now
        frac = min(done / self.total, 1.0)
        fill = int(round(frac * self.width))
        self.stream.write(f"\r[{'#' * fill}{'.' * (self.width - fill)}] {frac:4.0%} {label:<20} {now - self.start:6.1f} s")
        self.stream.flush()

    def close(self) -> None:
        """End the line."""
        self.stream.write("\n")
        self.stream.flush()
