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

__all__ = ["RUNTIMES", "FAST_RUNTIME_METHODS", "fast_reason", "decode_batch_fast", "decode_batch_with",
           "decode_batch_or_reference"]

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


def decode_batch_or_reference(pair, prompts, *, rngs, runtime: str = "fast", on_fallback, **kwargs) -> list:
    """:func:`decode_batch_with`, redone on the eager reference when the fast runtime raises.

    A job must not be lost to a fast-path failure (out of device memory, a piece the runtime cannot
    build): the cached workspaces are dropped (:func:`~empirical.fast_workspace.clear_workspaces`,
    their device memory returned), ``on_fallback(exc)`` is told (it may re-raise to refuse), and the
    prompts are decoded again eagerly with fresh Generators, since the failed attempt consumed some.
    Non-finite logits (:class:`~empirical.vocab.NonFiniteLogitsError`) are the input's fault and
    propagate, as does any error with ``runtime="eager"``.

    Parameters
    ----------
    pair : empirical.models.ModelPair
    prompts : sequence of sequences of int
    rngs : callable
        Returns the prompts' Generators (one each), called once per attempt.
    runtime : str, optional
        One of :data:`RUNTIMES`.
    on_fallback : callable
        Called with the fast runtime's exception before the eager redo.
    **kwargs
        The other arguments of :func:`decode_batch_with` (tree, method, sampling, ...).

    Returns
    -------
    list of Decoded
        As :func:`decode_batch_with`.
    """
    from .fast_workspace import clear_workspaces

    try:
        return decode_batch_with(pair, prompts, rngs=rngs(), runtime=runtime, **kwargs)
    except NonFiniteLogitsError:
        raise
    except Exception as exc:  # noqa: BLE001 - a fast-path failure must not cost the job: redo it on the reference
        if runtime != "fast":
            raise
        clear_workspaces()
        on_fallback(exc)
        return decode_batch_with(pair, prompts, rngs=rngs(), runtime="eager", **kwargs)


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
        while len(run.rows):
            run.step(on_step)
    except NonFiniteLogitsError as exc:
        raise exc.for_prompt(exc.row) from None
    finally:
        space.fold_tallies(getattr(pair, "vocab", None))
    return [Decoded(tokens=tuple(run.new[b]), steps=tuple(run.steps[b]), finish=run.finish[b], prefill_s=run.prefill_s)
            for b in range(len(prompts))]


def _tree(tree):
    return tree if isinstance(tree, Tree) else Tree.from_name(tree)


class _Streams:
    """Each row's Generator: draw a step's uniforms, then keep exactly what the walk used.

    The eager decoder draws each uniform when it needs it; here a row draws the step's largest need
    at once and then moves its Generator to just after the values the walk used. With distinct
    PCG64 Generators (no cached 32-bit half) that move is ``advance(used - drawn)`` (the LCG steps
    back, O(1) and no allocation; a double is one 64-bit draw); otherwise the state is saved before
    the draw and restored, then ``used`` values are drawn again. Both leave the same state.
    """

    def __init__(self, rngs):
        self.rngs = rngs
        self.bits = [g.bit_generator for g in rngs]
        self.saved = [None] * len(rngs)
        self.advance = len({id(g) for g in rngs}) == len(rngs) and all(
            type(bits) is np.random.PCG64 and not bits.state["has_uint32"] for bits in self.bits)

    def draw(self, rows, u) -> None:
        """Fill ``u[b]`` from row b's Generator for each b in ``rows`` (in order).

        Parameters
        ----------
        rows : sequence of int
            The live rows.
        u : numpy.ndarray of float64, shape (R, total), C-contiguous
            The step's uniforms, written in place.
        """
        for b in rows:
            if not self.advance:
                self.saved[b] = self.bits[b].state
            self.rngs[b].random(out=u[b])

    def keep(self, b: int, drawn: int, used: int) -> None:
        """Leave row b's Generator just after the first ``used`` of the ``drawn`` values of this step.

        Parameters
        ----------
        b : int
            The row.
        drawn : int
            Values drawn this step (:meth:`draw`).
        used : int
            Values the walk consumed (``used <= drawn``).
        """
        if self.advance:
            self.bits[b].advance(used - drawn)
        else:
            self.bits[b].state = self.saved[b]
            self.rngs[b].random(used)


class _Run:
    """Host state of one call: emitted tokens, Generators, the host mirror of cache lengths and re-fed tokens.

    Per step the host work outside the pieces is O(R) numpy over the live rows plus one short
    Python loop per live row (its Generator, its tokens, its :class:`~empirical.decode_types.Step`).
    """

    def __init__(self, space: Workspace, prompts, rngs, max_new_tokens: int, eos):
        self.space, self.budget, self.eos = space, max_new_tokens, eos
        self.streams = _Streams(rngs)
        R = len(prompts)
        self.prompts = prompts
        self.new = [[] for _ in range(R)]
        self.steps = [[] for _ in range(R)]
        self.finish = [None] * R
        self.live = np.ones(R, dtype=bool)
        self.rows = np.arange(R)  # the live rows, in order
        self.sel = slice(None)  # indexes them: a slice (cheaper) while every row is live
        self.at = np.arange(R)  # 0 .. live rows - 1
        last = np.array([ids[-1] for ids in prompts], dtype=np.int64)
        self.root = last.copy()  # each row's last committed token
        self.refeed = np.stack([last, last], axis=1)  # first and last token the draft re-feeds
        self.nref = np.ones(R, dtype=np.int64)  # how many it re-feeds (1 or 2)
        self.prefill_s = 0.0
        tree, self.D = space.tree, len(space.branching)
        self.branching, self.layout = space.branching, space.layout
        self.used = self.layout.used(np.arange(self.D + 1), self.branching).tolist()  # uniforms used, by accepted depth
        self.counts = [len(c) for c in tree.children]

    def prefill(self) -> None:
        """Cache every prompt but its last token in both models (one forward each)."""
        import time

        start = time.perf_counter()
        self.lengths = self.space.prefill([ids[:-1] for ids in self.prompts])  # [R] target = draft lengths
        self.draft_lengths = self.lengths.copy()
        self.prefill_s = (time.perf_counter() - start) / len(self.prompts)
        ints, u = self.space.inputs()
        ints[:], u[:] = 0, 0.0

    def step(self, on_step) -> None:
        """One step for every live row: stage, run the pieces, read the outcome once, commit."""
        ints, u = self._stage()
        outcome, seconds = self.space.run_step(ints, u)
        share = {ph: s / len(self.rows) for ph, s in seconds.items()}
        D = self.D
        self._check_finite(outcome[:, 3 * D + 4:])
        self._advance(outcome)
        done = []
        for b, row in zip(self.rows.tolist(), outcome[self.sel].tolist()):
            step = self._commit(b, row, share)
            if self.finish[b] is not None:
                done.append(b)
            if on_step is not None:
                on_step(b, step, self._laws(b, step.visited))
        if done:
            self._retire(done)

    def _stage(self):
        """Write the live rows' integers and uniforms into the workspace's input buffers.

        Dead rows keep what :meth:`_retire` left there (zeros, their last lengths). O(R) numpy and
        one Generator call per live row.

        Returns
        -------
        ints : numpy.ndarray of int64, shape (R, Workspace.INTS)
        u : numpy.ndarray of float64, shape (R, layout.total)
        """
        ints, u = self.space.inputs()
        rows = self.sel
        ints[rows, 0], ints[rows, 1:3], ints[rows, 3] = self.root[rows], self.refeed[rows], self.nref[rows]
        ints[rows, 4], ints[rows, 5], ints[rows, 8] = self.lengths[rows], self.draft_lengths[rows], 1
        ints[:, 6], ints[:, 7] = self.lengths[rows].max(), self.draft_lengths[rows].max()
        self.streams.draw(self.rows.tolist(), u)
        return ints, u

    def _advance(self, outcome) -> None:
        """Move the live rows' cache lengths, re-fed tokens and last token past the accepted path (O(R))."""
        D, rows, at = self.D, self.sel, self.at
        a = outcome[rows, 3 * D + 3]
        emitted = outcome[rows, D + 1: 2 * D + 2]
        self.lengths[rows] += a + 1  # root + accepted path
        self.root[rows] = emitted[at, a]
        if D:  # the re-fed tokens and the accepted nodes above the last level; the rest is re-fed next
            forwarded = np.minimum(a, D - 1)
            self.draft_lengths[rows] += self.nref[rows] + forwarded
            self.refeed[rows, 0], self.refeed[rows, 1] = emitted[at, forwarded], emitted[at, a]
            self.nref[rows] = a + 1 - forwarded

    def _commit(self, b: int, row: list, share: dict) -> Step:
        """Row b's Generator, emitted tokens, finish and Step, from its outcome row (Python ints).

        Parameters
        ----------
        b : int
            The row.
        row : list of int
            Its outcome row (path, emitted, slots, accepted, non-finite positions).
        share : dict
            Its share of the step's phase seconds.

        Returns
        -------
        Step
            The step, also appended to ``self.steps[b]``.
        """
        D = self.D
        a = row[3 * D + 3]
        self.streams.keep(b, self.layout.total, self.used[a])  # consume exactly what was used
        tokens = _cut(row[D + 1: D + 2 + a], self.budget - len(self.new[b]), self.eos)
        self.new[b].extend(tokens)
        if tokens and tokens[-1] in self.eos:
            self.finish[b] = "eos"
        elif len(self.new[b]) >= self.budget:
            self.finish[b] = "length"
        visited = () if self.space.sequence else tuple(row[: min(a + 1, D)])  # a tree rule visits none
        step = Step(tokens=tokens, accepted=a, visited=visited, slots=tuple(row[2 * D + 2: 2 * D + 2 + len(visited)]),
                    seconds=share)
        self.steps[b].append(step)
        return step

    def _retire(self, done) -> None:
        """Drop finished rows from the live set; their staged inputs become zeros but for their lengths."""
        self.live[done] = False
        self.rows = self.sel = np.flatnonzero(self.live)
        self.at = np.arange(len(self.rows))
        ints, u = self.space.inputs()
        ints[done, :4], ints[done, 8], u[done] = 0, 0, 0.0
        ints[done, 4], ints[done, 5] = self.lengths[done], self.draft_lengths[done]

    def _laws(self, b: int, visited) -> NodeLaws:
        """Host float64 laws at the visited nodes of row b (outside the timed phases)."""
        p, q = self.space.node_laws(b, list(visited))
        return NodeLaws(p=p, q=q, k=tuple(self.counts[v] for v in visited))

    def _check_finite(self, bad) -> None:
        if not (bad[self.sel] < self.space.NO_POSITION).any():
            return
        for b in self.rows:
            for j, pos in enumerate(bad[b]):
                if pos < self.space.NO_POSITION:
                    model = "target" if j == bad.shape[1] - 1 else "draft"
                    raise NonFiniteLogitsError(model, b, int(pos))
