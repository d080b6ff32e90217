"""The torch selection law and acceptance of khisti_is (empirical.khisti_torch) against the numpy core,
including zeros, one-hots, ties and p = q, over chunk sizes that split the vocabulary unevenly."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from empirical import khisti_torch  # noqa: E402
from spechub_theory.methods import khisti_is  # noqa: E402
from strategies import pairs  # noqa: E402


@given(pairs(max_n=7), st.integers(1, 2), st.integers(1, 20))
def test_selection_law_and_acceptance_match_the_core(pq, k, chunk):
    p, q = pq
    s = khisti_torch.selection_law(torch.as_tensor(p), torch.as_tensor(q), k, chunk_entries=chunk)
    np.testing.assert_allclose(s.numpy(), khisti_is.selection_law(p, q, k), rtol=1e-12, atol=1e-15)
    assert abs(s.sum().item() - 1.0) < 1e-12
    alpha = khisti_torch.acceptance(torch.as_tensor(p), torch.as_tensor(q), k, chunk_entries=chunk)
    assert abs(alpha.item() - float(khisti_is.acceptance(p, q, k))) < 1e-12


def test_rows_are_independent_and_worked_example_e1():
    p, q = np.array([[0.4, 0.4, 0.2], [0.2, 0.3, 0.5]]), np.array([[0.7, 0.2, 0.1], [0.5, 0.5, 0.0]])
    alpha = khisti_torch.acceptance(torch.as_tensor(p), torch.as_tensor(q), 2, chunk_entries=4)
    np.testing.assert_allclose(alpha.numpy(), khisti_is.acceptance(p, q, 2), rtol=1e-13)
    assert round(float(alpha[0]), 6) == 0.816667  # README / theory.md worked example E1


def test_more_than_two_drafts_is_refused():
    x = torch.full((3,), 1 / 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="`k` must be 1 or 2 .*got 3"):
        khisti_torch.selection_law(x, x, 3)
