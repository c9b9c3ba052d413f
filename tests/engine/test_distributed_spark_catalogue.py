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
    store_contents,
    summary_of_run,
)
from ecorules.engine._nightly import run_nightly  # noqa: E402
from ecorules.engine.distributed._run import run_distributed  # noqa: E402
from ecorules.engine.distributed.spark import local_session  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    session = local_session("local[2]", local_dir=str(tmp_path_factory.mktemp("spark-local")))
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


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
