"""Sequence-level losslessness on a tiny vocabulary: the law of the first two generated tokens under
tree decoding with each method equals the target's exact two-token law (chi-square, fixed seeds),
and a deliberately wrong decoder (target and draft swapped, so tokens follow q) is rejected by the
same test, which shows its power.

Sample size from the power analysis (:func:`spechub_theory.samples_needed`): with the 256 cells
of (x1, x2), N = 320 decodes detect any deviation of total variation 0.3 or more from the target
law with power 0.9 at alpha = 1e-3 (worst case over how the deviation spreads; pooling of rare
cells applies the bound to the pooled law). Smaller deviations are the business of the exact
tests of the core; 320 decodes per method is what CI on 2 cores affords (a few seconds each)."""

import dataclasses
import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from empirical.decoder import decode  # noqa: E402
from empirical.fast_decoder import decode_batch_fast  # noqa: E402
from empirical.probs import probs_from_logits  # noqa: E402
from empirical.tiny import one_thread_fixture, tiny_pair  # noqa: E402
from spechub_theory.montecarlo.stats import matches_target, samples_needed  # noqa: E402

pytestmark = pytest.mark.hf
VOCAB = 16
PROMPT = [4]
ALPHA = 1e-3  # per test; seeds are fixed, so the outcome is deterministic
#: detected TV and power of the test (see the module docstring): 320 samples
TV, POWER = 0.3, 0.9
SAMPLES = samples_needed(VOCAB * VOCAB, TV, alpha=ALPHA, power=POWER)


_threads = pytest.fixture(scope="module", autouse=True)(one_thread_fixture)


@pytest.fixture(scope="module")
def pair():
    # no end-of-sequence token here, so every run emits two tokens (EOS is tested elsewhere)
    return dataclasses.replace(tiny_pair(VOCAB, noise=0.5, seed=5, sharpness=2.5, layers=1), eos_token_ids=frozenset())


def _two_token_law(model) -> np.ndarray:
    """Exact law of (x1, x2) when sampling from ``model`` at T = 1, [VOCAB, VOCAB]."""
    with torch.inference_mode():
        first = probs_from_logits(model(input_ids=torch.as_tensor([PROMPT])).logits[0, -1], 1.0).double()
        batch = torch.as_tensor([PROMPT + [x] for x in range(VOCAB)])
        second = probs_from_logits(model(input_ids=batch).logits[:, -1], 1.0).double()
    law = (first[:, None] * second).numpy()
    return law / law.sum()


def _fast(pair, prompt, *, tree, method, max_new_tokens, rng):
    return decode_batch_fast(pair, [prompt], tree=tree, method=method, max_new_tokens=max_new_tokens, rngs=[rng])[0]


def _test(pair, law, *, tree, method, seed, engine="auto", decoder=None):
    """Chi-square test (the core's pooled bins) of the decoded (x1, x2) pairs against ``law``."""
    rng = np.random.default_rng(seed)
    decoder = decoder or functools.partial(decode, engine=engine)
    pairs = [decoder(pair, PROMPT, tree=tree, method=method, max_new_tokens=2, rng=rng).tokens for _ in range(SAMPLES)]
    cells = np.array([x1 * VOCAB + x2 for x1, x2 in pairs])
    return matches_target(cells, law.ravel(), alpha=ALPHA, kind="samples")


@pytest.fixture(scope="module")
def law(pair):
    return _two_token_law(pair.target)


@pytest.mark.parametrize("method, tree", [("spechub", "2^3"), ("rrs", "2^3"), ("rrs_wor", "3^2"), ("kseq", "2^3"),
                                          ("single", "chain-2"), ("traversal", "2^3"), ("block", "chain-2"),
                                          ("khisti_is", "2^2")])
def test_first_two_tokens_follow_the_target(pair, law, method, tree):
    result = _test(pair, law, tree=tree, method=method, seed=11)
    assert result.passed, result.reason


def test_first_two_tokens_follow_the_target_on_the_torch_engine(pair, law):
    """traversal on the torch engine (block there is the same computation after a chain check)."""
    result = _test(pair, law, tree="2^3", method="traversal", seed=12, engine="torch")
    assert result.passed, result.reason


@pytest.mark.parametrize("method, tree", [("spechub", "2^3"), ("rrs_wor", "3^2"), ("single", "chain-2"), ("traversal", "2^3"),
                                          ("block", "chain-2")])
def test_first_two_tokens_follow_the_target_on_the_fast_path(pair, law, method, tree):
    result = _test(pair, law, tree=tree, method=method, seed=12, decoder=_fast)
    assert result.passed, result.reason


def test_the_check_rejects_a_decoder_that_samples_the_draft(pair, law):
    """Negative control: swapping the roles of the models makes every token follow q, not p."""
    swapped = dataclasses.replace(pair, target=pair.draft, draft=pair.target)
    assert np.abs(_two_token_law(pair.draft) - law).sum() > 0.3  # the two models really differ
    assert not _test(swapped, law, tree="2^3", method="spechub", seed=11).passed
