"""The inverse CDF (empirical.inverse_cdf), flat and in blocks, against a flat numpy search: block
sizes that make one, a few and many blocks, zero-mass tokens, a short last block, rounding at the
row's end; and the choice between the two searches."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from empirical import inverse_cdf as icdf  # noqa: E402


def _flat(w, u):
    """Reference: first index with cdf > u * total, one row at a time (numpy, float64)."""
    cdf = np.cumsum(w)
    return np.minimum(np.searchsorted(cdf, u * cdf[-1], side="right"), len(w) - 1)


def _rows(n, rows, seed):
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.full(n, 0.3), size=rows)
    w[rng.random(w.shape) < 0.2] = 0.0  # zero-mass tokens, whole zero blocks at small BLOCK
    w[:, -1] = 0.0  # and a zero tail
    return w, rng.random((rows, 7))


SEARCHES = [(False, 1024), (True, 4), (True, 16), (True, 1024)]  # (blocked, BLOCK)


@pytest.mark.parametrize("search, block", SEARCHES)
@pytest.mark.parametrize("n", [1, 5, 37, 3000])
def test_draws_equal_the_flat_search_away_from_ties(monkeypatch, search, block, n):
    monkeypatch.setattr(icdf, "BLOCK", block)
    w, u = _rows(n, 6, seed=n + block)
    got = icdf.inverse_cdf(torch.as_tensor(w), torch.as_tensor(u), blocked=search).numpy()
    assert got.shape == u.shape and got.dtype == np.int64
    for r in range(len(w)):
        cdf = np.cumsum(w[r])
        for j, x in enumerate(_flat(w[r], u[r])):
            margin = np.abs(cdf - u[r, j] * cdf[-1]).min()
            if margin > 1e-12:  # a target on a cdf value (to rounding) may go either way
                assert got[r, j] == x
            assert w[r, got[r, j]] > 0 or not w[r].any()


@pytest.mark.parametrize("search", [False, True])
def test_a_uniform_at_the_end_draws_the_last_positive_token(monkeypatch, search):
    monkeypatch.setattr(icdf, "BLOCK", 4)
    w = torch.tensor([[0.0, 0.5, 0.0, 0.25, 0.25, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    u = torch.tensor([[0.0, 0.5, np.nextafter(1.0, 0.0)]], dtype=torch.float64)
    assert icdf.inverse_cdf(w, u, blocked=search).tolist() == [[1, 3, 4]]


@pytest.mark.parametrize("search", [False, True])
def test_a_row_without_mass_draws_the_last_token(search):
    w = torch.zeros(2, 3000, dtype=torch.float64)
    half = torch.full((2, 1), 0.5, dtype=torch.float64)
    assert icdf.inverse_cdf(w, half, blocked=search).tolist() == [[2999], [2999]]


@pytest.mark.parametrize("search", [False, True])
def test_leading_axes_and_float32(search):
    w, u = _rows(40, 6, seed=3)
    w32 = torch.as_tensor(w, dtype=torch.float32).reshape(2, 3, 40)
    got = icdf.inverse_cdf(w32, torch.as_tensor(u, dtype=torch.float32).reshape(2, 3, 7), blocked=search)
    assert got.shape == (2, 3, 7)
    assert (torch.gather(w32, -1, got) > 0).all()


@pytest.mark.parametrize("search", [False, True])
def test_frequencies_follow_the_weights(search):
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(2500))
    u = torch.as_tensor(rng.random((1, 200_000)))
    counts = np.bincount(icdf.inverse_cdf(torch.as_tensor(w)[None], u, blocked=search)[0].numpy(), minlength=2500)
    top = np.argsort(w)[-20:]  # the heaviest tokens: ~80 draws each, sd ~9
    assert np.all(np.abs(counts[top] - 200_000 * w[top]) < 6 * np.sqrt(200_000 * w[top]) + 1)


def test_the_blocked_search_is_the_default_while_compiling_and_capturing_two_rows(monkeypatch):
    calls = []
    monkeypatch.setattr(icdf, "_blocked", lambda w, u: calls.append("blocked"))
    monkeypatch.setattr(icdf, "_flat", lambda w, u: calls.append("flat"))
    one, two, u = torch.ones(1, 4), torch.ones(2, 1, 4), torch.zeros(1, 1)
    icdf.inverse_cdf(two, u)  # eager: flat
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    icdf.inverse_cdf(one, u)  # a graph of one row: flat
    icdf.inverse_cdf(two, u)  # of two rows: blocked
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    icdf.inverse_cdf(one, u)  # traced: blocked
    icdf.inverse_cdf(one, u, blocked=False)
    assert calls == ["flat", "flat", "blocked", "blocked", "flat"]


def test_the_benchmark_records_both_searches_and_their_check(tmp_path):
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "cdf.json"
    subprocess.run([sys.executable, str(root / "benchmarks" / "bench_inverse_cdf.py"), "--rows", "1,3", "--n", "3000",
                    "--repeat", "1", "--out", str(out)], check=True, cwd=root, capture_output=True)
    runs = json.loads(out.read_text())["runs"]
    assert [r["rows"] for r in runs] == [1, 3]
    assert all(r["blocked_equal_eager"] and r["blocked_equal_flat"] == 1.0 and r["flat_ms"] > 0 for r in runs)
