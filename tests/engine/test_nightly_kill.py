"""kill -9 at many moments of a large nightly run: the database stays consistent, and the
next run completes with the same results as an undisturbed run. Each test runs against both
stores: an SQLite file and a schema of a real PostgreSQL server (postgres_server.py).

The moments are spread over the whole run (one in each of K equal slices of its measured
duration, at a random point of the slice), so they fall into every phase: opening the
database, marking stale runs, streaming and writing batches, and the final commit.
ECORULES_STRESS=N multiplies the number of moments by N.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from ecorules.engine import store
from nightly_data import make_registry
from nightly_standin import compile_standin, scorer

CHILD = Path(__file__).with_name("nightly_kill_child.py")
STRESS = int(os.environ.get("ECORULES_STRESS", "1") or 1)
MOMENTS = 21 * STRESS
RESULT_TABLES = ("finding_chunks", "finding_slots", "district_totals", "sanction_chunks", "sanction_slots", "rejects")


@pytest.fixture(params=["sqlite", "postgres"])
def new_store(request, tmp_path):
    """A function giving the location of a new, empty store by name: a file, or a schema."""
    if request.param == "sqlite":
        return lambda name: tmp_path / f"{name}.sqlite"
    url = request.getfixturevalue("postgres_db")
    return lambda name: f"{url}{'&' if '?' in url else '?'}schema={name}"


def exists(db) -> bool:
    """Whether a run has made the store (a killed first run may not have, though it may have
    made the SQLite file: see test_a_first_run_killed_before_its_schema_leaves_no_store_to_readers)."""
    try:
        store.connect(db, readonly=True).close()
    except store.NoStore:
        return False
    return True


def reader(db):
    """A plain sqlite3 connection to the file (as every test before the PostgreSQL store read
    it), or the store's connection to the schema."""
    return store.connect(db, readonly=True) if store.is_url(db) else sqlite3.connect(db, timeout=30)


def start_child(registry: Path, db, batch_rows: int) -> tuple[subprocess.Popen, float]:
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(registry), str(db), str(batch_rows)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = child.stdout.readline()
    assert line.strip() == "ready", (line, child.stderr.read() if child.poll() is not None else "")
    return child, time.monotonic()


def check_consistent(db, statuses_out: dict | None = None) -> dict:
    """What every reader must be able to rely on, whenever it looks."""
    connection = reader(db)
    try:
        if not store.is_url(db):
            assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # every statement below in one snapshot: a run committing between two of them would
        # show a reader an old run's status beside the new run's rows (seen on PostgreSQL once
        # reads went on to 0.9 of a run's time)
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" if store.is_url(db) else "BEGIN")
        statuses = dict(connection.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
        assert statuses.get("running", 0) <= 1, statuses  # at most the one just killed
        if statuses_out is not None:
            statuses_out.update(statuses)
            statuses_out["running ids"] = {r[0] for r in connection.execute("SELECT id FROM runs WHERE status = 'running'")}
        assert statuses.get("done", 0) <= 1, statuses  # --force replaces, never duplicates
        for table in RESULT_TABLES:
            orphans = connection.execute(
                f"SELECT count(*) FROM {table} WHERE run_id NOT IN (SELECT id FROM runs WHERE status = 'done')"
            ).fetchone()[0]
            assert orphans == 0, f"{orphans} rows of {table} belong to no finished run"
        done = connection.execute(
            "SELECT id, rows_in, rows_scored, rows_rejected, total_yuan, summary FROM runs WHERE status = 'done'"
        ).fetchall()
        result = {}
        for run_id, rows_in, scored, rejected, total, summary in done:
            assert rows_in == scored + rejected
            districts = connection.execute(
                "SELECT coalesce(sum(deduction_yuan), 0) FROM district_totals WHERE run_id = ?", (run_id,)).fetchone()[0]
            findings = connection.execute(
                "SELECT count(*), coalesce(sum(amount_yuan), 0) FROM findings WHERE run_id = ?", (run_id,)).fetchone()
            assert districts == total == findings[1]  # every deduction of these policies goes to a district
            lists = dict(connection.execute(
                "SELECT list, count(*) FROM sanctions WHERE run_id = ? GROUP BY list", (run_id,)).fetchall())
            recorded = json.loads(summary)
            assert lists == recorded["lists"] and findings[0] == recorded["findings"]
            result = {
                "rows": (rows_in, scored, rejected), "total": total, "lists": lists, "findings": findings[0],
                "districts": connection.execute(
                    "SELECT district, deduction_yuan, cases FROM district_totals WHERE run_id = ? ORDER BY district",
                    (run_id,)).fetchall(),
            }
        return result
    finally:
        connection.close()


def test_kill_nine_at_many_moments_then_a_complete_rerun(tmp_path, new_store):
    real_kernel = scorer() is not compile_standin
    # the moments are shares of the run, and what they fall into is its phases: opening, marking
    # stale runs, 30 batches read, scored and written, the commit. 240,000 rows in batches of
    # 8,000 (row groups of 20,000) are as many batches and row groups as 600,000 in 20,000 and
    # 50,000, in 0.4 of the time (the test took minutes a store in CI)
    rows = 240_000 if real_kernel else 12_000
    registry = tmp_path / "registry.parquet"
    pq.write_table(make_registry(rows, seed=42, case_share=0.15), registry, row_group_size=20_000)
    batch_rows = 8_000 if real_kernel else 1_000

    reference_db = new_store("reference")
    child, started = start_child(registry, reference_db, batch_rows)
    assert child.wait(timeout=300) == 0, child.stderr.read()
    duration = time.monotonic() - started
    reference = check_consistent(reference_db)
    assert reference["rows"][0] == rows and reference["findings"] > 0

    db = new_store("killed")
    rng = random.Random(1234)
    # moments spread over the run, as fractions of its duration: the reference run measured it,
    # but on a loaded machine later runs may go faster (a warm page cache, a quieter moment), so
    # a run that finished before its moment shortens the estimate and its moment is drawn again
    fractions = [(i + rng.random()) / MOMENTS for i in range(MOMENTS)]
    rng.shuffle(fractions)
    outcomes = {"killed": 0, "finished first": 0}
    left_running: set[int] = set()
    while fractions and outcomes["finished first"] <= MOMENTS:
        fraction = fractions.pop()
        child, started = start_child(registry, db, batch_rows)
        time.sleep(max(0.0, started + fraction * duration - time.monotonic()))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            outcomes["killed"] += 1
        else:
            outcomes["finished first"] += 1
            duration *= 0.8
            fractions.insert(0, fraction)
        child.wait(timeout=60)
        child.stdout.close()
        child.stderr.close()
        if exists(db):
            statuses: dict = {}
            state = check_consistent(db, statuses)
            left_running |= statuses["running ids"]
            if state:  # a finished run, whole: identical to the undisturbed one
                assert state == reference
    assert outcomes["killed"] >= MOMENTS * 2 // 3, outcomes

    child, _ = start_child(registry, db, batch_rows)
    assert child.wait(timeout=300) == 0, child.stderr.read()
    child.stdout.close()
    child.stderr.close()
    assert check_consistent(db) == reference
    connection = reader(db)
    statuses = dict(connection.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
    assert statuses["done"] == 1 and "running" not in statuses
    # every run killed after it had registered is marked failed by the next one
    assert statuses.get("failed", 0) == len(left_running) > 0, (outcomes, left_running)


@pytest.mark.parametrize("phase", ["reading", "writing"])
def test_kill_during_a_run_keeps_the_previous_results(tmp_path, new_store, phase):
    """A forced rerun killed half-way must leave the earlier, complete run untouched."""
    rows = 120_000 if scorer() is not compile_standin else 6_000  # 30 batches, as 300,000 in 10,000 were
    registry = tmp_path / "registry.parquet"
    pq.write_table(make_registry(rows, seed=7, case_share=0.2), registry)
    db = new_store("r")
    child, started = start_child(registry, db, 4_000 if rows > 10_000 else 500)
    assert child.wait(timeout=300) == 0
    duration = time.monotonic() - started
    before = check_consistent(db)
    child, started = start_child(registry, db, 4_000 if rows > 10_000 else 500)
    time.sleep(duration * (0.3 if phase == "reading" else 0.8))
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    assert check_consistent(db) == before


def test_a_reader_during_a_run_sees_the_previous_complete_run_and_a_second_run_refuses(tmp_path, new_store):
    """While a forced rerun writes, readers see the earlier run whole (and only it), and (on
    PostgreSQL) a second run at once is refused with a clear reason, not queued or interleaved."""
    from ecorules.engine._nightly import run_nightly

    rows = 300_000 if scorer() is not compile_standin else 6_000
    registry = tmp_path / "registry.parquet"
    pq.write_table(make_registry(rows, seed=11, case_share=0.2), registry)
    db = new_store("during")
    batch_rows = 10_000 if rows > 10_000 else 500
    child, started = start_child(registry, db, batch_rows)
    assert child.wait(timeout=300) == 0, child.stderr.read()
    duration = time.monotonic() - started
    before = check_consistent(db)
    child, started = start_child(registry, db, batch_rows)
    seen, refused = 0, None
    # reads until a few have seen the rerun running (then it is killed), and well before it
    # could commit: it takes about as long as the first run, longer under load, when it may
    # register its run only after 0.6 of the first run's time (seen by three sessions)
    while child.poll() is None and time.monotonic() - started < duration * 0.9:
        if seen >= 3 and (refused is not None or not store.is_url(db)):
            break
        # (on SQLite a second run first waits for the writer's lock of the file, in connect)
        if store.is_url(db) and time.monotonic() - started > duration * 0.2 and refused is None:
            with pytest.raises(store.StoreError) as refused:
                run_nightly(registry, db, batch_rows=batch_rows, force=True, progress=False,
                            compile_program=scorer(), threads=1)
        statuses: dict = {}
        assert check_consistent(db, statuses) == before
        seen += bool(statuses.get("running"))
        time.sleep(0.05)
    child.kill()
    child.wait(timeout=60)
    child.stdout.close()
    child.stderr.close()
    assert seen > 0, "no read happened while the run was in progress"
    assert not store.is_url(db) or (refused is not None and "another run is writing" in str(refused.value))


# A first run killed after sqlite3 made the file and before its schema was committed leaves a
# file with no table. Readers took it for someone else's database (and this test's plain
# reader failed with "no such table: runs", once, under load). The moment is reached by a hook,
# not by timing: the child kills itself inside the schema's transaction.
KILLED_BEFORE_SCHEMA = """
import os, signal, sys
from ecorules.engine import store
from ecorules.engine._nightly import run_nightly
from ecorules.engine.store import sqlite as backend

def die(connection):  # inside BEGIN IMMEDIATE ... COMMIT of a new store, the file made
    assert connection.in_transaction
    os.kill(os.getpid(), signal.SIGKILL)

backend._migrate = die
run_nightly(sys.argv[1], sys.argv[2], batch_rows=500, force=True, progress=False, threads=1)
"""


def test_a_first_run_killed_before_its_schema_leaves_no_store_to_readers(tmp_path):
    from ecorules.engine._changes import compare_runs

    registry = tmp_path / "registry.parquet"
    pq.write_table(make_registry(2_000, seed=5), registry)
    db = tmp_path / "new.sqlite"
    child = subprocess.run([sys.executable, "-c", KILLED_BEFORE_SCHEMA, str(registry), str(db)],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert db.exists()  # the moment sought: the file is there, its schema is not
    assert sqlite3.connect(db).execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    with pytest.raises(store.NoStore, match="no results database yet"):
        store.connect(db, readonly=True)
    assert not exists(db)
    with pytest.raises(store.NoStore):  # what `ecorules changes` says, as for a file not there
        compare_runs(db, since=1)
    # the next run makes the store in the same file and completes
    child, _ = start_child(registry, db, 500)
    assert child.wait(timeout=300) == 0, child.stderr.read()
    child.stdout.close()
    child.stderr.close()
    assert exists(db) and check_consistent(db)["rows"][0] == 2_000
