"""`spechub lp`: JSON output, the plan file, and one-line errors with exit status 2."""

import csv
import re
import json

import numpy as np
import pytest

from spechub_cli import main

E2 = ["--p", "0.3,0.3,0.4", "--q", "0.6,0.3,0.1"]


def test_lp_json_wor_e2(capsys):
    assert main(["lp", *E2, "--k", "2", "--law", "wor", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert round(out["value"], 6) == 0.892857 and out["status"] == "optimal" and out["solver"] == "highs"
    assert out["certificate"]["tokens"] == [0, 1] and out["draft_law"] == "wor"


def test_lp_report_and_csv_plan(tmp_path, capsys):
    path = tmp_path / "plan.csv"
    assert main(["lp", *E2, "--law", "iid", "--plan", str(path)]) == 0
    report = capsys.readouterr().out
    assert "alpha* = 0.790000000" in report and "certificate A = {0, 1}" in report
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    mass = np.array([float(r["mass"]) for r in rows])
    accepted = np.array([r["accepted"] == "1" for r in rows])
    assert mass.sum() == pytest.approx(1.0, abs=1e-12)
    assert mass[accepted].sum() == pytest.approx(0.79, abs=1e-12)
    tokens = np.array([int(r["token"]) for r in rows])
    np.testing.assert_allclose(np.bincount(tokens, mass, minlength=3), [.3, .3, .4], atol=1e-12)


def test_lp_json_plan_hub_closed_form(tmp_path, capsys):
    path = tmp_path / "plan.json"
    args = ["lp", "--p", "0.6,0.18,0.22,0", "--q", "0.32,0.1,0.3,0.28", "--law", "hub",
            "--solver", "closed-form", "--json", "--plan", str(path)]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert round(out["value"], 6) == 0.967059 and out["plan_file"] == str(path)
    saved = json.loads(path.read_text())
    assert sum(e["mass"] for e in saved["plan"] if e["accepted"]) == pytest.approx(out["value"], abs=1e-12)


def test_lp_reads_npy_files(tmp_path, capsys):
    np.save(tmp_path / "p.npy", np.array([.1, .2, .3, .4]))
    np.save(tmp_path / "q.npy", np.array([.4, .3, .2, .1]))
    assert main(["lp", "--p", str(tmp_path / "p.npy"), "--q", str(tmp_path / "q.npy"), "--k", "3", "--json"]) == 0
    assert round(json.loads(capsys.readouterr().out)["value"], 6) == 0.871


def test_lp_cvxpy_solver(capsys):
    pytest.importorskip("cvxpy")
    assert main(["lp", *E2, "--law", "hub", "--solver", "cvxpy", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert round(out["value"], 6) == 0.85 and out["solver"].startswith("cvxpy:")


@pytest.mark.parametrize(
    "args, match",
    [
        (["--p", "0.3,0.3", "--q", "0.6,0.3,0.1"], "`p` must sum to 1"),
        ([*E2, "--plan", "plan.txt"], "must end in .csv or .json"),
        ([*E2, "--law", "iid", "--solver", "closed-form"], "closed-form` exists for `--law hub"),
        ([*E2, "--k", "4", "--law", "wor"], "distinct drafts"),
        (["--p", "0.5,0.5;0.5,0.5", "--q", "0.5,0.5;0.5,0.5"], "single \\(p, q\\) pair"),
        (["--p", "a,b", "--q", "0.6,0.3,0.1"], "must be numbers"),
    ],
)
def test_lp_bad_input_is_one_line_and_exit_2(args, match, capsys):
    assert main(["lp", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("spechub lp: error:")
    assert re.search(match, err)


def test_lp_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["lp", "--help"])
    assert exc.value.code == 0
    assert "spechub lp --p 0.3,0.3,0.4" in capsys.readouterr().out
