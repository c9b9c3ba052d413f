"""The rows the duplicate filter holds (engine/_duplicates.py, engine/_seen_keys.py): false
positives and later rows whose first lay in an earlier batch, decided at the end. They come
back gathered, one batch per file (not one per batch they were held from: each batch scored
costs a fixed time), as soon as the last batch is through the filter, with the rejects naming
the exact first row; the spill is read only where a run held something."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine import _seen_keys
from ecorules.engine._duplicates import DuplicateFilter, canonical_keys
from ecorules.engine._seen_keys import SeenUsccs
from ecorules.engine.sources import _types
from ecorules.engine.sources._types import Batch
from ecorules.rules import load_policies
from nightly_data import usccs

POLICIES = load_policies().for_domain("enterprise")
FACT = POLICIES.facts["uscc"]


def _batches(codes: list[str], source: str, size: int, first_row: int = 2) -> list[Batch]:
    out = []
    for start in range(0, len(codes), size):
        part = codes[start : start + size]
        table = pa.table({"uscc": pa.array(part), "untreated_outfalls": pa.array(np.arange(len(part)))})
        rows = np.arange(first_row + start, first_row + start + len(part), dtype=np.int64)
        out.append(Batch(table, source, rows, {"uscc": "统一社会信用代码", "untreated_outfalls": "未处理排口"}, [], len(part)))
    return out


def _filter(words: int) -> DuplicateFilter:
    """A filter of ``words`` words: 2 hold nearly every row, as if each were a false positive."""
    return DuplicateFilter(FACT, None, "reject", POLICIES.facts, seen=SeenUsccs(words=words))


def _account(batches: list[Batch]) -> tuple[int, int, int]:
    """(rows in, rows left to score, rows rejected) of the batches."""
    return (sum(b.rows_in for b in batches), sum(b.table.num_rows for b in batches),
            sum(len(b.rejects) for b in batches))


def test_rows_held_from_many_batches_of_a_file_come_back_as_one_batch():
    codes = usccs(np.random.default_rng(5), 400).tolist()  # no key repeats: every row held is a false positive
    keys = _filter(32)  # small enough for a few false positives in each later batch
    passed = [keys.apply(batch) for batch in _batches(codes, "a.csv", 40)]
    held, _ = keys.end()
    held = list(held)
    assert sum(b.rows_in < 40 for b in passed) >= 3  # rows were held from several batches
    assert len(held) == 1  # one batch for the file, however many batches they were held from
    (batch,) = held
    assert batch.rejects == [] and batch.source == "a.csv"
    assert batch.rows_in == batch.table.num_rows == batch.rows.size
    # every row scored once, in the file's order, with its own row number and values
    scored = sorted([*(r for b in passed for r in b.rows.tolist()), *batch.rows.tolist()])
    assert scored == list(range(2, 402))
    assert batch.rows.tolist() == sorted(batch.rows.tolist())
    assert batch.table["uscc"].to_pylist() == [codes[row - 2] for row in batch.rows.tolist()]
    assert batch.table["untreated_outfalls"].to_pylist() == [(row - 2) % 40 for row in batch.rows.tolist()]
    assert _account([*passed, batch]) == (400, 400, 0)


def test_a_batch_of_held_rows_is_no_larger_than_the_largest_batch_read_and_holds_one_file():
    codes = usccs(np.random.default_rng(6), 600).tolist()
    keys = _filter(2)
    passed = [keys.apply(b) for b in [*_batches(codes[:400], "a.csv", 20), *_batches(codes[400:], "b.csv", 20)]]
    held = list(keys.end()[0])
    held_rows = 600 - sum(b.rows_in for b in passed)
    assert held_rows > 300  # nearly every row held, from every batch but the first
    assert all(b.rows_in <= 20 for b in held)  # never more than the largest batch read
    assert [b.source for b in held] == sorted(b.source for b in held)  # a file's rows together, in order
    assert {b.source for b in held} == {"a.csv", "b.csv"}
    # gathered up to the bound: no two batches of a file that follow each other would fit in one
    assert all(one.rows_in + two.rows_in > 20 for one, two in zip(held, held[1:], strict=False) if one.source == two.source)
    assert _account([*passed, *held]) == (600, 600, 0)


def test_held_duplicates_gathered_from_several_batches_name_their_exact_first_row():
    rng = np.random.default_rng(9)
    unique = usccs(rng, 30).tolist()
    # rows 32.. repeat codes of rows 2.. (each first in an earlier batch), among new ones
    codes = [*unique[:20], unique[3], unique[10], *unique[20:], unique[0], unique[3]]
    keys = _filter(1 << 13)  # a filter large enough to hold only the repeated ones
    passed = [keys.apply(batch) for batch in _batches(codes, "a.csv", 10)]
    held = list(keys.end()[0])
    assert len(held) == 1
    reasons = [(r.row, r.column, r.reason) for r in held[0].rejects]
    assert reasons == [
        (22, "统一社会信用代码", f"duplicate uscc '{unique[3]}': first at row 5 of a.csv (one enterprise, one row)"),
        (23, "统一社会信用代码", f"duplicate uscc '{unique[10]}': first at row 12 of a.csv (one enterprise, one row)"),
        (34, "统一社会信用代码", f"duplicate uscc '{unique[0]}': first at row 2 of a.csv (one enterprise, one row)"),
        (35, "统一社会信用代码", f"duplicate uscc '{unique[3]}': first at row 5 of a.csv (one enterprise, one row)"),
    ]
    assert _account([*passed, *held]) == (34, 30, 4)


def test_filtered_gives_the_held_rows_after_the_last_batch_and_end_gives_nothing_more():
    codes = usccs(np.random.default_rng(10), 30).tolist()
    keys = _filter(2)
    out = list(keys.filtered(iter(_batches(codes, "a.csv", 10))))
    assert len(out) == 4  # the three batches read, then one of the rows they held
    assert out[3].rows.size and out[3].rows_in == 30 - sum(b.rows_in for b in out[:3])
    assert list(keys.end()[0]) == []
    assert _account(out) == (30, 30, 0)


def test_a_run_that_held_nothing_reads_no_spill(monkeypatch):
    codes = usccs(np.random.default_rng(11), 50).tolist()
    keys = _filter(1 << 13)

    def no_read(*_):
        raise AssertionError("the spill was read although no row was held")

    monkeypatch.setattr(SeenUsccs, "first_places", no_read)
    out = list(keys.filtered(iter(_batches(codes, "a.csv", 10))))
    assert len(out) == 5 and _account(out) == (50, 50, 0)


@pytest.mark.parametrize("chunk", [3, 7, 1 << 20])
def test_first_places_reads_the_places_where_keys_match_across_chunks_of_the_spill(monkeypatch, chunk):
    # the spill read a few records at a time: matches at the start, the end and across chunks
    monkeypatch.setattr(_seen_keys, "_READ_RECORDS", chunk)
    rng = np.random.default_rng(12)
    unique = usccs(rng, 25).tolist()
    picks = rng.integers(0, 25, 60)
    codes = [unique[k] for k in picks]
    column, valid = canonical_keys(FACT, pa.array(codes))
    seen = SeenUsccs(words=1 << 13)
    held_rows, held_mixed, held_places = [], [], []
    for start in range(0, 60, 9):
        piece = slice(start, start + 9)
        held, mixed, places = seen.add(column[piece], valid[piece], "a.csv", np.arange(60)[piece] + 2)
        held_rows += (held + start).tolist()
        held_mixed.append(mixed)
        held_places.append(places)
    firsts = seen.first_places(np.concatenate(held_mixed), np.concatenate(held_places))
    seen.close()
    first_row = {}
    for row, code in enumerate(codes):
        first_row.setdefault(code, row + 2)
    assert set(held_rows) >= {row for row, code in enumerate(codes) if first_row[code] != row + 2}
    assert [seen.place(int(p)) for p in firsts] == [("a.csv", first_row[codes[row]]) for row in held_rows]


def _buffer_addresses(table: pa.Table) -> set[int]:
    return {buffer.address for column in table.columns for chunk in column.chunks for buffer in chunk.buffers()
            if buffer is not None}


def test_a_batch_holding_a_few_rows_keeps_the_others_in_its_own_buffers_not_a_copy():
    codes = usccs(np.random.default_rng(13), 400).tolist()
    keys = _filter(32)
    batches = _batches(codes, "a.csv", 40)
    before = [_buffer_addresses(batch.table) for batch in batches]
    passed = [keys.apply(batch) for batch in batches]
    holding = [k for k, batch in enumerate(passed) if batch.rows_in < 40]
    assert holding  # the filter held some rows
    for k in holding:
        assert _buffer_addresses(passed[k].table) <= before[k]  # slices of the batch read, nothing copied
        assert passed[k].table["uscc"].to_pylist() == [codes[row - 2] for row in passed[k].rows.tolist()]
        assert passed[k].table["untreated_outfalls"].to_pylist() == [(row - 2) % 40 for row in passed[k].rows.tolist()]


@pytest.mark.parametrize("sliced", [0, 1 << 20])
def test_many_rows_held_from_a_batch_are_dropped_alike_copied_or_sliced(monkeypatch, sliced):
    # more rows held than SLICED_ROWS: the batch is filtered (a copy); the same rows either way
    monkeypatch.setattr(_types, "SLICED_ROWS", sliced)
    rng = np.random.default_rng(14)
    unique = usccs(rng, 700).tolist()
    codes = [*unique[:500], *[unique[k] for k in rng.integers(0, 500, 300)], *unique[500:]]  # 300 repeats
    keys = _filter(1 << 13)
    passed = [keys.apply(batch) for batch in _batches(codes, "a.csv", 400)]
    held = list(keys.end()[0])
    assert _account([*passed, *held]) == (1000, 700, 300)
    first = {}
    for row, code in enumerate(codes):
        first.setdefault(code, row + 2)
    scored = [row for batch in [*passed, *held] for row in batch.rows.tolist()]
    assert sorted(scored) == sorted(first.values())
    assert [batch.table["uscc"].to_pylist() for batch in passed] == [
        [codes[row - 2] for row in batch.rows.tolist()] for batch in passed]
    # a repeat whose first row lies in its own batch is rejected with that batch, not held to the end
    in_own_batch = 0
    for k, batch in enumerate(passed):
        span = range(2 + 400 * k, 2 + 400 * (k + 1))
        same = {row + 2 for row, code in enumerate(codes) if row + 2 in span and first[code] != row + 2
                and first[code] in span}
        assert same <= {r.row for r in batch.rejects}
        in_own_batch += len(same)
    assert in_own_batch > 16  # more than numpy compares one by one: the top bits' path
    rejects = [(r.row, r.reason) for batch in [*passed, *held] for r in batch.rejects]
    assert sorted(rejects) == sorted(
        (row + 2, f"duplicate uscc '{code}': first at row {first[code]} of a.csv (one enterprise, one row)")
        for row, code in enumerate(codes) if first[code] != row + 2)


@pytest.mark.parametrize("source", ["a.csv", "/data/2012-04 registry 3.csv", "o'brien 7's list.csv", "区县 2 'x.csv"])
@pytest.mark.parametrize("policy", ["reject", "last"])
def test_a_duplicates_reason_class_worked_out_once_is_the_class_of_its_own_reason(source, policy):
    """The filter works out a USCC duplicate's reason class once per pair of files, not by two
    regular expressions per reject: it must be what engine/_scored.reason_class makes of each
    reject's own reason, whatever the rows and keys, and whatever quotes or digits the file
    names hold (the summary counts rejects by it)."""
    from ecorules.engine._scored import reason_class

    codes = usccs(np.random.default_rng(8), 120).tolist()
    codes = codes + codes[:60:3] + codes[7:9]  # later rows repeating earlier ones, of many keys
    keys = DuplicateFilter(FACT, None, policy, POLICIES.facts, seen=SeenUsccs(words=64))
    rejects = [r for b in [*(keys.apply(b) for b in _batches(codes, source, 25)), *keys.end()[0]] for r in b.rejects]
    if policy == "last":  # the census path: --duplicates last decides by a first pass, not as the rows come
        rejects = [keys._reject(source, row, "uscc", code, (source, 2 + row)) for row, code in enumerate(codes[:30])]
    assert len(rejects) >= 20
    assert all(r.reason_class is not None and r.reason_class == reason_class(r.reason) for r in rejects)
    assert len({r.reason for r in rejects}) == len(rejects)  # every reason distinct, one class


def test_a_reason_class_is_left_to_the_scorer_for_a_key_other_than_a_uscc():
    kind_key = POLICIES.facts["district"]
    keys = DuplicateFilter(kind_key, None, "reject", POLICIES.facts)
    reject = keys._reject("a.csv", 9, "所属区县", "金水区", ("a.csv", 3))
    assert reject.reason_class is None
