"""Civil Code periods (民法典 arts 201-202) and the ambiguous month additions, in Python.

The boundary days come from the statute's own examples as law.md records them and from
Catala's dates-calc table of ambiguous computations (2012-01-31 plus one month)."""

from __future__ import annotations

import datetime as dt

import pytest
from ecorules.rules._calendar import add_days, add_months, add_years, days_between

D = dt.date


@pytest.mark.parametrize(
    ("start", "months", "month_end", "next_day"),
    [
        (D(2012, 1, 31), 1, D(2012, 2, 29), D(2012, 3, 1)),  # leap February
        (D(2013, 1, 31), 1, D(2013, 2, 28), D(2013, 3, 1)),
        (D(2024, 3, 31), -1, D(2024, 2, 29), D(2024, 3, 1)),  # backwards too
        (D(2024, 5, 31), 1, D(2024, 6, 30), D(2024, 7, 1)),
        (D(2024, 1, 15), 1, D(2024, 2, 15), D(2024, 2, 15)),  # a corresponding day: no rounding
        (D(2024, 12, 31), 2, D(2025, 2, 28), D(2025, 3, 1)),  # across the year
        (D(2024, 1, 1), -13, D(2022, 12, 1), D(2022, 12, 1)),
    ],
)
def test_add_months_rounds_only_where_the_month_has_no_such_day(start, months, month_end, next_day):
    assert add_months(start, months, "month_end") == month_end
    assert add_months(start, months, "next_day") == next_day
    assert add_months(start, months) == month_end  # art 202 is the default


def test_two_years_from_an_act_as_the_limitation_period_counts_them():
    # art 201: the period starts the day after the act ended; art 202: it ends on the
    # corresponding day two years on, or at the end of February when there is none.
    assert add_years(D(2023, 1, 1), 2) == D(2025, 1, 1)
    assert add_years(D(2024, 2, 29), 2) == D(2026, 2, 28)
    assert add_years(D(2024, 2, 29), 2, "next_day") == D(2026, 3, 1)
    assert add_years(D(2024, 2, 29), 4) == D(2028, 2, 29)
    # 730 days is not two years when the window holds 29 February
    assert add_days(D(2023, 6, 1), 730) != add_years(D(2023, 6, 1), 2)


def test_day_counts_say_whether_the_first_day_counts():
    served, reinspected = D(2015, 3, 1), D(2015, 3, 31)
    # 按日连续处罚: from the day after service to the re-inspection, both included
    assert days_between(served, reinspected, "exclusive") == 30
    assert days_between(served, reinspected, "inclusive") == 31
    assert days_between(served, served, "inclusive") == 1
    assert days_between(reinspected, served, "exclusive") == -30


def test_every_day_of_four_years_plus_a_month_and_back_is_consistent():
    day = D(2023, 1, 1)
    while day < D(2027, 1, 1):
        later = add_months(day, 1)
        assert later.day == day.day or later == D(later.year, later.month % 12 + 1, 1) - dt.timedelta(days=1)
        assert 28 <= (later - day).days <= 31
        day += dt.timedelta(days=1)


def test_unknown_modes_are_refused():
    with pytest.raises(ValueError, match="month_end, next_day"):
        add_months(D(2024, 1, 31), 1, "round_down")
    with pytest.raises(ValueError, match="inclusive, exclusive"):
        days_between(D(2024, 1, 1), D(2024, 1, 2), "both")
