"""行政处罚法 art 37 in one kernel pass: the batch run scores the periods whose versions agree
on their parameter values under all their laws at once (``Timeline.together``,
``Program.score`` with a tuple of days), each case once. A check of a version that is not
the case's own then rejects it in that pass; such a case is scored again a law at a time and
judged by its own versions' checks only, as ``Evaluator.evaluate_group`` judges it."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from ecorules.engine import Evaluator, load_policies
from ecorules.engine._generate import generate_registry
from ecorules.engine._nightly import run_nightly
from ecorules.engine.cases._law import Timeline
from ecorules.fastcalc import compile_program

DATA = Path(__file__).parent.parent / "data" / "lighter_law"
AS_OF = dt.date(2022, 6, 1)
VERSION = """policy:
  id: test.checked_law
  title: 测试
  authority: 测试
  document: 测试法({version})
  version: "{version}"
  effective: {effective}
{expires}  domain: case
{checks}rules:
  - id: fined
    title: 超标排放
    citation: {{document: 测试法({version}), article: 第一条, text: 测试}}
    when: act == 'over_standard'
    findings:
      - {{kind: fine, amount: "pollutant_fee_yuan * {multiple}", payer: enterprise}}
"""
WATCH = """policy:
  id: test.watch
  title: 测试
  authority: 测试
  document: 测试
  version: "1"
  effective: 2000-01-01
lists:
  named: {title: 测试}
rules:
  - id: named
    title: 测试
    citation: {document: 测试, text: 测试}
    when: uscc == ''
    sanctions:
      - {list: named, reason: 测试}
"""
# only the old version caps the fee it fines: a case of the new version alone with a larger
# fee is judged by the new version, a case whose act falls under the old one is a reject
CHECK = """checks:
  - id: fee_capped
    require: pollutant_fee_yuan <= 200000
    column: pollutant_fee_yuan
    message: 排污费超过旧法的上限
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("one_pass")
    for name in ("cases.yaml", "enterprises.yaml"):
        (folder / name).write_text((DATA / name).read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "old.yaml").write_text(VERSION.format(version="2010", effective="2010-01-01", expires="  expires: 2020-01-01\n",
                                                    checks=CHECK, multiple=3), encoding="utf-8")
    (folder / "watch.yaml").write_text(WATCH, encoding="utf-8")  # (a run needs an enterprise policy)
    (folder / "new.yaml").write_text(VERSION.format(version="2020", effective="2020-01-01", expires="", checks="",
                                                    multiple=2), encoding="utf-8")
    return folder


def _table(usccs: list[str], n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    act_date = np.datetime64("2015-01-01") + rng.integers(0, 365 * 7, n)
    decided = act_date + rng.integers(0, 900, n)
    has_decided = rng.random(n) < 0.5
    fee = rng.choice([10, 50000, 199999, 200000, 200001, 400000], n)
    return pa.table({
        "case_id": [f"P{i:05d}" for i in range(n)],
        "uscc": [usccs[i] for i in rng.integers(0, len(usccs), n)],
        "act": np.where(rng.random(n) < 0.9, "over_standard", "other").astype(object).tolist(),
        "act_date": act_date.astype(str).tolist(),
        "act_end": [""] * n,
        "decided": [str(d) if h else "" for d, h in zip(decided, has_decided, strict=True)],
        "pollutant_fee_yuan": fee.tolist(),
    })


def test_the_two_versions_are_scored_in_one_pass(folder):
    policies = load_policies(folder)
    program = compile_program(policies, domain="case")
    timeline = Timeline.of(program.compiled.policies)
    pairs = np.ones((timeline.cuts.size + 1,) * 2, np.int64)
    assert timeline.together(program, pairs) == [[0, 1, 2]]


def test_a_check_of_a_version_not_its_own_rejects_no_case(folder, tmp_path):
    usccs = generate_registry(20, 3)["uscc"].combine_chunks().to_pylist()
    cases = _table(usccs, 600, 5)
    pacsv.write_csv(pa.table({"uscc": usccs}), tmp_path / "enterprises.csv")
    pacsv.write_csv(cases, tmp_path / "cases.csv")
    summary = run_nightly(tmp_path / "enterprises.csv", tmp_path / "results.sqlite", policies=folder, as_of=AS_OF,
                          cases=tmp_path / "cases.csv")
    db = sqlite3.connect(tmp_path / "results.sqlite")
    found = Counter(db.execute("SELECT case_id, policy, amount_yuan, status, law_note FROM findings WHERE run_id = ?",
                               (summary.run_id,)).fetchall())
    rejected = {row for (row,) in db.execute("SELECT row FROM rejects WHERE run_id = ? AND source LIKE '%cases%'",
                                             (summary.run_id,))}

    expected, refused = Counter(), set()
    by_enterprise: dict[str, list] = {}
    for row in cases.to_pylist():
        by_enterprise.setdefault(row["uscc"], []).append({k: v for k, v in row.items() if v not in (None, "")})
    with Evaluator(load_policies(folder), backend="python") as evaluator:
        for uscc in usccs:
            mine = by_enterprise.get(uscc, [])
            for case in mine:  # a case failing a check: the group without it (the batch's reject)
                try:
                    evaluator.evaluate_group({"uscc": uscc}, [case], as_of=AS_OF)
                except Exception:  # noqa: BLE001 (RecordCheckError: the case's own checks)
                    refused.add(int(case["case_id"][1:]))
            kept = [case for case in mine if int(case["case_id"][1:]) not in refused]
            for f in evaluator.evaluate_group({"uscc": uscc}, kept, as_of=AS_OF).findings:
                expected[(f.record, f.policy, f.amount_yuan, f.status, f.law_note)] += 1
    assert found == expected
    assert {row - 2 for row in rejected} == refused  # (a reject's row is its line: the header is line 1)
    # the table holds what the test is about: cases of the new version alone over the old
    # cap, judged, and cases under the old one over it, rejected
    fee, acts = cases["pollutant_fee_yuan"].to_numpy(), cases["act_date"].to_pylist()
    new_over = [i for i in range(len(acts)) if fee[i] > 200000 and acts[i] >= "2020-01-01"]
    old_over = [i for i in range(len(acts)) if fee[i] > 200000 and acts[i] < "2020-01-01"]
    assert len(new_over) > 20 and not refused & set(new_over)
    assert len(old_over) > 20 and set(old_over) <= refused
