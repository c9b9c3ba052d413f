"""`ecorules explain` of a case states each period behind an amount (first and last day,
count, how counted) and each cap, beside the clause and in the trace, in text and JSON; the
library's TraceEntry carries the same steps, typed, whichever backend judged the rule."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from ecorules.engine import Cap, Evaluator, Period, load_policies
from ecorules.engine._cli import main

CASE = {
    "case_id": "ZZ-2024-059", "act_id": "ZZ-2024-059", "uscc": "91410100123456788Y", "district": "金水区",
    "industrial": True, "clause": "epl2014_art59", "fine_yuan": 100000, "act_date": "2024-04-01",
    "discovered": "2024-04-20", "decided": "2024-06-10", "order_served": "2024-05-01", "reinspected": "2024-05-31",
    "still_violating": True, "prior_offences_2y": 0,
}
LATE = {**CASE, "case_id": "ZZ-2024-072", "act_id": "ZZ-2024-072", "clause": "wppcl2017_art83_2", "fine_yuan": 200000,
        "due": "2024-06-25", "order_served": None, "reinspected": None, "still_violating": None}


@pytest.fixture(scope="module")
def policies():
    return load_policies()


def explain(tmp_path, facts, as_of, *options):
    path = tmp_path / "case.json"
    path.write_text(json.dumps({"as_of": as_of, "domain": "case", "facts": facts}, ensure_ascii=False), encoding="utf-8")
    result = CliRunner().invoke(main, ["explain", "--record", str(path), *options], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_daily_penalty_shows_its_thirty_days_beside_the_clause(tmp_path):
    text = explain(tmp_path, CASE, "2024-07-01")
    clause = text.index("环境保护法第五十九条第一款")
    beside = text[clause:text.index("名单 Sanctions")]
    assert "days_between(order_served, if(…), 'exclusive'): 2024-05-02 至 2024-05-31, 共 30 日" in beside
    assert "开始的当日不计入" in beside
    # the limitation window of 行政处罚法 art 36 the discovery fell in
    assert "自 2024-04-01 的次日 2024-04-02 起算 2 年, 至 2026-04-01 届满" in beside
    assert "3,000,000 元" in text


def test_the_late_fee_shows_its_late_days_and_its_cap_in_json(tmp_path):
    document = json.loads(explain(tmp_path, {**LATE, "paid": "2024-07-10"}, "2024-08-01", "--format", "json"))
    (entry,) = [e for e in document["trace"] if e["rule"] == "late_payment_surcharge"]
    period, floor, cap = entry["steps"]
    assert (period["first"], period["last"], period["count"], period["counting"]) == ("2024-06-26", "2024-07-10", 15, "exclusive")
    assert (cap["function"], cap["result"], cap["chosen"]) == ("min", 90000, 1)
    (fee,) = [f for f in document["findings"] if f["rule"] == "late_payment_surcharge"]
    assert fee["amount_yuan"] == 90000 == cap["result"]

    capped = json.loads(explain(tmp_path, {**LATE, "paid": "2024-08-30"}, "2024-09-01", "--format", "json"))
    (entry,) = [e for e in capped["trace"] if e["rule"] == "late_payment_surcharge"]
    cap = entry["steps"][-1]
    assert (cap["bound"], cap["result"], [o["value"] for o in cap["operands"]]) == ("fine_yuan", 200000, [200000, 396000])


def test_a_time_barred_case_shows_the_window_it_missed_with_the_month_end_rounding(tmp_path):
    facts = {**LATE, "act_date": "2024-02-29", "discovered": "2026-03-01", "due": None, "decided": None}
    text = explain(tmp_path, facts, "2026-03-10")
    assert "扣款/罚款 Findings: 无 none" in text
    assert "自 2024-02-29 的次日 2024-03-01 起算 2 年, 至 2026-02-28 届满" in text and "以该月末日为准" in text


@pytest.mark.parametrize("backend", ["durable", "python"])
def test_the_library_trace_carries_typed_steps_on_both_backends(policies, backend):
    with Evaluator(policies, backend=backend) as evaluator:
        decision = evaluator.evaluate(CASE, as_of=dt.date(2024, 7, 1), domain="case")
    (entry,) = [e for e in decision.trace if e.rule == "daily_continuous_penalty"]
    periods = [s for s in entry.steps if isinstance(s, Period)]
    assert [(p.function, p.first, p.last, p.count) for p in periods] == [
        ("add_years", dt.date(2024, 4, 2), dt.date(2026, 4, 1), 2),
        ("days_between", dt.date(2024, 5, 2), dt.date(2024, 5, 31), 30),
    ]
    assert [s.result for s in entry.steps if isinstance(s, Cap)] == [30]


DISCRETION = {**CASE, "case_id": "ZZ-2024-083", "act_id": "ZZ-2024-083", "clause": "wppcl2017_art83_2", "fine_yuan": None,
              "order_served": None, "reinspected": None, "still_violating": None, "prior_offences_2y": 2,
              "exceedance_multiple": "0.5", "water_level": 3, "daily_volume_tonnes": "99.9", "art32_mitigating": True}


def test_discretion_shows_levels_formula_mitigation_and_clamp_in_order(tmp_path):
    """Issue 9 point 7: the raw values graded into levels, the placement, art 32, the range."""
    document = json.loads(explain(tmp_path, DISCRETION, "2024-06-01", "--format", "json"))
    (entry,) = [e for e in document["trace"] if e["rule"] == "art83_2_over_standard"]
    named = [(s["name"], s["result"]) for s in entry["steps"] if s["step"] == "value"]
    # the wastewater type not given: level 1, not counted in factors_given (law.md gives no grading)
    assert named == [("art33_no_penalty", False), ("exceedance_graded", 3), ("water_graded", 3), ("volume_graded", 2),
                     ("wastewater_graded", 1), ("offences_graded", 2),
                     ("factors_given", 3), ("discretion_share", "0.375"), ("art83_placed", 437500),
                     ("mitigation", "0.8")]
    floor, cap = entry["steps"][-2:]
    assert (floor["function"], floor["bound"], cap["function"], cap["result"]) == ("max", "round((art83_placed * mitigation))", "min", 350000)
    (fine,) = [f for f in document["findings"] if f["rule"] == "art83_2_over_standard"]
    assert fine["amount_yuan"] == 350000

    text = explain(tmp_path, DISCRETION, "2024-06-01")
    assert "计算 Step: mitigation (行政处罚法第三十二条应当从轻时保留的比例,否则为1) = 0.8" in text
