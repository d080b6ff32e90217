"""`spechub bound`: the table and the exact JSON of worked example E1."""

import json
import re

import numpy as np
import pytest

from spechub_cli import main


def test_bound_json_e1(capsys):
    assert main(["bound", "--p", "0.4,0.4,0.2", "--q", "0.7,0.2,0.1", "--k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["k"] == 2 and out["n"] == 3 and out["tv"] == 0.3 and out["hub"] == 0
    acc = out["acceptance"]
    assert acc["single"] == 0.7 and acc["rrs"] == 0.79 and acc["rrs_wor"] == 1.0 and acc["spechub"] == 1.0
    assert round(acc["kseq"], 6) == 0.825367


def test_bound_table(capsys):
    assert main(["bound", "--p", "0.3,0.3,0.4", "--q", "0.6,0.3,0.1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"spechub\s+0\.850000", out) and "TV(p, q) = 0.300000" in out


@pytest.mark.parametrize("suffix", [".npy", ".json", ".txt"])
def test_bound_reads_files(tmp_path, suffix, capsys):
    p, q = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.4, 0.3, 0.2, 0.1])
    paths = []
    for name, x in (("p", p), ("q", q)):
        path = tmp_path / f"{name}{suffix}"
        if suffix == ".npy":
            np.save(path, x)
        elif suffix == ".json":
            path.write_text(json.dumps(x.tolist()))
        else:
            path.write_text(" ".join(map(str, x)))
        paths.append(str(path))
    assert main(["bound", "--p", paths[0], "--q", paths[1], "--k", "3", "--json"]) == 0
    acc = json.loads(capsys.readouterr().out)["acceptance"]
    assert round(acc["rrs_wor"], 6) == 0.840298


def test_bound_logits(capsys):
    assert main(["bound", "--logits", "1,2,3", "--draft-logits", "3,2,1", "--temperature", "0.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 < out["acceptance"]["single"] < 1


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, spechub_theory; print([m for m in ('torch', 'transformers', 'matplotlib', 'cvxpy') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
