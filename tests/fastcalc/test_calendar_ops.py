"""ADD_MONTHS_RK / ADD_MONTHS_RR run by hand-built programs, against rules/_calendar.py.

The instructions are run directly (one instruction, views of numpy columns), so these tests
pin the C arithmetic of _kernel.pyx without the compiler: every day of 1900-2100 moved by
-30 .. 30 months in both modes against rules/_calendar.add_months; every day 0001-01-01 ..
9999-12-31 against an independent oracle (numpy's datetime64 months); and the garbage day
numbers of rejected or empty rows, which must give a result without crashing.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from ecorules.fastcalc import _kernel
from ecorules.fastcalc import _opcodes as opc
from ecorules.rules import _calendar
from ecorules.rules._types import date_to_days, days_to_date

MODES = tuple(opc.ADD_MONTHS_MODES.items())
DAY_ONE = date_to_days(dt.date(1, 1, 1))
DAY_LAST = date_to_days(dt.date(9999, 12, 31))


def add_months_kernel(days: np.ndarray, months: np.ndarray | int, mode: int, block_rows: int = 4096) -> np.ndarray:
    """One ADD_MONTHS instruction over ``days`` (RK for an int ``months``, else RR)."""
    days = np.ascontiguousarray(days, dtype=np.int64)
    out = np.full(days.size, -12345, np.int64)
    columns = [days, out]
    code = np.full(1, -1, opc.INSTR_DTYPE)
    if isinstance(months, int):
        code[0] = (opc.BY_NAME["ADD_MONTHS_RK"].code, 0, 1, 0, -1, -1, months, mode)
    else:
        columns.append(np.ascontiguousarray(months, dtype=np.int64))
        code[0] = (opc.BY_NAME["ADD_MONTHS_RR"].code, 0, 1, 0, 2, -1, mode, 0)
    registers = np.zeros(len(columns), opc.REG_DTYPE)
    for r, column in enumerate(columns):
        registers[r] = (opc.REG_VIEW, opc.DTYPE_CODE["int64"], 8, column.ctypes.data)
    status = _kernel.run(code.view(np.uint8), np.zeros(0, np.int64), registers.view(np.uint8),
                         np.zeros(0, np.uint8), days.size, block_rows, 0, np.zeros((1, 1), np.int64), 1)
    assert status == opc.ERR_NONE
    return out


def numpy_add_months(days: np.ndarray, months: int, next_day: bool) -> np.ndarray:
    """An oracle independent of both: numpy's calendar months (proleptic Gregorian)."""
    stamps = days.astype("M8[D]")
    month = stamps.astype("M8[M]")
    day_of_month = (stamps - month.astype("M8[D]")).astype(np.int64)  # 0-based
    target = month + np.timedelta64(months, "M")
    start = target.astype("M8[D]").astype(np.int64)
    length = ((target + np.timedelta64(1, "M")).astype("M8[D]").astype(np.int64)) - start
    overflow = day_of_month >= length
    result = start + np.minimum(day_of_month, length - 1)
    return result + (overflow & next_day)


@pytest.mark.slow
@pytest.mark.parametrize("mode_name, mode", MODES)
def test_every_day_of_two_centuries_plus_minus_30_months_equals_rules_calendar(mode_name, mode):
    first, last = date_to_days(dt.date(1900, 1, 1)), date_to_days(dt.date(2100, 12, 31))
    days = np.arange(first, last + 1, dtype=np.int64)
    shifts = np.arange(-30, 31, dtype=np.int64)
    got = add_months_kernel(np.repeat(days, shifts.size), np.tile(shifts, days.size), mode)
    got = got.reshape(days.size, shifts.size)
    add_months = _calendar.add_months
    shift_list = shifts.tolist()
    for i, day in enumerate(days_to_date(first) + dt.timedelta(days=k) for k in range(days.size)):
        want = [date_to_days(add_months(day, k, mode_name)) for k in shift_list]
        if got[i].tolist() != want:
            bad = int(np.flatnonzero(got[i] != np.array(want))[0])
            raise AssertionError(f"add_months({day}, {shift_list[bad]}, {mode_name!r}): kernel "
                                 f"{days_to_date(int(got[i, bad]))}, rules/_calendar {days_to_date(want[bad])}")


@pytest.mark.parametrize("mode_name, mode", MODES)
@pytest.mark.parametrize("months", [0, 1, -1, 11, 13, -13, 24, -25, 1200, -1200])
def test_every_day_of_python_dates_against_numpy_months(mode_name, mode, months):
    """0001-01-01 .. 9999-12-31 (where the result stays a Python date): the civil conversions
    of the kernel agree with a calendar they share no code with, on all 3.65 million days."""
    low = DAY_ONE if months >= 0 else date_to_days(dt.date(1 + (-months) // 12 + 1, 1, 1))
    high = DAY_LAST if months <= 0 else date_to_days(dt.date(9999 - months // 12 - 1, 12, 31))
    days = np.arange(low, high + 1, dtype=np.int64)
    want = numpy_add_months(days, months, mode == opc.ADD_MONTHS_MODES["next_day"])
    got = add_months_kernel(days, months, mode)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (mode_name, months, [str(days_to_date(int(d))) for d in days[bad[:3]]])


EXTREMES = [
    (dt.date(1, 1, 1), 0), (dt.date(1, 1, 31), 1), (dt.date(1, 3, 31), -2), (dt.date(1, 12, 31), -11),
    (dt.date(9999, 12, 31), 0), (dt.date(9999, 1, 31), 1), (dt.date(9998, 12, 31), 2),
    (dt.date(9999, 12, 31), -119_976), (dt.date(1, 1, 1), 119_987), (dt.date(1, 1, 31), 119_987),
    (dt.date(2000, 2, 29), 12), (dt.date(2000, 2, 29), -48), (dt.date(2000, 2, 29), 1200),
    (dt.date(1900, 1, 29), 1), (dt.date(2100, 1, 29), 1), (dt.date(2400, 1, 29), 1),
    (dt.date(1969, 12, 31), 1), (dt.date(1970, 1, 1), -1), (dt.date(1600, 2, 29), 4800),
]


@pytest.mark.parametrize("mode_name, mode", MODES)
def test_the_ends_of_python_dates_and_leap_days(mode_name, mode):
    days = np.array([date_to_days(day) for day, _ in EXTREMES], np.int64)
    months = np.array([k for _, k in EXTREMES], np.int64)
    got = add_months_kernel(days, months, mode)
    want = [date_to_days(_calendar.add_months(day, k, mode_name)) for day, k in EXTREMES]
    assert got.tolist() == want
    for (day, k), value in zip(EXTREMES, want, strict=True):  # the RK form: months as an immediate
        assert add_months_kernel(np.array([date_to_days(day)]), k, mode).tolist() == [value]


def test_garbage_days_and_months_are_clamped_not_undefined():
    """Rejected rows and empty optional facts carry arbitrary int64s into ADD_MONTHS: the
    result is clamped arithmetic (0001-01-01 .. 9999-12-31, +-10,000 years), never a crash."""
    extremes = np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max, -(2**40), 2**40, DAY_ONE - 1,
                         DAY_LAST + 1, 0, -1], np.int64)
    days = np.repeat(extremes, extremes.size)
    months = np.tile(extremes, extremes.size)
    for _, mode in MODES:
        got = add_months_kernel(days, months, mode)
        again = add_months_kernel(np.clip(days, DAY_ONE, DAY_LAST), np.clip(months, -120_000, 120_000), mode)
        assert np.array_equal(got, again)
        # 10,000 years either side of Python's dates, never more
        assert got.min() >= DAY_ONE - 3_652_500 and got.max() <= DAY_LAST + 3_652_500
    # within range, clamping never changes a value
    inside = add_months_kernel(np.array([DAY_ONE, DAY_LAST]), np.array([12, -12]), 0)
    assert [days_to_date(int(v)) for v in inside] == [dt.date(2, 1, 1), dt.date(9998, 12, 31)]


@pytest.mark.parametrize("block_rows", [64, 100])
def test_blocks_cover_every_row_of_the_rr_form(block_rows):
    days = np.arange(date_to_days(dt.date(2024, 1, 1)), date_to_days(dt.date(2024, 12, 31)) + 1, dtype=np.int64)
    months = (np.arange(days.size) % 7 - 3).astype(np.int64)
    got = add_months_kernel(days, months, 0, block_rows=block_rows)
    want = [date_to_days(_calendar.add_months(days_to_date(int(d)), int(k))) for d, k in zip(days, months, strict=True)]
    assert got.tolist() == want


def test_a_program_with_an_unknown_rounding_mode_is_refused():
    import attrs
    from ecorules.fastcalc._compiled import CompiledProgram, Register, check_program
    from ecorules.rules import KernelError

    code = np.full(1, -1, opc.INSTR_DTYPE)
    code[0] = (opc.BY_NAME["ADD_MONTHS_RK"].code, 0, 1, 0, -1, -1, 1, 2)
    fields = {f.name: None for f in attrs.fields(CompiledProgram)}
    fields.update(code=code, rules=(), findings=(), finding_rules=(), registers=(Register("scratch", opc.I64, slot=0), Register("scratch", opc.I64, slot=1)))
    with pytest.raises(KernelError, match="rounding mode 2"):
        check_program(CompiledProgram(**fields))
    code[0]["k2"] = 1
    check_program(CompiledProgram(**fields))
