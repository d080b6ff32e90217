"""Decoding prompts in lockstep (``empirical.decoder``) emits, prompt by prompt, exactly what
decoding them one at a time emits: prompts of different lengths (one of a single token), EOS inside
a tree, the token budget, both engines, every method, mixed branching and the AR baseline."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from empirical.decoder import decode_batch  # noqa: E402
from empirical.decode_types import Sampling  # noqa: E402
from empirical.decoder import decode  # noqa: E402
from empirical.tiny import one_thread_fixture, tiny_pair  # noqa: E402

pytestmark = pytest.mark.hf
PROMPTS = ([5, 9, 3], [7], [1, 2, 3, 4, 5, 6, 7, 8], [4, 4])
CASES = [("2^3", "rrs", "torch"), ("2^3", "spechub", "numpy"), ("3^2", "rrs_wor", "torch"), ("3^2", "kseq", "numpy"),
         ("2,1,2", "spechub", "torch"), ("chain-3", "single", "numpy"), (None, "ar", "torch"),
         ("2,1,2", "traversal", "numpy"), ("chain-3", "block", "numpy"), ("2^2", "khisti_is", "numpy")]

_threads = pytest.fixture(scope="module", autouse=True)(one_thread_fixture)


@pytest.fixture(scope="module")
def pair():
    return tiny_pair(64)


def _rngs(seed):
    return [np.random.default_rng([seed, i]) for i in range(len(PROMPTS))]


@pytest.mark.parametrize("tree, method, engine", CASES)
def test_batch_equals_one_at_a_time(pair, tree, method, engine):
    sampling = Sampling(0.8, 1.0)
    single = [decode(pair, ids, tree=tree, method=method, sampling=sampling, max_new_tokens=20, rng=rng, engine=engine)
              for ids, rng in zip(PROMPTS, _rngs(1))]
    seen = []
    batch = decode_batch(pair, PROMPTS, tree=tree, method=method, sampling=sampling, max_new_tokens=20, rngs=_rngs(1),
                         engine=engine, on_step=lambda r, step, laws: seen.append((r, step, laws)))
    for a, b in zip(single, batch):
        assert b.tokens == a.tokens and b.finish == a.finish
        assert [s.tokens for s in b.steps] == [s.tokens for s in a.steps]
        assert [s.visited for s in b.steps] == [s.visited for s in a.steps]
    assert {r for r, _, _ in seen} == set(range(len(PROMPTS)))
    for r, step, laws in seen:
        assert laws.p.shape[0] == laws.q.shape[0] == len(step.visited) == len(laws.k)
        np.testing.assert_allclose(laws.p.sum(axis=1), 1.0, atol=1e-12)


def test_eos_and_budget_rows_leave_the_batch(pair):
    """A row that meets EOS stops there while the others go on to the budget."""
    eos = next(iter(pair.eos_token_ids))
    out = decode_batch(pair, [[5], [3, 9, 2]], tree="2^2", method="rrs", max_new_tokens=300,
                       rngs=[np.random.default_rng(s) for s in (0, 1)], sampling=Sampling(1.0, 1.0))
    for result in out:
        assert result.finish in ("eos", "length")
        assert len(result.tokens) <= 300
        if result.finish == "eos":
            assert result.tokens[-1] == eos and eos not in result.tokens[:-1]
        else:
            assert len(result.tokens) == 300


def test_bad_input_is_a_value_error(pair):
    with pytest.raises(ValueError, match="one Generator per prompt"):
        decode_batch(pair, [[1], [2]], tree="2^2", method="rrs", rngs=[0])
    with pytest.raises(ValueError, match="at least one token"):
        decode_batch(pair, [[1], []], tree="2^2", method="rrs", rngs=[0, 1])
    with pytest.raises(ValueError, match="`max_new_tokens` must be >= 1"):
        decode_batch(pair, [[1]], tree="2^2", method="rrs", rngs=[0], max_new_tokens=0)
    assert decode_batch(pair, [], tree="2^2", method="rrs", rngs=[]) == []
