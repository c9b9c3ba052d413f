"""The compiled chunk writer of case findings (engine/_chunk_rows.pyx): what it lays out is
what json.loads and SQLite's JSON functions read back, row by row, whatever the texts hold, each
element where the store's case layout (``store.CASE_PLACES``, version 14) says the views read it."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine import store
from ecorules.engine._chunk_rows import factor_rows, finding_rows, scan_texts
from ecorules.rules._arrow import string_buffers


def texts(values: list[str | None], index: list[int] | None = None, large: bool = False) -> tuple:
    offsets, data = string_buffers(pa.array(values, pa.large_string() if large else pa.string()))
    return offsets.copy(), data.copy(), None if index is None else np.asarray(index, np.int64)


def test_rows_are_read_back_as_written_with_escapes_and_any_text():
    odd = ['plain', 'a "quote"', "back\\slash", "tab\tnew\nline\r", "\x01\x1f\x7f", "金水区 二七区", "emoji 😀"]
    rng = np.random.default_rng(5)
    n = 500
    usccs, cases, payers = rng.integers(0, len(odd), n), rng.integers(0, len(odd), n), rng.integers(0, 2, n)
    amounts = rng.integers(-10**15, 10**15, n)
    amounts[:3] = [0, np.iinfo(np.int64).max, np.iinfo(np.int64).min]
    status = rng.integers(0, 3, n).astype(np.int8)
    by = np.where(status == 1, rng.integers(0, len(odd), n), -1)
    assessed = np.where(status == 2, rng.integers(1, 10**6, n), 0)
    act = np.where((status == 0) & (rng.random(n) < 0.5), rng.integers(0, 2, n), -1)
    decided = np.where((status == 0) & (rng.random(n) < 0.3), rng.integers(0, 2, n), -1)
    note = np.where(rng.random(n) < 0.1, rng.integers(0, len(odd), n), -1)
    supersedes = np.where((status == 0) & (rng.random(n) < 0.2), rng.integers(1, 99, n), 0)
    reason = np.where(supersedes > 0, rng.integers(1, 3, n), 0).astype(np.int8)
    text = finding_rows(texts(odd, usccs), amounts, texts(["金水区", "P"], payers, large=True),
                        texts(odd, cases), status=status, by=texts(odd, by), assessed_in=assessed,
                        act=texts(["A1", 'A"2'], act), decided=texts(["2025-06-01", "2026-01-10"], decided),
                        note=texts(odd, note), supersedes=supersedes, reason=reason)
    rows = json.loads(text)
    assert len(rows) == n
    at = store.CASE_PLACES
    for i, row in enumerate(rows):
        values = {"uscc": odd[usccs[i]], "amount": int(amounts[i]), "payer": ["金水区", "P"][payers[i]],
                  "case_id": odd[cases[i]], "status": int(status[i]) or None,
                  "superseded_by": odd[by[i]] if by[i] >= 0 else None, "assessed_in": int(assessed[i]) or None,
                  "law_note": odd[note[i]] if note[i] >= 0 else None,
                  "act_id": ["A1", 'A"2'][act[i]] if act[i] >= 0 else None,
                  "decided": ["2025-06-01", "2026-01-10"][decided[i]] if decided[i] >= 0 else None,
                  "supersedes": int(supersedes[i]) or None, "reason": int(reason[i]) or None}
        full = [None] * len(at)
        for name, value in values.items():
            full[at[name]] = value
        last = max([at["case_id"]] + [k for k, v in enumerate(full) if v is not None])
        assert row == full[:last + 1]  # nothing after the last present element; null before it
        assert {store.STATUS_CODES.get(row[at["status"]], "imposed") if len(row) > at["status"] else "imposed"} == {
            [None, "superseded", "already_assessed"][status[i]] or "imposed"}
    # SQLite reads the same values (the findings view's ->>)
    connection = sqlite3.connect(":memory:")
    read = connection.execute(f"SELECT e.value ->> 0, e.value ->> {at['case_id']}, e.value ->> {at['act_id']} "
                              "FROM json_each(CAST(? AS TEXT)) e", (text,)).fetchall()
    assert read == [(r[0], r[at["case_id"]], r[at["act_id"]] if len(r) > at["act_id"] else None) for r in rows]


def test_an_enterprise_paying_its_own_fine_is_left_out_and_a_payer_written_after_the_case():
    text = finding_rows(texts(["U1", "U2"], [1, 0]), np.array([5, 0]), None, texts(["C1", "C2"]))
    assert text == b'[["U2",5,"C1"],["U1",0,"C2"]]'
    paid = finding_rows(texts(["U1", "U2"], [1, 0]), np.array([5, 0]), texts(["P"], [0, 0]), texts(["C1", "C2"]),
                        act=texts(["A1"], [-1, 0]))
    assert paid == b'[["U2",5,"C1","P"],["U1",0,"C2","P","A1"]]'
    assert finding_rows(texts(["U1"]), np.zeros(0, np.int64), None, texts(["C1"], [])) == b"[]"


def test_a_nul_is_escaped():
    assert json.loads(finding_rows(texts(["a\x00b"]), np.array([1]), None, texts(["C"])))[0][0] == "a\x00b"


@pytest.mark.parametrize("column", ["uscc", "payer", "case"])
def test_a_finding_without_uscc_payer_or_case_id_is_refused(column):
    columns = {"uscc": texts(["U1"], [0, 0]), "payer": texts(["P"], [0, 0]), "case": texts(["C1"], [0, 0])}
    columns[column] = (*columns[column][:2], np.array([0, -1], np.int64))
    with pytest.raises(ValueError, match="empty uscc, payer or case_id"):
        finding_rows(columns["uscc"], np.array([1, 2]), columns["payer"], columns["case"])


def test_an_index_outside_its_texts_is_refused():
    with pytest.raises(ValueError, match="outside"):
        finding_rows(texts(["U1"], [1]), np.array([1]), None, texts(["C1"], [0]))


@pytest.mark.parametrize("values", [["C1", "C2"], ['C"1', "C2"], ["案1", "C2"]])
def test_texts_scanned_once_are_written_as_texts_scanned_per_call(values):
    offsets, data, _ = texts(values)
    scan = scan_texts(offsets, data)
    assert (scan >= 256) == any('"' in v for v in values) and (scan & 128 > 0) == any(not v.isascii() for v in values)
    index = np.array([1, 0, 1], np.int64)
    once = finding_rows(texts(["U"], [0, 0, 0]), np.array([1, 2, 3]), None, (offsets, data, index, scan))
    assert once == finding_rows(texts(["U"], [0, 0, 0]), np.array([1, 2, 3]), None, (offsets, data, index))
    assert [r[store.CASE_PLACES['case_id']] for r in json.loads(once)] == [values[1], values[0], values[1]]


def test_a_text_that_is_not_utf8_is_refused_as_a_decode_refused_it():
    """The chunk is stored as the text its bytes spell (no str is made of it): a text column
    holding a broken character is refused, not stored."""
    for broken in (b"\xe9\x87", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"a\xff"):
        offsets, data = np.array([0, len(broken)], np.int32), np.frombuffer(broken, np.uint8).copy()
        with pytest.raises(ValueError, match="not UTF-8"):
            finding_rows((offsets, data, None), np.array([1]), None, texts(["C"]))
        assert scan_texts(offsets, data) & 512
        with pytest.raises(ValueError, match="not UTF-8"):  # (texts scanned once per run)
            finding_rows(texts(["U"]), np.array([1]), None, (offsets, data, None, scan_texts(offsets, data)))
        with pytest.raises(ValueError, match="not UTF-8"):
            factor_rows((offsets, data, None), [b'"a":'], [np.array([1])], [None])
    fine = "金 😀 é".encode()
    offsets, data = np.array([0, len(fine)], np.int32), np.frombuffer(fine, np.uint8).copy()
    assert json.loads(finding_rows((offsets, data, None), np.array([1]), None, texts(["C"]))) == [["金 😀 é", 1, "C"]]


@pytest.mark.parametrize("statement,plain", [
    (store.INSERT_FINDINGS_UTF8, store.INSERT_FINDINGS),
    # (the str form of the factors' insert, which the store no longer ships)
    (store.INSERT_FACTORS_UTF8, "INSERT INTO factor_chunks (run_id, slot, rows) VALUES (?, ?, ?)"),
])
def test_rows_given_as_utf8_bytes_are_stored_as_the_same_text(tmp_path, statement, plain):
    """What the store keeps of a chunk given as bytes is what it kept of the str: TEXT, the
    same bytes, read alike by SQLite's JSON functions."""
    text = '[["金水区 \\"q\\"",5,"C1"],["U😀",-7,"C2",null,"A1"]]'
    connection = store.connect(tmp_path / "s.sqlite")
    import datetime as dt

    run = store.start_run(connection, as_of=dt.date(2026, 1, 1), source="s", policy_fingerprint="p", policies=[],
                          version="v")
    connection.execute(plain, (run, 0, text))
    connection.execute(statement, (run, 1, text.encode()))
    table = "finding_chunks" if "finding" in statement else "factor_chunks"
    stored = connection.execute(f"SELECT typeof(rows), CAST(rows AS BLOB), json_array_length(rows) FROM {table} "
                                "ORDER BY slot").fetchall()
    assert stored[0] == stored[1] == ("text", text.encode(), 2)


@pytest.mark.parametrize("keys", [["C1", "C2", "C3"], ["C1", 'C"2', "案3", "C\n4", "C\x015"]])
def test_factor_rows_are_the_rows_arrow_joined_byte_for_byte(keys):
    """(store version 13) The factor chunk laid out in C is the text ``_factors.joined_rows``
    joined with Arrow: names JSON-quoted, a member not shown left out, case ids escaped."""
    from ecorules.engine.cases._factors import joined_rows

    rng = np.random.default_rng(len(keys))
    n = 700
    index = rng.integers(0, len(keys), n)
    members = [("prior_2y", rng.integers(-10**15, 10**15, n), None),
               ('level "é"', rng.integers(0, 6, n), rng.random(n) < 0.6), ("x", rng.integers(-3, 3, n), rng.random(n) < 0.5)]
    members[0][1][:2] = [np.iinfo(np.int64).min, np.iinfo(np.int64).max]
    arrow = joined_rows(members, pa.array(keys).take(pa.array(index)))
    expected = ("[" + ",".join(arrow.to_pylist()) + "]").encode()
    offsets, data, _ = texts(keys)
    got = factor_rows((offsets, data, index.astype(np.int64), scan_texts(offsets, data)),
                      [json.dumps(name).encode() + b":" for name, _, _ in members], [v for _, v, _ in members],
                      [shown for _, _, shown in members])
    assert got == expected
    assert [row[0] for row in json.loads(got)] == [keys[i] for i in index]
    assert factor_rows(texts(["C"], []), [b'"a":'], [np.zeros(0, np.int64)], [None]) == b"[]"


def test_a_factor_row_whose_members_are_all_hidden_is_an_empty_object():
    got = factor_rows(texts(["C1", "C2"]), [b'"a":'], [np.array([1, 2])], [np.array([False, True])])
    assert json.loads(got) == [["C1", {}], ["C2", {"a": 2}]]
    with pytest.raises(ValueError, match="without a case_id"):
        factor_rows(texts(["C1"], [0, -1]), [b'"a":'], [np.array([1, 2])], [None])
