"""Tree speculative decoding of one prompt with a real target/draft pair and any verification method.

Convention: p = target, q = draft, last axis = vocabulary; tokens per step = accepted drafts + 1.
Each step: the draft grows the tree level by level (one batched forward per level over its KV
cache, tree mask, positions by depth), the target scores root + tree in one forward, the core's
tree walk (``spechub_theory.trees.walk``) accepts a path, and both caches keep exactly that path.
The loop itself is :mod:`empirical.batch_decoder` (one prompt = a batch of one); this module holds
the sampling settings, the step and result types and :func:`decode`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spechub_theory.trees.shapes import Tree

from .probs import probs_from_logits

__all__ = ["AR", "ROOT_ONLY", "Sampling", "Step", "NodeLaws", "Decoded", "decode"]

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
        """Device float32 laws of ``logits`` [m, vocab] (see :func:`empirical.probs.probs_from_logits`)."""
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
    """Result of decoding one prompt: new ``tokens``, the ``steps``, why it stopped
    (``finish``: "eos" or "length") and the prefill time (both models, seconds)."""

    tokens: tuple
    steps: tuple
    finish: str
    prefill_s: float

    @property
    def tokens_per_step(self) -> float:
        """Emitted tokens / target forwards for this prompt (accepted + 1 convention)."""
        return len(self.tokens) / max(len(self.steps), 1)


def decode(pair, prompt_ids, *, tree, method, sampling=Sampling(), max_new_tokens=128, rng=None, on_step=None,
           engine: str = "auto") -> Decoded:
    """Decode one prompt by tree speculative decoding (or plain sampling for ``method="ar"``).

    Parameters
    ----------
    pair : empirical.models.ModelPair
        Target, draft, tokenizer, device and the EOS ids.
    prompt_ids : sequence of int
        The prompt's token ids (at least one).
    tree : spechub_theory.trees.shapes.Tree or str
        Token tree (``"2^4"``); ignored for ``method="ar"``.
    method : str
        ``single``, ``rrs``, ``rrs_wor``, ``kseq``, ``spechub`` or ``ar``.
    sampling : Sampling
        Temperature / top-p of p and q.
    max_new_tokens : int
        Token budget; the last step is cut to it.
    rng : numpy Generator or seed
        Source of all randomness (drafts, uniforms, residual and bonus draws), fresh every step.
    on_step : callable, optional
        ``on_step(step, laws)`` with a :class:`Step` and its :class:`NodeLaws`, called after each
        step outside the timed phases (for node-level measurement).
    engine : str
        Where drafts are sampled and the tree walked: ``torch`` (on the device, see
        :mod:`empirical.fast_verify`), ``numpy`` (the float64 core, every method) or ``auto``
        (torch on CUDA when it has the method, numpy otherwise). Both give the same tokens for the
        same ``rng``.

    Returns
    -------
    Decoded

    Notes
    -----
    :func:`empirical.batch_decoder.decode_batch` with one row. Per step: ``tree.depth`` draft
    forwards, one target forward over ``tree.size`` tokens and O(depth * k * vocab) verification
    work. With the torch engine laws stay on the device (one host sync per visited node); with the
    numpy engine q is copied per draft level and p per visited node. ``on_step`` laws are copied to
    the host outside the timed phases.
    """
    from .batch_decoder import decode_batch  # the one decoding loop; a single prompt is a batch of one

    relay = None if on_step is None else (lambda row, step, laws: on_step(step, laws))
    return decode_batch(pair, [prompt_ids], tree=tree, method=method, rngs=[rng], sampling=sampling,
                        max_new_tokens=max_new_tokens, on_step=relay, engine=engine)[0]


def _cut(tokens, budget: int, eos_ids) -> tuple:
    """The emitted tokens up to the budget, ending at (and including) the first EOS."""
    out = []
    for t in tokens[:budget]:
        out.append(int(t))
        if t in eos_ids:
            break
    return tuple(out)
