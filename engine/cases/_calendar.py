"""The Civil Code calendar of ``rules/_calendar.py`` on numpy day numbers (days since
1970-01-01, as the validators give dates), for window starts of millions of cases at once.

``add_months`` follows art 202 like the scalar function: the corresponding day of the target
month, or its last day when it has none (MONTH_END), or the next month's first day
(NEXT_DAY). The tests compare it with the scalar function day by day.
"""

from __future__ import annotations

import numpy as np
from ecorules.rules._calendar import MONTH_END, ROUNDING_MODES
from ecorules.rules._kinds import WINDOW_UNITS, Window


def add_months(days: np.ndarray, months: int, mode: str = MONTH_END) -> np.ndarray:
    """``days`` (int64) moved by ``months`` calendar months, as int64 day numbers."""
    if mode not in ROUNDING_MODES:
        raise ValueError(f"unknown rounding mode {mode!r}; one of {', '.join(ROUNDING_MODES)}")
    dates = np.asarray(days, np.int64).astype("datetime64[D]")
    month = dates.astype("datetime64[M]")
    day_of_month = (dates - month.astype("datetime64[D]")).astype(np.int64)  # 0-based
    target = month + np.timedelta64(months, "M")
    first = target.astype("datetime64[D]")
    length = ((target + np.timedelta64(1, "M")).astype("datetime64[D]") - first).astype(np.int64)
    if mode == MONTH_END:
        offset = np.minimum(day_of_month, length - 1)
    else:  # no corresponding day: the first day of the following month, i.e. one past the last
        offset = np.where(day_of_month < length, day_of_month, length)
    return (first.astype(np.int64) + offset).astype(np.int64)


def window_start(window: Window, anchors: np.ndarray) -> np.ndarray:
    """``Window.start`` for every anchor day: the first day a counted record may fall on."""
    if window.unit == "days":
        return np.asarray(anchors, np.int64) - window.amount
    return add_months(anchors, -window.amount * WINDOW_UNITS[window.unit])


__all__ = ["add_months", "window_start"]
