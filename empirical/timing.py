"""Wall-clock timing of decoding phases that is honest on CUDA (synchronise before reading clocks).

Convention: seconds, ``time.perf_counter``; one :class:`PhaseTimer` per sequence.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

__all__ = ["PhaseTimer", "synchronize", "median_ms"]


def synchronize(device) -> None:
    """Wait for queued work on ``device`` (a no-op on CPU).

    Parameters
    ----------
    device : str or torch.device
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn, device, *, repeat: int = 20, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` in milliseconds, each call synchronised on ``device``.

    Parameters
    ----------
    fn : callable
        No arguments; its device work is waited for after each call.
    device : str or torch.device
    repeat : int
        Timed calls.
    warmup : int
        Untimed calls first (compilation, allocator, caches).

    Returns
    -------
    float
    """
    import statistics

    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


class PhaseTimer:
    """Accumulates wall time per named phase, synchronising the device at both ends of a phase.

    One synchronisation per phase boundary: the decoder copies draft/target laws to the host at
    those points anyway, so the timers add no extra stalls of the GPU pipeline in practice.
    """

    def __init__(self, device):
        self.device = device
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str):
        """Context manager adding the elapsed time of its body to ``seconds[name]``.

        Parameters
        ----------
        name : str

        Yields
        ------
        None
            Nothing; the body is timed.
        """
        synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def take(self) -> dict[str, float]:
        """The accumulated seconds, reset to empty.

        Returns
        -------
        dict[str, float]
        """
        out, self.seconds = self.seconds, {}
        return out
