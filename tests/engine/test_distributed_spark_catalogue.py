"""Spark's catalogue on both sides of a run: a ``hive:DB.TABLE`` registry with a case table,
and ``--out-format hive`` (the run's results as tables of the catalogue), each equal to the
single-machine run on the same data, to every row and fen.

One Spark session in local[2] for the whole test run, bound to 127.0.0.1, its catalogue the
session's own (a warehouse under its local dir: engine/distributed/spark.py's loopback_conf).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pyspark = pytest.importorskip("pyspark", reason='pyspark is not installed: pip install "ecorules[spark]" '
                                                "(or tox -e spark35 / spark4)")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java (17), which is not on PATH", allow_module_level=True)

from distributed_data import (  # noqa: E402
    CASE_POLICIES,
    CASES_AS_OF,
    case_world,
    exact,
    parquet_contents,
    store_as_parquet_holds_it,
    store_contents,
    summary_of_run,
)
from ecorules.engine._nightly import run_nightly  # noqa: E402
from ecorules.engine.distributed._run import run_distributed  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402


def _as_table(spark, folder: Path, name: str) -> Path:
    """The Parquet files of ``folder`` as one table of the catalogue written as one file (its
    rows are that file's rows), and that file, for the local run to read the same bytes."""
    spark.sql("CREATE DATABASE IF NOT EXISTS eco")
    spark.read.parquet(*sorted(str(p) for p in folder.glob("*.parquet"))).coalesce(1) \
        .write.mode("overwrite").format("parquet").saveAsTable(name)
    files = sorted({row["f"] for row in spark.table(name).select(F.input_file_name().alias("f")).collect()})
    assert len(files) == 1 and files[0].startswith("file:")
    return Path(files[0][len("file:"):])


def test_a_case_table_with_a_catalogue_registry_equals_the_local_run(spark, tmp_path):
    """--registry hive:DB.TABLE --cases FILE: the enterprises the case table names are picked
    from the catalogue table on the executors (its rows named by file and row as a local run
    names them), the cases judged and rolled up, the roll-ups handed to every partition of the
    table: every finding, list entry, reject and total equals the local run's over the same file."""
    registry, cases = case_world(tmp_path)
    file = _as_table(spark, registry, "eco.case_registry")
    local = run_nightly(file, tmp_path / "local.sqlite", policies=CASE_POLICIES, as_of=CASES_AS_OF, cases=cases)
    remote = run_distributed("hive:eco.case_registry", tmp_path / "hive.sqlite", policies=CASE_POLICIES,
                             as_of=CASES_AS_OF, cases=cases, engine="spark", master="local[2]")
    got, expected = store_contents(tmp_path / "hive.sqlite"), store_contents(tmp_path / "local.sqlite")
    assert {k: v for k, v in got.items() if k != "runs"} == {k: v for k, v in expected.items() if k != "runs"}
    assert [run[:2] + run[3:] for run in got["runs"]] == [run[:2] + run[3:] for run in expected["runs"]]
    assert got["runs"][0][2] == "hive:eco.case_registry"
    assert summary_of_run(tmp_path / "hive.sqlite")["findings"] == summary_of_run(tmp_path / "local.sqlite")["findings"]
    assert (remote.rows_in, remote.rows_scored, remote.rows_rejected, remote.total_yuan) == \
        (local.rows_in, local.rows_scored, local.rows_rejected, local.total_yuan)
    assert remote.districts == local.districts
    assert remote.to_dict()["tables"]["cases"] == local.to_dict()["tables"]["cases"]
    assert (remote.already_assessed, remote.lighter_law) == (local.already_assessed, local.lighter_law)
    # not vacuous: cases rejected and judged, registry rows rejected (named by the table's file),
    # enterprise findings that only the case roll-ups give
    assert local.tables["cases"]["rows_rejected"] > 10 and local.tables["registry"]["rows_rejected"] == 8
    assert sum(1 for row in expected["findings"] if row[1].startswith("test.fines")) > 100
    assert any(row[2] == "eco" for row in expected["findings"])
    assert {source for source, *_ in got["rejects"]} >= {str(file)}
    # a second run over the same table and case table is the first one reused
    again = run_distributed("hive:eco.case_registry", tmp_path / "hive.sqlite", policies=CASE_POLICIES,
                            as_of=CASES_AS_OF, cases=cases, engine="spark", master="local[2]")
    assert again.reused and again.run_id == remote.run_id


def _hive_contents(spark, database: str, run_id: int) -> dict[str, list[tuple]]:
    """The run's partition of each --out-format hive table, in the shape of store_contents
    (amounts as exact(), dates as the store's ISO text)."""
    def rows(table: str) -> list:
        return spark.table(f"{database}.{table}").where(F.col("run_id") == run_id).collect()

    def day(value):
        return None if value is None else value.isoformat()

    return {
        "findings": sorted(((r["uscc"], r["policy"], r["rule"], r["kind"], exact(r["amount_yuan"]), r["payer"],
                             r["citation"], r["status"]) for r in rows("findings")), key=repr),
        "sanctions": sorted(((r["uscc"], r["list"], r["rule"], r["policy"], day(r["start"]), day(r["planned_end"]))
                             for r in rows("list_entries")), key=repr),
        "rejects": sorted(((r["source"], r["row"], r["column"], r["value"], r["reason"]) for r in rows("rejects")),
                          key=repr),
        "district_totals": sorted(((r["district"], exact(r["deduction_yuan"]), r["cases"])
                                   for r in rows("district_totals")), key=repr),
    }


def _store_as_hive_holds_it(db: Path) -> dict[str, list[tuple]]:
    contents = store_contents(db)
    return {"findings": sorted(((*row[:4], exact(row[4]), *row[5:]) for row in contents["findings"]), key=repr),
            "sanctions": contents["sanctions"], "rejects": contents["rejects"],
            "district_totals": sorted(((d, exact(y), c) for d, y, c in contents["district_totals"]), key=repr)}


def test_out_format_hive_writes_the_runs_tables_to_the_catalogue_once_per_run(spark, tmp_path, caplog):
    """--out-format hive --out-database DB: the store's findings (the registry's and the case
    table's), list entries, rejects and district totals as partitioned tables of the
    catalogue, equal to the store's and so to a local run's; the same run written again
    (reused) replaces its partition, a run the store replaces (--force) leaves none."""
    from click.testing import CliRunner
    from ecorules.engine._cli import main

    registry, cases = case_world(tmp_path)
    run_nightly(registry, tmp_path / "local.sqlite", policies=CASE_POLICIES, as_of=CASES_AS_OF, cases=cases)
    arguments = ["run", "--registry", str(registry), "--cases", str(cases), "--policies", str(CASE_POLICIES),
                 "--out", str(tmp_path / "spark.sqlite"), "--as-of", CASES_AS_OF.isoformat(), "--engine", "spark",
                 "--master", "local[2]", "--out-format", "hive", "--out-database", "hive:eco_out", "--format", "json"]
    with caplog.at_level("WARNING", logger="ecorules.distributed"):
        result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 1, result.output  # done, with rejected rows
    # the test session has no Hive metastore: the run says its tables outlive it only as files
    assert any("catalogue is in memory" in r.getMessage() and "eco_out" in r.getMessage() for r in caplog.records)
    assert store_contents(tmp_path / "spark.sqlite") == store_contents(tmp_path / "local.sqlite")
    expected = _store_as_hive_holds_it(tmp_path / "local.sqlite")
    assert _hive_contents(spark, "eco_out", 1) == expected
    # not vacuous: the case table's findings and rejects, which no registry batch holds, are there
    assert sum(1 for row in expected["findings"] if row[1].startswith("test.fines")) > 100
    assert {source for source, *_ in expected["rejects"]} >= {str(cases)} and expected["sanctions"]
    assert dict(spark.table("eco_out.findings").dtypes)["amount_yuan"] == "decimal(22,2)"
    assert spark.sql("SHOW PARTITIONS eco_out.findings").collect()[0][0] == "run_id=1"

    again = CliRunner().invoke(main, arguments)  # reused: written again, not twice
    assert again.exit_code == 1, again.output
    assert _hive_contents(spark, "eco_out", 1) == expected
    forced = CliRunner().invoke(main, [*arguments, "--force"])  # run 2 replaces run 1 in the store
    assert forced.exit_code == 1, forced.output
    assert _hive_contents(spark, "eco_out", 2) == expected
    for table in ("findings", "list_entries", "rejects", "district_totals"):
        assert spark.table(f"eco_out.{table}").where("run_id = 1").count() == 0
        assert [r[0] for r in spark.sql(f"SHOW PARTITIONS eco_out.{table}").collect()] == ["run_id=2"]


def test_out_format_hive_is_refused_before_a_run_where_it_cannot_write(spark, tmp_path):
    """Without --out-database, on Dask, a name that is not one, a table of that name with
    other columns: refused before any run is started, saying what to give."""
    from ecorules.engine._nightly import NightlyError

    registry, _cases = case_world(tmp_path)
    options = {"policies": CASE_POLICIES, "as_of": CASES_AS_OF, "master": "local[2]"}
    with pytest.raises(NightlyError, match="needs --out-database DB"):
        run_distributed(registry, tmp_path / "a.sqlite", engine="spark", out_format="hive", **options)
    with pytest.raises(NightlyError, match="give --engine spark"):
        run_distributed(registry, tmp_path / "a.sqlite", engine="dask", out_format="hive", out_database="x",
                        policies=CASE_POLICIES, as_of=CASES_AS_OF)
    with pytest.raises(NightlyError, match="a plain name"):
        run_distributed(registry, tmp_path / "a.sqlite", engine="spark", out_format="hive",
                        out_database="x; DROP DATABASE y", **options)
    with pytest.raises(NightlyError, match="--out-database names the database of --out-format hive"):
        run_distributed(registry, tmp_path / "a.sqlite", engine="spark", out_database="x", **options)
    spark.sql("CREATE DATABASE IF NOT EXISTS eco_other")
    spark.sql("CREATE TABLE IF NOT EXISTS eco_other.findings (uscc string) USING parquet")
    with pytest.raises(NightlyError, match="not those ecorules writes"):
        run_distributed(registry, tmp_path / "a.sqlite", engine="spark", out_format="hive", out_database="eco_other",
                        **options)
    assert not (tmp_path / "a.sqlite").exists()


def test_out_format_parquet_holds_the_case_tables_rows_too(spark, tmp_path):
    """--out-format parquet with --cases: the case table's findings and rejects, which the
    driver scores (no worker's part holds them), are in the tables beside the workers' parts,
    so the tables hold what the store holds."""
    registry, cases = case_world(tmp_path)
    run_distributed(registry, tmp_path / "spark.sqlite", policies=CASE_POLICIES, as_of=CASES_AS_OF, cases=cases,
                    engine="spark", master="local[2]", out_format="parquet")
    expected = store_as_parquet_holds_it(tmp_path / "spark.sqlite")
    assert parquet_contents(tmp_path / "spark.parquet", 1) == expected
    assert sum(1 for row in expected["findings"] if row[1].startswith("test.fines")) > 100
    assert sum(1 for source, *_ in expected["rejects"] if source == str(cases)) > 10
    assert (tmp_path / "spark.parquet" / "findings" / "run_id=1" / "part-driver.parquet").exists()


def test_a_case_table_of_the_catalogue_is_read_by_spark_and_judged_as_a_local_run(spark, tmp_path):
    """--cases hive:DB.TABLE: the case table's needed columns read by Spark, its rows named by
    the table's file and row, judged as a local run judges the same file: every finding, list
    entry, reject (bad cases of every kind) and total equal; an unchanged table is the run
    reused; a table without a needed column, or without --engine spark, is refused before a
    run starts, naming the fact or the option."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from ecorules.engine._nightly import NightlyError

    registry, cases = case_world(tmp_path)
    (tmp_path / "cases_only").mkdir()
    pq.write_table(pacsv.read_csv(cases), tmp_path / "cases_only" / "cases.parquet")
    file = _as_table(spark, tmp_path / "cases_only", "eco.cases")
    local = run_nightly(registry, tmp_path / "local.sqlite", policies=CASE_POLICIES, as_of=CASES_AS_OF, cases=file)
    remote = run_distributed(registry, tmp_path / "hive.sqlite", policies=CASE_POLICIES, as_of=CASES_AS_OF,
                             cases="hive:eco.cases", engine="spark", master="local[2]")
    expected = store_contents(tmp_path / "local.sqlite")
    assert store_contents(tmp_path / "hive.sqlite") == expected
    assert summary_of_run(tmp_path / "hive.sqlite")["findings"] == summary_of_run(tmp_path / "local.sqlite")["findings"]
    assert remote.to_dict()["tables"] == local.to_dict()["tables"]
    assert (remote.already_assessed, remote.lighter_law) == (local.already_assessed, local.lighter_law)
    case_rejects = [row for row in expected["rejects"] if row[0] == str(file)]
    assert local.tables["cases"]["rows_rejected"] > 10 and len(case_rejects) >= local.tables["cases"]["rows_rejected"]
    assert any(reason.startswith("duplicate case_id") for *_, reason in case_rejects)
    assert sum(1 for row in expected["findings"] if row[1].startswith("test.fines")) > 100
    again = run_distributed(registry, tmp_path / "hive.sqlite", policies=CASE_POLICIES, as_of=CASES_AS_OF,
                            cases="hive:eco.cases", engine="spark", master="local[2]")
    assert again.reused and again.run_id == remote.run_id

    spark.table("eco.cases").drop("case_id").write.mode("overwrite").format("parquet").saveAsTable("eco.no_ids")
    with pytest.raises(Exception, match="case_id"):
        run_distributed(registry, tmp_path / "x.sqlite", policies=CASE_POLICIES, as_of=CASES_AS_OF,
                        cases="hive:eco.no_ids", engine="spark", master="local[2]")
    assert not (tmp_path / "x.sqlite").exists()
    with pytest.raises(NightlyError, match="is a table of Spark's catalogue: give --engine spark"):
        run_distributed(registry, tmp_path / "x.sqlite", policies=CASE_POLICIES, as_of=CASES_AS_OF,
                        cases="hive:eco.cases", engine="dask")


def test_out_format_hive_from_a_postgresql_store_holds_every_amount_to_the_fen(spark, postgres_db, tmp_path):
    """The store in PostgreSQL (its amounts numeric, its dates its own), a policy rounding to
    the fen (0.475 yuan is 0.48) beside rules in whole yuan: the catalogue's tables hold the
    amounts and totals a local run's SQLite store holds, to the fen."""
    import datetime as dt

    from distributed_data import fen_policies, fen_registry

    as_of = dt.date(2012, 4, 14)
    policies, registry = fen_policies(tmp_path / "policies"), fen_registry(tmp_path / "registry")
    local = run_nightly(registry, tmp_path / "local.sqlite", as_of=as_of, policies=policies)
    remote = run_distributed(registry, postgres_db, as_of=as_of, policies=policies, engine="spark",
                             master="local[2]", out_format="hive", out_database="eco_pg")
    assert (remote.rows_in, remote.rows_rejected, remote.total_fen) == (local.rows_in, local.rows_rejected,
                                                                      local.total_fen)
    expected = _store_as_hive_holds_it(tmp_path / "local.sqlite")
    got = _hive_contents(spark, "eco_pg", remote.run_id)
    assert got == expected
    assert any(amount != amount.to_integral_value() for _u, _p, _r, _k, amount, *_ in got["findings"])
    assert any(yuan != yuan.to_integral_value() for _d, yuan, _c in got["district_totals"])
