"""Validation of the fact kinds the kernel reads as numbers: integers, decimals, dates.

Integers are int64 (or a narrow integer column as is), decimals int64 x 10**4, dates day
numbers (``date_to_days``). Numeric and date columns are checked vectorized (ranges
included); text takes the fast path of ``_parsed_text`` for forms whose meaning is
unambiguous (ASCII digits, ``YYYY-MM-DD`` or ``YYYY年M月D日`` that round-trips) and
``rules._records`` for everything else (see ``_validate.py``). Split from the entry module so that one kind family
reads in a sitting.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules._arrow import bools, fill_null, from_bools, numbers, string_buffers
from ecorules.rules._records import bounds
from ecorules.rules._schema import Fact
from ecorules.rules._types import DECIMAL_SCALE, INT64_MAX, Kind, date_to_days

from ._kernel import plain_integers
from ._validate_common import (
    _NARROW_INTS,
    Rejects,
    _all_rows_scalar,
    _is_text,
    _kernel_value,
    _nulls,
    _numpy_of,
    _out_of_range,
    _python_values,
    _range_rejects,
    _scalar_path,
    _text_array,
    value_text,
)

_PLAIN_DIGITS = r"^[0-9]{1,18}$"
_DECIMAL_FAST = r"^[+-]?[0-9]{1,14}(\.[0-9]{1,4})?$"
_DATE_FAST = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# 2016年3月1日 / 2016年03月01日 with ASCII digits (as rules/_records._CHINESE_DATE, which also
# takes other digits: those go to _records one by one), rewritten as ISO before parsing.
_CHINESE_DATE_FAST = r"^[0-9]{4}年[0-9]{1,2}月[0-9]{1,2}日$"
_DAY_ONE = date_to_days(dt.date(1, 1, 1))


# -- integers -------------------------------------------------------------------------------------
def _integers(fact: Fact, column, n: int, rejects: Rejects) -> np.ndarray:
    nulls = _nulls(column)
    if nulls is not None:
        rejects.missing(np.flatnonzero(nulls))
    kind = column.dtype.kind if isinstance(column, np.ndarray) else None
    arrow_int = isinstance(column, pa.Array) and pa.types.is_integer(column.type)
    arrow_float = isinstance(column, pa.Array) and pa.types.is_floating(column.type)
    if kind in ("i", "u") or arrow_int:
        values = _numpy_of(column)
        return _checked_integers(fact, values, nulls, rejects, column)
    if kind == "f" or arrow_float:
        values = _numpy_of(column).astype(np.float64, copy=False)
        whole = np.isfinite(values) & (np.floor(values) == values)
        if nulls is not None:
            whole |= nulls
        bad = np.flatnonzero(~whole)
        if bad.size:
            raws = values[bad].tolist()
            rejects.add(bad, [value_text(v) for v in raws], [f"must be a whole number, got {v!r}" for v in raws])
        safe = whole & (np.abs(np.where(whole, values, 0)) < 2.0**63)
        out = np.where(safe, values, 0).astype(np.int64)
        # whole floats beyond int64 are far out of range: report them with their exact value
        huge = np.flatnonzero(whole & ~safe & ~(nulls if nulls is not None else False))
        if huge.size:
            _, _, shown_low, shown_high = bounds(fact)
            texts = [str(int(v)) for v in values[huge].tolist()]
            reasons = [f"{t} is {'below the minimum ' + shown_low if t.startswith('-') else 'above the maximum ' + shown_high}" for t in texts]
            rejects.add(huge, texts, reasons)
        ok = safe if nulls is None else safe & ~nulls
        _range_rejects(fact, np.flatnonzero(ok), out[ok], rejects, str, column)
        return out
    if _is_text(column):
        return _integer_text(fact, _text_array(column), n, rejects)
    return _all_rows_scalar(fact, column, n, rejects, np.int64, nulls)


def _integer_text(fact: Fact, text: pa.Array, n: int, rejects: Rejects) -> np.ndarray:
    """A text column of integers, as a CSV batch with a bad cell or two leaves it (the reading
    thread found a byte no integer has and did not cast it): the cells of plain digits parsed
    where they lie by the kernel in one pass (:func:`plain_integers`), the others through
    _records. Finding the plain cells in numpy and casting them with Arrow behind a validity
    bitmap cost ~10 ms a column of a batch, on the scoring thread, twice a batch of a registry
    with 1% bad rows; filtering the plain cells out and scattering their values back, twice that."""
    if pa.types.is_dictionary(text.type):
        text = text.cast(text.type.value_type)
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
        return _parsed_text(fact, text, n, rejects, _plain_digits, _parse_plain_integers, np.int64)
    offsets, data = string_buffers(text)
    out = np.empty(n, np.int64)
    plain = np.empty(n, np.uint8)
    plain_integers(offsets, data, out, plain)
    plain = plain.view(bool)
    if text.null_count:
        nulls = bools(text.is_null())
        plain &= ~nulls
        out[nulls] = 0
    low, high, _, _ = bounds(fact)
    outside = _out_of_range(out, int(low), int(high))
    if outside is not None:
        outside &= plain
        rows = np.flatnonzero(outside)
        if rows.size:
            _range_rejects(fact, rows, out[rows], rejects, str, text)
    other = ~plain
    if text.null_count:
        other &= ~nulls
    rows = np.flatnonzero(other)
    if rows.size:
        accepted, values = _scalar_path(fact, _python_values(text, rows), rows, rejects)
        if accepted.size:
            out[accepted] = [_kernel_value(fact, v) for v in values]
    return out


def _checked_integers(fact: Fact, values: np.ndarray, nulls, rejects: Rejects, source) -> np.ndarray:
    low, high, _, _ = bounds(fact)
    if values.dtype == np.uint64:
        too_big = values > np.uint64(INT64_MAX)
        values = np.where(too_big, np.uint64(INT64_MAX), values).astype(np.int64)
    elif values.dtype not in (np.int64, *_NARROW_INTS):
        values = values.astype(np.int64)
    mask = _out_of_range(values, int(low), int(high))
    if mask is not None:
        if nulls is not None:
            mask &= ~nulls
        rows = np.flatnonzero(mask)
        _range_rejects(fact, rows, values[rows].astype(np.int64), rejects, str, source)
    return values


def _plain_digit_rows(text: pa.Array) -> np.ndarray | None:
    """Which texts are 1 to 18 ASCII digits (not null), as a numpy mask, from the bytes: a
    byte that is not a digit marks its row (in a count column they are few, so finding each
    one's row costs little); None for a type other than (large) string."""
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
        return None
    offsets, data = string_buffers(text)
    relative = offsets - offsets[0]
    data = data[offsets[0] : offsets[-1]]
    lengths = np.diff(relative)
    ok = (lengths >= 1) & (lengths <= 18)
    odd = np.flatnonzero((data - np.uint8(48)) > 9)  # uint8 wraps below '0'
    if odd.size:
        # the needles in the offsets' own dtype: int64 needles made numpy cast all the
        # (int32) offsets for each search, 4x the search itself
        ok[np.searchsorted(relative[1:], odd.astype(relative.dtype), side="right")] = False
    if text.null_count:
        ok &= ~bools(text.is_null())
    return ok


def _plain_digits(text: pa.Array) -> pa.Array:
    """Which texts are 1 to 18 ASCII digits, as an Arrow mask (:func:`_plain_digit_rows`; a
    regular expression for other text types): a column holding a few bad cells (a real
    registry's) is parsed here rather than cast by Arrow, which refuses a whole column for
    one bad cell; signs, spaces and other digits go to _records."""
    plain = _plain_digit_rows(text)
    if plain is None:
        return fill_null(pc.match_substring_regex(text, _PLAIN_DIGITS), False)
    return from_bools(plain)


# -- decimals ---------------------------------------------------------------------------------------
def _decimals(fact: Fact, column, n: int, rejects: Rejects) -> np.ndarray:
    nulls = _nulls(column)
    if nulls is not None:
        rejects.missing(np.flatnonzero(nulls))
    kind = column.dtype.kind if isinstance(column, np.ndarray) else None
    arrow = isinstance(column, pa.Array)
    if kind in ("i", "u") or (arrow and pa.types.is_integer(column.type)):
        values = _numpy_of(column)
        low, high, _, _ = bounds(fact)
        limit = INT64_MAX // DECIMAL_SCALE
        lo = max(int(np.floor(float(low))) - 1, -limit)
        hi = min(int(np.ceil(float(high))) + 1, limit)
        mask = _out_of_range(values, lo, hi)  # beyond: far out of range, told by _records
        wide = np.zeros(n, dtype=bool) if mask is None else mask
        safe = np.where(wide, 0, values).astype(np.int64) * DECIMAL_SCALE
        ok = ~wide if nulls is None else ~wide & ~nulls
        _range_rejects(fact, np.flatnonzero(ok), safe[ok], rejects, _show_decimal, column)
        far = np.flatnonzero(wide if nulls is None else wide & ~nulls)
        if far.size:
            _scalar_path(fact, [int(v) for v in values[far].tolist()], far, rejects)
        return safe
    if kind in ("f", "b") or (arrow and (pa.types.is_floating(column.type) or pa.types.is_boolean(column.type))):
        present = np.arange(n) if nulls is None else np.flatnonzero(~nulls)
        raws = _python_values(column, present)
        rejects.add(present, [value_text(v) for v in raws],
                    [f"must be an exact decimal (text or integer), got {v!r}" for v in raws])
        return np.zeros(n, dtype=np.int64)
    if arrow and pa.types.is_decimal(column.type) and column.type.scale <= 4:
        try:
            return _arrow_decimals(fact, column, nulls, rejects)
        except pa.ArrowException:
            pass
    if _is_text(column):
        return _parsed_text(fact, _text_array(column), n, rejects, _DECIMAL_FAST, _parse_decimals_checked, np.int64)
    return _all_rows_scalar(fact, column, n, rejects, np.int64, nulls)


def _show_decimal(scaled: int) -> str:
    return str(Decimal(scaled).scaleb(-4))


def _decimal128_low_words(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The int64 value of each decimal128(., 4) and whether it fits int64."""
    words = np.frombuffer(array.buffers()[1], dtype=np.int64)
    words = words[2 * array.offset: 2 * (array.offset + len(array))].reshape(-1, 2)
    low, high = words[:, 0], words[:, 1]
    fits = high == (low >> 63)
    return low, fits


def _arrow_decimals(fact: Fact, column: pa.Array, nulls, rejects: Rejects) -> np.ndarray:
    scaled = fill_null(column.cast(pa.decimal128(38, 4)), 0)
    low, fits = _decimal128_low_words(scaled)
    values = np.where(fits, low, 0)
    ok = fits if nulls is None else fits & ~nulls
    _range_rejects(fact, np.flatnonzero(ok), values[ok], rejects, _show_decimal, column)
    far = np.flatnonzero(~fits if nulls is None else ~fits & ~nulls)
    if far.size:
        _scalar_path(fact, _python_values(column, far), far, rejects)
    return values


def _parse_decimals(text: pa.Array) -> np.ndarray:
    text = pc.replace_substring_regex(text, r"^\+", "")
    scaled = pc.cast(text, pa.decimal128(38, 4))
    low, _ = _decimal128_low_words(scaled)  # at most 18 digits: always fits
    return low.copy()


# -- text parsed into numbers or dates ----------------------------------------------------------------
def _parsed_text(fact: Fact, text: pa.Array, n: int, rejects: Rejects, pattern, parse, dtype) -> np.ndarray:
    """Fast path for text matching ``pattern`` (a regular expression, or a function of the
    text giving the mask), parsed by ``parse``; _records for the rest."""
    if pa.types.is_dictionary(text.type):
        text = text.cast(text.type.value_type)
    out = np.zeros(n, dtype=dtype)
    fast = pattern(text) if callable(pattern) else fill_null(pc.match_substring_regex(text, pattern), False)
    fast_np = bools(fast)
    fast_rows = np.flatnonzero(fast_np)
    if fast_rows.size:
        parsed, good = parse(text.filter(fast))
        if good is not None:  # some matched the pattern but are not what they seem (dates)
            fast_rows, parsed = fast_rows[good], parsed[good]
            fast_np = np.zeros(n, dtype=bool)
            fast_np[fast_rows] = True
        out[fast_rows] = parsed
        _range_rejects(fact, fast_rows, out[fast_rows].astype(np.int64), rejects,
                       _show_decimal if fact.type.kind is Kind.DECIMAL else _show_kernel(fact), text)
    slow = ~fast_np & ~bools(text.is_null())
    slow_rows = np.flatnonzero(slow)
    if slow_rows.size:
        accepted, values = _scalar_path(fact, _python_values(text, slow_rows), slow_rows, rejects)
        if accepted.size:
            out[accepted] = [_kernel_value(fact, v) for v in values]
    return out


def _show_kernel(fact: Fact):
    if fact.type.kind is Kind.DATE:
        from ecorules.rules._types import days_to_date

        def show(days: int) -> str:
            try:
                return str(days_to_date(days))
            except (OverflowError, ValueError):
                return str(np.datetime64(days, "D"))

        return show
    return str


def _parse_plain_integers(text: pa.Array):
    """Texts of ASCII digits only (see _plain_digits): Arrow's cast, no sign to strip."""
    return numbers(pc.cast(text, pa.int64())), None


def _parse_decimals_checked(text: pa.Array):
    return _parse_decimals(text), None


def _parse_dates_or_chinese(text: pa.Array):
    """ISO dates and 2016年3月1日, the latter rewritten as 2016-03-01 first."""
    text = pc.replace_substring_regex(text, r"年([0-9])月", r"年0\1月")
    text = pc.replace_substring_regex(text, r"月([0-9])日", r"月0\1日")
    text = pc.replace_substring_regex(text, r"^([0-9]{4})年([0-9]{2})月([0-9]{2})日$", r"\1-\2-\3")
    return _parse_dates(text)


def _parse_dates(text: pa.Array):
    """ISO dates; a match counts only if it round-trips (Arrow rolls 2013-02-29 over)."""
    stamps = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
    days = pc.cast(stamps, pa.date32())
    back = pc.strftime(pc.cast(days, pa.timestamp("s")), format="%Y-%m-%d")
    good = pc.equal(back, text)
    values = numbers(fill_null(days, 0).view(pa.int32())).astype(np.int64)
    good_np = bools(good) & (values >= _DAY_ONE)
    return values, good_np


# -- dates --------------------------------------------------------------------------------------------
def _dates(fact: Fact, column, n: int, rejects: Rejects) -> np.ndarray:
    nulls = _nulls(column)
    if nulls is not None:
        rejects.missing(np.flatnonzero(nulls))
    if isinstance(column, pa.Array) and pa.types.is_date32(column.type):
        values = numbers(fill_null(column.view(pa.int32()), 0))  # viewed first: a date scalar imports pandas
        return _checked_days(fact, values, nulls, rejects, column)
    if isinstance(column, np.ndarray) and column.dtype == np.dtype("M8[D]"):
        values = column.view(np.int64)
        return _checked_days(fact, values, nulls, rejects, column)
    if _is_text(column):
        return _parsed_text(fact, _text_array(column), n, rejects, f"{_DATE_FAST}|{_CHINESE_DATE_FAST}",
                            _parse_dates_or_chinese, np.int64)
    out = np.zeros(n, dtype=np.int64)
    present = np.arange(n) if nulls is None else np.flatnonzero(~nulls)
    accepted, values = _scalar_path(fact, _python_values(column, present), present, rejects)
    if accepted.size:
        out[accepted] = [_kernel_value(fact, v) for v in values]
    return out


def _checked_days(fact: Fact, values: np.ndarray, nulls, rejects: Rejects, source) -> np.ndarray:
    low, high, _, _ = bounds(fact)
    mask = _out_of_range(values, date_to_days(low), date_to_days(high))
    if mask is not None:
        if nulls is not None:
            mask &= ~nulls
        rows = np.flatnonzero(mask)
        _range_rejects(fact, rows, values[rows].astype(np.int64), rejects, _show_kernel(fact), source)
    return values

