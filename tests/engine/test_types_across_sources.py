"""Types the same from every source (issue 11, point 6): one set of enterprises, written as a
CSV file, a Parquet file with typed columns, an SQLite table with SQLite's own types and as
Python records for the library, is judged alike: the same findings for the same enterprises
(named by their codes as GB 32100 writes them) and the same rows rejected for the same column.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ecorules.engine import Evaluator
from ecorules.engine._nightly import run_nightly
from ecorules.rules import RecordError, load_policies
from nightly_data import usccs

AS_OF = dt.date(2012, 4, 14)
POLICIES = load_policies()
A, B, C, D, E, F = usccs(np.random.default_rng(23), 6).tolist()


def full_width(text: str) -> str:
    return text.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})


# Each value as the source's own type would hold it: (CSV text, Parquet/SQLite/library value).
# A column is one type in Parquet: booleans as int64 0/1, outfalls as float64, cases as text.
ROWS = [
    # blanks around the code and the district; 0/1 booleans; a whole float; "2.0"
    {"uscc": f"  {A} ", "district": " 金水区\u3000", "industrial": 1, "untreated_outfalls": 3.0,
     "direct_discharge_cases": "2.0", "illegal_discharge_cases": 0, "high_pollution": 0, "high_energy": 1},
    # a code and a count typed in full width
    {"uscc": full_width(B), "district": "二七区", "industrial": 0, "untreated_outfalls": 1.0,
     "direct_discharge_cases": "３", "illegal_discharge_cases": 0, "high_pollution": 1, "high_energy": 0},
    # an alias of a district (a management committee's own name for itself)
    {"uscc": C, "district": "郑州高新区管委会", "industrial": 1, "untreated_outfalls": 0.0,
     "direct_discharge_cases": "1", "illegal_discharge_cases": 2, "high_pollution": 0, "high_energy": 0},
    # rejected everywhere: 2 is no boolean
    {"uscc": D, "district": "中原区", "industrial": 2, "untreated_outfalls": 1.0,
     "direct_discharge_cases": "0", "illegal_discharge_cases": 0, "high_pollution": 0, "high_energy": 0},
    # rejected everywhere: 3.5 outfalls
    {"uscc": E, "district": "中原区", "industrial": 0, "untreated_outfalls": 3.5,
     "direct_discharge_cases": "0", "illegal_discharge_cases": 0, "high_pollution": 0, "high_energy": 0},
    # rejected everywhere: '2.5' cases
    {"uscc": F, "district": "中原区", "industrial": 1, "untreated_outfalls": 0.0,
     "direct_discharge_cases": "2.5", "illegal_discharge_cases": 0, "high_pollution": 0, "high_energy": 0},
]
BAD = {D: "industrial", E: "untreated_outfalls", F: "direct_discharge_cases"}
COLUMNS = list(ROWS[0])


def csv_text(value) -> str:
    if isinstance(value, float):
        return repr(value)  # 3.0, 3.5: as an export writes a float
    return str(value)


def write_csv(path: Path) -> Path:
    lines = [",".join(["name", *COLUMNS])]
    lines += [",".join(["郑州示例有限公司", *(csv_text(row[c]) for c in COLUMNS)]) for row in ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_parquet(path: Path) -> Path:
    types = {"uscc": pa.string(), "district": pa.string(), "untreated_outfalls": pa.float64(),
             "direct_discharge_cases": pa.string()}
    table = pa.table({"name": ["郑州示例有限公司"] * len(ROWS),
                      **{c: pa.array([row[c] for row in ROWS], types.get(c, pa.int64())) for c in COLUMNS}})
    pq.write_table(table, path)
    return path


def write_sqlite(path: Path) -> str:
    connection = sqlite3.connect(path)
    # no declared types: each cell keeps the type it is given (INTEGER, REAL, TEXT)
    connection.execute(f"CREATE TABLE registry (name, {', '.join(COLUMNS)})")
    connection.executemany(f"INSERT INTO registry VALUES ({', '.join('?' * (len(COLUMNS) + 1))})",
                           [("郑州示例有限公司", *(row[c] for c in COLUMNS)) for row in ROWS])
    connection.commit()
    connection.close()
    return f"{path}:registry"


def batch_run(source, tmp_path: Path) -> tuple[dict, dict]:
    """Findings per enterprise and rejected columns per row number, from the ledger."""
    db = tmp_path / "out.sqlite"
    summary = run_nightly(source, db, as_of=AS_OF, progress=False, force=True)
    connection = sqlite3.connect(db)
    findings: dict = {}
    for uscc, rule, amount, payer in connection.execute(
            "SELECT uscc, rule, amount_yuan, payer FROM findings WHERE run_id = ?", (summary.run_id,)):
        findings.setdefault(uscc, set()).add((rule, amount, payer))
    rejects = {row: column for row, column in connection.execute(
        'SELECT row, "column" FROM rejects WHERE run_id = ?', (summary.run_id,))}
    connection.close()
    assert summary.rows_in == summary.rows_scored + summary.rows_rejected == len(ROWS)
    return findings, rejects


def library() -> tuple[dict, dict]:
    findings: dict = {}
    rejects: dict = {}
    with Evaluator(POLICIES, backend="python") as evaluator:
        for position, row in enumerate(ROWS):
            try:
                decision = evaluator.evaluate({"name": "郑州示例有限公司", **row}, as_of=AS_OF)
            except RecordError as error:
                rejects[position] = error.field
                continue
            assert decision.subject in (A, B, C)  # trimmed, and in half width
            for finding in decision.findings:
                findings.setdefault(decision.subject, set()).add((finding.rule, finding.amount_yuan, finding.payer))
    return findings, rejects


def test_every_source_and_the_library_judge_the_same_rows_alike(tmp_path):
    expected_findings, expected_rejects = library()
    assert set(expected_findings) == {A, B, C}  # every enterprise with cases fired something
    assert expected_rejects == {3: "industrial", 4: "untreated_outfalls", 5: "direct_discharge_cases"}
    first_row = {"csv": 2, "parquet": 1, "sqlite": 1}  # a CSV's header is line 1; a record's position; rowid
    writers = {"csv": lambda: write_csv(tmp_path / "r.csv"), "parquet": lambda: write_parquet(tmp_path / "r.parquet"),
               "sqlite": lambda: write_sqlite(tmp_path / "r.sqlite")}
    for name, write in writers.items():
        findings, rejects = batch_run(write(), tmp_path)
        assert findings == expected_findings, name
        assert rejects == {position + first_row[name]: column for position, column in expected_rejects.items()}, name


@pytest.mark.parametrize(("fact", "raw", "value"), [
    ("industrial", 1, True), ("industrial", 0, False), ("industrial", "1", True), ("industrial", 1.0, True),
    ("industrial", "是", True), ("industrial", "ＴＲＵＥ", True),
    ("untreated_outfalls", "3.0", 3), ("untreated_outfalls", 3.0, 3), ("untreated_outfalls", "３", 3),
    ("untreated_outfalls", "３．００", 3), ("untreated_outfalls", " 3 ", 3),
    ("name", "  郑州示例（化工）有限公司 ", "郑州示例（化工）有限公司"),
])
def test_what_each_type_accepts(fact, raw, value):
    from ecorules.rules._records import coerce

    got = coerce(POLICIES.facts[fact], raw)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(("fact", "raw"), [
    ("industrial", 2), ("industrial", -1), ("industrial", "2"), ("industrial", 0.5),
    ("untreated_outfalls", "3.5"), ("untreated_outfalls", "3."), ("untreated_outfalls", "3e0"),
    ("untreated_outfalls", True), ("uscc", A.lower()),
])
def test_what_each_type_refuses(fact, raw):
    from ecorules.rules._records import coerce

    with pytest.raises(RecordError):
        coerce(POLICIES.facts[fact], raw)


def test_a_case_written_with_a_full_width_uscc_joins_its_enterprise(tmp_path):
    examples = Path(__file__).resolve().parents[2] / "examples"
    lines = (examples / "cases.csv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    code = rows[0].split(",")[2]
    rows = [line.replace(code, f" {full_width(code)} ") if k == 0 else line for k, line in enumerate(rows)]
    (tmp_path / "cases.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    results = {}
    for name, cases in (("as written", examples / "cases.csv"), ("full width", tmp_path / "cases.csv")):
        db = tmp_path / f"{name}.sqlite"
        summary = run_nightly(examples / "registry.csv", db, as_of=dt.date(2025, 6, 30), cases=cases, progress=False)
        connection = sqlite3.connect(db)
        results[name] = (sorted(connection.execute(
            "SELECT case_id, uscc, rule, amount_yuan, status FROM findings WHERE run_id = ? AND case_id IS NOT NULL",
            (summary.run_id,)).fetchall()), summary.tables["cases"])
        connection.close()
    assert results["full width"] == results["as written"]
    assert any(case_id == "ZZ-2024-001" and uscc == code for case_id, uscc, *_ in results["as written"][0])


def write_postgres(url: str) -> str:
    """The rows in a PostgreSQL table of the server's own types: integers and booleans as
    bigint 0/1 (2 stays an integer, rejected as a boolean), outfalls as double precision,
    cases as text, as the Parquet file holds them."""
    import psycopg
    from psycopg import sql

    types = {"name": "text", "uscc": "text", "district": "text", "untreated_outfalls": "double precision",
             "direct_discharge_cases": "text"}
    columns = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(types.get(c, "bigint")))
                                 for c in ["name", *COLUMNS])
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE TABLE registry ({})").format(columns))
        with connection.cursor().copy("COPY registry FROM STDIN") as copy:
            for row in ROWS:
                copy.write_row(["郑州示例有限公司", *(row[c] for c in COLUMNS)])
    return f"{url}&table=registry"


def test_a_postgresql_table_judges_the_same_rows_alike(postgres_db, tmp_path):
    """The PostgreSQL reader beside the other sources (its row is the position in the result)."""
    expected_findings, expected_rejects = library()
    findings, rejects = batch_run(write_postgres(postgres_db), tmp_path)
    assert findings == expected_findings
    assert rejects == {position + 1: column for position, column in expected_rejects.items()}
