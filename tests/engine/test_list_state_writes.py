"""The list state's rows of a run are gathered and written by one statement at the end
(store.sqlite.finish_replacing): the same entries, ids, rows and answers over several
nights as when each row was written as it came (INSERT OR REPLACE a row, as before)."""

from __future__ import annotations

import datetime as dt
import sqlite3

import numpy as np
from ecorules.engine import _lists
from ecorules.engine._lists import lists_as_of
from ecorules.engine._nightly import run_nightly
from ecorules.engine.store import sqlite as store_sqlite
from nightly_data import usccs
from test_list_entries import POLICIES, write
from test_list_lookup import stored

NIGHTS = (dt.date(2012, 12, 31), dt.date(2013, 3, 1), dt.date(2013, 9, 1), dt.date(2014, 2, 1))


def _row_at_a_time(monkeypatch) -> list[int]:
    """The writes of before: each row replaced as it comes. Returns the rows' count, per call."""
    calls: list[int] = []

    def add(db, table, columns, rows):
        calls.append(len(rows))
        db.executemany(f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                       rows)

    monkeypatch.setattr(store_sqlite, "begin_replacing", lambda *_: None)
    monkeypatch.setattr(store_sqlite, "add_replacing", add)
    monkeypatch.setattr(store_sqlite, "finish_replacing", lambda *_: None)
    return calls


def test_nights_of_entries_written_at_once_as_when_written_a_row_at_a_time(tmp_path, monkeypatch):
    codes = [str(u) for u in usccs(np.random.default_rng(17), 120)]

    def registry(path, shift):  # each night some entries go, come, start later, expire or are lifted
        rows = []
        for k, code in enumerate(codes):
            violated = (k + shift) % 4 != 0
            decided = f"2012-{1 + (k + shift) % 12:02d}-{1 + k % 28:02d}" if violated and k % 3 else None
            rectified = "2013-02-01" if decided and k % 7 == shift else None
            rows.append((code, "金水区" if k % 2 else "二七区", int(violated), decided, rectified))
        return write(path, rows)

    monkeypatch.setattr(_lists, "ENTRIES_PER_PARTITION", 11)  # several partitions' rows gathered
    states, calls = [], []
    for way in ("at once", "a row at a time"):
        with monkeypatch.context() as patched:
            if way == "a row at a time":
                calls = _row_at_a_time(patched)
            db = tmp_path / f"{way.replace(' ', '-')}.sqlite"
            counts = [run_nightly(registry(tmp_path / f"r{shift}.csv", shift), db, policies=POLICIES, as_of=as_of,
                                  progress=False).lists for shift, as_of in enumerate(NIGHTS)]
            answers = [lists_as_of(db, day) for day in (*NIGHTS, dt.date(2013, 1, 15), dt.date(2015, 1, 1))]
            for answer in answers:
                answer.pop("warnings")
            states.append((counts, stored(db), answers))
    assert states[0] == states[1]
    rows = states[0][1][0]
    assert {r[9] for r in rows} >= {"expired", "lifted", "no_longer_justified"}  # every kind of row written
    assert sum(1 for c in calls if c) > len(NIGHTS)  # the reference wrote rows in several parts a night


def test_a_row_gathered_twice_is_written_as_gathered_last(tmp_path):
    db = sqlite3.connect(tmp_path / "t.sqlite", isolation_level=None)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, w TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?, ?)", [(1, "a", "x"), (2, "b", "y"), (3, "c", "z")])
    db.execute("BEGIN")
    store_sqlite.begin_replacing(db, "t", ("id", "v", "w"))
    store_sqlite.add_replacing(db, "t", ("id", "v", "w"), [(3, "c2", None), (5, "e", "q")])
    store_sqlite.add_replacing(db, "t", ("id", "v", "w"), [(1, "a2", "x2"), (3, "c3", "z3")])
    assert db.execute("SELECT * FROM t ORDER BY id").fetchall() == [(1, "a", "x"), (2, "b", "y"), (3, "c", "z")]
    store_sqlite.finish_replacing(db, "t", ("id", "v", "w"), ("id",))
    db.execute("COMMIT")
    assert db.execute("SELECT * FROM t ORDER BY id").fetchall() == [(1, "a2", "x2"), (2, "b", "y"), (3, "c3", "z3"),
                                                                     (5, "e", "q")]
    assert db.execute("PRAGMA main.cache_size").fetchone()[0] == -2000  # as it was
