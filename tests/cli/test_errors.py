"""Bad input gives a clear ValueError naming the problem (Python) or one line + exit 2 (CLI)."""

import numpy as np
import pytest

from spechub_theory import acceptance_rates, probs_from_logits
from spechub_cli import main

GOOD = [0.4, 0.4, 0.2]


@pytest.mark.parametrize(
    "p, q, k, match",
    [
        ([0.5, -0.1, 0.6], GOOD, 2, r"`p` must be non-negative; p\[1\] = -0.1"),
        ([0.5, np.nan, 0.5], GOOD, 2, r"`p` must be finite; p\[1\] = nan"),
        (GOOD, [0.5, 0.5], 2, "same length"),
        (GOOD, [0.5, 0.3, 0.1], 2, r"`q` must sum to 1 .* within 1e-06; it sums to 0.9"),
        (GOOD, GOOD, 0, "`k` must be an integer >= 1; got 0"),
        (GOOD, GOOD, 1.5, "`k` must be an integer >= 1"),
        ([], [], 2, "must not be empty"),
        (0.5, 0.5, 2, "must be a vector"),
    ],
)
def test_python_errors(p, q, k, match):
    with pytest.raises(ValueError, match=match):
        acceptance_rates(p, q, k)


def test_distinct_drafts_need_k_le_n():
    from spechub_theory.methods import rrs_wor, spechub

    for m in (rrs_wor, spechub):
        with pytest.raises(ValueError, match="need a vocabulary of at least 4"):
            m.acceptance(GOOD, GOOD, 4)
    # acceptance_rates omits them with a note instead
    r = acceptance_rates(GOOD, GOOD, 4)
    assert "rrs_wor" not in r.acceptance and "omitted" in r.notes["rrs_wor"]


def test_row_error_names_the_row():
    q = np.array([[0.5, 0.5], [0.7, 0.2]])
    with pytest.raises(ValueError, match="row 1 sums to 0.9"):
        acceptance_rates(q, q)


def test_logits_errors():
    with pytest.raises(ValueError, match="temperature"):
        probs_from_logits([1.0, 2.0], temperature=-1)
    with pytest.raises(ValueError, match="top_p"):
        probs_from_logits([1.0, 2.0], top_p=0)
    with pytest.raises(ValueError, match="NaN"):
        probs_from_logits([1.0, np.nan])


@pytest.mark.parametrize(
    "argv, match",
    [
        (["bound", "--p", "0.4,-0.4,1", "--q", "0.7,0.2,0.1"], "non-negative"),
        (["bound", "--p", "0.4,0.4,0.2", "--q", "0.5,0.5"], "same length"),
        (["bound", "--p", "0.4,0.4,0.3", "--q", "0.7,0.2,0.1"], "sum to 1"),
        (["bound", "--p", "0.4,0.4,0.2", "--q", "0.7,0.2,0.1", "--k", "0"], "`k` must be an integer >= 1"),
        (["bound", "--p", "a,b", "--q", "0.7,0.2,0.1"], "must be numbers"),
        (["bound", "--p", "missing.npy", "--q", "0.7,0.2,0.1"], "does not exist"),
        (["bound", "--q", "0.7,0.2,0.1"], "`--p` is required"),
        (["bound", "--p", "0.4,0.4,0.2", "--q", "0.7,0.2,0.1", "--k", "4"], "need a vocabulary of at least 4 tokens; n = 3"),
    ],
)
def test_cli_errors_are_one_line_exit_2(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spechub bound: error:") and "\n" not in err and "Traceback" not in err
    assert match.replace("\\", "") in err or __import__("re").search(match, err)
