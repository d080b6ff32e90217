"""The blocked inverse CDF (empirical.inverse_cdf) against a flat numpy search, at block sizes that
make one, a few and many blocks, with zero-mass tokens, padding and rounding at the row's end."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from empirical import inverse_cdf as blocked  # noqa: E402


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


@pytest.mark.parametrize("block", [4, 16, 1024])
@pytest.mark.parametrize("n", [1, 5, 37, 3000])
def test_draws_equal_the_flat_search_away_from_ties(monkeypatch, block, n):
    monkeypatch.setattr(blocked, "BLOCK", block)
    w, u = _rows(n, 6, seed=n + block)
    got = blocked.inverse_cdf(torch.as_tensor(w), torch.as_tensor(u)).numpy()
    assert got.shape == u.shape and got.dtype == np.int64
    for r in range(len(w)):
        cdf = np.cumsum(w[r])
        for j, x in enumerate(_flat(w[r], u[r])):
            margin = np.abs(cdf - u[r, j] * cdf[-1]).min()
            if margin > 1e-12:  # a target on a cdf value (to rounding) may go either way
                assert got[r, j] == x
            assert w[r, got[r, j]] > 0 or not w[r].any()


def test_a_uniform_at_the_end_draws_the_last_positive_token(monkeypatch):
    monkeypatch.setattr(blocked, "BLOCK", 4)
    w = torch.tensor([[0.0, 0.5, 0.0, 0.25, 0.25, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    u = torch.tensor([[0.0, 0.5, np.nextafter(1.0, 0.0)]], dtype=torch.float64)
    assert blocked.inverse_cdf(w, u).tolist() == [[1, 3, 4]]


def test_a_row_without_mass_draws_the_last_token():
    w = torch.zeros(2, 3000, dtype=torch.float64)
    assert blocked.inverse_cdf(w, torch.full((2, 1), 0.5, dtype=torch.float64)).tolist() == [[2999], [2999]]


def test_leading_axes_and_float32():
    w, u = _rows(40, 6, seed=3)
    w32 = torch.as_tensor(w, dtype=torch.float32).reshape(2, 3, 40)
    got = blocked.inverse_cdf(w32, torch.as_tensor(u, dtype=torch.float32).reshape(2, 3, 7))
    assert got.shape == (2, 3, 7)
    assert (torch.gather(w32, -1, got) > 0).all()


def test_frequencies_follow_the_weights():
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(2500))
    u = torch.as_tensor(rng.random((1, 200_000)))
    counts = np.bincount(blocked.inverse_cdf(torch.as_tensor(w)[None], u)[0].numpy(), minlength=2500)
    top = np.argsort(w)[-20:]  # the heaviest tokens: ~80 draws each, sd ~9
    assert np.all(np.abs(counts[top] - 200_000 * w[top]) < 6 * np.sqrt(200_000 * w[top]) + 1)
