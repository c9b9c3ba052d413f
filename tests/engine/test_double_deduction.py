"""One case, one deduction, when both sources speak of it (一例一次).

The registry counts an enterprise's direct discharges into the ecological water system
(direct_discharge_cases); the case table lists such cases one by one (into_eco_water), and
each is deducted once (eco_water_case_deduction.yaml). A case in both used to be deducted
twice. The count-based rule now deducts only the cases the table does not list: the roll-up
direct_discharge_cases_in_table, unset (not 0) where no case table is given.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from ecorules.engine import Evaluator, load_policies
from ecorules.engine._nightly import run_nightly

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
AS_OF = dt.date(2025, 6, 30)
USCC = "91410100MA5AH1DH20"  # 管城回族区; the examples' case ZZ-2024-001 discharged into the eco water


def registry_counting(tmp_path: Path, direct_discharges: int) -> Path:
    lines = (EXAMPLES / "registry.csv").read_text(encoding="utf-8").splitlines()
    changed = [line.replace(f'"{USCC}","河南康力汽车零部件有限公司","管城回族区",true,0,0,',
                            f'"{USCC}","河南康力汽车零部件有限公司","管城回族区",true,0,{direct_discharges},')
               for line in lines]
    assert changed != lines
    path = tmp_path / f"registry-{direct_discharges}.csv"
    path.write_text("\n".join(changed) + "\n", encoding="utf-8")
    return path


def district_yuan(db: Path, run_id: int, district: str) -> int:
    row = sqlite3.connect(db).execute(
        "SELECT deduction_yuan FROM district_totals WHERE run_id = ? AND district = ?", (run_id, district)).fetchone()
    return row[0] if row else 0


def direct_discharge_findings(db: Path, run_id: int) -> list[tuple]:
    return sqlite3.connect(db).execute(
        "SELECT rule, amount_yuan, case_id FROM findings WHERE run_id = ? AND uscc = ? AND rule LIKE 'direct_discharge%' "
        "AND status = 'imposed' ORDER BY rule", (run_id, USCC)).fetchall()


@pytest.mark.parametrize(("counted", "expected"), [
    (1, [("direct_discharge_case_deduction", 10_000_000, "ZZ-2024-001")]),  # the counted one is the listed one
    (2, [("direct_discharge_case_deduction", 10_000_000, "ZZ-2024-001"),
         ("direct_discharge_deduction", 10_000_000, None)]),               # one more that the table does not list
])
def test_a_case_counted_and_listed_is_deducted_once(tmp_path, counted, expected):
    registry = registry_counting(tmp_path, counted)
    alone = run_nightly(registry, tmp_path / "alone.sqlite", as_of=AS_OF, progress=False)
    assert direct_discharge_findings(tmp_path / "alone.sqlite", alone.run_id) == [
        ("direct_discharge_deduction", 10_000_000 * counted, None)]  # without the table: the count
    both = run_nightly(registry, tmp_path / "both.sqlite", cases=EXAMPLES / "cases.csv", as_of=AS_OF, progress=False)
    assert direct_discharge_findings(tmp_path / "both.sqlite", both.run_id) == expected
    assert district_yuan(tmp_path / "both.sqlite", both.run_id, "管城回族区") == 10_000_000 * counted


def test_the_library_agrees(tmp_path):
    enterprise = {"uscc": USCC, "name": "河南康力汽车零部件有限公司", "district": "管城回族区", "industrial": True,
                  "untreated_outfalls": 0, "direct_discharge_cases": 1, "illegal_discharge_cases": 0,
                  "high_pollution": False, "high_energy": False}
    case = {"case_id": "ZZ-2024-001", "uscc": USCC, "clause": "水污染防治法第八十三条第（二）项", "act_date": "2024-03-01",
            "discovered": "2024-03-05", "into_eco_water": "是", "exceedance_level": 3, "receiving_water_level": 2,
            "daily_volume_level": 2}
    with Evaluator(load_policies(), backend="python") as evaluator:
        alone = evaluator.evaluate(enterprise, as_of=AS_OF)
        assert [(f.rule, f.amount_yuan) for f in alone.findings] == [("direct_discharge_deduction", 10_000_000)]
        group = evaluator.evaluate_group(enterprise, [case], as_of=AS_OF)
    assert [(f.rule, f.amount_yuan) for f in group.parent.findings] == []
    deductions = [(f.rule, f.amount_yuan) for d in group.children for f in d.findings if f.kind.value == "fiscal_deduction"]
    assert deductions == [("direct_discharge_case_deduction", 10_000_000)]


def test_a_roll_up_that_may_not_be_unset_needs_its_records(tmp_path):
    """tests/data/cases: an enterprise rule reads counts over its cases, declared without
    'optional': a run without the case table is refused before it reads a row."""
    from ecorules.engine._unset_rollups import RollupWithoutRecordsError

    registry = tmp_path / "enterprises.csv"
    registry.write_text("uscc,district,industrial\n91410100123456788Y,金水区,true\n", encoding="utf-8")
    policies = Path(__file__).resolve().parents[1] / "data" / "cases"
    with pytest.raises(RollupWithoutRecordsError, match="is counted over the case records, needed by .*--cases"):
        run_nightly(registry, tmp_path / "r.sqlite", policies=policies, as_of=AS_OF, progress=False)
