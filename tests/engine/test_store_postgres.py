"""The results store in PostgreSQL against a real server (postgres_server.py): the same results
as the SQLite store, idempotent reruns and upgrades, and no way in through a schema's name or a
password in the URL. The kill, reader and concurrent-run tests are test_nightly_kill.py's,
run on both stores."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from ecorules.engine import store
from ecorules.engine._changes import compare_runs
from ecorules.engine._cli import main
from ecorules.engine._export import export_table
from ecorules.engine._lists import end_by_decision, lists_as_of
from ecorules.engine._nightly import run_nightly

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "examples" / "registry.csv"
CASES = ROOT / "examples" / "cases.csv"
# the case table's cases are of 2024: judged on both days, the second run finds them assessed once
DAYS = (dt.date(2025, 3, 1), dt.date(2025, 6, 30))
EXPORTED = ("findings", "district_totals", "sanctions", "rejects", "assessed")


def in_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


INPUTS = {  # registry, case table, the days of two runs, the tables that must have rows
    "cases": (REGISTRY, CASES, DAYS, ("findings", "sanctions", "assessed")),
    "bad rows": (ROOT / "examples" / "registry_bad.csv", None, (dt.date(2012, 4, 14), dt.date(2013, 6, 30)),
                 ("rejects",)),
}


def scored(out, registry, cases, days) -> list[dict]:
    """Two runs of a registry (and case table), the second on a later day."""
    return [run_nightly(registry, out, cases=cases, as_of=day, progress=False, threads=1).to_dict() for day in days]


def exported(db, tmp_path: Path, label: str) -> dict[str, list[list[str]]]:
    """Every run's rows of every table as CSV rows, the run's id left out (ids differ between
    stores: a rolled-back PostgreSQL sequence keeps its numbers)."""
    tables = {}
    for run in ("previous", "latest"):
        for table in EXPORTED:
            out = tmp_path / f"{label}-{run}-{table}.csv"
            export_table(db, run, table, out)
            with open(out, newline="", encoding="utf-8") as handle:
                rows = list(csv.reader(handle))
            drop = rows[0].index("run_id")
            tables[f"{run} {table}"] = [rows[0]] + [r[:drop] + r[drop + 1:] for r in rows[1:]]
    return tables


def without_ids(value):
    """A report with run and entry ids, times and the store's name left out."""
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items()
                if k not in ("run", "run_id", "since", "id", "first_run", "last_run", "exit_run", "state_from_run",
                             "db", "seconds", "rows_per_second", "replaced_run")}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


@pytest.mark.parametrize("given", INPUTS)
def test_the_same_results_lists_and_changes_as_the_sqlite_store(postgres_db, tmp_path, given):
    registry, cases, days, filled = INPUTS[given]
    sqlite_db, pg = tmp_path / "r.sqlite", in_schema(postgres_db, "ecorules")
    summaries = {label: scored(db, registry, cases, days) for label, db in (("sqlite", sqlite_db), ("postgres", pg))}
    assert without_ids(summaries["postgres"]) == without_ids(summaries["sqlite"])
    first = summaries["postgres"][0]
    assert first["rows_in"] == first["rows_scored"] + first["rows_rejected"] > 0
    tables = {label: exported(db, tmp_path, label) for label, db in (("sqlite", sqlite_db), ("postgres", pg))}
    assert tables["postgres"] == tables["sqlite"]
    assert all(len(tables["postgres"][f"previous {t}"]) > 1 for t in filled)
    if cases is not None:
        assert summaries["postgres"][1]["already_assessed"] > 0
    changes = {label: compare_runs(db, "previous", limit=0) for label, db in (("sqlite", sqlite_db), ("postgres", pg))}
    assert without_ids(changes["postgres"]) == without_ids(changes["sqlite"])
    day = days[1]
    on_lists = {label: lists_as_of(db, day) for label, db in (("sqlite", sqlite_db), ("postgres", pg))}
    assert without_ids(on_lists["postgres"]) == without_ids(on_lists["sqlite"])
    if not on_lists["postgres"]["on_list"]:
        assert cases is None  # (every row of the bad registry is a reject)
        return
    # an entry ended by a decision, in each store: the same entry afterwards
    key = on_lists["postgres"]["on_list"][0]
    ids = {label: next(e["id"] for e in on_lists[label]["on_list"]
                       if (e["list"], e["uscc"], e["rule"]) == (key["list"], key["uscc"], key["rule"]))
           for label in on_lists}
    ended = {label: end_by_decision(db, ids[label], day, "复议决定撤销")
             for label, db in (("sqlite", sqlite_db), ("postgres", pg))}
    assert without_ids(ended["postgres"]) == without_ids(ended["sqlite"])
    assert ended["postgres"]["exit"] == "decision"


def test_a_rerun_reuses_the_run_and_a_forced_one_replaces_it_with_the_same_results(postgres_db, tmp_path):
    pg = in_schema(postgres_db, "ecorules")
    options = {"cases": CASES, "as_of": DAYS[0], "progress": False, "threads": 1}
    first = run_nightly(REGISTRY, pg, **options)
    again = run_nightly(REGISTRY, pg, **options)
    assert again.reused and again.run_id == first.run_id
    forced = run_nightly(REGISTRY, pg, force=True, **options)
    assert forced.replaced_run == first.run_id and forced.run_id != first.run_id
    assert without_ids(forced.to_dict()) == without_ids({**first.to_dict(), "reused": False})
    connection = store.connect(pg, readonly=True)
    try:
        runs = connection.execute("SELECT id, status FROM runs ORDER BY id").fetchall()
        assert runs == [(forced.run_id, "done")]
        orphans = connection.execute("SELECT count(*) FROM finding_chunks WHERE run_id <> ?", (forced.run_id,)).fetchone()
        assert orphans == (0,)
        # the list entries the first run entered are the forced run's now, not entered twice
        entries = connection.execute("SELECT count(*), count(DISTINCT key), min(first_run) FROM list_entries").fetchone()
        assert entries[0] == entries[1] > 0 and entries[2] == forced.run_id
    finally:
        connection.close()


def test_db_upgrade_makes_the_schema_once_and_again_changes_nothing(postgres_db):
    pg = in_schema(postgres_db, "results")
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(main, ["db", "upgrade", "--out", pg, "--format", "json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["schema_version"] == store.SCHEMA_VERSION
    with psycopg.connect(postgres_db) as connection:
        assert connection.execute("SELECT value FROM results.meta WHERE key = 'schema_version'").fetchall() == [
            (str(store.SCHEMA_VERSION),)]
        views = {r[0] for r in connection.execute(
            "SELECT table_name FROM information_schema.views WHERE table_schema = 'results'")}
        assert views == {"findings", "sanctions", "assessed", "list_entries", "case_factors"}


def test_a_schema_of_other_tables_is_refused_and_left_alone(postgres_db):
    with psycopg.connect(postgres_db, autocommit=True) as connection:
        connection.execute("CREATE SCHEMA bureau")
        connection.execute("CREATE TABLE bureau.enterprises (uscc text)")
    with pytest.raises(store.StoreError, match="not an ecorules results store"):
        store.connect(in_schema(postgres_db, "bureau"))
    with psycopg.connect(postgres_db) as connection:
        tables = connection.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'bureau'")
        assert [r[0] for r in tables] == ["enterprises"]


@pytest.mark.parametrize("schema", ['ecorules"; DROP TABLE public.canary; --', "ecorules'); DROP TABLE public.canary; --",
                                    "结果 results"])
def test_a_schema_name_is_a_name_never_sql(postgres_db, schema):
    with psycopg.connect(postgres_db, autocommit=True) as connection:
        connection.execute("CREATE TABLE public.canary (x int)")
    from urllib.parse import quote

    url = in_schema(postgres_db, quote(schema))
    summary = run_nightly(REGISTRY, url, as_of=DAYS[0], progress=False, threads=1)
    assert summary.rows_in > 0
    with psycopg.connect(postgres_db) as connection:
        assert connection.execute("SELECT count(*) FROM public.canary").fetchone() == (0,)
        found = connection.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s "
                                   "AND table_name = 'runs'", (schema,)).fetchone()
        assert found == (1,)
    with store.connect(url, readonly=True) as connection:
        assert connection.execute("SELECT status FROM runs").fetchall() == [("done",)]


def test_a_table_name_given_to_export_is_checked_not_run(postgres_db, tmp_path):
    pg = in_schema(postgres_db, "ecorules")
    run_nightly(REGISTRY, pg, as_of=DAYS[0], progress=False, threads=1)
    with pytest.raises(store.StoreError, match="unknown table"):
        export_table(pg, "latest", "runs; DROP TABLE runs", tmp_path / "x.csv")
    assert store.connect(pg, readonly=True).execute("SELECT count(*) FROM runs").fetchone() == (1,)


@pytest.mark.parametrize("url", ["postgresql://ecorules:s3cret-pw@localhost/bureau?schema=r",
                                 "postgresql:///bureau?password=s3cret-pw&schema=r"])
def test_a_password_in_the_store_url_is_refused_and_never_shown(url):
    result = CliRunner().invoke(main, ["db", "upgrade", "--out", url, "--format", "json"])
    assert result.exit_code == 2
    assert "s3cret-pw" not in result.output and "password" in result.output


def test_the_runs_table_and_summary_name_the_store_without_credentials(postgres_server, postgres_db, monkeypatch):
    """Over TCP with the password from PGPASSWORD: nothing the run writes or shows holds it."""
    tcp = postgres_server.tcp_url(postgres_db.split("?")[0].rsplit("/", 1)[1])
    if tcp is None or postgres_server.password is None:
        pytest.skip("the server given by ECORULES_TEST_POSTGRES has no TCP password to check")
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    url = in_schema(tcp, "ecorules")
    summary = run_nightly(REGISTRY, url, as_of=DAYS[0], progress=False, threads=1)
    shown = json.dumps(summary.to_dict(), ensure_ascii=False)
    assert postgres_server.password not in shown
    with psycopg.connect(postgres_db) as connection:
        row = connection.execute("SELECT * FROM ecorules.runs").fetchone()
    assert postgres_server.password not in json.dumps([str(v) for v in row], ensure_ascii=False)


def test_a_role_that_may_only_write_rows_runs_once_the_owner_has_upgraded(postgres_db):
    """Production: the schema's owner runs ``db upgrade``; the nightly job's role may read and
    write rows, not make tables, and a run at the current version makes none."""
    pg = in_schema(postgres_db, "ecorules")
    assert CliRunner().invoke(main, ["db", "upgrade", "--out", pg]).exit_code == 0
    role = "nightly_" + postgres_db.split("?")[0].rsplit("/", 1)[1]
    database = postgres_db.split("?")[0].rsplit("/", 1)[1]
    with psycopg.connect(postgres_db, autocommit=True) as connection:
        connection.execute(f'CREATE ROLE "{role}" LOGIN')
        connection.execute(f'REVOKE CREATE ON DATABASE "{database}" FROM PUBLIC')
        connection.execute(f'GRANT USAGE ON SCHEMA ecorules TO "{role}"')
        connection.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ecorules TO "{role}"')
        connection.execute(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA ecorules TO "{role}"')
    as_role = pg.replace("postgresql://postgres@", f"postgresql://{role}@", 1)
    assert as_role != pg
    try:
        summary = run_nightly(REGISTRY, as_role, cases=CASES, as_of=DAYS[1], progress=False, threads=1)
        assert summary.status == "done" and summary.rows_in > 0
        assert lists_as_of(as_role, DAYS[1])["on_list"]
    finally:
        with psycopg.connect(postgres_db, autocommit=True) as connection:
            connection.execute(f'DROP OWNED BY "{role}"')
            connection.execute(f'DROP ROLE "{role}"')


def test_a_run_on_dask_writes_into_postgresql_what_a_local_run_writes(postgres_db, tmp_path):
    """``ecorules run --engine dask --out postgresql://...``: the partitions scored on the
    cluster, the store written by the driver through the same writer, one transaction."""
    pytest.importorskip("distributed", reason='Dask is not installed: pip install "ecorules[dask]"')
    from distributed_data import bad_registry

    registry = bad_registry(tmp_path / "registry")  # rejects of every kind, keys repeated across files
    outs = {"dask": in_schema(postgres_db, "on_dask"), "local": in_schema(postgres_db, "local")}
    result = CliRunner().invoke(main, ["run", "--registry", str(registry), "--out", outs["dask"], "--as-of",
                                       "2012-04-14", "--engine", "dask", "--threads", "2", "--format", "json"])
    assert result.exit_code == 1, result.output  # done, with rejected rows
    remote = json.loads(result.output)
    local = run_nightly(registry, outs["local"], as_of=dt.date(2012, 4, 14), progress=False).to_dict()
    assert without_ids(remote) == without_ids(local)
    assert local["rows_rejected"] > 500 and local["findings"] > 50
    tables = {}
    for label, out in outs.items():
        for table in EXPORTED:
            export_table(out, "latest", table, tmp_path / f"{label}-{table}.csv")
            with open(tmp_path / f"{label}-{table}.csv", newline="", encoding="utf-8") as handle:
                rows = list(csv.reader(handle))
            drop = rows[0].index("run_id")
            tables[label, table] = sorted(r[:drop] + r[drop + 1:] for r in rows[1:])
    assert all(tables["dask", t] == tables["local", t] for t in EXPORTED)
    assert tables["local", "findings"] and tables["local", "rejects"] and tables["local", "sanctions"]


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_export_and_changes_read_one_snapshot_while_a_run_commits_between_their_statements(
        postgres_db, tmp_path, monkeypatch, backend):
    # a forced rerun of the latest day replaces its run (its rows deleted, a new id) and
    # commits just after the reader resolved "latest": read statement by statement, the reader
    # would find the run it resolved gone (no rows, every finding "disappeared")
    db = in_schema(postgres_db, "ecorules") if backend == "postgres" else tmp_path / "r.sqlite"
    scored(db, REGISTRY, CASES, DAYS)
    export_table(db, "latest", "findings", tmp_path / "before.csv")
    before_changes = compare_runs(db, "previous", limit=0)
    assert before_changes["findings"]["appeared"]["count"] + before_changes["findings"]["disappeared"]["count"] > 0
    reran = []
    run_unit = store.run_unit

    def a_run_commits_meanwhile(connection, run_id):
        if not reran:
            reran.append(run_nightly(REGISTRY, db, cases=CASES, as_of=DAYS[1], force=True, progress=False, threads=1))
        return run_unit(connection, run_id)

    monkeypatch.setattr(store, "run_unit", a_run_commits_meanwhile)
    run_id, rows = export_table(db, "latest", "findings", tmp_path / "during.csv")
    assert reran and reran[0].run_id != run_id  # the rerun came between the statements, under a new id
    assert rows > 0
    assert (tmp_path / "during.csv").read_text(encoding="utf-8") == (tmp_path / "before.csv").read_text(encoding="utf-8")
    reran.clear()
    during = compare_runs(db, "previous", limit=0)
    assert reran and reran[0].run_id != during["run"]
    assert without_ids(during) == without_ids(before_changes)
    # and afterwards the new run is the latest, with the same results
    monkeypatch.setattr(store, "run_unit", run_unit)
    after_id, _ = export_table(db, "latest", "findings", tmp_path / "after.csv")
    assert after_id == reran[0].run_id
