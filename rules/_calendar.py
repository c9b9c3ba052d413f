"""Calendar arithmetic as the Civil Code counts periods (民法典 arts 200-204).

The law's periods are counted in days, months and years, never by subtracting dates by hand:

- art 201: "按照年、月、日计算期间的,开始的当日不计入,自下一日开始计算" — a period starts
  the day after its start event. So the last day of a two-year period that starts after an
  act ended on 2023-01-01 is ``add_years(2023-01-01, 2)`` = 2025-01-01;
- art 202: "按照年、月计算期间的,到期月的对应日为期间的最后一日;没有对应日的,月末日为期间的
  最后一日" — a period in months or years ends on the corresponding day of the final month,
  or on that month's last day when it has none (2024-02-29 plus two years: 2026-02-28).

Adding months is the one ambiguous computation (2024-01-31 plus one month): the policy says
how it is resolved, never a silent guess, as Catala's dates-calc does with RoundDown /
RoundUp. ``MONTH_END`` is art 202's rule and the default; ``NEXT_DAY`` moves to the first
day of the following month. The batch kernel implements the same functions on day numbers;
tests compare the two on every day of two centuries.
"""

from __future__ import annotations

import calendar
import datetime as dt

MONTH_END = "month_end"  # 民法典 art 202: no corresponding day -> the month's last day
NEXT_DAY = "next_day"  # no corresponding day -> the first day of the next month
ROUNDING_MODES = {
    MONTH_END: "没有对应日的,以该月末日为准(民法典第二百零二条)",
    NEXT_DAY: "没有对应日的,以次月第一日为准",
}

INCLUSIVE = "inclusive"  # count both the first and the last day
EXCLUSIVE = "exclusive"  # the first day is not counted (民法典 art 201), the last day is
DAY_COUNTS = {
    INCLUSIVE: "首尾两日均计入",
    EXCLUSIVE: "开始的当日不计入,自下一日开始计算(民法典第二百零一条)",
}


def add_days(day: dt.date, days: int) -> dt.date:
    return day + dt.timedelta(days=days)


def add_months(day: dt.date, months: int, mode: str = MONTH_END) -> dt.date:
    """``day`` moved by ``months`` calendar months (negative: back), resolved by ``mode``
    where the target month has no corresponding day."""
    if mode not in ROUNDING_MODES:
        raise ValueError(f"unknown rounding mode {mode!r}; one of {', '.join(ROUNDING_MODES)}")
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    if day.day <= last:
        return dt.date(year, month, day.day)
    if mode == MONTH_END:
        return dt.date(year, month, last)
    return dt.date(year, month, last) + dt.timedelta(days=1)


def add_years(day: dt.date, years: int, mode: str = MONTH_END) -> dt.date:
    """Years are twelve months, rounded once (only 29 February can be ambiguous)."""
    return add_months(day, 12 * years, mode)


def days_between(first: dt.date, last: dt.date, count: str) -> int:
    """The days from ``first`` to ``last``: ``inclusive`` counts both ends, ``exclusive``
    leaves out the first day (art 201). Negative when ``last`` is before ``first``: a rule
    that needs a period's length guards it with ``last >= first``."""
    if count not in DAY_COUNTS:
        raise ValueError(f"unknown day count {count!r}; one of {', '.join(DAY_COUNTS)}")
    return (last - first).days + (1 if count == INCLUSIVE else 0)


__all__ = [
    "DAY_COUNTS", "EXCLUSIVE", "INCLUSIVE", "MONTH_END", "NEXT_DAY", "ROUNDING_MODES", "add_days",
    "add_months", "add_years", "days_between",
]
