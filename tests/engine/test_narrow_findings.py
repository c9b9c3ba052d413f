"""Store version 14: a case slot's finding rows in their own, narrower layout
(``store.CASE_LAYOUT``), read through the same views as version 13's.

tests/data/stores/v13-cases.sql is the store ecorules at 5defd36 (version 13) wrote over the
world of test_assessed_once.py with :func:`second_table`'s changes between its two runs. This
ecorules writes the same two runs into a new store: every view reads the same rows from the
narrower chunks; the version 13 store migrates without a chunk rewritten and reads what it read;
the next run on either store judges alike (its memory read from either layout).
"""

from __future__ import annotations

import json
import sqlite3

import pyarrow as pa
import pytest
from click.testing import CliRunner
from ecorules.engine import store
from ecorules.engine._cli import main
from ecorules.engine._nightly import run_nightly
from test_assessed_once import DATA, A, B, C, make_world, run, write_cases

V13 = DATA.parent / "stores" / "v13-cases.sql"
# every view over findings, in a fixed order, and in the order the view gives them
QUERIES = {
    "findings": "SELECT * FROM findings ORDER BY run_id, policy, rule, kind, record_key, uscc",
    "assessed": "SELECT * FROM assessed ORDER BY run_id, policy, rule, kind, case_id, reason",
    "findings as stored": "SELECT * FROM findings",
}
REASSESS = ["C000000009", "C000000002", "C000000003"]


@pytest.fixture
def world(tmp_path):
    return make_world(tmp_path)


def second_table(world: dict, db) -> None:
    """The case table of the second run, as the dump's: C000000009 time-barred (withdrawn on
    reassessment), the first case after it assessed with no decision date decided since."""
    table = world["table"].to_pylist()
    connection = sqlite3.connect(db)
    assessed = {r[0] for r in connection.execute("SELECT case_id FROM assessed")}
    connection.close()
    next(r for r in table if r["case_id"] == "C000000009")["discovered"] = "2030-01-01"
    undecided = next(r for r in table if r["case_id"] in assessed and r["decided"] is None and r["case_id"] > "C000000009")
    undecided["decided"] = "2026-01-10"
    write_cases(pa.Table.from_pylist(table, schema=world["table"].schema), world["cases"])


def views(db) -> dict[str, list[tuple]]:
    connection = sqlite3.connect(db)
    try:
        return {name: connection.execute(query).fetchall() for name, query in QUERIES.items()}
    finally:
        connection.close()


def load_v13(db) -> None:
    seed = sqlite3.connect(db)
    seed.executescript(V13.read_text(encoding="utf-8"))
    seed.close()


def chunk_text(db) -> int:
    """Characters of the case slots' chunks."""
    connection = sqlite3.connect(db)
    try:
        return connection.execute("SELECT sum(length(c.rows)) FROM finding_chunks c JOIN finding_slots s "
                                  "ON s.run_id = c.run_id AND s.slot = c.slot WHERE s.assessed = 1").fetchone()[0]
    finally:
        connection.close()


def test_the_case_layout_reads_as_version_13s_rows_did(world, tmp_path):
    old = tmp_path / "v13.sqlite"
    load_v13(old)
    run(world, A)
    second_table(world, world["db"])
    run(world, B, reassess=REASSESS)
    written, stored = views(world["db"]), views(old)
    assert {k: len(v) for k, v in written.items()} == {"findings": 1083, "assessed": 439, "findings as stored": 1083}
    assert written == stored
    statuses = {r[9] for r in written["findings"]}
    reasons = {r[9] for r in written["assessed"]}
    assert statuses == {"imposed", "superseded", "already_assessed"}
    assert reasons == {"first", "new decision", "reassessed", "withdrawn"}
    assert any(r[10] is not None for r in written["findings"])  # superseded_by
    assert {r[6] for r in written["findings"] if r[5] is not None} >= {"金水区", "二七区"}  # the districts' payers
    connection = sqlite3.connect(world["db"])
    layouts = {r[0] for r in connection.execute("SELECT layout FROM finding_slots WHERE assessed = 1")}
    connection.close()
    assert layouts == {store.CASE_LAYOUT}
    assert chunk_text(world["db"]) < 0.9 * chunk_text(old)  # (0.86 when written)


def test_a_version_13_store_migrates_and_reads_the_same_findings(world):
    load_v13(world["db"])
    before = views(world["db"])
    stored = sqlite3.connect(world["db"])
    chunks = stored.execute("SELECT * FROM finding_chunks ORDER BY rowid").fetchall()
    stored.close()
    store.connect(world["db"]).close()  # what every writer does first: migrate
    assert views(world["db"]) == before
    migrated = sqlite3.connect(world["db"])
    try:
        assert migrated.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("14",)
        assert migrated.execute("SELECT * FROM finding_chunks ORDER BY rowid").fetchall() == chunks  # none rewritten
    finally:
        migrated.close()


def test_the_next_run_judges_alike_on_a_migrated_store_and_a_new_one(world, tmp_path):
    """Run 3 reads its memory from version 13's rows on the migrated store and from the case
    layout on the new one: the same findings, the same already assessed."""
    old = tmp_path / "v13.sqlite"
    load_v13(old)
    run(world, A)
    second_table(world, world["db"])
    run(world, B, reassess=REASSESS)
    on_new, on_old = run(world, C), run(world, C, db=old)
    assert on_new.already_assessed == on_old.already_assessed > 400
    assert views(world["db"]) == views(old)


def test_a_version_13_postgresql_store_upgrades_and_reads_the_same(world, postgres_db):
    """The version 13 store's rows in a PostgreSQL schema of version 13: ``db upgrade``
    brings it to 14 (no chunk rewritten), its views read what SQLite's read, and the next run
    on it judges as on SQLite, writing the case layout."""
    from ecorules.engine.store import postgres

    load_v13(world["db"])
    url = f"{postgres_db}{'&' if '?' in postgres_db else '?'}schema=v13"
    pg = postgres._open(postgres.StoreUrl.parse(url))
    lite = sqlite3.connect(world["db"])
    try:
        pg.execute("CREATE SCHEMA v13")
        pg.execute("CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)")
        for version in (10, 11, 12, 13):
            for statement in postgres.MIGRATIONS[version]:
                pg.execute(statement)
        pg.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '13')")
        for table in ("runs", "finding_slots", "finding_chunks", "district_totals", "sanction_slots", "sanction_chunks",
                      "rejects", "assessed_chunks", "factor_chunks"):
            columns = [r[1] for r in lite.execute(f"PRAGMA table_info({table})")]
            order = " ORDER BY rowid" if table.endswith("_chunks") else ""  # (the slots have none: WITHOUT ROWID)
            rows = lite.execute(f"SELECT {', '.join(columns)} FROM {table}{order}").fetchall()
            quoted = ", ".join(f'"{c}"' for c in columns)
            pg.executemany(f"INSERT INTO {table} ({quoted}) VALUES ({', '.join('?' * len(columns))})", rows)
        pg.execute("SELECT setval(pg_get_serial_sequence('runs', 'id'), (SELECT max(id) FROM runs))")
    finally:
        pg.close()
        lite.close()
    result = CliRunner().invoke(main, ["db", "upgrade", "--out", url, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["schema_version"] == store.SCHEMA_VERSION == 14
    on_postgres = run_nightly(world["registry"], url, policies=world["policies"], as_of=C, cases=world["cases"], threads=1)
    on_sqlite = run(world, C)
    assert on_postgres.already_assessed == on_sqlite.already_assessed > 400
    pg = store.connect(url)
    lite = sqlite3.connect(world["db"])
    try:
        for name, query in QUERIES.items():
            if name == "findings as stored":  # (PostgreSQL's natural order is its own)
                continue
            mine = [_plain(r) for r in pg.execute(query).fetchall()]
            assert mine == [_plain(r) for r in lite.execute(query).fetchall()], name
        layouts = pg.execute("SELECT run_id, layout FROM finding_slots WHERE assessed = 1 ORDER BY 1").fetchall()
        assert {tuple(r) for r in layouts} == {(1, None), (2, None), (on_postgres.run_id, store.CASE_LAYOUT)}
    finally:
        pg.close()
        lite.close()


def _plain(row) -> tuple:
    """A view row as both stores compare: PostgreSQL's numeric yuan as SQLite's integer or text."""
    return tuple(str(v) if v is not None and not isinstance(v, str) else v for v in row)
