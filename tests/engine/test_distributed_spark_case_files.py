"""--engine spark --cases FILE: a case table of CSV or Parquet files read by Spark's executors
(engine/distributed/_case_files.py), judged there, and written by the local run's CaseWriter
(engine/distributed/_case_parts.py's write_parts), the judged parts coming back in pieces.

Each run is compared with the local run on the same files: every finding, list entry, reject
(with its file and row), total and summary. The driver neither reads the case rows nor judges
them: its readers' batches and its case stage fail if called (the executors are other
processes, which the patches do not reach).
"""

from __future__ import annotations

import io
import shutil
import sqlite3
from pathlib import Path

import pytest

pyspark = pytest.importorskip("pyspark", reason='pyspark is not installed: pip install "ecorules[spark]" '
                                                "(or tox -e spark35 / spark4)")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java (17), which is not on PATH", allow_module_level=True)

import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from distributed_data import CASE_POLICIES, CASES_AS_OF, case_world, store_contents, summary_of_run  # noqa: E402
from ecorules.engine._nightly import run_nightly  # noqa: E402
from ecorules.engine.distributed import _spark_cases  # noqa: E402
from ecorules.engine.distributed._run import run_distributed  # noqa: E402


@pytest.fixture
def driver_reads_no_case(monkeypatch):
    """A context in which the driver's case readers and case stage fail if called."""
    from contextlib import contextmanager

    from ecorules.engine import _sources
    from ecorules.engine.cases import CaseStage

    def not_here(*_args, **_kwargs):
        raise AssertionError("the driver read or judged the case table")

    @contextmanager
    def refused():
        with monkeypatch.context() as patch:
            for owner, name in ((CaseStage, "run"), (CaseStage, "read"), (_sources.CsvFile, "batches"),
                                (_sources.ParquetFile, "batches")):
                patch.setattr(owner, name, not_here)
            yield

    return refused


@pytest.fixture
def conf(spark):
    """Session settings for one test, put back after it (the session is the suite's)."""
    changed: dict[str, str | None] = {}

    def setting(key: str, value: str) -> None:
        changed.setdefault(key, spark.conf.get(key, None))
        spark.conf.set(key, value)

    yield setting
    for key, value in changed.items():
        if value is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, value)


def _faulty_folder(cases_csv: Path, folder: Path) -> Path:
    """The case table as three files, each with a column no policy reads (备注, notes): a.csv
    (UTF-8) with malformed lines (a field too many, too few), a blank line, bytes that do
    not decode (one alone, one beside good UTF-8); b.tsv, tab separated, its columns in
    another order; c.csv in GB18030 (decoded by Spark itself)."""
    table = pacsv.read_csv(cases_csv, convert_options=pacsv.ConvertOptions(
        column_types={n: pa.string() for n in pacsv.read_csv(cases_csv).column_names}))
    n = table.num_rows
    first, second, third = table.slice(0, 2 * n // 5), table.slice(2 * n // 5, 2 * n // 5), table.slice(4 * n // 5)
    folder.mkdir()
    notes = first.append_column("备注", pa.array(["金水区东路"] * first.num_rows))
    out = io.BytesIO()
    pacsv.write_csv(notes, out)
    lines = out.getvalue().splitlines(keepends=True)
    lines[40] = lines[40].replace(b",", b",\xff", 1)  # not UTF-8
    lines[55] = lines[55].replace(b",", b",\xe9t\xc3\xa9", 1)  # Latin-1 beside UTF-8
    lines.insert(12, lines[5].rstrip(b"\r\n") + b",extra\n")
    lines.insert(25, b"only,two\n")
    lines.insert(33, b"\n")
    (folder / "a.csv").write_bytes(b"".join(lines))
    pacsv.write_csv(second.select(second.column_names[::-1]), folder / "b.tsv",
                    write_options=pacsv.WriteOptions(delimiter="\t"))
    out = io.BytesIO()
    pacsv.write_csv(third.append_column("备注", pa.array(["二七区大学路"] * third.num_rows)), out)
    (folder / "c.csv").write_bytes(out.getvalue().decode().encode("gb18030"))
    return folder


def _rejects(db: Path) -> list[tuple]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute("SELECT source, row, column, value, reason FROM rejects ORDER BY rowid").fetchall()
    finally:
        connection.close()


def test_csv_files_are_read_by_the_executors_as_the_local_reader_reads_them(spark, tmp_path, conf,
                                                                            driver_reads_no_case):
    """Malformed lines, a blank line, undecodable bytes, two files of other separators and
    column orders, a file Spark reads in many splits: every reject named by the same file and
    row, with the same value and words, and everything else equal to the local run's."""
    registry, cases = case_world(tmp_path)
    folder = _faulty_folder(cases, tmp_path / "cases")
    local = run_nightly(registry, tmp_path / "local.sqlite", policies=CASE_POLICIES, as_of=CASES_AS_OF, cases=folder)
    conf("spark.sql.files.maxPartitionBytes", "16k")  # a.csv in several splits, numbered across them
    conf("spark.sql.files.openCostInBytes", "0")
    splits = spark.read.text(str(folder / "a.csv")).rdd.getNumPartitions()
    with driver_reads_no_case():
        remote = run_distributed(registry, tmp_path / "remote.sqlite", policies=CASE_POLICIES, as_of=CASES_AS_OF,
                                 cases=folder, engine="spark", master="local[2]")
    expected = store_contents(tmp_path / "local.sqlite")
    assert store_contents(tmp_path / "remote.sqlite") == expected
    assert _rejects(tmp_path / "remote.sqlite") == _rejects(tmp_path / "local.sqlite")  # and in the same order
    assert summary_of_run(tmp_path / "remote.sqlite") == summary_of_run(tmp_path / "local.sqlite")
    assert remote.to_dict()["tables"] == local.to_dict()["tables"]
    assert (remote.districts, remote.total_yuan) == (local.districts, local.total_yuan)
    # not vacuous: the faults are rejects, of both files, and rows beyond the first split
    reasons = [(Path(source).name, reason) for source, _row, _column, _value, reason in expected["rejects"]]
    assert sum(reason.startswith("malformed line") for _, reason in reasons) == 2
    assert sum(reason == "undecodable bytes: not valid utf-8" for _, reason in reasons) == 2
    assert {"a.csv", "b.tsv", "c.csv"} <= {name for name, _ in reasons} and splits >= 4
    assert [about.get("encoding") for about in summary_of_run(tmp_path / "local.sqlite")["sources"]
            if about["source"].startswith(str(folder))] == ["utf-8", "utf-8", "gb18030"]
    assert max(row for source, row, *_ in expected["rejects"] if source.endswith("a.csv")) > 500


def test_parquet_files_are_read_by_the_executors_as_the_local_reader_reads_them(spark, tmp_path, conf,
                                                                                driver_reads_no_case):
    """Two Parquet files of several row groups, one with its columns under their labels:
    every row named by its file and row (Spark's row_index), results equal the local run's."""
    registry, cases = case_world(tmp_path)
    table = pacsv.read_csv(cases)
    folder = tmp_path / "cases"
    folder.mkdir()
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), folder / "a.parquet", row_group_size=300)
    pq.write_table(table.slice(half).select(table.column_names[::-1]), folder / "b.parquet", row_group_size=200)
    conf("spark.sql.files.maxPartitionBytes", "8k")
    local = run_nightly(registry, tmp_path / "local.sqlite", policies=CASE_POLICIES, as_of=CASES_AS_OF, cases=folder)
    with driver_reads_no_case():
        remote = run_distributed(registry, tmp_path / "remote.sqlite", policies=CASE_POLICIES, as_of=CASES_AS_OF,
                                 cases=folder, engine="spark", master="local[2]")
    expected = store_contents(tmp_path / "local.sqlite")
    assert store_contents(tmp_path / "remote.sqlite") == expected
    assert _rejects(tmp_path / "remote.sqlite") == _rejects(tmp_path / "local.sqlite")
    assert summary_of_run(tmp_path / "remote.sqlite") == summary_of_run(tmp_path / "local.sqlite")
    assert remote.to_dict()["tables"] == local.to_dict()["tables"]
    assert {Path(source).name for source, *_ in expected["rejects"]} >= {"a.parquet", "b.parquet"}
    assert local.tables["cases"]["rows_rejected"] > 10


def test_parts_come_back_in_many_pieces_and_a_run_killed_between_parts_reruns_as_one_clean_run(
        spark, tmp_path, conf, monkeypatch):
    """Judged parts in pieces of 4 KiB (spark.ecorules.cases.pieceBytes): several pieces a
    part, put together as they were. A run interrupted after its first part is written
    leaves nothing in the store (the CaseWriter's transaction); its rerun writes the store
    that one clean run writes, each row once."""
    from ecorules.engine.cases import _write

    registry, cases = case_world(tmp_path)
    options = {"policies": CASE_POLICIES, "as_of": CASES_AS_OF, "cases": cases, "engine": "spark",
               "master": "local[2]"}
    clean = run_distributed(registry, tmp_path / "clean.sqlite", **options)
    conf(_spark_cases.PIECE_SETTING, "4096")
    pieces, parts = [], []
    original_parts_of = _spark_cases.parts_of

    def counted(rows):
        def seen():
            for row in rows:
                pieces.append((row["task"], row["pieces"]))
                yield row
        for part in original_parts_of(seen()):
            parts.append(part)
            yield part

    monkeypatch.setattr(_spark_cases, "parts_of", counted)
    original_partition = _write.CaseWriter.partition

    def dies_on_the_second(self, results):
        if self.written:
            raise KeyboardInterrupt
        self.written = True
        original_partition(self, results)

    out = tmp_path / "killed.sqlite"
    with monkeypatch.context() as patch:
        patch.setattr(_write.CaseWriter, "written", False, raising=False)
        patch.setattr(_write.CaseWriter, "partition", dies_on_the_second)
        with pytest.raises(KeyboardInterrupt):
            run_distributed(registry, out, **options)
    db = sqlite3.connect(out)
    try:
        assert db.execute("SELECT status FROM runs").fetchall() == [("failed",)]
        assert db.execute("SELECT count(*) FROM findings").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM rejects").fetchone() == (0,)
    finally:
        db.close()
    pieces.clear()
    parts.clear()
    again = run_distributed(registry, out, **options)
    assert len(parts) >= 2 and len(pieces) >= 4 * len(parts)  # several pieces a part, every part whole
    assert {count for _task, count in pieces} != {1}
    expected = store_contents(tmp_path / "clean.sqlite")
    contents = store_contents(out)
    assert [r for r in contents["runs"] if r[0] != "failed"] == expected["runs"]
    assert [r[0] for r in contents["runs"]].count("failed") == 1
    assert {k: v for k, v in contents.items() if k != "runs"} == {k: v for k, v in expected.items() if k != "runs"}
    assert summary_of_run_of(out, again.run_id) == summary_of_run(tmp_path / "clean.sqlite")
    assert again.to_dict()["tables"] == clean.to_dict()["tables"] and again.total_yuan == clean.total_yuan
    assert clean.findings > 100


def summary_of_run_of(db: Path, run_id: int) -> dict:
    import json

    connection = sqlite3.connect(db)
    try:
        summary = json.loads(connection.execute("SELECT summary FROM runs WHERE id = ?", (run_id,)).fetchone()[0])
    finally:
        connection.close()
    return {key: summary[key] for key in ("findings", "lists", "rejects_by_reason", "sources")}

