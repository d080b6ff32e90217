"""Tree speculative decoding of one prompt with a real target/draft pair and any verification method.

Convention: p = target, q = draft, last axis = vocabulary; tokens per step = accepted drafts + 1.
Each step: the draft grows the tree level by level (one batched forward per level over its KV
cache, tree mask, positions by depth), the target scores root + tree in one forward, the core's
tree walk (``spechub_theory.tree_walk``) accepts a path, and both caches keep exactly that path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spechub_theory.trees import Tree

from .engines import get_engine
from .kv_forward import CachedModel, compact_cache
from .probs import probs_from_logits
from .timing import PhaseTimer

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
    tree : spechub_theory.trees.Tree or str
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
    Per step: ``tree.depth`` draft forwards, one target forward over ``tree.size`` tokens and
    O(depth * k * vocab) verification work. With the torch engine laws stay on the device (one
    host sync per visited node); with the numpy engine q is copied per draft level and p per
    visited node. ``on_step`` laws are copied to the host outside the timed phases.
    """
    rng = np.random.default_rng(rng)
    if int(max_new_tokens) < 1:
        raise ValueError(f"`max_new_tokens` must be >= 1; got {max_new_tokens}.")
    if method == AR:
        tree, walk_method = ROOT_ONLY, _AR_WALK_METHOD
    else:
        tree = tree if isinstance(tree, Tree) else Tree.from_name(tree)
        walk_method = method
    session = _Session(pair, tree, walk_method, sampling, prompt_ids, get_engine(engine, walk_method, pair.device))
    prefill_s = session.prefill()
    steps, new = [], []
    finish = "length"
    while len(new) < max_new_tokens:
        step, laws = session.step(rng, budget=max_new_tokens - len(new))
        steps.append(step)
        new.extend(step.tokens)
        if on_step is not None:
            on_step(step, laws)
        if step.tokens and step.tokens[-1] in pair.eos_token_ids:
            finish = "eos"
            break
    return Decoded(tokens=tuple(new), steps=tuple(steps), finish=finish, prefill_s=prefill_s)


class _Session:
    """Decoding state of one sequence.

    Invariants between steps (L = committed length): the target cache holds committed[:L-1];
    the draft cache holds committed[:c] for some c < L (the rest is re-fed at the next step).
    Tree node u lives at cache index L-1+u in both caches during a step (root = last token).
    """

    def __init__(self, pair, tree: Tree, method: str, sampling: Sampling, prompt_ids, engine):
        import torch

        self.pair, self.tree, self.method, self.sampling, self.engine = pair, tree, method, sampling, engine
        self.device = pair.device
        self.committed = [int(t) for t in prompt_ids]
        if not self.committed:
            raise ValueError("`prompt_ids` must hold at least one token.")
        self.target = CachedModel.start(pair.target)
        self.draft = CachedModel.start(pair.draft) if tree.depth else None
        self.timer = PhaseTimer(self.device)
        self.depths = torch.as_tensor(tree.depths, device=self.device)  # [size]
        self.ancestors = torch.as_tensor(tree.ancestor_mask, device=self.device)  # [size, size]
        self.counts = [len(c) for c in tree.children]
        # nodes below this index are forwarded by the draft (levels 0 .. depth-1)
        self.draft_cached = tree.levels[-1][0] if tree.depth else 1

    # -- forwards ------------------------------------------------------------------------------
    def _chain(self, model: CachedModel, ids):
        """Forward a run of committed tokens (causal) after the cache; returns logits [m, vocab]."""
        import torch

        past, m = model.length, len(ids)
        tokens = torch.as_tensor(ids, device=self.device)
        positions = torch.arange(past, past + m, device=self.device)
        visible = torch.ones(m, past + m, dtype=torch.bool, device=self.device)
        visible[:, past:] = torch.ones(m, m, dtype=torch.bool, device=self.device).tril()
        return model.forward(tokens, positions, visible)

    def _tree_block(self, model: CachedModel, tokens, lo: int, hi: int):
        """Forward tree nodes lo..hi-1 (a level, or the whole tree) with tree attention."""
        import torch

        base = len(self.committed) - 1  # cache index of the root
        m = hi - lo
        visible = torch.cat(
            [torch.ones(m, base, dtype=torch.bool, device=self.device), self.ancestors[lo:hi, :hi]], dim=1
        )  # [m, base + hi]
        return model.forward(tokens, base + self.depths[lo:hi], visible)

    # -- phases --------------------------------------------------------------------------------
    def prefill(self) -> float:
        """Cache all prompt tokens but the last in both models; returns the seconds taken."""
        ids = self.committed[:-1]
        with self.timer.phase("prefill"):
            if ids:
                self._chain(self.target, ids)
                if self.draft is not None:
                    self._chain(self.draft, ids)
        return self.timer.take()["prefill"]

    def step(self, rng, budget: int):
        """One draft/target/verify/compact cycle; returns (Step, NodeLaws)."""
        import torch

        tree, engine = self.tree, self.engine
        tokens = torch.full((tree.size,), self.committed[-1], dtype=torch.long, device=self.device)  # [size]
        q_rows = None
        with self.timer.phase("draft"):
            if self.draft is not None:
                q_rows = self._draft_tree(tokens, rng)  # [draft_cached, n]
        with self.timer.phase("target"):
            p_probs = self.sampling.laws(self._tree_block(self.target, tokens, 0, tree.size))  # [size, n] fp32
        with self.timer.phase("verify"):
            walk, p_row = engine.walk(tree, self.method, tokens, p_probs, q_rows, rng)
        with self.timer.phase("cache"):
            self._keep_path(walk.path)
        emitted = _cut(walk.tokens, budget, self.pair.eos_token_ids)
        self.committed.extend(emitted)
        visited = tuple(int(v) for v in walk.visited)
        step = Step(tokens=emitted, accepted=walk.accepted, visited=visited, slots=tuple(walk.slots),
                    seconds=self.timer.take())
        n = p_probs.shape[-1]
        laws = NodeLaws(
            p=np.stack([p_row(v) for v in visited]) if visited else np.zeros((0, n)),
            q=engine.host(q_rows[list(visited)]) if visited else np.zeros((0, n)),
            k=tuple(self.counts[v] for v in visited),
        )
        return step, laws

    def _draft_tree(self, tokens, rng):
        """Fill ``tokens`` [size] level by level; returns q after each forwarded node [draft_cached, n]
        (engine storage: host numpy or device float64)."""
        tree, c, engine = self.tree, self.draft.length, self.engine
        logits = self._chain(self.draft, self.committed[c:])[-1:]  # [1, n]: q after the root
        q_rows = None
        for d in range(tree.depth):
            level = tree.levels[d]
            lo, hi = level[0], level[-1] + 1
            if d > 0:
                logits = self._tree_block(self.draft, tokens[lo:hi], lo, hi)  # [hi-lo, n]
            q_level = engine.rows(self.sampling.laws(logits))  # [hi-lo, n] float64
            if q_rows is None:
                q_rows = engine.empty(self.draft_cached, q_level.shape[-1], self.device)
            q_rows[lo:hi] = q_level
            kids = engine.draft_level(self.method, q_level, self.counts[lo:hi], rng, self.device)
            for v, toks in zip(level, kids):
                if self.counts[v]:
                    tokens[list(tree.children[v])] = toks
        return q_rows

    def _keep_path(self, path) -> None:
        """Compact both caches to the committed prefix plus the accepted path."""
        import torch

        base = len(self.committed) - 1
        prefix = torch.arange(base, device=self.device)
        on_path = torch.as_tensor([base + v for v in path], device=self.device)
        compact_cache(self.target.cache, torch.cat([prefix, on_path]))
        if self.draft is not None:
            cached = torch.as_tensor([base + v for v in path if v < self.draft_cached], device=self.device)
            compact_cache(self.draft.cache, torch.cat([prefix, cached]))


def _cut(tokens, budget: int, eos_ids) -> tuple:
    """The emitted tokens up to the budget, ending at (and including) the first EOS."""
    out = []
    for t in tokens[:budget]:
        out.append(int(t))
        if t in eos_ids:
            break
    return tuple(out)
