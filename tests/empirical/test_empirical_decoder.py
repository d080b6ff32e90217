"""Tree decoding with tiny random Llama pairs: cached tree forwards, caches after compaction, step
bounds, EOS inside a tree, top-p, greedy decoding, the autoregressive baseline, input errors."""

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from empirical.decode_types import Sampling  # noqa: E402
from empirical.decoder import decode  # noqa: E402
from empirical.kv_forward import forward_block, new_cache  # noqa: E402
from empirical.probs import probs_from_logits  # noqa: E402
from empirical.run import DecodeConfig  # noqa: E402
from empirical.tiny import one_thread_fixture, tiny_pair  # noqa: E402
from spechub_theory.distributions import probs_from_logits as probs_reference  # noqa: E402
from spechub_theory.trees.shapes import Tree  # noqa: E402

pytestmark = pytest.mark.hf
METHODS = ("rrs", "rrs_wor", "kseq", "spechub")
PROMPT = [5, 9, 3]


_threads = pytest.fixture(scope="module", autouse=True)(one_thread_fixture)


@pytest.fixture(scope="module")
def pair():
    return tiny_pair(64)


def _full_logits(model, ids):
    """Logits after every prefix of ``ids`` by a plain forward without cache, [len, vocab]."""
    with torch.inference_mode():
        return model(input_ids=torch.as_tensor([ids])).logits[0].float()


@pytest.mark.parametrize("temperature, top_p", [(1.0, 1.0), (0.7, 1.0), (1.0, 0.8), (0.0, 1.0), (0.3, 0.5)])
def test_probs_match_numpy_reference(temperature, top_p):
    logits = torch.randn(6, 50, generator=torch.Generator().manual_seed(3)) * 3
    ours = probs_from_logits(logits, temperature, top_p).double().numpy()
    ref = probs_reference(logits.double().numpy(), temperature=temperature, top_p=top_p)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-7)


def test_probs_reject_bad_temperature():
    with pytest.raises(ValueError, match="`temperature` must be >= 0"):
        probs_from_logits(torch.zeros(3), -1.0)
    with pytest.raises(ValueError, match="`top_p` must be in"):
        Sampling(1.0, 0.0)


def test_cached_tree_forward_equals_full_recompute(pair):
    tree = Tree.from_branching([2, [2, 1], 1])
    prefix = [7, 1, 4, 4, 9]
    rng = np.random.default_rng(0)
    tokens = rng.integers(2, 64, size=tree.size)
    tokens[0] = prefix[-1]
    cache = new_cache(pair.target)

    def forward(ids, positions, visible):  # one sequence: a batch of one
        return forward_block(pair.target, cache, ids[None], positions[None], visible[None])[0]

    past = torch.ones(len(prefix) - 1, len(prefix) - 1, dtype=torch.bool).tril()
    forward(torch.as_tensor(prefix[:-1]), torch.arange(len(prefix) - 1), past)
    base = len(prefix) - 1
    visible = torch.cat([torch.ones(tree.size, base, dtype=torch.bool), torch.as_tensor(tree.ancestor_mask)], dim=1)
    got = forward(torch.as_tensor(tokens), base + torch.as_tensor(tree.depths), visible).float()
    for v in range(tree.size):
        ids = prefix[:-1] + [int(tokens[u]) for u in tree.path_to(v)]
        torch.testing.assert_close(got[v], _full_logits(pair.target, ids)[-1], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("tree", ["2^3", "3^2", "2,1,2"])
def test_node_laws_after_compaction_equal_recompute(pair, tree):
    """p and q seen at every verified node equal a cache-free recompute: the caches keep exactly
    the accepted path, step after step."""
    seen = []
    result = decode(pair, PROMPT, tree=tree, method="spechub", max_new_tokens=24, rng=1,
                    on_step=lambda step, laws: seen.append((step, laws)))
    committed = list(PROMPT)
    for step, laws in seen:
        for i, v in enumerate(step.visited):
            ids = committed + list(step.tokens[:i])
            p = probs_from_logits(_full_logits(pair.target, ids)[-1], 1.0).double().numpy()
            q = probs_from_logits(_full_logits(pair.draft, ids)[-1], 1.0).double().numpy()
            np.testing.assert_allclose(laws.p[i], p, atol=1e-5)
            np.testing.assert_allclose(laws.q[i], q, atol=1e-5)
        committed += list(step.tokens)
    assert committed[len(PROMPT):] == list(result.tokens)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("tree", ["2^3", "3^3", "2,1,2"])
def test_tokens_per_step_within_one_and_depth_plus_one(pair, method, tree):
    depth = Tree.from_name(tree).depth
    result = decode(pair, PROMPT, tree=tree, method=method, max_new_tokens=30, rng=7)
    assert 1 <= len(result.tokens) <= 30
    for step in result.steps:
        assert 1 <= len(step.tokens) <= depth + 1
        assert 0 <= step.accepted <= depth
        assert set(step.seconds) == {"draft", "target", "verify", "cache"}
    assert 1.0 <= result.tokens_per_step <= depth + 1


def test_single_draft_on_a_chain(pair):
    result = decode(pair, PROMPT, tree="chain-3", method="single", max_new_tokens=20, rng=2)
    assert all(1 <= len(s.tokens) <= 4 for s in result.steps)


def test_eos_inside_the_tree_ends_the_sequence(pair):
    # declare a frequent token the end-of-sequence token so that it often sits inside the tree
    common = np.bincount(decode(pair, PROMPT, tree="2^3", method="rrs", max_new_tokens=40, rng=0).tokens).argmax()
    eos_pair = dataclasses.replace(pair, eos_token_ids=frozenset({int(common)}))
    cut_inside = 0
    for seed in range(10):
        result = decode(eos_pair, PROMPT, tree="2^4", method="rrs", max_new_tokens=40, rng=seed)
        if result.finish == "eos":
            assert result.tokens[-1] == common and common not in result.tokens[:-1]
            last = result.steps[-1]
            cut_inside += last.accepted >= len(last.tokens)  # tokens after EOS on the path were dropped
        else:
            assert common not in result.tokens and len(result.tokens) == 40
    assert cut_inside >= 1


def test_top_p_tokens_stay_in_the_target_nucleus(pair):
    top_p = 0.6
    result = decode(pair, PROMPT, tree="2^3", method="spechub", sampling=Sampling(1.0, top_p), max_new_tokens=20, rng=4)
    ids = list(PROMPT)
    for token in result.tokens:
        p = probs_from_logits(_full_logits(pair.target, ids)[-1], 1.0, top_p)
        assert p[token] > 0
        ids.append(token)


@pytest.mark.parametrize("method", ["spechub", "rrs_wor", "ar"])
def test_greedy_equals_greedy_target_decoding(pair, method):
    result = decode(pair, PROMPT, tree="2^3", method=method, sampling=Sampling(0.0), max_new_tokens=15, rng=0)
    ids = list(PROMPT)
    for _ in range(15):
        ids.append(int(_full_logits(pair.target, ids)[-1].argmax()))
    assert list(result.tokens) == ids[len(PROMPT):]


def test_autoregressive_baseline_one_token_per_step(pair):
    result = decode(pair, PROMPT, tree=None, method="ar", max_new_tokens=12, rng=0)
    assert len(result.steps) == len(result.tokens) == 12
    assert all(s.accepted == 0 and s.visited == () for s in result.steps)


def test_config_rejects_method_tree_mismatch_and_unknown_names():
    with pytest.raises(ValueError, match="tree '2\\^3' with method 'single'"):
        DecodeConfig(trees=("2^3",), methods=("single",)).validated()
    with pytest.raises(ValueError, match="'rrsw' is not one of"):
        DecodeConfig(methods=("rrsw",)).validated()
    with pytest.raises(ValueError, match="`max_new_tokens` must be >= 1"):
        decode(None, PROMPT, tree="2^2", method="rrs", max_new_tokens=0)
