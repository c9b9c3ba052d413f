"""Vectorized validation of a batch: the rules of ``rules/_records.py``, column at a time.

Each column becomes the array the kernel reads (zero-copy when its dtype already is one the
kernel takes) plus the rows it rejects, with the exact message ``_records.coerce`` gives.
Agreement with ``_records`` is by construction rather than by imitation: every column takes
a vectorized *fast path* only for forms whose meaning is unambiguous (int64 numbers, ASCII
digits, ``YYYY-MM-DD`` dates that round-trip, ...), and every other non-null value (odd
text, unicode digits, surrounding spaces, Python objects) goes through ``_records.coerce``
itself, one value at a time. Dictionary-encoded text (enums, flags, string facts) is
decided once per distinct value.

``_records`` also decides what the kernel relies on: a whole float counts as a whole number
(pandas turns an integer column with a gap into float64) and NaN as missing, and a fact
without a declared ``min``/``max`` is held to the range the checker assumed for it
(``Fact.interval``), on which the proof that int64 arithmetic cannot overflow rests.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules import RecordError
from ecorules.rules._arrow import bools, fill_null, from_numbers, numbers, strings
from ecorules.rules._records import bounds, coerce
from ecorules.rules._schema import Fact
from ecorules.rules._types import DECIMAL_SCALE, INT64_MAX, Kind, date_to_days

# Python's whitespace (str.isspace), as an RE2 class: text made only of it is "missing".
# Listed, not found by testing all 1.1 M code points at import (0.06-0.3 s of every run);
# tests/fastcalc checks the list against str.isspace.
SPACE_CODEPOINTS = (
    0x9, 0xA, 0xB, 0xC, 0xD, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
    0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
)
_SPACE_CLASS = "".join(f"\\x{{{c:x}}}" for c in SPACE_CODEPOINTS)
_BLANK = f"^[{_SPACE_CLASS}]*$"
_INTEGER_FAST = r"^[+-]?[0-9]{1,18}$"
_DECIMAL_FAST = r"^[+-]?[0-9]{1,14}(\.[0-9]{1,4})?$"
_DATE_FAST = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DAY_ONE = date_to_days(dt.date(1, 1, 1))
_NARROW_INTS = (np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32)
_KERNEL_DTYPES = tuple(np.dtype(t) for t in (np.int64, *_NARROW_INTS))


@attrs.define
class Rejects:
    """Problems found in one column: parallel lists, one entry per rejected row."""

    rows: list = attrs.field(factory=list)  # int64 arrays
    values: list = attrs.field(factory=list)  # object arrays of str
    reasons: list = attrs.field(factory=list)  # object arrays of str

    def add(self, rows: np.ndarray, values, reasons) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return
        self.rows.append(rows)
        self.values.append(_as_objects(values, rows.size))
        self.reasons.append(_as_objects(reasons, rows.size))

    def missing(self, rows: np.ndarray) -> None:
        self.add(rows, "", "is missing")


def _as_objects(value, size: int) -> np.ndarray:
    if isinstance(value, str):
        out = np.empty(size, dtype=object)
        out[:] = value
        return out
    return np.asarray(value, dtype=object).reshape(size)


@attrs.frozen
class ValidColumn:
    """A column as the kernel reads it: ``values`` (None when no rule reads it) and, for a
    string fact, the distinct stripped texts its codes index."""

    values: np.ndarray | None
    labels: tuple[str, ...] | None = None


def _scaled(value: Decimal | int) -> int:
    return int(Fraction(value) * DECIMAL_SCALE)


# -- one value, as the single-case validator decides it ---------------------------------------
def check_value(fact: Fact, raw: Any) -> tuple[Any, str | None]:
    """(value, None), or (None, the reason) exactly as ``rules._records.coerce`` words it."""
    try:
        return coerce(fact, raw), None
    except RecordError as error:
        return None, error.message


def value_text(raw: Any) -> str:
    """How a rejected raw value is shown: text as is, "" for null, else str()."""
    if raw is None:
        return ""
    if isinstance(raw, float) and raw != raw:
        return ""
    return raw if isinstance(raw, str) else str(raw)


# -- normalising the input ---------------------------------------------------------------------
def as_column(raw: Any) -> np.ndarray | pa.Array | pa.ChunkedArray:
    """A numpy 1-D array or an Arrow array (chunked only if it has several chunks), without
    copying when possible."""
    if isinstance(raw, pa.ChunkedArray):  # several chunks: the caller cuts it into segments
        if raw.num_chunks == 1:
            return raw.chunk(0)
        return raw if raw.num_chunks else pa.array([], raw.type)
    if isinstance(raw, pa.Array):
        return raw
    module = type(raw).__module__
    if module.startswith("pandas"):
        dtype = getattr(raw, "dtype", None)
        if isinstance(dtype, np.dtype):
            array = raw.to_numpy()  # numeric columns: zero-copy
        else:
            try:  # extension types: string[pyarrow], Int64, boolean, category
                return pa.array(raw, from_pandas=True)
            except (pa.ArrowException, TypeError, ValueError):
                array = np.asarray(raw.to_numpy(dtype=object))
    else:
        array = np.asarray(raw)
    if array.ndim != 1:
        raise ValueError(f"a column must be one-dimensional, got shape {array.shape}")
    if array.dtype.kind == "O":
        converted = _object_to_arrow(array)
        if converted is not None:
            return converted
    return array


def _object_to_arrow(array: np.ndarray) -> pa.Array | None:
    """An object array holding only str (or only dates) and None as Arrow, else None.

    Other mixes stay Python objects for _records: converting [True, 1] or [1, 2.5] to one
    Arrow type would change what a value is (a bool is not a whole number for _records).
    """
    kinds = set(map(type, array.tolist()))  # exact types: a datetime is also a date
    if not (kinds <= {str, type(None)} or kinds <= {dt.date, type(None)}):
        return None
    try:
        converted = pa.array(array, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    t = converted.type
    if pa.types.is_string(t) or pa.types.is_null(t) or pa.types.is_date32(t):
        return converted
    return None


def _is_text(column) -> bool:
    if isinstance(column, pa.Array):
        t = column.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
    return column.dtype.kind == "U"


def _text_array(column) -> pa.Array:
    """Text as an Arrow string-like array (dictionary arrays are left as they are)."""
    if isinstance(column, pa.Array):
        if pa.types.is_string_view(column.type):
            return column.cast(pa.large_string())
        return column
    return pa.array(column, type=pa.string())


def _nulls(column) -> np.ndarray | None:
    """Rows that are null (Arrow nulls, float NaN, NaT), or None when there are none."""
    if isinstance(column, pa.Array):
        if pa.types.is_floating(column.type):  # NaN is missing, as in pandas
            mask = bools(column.is_null(nan_is_null=True))
            return mask if mask.any() else None
        if column.null_count == 0:
            return None
        return bools(column.is_null())
    if column.dtype.kind == "f":
        mask = np.isnan(column)
        return mask if mask.any() else None
    if column.dtype.kind == "M":
        mask = np.isnat(column)
        return mask if mask.any() else None
    return None


def _numpy_of(column) -> np.ndarray:
    """Numbers of an Arrow numeric array (nulls as 0), zero-copy when there is no null."""
    if isinstance(column, np.ndarray):
        return column
    if pa.types.is_boolean(column.type):
        return bools(column)
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return numbers(column)
    return column.to_numpy(zero_copy_only=False)


def _scalar_path(fact: Fact, raws: list, rows: np.ndarray, rejects: Rejects) -> tuple[np.ndarray, list]:
    """Check values one by one with _records; return the accepted rows and their values."""
    accepted_rows, accepted_values, bad_rows, bad_values, bad_reasons = [], [], [], [], []
    for row, raw in zip(rows.tolist(), raws, strict=True):
        value, problem = check_value(fact, raw)
        if problem is None:
            accepted_rows.append(row)
            accepted_values.append(value)
        else:
            bad_rows.append(row)
            bad_values.append(value_text(raw))
            bad_reasons.append(problem)
    rejects.add(np.array(bad_rows, dtype=np.int64), bad_values, bad_reasons)
    return np.array(accepted_rows, dtype=np.int64), accepted_values


def _python_values(column, rows: np.ndarray) -> list:
    """The Python values of ``rows`` (what a record built from the batch would hold)."""
    if isinstance(column, pa.Array):
        if pa.types.is_string_view(column.type):  # no take kernel for string_view
            column = column.cast(pa.large_string())
        return column.take(from_numbers(rows.astype(np.int64, copy=False))).to_pylist()
    picked = column[rows]
    if picked.dtype.kind == "M":
        unit = np.datetime_data(picked.dtype)[0]
        if unit not in ("Y", "M", "W", "D"):
            picked = picked.astype("M8[us]")  # datetimes, as pandas would hand them over
    return picked.tolist()


def _all_rows_scalar(fact: Fact, column, n: int, rejects: Rejects, kernel_dtype, nulls=None) -> np.ndarray:
    """Unusual column types: every value through _records (but ``nulls``, already reported)."""
    rows = np.arange(n, dtype=np.int64) if nulls is None else np.flatnonzero(~nulls)
    accepted, values = _scalar_path(fact, _python_values(column, rows), rows, rejects)
    out = np.zeros(n, dtype=kernel_dtype)
    if accepted.size:
        out[accepted] = [_kernel_value(fact, v) for v in values]
    return out


def _kernel_value(fact: Fact, value: Any) -> int:
    kind = fact.type.kind
    if kind is Kind.INTEGER:
        return int(value)
    if kind is Kind.DECIMAL:
        return _scaled(value)
    if kind is Kind.DATE:
        return date_to_days(value)
    if kind is Kind.BOOLEAN:
        return int(value)
    if kind is Kind.ENUM:
        return fact.type.choices.index(value)
    raise AssertionError(kind)


def _range_rejects(fact: Fact, rows: np.ndarray, values: np.ndarray, rejects: Rejects, show, source) -> None:
    """Rows of ``values`` (kernel units) outside the fact's bounds. Rare, so each is worded by
    _records itself from the raw cell of ``source`` (e.g. '-0' is '-0.0000 is below ...')."""
    low, high, shown_low, shown_high = bounds(fact)
    lo, hi = _kernel_value(fact, low), _kernel_value(fact, high)
    for mask, word, bound in ((values < lo, "below the minimum", shown_low),
                              (values > hi, "above the maximum", shown_high)):
        if not mask.any():
            continue
        picked = rows[mask]
        raws = _python_values(source, picked)
        reasons = []
        for raw, value in zip(raws, values[mask].tolist(), strict=True):
            problem = check_value(fact, raw)[1]
            reasons.append(problem or f"{show(value)} is {word} {bound}")
        rejects.add(picked, [value_text(v) for v in raws], reasons)


def _out_of_range(values: np.ndarray, lo: int, hi: int) -> np.ndarray | None:
    """Mask of values outside [lo, hi], or None when the dtype cannot leave it."""
    if values.dtype.kind in "iu":
        info = np.iinfo(values.dtype)
        if lo <= info.min and info.max <= hi:
            return None
        lo, hi = max(lo, int(info.min)), min(hi, int(info.max))
        if lo > hi:
            return np.ones(values.shape, dtype=bool)
        lo, hi = values.dtype.type(lo), values.dtype.type(hi)
    mask = (values < lo) | (values > hi)
    return mask if mask.any() else None


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
        return _parsed_text(fact, _text_array(column), n, rejects, _INTEGER_FAST, _parse_integers_checked, np.int64)
    return _all_rows_scalar(fact, column, n, rejects, np.int64, nulls)


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


def _parse_integers(text: pa.Array) -> np.ndarray:
    text = pc.replace_substring_regex(text, r"^\+", "")
    return numbers(pc.cast(text, pa.int64()))


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
def _parsed_text(fact: Fact, text: pa.Array, n: int, rejects: Rejects, pattern: str, parse, dtype) -> np.ndarray:
    """Fast path for text matching ``pattern`` (parsed by ``parse``), _records for the rest."""
    if pa.types.is_dictionary(text.type):
        text = text.cast(text.type.value_type)
    out = np.zeros(n, dtype=dtype)
    fast = fill_null(pc.match_substring_regex(text, pattern), False)
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


def _parse_integers_checked(text: pa.Array):
    return _parse_integers(text), None


def _parse_decimals_checked(text: pa.Array):
    return _parse_decimals(text), None


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
        values = numbers(fill_null(column, 0).view(pa.int32()))
        return _checked_days(fact, values, nulls, rejects, column)
    if isinstance(column, np.ndarray) and column.dtype == np.dtype("M8[D]"):
        values = column.view(np.int64)
        return _checked_days(fact, values, nulls, rejects, column)
    if _is_text(column):
        return _parsed_text(fact, _text_array(column), n, rejects, _DATE_FAST, _parse_dates, np.int64)
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


# -- booleans, enums and strings: decided once per distinct value ---------------------------------------
def _booleans(fact: Fact, column, n: int, rejects: Rejects) -> np.ndarray:
    if isinstance(column, np.ndarray) and column.dtype == np.bool_:
        values = column.view(np.uint8)
        if n and values.max() > 1:  # a bool array whose bytes are not 0/1 (built by a view)
            values = (values != 0).view(np.uint8)
        return values
    if isinstance(column, pa.Array) and pa.types.is_boolean(column.type):
        nulls = _nulls(column)
        if nulls is not None:
            rejects.missing(np.flatnonzero(nulls))
        return bools(column).view(np.uint8)
    return _by_distinct_value(fact, column, n, rejects, np.uint8)


def _by_distinct_value(fact: Fact, column, n: int, rejects: Rejects, dtype) -> np.ndarray:
    """Text columns: dictionary-encode, check each distinct value with _records, map back."""
    text = column
    if isinstance(text, pa.Array) and pa.types.is_null(text.type):
        rejects.missing(np.arange(n))
        return np.zeros(n, dtype=dtype)
    if not _is_text(text):
        return _all_rows_scalar(fact, column, n, rejects, dtype)
    encoded = _text_array(text)
    if not pa.types.is_dictionary(encoded.type):
        encoded = pc.dictionary_encode(encoded)
    dictionary = encoded.dictionary.to_pylist()
    indices = encoded.indices
    codes = np.empty(len(dictionary) + 1, dtype=np.int64)  # the last entry: null
    problems = {}
    for position, raw in enumerate(dictionary):
        value, problem = check_value(fact, raw)
        if problem is None:
            codes[position] = _kernel_value(fact, value)
        else:
            codes[position] = 0
            problems[position] = (value_text(raw), problem)
    codes[-1] = 0
    index = numbers(indices, fill=len(dictionary))
    if indices.null_count:
        rejects.missing(np.flatnonzero(index == len(dictionary)))
    if problems:
        bad = np.fromiter(problems, dtype=np.int64, count=len(problems))
        flag = np.zeros(len(dictionary) + 1, dtype=bool)
        flag[bad] = True
        rows = np.flatnonzero(flag[index])
        row_codes = index[rows].tolist()
        rejects.add(rows, [problems[c][0] for c in row_codes], [problems[c][1] for c in row_codes])
    return codes.astype(dtype)[index]


def _enums(fact: Fact, column, n: int, rejects: Rejects) -> np.ndarray:
    choices = fact.type.choices
    dtype = np.int8 if len(choices) <= 127 else np.int16 if len(choices) <= 32767 else np.int32
    if isinstance(column, pa.Array) and pa.types.is_dictionary(column.type) and column.null_count == 0 \
            and column.dictionary.to_pylist() == list(choices):
        return numbers(column.indices)  # codes already: zero-copy
    if isinstance(column, pa.Array) and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        # plain text: one hash lookup per row gives the code; the rest (spaces, typos, nulls)
        # is decided per distinct value, exactly
        codes = pc.index_in(column, value_set=strings(list(choices)).cast(column.type))
        if codes.null_count == 0:
            return numbers(codes)
        miss = np.flatnonzero(bools(codes.is_null()))
        out = numbers(codes).copy()
        residue = Rejects()
        decided = _by_distinct_value(fact, column.take(from_numbers(miss)), miss.size, residue, np.int32)
        out[miss] = decided
        for rows, values, reasons in zip(residue.rows, residue.values, residue.reasons, strict=True):
            rejects.add(miss[rows], values, reasons)
        return out
    return _by_distinct_value(fact, column, n, rejects, dtype)


def _strings(fact: Fact, column, n: int, rejects: Rejects, read: bool) -> ValidColumn:
    """Text facts: missing, non-text and USCC problems; codes and labels if rules read it."""
    if isinstance(column, pa.Array) and pa.types.is_null(column.type):
        rejects.missing(np.arange(n))
        return ValidColumn(np.zeros(n, np.int32) if read else None, () if read else None)
    if not _is_text(column):
        return _strings_one_by_one(fact, column, n, rejects, read)
    text = _text_array(column)
    if read:
        return _string_codes(fact, text, n, rejects)
    plain = text.cast(text.type.value_type) if pa.types.is_dictionary(text.type) else text
    if fact.format == "uscc":
        from ecorules.rules._uscc import uscc_problems

        suspect = np.flatnonzero(uscc_problems(plain))
    else:
        blank = fill_null(pc.match_substring_regex(plain, _BLANK), True)
        suspect = np.flatnonzero(bools(blank))
    if suspect.size:
        _scalar_path(fact, _python_values(plain, suspect), suspect, rejects)
    return ValidColumn(None)


def _strings_one_by_one(fact: Fact, column, n: int, rejects: Rejects, read: bool) -> ValidColumn:
    """Columns of mixed Python objects (or numbers) for a text fact: _records, row by row."""
    rows = np.arange(n, dtype=np.int64)
    accepted, values = _scalar_path(fact, _python_values(column, rows), rows, rejects)
    if not read:
        return ValidColumn(None)
    labels: dict[str, int] = {}
    codes = np.zeros(n, dtype=np.int32)
    if accepted.size:
        codes[accepted] = [labels.setdefault(v, len(labels)) for v in values]
    return ValidColumn(codes, tuple(labels))


def _string_codes(fact: Fact, text: pa.Array, n: int, rejects: Rejects) -> ValidColumn:
    """Dictionary codes of stripped texts (the values rules compare), one check per text."""
    encoded = text if pa.types.is_dictionary(text.type) else pc.dictionary_encode(text)
    dictionary = encoded.dictionary.to_pylist()
    labels: dict[str, int] = {}
    remap = np.zeros(len(dictionary) + 1, dtype=np.int32)
    problems = {}
    for position, raw in enumerate(dictionary):
        value, problem = check_value(fact, raw)
        if problem is None:
            remap[position] = labels.setdefault(value, len(labels))
        else:
            problems[position] = (value_text(raw), problem)
    indices = encoded.indices
    index = numbers(indices, fill=len(dictionary))
    if indices.null_count:
        rejects.missing(np.flatnonzero(index == len(dictionary)))
    if problems:
        flag = np.zeros(len(dictionary) + 1, dtype=bool)
        flag[list(problems)] = True
        rows = np.flatnonzero(flag[index])
        row_codes = index[rows].tolist()
        rejects.add(rows, [problems[c][0] for c in row_codes], [problems[c][1] for c in row_codes])
    identity = len(labels) == len(dictionary) and not problems and \
        np.array_equal(remap[:-1], np.arange(len(dictionary), dtype=np.int32))
    codes = index if identity and index.dtype == np.int32 else remap[index]
    return ValidColumn(codes, tuple(labels))


# -- the batch ------------------------------------------------------------------------------------------
def validate_column(fact: Fact, raw: Any, n: int, read: bool, rejects: Rejects) -> ValidColumn:
    """The kernel's view of one column; problems go to ``rejects``."""
    column = as_column(raw)
    if len(column) != n:
        raise ValueError(f"column {fact.name!r} has {len(column)} rows, expected {n}")
    kind = fact.type.kind
    if kind is Kind.STRING:
        return _strings(fact, column, n, rejects, read)
    if kind is Kind.INTEGER:
        values = _integers(fact, column, n, rejects)
    elif kind is Kind.DECIMAL:
        values = _decimals(fact, column, n, rejects)
    elif kind is Kind.DATE:
        values = _dates(fact, column, n, rejects)
    elif kind is Kind.BOOLEAN:
        values = _booleans(fact, column, n, rejects)
    else:
        values = _enums(fact, column, n, rejects)
    if values.dtype not in _KERNEL_DTYPES:
        values = values.astype(np.int64)
    if not values.flags.c_contiguous:
        values = np.ascontiguousarray(values)
    return ValidColumn(values if read else None)


__all__ = ["Rejects", "ValidColumn", "as_column", "bounds", "check_value", "validate_column", "value_text"]
