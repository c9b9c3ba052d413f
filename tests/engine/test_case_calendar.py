"""The column add_months of the window starts (the kernel's, fastcalc/_calendar.py) equals
rules/_calendar.add_months on every day of 1999-2031."""

import datetime as dt

import numpy as np
import pytest
from ecorules.fastcalc._calendar import add_months
from ecorules.rules._calendar import MONTH_END, NEXT_DAY
from ecorules.rules._calendar import add_months as scalar

EPOCH = dt.date(1970, 1, 1)


@pytest.mark.parametrize("mode", [MONTH_END, NEXT_DAY])
@pytest.mark.parametrize("months", [-24, -13, -1, 1, 12, 25])
def test_add_months_on_day_numbers_equals_the_scalar_function(months, mode):
    days = np.arange((dt.date(1999, 1, 1) - EPOCH).days, (dt.date(2031, 1, 1) - EPOCH).days)
    expected = [(scalar(EPOCH + dt.timedelta(int(d)), months, mode) - EPOCH).days for d in days]
    assert add_months(days, months, mode).tolist() == expected
