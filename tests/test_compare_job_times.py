"""benchmarks/device/compare_job_times.py: per-cell shard-job seconds of two experiment logs and their ratio."""

import pytest

from device_scripts import device_module


def _log(path, jobs, peak=""):
    lines = ["[05:00:00] run_experiment_qwen.sh budget 520s"]
    for i, (w, job, s) in enumerate(jobs):
        lines.append(f"[05:00:{i:02d}] worker {w} job {i} {job!r} {s:.1f}s{peak}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_ratio_over_the_cells_both_logs_hold(tmp_path):
    cmp = device_module("compare_job_times")
    cell = {"T": 0.6, "tree": "2^4", "method": "spechub", "seed": 0, "shard": 0}
    before = _log(tmp_path / "a.log", [(0, cell, 40.0), (1, {**cell, "shard": 1}, 44.0), (2, {**cell, "nodes": True}, 99.0),
                                       (0, {**cell, "method": "rrs"}, 30.0)])
    after = _log(tmp_path / "b.log", [(0, cell, 14.0), (1, {**cell, "shard": 1}, 14.0), (0, {**cell, "tree": "2^5"}, 20.0)],
                 peak=" peak 19.7 GiB")  # the driver's job lines on CUDA end with the job's peak GPU memory
    (b, wb), (a, wa) = cmp.job_seconds([before]), cmp.job_seconds([after])
    assert b[(0.6, "2^4", "spechub")] == [40.0, 44.0] and wb == 2 and wa == 2  # the node job is left out
    text = cmp.table(b, a, (wb, wa))
    assert "| 0.6 | 2^4 | spechub | 2 | 42.0 | 2 | 14.0 | 0.33 |" in text and "**0.33**" in text and "rrs" not in text


def test_a_log_without_jobs_is_one_clear_error(tmp_path, capsys):
    cmp = device_module("compare_job_times")
    empty = tmp_path / "x.log"
    empty.write_text("nothing here\n")
    with pytest.raises(SystemExit, match="no finished job line"):
        cmp.main(["--before", str(empty), "--after", str(empty)])


def test_by_tree_pools_the_methods_of_each_tree(tmp_path):
    """--by tree: the two logs decoded different methods on the same trees (a proxy comparison)."""
    cmp = device_module("compare_job_times")
    cell = {"T": 1.0, "tree": "2^3", "method": "rrs", "seed": 0, "shard": 0}
    before = _log(tmp_path / "a.log", [(0, cell, 10.0), (1, {**cell, "method": "spechub"}, 14.0)])
    after = _log(tmp_path / "b.log", [(0, {**cell, "method": "traversal"}, 4.0)])
    assert cmp.job_seconds([before])[0] == {(1.0, "2^3", "rrs"): [10.0], (1.0, "2^3", "spechub"): [14.0]}
    (b, wb), (a, wa) = cmp.job_seconds([before], "tree"), cmp.job_seconds([after], "tree")
    assert b == {(1.0, "2^3", "*"): [10.0, 14.0]} and a == {(1.0, "2^3", "*"): [4.0]}
    assert "| 1 | 2^3 | * | 2 | 12.0 | 1 | 4.0 | 0.33 |" in cmp.table(b, a, (wb, wa))
    assert cmp.job_seconds([before], "tree", {"spechub"})[0] == {(1.0, "2^3", "*"): [14.0]}
