"""A batch handed to the scorer in one chunk a column (``made_contiguous``, in the run's reading
thread): a CSV batch comes as a chunk per slice parsed, cut again around every row the duplicate
filter took out, and the scorer combined the chunks itself. Combined before, the batch scores
to the same ledger, and the rows the reading found suspect are still the only ones checked again."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from ecorules.engine.sources._types import made_contiguous
from nightly_data import make_registry
from test_uscc_checked_once import _checks_in_scoring, _ledger, _read, _scored


def _spoiled_in_chunks(rows: int, seed: int) -> pa.Table:
    """A registry with bad codes and repeated ones, its columns in chunks of 700 rows (slices)."""
    table = make_registry(rows, seed=seed, case_share=0.3)
    codes = table["uscc"].to_pylist()
    codes[41] = codes[41][:17] + ("1" if codes[41][17] != "1" else "2")  # a wrong check character
    codes[500] = " " + codes[500]
    codes[1200] = "９" + codes[1200][1:]
    codes[1500], codes[2100], codes[2101] = codes[10], codes[11], codes[12]  # duplicates: taken out
    table = table.set_column(table.column_names.index("uscc"), "uscc", pa.array(codes, pa.string()))
    return pa.concat_tables([table.slice(start, 700) for start in range(0, rows, 700)])


def test_a_batch_in_many_chunks_scores_the_same_in_one_chunk_a_column(monkeypatch):
    table = _spoiled_in_chunks(3_000, seed=7)
    chunked = _read(table)
    assert chunked.table["name"].num_chunks > 5 and "uscc" in chunked.suspects
    expected, checked_chunked = _checks_in_scoring(monkeypatch, chunked)
    combined = made_contiguous(_read(table))
    assert all(column.num_chunks == 1 for column in combined.table.columns)
    assert combined.table.equals(chunked.table)
    assert combined.rows.tolist() == chunked.rows.tolist()
    scored, checked = _checks_in_scoring(monkeypatch, combined)
    assert checked == checked_chunked and 0 < checked < 20  # the suspects' mark followed the column
    assert _ledger(scored) == _ledger(expected)
    assert scored.rows_rejected >= 4  # a bad code, 3 duplicates (blanks and a full-width digit are read as valid)
    assert scored.rows_in == scored.rows_scored + scored.rows_rejected == 3_000


def test_a_column_changed_since_the_check_is_still_checked_whole_once_combined(monkeypatch):
    batch = _read(_spoiled_in_chunks(3_000, seed=8))
    batch.table, batch.rows = batch.table.slice(1), batch.rows[1:]  # a row dropped after the check
    combined = made_contiguous(batch)
    _, checked = _checks_in_scoring(monkeypatch, combined)
    assert checked == combined.table.num_rows  # not the column the reading checked: every row again


def test_a_batch_already_in_one_chunk_is_left_as_it_is():
    table = make_registry(100, seed=9, case_share=0.3).combine_chunks()
    batch = _read(table)
    before = batch.table
    assert made_contiguous(batch).table is before
    assert np.array_equal(batch.rows, np.arange(2, 102))
    assert _ledger(_scored(batch)) == _ledger(_scored(_read(table)))


def test_rows_taken_out_leave_the_same_table_as_a_filter_whichever_rows_they_are():
    from ecorules.engine.sources._types import SLICED_ROWS, without_rows

    table = make_registry(1_000, seed=10, case_share=0.3)
    table = pa.concat_tables([table.slice(0, 300), table.slice(300)])
    rng = np.random.default_rng(10)
    for drop in ([], [0], [999], [0, 1, 2, 999], [299, 300, 301], list(range(1_000)),
                 sorted(rng.choice(1_000, 40, replace=False).tolist()),
                 sorted(rng.choice(1_000, SLICED_ROWS + 1, replace=False).tolist())):
        keep = np.ones(1_000, bool)
        keep[drop] = False
        left = without_rows(table, np.array(drop, np.int64), keep)
        assert left.equals(table.filter(pa.array(keep))), drop
