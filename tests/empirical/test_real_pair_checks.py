"""Checks for real pairs on tiny random models: the dequantised-weights cache (round trip and
invalidation), the shared-vocabulary cut with its dropped mass, tokenizer mismatch, and NaN logits
stopping a run with the prompt and position named while finished records stay."""

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from empirical.decoder import decode_batch  # noqa: E402
from empirical.decoder import Sampling  # noqa: E402
from empirical.dequant_cache import cached_load, entry_dir  # noqa: E402
from empirical.models import check_same_tokenizer  # noqa: E402
from empirical.records import RecordLog  # noqa: E402
from empirical.run import DecodeConfig, run_decode  # noqa: E402
from empirical.tiny import one_thread_fixture, tiny_llama, tiny_pair, tiny_tokenizer  # noqa: E402
from empirical.vocab import NonFiniteLogitsError, SharedVocab, shared_vocab  # noqa: E402

pytestmark = pytest.mark.hf
_threads = pytest.fixture(scope="module", autouse=True)(one_thread_fixture)


def _tied_llama(vocab_size=64):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, eos_token_id=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize("tied", [False, True])
def test_dequant_cache_round_trip_and_invalidation(tmp_path, tied):
    source = tmp_path / "m.gguf"
    source.write_bytes(b"GGUF version 1")
    calls = []

    def loader():
        calls.append(1)
        return (_tied_llama() if tied else tiny_llama(64, seed=len(calls))), tiny_tokenizer(64)

    first, tok = cached_load(source, torch.float32, loader, cache=tmp_path / "c")
    again, tok2 = cached_load(source, torch.float32, loader, cache=tmp_path / "c")
    assert len(calls) == 1 and tok2.get_vocab() == tok.get_vocab()
    ids = torch.tensor([[2, 5, 7, 3]])
    assert torch.equal(first(ids).logits, again(ids).logits)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    old = entry_dir(__import__("hashlib").sha256(source.read_bytes()).hexdigest(), torch.float32, tmp_path / "c")
    assert (old / "source.json").is_file() and (old / "model.safetensors").is_file()
    source.write_bytes(b"GGUF version 2")  # new bytes: a miss, and the old entry goes
    cached_load(source, torch.float32, loader, cache=tmp_path / "c")
    assert len(calls) == 2 and not old.exists()
    assert [p.name for p in (tmp_path / "c" / "dequant").iterdir()] != []


def test_dequant_cache_ignores_an_entry_without_its_marker(tmp_path):
    source = tmp_path / "m.gguf"
    source.write_bytes(b"GGUF")
    calls = []
    loader = lambda: (calls.append(1), (tiny_llama(64), tiny_tokenizer(64)))[1]  # noqa: E731
    cached_load(source, torch.float32, loader, cache=tmp_path / "c")
    entry = next((tmp_path / "c" / "dequant").iterdir())
    (entry / "source.json").unlink()  # as if the write had been cut before its last file
    cached_load(source, torch.float32, loader, cache=tmp_path / "c")
    assert len(calls) == 2 and (entry / "source.json").is_file()


def test_shared_vocab_cut_records_the_dropped_mass():
    vocab = SharedVocab(n=4, rows={"target": 6, "draft": 4})
    logits = torch.tensor([[[0.0, 1.0, 2.0, 0.5, 3.0, -1.0]]])
    cut = vocab.cut(logits, "target", temperature=0.5)
    p = torch.softmax(logits[0, 0] / 0.5, dim=-1)
    assert cut.shape == (1, 1, 4)
    assert torch.allclose(torch.softmax(cut[0, 0] / 0.5, dim=-1), p[:4] / p[:4].sum())
    d = vocab.to_dict()["dropped_mass"]["target"]
    assert d["laws"] == 1 and d["max"] == pytest.approx(float(p[4:].sum()), rel=1e-6)
    assert vocab.cut(logits[..., :4], "draft") is not None and vocab.laws["draft"] == 0


def test_pair_with_padded_target_head_decodes_on_the_shared_vocabulary():
    base = tiny_pair(64)
    target = tiny_llama(72, seed=4)  # 8 padding rows beyond the 64-token tokenizer
    vocab = shared_vocab(target, base.draft, base.tokenizer)
    assert vocab.n == 64 and vocab.rows == {"target": 72, "draft": 64}
    pair = dataclasses.replace(base, target=target, vocab=vocab)
    out = decode_batch(pair, [[2, 3, 4]], tree="2^2", method="spechub", rngs=[0], sampling=Sampling(1.0),
                       max_new_tokens=6)
    assert all(t < 64 for t in out[0].tokens) and len(out[0].tokens) == 6
    d = vocab.to_dict()["dropped_mass"]
    assert d["target"]["laws"] > 0 and 0 < d["target"]["max"] < 1 and d["draft"]["laws"] == 0


def test_output_layer_smaller_than_tokenizer_is_an_error():
    with pytest.raises(ValueError, match=r"'small' has 60 output rows, fewer than the 64 tokens of its tokenizer"):
        shared_vocab(tiny_llama(64), tiny_llama(60), tiny_tokenizer(64), "big", "small")


def test_tokenizers_that_disagree_are_one_error():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(64)}  # same size, different ids from tiny_tokenizer
    other = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab=vocab, unk_token="w0")))
    with pytest.raises(ValueError, match="tokenizers of 'a' and 'b' assign different ids"):
        check_same_tokenizer(tiny_tokenizer(64), other, "a", "b")


def test_nan_logits_stop_the_run_naming_prompt_and_position(tmp_path):
    pair = tiny_pair(64)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "short", "prompt": "w1 w2"}) + "\n"
                       + json.dumps({"id": "long", "prompt": " ".join(f"w{i}" for i in range(12))}) + "\n")

    def overflow(module, args, kwargs, output):  # NaN from sequence position 8 on (only the long prompt gets there)
        bad = (kwargs["position_ids"] >= 8)[..., None]
        output.logits = torch.where(bad, torch.full_like(output.logits, float("nan")), output.logits)
        return output

    handle = pair.target.register_forward_hook(overflow, with_kwargs=True)
    try:
        config = DecodeConfig(trees=("2^1",), methods=("spechub",), prompts=str(prompts), num_prompts=2,
                              max_new_tokens=3, seed=1, node_methods=("spechub",))
        with pytest.raises(NonFiniteLogitsError, match=r"target logits are NaN or inf at prompt 1 \('long', 2\^1 spechub\), position 8"):
            run_decode(config, tmp_path / "out", pair=pair, argv=[], progress=False)
    finally:
        handle.remove()
    records = RecordLog(tmp_path / "out" / "records.jsonl").records
    assert [r["prompt_id"] for r in records] == ["short"]
    assert np.isfinite(records[0]["nodes"]["acceptance"]["spechub"]).all()
