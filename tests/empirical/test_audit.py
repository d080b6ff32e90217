"""Tests of ``spechub audit``: statistics, protocols, adapters on tiny random models, planted bugs, CLI exit codes."""

import json
import sys
import textwrap

import numpy as np
import pytest

from spechub_theory.montecarlo.audit_stats import combined_test, counts_audit, distortion, exact_audit, pooled_tv
from spechub_theory.montecarlo.stats import matches_target

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from empirical.audit import (  # noqa: E402
    HFCandidateGenerator, HFGenerate, HFSpeculativeSampling, ReferenceGenerate, ReferenceGenerator, ReferenceVerifier,
    Sampling, audit_function, audit_generate, audit_generator, capture_candidate_generator, ensemble_law,
    planted_function_bugs, resolve_sampler, synthetic_case, target_law,
)
from empirical.audit.generator_level import GENERATOR_BUGS  # noqa: E402
from empirical.tiny import one_thread_fixture, tiny_pair  # noqa: E402
from spechub_cli import main  # noqa: E402

_threads = pytest.fixture(scope="module", autouse=True)(one_thread_fixture)

SETTINGS = Sampling(0.6, 20, 0.95)


@pytest.fixture(scope="module")
def case():
    return synthetic_case(64, seed=0, sampling=SETTINGS)


@pytest.fixture(scope="module")
def pair():
    return tiny_pair(16, seed=0)


IDS = [[3, 5, 7]]


# -- statistics -----------------------------------------------------------------------------------

def test_distortion_and_exact_audit():
    d = distortion([.5, .5], [.25, .75])
    assert d.tv == pytest.approx(0.25) and d.kl > 0
    assert distortion([1.0, 0.0], [0.0, 1.0]).kl == float("inf")
    assert exact_audit([.3, .7], [.3, .7], level="function", sampler="x").passed
    bad = exact_audit([.4, .6], [.3, .7], level="function", sampler="x")
    assert not bad.passed and bad.tv_estimate.tv == pytest.approx(0.1) and "TV 0.1" in bad.reason


def test_pooled_tv_interval_covers_the_true_distance():
    p = np.array([.1, .2, .3, .4])
    law = np.array([.2, .2, .2, .4])  # TV 0.1
    counts = np.random.default_rng(0).multinomial(20000, law)
    est = pooled_tv(counts, p)
    assert est.interval.contains(0.1) and est.noise < 0.01
    assert pooled_tv(np.random.default_rng(1).multinomial(20000, p), p).interval.low == 0.0


def test_combined_test_sums_statistics_and_fails_on_a_zero_probability_hit():
    a = matches_target([50, 50], [.5, .5])
    t = combined_test([a, a], alpha=0.01)
    assert (t.df, t.passed) == (2, True)
    z = matches_target([1, 99], [0.0, 1.0])
    assert not combined_test([a, z], alpha=0.01).passed


def test_counts_audit_is_bonferroni_and_serialises():
    a = matches_target([500, 500], [.5, .5])
    r = counts_audit([("x", a), ("y", a)], np.array([500, 500]), np.array([.5, .5]), level="function", sampler="s",
                     tv=0.1, alpha=0.01, power=0.99, seconds=0.0)
    assert r.passed and r.pvalue == 1.0
    json.dumps(r.to_dict(), allow_nan=False)


# -- function level -------------------------------------------------------------------------------

def test_reference_passes_sampled_and_exact(case):
    from spechub_theory.methods import get_method

    assert audit_function(ReferenceVerifier(), case, tv=0.05, rng=0).passed
    exact = audit_function(get_method("single"), case)
    assert exact.mode == "exact" and exact.passed


@pytest.mark.parametrize("index", range(3))
def test_each_planted_function_bug_is_caught_and_follows_its_exact_law(case, index):
    bug = planted_function_bugs(case)[index]
    law = bug.exact_law()
    assert law.sum() == pytest.approx(1.0, abs=1e-12)
    tv = distortion(law, case.p[0]).tv
    assert tv > 0.01
    assert not audit_function(bug, case, tv=tv, rng=index).passed
    # the sampler really implements the law it documents
    counts = np.bincount(bug(case.p, case.q, np.random.default_rng(5).choice(case.n, (20000, 1), p=case.q[0]),
                             np.random.default_rng(6)), minlength=case.n)
    assert matches_target(counts, law, alpha=1e-3).passed


def test_temperature_bug_needs_a_temperature():
    assert [b.NAME for b in planted_function_bugs(synthetic_case(16, sampling=Sampling()))] == ["residual_not_renormalised", "ratio_bf16"]


def test_hf_speculative_sampling_lossless_and_ensemble():
    small = synthetic_case(16, seed=1, sampling=SETTINGS)
    assert audit_function(HFSpeculativeSampling(), small, tv=0.15, rng=0).passed
    assert np.allclose(ensemble_law(small, 1.0), small.p[0]) and np.allclose(ensemble_law(small, 0.0), small.q[0])
    lossy = audit_function(HFSpeculativeSampling(0.0), small, tv=0.15, rng=1)
    exact_tv = distortion(ensemble_law(small, 0.0), small.p[0]).tv
    assert not lossy.passed and lossy.tv_estimate.interval.contains(exact_tv)
    with pytest.raises(ValueError, match="ensemble_weight"):
        HFSpeculativeSampling(1.5)


def _old_speculative_sampling(real):
    """A stand-in of the older transformers signature (5.17): ``is_done_candidate``, no ensemble weight."""
    calls = []

    def _speculative_sampling(candidate_input_ids, candidate_logits, candidate_length, new_logits, is_done_candidate):
        calls.append(is_done_candidate)
        return real(candidate_input_ids, candidate_logits, candidate_length, new_logits)

    return _speculative_sampling, calls


def test_hf_speculative_sampling_with_the_older_signature(monkeypatch):
    import transformers
    import transformers.generation.utils as gen_utils

    old, calls = _old_speculative_sampling(gen_utils._speculative_sampling)
    monkeypatch.setattr(gen_utils, "_speculative_sampling", old)
    small = synthetic_case(16, seed=1, sampling=SETTINGS)
    assert audit_function(HFSpeculativeSampling(), small, tv=0.15, rng=0).passed
    assert calls and set(calls) == {False}
    tokens = HFSpeculativeSampling()(small.target_logits, small.draft_logits, np.zeros((5, small.draft_length), np.int64),
                                     np.random.default_rng(0))
    assert tokens.shape == (5,) and ((0 <= tokens) & (tokens < small.n)).all()
    with pytest.raises(ValueError, match=rf"newer transformers.*{transformers.__version__}.*assistant_ensemble_weight"):
        HFSpeculativeSampling(0.5)


def test_self_test_skips_the_ensemble_check_on_an_older_transformers(monkeypatch):
    """On a transformers without ``assistant_ensemble_weight`` the self-test says so in that row and
    still runs (and judges) every other function-level check."""
    import transformers.generation.utils as gen_utils

    from empirical.audit.selftest import SelfTestConfig, SelfTestRow, _function_checks

    old, _ = _old_speculative_sampling(gen_utils._speculative_sampling)
    monkeypatch.setattr(gen_utils, "_speculative_sampling", old)
    rows = []
    _function_checks(SelfTestConfig(function_tv=0.2, vocab=16), lambda *a, **k: rows.append(SelfTestRow(*a, **k)), None)
    skipped = [r for r in rows if r.skipped]
    assert [r.check for r in skipped] == ["function: hf ensemble weight 0.5 (lossy by design)"]
    assert "newer transformers" in skipped[0].report() and skipped[0].to_dict()["result"] is None
    assert all(r.ok for r in rows) and len(rows) > 3


def test_function_protocol_rejects_bad_output(case):
    with pytest.raises(ValueError, match="outside"):
        audit_function(lambda t, d, x, rng: np.full(len(x), case.n), case, n_trials=10)
    with pytest.raises(ValueError, match="must return"):
        audit_function(lambda t, d, x, rng: np.zeros(3, dtype=int), case, n_trials=10)


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="temperature"):
        Sampling(0.0)
    with pytest.raises(ValueError, match="top_p"):
        Sampling(1.0, 0, 1.5)
    with pytest.raises(ValueError, match="top_k"):
        Sampling(1.0, -1)


# -- generator level and end to end on a tiny pair ----------------------------------------------

def test_generator_reference_passes_and_hf_adapter_runs(pair):
    ids = torch.tensor(IDS)
    s = Sampling(0.6, 3, 1.0)
    assert audit_generator(ReferenceGenerator(pair.draft, ids, s), tv=0.1, rng=0).passed
    gen = HFCandidateGenerator(capture_candidate_generator(pair.target, pair.draft, ids, s), ids)
    tokens, q = gen(np.random.default_rng(0))
    assert q.shape == (2, 16) and np.allclose(q.sum(axis=1), 1) and (q[0] > 0).sum() == 3
    assert audit_generator(gen, n_trials=40, rng=0).passed


@pytest.mark.parametrize("bug", sorted(GENERATOR_BUGS))
def test_each_planted_generator_bug_is_caught(pair, bug):
    ids = torch.tensor(IDS)
    s = Sampling(1.0, 3, 1.0) if bug == "q_without_topk_topp" else Sampling(0.5, 0, 1.0)
    gen = HFCandidateGenerator(capture_candidate_generator(pair.target, pair.draft, ids, s, plant=GENERATOR_BUGS[bug][0]), ids)
    assert not audit_generator(gen, n_trials=80, rng=0).passed


def test_generate_reference_passes_and_planted_bug_is_caught(pair):
    ids = torch.tensor(IDS)
    s = Sampling(0.6, 3, 1.0)
    law = target_law(pair.target, ids, s, eos_ids=pair.eos_token_ids)
    assert law.joint.sum() == pytest.approx(1.0) and (law.p1 > 0).sum() == 3
    assert audit_generate(ReferenceGenerate(pair.target, pair.draft, ids, s), law, tv=0.2, rng=0).passed
    s2 = Sampling(1.0, 2, 1.0)
    planted = HFGenerate(pair.target, pair.draft, ids, s2, plant=GENERATOR_BUGS["q_without_topk_topp"][0])
    assert not audit_generate(planted, target_law(pair.target, ids, s2, eos_ids=pair.eos_token_ids), n_trials=200, rng=0).passed
    assert len(HFGenerate(pair.target, pair.draft, ids, s)(np.random.default_rng(0))) >= 1


# -- user samplers and the CLI -------------------------------------------------------------------

def test_python_callable_protocol(tmp_path, monkeypatch):
    (tmp_path / "user_sampler.py").write_text(textwrap.dedent("""
        import numpy as np
        from empirical.audit import ReferenceVerifier
        good = ReferenceVerifier()
        def emits_draft(target_logits, draft_logits, drafts, rng):
            return drafts[:, 0]
        not_callable = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    sampler, level = resolve_sampler("python:user_sampler:good")
    assert level == "function" and callable(sampler)
    for spec, msg in [("user_sampler:good", "python:MODULE"), ("python:no_such_mod:f", "cannot import"),
                      ("python:user_sampler:missing", "no attribute"), ("python:user_sampler:not_callable", "not callable")]:
        with pytest.raises(ValueError, match=msg):
            resolve_sampler(spec)
    assert main(["audit", "python:user_sampler:good", "--vocab", "16", "--tv", "0.2", "--quiet"]) == 0
    assert main(["audit", "python:user_sampler:emits_draft", "--vocab", "16", "--tv", "0.2", "--quiet"]) == 1
    assert main(["audit", "python:user_sampler:not_callable", "--quiet"]) == 2


def test_cli_exit_codes_and_json(tmp_path, capsys):
    out = tmp_path / "a.json"
    assert main(["audit", "hf-function", "--vocab", "16", "--tv", "0.3", "--json", "--quiet", "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["results"][0]["passed"] and doc["transformers"] and json.loads(out.read_text()) == doc
    assert main(["audit", "hf-function", "--vocab", "16", "--tv", "0.3", "--ensemble-weight", "0", "--quiet"]) == 1
    for bad in (["audit", "hf-function", "--tv", "2"], ["audit", "hf-function", "--ensemble-weight", "x"],
                ["audit", "hf-generator"], ["audit", "nonsense"], ["audit"], ["audit", "hf-function", "--self-test"],
                ["audit", "hf-function", "--temperature", "0"], ["audit", "hf-generate", "--target", "tiny", "--draft", "gpt2"]):
        assert main(bad) == 2, bad
    assert "error" in capsys.readouterr().err


def test_pair_without_a_shared_tokenizer_is_one_clear_error():
    from empirical.models import check_same_tokenizer
    from empirical.tiny import tiny_tokenizer

    with pytest.raises(ValueError, match="differ in size"):
        check_same_tokenizer(tiny_tokenizer(16), tiny_tokenizer(32), "a", "b")


def test_import_is_lazy():
    import subprocess

    code = "import empirical.audit, spechub_theory.montecarlo.audit_stats, sys; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
