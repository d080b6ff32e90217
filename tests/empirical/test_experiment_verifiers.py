"""The sequence-level verifier experiment: the driver plans chains with their own methods and the
chosen binary / ternary trees in priority order (today's defaults unchanged), refuses bad settings
before any worker starts, decodes chain cells end to end, and the analysis pairs the run's cells with
the committed records of the other methods (synthetic records with known values)."""

import argparse
import gzip
import json
import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from device_scripts import DEVICE, device_module as _module  # noqa: E402
from empirical.tiny import one_thread_fixture, tiny_pair  # noqa: E402

_threads = pytest.fixture(scope="module", autouse=True)(one_thread_fixture)
ROOT = DEVICE.parents[1]


@pytest.fixture(scope="module")
def experiment():
    return _module("experiment")


def test_default_plan_has_no_chains_and_keeps_its_order(experiment):
    jobs = experiment.plan([0.6, 1.0], 3, shards=2, node_shards=0, shard_size=50, num_prompts=100, first_trees=("2^3", "2^5"))
    assert not [j for j in jobs if j["tree"].startswith("chain")]
    order = list(dict.fromkeys((j["T"], j["tree"]) for j in jobs if j["seed"] == 0))
    assert order[:4] == [(0.6, "2^3"), (0.6, "2^5"), (1.0, "2^3"), (1.0, "2^5")]
    assert order[4:8] == [(0.6, "2^2"), (0.6, "2^4"), (1.0, "2^2"), (1.0, "2^4")] and order[8][1] == "3^2"
    assert len(jobs) == (4 * 3 + 3 * 2) * 2 * 2 + 2 * 2 * 3 * 2  # seed 0 cells, then seeds 1-2 of 2^5


def test_verifier_plan_puts_the_informative_cells_first(experiment):
    jobs = experiment.plan([0.6, 1.0], 1, shards=2, node_shards=0, shard_size=50, num_prompts=100,
                           first_trees=("2^3", "2^5", "chain-3"), binary_methods=("traversal", "optimal"),
                           ternary_methods=("traversal", "optimal"), chain_methods=("single", "block", "traversal"))
    order = list(dict.fromkeys((j["T"], j["tree"]) for j in jobs))
    assert order[:6] == [(T, t) for T in (0.6, 1.0) for t in ("2^3", "2^5", "chain-3")]
    assert [t for _, t in order[6:10]] == ["2^2", "2^4"] * 2 and order[10] == (0.6, "chain-1") and order[-1] == (1.0, "3^4")
    assert {j["method"] for j in jobs if j["tree"].startswith("chain")} == {"single", "block", "traversal"}
    assert {j["method"] for j in jobs if not j["tree"].startswith("chain")} == {"traversal", "optimal"}
    assert len(jobs) == (4 * 2 + 5 * 3 + 3 * 2) * 2 * 2
    late = experiment.plan([0.6, 1.0], 1, shards=2, node_shards=0, shard_size=50, num_prompts=100,
                           first_trees=("2^3", "2^5", "chain-3"), binary_methods=("traversal", "optimal"),
                           ternary_methods=("traversal", "optimal"), chain_methods=("single", "block", "traversal"),
                           late_methods=("optimal",))
    split = [j["method"] == "optimal" for j in late].index(True)
    assert sorted(map(str, late)) == sorted(map(str, jobs)) and not any(j["method"] == "optimal" for j in late[:split])
    assert all(j["method"] == "optimal" for j in late[split:])
    assert [(j["T"], j["tree"]) for j in late[split:]][:2] == [(0.6, "2^3")] * 2  # same priority among themselves
    only = experiment.plan([0.6], 1, shards=1, node_shards=0, binary_trees=("2^3",), ternary_trees=(), chain_trees=("chain-2",),
                           binary_methods=("traversal",), chain_methods=("block",))
    assert [(j["tree"], j["method"]) for j in only] == [("2^3", "traversal"), ("chain-2", "block")]


def _args(**kw):
    base = dict(binary_trees=("2^2",), binary_methods=("traversal",), ternary_trees=("3^2",), ternary_methods=(),
                chain_trees=("chain-1", "chain-2"), chain_methods=("block",), seed_methods=(), first_trees=(), node_shards=0,
                timing_tree="2^4", timing_chain_tree="chain-3")
    return argparse.Namespace(**{**base, **kw})


def test_bad_settings_are_refused_before_any_worker(experiment):
    experiment.check_methods(_args())
    with pytest.raises(ValueError, match="single chain"):
        experiment.check_methods(_args(binary_methods=("block",)))
    experiment.check_methods(_args(first_trees=("3^2", "2^5")))  # valid names; the plan leaves out what it does not plan
    with pytest.raises(ValueError, match=r"tree '2\*3' is not"):
        experiment.check_methods(_args(first_trees=("2*3",)))


def test_timing_times_each_method_once_on_its_family_tree(experiment):
    cells = experiment.timing_cells(_args(chain_methods=("single", "block", "traversal"), ternary_methods=("traversal", "optimal")))
    assert cells == [("2^4", "traversal"), ("chain-3", "single"), ("chain-3", "block"), ("3^3", "optimal")]


def test_the_device_script_refuses_an_unknown_pair():
    out = subprocess.run(["bash", str(DEVICE / "run_verifiers.sh"), "llama"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "pair must be 'qwen' or 'smollm2'; got 'llama'" in out.stderr


@pytest.mark.hf
def test_chain_cells_decode_through_the_driver_and_resume(experiment, tmp_path, capsys):
    pair = tiny_pair(64)
    for name, model in (("t", pair.target), ("d", pair.draft)):
        model.save_pretrained(tmp_path / name)
        pair.tokenizer.save_pretrained(tmp_path / name)
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"w{i} w{i + 1}"}) + "\n" for i in range(2)))

    def drive(out, *extra):
        experiment.main(["--target", str(tmp_path / "t"), "--draft", str(tmp_path / "d"), "--prompts", str(tmp_path / "prompts.jsonl"),
                         "--num-prompts", "2", "--shard-size", "1", "--max-new-tokens", "4", "--temperatures", "1.0",
                         "--seeds-deep", "1", "--binary-trees", "2^2", "--binary-methods", "traversal", "--ternary-methods", "",
                         "--chain-trees", "chain-2", "--chain-methods", "single,block,traversal", "--first-trees", "chain-2",
                         "--device", "cpu", "--workers", "0", "--out", str(out), *extra])
        return capsys.readouterr().out

    assert "8 jobs to run" in drive(tmp_path / "a")
    with gzip.open(tmp_path / "a" / "experiment_records.jsonl.gz", "rt") as f:
        records = [json.loads(line) for line in f]
    assert {(r["tree"], r["method"]) for r in records} == {("chain-2", m) for m in ("single", "block", "traversal")} | {("2^2", "traversal")}
    assert all(len(r["tokens"]) == 4 for r in records if r["finish"] == "length")
    assert "0 jobs to run" in drive(tmp_path / "b", "--records", str(tmp_path / "a" / "experiment_records.jsonl.gz"))


def test_fast_and_eager_runtimes_decode_the_same_cells(experiment, tmp_path, capsys, monkeypatch):
    """``--runtime fast`` (the default) takes the fast path for rrs / traversal and the eager decoder for
    optimal (no device rule there); on the CPU in float32 both runtimes emit the same tokens for the same seeds."""
    pair = tiny_pair(64)
    for name, model in (("t", pair.target), ("d", pair.draft)):
        model.save_pretrained(tmp_path / name)
        pair.tokenizer.save_pretrained(tmp_path / name)
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"w{i} w{i + 1}"}) + "\n" for i in range(2)))

    def records(runtime):
        out = tmp_path / runtime
        experiment.main(["--target", str(tmp_path / "t"), "--draft", str(tmp_path / "d"), "--prompts", str(tmp_path / "prompts.jsonl"),
                         "--num-prompts", "2", "--shard-size", "2", "--max-new-tokens", "6", "--temperatures", "1.0",
                         "--seeds-deep", "1", "--binary-trees", "2^2", "--binary-methods", "rrs,traversal,optimal",
                         "--ternary-methods", "", "--device", "cpu", "--workers", "0", "--runtime", runtime, "--out", str(out)])
        capsys.readouterr()
        with gzip.open(out / "experiment_records.jsonl.gz", "rt") as f:
            return sorted((r["method"], r["prompt_index"], tuple(r["tokens"])) for r in map(json.loads, f))

    import empirical.fast_decoder as fast_decoder

    fast_methods = []
    real = fast_decoder.decode_batch_fast

    def counting(pair, prompts, *, method, **kw):
        fast_methods.append(method)
        return real(pair, prompts, method=method, **kw)

    monkeypatch.setattr(fast_decoder, "decode_batch_fast", counting)
    fast = records("fast")
    assert sorted(fast_methods) == ["rrs", "traversal"]
    eager = records("eager")
    assert len(fast_methods) == 2  # the eager runtime never takes the fast path
    assert fast == eager and {m for m, _, _ in fast} == {"rrs", "traversal", "optimal"}

    def broken(*a, **kw):
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(fast_decoder, "decode_batch_fast", broken)
    import shutil

    shutil.rmtree(tmp_path / "fast")
    assert records("fast") == eager  # a fast-path failure redoes the job on the eager path, same seeds


def _record(T, seed, tree, method, i, tokens, steps, kind):
    return {"T": T, "seed": seed, "tree": tree, "method": method, "prompt_index": i, "type": kind, "tokens": [1] * tokens,
            "finish": "length", "steps": {"emitted": [1] * steps, "accepted": [0] * steps, "verify_s": [0.01], "target_s": [0.1]}}


def _write(folder: Path, records):
    folder.mkdir(parents=True)
    with gzip.open(folder / "experiment_records.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)


def test_analysis_pairs_the_run_with_the_committed_methods(tmp_path):
    analyze = _module("analyze_verifiers")
    kinds = ["code", "chat", "code", "chat"]
    run = [_record(0.6, 0, "2^3", "traversal", i, 30, 10, k) for i, k in enumerate(kinds)]  # 3.0 tokens per step
    run += [_record(0.6, 0, "chain-3", "block", i, 25, 10, k) for i, k in enumerate(kinds)]
    run += [_record(0.6, 0, "chain-3", "single", i, 20 + i, 10, k) for i, k in enumerate(kinds)]
    base = [_record(0.6, 0, "2^3", "rrs", i, 25, 10, k) for i, k in enumerate(kinds[:3])]  # 2.5; prompt 3 missing
    base += [_record(0.6, 1, "2^3", "spechub", i, 40, 10, k) for i, k in enumerate(kinds)]  # another seed: not paired
    _write(tmp_path / "run", run)
    _write(tmp_path / "base", base)
    text = analyze.render(tmp_path / "run", tmp_path / "base")
    assert "| 2^3 | – | – | 3.000 [3.000, 3.000] (4) | 2.500 [2.500, 2.500] (3) |" in text
    assert "| 2^3 | all (4) | +0.500 [+0.500, +0.500] (+20.0%) |" in text  # paired over the 3 common prompts
    assert "| chain-3 | all (4) | – | +0.350 [+0.250, +0.450] (+16.3%) |" in text  # 2.5 vs 21.5 / 10
    assert "spechub" not in text.split("## Timing")[0]
    assert "- traversal over rrs: +20.0% on average over 1 cells" in text
    assert "| code (2) |" in text and "| chat (2) |" in text
    assert "| 2^3 | traversal | 40 | " in text  # the phase table of the run's cells


def test_analysis_share_of_spechubs_gain(tmp_path):
    """optimal 2.2, rrs 2.0, spechub 2.8 tokens per step on the same prompts: optimal recovers 25% of
    SpecHub's gain; a tree without the three cells has no row."""
    analyze = _module("analyze_verifiers")
    kinds = ["code", "chat"] * 2
    run = [_record(0.6, 0, "2^3", "optimal", i, 22, 10, k) for i, k in enumerate(kinds)]
    run += [_record(0.6, 0, "2^5", "optimal", i, 30, 10, k) for i, k in enumerate(kinds)]
    base = [_record(0.6, 0, "2^3", m, i, n, 10, k) for m, n in (("rrs", 20), ("spechub", 28)) for i, k in enumerate(kinds)]
    _write(tmp_path / "run", run)
    _write(tmp_path / "base", base)
    text = analyze.render(tmp_path / "run", tmp_path / "base")
    assert "| 2^3 | 4 | +0.800 | +0.200 | 25% [25%, 25%] |" in text
    assert "| 2^5 | 4 |" not in text
