"""The validation experiment's driver (benchmarks/device/experiment.py) resumes across sessions:
planned shards skip prompts already in the compact records, and merging keeps the union."""

import gzip
import importlib.util
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from empirical.run import DecodeConfig, run_decode  # noqa: E402
from empirical.tiny import one_thread_fixture, tiny_pair  # noqa: E402

pytestmark = pytest.mark.hf
_threads = pytest.fixture(scope="module", autouse=True)(one_thread_fixture)
DRIVER = Path(__file__).resolve().parents[2] / "benchmarks" / "device" / "experiment.py"


@pytest.fixture(scope="module")
def experiment():
    spec = importlib.util.spec_from_file_location("experiment", DRIVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plan_skips_finished_prompts(experiment):
    full = experiment.plan([0.6, 1.0], 3, shards=4, node_shards=0, shard_size=25, num_prompts=100)
    assert len(full) == 2 * (4 * 3 + 3 * 2 + 2 * 3) * 4  # binary, ternary, extra seeds of 2^5; 4 shards each
    assert full[0] == {"T": 0.6, "tree": "2^2", "method": "spechub", "seed": 0, "shard": 0}
    done = {experiment.cell_key(full[0], i) for i in range(25)} | {experiment.cell_key(full[1], i) for i in range(25, 49)}
    left = experiment.plan([0.6, 1.0], 3, shards=4, node_shards=0, done=done, shard_size=25, num_prompts=100)
    assert full[0] not in left and full[1] in left  # one prompt of shard 1 is still missing
    assert len(left) == len(full) - 1


def test_merge_keeps_earlier_records_and_adds_new_ones(experiment, tmp_path):
    pair = tiny_pair(64)
    prompts = tmp_path / "shard0.jsonl"
    prompts.write_text('{"prompt": "w1 w2 w3"}\n{"prompt": "w4"}\n')
    job = {"T": 1.0, "tree": "2^2", "method": "rrs", "seed": 0, "shard": 1}
    config = DecodeConfig(trees=("2^2",), methods=("rrs",), prompts=str(prompts), num_prompts=2, max_new_tokens=6,
                          node_methods=(), batch_size=2)
    run_decode(config, experiment.job_dir(tmp_path, job), pair=pair, argv=[], progress=False)
    earlier = [{"T": 0.6, "seed": 0, "tree": "2^3", "method": "spechub", "prompt_index": 7, "prompt_id": "x",
                "prompt_tokens": 3, "tokens": [1, 2, 3], "finish": "length", "prefill_s": 0.0,
                "steps": {"emitted": [2, 1], "accepted": [1, 0], "draft_s": [0.1], "target_s": [0.1],
                          "verify_s": [0.0], "cache_s": [0.0]}}]
    summaries = experiment.merge(tmp_path, [job], shard_size=2, earlier=earlier)
    with gzip.open(tmp_path / "experiment_records.jsonl.gz", "rt") as f:
        merged = [json.loads(line) for line in f]
    assert len(merged) == 3 and merged[0] == earlier[0]
    assert {r["prompt_index"] for r in merged[1:]} == {2, 3}  # shard 1 of size 2: global indices 2, 3
    assert all(r["T"] == 1.0 and len(r["steps"]["draft_s"]) == 1 for r in merged[1:])
    assert set(summaries) == {"T=0.6,seed=0", "T=1.0,seed=0"}
    run = summaries["T=0.6,seed=0"]["runs"][0]
    assert run["tokens_per_step"]["value"] == pytest.approx(3 / 2) and run["prompts"] == 1
    assert experiment.read_records(tmp_path / "experiment_records.jsonl.gz") == merged
    assert experiment.read_records(None) == [] and experiment.read_records(tmp_path / "missing.gz") == []


def test_a_worker_keeps_to_its_cells_shards_then_follows_the_priority_order(experiment):
    """next_job: the remaining shards of the worker's last cell first (its workspace and CUDA graphs
    are reused), else the first unclaimed job; every job is handed out exactly once."""
    import multiprocessing as mp

    cell = {"T": 0.6, "tree": "2^4", "method": "rrs", "seed": 0}
    jobs = [{**cell, "shard": s} for s in range(3)] + [{**cell, "method": "spechub", "shard": s} for s in range(2)]
    claimed = mp.get_context("spawn").Array("b", len(jobs))
    a = experiment.next_job(claimed, jobs, None)  # worker A: priority order
    b = experiment.next_job(claimed, jobs, None)  # worker B: the next one
    assert (a, b) == (0, 1)
    spechub = experiment.workspace_key(jobs[3])
    assert experiment.next_job(claimed, jobs, spechub) == 3  # a worker holding spechub's workspace skips ahead
    assert experiment.next_job(claimed, jobs, experiment.workspace_key(jobs[0])) == 2  # A: its cell's last shard
    assert experiment.next_job(claimed, jobs, experiment.workspace_key(jobs[0])) == 4  # none left there: priority
    assert experiment.next_job(claimed, jobs, None) is None and list(claimed) == [1] * len(jobs)
    assert experiment.workspace_key({**cell, "nodes": True}) != experiment.workspace_key(cell)
