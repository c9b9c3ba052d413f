"""Registries and store comparisons for the distributed engines' tests (Dask and Spark).

The data: the bundled example registry, and a generated one of several Parquet files with
bad rows of every kind a Parquet file can hold (bad USCCs, NULLs in a count and a district,
negative and too large counts, an unknown district, a USCC repeated within a file and across
files), Chinese headers in one file, several row groups per file.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from ecorules.engine._generate import generate_registry
from ecorules.rules import load_policies

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example_registry(folder: Path) -> Path:
    """examples/registry.csv as Parquet (both engines read the same bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pacsv.read_csv(EXAMPLES / "registry.csv")
    pq.write_table(table, folder / "registry.parquet", row_group_size=16)
    return folder


def _set(column: pa.ChunkedArray, rows, value) -> pa.Array:
    values = column.to_pylist()
    for row in rows:
        values[row] = value
    return pa.array(values, column.type)


def bad_registry(folder: Path, rows: int = 6000, seed: int = 5) -> Path:
    """Three Parquet files (the third with Chinese headers), bad rows spread over them."""
    folder.mkdir(parents=True, exist_ok=True)
    table = generate_registry(rows, seed)
    rng = np.random.default_rng(seed)
    bad = rng.choice(np.arange(1, rows), size=rows // 10, replace=False).reshape(8, -1)
    uscc = table["uscc"].to_pylist()
    for row in bad[0]:
        uscc[row] = uscc[row][:-1] + ("0" if uscc[row][-1] != "0" else "1")  # wrong check character
    for row in bad[1]:
        uscc[row] = uscc[row][:17]  # too short
    for k, row in enumerate(bad[2]):
        uscc[row] = uscc[int(bad[2][k - 1]) if k and k % 2 else 0]  # repeated (earlier, later, other files)
    for row in bad[3]:
        uscc[row] = None
    table = table.set_column(0, "uscc", pa.array(uscc, pa.string()))
    outfalls = table.column_names.index("untreated_outfalls")
    column = _set(table["untreated_outfalls"], bad[4], None)  # NULL: a reject, never a silent 0 or NaN
    column = pc.if_else(pa.array(np.isin(np.arange(rows), bad[5])), pa.scalar(-2, pa.int64()), column)
    column = pc.if_else(pa.array(np.isin(np.arange(rows), bad[6][::2])), pa.scalar(20000, pa.int64()), column)
    table = table.set_column(outfalls, "untreated_outfalls", column)
    district = table.column_names.index("district")
    column = _set(table["district"], bad[7][::2], "郑州新区")
    table = table.set_column(district, "district", _set(pa.chunked_array([column]), bad[7][1::2], None))
    third = rows // 3
    pq.write_table(table.slice(0, third), folder / "a.parquet", row_group_size=700)
    pq.write_table(table.slice(third, third), folder / "b.parquet", row_group_size=1500)
    facts = load_policies().facts
    labelled = table.slice(2 * third).rename_columns([facts[name].label or name for name in table.column_names])
    pq.write_table(labelled, folder / "c.parquet", row_group_size=1000)
    return folder


QUERIES = {
    "findings": "SELECT uscc, policy, rule, kind, amount_yuan, payer, citation, status FROM findings",
    "sanctions": "SELECT uscc, list, rule, policy, start, planned_end FROM sanctions",
    "rejects": "SELECT source, row, column, value, reason FROM rejects",
    "district_totals": "SELECT district, deduction_yuan, cases FROM district_totals",
    "list_entries": "SELECT key, list, uscc, policy, version, rule, started, planned_end, ended, exit, reason FROM list_entries",
    "runs": "SELECT status, as_of, source, rows_in, rows_scored, rows_rejected, total_yuan FROM runs",
}


def store_contents(db: Path) -> dict[str, list[tuple]]:
    """Every table of a results store that a run's results make, sorted (without run ids)."""
    connection = sqlite3.connect(db)
    try:
        return {name: sorted(connection.execute(query).fetchall(), key=repr) for name, query in QUERIES.items()}
    finally:
        connection.close()



def case_findings(db: Path) -> list[tuple]:
    """Every finding with what a case's adds (its case, status, the fine superseding it, the
    run that assessed it, its law note), and the runs' summaries, sorted: what a distributed
    case run must write as the local run does."""
    connection = sqlite3.connect(db)
    try:
        rows = connection.execute("SELECT run_id, uscc, policy, rule, kind, amount_fen, payer, case_id, status, "
                                  "superseded_by, assessed_in_run, law_note FROM findings").fetchall()
        runs = connection.execute("SELECT id, status, rows_in, rows_scored, rows_rejected, total_yuan FROM runs").fetchall()
    finally:
        connection.close()
    return sorted(rows, key=repr) + sorted(runs)

def summary_of_run(db: Path) -> dict:
    import json

    connection = sqlite3.connect(db)
    try:
        summary = json.loads(connection.execute("SELECT summary FROM runs").fetchone()[0])
    finally:
        connection.close()
    return {key: summary[key] for key in ("findings", "lists", "rejects_by_reason", "sources")}


def parquet_contents(root: Path, run_id: int) -> dict[str, list[tuple]]:
    """The Parquet tables of ``--out-format parquet`` for one run, as store_contents gives the
    store's: findings without their citation and status, list entries as the sanctions table
    orders its columns, dates as the store writes them (ISO text)."""
    def rows(table: str) -> list[dict]:
        folder = root / table / f"run_id={run_id}"
        return pq.read_table(folder).to_pylist() if folder.is_dir() else []

    def day(value):
        return None if value is None else value.isoformat()

    return {
        "findings": sorted(((r["uscc"], r["policy"], r["rule"], r["kind"], exact(r["amount_yuan"]), r["payer"])
                            for r in rows("findings")), key=repr),
        "sanctions": sorted(((r["uscc"], r["list"], r["rule"], r["policy"], day(r["start"]), day(r["planned_end"]))
                             for r in rows("list_entries")), key=repr),
        "rejects": sorted((tuple(r.values()) for r in rows("rejects")), key=repr),
        "district_totals": sorted(((r["district"], exact(r["deduction_yuan"]), r["cases"])
                                   for r in rows("district_totals")), key=repr),
    }


def exact(yuan) -> Decimal:
    """An amount of yuan as a two-place Decimal: the store's int or exact text ("0.48"),
    a Parquet or Spark decimal, an int64, all alike when equal."""
    return Decimal(yuan).quantize(Decimal("0.01"))


def store_as_parquet_holds_it(db: Path) -> dict[str, list[tuple]]:
    """store_contents' tables in the shape of parquet_contents."""
    contents = store_contents(db)
    return {"findings": sorted(((*row[:4], exact(row[4]), row[5]) for row in contents["findings"]), key=repr),
            "sanctions": contents["sanctions"], "rejects": contents["rejects"],
            "district_totals": sorted(((d, exact(y), c) for d, y, c in contents["district_totals"]), key=repr)}


def local_census(folder: Path, policies=None):
    """The single-machine first pass (engine/_duplicates.py's take_census, ``last``: with the
    rows of every repeated key) over a registry, for the engines' censuses to equal."""
    from ecorules.engine._duplicates import take_census, unique_key
    from ecorules.engine._sources import ColumnResolver, Registry

    policies = (policies or load_policies()).for_domain("enterprise")
    key = unique_key(policies, "enterprise")
    resolver = ColumnResolver(policies.facts, dict.fromkeys(key.names, ()))
    return take_census(key, lambda: Registry(folder, resolver).batches(), "last")


def compound_key_policies(folder: Path) -> Path:
    """The registry's catalogue with its key declared as two facts (uscc, district: a USCC
    may be written once per district, twice in one district is a repeat), and a policy of
    the shipped ones reading both (the case table's kind, which links a case to its
    enterprise by one fact, and its roll-ups are left out)."""
    from ecorules.policies import __file__ as shipped

    source = Path(shipped).parent / "zhengzhou"
    folder.mkdir(parents=True)
    text = (source / "registry.yaml").read_text(encoding="utf-8")
    assert "\nkey: uscc\n" in text
    (folder / "registry.yaml").write_text(text.replace("\nkey: uscc\n", "\nkey: [uscc, district]\n"), encoding="utf-8")
    # its deduction per outfall is paid by the district; the case table's roll-up it subtracts
    # where a case table is given is none here
    policy = (source / "eco_water_interception.yaml").read_text(encoding="utf-8")
    assert policy.count("value_or(direct_discharge_cases_in_table, 0)") == 2
    (folder / "eco_water_interception.yaml").write_text(
        policy.replace("value_or(direct_discharge_cases_in_table, 0)", "0"), encoding="utf-8")
    return folder


def compound_key_registry(folder: Path) -> Path:
    """The example registry with a row repeated in its district (a repeat under the compound
    key) and a row of the same USCC in another district (not a repeat), in two files."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pacsv.read_csv(EXAMPLES / "registry.csv")
    rows = table.to_pylist()
    fined = next(r for r in rows if r["untreated_outfalls"] > 0)
    elsewhere = dict(fined, district=next(r["district"] for r in rows if r["district"] != fined["district"]))
    pq.write_table(pa.Table.from_pylist(rows[:30] + [dict(fined)], schema=table.schema), folder / "a.parquet",
                   row_group_size=8)
    pq.write_table(pa.Table.from_pylist(rows[30:] + [dict(fined), elsewhere], schema=table.schema),
                   folder / "b.parquet", row_group_size=8)
    return folder


MONEY = Path(__file__).resolve().parents[1] / "data" / "money" / "fen_fee.yaml"
# a rule of the fen policy booked to the district: districts get parts in yuan and in fen
DISTRICT_FEN_RULE = """
  - id: base_fee_district
    title: 按基数的七分之一计收,精确到分,记入区县
    citation: {document: 《测试文件》, article: 第二条, text: 按基数的三分之一}
    when: base > 0
    findings:
      - {kind: fiscal_deduction, amount: fee_per_tonne * base / 7, payer: district}
"""


def fen_policies(folder: Path) -> Path:
    """tests/data/money/fen_fee.yaml (a policy rounding to the fen, some rules to the yuan)
    with a rule in fen paid by the district, as tests/engine/test_ledger_fen.py uses it."""
    text = MONEY.read_text(encoding="utf-8").replace("\ntest_defaults:", DISTRICT_FEN_RULE + "\ntest_defaults:")
    folder.mkdir(parents=True)
    (folder / "fen_fee.yaml").write_text(text, encoding="utf-8")
    return folder


def fen_registry(folder: Path, rows: int = 900, seed: int = 10) -> Path:
    """Two Parquet files for fen_policies: tonnes as decimal(12, 4) (0.5 t x 0.95 yuan = 0.475:
    fen to round), bases that only 金水区's rows have (二七区's total stays in whole yuan), and
    a NULL."""
    from nightly_data import usccs

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    codes = [str(code) for code in usccs(rng, rows)]
    district = ["金水区" if k % 2 else "二七区" for k in range(rows)]
    tonnes = [Decimal(0) if k % 5 == 0 else Decimal(int(rng.integers(0, 10**6))).scaleb(-4) for k in range(rows)]
    tonnes[7] = None
    base = [int(rng.integers(1, 10**6)) if district[k] == "金水区" and k % 3 else 0 for k in range(rows)]
    table = pa.table({"uscc": pa.array(codes, pa.string()), "district": pa.array(district, pa.string()),
                      "tonnes": pa.array(tonnes, pa.decimal128(12, 4)), "base": pa.array(base, pa.int64())})
    pq.write_table(table.slice(0, rows // 3), folder / "a.parquet", row_group_size=100)
    pq.write_table(table.slice(rows // 3), folder / "b.parquet", row_group_size=250)
    return folder


CASE_POLICIES = Path(__file__).resolve().parents[1] / "data" / "cases"  # tests/engine/test_case_batch.py's
CASES_AS_OF = __import__("datetime").date(2026, 1, 1)


def case_world(folder: Path, enterprises: int = 300, cases: int = 2000) -> tuple[Path, Path]:
    """A registry of three Parquet files (several row groups each) and a case table for
    tests/data/cases' policies, as tests/engine/test_case_batch.py builds them: enterprises the
    registry rejects (a district not of the folder), a USCC on two rows, cases of enterprises
    not in the registry, and bad cases of every kind (engine/cases/_generate.py)."""
    from ecorules.engine.cases._generate import bad_cases, generate_cases

    folder.mkdir(parents=True, exist_ok=True)
    usccs = generate_registry(enterprises + 10, 7)["uscc"].combine_chunks()
    rng = np.random.default_rng(8)
    good, rejected, strangers = usccs.slice(0, enterprises), usccs.slice(enterprises, 5), usccs.slice(enterprises + 5, 5)
    districts = np.where(rng.random(enterprises) < 0.5, "金水区", "二七区").astype(object)
    districts[:3] = "经开区"  # not a value of this folder: three enterprises the registry rejects
    codes = pa.concat_arrays([good, rejected]).to_pylist()
    codes[-1] = codes[7]  # one enterprise written on two rows: the second is a reject
    registry = pa.table({"uscc": pa.array(codes, pa.string()),
                         "district": pa.array([*districts, *["火星区"] * 5], pa.string()),
                         "industrial": pa.array(np.where(rng.random(enterprises + 5) < 0.7, "true", "false"))})
    third = registry.num_rows // 3
    (folder / "registry").mkdir()
    for k, name in enumerate(("a", "b", "c")):
        part = registry.slice(k * third, third if k < 2 else None)
        pq.write_table(part, folder / "registry" / f"{name}.parquet", row_group_size=40)
    table = generate_cases(good, cases, 9, ("a83_2", "a84_2", "local_x"))
    bad, _kinds = bad_cases(table, strangers, rejected, 10)
    pacsv.write_csv(pa.concat_tables([table, bad]), folder / "cases.csv")
    return folder / "registry", folder / "cases.csv"
