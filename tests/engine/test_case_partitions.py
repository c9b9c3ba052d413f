"""The case table in partitions spilled to disk (engine/cases/_spill.py): a run over many
partitions writes what a run over one writes (findings, list entries, district totals, and
the rejects in the same order, the table's row order), every case of an enterprise is in one
partition, and a case_id duplicated across partitions is rejected naming its first row."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest
from ecorules.engine._generate import generate_registry
from ecorules.engine._nightly import run_nightly
from ecorules.engine.cases import _spill
from ecorules.engine.cases._generate import generate_cases
from ecorules.engine.cases._plan import make_plan
from ecorules.engine.cases._table import linked
from ecorules.rules import load_policies
from test_case_parts import AS_OF, DATA, _plain_tables, _stored, kind_tables


def _rejects_in_order(path: Path, run_id: int) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT source, row, \"column\", value, reason FROM rejects WHERE run_id = ? ORDER BY rowid",
                          (run_id,)).fetchall()
    finally:
        db.close()


def _run(folder: Path, policies, as_of: dt.date, partition_rows: int, name: str, monkeypatch):
    loaded = []
    original = _spill.SpilledCases.load

    def load(self, buckets):
        table = original(self, buckets)
        loaded.append(table.ordinal.copy())
        return table

    with monkeypatch.context() as patch:
        patch.setattr(_spill, "PARTITION_ROWS", partition_rows)
        patch.setattr(_spill.SpilledCases, "load", load)
        summary = run_nightly(folder / "enterprises.csv", folder / f"{name}.sqlite", policies=policies, as_of=as_of,
                              cases=folder / "cases.csv", threads=2)
    stored = _stored(folder / f"{name}.sqlite", summary.run_id)
    stored["rejects in order"] = _rejects_in_order(folder / f"{name}.sqlite", summary.run_id)
    return summary, stored, loaded


@pytest.mark.parametrize("kind", ["plain", "dated"])
def test_a_run_over_many_partitions_writes_what_one_partition_writes(tmp_path, kind, monkeypatch):
    policies, as_of = kind_tables(tmp_path, kind)
    whole, expected, one = _run(tmp_path, policies, as_of, 1 << 30, "whole", monkeypatch)
    parted, got, many = _run(tmp_path, policies, as_of, 40, "partitions", monkeypatch)
    assert len(one) == 1 and len(many) > 10  # the tiny partitions are many
    # every row once, each partition in the table's order
    assert np.array_equal(np.sort(np.concatenate(many)), np.arange(_lines(tmp_path / "cases.csv")))
    assert all(np.all(np.diff(p) > 0) for p in many)
    assert got == expected
    assert (parted.rows_in, parted.rows_scored, parted.rows_rejected, parted.findings, parted.total_yuan,
            parted.lighter_law) == (whole.rows_in, whole.rows_scored, whole.rows_rejected, whole.findings,
                                    whole.total_yuan, whole.lighter_law)
    # the rejects in the table's row order (a row's own in the order found)
    rows = [row for source, row, *_ in expected["rejects in order"] if source.endswith("cases.csv")]
    assert rows == sorted(rows) and (len(rows) > 10 or kind == "dated")
    statuses = {row[6] for row in expected["findings"]}
    assert "imposed" in statuses
    if kind == "plain":
        assert "superseded" in statuses and any("duplicate case_id" in r[4] for r in expected["rejects"])
    else:
        assert whole.lighter_law > 0


def _lines(path: Path) -> int:
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={"case_id": pa.string()})).num_rows


def _plan():
    from ecorules.fastcalc import compile_program

    return make_plan(load_policies(DATA), "enterprise", AS_OF, compile_program)


def _owner_buckets(usccs: list[str]) -> np.ndarray:
    plan = _plan()
    keys = linked(plan.facts[plan.link], pa.array(usccs))
    return _spill.buckets_of(keys, _spill.MAX_BUCKETS)


def test_a_case_id_duplicated_across_partitions_is_rejected_naming_its_first_row(tmp_path, monkeypatch):
    usccs = generate_registry(200, 5)["uscc"].combine_chunks()
    rng = np.random.default_rng(6)
    pacsv.write_csv(pa.table({
        "uscc": usccs, "district": pa.array(np.where(rng.random(200) < 0.5, "金水区", "二七区")),
        "industrial": pa.array(np.where(rng.random(200) < 0.7, "true", "false")),
    }), tmp_path / "enterprises.csv")
    cases = generate_cases(usccs, 600, 7, ("a83_2", "a84_2", "local_x"))
    # two enterprises of other buckets: with partitions of a bucket or so, not together
    buckets = _owner_buckets(usccs.to_pylist())
    low, high = int(np.argmin(buckets)), int(np.argmax(buckets))
    assert buckets[low] < buckets[high]
    owner = pc.equal(cases["uscc"], usccs[high])
    first_at = int(np.flatnonzero(np.asarray(owner))[0]) if pc.any(owner).as_py() else None
    if first_at is None:  # the generator gave it no case: give it the first one
        cases = cases.set_column(cases.column_names.index("uscc"), "uscc",
                                 pa.concat_arrays([pa.array([usccs[high].as_py()]), cases["uscc"].combine_chunks()[1:]]))
        first_at = 0
    duplicated = cases["case_id"][first_at].as_py()
    base = cases.slice(first_at, 1).to_pylist()[0]
    # the same case_id later, once under an enterprise of another partition, once under its own
    extra = pa.Table.from_pylist([{**base, "uscc": usccs[low].as_py()}, {**base}], schema=cases.schema)
    pacsv.write_csv(pa.concat_tables([cases, extra]), tmp_path / "cases.csv")
    results = {}
    for name, rows in (("one", 1 << 30), ("many", 5)):
        summary, stored, loaded = _run(tmp_path, DATA, AS_OF, rows, name, monkeypatch)
        results[name] = stored
        if name == "many":
            at = [i for i, p in enumerate(loaded) if np.isin([first_at, cases.num_rows], p).any()]
            assert len(at) == 2  # the first row and the later duplicate: two partitions
    first_line = first_at + 2  # CSV lines: the header is line 1
    wanted = [(str(tmp_path / "cases.csv"), cases.num_rows + 2 + k, "case_id", duplicated,
               f"duplicate case_id {duplicated!r}: first at row {first_line} of {tmp_path / 'cases.csv'}")
              for k in range(2)]
    for name in ("one", "many"):
        got = [r for r in results[name]["rejects in order"] if r[2] == "case_id"]
        assert got == wanted, name
    assert results["many"] == results["one"]


def test_spilled_partitions_hold_every_case_of_an_enterprise_once(tmp_path, monkeypatch):
    from ecorules.engine.cases._spill import spill_cases

    _plain_tables(tmp_path)
    plan = _plan()
    monkeypatch.setattr(_spill, "PARTITION_ROWS", 100)  # buckets of about a hundred rows: many
    spilled = spill_cases(tmp_path / "cases.csv", plan, batch_rows=300, directory=tmp_path, texts=True)
    try:
        whole = pacsv.read_csv(tmp_path / "cases.csv", convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in plan.case_columns}))
        groups = spilled.partitions(100)
        assert len(groups) > 5 and sorted(b for g in groups for b in g) == sorted(set(b for g in groups for b in g))
        owners_seen: dict[str, int] = {}
        ordinals = []
        for index, buckets in enumerate(groups):
            part = spilled.load(buckets)
            assert np.all(np.diff(part.ordinal) > 0)
            assert part.table["case_id"].to_pylist() == whole["case_id"].take(pa.array(part.ordinal)).to_pylist()
            for key in set(linked(plan.facts[plan.link], part.table[plan.link]).to_pylist()):
                assert owners_seen.setdefault(key, index) == index
            ordinals.append(part.ordinal)
        assert np.array_equal(np.sort(np.concatenate(ordinals)), np.arange(whole.num_rows))
        assert spilled.n == whole.num_rows and not spilled.ascending and spilled.buckets > 10
        keys = linked(plan.facts[plan.link], whole[plan.link]).drop_null()
        assert set(spilled.wanted.to_pylist()) == set(keys.to_pylist())
        assert np.array_equal(spilled.wanted_hashes, np.unique(_spill.text_hashes(keys)))
    finally:
        spilled.close()
    assert not spilled.folder.exists()


def test_a_parquet_case_table_of_dictionary_columns_in_partitions(tmp_path, monkeypatch):
    """An enum column of Parquet comes as a dictionary, its dictionary changing from row group
    to row group: the spill keeps them (IPC streams), and the findings are the CSV table's."""
    import pyarrow.parquet as pq

    _plain_tables(tmp_path)
    table = pacsv.read_csv(tmp_path / "cases.csv", convert_options=pacsv.ConvertOptions(
        column_types={name: pa.string() for name in ("case_id", "uscc", "act_id", "clause", "fine_yuan", "act_date",
                                                      "act_end", "discovered", "into_eco_water")}))
    pq.write_table(table, tmp_path / "cases.parquet", row_group_size=300)
    from_csv, csv_stored, _ = _run(tmp_path, DATA, AS_OF, 40, "csv", monkeypatch)
    (tmp_path / "cases.csv").rename(tmp_path / "cases.csv.off")
    (tmp_path / "cases.parquet").rename(tmp_path / "cases.csv.parquet")
    monkeypatch.chdir(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(_spill, "PARTITION_ROWS", 40)
        summary = run_nightly(tmp_path / "enterprises.csv", tmp_path / "parquet.sqlite", policies=DATA, as_of=AS_OF,
                              cases=tmp_path / "cases.csv.parquet", threads=2, batch_rows=256)
    stored = _stored(tmp_path / "parquet.sqlite", summary.run_id)
    assert stored["findings"] == csv_stored["findings"] and stored["districts"] == csv_stored["districts"]
    assert summary.findings == from_csv.findings and summary.total_yuan == from_csv.total_yuan


def test_a_run_killed_between_partitions_leaves_nothing_and_its_rerun_writes_everything_once(tmp_path, monkeypatch):
    from ecorules.engine.cases import _write

    _plain_tables(tmp_path)
    spills = tmp_path / "spills"
    spills.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spills))
    _clean, expected, _ = _run(tmp_path, DATA, AS_OF, 40, "clean", monkeypatch)
    original = _write.CaseWriter.partition
    written = []

    def dies_on_the_third(self, results, buckets=None):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(results.rows_scored)
        original(self, results, buckets)

    out = tmp_path / "killed.sqlite"
    with monkeypatch.context() as patch:
        patch.setattr(_spill, "PARTITION_ROWS", 40)
        patch.setattr(_write.CaseWriter, "partition", dies_on_the_third)
        with pytest.raises(KeyboardInterrupt):
            run_nightly(tmp_path / "enterprises.csv", out, policies=DATA, as_of=AS_OF, cases=tmp_path / "cases.csv",
                        threads=2)
    assert len(written) == 2 and not list(spills.iterdir())  # two partitions written, then the spill removed
    db = sqlite3.connect(out)
    try:
        assert db.execute("SELECT status FROM runs").fetchall() == [("failed",)]
        assert db.execute("SELECT count(*) FROM findings").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM rejects").fetchone() == (0,)
    finally:
        db.close()
    with monkeypatch.context() as patch:
        patch.setattr(_spill, "PARTITION_ROWS", 40)
        again = run_nightly(tmp_path / "enterprises.csv", out, policies=DATA, as_of=AS_OF, cases=tmp_path / "cases.csv",
                            threads=2)
    stored = _stored(out, again.run_id)
    stored["rejects in order"] = _rejects_in_order(out, again.run_id)
    assert stored == expected
    db = sqlite3.connect(out)
    try:  # nothing of the killed run, nothing twice
        assert db.execute("SELECT count(*) FROM findings").fetchone() == (len(expected["findings"]),)
    finally:
        db.close()


def test_partitions_into_postgresql_write_what_one_partition_writes_into_sqlite(postgres_db, tmp_path, monkeypatch):
    """Two runs, the second reading the first's assessments (一例一次) a partition at a time."""
    from test_store_postgres import exported, in_schema, without_ids

    _plain_tables(tmp_path)
    days = (AS_OF, AS_OF + dt.timedelta(days=1))
    sqlite_db, pg = tmp_path / "r.sqlite", in_schema(postgres_db, "ecorules")
    summaries = {}
    for label, db, rows in (("sqlite", sqlite_db, 1 << 30), ("postgres", pg, 40)):
        with monkeypatch.context() as patch:
            patch.setattr(_spill, "PARTITION_ROWS", rows)
            summaries[label] = [run_nightly(tmp_path / "enterprises.csv", db, policies=DATA, cases=tmp_path / "cases.csv",
                                            as_of=day, progress=False, threads=1).to_dict() for day in days]
    assert without_ids(summaries["postgres"]) == without_ids(summaries["sqlite"])
    assert summaries["postgres"][1]["already_assessed"] > 100
    # the same rows (a partition's findings are written together: in another order than one partition's)
    tables = {label: {name: [rows[0], *sorted(rows[1:])] for name, rows in exported(db, tmp_path, label).items()}
              for label, db in (("sqlite", sqlite_db), ("postgres", pg))}
    assert tables["postgres"] == tables["sqlite"]
    assert len(tables["postgres"]["latest findings"]) > 1000 and len(tables["postgres"]["previous rejects"]) > 10


def test_the_spill_of_a_killed_run_is_removed_by_the_next_and_a_running_ones_kept(tmp_path):
    import subprocess
    import sys

    from ecorules.engine.cases._spill import spill_cases

    _plain_tables(tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its process id names no process now (reused by another: its spill is kept, no harm)
    spills = tmp_path / "spills"
    killed = spills / f"ecorules-cases-{gone.pid}-abcd"
    (killed / "cases").mkdir(parents=True)
    (killed / "cases" / "0-0.arrow").write_bytes(b"left by kill -9")
    running = spills / f"ecorules-cases-{os.getppid()}-efgh"  # the test runner's parent: alive
    running.mkdir()
    other = spills / "ecorules-cases-notapid"
    other.mkdir()
    spilled = spill_cases(tmp_path / "cases.csv", _plan(), batch_rows=1000, directory=spills)
    try:
        assert not killed.exists() and running.exists() and other.exists()
        assert spilled.folder.name.startswith(f"ecorules-cases-{os.getpid()}-")
    finally:
        spilled.close()


def test_the_findings_chunk_text_is_made_on_the_store_writers_thread(tmp_path, monkeypatch):
    """(engine/cases/_write.py) a chunk's JSON, findings' and case factors', is laid out by
    the writer's thread while the main thread judges the next partition: every chunk, and
    each finding written once."""
    import threading

    from ecorules.engine.cases import _write

    _plain_tables(tmp_path)
    threads, rows = [], []
    original = _write.finding_rows

    def watched(*args, **options):
        text = original(*args, **options)
        threads.append(threading.current_thread().name)
        rows.append(len(json.loads(text)))
        return text

    factors, factor_rows = [], _write.factor_rows

    def watched_factors(*args, **options):
        factors.append(threading.current_thread().name)
        return factor_rows(*args, **options)

    monkeypatch.setattr(_write, "finding_rows", watched)
    monkeypatch.setattr(_write, "factor_rows", watched_factors)  # (the case factors' rows, _factors.py)
    summary, stored, loaded = _run(tmp_path, DATA, AS_OF, 40, "threads", monkeypatch)
    assert len(loaded) > 2 and threads and factors
    assert all(name.startswith("ecorules-writer-") for name in threads + factors), set(threads + factors)
    assert sum(rows) == len([f for f in stored["findings"] if f[1] is not None])  # (uscc, case_id, ...)


def _every_table(path: Path) -> dict[str, list]:
    """Every table of the store but ``runs`` (times, seconds), each in its stored order."""
    db = sqlite3.connect(path)
    try:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'runs' "
                                          "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        tables = {}
        for name in names:
            made = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
            order = "" if "WITHOUT ROWID" in made.upper() else " ORDER BY rowid"  # (else: its key's order)
            tables[name] = db.execute(f"SELECT * FROM {name}{order}").fetchall()
        tables["runs"] = db.execute("SELECT id, status, rows_in, rows_scored, rows_rejected, total_fen FROM runs "
                                    "ORDER BY id").fetchall()
        return tables
    finally:
        db.close()


@pytest.mark.parametrize("kind", ["plain", "dated"])
def test_chunks_committed_as_they_come_store_what_one_transaction_stores_night_after_night(tmp_path, kind,
                                                                                         monkeypatch):
    """(store.sqlite.RunWriter._staged) A run whose chunks are committed a few bytes
    at a time, so that SQLite checkpoints while it goes on, leaves every table as a run in one
    transaction leaves it, row for row; and so does the second night, reading the first's
    memory from such a store."""
    from ecorules.engine.store import sqlite as store_sqlite

    policies, as_of = kind_tables(tmp_path, kind)
    stores = {}
    for name, stage_bytes in (("one transaction", 1 << 62), ("staged", 1)):
        with monkeypatch.context() as patch:
            patch.setattr(store_sqlite, "STAGE_BYTES", stage_bytes)
            patch.setattr(_spill, "PARTITION_ROWS", 40)
            out = tmp_path / f"{name}.sqlite"
            for day in (as_of, as_of + dt.timedelta(days=1)):
                run_nightly(tmp_path / "enterprises.csv", out, policies=policies, as_of=day,
                            cases=tmp_path / "cases.csv", threads=2)
        stores[name] = _every_table(out)
    staged, whole = stores["staged"], stores["one transaction"]
    assert len(staged["finding_chunks"]) > 20 and staged["runs"][-1][1] == "done"
    assert staged == whole


def test_a_run_failing_after_chunks_were_committed_leaves_no_chunk_behind(tmp_path, monkeypatch):
    """Chunks committed before the run failed (``STAGE_BYTES`` of 1: after each) are deleted
    with the run; no view ever showed them."""
    from ecorules.engine.cases import _write
    from ecorules.engine.store import sqlite as store_sqlite

    _plain_tables(tmp_path)
    original = _write.CaseWriter.partition
    written, seen = [], []
    out = tmp_path / "failed.sqlite"

    def dies_on_the_third(self, results, buckets=None):
        if len(written) == 2:
            self.writer.flush()
            reader = sqlite3.connect(out)
            seen.append(reader.execute("SELECT (SELECT count(*) FROM finding_chunks), (SELECT count(*) FROM findings), "
                                       "(SELECT count(*) FROM sanctions)").fetchone())
            reader.close()
            raise KeyboardInterrupt
        written.append(results.rows_scored)
        original(self, results, buckets)

    with monkeypatch.context() as patch:
        patch.setattr(store_sqlite, "STAGE_BYTES", 1)
        patch.setattr(_spill, "PARTITION_ROWS", 40)
        patch.setattr(_write.CaseWriter, "partition", dies_on_the_third)
        with pytest.raises(KeyboardInterrupt):
            run_nightly(tmp_path / "enterprises.csv", out, policies=DATA, as_of=AS_OF, cases=tmp_path / "cases.csv",
                        threads=2)
    committed, shown, listed = seen[0]
    assert committed > 0 and shown == 0 and listed == 0  # committed, and seen by no view
    db = sqlite3.connect(out)
    try:
        assert db.execute("SELECT status FROM runs").fetchall() == [("failed",)]
        for table in store_sqlite.STAGED_TABLES:
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    finally:
        db.close()
