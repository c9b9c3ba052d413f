"""The library refuses a run whose rules in force read a parameter without a value, as
``ecorules run`` does, unless told ``allow_unset_parameters=True``: the registry's tables of
other kinds (the shipped requests' time limit) and a case table's policies alike."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import pytest
from ecorules.engine._kind_tables import UnsetParametersError
from ecorules.engine._nightly import run_nightly

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CASES = ROOT / "tests" / "data" / "cases"


def _runs(db: Path) -> int:
    if not db.exists():
        return 0
    connection = sqlite3.connect(db)
    try:
        return connection.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        connection.close()


def test_run_nightly_refuses_the_unset_time_limit_of_other_requests_unless_allowed(tmp_path):
    db = tmp_path / "results.sqlite"
    options = {"as_of": dt.date(2019, 1, 31), "tables": {"approval": EXAMPLES / "requests.csv"}, "threads": 1}
    with pytest.raises(UnsetParametersError) as refused:
        run_nightly(EXAMPLES / "registry.csv", db, **options)
    error = refused.value
    assert len(error.problems) == 1 and error.as_of == dt.date(2019, 1, 31)
    assert "approval_time_limits.yaml:" in error.problems[0] and "other_request_time_limit_days" in error.problems[0]
    assert "allow_unset_parameters=True" in str(error)
    assert _runs(db) == 0  # refused before anything is written
    summary = run_nightly(EXAMPLES / "registry.csv", db, allow_unset_parameters=True, **options)
    assert summary.status == "done" and summary.tables["approval"]["rows_in"] == 6
    assert any("other_request_time_limit_days" in w for w in summary.warnings)
    # the registry alone reads no unset parameter: no refusal
    assert run_nightly(EXAMPLES / "registry.csv", tmp_path / "alone.sqlite", as_of=dt.date(2019, 1, 31),
                       threads=1).status == "done"


def test_a_case_run_refuses_a_case_policy_reading_an_unset_parameter(tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(CASES, policies)
    path = policies / "fines.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("\nchecks:", "\nparameters:\n  local_fine_yuan:\n    type: integer\n    values: []\nchecks:", 1)
    assert '{kind: fine, amount: "50000", payer: enterprise}' in text
    path.write_text(text.replace('{kind: fine, amount: "50000", payer: enterprise}',
                                 '{kind: fine, amount: "local_fine_yuan", payer: enterprise}').split("\ntests:")[0] + "\n",
                    encoding="utf-8")
    registry, cases = tmp_path / "enterprises.csv", tmp_path / "cases.csv"
    registry.write_text("uscc,district,industrial\n91410100123456788Y,金水区,true\n", encoding="utf-8")
    cases.write_text("case_id,act_id,uscc,clause,act_date,act_end,discovered,fine_yuan,into_eco_water\n"
                     "K1,,91410100123456788Y,local_x,2025-03-01,,2025-04-01,,\n", encoding="utf-8")
    options = {"policies": policies, "as_of": dt.date(2026, 1, 1), "threads": 1}
    with pytest.raises(UnsetParametersError, match=r"fines\.yaml:\d+:\d+: test\.fines@1: parameter 'local_fine_yuan'"):
        run_nightly(registry, tmp_path / "refused.sqlite", cases=cases, **options)
    summary = run_nightly(registry, tmp_path / "allowed.sqlite", cases=cases, allow_unset_parameters=True, **options)
    assert summary.status == "done"
    assert any("local_fine_yuan" in w for w in summary.warnings)
