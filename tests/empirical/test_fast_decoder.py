"""The fast runtime (``empirical.fast_decoder``) emits, row by row, exactly what the eager reference
emits for the same Generators (tokens, visited nodes, slots, node laws, Generator states after),
for ar and every tree method it verifies, across workspace reuse; it refuses what it cannot run."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from empirical.decode_types import Sampling  # noqa: E402
from empirical.decoder import decode_batch  # noqa: E402
from empirical.fast_decoder import _Streams, decode_batch_fast, decode_batch_with, fast_reason  # noqa: E402
from empirical.fast_walk import UniformLayout, uniform_branching  # noqa: E402
from spechub_theory.trees.shapes import Tree  # noqa: E402
from test_empirical_batch_decoder import PROMPTS, _rngs, _threads, pair  # noqa: E402,F401 (prompts, Generators, fixtures)

pytestmark = pytest.mark.hf
CASES = [("2^3", "rrs", "torch"), ("2^3", "spechub", "numpy"), ("3^2", "rrs_wor", "torch"), ("chain-3", "single", "numpy"),
         (None, "ar", "torch"), ("2,1,2", "spechub", "torch"), ("2^2", "rrs", "numpy"), ("4^2", "spechub", "torch"),
         ("2^3", "traversal", "torch"), ("3^2", "traversal", "numpy"), ("2,1,2", "traversal", "torch"), ("chain-3", "block", "torch")]


def _run(decoder, pair, tree, method, rngs, **kw):
    seen = []
    out = decoder(pair, PROMPTS, tree=tree, method=method, sampling=Sampling(0.8, 1.0), max_new_tokens=20, rngs=rngs,
                  on_step=lambda r, step, laws: seen.append((r, step, laws)), **kw)
    return out, seen


@pytest.mark.parametrize("tree, method, engine", CASES)
def test_fast_path_emits_what_the_eager_path_emits(pair, tree, method, engine):
    eager_rngs, fast_rngs = _rngs(1), _rngs(1)
    eager, eager_seen = _run(decode_batch, pair, tree, method, eager_rngs, engine=engine)
    fast, fast_seen = _run(decode_batch_fast, pair, tree, method, fast_rngs)
    for a, b in zip(eager, fast):
        assert b.tokens == a.tokens and b.finish == a.finish
        assert [s.visited for s in b.steps] == [s.visited for s in a.steps]
        assert [s.slots for s in b.steps] == [s.slots for s in a.steps]
        assert [s.accepted for s in b.steps] == [s.accepted for s in a.steps]
    assert [g.random() for g in fast_rngs] == [g.random() for g in eager_rngs]  # Generators consumed alike
    assert sorted((r, s.tokens) for r, s, _ in fast_seen) == sorted((r, s.tokens) for r, s, _ in eager_seen)
    for (_, _, la), (_, _, lb) in zip(sorted(eager_seen, key=lambda x: x[0]), sorted(fast_seen, key=lambda x: x[0])):
        assert la.k == lb.k
        np.testing.assert_allclose(lb.p, la.p, atol=1e-6)
        np.testing.assert_allclose(lb.q, la.q, atol=1e-6)
    assert set(fast[0].steps[0].seconds) >= {"draft", "target", "verify", "cache", "other"}


def test_reused_workspace_gives_the_same_tokens(pair):
    """A second call with the same shapes reuses the buffers (stale columns must stay hidden)."""
    first = decode_batch_fast(pair, PROMPTS, tree="2^3", method="spechub", rngs=_rngs(4), max_new_tokens=30)
    again = decode_batch_fast(pair, PROMPTS, tree="2^3", method="spechub", rngs=_rngs(4), max_new_tokens=30)
    eager = decode_batch(pair, PROMPTS, tree="2^3", method="spechub", rngs=_rngs(4), max_new_tokens=30, engine="torch")
    assert [r.tokens for r in first] == [r.tokens for r in again] == [r.tokens for r in eager]


def test_greedy_and_top_p(pair):
    for sampling in (Sampling(0.0, 1.0), Sampling(1.0, 0.7)):
        a = decode_batch(pair, PROMPTS, tree="2^3", method="rrs_wor", rngs=_rngs(2), sampling=sampling, engine="torch")
        b = decode_batch_fast(pair, PROMPTS, tree="2^3", method="rrs_wor", rngs=_rngs(2), sampling=sampling)
        assert [r.tokens for r in a] == [r.tokens for r in b]


def test_uniform_layout_matches_the_core_consumption():
    tree = Tree.from_name("2^3")
    branching = uniform_branching(tree)
    layout = UniformLayout.of(tree, branching)
    assert branching == (2, 2) and layout.draft == (0, 2) and layout.walk == (6, 9) and layout.total == 13
    assert list(layout.used([0, 1, 2], branching)) == [9, 12, 13]
    assert uniform_branching(Tree.from_branching([[2], [1, 3]])) is None


def test_what_the_fast_path_refuses(pair):
    assert fast_reason("2^3", "kseq") and fast_reason("2^3", "spechub", "numpy")
    assert fast_reason(Tree.from_branching([[2], [1, 3]]), "rrs") and fast_reason("2^3", "spechub") is None
    with pytest.raises(ValueError, match="fast path cannot decode"):
        decode_batch_fast(pair, PROMPTS, tree="2^3", method="kseq", rngs=_rngs(0))
    with pytest.raises(ValueError, match="`runtime` 'jit' is not one of"):
        decode_batch_with(pair, PROMPTS, tree="2^3", method="rrs", rngs=_rngs(0), runtime="jit")
    with pytest.raises(ValueError, match="one Generator per prompt"):
        decode_batch_fast(pair, [[1], [2]], tree="2^2", method="rrs", rngs=[0])
    with pytest.raises(ValueError, match="at least one token"):
        decode_batch_fast(pair, [[1], []], tree="2^2", method="rrs", rngs=[0, 1])
    with pytest.raises(ValueError, match="`max_new_tokens` must be >= 1"):
        decode_batch_fast(pair, [[1]], tree="2^2", method="rrs", rngs=[0], max_new_tokens=0)
    kseq = decode_batch_with(pair, PROMPTS, tree="2^3", method="kseq", rngs=_rngs(3), max_new_tokens=8)  # falls back
    assert [r.tokens for r in kseq] == [r.tokens for r in decode_batch(pair, PROMPTS, tree="2^3", method="kseq",
                                                                       rngs=_rngs(3), max_new_tokens=8)]


def test_block_on_a_tree_is_refused_on_the_fast_path(pair):
    with pytest.raises(ValueError, match="single chain"):
        decode_batch_fast(pair, PROMPTS, tree="2^2", method="block", rngs=_rngs(1), max_new_tokens=4)


@pytest.mark.parametrize("tree, method", [(None, "ar"), ("2^2", "rrs")])
def test_compiled_model_pieces_emit_the_same_tokens(pair, monkeypatch, tree, method):
    """``$SPECHUB_COMPILE_FORWARD``: each draft level and the target's tree forward through
    ``torch.compile``: the ``eager`` backend (dynamo's graph capture) and ``aot_eager`` (AOTAutograd's
    tracing too, where a nested inference_mode used to fail; still no compiler needed)."""
    from empirical.fast_workspace import COMPILE_FORWARD_ENV, clear_workspaces, forward_backend

    plain = decode_batch_fast(pair, PROMPTS, tree=tree, method=method, rngs=_rngs(5), max_new_tokens=10)
    for backend in ("eager", "aot_eager"):
        clear_workspaces()
        monkeypatch.setenv(COMPILE_FORWARD_ENV, backend)
        assert forward_backend() == backend
        compiled = decode_batch_fast(pair, PROMPTS, tree=tree, method=method, rngs=_rngs(5), max_new_tokens=10)
        assert [r.tokens for r in compiled] == [r.tokens for r in plain]
    clear_workspaces()
    monkeypatch.setenv(COMPILE_FORWARD_ENV, "1")
    assert forward_backend() == "inductor"
    monkeypatch.delenv(COMPILE_FORWARD_ENV)
    assert forward_backend() is None


@pytest.mark.parametrize("tree, method", [("2^3", "spechub"), ("2^2", "traversal")])
def test_compiled_verification_piece_emits_the_same_tokens(pair, monkeypatch, tree, method):
    """``$SPECHUB_COMPILE_VERIFY``: the verification piece through ``torch.compile`` (here the
    ``eager`` backend: graph capture by dynamo without code generation, no compiler needed)."""
    from empirical.fast_workspace import COMPILE_VERIFY_ENV, verify_backend

    plain = decode_batch_fast(pair, PROMPTS, tree=tree, method=method, rngs=_rngs(5), max_new_tokens=12)
    monkeypatch.setenv(COMPILE_VERIFY_ENV, "eager")
    assert verify_backend() == "eager"
    compiled = decode_batch_fast(pair, PROMPTS, tree=tree, method=method, rngs=_rngs(5), max_new_tokens=12)
    assert [r.tokens for r in compiled] == [r.tokens for r in plain]
    monkeypatch.setenv(COMPILE_VERIFY_ENV, "1")
    assert verify_backend() == "inductor"
    monkeypatch.setenv(COMPILE_VERIFY_ENV, "0")
    assert verify_backend() is None


def test_compiled_pieces_may_recompile_for_every_workspace_shape():
    """A compiled piece serves every workspace shape: dynamo's recompile limit (8 by default) is raised,
    so a compiled benchmark row never silently falls back to the uncompiled code."""
    import torch._dynamo.config as config

    from empirical.fast_workspace import RECOMPILE_LIMIT, compiled

    fn = compiled(lambda: None, "eager")
    assert callable(fn)
    assert getattr(config, "recompile_limit", getattr(config, "cache_size_limit", 0)) >= RECOMPILE_LIMIT


def test_the_number_of_cached_workspaces_is_bounded_by_its_variable(pair, monkeypatch):
    """``$SPECHUB_WORKSPACES``: how many workspaces (caches, laws buffers, graph pools) stay cached."""
    from empirical import fast_workspace as fw

    fw.clear_workspaces()
    monkeypatch.setenv(fw.WORKSPACES_ENV, "1")
    for tree in ("2^2", "2^3"):
        decode_batch_fast(pair, PROMPTS, tree=tree, method="rrs", rngs=_rngs(5), max_new_tokens=4)
    assert len(fw._CACHE) == 1 and next(iter(fw._CACHE))[2] == tuple(Tree.from_branching((2, 2)).parents)  # "2^3": 2^3 - 1 nodes
    monkeypatch.delenv(fw.WORKSPACES_ENV)
    assert fw.cached_workspaces() == 2
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(fw.WORKSPACES_ENV, bad)
        with pytest.raises(ValueError, match="SPECHUB_WORKSPACES must be a positive integer"):
            fw.cached_workspaces()
    fw.clear_workspaces()


def _half_used(seed):
    """A PCG64 Generator holding a cached 32-bit half (``advance`` would drop it)."""
    g = np.random.default_rng([seed, 99])
    g.integers(0, 10, dtype=np.int32)
    return g


@pytest.mark.parametrize("make", [lambda i: np.random.Generator(np.random.MT19937([5, i])), _half_used])
def test_generators_the_fast_rewind_cannot_take_are_consumed_alike(pair, make):
    """MT19937, or PCG64 with a cached half: the step saves and restores the state instead of advancing."""
    eager_rngs, fast_rngs = [make(i) for i in range(len(PROMPTS))], [make(i) for i in range(len(PROMPTS))]
    assert not _Streams(fast_rngs).advance and _Streams(_rngs(0)).advance
    eager = decode_batch(pair, PROMPTS, tree="2^3", method="spechub", rngs=eager_rngs, max_new_tokens=15, engine="torch")
    fast = decode_batch_fast(pair, PROMPTS, tree="2^3", method="spechub", rngs=fast_rngs, max_new_tokens=15)
    assert [r.tokens for r in fast] == [r.tokens for r in eager]
    assert [g.integers(1 << 30) for g in fast_rngs] == [g.integers(1 << 30) for g in eager_rngs]


@pytest.mark.parametrize("rngs", [lambda: _rngs(6), lambda: [np.random.Generator(np.random.MT19937(6))] * 2])
def test_streams_leave_the_state_a_redraw_leaves(rngs):
    """Draw 7 values per row, keep 3: same values and end states as saving, drawing, restoring, redrawing
    (the decoder's order before, rows sharing a Generator included)."""
    ours, ref = rngs(), rngs()
    streams, u = _Streams(ours), np.zeros((len(ours), 7))
    for _ in range(3):
        streams.draw(range(len(ours)), u)
        states = []
        expect = []
        for g in ref:
            states.append(g.bit_generator.state)
            expect.append(g.random(7))
        for b, g in enumerate(ref):
            streams.keep(b, 7, 3)
            g.bit_generator.state = states[b]
            g.random(3)
        np.testing.assert_array_equal(u, np.array(expect))
    assert [g.random() for g in ours] == [g.random() for g in ref]
