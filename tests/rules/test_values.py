"""Named values (``values:``): each checked on its own, in order, read by name in rules and
shown in the trace; errors at their file:line:col. The evaluators see the inlined expression."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from ecorules.rules import PolicySchemaError, PolicyTypeError, evaluate, finding_amount, read_policy
from ecorules.rules._steps import Cap, NamedValue, steps
from policy_text import policy_head

FACTS = """  volume: {type: decimal, optional: true}
  level: {type: integer, optional: true, min: 1, max: 5}
  fine: {type: integer, min: 0, max: 1000000}
parameters:
  from_level_2: {type: decimal, values: [{from: 2000-01-01, value: 10, reference: t}]}
"""
RULES = """rules:
  - id: r
    title: t
    citation: {document: t, text: t}
    when: graded > 1
    findings:
      - {kind: fine, payer: enterprise, amount: "min(fine, placed)"}
"""


def write(tmp_path, values: str, rules: str = RULES):
    path = tmp_path / "p.yaml"
    path.write_text(policy_head("t.values", FACTS) + values + rules, encoding="utf-8")
    return path


VALUES = """values:
  graded:
    description: 等级
    value: value_or(level, if(is_set(volume), if(volume >= from_level_2, 2, 1), 1))
  placed:
    value: graded * 1000
"""


@pytest.mark.parametrize(("record", "level", "amount"), [
    ({"volume": Decimal("9.9999"), "level": None}, 1, None),
    ({"volume": Decimal("10"), "level": None}, 2, 2000),  # the threshold itself is level 2
    ({"volume": Decimal("50"), "level": 1}, 1, None),  # a level written wins over grading
    ({"volume": None, "level": 5}, 5, 3000),  # capped at the fine
])
def test_a_value_is_read_by_name_and_computed_as_written(tmp_path, record, level, amount):
    policy = read_policy(write(tmp_path, VALUES))
    (rule,) = policy.rules
    env = {**record, "fine": 3000, "from_level_2": Decimal(10), "uscc": "x", "as_of": dt.date(2020, 1, 1)}
    condition = steps(rule.condition, env, {n: v.description for n, v in policy.values.items()})
    assert [(s.name, s.description, s.result) for s in condition] == [("graded", "等级", level)]
    assert evaluate(rule.condition, env) is (amount is not None)
    if amount is not None:
        assert finding_amount(rule.findings[0], env) == amount
        found = steps(rule.findings[0].amount, env)
        assert [(s.name, s.result) for s in found if isinstance(s, NamedValue)] == [("graded", level), ("placed", level * 1000)]
        assert isinstance(found[-1], Cap) and found[-1].result == amount and found[-1].bound == ("fine" if level == 5 else "placed")


def test_a_value_named_like_a_fact_is_refused_at_its_name(tmp_path):
    with pytest.raises(PolicySchemaError) as caught:
        read_policy(write(tmp_path, "values:\n  fine:\n    value: 1\n"))
    assert "value 'fine' has the name of a fact" in str(caught.value)
    assert (caught.value.span.line, caught.value.span.column) == (16, 3)


def test_a_value_guards_its_own_optional_reads(tmp_path):
    with pytest.raises(PolicyTypeError) as caught:
        read_policy(write(tmp_path, "values:\n  graded:\n    value: level + 1\n  placed:\n    value: 1\n"))
    assert "'level' may be empty" in str(caught.value)
    assert (caught.value.span.line, caught.value.span.column) == (17, 12)


def test_a_value_reads_only_the_values_above_it(tmp_path):
    with pytest.raises(PolicyTypeError) as caught:
        read_policy(write(tmp_path, "values:\n  placed:\n    value: graded * 1000\n  graded:\n    value: 1\n"))
    assert "unknown name 'graded'" in str(caught.value) and caught.value.span.line == 17


BARE = """values:
  tenth:
    description: 一成(写作小数常数)
    value: 0.1
  odd:
    value: 1.015
"""
BARE_RULES = """rules:
  - id: r
    title: t
    citation: {document: t, text: t}
    rounding: {unit: fen}
    when: fine > 0
    findings:
      - {kind: fine, payer: enterprise, amount: "fine * odd + fine * tenth"}
"""


def test_a_bare_decimal_constant_is_an_exact_decimal_in_the_three_evaluators(tmp_path):
    import numpy as np
    from ecorules.engine import Evaluator
    from ecorules.fastcalc import compile_program
    from ecorules.rules import load_policies

    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "p.yaml").write_text(policy_head("t.values", FACTS) + BARE + BARE_RULES, encoding="utf-8")
    policies = load_policies(folder)
    (policy,) = policies
    assert policy.values["tenth"].node.value == Decimal("0.1") and type(policy.values["tenth"].node.value) is Decimal
    # 1.015 + 0.1 = 1.115 yuan exactly, half up to the fen 1.12 (binary floats: 1.1149999... -> 1.11)
    record = {"uscc": "91410100123456788Y", "fine": 1, "volume": None, "level": None}
    amounts = []
    for backend in ("python", "durable"):
        with Evaluator(policies, backend=backend) as evaluator:
            (finding,) = evaluator.evaluate(record, as_of=dt.date(2020, 1, 1)).findings
            amounts.append(finding.amount_yuan)
    result = compile_program(policies).score({"uscc": np.array([record["uscc"]]), "fine": np.array([1]),
                                              "volume": np.ma.masked_array(np.array([0.0]), mask=[True]),
                                              "level": np.ma.masked_array(np.array([1]), mask=[True])},
                                             as_of=dt.date(2020, 1, 1))
    amounts.append(Decimal(int(result.amounts[0, 0])) / 100)
    assert amounts == [Decimal("1.12")] * 3
