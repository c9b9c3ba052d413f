"""The spill's grouping of a batch by bucket (engine/cases/_spill.py, fastcalc/_cases.pyx
``bucket_places``, ``scatter_texts``, ``scatter_bits``) gives the table a stable ``take`` by
the sorted buckets gives: every type a case table holds, nulls, sliced arrays, empty texts."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine.cases._spill import grouped_by_place
from ecorules.fastcalc._cases import bucket_places


def _table(rng, n: int) -> pa.Table:
    def missing():
        return rng.random(n) < rng.random()

    return pa.table({
        "text": pa.array([None if m else "x" * int(rng.integers(0, 5)) + str(i) for i, m in enumerate(missing())],
                         pa.string()),
        "large": pa.array([None if m else "郑" + str(i) for i, m in enumerate(missing())], pa.large_string()),
        "integer": pa.array([None if m else i - 7 for i, m in enumerate(missing())], pa.int64()),
        "date": pa.array([None if m else dt.date(2020, 1, 1) + dt.timedelta(days=i) for i, m in enumerate(missing())],
                         pa.date32()),
        "flag": pa.array([None if m else bool(i % 3) for i, m in enumerate(missing())], pa.bool_()),
        "real": pa.array(rng.random(n), pa.float32()),
        "byte": pa.array(rng.integers(0, 200, n).astype(np.uint8)),
        "absent": pa.nulls(n, pa.string()),  # taken, not scattered
        "coded": pa.array([str(i % 4) for i in range(n)]).dictionary_encode(),
    })


@pytest.mark.parametrize("seed", range(40))
def test_grouped_rows_are_a_stable_take_by_bucket(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    table = _table(rng, n)
    if seed % 2:  # arrays with an offset (a slice of a batch)
        start = int(rng.integers(0, n // 2 + 1))
        table = table.slice(start, max(n - start - 1, 1))
        n = table.num_rows
    count = int(rng.integers(1, 9))
    bucket = rng.integers(0, count, n).astype(np.int64)
    place, counts = bucket_places(bucket, count)
    assert counts.tolist() == np.bincount(bucket, minlength=count).tolist()
    want = table.take(pa.array(np.argsort(bucket, kind="stable"), pa.int64()))
    got = grouped_by_place(table, place)
    assert got.schema == want.schema
    for name in table.column_names:
        got[name].validate(full=True)
        assert got[name].equals(want[name]), name


def test_a_bucket_outside_the_count_is_refused():
    with pytest.raises(ValueError, match="outside"):
        bucket_places(np.array([0, 3], np.int64), 3)
