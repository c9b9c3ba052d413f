"""The distinct figures of the lighter-law notes (行政处罚法 art 37, engine/cases/_law.py),
found by ranking columns: the same rows as ``np.unique(axis=0)`` and each row's own among them."""

from __future__ import annotations

import numpy as np
import pytest
from ecorules.engine.cases._law import distinct_rows


@pytest.mark.parametrize("seed", range(6))
def test_distinct_rows_as_numpy_finds_them(seed):
    rng = np.random.default_rng(seed)
    rows, columns = int(rng.integers(0, 400)), int(rng.integers(1, 8))
    # few values per column (as fines and periods are), some huge and negative
    values = rng.choice(np.array([0, 1, -7, 20000, 1 << 40, -(1 << 50), 3], np.int64), size=(rows, columns))
    distinct, which = distinct_rows(values)
    assert which.dtype == np.int64 and which.shape == (rows,)
    assert np.array_equal(distinct[which], values)  # every row's own
    assert len({tuple(r) for r in distinct.tolist()}) == distinct.shape[0]  # no row twice
    assert sorted(map(tuple, distinct.tolist())) == sorted(map(tuple, np.unique(values, axis=0).tolist()))


def test_distinct_rows_whose_ranks_would_overflow_one_key():
    # 7 columns of ~800 distinct values each: the product of the widths passes 2^62, so the
    # key is ranked again on the way; rows repeat so that some are shared
    rng = np.random.default_rng(9)
    base = rng.integers(-10**12, 10**12, size=(800, 7))
    values = base[rng.integers(0, 800, size=3000)]
    distinct, which = distinct_rows(values)
    assert np.array_equal(distinct[which], values)
    assert distinct.shape[0] == np.unique(values, axis=0).shape[0]


@pytest.mark.parametrize("rows", [0, 1, 50])
def test_distinct_rows_with_columns_of_one_value(rows):
    # a statute change's lighter rows mostly share their list entries, other amounts and
    # period of the law date: such a column is passed over, the rows found as before
    rng = np.random.default_rng(rows)
    values = np.stack([rng.choice(np.array([5, -3, 1 << 40], np.int64), rows), np.full(rows, 7, np.int64),
                       rng.choice(np.array([0, 2], np.int64), rows), np.full(rows, -(1 << 50), np.int64)], axis=1)
    distinct, which = distinct_rows(values)
    assert np.array_equal(distinct[which], values)
    assert sorted(map(tuple, distinct.tolist())) == sorted(map(tuple, np.unique(values, axis=0).tolist()))
    constant = np.full((rows, 3), 4, np.int64)
    distinct, which = distinct_rows(constant)
    assert distinct.shape[0] == min(rows, 1) and np.array_equal(distinct[which], constant)
