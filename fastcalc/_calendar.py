"""``rules/_calendar.add_months`` on a whole column of day numbers (days since 1970-01-01),
by the kernel's own arithmetic (``fc_add_months``, the one behind ADD_MONTHS_RK/RR), for
code outside a program: the window starts of the case roll-ups (engine/cases/_rollups.py)."""

from __future__ import annotations

import numpy as np
from ecorules.rules._calendar import MONTH_END, ROUNDING_MODES

from . import _kernel
from ._opcodes import ADD_MONTHS_MODES


def add_months(days: np.ndarray, months: int, mode: str = MONTH_END) -> np.ndarray:
    """``days`` (int64 day numbers) moved by ``months`` calendar months, as int64 day numbers;
    a target month without the day is resolved by ``mode`` (民法典 art 202, see rules/_calendar.py)."""
    if mode not in ROUNDING_MODES:
        raise ValueError(f"unknown rounding mode {mode!r}; one of {', '.join(ROUNDING_MODES)}")
    days = np.ascontiguousarray(days, np.int64)
    out = np.empty(days.size, np.int64)
    _kernel.add_months(days, int(months), ADD_MONTHS_MODES[mode], out)
    return out


__all__ = ["add_months"]
