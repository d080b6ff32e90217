"""Tree speculative decoding with real models: the one decoding loop, prompts in lockstep.

Convention: p = target, q = draft, last axis = vocabulary; tokens per step = accepted drafts + 1.
Each step: the draft grows the tree level by level (one batched forward per level over its KV
cache, tree mask, positions by depth), the target scores root + tree in one forward, the core's
tree walk (``spechub_theory.trees.walk``) accepts a path, and both caches keep exactly that path.
:func:`decode` is :func:`decode_batch` with one row (each row owns its Generator and consumes it
exactly as a lone prompt would); every forward serves the R active rows at once. Batch-1 decoding of a small model is launch-bound, so R rows cost about what
one costs: this is how the validation experiment fills a GPU.

Layout: both KV caches are batched [R, heads, C, head_dim]; rows hold different numbers of
committed tokens, so a host boolean array ``valid`` [R, C] marks each row's real columns and the
attention mask hides the rest (padding). After each step every row keeps its committed columns
plus its accepted path, packed to the left (:func:`empirical.kv_forward.gather_cache`); finished
rows (EOS or token budget) leave the batch there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spechub_theory.trees.shapes import Tree

from .decode_types import AR, ROOT_ONLY, _AR_WALK_METHOD, Decoded, NodeLaws, Sampling, Step, _cut
from .engines import get_engine
from .kv_forward import forward_block, gather_cache, new_cache
from .timing import PhaseTimer
from .vocab import NonFiniteLogitsError, check_finite

__all__ = ["decode", "decode_batch"]


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
    :func:`decode_batch` with one row. Per step: ``tree.depth`` draft
    forwards, one target forward over ``tree.size`` tokens and O(depth * k * vocab) verification
    work. With the torch engine laws stay on the device (one host sync per visited node); with the
    numpy engine q is copied per draft level and p per visited node. ``on_step`` laws are copied to
    the host outside the timed phases.
    """
    relay = None if on_step is None else (lambda row, step, laws: on_step(step, laws))
    return decode_batch(pair, [prompt_ids], tree=tree, method=method, rngs=[rng], sampling=sampling,
                        max_new_tokens=max_new_tokens, on_step=relay, engine=engine)[0]


def decode_batch(pair, prompts, *, tree, method, rngs, sampling=Sampling(), max_new_tokens=128, on_step=None,
                 engine: str = "auto") -> list:
    """Decode ``prompts`` together by tree speculative decoding (or plain sampling, ``method="ar"``).

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
        Row r uses ``rngs[r]`` as ``decode`` would: with the same Generator state, row r emits the
        tokens ``decode`` emits for prompt r (up to float32 reduction order of batched matmuls).
    sampling : Sampling, optional
        As :func:`empirical.decoder.decode`.
    max_new_tokens : int, optional
        As :func:`empirical.decoder.decode`.
    on_step : callable, optional
        ``on_step(r, step, laws)``: row index, its :class:`~empirical.decode_types.Step` and
        :class:`~empirical.decode_types.NodeLaws`, after each step of each active row.
    engine : str, optional
        As :func:`empirical.decoder.decode`.

    Returns
    -------
    list of Decoded
        One :class:`~empirical.decode_types.Decoded` per prompt, in order. ``Step.seconds`` of a
        row is the batch's phase time divided by the rows active in that step (its share).

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``rngs`` must hold one Generator per prompt; or
        every prompt must hold at least one token; or ``max_new_tokens`` must be >= 1.

    Notes
    -----
    Per step: ``tree.depth`` draft forwards and one target forward over R x ``tree.size`` tokens,
    then the tree walks (O(depth k vocab) per row; the torch engine walks all rows together, the
    numpy engine one after the other). Memory of the laws: R x internal nodes x vocab
    float64 for q (the torch engine keeps them on the device).
    """
    rows = [_Row(r, [int(t) for t in ids], np.random.default_rng(g)) for r, (ids, g) in enumerate(zip(prompts, rngs))]
    if len(rows) != len(prompts) or len(rows) != len(rngs):
        raise ValueError(f"`rngs` must hold one Generator per prompt; got {len(rngs)} for {len(prompts)} prompts.")
    if not rows:
        return []
    if any(not row.committed for row in rows):
        raise ValueError("every prompt must hold at least one token.")
    if int(max_new_tokens) < 1:
        raise ValueError(f"`max_new_tokens` must be >= 1; got {max_new_tokens}.")
    if method == AR:
        tree, walk_method = ROOT_ONLY, _AR_WALK_METHOD
    else:
        tree, walk_method = (tree if isinstance(tree, Tree) else Tree.from_name(tree)), method
    batch = _Batch(pair, tree, walk_method, sampling, rows, get_engine(engine, walk_method, pair.device))
    try:
        batch.prefill()
        while batch.rows:
            batch.step(int(max_new_tokens), on_step)
    except NonFiniteLogitsError as exc:  # name the prompt (its index in ``prompts``) instead of the batch row
        raise exc.for_prompt(batch.rows[exc.row].index) from None
    return [Decoded(tokens=tuple(r.new), steps=tuple(r.steps), finish=r.finish, prefill_s=r.prefill_s)
            for r in rows]


@dataclass
class _Row:
    """One prompt's state: committed tokens, its Generator, what it emitted, how many committed
    tokens the draft cache holds."""

    index: int
    committed: list
    rng: object
    new: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    draft_len: int = 0
    finish: str | None = None
    prefill_s: float = 0.0
    last: tuple = ()


class _Batch:
    """Decoding state of the active rows.

    Invariants between steps, row b with L committed tokens: the target cache holds committed[:L-1]
    in the columns ``self.target.valid[b]`` marks (packed left); the draft cache holds
    committed[:draft_len] likewise; the rest is re-fed at the next step.
    """

    def __init__(self, pair, tree: Tree, method: str, sampling: Sampling, rows: list, engine):
        import torch

        self.pair, self.tree, self.method, self.sampling, self.engine = pair, tree, method, sampling, engine
        self.device, self.rows = pair.device, rows
        self.timer = PhaseTimer(self.device)
        self.depths = np.asarray(tree.depths)
        self.ancestors = torch.as_tensor(tree.ancestor_mask, device=self.device)  # [size, size]
        self.counts = [len(c) for c in tree.children]
        self.draft_cached = tree.levels[-1][0] if tree.depth else 1
        guard = (getattr(pair, "vocab", None), sampling.temperature)  # shared-vocabulary cut, when the pair has one
        self.target = _Cache(pair.target, len(rows), "target", *guard)
        self.draft = _Cache(pair.draft, len(rows), "draft", *guard) if tree.depth else None

    def prefill(self) -> None:
        """Cache every prompt but its last token in both models; each row is charged its share."""
        with self.timer.phase("prefill"):
            ids = [row.committed[:-1] for row in self.rows]
            for cache in (self.target, self.draft):
                if cache is not None:
                    cache.chain(ids, np.zeros(len(ids), dtype=np.int64), self.device)
        share = self.timer.take()["prefill"] / len(self.rows)
        for row in self.rows:
            row.prefill_s = share
            row.draft_len = len(row.committed) - 1

    def step(self, max_new_tokens: int, on_step) -> None:
        """One draft/target/verify/compact cycle for every active row; finished rows leave."""
        import torch

        tree, engine, rows = self.tree, self.engine, self.rows
        roots = torch.as_tensor([row.committed[-1] for row in rows], device=self.device)
        tokens = roots[:, None].repeat(1, tree.size)  # [R, size]
        base = np.array([len(row.committed) - 1 for row in rows])  # position of each root
        q_rows = None
        with self.timer.phase("draft"):
            if self.draft is not None:
                q_rows, draft_past = self._draft_tree(tokens, base)
        with self.timer.phase("target"):
            past = self.target.valid.shape[1]
            logits = self.target.tree_block(tokens, base, self.depths, self.ancestors, 0, tree.size, past, self.device)
            p_probs = self.sampling.laws(logits.reshape(-1, logits.shape[-1])).reshape(logits.shape)  # [R, size, n] fp32
        with self.timer.phase("verify"):
            walks = engine.walk_batch(tree, self.method, tokens, p_probs, q_rows, [row.rng for row in rows])
        with self.timer.phase("cache"):
            keep = [b for b, row in enumerate(rows) if not self._commit(row, walks[b][0], max_new_tokens)]
            paths = [walks[b][0].path for b in keep]
            self.target.keep(keep, [past + np.asarray(path) for path in paths], self.device, upto=past)  # node v: past + v
            if self.draft is not None:  # node v >= 1 it forwarded: draft_past + v - 1 (the root is committed)
                forwarded = [np.array([v for v in path if 0 < v < self.draft_cached], dtype=np.int64) for path in paths]
                self.draft.keep(keep, [draft_past - 1 + nodes for nodes in forwarded], self.device, upto=draft_past)
        seconds = {ph: s / len(rows) for ph, s in self.timer.take().items()}
        for b, row in enumerate(rows):
            walk, p_row = walks[b]
            visited = tuple(int(v) for v in walk.visited)
            step = Step(tokens=row.last, accepted=walk.accepted, visited=visited, slots=tuple(walk.slots), seconds=seconds)
            row.steps.append(step)
            if on_step is not None:
                n = p_probs.shape[-1]
                laws = NodeLaws(
                    p=np.stack([p_row(v) for v in visited]) if visited else np.zeros((0, n)),
                    q=engine.host(q_rows[b][list(visited)]) if visited else np.zeros((0, n)),
                    k=tuple(self.counts[v] for v in visited),
                )
                on_step(row.index, step, laws)
        self.rows = [rows[b] for b in keep]

    def _commit(self, row: _Row, walk, max_new_tokens: int) -> bool:
        """Append the row's emitted tokens; True when the row is finished (EOS or budget)."""
        emitted = _cut(walk.tokens, max_new_tokens - len(row.new), self.pair.eos_token_ids)
        # the draft now holds every committed token (re-fed) plus the accepted nodes it forwarded
        row.draft_len = len(row.committed) + sum(1 for v in walk.path if 0 < v < self.draft_cached)
        row.last = emitted
        row.committed.extend(emitted)
        row.new.extend(emitted)
        if emitted and emitted[-1] in self.pair.eos_token_ids:
            row.finish = "eos"
        elif len(row.new) >= max_new_tokens:
            row.finish = "length"
        return row.finish is not None

    def _draft_tree(self, tokens, base):
        """Fill ``tokens`` [R, size] level by level. Returns (q after each forwarded node, engine
        storage [R, draft_cached, n]; the draft cache width after the re-fed committed tokens)."""
        import torch

        tree, engine, rows = self.tree, self.engine, self.rows
        R = len(rows)
        refeed = [row.committed[row.draft_len:] for row in rows]
        logits = self.draft.chain(refeed, np.array([row.draft_len for row in rows]), self.device)  # [R, w, n]
        last = torch.as_tensor([len(ids) - 1 for ids in refeed], device=self.device)
        logits = logits[torch.arange(R, device=self.device), last][:, None]  # [R, 1, n]: q after the root
        past = self.draft.valid.shape[1]  # width with the re-fed committed tokens (root included)
        q_rows = None
        rngs = [row.rng for row in rows]
        for d in range(tree.depth):
            level = tree.levels[d]
            lo, hi = level[0], level[-1] + 1
            if d > 0:
                logits = self.draft.tree_block(tokens[:, lo:hi], base, self.depths, self.ancestors, lo, hi, past, self.device)
            n = logits.shape[-1]
            q_level = engine.rows(self.sampling.laws(logits.reshape(-1, n)))  # [R * (hi - lo), n] float64
            if q_rows is None:
                q_rows = engine.empty(R * self.draft_cached, n, self.device).reshape(R, self.draft_cached, n)
            q_rows[:, lo:hi] = q_level.reshape(R, hi - lo, n)
            for idx, kids in engine.draft_level_batch(self.method, q_rows[:, lo:hi], self.counts[lo:hi], rngs, self.device):
                children = torch.as_tensor(np.array([tree.children[lo + i] for i in idx]).reshape(-1), device=self.device)
                tokens[:, children] = kids.reshape(R, -1)
        return q_rows, past


class _Cache:
    """A batched KV cache and the host mask of its real columns (``valid`` [R, C])."""

    def __init__(self, model, rows: int, name: str = "model", vocab=None, temperature: float = 1.0):
        self.model, self.cache = model, new_cache(model)
        self.name, self.vocab, self.temperature = name, vocab, temperature
        self.valid = np.zeros((rows, 0), dtype=bool)

    def chain(self, ids: list, start, device):
        """Forward each row's run of committed tokens ``ids[b]`` (causal, positions start[b]...),
        right-padded to a common width; returns logits [R, width, n] (None when all are empty)."""
        import torch

        width = max(len(x) for x in ids)
        if width == 0:
            return None
        lengths = np.array([len(x) for x in ids])
        real = np.arange(width)[None] < lengths[:, None]  # [R, width]
        block = np.tril(np.ones((width, width), dtype=bool))[None] & real[:, None, :]
        block |= np.eye(width, dtype=bool)[None]  # padding sees itself only
        visible = np.concatenate([np.repeat(self.valid[:, None, :], width, axis=1) & real[:, :, None], block], axis=2)
        tokens = np.zeros((len(ids), width), dtype=np.int64)
        for b, x in enumerate(ids):
            tokens[b, : len(x)] = x
        positions = np.asarray(start)[:, None] + np.arange(width)[None]
        logits = self._forward(tokens, positions, torch.as_tensor(visible, device=device), device)
        self.valid = np.concatenate([self.valid, real], axis=1)
        return logits

    def tree_block(self, tokens, base, depths, ancestors, lo: int, hi: int, past: int, device):
        """Forward tree nodes lo..hi-1 (``tokens`` [R, hi - lo]) of every row with tree attention; ``past`` = width of the
        cache before node 1 (its columns: the committed tokens, root included for the draft).
        Node v >= 1 lives in column past + v - 1 (draft) or past + v (target, root in the block).
        Returns logits [R, hi - lo, n]."""
        import torch

        R, m = tokens.shape[0], hi - lo
        committed = torch.as_tensor(self.valid[:, :past], device=device)[:, None, :].expand(R, m, past)
        first = 1 if lo > 0 else 0  # the draft's root is a committed column; the target's is node 0
        nodes = ancestors[lo:hi, first:hi][None].expand(R, m, hi - first)
        positions = base[:, None] + depths[None, lo:hi]
        logits = self._forward(tokens, positions, torch.cat([committed, nodes], dim=2), device)
        self.valid = np.concatenate([self.valid, np.ones((R, m), dtype=bool)], axis=1)
        return logits

    def _forward(self, tokens, positions, visible, device):
        import torch

        logits = forward_block(self.model, self.cache, torch.as_tensor(tokens, device=device),
                               torch.as_tensor(positions, device=device), visible)  # [R, w, rows]
        check_finite(logits, positions, self.name)
        return logits if self.vocab is None else self.vocab.cut(logits, self.name, self.temperature)

    def keep(self, rows: list, extra: list, device, upto: int | None = None) -> None:
        """Keep ``rows`` and, per kept row, its real columns below ``upto`` plus columns ``extra``."""
        import torch

        upto = self.valid.shape[1] if upto is None else upto
        columns = [np.concatenate([np.flatnonzero(self.valid[b, :upto]), np.asarray(x, dtype=np.int64)])
                   for b, x in zip(rows, extra)]
        width = max((len(c) for c in columns), default=0)
        index = np.zeros((len(rows), width), dtype=np.int64)
        self.valid = np.zeros((len(rows), width), dtype=bool)
        for i, c in enumerate(columns):
            index[i, : len(c)] = c
            self.valid[i, : len(c)] = True
        if rows:
            gather_cache(self.cache, torch.as_tensor(rows, device=device), torch.as_tensor(index, device=device))
