"""The list state compares a partition of subjects at a time (engine/_partitions.py): the
same entries, ids, rows and chunks as when every entry is compared at once."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine import _lists
from ecorules.engine._lists import lists_as_of
from ecorules.engine._nightly import run_nightly
from ecorules.engine._partitions import Partitions, in_order, partition_of
from nightly_data import usccs
from test_list_entries import POLICIES, write

HEADER = "uscc,name,district,industrial,untreated_outfalls,direct_discharge_cases,illegal_discharge_cases,high_pollution,high_energy"


def stored(db) -> tuple[list, list]:
    connection = sqlite3.connect(db)
    try:
        return (connection.execute("SELECT * FROM list_state ORDER BY id").fetchall(),
                connection.execute("SELECT first_id, n, run_id, rule_id, text_id, started, rows FROM list_chunks "
                                   "ORDER BY first_id").fetchall())
    finally:
        connection.close()


def test_entries_kept_and_ended_alike_when_compared_by_partitions(tmp_path, monkeypatch):
    codes = usccs(np.random.default_rng(6), 60).tolist()

    def registry(path, listed):  # listed(k): whether row k's facts put it on the lists
        lines = [f"{c},示例,金水区,true,{k % 3},{k % 2 if listed(k) else 0},{k % 4 if listed(k) else 0},"
                 f"{'true' if listed(k) and k % 5 else 'false'},false" for k, c in enumerate(codes)]
        path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
        return path

    first = registry(tmp_path / "first.csv", lambda k: k < 45)
    second = registry(tmp_path / "second.csv", lambda k: k >= 20)  # some no longer justified, others new
    states = []
    for per_partition in (_lists.ENTRIES_PER_PARTITION, 7):
        monkeypatch.setattr(_lists, "ENTRIES_PER_PARTITION", per_partition)
        db = tmp_path / f"out-{per_partition}.sqlite"
        run_nightly(first, db, as_of=dt.date(2012, 4, 14), progress=False)
        summary = run_nightly(second, db, as_of=dt.date(2012, 5, 14), progress=False)
        states.append((summary.lists, lists_as_of(db, dt.date(2012, 5, 14)), stored(db)))
    assert states[0] == states[1]
    report = states[0][1]
    assert report["on_list"] and report["ended"]  # the second run kept, entered and ended entries


def test_dated_entries_lifts_and_expiries_alike_by_partitions_and_chunks_cut_alike(tmp_path, monkeypatch):
    """Entries with a start and an end, lifted, expiring and entered-and-ended in one run, over
    three runs; chunks of 5 entries so that a rule's entries span several partitions' parts;
    the chunks read a few entries at a time from pieces of their text."""
    codes = [str(u) for u in usccs(np.random.default_rng(11), 90)]

    def registry(path, shift):
        rows = []
        for k, code in enumerate(codes):
            violated = (k + shift) % 4 != 0
            decided = f"2012-{1 + (k + shift) % 12:02d}-{1 + k % 28:02d}" if violated and k % 3 else None
            rectified = "2013-02-01" if decided and k % 7 == shift else None
            rows.append((code, "金水区" if k % 2 else "二七区", int(violated), decided, rectified))
        return write(path, rows)

    monkeypatch.setattr(_lists, "ENTERED_CHUNK", 5)
    monkeypatch.setattr(_lists, "ENTERED_ARRAYS_CHUNK", 3)  # entries with a start or end of their own: 3 a chunk
    states = []
    for per_partition in (_lists.ENTRIES_PER_PARTITION, 9):
        monkeypatch.setattr(_lists, "ENTRIES_PER_PARTITION", per_partition)
        if per_partition == 9:  # and the stored chunks read 2 entries at a time, from pieces of 30 characters
            monkeypatch.setattr(_lists, "PIECE_ENTRIES", 2)
            monkeypatch.setattr(_lists, "PIECE_VALUES", 3)
            monkeypatch.setattr(_lists, "PIECE_CHARACTERS", 30)
            monkeypatch.setattr(_lists, "JUSTIFIED_AT_ONCE", 5)  # pieces gathered 5 entries or more at a time
        db = tmp_path / f"out-{per_partition}.sqlite"
        counts = [run_nightly(registry(tmp_path / f"r{shift}.csv", shift), db, policies=POLICIES, as_of=as_of,
                              progress=False).lists
                  for shift, as_of in ((0, dt.date(2012, 12, 31)), (1, dt.date(2013, 3, 1)), (2, dt.date(2013, 9, 1)))]
        states.append((counts, stored(db)))
        assert (_lists._partition_count(sqlite3.connect(db), 3) > 1) == (per_partition < 1000)
    assert states[0] == states[1]
    rows, chunks = states[0][1]
    assert {r[9] for r in rows} >= {"expired", "lifted", "no_longer_justified"}
    assert len(chunks) > 10 and max(c[1] for c in chunks) == 5
    assert max(c[1] for c in chunks if c[6].startswith("[[")) == 3


def test_partitions_of_a_subject_are_one_and_spread():
    codes = pa.array([str(u) for u in usccs(np.random.default_rng(3), 5000)] + ["金水区", "x", ""])
    of = partition_of(codes, 7)
    assert of.tolist() == partition_of(codes.take(pa.array(np.arange(len(codes)))), 7).tolist()
    assert set(of.tolist()) == set(range(7))
    counts = np.bincount(of[:5000], minlength=7)
    assert counts.min() > 0.8 * counts.mean()


def test_in_order_merges_sorted_partitions_a_batch_at_a_time():
    rng = np.random.default_rng(5)
    keys = rng.permutation(150)
    cuts = np.sort(rng.choice(np.arange(1, 150), 3, replace=False))
    with Partitions(4) as parts:
        for p, mine in enumerate(np.split(keys, cuts)):
            parts.put("entered", p, pa.table({"order": np.sort(mine), "p": np.full(len(mine), p)}), 3)
        merged = pa.concat_tables(in_order([parts.batches("entered", p) for p in range(4)], "order"))
    assert merged["order"].to_pylist() == list(range(150))
    assert sorted(zip(merged["order"].to_pylist(), merged["p"].to_pylist(), strict=True)) == sorted(
        (k, p) for p, mine in enumerate(np.split(keys, cuts)) for k in mine.tolist())


def test_merge_of_entries_of_one_key_is_the_group_by_it_replaces():
    """_merge sorts instead of Table.group_by (which imports Acero and pandas): per key the
    least case and start, any dated, the greatest planned end unless one is open, the least
    text order and seq, as the group_by gave."""
    rng = np.random.default_rng(4)
    n = 400
    maybe = lambda values: [v if rng.random() < 0.7 else None for v in values]  # noqa: E731
    table = pa.table({
        "uscc": pa.array(rng.choice(list("ABCDEFGHJKLMNPQRTUWXY"), n)), "rule_id": pa.array(rng.integers(1, 3, n)),
        "tag": pa.array(rng.choice(["", "c1", "c2"], n)), "case_id": pa.array(maybe(rng.choice(["x", "y", "z"], n).tolist())),
        "started": pa.array(rng.choice(["2012-01-01", "2012-05-01", "2013-01-01"], n)), "dated": pa.array(rng.random(n) < 0.3),
        "planned_end": pa.array([v if rng.random() < 0.97 else None for v in rng.choice(["2013-06-30", "2014-01-01"], n)]),
        "text_id": pa.array(np.zeros(n, np.int64)), "text_order": pa.array(rng.integers(0, 5, n) << 32 | rng.integers(1, 9, n)),
        "seq": pa.array(rng.permutation(n))})
    merged = _lists._merge(table)
    grouped = table.group_by(["uscc", "rule_id", "tag"], use_threads=False).aggregate(
        [("case_id", "min"), ("started", "min"), ("dated", "any"), ("planned_end", "max"), ("planned_end", "count"),
         ("uscc", "count"), ("text_order", "min"), ("seq", "min")])
    expected = {}
    for row in grouped.to_pylist():
        open_ended = row["planned_end_count"] < row["uscc_count"]
        expected[row["uscc"], row["rule_id"], row["tag"]] = (
            row["case_id_min"], row["started_min"], row["dated_any"], None if open_ended else row["planned_end_max"],
            row["text_order_min"] & 0xFFFFFFFF, row["text_order_min"], row["seq_min"])
    got = {(r["uscc"], r["rule_id"], r["tag"]): (r["case_id"], r["started"], r["dated"], r["planned_end"], r["text_id"],
                                                 r["text_order"], r["seq"]) for r in merged.to_pylist()}
    assert merged.num_rows == len(got) == len(expected) and got == expected
    assert any(v[3] is None for v in got.values()) and any(v[0] is None for v in got.values())


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_chunk_read_in_pieces_is_its_text_whatever_the_cuts(kind, tmp_path, request):
    """text_pieces of both stores: pieces of a few bytes cut through the three bytes of a
    Chinese character and yet join into the stored text, of a sanction chunk (by the row
    sanction_chunk_rows names) and of list_chunks (by first_id); an empty text is no
    piece; a row that is not there is an error, not an empty text."""
    from ecorules.engine import store

    db = request.getfixturevalue("postgres_db") + "&schema=pieces" if kind == "postgresql" else tmp_path / "pieces.sqlite"
    texts = ['["91410100816877083Q","91410105MAR9NRG48U"]', json.dumps([["91410100816877083Q", "案件 甲-1", "2013-01-15", None]] * 7,
                                                                       ensure_ascii=False), ""]
    connection = store.connect(db)
    sql = store.dialect(connection)
    try:
        run_id = store.start_run(connection, as_of=dt.date(2013, 6, 30), source="test", policy_fingerprint="test",
                                 policies=[], version="test")
        connection.execute("BEGIN IMMEDIATE")  # (a PostgreSQL cursor's lifetime, and a ctid's)
        for text in texts:
            connection.execute(store.INSERT_SANCTIONS, (run_id, 0, text))
        rows = sql.sanction_chunk_rows(connection, run_id)
        assert len(rows) == len(texts)
        connection.execute("INSERT INTO list_rules (id, list, policy, rule) VALUES (1, 'blacklist', 'p', 'r')")
        connection.execute("INSERT INTO list_texts (id, version, reason, citation) VALUES (1, '1', '理由', '')")
        connection.execute("INSERT INTO list_chunks (first_id, n, run_id, rule_id, text_id, started, rows) "
                           "VALUES (11, 7, ?, 1, 1, '2013-06-30', ?)", (run_id, texts[1]))
        for size in (1, 2, 5, 64, 1 << 20):
            for (_, row), text in zip(rows, texts, strict=True):
                pieces = list(sql.text_pieces(connection, "sanction_chunks", "usccs", row, size))
                assert "".join(pieces) == text and len(pieces) > len(text.encode()) // size  # (a piece per cut, at least)
            assert "".join(sql.text_pieces(connection, "list_chunks", "rows", 11, size)) == texts[1]
        with pytest.raises((store.StoreError, sqlite3.Error)):
            list(sql.text_pieces(connection, "list_chunks", "rows", 12, 64))
    finally:
        connection.execute("ROLLBACK")
        connection.close()
