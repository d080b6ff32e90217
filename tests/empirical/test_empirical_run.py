"""Decoding runs end to end on tiny random models: records, resume, summary, the ``spechub decode``
CLI on a saved model folder, model-pair loading, prompts and node rates."""

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import empirical.run as run_module  # noqa: E402
from empirical.models import check_same_tokenizer, load_pair, truncated_draft  # noqa: E402
from empirical.node_rates import node_rates  # noqa: E402
from empirical.prompts import encode_prompt, load_prompts  # noqa: E402
from empirical.records import RecordLog  # noqa: E402
from empirical.run import DecodeConfig, run_decode  # noqa: E402
from empirical.summary import bootstrap_gain_share, bootstrap_ratio, bootstrap_ratio_difference  # noqa: E402
from empirical.tiny import one_thread_fixture, tiny_pair, tiny_tokenizer  # noqa: E402
from spechub_theory.acceptance import acceptance_rates  # noqa: E402
from spechub_cli import main as spechub  # noqa: E402

pytestmark = pytest.mark.hf
CONFIG = DecodeConfig(trees=("2^3",), methods=("spechub", "rrs", "ar"), num_prompts=3, max_new_tokens=10, seed=5,
                      node_methods=("single", "rrs", "spechub"))


_threads = pytest.fixture(scope="module", autouse=True)(one_thread_fixture)


@pytest.fixture(scope="module")
def pair():
    return tiny_pair(64)


def _deterministic(summary):
    """The summary without metadata and timing (which differ between runs by nature)."""
    out = {k: v for k, v in summary.items() if k != "meta"}
    out["runs"] = [{k: v for k, v in r.items() if k != "timing"} for r in summary["runs"]]
    return out


def test_run_writes_records_and_summary(pair, tmp_path):
    summary = run_decode(CONFIG, tmp_path, pair=pair, argv=["test"], progress=False)
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert len(records) == 3 * 3
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    runs = {(r["tree"], r["method"]): r for r in summary["runs"]}
    assert set(runs) == {("2^3", "spechub"), ("2^3", "rrs"), ("none", "ar")}
    assert runs[("none", "ar")]["tokens_per_step"]["value"] == 1.0
    for r in summary["runs"]:
        tps = r["tokens_per_step"]
        assert 1.0 <= tps["low"] <= tps["value"] <= tps["high"] <= 3.0
        assert r["timing"]["decode_tokens_per_second"] > 0
    table = summary["nodes"]["all"]["2"]
    assert table["count"] > 0 and set(table["mean"]) == {"single", "rrs", "spechub"}
    meta = summary["meta"]
    assert meta["seed"] == 5 and meta["argv"] == ["test"] and meta["dtype"] == "float32"
    assert "accepted drafts + 1" in meta["tokens_per_step"]
    rec = records[0]
    assert len(rec["nodes"]["k"]) == len(rec["nodes"]["acceptance"]["spechub"]) == len(rec["nodes"]["step"])


def test_resumed_run_gives_the_same_summary(pair, tmp_path, monkeypatch):
    full = run_decode(CONFIG, tmp_path / "full", pair=pair, argv=[], progress=False)
    real, calls = run_module._decode_records, []

    def interrupted(*args, **kwargs):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "_decode_records", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_decode(CONFIG, tmp_path / "part", pair=pair, argv=[], progress=False)
    with open(tmp_path / "part" / "records.jsonl", "a") as f:
        f.write('{"key": "torn')  # a line cut by the interruption
    monkeypatch.setattr(run_module, "_decode_records", real)
    resumed = run_decode(CONFIG, tmp_path / "part", pair=pair, argv=[], progress=False)
    assert len(RecordLog(tmp_path / "part" / "records.jsonl").records) == 9
    assert _deterministic(resumed) == _deterministic(full)


def test_batched_run_gives_the_same_summary(pair, tmp_path):
    """Prompts decoded together (batch of 2 over 3 prompts: a full and a partial batch) give the
    tokens and summary of prompts decoded one by one."""
    one = run_decode(CONFIG, tmp_path / "one", pair=pair, argv=[], progress=False)
    two = run_decode(DecodeConfig(**{**CONFIG.__dict__, "batch_size": 2}), tmp_path / "two", pair=pair, argv=[],
                     progress=False)
    # same tokens and steps; node laws differ in the last float32 bits (batched matmuls)
    assert [r["tokens_per_step"] for r in two["runs"]] == [r["tokens_per_step"] for r in one["runs"]]
    for a, b in zip(two["nodes"]["all"].values(), one["nodes"]["all"].values()):
        assert a["count"] == b["count"]
        assert a["mean"] == pytest.approx(b["mean"], rel=1e-5)
    tokens = lambda name: {r["key"]: r["tokens"] for r in RecordLog(tmp_path / name / "records.jsonl").records}  # noqa: E731
    assert tokens("two") == tokens("one")
    with pytest.raises(ValueError, match="`batch_size` must be >= 1"):
        DecodeConfig(batch_size=0).validated()


def test_resume_refuses_different_settings(pair, tmp_path):
    run_decode(CONFIG, tmp_path, pair=pair, argv=[], progress=False)
    other = DecodeConfig(**{**CONFIG.__dict__, "temperature": 0.5})
    with pytest.raises(ValueError, match="different settings \\(temperature\\)"):
        run_decode(other, tmp_path, pair=pair, argv=[], progress=False)


@pytest.fixture(scope="module")
def saved_models(pair, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    for name, model in (("target", pair.target), ("draft", pair.draft)):
        model.save_pretrained(root / name)
        pair.tokenizer.save_pretrained(root / name)
    return root


def test_decode_cli_on_saved_models(saved_models, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["decode", "--target", str(saved_models / "target"), "--draft", str(saved_models / "draft"),
            "--tree", "2^2,2^3", "--methods", "spechub,rrs_wor,ar", "--num-prompts", "2", "--max-new-tokens", "6",
            "--node-methods", "spechub,rrs", "--out", str(out), "--quiet"]
    assert spechub(argv) == 0
    assert "tokens/step" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert {(r["tree"], r["method"]) for r in summary["runs"]} == {
        ("2^2", "spechub"), ("2^2", "rrs_wor"), ("2^3", "spechub"), ("2^3", "rrs_wor"), ("none", "ar")}
    assert len((out / "records.jsonl").read_text().splitlines()) == 2 * 5


def test_decode_cli_errors_are_one_line(saved_models, tmp_path, capsys):
    argv = ["decode", "--target", str(saved_models / "target"), "--draft", "layers:9", "--out", str(tmp_path)]
    assert spechub(argv) == 2
    last = capsys.readouterr().err.splitlines()[-1]  # (transformers may draw a loading bar before it)
    assert last.startswith("spechub decode: error: `layers:N` needs 1 <= N <= 2")
    assert spechub(["decode", "--methods", "rrsw", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("spechub decode: error: `methods` 'rrsw' is not one of")


def test_layers_draft_shares_the_target_weights(saved_models):
    pair = load_pair(str(saved_models / "target"), "layers:1", device="cpu", dtype="float32")
    assert pair.draft.lm_head.weight.data_ptr() == pair.target.lm_head.weight.data_ptr()
    assert len(pair.draft.model.layers) == 1
    full = truncated_draft(pair.target, 2)
    ids = torch.as_tensor([[3, 4, 5]])
    with torch.inference_mode():
        torch.testing.assert_close(full(input_ids=ids).logits, pair.target(input_ids=ids).logits)


def test_tokenizer_mismatch_is_a_value_error():
    with pytest.raises(ValueError, match="differ in size"):
        check_same_tokenizer(tiny_tokenizer(64), tiny_tokenizer(32))


def test_builtin_and_jsonl_prompts(tmp_path):
    builtin = load_prompts()
    assert len(builtin) >= 50 and {p.chat for p in builtin} == {True, False}
    assert len({p.id for p in builtin}) == len(builtin)
    path = tmp_path / "p.jsonl"
    path.write_text('{"turns": ["w1 w2", "later"]}\n{"prompt": "w3 w4"}\n')
    prompts = load_prompts(str(path))
    assert [(p.text, p.chat) for p in prompts] == [("w1 w2", True), ("w3 w4", False)]
    assert encode_prompt(tiny_tokenizer(64), prompts[1]) == [5, 6]
    path.write_text('{"other": 1}\n')
    with pytest.raises(ValueError, match="row 0 has none of the keys"):
        load_prompts(str(path))
    with pytest.raises(ValueError, match="`num_prompts` must be >= 1"):
        load_prompts(num_prompts=0)


def test_node_rates_match_the_core():
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(6), size=4), rng.dirichlet(np.ones(6), size=4)
    out = node_rates(p, q, [2, 3, 2, 3], methods=("rrs", "spechub", "kseq"))
    for i, k in enumerate([2, 3, 2, 3]):
        ref = acceptance_rates(p[i], q[i], k, methods=("rrs", "spechub", "kseq")).acceptance
        for m in ("rrs", "spechub", "kseq"):
            assert out["acceptance"][m][i] == pytest.approx(float(ref[m]), abs=1e-12)
    assert out["hub_q"][0] == pytest.approx(q[0].max())
    assert out["tv"][1] == pytest.approx(0.5 * np.abs(p[1] - q[1]).sum())
    big_p, big_q = rng.dirichlet(np.ones(100), size=2), rng.dirichlet(np.ones(100), size=2)
    skipped = node_rates(big_p, big_q, [3, 2], methods=("rrs_wor",))["acceptance"]["rrs_wor"]
    assert skipped[0] is None and skipped[1] is not None  # k = 3 recursion too costly at this n
    with pytest.raises(ValueError, match="node method 'optimum' is not one of"):
        node_rates(p, q, [2] * 4, methods=("optimum",))


def test_paired_bootstrap_of_a_gain():
    """A gain measured on the same prompts: the paired interval holds the difference of the pooled
    ratios and is narrower than the unpaired spread when prompts vary a lot."""
    rng = np.random.default_rng(0)
    steps = rng.integers(20, 200, size=50)
    tokens_b = np.round(steps * rng.uniform(1.2, 2.0, size=50))  # prompts differ a lot
    tokens_a = tokens_b + np.round(0.1 * steps)  # method a: +0.1 token per step on every prompt
    gain = bootstrap_ratio_difference(tokens_a, steps, tokens_b, steps, rng=1)
    assert gain.value == pytest.approx(tokens_a.sum() / steps.sum() - tokens_b.sum() / steps.sum())
    assert gain.low <= gain.value <= gain.high and gain.low > 0.09
    a, b = bootstrap_ratio(tokens_a, steps, rng=1), bootstrap_ratio(tokens_b, steps, rng=1)
    assert gain.high - gain.low < 0.2 * ((a.high - a.low) + (b.high - b.low))
    with pytest.raises(ValueError, match="equal non-empty vectors"):
        bootstrap_ratio_difference([1, 2], [1, 1], [1], [1])


def test_bootstrap_gain_share():
    """a recovers a quarter of c's gain over b on every prompt: the share is 1/4 and its interval
    holds it; a gain of c that resamples to 0 gives infinite shares without NaN; bad shapes are named."""
    rng = np.random.default_rng(0)
    steps = rng.integers(20, 200, size=40).astype(float)
    base = np.round(steps * rng.uniform(1.2, 2.0, size=40))
    b = np.stack([base, steps], axis=1)
    c = np.stack([base + 0.4 * steps, steps], axis=1)  # +0.4 tokens per step
    a = np.stack([base + 0.1 * steps, steps], axis=1)  # +0.1
    share = bootstrap_gain_share(a, b, c, rng=1)
    assert share.value == pytest.approx(0.25)
    assert share.low <= 0.25 <= share.high and share.high - share.low < 0.05
    flat = bootstrap_gain_share(a, b, b, rng=1)  # c gains nothing
    assert np.isnan(flat.value) and np.isinf(flat.low) and np.isinf(flat.high)
    with pytest.raises(ValueError, match="equal non-empty"):
        bootstrap_gain_share(a, b, c[:3])


def test_bootstrap_interval_contains_the_pooled_ratio():
    ci = bootstrap_ratio([10, 20, 30], [5, 8, 12], rng=0)
    assert ci.value == pytest.approx(60 / 25)
    assert ci.low <= ci.value <= ci.high
    assert bootstrap_ratio([4], [2]).to_dict()["low"] == 2.0


def test_observed_acceptance_agrees_with_the_exact_rates(pair, tmp_path):
    """At the verified nodes, the acceptance frequency matches the mean exact rate of the method."""
    config = DecodeConfig(trees=("3^3",), methods=("rrs_wor", "spechub"), num_prompts=4, max_new_tokens=40, seed=2,
                          node_methods=("rrs_wor", "spechub"))
    for run in run_decode(config, tmp_path, pair=pair, argv=[], progress=False)["runs"]:
        check = run["acceptance_check"]
        assert check["nodes"] >= 40
        assert abs(check["observed"] - check["exact_mean"]) < 4 * check["standard_error"] + 0.02


def test_compile_choice_sets_the_pieces_for_the_run_and_restores_the_environment(pair, tmp_path, monkeypatch):
    from empirical.compile_choice import compiling
    from empirical.fast_workspace import COMPILE_FORWARD_ENV, COMPILE_VERIFY_ENV

    monkeypatch.setenv(COMPILE_FORWARD_ENV, "eager")
    monkeypatch.delenv(COMPILE_VERIFY_ENV, raising=False)
    seen = []
    real = run_module.decode_batch_with

    def spy(*args, **kwargs):
        seen.append((os.environ.get(COMPILE_VERIFY_ENV), os.environ.get(COMPILE_FORWARD_ENV)))
        with compiling("off"):  # decode uncompiled here: inductor on a CPU needs a C++ compiler
            return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "decode_batch_with", spy)
    config = DecodeConfig(**{**CONFIG.__dict__, "methods": ("rrs",), "num_prompts": 1, "compile": "verify"})
    summary = run_decode(config, tmp_path, pair=pair, argv=[], progress=False)
    assert seen == [("inductor", "0")]
    assert summary["meta"]["compiled"] == {"verify": "inductor", "forwards": None}
    assert os.environ[COMPILE_FORWARD_ENV] == "eager" and COMPILE_VERIFY_ENV not in os.environ
    default = run_decode(DecodeConfig(**{**config.__dict__, "compile": None}), tmp_path / "env", pair=pair, argv=[],
                         progress=False)
    assert default["meta"]["compiled"] == {"verify": None, "forwards": "eager"}  # None: the environment's


def test_bad_compile_choice_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="`compile` 'fast' is not one of 'off', 'verify', 'forwards', 'all'"):
        DecodeConfig(compile="fast").validated()
    with pytest.raises(SystemExit):
        spechub(["decode", "--compile", "fast", "--out", str(tmp_path)])
    assert "invalid choice: 'fast'" in capsys.readouterr().err


def test_a_failing_compile_is_a_one_line_error(saved_models, tmp_path, capsys, monkeypatch):
    from torch._dynamo import register_backend

    def failing(gm, example_inputs):
        raise RuntimeError("no C++ compiler here")

    register_backend(failing, name="spechub_test_failing")
    monkeypatch.setenv("SPECHUB_COMPILE_VERIFY", "spechub_test_failing")
    argv = ["decode", "--target", str(saved_models / "target"), "--draft", str(saved_models / "draft"),
            "--tree", "2^2", "--methods", "rrs", "--num-prompts", "1", "--max-new-tokens", "4", "--out", str(tmp_path),
            "--quiet"]
    assert spechub(argv) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("spechub decode: error: torch.compile (backend 'spechub_test_failing') failed for device_walk:")
    assert "no C++ compiler here" in last and last.endswith("$SPECHUB_COMPILE_FORWARD unset)")
