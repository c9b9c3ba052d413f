"""A case scored under two laws (行政处罚法 art 37: the law of its act and, when lighter, of its
decision) may reach a working day outside the holiday table under one of them and fail a
check under the other. A working day outside the table rejects a record before any check
judges it: the library (engine/_group.judge_by_law_in_force) gives that reason alone, and so
must the batch run, which gave the check's reject beside it (found by the case differential,
tests/fastcalc/test_case_differential.py; fixed in engine/cases/_checks.py)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from ecorules.engine import Evaluator
from ecorules.engine._nightly import run_nightly
from ecorules.rules import CalendarError, load_policies

AS_OF = dt.date(2018, 1, 1)
USCC = "91410100123456788Y"
CATALOGUE = """description: cases
kind: case
key: case_id
parent: enterprise
dates:
  law: act_date
  decision: decided
facts:
  case_id: {type: string}
  act_date: {type: date, min: 2000-01-01, max: 2030-12-31}
  decided: {type: date, optional: true, min: 2000-01-01, max: 2030-12-31}
  level: {type: integer, min: 1, max: 5}
checks:
  - id: low_level
    require: level < 4
    column: level
    message: level too high
"""
ENTERPRISES = "description: enterprises\nkind: enterprise\nkey: uscc\nfacts:\n  uscc: {type: string, format: uscc}\n"
ENTERPRISE_POLICY = """policy: {id: t.e, title: t, authority: t, document: t, version: "1", effective: 2000-01-01}
lists:
  watch: {title: t}
rules:
  - id: never
    title: t
    citation: {document: t, text: t}
    when: "uscc == 'x'"
    sanctions: [{list: watch, reason: t}]
"""
# the version at the act counts working days from the act (outside the table from 2012
# for an act of 2011); the later one does not
VERSION = """policy:
  id: t.fine
  title: t
  authority: t
  document: t
  version: "{version}"
  effective: {effective}
{expires}  domain: case
rules:
  - id: fine
    title: t
    citation: {{document: t, text: t}}
    when: "{when}"
    findings:
      - {{kind: fine, amount: "100", payer: enterprise}}
"""


def _calendar(first: int, last: int) -> str:
    lines = ["calendar:", "  title: t", "  law: t", "  source: t", "years:"]
    for year in range(first, last + 1):
        lines += [f"  {year}:", "    notice: t", "    source: t", "    days_off: []", "    working_weekends: []"]
    return "\n".join(lines) + "\n"


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "cases.yaml").write_text(CATALOGUE, encoding="utf-8")
    (folder / "enterprises.yaml").write_text(ENTERPRISES, encoding="utf-8")
    (folder / "enterprise.yaml").write_text(ENTERPRISE_POLICY, encoding="utf-8")
    (folder / "holidays.yaml").write_text(_calendar(2012, 2030), encoding="utf-8")
    (folder / "v1.yaml").write_text(VERSION.format(version=1, effective="2000-01-01", expires="  expires: 2015-01-01\n",
                                                   when="add_working_days(act_date, 1) > act_date"), encoding="utf-8")
    (folder / "v2.yaml").write_text(VERSION.format(version=2, effective="2015-01-01", expires="", when="level > 0"),
                                    encoding="utf-8")
    return folder


# K1: acted in 2011 (outside the table under the law of its act), decided in 2016 under the
# later law, whose scoring judges its check (level 4 fails it); K2 fails the check alone
CASES = [{"case_id": "K1", "uscc": USCC, "act_date": "2011-06-01", "decided": "2016-03-01", "level": "4"},
         {"case_id": "K2", "uscc": USCC, "act_date": "2016-06-01", "decided": "2016-08-01", "level": "5"},
         {"case_id": "K3", "uscc": USCC, "act_date": "2016-06-01", "decided": "2016-08-01", "level": "1"}]


def test_the_library_gives_the_working_day_alone(tmp_path):
    with Evaluator(load_policies(_folder(tmp_path)), backend="python") as evaluator:
        with pytest.raises(CalendarError) as refused:
            evaluator.evaluate_group({"uscc": USCC}, [CASES[0]], as_of=AS_OF)
    assert [f.column for f in refused.value.failures] == ["act_date"]


def test_the_batch_rejects_a_case_for_its_working_day_alone(tmp_path):
    folder = _folder(tmp_path)
    (tmp_path / "e.csv").write_text(f"uscc\n{USCC}\n", encoding="utf-8")
    (tmp_path / "c.csv").write_text("case_id,uscc,act_date,decided,level\n"
                                    + "".join(",".join(c.values()) + "\n" for c in CASES), encoding="utf-8")
    summary = run_nightly(tmp_path / "e.csv", tmp_path / "r.sqlite", policies=folder, as_of=AS_OF,
                          cases=tmp_path / "c.csv", threads=1)
    assert summary.rows_in == summary.rows_scored + summary.rows_rejected
    db = sqlite3.connect(tmp_path / "r.sqlite")
    rejects = db.execute('SELECT row, "column", reason FROM rejects ORDER BY row').fetchall()
    findings = db.execute("SELECT case_id, amount_yuan FROM findings").fetchall()
    db.close()
    assert [(row, column) for row, column, _ in rejects] == [(2, "act_date"), (3, "level")]
    assert "outside the holiday table" in rejects[0][2] and rejects[1][2].startswith("level too high")
    assert findings == [("K3", 100)]
