"""一例一次 across runs: a case assessed by one run is reported, not assessed, by the next.

The test policies of tests/data/cases (a case's decision date ``decided`` added to its
catalogue) over a generated registry and case table: two runs with different as_of, a new
case, ``--reassess``, a new decision date, reruns (reused and forced), kill -9 during a run,
export, changes and the migration of version 4 and version 8 databases.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner
from ecorules.engine import store
from ecorules.engine._cli import main
from ecorules.engine._generate import generate_registry
from ecorules.engine._nightly import run_nightly
from ecorules.engine.cases._generate import generate_cases

DATA = Path(__file__).parent.parent / "data" / "cases"
CHILD = Path(__file__).with_name("nightly_kill_child.py")
A, B, C, D = (dt.date(2026, m, 1) for m in (1, 2, 3, 4))
DECIDED = "  decided: {type: date, optional: true, min: 2000-01-01, max: 2099-12-31}\n"
CASE_COLUMNS = "case_id, uscc, policy, rule, kind, amount_yuan, payer, status, superseded_by, assessed_in_run"


def make_world(folder: Path, enterprises: int = 80, cases: int = 400) -> dict:
    policies = folder / "policies"
    shutil.copytree(DATA, policies)
    catalogue = (policies / "cases.yaml").read_text(encoding="utf-8")
    assert "\nrollups:" in catalogue
    (policies / "cases.yaml").write_text(catalogue.replace("\nrollups:", "\n" + DECIDED + "rollups:", 1), encoding="utf-8")
    usccs = generate_registry(enterprises, 7)["uscc"].combine_chunks()
    rng = np.random.default_rng(3)
    registry = pa.table({
        "uscc": usccs,
        "district": pa.array(np.where(rng.random(enterprises) < 0.5, "金水区", "二七区")),
        "industrial": pa.array(np.where(rng.random(enterprises) < 0.7, "true", "false")),
    })
    table = generate_cases(usccs, cases, 9, ("a83_2", "a84_2", "local_x"))
    decided = np.where(rng.random(cases) < 0.5, "2025-06-01", None)
    table = table.append_column("decided", pa.array(decided.tolist(), pa.string()))
    bad = table.slice(0, 2).to_pylist()  # two rows every run rejects: a bad clause, a bad decision date
    bad[0].update(case_id="BAD1", clause="no_such_clause")
    bad[1].update(case_id="BAD2", decided="2025-02-30")
    table = pa.concat_tables([table, pa.Table.from_pylist(bad, schema=table.schema)])
    pacsv.write_csv(registry, folder / "enterprises.csv")
    write_cases(table, folder / "cases.csv")
    return {"folder": folder, "policies": policies, "registry": folder / "enterprises.csv", "cases": folder / "cases.csv",
            "table": table, "db": folder / "results.sqlite"}


def write_cases(table: pa.Table, path: Path) -> None:
    pacsv.write_csv(table, path)


def run(world: dict, as_of: dt.date, **options):
    summary = run_nightly(world["registry"], options.pop("db", world["db"]), policies=world["policies"], as_of=as_of,
                          cases=options.pop("cases", world["cases"]), threads=1, **options)
    assert summary.status == "done"
    assert summary.rows_in == summary.rows_scored + summary.rows_rejected
    assert summary.tables["cases"]["rows_rejected"] == 2  # BAD1 and BAD2, every run
    return summary


def case_findings(world: dict, run_id: int, db: Path | None = None) -> list[dict]:
    connection = sqlite3.connect(db or world["db"])
    connection.row_factory = sqlite3.Row
    try:
        rows = connection.execute(
            f"SELECT {CASE_COLUMNS} FROM findings WHERE run_id = ? AND case_id IS NOT NULL", (run_id,)).fetchall()
        return [dict(r) for r in rows]
    finally:
        connection.close()


def by_status(findings: list[dict], status: str) -> dict[tuple, dict]:
    out = {}
    for f in findings:
        if f["status"] == status:
            key = (f["case_id"], f["policy"].partition("@")[0], f["rule"], f["kind"])
            assert key not in out
            out[key] = f
    return out


def memory(world: dict, db: Path | None = None) -> list[dict]:
    connection = sqlite3.connect(db or world["db"])
    connection.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in connection.execute("SELECT * FROM assessed ORDER BY run_id, case_id, rule, kind")]
    finally:
        connection.close()


def enterprise_totals(world: dict, run_id: int) -> dict[str, tuple[int, int]]:
    """District totals from the enterprise (registry) findings alone: yuan, enterprises."""
    connection = sqlite3.connect(world["db"])
    try:
        rows = connection.execute(
            "SELECT payer, sum(amount_yuan), count(DISTINCT uscc) FROM findings WHERE run_id = ? AND case_id IS NULL "
            "AND status = 'imposed' AND payer IN ('金水区', '二七区') GROUP BY payer", (run_id,)).fetchall()
        return {d: (y, n) for d, y, n in rows}
    finally:
        connection.close()


def districts(summary) -> dict[str, tuple[int, int]]:
    return {d["district"]: (d["deduction_yuan"], d["cases"]) for d in summary.districts}


@pytest.fixture
def world(tmp_path):
    return make_world(tmp_path)


def test_a_later_run_reports_every_assessed_case_as_already_assessed_and_counts_none(world):
    first = run(world, A)
    second = run(world, B)  # another as_of: not a rerun, nothing reused
    assert not second.reused and second.run_id != first.run_id
    before, after = case_findings(world, first.run_id), case_findings(world, second.run_id)
    imposed = by_status(before, "imposed")
    assert len(imposed) > 200 and first.already_assessed == 0
    assert {f["kind"] for f in imposed.values()} == {"fine", "fiscal_deduction"}
    already = by_status(after, "already_assessed")
    assert set(already) == set(imposed)
    assert {(f["amount_yuan"], f["assessed_in_run"]) for f in already.values()} == {(0, first.run_id)}
    assert by_status(after, "imposed") == {}
    # superseded fines stay superseded: they were never assessments
    superseded = {k: f["superseded_by"] for k, f in by_status(before, "superseded").items()}
    assert superseded and {k: f["superseded_by"] for k, f in by_status(after, "superseded").items()} == superseded
    # nothing counted twice: the run total and the districts keep only the registry's findings
    case_yuan = sum(f["amount_yuan"] for f in imposed.values())
    assert case_yuan > 0 and second.total_yuan == first.total_yuan - case_yuan
    assert districts(second) == enterprise_totals(world, first.run_id) != districts(first)
    assert second.already_assessed == len(already) and second.findings == first.findings
    assert second.tables == first.tables
    recorded = json.loads(sqlite3.connect(world["db"]).execute(
        "SELECT summary FROM runs WHERE id = ?", (second.run_id,)).fetchone()[0])
    assert recorded["already_assessed"] == len(already)
    # the memory: the first run's assessments, once each, and nothing from the second
    remembered = memory(world)
    assert len(remembered) == len(imposed)
    assert {r["run_id"] for r in remembered} == {first.run_id} and {r["reason"] for r in remembered} == {"first"}
    assert {(r["case_id"], r["policy"], r["rule"], r["kind"]): r["amount_yuan"] for r in remembered} == {
        k: f["amount_yuan"] for k, f in imposed.items()}
    decided = {r["case_id"]: r["decided"] for r in remembered}
    table = {r["case_id"]: r["decided"] for r in world["table"].to_pylist()}
    assert {c: table[c] for c in decided} == decided and set(decided.values()) == {None, "2025-06-01"}


def test_a_new_case_is_the_only_one_assessed(world):
    first = run(world, A)
    owner = world["table"]["uscc"][0].as_py()
    new = {name: None for name in world["table"].column_names}
    new.update(case_id="NEW0001", uscc=owner, clause="a84_2", act_date="2025-03-01", discovered="2025-04-01",
               fine_yuan="30000")
    extended = pa.concat_tables([world["table"], pa.Table.from_pylist([new], schema=world["table"].schema)])
    write_cases(extended, world["cases"])
    second = run(world, A)  # the same date, another case table: a new run
    assert not second.reused
    after = case_findings(world, second.run_id)
    assert [(k, f["amount_yuan"]) for k, f in by_status(after, "imposed").items()] == [
        (("NEW0001", "test.fines", "art84", "fine"), 30000)]
    assert set(by_status(after, "already_assessed")) == set(by_status(case_findings(world, first.run_id), "imposed"))
    assert second.total_yuan == sum(y for y, _ in enterprise_totals(world, first.run_id).values()) + 30000
    remembered = memory(world)
    assert [r["case_id"] for r in remembered if r["run_id"] == second.run_id] == ["NEW0001"]
    third = run(world, B)  # and the next run assesses nothing
    assert by_status(case_findings(world, third.run_id), "imposed") == {}
    assert by_status(case_findings(world, third.run_id), "already_assessed")[
        ("NEW0001", "test.fines", "art84", "fine")]["assessed_in_run"] == second.run_id


def test_reassess_assesses_again_all_or_some(world):
    first = run(world, A)
    imposed = by_status(case_findings(world, first.run_id), "imposed")
    some = sorted({k[0] for k in imposed})[:3]
    second = run(world, B, reassess=some)
    after = case_findings(world, second.run_id)
    again = by_status(after, "imposed")
    assert {k[0] for k in again} == set(some)
    assert {k: f["amount_yuan"] for k, f in again.items()} == {k: f["amount_yuan"] for k, f in imposed.items() if k[0] in some}
    assert {k[0] for k in by_status(after, "already_assessed")} == {k[0] for k in imposed} - set(some)
    made = [r for r in memory(world) if r["run_id"] == second.run_id]
    assert {(r["case_id"], r["reason"], r["supersedes_run"]) for r in made} == {(c, "reassessed", first.run_id) for c in some}
    # the latest assessment is the one an even later run refers to
    third = run(world, C)
    refers = {k[0]: f["assessed_in_run"] for k, f in by_status(case_findings(world, third.run_id), "already_assessed").items()}
    assert {c for c, r in refers.items() if r == second.run_id} == set(some)
    assert set(refers.values()) == {first.run_id, second.run_id}
    # --reassess alone: every case, through the command line
    result = CliRunner().invoke(main, [
        "run", "--registry", str(world["registry"]), "--cases", str(world["cases"]), "--policies", str(world["policies"]),
        "--out", str(world["db"]), "--as-of", D.isoformat(), "--threads", "1", "--reassess", "--format", "json",
    ], catch_exceptions=False)
    assert result.exit_code == 1, result.output  # done, with the two rejected rows
    everything = json.loads(result.output)
    assert everything["already_assessed"] == 0 and everything["total_yuan"] == first.total_yuan
    # --reassess CASE_ID, repeatable, and a case id no earlier run assessed is a warning
    result = CliRunner().invoke(main, [
        "run", "--registry", str(world["registry"]), "--cases", str(world["cases"]), "--policies", str(world["policies"]),
        "--out", str(world["db"]), "--as-of", A.isoformat(), "--threads", "1", "--format", "json",
        "--reassess", some[0], "--reassess", "NO_SUCH_CASE",
    ], catch_exceptions=False)
    one = json.loads(result.output)
    assert one["already_assessed"] == len(imposed) - sum(k[0] == some[0] for k in imposed)
    assert any("NO_SUCH_CASE" in w for w in one["warnings"])


def test_a_case_reassessed_to_nothing_has_its_earlier_assessment_withdrawn(world):
    first = run(world, A)
    imposed = by_status(case_findings(world, first.run_id), "imposed")
    table = world["table"].to_pylist()
    fined = sorted(k[0] for k in imposed if k[2] == "art83")
    case = next(r for r in table if r["case_id"] in fined and r["act_id"] is None)
    keys = {k for k in imposed if k[0] == case["case_id"]}
    discovered = case["discovered"]
    # time-barred now (discovered 3 years after the act): reassessed, art83 no longer fires
    case["discovered"] = (dt.date.fromisoformat(case["act_end"] or case["act_date"]) + dt.timedelta(days=3 * 366)).isoformat()
    write_cases(pa.Table.from_pylist(table, schema=world["table"].schema), world["cases"])
    second = run(world, B, reassess=[case["case_id"]])
    assert not {k for k in by_status(case_findings(world, second.run_id), "imposed") if k[0] == case["case_id"]}
    made = [r for r in memory(world) if r["run_id"] == second.run_id]
    assert {(r["case_id"], r["rule"], r["reason"], r["supersedes_run"], r["amount_yuan"]) for r in made} >= {
        (case["case_id"], "art83", "withdrawn", first.run_id, 0)}
    # the earlier assessment is history: the case, violating again, is assessed, not reported
    case["discovered"] = discovered
    write_cases(pa.Table.from_pylist(table, schema=world["table"].schema), world["cases"])
    third = run(world, C)
    now = case_findings(world, third.run_id)
    assert {k for k in by_status(now, "imposed") if k[0] == case["case_id"]} == {k for k in keys if k[2] == "art83"}
    others = {k: f["assessed_in_run"] for k, f in by_status(now, "already_assessed").items()}
    assert set(others) == set(imposed) - {k for k in keys if k[2] == "art83"}
    assert set(others.values()) == {first.run_id}


def test_a_new_decision_date_is_a_new_decision(world):
    first = run(world, A)
    imposed = by_status(case_findings(world, first.run_id), "imposed")
    table = world["table"].to_pylist()
    assessed = {k[0] for k in imposed}
    undecided = next(r for r in table if r["case_id"] in assessed and r["decided"] is None)
    decided = [r for r in table if r["case_id"] in assessed and r["decided"] is not None][:2]
    undecided["decided"] = "2026-01-10"  # decided since
    decided[0]["decided"] = "2025-07-01"  # decided anew
    decided[1]["decided"] = None  # the decision withdrawn: also not the remembered one
    changed = {undecided["case_id"], decided[0]["case_id"], decided[1]["case_id"]}
    write_cases(pa.Table.from_pylist(table, schema=world["table"].schema), world["cases"])
    second = run(world, B)
    again = by_status(case_findings(world, second.run_id), "imposed")
    assert {k[0] for k in again} == changed
    made = [r for r in memory(world) if r["run_id"] == second.run_id]
    assert {(r["case_id"], r["reason"], r["supersedes_run"], r["decided"]) for r in made} == {
        (undecided["case_id"], "new decision", first.run_id, "2026-01-10"),
        (decided[0]["case_id"], "new decision", first.run_id, "2025-07-01"),
        (decided[1]["case_id"], "new decision", first.run_id, None),
    }
    assert second.total_yuan == sum(y for y, _ in enterprise_totals(world, first.run_id).values()) + sum(
        f["amount_yuan"] for f in again.values())
    third = run(world, C)  # the same dates again: nothing new
    assert by_status(case_findings(world, third.run_id), "imposed") == {}


def test_a_rerun_stays_idempotent_and_never_finds_its_own_assessments(world):
    first = run(world, A)
    reused = run(world, A)
    assert reused.reused and reused.run_id == first.run_id
    forced = run(world, A, force=True)
    assert forced.replaced_run == first.run_id and forced.already_assessed == 0
    assert forced.total_yuan == first.total_yuan and districts(forced) == districts(first)
    assert by_status(case_findings(world, forced.run_id), "already_assessed") == {}
    remembered = memory(world)
    assert {r["run_id"] for r in remembered} == {forced.run_id}
    assert len(remembered) == len(by_status(case_findings(world, forced.run_id), "imposed"))
    # a later run, then its forced rerun: the same report, referring to the same assessments
    later = run(world, B)
    again = run(world, B, force=True)
    assert again.replaced_run == later.run_id
    assert again.already_assessed == later.already_assessed == len(remembered)
    assert {f["assessed_in_run"] for f in case_findings(world, again.run_id) if f["status"] == "already_assessed"} == {
        forced.run_id}
    assert len(memory(world)) == len(remembered)


def test_export_changes_and_a_version_4_database(world, tmp_path):
    from ecorules.engine._changes import compare_runs, render_text
    from ecorules.engine._export import export_table

    first = run(world, A)
    second = run(world, B)
    out = tmp_path / "assessed.csv"
    assert export_table(world["db"], first.run_id, "assessed", out) == (first.run_id, len(memory(world)))
    exported = pacsv.read_csv(out)
    assert exported.column_names[:3] == ["run_id", "case_id", "uscc"] and exported.num_rows > 200
    assert export_table(world["db"], second.run_id, "assessed", tmp_path / "none.csv") == (second.run_id, 0)
    report = compare_runs(world["db"], first.run_id, second.run_id)
    assert report["already_assessed"] == {"before": 0, "after": second.already_assessed}
    assert report["findings"]["disappeared"]["count"] > 0 and "already assessed" in render_text(report)
    # a database of version 4: read as it is, migrated by the next run (which remembers anew)
    old = tmp_path / "old.sqlite"
    shutil.copy(world["db"], old)
    connection = sqlite3.connect(old)
    connection.executescript(
        "DROP VIEW findings; CREATE VIEW findings AS " + store.FINDINGS_VIEW.replace(
            ", nullif(e.value ->> 6, 0) AS assessed_in_run", "")
        + "; DROP VIEW assessed; DROP TABLE assessed_chunks; ALTER TABLE finding_slots DROP COLUMN assessed;"
        "UPDATE meta SET value = '4' WHERE key = 'schema_version';")
    connection.close()
    with pytest.raises(store.StoreError, match="no table 'assessed'"):
        export_table(old, first.run_id, "assessed", tmp_path / "x.csv")
    third = run(world, C, db=old)
    assert third.already_assessed == 0
    connection = sqlite3.connect(old)
    assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(store.SCHEMA_VERSION)
    assert connection.execute("SELECT count(*) FROM assessed WHERE run_id = ?", (third.run_id,)).fetchone()[0] > 200
    connection.close()


V9_TABLE = """
CREATE TABLE assessed (
    run_id INTEGER NOT NULL, case_id TEXT NOT NULL, uscc TEXT NOT NULL, policy TEXT NOT NULL, version TEXT NOT NULL,
    rule TEXT NOT NULL, kind TEXT NOT NULL, amount_yuan NOT NULL, decided TEXT,
    reason TEXT NOT NULL CHECK (reason IN ('first', 'new decision', 'reassessed')), supersedes_run INTEGER,
    amount_fen INTEGER, unit TEXT);
CREATE INDEX assessed_case ON assessed (case_id);
CREATE INDEX assessed_run ON assessed (run_id);
"""


def test_a_version_9_database_keeps_its_assessments_in_chunks(world, tmp_path):
    """Up to version 9 an assessment was a row of the table ``assessed`` (with its amount in
    fen and its unit from version 8); version 10 moves the rows into chunks read through the
    view of the same name, and the next run reads them as its memory."""
    first = run(world, A)
    second = run(world, B, reassess=True)  # a second generation of the memory, superseding the first
    before = memory(world)
    assert {r["reason"] for r in before} == {"first", "reassessed"}
    assert {r["supersedes_run"] for r in before if r["run_id"] == second.run_id} == {first.run_id}
    assert {r["unit"] for r in before} == {"yuan"} and all(r["amount_fen"] == r["amount_yuan"] * 100 for r in before)
    connection = sqlite3.connect(world["db"])
    # (the rows of the view: a version 9 store kept every assessment as a row, and its
    # finding_slots had no assessed column)
    connection.executescript("CREATE TABLE v12 AS SELECT * FROM assessed; DROP VIEW assessed; DROP TABLE assessed_chunks;"
                             "ALTER TABLE finding_slots DROP COLUMN assessed;" + V9_TABLE + """
        INSERT INTO assessed SELECT run_id, case_id, uscc, policy, version, rule, kind, amount_yuan, decided, reason,
               supersedes_run, amount_fen, unit
        FROM v12 ORDER BY run_id, case_id, rule, kind;
        DROP TABLE v12; UPDATE meta SET value = '9' WHERE key = 'schema_version';""")
    connection.close()
    # the version 9 table, read as it is: it kept no act (act_id came with version 10's chunks)
    assert {r["act_id"] for r in before} > {None}
    before = [{k: v for k, v in r.items() if k != "act_id"} for r in before]
    assert memory(world) == before
    store.connect(world["db"]).close()  # migrated
    connection = sqlite3.connect(world["db"])
    assert connection.execute("SELECT type FROM sqlite_master WHERE name = 'assessed'").fetchone()[0] == "view"
    chunks = connection.execute("SELECT run_id, count(*) FROM assessed_chunks GROUP BY run_id").fetchall()
    connection.close()
    assert {r for r, _ in chunks} == {first.run_id, second.run_id}
    assert [{k: v for k, v in r.items() if k != "act_id"} for r in memory(world)] == before
    assert {r["act_id"] for r in memory(world)} == {None}  # each case read as its own act
    third = run(world, C)
    assert third.already_assessed == len(by_status(case_findings(world, third.run_id), "already_assessed")) > 200
    assert {f["assessed_in_run"] for f in by_status(case_findings(world, third.run_id), "already_assessed").values()} == {
        second.run_id}
    assert len(memory(world)) == len(before)  # nothing assessed anew


def load_v11_store(world: dict) -> None:
    """The store ecorules wrote at schema version 11 over this world (tests/data/stores):
    run 1 assessed every case, run 2 reassessed C000000002 and C000000003 and withdrew the
    art83 fine of C000000009 (its table then said it was time-barred)."""
    seed = sqlite3.connect(world["db"])
    seed.executescript((DATA.parent / "stores" / "v11-cases.sql").read_text(encoding="utf-8"))
    seed.close()


def test_a_version_11_store_keeps_its_memory_when_assessments_become_findings(world):
    """Version 12 stores an assessment as its imposed finding; the assessments a version 11
    store wrote as rows of ``assessed_chunks`` stay there, read through the same view, and the
    next run reports the cases they name as already assessed."""
    load_v11_store(world)
    before = memory(world)
    assert {r["reason"] for r in before} == {"first", "reassessed", "withdrawn"} and len(before) == 438
    store.connect(world["db"]).close()  # what every writer does first: migrate
    assert memory(world) == before
    connection = sqlite3.connect(world["db"])
    assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(store.SCHEMA_VERSION)
    assert connection.execute("SELECT count(*) FROM finding_slots WHERE assessed IS NOT NULL").fetchone()[0] == 0
    connection.close()
    third = run(world, C)
    now = case_findings(world, third.run_id)
    # the withdrawn fine, violating again (the table as run 1 read it), is assessed anew; every
    # other imposed finding is already assessed, by the run that last assessed it
    assert {k for k in by_status(now, "imposed")} == {("C000000009", "test.fines", "art83", "fine")}
    assessed_in = {k: f["assessed_in_run"] for k, f in by_status(now, "already_assessed").items()}
    latest = {}  # the stored memory's current assessment of each key: its row of the highest run
    for r in before:
        latest[(r["case_id"], r["policy"], r["rule"], r["kind"])] = r if r["reason"] != "withdrawn" else None
    assert assessed_in == {k: r["run_id"] for k, r in latest.items() if r is not None}
    assert third.already_assessed == len(assessed_in) == len(latest) - 1  # (but the withdrawn one)
    assert {k[0] for k, run_id in assessed_in.items() if run_id == 2} == {"C000000002", "C000000003"}
    made = [r for r in memory(world) if r["run_id"] == third.run_id]
    assert [(r["case_id"], r["rule"], r["reason"], r["supersedes_run"]) for r in made] == [
        ("C000000009", "art83", "first", None)]
    assert memory(world)[:len(before)] == before
    assert run(world, D).already_assessed == third.already_assessed + 1  # and the new one is remembered


_MEMORY = ("SELECT run_id, case_id, uscc, policy, version, rule, kind, amount_fen, decided, reason, supersedes_run, act_id "
           "FROM assessed ORDER BY run_id, case_id, policy, rule, kind")


def test_db_upgrade_brings_a_version_11_postgresql_store_over_with_its_memory(world, postgres_db):
    """The version 11 store's rows copied into a PostgreSQL schema of version 11 (its
    migrations 10 and 11): ``ecorules db upgrade`` brings it to 12, the assessed view reads
    what it read, and the next run finds the same cases already assessed as on SQLite."""
    from ecorules.engine.store import postgres

    load_v11_store(world)
    url = f"{postgres_db}{'&' if '?' in postgres_db else '?'}schema=v11"
    pg = postgres._open(postgres.StoreUrl.parse(url))
    lite = sqlite3.connect(world["db"])
    try:
        pg.execute("CREATE SCHEMA v11")
        pg.execute("CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)")
        for version in (10, 11):
            for statement in postgres.MIGRATIONS[version]:
                pg.execute(statement)
        pg.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '11')")
        for table in ("runs", "finding_slots", "finding_chunks", "district_totals", "sanction_slots", "sanction_chunks",
                      "rejects", "assessed_chunks"):
            columns = [r[1] for r in lite.execute(f"PRAGMA table_info({table})")]
            rows = lite.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid" if table == "assessed_chunks"
                                else f"SELECT {', '.join(columns)} FROM {table}").fetchall()
            assert rows or table in ("rejects", "sanction_slots", "sanction_chunks")
            quoted = ", ".join(f'"{c}"' for c in columns)
            pg.executemany(f"INSERT INTO {table} ({quoted}) VALUES ({', '.join('?' * len(columns))})", rows)
        pg.execute("SELECT setval(pg_get_serial_sequence('runs', 'id'), (SELECT max(id) FROM runs))")
        before = [tuple(r) for r in pg.execute(_MEMORY).fetchall()]
        assert before == [tuple(r) for r in lite.execute(_MEMORY).fetchall()] and len(before) == 438
    finally:
        pg.close()
        lite.close()
    result = CliRunner().invoke(main, ["db", "upgrade", "--out", url, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["schema_version"] == store.SCHEMA_VERSION == 14
    pg = store.connect(url)
    try:
        assert [tuple(r) for r in pg.execute(_MEMORY).fetchall()] == before
    finally:
        pg.close()
    on_postgres = run_nightly(world["registry"], url, policies=world["policies"], as_of=C, cases=world["cases"], threads=1)
    on_sqlite = run(world, C)
    assert on_postgres.already_assessed == on_sqlite.already_assessed == len(before) - 3 - 1 - 1
    pg = store.connect(url)
    lite = sqlite3.connect(world["db"])
    try:
        # the run's own assessment (the withdrawn fine, assessed anew) is read from its finding on both
        made = [r[1:] for r in pg.execute(_MEMORY).fetchall() if r[0] == on_postgres.run_id]
        assert made == [r[1:] for r in lite.execute(_MEMORY).fetchall() if r[0] == on_sqlite.run_id] and len(made) == 1
    finally:
        pg.close()
        lite.close()


def _child(world: dict, db: Path, as_of: dt.date) -> tuple[subprocess.Popen, float]:
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(world["registry"]), str(db), "2000", as_of.isoformat(), str(world["cases"]),
         str(world["policies"])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = child.stdout.readline()
    assert line.strip() == "ready", (line, child.stderr.read() if child.poll() is not None else "")
    return child, time.monotonic()


def _state(db: Path) -> dict:
    connection = sqlite3.connect(db, timeout=30)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        done = {r[0] for r in connection.execute("SELECT id FROM runs WHERE status = 'done'")}
        remembered = connection.execute("SELECT run_id, count(*) FROM assessed GROUP BY run_id").fetchall()
        assert {r for r, _ in remembered} <= done, (remembered, done)  # nothing of a killed run
        return {"done": done, "assessed": dict(remembered)}
    finally:
        connection.close()


def test_a_killed_run_leaves_no_assessment_behind(tmp_path):
    # the moments are shares of a run, and a run of 30,000 cases (one part of the case stage, as
    # 60,000 were) passes through the same phases, reading, judging and writing the assessments,
    # in half the time (the test took minutes in CI: eight runs, five of them killed)
    world = make_world(tmp_path, enterprises=1500, cases=30_000)
    first, _ = _child(world, world["db"], A)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    base = _state(world["db"])
    (first_run,) = base["done"]
    assert base["assessed"][first_run] > 5_000
    reference = tmp_path / "reference.sqlite"
    shutil.copy(world["db"], reference)
    child, started = _child(world, reference, B)
    assert child.wait(timeout=300) == 0, child.stderr.read()
    duration = time.monotonic() - started
    killed = finished_first = 0
    # moments as shares of the timed run; on a loaded machine a later run may go faster than
    # the timed one (a warm page cache, a quieter moment): a run that finished before its
    # moment shortens the estimate and its share is tried again, as test_nightly_kill does
    shares = [0.15, 0.3, 0.45, 0.6, 0.75]
    while shares and finished_first <= 10:
        share = shares.pop()
        child, started = _child(world, world["db"], B)
        time.sleep(max(0.0, started + duration * share - time.monotonic()))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            killed += 1
        else:
            finished_first += 1
            duration *= 0.8
            shares.insert(0, share)
        child.wait(timeout=60)
        child.stdout.close()
        child.stderr.close()
        state = _state(world["db"])
        if state["done"] == base["done"]:
            assert state["assessed"] == base["assessed"]
    assert killed >= 3, (killed, finished_first)
    child, _ = _child(world, world["db"], B)
    assert child.wait(timeout=300) == 0, child.stderr.read()
    child.stdout.close()
    child.stderr.close()
    state = _state(world["db"])
    assert state["assessed"] == base["assessed"]  # the last run assessed nothing anew
    connection = sqlite3.connect(world["db"])
    last = connection.execute("SELECT max(id) FROM runs WHERE status = 'done'").fetchone()[0]
    statuses = dict(connection.execute(
        "SELECT status, count(*) FROM findings WHERE run_id = ? AND case_id IS NOT NULL GROUP BY status", (last,)).fetchall())
    connection.close()
    expected = sqlite3.connect(reference)
    ref_last = expected.execute("SELECT max(id) FROM runs WHERE status = 'done'").fetchone()[0]
    assert statuses == dict(expected.execute(
        "SELECT status, count(*) FROM findings WHERE run_id = ? AND case_id IS NOT NULL GROUP BY status", (ref_last,)).fetchall())
    expected.close()
    assert "imposed" not in statuses and statuses["already_assessed"] == base["assessed"][first_run]
