"""Turn one raw record (JSON values, or text from a CSV cell) into checked fact values.

The same rules hold for single cases and for registry rows: the batch validator in
``fastcalc`` implements them vectorized and is tested against this module. A problem raises
:class:`RecordError` naming the field, the value and the reason; nothing is guessed.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from ._choices import not_allowed, resolve
from ._errors import RecordError
from ._schema import Fact
from ._types import DECIMAL_PLACES, Kind, days_to_date

TRUE_WORDS = frozenset({"true", "1", "是", "yes", "y", "t"})
FALSE_WORDS = frozenset({"false", "0", "否", "no", "n", "f"})
# "3.0" is 3, as the float 3.0 of a Parquet or SQLite REAL column is: Excel and SQLite write
# whole numbers so. "3.5", "3." and "3e0" are not whole numbers as written.
_INTEGER_TEXT = re.compile(r"^[+-]?\d+(?:\.0+)?$")
# How bureau systems write dates besides ISO: 2016年3月1日 (with or without leading zeros).
_CHINESE_DATE = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$")


def coerce(fact: Fact, raw: Any) -> Any:
    """The value of ``fact`` in ``raw`` (None for an empty optional fact), or RecordError."""
    if raw is None or (isinstance(raw, str) and not raw.strip()) or _is_nan(raw):
        # NaN is how pandas marks a gap in a numeric column
        if fact.optional:
            return None
        raise RecordError("is missing", fact.name, raw)
    try:
        value = _COERCERS[fact.type.kind](fact, raw.strip() if isinstance(raw, str) else raw)
    except ArithmeticError:  # e.g. Decimal('1e30') overflows the quantisation context
        raise RecordError(f"must be a decimal number, got {raw!r}", fact.name, raw) from None
    _check_range(fact, value)
    return value


def _is_nan(raw: Any) -> bool:
    return isinstance(raw, float) and raw != raw


def bounds(fact: Fact) -> tuple[Any, Any, str, str]:
    """The range a value must lie in, and how each end is shown in messages.

    A number or date without a declared min/max is still held to the range the checker
    assumed for it (``Fact.interval``): that assumption is what proves that no expression
    can overflow, in the batch kernel as in Python.
    """
    low, high = fact.interval
    if fact.type.kind is Kind.DATE:
        low, high = days_to_date(low), days_to_date(high)
    elif fact.type.kind is Kind.DECIMAL:
        low, high = (Decimal(v.numerator) / Decimal(v.denominator) for v in (Fraction(low), Fraction(high)))
    shown_low = str(fact.min) if fact.min is not None else str(low)
    shown_high = str(fact.max) if fact.max is not None else str(high)
    return low, high, shown_low, shown_high


def coerce_record(
    facts: Mapping[str, Fact], record: Mapping[str, Any], needed: Iterable[str] | None = None
) -> dict[str, Any]:
    """Checked values of the ``needed`` facts (all facts by default) of ``record``."""
    if not isinstance(record, Mapping):
        raise RecordError(f"a record must be a mapping of field names to values, got {type(record).__name__}")
    values = {}
    for name in needed if needed is not None else facts:
        if name not in record and not facts[name].optional:
            raise RecordError("is missing", name)
        values[name] = coerce(facts[name], record.get(name))
    return values


def _folded(raw: str) -> str:
    """Text as typed on a Chinese keyboard read as ASCII: full-width digits, letters, signs
    and points (３，Ａ，－，．) become 3, A, -, . (NFKC), as for every source."""
    return unicodedata.normalize("NFKC", raw) if not raw.isascii() else raw


def _whole(raw: Any) -> int | None:
    """The whole number ``raw`` is, from any source, or None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and math.isfinite(raw) and raw == int(raw):
        return int(raw)  # pandas turns an integer column with a gap into float64
    if isinstance(raw, Decimal) and raw.is_finite() and raw == raw.to_integral_value():
        return int(raw)
    if isinstance(raw, str):
        text = _folded(raw)
        if _INTEGER_TEXT.match(text):
            return int(text.partition(".")[0])
    return None


def _integer(fact: Fact, raw: Any) -> int:
    value = _whole(raw)
    if value is None:
        raise RecordError(f"must be a whole number, got {raw!r}", fact.name, raw)
    return value


def _decimal(fact: Fact, raw: Any) -> Decimal:
    if isinstance(raw, bool) or isinstance(raw, float):
        # a float has already lost exactness: ask for text or an exact number instead
        raise RecordError(f"must be an exact decimal (text or integer), got {raw!r}", fact.name, raw)
    try:
        value = Decimal(_folded(raw) if isinstance(raw, str) else raw) if isinstance(raw, int | str | Decimal) else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise RecordError(f"must be a decimal number, got {raw!r}", fact.name, raw)
    if -value.as_tuple().exponent > DECIMAL_PLACES:
        raise RecordError(f"has more than {DECIMAL_PLACES} decimal places: {raw!r}", fact.name, raw)
    return value.quantize(Decimal(1).scaleb(-DECIMAL_PLACES))


def _boolean(fact: Fact, raw: Any) -> bool:
    """true/false words, or a whole number 0 or 1: SQLite and many exports write booleans as
    0/1 integers, so 1 from a Parquet column or the library means what "1" in a CSV does."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        word = _folded(raw).lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    if _whole(raw) in (0, 1):
        return _whole(raw) == 1
    raise RecordError(f"must be true or false, got {raw!r}", fact.name, raw)


def _date(fact: Fact, raw: Any) -> dt.date:
    if isinstance(raw, dt.datetime):
        raise RecordError(f"must be a date without time, got {raw!r}", fact.name, raw)
    if isinstance(raw, dt.date):
        return raw
    if isinstance(raw, str):
        raw = _folded(raw)
        written = _CHINESE_DATE.match(raw)
        try:
            if written:
                return dt.date(*map(int, written.groups()))
            if len(raw) == 10:  # fromisoformat also takes 20120414, which no form of ours is
                return dt.date.fromisoformat(raw)
        except ValueError:
            pass
    raise RecordError(f"must be a date YYYY-MM-DD, got {raw!r}", fact.name, raw)


USCC_INVALID = "is not a valid 统一社会信用代码: "  # a bad USCC's reason: this, then diagnose_uscc's


def _string(fact: Fact, raw: Any) -> str:
    if not isinstance(raw, str):
        raise RecordError(f"must be text, got {raw!r}", fact.name, raw)
    if fact.format == "uscc":
        from ._uscc import uscc_problem

        raw = _folded(raw)  # a code typed in full width is the same code
        problem = uscc_problem(raw)
        if problem:
            raise RecordError(f"{USCC_INVALID}{problem}", fact.name, raw)
    return raw


def _enum(fact: Fact, raw: Any) -> str:
    """The canonical value: registries write aliases, full-width forms and stray spaces."""
    value = resolve(fact, raw) if isinstance(raw, str) else None
    if value is None:
        raise RecordError(not_allowed(fact, raw), fact.name, raw)
    return value


def _check_range(fact: Fact, value: Any) -> None:
    if fact.type.kind not in (Kind.INTEGER, Kind.DECIMAL, Kind.DATE):
        return
    low, high, shown_low, shown_high = bounds(fact)
    if value < low:
        raise RecordError(f"{value} is below the minimum {shown_low}", fact.name, value)
    if value > high:
        raise RecordError(f"{value} is above the maximum {shown_high}", fact.name, value)


_COERCERS = {
    Kind.INTEGER: _integer,
    Kind.DECIMAL: _decimal,
    Kind.BOOLEAN: _boolean,
    Kind.DATE: _date,
    Kind.STRING: _string,
    Kind.ENUM: _enum,
}
