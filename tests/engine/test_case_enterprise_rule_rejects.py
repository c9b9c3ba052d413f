"""An enterprise that an enterprise policy's rule rejects (a working day outside the holiday
table, 行政处罚法 art 85) is a reject of the registry in the batch run and in the library alike;
the library (``Evaluator.evaluate_group``) then refuses the whole group, so its cases are
rejects too, as for an enterprise failing its kind's check (test_case_enterprise_checks.py).
The batch run once scored and fined them (found by the case differential once it drew the
optional payer): the case stage decided which enterprises' cases to reject before the
registry is scored, from the kind's checks only. Now each partition's enterprises are judged
by their policies with their cases' roll-ups before their cases' findings are written
(engine/cases/_enterprises.judged_enterprises, CaseStage._judge_enterprises)."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import pytest
from ecorules.engine import Evaluator
from ecorules.engine._nightly import run_nightly
from ecorules.rules import CalendarError, RecordCheckError, load_policies

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "data" / "cases"
AS_OF = dt.date(2026, 1, 1)
JINSHUI, ERQI = "91410100123456788Y", "91350200MA31E12PXF"
# judged on every enterprise, fired on none: the working day of 1990 is outside the table
# (2024-2026) for the enterprises of 金水区, computed whether the rule fires or not
POLICY = """policy:
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
    when: "working_day_on_or_after(if(district == '金水区', date('1990-01-02'), as_of)) < date('1980-01-01')"
    sanctions: [{list: watch, reason: 测试}]
"""


def _folder(tmp_path: Path) -> Path:
    policies = tmp_path / "policies"
    shutil.copytree(CASES, policies)
    shutil.copy(ROOT / "policies" / "zhengzhou" / "holidays.yaml", policies / "holidays.yaml")
    (policies / "calendar.yaml").write_text(POLICY, encoding="utf-8")
    return policies


def _cases(tmp_path: Path) -> tuple[Path, Path, list[dict]]:
    registry, cases = tmp_path / "e.csv", tmp_path / "c.csv"
    registry.write_text(f"uscc,district,industrial\n{JINSHUI},金水区,true\n{ERQI},二七区,true\n", encoding="utf-8")
    rows = [{"case_id": "K1", "uscc": JINSHUI, "clause": "a84_2", "act_date": "2025-03-01", "discovered": "2025-04-01",
             "fine_yuan": "30000"},
            {"case_id": "K2", "uscc": ERQI, "clause": "a84_2", "act_date": "2025-03-01", "discovered": "2025-04-01",
             "fine_yuan": "20000"}]
    cases.write_text("case_id,act_id,uscc,clause,act_date,act_end,discovered,fine_yuan,into_eco_water\n"
                     + "".join(f"{r['case_id']},,{r['uscc']},{r['clause']},{r['act_date']},,{r['discovered']},"
                               f"{r['fine_yuan']},\n" for r in rows), encoding="utf-8")
    return registry, cases, rows


def test_the_library_rejects_the_group_of_an_enterprise_its_rule_cannot_judge(tmp_path):
    policies = load_policies(_folder(tmp_path))
    _, _, rows = _cases(tmp_path)
    with Evaluator(policies, backend="python") as evaluator:
        with pytest.raises(CalendarError) as refused:
            evaluator.evaluate_group({"uscc": JINSHUI, "district": "金水区", "industrial": True}, [rows[0]], as_of=AS_OF)
        assert refused.value.subject == JINSHUI
        group = evaluator.evaluate_group({"uscc": ERQI, "district": "二七区", "industrial": True}, [rows[1]], as_of=AS_OF)
    assert [(f.record, f.amount_yuan) for f in group.findings] == [("K2", 20000)]


def test_the_batch_rejects_the_cases_of_an_enterprise_its_rule_cannot_judge(tmp_path):
    policies = _folder(tmp_path)
    registry, cases, _ = _cases(tmp_path)
    summary = run_nightly(registry, tmp_path / "r.sqlite", policies=policies, as_of=AS_OF, cases=cases, threads=1)
    assert summary.rows_in == summary.rows_scored + summary.rows_rejected
    connection = sqlite3.connect(tmp_path / "r.sqlite")
    rejects = connection.execute('SELECT source, row, "column" FROM rejects ORDER BY source').fetchall()
    found = connection.execute("SELECT case_id, status, amount_yuan FROM findings WHERE case_id IS NOT NULL").fetchall()
    connection.close()
    # the registry rejects 金水区's enterprise in both; its case is a reject as the library's
    assert ("e.csv", 2) in [(Path(s).name, r) for s, r, _ in rejects]
    assert ("c.csv", 2, "uscc") in [(Path(s).name, r, c) for s, r, c in rejects]
    assert found == [("K2", "imposed", 20000)]


def test_the_batch_gives_each_case_of_the_group_the_librarys_reason(tmp_path):
    """The rule reads a roll-up of the cases (fined_cases): the registry's row is judged with
    the roll-up its cases give, though they are rejects by then; a case rejected for its own
    check (art83_fine_in_range, it counts in no roll-up) is the enterprise's reject as well,
    as in the case differential's model of the library (the group refused once the cases
    failing a check are left out); the reason is the library's first failure."""
    policies = _folder(tmp_path)
    text = POLICY.replace("if(district == '金水区', date('1990-01-02'), as_of)", "if(fined_cases >= 2, date('1990-01-02'), as_of)")
    (policies / "calendar.yaml").write_text(text, encoding="utf-8")
    registry, cases, rows = _cases(tmp_path)
    rows += [{"case_id": "K3", "uscc": JINSHUI, "clause": "a84_2", "act_date": "2025-05-01", "discovered": "2025-06-01",
              "fine_yuan": "40000"},
             {"case_id": "K4", "uscc": JINSHUI, "clause": "a83_2", "act_date": "2025-05-01", "discovered": "2025-06-01",
              "fine_yuan": "2000000"},  # over art 83's cap: fails its check
             {"case_id": "K5", "uscc": ERQI, "clause": "a83_2", "act_date": "2025-05-01", "discovered": "2025-06-01",
              "fine_yuan": "2000000"}]
    with cases.open("a", encoding="utf-8") as handle:
        handle.writelines(f"{r['case_id']},,{r['uscc']},{r['clause']},{r['act_date']},,{r['discovered']},{r['fine_yuan']},\n"
                          for r in rows[2:])
    with Evaluator(load_policies(policies), backend="python") as evaluator:
        with pytest.raises(CalendarError) as refused:
            evaluator.evaluate_group({"uscc": JINSHUI, "district": "金水区", "industrial": "true"},
                                     [rows[0], rows[2]], as_of=AS_OF)
    first = refused.value.failures[0]
    summary = run_nightly(registry, tmp_path / "r.sqlite", policies=policies, as_of=AS_OF, cases=cases, threads=1)
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (7, 2, 5)
    connection = sqlite3.connect(tmp_path / "r.sqlite")
    rejects = connection.execute('SELECT source, row, "column", value, reason FROM rejects').fetchall()
    found = connection.execute("SELECT case_id, amount_yuan FROM findings WHERE case_id IS NOT NULL").fetchall()
    connection.close()
    mine = {(Path(s).name, r): (c, v, why) for s, r, c, v, why in rejects}
    assert mine[("e.csv", 2)] == (first.column, first.value, first.reason)  # judged with fined_cases 2
    why = f"its registry row 2 of {registry} was rejected ({first.column} {first.value!r}: {first.reason})"
    assert {row: mine[("c.csv", row)] for row in (2, 4, 5)} == {row: ("uscc", JINSHUI, why) for row in (2, 4, 5)}
    assert mine[("c.csv", 6)][0] == "fine_yuan"  # 二七区's enterprise stands: its case keeps its own reject
    assert len(mine) == 5 and found == [("K2", 20000)]


def test_a_check_of_an_enterprise_policy_rejects_the_group(tmp_path):
    """A policy's own check (not its kind's, which CasePlan.parent_check_program judges before
    the cases are read) rejecting an enterprise: the library refuses the group, and so does
    the batch, judging the enterprises with the registry's program."""
    policies = _folder(tmp_path)
    head, rules = POLICY.split("rules:")
    rules = rules.replace(rules.split('when: "')[1].split('"')[0], "as_of < date('1980-01-01')")  # no working day
    (policies / "calendar.yaml").write_text(head + "checks:\n  - id: not_jinshui\n    column: district\n"
                                            "    message: 测试\n    require: district != '金水区'\nrules:" + rules,
                                            encoding="utf-8")
    registry, cases, rows = _cases(tmp_path)
    rows.append({**rows[0], "case_id": "K3"})
    with cases.open("a", encoding="utf-8") as handle:
        handle.write(f"K3,,{JINSHUI},a84_2,2025-03-01,,2025-04-01,30000,\n")
    with Evaluator(load_policies(policies), backend="python") as evaluator:
        with pytest.raises(RecordCheckError) as refused:
            evaluator.evaluate_group({"uscc": JINSHUI, "district": "金水区", "industrial": "true"}, [rows[0], rows[2]],
                                     as_of=AS_OF)
    first = refused.value.failures[0]
    run_nightly(registry, tmp_path / "r.sqlite", policies=policies, as_of=AS_OF, cases=cases, threads=1)
    connection = sqlite3.connect(tmp_path / "r.sqlite")
    rejects = connection.execute('SELECT source, row, "column", value, reason FROM rejects').fetchall()
    found = connection.execute("SELECT case_id FROM findings WHERE case_id IS NOT NULL").fetchall()
    connection.close()
    why = f"its registry row 2 of {registry} was rejected ({first.column} {first.value!r}: {first.reason})"
    assert sorted((Path(s).name, r, c, v, w) for s, r, c, v, w in rejects) == [
        ("c.csv", 2, "uscc", JINSHUI, why), ("c.csv", 4, "uscc", JINSHUI, why),
        ("e.csv", 2, first.column, first.value, first.reason)]
    assert found == [("K2",)]
