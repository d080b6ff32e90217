"""The sweep's TOML file: defaults, every problem reported with its key and value, and the plan:
a deterministic job list whose rank shares partition it."""

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from empirical.sweep import ConfigError, load_config, parse_config, plan_jobs, rank_share
from empirical.sweep.plan import cells_of
from spechub_cli import main

GROUP = {"trees": ["2^2", "chain-3"], "methods": ["rrs", "traversal"]}


def config(**changes):
    data = {"temperatures": [0.6, 1.0], "num_prompts": 7, "shard_size": 3, "group": [dict(GROUP)], **changes}
    return parse_config(data)


def problems(data) -> list:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


def test_defaults_come_from_decode_config():
    from empirical.run import DecodeConfig

    c = parse_config({"group": [{"trees": ["2^3"], "methods": ["spechub"]}]})
    d = DecodeConfig()
    assert (c.target, c.draft, c.prompts, c.num_prompts, c.max_new_tokens) == (
        d.target, d.draft, d.prompts, d.num_prompts, d.max_new_tokens)
    assert c.temperatures == (d.temperature,) and c.seeds == (0,) and c.batch_size == c.shard_size
    assert c.groups[0].seeds == (0,) and c.groups[0].name == "group1"


@pytest.mark.parametrize("data, match", [
    ({"temperature": [1.0]}, r"unknown top-level key 'temperature' \(did you mean 'temperatures'\?\)"),
    ({"group": [{"trees": ["2^2"], "method": ["rrs"]}]}, r"unknown key of group 1 'method' \(did you mean 'methods'\?\)"),
    ({"group": [{"trees": ["2^x"], "methods": ["rrs"]}]}, r"group 1: tree '2\^x' is not 'k\^d'"),
    ({"group": [{"trees": ["2^40"], "methods": ["rrs"]}]}, r"group 1: .*2\^40"),
    ({"group": [{"trees": ["2^2"], "methods": ["rrsw"]}]}, r"group 1: unknown method 'rrsw' \(did you mean 'rrs'\?\)"),
    ({"group": [{"trees": ["2^3"], "methods": ["block"]}]}, r"group 1: tree '2\^3' with method 'block': .*chain"),
    ({"group": [{"trees": ["3^2"], "methods": ["single"]}]}, r"tree '3\^2' with method 'single': .*exactly 1 draft"),
    ({"group": [{"methods": ["rrs"]}]}, r"group 1: `trees` must name at least one tree"),
    ({"group": [{"trees": ["2^2"]}]}, r"group 1: `methods` is required"),
    ({"group": None}, r"at least one `\[\[group\]\]` table"),
    ({"temperatures": [-1.0]}, r"`temperatures` must be a non-empty list of distinct numbers >= 0.0; got \[-1.0\]"),
    ({"seeds": [0, 0]}, r"`seeds` must be a non-empty list of distinct integers >= 0; got \[0, 0\]"),
    ({"num_prompts": 0}, r"`num_prompts` must be an integer >= 1; got 0"),
    ({"shard_size": 4, "batch_size": 8}, r"`batch_size` must be <= `shard_size` \(4\).*got 8"),
    ({"top_p": 0.0}, r"`top_p` must be a number in \(0.0, 1.0\]; got 0.0"),
    ({"device": "gpu"}, r"`device` must be 'auto', 'cpu', 'cuda' or 'cuda:<index>'; got 'gpu'"),
    ({"engine": "jax"}, r"`engine` must be one of 'auto', 'torch', 'numpy'; got 'jax'"),
    ({"target": 3}, r"`target` must be a non-empty string; got 3"),
    ({"group": [{"trees": ["2^2"], "methods": ["rrs"], "seeds": [-1]}]}, r"`group 1: seeds` must be a non-empty list"),
])
def test_each_problem_is_named(data, match):
    found = problems({"group": [{"trees": ["2^2"], "methods": ["rrs"]}], **data})
    assert any(re.search(match, p) for p in found), found


def test_every_problem_is_reported_at_once(tmp_path):
    found = problems({"temperature": 1.0, "num_prompts": -2, "group": [{"trees": ["2^2", "5"], "methods": ["spechub", "nope"]}]})
    assert len(found) == 3 and "temperature" in found[0] and "num_prompts" in found[1] and "'nope'" in found[2]


def test_files_and_prompts_paths(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"prompt": "w1"}\n')
    good = tmp_path / "s.toml"
    good.write_text('prompts = "p.jsonl"\n[[group]]\ntrees = ["2,1"]\nmethods = ["rrs_wor", "ar"]\n')
    assert load_config(good).prompts == str((tmp_path / "p.jsonl").resolve())  # relative to the file
    (tmp_path / "bad.toml").write_text('prompts = "missing.jsonl"\n[[group]]\ntrees = ["2^2"]\nmethods = ["rrs"]\n')
    with pytest.raises(ConfigError, match=r"`prompts` file 'missing.jsonl' does not exist"):
        load_config(tmp_path / "bad.toml")
    (tmp_path / "torn.toml").write_text("temperatures = [0.6\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "torn.toml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.toml")


def test_cli_reports_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "s.toml").write_text('temperatures = [0.6]\n[[group]]\ntrees = ["2^3"]\nmethods = ["block"]\n')
    assert main(["sweep", str(tmp_path / "s.toml"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spechub sweep: error: config ") and "'block'" in err[0]


def test_dry_run_prints_the_plan(tmp_path, capsys):
    (tmp_path / "s.toml").write_text('num_prompts = 5\nshard_size = 2\ntemperatures = [0.6, 1.0]\n'
                                     '[[group]]\ntrees = ["2^2"]\nmethods = ["rrs", "spechub", "ar"]\n')
    assert main(["sweep", str(tmp_path / "s.toml"), "--dry-run", "--world-size", "4", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "6 cells x 3 shards" in out and "= 18 jobs" in out and "0: 5, 1: 5, 2: 4, 3: 4" in out
    assert not (tmp_path / "o").exists()  # a dry run writes nothing


def test_plan_order_and_duplicate_cells():
    c = config(group=[dict(GROUP), {"trees": ["2^2"], "methods": ["rrs", "ar"], "seeds": [0, 1]}])
    cells = cells_of(c)
    assert len(cells) == len(set(cells)) == 2 * (4 + 3)  # (2^2, rrs, seed 0) listed twice, planned once
    assert [x.label for x in cells[:2]] == ["T=0.6 2^2 rrs seed=0", "T=0.6 2^2 traversal seed=0"]
    jobs = plan_jobs(c)
    assert len(jobs) == len(cells) * 3 and [(j.start, j.stop) for j in jobs[:3]] == [(0, 3), (3, 6), (6, 7)]
    assert len({j.key for j in jobs}) == len(jobs)
    assert plan_jobs(c) == jobs  # deterministic
    left = plan_jobs(c, done={jobs[0].key, jobs[5].key})
    assert len(left) == len(jobs) - 2 and jobs[0] not in left and jobs[1] in left


@given(st.integers(1, 40), st.integers(1, 9), st.data())
def test_rank_shares_partition_the_plan(num_prompts, world_size, data):
    jobs = plan_jobs(config(num_prompts=num_prompts))
    assume(len(jobs) >= 1)
    shares = [rank_share(jobs, r, world_size) for r in range(world_size)]
    flat = [j for s in shares for j in s]
    assert sorted(flat, key=jobs.index) == list(jobs) and len(flat) == len(set(flat))  # disjoint, complete
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert all(list(s) == sorted(s, key=jobs.index) for s in shares)  # each share keeps plan order


@pytest.mark.parametrize("rank, world, match", [(2, 2, r"`rank` must be an integer in \[0, 2\)"),
                                                (0, 0, "`world_size` must be an integer >= 1")])
def test_rank_share_refuses_bad_ranks(rank, world, match):
    with pytest.raises(ValueError, match=match):
        rank_share(plan_jobs(config()), rank, world)


def test_ranks_from_torchrun_environment():
    from empirical.sweep.ranks import Ranks

    assert Ranks.from_env({}) == Ranks(0, 1, 0, 0)
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "TORCHELASTIC_RESTART_COUNT": "2", "MASTER_ADDR": "h"}
    assert Ranks.from_env(env) == Ranks(3, 4, 1, 2)
    with pytest.raises(ValueError, match="MASTER_ADDR is not set"):
        Ranks.from_env({"RANK": "0", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="RANK must be in"):
        Ranks.from_env({"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "h"})
    with pytest.raises(ValueError, match="LOCAL_RANK must be an integer"):
        Ranks.from_env({"LOCAL_RANK": "x"})


def test_the_documented_example_is_valid(capsys):
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "docs" / "sweep-example.toml"
    c = load_config(example)
    assert [g.name for g in c.groups][:3] == ["binary", "ternary", "more seeds of 2^5"]
    assert len(plan_jobs(c)) == 56 * 2  # the count the file's comment gives
    assert main(["sweep", str(example), "--dry-run", "--out", "/nonexistent/sweep"]) == 0
    assert "= 112 jobs" in capsys.readouterr().out


def test_runtime_and_compile_choices():
    c = config()
    assert (c.runtime, c.compile) == ("fast", None)
    c = config(runtime="eager", compile="verify")
    assert (c.runtime, c.compile) == ("eager", "verify") and c.to_dict()["compile"] == "verify"
    found = problems({"group": [dict(GROUP)], "runtime": "x", "compile": "fast"})
    assert any("`runtime` must be one of 'fast', 'eager'" in p for p in found)
    assert any("`compile` must be one of 'off', 'verify', 'forwards', 'all'" in p for p in found)
