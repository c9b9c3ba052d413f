"""What the per-kind column validators share: the reject list, ``ValidColumn`` and the helpers.

``_validate_numbers.py`` and ``_validate_coded.py`` check columns of one fact kind each; the
pieces they all use are here, so each of those files reads on its own: ``Rejects`` (the
problems of a column), ``ValidColumn`` (what the kernel reads), the one-value decision of
``rules._records`` (``check_value``, ``value_text``) and the paths that defer to it
(``_scalar_path``, ``_all_rows_scalar``), null masks, range checks and kernel values.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
from ecorules.rules import RecordError
from ecorules.rules._arrow import bools, from_bools, from_numbers, numbers
from ecorules.rules._records import bounds, coerce
from ecorules.rules._schema import Fact
from ecorules.rules._types import DECIMAL_SCALE, Kind, date_to_days

_NARROW_INTS = (np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32)


MISSING = "is missing"  # the reason rules._records gives for an empty cell (None, NaN, blank text)


@attrs.define
class Rejects:
    """Problems found in one column: parallel lists, one entry per rejected row.

    ``absent`` is a list for an optional fact: an empty cell is then no problem but a row
    without a value, recorded there instead. Empty cells are told apart by the reason
    _records gives them, wherever they were found (vectorized null masks or one value at a
    time), so what counts as empty is decided in one place, as for a required fact.
    """

    rows: list = attrs.field(factory=list)  # int64 arrays
    values: list = attrs.field(factory=list)  # object arrays of str
    reasons: list = attrs.field(factory=list)  # object arrays of str
    absent: list | None = None  # int64 arrays, for an optional fact

    def add(self, rows: np.ndarray, values, reasons) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return
        values, reasons = _as_objects(values, rows.size), _as_objects(reasons, rows.size)
        if self.absent is not None:
            empty = reasons == MISSING
            if empty.any():
                self.absent.append(rows[empty])
                keep = ~empty
                rows, values, reasons = rows[keep], values[keep], reasons[keep]
                if rows.size == 0:
                    return
        self.rows.append(rows)
        self.values.append(values)
        self.reasons.append(reasons)

    def missing(self, rows: np.ndarray) -> None:
        if self.absent is not None:
            rows = np.asarray(rows, dtype=np.int64)
            if rows.size:
                self.absent.append(rows)
            return
        self.add(rows, "", MISSING)


def _as_objects(value, size: int) -> np.ndarray:
    if isinstance(value, str):
        out = np.empty(size, dtype=object)
        out[:] = value
        return out
    return np.asarray(value, dtype=object).reshape(size)


@attrs.frozen
class ValidColumn:
    """A column as the kernel reads it: ``values`` (None when no rule reads it), for a
    string fact the distinct stripped texts its codes index, and for an optional fact
    ``present`` (uint8, 0 where the cell is empty; ``values`` holds 0 there)."""

    values: np.ndarray | None
    labels: tuple[str, ...] | None = None
    present: np.ndarray | None = None



@attrs.frozen(eq=False)
class Validated:
    """A column its caller has already validated with ``validate_column`` for ``fact``, its
    rejected rows left out, so that every row is accepted: ``Program.score`` binds
    ``column`` as it is instead of validating the values a second time (the case stage
    checks the case table once, then scores it with several programs and periods). The
    rejects stay the caller's: it must have reported them with their rows and columns."""

    fact: Fact
    column: ValidColumn
    n: int
    # rows the caller did not find valid, and their cells, for Program.score to check (with
    # ValidColumn(None): a column the kernel does not read, such as the registry's USCCs)
    unchecked: tuple[np.ndarray, pa.Array] | None = None

    def __len__(self) -> int:
        return self.n

    def rows(self, start: int, stop: int) -> Validated:
        """Rows ``start:stop`` (views, no copies)."""
        c = self.column
        unchecked = None
        if self.unchecked is not None:
            rows, cells = self.unchecked
            inside = (rows >= start) & (rows < stop)
            unchecked = (rows[inside] - start, cells.filter(from_bools(inside)))
        return Validated(self.fact, ValidColumn(None if c.values is None else c.values[start:stop], c.labels,
                                                None if c.present is None else c.present[start:stop]), stop - start,
                         unchecked)

    @classmethod
    def taken(cls, fact: Fact, column: ValidColumn, rows: np.ndarray | None, n: int | None = None) -> Validated:
        """The rows ``rows`` of a validated ``column``; ``rows`` None: all ``n`` of them, uncopied."""
        if rows is None:
            return cls(fact, column, n)
        return cls(fact, ValidColumn(None if column.values is None else column.values[rows], column.labels,
                                     None if column.present is None else column.present[rows]), int(rows.size))

def _scaled(value: Decimal | int) -> int:
    return int(Fraction(value) * DECIMAL_SCALE)


# -- one value, as the single-case validator decides it ---------------------------------------
def check_value(fact: Fact, raw: Any) -> tuple[Any, str | None]:
    """(value, None), or (None, the reason) exactly as ``rules._records.coerce`` words it.

    An empty cell of an optional fact, which coerce accepts as None, is (None, MISSING) here
    too: whether that is a problem is for ``Rejects`` to say, as for the vectorized nulls.
    """
    try:
        value = coerce(fact, raw)
    except RecordError as error:
        return None, error.message
    return (None, MISSING) if value is None else (value, None)


def value_text(raw: Any) -> str:
    """How a rejected raw value is shown: text as is, "" for null, else str()."""
    if raw is None:
        return ""
    if isinstance(raw, float) and raw != raw:
        return ""
    return raw if isinstance(raw, str) else str(raw)


# -- shared by the column kinds ----------------------------------------------------------------
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
    decided: dict = {}  # a bad registry repeats its bad cells ('-1', '1.5'): each decided once
    for row, raw in zip(rows.tolist(), raws, strict=True):
        key = (type(raw), raw) if isinstance(raw, str | int) else None  # 1, 1.0 and True differ
        if key is None:
            value, problem = check_value(fact, raw)
        elif (known := decided.get(key)) is not None:
            value, problem = known
        else:
            value, problem = decided[key] = check_value(fact, raw)
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
        worded: dict = {}  # a value out of range is often the same one (-1, 99999)
        for raw, value in zip(raws, values[mask].tolist(), strict=True):
            key = (type(raw), raw, value)
            if key not in worded:
                worded[key] = check_value(fact, raw)[1] or f"{show(value)} is {word} {bound}"
            reasons.append(worded[key])
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

__all__ = ["MISSING", "Rejects", "ValidColumn", "Validated", "check_value", "value_text"]
