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

The checks are split by what the kernel reads: ``_validate_numbers.py`` (integers, decimals,
dates), ``_validate_coded.py`` (booleans, enums, strings/USCC), on top of the helpers of
``_validate_common.py``. This module turns the input into a column (``as_column``) and
dispatches on the fact's kind (``validate_column``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
from ecorules.rules._arrow import from_bools, from_numbers
from ecorules.rules._schema import Fact
from ecorules.rules._types import Kind

from ._validate_coded import _booleans, _enums, _strings
from ._validate_common import _NARROW_INTS, Rejects, ValidColumn
from ._validate_numbers import _dates, _decimals, _integers

_KERNEL_DTYPES = tuple(np.dtype(t) for t in (np.int64, *_NARROW_INTS))


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
    if isinstance(raw, np.ma.MaskedArray):
        return _unmasked(raw)
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


def _unmasked(raw: np.ma.MaskedArray) -> np.ndarray | pa.Array:
    """A masked array's masked cells are empty cells (never the data hidden under the mask)."""
    data = np.asarray(raw.data)
    if data.ndim != 1:
        raise ValueError(f"a column must be one-dimensional, got shape {data.shape}")
    mask = np.ma.getmaskarray(raw)
    if not mask.any():
        return as_column(data)
    # numbers and days from buffers: pa.array(data, mask=...) imports pandas (0.2-0.5 s)
    if data.dtype.kind in "iuf":
        return from_numbers(data, mask=mask)
    if data.dtype.kind == "b":
        return from_bools(data, mask=mask)
    if data.dtype == np.dtype("M8[D]"):
        return from_numbers(data.view(np.int64).astype(np.int32), mask=mask).view(pa.date32())
    if data.dtype.kind != "O":
        try:
            return pa.array(data, mask=mask)
        except (pa.ArrowException, TypeError, ValueError):
            pass
    objects = data.astype(object)
    objects[mask] = None
    return as_column(objects)


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


# -- the batch ------------------------------------------------------------------------------------------
def validate_column(fact: Fact, raw: Any, n: int, read: bool, rejects: Rejects) -> ValidColumn:
    """The kernel's view of one column; problems go to ``rejects``.

    An optional fact's empty cells are no problem: they come back as ``present`` 0 with the
    placeholder value 0, on which rules compute harmlessly, since the checker lets them read
    the fact only where is_set() guards it (the guard then masks the result).
    """
    column = as_column(raw)
    if len(column) != n:
        raise ValueError(f"column {fact.name!r} has {len(column)} rows, expected {n}")
    if not fact.optional:
        return _validate_kind(fact, column, n, read, rejects)
    if n > 1 and isinstance(column, pa.Array | pa.ChunkedArray) and column.null_count == n:
        absent = _absent(fact, column, n, read)
        if absent is not None:
            return absent
    found = Rejects(absent=[])
    valid = _validate_kind(fact, column, n, read, found)
    for rows, values, reasons in zip(found.rows, found.values, found.reasons, strict=True):
        rejects.add(rows, values, reasons)
    if not read:
        return valid
    present = np.ones(n, dtype=np.uint8)
    values = valid.values
    if found.absent:
        empty = np.concatenate(found.absent)
        present[empty] = 0
        if values[empty].any():  # e.g. NaT in a zero-copy datetime64 view: never written into
            values = values.copy()
            values[empty] = 0
    return ValidColumn(values, valid.labels, present)


def _absent(fact: Fact, column, n: int, read: bool) -> ValidColumn | None:
    """An optional fact's column with no value at all (a registry without the column, which
    the reader fills with nulls in every batch: ``may_be_absent``): zeros, as the general
    path gives them (the dtype and labels of one such row), without encoding and scattering
    ``n`` nulls; together that cost ~2% of a clean CSV run's CPU. None: the general path."""
    one = Rejects(absent=[])
    probe = _validate_kind(fact, as_column(column.slice(0, 1)), 1, read, one)
    if one.rows or not one.absent:
        return None
    if not read:
        return probe
    return ValidColumn(np.zeros(n, probe.values.dtype), probe.labels, np.zeros(n, np.uint8))


def _validate_kind(fact: Fact, column, n: int, read: bool, rejects: Rejects) -> ValidColumn:
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


__all__ = ["as_column", "validate_column"]
