"""PostgreSQL tables and read-only queries as registries and case tables (issue 12, reading),
against a real server (tests/engine/postgres_server.py): the README's totals from the example
files loaded into typed tables, NULLs and wrong types as the same rejects as a CSV file,
passwords refused and never shown, injection through identifiers refused by quoting."""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from ecorules.engine._cli import main as cli
from ecorules.engine._nightly import run_nightly
from ecorules.engine._sources import (
    ColumnResolver,
    Registry,
    SourceError,
    header_table,
    normalize_header,
)
from ecorules.engine.sources._pg_url import PostgresUrl, redact
from ecorules.rules import Kind, load_policies

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
POLICIES = load_policies()
AS_OF = dt.date(2025, 6, 30)
_SQL_TYPES = {Kind.INTEGER: "bigint", Kind.BOOLEAN: "boolean", Kind.DATE: "date", Kind.DECIMAL: "numeric"}
_TRUE, _FALSE = {"true", "1", "是"}, {"false", "0", "否"}


def _connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def _column_type(header: str) -> tuple[str, Kind | None]:
    name = header_table(POLICIES.facts).get(normalize_header(header))
    if name is None:
        return "text", None
    kind = POLICIES.facts[name].type.kind
    if name.endswith("_yuan"):  # money as numeric: read back as its exact decimal text
        return "numeric(16, 2)", kind
    return _SQL_TYPES.get(kind, "text"), kind


def _value(text: str, kind: Kind | None):
    if text == "":
        return None  # an empty CSV cell is a NULL in the database
    if kind is Kind.BOOLEAN:
        return True if text.strip().lower() in _TRUE else False if text.strip().lower() in _FALSE else text
    return text


def load_csv(url: str, path: Path, table: str, *, typed: bool = True) -> None:
    """``path`` as ``table``: each column of the fact's type (text when ``typed`` is False)."""
    from psycopg import sql

    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    types = [_column_type(h) if typed else ("text", None) for h in header]
    columns = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(h), sql.SQL(t)) for h, (t, _) in zip(header, types, strict=True))
    with _connect(url) as connection:
        connection.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(table), columns))
        with connection.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table))) as copy:
            for row in body:
                copy.write_row([_value(v, kind) for v, (_, kind) in zip(row, types, strict=True)])


def _ledger(db: Path, run_id: int) -> tuple[list, list]:
    connection = sqlite3.connect(db)
    findings = sorted(connection.execute(
        "SELECT uscc, case_id, rule, amount_yuan, payer FROM findings WHERE run_id = ?", (run_id,)).fetchall(),
        key=repr)
    rejects = sorted(connection.execute(
        'SELECT row, "column", value, reason FROM rejects WHERE run_id = ?', (run_id,)).fetchall(), key=repr)
    connection.close()
    return findings, rejects


# --- the URL, no server needed ---------------------------------------------------------------


def test_a_url_names_a_table_or_a_query_and_passes_the_rest_to_libpq():
    url = PostgresUrl.parse("postgresql://reader@db.example:5433/bureau?sslmode=verify-full&schema=监管&table=名录")
    assert (url.table, url.schema, url.query) == ("名录", "监管", None)
    assert url.libpq_parameters() == {"user": "reader", "host": "db.example", "port": "5433", "dbname": "bureau",
                                      "sslmode": "verify-full"}
    query = PostgresUrl.parse("postgresql:///bureau?application_name=ecorules&query=SELECT a+b, 'x&y' FROM t -- #1")
    assert query.query == "SELECT a+b, 'x&y' FROM t -- #1" and query.table is None
    assert query.libpq_parameters()["application_name"] == "ecorules"
    assert PostgresUrl.parse("postgresql:///b?query=SELECT%20uscc%20FROM%20t").query == "SELECT uscc FROM t"


@pytest.mark.parametrize("text", [
    "postgresql://reader:s3cret-pw@db.example/bureau?table=t",
    "postgres://reader:s3cret-pw@/bureau?table=t",
    "postgresql:///bureau?password=s3cret-pw&table=t",
    "postgresql:///bureau?table=t&PASSWORD=s3cret-pw",
])
def test_a_password_in_the_url_is_refused_without_being_shown(text):
    with pytest.raises(SourceError) as caught:
        PostgresUrl.parse(text)
    message = str(caught.value)
    assert "s3cret-pw" not in message and "PGPASSWORD" in message and ".pgpass" in message
    assert "s3cret-pw" not in redact(text)


@pytest.mark.parametrize(("text", "words"), [
    ("postgresql:///bureau", "give one of"),
    ("postgresql:///bureau?table=a&query=SELECT 1", "give one of"),
    ("postgresql:///bureau?table=", "non-empty"),
    ("postgresql:///bureau?table=a&table=b", "given twice"),
    ("postgresql:///bureau?table=a&no_such_option=1", "libpq cannot read the URL"),
])
def test_a_url_that_names_nothing_or_too_much_is_refused(text, words):
    with pytest.raises(SourceError, match=words):
        PostgresUrl.parse(text)


def test_the_cli_refuses_a_password_on_the_command_line_and_never_echoes_it(tmp_path):
    url = "postgresql://u:s3cret-pw@localhost/db?table=t"
    policies = str(EXAMPLES.parent / "policies")
    for command in (["run", "--registry", url, "--out", str(tmp_path / "o.sqlite"), "--format", "json"],
                    ["diff", "--base", policies, "--proposed", policies, "--registry", url],
                    ["run", "--registry", str(EXAMPLES / "registry.csv"), "--cases", url, "--out", str(tmp_path / "c.sqlite")]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2, result.output
        assert "s3cret-pw" not in result.output and "PGPASSWORD" in result.output, command


# --- against the server ----------------------------------------------------------------------


def test_the_example_registry_and_case_table_in_postgresql_give_the_readme_totals(postgres_db, tmp_path):
    """Typed tables (booleans, integers, money as numeric, dates) give the figures of the CSV
    files they were loaded from: 136,000,000 yuan for the registry, 150,271,250 with the cases."""
    load_csv(postgres_db, EXAMPLES / "registry.csv", "enterprises")
    load_csv(postgres_db, EXAMPLES / "cases.csv", "案件")
    registry, cases = f"{postgres_db}&table=enterprises", f"{postgres_db}&table=案件"
    alone = run_nightly(registry, tmp_path / "alone.sqlite", as_of=AS_OF, progress=False)
    assert alone.status == "done" and alone.total_yuan == 136_000_000 and alone.rows_in == 50
    from_csv = run_nightly(EXAMPLES / "registry.csv", tmp_path / "csv.sqlite", as_of=AS_OF, cases=EXAMPLES / "cases.csv",
                           progress=False)
    from_pg = run_nightly(registry, tmp_path / "pg.sqlite", as_of=AS_OF, cases=cases, progress=False)
    assert from_csv.total_yuan == 150_271_250
    for field in ("rows_in", "rows_scored", "rows_rejected", "total_yuan", "findings", "districts", "lists", "tables"):
        assert getattr(from_pg, field) == getattr(from_csv, field), field
    assert _ledger(tmp_path / "pg.sqlite", from_pg.run_id)[0] == _ledger(tmp_path / "csv.sqlite", from_csv.run_id)[0]
    about, of_cases = from_pg.sources  # the registry's table, then the case table's
    assert about["format"] == "postgresql" and about["table"] == "enterprises" and about["rows_in"] == 50
    assert of_cases["table"] == "案件" and of_cases["rows_in"] == from_csv.tables["cases"]["rows_in"]
    # the same content again: the run is reused, its fingerprint confirmed by the table's content
    again = run_nightly(registry, tmp_path / "pg.sqlite", as_of=AS_OF, cases=cases, progress=False)
    assert again.reused and again.run_id == from_pg.run_id
    with _connect(postgres_db) as connection:
        connection.execute("UPDATE enterprises SET untreated_outfalls = untreated_outfalls + 1 WHERE untreated_outfalls > 0")
    changed = run_nightly(registry, tmp_path / "pg.sqlite", as_of=AS_OF, cases=cases, progress=False)
    assert not changed.reused and changed.total_yuan != from_pg.total_yuan


def test_nulls_and_wrong_types_are_the_rejects_of_a_csv_file_of_the_same_rows(postgres_db, tmp_path):
    lines = (EXAMPLES / "registry.csv").read_text(encoding="utf-8").splitlines()[:7]
    cells = [next(csv.reader([line])) for line in lines]
    cells[1][4] = ""  # untreated_outfalls NULL: required, a reject
    cells[2][3] = ""  # industrial NULL
    cells[3][5] = "三"  # a word in a count (the text table only)
    cells[4][2] = "郑州"  # no such district
    cells[5][0] = ""  # no code
    text = tmp_path / "r.csv"
    with text.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(cells)
    load_csv(postgres_db, text, "as_text", typed=False)
    typed = [row[:] for row in cells]
    typed[3][5] = "3"
    typed_csv = tmp_path / "typed.csv"
    with typed_csv.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(typed)
    load_csv(postgres_db, typed_csv, "typed")
    for table, source in (("as_text", text), ("typed", typed_csv)):
        from_csv = run_nightly(source, tmp_path / f"{table}.csv.sqlite", as_of=AS_OF, progress=False)
        from_pg = run_nightly(f"{postgres_db}&table={table}", tmp_path / f"{table}.pg.sqlite", as_of=AS_OF, progress=False)
        assert from_pg.rows_in == from_pg.rows_scored + from_pg.rows_rejected == 6
        assert (from_pg.rows_scored, from_pg.total_yuan) == (from_csv.rows_scored, from_csv.total_yuan), table
        csv_rejects = _ledger(tmp_path / f"{table}.csv.sqlite", from_csv.run_id)[1]
        pg_rejects = _ledger(tmp_path / f"{table}.pg.sqlite", from_pg.run_id)[1]
        # a CSV line counts the header as line 1; a result's row is its position
        assert [(row - 1, *rest) for row, *rest in csv_rejects] == [tuple(r) for r in pg_rejects], table
        assert len(pg_rejects) == (5 if table == "as_text" else 4)


def test_a_query_is_read_only_and_one_statement(postgres_db, tmp_path):
    load_csv(postgres_db, EXAMPLES / "registry.csv", "enterprises")
    read_only = (f"{postgres_db}&query=SELECT * FROM enterprises "
                 "WHERE current_setting('transaction_read_only') = 'on' AND district = '二七区' ORDER BY uscc;")
    summary = run_nightly(read_only, tmp_path / "q.sqlite", as_of=AS_OF, progress=False)
    with _connect(postgres_db) as connection:
        expected = connection.execute("SELECT count(*) FROM enterprises WHERE district = '二七区'").fetchone()[0]
    assert summary.status == "done" and summary.rows_in == expected > 0
    for query in ("WITH gone AS (DELETE FROM enterprises RETURNING *) SELECT * FROM gone",
                  "SELECT * FROM enterprises; DROP TABLE enterprises",
                  "SELECT * FROM enterprises) TO STDOUT; DROP TABLE enterprises; COPY (SELECT 1"):
        with pytest.raises(SourceError):
            run_nightly(f"{postgres_db}&query={query}", tmp_path / "bad.sqlite", as_of=AS_OF, progress=False)
    with _connect(postgres_db) as connection:
        assert connection.execute("SELECT count(*) FROM enterprises").fetchone()[0] == 50


def test_the_reads_of_a_run_see_one_snapshot_and_the_next_run_a_new_one(postgres_db):
    """While a reader of a database lives, every read of it (another table, the keys' first
    pass, the fingerprint in its thread) sees the rows as they were when the first began:
    the rows hashed are the rows scored. Once the readers are gone, the next sees the change."""
    load_csv(postgres_db, EXAMPLES / "registry.csv", "enterprises")
    url = f"{postgres_db}&table=enterprises"

    def count(registry):
        return sum(batch.rows_in for batch in registry.batches())

    first = Registry(url, _resolver())
    fingerprint = first.fingerprint()
    with _connect(postgres_db) as connection:
        connection.execute("DELETE FROM enterprises WHERE district = '二七区'")
        left = connection.execute("SELECT count(*) FROM enterprises").fetchone()[0]
    assert left < 50
    second = Registry(url, _resolver())  # opened after the change, while the first lives
    assert count(first) == count(second) == 50
    assert second.fingerprint() == first.fingerprint() == fingerprint
    del first, second
    later = Registry(url, _resolver())
    assert count(later) == left and later.fingerprint() != fingerprint


def test_a_run_reads_its_table_once_and_hashes_the_rows_it_scores(postgres_db, tmp_path, monkeypatch):
    """The fingerprint's read (a thread of its own) hands its batches to the scoring: one
    read of the table per run. A scoring read that starts after the fingerprint's has gone
    too far ahead reads for itself, and scores and hashes the same rows."""
    from ecorules.engine.sources import _postgres

    load_csv(postgres_db, EXAMPLES / "registry.csv", "enterprises")
    url = f"{postgres_db}&table=enterprises"
    reads = []
    original = _postgres.PostgresSource._record_batches

    def counted(self):
        reads.append(self.table)
        yield from original(self)

    monkeypatch.setattr(_postgres.PostgresSource, "_record_batches", counted)
    run_nightly(url, tmp_path / "once.sqlite", as_of=AS_OF, progress=False)
    assert reads == ["enterprises"]

    def read(registry):
        fingerprint = registry.fingerprint()  # the whole table hashed before the scoring asks
        return fingerprint, [(b.rows.tolist(), b.table.to_pydict()) for b in registry.batches()]

    before = len(reads)
    held = read(Registry(url, _resolver()))  # the table is under _AHEAD_BYTES: held for the scoring
    assert len(reads) == before + 1
    monkeypatch.setattr(_postgres, "_AHEAD_BYTES", 1)  # held no more: the scoring reads for itself
    alone = read(Registry(url, _resolver()))
    assert len(reads) == before + 3 and alone == held and len(held[1][0][0]) == 50
    scored_first = Registry(url, _resolver())  # the scoring's read first: the fingerprint's is its own
    assert sum(b.rows_in for b in scored_first.batches()) == 50 and scored_first.fingerprint() == held[0]
    assert len(reads) == before + 5
    del scored_first  # (while a reader lives, every read shares its snapshot)

    with _connect(postgres_db) as connection:  # one value changed: another input
        connection.execute("UPDATE enterprises SET untreated_outfalls = coalesce(untreated_outfalls, 0) + 1 "
                           "WHERE uscc = (SELECT min(uscc) FROM enterprises)")
    changed = run_nightly(url, tmp_path / "once.sqlite", as_of=AS_OF, progress=False)
    assert not changed.reused


INJECTIONS = ['enterprises"; DROP TABLE keep; --', 'x" WHERE 1=1) TO STDOUT; DROP TABLE keep; --',
              "enterprises'; DROP TABLE keep; --"]


def _resolver(extra=None):
    return ColumnResolver(POLICIES.facts, {n: [] for n in ("uscc", "name", "district")}, extra)


@pytest.mark.parametrize("name", INJECTIONS)
def test_injection_through_a_table_or_schema_name_reads_only_that_name(postgres_db, name):
    """A name is one quoted identifier: a table of that very name is read, and where there
    is none the error says so; the table ``keep`` survives every attempt."""
    from psycopg import sql

    load_csv(postgres_db, EXAMPLES / "registry.csv", "keep")
    with pytest.raises(SourceError, match="no table"):
        Registry(f"{postgres_db}&table={name}", _resolver())
    with pytest.raises(SourceError, match="no table"):
        Registry(f"{postgres_db}&schema={name}&table=keep", _resolver())
    with _connect(postgres_db) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE TABLE {} AS SELECT * FROM keep LIMIT 3").format(sql.Identifier(name, name)))
    for url in (f"{postgres_db}&schema={name}&table={name}",
                f"{postgres_db}&schema={name}&query=SELECT * FROM {sql.Identifier(name).as_string(None)}"):
        rows = sum(batch.table.num_rows for batch in Registry(url, _resolver()).batches())
        assert rows == 3, url
    with _connect(postgres_db) as connection:
        assert connection.execute("SELECT count(*) FROM keep").fetchone()[0] == 50


def test_injection_through_a_column_alias_selects_only_that_column(postgres_db):
    load_csv(postgres_db, EXAMPLES / "registry.csv", "keep")
    alias = 'n" FROM keep; DROP TABLE keep; SELECT ("x'
    quoted = '"' + alias.replace('"', '""') + '"'
    url = f"{postgres_db}&query=SELECT uscc, district, name AS {quoted} FROM keep"
    registry = Registry(url, _resolver({"name": [alias]}))
    tables = [batch.table for batch in registry.batches()]
    assert sum(t.num_rows for t in tables) == 50 and sorted(tables[0].column_names) == ["district", "name", "uscc"]
    assert tables[0]["name"][0].as_py().startswith("郑州")
    with _connect(postgres_db) as connection:
        assert connection.execute("SELECT count(*) FROM keep").fetchone()[0] == 50


def test_credentials_come_from_the_environment_and_appear_nowhere(postgres_server, postgres_db, tmp_path,
                                                                   monkeypatch, caplog):
    """Over TCP the server asks for a password: PGPASSWORD gives it; the runs table's source,
    the summary (--format json), the log and an error show the URL without it."""
    tcp = postgres_server.tcp_url(postgres_db.split("?")[0].rsplit("/", 1)[1])
    if tcp is None or postgres_server.password is None:
        pytest.skip("the server in use has no password login to test (ECORULES_TEST_POSTGRES)")
    load_csv(postgres_db, EXAMPLES / "registry.csv", "enterprises")
    secret = postgres_server.password
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with pytest.raises(SourceError, match="password") as refused:
        Registry(f"{tcp}?table=enterprises", _resolver())
    assert secret not in str(refused.value)
    monkeypatch.setenv("PGPASSWORD", secret)
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "out.sqlite"
    result = CliRunner().invoke(cli, ["run", "--registry", f"{tcp}?table=enterprises&sslmode=disable", "--out", str(db),
                                      "--as-of", str(AS_OF), "--format", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["total_yuan"] == 136_000_000
    connection = sqlite3.connect(db)
    stored = "\n".join(str(value) for row in connection.execute("SELECT * FROM runs") for value in row)
    (source,) = connection.execute("SELECT source FROM runs").fetchone()
    connection.close()
    assert source == f"{tcp}?sslmode=disable&table=enterprises"
    for text in (result.output, stored, caplog.text):
        assert secret not in text
    # sslmode reaches libpq: the throwaway server has no TLS, and require says so
    with pytest.raises(SourceError, match="SSL") as no_tls:
        Registry(f"{tcp}?sslmode=require&table=enterprises", _resolver())
    assert secret not in str(no_tls.value)


def test_a_float_amount_is_rejected_as_from_parquet_and_a_numeric_read_exactly(postgres_db, tmp_path):
    """Money is never a float: a double precision fine is a reject per row; numeric(16,2)
    with cents is read as its exact text (and refused as yuan, as '300000.50' in a CSV file)."""
    load_csv(postgres_db, EXAMPLES / "registry.csv", "enterprises")
    load_csv(postgres_db, EXAMPLES / "cases.csv", "cases")
    with _connect(postgres_db) as connection:
        connection.execute('UPDATE cases SET "罚款数额" = 300000.50 WHERE "案件编号" = \'ZZ-2024-002\'')
        connection.execute('CREATE TABLE cases_float AS SELECT * FROM cases')
        connection.execute('ALTER TABLE cases_float ALTER COLUMN "罚款数额" TYPE double precision')
    registry = f"{postgres_db}&table=enterprises"
    for table in ("cases", "cases_float"):
        summary = run_nightly(registry, tmp_path / f"{table}.sqlite", as_of=AS_OF, cases=f"{postgres_db}&table={table}",
                              progress=False)
        assert summary.tables["cases"]["rows_rejected"] >= 1, table
        rejects = _ledger(tmp_path / f"{table}.sqlite", summary.run_id)[1]
        assert any(column == "罚款数额" for _, column, _, _ in rejects), (table, rejects)


def test_tables_of_other_kinds_from_postgresql_score_as_their_csv_files(postgres_db, tmp_path):
    """--records KIND=URL: the README's river sections, districts, reports and dust sites."""
    kinds = {"river_section": "river_sections", "district": "districts", "report": "reports", "dust_site": "dust_sites"}
    for name in kinds.values():
        load_csv(postgres_db, EXAMPLES / f"{name}.csv", name)
    as_of = dt.date(2019, 1, 31)
    from_csv = run_nightly(EXAMPLES / "registry.csv", tmp_path / "csv.sqlite", as_of=as_of, progress=False,
                           tables={kind: EXAMPLES / f"{name}.csv" for kind, name in kinds.items()})
    load_csv(postgres_db, EXAMPLES / "registry.csv", "enterprises")
    from_pg = run_nightly(f"{postgres_db}&table=enterprises", tmp_path / "pg.sqlite", as_of=as_of, progress=False,
                          tables={kind: f"{postgres_db}&table={name}" for kind, name in kinds.items()})
    assert from_csv.tables["river_section"]["total_yuan"] == 87_778  # the README's figure
    for field in ("rows_in", "rows_scored", "rows_rejected", "total_yuan", "districts", "lists", "tables"):
        assert getattr(from_pg, field) == getattr(from_csv, field), field
