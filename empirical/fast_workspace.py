"""The device side of the fast decoder: static buffers, tree masks built in place, and the step's pieces.

Convention: p = target, q = draft, last axis = vocabulary. Row b's committed tokens fill cache
columns [0, L_b); a step writes the draft's re-fed tokens at [Wd, Wd + 2), its level-d nodes after
them, the target's tree at [Wt, Wt + size) (W = the largest L of the live rows). See
:mod:`empirical.fast_decoder` for the host loop.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from functools import lru_cache, partial

import numpy as np

from .fast_verify import law64
from .fast_walk import UniformLayout, device_walk, draft_method, sample_level, sequence_walk, uniform_branching
from .graphs import Graphed, StepClock
from .kv_forward import forward_block
from .sequence_torch import SEQUENCE_TORCH_METHODS, TreeRulePlan
from .static_cache import StaticKV
from .vocab import check_finite

__all__ = ["Workspace", "workspace_for", "CompileFailed", "compiled", "capture_failures", "clear_workspaces", "cached_workspaces", "WORKSPACES_ENV",
           "COMPILE_VERIFY_ENV",
           "COMPILE_FORWARD_ENV", "compile_backend", "verify_backend", "forward_backend"]

#: environment variable: a ``torch.compile`` backend for the verification piece (``1`` = inductor;
#: unset or ``0``: not compiled). An experiment for fusing the rules' full-vocabulary passes on CUDA.
COMPILE_VERIFY_ENV = "SPECHUB_COMPILE_VERIFY"
#: a torch.compile backend for the model pieces (forward_backend)
COMPILE_FORWARD_ENV = "SPECHUB_COMPILE_FORWARD"

#: cached workspaces (buffers and captured graphs), most recent last
_CACHE: OrderedDict = OrderedDict()
#: how many workspaces stay cached (``$SPECHUB_WORKSPACES``, default 2): each holds its static caches,
#: laws buffers and CUDA-graph pools (~20 GiB per SmolLM2 sweep worker at batch 25 with 2, 2026-12-02)
WORKSPACES_ENV = "SPECHUB_WORKSPACES"


def cached_workspaces() -> int:
    """How many workspaces :func:`workspace_for` keeps, from ``$SPECHUB_WORKSPACES`` (default 2).

    Returns
    -------
    int
        At least 1.

    Raises
    ------
    ValueError
        The variable is not a positive integer.
    """
    raw = os.environ.get(WORKSPACES_ENV, "").strip() or "2"
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"${WORKSPACES_ENV} must be a positive integer; got {raw!r}.")
    return int(raw)


def workspace_for(pair, tree, method: str, sampling, rows: int, tokens: int, *, graphs: bool = True) -> "Workspace":
    """A :class:`Workspace` for ``rows`` rows of at most ``tokens`` tokens, reused when possible.

    Reused from the last calls when one with the same pair, tree, method, sampling and rows is
    wide enough (its CUDA graphs are then replayed, not captured again); the most recent
    :func:`cached_workspaces` (2 unless ``$SPECHUB_WORKSPACES`` says otherwise) are kept, and on CUDA
    the memory of an evicted one goes back to the device. Width: on CUDA the next power of two >= tokens + tree size + 4, at least 256 (few
    distinct widths, so few captures); elsewhere that need rounded up to 16 (attention spans the
    whole width, and a CPU pays for every column), reusing a cached one only within 64 columns of
    it. O(1) when reused; else allocation of the
    caches and laws buffers.

    Parameters
    ----------
    pair : empirical.models.ModelPair
    tree : Tree
        The draft tree, of uniform branching per level.
    method : str
        The node rule (single, rrs, rrs_wor or spechub).
    sampling : Sampling
        Temperature, top-k and top-p of both models' laws.
    rows : int
        Sequences decoded together (R).
    tokens : int
        Most tokens a row holds: longest prompt + ``max_new_tokens``.
    graphs : bool, optional
        Capture the pieces as CUDA graphs (on CUDA; ignored elsewhere).

    Returns
    -------
    Workspace
        A cached or a new workspace at least ``tokens + tree.size + 4`` columns wide.
    """
    key = (id(pair.target), id(pair.draft), tuple(tree.parents), method, sampling, int(rows), bool(graphs), verify_backend(),
           forward_backend())
    need = int(tokens) + tree.size + 4
    cuda = getattr(pair.device, "type", str(pair.device)) == "cuda"
    for k, space in _CACHE.items():
        if k[:-1] == key and need <= space.width and (cuda or space.width < need + 64) and space.pair is pair:
            _CACHE.move_to_end(k)
            return space
    width = max(256, 1 << (need - 1).bit_length()) if cuda else need + (-need) % 16
    _CACHE[key + (width,)] = space = Workspace(pair, tree, method, sampling, rows, width, graphs=graphs)
    keep = cached_workspaces()
    if len(_CACHE) > keep:
        while len(_CACHE) > keep:
            _CACHE.popitem(last=False)
        if cuda:  # hand the evicted buffers and graph pools back to the device, for the other processes on it
            import torch

            torch.cuda.empty_cache()
    return space


def compile_backend(env: str):
    """The ``torch.compile`` backend named by the environment variable ``env``.

    Parameters
    ----------
    env : str
        :data:`COMPILE_VERIFY_ENV` or :data:`COMPILE_FORWARD_ENV`.

    Returns
    -------
    str or None
        None (not compiled: the variable unset, empty or ``0``), ``"inductor"`` for ``1``, else
        the variable's value (e.g. ``eager``, which compiles the graph capture without code generation).
    """
    raw = os.environ.get(env, "").strip()
    return None if raw in ("", "0") else "inductor" if raw == "1" else raw


def verify_backend():
    """The ``torch.compile`` backend of the verification piece, from ``$SPECHUB_COMPILE_VERIFY``.

    Returns
    -------
    str or None
        As :func:`compile_backend`.
    """
    return compile_backend(COMPILE_VERIFY_ENV)


def forward_backend():
    """The ``torch.compile`` backend of the model pieces, from ``$SPECHUB_COMPILE_FORWARD``.

    The model pieces are each draft level and the target's tree forward, with their masks and laws.
    Inside a piece the compiled code is then captured as a CUDA graph like any other: fused kernels
    (normalisation, rotary embedding, activations, the laws) replayed in one launch.

    Returns
    -------
    str or None
        As :func:`compile_backend`.
    """
    return compile_backend(COMPILE_FORWARD_ENV)


@lru_cache(maxsize=None)
def _walks(backend):
    """(device_walk, sequence_walk), compiled with ``backend`` unless it is None."""
    if backend is None:
        return device_walk, sequence_walk
    return tuple(compiled(fn, backend) for fn in (device_walk, sequence_walk))


#: compilations allowed per compiled function: one per workspace shape (tree, rows, width) it serves
RECOMPILE_LIMIT = 256


class CompileFailed(ValueError):
    """``torch.compile`` could not build a piece (a ``ValueError``: the command line prints one line)."""


def compiled(fn, backend: str):
    """``torch.compile(fn, backend=backend, dynamic=False)``, with dynamo's recompile limit raised.

    One compiled function serves every workspace of its kind, and each new shape is one more
    compilation; past dynamo's default limit (8) it would silently run ``fn`` uncompiled, which
    would make a compiled row of the benchmark measure the eager code. A backend that fails to
    compile (dynamo's ``BackendCompilerFailed``, e.g. inductor on a CPU without a C++ compiler)
    raises :class:`CompileFailed`, naming the function and the backend's first line.

    Parameters
    ----------
    fn : callable
    backend : str
        A ``torch.compile`` backend (``inductor``, ``eager``, ...).

    Returns
    -------
    callable
    """
    import torch
    import torch._dynamo.config as config
    from torch._dynamo.exc import BackendCompilerFailed

    for name in ("cache_size_limit", "recompile_limit", "accumulated_cache_size_limit", "accumulated_recompile_limit"):
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), RECOMPILE_LIMIT))
    built = torch.compile(fn, backend=backend, dynamic=False)

    def call(*args, **kwargs):
        try:
            return built(*args, **kwargs)
        except BackendCompilerFailed as exc:
            first = " ".join(str(exc).split())[:300]
            raise CompileFailed(f"torch.compile (backend {backend!r}) failed for {getattr(fn, '__name__', 'a piece')}: "
                                f"{first}; run without --compile (or with $SPECHUB_COMPILE_VERIFY and "
                                f"$SPECHUB_COMPILE_FORWARD unset)") from exc
    return call


def capture_failures() -> list:
    """Sorted reasons why pieces of the cached workspaces run eagerly on CUDA (empty: all graphed).

    Returns
    -------
    list of str
        Distinct :attr:`Workspace.notes` of every cached workspace, sorted.
    """
    return sorted({note for space in _CACHE.values() for note in space.notes})


def clear_workspaces() -> None:
    """Drop the cached workspaces (their caches, laws buffers and graphs free with them).

    On CUDA the freed memory goes back to the device, as after an eviction by :func:`workspace_for`.
    """
    import sys

    _CACHE.clear()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


class Workspace:
    """Preallocated buffers and pieces of the fast path for one (pair, tree, method, sampling, R, C).

    Attributes
    ----------
    width : int
        Cache columns C (the last one is scratch).
    notes : list of str
        Pieces that could not be captured as CUDA graphs, with the reason (they run eagerly).

    Notes
    -----
    Pieces (each a :class:`empirical.graphs.Graphed`): one per draft level (forward, laws,
    drafts), the target forward and laws, the device walk, and the two halves of the path move.
    Inputs arrive in two staged tensors per step (``INTS`` integers and the uniforms per row);
    the outcome leaves in one. Memory: the two caches, target laws R x size x n float32 and draft
    laws R x internal nodes x n float64.
    """

    INTS = 9  # root, re-fed token 0, re-fed token 1, re-fed count, L target, L draft, W target, W draft, live
    NO_POSITION = 2**62

    def __init__(self, pair, tree, method: str, sampling, rows: int, width: int, *, graphs: bool = True):
        import torch

        self.pair, self.tree, self.method, self.sampling = pair, tree, method, sampling
        self.device, self.width, R = pair.device, int(width), int(rows)
        self.branching = uniform_branching(tree) or ()
        self.sequence = method in SEQUENCE_TORCH_METHODS  # one tree rule (block, traversal), not a walk
        self.draft_law = draft_method(method)  # the node method whose drafts the levels sample
        self.compile_backend = verify_backend()
        self.forward_backend = forward_backend()
        self.layout = (UniformLayout.for_sequence if self.sequence else UniformLayout.of)(tree, self.branching)
        D, dev = len(self.branching), self.device
        self.vocab = getattr(pair, "vocab", None)
        self.n = self.vocab.n if self.vocab is not None else int(pair.target.get_output_embeddings().weight.shape[0])
        self.target_kv = StaticKV(pair.target, R, width)
        self.draft_kv = StaticKV(pair.draft, R, width) if D else None
        long, cuda = torch.long, torch.device(dev).type == "cuda"
        self.ints = torch.zeros(R, self.INTS, dtype=long, device=dev)
        self.u = torch.zeros(R, self.layout.total, dtype=torch.float64, device=dev)
        self.staged = (torch.zeros(self.ints.shape, dtype=long, pin_memory=cuda),
                       torch.zeros(self.u.shape, dtype=torch.float64, pin_memory=cuda)) if cuda else None
        # host views the step's inputs are written into: the pinned staging buffers on CUDA, else the inputs
        self.host = tuple(t.numpy() for t in (self.staged if cuda else (self.ints, self.u)))
        self.internal = tree.levels[-1][0] if D else 1  # nodes with children
        self.tokens = torch.zeros(R, tree.size, dtype=long, device=dev)
        self.p = torch.zeros(R, tree.size, self.n, dtype=torch.float32, device=dev)
        self.q = torch.zeros(R, self.internal, self.n, dtype=torch.float64, device=dev)
        self.bad = torch.full((R, D + 1), self.NO_POSITION, dtype=long, device=dev)
        self.tally = torch.zeros(D + 1, 3, dtype=torch.float64, device=dev)  # per forward: dropped sum, max, laws
        self.outcome = torch.zeros(R, 3 * (D + 1) + 1, dtype=long, device=dev)
        self.pack = torch.zeros(R, self.outcome.shape[1] + D + 1, dtype=long, device=dev)
        self.dst = [torch.zeros(R, D + 1, dtype=long, device=dev) for _ in range(2)]
        self.columns = torch.arange(width, device=dev)
        self.tree_columns = torch.arange(tree.size, device=dev)  # built here: no host data inside a piece
        self.depths = torch.as_tensor(tree.depths, device=dev)
        self.ancestors = torch.as_tensor(tree.ancestor_mask, device=dev)
        kids = np.zeros((tree.size, max(self.branching, default=1)), dtype=np.int64)
        for v, c in enumerate(tree.children):
            kids[v, : len(c)] = c
        self.kids = torch.as_tensor(kids, device=dev)
        self.child_index = [torch.as_tensor(np.array([tree.children[v] for v in tree.levels[d]]).reshape(-1), device=dev)
                            for d in range(D)]
        if self.sequence:  # the tree rule's index tensors, and each node's path and depth
            self.rule_plan = TreeRulePlan(tree, method, rows=R, n=self.n, device=dev)
            paths = np.zeros((tree.size, D + 2), dtype=np.int64)
            for v in range(tree.size):
                path = tree.path_to(v)
                paths[v, : len(path)], paths[v, D + 1] = path, len(path) - 1
            self.paths = torch.as_tensor(paths, device=dev)
        self.tallied = np.zeros((2, 3))  # host running tally: target, draft x (sum, max, laws)
        self.cuts = self.vocab is not None and any(int(m.get_output_embeddings().weight.shape[0]) != self.n
                                                   for m in (pair.target, pair.draft))
        make = partial(Graphed, device=dev, enabled=graphs)
        self.pieces = {
            "draft": [make(self._model_piece(partial(self._draft_level, d)), name=f"draft level {d}") for d in range(D)],
            "target": [make(self._model_piece(self._target), name="target")],
            "verify": [make(self._verify, name="verify")],
            "cache": [make(self._gather, name="cache gather"), make(self._scatter, name="cache scatter")],
        }
        self.clock = StepClock(dev)
        self.inference = torch.inference_mode()  # entered by every step (one object, not one a step)

    def _model_piece(self, fn):
        """``fn`` through ``torch.compile`` with :attr:`forward_backend` (unchanged when it is None)."""
        if self.forward_backend is None:
            return fn

        def piece():
            fn()
        return compiled(piece, self.forward_backend)

    @property
    def notes(self) -> list:
        """Capture failures of the pieces (empty when every piece replays as a graph, or off CUDA)."""
        return [g.error for group in self.pieces.values() for g in group if g.error]

    # -- host interface ----------------------------------------------------------------------------
    def prefill(self, ids) -> np.ndarray:
        """Cache the runs ``ids[b]`` (causal, positions 0...) in both models; returns their lengths.

        One forward per model over the right-padded runs (padding sees itself only).

        Parameters
        ----------
        ids : sequence of sequences of int
            Token ids of each of the R rows.

        Returns
        -------
        numpy.ndarray of int64, shape (R,)
            Length of each run (nothing is forwarded when all are empty).

        Raises
        ------
        NonFiniteLogitsError
            A model produced a NaN or inf logit (from :func:`empirical.vocab.check_finite`).
        """
        import torch

        lengths = np.array([len(x) for x in ids], dtype=np.int64)
        w = int(lengths.max())
        if w == 0:
            return lengths
        R, dev = len(ids), self.device
        tokens = np.zeros((R, w), dtype=np.int64)
        for b, x in enumerate(ids):
            tokens[b, : len(x)] = x
        i = torch.arange(w, device=dev)
        real = torch.as_tensor(lengths, device=dev)[:, None] > i[None]  # [R, w] query i is real
        cols = self.columns[None, None, :]
        visible = ((cols <= i[None, :, None]) & (cols < torch.as_tensor(lengths, device=dev)[:, None, None])) \
            | ((cols == i[None, :, None]) & ~real[:, :, None])
        positions = i[None].expand(R, w)
        tokens_t = torch.as_tensor(tokens, device=dev)
        with torch.inference_mode():
            for kv, model, name in ((self.target_kv, self.pair.target, "target"), (self.draft_kv, self.pair.draft, "draft")):
                if kv is not None:
                    kv.cols = i
                    logits = forward_block(model, kv, tokens_t, positions, visible)
                    check_finite(logits, positions.cpu().numpy(), name)
        return lengths

    def inputs(self):
        """The host arrays the step's inputs may be written into, so that :meth:`run_step` copies none.

        Returns
        -------
        ints : numpy.ndarray of int64, shape (R, INTS)
            View of the pinned staging buffer (CUDA) or of the integer inputs themselves (elsewhere).
        u : numpy.ndarray of float64, shape (R, layout.total), C-contiguous
            The same for the uniforms.
        """
        return self.host

    def run_step(self, ints: np.ndarray, u: np.ndarray):
        """Stage the step's integers and uniforms, run every piece and return the outcome.

        The one host synchronisation of the step is the outcome copy (plus the tallies' copy when
        the laws are cut to a shared vocabulary). Inputs written into :meth:`inputs` are not copied
        on the host (on CUDA they go to the device from there, asynchronously).

        Parameters
        ----------
        ints : numpy.ndarray of int64, shape (R, INTS)
            Per row: root token, two re-fed tokens, re-fed count, target and draft cache lengths,
            target and draft write offsets (shared), live flag (see :attr:`INTS`).
        u : numpy.ndarray of float64, shape (R, layout.total)
            Each row's uniforms in the order of :class:`empirical.fast_walk.UniformLayout`.

        Returns
        -------
        outcome : numpy.ndarray of int64, shape (R, 4 (D + 1) + 1)
            :func:`empirical.fast_walk.device_walk`'s columns, then per forward the first position
            with a non-finite logit (``NO_POSITION`` if none).
        seconds : dict
            Seconds per phase (``draft``, ``target``, ``verify``, ``cache``) and ``other``, from
            :meth:`empirical.graphs.StepClock.seconds`.
        """
        for host, given in zip(self.host, (ints, u)):
            if given is not host:
                host[:] = given
        with self.inference:
            if self.staged is not None:
                self.ints.copy_(self.staged[0], non_blocking=True)
                self.u.copy_(self.staged[1], non_blocking=True)
            self.clock.begin()
            for phase, group in self.pieces.items():
                for piece in group:
                    piece()
                self.clock.mark(phase)
            out = self.pack.cpu().numpy().copy()
            if self.cuts:
                self._fold_step_tally()
        return out, self.clock.seconds()

    def _fold_step_tally(self) -> None:
        """Add this step's dropped-mass tallies (one host copy) to the call's running tally."""
        tally = self.tally.cpu().numpy()
        for row, model in ((tally[:-1], 1), (tally[-1:], 0)):
            self.tallied[model, 0] += row[:, 0].sum()
            self.tallied[model, 1] = max(self.tallied[model, 1], row[:, 1].max(initial=0.0))
            self.tallied[model, 2] += row[:, 2].sum()

    def node_laws(self, b: int, visited: list):
        """Host float64 (p, q) rows of row b at nodes ``visited`` (p renormalised as the walk uses it).

        Parameters
        ----------
        b : int
            Row index.
        visited : list of int
            Tree nodes (internal nodes only: q is stored for those).

        Returns
        -------
        p : numpy.ndarray of float64, shape (len(visited), n)
            Target laws at the nodes, renormalised in float64.
        q : numpy.ndarray of float64, shape (len(visited), n)
            Draft laws at the nodes.
        """
        if not visited:
            return np.zeros((0, self.n)), np.zeros((0, self.n))
        return law64(self.p[b, visited]).cpu().numpy(), self.q[b, visited].cpu().numpy()

    def fold_tallies(self, vocab) -> None:
        """Add the dropped-mass tallies of the call to ``vocab`` (a SharedVocab) and reset them.

        Parameters
        ----------
        vocab : empirical.vocab.SharedVocab or None
            Receives the dropped sums, maxima and law counts per model; None: only reset.
        """
        if vocab is not None and self.tallied[:, 2].any():
            for model, row in (("target", self.tallied[0]), ("draft", self.tallied[1])):
                vocab.dropped_sum[model] += float(row[0])
                vocab.dropped_max[model] = max(vocab.dropped_max[model], float(row[1]))
                vocab.laws[model] += int(row[2])
        self.tallied[:] = 0.0

    # -- pieces (static shapes, in place, idempotent) -------------------------------------------------
    def _view(self):
        ints = self.ints
        return dict(root=ints[:, 0], refeed=ints[:, 1:3], nref=ints[:, 3], Lt=ints[:, 4], Ld=ints[:, 5],
                    Wt=ints[0, 6], Wd=ints[0, 7], live=ints[:, 8] > 0)

    def _draft_level(self, d: int) -> None:
        """Level d of the draft: d = 0 forwards the re-fed tokens and reads q after the root; d >= 1
        forwards the nodes of level d with tree attention. Then laws and the level's drafts."""
        import torch

        s, cols, R = self._view(), self.columns, self.ints.shape[0]
        committed = cols[None, :] < s["Ld"][:, None]  # [R, C]
        rel = cols - s["Wd"]
        if d == 0:
            i = torch.arange(2, device=cols.device)
            visible = committed[:, None, :] | ((rel >= 0)[None, :] & (rel[None, :] <= i[:, None]))[None]
            positions = s["Ld"][:, None] + i[None]
            self.draft_kv.cols = s["Wd"] + i
            logits = forward_block(self.pair.draft, self.draft_kv, s["refeed"], positions, visible)
            last = (s["nref"] - 1).clamp(min=0)
            logits, positions, lo, hi = logits[torch.arange(R, device=cols.device), last][:, None], positions[:, :1], 0, 1
        else:
            level = self.tree.levels[d]
            lo, hi = level[0], level[-1] + 1
            span = self.internal - 1  # draft nodes 1 .. internal - 1 sit at Wd + 2 ...
            rel2 = rel - 2
            nodes = self.ancestors[lo:hi, 1: self.internal][:, rel2.clamp(0, span - 1)] & ((rel2 >= 0) & (rel2 < span))[None]
            refed = (rel >= 0)[None] & (rel[None] < s["nref"][:, None])
            visible = (committed | refed)[:, None, :] | nodes[None]
            positions = s["Lt"][:, None] + self.depths[None, lo:hi]
            self.draft_kv.cols = s["Wd"] + 2 + (lo - 1) + torch.arange(hi - lo, device=cols.device)
            logits = forward_block(self.pair.draft, self.draft_kv, self.tokens[:, lo:hi], positions, visible)
        logits = self._cut(logits, d, s["live"])
        self._flag(d, logits, positions)
        q = law64(self.sampling.laws(logits.reshape(-1, logits.shape[-1]))).reshape(R, hi - lo, -1)
        self.q[:, lo:hi] = q
        c = self.branching[d]
        at = self.layout.draft[d]
        drafts = sample_level(self.draft_law, q, c, self.u[:, at: at + (hi - lo) * c])
        self.tokens[:, self.child_index[d]] = drafts.reshape(R, -1)

    def _target(self) -> None:
        """The target's forward over root + tree (tree attention) and its laws p."""
        s, cols, size = self._view(), self.columns, self.tree.size
        self.tokens[:, 0] = s["root"]
        rel = cols - s["Wt"]
        nodes = self.ancestors[:, rel.clamp(0, size - 1)] & ((rel >= 0) & (rel < size))[None]  # [size, C]
        visible = (cols[None, :] < s["Lt"][:, None])[:, None, :] | nodes[None]
        positions = s["Lt"][:, None] + self.depths[None]
        self.target_kv.cols = s["Wt"] + self.tree_columns
        logits = forward_block(self.pair.target, self.target_kv, self.tokens, positions, visible)
        D = len(self.branching)
        logits = self._cut(logits, D, s["live"])
        self._flag(D, logits, positions)
        self.p.copy_(self.sampling.laws(logits.reshape(-1, logits.shape[-1])).reshape(self.p.shape))

    def _verify(self) -> None:
        """The walk (or tree rule) of the step, its outcome written into :attr:`outcome`.

        Uncompiled, the walk stacks its columns straight into :attr:`outcome` (``out=``); a
        compiled one returns a fresh tensor, copied in.
        """
        walk, tree_walk = _walks(self.compile_backend)
        out = self.outcome if self.compile_backend is None else None
        if self.sequence:
            at = self.layout.bonus
            result = tree_walk(self.rule_plan, self.paths, self.tokens, self.p, self.q, self.u[:, at: at + 2], out=out)
        else:
            result = walk(self.kids, self.tokens, self.p, self.q, self.u, self.layout, self.branching,
                          method=self.method, out=out)
        if out is None:
            self.outcome.copy_(result)

    def _gather(self) -> None:
        """Columns of the accepted path (and the draft's re-fed tokens) -> side buffers."""
        import torch

        s, D, scratch = self._view(), len(self.branching), self.width - 1
        path, accepted = self.outcome[:, : D + 1], self.outcome[:, 3 * D + 3]
        k = torch.arange(D + 1, device=path.device)[None]
        real = (k <= accepted[:, None]) & s["live"][:, None]
        self.target_kv.gather(torch.where(real, s["Wt"] + path, scratch))
        self.dst[0].copy_(torch.where(real, s["Lt"][:, None] + k, scratch))
        if D:
            refed = k < s["nref"][:, None]
            j = k - s["nref"][:, None] + 1  # path index of entry k after the re-fed tokens
            node = (~refed) & (j <= accepted.clamp(max=D - 1)[:, None])
            src = torch.where(refed, s["Wd"] + k, s["Wd"] + 1 + torch.gather(path, 1, j.clamp(0, D)))
            real = (refed | node) & s["live"][:, None]
            self.draft_kv.gather(torch.where(real, src, scratch))
            self.dst[1].copy_(torch.where(real, s["Ld"][:, None] + k, scratch))

    def _scatter(self) -> None:
        import torch

        self.target_kv.scatter(self.dst[0])
        if self.draft_kv is not None:
            self.draft_kv.scatter(self.dst[1])
        self.pack.copy_(torch.cat([self.outcome, self.bad], dim=1))

    # -- helpers ----------------------------------------------------------------------------------------
    def _cut(self, logits, j: int, live):
        """Logits cut to the shared vocabulary, the dropped mass of the live rows tallied in slot j."""
        import torch

        if logits.shape[-1] == self.n:
            self.tally[j].zero_()
            return logits
        z = logits.float()
        T = self.sampling.temperature
        dropped = torch.softmax(z / T, dim=-1)[..., self.n:].sum(-1) if T > 0 else (z.argmax(-1) >= self.n).double()
        keep = torch.isfinite(dropped) & live[:, None]
        dropped = torch.where(keep, dropped.double(), 0.0)
        self.tally[j].copy_(torch.stack([dropped.sum(), dropped.max(), keep.sum().double()]))
        return logits[..., : self.n]

    def _flag(self, j: int, logits, positions) -> None:
        """Slot j of ``bad``: per row the first position with a NaN/inf logit (NO_POSITION if none)."""
        import torch

        bad = ~(torch.isfinite(logits.amax(dim=-1)) & torch.isfinite(logits.amin(dim=-1)))
        self.bad[:, j] = torch.where(bad, positions, self.NO_POSITION).amin(dim=-1)
