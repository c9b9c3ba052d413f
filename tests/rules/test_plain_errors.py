"""Errors and warnings in the words legal staff need, at the place they wrote the slip."""

from __future__ import annotations

import pytest
from ecorules.rules import PolicyError, read_policy
from policy_text import policy_head

HEAD = policy_head("t.slip", "  n: {type: integer, min: 0, max: 10}\n") + """parameters:
  big:
    type: integer
    values:
      - {from: 2000-01-01, value: 1000000, reference: r}
rules:
  - id: a
    title: t
    citation: {document: d, text: t}
"""
RULE = """    when: n > 0
    findings: [{kind: fee, amount: "1", payer: enterprise}]
"""


def load(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    return read_policy(path)


def error(tmp_path, text) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        load(tmp_path, text)
    return caught.value


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        (HEAD + RULE.replace("when:", "whne:"), "rule 'a': unknown key 'whne' where 'when' is needed (did you mean 'when'?)", 20, 5),
        (HEAD + RULE.replace("when: n > 0", "when:"), "rule 'a': 'when' has no value", 20, 5),
        (HEAD + RULE.replace("when: n > 0", "when: yes"), "'when' is written 'yes', which YAML reads as true: write true or false", 20, 11),
        (HEAD.replace("value: 1000000", "value: 100万") + RULE, "'value' is written '100万': write the number in digits", 15, 35),
        (HEAD.replace("value: 1000000", "value: 一百万元") + RULE, "(100万元 is 1000000)", 15, 35),
        ("policy:\n\tid: x\n", "YAML: a tab: indent with spaces, not tabs", 2, 1),
    ],
)
def test_slips_are_named_where_they_are(tmp_path, text, message, line, column):
    problem = error(tmp_path, text)
    assert message in str(problem)
    assert (problem.span.line, problem.span.column) == (line, column)


def test_constant_conditions_and_zero_amounts_are_warnings(tmp_path):
    text = HEAD + RULE.replace("when: n > 0", "when: true").replace('amount: "1"', 'amount: "2 - 2"') + """  - id: b
    title: t
    citation: {document: d, text: t}
    when: 1 > 2
    findings: [{kind: fee, amount: "n", payer: enterprise}]
"""
    import datetime as dt

    warnings = [(w.span.line, w.message) for w in load(tmp_path, text).warnings(dt.date(2020, 1, 1))]
    assert warnings == [
        (20, "rule 'a' always applies: its condition is always true"),
        (21, "rule 'a': the amount is always 0"),
        (25, "rule 'b' can never apply: its condition is always false"),
    ]
    assert load(tmp_path, HEAD + RULE.replace("when: n > 0", "when: true or false")).rules[0].warnings


def test_true_and_false_stay_booleans(tmp_path):
    assert load(tmp_path, HEAD + RULE.replace("when: n > 0", "when: 'n > 0'")).rules[0].condition_text == "n > 0"
    assert load(tmp_path, HEAD + RULE.replace("when: n > 0", "when: false")).rules[0].condition_text == "False"
