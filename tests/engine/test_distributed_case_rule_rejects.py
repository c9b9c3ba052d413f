"""The cases of an enterprise its own policy's rule rejects (test_case_enterprise_rule_rejects.py)
are rejects on a cluster too: Dask's workers and Spark's executors judge each part by the
local run's steps (engine/distributed/_case_parts.judge_part), the enterprises with their
cases' roll-ups among them, and the run's store equals the local run's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from distributed_data import (
    CASE_POLICIES,
    CASES_AS_OF,
    case_findings,
    case_world,
    store_contents,
    summary_of_run,
)
from ecorules.engine._nightly import run_nightly

ROOT = Path(__file__).resolve().parents[2]
# fined_cases (a roll-up of the cases) decides whether the working day is outside the table
RULE = """policy:
  id: test.calendar
  title: 工作日
  authority: 测试
  document: 测试
  version: "1"
  effective: 2000-01-01
lists:
  watch: {title: 关注}
rules:
  - id: never
    title: 从不触发
    citation: {document: 测试法, text: 测试}
    when: "working_day_on_or_after(if(fined_cases >= 4, date('1990-01-02'), as_of)) < date('1980-01-01')"
    sanctions: [{list: watch, reason: 测试}]
"""


def _world(tmp_path: Path):
    policies = tmp_path / "policies"
    shutil.copytree(CASE_POLICIES, policies)
    shutil.copy(ROOT / "policies" / "zhengzhou" / "holidays.yaml", policies / "holidays.yaml")
    (policies / "calendar.yaml").write_text(RULE, encoding="utf-8")
    registry, cases = case_world(tmp_path / "data")
    local = run_nightly(registry, tmp_path / "local.sqlite", policies=policies, as_of=CASES_AS_OF, cases=cases)
    rejects = store_contents(tmp_path / "local.sqlite")["rejects"]
    refused = [row for row in rejects if "(test.calendar@1 rule never))" in str(row[4])]
    # not vacuous: cases rejected for their enterprise's rule, its row rejected in the registry
    assert len(refused) > 20 and local.tables["registry"]["rows_rejected"] > 8 + 5, local.tables
    return policies, registry, cases


def _same(tmp_path: Path) -> None:
    assert store_contents(tmp_path / "remote.sqlite") == store_contents(tmp_path / "local.sqlite")
    assert case_findings(tmp_path / "remote.sqlite") == case_findings(tmp_path / "local.sqlite")
    assert summary_of_run(tmp_path / "remote.sqlite") == summary_of_run(tmp_path / "local.sqlite")


def test_dask_rejects_the_cases_of_an_enterprise_its_rule_rejects(tmp_path):
    distributed = pytest.importorskip("distributed", reason='Dask is not installed: pip install "ecorules[dask]"')
    from ecorules.engine.distributed._run import run_distributed

    policies, registry, cases = _world(tmp_path)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster, distributed.Client(cluster):
        run_distributed(registry, tmp_path / "remote.sqlite", policies=policies, as_of=CASES_AS_OF, cases=cases,
                        engine="dask", scheduler=cluster.scheduler_address)
    _same(tmp_path)


def test_spark_rejects_the_cases_of_an_enterprise_its_rule_rejects(tmp_path, request):
    pytest.importorskip("pyspark", reason='pyspark is not installed: pip install "ecorules[spark]"')
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java (17), which is not on PATH")
    from ecorules.engine.distributed._run import run_distributed

    request.getfixturevalue("spark")  # the suite's session (tests/engine/conftest.py)
    policies, registry, cases = _world(tmp_path)
    run_distributed(registry, tmp_path / "remote.sqlite", policies=policies, as_of=CASES_AS_OF, cases=cases,
                    engine="spark", master="local[2]")
    _same(tmp_path)
