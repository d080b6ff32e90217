"""The blocked range-maximum structure equals a brute-force maximum on every range."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from spechub_theory.methods.range_max import BLOCK, range_max, range_max_of_blocks


def brute(values, lo, hi):
    return np.array([values[a:b].max() if b > a else 0.0 for a, b in zip(lo, hi)])


@given(L=st.integers(0, 5 * BLOCK + 3), seed=st.integers(0, 2**32 - 1))
def test_every_range(L, seed):
    rng = np.random.default_rng(seed)
    values = rng.random(L) * (rng.random(L) < 0.5)
    lo = rng.integers(0, L + 1, 200)
    hi = rng.integers(0, L + 1, 200)
    np.testing.assert_array_equal(range_max(values).query(lo, hi), brute(values, lo, hi))


def test_all_ranges_of_a_long_array_and_broadcasting():
    rng = np.random.default_rng(3)
    values = rng.random(700)
    lo, hi = np.meshgrid(np.arange(0, 701, 7), np.arange(0, 701, 5), indexing="ij")
    got = range_max(values).query(lo, hi)
    assert got.shape == lo.shape
    np.testing.assert_array_equal(got.ravel(), brute(values, lo.ravel(), hi.ravel()))


def test_table_rows_and_an_empty_layout():
    """The sparse table has one row per span 2^j <= nb (row 0 the block maxima), filled in place;
    an empty layout still builds, with one empty row, as before the in-place fill."""
    rng = np.random.default_rng(5)
    for nb in (1, 2, 3, 7, 8, 9):
        blocks = rng.random((nb, BLOCK))
        table = range_max_of_blocks(blocks).table
        assert table.shape == (nb.bit_length(), nb)
        np.testing.assert_array_equal(table[0], blocks.max(axis=1))
    assert range_max_of_blocks(np.zeros((0, BLOCK))).table.shape == (1, 0)
