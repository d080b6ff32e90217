"""Tests of what makes model-level audits affordable: the exact forward memo, forked trial workers, sizing by time."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from empirical.audit import (  # noqa: E402
    HFCandidateGenerator, HFGenerate, Sampling, audit_generate, capture_candidate_generator, target_law,
)
from empirical.audit.memo import ForwardMemo, memoised  # noqa: E402
from empirical.audit.model_grid import TV_LADDER, size_for_time  # noqa: E402
from empirical.audit.parallel import check_workers, draw_trials  # noqa: E402
from empirical.tiny import one_thread_fixture, tiny_pair  # noqa: E402

_threads = pytest.fixture(scope="module", autouse=True)(one_thread_fixture)

IDS = [[3, 5, 7]]


@pytest.fixture(scope="module")
def pair():
    return tiny_pair(16, seed=0)


@pytest.mark.parametrize("sampling", [Sampling(0.6, 5, 0.9), Sampling(1.0, 0, 1.0)])
def test_memo_changes_no_token_of_generate(pair, sampling):
    ids = torch.tensor(IDS)
    plain = HFGenerate(pair.target, pair.draft, ids, sampling)
    memo = HFGenerate(pair.target, pair.draft, ids, sampling, memo=True)
    for seed in range(25):
        assert plain(np.random.default_rng(seed)).tolist() == memo(np.random.default_rng(seed)).tolist()
    stats = [m.stats for m in memo.memos.values()]
    assert len(stats) == 2 and all(s.hits > 0 for s in stats)
    assert type(pair.target).forward is pair.target.forward.__func__  # the class's forward is back


def test_memo_changes_no_proposal_or_claimed_q_of_the_candidate_generator(pair):
    ids, s = torch.tensor(IDS), Sampling(0.6, 5, 1.0)
    plain = HFCandidateGenerator(capture_candidate_generator(pair.target, pair.draft, ids, s), ids)
    memo = HFCandidateGenerator(capture_candidate_generator(pair.target, pair.draft, ids, s), ids, memo=True)
    for seed in range(15):
        (a, qa), (b, qb) = plain(np.random.default_rng(seed)), memo(np.random.default_rng(seed))
        assert a.tolist() == b.tolist() and np.array_equal(qa, qb)
    assert next(iter(memo.memos.values())).stats.hits > 0


def test_memo_keys_on_the_cache_contents_and_replays_the_cache_update(pair):
    from transformers import DynamicCache

    model = pair.target

    def run(prefix):
        cache = DynamicCache(config=model.config)
        model(input_ids=torch.tensor([prefix]), cache=cache, use_cache=True)
        out = model(input_ids=torch.tensor([[9]]), cache=cache, use_cache=True)
        return out.logits, cache

    with torch.no_grad():
        ref_logits, ref_cache = run([3, 5, 7])
        memos = {}
        with memoised(model, memos=memos):
            run([3, 5, 7])
            logits, cache = run([3, 5, 7])  # every forward a hit
            other, _ = run([3, 5, 8])  # a different cache before the last forward: a miss
        memo = memos[id(model)]
        assert (memo.stats.hits, memo.stats.misses) == (2, 4)
        assert torch.equal(logits, ref_logits) and not torch.equal(other, ref_logits)
        assert all(torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)
                   for a, b in zip(cache.layers, ref_cache.layers))
    with pytest.raises(ValueError, match="max_bytes"):
        ForwardMemo(model, max_bytes=-1)


def test_memo_evicts_beyond_max_bytes(pair):
    memo, model = ForwardMemo(pair.draft, max_bytes=1), pair.draft
    with torch.no_grad():
        memo(input_ids=torch.tensor([[1, 2]]), use_cache=False)
    assert memo.stats.entries == 0 and memo.stats.misses == 1 and model.forward is not None


def test_forked_workers_give_the_same_audit_for_any_worker_count(pair):
    ids, s = torch.tensor(IDS), Sampling(0.6, 5, 0.9)
    law = target_law(pair.target, ids, s, eos_ids=pair.eos_token_ids)
    sampler = HFGenerate(pair.target, pair.draft, ids, s, memo=True)
    runs = [audit_generate(sampler, law, n_trials=80, rng=3, workers=w) for w in (2, 3)]
    assert runs[0].to_dict()["parts"] == runs[1].to_dict()["parts"] and runs[0].settings["workers"] == 2
    g1, g2 = np.random.default_rng(0), np.random.default_rng(0)
    serial = [t.tolist() for t in draw_trials(lambda g: [int(g.integers(16)), 1], g1, 10)]
    assert serial == [[int(g2.integers(16)), 1] for _ in range(10)]  # workers = 1: the audit's own stream, as before


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_workers_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="`workers` must be an integer >= 1"):
        check_workers(bad)


def test_size_for_time_picks_the_smallest_tv_that_fits():
    n_for = lambda tv: int(np.ceil(30 / (4 * tv * tv)))  # noqa: E731
    s = size_for_time(n_for, cost_s=0.01, seconds=60.0, min_tv=0.02)
    fits = [t for t in TV_LADDER if t >= 0.02 and n_for(t) * 0.01 <= 60.0]
    assert s["tv"] == fits[0] and s["projected_s"] <= 60.0 and s["n_min_tv"] == n_for(0.02)
    assert size_for_time(n_for, cost_s=0.01, seconds=60.0, min_tv=0.02, workers=4)["tv"] <= s["tv"]
    assert size_for_time(n_for, cost_s=100.0, seconds=1.0, min_tv=0.02)["tv"] == TV_LADDER[-1]


def test_cli_generate_with_workers_and_its_bad_input(capsys):
    from spechub_cli import main

    base = ["audit", "hf-generate", "--target", "tiny", "--draft", "tiny", "--temperature", "0.6", "--top-k", "5",
            "--tv", "0.5", "--quiet"]
    assert main([*base, "--workers", "0"]) == 2
    assert "`workers` must be an integer >= 1" in capsys.readouterr().err
    assert main([*base, "--workers", "2", "--trials", "40"]) == 0


def test_model_grid_runs_every_level_on_a_tiny_pair(pair):
    import time

    from empirical.audit.model_grid import run_setting

    saved = {}
    run_setting(pair, torch.tensor(IDS), Sampling(0.6, 5, 0.9), ["function", "generator", "generate", "drift"],
                deadline=time.time() + 60, min_tv=0.3, alpha=1e-3, power=0.99, seed=0, probe=4, workers=1,
                save=saved.__setitem__, log=lambda m: None)
    assert list(saved) == ["function", "generator", "generate", "drift"]
    for level in ("function", "generator", "generate"):
        doc = saved[level]
        assert doc.get("skipped") or (doc["verdict"] == "pass" and doc["tv"] == doc["sizing"]["tv"] >= 0.3), doc
    assert "draft_law_drift" in saved["drift"] or saved["drift"].get("skipped")
    from empirical.audit.model_grid import table

    rows = table({"results": {"T0.6_k5_p0.9": saved}, "min_tv": 0.3}).splitlines()
    assert len(rows) == 6 and rows[2].startswith("| T0.6_k5_p0.9 | function |")
    assert all(r.count("|") == rows[0].count("|") for r in rows)


def _broken_speculative_sampling(*args, **kwargs):
    raise TypeError("_speculative_sampling() missing 1 required positional argument:\n 'is_done_candidate'")


def test_model_grid_records_a_failed_level_and_runs_the_others(pair, monkeypatch):
    import time

    import transformers.generation.utils as gen_utils

    from empirical.audit.model_grid import _summary, run_setting, table

    monkeypatch.setattr(gen_utils, "_speculative_sampling", _broken_speculative_sampling)
    saved = {}
    run_setting(pair, torch.tensor(IDS), Sampling(0.6, 5, 0.9), ["function", "drift"], deadline=time.time() + 60,
                min_tv=0.3, alpha=1e-3, power=0.99, seed=0, probe=4, workers=1, save=saved.__setitem__, log=lambda m: None)
    assert saved["function"]["error"] == ("TypeError: _speculative_sampling() missing 1 required positional argument: "
                                          "'is_done_candidate'")
    assert "draft_law_drift" in saved["drift"]
    counts, status = _summary({"T0.6_k5_p0.9": saved}, crashed=[])
    assert counts["errors"] == 1 and status == 1
    assert "| function | error: TypeError" in table({"results": {"T0.6_k5_p0.9": saved}})
    assert _summary({}, crashed=[])[1] == 1  # nothing ran: not a success
    assert _summary({"T0.6_k5_p0.9": {"drift": saved["drift"]}}, crashed=[])[1] == 0


def test_model_grid_cli_exits_non_zero_when_a_level_raises(pair, tmp_path, monkeypatch, capsys):
    import json
    import multiprocessing

    import transformers.generation.utils as gen_utils

    from empirical.audit.model_grid import main
    from empirical.tiny import save_pair

    target, draft = save_pair(pair, tmp_path)
    fork = multiprocessing.get_context("fork")
    monkeypatch.setattr(multiprocessing, "get_context", lambda method=None: fork)  # the job inherits the patch below
    monkeypatch.setattr(gen_utils, "_speculative_sampling", _broken_speculative_sampling)
    out = tmp_path / "grid.json"
    base = ["--target", str(target), "--draft", str(draft), "--prompt", "w3 w5 w7", "--settings", "0.6,5,0.9",
            "--reserve-s", "1", "--out", str(out)]
    assert main([*base, "--budget-s", "60", "--levels", "function,drift"]) == 1
    doc = json.loads(out.read_text())
    levels = doc["results"]["T0.6_k5_p0.9"]
    assert levels["function"]["error"].startswith("TypeError:") and "draft_law_drift" in levels["drift"]
    assert doc["counts"]["errors"] == 1 and "1 errors" in capsys.readouterr().out
    assert main([*base, "--budget-s", "3", "--levels", "function"]) == 1  # no time for any level: nothing ran
    assert "0 audits" in capsys.readouterr().out
    assert "skipped" in json.loads(out.read_text())["results"]["T0.6_k5_p0.9"]["function"]
    with pytest.raises(SystemExit) as bad:
        main([*base, "--levels", "function,nonsense"])
    assert bad.value.code == 2


def test_model_grid_marks_the_levels_a_stopped_job_left_undone():
    """A job terminated at the deadline loses its item in flight; the bundle says so (a 'stopped' row)."""
    from empirical.audit.cases import Sampling
    from empirical.audit.model_grid import _mark_stopped, _summary, table

    done = {"function": {"level": "function", "skipped": "no time left (1 s < 5 s)"}}
    results = {"T0.6_k0_p1": dict(done)}
    _mark_stopped(results, [[Sampling(0.6, 0, 1.0), Sampling(1.0, 50, 0.9)]], ["function", "generate"])
    assert results["T0.6_k0_p1"]["function"] == done["function"]  # a finished level is kept as it is
    assert "stopped" in results["T0.6_k0_p1"]["generate"] and "stopped" in results["T1_k50_p0.9"]["function"]
    assert "drift" not in results["T0.6_k0_p1"]  # only the levels that were asked for
    counts, _ = _summary(results, crashed=[])
    assert counts["stopped"] == 3 and counts["skipped"] == 1
    assert "| T1_k50_p0.9 | generate | stopped: " in table({"results": results})
