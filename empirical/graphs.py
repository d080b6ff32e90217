"""CUDA-graph replay of fixed-shape device work, and a phase clock that never stalls the GPU.

Convention: a *piece* is a zero-argument function over static (preallocated) tensors whose output
tensors it rewrites in place; it must be idempotent (same inputs, same writes), because capture
runs it twice first. Off CUDA, or when capture fails, the piece simply runs eagerly.
"""

from __future__ import annotations

import time

__all__ = ["Graphed", "StepClock"]


class Graphed:
    """A piece captured as a ``torch.cuda.CUDAGraph`` on its first call and replayed after.

    Parameters
    ----------
    fn : callable
        The piece (no arguments; reads and writes static tensors only; no host synchronisation).
    device : torch.device
        Graphs only on CUDA; elsewhere every call runs ``fn``.
    enabled : bool
        False runs ``fn`` eagerly everywhere (the reference).
    name : str
        Names the piece in :attr:`error`.

    Notes
    -----
    One kernel launch per replay instead of one per operator (a 28-layer forward is ~400
    launches). Capture: two warm-up runs on a side stream, then capture on a private memory pool
    (pieces never share pools, so one piece's outputs survive another's replay). If warm-up or
    capture raises, :attr:`error` keeps the reason and the piece runs eagerly from then on.
    """

    def __init__(self, fn, device, *, enabled: bool = True, name: str = "piece"):
        import torch

        self.fn, self.name, self.error = fn, name, None
        self.enabled = bool(enabled) and torch.device(device).type == "cuda"
        self.graph = None

    def __call__(self) -> None:
        """Run the piece (replay, capture on first use, or eager)."""
        if not self.enabled:
            self.fn()
            return
        if self.graph is None:
            self._capture()
            if self.graph is None:
                return
        self.graph.replay()

    def _capture(self) -> None:
        import torch

        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        try:
            with torch.cuda.stream(stream):
                for _ in range(2):
                    self.fn()
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.fn()
            self.graph = graph
        except Exception as exc:  # noqa: BLE001 - any capture failure falls back to eager, with the reason kept
            torch.cuda.current_stream().wait_stream(stream)
            torch.cuda.synchronize()
            self.error = f"{self.name}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            self.enabled = False
            self.fn()  # the warm-up may have stopped half way; the piece is idempotent


class StepClock:
    """Wall time of the phases of one step, read once after the step's one synchronisation.

    On CUDA each :meth:`mark` records an event on the current stream (no host stall); elsewhere it
    reads ``time.perf_counter`` (CPU work is synchronous). :meth:`seconds` (call it after the
    step's synchronisation) returns ``{phase: seconds}`` for consecutive marks plus ``other``: the
    step's host wall time not covered by the device phases (launch gaps, host bookkeeping). The
    CUDA events are created on first use and re-recorded every step (one per mark position).
    """

    def __init__(self, device):
        import torch

        self.cuda = torch.device(device).type == "cuda"
        self.marks: list = []
        self.events: list = []  # CUDA: the events of the mark positions, reused across steps
        self.start_wall = 0.0

    def begin(self) -> None:
        """Start a step (first mark, named by the next :meth:`mark`)."""
        self.marks = []
        self.start_wall = time.perf_counter()
        self._record(None)

    def mark(self, phase: str) -> None:
        """End ``phase`` (it started at the previous mark).

        Parameters
        ----------
        phase : str
            Name of the phase that ends here; marks of one name add up.
        """
        self._record(phase)

    def seconds(self) -> dict:
        """Per phase seconds and ``other`` (host wall time minus the phases; >= 0).

        Call it after the step's synchronisation: on CUDA it reads the events' elapsed times.

        Returns
        -------
        dict
            ``{phase: seconds}`` summed over the marks of each phase, plus ``"other"``: the wall
            time since :meth:`begin` not covered by the phases, clipped at 0.
        """
        wall = time.perf_counter() - self.start_wall
        out: dict = {}
        for (_, a), (phase, b) in zip(self.marks, self.marks[1:]):
            s = a.elapsed_time(b) / 1e3 if self.cuda else b - a
            out[phase] = out.get(phase, 0.0) + s
        out["other"] = max(wall - sum(out.values()), 0.0)
        return out

    def _record(self, phase) -> None:
        if self.cuda:
            at = len(self.marks)
            if at == len(self.events):
                import torch

                self.events.append(torch.cuda.Event(enable_timing=True))
            event = self.events[at]
            event.record()
            self.marks.append((phase, event))
        else:
            self.marks.append((phase, time.perf_counter()))
