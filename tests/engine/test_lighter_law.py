"""行政处罚法 art 37 (从旧兼从轻) on tests/data/lighter_law: a clause in two versions, the
2008 one fining 2 x the pollutant fee, the 2017 one a minimum of 100,000 (150,000 from 2020,
a dated parameter). Each expectation is worked out from those two files by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from ecorules.engine import Evaluator, load_policies

DATA = Path(__file__).parent.parent / "data" / "lighter_law"
USCC = "91410100123456788Y"


@pytest.fixture(scope="module", params=["durable", "python"])
def evaluator(request):
    with Evaluator(load_policies(DATA), backend=request.param) as evaluator:
        yield evaluator


def judge(evaluator, as_of=dt.date(2019, 6, 1), **case):
    record = {"case_id": "c", "uscc": USCC, "act": "over_standard", "pollutant_fee_yuan": 50000, **case}
    (decision,) = evaluator.evaluate_group({"uscc": USCC}, [record], as_of=as_of).children
    return decision


def outcome(decision):
    return [(f.policy, f.amount_yuan) for f in decision.findings], decision.law_date, decision.law_note


def test_the_law_at_the_act_applies_when_the_later_is_not_lighter(evaluator):
    # 2 x 50,000 = 100,000 under 2008; 100,000 under 2017: not lighter
    findings, law_date, note = outcome(judge(evaluator, act_date="2017-06-01", decided="2018-03-01"))
    assert findings == [("test.water_law@2008", 100000)]
    assert law_date == dt.date(2017, 6, 1)
    assert note == "test.water_law: 从旧 (test.water_law@2008, 行为时 2017-06-01; 决定时的规定不轻于此)"


def test_the_lighter_law_at_the_decision_applies_instead(evaluator):
    findings, _, note = outcome(judge(evaluator, act_date="2017-06-01", decided="2018-03-01", pollutant_fee_yuan=200000))
    assert findings == [("test.water_law@2017", 100000)]
    assert note == "test.water_law: 从轻 (test.water_law@2017 决定时 2018-03-01 较轻: 100,000 < test.water_law@2008 400,000)"


def test_a_continuing_act_is_judged_by_the_law_at_its_end(evaluator):
    # begun under 2008, ended under 2017, decided under 2017: one version, 从旧
    findings, law_date, note = outcome(judge(evaluator, act_date="2017-06-01", act_end="2018-02-01", decided="2018-03-01", pollutant_fee_yuan=10))
    assert findings == [("test.water_law@2017", 100000)] and law_date == dt.date(2018, 2, 1)
    assert note.startswith("test.water_law: 从旧 (test.water_law@2017")


def test_parameters_take_the_value_of_the_day_whose_law_applies(evaluator):
    # act in 2019 (100,000), decided in 2021 (150,000): the later value is heavier, so 2019's
    findings, _, _ = outcome(judge(evaluator, as_of=dt.date(2021, 6, 1), act_date="2019-06-01", decided="2021-03-01"))
    assert findings == [("test.water_law@2017", 100000)]
    # the run's as_of does not choose the law: the same case judged in 2025 is the same
    findings, _, _ = outcome(judge(evaluator, as_of=dt.date(2025, 1, 1), act_date="2019-06-01", decided="2021-03-01"))
    assert findings == [("test.water_law@2017", 100000)]


def test_an_undecided_case_or_one_decided_after_as_of_is_decided_as_of_the_run(evaluator):
    # decided 2019-03-01 but the run is as of 2018-12-31: not decided yet, so as of 2018-12-31
    undecided = judge(evaluator, as_of=dt.date(2018, 12, 31), act_date="2017-06-01", decided="2019-03-01", pollutant_fee_yuan=200000)
    assert "决定时 2018-12-31" in undecided.law_note
    assert judge(evaluator, as_of=dt.date(2018, 12, 31), act_date="2017-06-01", pollutant_fee_yuan=200000) == undecided


def test_no_law_at_the_act_means_no_violation_then(evaluator):
    findings, _, note = outcome(judge(evaluator, act_date="2005-01-01", decided="2006-01-01"))
    assert findings == [] and note is None


def test_explain_names_the_law_applied(tmp_path):
    import json

    from click.testing import CliRunner
    from ecorules.engine._cli import main

    record = tmp_path / "group.json"
    case = {"case_id": "c", "uscc": USCC, "act": "over_standard", "pollutant_fee_yuan": 200000, "act_date": "2017-06-01", "decided": "2018-03-01"}
    record.write_text(json.dumps({"as_of": "2019-06-01", "enterprise": {"uscc": USCC}, "cases": [case]}), encoding="utf-8")
    shown = CliRunner().invoke(main, ["explain", "--policies", str(DATA), "--record", str(record)])
    assert "适用法律之日 Law as of: 2017-06-01" in shown.output
    assert "从旧兼从轻 Law applied (行政处罚法第三十七条): test.water_law: 从轻 (test.water_law@2017" in shown.output


def test_one_record_is_judged_by_its_own_law_date_too(evaluator):
    record = {"case_id": "c", "uscc": USCC, "act": "over_standard", "pollutant_fee_yuan": 200000,
              "act_date": "2017-06-01", "decided": "2018-03-01"}
    decision = evaluator.evaluate(record, as_of=dt.date(2019, 6, 1), domain="case")
    assert [(f.policy, f.amount_yuan) for f in decision.findings] == [("test.water_law@2017", 100000)]
    assert decision.law_note.startswith("test.water_law: 从轻")


def test_a_later_law_does_not_reach_back_to_an_act_no_version_covered(evaluator):
    # act in 2005 (before the 2008 version), decided in 2019 under the 2017 version
    decision = judge(evaluator, act_date="2005-01-01", decided="2019-01-01")
    assert decision.findings == ()
    assert decision.law_note == "test.water_law: 行为时无此规定 (no version in force on 2005-01-01), 不予适用"


def test_a_law_repealed_by_the_decision_makes_the_act_no_violation(tmp_path):
    for file in DATA.iterdir():
        text = file.read_text(encoding="utf-8")
        if file.name == "law_2017.yaml":
            text = text.replace("  effective: 2018-01-01\n", "  effective: 2018-01-01\n  expires: 2022-01-01\n")
        (tmp_path / file.name).write_text(text, encoding="utf-8")
    with Evaluator(load_policies(tmp_path)) as evaluator:
        decision = judge(evaluator, as_of=dt.date(2023, 6, 1), act_date="2019-06-01", decided="2023-01-01")
    assert decision.findings == ()
    assert decision.law_note == "test.water_law: 从轻 (已废止 repealed 决定时 2023-01-01 较轻: 0 < test.water_law@2017 100,000)"


def test_each_finding_names_the_version_applied_and_why(evaluator):
    kept = judge(evaluator, act_date="2017-06-01", decided="2018-03-01")
    assert [f.law_note for f in kept.findings] == ["从旧: 行为时的规定 test.water_law@2008,决定时的规定不轻于此"]
    lighter = judge(evaluator, act_date="2017-06-01", decided="2018-03-01", pollutant_fee_yuan=200000)
    assert [f.law_note for f in lighter.findings] == [
        "从轻: 决定时的规定 test.water_law@2017 较轻,罚款 100,000 元 < test.water_law@2008 400,000 元"]
    same = judge(evaluator, act_date="2018-06-01", decided="2018-09-01")
    assert [f.law_note for f in same.findings] == ["从旧: 行为时的规定 test.water_law@2017,决定时未修改"]
    # in the JSON of explain and the library, beside the finding
    assert lighter.to_dict()["findings"][0]["law_note"] == lighter.findings[0].law_note


def test_explain_prints_the_law_applied_beside_each_finding(evaluator):
    from ecorules.engine._explain import render_text

    decision = judge(evaluator, act_date="2017-06-01", decided="2018-03-01", pollutant_fee_yuan=200000)
    text = render_text(decision, evaluator.policies)
    assert ("适用法律 Law applied (行政处罚法第三十七条): 从轻: 决定时的规定 test.water_law@2017 较轻,"
            "罚款 100,000 元 < test.water_law@2008 400,000 元") in text
