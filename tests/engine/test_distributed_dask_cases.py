"""--cases on Dask: the case table judged on the workers equals the single-machine run.

A LocalCluster of 2 worker processes bound to 127.0.0.1 (dashboard too), shared by the
module. The driver judges no case: its case stage and the part judge fail if called in
this process (the workers are other processes, which the patches do not reach).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os

import pytest

distributed = pytest.importorskip("distributed", reason='Dask is not installed: pip install "ecorules[dask]"')

import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from distributed_data import (  # noqa: E402
    CASE_POLICIES,
    CASES_AS_OF,
    case_findings,
    case_world,
    store_contents,
    summary_of_run,
)
from ecorules.engine._nightly import run_nightly  # noqa: E402
from ecorules.engine.distributed._run import run_distributed  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster, distributed.Client(cluster) as client:
        yield client


@contextlib.contextmanager
def driver_judges_nothing():
    """The case stage and the part judge raise if the driver (this process) calls them."""
    from ecorules.engine.cases import CaseStage
    from ecorules.engine.distributed import _case_parts

    here = os.getpid()
    judge_part = _case_parts.judge_part

    def not_here(*_args, **_kwargs):
        raise AssertionError("the driver judged the case table")

    def judged_elsewhere(*args, **kwargs):
        if os.getpid() == here:
            raise AssertionError("the driver judged a part of the case table")
        return judge_part(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CaseStage, "run", not_here)
        patch.setattr(_case_parts, "judge_part", judged_elsewhere)
        yield


def _same_runs(ours, theirs) -> None:
    assert ours.to_dict()["tables"] == theirs.to_dict()["tables"]
    assert (ours.already_assessed, ours.lighter_law) == (theirs.already_assessed, theirs.lighter_law)
    assert ours.districts == theirs.districts and ours.total_yuan == theirs.total_yuan


def test_a_case_table_is_judged_on_the_workers_as_a_local_run_judges_it(cluster, tmp_path):
    """Cases and their enterprises' registry rows meet on a worker (shuffled by the enterprise
    key), each partition judged by the local run's steps (roll-ups, one act one fine); a
    case_id repeated across enterprises is decided over the whole table. Every finding (its
    case, status, superseding fine), list entry, reject, total and summary equals the local
    run's, and so does a second run, which finds the first's assessments (一例一次)."""
    registry, cases = case_world(tmp_path)
    later = CASES_AS_OF + dt.timedelta(days=1)
    options = {"policies": CASE_POLICIES, "cases": cases}
    local = run_nightly(registry, tmp_path / "local.sqlite", as_of=CASES_AS_OF, **options)
    local_again = run_nightly(registry, tmp_path / "local.sqlite", as_of=later, **options)
    dask = {"engine": "dask", "scheduler": cluster.scheduler.address, **options}
    with driver_judges_nothing():
        remote = run_distributed(registry, tmp_path / "remote.sqlite", as_of=CASES_AS_OF, **dask)
        again = run_distributed(registry, tmp_path / "remote.sqlite", as_of=later, **dask)
    expected = store_contents(tmp_path / "local.sqlite")
    assert store_contents(tmp_path / "remote.sqlite") == expected
    assert case_findings(tmp_path / "remote.sqlite") == case_findings(tmp_path / "local.sqlite")
    assert summary_of_run(tmp_path / "remote.sqlite") == summary_of_run(tmp_path / "local.sqlite")
    _same_runs(remote, local)
    _same_runs(again, local_again)
    assert local.tables["cases"]["rows_rejected"] > 10 and local.tables["registry"]["rows_rejected"] == 8
    assert sum(1 for row in expected["findings"] if row[1].startswith("test.fines")) > 100  # the cases judged
    # not vacuous: fines superseded (one act one fine), findings the first run assessed, and
    # case_ids repeated by another enterprise's case
    statuses = {row[8] for row in case_findings(tmp_path / "local.sqlite") if len(row) > 8}
    assert {"superseded", "already_assessed"} <= statuses and local_again.already_assessed > 100
    assert len([row for row in expected["rejects"] if str(row[4]).startswith("duplicate case_id")]) >= 5
    # the enterprises' policies read the roll-ups: findings and list entries only case counts give
    assert any(row[2] == "eco" for row in expected["findings"])
    assert {row[1] for row in expected["sanctions"]} == {"watch", "recent"}


def test_a_case_table_of_several_files_is_read_and_judged_on_the_workers(cluster, tmp_path):
    """A folder of case files, CSV and Parquet, read a file per worker task by the local reader:
    a case_id first written in one file and repeated in a later one is rejected naming the
    first file and row; an unreadable CSV line is rejected with its line; rows in = rows
    scored + rows rejected, every file's counts as the local run's."""
    registry, cases = case_world(tmp_path)
    table = pacsv.read_csv(cases, convert_options=pacsv.ConvertOptions(
        column_types={name: pa.string() for name in pacsv.read_csv(cases).column_names}))
    folder = tmp_path / "cases"
    folder.mkdir()
    third = table.num_rows // 3
    pq.write_table(table.slice(0, third), folder / "a.parquet", row_group_size=100)
    pacsv.write_csv(table.slice(third, third), folder / "b.csv")
    with open(folder / "b.csv", "a", encoding="utf-8") as handle:
        handle.write("a,malformed,line\n")
    later = table.slice(2 * third)
    repeated = table.slice(0, 5).column("case_id")  # the first file's case_ids again, in the last file
    later = pa.concat_tables([later, table.slice(third, 5).set_column(table.schema.get_field_index("case_id"),
                                                                        "case_id", repeated)])
    pacsv.write_csv(later, folder / "c.csv")
    options = {"policies": CASE_POLICIES, "as_of": CASES_AS_OF, "cases": folder}
    local = run_nightly(registry, tmp_path / "local.sqlite", **options)
    with driver_judges_nothing():
        remote = run_distributed(registry, tmp_path / "remote.sqlite", engine="dask",
                                 scheduler=cluster.scheduler.address, **options)
    assert store_contents(tmp_path / "remote.sqlite") == store_contents(tmp_path / "local.sqlite")
    assert case_findings(tmp_path / "remote.sqlite") == case_findings(tmp_path / "local.sqlite")
    assert summary_of_run(tmp_path / "remote.sqlite") == summary_of_run(tmp_path / "local.sqlite")
    _same_runs(remote, local)
    rejects = store_contents(tmp_path / "local.sqlite")["rejects"]
    assert any("a.parquet" in str(row[4]) and str(row[4]).startswith("duplicate case_id") for row in rejects)
    assert any("malformed line" in str(row[4]) for row in rejects)


def test_cases_judged_by_the_law_of_their_dates_on_the_workers_as_a_local_run(cluster, tmp_path):
    """行政处罚法 art 37 on the workers: each case by the law in force at its act or the
    lighter law of its decision, every finding with its law note equal to the local run's."""
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
    with driver_judges_nothing():
        remote = run_distributed(tmp_path / "registry", tmp_path / "remote.sqlite", engine="dask",
                                 scheduler=cluster.scheduler.address, **options)
    assert case_findings(tmp_path / "remote.sqlite") == case_findings(tmp_path / "local.sqlite")
    assert store_contents(tmp_path / "remote.sqlite") == store_contents(tmp_path / "local.sqlite")
    assert summary_of_run(tmp_path / "remote.sqlite") == summary_of_run(tmp_path / "local.sqlite")
    assert remote.lighter_law == local.lighter_law > 0  # not vacuous: cases judged by the lighter law
    assert any(row[-1] for row in case_findings(tmp_path / "local.sqlite") if len(row) > 8)  # law notes


def test_a_case_table_of_no_rows_is_judged_on_a_worker_as_a_local_run(cluster, tmp_path):
    """A case file of its header alone: no case, and the run's store and summary are the
    local run's (the empty table judged on a worker, as a partition of no rows)."""
    registry, cases = case_world(tmp_path, cases=20)
    header = cases.read_text(encoding="utf-8").splitlines()[0]
    cases.write_text(header + "\n", encoding="utf-8")
    options = {"policies": CASE_POLICIES, "as_of": CASES_AS_OF, "cases": cases}
    local = run_nightly(registry, tmp_path / "local.sqlite", **options)
    with driver_judges_nothing():
        remote = run_distributed(registry, tmp_path / "remote.sqlite", engine="dask",
                                 scheduler=cluster.scheduler.address, **options)
    assert store_contents(tmp_path / "remote.sqlite") == store_contents(tmp_path / "local.sqlite")
    assert summary_of_run(tmp_path / "remote.sqlite") == summary_of_run(tmp_path / "local.sqlite")
    _same_runs(remote, local)
    assert local.tables["cases"]["rows_in"] == 0 and local.tables["registry"]["rows_scored"] > 100
