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
