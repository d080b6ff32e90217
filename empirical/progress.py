"""A progress bar on stderr: tqdm when installed, else a one-line counter.

Convention: ``with progress_bar(total=n) as bar: bar.update(1)``; disabled bars do nothing.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

__all__ = ["progress_bar"]


@contextmanager
def progress_bar(*, total: int, enabled: bool = True, desc: str = ""):
    """Yield an object with ``update(n)``; tqdm if available, a plain stderr counter otherwise.

    Parameters
    ----------
    total : int
    enabled : bool, optional
    desc : str, optional

    Yields
    ------
    object
    """
    if not enabled:
        yield _Silent()
        return
    try:
        from tqdm import tqdm
    except ImportError:
        bar = _Plain(total, desc)
        try:
            yield bar
        finally:
            bar.close()
        return
    with tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True) as bar:
        yield bar


class _Silent:
    def update(self, n: int = 1) -> None:
        """Ignore progress."""


class _Plain:
    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.done, self.start = total, desc, 0, time.perf_counter()

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` and redraw the line."""
        self.done += n
        rate = self.done / max(time.perf_counter() - self.start, 1e-9)
        sys.stderr.write(f"\r{self.desc}: {self.done}/{self.total} ({rate:.2f}/s)")
        sys.stderr.flush()

    def close(self) -> None:
        """End the line."""
        sys.stderr.write("\n")
