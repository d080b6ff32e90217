"""benchmarks/bench_decode.py: the per-run aggregate, its physics bound and the per-step share of the forwards."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_decode.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_decode", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_aggregate_reads_the_bound_with_and_without_prefill():
    bench = _bench()
    # two groups: 10 steps each, 30 tokens each; 1.0 s wall of which 0.1 s prefill per group;
    # per group the forwards take 0.6 s (draft 0.2 + target 0.4), verification 0.2 s
    group = {"tokens": 30, "seconds": 1.0, "steps": 10, "row_steps": 10, "prefill_s": 0.1,
             "phases": {"draft": 0.2, "target": 0.4, "verify": 0.2, "cache": 0.05, "other": 0.05}}
    res = bench._aggregate([group, dict(group)], batch=1)
    assert res["tokens_per_second"] == pytest.approx(30.0)
    assert res["ms_per_step_wall"] == pytest.approx(90.0)  # (2.0 - 0.2) s over 20 steps
    assert res["bound_tokens_per_second"] == pytest.approx(50.0)  # 60 tokens over 1.2 s of forwards
    assert res["fraction_of_bound"] == pytest.approx(0.6)  # prefill included
    assert res["step_fraction_of_bound"] == pytest.approx(60.0 / 90.0)  # 60 ms of forwards in a 90 ms step
    assert res["verify_fraction_of_target"] == pytest.approx(0.5)


@pytest.mark.parametrize("target", ["tiny:", "tiny:x", "tiny:1", "tiny:-5"])
def test_tiny_target_needs_a_vocabulary_size(target):
    bench = _bench()
    args = bench._parser().parse_args(["--target", target])
    with pytest.raises(SystemExit, match="tiny:V needs a vocabulary size"):
        bench._load(args)


def test_tiny_target_takes_its_vocabulary_size():
    bench = _bench()
    pair = bench._load(bench._parser().parse_args(["--target", "tiny:300"]))
    assert pair.target.config.vocab_size == 300
