"""行政处罚法 art 37 applies the law in force when the act was done; where no version of a
statute was in force at the act, the act did not violate it, and a later version does not
reach back (only a lighter law does, and "no violation" is already the lightest). So that
statute's version in force at the decision is not applied to the case at all: neither its
fines nor its checks. The library (engine/_group.judge_by_law_in_force) never judges such a
case under it; the batch run must not either (it scores the case at its decision date for
the statutes that have a version at the act, and must not reject it by a check of one that
has none)."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from ecorules.engine import Evaluator, load_policies
from ecorules.engine._nightly import run_nightly
from ecorules.rules import RecordCheckError

DATA = Path(__file__).parent.parent / "data" / "kind_checks"
AS_OF = dt.date(2025, 6, 30)
USCC = "91410100123456788Y"
LATE = "处罚决定日晚于发现后二十个工作日 (test.fines@1 check decided_within_twenty_working_days)"
COLUMNS = ("case_id", "uscc", "act_date", "discovered", "decided", "fine_yuan")

# test.fines@1 takes effect on 2024-03-01 here (its check: decided within 20 working days of
# discovery). 2024-03-13 is the 21st working day after 2024-02-07 (test_kind_checks.py).
CASES = [
    # act before the statute, decided late after it took effect: no law at the act
    ("N1", USCC, "2024-02-01", "2024-02-07", "2024-03-13", "9"),
    # the same, decided in time: no law at the act, so no fine either
    ("N2", USCC, "2024-02-01", "2024-02-07", "2024-03-12", "11"),
    # act under the statute, decided late: rejected by its check
    ("L1", USCC, "2024-03-04", "2024-03-05", "2024-04-08", "5"),
    # act under the statute, decided in time: fined
    ("F1", USCC, "2024-03-04", "2024-03-05", "2024-03-20", "7"),
]


@pytest.fixture
def policies(tmp_path) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(DATA, folder)
    fines = (folder / "fines.yaml").read_text(encoding="utf-8")
    assert fines.count("effective: 2024-01-01") == 1
    (folder / "fines.yaml").write_text(fines.replace("effective: 2024-01-01", "effective: 2024-03-01"),
                                       encoding="utf-8")
    return folder


def _library(policies: Path, backend: str) -> tuple[dict, dict]:
    """Per case: its fines, or the reasons of the checks it failed."""
    fined, rejected = {}, {}
    with Evaluator(load_policies(policies), backend=backend) as evaluator:
        for case in CASES:
            record = {k: v for k, v in zip(COLUMNS, case, strict=True) if v != ""}
            try:
                decision = evaluator.evaluate(record, as_of=AS_OF, domain="case")
            except RecordCheckError as caught:
                rejected[case[0]] = sorted(f.reason for f in caught.failures)
                continue
            fined[case[0]] = [f.amount_yuan for f in decision.findings]
    return fined, rejected


@pytest.mark.parametrize("backend", ["python", "durable"])
def test_the_library_judges_no_case_by_a_statute_without_a_version_at_its_act(policies, backend):
    fined, rejected = _library(policies, backend)
    assert rejected == {"L1": [LATE]}
    assert fined == {"N1": [], "N2": [], "F1": [7]}


def test_the_batch_run_agrees_with_the_library(policies, tmp_path):
    table = {name: pa.array([c[i] or None for c in CASES], pa.string()) for i, name in enumerate(COLUMNS)}
    pacsv.write_csv(pa.table({**table, "act_id": pa.nulls(len(CASES), pa.string())}), tmp_path / "cases.csv")
    pacsv.write_csv(pa.table({"uscc": [USCC], "district": ["金水区"]}), tmp_path / "enterprises.csv")
    summary = run_nightly(tmp_path / "enterprises.csv", tmp_path / "results.sqlite", policies=policies, as_of=AS_OF,
                          cases=tmp_path / "cases.csv")
    db = sqlite3.connect(tmp_path / "results.sqlite")
    rejects = sorted(db.execute("SELECT row, reason FROM rejects WHERE source LIKE '%cases.csv'"))
    # CSV lines: the header is line 1; L1 is the third case
    assert rejects == [(4, LATE)]
    assert summary.tables["cases"] == {"rows_in": 4, "rows_scored": 3, "rows_rejected": 1}
    assert sorted(db.execute("SELECT case_id, amount_yuan FROM findings WHERE case_id IS NOT NULL")) == [("F1", 7)]
    fined, rejected = _library(policies, "python")
    assert {case for case, _reasons in rejected.items()} == {"L1"}
    assert sorted((case, amount) for case, amounts in fined.items() for amount in amounts) == [("F1", 7)]
