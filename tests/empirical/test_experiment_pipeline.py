"""The natural-pair validation pipeline end to end on tiny random models (CPU, seconds): the driver
plans, decodes cells and node jobs in a worker process, times the methods, resumes from its own
compact records and node table, and the analysis renders every table split by prompt type."""

import gzip
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from device_scripts import device_module as _module  # noqa: E402
from empirical.tiny import one_thread_fixture, tiny_pair  # noqa: E402

pytestmark = pytest.mark.hf
_threads = pytest.fixture(scope="module", autouse=True)(one_thread_fixture)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny target and draft saved as model folders (what load_pair reads), and 4 typed prompts."""
    root = tmp_path_factory.mktemp("pair")
    pair = tiny_pair(64)
    for name, model in (("t", pair.target), ("d", pair.draft)):
        model.save_pretrained(root / name)
        pair.tokenizer.save_pretrained(root / name)
    prompts = root / "prompts.jsonl"
    rows = [{"id": f"code-{i}", "type": "code", "turns": [f"w{i} w{i + 1} w{i + 2}"]} if i % 2 == 0 else
            {"id": f"mt_bench-{i}", "type": "chat", "turns": [f"w{i + 5} w{i}"]} for i in range(4)]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def _drive(experiment, models, out, *extra, capsys):
    """Run the driver in this process (``--workers 0``); returns what it printed."""
    experiment.main([
        "--target", str(models / "t"), "--draft", str(models / "d"), "--prompts", str(models / "prompts.jsonl"),
        "--num-prompts", "4", "--shard-size", "2", "--max-new-tokens", "5", "--temperatures", "1.0", "--seeds-deep", "2",
        "--binary-methods", "spechub,rrs", "--ternary-methods", "rrs_wor", "--seed-methods", "spechub", "--first-trees", "2^3",
        "--device", "cpu", "--workers", "0", "--time-budget-s", "300", "--out", str(out), *extra])
    return capsys.readouterr().out


def test_pipeline_plan_resume_nodes_timing_analysis(models, tmp_path, capsys):
    experiment = _module("experiment")
    log = _drive(experiment, models, tmp_path / "a", "--node-shards", "2", "--timing-prompts", "1", "--timing-tokens", "3",
                 "--timing-tree", "2^2", capsys=capsys)
    assert "timing job: True" in log
    with gzip.open(tmp_path / "a" / "experiment_records.jsonl.gz", "rt") as f:
        records = [json.loads(line) for line in f]
    cells = {(r["T"], r["seed"], r["tree"], r["method"]) for r in records}
    # binary 4 trees x 2 methods + ternary 3 x 1 + seed 1 of 2^5 x 1 = 12 cells; 2^4 spechub came from the node jobs
    assert len(cells) == 12 and (1.0, 0, "2^4", "spechub") in cells and (1.0, 1, "2^5", "spechub") in cells
    assert len(records) == 12 * 4 and {r["type"] for r in records} == {"code", "chat"}
    assert all(r["type"] == ("code" if r["prompt_index"] % 2 == 0 else "chat") for r in records)
    with np.load(tmp_path / "a" / "nodes.npz") as z:
        nodes = {k: z[k] for k in z.files}
    assert len(nodes["tv"]) > 0 and set(nodes["prompt_index"].tolist()) <= {0, 1, 2, 3}
    assert np.all(nodes["temperature"] == 1.0) and set(nodes["type"].tolist()) <= {0, 1}
    assert np.all(nodes["spechub"][nodes["p2"]] >= nodes["rrs"][nodes["p2"]] - 1e-12)  # theory.md 3.6 P2
    assert np.all(nodes["single"] <= nodes["rrs"] + 1e-12) and np.all(nodes["rrs"] <= nodes["optimal_iid"] + 1e-12)
    timing = json.loads((tmp_path / "a" / "timing.json").read_text())
    assert "error" not in timing, timing
    assert {(r["batch_size"], r["method"]) for r in timing["rows"]} >= {(1, "generate"), (2, "ar"), (2, "spechub"), (1, "rrs_wor")}
    # resume in a fresh folder from the committed files: nothing left to decode, the union is unchanged
    log = _drive(experiment, models, tmp_path / "b", "--node-shards", "2", "--records", str(tmp_path / "a" / "experiment_records.jsonl.gz"),
                 "--nodes", str(tmp_path / "a" / "nodes.npz"), capsys=capsys)
    assert "0 jobs to run" in log
    with gzip.open(tmp_path / "b" / "experiment_records.jsonl.gz", "rt") as f:
        assert [json.loads(line) for line in f] == records
    with np.load(tmp_path / "b" / "nodes.npz") as z:
        assert all(np.array_equal(z[k], nodes[k]) for k in nodes)
    (tmp_path / "a" / "timing.json").rename(tmp_path / "b" / "timing.json")
    text = _module("analyze_qwen").render(tmp_path / "b", None)
    for needle in ("| 2^3 | all (4) |", "| code (2) |", "| chat (2) |", "Ternary trees, T = 1", "2^5 pooled over seeds 0, 1",
                   "| 1 | code |", "P2's condition holds but SpecHub < RRS: 0", "HF generate()"):
        assert needle in text, needle


def test_plan_priority_node_jobs_and_methods():
    experiment = _module("experiment")
    jobs = experiment.plan([0.6, 1.0], 2, shards=2, node_shards=2, shard_size=1, num_prompts=2, first_trees=("2^3", "2^5"),
                           binary_methods=("spechub", "optimal"), ternary_methods=("optimal",), nodes_done={(1.0, 1)})
    assert [j.get("nodes", False) for j in jobs[:3]] == [True] * 3 and not jobs[3].get("nodes")
    order = [(j["T"], j["tree"]) for j in jobs[3:] if j["seed"] == 0 and j["tree"] in experiment.BINARY]
    firsts = order[: 2 * 2 * 2 * 2]  # 2^3 and 2^5 at both temperatures, 2 methods x 2 shards
    assert {t for _, t in firsts} == {"2^3", "2^5"} and order[len(firsts)][1] == "2^2"
    assert sum(1 for j in jobs if j["tree"] == "2^4" and j["method"] == "spechub" and j["seed"] == 0) == 4  # 3 node jobs + 1 cell
    assert {j["method"] for j in jobs if j["tree"] in experiment.TERNARY} == {"optimal"}
