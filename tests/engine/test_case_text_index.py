"""A string column's rows by text (fastcalc/_cases.pyx TextIndex), built once and looked up
many times, against Arrow's ``index_in`` (the first row of a text written twice), and the
enterprise side's index as the registry batches and the partitions' links use it."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from ecorules.engine.cases._enterprises import EnterpriseSide
from ecorules.engine.cases._table import indexed, positions

VALUES = ["91410100123456788Y", "A-1", "", None, "案件-1", "x" * 25, "A-1", "91410100123456788Y", "a-1", "案件-1",
          "x" * 24, "C000000001"]
KEYS = ["A-1", None, "", "案件-1", "x" * 25, "x" * 26, "91410100123456788Y", "９１", "a-1", "A-2", "C000000001",
        "C00000000"]


def _index_in(keys: pa.Array, values: pa.Array) -> list[int]:
    found = pc.index_in(keys, value_set=values.drop_null())  # a null key finds nothing
    kept = np.flatnonzero(np.asarray(values.is_valid()))
    return [-1 if v is None else int(kept[v]) for v in found.to_pylist()]


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_positions_are_the_first_row_of_each_text(kind):
    values, keys = pa.array(VALUES, kind), pa.array(KEYS, kind)
    index = indexed(values)
    assert positions(index, keys).tolist() == _index_in(keys, values)
    assert positions(index, keys.slice(3, 5)).tolist() == _index_in(keys, values)[3:8]
    sliced = values.slice(2, 8)
    assert positions(indexed(sliced), keys).tolist() == _index_in(keys, sliced)
    assert positions(index, pa.chunked_array([keys.slice(0, 4), keys.slice(4)])).tolist() == _index_in(keys, values)


def test_many_values_of_both_kinds_grow_the_tables_and_nothing_is_found_in_none():
    rng = np.random.default_rng(7)
    pool = [f"9141{i:014d}" for i in range(30000)] + [f"案{i}" for i in range(20000)]
    values = pa.array([pool[i] for i in rng.integers(0, len(pool), 60000)])
    keys = pa.array([pool[i] for i in rng.integers(0, len(pool), 40000)] + ["missing", None])
    assert positions(indexed(values), keys).tolist() == _index_in(keys, values)
    assert positions(indexed(pa.array([], pa.string())), keys).tolist() == [-1] * len(keys)
    assert positions(indexed(values), pa.array([], pa.string())).size == 0


def test_the_side_builds_its_index_once_and_is_sent_without_it():
    side = EnterpriseSide(pa.array(["91410100123456788Y", "A-1"]), pa.table({"uscc": ["x", "y"]}))
    assert side.index is side.index
    assert positions(side.index, pa.array(["A-1", "B"])).tolist() == [1, -1]
    copy = pickle.loads(pickle.dumps(side))
    assert copy._index is None and positions(copy.index, pa.array(["A-1"])).tolist() == [1]


@pytest.mark.parametrize("texts", [
    ["A1", "C000000001", None, "", "A-案-1"],  # nothing to trim: the column itself
    ["案件-1"],  # may be (a non-ASCII character at an end): trimmed by Arrow, the same texts
    ["A1 ", "B2"], [" A1", "B2"], ["A1", "\tB2"], ["A1\u3000", "B2"], ["\u00a0A1", "B2"], ["A1", "案件 \u2003"],
])
def test_stripped_is_arrows_trim_and_the_column_itself_when_nothing_trims(texts):
    from ecorules.engine.cases._table import _stripped

    column = pa.array(texts, pa.string())
    got = _stripped(column)
    assert got.to_pylist() == pc.utf8_trim_whitespace(column).to_pylist()
    assert (got is column) == (texts[0] == "A1" and texts[-1] == "A-案-1")
