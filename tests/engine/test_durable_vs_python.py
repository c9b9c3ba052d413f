"""Differential tests of the durable backend.

1. 100,000 random registry records judged by the durable backend and by a plain-Python
   reading of the shipped Zhengzhou policies written here by hand from the clauses (not
   through ecorules.rules.evaluate): findings, amounts, payers, sanctions and totals agree.
2. A few hundred random small policies (conditions with and/or/not/in/comparisons/arithmetic
   over facts and parameters of every type) written as YAML, loaded, and judged on random
   records by the durable and the python backends. This exercises the compiler to durable's
   data form (``_to_durable.py``): derived fields, negation pushed inward, decimals scaled,
   dates as day numbers, the fallback for conditions too deep for durable.

``ECORULES_STRESS=N`` multiplies the number of records and policies by N (``tox -e stress``, which selects tests named "differential").
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from ecorules.engine import Evaluator, load_policies
from ecorules.engine._to_durable import compile_policy
from ecorules.rules import read_policy
from ecorules.rules._uscc import make_uscc

STRESS = max(1, int(os.environ.get("ECORULES_STRESS", "1")))
WATER = "zhengzhou.eco_water_interception@2011"
CREDIT = "zhengzhou.green_credit@2012"
RATING = "prc.enterprise_environmental_credit@2013"
RED_RESTRICTION = "prc.green_credit_red_restriction@2013"
APPROVAL = "zhengzhou.approval_time_limits@2012"


@pytest.fixture(scope="module")
def shipped():
    return load_policies()


@pytest.fixture(scope="module")
def codes():
    return [c.decode() for c in make_uscc(np.random.default_rng(7), np.full(300, 410100))]


# -- 1. the shipped policies, read by hand ---------------------------------------------------------
def water_and_credit_by_hand(record: dict, as_of: dt.date):
    """郑州市生态水系截污工作奖惩措施 (2011) and 绿色信贷共享机制 (2012-04-14), clause by clause."""
    policies, findings, sanctions = [], [], []
    outfalls = record["untreated_outfalls"]
    direct = record["direct_discharge_cases"]
    illegal = record["illegal_discharge_cases"]
    if as_of >= dt.date(2011, 1, 1):
        policies.append(WATER)
        # 来源报告七、(二): 每个排污口扣款100万元, charged to the district (the 责任单位 is not in the registry)
        if outfalls > 0:
            findings.append((WATER, "untreated_outfall_deduction", outfalls * 1_000_000, record["district"], "fiscal_deduction"))
        # 来源报告七、(二): 工业企业 ... 对辖区政府或管委会给予一例一次1000万元的财政扣款
        if record["industrial"] and direct > 0:
            findings.append((WATER, "direct_discharge_deduction", direct * 10_000_000, record["district"], "fiscal_deduction"))
    if as_of >= dt.date(2014, 1, 1):
        # 企业环境信用评价 (环发〔2013〕150号) reads only roll-ups of cases, unset for an enterprise
        # judged alone: in force, never fires
        policies.append(RATING)
    if as_of >= dt.date(2012, 4, 14):
        policies.append(CREDIT)
        # 违法排污企业 (a direct discharge is an illegal discharge too) -> information shared, loans restricted
        if illegal > 0 or direct > 0:
            sanctions.append((CREDIT, "green_credit_blacklist", "illegal_discharge_blacklist", record["uscc"]))
        # 严格限制高污染、高能耗产业的贷款
        if record["high_pollution"] or record["high_energy"]:
            sanctions.append((CREDIT, "restricted_loans", "high_pollution_energy_restricted_loans", record["uscc"]))
    if as_of >= dt.date(2014, 1, 1):
        # the red grade's loan restriction, as the grade reads only roll-ups: in force, never fires
        policies.append(RED_RESTRICTION)
    return tuple(policies), findings, sanctions, sum(f[2] for f in findings)


COMMITTED = {"环境影响报告书": 10, "环境影响报告表": 7, "环境影响登记表": 5}
STATUTORY = {"环境影响报告书": 60, "环境影响报告表": 30, "环境影响登记表": 15}


def approval_by_hand(record: dict, as_of: dt.date):
    """限时办结制: 当天不结上门服务, 三天不结报告市府, 10/7/5 日承诺时限, 60/30/15 日法定期限
    (登记表的时限至2016-09-01止)."""
    if as_of < dt.date(2012, 4, 14):
        return (), []
    kind, days = record["document_kind"], record["days_open"]
    lists = []
    if days >= 1:
        lists.append(("home_service", "home_service"))
    if days >= 3:
        lists.append(("report_to_city", "report_to_city"))
    # 环境影响评价法第二十二条第四款: a registration form is filed, not approved, from 2016-09-01
    approved = kind != "环境影响登记表" or as_of < dt.date(2016, 9, 1)
    if kind in COMMITTED and days > COMMITTED[kind] and approved:
        lists.append(("accountability", "eia_committed_limit_exceeded"))
    if kind in STATUTORY and days > STATUTORY[kind] and approved:
        lists.append(("statutory_overdue", "eia_statutory_limit_exceeded"))
    # other requests: the time limit is not set, so never judged (and a warning)
    return (APPROVAL,), [(APPROVAL, name, rule, record["request_id"]) for name, rule in lists]  # the request is listed


def skewed_count(rng: random.Random, high: int) -> int:
    roll = rng.random()
    if roll < 0.6:
        return 0
    if roll < 0.8:
        return rng.randint(1, 3)
    if roll < 0.95:
        return rng.randint(0, 100)
    return rng.choice([high, high - 1, rng.randint(0, high)])


def random_enterprise(rng: random.Random, facts: dict, codes: list[str]) -> dict:
    return {
        "uscc": rng.choice(codes),
        "name": rng.choice(["郑州示例化工有限公司", "A", "某某(郑州)有限公司"]),
        "district": rng.choice(facts["district"].type.choices),
        "industrial": rng.random() < 0.6,
        "untreated_outfalls": skewed_count(rng, facts["untreated_outfalls"].max),
        "direct_discharge_cases": skewed_count(rng, facts["direct_discharge_cases"].max),
        "illegal_discharge_cases": skewed_count(rng, facts["illegal_discharge_cases"].max),
        "high_pollution": rng.random() < 0.15,
        "high_energy": rng.random() < 0.15,
    }


def random_day(rng: random.Random) -> dt.date:
    # mostly in force, some days before each policy and on the boundaries
    return rng.choice([
        dt.date(2012, 4, 14), dt.date(2012, 4, 13), dt.date(2011, 1, 1), dt.date(2010, 12, 31),
        dt.date(2010, 1, 1) + dt.timedelta(days=rng.randint(0, 5000)),
        dt.date(2012, 4, 14) + dt.timedelta(days=rng.randint(0, 3000)),
    ])


@pytest.mark.slow
def test_differential_100k_records_durable_equals_the_hand_written_reading(shipped, codes):
    rng = random.Random(2012_04_14)
    facts = shipped.facts
    count = 100_000 * STRESS
    differences = []
    fired = {"untreated_outfall_deduction": 0, "direct_discharge_deduction": 0, "green_credit_blacklist": 0, "restricted_loans": 0}
    big = 0
    with Evaluator(shipped, backend="durable") as durable:
        for n in range(count):
            record = random_enterprise(rng, facts, codes)
            as_of = random_day(rng)
            decision = durable.evaluate(record, as_of=as_of)
            actual = (
                decision.policies,
                [(f.policy, f.rule, f.amount_yuan, f.payer, f.kind.value) for f in decision.findings],
                [(s.policy, s.list, s.rule, s.uscc) for s in decision.sanctions],
                decision.total_yuan,
            )
            expected = water_and_credit_by_hand(record, as_of)
            if actual != expected:
                differences.append((n, record, as_of, actual, expected))
                if len(differences) >= 5:
                    break
            for f in decision.findings:
                fired[f.rule] += 1
                big += f.amount_yuan >= 1_000_000 * 1_000
            for s in decision.sanctions:
                fired[s.list] += 1
    assert differences == []
    # the records did exercise every rule, and the largest amounts
    assert min(fired.values()) > count // 50, fired
    assert big > 100


def test_differential_approval_records_durable_equals_the_hand_written_reading(shipped):
    rng = random.Random(15)
    kinds = shipped.facts["document_kind"].type.choices
    differences = []
    with Evaluator(shipped, backend="durable") as durable:
        for _ in range(10_000 * STRESS):
            record = {
                "request_id": f"SP-{rng.randrange(10**6):06d}",
                **({"applicant_uscc": "91350200MA31E12PXF"} if rng.random() < 0.7 else {}),  # a member of the public has none
                "document_kind": rng.choice(kinds),
                "days_open": rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 15, 16, 30, 31, 60, 61, rng.randint(0, 3650)]),
            }
            as_of = rng.choice([dt.date(2012, 5, 1), dt.date(2012, 4, 13), dt.date(2012, 4, 14), dt.date(2020, 1, 1)])
            decision = durable.evaluate(record, as_of=as_of, domain="approval")
            actual = (decision.policies, [(s.policy, s.list, s.rule, s.uscc) for s in decision.sanctions])
            if actual != approval_by_hand(record, as_of) or decision.findings:
                differences.append((record, as_of, actual))
                break
            assert len(decision.warnings) == (1 if decision.policies else 0)
    assert differences == []


# -- 2. random policies: durable against python ----------------------------------------------------------
CHOICES = ["甲", "乙", "丙", "丁"]
TEXTS = ["a", "金水区", "", "x y"]
FACTS = """
facts:
  uscc: {type: string}
  i1: {type: integer, min: -50, max: 50}
  i2: {type: integer, min: 0, max: 1000000}
  i3: {type: integer, min: -5, max: 5}
  d1: {type: decimal, min: -10.5, max: 10.5}
  d2: {type: decimal, min: 0, max: 999.9999}
  b1: {type: boolean}
  b2: {type: boolean}
  s1: {type: string}
  e1: {type: enum, values: [甲, 乙, 丙, 丁]}
  t1: {type: date, min: 2010-01-01, max: 2014-12-31}
  o1: {type: integer, min: -5, max: 5, optional: true}
  ot: {type: date, min: 2010-01-01, max: 2014-12-31, optional: true}
parameters:
  pi:
    type: integer
    values:
      - {from: 2000-01-01, value: 3, reference: r}
      - {from: 2013-01-01, value: 7, reference: r}
  pd:
    type: decimal
    values:
      - {from: 2000-01-01, value: 1.5, reference: r}
      - {from: 2012-06-01, value: 2.25, reference: r}
  pb:
    type: boolean
    values:
      - {from: 2000-01-01, value: true, reference: r}
      - {from: 2012-06-01, value: false, reference: r}
  pt:
    type: date
    values:
      - {from: 2000-01-01, value: 2012-03-01, reference: r}
"""
COMPARE = ["==", "!=", "<", "<=", ">", ">="]


class RandomExpressions:
    def __init__(self, rng: random.Random):
        self.r = rng

    def number(self, depth: int) -> str:
        r = self.r
        choice = r.randrange(10 if depth > 0 else 4)
        if choice == 0:
            return str(r.choice([0, 1, 2, 3, 5, 10, 49, 50, 51, 100, 999, 1000000]))
        if choice == 1:
            return r.choice(["0.5", "1.25", "2.5", "0.0001", "10.4999", "3.3333", "0.0", "-0.5"])
        if choice == 2:
            return r.choice([
                "i1", "i2", "i3", "pi", "(t1 - pt)", "(as_of - t1)", "-i1", "value_or(o1, i3)",
                "if(is_set(o1), o1, -1)", f"days_between(t1, pt, '{r.choice(['inclusive', 'exclusive'])}')",
                "if(is_set(ot), days_between(t1, ot, 'exclusive'), 0)",
            ])
        if choice == 3:
            return r.choice(["d1", "d2", "pd", "-d1"])
        a = self.number(depth - 1)
        if choice == 4:
            return f"({a} {r.choice('+-*')} {self.number(depth - 1)})"
        if choice == 5:
            return f"({a} / {r.choice(['2', '3', 'pi', 'pd', '0.5', '7', '(pi + 1)'])})"
        if choice == 6:
            return f"{r.choice(['round', 'floor', 'ceil'])}({a})"
        if choice == 7:
            return f"{r.choice(['min', 'max'])}({a}, {self.number(depth - 1)})"
        if choice == 8:
            return f"abs({a})"
        return f"if({self.boolean(depth - 1)}, {a}, {self.number(depth - 1)})"

    def date(self) -> str:
        r = self.r
        mode = r.choice(["", ", 'month_end'", ", 'next_day'"])
        return r.choice([
            "t1", "pt", "as_of", f"(t1 + {r.randrange(-30, 30)})", "date('2012-04-14')",
            f"(pt - {r.randrange(100)})", "min(t1, pt)", "max(t1, as_of)", "if(b1, t1, pt)",
            f"add_months(t1, {r.randrange(-14, 14)}{mode})", f"add_years(t1, {r.choice(['pi', '2', '-1'])}{mode})",
            f"add_days(t1, {r.choice(['i3', '30', '-1'])})", "value_or(ot, t1)", "if(is_set(ot), ot, pt)",
            f"add_months(value_or(ot, pt), i3{mode})",
        ])

    def boolean(self, depth: int) -> str:
        r = self.r
        choice = r.randrange(10 if depth > 0 else 6)
        if choice == 0:
            if r.random() < 0.5:  # small domains, where records often sit on the boundary
                small = f"{r.choice(['i3', 'i1', 'd1', 'pi'])} {r.choice(COMPARE)} {r.choice(['0', '1', '2', '3', 'pi', '2.5', '-1', 'i3'])}"
                return f"not ({small})" if r.random() < 0.5 else small
            d = max(depth - 1, 0)
            return f"{self.number(d)} {r.choice(COMPARE)} {self.number(d)}"
        if choice == 1:
            return f"{self.date()} {r.choice(COMPARE)} {self.date()}"
        if choice == 2:
            return r.choice([
                "b1", "b2", "pb", "true", "false", "not b1", "b1 == pb", "b1 != b2", "is_set(o1)",
                "not is_set(ot)", f"(is_set(o1) and o1 {r.choice(COMPARE)} {r.choice(['0', '1', 'i3'])})",
                f"(not is_set(ot) or ot {r.choice(COMPARE)} {self.date()})",
                f"not (is_set(ot) and add_years(ot, 2) {r.choice(COMPARE)} {self.date()})",
            ])
        if choice == 3:
            if r.random() < 0.5:
                return f"e1 {r.choice(['==', '!='])} '{r.choice(CHOICES)}'"
            return f"s1 {r.choice(['==', '!='])} '{r.choice(TEXTS)}'"
        if choice == 4:
            options = ", ".join(f"'{c}'" for c in r.sample(CHOICES, r.randint(1, 3)))
            return f"e1 {r.choice(['in', 'not in'])} [{options}]"
        if choice == 5:
            options = ", ".join(r.sample(["0", "1", "2", "3", "-1", "pi", "50", "2.5"], r.randint(1, 3)))
            return f"{r.choice(['i3', 'd1'])} {r.choice(['in', 'not in'])} [{options}]"
        if choice == 6:
            return f"not ({self.boolean(depth - 1)})"
        if choice == 7:
            parts = [self.boolean(depth - 1) for _ in range(r.randint(2, 4))]
            return "(" + f" {r.choice(['and', 'or'])} ".join(parts) + ")"
        if choice == 8:
            return r.choice([
                f"(b1 {r.choice(['==', '!='])} ({self.boolean(depth - 1)}))",
                f"if({self.boolean(depth - 1)}, {self.boolean(depth - 1)}, {self.boolean(depth - 1)})",
                f"if(b2, e1, '{r.choice(CHOICES)}') {r.choice(['==', '!='])} '{r.choice(CHOICES)}'",
                f"(if(b1, e1, '甲') {r.choice(['==', '!='])} e1)",
            ])
        # wide conditions: 11 and/or nodes, and 18 (beyond durable's 15: computed beforehand)
        width = r.choice([10, 17])
        return "(" + " or ".join(f"(i1 == {v} and b{1 + v % 2})" for v in range(width)) + ")"


def random_policy_text(rng: random.Random, index: int, rules: int = 3) -> str:
    expressions = RandomExpressions(rng)
    lines = [
        "policy:", f"  id: random.p{index}", "  title: 随机策略", "  version: '1'", "  effective: 2010-06-01",
        "  authority: 测试", "  document: 测试", FACTS, "rules:",
    ]
    for i in range(rules):
        condition = expressions.boolean(3).replace('"', "'")
        lines += [
            f"  - id: r{i}", "    title: 随机规则", "    citation: {document: 测试, text: 测试}",
            f'    when: "{condition}"',
            "    findings:", f"      - {{kind: fine, amount: '{i + 1}', payer: enterprise}}",
        ]
    return "\n".join(lines) + "\n"


def random_record(rng: random.Random) -> dict:
    def pick(low: int, high: int, *usual: int) -> int:
        return rng.choice([low, high, 0 if low <= 0 <= high else low, rng.randint(low, high), rng.randint(low, high), *usual])

    # values the random conditions compare with come up often, so that == and the boundary
    # of every < and <= are reached, not only the interiors
    return {
        "uscc": "x", "i1": pick(-50, 50, 1, 2, 3, 7, 10, 49), "i2": pick(0, 1_000_000, 1, 999, 1000), "i3": pick(-5, 5, -1, 1, 2, 3),
        "d1": str(Decimal(pick(-105_000, 105_000, 25_000, 10_000, -5_000, 30_000, 15_000)).scaleb(-4)),
        "d2": str(Decimal(pick(0, 9_999_999, 25_000, 5000)).scaleb(-4)),
        "b1": rng.random() < 0.5, "b2": rng.random() < 0.5,
        "s1": rng.choice(TEXTS[:2] + TEXTS[3:]), "e1": rng.choice(CHOICES),  # a blank cell is a missing value
        "t1": rng.choice([
            (dt.date(2010, 1, 1) + dt.timedelta(days=pick(0, 1825))).isoformat(), "2012-03-01", "2012-04-14",
            "2012-01-31", "2012-02-29",  # ambiguous month and year additions
        ]),
        # optional facts: empty often (None, an empty cell, or absent), else a usual value
        "o1": rng.choice([None, "", pick(-5, 5, 0, 1)]),
        "ot": rng.choice([None, "", "2012-03-31", (dt.date(2010, 1, 1) + dt.timedelta(days=pick(0, 1825))).isoformat()]),
    }


def test_differential_random_policies_durable_equals_python(tmp_path: Path):
    rng = random.Random(20110101)
    policies = 300 * STRESS
    records_per_policy = 25
    rejected, derived, negated, deep, fired, judged, empty_reads = [], 0, 0, 0, 0, 0, 0
    differences = []
    for index in range(policies):
        path = tmp_path / f"p{index}.yaml"
        path.write_text(random_policy_text(rng, index), encoding="utf-8")
        try:
            policy = read_policy(path)
        except Exception as error:  # a generator bug, or a checker too strict: both worth seeing
            rejected.append(str(error).splitlines()[0])
            continue
        _, compiled = compile_policy(policy)
        derived += sum(len(c.derived) for c in compiled)
        # a condition too wide for durable becomes one precomputed boolean field
        deep += sum(1 for c in compiled if c.derived and list(c.condition) == [c.derived[0].field])
        negated += sum("not" in rule.condition_text for rule in policy.rules)
        with Evaluator([policy], backend="durable") as durable, Evaluator([policy], backend="python") as python:
            for _ in range(records_per_policy):
                record = random_record(rng)
                if rng.random() < 0.2:
                    record.pop("ot")  # an optional field may also be absent
                empty_reads += "is_set" in policy.rules[0].condition_text and record.get("ot") in (None, "")
                as_of = dt.date(2010, 6, 1) + dt.timedelta(days=rng.randint(0, 1500))
                a, b = durable.evaluate(record, as_of=as_of), python.evaluate(record, as_of=as_of)
                judged += 1
                fired += len(a.fired_rules)
                if a != b:
                    differences.append((path.read_text(encoding="utf-8"), record, as_of, a.fired_rules, b.fired_rules))
                    break
        if len(differences) >= 3:
            break
    assert rejected == []
    assert differences == []
    # the generator did reach the compiler's interesting paths
    assert derived > policies
    assert negated > policies // 3
    assert deep > 5
    assert empty_reads > policies // 20  # conditions guarded against an empty optional fact
    assert 0.2 < fired / (judged * 3) < 0.8


@pytest.mark.parametrize("width", [14, 15, 16, 30])
def test_differential_wide_or_of_comparisons_with_parameters(tmp_path, width):
    # each field-to-field branch gets an $ex guard in the durable host: 15 of them used to
    # exceed durable's 15 $and/$or nodes and make the durable evaluator refuse a valid policy
    condition = " or ".join(f"i{1 + k % 3} == pi + {k // 3}" if k % 2 else f"i{1 + k % 3} == pi" for k in range(width))
    text = re.sub(r'when: ".*"', f'when: "{condition}"', random_policy_text(random.Random(width), 0, rules=1))
    path = tmp_path / "wide.yaml"
    path.write_text(text, encoding="utf-8")
    policy = read_policy(path)
    rng = random.Random(width)
    with Evaluator([policy], backend="durable") as durable, Evaluator([policy], backend="python") as python:
        outcomes = set()
        for _ in range(300):
            record = random_record(rng)
            record.update(i1=rng.randint(2, 9), i3=rng.randint(2, 5))
            as_of = rng.choice([dt.date(2012, 1, 1), dt.date(2013, 6, 1)])
            expected = python.evaluate(record, as_of=as_of)
            assert durable.evaluate(record, as_of=as_of) == expected
            outcomes.add(bool(expected.fired_rules))
    assert outcomes == {True, False}
