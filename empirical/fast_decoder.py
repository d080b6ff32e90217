"""The fast decoding runtime: static KV caches, fixed-shape pieces (CUDA graphs on CUDA), one host sync a step.

Convention: p = target, q = draft, last axis = vocabulary; tokens per step = accepted drafts + 1.
Same step as :mod:`empirical.decoder` (the eager reference; same tokens for the same Generators):
the draft re-feeds at most two committed tokens then forwards levels 1..D-1, the target scores the
tree, :func:`empirical.fast_walk.device_walk` verifies, and both caches move the accepted path down.
"""

from __future__ import annotations

import numpy as np

from spechub_theory.trees.shapes import Tree

from .decode_types import AR, ROOT_ONLY, Decoded, NodeLaws, Sampling, Step, _cut
from .decoder import decode_batch
from .fast_walk import uniform_branching
from .fast_workspace import Workspace, workspace_for
from .vocab import NonFiniteLogitsError

__all__ = ["RUNTIMES", "FAST_RUNTIME_METHODS", "fast_reason", "decode_batch_fast", "decode_batch_with"]

#: ``fast``: the fast path where it applies (else the eager reference); ``eager``: always the reference
RUNTIMES = ("fast", "eager")
#: methods the fast path verifies on the device (node rules of :mod:`empirical.fast_verify`, the tree
#: rules of :mod:`empirical.sequence_torch`), and ``ar``
FAST_RUNTIME_METHODS = frozenset({"single", "rrs", "rrs_wor", "spechub", "block", "traversal", AR})


def fast_reason(tree, method: str, engine: str = "auto"):
    """Why the fast path does not apply to (tree, method, engine), or None when it does.

    It needs a method in :data:`FAST_RUNTIME_METHODS`, a tree whose nodes of each level have the
    same number of children (every ``k^d``, chain and integer branching list) and the torch rules
    (``engine`` ``auto`` or ``torch``; ``numpy`` asks for the host reference).

    Parameters
    ----------
    tree : Tree or str
        The draft tree (a :class:`~spechub_theory.trees.shapes.Tree` or a name it parses).
    method : str
        The verification method name (``ar`` for plain sampling).
    engine : str, optional
        ``auto``, ``torch`` or ``numpy``.

    Returns
    -------
    str or None
        One line saying what is missing, or None when the fast path applies.
    """
    if method not in FAST_RUNTIME_METHODS:
        return f"method {method!r} has no device rule on the fast path"
    if engine not in ("auto", "torch"):
        return f"engine {engine!r} asks for the host reference"
    if method != AR and uniform_branching(_tree(tree)) is None:
        return "the tree's levels mix child counts"
    return None


def decode_batch_with(pair, prompts, *, tree, method, rngs, sampling=Sampling(), max_new_tokens=128, on_step=None,
                      engine: str = "auto", runtime: str = "fast") -> list:
    """Decode on the fast path where it applies, else on the eager reference.

    :func:`decode_batch_fast` when ``runtime="fast"`` and it applies (:func:`fast_reason`), else
    :func:`empirical.decoder.decode_batch`; same arguments and results.

    Parameters
    ----------
    pair : empirical.models.ModelPair
    prompts : sequence of sequences of int
        Token ids of each prompt (each at least one token).
    tree : Tree or str
        As :func:`empirical.decoder.decode`.
    method : str
        As :func:`empirical.decoder.decode`.
    rngs : sequence of numpy Generators or seeds, one per prompt
        As :func:`empirical.decoder.decode_batch`.
    sampling : Sampling, optional
        As :func:`empirical.decoder.decode`.
    max_new_tokens : int, optional
        As :func:`empirical.decoder.decode`.
    on_step : callable, optional
        As :func:`empirical.decoder.decode_batch`.
    engine : str, optional
        ``auto``, ``torch`` or ``numpy``; ``numpy`` always takes the eager reference.
    runtime : str, optional
        One of :data:`RUNTIMES`: ``fast`` (where it applies) or ``eager``.

    Returns
    -------
    list of Decoded
        One :class:`~empirical.decode_types.Decoded` per prompt, in order.

    Raises
    ------
    ValueError
        ``runtime`` not one of :data:`RUNTIMES` (and the decoders' own errors).
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"`runtime` {runtime!r} is not one of {', '.join(map(repr, RUNTIMES))}.")
    if runtime == "fast" and fast_reason(tree, method, engine) is None:
        return decode_batch_fast(pair, prompts, tree=tree, method=method, rngs=rngs, sampling=sampling,
                                 max_new_tokens=max_new_tokens, on_step=on_step)
    return decode_batch(pair, prompts, tree=tree, method=method, rngs=rngs, sampling=sampling,
                        max_new_tokens=max_new_tokens, on_step=on_step, engine=engine)


def decode_batch_fast(pair, prompts, *, tree, method, rngs, sampling=Sampling(), max_new_tokens=128, on_step=None,
                      graphs: bool = True) -> list:
    """Decode ``prompts`` in lockstep on the fast path (see :func:`empirical.decoder.decode_batch`).

    Parameters
    ----------
    pair : empirical.models.ModelPair
    prompts : sequence of sequences of int
        Token ids of each prompt (each at least one token).
    tree : Tree or str
        As :func:`empirical.decoder.decode`; with ``method`` it must pass :func:`fast_reason`.
    method : str
        As :func:`empirical.decoder.decode`; one of :data:`FAST_RUNTIME_METHODS`.
    rngs : sequence of numpy Generators or seeds, one per prompt
        As :func:`empirical.decoder.decode_batch`.
    sampling : Sampling, optional
        As :func:`empirical.decoder.decode`.
    max_new_tokens : int, optional
        As :func:`empirical.decoder.decode`.
    on_step : callable, optional
        As :func:`empirical.decoder.decode_batch`.
    graphs : bool, optional
        Replay each piece as a CUDA graph (on CUDA; ignored elsewhere). False: eager pieces.

    Returns
    -------
    list of Decoded
        One :class:`~empirical.decode_types.Decoded` per prompt; ``Step.seconds`` holds the row's
        share of ``draft``, ``target``, ``verify``, ``cache`` and ``other`` (host time outside the
        device phases).

    Raises
    ------
    ValueError
        Bad prompts, Generators or budget (as the eager decoder), a method or tree the fast path
        lacks, or :class:`~empirical.vocab.NonFiniteLogitsError` naming the prompt.

    Notes
    -----
    Per step: D draft forwards (the re-fed tokens, then levels 1..D-1), one target forward over the
    tree, one batched device walk, one move of the accepted path per cache, each a fixed-shape
    piece over preallocated buffers (:class:`empirical.fast_workspace.Workspace`, reused across
    calls with the same shapes), and one device-to-host copy of the outcome. Randomness: each row
    draws the step's largest need of uniforms at once and rewinds its Generator to what the walk
    used, so it consumes its Generator exactly as the eager decoder does. Finished rows stay in
    the batch (masked, not drawn) so shapes never change. Attention spans the whole static width
    (prompt + budget + tree, rounded up to 128 columns).
    """
    reason = fast_reason(tree, method)
    if reason is not None:
        raise ValueError(f"the fast path cannot decode this: {reason}; use runtime 'eager'.")
    prompts = [[int(t) for t in ids] for ids in prompts]
    if len(prompts) != len(rngs):
        raise ValueError(f"`rngs` must hold one Generator per prompt; got {len(rngs)} for {len(prompts)} prompts.")
    if not prompts:
        return []
    if any(not ids for ids in prompts):
        raise ValueError("every prompt must hold at least one token.")
    if int(max_new_tokens) < 1:
        raise ValueError(f"`max_new_tokens` must be >= 1; got {max_new_tokens}.")
    the_tree = ROOT_ONLY if method == AR else _tree(tree)
    walk_method = "single" if method == AR else method
    space = workspace_for(pair, the_tree, walk_method, sampling, len(prompts),
                          max(len(ids) for ids in prompts) + int(max_new_tokens), graphs=graphs)
    run = _Run(space, prompts, [np.random.default_rng(g) for g in rngs], int(max_new_tokens), pair.eos_token_ids)
    try:
        run.prefill()
        while run.live.any():
            run.step(on_step)
    except NonFiniteLogitsError as exc:
        raise exc.for_prompt(exc.row) from None
    finally:
        space.fold_tallies(getattr(pair, "vocab", None))
    return [Decoded(tokens=tuple(run.new[b]), steps=tuple(run.steps[b]), finish=run.finish[b], prefill_s=run.prefill_s)
            for b in range(len(prompts))]


def _tree(tree):
    return tree if isinstance(tree, Tree) else Tree.from_name(tree)


class _Run:
    """Host state of one call: committed tokens, Generators, the host mirror of cache lengths."""

    def __init__(self, space: Workspace, prompts, rngs, max_new_tokens: int, eos):
        self.space, self.rngs, self.budget, self.eos = space, rngs, max_new_tokens, eos
        R = len(prompts)
        self.committed = prompts
        self.new = [[] for _ in range(R)]
        self.steps = [[] for _ in range(R)]
        self.finish = [None] * R
        self.live = np.ones(R, dtype=bool)
        self.refeed = [[ids[-1]] for ids in prompts]
        self.prefill_s = 0.0
        tree = space.tree
        self.branching, self.layout = space.branching, space.layout
        self.counts = [len(c) for c in tree.children]

    def prefill(self) -> None:
        """Cache every prompt but its last token in both models (one forward each)."""
        import time

        start = time.perf_counter()
        self.lengths = self.space.prefill([ids[:-1] for ids in self.committed])  # [R] target = draft lengths
        self.draft_lengths = self.lengths.copy()
        self.prefill_s = (time.perf_counter() - start) / len(self.committed)

    def step(self, on_step) -> None:
        """One step for every live row: stage, run the pieces, read the outcome once, commit."""
        space, D = self.space, len(self.branching)
        R = len(self.committed)
        ints = np.zeros((R, space.INTS), dtype=np.int64)
        u = np.zeros((R, self.layout.total))
        states = [None] * R
        for b in np.flatnonzero(self.live):
            ref = self.refeed[b]
            ints[b] = [self.committed[b][-1], ref[0], ref[-1], len(ref), self.lengths[b], self.draft_lengths[b], 0, 0, 1]
            states[b] = self.rngs[b].bit_generator.state
            u[b] = self.rngs[b].random(self.layout.total)
        dead = ~self.live  # finished rows keep their last lengths (their pieces run masked)
        ints[dead, 4], ints[dead, 5] = self.lengths[dead], self.draft_lengths[dead]
        ints[:, 6], ints[:, 7] = self.lengths[self.live].max(), self.draft_lengths[self.live].max()
        outcome, seconds = space.run_step(ints, u)
        share = {ph: s / int(self.live.sum()) for ph, s in seconds.items()}
        path, emitted, slots = outcome[:, : D + 1], outcome[:, D + 1: 2 * D + 2], outcome[:, 2 * D + 2: 3 * D + 3]
        accepted, bad = outcome[:, 3 * D + 3], outcome[:, 3 * D + 4:]
        self._check_finite(bad)
        live_rows = np.flatnonzero(self.live)
        used = self.layout.used(accepted, self.branching)
        for b in live_rows:
            self.rngs[b].bit_generator.state = states[b]  # rewind, then consume exactly what was used
            self.rngs[b].random(int(used[b]))
            a = int(accepted[b])
            tokens = _cut([int(t) for t in emitted[b, : a + 1]], self.budget - len(self.new[b]), self.eos)
            self.committed[b] = self.committed[b] + list(tokens)
            self.new[b].extend(tokens)
            self.lengths[b] += a + 1  # root + accepted path
            if D:  # the re-fed tokens and the accepted nodes above the last level; the rest is re-fed next
                forwarded = min(a, D - 1)
                self.draft_lengths[b] += len(self.refeed[b]) + forwarded
                self.refeed[b] = [int(t) for t in emitted[b, forwarded: a + 1]]
            if tokens and tokens[-1] in self.eos:
                self.finish[b] = "eos"
            elif len(self.new[b]) >= self.budget:
                self.finish[b] = "length"
            visited = () if space.sequence else tuple(int(v) for v in path[b, : min(a + 1, D)])  # a tree rule visits none
            step = Step(tokens=tuple(tokens), accepted=a, visited=visited, slots=tuple(int(s) for s in slots[b, : len(visited)]),
                        seconds=share)
            self.steps[b].append(step)
            if on_step is not None:
                on_step(b, step, self._laws(b, visited))
        self.live &= np.array([f is None for f in self.finish])

    def _laws(self, b: int, visited) -> NodeLaws:
        """Host float64 laws at the visited nodes of row b (outside the timed phases)."""
        p, q = self.space.node_laws(b, list(visited))
        return NodeLaws(p=p, q=q, k=tuple(self.counts[v] for v in visited))

    def _check_finite(self, bad) -> None:
        for b in np.flatnonzero(self.live):
            for j, pos in enumerate(bad[b]):
                if pos < self.space.NO_POSITION:
                    model = "target" if j == bad.shape[1] - 1 else "draft"
                    raise NonFiniteLogitsError(model, b, int(pos))
