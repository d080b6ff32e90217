"""Types of tree speculative decoding with real models: sampling settings, one step, node laws, results.

Convention: p = target, q = draft, last axis = vocabulary; tokens per step = accepted drafts + 1.
Each step: the draft grows the tree level by level (one batched forward per level over its KV
cache, tree mask, positions by depth), the target scores root + tree in one forward, the core's
tree walk (``spechub_theory.trees.walk``) accepts a path, and both caches keep exactly that path.
The loop itself is :mod:`empirical.decoder` (one prompt = a batch of one); this module holds
the sampling settings and the step and result types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spechub_theory.trees.shapes import Tree

from .probs import probs_from_logits

__all__ = ["AR", "ROOT_ONLY", "Sampling", "Step", "NodeLaws", "Decoded"]

#: method name of plain autoregressive sampling from the target (no draft, one token per step)
AR = "ar"
#: the tree of plain autoregressive decoding: the root alone (its "bonus" token is a sample of p)
ROOT_ONLY = Tree((-1,))
#: method whose (never used) node rule drives the walk of ROOT_ONLY, which has no verification
_AR_WALK_METHOD = "single"


@dataclass(frozen=True)
class Sampling:
    """Temperature and nucleus applied to p and q alike (T = 0: greedy one-hot)."""

    temperature: float = 1.0
    top_p: float = 1.0

    def __post_init__(self):
        if not np.isfinite(self.temperature) or self.temperature < 0:
            raise ValueError(f"`temperature` must be >= 0 (0 = greedy); got {self.temperature}.")
        if not (0.0 < self.top_p <= 1.0):
            raise ValueError(f"`top_p` must be in (0, 1]; got {self.top_p}.")

    def laws(self, logits):
        """Device float32 laws of ``logits`` [m, vocab] (see :func:`empirical.probs.probs_from_logits`).

        Parameters
        ----------
        logits : torch.Tensor

        Returns
        -------
        torch.Tensor
        """
        return probs_from_logits(logits, self.temperature, self.top_p)


@dataclass(frozen=True)
class Step:
    """One target forward.

    Attributes
    ----------
    tokens : tuple of int
        Emitted tokens (accepted drafts + bonus/residual), cut after EOS or the token budget.
    accepted : int
        Accepted depth of the walk (drafts accepted before any cut).
    visited : tuple of int
        Tree nodes where a verification happened; ``slots`` the accepted slot there (-1: none).
    seconds : dict
        Wall time of the phases ``draft``, ``target``, ``verify`` (walk) and ``cache`` (compaction).
    """

    tokens: tuple
    accepted: int
    visited: tuple
    slots: tuple
    seconds: dict = field(repr=False)


@dataclass(frozen=True)
class NodeLaws:
    """The real (p, q) at the verified nodes of one step, float64 on the host.

    ``p``, ``q``: ndarray [m, vocab]; ``k``: drafts (children) at each node, tuple of m ints.
    """

    p: np.ndarray
    q: np.ndarray
    k: tuple


@dataclass(frozen=True)
class Decoded:
    """Result of decoding one prompt.

    New ``tokens``, the ``steps``, why it stopped (``finish``: "eos" or "length") and the prefill
    time (both models, seconds).
    """

    tokens: tuple
    steps: tuple
    finish: str
    prefill_s: float

    @property
    def tokens_per_step(self) -> float:
        """Emitted tokens / target forwards for this prompt (accepted + 1 convention)."""
        return len(self.tokens) / max(len(self.steps), 1)


def _cut(tokens, budget: int, eos_ids) -> tuple:
    """The emitted tokens up to the budget, ending at (and including) the first EOS."""
    out = []
    for t in tokens[:budget]:
        out.append(int(t))
        if t in eos_ids:
            break
    return tuple(out)
