"""The torch tree rules of block and traversal verification (empirical.sequence_torch) against the
numpy reference (spechub_theory.trees.sequence_rules): the exact outcome law on random drafted trees
(zeros, one-hots, ties), and whole decodes that emit the same tokens on both engines."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from empirical import sequence_torch  # noqa: E402
from empirical.decoder import decode, decode_batch  # noqa: E402
from empirical.engines import TorchEngine, get_engine  # noqa: E402
from empirical.tiny import one_thread_fixture, tiny_pair  # noqa: E402
from spechub_theory.trees.sequence_rules import block_rule, traversal_rule  # noqa: E402
from spechub_theory.trees.shapes import Tree  # noqa: E402
from strategies import distributions  # noqa: E402

#: level-uniform shapes and two irregular ones (a level mixing leaves and nodes of 1-3 children)
SHAPES = ["chain-1", "chain-3", "2^2", "3^2", "2,3,1", "1,2,2", (-1, 0, 0, 1, 1, 1, 2), (-1, 0, 0, 0, 1, 3, 3)]
_threads = pytest.fixture(scope="module", autouse=True)(one_thread_fixture)


@st.composite
def drafted_trees(draw, shapes=SHAPES, max_n=5):
    """(tree, tokens [B, size], p, q [B, size, n]) with every node's children drafted i.i.d. from its q."""
    shape = draw(st.sampled_from(shapes))
    tree = Tree.from_parents(shape) if isinstance(shape, tuple) else Tree.from_name(shape)
    n, B = draw(st.integers(1, max_n)), draw(st.integers(1, 3))
    laws = [[draw(distributions(n)) for _ in range(2 * tree.size)] for _ in range(B)]
    p = np.array([row[: tree.size] for row in laws])
    q = np.array([row[tree.size :] for row in laws])
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    tokens = np.zeros((B, tree.size), dtype=np.int64)
    for b in range(B):
        for v in range(1, tree.size):
            tokens[b, v] = rng.choice(n, p=q[b, tree.parents[v]])
    return tree, tokens, p, q


@pytest.mark.parametrize("method, rule, shapes", [("traversal", traversal_rule, SHAPES),
                                                  ("block", block_rule, ["chain-1", "chain-2", "chain-4"])])
@given(data=st.data())
def test_outcome_matches_the_core(method, rule, shapes, data):
    tree, tokens, p, q = data.draw(drafted_trees(shapes=shapes))
    ref = rule(tree, tokens, p, q)
    group = data.draw(st.sampled_from([2**27, 2 * p.shape[0] * p.shape[-1]]))  # one group per level, or pairs of nodes
    args = [torch.as_tensor(x) for x in (tokens, p, q)]
    got = sequence_torch.tree_outcome(tree, method, *args, group_entries=group)
    lazy = sequence_torch.tree_outcome(tree, method, *args, group_entries=group, lazy=True)
    np.testing.assert_allclose(got.end.numpy(), ref.end, rtol=1e-12, atol=1e-14)
    # the recipe replays the same operations, on other shapes (a 1-element divisor may become a reciprocal)
    np.testing.assert_allclose(lazy.end.numpy(), got.end.numpy(), rtol=1e-13, atol=1e-15)
    for v in range(tree.size):
        node = torch.full((len(tokens),), v)
        np.testing.assert_allclose(got.final(node).numpy(), ref.final[:, v], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(lazy.final(node).numpy(), got.final(node).numpy(), rtol=1e-13, atol=1e-15)


@pytest.fixture(scope="module")
def pair():
    return tiny_pair(64)


@pytest.mark.hf
@pytest.mark.parametrize("method, tree", [("traversal", "2^3"), ("traversal", "2,3,1"), ("block", "chain-3"),
                                          ("traversal", "chain-2")])
def test_torch_and_numpy_engines_emit_the_same_tokens(pair, method, tree):
    runs = [decode(pair, [3, 4], tree=tree, method=method, max_new_tokens=25, rng=9, engine=e) for e in ("torch", "numpy")]
    assert runs[0].tokens == runs[1].tokens
    assert [s.accepted for s in runs[0].steps] == [s.accepted for s in runs[1].steps]


@pytest.mark.hf
def test_batched_torch_decode_equals_numpy_one_at_a_time(pair):
    prompts = ([5, 9, 3], [7], [1, 2, 3, 4])
    rngs = lambda: [np.random.default_rng([2, i]) for i in range(len(prompts))]  # noqa: E731
    batch = decode_batch(pair, prompts, tree="2,1,2", method="traversal", max_new_tokens=15, rngs=rngs(), engine="torch")
    single = [decode(pair, ids, tree="2,1,2", method="traversal", max_new_tokens=15, rng=rng, engine="numpy")
              for ids, rng in zip(prompts, rngs())]
    assert [r.tokens for r in batch] == [r.tokens for r in single]


def test_the_torch_engine_has_the_sequence_level_methods():
    assert TorchEngine.supports("traversal") and TorchEngine.supports("block")
    assert get_engine("auto", "traversal", device="cuda") is TorchEngine
    assert get_engine("auto", "traversal", device="cpu").name == "numpy"


def test_block_off_a_chain_and_unknown_methods_are_errors():
    tree = Tree.from_name("2^2")
    tokens, p = torch.zeros(1, tree.size, dtype=torch.long), torch.full((1, tree.size, 3), 1 / 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="'block' verifies a single chain"):
        sequence_torch.tree_outcome(tree, "block", tokens, p, p)
    with pytest.raises(ValueError, match="`method` 'rrs' is not one of 'block', 'traversal'"):
        sequence_torch.tree_outcome(tree, "rrs", tokens, p, p)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method, tree", [("traversal", "2^3"), ("block", "chain-3")])
def test_cuda_decode_matches_cpu_numpy_reference(method, tree):
    """On the GPU: the torch engine (auto on CUDA) emits the tokens of the numpy core on CPU."""
    cuda = decode(tiny_pair(64, device="cuda"), [3, 4], tree=tree, method=method, max_new_tokens=20, rng=5)
    cpu = decode(tiny_pair(64), [3, 4], tree=tree, method=method, max_new_tokens=20, rng=5, engine="numpy")
    assert cuda.tokens == cpu.tokens


@pytest.mark.parametrize("values, sliced", [([3], True), ([1, 3, 5], True), ([2, 3, 4, 5], True), ([1, 2, 4], False),
                                            ([4, 2], False)])
def test_plan_indexes_evenly_spaced_nodes_by_a_view(values, sliced):
    index = sequence_torch._index(values, device="cpu")
    assert isinstance(index, slice) == sliced
    x = torch.arange(24).reshape(2, 12)
    assert x[:, index].tolist() == x[:, values].tolist()


def test_the_tree_outcome_benchmark_records_both_kinds_of_targets(tmp_path):
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "outcome.json"
    subprocess.run([sys.executable, str(root / "benchmarks" / "bench_tree_outcome.py"), "--rows", "2", "--n", "50",
                    "--tree", "2^2", "--repeat", "1", "--out", str(out)], check=True, cwd=root, capture_output=True)
    (run,) = json.loads(out.read_text())["runs"]
    assert run["same_draws"] and run["tensors_ms"] > 0 and run["recipes_ms"] > 0
