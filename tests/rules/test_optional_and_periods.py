"""The checker and the reference evaluator on optional facts and calendar functions.

An optional fact is read only where a guard proves it present; the calendar functions are
typed, ranged and folded like any other call, and add_days/days_between compile to plain
date arithmetic."""

from __future__ import annotations

import datetime as dt

import pytest
from ecorules.rules import PolicyTypeError, Span, Symbol, check, evaluate, parse_expression
from ecorules.rules import _ast as ast
from ecorules.rules._evaluate import EmptyValueError
from ecorules.rules._types import BOOLEAN, DATE, INTEGER, date_to_days
from policy_text import policy_head

DAYS = (date_to_days(dt.date(2000, 1, 1)), date_to_days(dt.date(2030, 12, 31)))
SCOPE = {
    "act": Symbol("fact", DATE, DAYS),
    "halted": Symbol("fact", DATE, DAYS, optional=True),
    "served": Symbol("fact", DATE, DAYS),
    "fine": Symbol("fact", INTEGER, (0, 1_000_000)),
    "extra": Symbol("fact", INTEGER, (0, 100), optional=True),
    "years": Symbol("parameter", INTEGER, (2, 5)),
}


def locator(text):
    return lambda offset, length: Span("p.yaml", 1, offset + 1, 1, offset + 1 + length, text)


def typed(text, when=None):
    condition = None if when is None else check(parse_expression(when, locator(when)), SCOPE, BOOLEAN)
    return check(parse_expression(text, locator(text)), SCOPE, when=condition)


def error(text, when=None) -> PolicyTypeError:
    with pytest.raises(PolicyTypeError) as caught:
        typed(text, when)
    return caught.value


@pytest.mark.parametrize(
    "text",
    [
        "halted > act",
        "add_days(halted, 1) > act",
        "is_set(halted) or halted > act",  # read where is_set is false
        "if(is_set(halted), act, halted) > act",  # the wrong branch
        "not is_set(halted) and halted > act",
        "(is_set(halted) or fine > 0) and halted > act",  # the or proves nothing
        "extra + fine > 0",
    ],
)
def test_an_unguarded_read_of_an_optional_fact_is_an_error_at_its_place(text):
    problem = error(text)
    name = "extra" if "extra" in text else "halted"
    assert f"{name!r} may be empty" in str(problem) and f"is_set({name})" in str(problem)
    assert text[problem.span.column - 1:problem.span.column - 1 + len(name)] == name


@pytest.mark.parametrize(
    "text",
    [
        "is_set(halted) and halted > act",
        "not is_set(halted) or halted > act",
        "fine > 0 and is_set(halted) and add_days(halted, 1) > act",
        "if(is_set(halted), halted, act) > served",
        "if(not is_set(halted), act, halted) > served",
        "value_or(halted, act) > served",
        "not (is_set(halted) and is_set(extra)) or extra > 3 and halted > act",
    ],
)
def test_guards_that_prove_presence_are_accepted(text):
    assert typed(text).type == BOOLEAN


def test_an_amount_may_read_what_its_condition_proves_present():
    assert typed("fine + extra", when="is_set(extra) and fine > 0").type == INTEGER
    assert "'extra' may be empty" in str(error("fine + extra", when="fine > 0"))


def test_is_set_needs_an_optional_fact():
    assert "never empty" in str(error("is_set(act)"))
    assert "takes the name of a fact" in str(error("is_set(years)"))
    assert "value_or() must be" in str(error("value_or(halted, 3) > act"))


@pytest.mark.parametrize(
    ("text", "env", "value"),
    [
        ("add_years(act, years)", {"act": dt.date(2024, 2, 29), "years": 2}, dt.date(2026, 2, 28)),
        ("add_years(act, years, 'next_day')", {"act": dt.date(2024, 2, 29), "years": 2}, dt.date(2026, 3, 1)),
        ("add_months(act, -1)", {"act": dt.date(2024, 3, 31)}, dt.date(2024, 2, 29)),
        ("add_days(act, 30)", {"act": dt.date(2024, 2, 1)}, dt.date(2024, 3, 2)),
        ("days_between(served, act, 'exclusive')", {"served": dt.date(2015, 3, 1), "act": dt.date(2015, 3, 31)}, 30),
        ("days_between(served, act, 'inclusive')", {"served": dt.date(2015, 3, 1), "act": dt.date(2015, 3, 31)}, 31),
        ("value_or(halted, act)", {"halted": None, "act": dt.date(2015, 3, 1)}, dt.date(2015, 3, 1)),
        ("value_or(halted, act)", {"halted": dt.date(2015, 2, 1), "act": dt.date(2015, 3, 1)}, dt.date(2015, 2, 1)),
        ("is_set(halted)", {"halted": None}, False),
        ("if(is_set(halted), days_between(act, halted, 'inclusive'), 0)", {"halted": None, "act": dt.date(2015, 3, 1)}, 0),
    ],
)
def test_the_reference_evaluator(text, env, value):
    assert evaluate(typed(text), env) == value


def test_day_functions_are_date_arithmetic_and_fold():
    assert isinstance(typed("add_days(act, 3)"), ast.Binary)
    assert isinstance(typed("days_between(act, served, 'inclusive')"), ast.Binary)
    folded = typed("add_months(date('2012-01-31'), 1, 'next_day')")
    assert isinstance(folded, ast.Literal) and folded.value == dt.date(2012, 3, 1)


def test_the_range_of_a_month_addition_holds_every_result():
    node = typed("add_months(act, years * 12)")
    low, high = node.interval
    assert low <= date_to_days(dt.date(2002, 1, 1)) and high >= date_to_days(dt.date(2035, 12, 31))
    assert "beyond the range" in str(error("add_years(act, 9000) > act"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("add_months(act, 1, 'round_down') > act", "one of 'month_end', 'next_day'"),
        ("days_between(act, served) > 1", "takes 3 arguments"),
        ("days_between(act, served, 'both') > 1", "one of 'inclusive', 'exclusive'"),
        ("add_days(act, act) > act", "whole number of days"),
        ("add_years(fine, 2) > act", "is a date"),
    ],
)
def test_calendar_misuse_is_explained(text, message):
    assert message in str(error(text))


def test_reading_an_empty_value_unguarded_is_never_a_silent_zero():
    node = check(parse_expression("halted", locator("halted")), {**SCOPE, "halted": Symbol("fact", DATE, DAYS)})
    with pytest.raises(EmptyValueError):
        evaluate(node, {"halted": None})


def test_an_optional_fact_names_the_payer_only_where_the_condition_proves_it_set(tmp_path):
    # a finding needs a payer on every record it fires on: the responsible unit (责任单位)
    # pays where the registry names one, under is_set(); another rule names the district
    from ecorules.rules import PolicySchemaError, read_policy

    path = tmp_path / "p.yaml"
    text = policy_head("t.payer", "  unit: {type: string, optional: true}\n") + """rules:
  - id: a
    title: t
    citation: {document: d, text: t}
    when: WHEN
    findings: [{kind: fee, amount: "1", payer: unit}]
"""
    for when in ("true", "is_set(unit) or true", "not is_set(unit)"):
        path.write_text(text.replace("WHEN", when), encoding="utf-8")
        with pytest.raises(PolicySchemaError, match="payer 'unit' is an optional fact.*must prove it set") as caught:
            read_policy(path)
        assert (caught.value.span.line, caught.value.span.column) == (16, 48)
    for when in ("is_set(unit)", "true and is_set(unit)", "not (not is_set(unit))"):
        path.write_text(text.replace("WHEN", when), encoding="utf-8")
        (finding,) = read_policy(path).rules[0].findings
        assert finding.payer == "unit"
