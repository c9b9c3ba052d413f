"""An enterprise failing its kind's catalogue check is a reject of the registry, and its cases
are rejects saying so (the library refuses the whole group), never scored: the case stage used
to fine them while the registry rejected their enterprise."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

from ecorules.engine._nightly import run_nightly

CASES = Path(__file__).resolve().parents[1] / "data" / "cases"


def test_the_cases_of_an_enterprise_failing_its_check_are_rejected(tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(CASES, policies)
    with (policies / "enterprises.yaml").open("a", encoding="utf-8") as handle:
        handle.write("checks:\n  - id: no_jinshui\n    require: district != '金水区'\n    column: district\n"
                     "    message: 金水区 refused\n")
    registry, cases = tmp_path / "e.csv", tmp_path / "c.csv"
    registry.write_text("uscc,district,industrial\n91410100123456788Y,金水区,true\n91350200MA31E12PXF,二七区,true\n",
                        encoding="utf-8")
    cases.write_text("case_id,act_id,uscc,clause,act_date,act_end,discovered,fine_yuan,into_eco_water\n"
                     "K1,,91410100123456788Y,a84_2,2025-03-01,,2025-04-01,30000,\n"
                     "K2,,91350200MA31E12PXF,a84_2,2025-03-01,,2025-04-01,20000,\n", encoding="utf-8")
    summary = run_nightly(registry, tmp_path / "r.sqlite", policies=policies, as_of=dt.date(2026, 1, 1), cases=cases,
                          threads=1)
    assert summary.rows_in == summary.rows_scored + summary.rows_rejected
    connection = sqlite3.connect(tmp_path / "r.sqlite")
    rejects = connection.execute('SELECT source, row, "column", reason FROM rejects ORDER BY source').fetchall()
    found = connection.execute("SELECT case_id, status, amount_yuan FROM findings WHERE case_id IS NOT NULL").fetchall()
    connection.close()
    assert [(Path(s).name, r, c) for s, r, c, _ in rejects] == [("c.csv", 2, "uscc"), ("e.csv", 2, "district")]
    assert rejects[0][3] == f"its registry row 2 of {registry} was rejected (district '金水区': 金水区 refused " \
                            "(enterprises.yaml check no_jinshui))"
    assert found == [("K2", "imposed", 20000)]
