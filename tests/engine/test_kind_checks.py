"""Checks in a kind's catalogue (cases.yaml ``checks:``), and the working-day functions in a
catalogue's expressions (a check, a roll-up's where, the law date) and in a policy's checks:
the same rejects, with the record's values in the reason, from the Python reference,
durable-rules, the kernel and the batch run (tests/data/kind_checks)."""

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
from ecorules.fastcalc import compile_program
from ecorules.rules import PolicyError, RecordCheckError

DATA = Path(__file__).parent.parent / "data" / "kind_checks"
AS_OF = dt.date(2025, 6, 30)
USCC = "91410100123456788Y"
OTHER = "9144030071526726XG"

ORDER = ("发现日早于违法行为发生日 (discovered before act_date): 2024-03-01 < 2024-03-04 "
         "(cases.yaml check discovered_not_before_act)")
SATURDAY = "处罚决定日不是工作日: 2024-03-09 (cases.yaml check decided_on_a_working_day)"
LATE = "处罚决定日晚于发现后二十个工作日 (test.fines@1 check decided_within_twenty_working_days)"

# case_id, uscc, act_date, discovered, decided, fine_yuan -> the failed checks (column, value, reason)
CASES = [
    ("C1", USCC, "2024-03-04", "2024-03-01", "2024-03-09", "5",
     [("discovered", "2024-03-01", ORDER), ("decided", "2024-03-09", SATURDAY)]),
    ("C2", USCC, "2024-03-02", "2024-03-05", "2024-03-11", "7", []),
    # 2024-02-10 to 17 are the Spring Festival days off and Sunday 02-18 a working day: 03-12
    # is the 20th working day after 02-07, 03-13 the 21st
    ("C3", USCC, "2024-02-01", "2024-02-07", "2024-03-13", "9", [("decided", "2024-03-13", LATE)]),
    ("C4", USCC, "2024-02-01", "2024-02-07", "2024-03-12", "11", []),
    # discovered 6 working days after the act (a slow case for the roll-up), or 5 (not slow)
    ("C5", OTHER, "2024-04-01", "2024-04-10", "", "", []),
    ("C6", USCC, "2024-04-01", "2024-04-09", "", "", []),
]


def _record(case) -> dict:
    keys = ("case_id", "uscc", "act_date", "discovered", "decided", "fine_yuan")
    return {k: v for k, v in zip(keys, case[:6], strict=True) if v != ""}


@pytest.mark.parametrize("backend", ["python", "durable"])
def test_the_evaluator_rejects_by_the_kinds_checks_and_working_days_in_checks(backend):
    with Evaluator(load_policies(DATA), backend=backend) as evaluator:
        for case in CASES:
            expected = case[6]
            if not expected:
                decision = evaluator.evaluate(_record(case), as_of=AS_OF, domain="case")
                assert [f.amount_yuan for f in decision.findings] == ([int(case[5])] if case[5] else [])
                continue
            with pytest.raises(RecordCheckError) as caught:
                evaluator.evaluate(_record(case), as_of=AS_OF, domain="case")
            assert [(f.column, f.value, f.reason) for f in caught.value.failures] == expected, case[0]


def test_the_law_date_counts_working_days():
    with Evaluator(load_policies(DATA), backend="python") as evaluator:
        # 2024-03-02 is a Saturday: the law date is the Monday after
        assert evaluator.evaluate(_record(CASES[1]), as_of=AS_OF, domain="case").law_date == dt.date(2024, 3, 4)


def _table(cases) -> pa.Table:
    columns = ("case_id", "uscc", "act_date", "discovered", "decided", "fine_yuan")
    table = {name: pa.array([c[i] or None for c in cases], pa.string()) for i, name in enumerate(columns)}
    return pa.table({**table, "act_id": pa.nulls(len(cases), pa.string())})


def test_the_kernel_rejects_the_same_rows_with_the_same_reasons():
    program = compile_program(load_policies(DATA), domain="case")
    table = _table(CASES)
    result = program.score({name: table[name] for name in program.columns}, as_of=AS_OF, law_date=dt.date(2024, 3, 4))
    got = sorted(zip(result.reject_rows.tolist(), result.reject_columns.tolist(), result.reject_values.tolist(),
                     result.reject_reasons.tolist(), strict=True))
    assert got == sorted((row, *entry) for row, case in enumerate(CASES) for entry in case[6])
    assert result.valid.tolist() == [not case[6] for case in CASES]


def test_the_batch_run_rejects_them_and_rolls_up_with_working_days(tmp_path):
    pacsv.write_csv(pa.table({"uscc": [USCC, OTHER], "district": ["金水区", "二七区"]}), tmp_path / "enterprises.csv")
    pacsv.write_csv(_table(CASES), tmp_path / "cases.csv")
    summary = run_nightly(tmp_path / "enterprises.csv", tmp_path / "results.sqlite", policies=DATA, as_of=AS_OF,
                          cases=tmp_path / "cases.csv")
    db = sqlite3.connect(tmp_path / "results.sqlite")
    rejects = sorted(db.execute("SELECT row, column, value, reason FROM rejects WHERE source LIKE '%cases.csv'"))
    # CSV lines: the header is line 1
    assert rejects == sorted((row + 2, *entry) for row, case in enumerate(CASES) for entry in case[6])
    assert summary.tables["cases"] == {"rows_in": 6, "rows_scored": 4, "rows_rejected": 2}
    fines = sorted(db.execute("SELECT case_id, amount_yuan FROM findings WHERE case_id IS NOT NULL"))
    assert fines == [("C2", 7), ("C4", 11)]
    # only C5 was discovered more than 5 working days after its act (the Qingming days off
    # 04-04 to 04-06 are not counted, Sunday 04-07 is; C4's 5 include Sunday 02-04): its
    # enterprise alone is listed, as evaluate_group says
    listed = sorted(db.execute("SELECT uscc, list FROM sanctions"))
    assert listed == [(OTHER, "watch")]
    with Evaluator(load_policies(DATA), backend="python") as evaluator:
        for uscc, district in ((USCC, "金水区"), (OTHER, "二七区")):
            children = [_record(c) for c in CASES if c[1] == uscc and not c[6]]
            group = evaluator.evaluate_group({"uscc": uscc, "district": district}, children, as_of=AS_OF)
            assert [(s.uscc, s.list) for s in group.parent.sanctions] == [e for e in listed if e[0] == uscc]


def test_the_kind_checks_alone_run_in_the_batch_without_a_case_policy(tmp_path):
    folder = tmp_path / "policies"
    shutil.copytree(DATA, folder)
    (folder / "fines.yaml").unlink()
    pacsv.write_csv(pa.table({"uscc": [USCC, OTHER], "district": ["金水区", "二七区"]}), tmp_path / "enterprises.csv")
    pacsv.write_csv(_table(CASES), tmp_path / "cases.csv")
    run_nightly(tmp_path / "enterprises.csv", tmp_path / "results.sqlite", policies=folder, as_of=AS_OF,
                cases=tmp_path / "cases.csv")
    db = sqlite3.connect(tmp_path / "results.sqlite")
    rejects = sorted(db.execute("SELECT row, column, reason FROM rejects WHERE source LIKE '%cases.csv'"))
    # C1 (CSV line 2) fails the kind's checks; C3 the fines policy's, which is not loaded
    assert rejects == sorted([(2, "discovered", ORDER), (2, "decided", SATURDAY)])


def test_checks_in_a_catalogue_of_no_kind_are_refused(tmp_path):
    folder = tmp_path / "policies"
    shutil.copytree(DATA, folder)
    (folder / "extra.yaml").write_text(
        "facts:\n  x: {type: integer}\nchecks:\n  - {id: positive, require: x > 0, column: x, message: 负数}\n",
        encoding="utf-8")
    with pytest.raises(PolicyError, match="checks judge the records of a kind: declare 'kind:' in this file") as caught:
        load_policies(folder)
    assert caught.value.span.file.endswith("extra.yaml") and caught.value.span.line == 4


@pytest.mark.parametrize(("old", "new", "message", "suggestion"), [
    ("{discovered} < {act_date}", "{discovered} < {decided}",
     "the message shows {decided}, which must be a fact the check reads", None),
    ("{discovered} < {act_date}", "{discovered} < {act_dat}",
     "the message shows {act_dat}, which must be a fact the check reads", "act_date"),
    ("require: discovered >= act_date", "require: discovered >= slow_cases",
     "unknown name", None),
])
def test_a_wrong_check_in_a_catalogue_is_reported_where_it_is(tmp_path, old, new, message, suggestion):
    folder = tmp_path / "policies"
    shutil.copytree(DATA, folder)
    text = (folder / "cases.yaml").read_text(encoding="utf-8")
    assert text.count(old) == 1
    (folder / "cases.yaml").write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policies(folder)
    assert message in str(caught.value) and caught.value.span.file.endswith("cases.yaml")
    assert caught.value.suggestion == suggestion


def test_a_case_table_may_leave_out_an_optional_column_only_the_kinds_checks_read(tmp_path):
    """decided is read by the kind's checks and the fines policy's check; without that check,
    a table without the column is read (its cells empty: the checks guarded by is_set hold)."""
    folder = tmp_path / "policies"
    shutil.copytree(DATA, folder)
    fines = (folder / "fines.yaml").read_text(encoding="utf-8")
    (folder / "fines.yaml").write_text(fines[:fines.index("checks:")] + fines[fines.index("rules:"):], encoding="utf-8")
    text = (folder / "cases.yaml").read_text(encoding="utf-8").replace("  decision: decided\n", "")
    (folder / "cases.yaml").write_text(text, encoding="utf-8")
    pacsv.write_csv(pa.table({"uscc": [USCC, OTHER], "district": ["金水区", "二七区"]}), tmp_path / "enterprises.csv")
    pacsv.write_csv(_table(CASES).drop_columns(["decided"]), tmp_path / "cases.csv")
    summary = run_nightly(tmp_path / "enterprises.csv", tmp_path / "results.sqlite", policies=folder, as_of=AS_OF,
                          cases=tmp_path / "cases.csv")
    db = sqlite3.connect(tmp_path / "results.sqlite")
    assert sorted(db.execute("SELECT row, column, reason FROM rejects WHERE source LIKE '%cases.csv'")) == [
        (2, "discovered", ORDER)]
    assert summary.tables["cases"] == {"rows_in": 6, "rows_scored": 5, "rows_rejected": 1}
    assert sorted(db.execute("SELECT case_id, amount_yuan FROM findings WHERE case_id IS NOT NULL")) == [
        ("C2", 7), ("C3", 9), ("C4", 11)]
