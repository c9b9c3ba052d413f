"""The nightly scoring on Spark (mapInArrow) equals the single-machine run, to every row and fen.

One Spark session in local[2] for the whole test run, bound to 127.0.0.1 (settings of
engine/distributed/spark.py's local_session, as the README's deployment example uses).
Skipped, saying why, where pyspark (849 MB, not in the test extra: ``tox -e spark35`` or
``tox -e spark4``) or Java is absent.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

pyspark = pytest.importorskip("pyspark", reason='pyspark is not installed: pip install "ecorules[spark]" '
                                                "(or tox -e spark35 / spark4)")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java (17), which is not on PATH", allow_module_level=True)

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from distributed_data import (  # noqa: E402
    CASE_POLICIES,
    CASES_AS_OF,
    bad_registry,
    case_findings,
    case_world,
    compound_key_policies,
    compound_key_registry,
    exact,
    example_registry,
    fen_policies,
    fen_registry,
    local_census,
    parquet_contents,
    store_as_parquet_holds_it,
    store_contents,
    summary_of_run,
)
from ecorules.engine._nightly import run_nightly  # noqa: E402
from ecorules.engine.distributed._run import run_distributed  # noqa: E402
from ecorules.engine.distributed.spark import local_session, score  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

AS_OF = dt.date(2012, 4, 14)


@pytest.fixture(scope="module")
def registries(tmp_path_factory):
    root = tmp_path_factory.mktemp("registries")
    return {"examples": example_registry(root / "examples"), "bad": bad_registry(root / "bad")}


def test_session_is_on_loopback_with_its_time_zone_set(spark):
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.driver.host") == "127.0.0.1" and conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert conf.get("spark.ui.enabled") == "false"
    assert spark.conf.get("spark.sql.session.timeZone") == "Asia/Shanghai"


def test_a_session_handed_back_leaves_no_directory_behind(spark, tmp_path, monkeypatch):
    """A run in a process whose session is running (a host system's, this test run's) gets
    that session back: no temporary directory is made for it (one was, and left, per run)."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert local_session("local[2]") is spark
    run_distributed(example_registry(tmp_path / "registry"), tmp_path / "spark.sqlite", as_of=AS_OF,
                    engine="spark", master="local[2]")
    assert not list(tmp_path.glob("ecorules-spark-*"))
    assert tempfile.mkdtemp(prefix="ecorules-spark-")  # not vacuous: where one would have been made
    assert len(list(tmp_path.glob("ecorules-spark-*"))) == 1


_OWN_SESSION_SCRIPT = """
import json, logging, pathlib, sys, tempfile
from click.testing import CliRunner
from pyspark import SparkContext
from ecorules.engine._cli import main

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
registry, out = sys.argv[1], pathlib.Path(sys.argv[2])
common = ["--as-of", "2012-04-14", "--engine", "spark", "--master", "local[1]", "--format", "json"]
seen = []
for name, extra in (("done", ["--registry", registry]), ("failed", ["--registry", "hive:eco.absent"]),
                    ("hive", ["--registry", registry, "--out-format", "hive", "--out-database", "eco_out"])):
    result = CliRunner().invoke(main, ["run", *extra, "--out", str(out / (name + ".sqlite")), *common])
    seen.append({"run": name, "exit": result.exit_code, "stopped": SparkContext._active_spark_context is None,
                 "left": sorted(p.name for p in pathlib.Path(tempfile.gettempdir()).glob("ecorules-spark-*"))})
print(json.dumps(seen))
"""


def test_the_cli_stops_the_session_it_started_and_leaves_a_running_one(spark, tmp_path, caplog):
    """A command that started its own Spark session (none was running) stops it when it ends,
    failed or not, and removes its temporary directory, unless --out-format hive wrote tables
    to the warehouse in it (kept, and said); a session already running (a host's, this test
    run's) is handed back and left running."""
    import json
    import os
    import sys

    from click.testing import CliRunner
    from ecorules.engine._cli import main
    from watched_run import run_watched

    registry = example_registry(tmp_path / "registry")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    # a process of its own: this test run's session would be handed back to the command. Its three
    # Spark sessions, one after another, outran a fixed 600 s under heavy load: stopped only if
    # its processes stop using the CPU or use far more of it than the run needs (watched_run.py):
    # 82 CPU-s in 227 s of wall time at load 8-10 (pyspark 4.3.0, 2026-12-07)
    ran = run_watched([sys.executable, "-c", _OWN_SESSION_SCRIPT, str(registry), str(tmp_path)], budget=600,
                      env={**os.environ, "TMPDIR": str(scratch)})
    assert ran.returncode == 0, ran.stderr[-3000:]
    done, failed, hive = json.loads(ran.stdout.strip().splitlines()[-1])
    assert done == {"run": "done", "exit": 0, "stopped": True, "left": []}
    assert failed["exit"] != 0 and failed["stopped"] and failed["left"] == []  # on error too
    assert hive["exit"] == 0 and hive["stopped"] and len(hive["left"]) == 1
    kept = scratch / hive["left"][0]
    assert (kept / "warehouse" / "eco_out.db" / "findings").is_dir()
    assert f"kept {kept}" in ran.stderr and "eco_out" in ran.stderr

    result = CliRunner().invoke(main, ["run", "--registry", str(registry), "--out", str(tmp_path / "here.sqlite"),
                                       "--as-of", AS_OF.isoformat(), "--engine", "spark", "--master", "local[2]"])
    assert result.exit_code == 0, result.output
    assert pyspark.SparkContext._active_spark_context is spark.sparkContext  # this test run's, still running
    assert spark.range(3).count() == 3


@pytest.mark.parametrize("name", ["examples", "bad"])
def test_run_on_spark_writes_the_store_a_local_run_writes(spark, registries, name, tmp_path):
    local = run_nightly(registries[name], tmp_path / "local.sqlite", as_of=AS_OF)
    remote = run_distributed(registries[name], tmp_path / "spark.sqlite", as_of=AS_OF, engine="spark",
                             master="local[2]")
    assert (remote.rows_in, remote.rows_scored, remote.rows_rejected, remote.total_yuan) == \
        (local.rows_in, local.rows_scored, local.rows_rejected, local.total_yuan)
    assert remote.districts == local.districts
    assert store_contents(tmp_path / "spark.sqlite") == store_contents(tmp_path / "local.sqlite")
    assert summary_of_run(tmp_path / "spark.sqlite") == summary_of_run(tmp_path / "local.sqlite")


def test_score_gives_dataframes_equal_to_the_local_run(spark, registries, tmp_path):
    """Over a frame Spark read itself, with Hive-like types: counts as INT (int32), and the
    row of each record as a column, so that rejects name the same file and row."""
    folder = registries["bad"]
    local_file = tmp_path / "one.parquet"
    table = pq.read_table(folder / "a.parquet")  # one file: its rows are its row numbers
    pq.write_table(table, local_file)
    run_nightly(local_file, tmp_path / "local.sqlite", as_of=AS_OF)
    expected = store_contents(tmp_path / "local.sqlite")
    from pyspark.sql import functions as F

    df = (spark.read.parquet(str(local_file))
          .withColumn("untreated_outfalls", F.col("untreated_outfalls").cast("int"))
          .withColumn("_source", F.lit(str(local_file)))
          .withColumn("_row", F.monotonically_increasing_id() + 1)
          .coalesce(1))
    out = score(df, as_of=AS_OF)
    findings = sorted((tuple(r) for r in out.findings.collect()), key=repr)
    assert findings == sorted([row[:6] for row in expected["findings"]], key=repr)
    assert dict(out.findings.dtypes)["amount_yuan"] == "bigint"
    entries = sorted(((r["uscc"], r["list"], r["rule"]) for r in out.entries.collect()), key=repr)
    assert entries == sorted(((u, lst, r) for u, lst, r, *_ in expected["sanctions"]), key=repr)
    assert sorted((tuple(r) for r in out.rejects.collect()), key=repr) == expected["rejects"]
    assert sorted(tuple(r) for r in out.totals.collect()) == expected["district_totals"]
    assert dict(out.totals.dtypes) == {"district": "string", "deduction_yuan": "bigint", "cases": "bigint"}
    assert out.counts["rows_in"] == out.counts["rows_scored"] + out.counts["rows_rejected"] == table.num_rows


def test_int32_amounts_do_not_overflow_and_nulls_are_rejects(spark, registries, tmp_path):
    from pyspark.sql import functions as F

    path = registries["examples"] / "registry.parquet"
    local_table = pq.read_table(path)
    outfalls = local_table["untreated_outfalls"].to_pylist()
    outfalls[0], outfalls[1] = 3001, None  # 3,001,000,000 yuan: past int32; a NULL: a reject
    import pyarrow as pa

    local_table = local_table.set_column(local_table.column_names.index("untreated_outfalls"), "untreated_outfalls",
                                         pa.array(outfalls, pa.int64()))
    pq.write_table(local_table, tmp_path / "r.parquet")
    local = run_nightly(tmp_path / "r.parquet", tmp_path / "l.sqlite", as_of=AS_OF)
    df = spark.read.parquet(str(tmp_path / "r.parquet")).withColumn("untreated_outfalls",
                                                                    F.col("untreated_outfalls").cast("int"))
    out = score(df, as_of=AS_OF)
    assert out.counts["total_yuan"] == local.total_yuan >= 3_001_000_000
    assert out.counts["rows_rejected"] == local.rows_rejected >= 1
    missing = [r for r in out.rejects.collect() if r["column"] == "untreated_outfalls"]
    assert [r["reason"] for r in missing] == ["is missing"]


def test_out_format_parquet_writes_the_tables_of_its_store_beside_it(spark, registries, tmp_path):
    """Rejects of every kind and keys repeated across files: each part file written where it
    was scored holds what the store holds, run by run."""
    for run in (1, 2):
        summary = run_distributed(registries["bad"], tmp_path / "results.sqlite", as_of=AS_OF, engine="spark",
                                  master="local[2]", out_format="parquet", force=True)
        assert summary.run_id == run
        tables = parquet_contents(tmp_path / "results.parquet", run)
        assert tables == store_as_parquet_holds_it(tmp_path / "results.sqlite")
        assert len(tables["rejects"]) > 500 and len(tables["findings"]) > 50 and tables["sanctions"]
        assert sum(cases for _district, _yuan, cases in tables["district_totals"]) > 0
    assert not (tmp_path / "results.parquet" / "findings" / "run_id=1").exists()  # replaced by run 2, as in the store


def test_the_census_on_the_executors_equals_the_single_machine_census(spark, registries, monkeypatch):
    """Keys repeated within and across files (and in the file headed in Chinese): the digests
    merged by bucket on the executors, alone or taken in the scoring pass (then merged on the
    driver, collected with the partials where the row count is known before, or apart; or
    on the executors for a registry past DRIVER_CENSUS_ROWS, in as many tasks as its size
    asks), the partitions holding
    them, and the rows of each repeated key (read from those partitions alone) equal the local
    first pass's; the partial totals are the same however the digests came."""
    from ecorules.engine.distributed import spark as spark_engine
    from ecorules.engine.distributed._partition import make_plan, take_census
    from ecorules.engine.distributed._pieces import pieces
    from ecorules.engine.distributed.spark import (
        SCORED,
        _known_rows,
        _partials_and_repeats,
        _Parts,
        _scorer,
        _TaskDigests,
        pieces_frame,
    )

    expected = local_census(registries["bad"])
    plan = make_plan(None, AS_OF)
    frame = pieces_frame(spark, registries["bad"], plan)
    parts = _Parts(frame, plan, True)
    repeated, digests = parts.repeated()
    assert repeated.tolist() == expected.repeated.tolist() and repeated.size
    assert digests == expected.rows - 3 * 75  # every row but those without a valid USCC (bad[0], bad[1], bad[3])
    assert _known_rows(frame) == expected.rows  # pieces_frame's own count, in its schema
    # a frame whose rows column lost that count: counted by a job, the same
    assert _known_rows(frame.withColumn("rows", F.col("rows") + 0)) == expected.rows
    sink = spark.sparkContext.accumulator({}, _TaskDigests())
    with_sink = frame.mapInArrow(_scorer(plan, True, True, sink), SCORED).persist()
    partials, by_the_tasks = _partials_and_repeats(with_sink, True, sink)
    assert with_sink.filter(F.col("digests").isNotNull()).count() == 0  # none of them in the frame
    with_sink.unpersist()
    with_sink.filter(F.col("rows_in").isNotNull()).count()  # recomputed (no cache): heard no more once closed
    assert sink.value == {}
    scored = frame.mapInArrow(_scorer(plan, True, True), SCORED).persist()
    apart, on_the_driver = _partials_and_repeats(scored, True)
    monkeypatch.setattr(spark_engine, "DRIVER_CENSUS_ROWS", 0)  # a registry too big for the driver's merge
    past_the_bound, on_the_executors = _partials_and_repeats(scored, True)
    monkeypatch.setattr(spark_engine, "MERGED_DIGESTS", 500)  # a bigger registry: its buckets over more tasks
    _, in_more_tasks = _partials_and_repeats(scored, True)
    scored.unpersist()
    for found in (by_the_tasks, on_the_driver, on_the_executors, in_more_tasks):
        assert found.digests.tolist() == repeated.tolist()

    def in_order(table):
        return sorted(table.to_pylist(), key=repr)

    assert in_order(partials) == in_order(apart) == in_order(past_the_bound)
    assert sum(row["rows_in"] for row in partials.to_pylist() if row["district"] is None) == expected.rows
    # the pieces (partition k is piece k) holding a row of a repeated key, found from the local census
    found, _registry = pieces(plan, registries["bad"])
    holders = {k for k, piece in enumerate(found) for where in expected.rows_of.values() for label, row in where
               if label == piece.label and piece.first_row <= row < piece.first_row + piece.rows}
    assert (by_the_tasks.holders == on_the_driver.holders == on_the_executors.holders == in_more_tasks.holders
            == tuple(sorted(holders)))
    census = take_census(plan, parts, repeated, digests).census
    assert census.rows_of == expected.rows_of
    plan.census = None
    assert take_census(plan, _Parts(frame, plan, True, holders=on_the_executors.holders), repeated,
                       digests).census.rows_of == expected.rows_of
    rows = [at for where in census.rows_of.values() for at in where]
    assert len(rows) > 50 and {Path(source).name for source, _row in rows} == {"a.parquet", "b.parquet", "c.parquet"}


def test_past_the_driver_bound_repeated_keys_are_rejected_as_a_local_run_rejects_them(spark, registries, tmp_path,
                                                                                        monkeypatch):
    """The bad registry's keys repeated across files and row groups (partitions), the
    digests counted by Spark on the executors as for a registry past DRIVER_CENSUS_ROWS:
    every duplicate a reject naming the row of the first occurrence, the rest of the store as
    the local run writes it; the frame scored twice (the second time knowing the first rows)."""
    from ecorules.engine.distributed import spark as spark_engine

    passes = _counted_passes(monkeypatch)
    monkeypatch.setattr(spark_engine, "DRIVER_CENSUS_ROWS", 0)
    local = run_nightly(registries["bad"], tmp_path / "local.sqlite", as_of=AS_OF)
    remote = run_distributed(registries["bad"], tmp_path / "spark.sqlite", as_of=AS_OF, engine="spark",
                             master="local[2]")
    expected = store_contents(tmp_path / "local.sqlite")
    assert store_contents(tmp_path / "spark.sqlite") == expected
    assert remote.rows_rejected == local.rows_rejected and remote.districts == local.districts
    assert sum("duplicate uscc" in reason for *_, reason in expected["rejects"]) > 30
    assert passes == [True, False]


# digests narrowed to their top bits (engine/_duplicates.py's DIGEST_BITS_VARIABLE, read by the
# executors' Python workers too): distinct USCCs of the test's 4,000 rows then share digests, as
# a few of a registry of billions of rows would
_NARROW_BITS = 21


def _counted_passes(monkeypatch) -> list[bool]:
    """The scoring passes ``score`` makes, each as whether it takes the census."""
    from ecorules.engine.distributed import spark as spark_engine

    passes, scorer = [], spark_engine._scorer

    def counted(plan, pieces_in, census, sink=None):
        passes.append(census)
        return scorer(plan, pieces_in, census, sink)

    monkeypatch.setattr(spark_engine, "_scorer", counted)
    return passes


@pytest.mark.parametrize("bound", ["driver", "executors"])
def test_two_keys_of_one_digest_are_two_enterprises_and_the_frame_is_scored_once(spark, tmp_path, monkeypatch, bound):
    """Distinct USCCs sharing a digest, in partitions of their own: the census reads the rows
    of those digests from the partitions holding them, finds their keys distinct, and keeps
    the first pass's scoring (no reject, no second pass); the store is the local run's."""
    from ecorules.engine._duplicates import DIGEST_BITS_VARIABLE, digests, unique_key
    from ecorules.engine._generate import generate_registry
    from ecorules.engine.distributed import spark as spark_engine
    from ecorules.rules import load_policies

    monkeypatch.setenv(DIGEST_BITS_VARIABLE, str(_NARROW_BITS))  # the driver (and the local run)
    monkeypatch.setitem(spark.sparkContext.environment, DIGEST_BITS_VARIABLE, str(_NARROW_BITS))  # its workers
    folder = tmp_path / "registry"
    folder.mkdir()
    table = generate_registry(4000, 3)
    for k in range(4):
        pq.write_table(table.slice(1000 * k, 1000), folder / f"part-{k}.parquet", row_group_size=250)
    key = unique_key(load_policies().for_domain("enterprise"), "enterprise")
    keys, valid, _ = key.read(table.select(["uscc"]))
    found = np.full(table.num_rows, -1, np.int64)
    found[valid] = digests(key.digest_fact, keys, valid).view(np.int64)
    values, counts = np.unique(found[valid], return_counts=True)
    shared = np.flatnonzero(np.isin(found, values[counts > 1]) & valid)
    assert shared.size and len(set(keys.take(pa.array(shared)).to_pylist())) == shared.size  # not vacuous: distinct keys
    expected = tuple(sorted({int(row) // 250 for row in shared}))  # piece k: rows 250k..250k+249
    assert len(expected) < 16
    passes = _counted_passes(monkeypatch)
    holders = []
    census = spark_engine._partials_and_repeats

    def seen(*args, **kwargs):
        partials, repeats = census(*args, **kwargs)
        holders.append(repeats.holders)
        return partials, repeats

    monkeypatch.setattr(spark_engine, "_partials_and_repeats", seen)
    if bound == "executors":
        monkeypatch.setattr(spark_engine, "DRIVER_CENSUS_ROWS", 0)
    local = run_nightly(folder, tmp_path / "local.sqlite", as_of=AS_OF)
    remote = run_distributed(folder, tmp_path / "spark.sqlite", as_of=AS_OF, engine="spark", master="local[2]")
    assert store_contents(tmp_path / "spark.sqlite") == store_contents(tmp_path / "local.sqlite")
    assert remote.rows_rejected == local.rows_rejected == 0
    assert passes == [True] and holders == [expected]


def test_a_key_of_two_facts_is_held_as_a_local_run_holds_it(spark, tmp_path):
    """key: [uscc, district]: a USCC repeated in its district is a reject naming the first
    row (in another file too), the same USCC in another district is another enterprise."""
    policies = compound_key_policies(tmp_path / "policies")
    registry = compound_key_registry(tmp_path / "registry")
    local = run_nightly(registry, tmp_path / "local.sqlite", as_of=AS_OF, policies=policies)
    remote = run_distributed(registry, tmp_path / "spark.sqlite", as_of=AS_OF, engine="spark", policies=policies,
                             master="local[2]")
    expected = store_contents(tmp_path / "local.sqlite")
    assert store_contents(tmp_path / "spark.sqlite") == expected
    assert remote.rows_rejected == local.rows_rejected == 2
    assert all(reason.startswith("duplicate uscc, district (") for *_, reason in expected["rejects"])


def test_amounts_in_fen_are_scored_and_summed_as_a_local_run_does(spark, tmp_path):
    """A policy rounding to the fen (0.475 yuan is 0.48), beside rules in whole yuan: the
    store, the Parquet tables and score's DataFrames hold every amount and total to the fen."""
    from ecorules.rules import load_policies

    policies = fen_policies(tmp_path / "policies")
    registry = fen_registry(tmp_path / "registry")
    local = run_nightly(registry, tmp_path / "local.sqlite", as_of=AS_OF, policies=policies)
    remote = run_distributed(registry, tmp_path / "spark.sqlite", as_of=AS_OF, engine="spark", policies=policies,
                             master="local[2]", out_format="parquet")
    expected = store_contents(tmp_path / "local.sqlite")
    assert store_contents(tmp_path / "spark.sqlite") == expected
    assert summary_of_run(tmp_path / "spark.sqlite") == summary_of_run(tmp_path / "local.sqlite")
    same = ("rows_in", "rows_rejected", "total_yuan", "total_fen", "unit", "findings", "district_totals")
    assert {k: remote.to_dict()[k] for k in same} == {k: local.to_dict()[k] for k in same}
    assert local.unit == "fen" and any(isinstance(row[4], str) and not row[4].endswith(".00")
                                       for row in expected["findings"])
    assert parquet_contents(tmp_path / "spark.parquet", 1) == store_as_parquet_holds_it(tmp_path / "spark.sqlite")
    out = score(spark.read.parquet(str(registry)), load_policies(policies), as_of=AS_OF)
    assert dict(out.findings.dtypes)["amount_yuan"] == dict(out.totals.dtypes)["deduction_yuan"] == "decimal(22,2)"
    assert sorted(((*tuple(r)[:4], exact(r["amount_yuan"]), r["payer"]) for r in out.findings.collect()), key=repr) == \
        sorted(((*row[:4], exact(row[4]), row[5]) for row in expected["findings"]), key=repr)
    assert sorted((r["district"], exact(r["deduction_yuan"]), r["cases"]) for r in out.totals.collect()) == \
        sorted((d["district"], exact(d["deduction_yuan"]), d["cases"]) for d in local.districts)
    assert out.counts["total_yuan"] == local.total_yuan and out.counts["total_fen"] == local.total_fen


def test_a_table_of_the_catalogue_is_a_registry(spark, registries, tmp_path):
    """--registry hive:DB.TABLE: a table of the session's catalogue (Hive's metastore on a
    cluster), with bad rows and keys repeated across its files, scored as a local run scores
    the same Parquet files: rejects name each file and row; a second run of the same table is
    the first one reused, one with a changed table is not."""
    from click.testing import CliRunner
    from ecorules.engine._cli import main

    spark.sql("CREATE DATABASE IF NOT EXISTS eco")
    source = registries["bad"]
    frame = spark.read.parquet(str(source / "a.parquet"), str(source / "b.parquet"))
    frame.coalesce(1).write.mode("overwrite").format("parquet").saveAsTable("eco.registry")
    files = sorted({row["f"] for row in spark.table("eco.registry").select(F.input_file_name().alias("f")).collect()})
    assert len(files) == 1 and files[0].startswith("file:")
    local = run_nightly(Path(files[0][len("file:"):]), tmp_path / "local.sqlite", as_of=AS_OF)
    result = CliRunner().invoke(main, ["run", "--registry", "hive:eco.registry", "--out", str(tmp_path / "hive.sqlite"),
                                       "--as-of", "2012-04-14", "--engine", "spark", "--master", "local[2]",
                                       "--format", "json"])
    assert result.exit_code == 1, result.output  # done, with rejected rows
    got, expected = store_contents(tmp_path / "hive.sqlite"), store_contents(tmp_path / "local.sqlite")
    assert {k: v for k, v in got.items() if k != "runs"} == {k: v for k, v in expected.items() if k != "runs"}
    assert [run[0:2] + run[3:] for run in got["runs"]] == [run[0:2] + run[3:] for run in expected["runs"]]
    assert got["runs"][0][2] == "hive:eco.registry"
    rejects = store_contents(tmp_path / "hive.sqlite")["rejects"]
    assert len(rejects) == local.rows_rejected > 300 and {source for source, *_ in rejects} == {str(Path(files[0][len("file:"):]))}
    assert any(reason.startswith("duplicate uscc") for *_, reason in rejects)
    again = run_distributed("hive:eco.registry", tmp_path / "hive.sqlite", as_of=AS_OF, engine="spark",
                            master="local[2]")
    assert again.reused and again.run_id == 1
    spark.table("eco.registry").limit(100).write.mode("overwrite").format("parquet").saveAsTable("eco.smaller")
    smaller = run_distributed("hive:eco.smaller", tmp_path / "hive.sqlite", as_of=AS_OF, engine="spark",
                              master="local[2]")
    assert not smaller.reused and smaller.rows_in == 100


def test_a_catalogue_table_without_files_is_numbered_in_read_order_and_refused_without_spark(spark, registries,
                                                                                             tmp_path):
    """A view has no files: its rows are named hive:NAME and numbered in the order Spark
    reads them; a hive: registry without --engine spark is refused, naming the option; a
    missing column is said before a run starts, naming the fact."""
    from ecorules.engine._nightly import NightlyError

    spark.read.parquet(str(registries["examples"] / "registry.parquet")).createOrReplaceTempView("examples_view")
    local = run_nightly(registries["examples"], tmp_path / "local.sqlite", as_of=AS_OF)
    remote = run_distributed("hive:examples_view", tmp_path / "view.sqlite", as_of=AS_OF, engine="spark",
                             master="local[2]")
    assert (remote.rows_in, remote.rows_rejected, remote.total_yuan) == (local.rows_in, local.rows_rejected,
                                                                         local.total_yuan)
    contents = store_contents(tmp_path / "view.sqlite")
    assert {k: v for k, v in contents.items() if k not in ("runs", "rejects")} == \
        {k: v for k, v in store_contents(tmp_path / "local.sqlite").items() if k not in ("runs", "rejects")}
    assert [(s, r) for s, r, *_ in contents["rejects"]] == \
        [("hive:examples_view", r) for _s, r, *_ in store_contents(tmp_path / "local.sqlite")["rejects"]]
    with pytest.raises(NightlyError, match="is a table of Spark's catalogue: give --engine spark"):
        run_distributed("hive:examples_view", tmp_path / "x.sqlite", as_of=AS_OF, engine="dask")
    spark.read.parquet(str(registries["examples"] / "registry.parquet")).drop("district") \
        .createOrReplaceTempView("no_district")
    with pytest.raises(Exception, match="district"):
        run_distributed("hive:no_district", tmp_path / "y.sqlite", as_of=AS_OF, engine="spark", master="local[2]")
    assert not (tmp_path / "y.sqlite").exists()


def test_a_case_table_is_judged_on_the_executors_as_a_local_run_judges_it(spark, tmp_path, monkeypatch):
    """--cases: the cases and their enterprises' registry rows meet in Spark (shuffled by the
    enterprise key), each task judging its enterprises' cases (roll-ups, one act one fine) by
    the local run's steps; a case_id repeated across enterprises is decided over the whole
    table. Every finding (its case, status, the fine superseding it), list entry, reject, total
    and summary equals the local run's, and so does a second run, which finds the first's
    assessments (一例一次). The driver neither reads nor judges a case: its case stage fails if asked."""
    from ecorules.engine.cases import CaseStage

    registry, cases = case_world(tmp_path)
    later = CASES_AS_OF + dt.timedelta(days=1)
    local = run_nightly(registry, tmp_path / "local.sqlite", policies=CASE_POLICIES, as_of=CASES_AS_OF, cases=cases)
    local_again = run_nightly(registry, tmp_path / "local.sqlite", policies=CASE_POLICIES, as_of=later, cases=cases)

    def not_here(*_args, **_kwargs):
        raise AssertionError("the driver judged the case table")

    monkeypatch.setattr(CaseStage, "run", not_here)  # the driver's, not the executors' (other processes)
    monkeypatch.setattr(CaseStage, "read", not_here)  # the CSV case file is read by the executors too
    remote = run_distributed(registry, tmp_path / "remote.sqlite", policies=CASE_POLICIES, as_of=CASES_AS_OF,
                             cases=cases, engine="spark", master="local[2]")
    again = run_distributed(registry, tmp_path / "remote.sqlite", policies=CASE_POLICIES, as_of=later,
                            cases=cases, engine="spark", master="local[2]")
    expected = store_contents(tmp_path / "local.sqlite")
    assert store_contents(tmp_path / "remote.sqlite") == expected
    assert case_findings(tmp_path / "remote.sqlite") == case_findings(tmp_path / "local.sqlite")
    assert summary_of_run(tmp_path / "remote.sqlite") == summary_of_run(tmp_path / "local.sqlite")
    for ours, theirs in ((remote, local), (again, local_again)):
        assert ours.to_dict()["tables"] == theirs.to_dict()["tables"]
        assert (ours.already_assessed, ours.lighter_law) == (theirs.already_assessed, theirs.lighter_law)
        assert ours.districts == theirs.districts and ours.total_yuan == theirs.total_yuan
    assert local.tables["cases"]["rows_rejected"] > 10 and local.tables["registry"]["rows_rejected"] == 8
    assert sum(1 for row in expected["findings"] if row[1].startswith("test.fines")) > 100  # the cases judged
    # not vacuous: fines superseded (one act one fine), findings the first run assessed, and
    # case_ids repeated by another enterprise's case
    statuses = {row[8] for row in case_findings(tmp_path / "local.sqlite") if len(row) > 8}
    assert {"superseded", "already_assessed"} <= statuses and local_again.already_assessed > 100
    repeated = [row for row in expected["rejects"] if str(row[4]).startswith("duplicate case_id")]
    assert len(repeated) >= 5
    # the enterprises' policies read the roll-ups: findings and list entries only case counts give
    assert any(row[2] == "eco" for row in expected["findings"])
    assert {row[1] for row in expected["sanctions"]} == {"watch", "recent"}


def test_cases_judged_by_the_law_of_their_dates_on_the_executors_as_a_local_run(spark, tmp_path):
    """行政处罚法 art 37 on the executors: each case by the law in force at its act or the
    lighter law of its decision (tests/data/lighter_law and its generated case table), every
    finding with its law note, list entry and reject equal to the local run's."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from ecorules.engine._generate import generate_registry
    from test_case_batch_lighter_law import AS_OF as LAW_AS_OF
    from test_case_batch_lighter_law import CASES, ENTERPRISES, _folder, _table

    (tmp_path / "policies").mkdir()
    (tmp_path / "registry").mkdir()
    policies = _folder(tmp_path / "policies")
    usccs = generate_registry(ENTERPRISES, 3)["uscc"].combine_chunks().to_pylist()
    pq.write_table(pa.table({"uscc": usccs}), tmp_path / "registry" / "enterprises.parquet")
    pacsv.write_csv(_table(usccs, CASES, 4), tmp_path / "cases.csv")
    options = {"policies": policies, "as_of": LAW_AS_OF, "cases": tmp_path / "cases.csv"}
    local = run_nightly(tmp_path / "registry", tmp_path / "local.sqlite", **options)
    remote = run_distributed(tmp_path / "registry", tmp_path / "remote.sqlite", engine="spark", master="local[2]",
                             **options)
    assert case_findings(tmp_path / "remote.sqlite") == case_findings(tmp_path / "local.sqlite")
    assert store_contents(tmp_path / "remote.sqlite") == store_contents(tmp_path / "local.sqlite")
    assert summary_of_run(tmp_path / "remote.sqlite") == summary_of_run(tmp_path / "local.sqlite")
    assert remote.lighter_law == local.lighter_law > 0  # not vacuous: cases judged by the lighter law
    assert any(row[-1] for row in case_findings(tmp_path / "local.sqlite") if len(row) > 8)  # law notes



def test_the_pieces_frame_holds_piece_k_in_partition_k(spark, registries, tmp_path):
    """The frame of pieces (made in the JVM, no Python job) keeps one piece per partition in
    the registry's order, which the census's "first row of a key" reads partitions by."""
    from ecorules.engine.distributed._partition import make_plan
    from ecorules.engine.distributed._pieces import pieces
    from ecorules.engine.distributed.spark import pieces_frame

    plan = make_plan(None, AS_OF)
    expected, _registry = pieces(plan, registries["bad"])
    frame = pieces_frame(spark, registries["bad"], plan)
    assert frame.rdd.getNumPartitions() == len(expected) > 3
    found = frame.select(F.spark_partition_id().alias("p"), "*").collect()
    assert [r["p"] for r in found] == list(range(len(expected)))
    assert [(r["path"], r["label"], r["row_group"], r["first_row"], tuple(r["columns"]), r["rows"], tuple(r["facts"]))
            for r in found] == [(p.path, p.label, p.row_group, p.first_row, p.columns, p.rows, p.facts)
                                for p in expected]
