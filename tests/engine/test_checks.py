"""Checks (rules/_checks.py) end to end: the library on both backends, YAML test cases, and
the nightly run over a registry, where a row failing a check is a reject with its row,
column, value and reason and rows in = scored + rejected."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from ecorules.engine import Evaluator
from ecorules.engine._nightly import run_nightly
from ecorules.engine._testing import run_tests
from ecorules.rules import RecordCheckError, RecordError, load_policies

AS_OF = dt.date(2012, 4, 14)
USCC = ["91410100123456788Y", "9144030071526726XG", "91350200MA31E12PXF"]

POLICY = """\
policy:
  id: test.checked
  title: 有核验的政策
  authority: 测试
  document: 测试
  version: "1"
  effective: 2011-01-01
facts:
  uscc: {type: string, format: uscc}
  outfalls: {type: integer, min: 0, max: 1000}
  treated: {type: integer, min: 0, max: 1000}
  decided: {type: integer, optional: true, min: 0, max: 10000000}
parameters:
  low: {type: integer, values: [{from: 2011-01-01, value: 100, reference: 第一条}]}
  high: {type: integer, values: [{from: 2011-01-01, value: 500, reference: 第一条}]}
  later: {type: integer, values: []}
lists:
  watch: {title: 关注}
checks:
  - id: treated_not_more
    require: treated <= outfalls
    column: treated
    message: 已治理数多于排污口数
  - id: decided_in_range
    when: is_set(decided)
    require: decided >= low and decided <= high
    column: decided
    message: 决定数额不在幅度内
    citation: {document: 测试法, article: 第一条, text: 处一百元以上五百元以下}
  - id: waits_for_a_value
    require: outfalls <= later
    column: outfalls
    message: 尚未设定
rules:
  - id: per_outfall
    title: 每个未治理排污口
    citation: {document: 测试法, text: 测试}
    when: outfalls > treated
    findings:
      - {kind: fine, amount: "value_or(decided, max(0, 10 * (outfalls - treated)))", payer: enterprise}
tests:
  - name: 已治理数多于排污口数,拒收
    given: {uscc: 91410100123456788Y, outfalls: 1, treated: 2}
    expect:
      rejected: {column: treated, check: treated_not_more}
  - name: 决定数额超出幅度,但期望写错了列
    given: {uscc: 91410100123456788Y, outfalls: 3, treated: 1, decided: 600}
    expect:
      rejected: {column: outfalls}
  - name: 期望拒收,却予以判断
    given: {uscc: 91410100123456788Y, outfalls: 3, treated: 1, decided: 300}
    expect:
      rejected: {column: decided}
"""


@pytest.fixture()
def folder(tmp_path):
    (tmp_path / "checked.yaml").write_text(POLICY, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("backend", ["python", "durable"])
def test_every_failing_check_is_reported_and_no_rule_judges_the_record(folder, backend):
    with Evaluator(load_policies(folder), backend=backend) as evaluator:
        with pytest.raises(RecordCheckError) as caught:
            evaluator.evaluate({"uscc": USCC[0], "outfalls": 1, "treated": 2, "decided": 99}, as_of=AS_OF)
        error = caught.value
        assert isinstance(error, RecordError) and error.field == "treated"
        assert [(f.check, f.column, f.value) for f in error.failures] == [
            ("treated_not_more", "treated", "2"), ("decided_in_range", "decided", "99")]
        assert error.failures[1].reason == "决定数额不在幅度内 (test.checked@1 check decided_in_range; 测试法 第一条)"
        # within the range, and an empty decided (the check does not apply): judged
        decision = evaluator.evaluate({"uscc": USCC[0], "outfalls": 3, "treated": 1, "decided": 500}, as_of=AS_OF)
        assert decision.total_yuan == 500
        decision = evaluator.evaluate({"uscc": USCC[0], "outfalls": 3, "treated": 1}, as_of=AS_OF)
        assert decision.total_yuan == 20
        # a check reading a parameter without a value is not judged, and says so
        assert any("check waits_for_a_value: not judged" in w for w in decision.warnings)


def test_yaml_cases_expect_a_rejection_on_its_column(folder):
    report = run_tests(load_policies(folder), backend="python")
    outcome = {r.case.name: r.problems for r in report.results}
    assert outcome["已治理数多于排污口数,拒收"] == ()
    (wrong_column,) = outcome["决定数额超出幅度,但期望写错了列"]
    assert wrong_column.startswith("expected a rejection on outfalls, but: decided: 决定数额不在幅度内")
    (judged,) = outcome["期望拒收,却予以判断"]
    assert judged == "expected a rejection on decided, but the record was judged (1 findings)"


def test_the_nightly_run_rejects_rows_failing_a_check_with_row_column_and_reason(folder, tmp_path):
    registry = tmp_path / "registry.csv"
    registry.write_text(
        "uscc,outfalls,treated,decided\n"
        f"{USCC[0]},3,1,\n"       # 20 yuan
        f"{USCC[1]},1,2,\n"       # more treated than outfalls: rejected
        f"{USCC[2]},4,0,700\n",   # decided above the range: rejected
        encoding="utf-8",
    )
    summary = run_nightly(registry, tmp_path / "out.sqlite", policies=folder, as_of=AS_OF)
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (3, 1, 2)
    assert summary.total_yuan == 20
    db = sqlite3.connect(tmp_path / "out.sqlite")
    rejects = db.execute("SELECT row, \"column\", value, reason FROM rejects ORDER BY row").fetchall()
    assert rejects == [
        (3, "treated", "2", "已治理数多于排污口数 (test.checked@1 check treated_not_more)"),
        (4, "decided", "700", "决定数额不在幅度内 (test.checked@1 check decided_in_range; 测试法 第一条)"),
    ]
    assert db.execute("SELECT count(*) FROM findings").fetchone()[0] == 1
