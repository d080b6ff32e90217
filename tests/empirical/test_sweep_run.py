"""``spechub sweep`` on tiny random models (saved to folders, loaded as a user's would be): the
one-process run, its resumption, and torchrun with two gloo ranks, one of them killed after its
second job and restarted by torchrun, whose merge equals the one-process run."""

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from empirical.sweep import load_config, run_sweep  # noqa: E402
from empirical.sweep.ranks import Ranks  # noqa: E402
from empirical.sweep.records import RECORDS_FILE, without_timing  # noqa: E402
from empirical.sweep.runner import FAULT_VARIABLE  # noqa: E402
from empirical.tiny import one_thread_fixture, save_pair, tiny_pair  # noqa: E402

pytestmark = pytest.mark.hf
_threads = pytest.fixture(scope="module", autouse=True)(one_thread_fixture)
ROOT = Path(__file__).resolve().parents[2]
CONFIG = """\
target = "target"
draft = "draft"
prompts = "prompts.jsonl"
num_prompts = 5
temperatures = [0.6, 1.0]
max_new_tokens = 6
shard_size = 2
device = "cpu"

[[group]]
trees = ["2^2"]
methods = ["spechub", "rrs"]

[[group]]
trees = ["chain-3"]
methods = ["block", "ar"]
"""
JOBS = 2 * 4 * 3  # temperatures x cells x shards of 2, 2, 1 prompts


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    save_pair(tiny_pair(64), folder)
    rows = [{"prompt": "w1 w2 w3", "type": "code"}, {"prompt": "w4 w5"}, {"turns": ["w6 w7"], "type": "chat"},
            {"prompt": "w8 w9 w10 w11"}, {"prompt": "w12"}]
    (folder / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "sweep.toml").write_text(CONFIG)
    return folder / "sweep.toml"


@pytest.fixture(scope="module")
def one_process(sweep_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "out"
    return out, run_sweep(load_config(sweep_file), out, ranks=Ranks(), argv=[], progress=False)


def records(out) -> list:
    with gzip.open(Path(out) / RECORDS_FILE, "rt") as f:
        return [json.loads(line) for line in f]


def deterministic(summary: dict) -> dict:
    """The summaries without wall times."""
    return {key: [{k: v for k, v in run.items() if k != "timing"} for run in cell["runs"]]
            for key, cell in summary["summaries"].items()}


def test_one_process_run(one_process):
    out, result = one_process
    recs = records(out)
    assert result.jobs_planned == result.jobs_run == JOBS and result.summary["plan"]["missing"] == []
    assert len(recs) == 2 * 4 * 5 and len({(r["T"], r["tree"], r["method"], r["prompt_index"]) for r in recs}) == len(recs)
    assert {r["prompt_index"]: r.get("type") for r in recs}[2] == "chat" and "type" not in recs[1]
    assert set(result.summary["summaries"]) == {"T=0.6,seed=0", "T=1.0,seed=0"}
    ar = [r for r in recs if r["method"] == "ar"]
    assert ar and all(r["tree"] == "none" and set(r["steps"]["emitted"]) == {1} for r in ar)
    meta = result.summary["meta"]
    assert meta["world_size"] == 1 and meta["config"]["groups"][1]["methods"] == ["block", "ar"] and "git_sha" in meta


def test_rerun_skips_finished_jobs_and_a_torn_log_line_is_redone(one_process, sweep_file, tmp_path):
    out, first = one_process
    again = run_sweep(load_config(sweep_file), out, ranks=Ranks(), argv=[], progress=False)
    assert again.jobs_done_before == JOBS and again.jobs_run == 0
    assert deterministic(again.summary) == deterministic(first.summary)
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    log = copy / "records" / "rank-0.jsonl"
    text = log.read_text()
    log.write_text(text[: len(text) - 40])  # a rank killed while writing its last job
    resumed = run_sweep(load_config(sweep_file), copy, ranks=Ranks(), argv=[], progress=False)
    assert resumed.jobs_done_before == JOBS - 1 and resumed.jobs_run == 1
    assert [without_timing(r) for r in records(copy)] == [without_timing(r) for r in records(out)]


def test_earlier_records_are_imported_and_a_time_budget_leaves_jobs_for_a_rerun(one_process, sweep_file, tmp_path):
    out, first = one_process
    imported = run_sweep(load_config(sweep_file), tmp_path / "a", ranks=Ranks(), argv=[], progress=False,
                         earlier=out / RECORDS_FILE)
    assert imported.summary["plan"]["imported"] == JOBS and imported.jobs_run == 0
    assert records(tmp_path / "a") == records(out)
    cut = run_sweep(load_config(sweep_file), tmp_path / "b", ranks=Ranks(), argv=[], progress=False, time_budget_s=1e-9)
    assert cut.jobs_run == 0 and len(cut.summary["plan"]["missing"]) == JOBS and records(tmp_path / "b") == []


def test_rank_devices(monkeypatch):
    from empirical.sweep.ranks import rank_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert rank_device("auto", 3) == "cpu" and rank_device("cuda:1", 5) == "cuda:1"
    with pytest.raises(ValueError, match="`device` 'cuda' requested but CUDA is not available"):
        rank_device("cuda", 0)
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    assert [rank_device("auto", r) for r in range(3)] == ["cuda:0", "cuda:1", "cuda:0"] and chosen == [0, 1, 0]


@pytest.mark.parametrize("target, local_rank, needed, events", [
    ("qwen2.5-coder-1.5b", 0, False, ["load", "barrier"]),  # cached models: local rank 0 fills the cache first
    ("qwen2.5-coder-1.5b", 1, True, ["barrier", "load"]),  # ... and the others load after it
    ("/models/llama", 1, True, ["load"]),  # folders and hub ids: every rank with jobs at once
    ("/models/llama", 0, False, []),
])
def test_cached_models_load_on_local_rank_0_first(monkeypatch, sweep_file, target, local_rank, needed, events):
    import dataclasses

    from empirical import models
    from empirical.sweep import runner

    seen = []
    monkeypatch.setattr(models, "load_pair", lambda *a, **k: seen.append("load") or "pair")
    ranks = type("FakeRanks", (), {"local_rank": local_rank, "world_size": 2, "barrier": lambda self: seen.append("barrier")})()
    config = dataclasses.replace(load_config(sweep_file), target=target)
    assert runner._load_pair(config, ranks, "cpu", False, needed=needed) == ("pair" if needed else None)
    assert seen == events


def test_a_folder_of_other_settings_is_refused(one_process, sweep_file):
    out, _ = one_process
    other = sweep_file.with_name("other.toml")
    other.write_text(CONFIG.replace("max_new_tokens = 6", "max_new_tokens = 7"))
    with pytest.raises(ValueError, match=r"holds a sweep with other settings \(max_new_tokens: 6 there, 7 now\)"):
        run_sweep(load_config(other), out, ranks=Ranks(), argv=[], progress=False)


def test_torchrun_two_ranks_with_a_killed_rank_equals_one_process(one_process, sweep_file, tmp_path):
    """Rank 1 exits abruptly after two jobs; torchrun stops rank 0 and restarts both
    (``--max-restarts 1``); the second attempt skips every logged job, and the merge of both
    attempts' logs equals the one-process run, record by record and in the summary."""
    ref_out, ref = one_process
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", FAULT_VARIABLE: "1:2"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "--max-restarts", "1",
           "-m", "spechub_cli", "sweep", str(sweep_file), "--out", str(out)]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "exiting after 2 job(s)" in proc.stderr and "tokens/step" in proc.stdout
    lines = [json.loads(line) for log in sorted((out / "records").glob("rank-*.jsonl")) for line in log.read_text().splitlines()]
    first = [line for line in lines if line["attempt"] == 0]
    assert [line["rank"] for line in first].count(1) == 2  # rank 1's two jobs before it was killed
    assert len(lines) == len({line["key"] for line in lines}) == JOBS  # no job decoded twice
    summary = json.loads((out / "summary.json").read_text())
    assert summary["plan"]["done_before"] == len(first) and summary["plan"]["missing"] == []
    assert summary["meta"]["world_size"] == 2 and [r["rank"] for r in summary["meta"]["ranks"]] == [0, 1]
    assert [without_timing(r) for r in records(out)] == [without_timing(r) for r in records(ref_out)]
    assert deterministic(summary) == deterministic(ref.summary)


def test_the_eager_runtime_and_a_failing_fast_path_give_the_same_records(one_process, sweep_file, tmp_path, monkeypatch,
                                                                        capsys):
    from dataclasses import replace

    import empirical.fast_decoder as fast_decoder

    out, _ = one_process
    eager = run_sweep(replace(load_config(sweep_file), runtime="eager"), tmp_path / "eager", ranks=Ranks(), argv=[],
                      progress=False)
    assert eager.jobs_run == JOBS
    assert [without_timing(r) for r in records(tmp_path / "eager")] == [without_timing(r) for r in records(out)]

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (a test)")

    monkeypatch.setattr(fast_decoder, "decode_batch_fast", out_of_memory)
    redone = run_sweep(load_config(sweep_file), tmp_path / "redone", ranks=Ranks(), argv=[], progress=False)
    assert redone.jobs_run == JOBS
    assert [without_timing(r) for r in records(tmp_path / "redone")] == [without_timing(r) for r in records(out)]
    assert "the fast runtime failed (RuntimeError: CUDA out of memory (a test)); redone on the reference" in capsys.readouterr().err
