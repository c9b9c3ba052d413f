"""The trace's steps: each period a rule counted (first and last day, count, inclusive or
exclusive, the rounding of a month end that did not exist) and each cap, computed on the
values of one record exactly as the reference evaluator computes the rule."""

from __future__ import annotations

import datetime as dt

import pytest
from ecorules.rules import Span, Symbol, check, evaluate, parse_expression
from ecorules.rules._steps import Cap, Period, steps
from ecorules.rules._types import DATE, INTEGER, date_to_days

DAYS = (date_to_days(dt.date(2000, 1, 1)), date_to_days(dt.date(2030, 12, 31)))
SCOPE = {
    "act": Symbol("fact", DATE, DAYS),
    "served": Symbol("fact", DATE, DAYS),
    "reinspected": Symbol("fact", DATE, DAYS),
    "halted": Symbol("fact", DATE, DAYS, optional=True),
    "fine": Symbol("fact", INTEGER, (0, 1_000_000)),
    "years": Symbol("parameter", INTEGER, (2, 5)),
}


def typed(text):
    return check(parse_expression(text, lambda offset, length: Span("p.yaml", 1, offset + 1, 1, offset + 1 + length, text)), SCOPE)


def periods(text, **values):
    return [step for step in steps(typed(text), values) if isinstance(step, Period)]


def test_days_between_exclusive_is_the_period_from_the_day_after_to_the_last_day():
    (period,) = periods("days_between(served, reinspected, 'exclusive')", served=dt.date(2024, 5, 1), reinspected=dt.date(2024, 5, 31))
    assert (period.first, period.last, period.count, period.counting) == (dt.date(2024, 5, 2), dt.date(2024, 5, 31), 30, "exclusive")
    assert period.expression == "days_between(served, reinspected, 'exclusive')"
    assert "2024-05-02 至 2024-05-31, 共 30 日" in period.text


def test_days_between_inclusive_counts_both_ends():
    (period,) = periods("days_between(served, reinspected, 'inclusive')", served=dt.date(2024, 5, 1), reinspected=dt.date(2024, 5, 31))
    assert (period.first, period.last, period.count, period.counting) == (dt.date(2024, 5, 1), dt.date(2024, 5, 31), 31, "inclusive")


@pytest.mark.parametrize(("act", "last", "rounding"), [
    (dt.date(2023, 1, 1), dt.date(2025, 1, 1), None),  # the corresponding day exists
    (dt.date(2024, 2, 29), dt.date(2026, 2, 28), "month_end"),  # none: 民法典 art 202, the month's last day
])
def test_add_years_states_the_window_and_rounds_only_where_the_day_is_missing(act, last, rounding):
    (period,) = periods("add_years(act, years)", act=act, years=2)
    assert (period.start, period.first, period.last, period.count, period.unit) == (act, act + dt.timedelta(1), last, 2, "years")
    assert period.rounding == rounding and period.result == last


def test_next_day_rounding_is_recorded_as_declared():
    (period,) = periods("add_months(act, 1, 'next_day')", act=dt.date(2024, 1, 31))
    assert (period.last, period.rounding) == (dt.date(2024, 3, 1), "next_day")


def test_add_days_and_an_empty_period():
    (period,) = periods("days_between(served, reinspected, 'exclusive')", served=dt.date(2024, 5, 1), reinspected=dt.date(2024, 5, 1))
    assert period.count == 0 and period.first > period.last and "期间为空" in period.text
    (added,) = periods("add_days(act, 15)", act=dt.date(2024, 6, 10))
    assert (added.first, added.last, added.count) == (dt.date(2024, 6, 11), dt.date(2024, 6, 25), 15)


def test_a_cap_says_which_bound_was_taken():
    node = typed("min(fine, fine * days_between(served, reinspected, 'exclusive') * 3 / 100)")
    values = {"fine": 200_000, "served": dt.date(2024, 6, 25), "reinspected": dt.date(2024, 8, 30)}
    found = steps(node, values)
    cap = found[-1]
    assert isinstance(cap, Cap) and cap.function == "min" and cap.chosen == 0 and cap.result == 200_000
    assert cap.result == evaluate(node, values)
    assert [value for _, value in cap.operands] == [200_000, 396_000]
    assert isinstance(found[0], Period) and found[0].count == 66


def test_only_the_branch_taken_and_the_operands_read_are_stated():
    # halted is empty: the min() and add_days() of the other branch are not computed
    text = "if(is_set(halted), min(reinspected, add_days(halted, 0)), reinspected) > served"
    assert steps(typed(text), {"halted": None, "reinspected": dt.date(2024, 5, 31), "served": dt.date(2024, 5, 1)}) == ()
    halted = steps(typed(text), {"halted": dt.date(2024, 5, 20), "reinspected": dt.date(2024, 5, 31), "served": dt.date(2024, 5, 1)})
    assert [type(step) for step in halted] == [Period, Cap] and halted[-1].result == dt.date(2024, 5, 20)
    # 'and' stops at the first false operand, as the evaluator does
    assert steps(typed("fine > 5 and add_years(act, years) > served"), {"fine": 1, "act": dt.date(2020, 1, 1), "years": 2,
                                                                         "served": dt.date(2021, 1, 1)}) == ()


def test_steps_are_typed_and_serialise_to_json():
    (period,) = periods("add_years(act, years)", act=dt.date(2024, 2, 29), years=2)
    assert period.to_dict() | {"text": None} == {
        "step": "period", "function": "add_years", "expression": "add_years(act, years)", "first": "2024-03-01",
        "last": "2026-02-28", "count": 2, "unit": "years", "counting": "exclusive", "start": "2024-02-29",
        "rounding": "month_end", "result": "2026-02-28", "text": None,
    }


def test_a_day_counted_back_is_stated_as_arithmetic_not_as_a_period():
    (period,) = periods("add_days(act, -1)", act=dt.date(2024, 3, 1))
    assert (period.first, period.last, period.result) == (dt.date(2024, 2, 29), dt.date(2024, 2, 29), dt.date(2024, 2, 29))
    assert period.text == "add_days(act, -1): 2024-03-01 加 -1 日 = 2024-02-29"
