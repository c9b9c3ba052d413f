"""A first run of plain list entries into a store without any (a case run's lists, a
registry's first night) is entered straight from its sanctions' codes (engine/_lists.py
``_enter_at_once``): the same chunks, ids and answers as the comparison gives, and the
comparison wherever the run is not such a run."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3

import numpy as np
import pytest
from ecorules.engine import _lists, store
from ecorules.engine._nightly import run_nightly
from nightly_data import usccs
from test_list_entries import POLICIES, write

AS_OF = dt.date(2013, 6, 30)
CODES = [str(u) for u in usccs(np.random.default_rng(23), 40)]


def _stored(db) -> dict[str, list]:
    connection = sqlite3.connect(db)
    try:
        return {table: connection.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in ("list_chunks", "list_state", "list_scopes", "list_entries")}
    finally:
        connection.close()


def _taken(monkeypatch) -> list[bool]:
    """What each call of the first-run path answered."""
    answers: list[bool] = []
    at_once = _lists._enter_at_once

    def spied(*args):
        answers.append(at_once(*args))
        return answers[-1]

    monkeypatch.setattr(_lists, "_enter_at_once", spied)
    return answers


def _two_plain_lists(folder) -> object:
    """The lists policy with its blacklist undated and named ``zblack``: two lists of plain
    entries, the first rule's list numbered after the second's (ids go by list, then rule)."""
    text = (POLICIES / "lists.yaml").read_text(encoding="utf-8")
    for dated in ("        from: decided\n", "        until: add_years(decided, 1)\n"):
        assert dated in text
        text = text.replace(dated, "")
    folder.mkdir()
    text = text[:text.index("\ntests:")] + "\n"  # (its own cases are the dated blacklist's)
    (folder / "lists.yaml").write_text(text.replace("blacklist", "zblack"), encoding="utf-8")
    return folder


@pytest.mark.parametrize("kind", ["plain", "two plain lists", "dated"])
def test_a_first_run_enters_what_the_comparison_enters(tmp_path, monkeypatch, kind):
    # plain: the watch list only (no dates); two plain lists: blacklist entries undated too;
    # dated: the blacklist's entries have their own start and end
    dated = kind != "plain"
    policies = _two_plain_lists(tmp_path / "policy") if kind == "two plain lists" else POLICIES
    registry = write(tmp_path / "registry.csv", [
        (code, "金水区", 1 + k % 3, f"2012-{1 + k % 12:02d}-15" if dated and k % 2 else None, None)
        for k, code in enumerate(CODES)])
    monkeypatch.setattr(_lists, "ENTERED_CHUNK", 7)  # several chunks of a list, one cut short
    monkeypatch.setattr(_lists, "ENTERED_ARRAYS_CHUNK", 7)
    monkeypatch.setattr(_lists, "ENTRIES_PER_PARTITION", 9)  # the comparison in several partitions
    found = {}
    for way in ("at once", "compared"):
        with monkeypatch.context() as patched:
            if way == "compared":
                patched.setattr(_lists, "_enter_at_once", lambda *_: False)
            else:
                answers = _taken(patched)
            db = tmp_path / f"{way.replace(' ', '-')}.sqlite"
            first = run_nightly(registry, db, policies=policies, as_of=AS_OF, progress=False)
            later = run_nightly(registry, db, policies=policies, as_of=AS_OF + dt.timedelta(days=1), progress=False)
            found[way] = _stored(db), first.lists, later.lists
    assert answers == [kind != "dated", False]  # the second night compares: the store holds entries
    assert found["at once"] == found["compared"]
    chunks = found["at once"][0]["list_chunks"]
    assert sum(n for _, n, *_ in chunks) == len(CODES) + (len(CODES) // 2 if dated else 0)  # watch, and blacklist
    assert len(chunks) > 2


def test_a_key_twice_in_the_run_is_merged_by_the_comparison(tmp_path, monkeypatch):
    registry = write(tmp_path / "registry.csv", [(code, "金水区", 1, None, None) for code in CODES])
    made = tmp_path / "made.sqlite"
    run = run_nightly(registry, made, policies=POLICIES, as_of=AS_OF, progress=False)
    found = {}
    for way in ("at once", "compared"):
        db = tmp_path / f"{way.replace(' ', '-')}.sqlite"
        shutil.copy(made, db)
        connection = store.connect(db)
        connection.execute("BEGIN")
        for table in ("list_chunks", "list_scopes", "list_state"):
            connection.execute(f"DELETE FROM {table}")
        # every sanction of the run twice: each entry's key twice
        connection.execute("INSERT INTO sanction_chunks (run_id, slot, usccs) SELECT run_id, slot, usccs FROM sanction_chunks")
        with monkeypatch.context() as patched:
            if way == "compared":
                patched.setattr(_lists, "_enter_at_once", lambda *_: False)
            else:
                answers = _taken(patched)
            counts = _lists.update_entries(connection, run.run_id, AS_OF, cases_judged=False)
        connection.execute("COMMIT")
        connection.close()
        found[way] = counts, _stored(db)
    assert answers == [False]
    assert found["at once"] == found["compared"]
    assert found["at once"][0]["entered"] == len(CODES)


def test_a_first_run_of_more_entries_than_it_holds_at_once_is_compared(tmp_path, monkeypatch):
    registry = write(tmp_path / "registry.csv", [(code, "金水区", 1, None, None) for code in CODES])
    monkeypatch.setattr(_lists, "FIRST_RUN_AT_ONCE", len(CODES) - 1)
    answers = _taken(monkeypatch)
    run = run_nightly(registry, tmp_path / "results.sqlite", policies=POLICIES, as_of=AS_OF, progress=False)
    assert answers == [False] and run.lists["watch"] == len(CODES)
