"""An enterprise judged with its cases: roll-ups, windows counted as the Civil Code counts
years, the case's enterprise as payer, and one act, one fine (行政处罚法 art 29).

The policies are tests/data/cases: a case kind under an enterprise kind, fines per clause,
a fiscal deduction that does not compete with fines, and an enterprise policy that reads
roll-ups. Each expectation is worked out by hand from those files."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
from ecorules.engine import Evaluator, load_policies
from ecorules.rules import FindingKind, RecordError

DATA = Path(__file__).parent.parent / "data" / "cases"
USCC = "91410100123456788Y"
ENTERPRISE = {"uscc": USCC, "district": "金水区", "industrial": True}
AS_OF = dt.date(2026, 1, 1)


def case(case_id, clause="a83_2", act_date="2024-06-01", discovered="2024-07-01", **more):
    return {"case_id": case_id, "uscc": USCC, "clause": clause, "act_date": act_date, "discovered": discovered, **more}


@pytest.fixture(scope="module", params=["durable", "python"])
def evaluator(request):
    with Evaluator(load_policies(DATA), backend=request.param) as evaluator:
        yield evaluator


def fines(decision):
    return [(f.record, f.rule, f.amount_yuan, f.status) for f in decision.findings if f.kind is FindingKind.FINE]


def test_one_act_breaching_two_clauses_is_fined_once_at_the_higher_amount(evaluator):
    # the 150,000 of the issue: 100,000 under art 83 and 50,000 under the local rule, one act
    decision = evaluator.evaluate_group(ENTERPRISE, [case("c1", act_id="A1"), case("c2", clause="local_x", act_id="A1")], as_of=AS_OF)
    assert fines(decision) == [("c1", "art83", 100000, "imposed"), ("c2", "local", 50000, "superseded")]
    superseded = [f for f in decision.findings if not f.imposed]
    assert superseded[0].superseded_by == "test.fines@1 art83 (c1)"
    # the district's deduction for the same row is not a fine and stays
    deduction = [f for f in decision.findings if f.kind is FindingKind.FISCAL_DEDUCTION]
    assert [(f.payer, f.amount_yuan, f.imposed) for f in deduction] == [("金水区", 1000000, True)]
    assert decision.total_yuan == 100000 + 1000000


def test_two_acts_are_two_fines(evaluator):
    decision = evaluator.evaluate_group(ENTERPRISE, [case("c1", act_id="A1"), case("c2", clause="local_x", act_id="A2")], as_of=AS_OF)
    assert [status for *_, status in fines(decision)] == ["imposed", "imposed"]
    # an empty act_id: the case is its own act
    decision = evaluator.evaluate_group(ENTERPRISE, [case("c1"), case("c2", clause="local_x")], as_of=AS_OF)
    assert [status for *_, status in fines(decision)] == ["imposed", "imposed"]


def test_a_fine_decided_by_the_official_competes_by_its_amount(evaluator):
    decision = evaluator.evaluate_group(
        ENTERPRISE, [case("c1", act_id="A", fine_yuan=30000), case("c2", clause="a84_2", act_id="A", fine_yuan=80000)], as_of=AS_OF,
    )
    assert fines(decision) == [("c1", "art83", 30000, "superseded"), ("c2", "art84", 80000, "imposed")]


def test_equal_fines_go_to_the_first_policy_and_rule(evaluator):
    decision = evaluator.evaluate_group(
        ENTERPRISE, [case("c2", clause="a84_2", act_id="A", fine_yuan=70000), case("c1", act_id="A", fine_yuan=70000)], as_of=AS_OF,
    )
    assert fines(decision) == [("c2", "art84", 70000, "superseded"), ("c1", "art83", 70000, "imposed")]


def test_offences_in_the_two_years_before_the_act_count_by_calendar_years(evaluator):
    # prior_2y counts the enterprise's other cases on or after the day two years before this
    # act and before it; 2024-02-29 minus two years is 2022-02-28 (民法典 art 202)
    history = [
        case("old", act_date="2022-02-27", discovered="2022-03-01"),  # one day too early
        case("edge", act_date="2022-02-28", discovered="2022-03-01"),  # the first day counted
        case("same_day", act_date="2024-02-29", discovered="2024-03-01"),  # not before: not counted
        case("later", act_date="2024-05-01", discovered="2024-06-01"),  # after: not counted
    ]
    decision = evaluator.evaluate_group(ENTERPRISE, [case("c1", act_date="2024-02-29", discovered="2024-03-01"), *history], as_of=AS_OF)
    first = decision.children[0]
    assert [e.reads for e in first.trace if e.rule == "art83"][0]["prior_2y"] == 1
    assert fines(decision)[0] == ("c1", "art83", 150000, "imposed")


def test_roll_ups_onto_the_enterprise_feed_its_own_rules(evaluator):
    cases = [case("c1", fine_yuan=10000), case("c2", fine_yuan=0), case("c3", clause="a84_2", into_eco_water=True)]
    decision = evaluator.evaluate_group(ENTERPRISE, cases, as_of=AS_OF)
    parent = decision.parent
    reads = {e.rule: e.reads for e in parent.trace}
    assert reads["repeated"]["fined_cases"] == 1 and reads["repeated"]["largest_fine"] == 10000
    assert [s.list for s in parent.sanctions] == []
    assert [(f.rule, f.amount_yuan, f.payer) for f in parent.findings] == [("eco", 10000000, "金水区")]
    cases.append(case("c4", fine_yuan=600000))
    decision = evaluator.evaluate_group(ENTERPRISE, cases, as_of=AS_OF)
    assert [(s.list, s.uscc) for s in decision.parent.sanctions] == [("watch", USCC)]
    # no cases at all: the written empty values
    empty = evaluator.evaluate_group(ENTERPRISE, [], as_of=AS_OF)
    assert {e.rule: e.reads for e in empty.parent.trace}["repeated"] == {"fined_cases": 0, "largest_fine": 0}


def test_a_case_is_paid_by_its_enterprise(evaluator):
    decision = evaluator.evaluate_group(ENTERPRISE, [case("c1")], as_of=AS_OF)
    (finding,) = decision.children[0].findings
    assert (finding.payer, finding.record, decision.children[0].subject) == (USCC, "c1", "c1")


def test_a_case_of_another_enterprise_or_a_bad_value_is_refused_with_its_field(evaluator):
    with pytest.raises(RecordError) as caught:
        evaluator.evaluate_group(ENTERPRISE, [case("c1", uscc="91350200MA31E12PXF")], as_of=AS_OF)
    assert caught.value.field == "uscc" and "belongs to" in str(caught.value)
    with pytest.raises(RecordError) as caught:
        evaluator.evaluate_group(ENTERPRISE, [case("c1", act_date="2024-13-01")], as_of=AS_OF)
    assert caught.value.field == "act_date"


def test_durable_and_python_agree_on_random_groups():
    rng = random.Random(29)
    policies = load_policies(DATA)
    with Evaluator(policies, backend="durable") as durable, Evaluator(policies, backend="python") as python:
        for _ in range(150):
            cases = []
            for index in range(rng.randint(0, 6)):
                act = dt.date(2022, 1, 1) + dt.timedelta(days=rng.randint(0, 900))
                more = {}
                if rng.random() < 0.5:
                    more["act_id"] = rng.choice(["A", "B"])
                if rng.random() < 0.4:
                    more["fine_yuan"] = rng.choice([0, 20000, 100000, 600000])
                if rng.random() < 0.3:
                    more["into_eco_water"] = rng.random() < 0.5
                if rng.random() < 0.3:
                    more["act_end"] = (act + dt.timedelta(days=rng.randint(0, 400))).isoformat()
                discovered = act + dt.timedelta(days=rng.choice([1, 300, 730, 731, 1100]))
                cases.append(case(f"c{index}", rng.choice(["a83_2", "a84_2", "local_x"]), act.isoformat(), discovered.isoformat(), **more))
            enterprise = {**ENTERPRISE, "industrial": rng.random() < 0.7}
            a, b = durable.evaluate_group(enterprise, cases, as_of=AS_OF), python.evaluate_group(enterprise, cases, as_of=AS_OF)
            assert a == b


def test_explain_an_enterprise_with_its_cases(tmp_path):
    import json

    from click.testing import CliRunner
    from ecorules.engine._cli import main

    record = tmp_path / "group.json"
    record.write_text(json.dumps({
        "as_of": "2026-01-01", "enterprise": ENTERPRISE,
        "cases": [case("c1", act_id="A1"), case("c2", clause="local_x", act_id="A1")],
    }, ensure_ascii=False), encoding="utf-8")
    text = CliRunner().invoke(main, ["explain", "--policies", str(DATA), "--record", str(record)])
    assert text.exit_code == 0, text.output
    assert "不予处罚 Superseded: 同一违法行为按罚款数额高的规定处罚,已适用 test.fines@1 art83 (c1)" in text.output
    assert "第二十九条" in text.output and "总计 Total (imposed): 1,100,000 元" in text.output
    shown = CliRunner().invoke(main, ["explain", "--policies", str(DATA), "--record", str(record), "--format", "json"])
    document = json.loads(shown.output)
    statuses = [(f["record"], f["rule"], f["status"], f["superseded_by"]) for c in document["children"] for f in c["findings"] if f["kind"] == "fine"]
    assert statuses == [("c1", "art83", "imposed", None), ("c2", "local", "superseded", "test.fines@1 art83 (c1)")]
    assert document["total_yuan"] == 1_100_000


def test_a_yaml_case_of_several_records_checks_status_and_case(tmp_path):
    from ecorules.engine._testing import run_tests

    for name in ("enterprises.yaml", "cases.yaml", "fines.yaml"):
        text = (DATA / name).read_text(encoding="utf-8")
        if name == "fines.yaml":
            text = text.replace("case: c2, status: superseded, kind: fine", "case: c2, status: imposed, kind: fine")
        (tmp_path / name).write_text(text, encoding="utf-8")
    report = run_tests(load_policies(tmp_path))
    (failed,) = report.failed
    assert failed.problems == (
        "expected finding not produced: rule=local, amount_yuan=50000, kind=fine, record=c2, status=imposed",
        "unexpected finding: local 50,000 yuan (fine, superseded) payable by 91410100123456788Y on case c2",
    )
