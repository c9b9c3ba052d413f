"""The case table's contract (issue 9): "dates are ISO or 2016年3月1日". A case table writing
its dates the Chinese way is scored exactly as the same table in ISO dates: the windowed
roll-up (offences in the two years before the act), the limitation in the rules' conditions
(discovered within two years of the act's end) and the date order the kind checks."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from ecorules.engine import load_policies
from ecorules.engine._nightly import run_nightly

DATA = Path(__file__).parent.parent / "data" / "cases"
A = "91410100123456788Y"
# case, clause, act_date, act_end, discovered: c2 counts c1 in its two years; c3 is
# time-barred (discovered two years and a day after its end); c4 is discovered before its act
CASES = [("c1", "a83_2", "2023-03-01", "", "2023-04-01"), ("c2", "a83_2", "2024-02-29", "", "2024-03-05"),
         ("c3", "a84_2", "2021-01-05", "2022-01-31", "2024-02-01"), ("c4", "a83_2", "2024-06-01", "", "2024-05-31")]


def _chinese(day: str) -> str:
    if not day:
        return ""
    parsed = dt.date.fromisoformat(day)
    return f"{parsed.year}年{parsed.month}月{parsed.day}日"


def _run(tmp_path: Path, name: str, write_day) -> tuple[list, list]:
    (tmp_path / "enterprises.csv").write_text(f"uscc,district,industrial\n{A},金水区,true\n", encoding="utf-8")
    cases = tmp_path / f"{name}.csv"
    cases.write_text("case_id,act_id,uscc,clause,act_date,act_end,discovered,fine_yuan,into_eco_water\n" + "".join(
        f"{c},,{A},{clause},{write_day(act)},{write_day(end)},{write_day(found)},,\n"
        for c, clause, act, end, found in CASES), encoding="utf-8")
    out = tmp_path / f"{name}.sqlite"
    run_nightly(tmp_path / "enterprises.csv", out, policies=load_policies(DATA), as_of=dt.date(2025, 1, 1), cases=cases)
    db = sqlite3.connect(out)
    findings = sorted(db.execute("SELECT case_id, rule, amount_yuan, status FROM findings WHERE case_id IS NOT NULL"))
    rejects = sorted(db.execute('SELECT row, "column", reason FROM rejects'))
    return findings, rejects


def test_a_case_table_in_chinese_dates_is_scored_as_in_iso_dates(tmp_path):
    iso = _run(tmp_path, "iso", lambda day: day)
    chinese = _run(tmp_path, "chinese", _chinese)
    assert _chinese("2024-02-29") == "2024年2月29日"
    assert chinese == iso
    findings, rejects = iso
    # c2: 100,000 + 50,000 for c1 in the two years before it; c3 time-barred; c4 rejected
    assert findings == [("c1", "art83", 100000, "imposed"), ("c2", "art83", 150000, "imposed")]
    assert [(row, column) for row, column, _ in rejects] == [(5, "discovered")]
