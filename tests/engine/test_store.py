"""The results database: schema, WAL, one transaction per run, stale runs, the run lock."""

from __future__ import annotations

import datetime as dt
import fcntl
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ecorules.engine import store

AS_OF = dt.date(2012, 4, 14)

# The columns the issue promises other systems (and the tests) can read.
PROMISED = {
    "runs": {"id", "started", "finished", "status", "input_fingerprint", "policies", "ecorules_version",
             "rows_in", "rows_scored", "rows_rejected", "total_yuan"},
    "findings": {"run_id", "uscc", "policy", "rule", "kind", "amount_yuan", "payer", "citation"},
    "district_totals": {"run_id", "district", "deduction_yuan", "cases"},
    "sanctions": {"run_id", "uscc", "list", "rule"},
    "rejects": {"run_id", "source", "row", "column", "value", "reason"},
}


def columns(connection, table):
    return {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}


def start(connection, source="r.csv"):
    return store.start_run(connection, as_of=AS_OF, source=source, policy_fingerprint="p" * 64,
                           policies=[{"id": "x", "version": "1", "content_hash": "h"}], version="test")


def test_schema_has_the_promised_tables_and_columns_and_uses_wal(tmp_path):
    connection = store.connect(tmp_path / "r.sqlite")
    for table, promised in PROMISED.items():
        assert promised <= columns(connection, table), table
    for table in store.TABLES:  # what export needs to type every column of the views
        for _, name, declared, *_ in connection.execute(f"PRAGMA table_info({table})"):
            assert declared or name in store.VIEW_COLUMN_TYPES, (table, name)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()
    store.connect(tmp_path / "r.sqlite").close()  # opening again keeps it as it is


def test_a_done_run_must_add_up(tmp_path):
    connection = store.connect(tmp_path / "r.sqlite")
    run_id = start(connection)
    with pytest.raises(sqlite3.IntegrityError):
        connection.execute("UPDATE runs SET status='done', rows_in=3, rows_scored=1, rows_rejected=1 WHERE id=?", (run_id,))
    connection.execute("UPDATE runs SET status='done', rows_in=3, rows_scored=2, rows_rejected=1 WHERE id=?", (run_id,))


def test_a_reader_never_sees_half_a_run(tmp_path):
    path = tmp_path / "r.sqlite"
    connection = store.connect(path)
    run_id = start(connection)
    writer = store.RunWriter(path, run_id)
    reader = sqlite3.connect(path)
    writer.execute(store.INSERT_SANCTION_SLOT, (run_id, 0, "p@1", "blacklist", "rule", "reason", "citation"))
    for k in range(5):
        writer.execute(store.INSERT_SANCTIONS, (run_id, 0, f'["U{k}a", "U{k}b"]'))
    writer.flush()  # the rows are in the writer's open transaction
    seen_during = reader.execute("SELECT count(*) FROM sanctions").fetchone()[0]

    def finish(db):
        db.execute("UPDATE runs SET status='done', rows_in=10, rows_scored=10, rows_rejected=0 WHERE id=?", (run_id,))

    writer.commit(finish)
    assert seen_during == 0
    assert reader.execute("SELECT count(*) FROM sanctions WHERE run_id=?", (run_id,)).fetchone()[0] == 10
    assert reader.execute("SELECT DISTINCT list, rule, policy FROM sanctions").fetchall() == [("blacklist", "rule", "p@1")]
    assert reader.execute("SELECT status FROM runs").fetchone()[0] == "done"


def test_json_bulk_inserts_keep_text_and_integers(tmp_path):
    path = tmp_path / "r.sqlite"
    connection = store.connect(path)
    run_id = start(connection)
    writer = store.RunWriter(path, run_id)
    writer.execute(store.INSERT_FINDING_SLOT, (run_id, 0, "p@1", "r", "fine", "《文件》 第一条"))
    writer.execute(store.INSERT_FINDINGS, (run_id, 0, '[["91410100MA44MPDT7X", 9007199254740993, "金水区"], '
                                                      '["91410100MA44MPDT7X", 2, "91410100MA44MPDT7X"]]'))
    writer.commit(lambda db: None)
    rows = connection.execute(
        "SELECT run_id, uscc, policy, rule, kind, amount_yuan, typeof(amount_yuan), payer, citation FROM findings"
    ).fetchall()
    assert rows == [
        (run_id, "91410100MA44MPDT7X", "p@1", "r", "fine", 9007199254740993, "integer", "金水区", "《文件》 第一条"),
        (run_id, "91410100MA44MPDT7X", "p@1", "r", "fine", 2, "integer", "91410100MA44MPDT7X", "《文件》 第一条"),
    ]


def test_rollback_leaves_nothing(tmp_path):
    path = tmp_path / "r.sqlite"
    connection = store.connect(path)
    run_id = start(connection)
    writer = store.RunWriter(path, run_id)
    writer.execute(store.INSERT_SANCTION_SLOT, (run_id, 0, "p@1", "l", "r", "reason", "citation"))
    writer.execute(store.INSERT_SANCTIONS, (run_id, 0, '["A"]'))
    writer.rollback()
    store.fail_run(connection, run_id, "boom")
    for table in store.RESULT_TABLES:
        assert connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    assert connection.execute("SELECT status, error FROM runs").fetchone() == ("failed", "boom")


def test_writer_errors_reach_the_caller(tmp_path):
    path = tmp_path / "r.sqlite"
    connection = store.connect(path)
    run_id = start(connection)
    writer = store.RunWriter(path, run_id)
    writer.execute("INSERT INTO no_such_table VALUES (?)", (1,))
    with pytest.raises(store.StoreError, match="no_such_table"):
        writer.commit(lambda db: None)


def test_stale_running_runs_are_marked_failed_and_emptied(tmp_path):
    connection = store.connect(tmp_path / "r.sqlite")
    run_id = start(connection)
    connection.execute(store.INSERT_FINDING_SLOT, (run_id, 0, "p", "r", "fine", "c"))
    connection.execute(store.INSERT_FINDINGS, (run_id, 0, '[["U", 1, "U"]]'))
    assert connection.execute("SELECT count(*) FROM findings").fetchone()[0] == 1
    assert store.abandon_stale_runs(connection) == [run_id]
    status, error = connection.execute("SELECT status, error FROM runs").fetchone()
    assert status == "failed" and "interrupted" in error
    assert connection.execute("SELECT count(*) FROM findings").fetchone()[0] == 0
    assert store.abandon_stale_runs(connection) == []


def test_run_lock_is_exclusive_and_released(tmp_path):
    path = tmp_path / "r.sqlite"
    with store.run_lock(path):
        errors = []

        def other():
            try:
                with store.run_lock(path):
                    pass
            except store.StoreError as error:
                errors.append(str(error))

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert errors and "another run" in errors[0]
    with store.run_lock(path):
        assert Path(f"{path}-run.lock").exists()
    assert not Path(f"{path}-run.lock").exists()  # nothing left beside the database


def test_a_lock_file_removed_by_the_holder_that_left_is_not_shared(tmp_path):
    """A run that opened the lock file just before the holder removed it must not lock the
    removed file while a third run locks the new one."""
    path = tmp_path / "r.sqlite"
    lock_path = f"{path}-run.lock"
    with store.run_lock(path):
        stale = open(lock_path, "a+b")  # opened before the holder leaves and removes it
    try:
        with store.run_lock(path):  # the third run: a new file
            fcntl.flock(stale, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the stale file is free, but it is not the lock
            with pytest.raises(store.StoreError, match="another run"):
                with store.run_lock(path):
                    pass
    finally:
        stale.close()


def foreign_database(path: Path) -> Path:
    """An SQLite database of another system: one table of its own, no ecorules tables."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE enterprises (uscc TEXT)")
    connection.commit()
    connection.close()
    return path


def test_an_sqlite_database_of_another_system_is_refused(tmp_path):
    other = foreign_database(tmp_path / "bureau.sqlite")
    with pytest.raises(store.StoreError, match="not an ecorules results database .it has enterprises.; give a new file"):
        store.connect(other)
    tables = sqlite3.connect(other).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("enterprises",)]  # untouched


def test_unwritable_output_is_a_clear_error(tmp_path):
    with pytest.raises(store.StoreError, match="cannot open the results database"):
        store.connect(tmp_path / "no" / "such" / "folder" / "r.sqlite")
    with pytest.raises(store.StoreError, match="is a folder"):
        store.connect(tmp_path)
    not_db = tmp_path / "notes.sqlite"
    not_db.write_bytes(b"these are not the droids" * 100)
    with pytest.raises(store.StoreError):
        store.connect(not_db)


def test_resolve_run(tmp_path):
    connection = store.connect(tmp_path / "r.sqlite")
    first, second = start(connection), start(connection)
    for run_id in (first, second):
        connection.execute("UPDATE runs SET status='done', rows_in=0, rows_scored=0, rows_rejected=0 WHERE id=?", (run_id,))
    third = start(connection)
    assert store.resolve_run(connection, "latest") == second
    assert store.resolve_run(connection, "previous") == first
    assert store.resolve_run(connection, str(first)) == first
    with pytest.raises(store.StoreError, match="is running"):
        store.resolve_run(connection, third)
    with pytest.raises(store.StoreError, match="no run 99"):
        store.resolve_run(connection, 99)
    with pytest.raises(store.StoreError, match="not a run id"):
        store.resolve_run(connection, "yesterday")


def test_a_killed_run_is_reported_as_interrupted_and_latest_passes_over_it(tmp_path, caplog):
    """After a kill -9, `export --run latest --table runs` gave the dead run, status running,
    and export, changes and lists never said it was interrupted (acceptance walk, issue 11
    point 12). 'latest' is the latest finished run for every table, and readers say so."""
    import csv

    from click.testing import CliRunner
    from ecorules.engine._cli import main
    from ecorules.engine._nightly import run_nightly

    db = tmp_path / "r.sqlite"
    registry = Path(__file__).parent.parent.parent / "examples" / "registry.csv"
    done = run_nightly(registry, db, as_of=AS_OF, progress=False).run_id
    connection = store.connect(db)
    killed = start(connection)  # what a run killed before its commit leaves: a row 'running'
    connection.close()
    runner = CliRunner()
    exported = runner.invoke(main, ["export", "--db", str(db), "--run", "latest", "--table", "runs",
                                    "--out", str(tmp_path / "runs.csv")])
    assert exported.exit_code == 0, exported.output
    with open(tmp_path / "runs.csv", encoding="utf-8") as handle:
        assert [(row["id"], row["status"]) for row in csv.DictReader(handle)] == [(str(done), "done")]
    assert f"run {killed} was interrupted" in caplog.text  # logged: export writes a file, not a report
    report = runner.invoke(main, ["lists", "--db", str(db), "--as-of", "2012-04-14"])
    assert f"warning: run {killed} was interrupted" in report.output
    compared = runner.invoke(main, ["changes", "--db", str(db), "--since", str(done)])
    assert f"warning: run {killed} was interrupted" in compared.output
    # a run in progress (it holds the lock) is not called interrupted
    with store.run_lock(db):
        connection = store.connect(db, readonly=True)
        assert store.interrupted(db, connection) == []
        connection.close()


def test_the_wal_is_synced_while_the_run_is_written_and_nothing_is_committed_before_the_end(tmp_path, monkeypatch):
    """A run's WAL goes to disk as it grows (store.sqlite._WalFlusher), not all at the
    commit's checkpoint; syncing it commits nothing: a reader sees none of the run until it
    ends, and all of it then."""
    from ecorules.engine.store import sqlite as store_sqlite

    path = tmp_path / "r.sqlite"
    connection = store.connect(path)
    run_id = start(connection)
    monkeypatch.setattr(store_sqlite, "WAL_FLUSH_BYTES", 1 << 20)
    synced, seen = [], []
    fdatasync = store_sqlite.os.fdatasync

    def watched(descriptor):  # which file, and what a reader saw at that moment
        synced.append(Path(store_sqlite.os.readlink(f"/proc/self/fd/{descriptor}")).name)
        reader = sqlite3.connect(path)
        seen.append(reader.execute("SELECT count(*) FROM finding_chunks").fetchone()[0])
        reader.close()
        fdatasync(descriptor)

    monkeypatch.setattr(store_sqlite.os, "fdatasync", watched)
    writer = store.RunWriter(path, run_id)
    writer.execute(store.INSERT_FINDING_SLOT, (run_id, 0, "p@1", "r", "fine", "c"))
    chunk = "[" + ",".join(f'["U{k:017d}",{k},"C{k:09d}"]' for k in range(20_000)) + "]"  # ~0.9 MB
    for _ in range(8):
        writer.execute(store.INSERT_FINDINGS, (run_id, 0, chunk))
    writer.flush()
    waited = time.monotonic() + 30
    while not seen and time.monotonic() < waited:  # (the flusher's thread syncs when it gets the CPU)
        time.sleep(0.01)
    during, seen_during = list(synced), list(seen)

    def finish(db):
        db.execute("UPDATE runs SET status='done', rows_in=1, rows_scored=1, rows_rejected=0 WHERE id=?", (run_id,))

    writer.commit(finish)
    assert during and set(during) == {"r.sqlite-wal"}
    assert set(seen_during) == {0}
    assert connection.execute("SELECT count(*) FROM findings WHERE run_id = ?", (run_id,)).fetchone()[0] == 8 * 20_000


def test_parameters_built_on_the_writers_thread_are_written_and_their_errors_reach_the_caller(tmp_path):
    path = tmp_path / "r.sqlite"
    connection = store.connect(path)
    run_id = start(connection)
    writer = store.RunWriter(path, run_id)
    threads = []

    def built():
        threads.append(threading.current_thread())
        return run_id, 0, '[["U", 1, "C"]]'

    writer.execute(store.INSERT_FINDING_SLOT, (run_id, 0, "p@1", "r", "fine", "c"))
    writer.execute_built(store.INSERT_FINDINGS, built)
    writer.commit(lambda db: None)
    assert threads and threads[0] is not threading.main_thread()
    assert connection.execute("SELECT uscc, case_id FROM findings").fetchall() == [("U", None)]

    run_id = start(connection)
    writer = store.RunWriter(path, run_id)
    writer.execute(store.INSERT_FINDING_SLOT, (run_id, 0, "p@1", "r", "fine", "c"))

    def refused():
        raise ValueError("a finding with an empty uscc, payer or case_id")

    writer.execute_built(store.INSERT_FINDINGS, refused)
    with pytest.raises(ValueError, match="empty uscc"):
        writer.commit(lambda db: None)
    writer.rollback()
    assert connection.execute("SELECT count(*) FROM finding_slots WHERE run_id = ?", (run_id,)).fetchone()[0] == 0


def test_the_wal_flusher_leaves_the_process_s_locks_on_the_store_in_place(tmp_path, monkeypatch):
    """The flusher syncs the WAL alone, never the database file: closing any descriptor of a
    file drops every POSIX lock the process holds on it, and SQLite's locks are on the
    database file (sqlite.org/howtocorrupt.html 2.2). So while a reader of this process holds
    the store open in WAL mode, another process still cannot take it out of WAL mode after
    the flusher has synced again and again."""
    from ecorules.engine.store import sqlite as store_sqlite

    path = tmp_path / "r.sqlite"
    store.connect(path).close()
    synced = []
    fdatasync = store_sqlite.os.fdatasync

    def watched(descriptor):
        synced.append(Path(store_sqlite.os.readlink(f"/proc/self/fd/{descriptor}")).name)
        fdatasync(descriptor)

    monkeypatch.setattr(store_sqlite.os, "fdatasync", watched)
    monkeypatch.setattr(store_sqlite, "WAL_FLUSH_BYTES", 4096)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM runs").fetchone()
    flusher = store_sqlite._WalFlusher(path)
    for times in range(1, 4):  # the WAL grown by a page's worth, as a run grows it, three times
        with open(tmp_path / "r.sqlite-wal", "ab") as wal:
            wal.write(b"\0" * 4096)
        flusher.grew()
        waited = time.monotonic() + 30
        while len(synced) < times and time.monotonic() < waited:  # (the flusher's thread syncs when it gets the CPU)
            time.sleep(0.01)
    flusher.close()
    assert len(synced) == 3 and set(synced) == {"r.sqlite-wal"}
    probe = (
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
        "try:\n    print(c.execute('PRAGMA journal_mode=DELETE').fetchone()[0])\n"
        "except sqlite3.OperationalError as error:\n    print(error)\n"
    )
    answer = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True)
    reader.execute("COMMIT")
    reader.close()
    assert answer.stdout.strip() == "database is locked"


def test_chunks_a_killed_run_committed_are_seen_by_no_view_and_deleted_by_the_next_run(tmp_path):
    """A run's chunks are committed as they come (``RunWriter._staged``); its slots,
    and every other row, only with the run. A run killed after some chunks were committed
    shows nothing in the views, and the next run (``abandon_stale_runs``) deletes them."""
    path = tmp_path / "r.sqlite"
    connection = store.connect(path)
    run_id = start(connection)
    child = subprocess.run([sys.executable, "-c", f"""
import os, signal
from ecorules.engine import store
from ecorules.engine.store import sqlite
sqlite.STAGE_BYTES = 1
writer = store.RunWriter({str(path)!r}, {run_id})
writer.execute(store.INSERT_FINDING_SLOT, ({run_id}, 0, "p@1", "r", "fine", "c"))
writer.execute(store.INSERT_SANCTION_SLOT, ({run_id}, 0, "p@1", "black", "r", "why", "c"))
for k in range(3):
    writer.execute(store.INSERT_FINDINGS, ({run_id}, 0, '[["U", 1, "C"]]'))
    writer.execute(store.INSERT_SANCTIONS, ({run_id}, 0, '["U"]'))
writer.execute(store.INSERT_REJECTS, ({run_id}, "r.csv", 2, "uscc", "x", "bad"))
writer.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""], capture_output=True, text=True)
    assert child.returncode == -9, child.stderr
    counts = ("SELECT (SELECT count(*) FROM finding_chunks), (SELECT count(*) FROM sanction_chunks), "
              "(SELECT count(*) FROM findings), (SELECT count(*) FROM sanctions), (SELECT count(*) FROM finding_slots), "
              "(SELECT count(*) FROM rejects)")
    assert connection.execute(counts).fetchone() == (3, 3, 0, 0, 0, 0)
    assert store.abandon_stale_runs(connection) == [run_id]
    assert connection.execute(counts).fetchone() == (0, 0, 0, 0, 0, 0)


def test_a_run_s_statements_reach_the_store_as_one_transaction_after_its_chunks_were_committed(tmp_path, monkeypatch):
    """The chunks committed as they come; the slots and every other statement held and
    executed in the run's order in the final transaction, before ``final``, which reads them."""
    from ecorules.engine.store import sqlite as store_sqlite

    monkeypatch.setattr(store_sqlite, "STAGE_BYTES", 1)
    path = tmp_path / "r.sqlite"
    connection = store.connect(path)
    run_id = start(connection)
    writer = store.RunWriter(path, run_id)
    writer.execute(store.INSERT_FINDING_SLOT, (run_id, 0, "p@1", "r", "fine", "c"))
    for k in range(4):
        writer.execute(store.INSERT_FINDINGS, (run_id, 0, f'[["U{k}", {k}, "C"]]'))
        writer.executemany(store.INSERT_REJECTS, [(run_id, "r.csv", k, "uscc", "x", "bad")])
    writer.flush()
    assert connection.execute("SELECT count(*) FROM finding_chunks").fetchone() == (4,)
    assert connection.execute("SELECT count(*) FROM findings").fetchone() == (0,)
    assert connection.execute("SELECT count(*) FROM rejects").fetchone() == (0,)
    read_in_final = []

    def finish(db):
        read_in_final.append(db.execute("SELECT count(*) FROM findings").fetchone()[0])
        db.execute("UPDATE runs SET status='done', rows_in=4, rows_scored=0, rows_rejected=4 WHERE id=?", (run_id,))

    writer.commit(finish)
    assert read_in_final == [4]
    assert connection.execute("SELECT uscc, amount_yuan FROM findings ORDER BY uscc").fetchall() == [
        ("U0", 0), ("U1", 1), ("U2", 2), ("U3", 3)]
    assert connection.execute("SELECT row FROM rejects ORDER BY rowid").fetchall() == [(0,), (1,), (2,), (3,)]
