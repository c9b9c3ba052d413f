"""The shipped Zhengzhou policies: their own YAML cases, and amounts checked by hand.

``yaml_cases`` makes tests/conftest.py collect every case of every shipped policy as its own
item, once per backend (``pytest -k green_credit`` or ``-k python`` selects). The hand-checked
tests below restate the clauses of the source (郑州日报 2012-04-14) independently of the cases
legal staff wrote, so a wrong case and a wrong rule cannot agree by accident.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ecorules.engine import BACKENDS, Evaluator, load_policies
from ecorules.engine._testing import run_tests
from ecorules.rules import shipped_policies_path

yaml_cases = pytest.mark.policy_cases()

WATER = "zhengzhou.eco_water_interception@2011"
CREDIT = "zhengzhou.green_credit@2012"
APPROVAL = "zhengzhou.approval_time_limits@2012"
WATER_FINES = "prc.water_pollution_fines@2017"
WATER_FINES_2008 = "prc.water_pollution_fines@2008"
DAILY = "prc.daily_continuous_penalty@2015"
LATE = "prc.late_payment_surcharge@2021"
WATER_CASES = "zhengzhou.eco_water_case_deduction@2011"
# 企业环境信用评价 from the case table's roll-ups, and the red grade's loan restriction per case
RATING, RED_RESTRICTION = "prc.enterprise_environmental_credit@2013", "prc.green_credit_red_restriction@2013"
# the report's mechanisms judged on tables of their own kinds (--records)
OTHER_KINDS = ["zhengzhou.water_eco_compensation@2010", "zhengzhou.target_responsibility@2012",
               "zhengzhou.reporting_rewards@2011", "zhengzhou.dust_discharge_fee@2011"]
DAY = dt.date(2012, 4, 14)
USCC = "91410100123456788Y"


def enterprise(**facts) -> dict:
    record = {
        "uscc": USCC, "name": "郑州示例化工有限公司", "district": "金水区", "industrial": True,
        "untreated_outfalls": 0, "direct_discharge_cases": 0, "illegal_discharge_cases": 0,
        "high_pollution": False, "high_energy": False,
    }
    record.update(facts)
    return record


@pytest.fixture(scope="module", params=BACKENDS)
def evaluator(request):
    with Evaluator(load_policies(), backend=request.param) as evaluator:
        yield evaluator


def test_shipped_policies_and_their_cases():
    policies = load_policies()
    assert sorted(p.key for p in policies) == sorted([WATER, CREDIT, APPROVAL, WATER_FINES, WATER_FINES_2008, DAILY, LATE, WATER_CASES,
                                                      RATING, RED_RESTRICTION, *OTHER_KINDS])
    assert {p.domain for p in policies if p.key in OTHER_KINDS} == {"river_section", "district", "report", "dust_site"}
    assert all(policy.tests for policy in policies)
    assert shipped_policies_path().joinpath("zhengzhou", "registry.yaml").is_file()


def test_every_shipped_case_is_collected_once_per_backend():
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--collect-only", __file__],
        capture_output=True, text=True, timeout=120,
    )
    collected = {line.split("::yaml_cases::", 1)[1] for line in run.stdout.splitlines() if "::yaml_cases::" in line}
    expected = {
        f"{policy.key}::{case.name}[{backend}]"
        for policy in load_policies() for case in policy.tests for backend in BACKENDS
    }
    assert collected == expected
    assert len(expected) >= 2 * 17  # the 17 cases shipped with the first policies, at least


# -- 生态水系截污工作奖惩措施 -------------------------------------------------------------------
@pytest.mark.parametrize("outfalls", [1, 2, 3, 17, 10_000])
def test_one_million_yuan_per_untreated_outfall_charged_to_the_district(evaluator, outfalls):
    decision = evaluator.evaluate(enterprise(untreated_outfalls=outfalls, district="二七区"), as_of=DAY)
    (finding,) = decision.findings
    assert (finding.policy, finding.rule) == (WATER, "untreated_outfall_deduction")
    assert finding.amount_yuan == 1_000_000 * outfalls
    assert finding.payer == "二七区"  # the district government pays, not the enterprise
    assert finding.kind.value == "fiscal_deduction"
    assert finding.citation.article == "七、(二)"
    assert "每个排污口扣款100万元" in finding.citation.text
    assert decision.total_yuan == 1_000_000 * outfalls
    assert decision.sanctions == ()  # outfalls alone are not an illegal-discharge case


@pytest.mark.parametrize("cases", [1, 2, 5])
def test_ten_million_yuan_per_direct_discharge_case_of_an_industrial_enterprise(evaluator, cases):
    decision = evaluator.evaluate(enterprise(direct_discharge_cases=cases, district="郑州航空港区"), as_of=DAY)
    deductions = [f for f in decision.findings if f.rule == "direct_discharge_deduction"]
    (finding,) = deductions
    assert finding.amount_yuan == 10_000_000 * cases
    assert finding.payer == "郑州航空港区"
    assert "一例一次1000万元" in finding.citation.text
    assert decision.total_yuan == 10_000_000 * cases
    # a direct discharge is also an illegal discharge: the enterprise is blacklisted
    assert [(s.list, s.rule, s.uscc) for s in decision.sanctions] == [
        ("green_credit_blacklist", "illegal_discharge_blacklist", USCC)
    ]


def test_direct_discharge_of_a_non_industrial_unit_costs_nothing_but_blacklists(evaluator):
    decision = evaluator.evaluate(enterprise(industrial=False, direct_discharge_cases=3), as_of=DAY)
    assert decision.findings == ()
    assert decision.total_yuan == 0
    assert [s.list for s in decision.sanctions] == ["green_credit_blacklist"]


def test_both_deductions_add_up(evaluator):
    decision = evaluator.evaluate(enterprise(untreated_outfalls=4, direct_discharge_cases=2, district="巩义市"), as_of=DAY)
    assert sorted((f.rule, f.amount_yuan, f.payer) for f in decision.findings) == [
        ("direct_discharge_deduction", 20_000_000, "巩义市"),
        ("untreated_outfall_deduction", 4_000_000, "巩义市"),
    ]
    assert decision.total_yuan == 24_000_000


def test_the_largest_registry_values_give_exact_amounts(evaluator):
    decision = evaluator.evaluate(enterprise(untreated_outfalls=10_000, direct_discharge_cases=10_000), as_of=DAY)
    assert decision.total_yuan == 10_000 * 1_000_000 + 10_000 * 10_000_000 == 110_000_000_000


def test_water_measures_not_in_force_before_2011(evaluator):
    decision = evaluator.evaluate(enterprise(untreated_outfalls=2), as_of=dt.date(2010, 12, 31))
    assert WATER not in decision.policies
    assert decision.findings == ()
    decision = evaluator.evaluate(enterprise(untreated_outfalls=2), as_of=dt.date(2011, 1, 1))
    assert decision.total_yuan == 2_000_000


# -- 绿色信贷共享机制 ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("facts", "lists"),
    [
        ({}, []),
        ({"illegal_discharge_cases": 1}, ["green_credit_blacklist"]),
        ({"high_pollution": True}, ["restricted_loans"]),
        ({"high_energy": True}, ["restricted_loans"]),
        ({"high_pollution": True, "high_energy": True}, ["restricted_loans"]),  # one entry, not two
        ({"illegal_discharge_cases": 2, "high_energy": True}, ["green_credit_blacklist", "restricted_loans"]),
    ],
)
def test_blacklist_and_restricted_loans(evaluator, facts, lists):
    decision = evaluator.evaluate(enterprise(**facts), as_of=DAY)
    assert [s.list for s in decision.sanctions] == lists
    assert all(s.uscc == USCC and s.policy == CREDIT for s in decision.sanctions)
    assert decision.findings == () and decision.total_yuan == 0  # lists carry no amount


def test_green_credit_starts_on_the_date_of_the_report(evaluator):
    record = enterprise(illegal_discharge_cases=1)
    assert evaluator.evaluate(record, as_of=dt.date(2012, 4, 13)).sanctions == ()
    assert [s.list for s in evaluator.evaluate(record, as_of=DAY).sanctions] == ["green_credit_blacklist"]


# -- 行政审批限时办结制度 -------------------------------------------------------------------------
# committed limits 10/7/5 days, statutory 60/30/15; home service from day 1, city report from day 3
LADDER = [
    ("环境影响报告书", 0, []),
    ("环境影响报告书", 1, ["home_service"]),
    ("环境影响报告书", 2, ["home_service"]),
    ("环境影响报告书", 3, ["home_service", "report_to_city"]),
    ("环境影响报告书", 10, ["home_service", "report_to_city"]),
    ("环境影响报告书", 11, ["home_service", "report_to_city", "accountability"]),
    ("环境影响报告书", 60, ["home_service", "report_to_city", "accountability"]),
    ("环境影响报告书", 61, ["home_service", "report_to_city", "accountability", "statutory_overdue"]),
    ("环境影响报告表", 7, ["home_service", "report_to_city"]),
    ("环境影响报告表", 8, ["home_service", "report_to_city", "accountability"]),
    ("环境影响报告表", 30, ["home_service", "report_to_city", "accountability"]),
    ("环境影响报告表", 31, ["home_service", "report_to_city", "accountability", "statutory_overdue"]),
    ("环境影响登记表", 5, ["home_service", "report_to_city"]),
    ("环境影响登记表", 6, ["home_service", "report_to_city", "accountability"]),
    ("环境影响登记表", 15, ["home_service", "report_to_city", "accountability"]),
    ("环境影响登记表", 16, ["home_service", "report_to_city", "accountability", "statutory_overdue"]),
    # the time limit of other requests is not set yet: never accountability, whatever the days
    ("其他请办事项", 3650, ["home_service", "report_to_city"]),
]


@pytest.mark.parametrize(("kind", "days", "lists"), LADDER, ids=[f"{k}-{d}" for k, d, _ in LADDER])
def test_approval_ladder(evaluator, kind, days, lists):
    decision = evaluator.evaluate(
        {"request_id": "SP-2012-0007", "document_kind": kind, "days_open": days},  # a request of the public
        as_of=dt.date(2012, 5, 1), domain="approval",
    )
    assert decision.policies == (APPROVAL,)
    assert decision.subject == "SP-2012-0007" and {s.uscc for s in decision.sanctions} <= {"SP-2012-0007"}
    assert [s.list for s in decision.sanctions] == lists
    assert decision.findings == ()
    assert len(decision.warnings) == 1
    assert "other_request_time_limit_days" in decision.warnings[0]


def test_enterprise_and_approval_domains_are_judged_apart(evaluator):
    decision = evaluator.evaluate(enterprise(untreated_outfalls=1), as_of=DAY)
    assert decision.policies == (WATER, CREDIT)  # in load order; approval is another domain


# -- the case policies, judged with their enterprise -------------------------------------------
def test_an_enterprise_with_its_cases(evaluator):
    # 水污染防治法第八十三条第(二)项 (decided 300,000) and 第八十四条第二款 (decided 80,000) for one
    # act: 行政处罚法第二十九条 keeps the higher; the daily penalty is its own decision: 300,000 x
    # the 10 days 04-11..04-20 (按日连续处罚办法第十七条、第十九条); the direct discharge into the
    # ecological water system is one case, 10,000,000 to the district (来源报告七、(二)).
    def case(case_id, clause, act_id, **more):
        return {"case_id": case_id, "uscc": USCC, "clause": clause, "act_id": act_id,
                "act_date": "2024-03-01", "discovered": "2024-04-01", **more}

    cases = [
        case("c1", "wppcl2017_art83_2", "A", fine_yuan=300000, into_eco_water=True),
        case("c2", "wppcl2017_art84_2", "A", fine_yuan=80000),
        case("c3", "epl2014_art59", "A-R1", fine_yuan=300000, order_served="2024-04-10", reinspected="2024-04-20",
             still_violating=True, act_date="2024-04-11", discovered="2024-04-20"),
    ]
    decision = evaluator.evaluate_group(enterprise(), cases, as_of=dt.date(2025, 1, 1))
    found = sorted((f.record, f.rule, f.kind.value, f.amount_yuan, f.payer, f.imposed) for f in decision.findings)
    assert found == [
        ("c1", "art83_2_over_standard", "fine", 300000, USCC, True),
        ("c1", "direct_discharge_case_deduction", "fiscal_deduction", 10_000_000, "金水区", True),
        ("c2", "art84_2_illegal_outfall", "fine", 80000, USCC, False),
        ("c3", "daily_continuous_penalty", "fine", 3_000_000, USCC, True),
    ]
    assert decision.parent.findings == ()  # the registry's count is 0: the count-based rule is silent
    assert decision.total_yuan == 300000 + 10_000_000 + 3_000_000


def test_a_yaml_case_may_give_the_district_as_a_registry_writes_it(tmp_path):
    folder = tmp_path / "zhengzhou"
    shutil.copytree(shipped_policies_path() / "zhengzhou", folder)
    policy = folder / "eco_water_interception.yaml"
    policy.write_text(policy.read_text(encoding="utf-8") + textwrap.indent(textwrap.dedent("""\
          - name: 管委会填写的区名按目录中的名称扣款
            as_of: 2012-04-14
            given: {untreated_outfalls: 1, district: "郑州经开区管委会"}
            expect:
              findings:
                - {rule: untreated_outfall_deduction, amount_yuan: 1000000, payer: 郑州经济技术开发区}
          - name: 全角空格不影响区名
            as_of: 2012-04-14
            given: {untreated_outfalls: 1, district: "\u3000金水区 "}
            expect:
              findings:
                - {rule: untreated_outfall_deduction, amount_yuan: 1000000, payer: 金水区}
        """), "  "), encoding="utf-8")
    for backend in BACKENDS:
        report = run_tests(load_policies(tmp_path), backend=backend)
        assert not report.failed, [r.problems for r in report.failed]
        assert sum(r.case.name.startswith(("管委会", "全角")) for r in report.results) == 2


# -- the plugin itself: what a failing YAML case shows ------------------------------------------
def test_a_failing_yaml_case_reports_file_case_backend_and_problems(tmp_path):
    root = Path(__file__).resolve().parents[1]
    base = (root / "data" / "base_policy.yaml").read_text(encoding="utf-8")
    policy = tmp_path / "policies" / "wrong.yaml"
    policy.parent.mkdir()
    policy.write_text(base.replace("amount_yuan: 2000000", "amount_yuan: 3000000"), encoding="utf-8")
    (tmp_path / "conftest.py").write_text((root / "conftest.py").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "test_cases.py").write_text(textwrap.dedent(f"""
        import pytest
        yaml_cases = pytest.mark.policy_cases({str(policy.parent)!r})
    """), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    assert "2 failed" in out
    line = next(n for n, text in enumerate(base.splitlines(), 1) if "- name: 两个排污口" in text)
    for backend in BACKENDS:
        assert f"{policy}:{line}: case '两个排污口' of test.broken@1 failed ({backend} backend)" in out
        assert f"test_cases.py::yaml_cases::test.broken@1::两个排污口[{backend}]" in out
    expected_at = next(n for n, text in enumerate(base.splitlines(), 1) if "amount_yuan: 2000000" in text)
    assert f"{policy}:{expected_at}: amount: expected 3,000,000, got 2,000,000 (rule outfall_deduction)" in out
