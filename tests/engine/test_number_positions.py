"""``fastcalc._cases.number_positions``: the place of each number among distinct (or repeated)
ones, as a sorted search and a compare find it."""

import numpy as np
import pytest
from ecorules.fastcalc._cases import number_positions


def _expected(values: np.ndarray, queries: np.ndarray) -> list[int]:
    first = {}
    for place, value in enumerate(values.tolist()):
        first.setdefault(value, place)
    return [first.get(q, -1) for q in queries.tolist()]


@pytest.mark.parametrize("n", [0, 1, 7, 5_000])
def test_number_positions_finds_the_first_place_of_each_number_or_none(n):
    rng = np.random.default_rng(n)
    # small numbers that repeat, huge ones (act numbers past every case code), negatives, 0
    values = np.concatenate([rng.integers(0, max(n // 3, 1), n // 2), rng.integers(-(1 << 62), 1 << 62, n - n // 2)])
    values = rng.permutation(values).astype(np.int64)
    queries = np.concatenate([rng.choice(values, 3 * n) if n else np.zeros(0, np.int64),
                              rng.integers(-5, max(n // 3, 1) + 5, 2 * n + 3), np.array([0, -1, 1 << 62])]).astype(np.int64)
    got = number_positions(values, queries)
    assert got.dtype == np.int64
    assert got.tolist() == _expected(values, queries)
