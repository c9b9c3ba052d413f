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
        (HEAD.replace("value: 1000000", "value: 一百万元") + RULE, "without units or 万: write 1000000", 15, 35),
        # the digits to write are computed from the value, not a fixed example
        (HEAD.replace("value: 1000000", "value: 50万元") + RULE, "'value' is written '50万元': write the number in digits, "
                                                               "in yuan, without units or 万: write 500000", 15, 35),
        (HEAD.replace("value: 1000000", "value: 1.5亿") + RULE, "without units or 万: write 150000000", 15, 35),
        (HEAD.replace("value: 1000000", "value: 一千二百万元") + RULE, "without units or 万: write 12000000", 15, 35),
        ("policy:\n\tid: x\n", "YAML: a tab: indent with spaces, not tabs", 2, 1),
    ],
)
def test_slips_are_named_where_they_are(tmp_path, text, message, line, column):
    problem = error(tmp_path, text)
    assert message in str(problem)
    assert (problem.span.line, problem.span.column) == (line, column)


@pytest.mark.parametrize(
    ("old", "new", "message", "line", "column"),
    [
        # the acceptance cases: a rule key one space short, one space over
        ("    when: n > 0", "   when: n > 0",
         "YAML: this line is indented less than the lines of its block (line 19): align it with 'citation' (column 5) "
         "(expected <block end>, but found '<block mapping start>')", 20, 4),
        ("    when: n > 0", "  when: n > 0",
         "YAML: this line is indented between two blocks: align it with 'citation' (line 19, column 5) to continue the "
         "block above it, or with 'rules' (line 16, column 1) to continue the outer block (expected <block end>, but found '?')",
         20, 3),
        ("    title: t\n", "     title: t\n",
         "YAML: this line is indented more than the lines of its block (line 17): align it with 'id' (column 5) "
         "(mapping values are not allowed here)", 18, 6),
        ("  n: {type", "   n: {type",
         "YAML: this line is indented more than the lines of its block (line 9): align it with 'uscc' (column 3) "
         "(expected <block end>, but found '<block mapping start>')", 10, 4),
        ("      - {from: 2000", "      - {from: 1999-01-01, value: 1, reference: r}\n     - {from: 2000",
         "YAML: this list item is indented less than the lines of its block (line 15): align it with the '-' of the items "
         "above (column 7)", 16, 6),
    ],
)
def test_a_misindented_line_is_named_with_the_key_to_align_it_with(tmp_path, old, new, message, line, column):
    text = (HEAD + RULE).replace(old, new, 1)
    assert text != HEAD + RULE
    problem = error(tmp_path, text)
    assert problem.message.startswith(message), problem.message
    assert (problem.span.line, problem.span.column) == (line, column)
    shown = str(problem).splitlines()  # the line, and a caret under its first character
    assert shown[1:] == ["    " + text.splitlines()[line - 1], "    " + " " * (column - 1) + "^"]


def test_a_value_with_a_colon_keeps_its_own_advice():
    """Not every 'mapping values are not allowed' is an indentation slip: a line at its block's
    indentation keeps the advice to quote the value."""
    from ecorules.rules._yaml import load_yaml_text

    with pytest.raises(PolicyError) as caught:
        load_yaml_text("a:\n  b: 1\n  c: d: e\n")
    assert caught.value.message.startswith("YAML: a ':' where a value was expected")


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
