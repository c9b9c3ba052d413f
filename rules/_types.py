"""The value types of the policy language and their exact representations.

| type     | in Python             | in the kernel and in durable-rules             |
|----------|-----------------------|------------------------------------------------|
| integer  | ``int``               | int64                                          |
| decimal  | ``Decimal``, 4 places | int64 holding value x 10**4                    |
| boolean  | ``bool``              | 0 / 1                                          |
| date     | ``datetime.date``     | days since 1970-01-01                          |
| enum     | ``str`` (a choice)    | code = index of the choice in declared order   |
| string   | ``str``               | dictionary code of the batch                   |

Decimals have a fixed scale of :data:`DECIMAL_PLACES` places. Every multiplication and
division rounds its exact result half away from zero (四舍五入) to that scale, so both
evaluators agree to the last digit and money never passes through float.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from fractions import Fraction

import attrs

DECIMAL_PLACES = 4
DECIMAL_SCALE = 10**DECIMAL_PLACES
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
EPOCH = dt.date(1970, 1, 1)
# Python's date type bounds what a date expression may reach.
DATE_MIN = dt.date(1, 1, 1)
DATE_MAX = dt.date(9999, 12, 31)


class Kind(enum.Enum):
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    STRING = "string"
    DATE = "date"
    ENUM = "enum"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Type:
    """A value type; an enum type also knows its choices, in declared order."""

    kind: Kind
    choices: tuple[str, ...] | None = None

    @property
    def numeric(self) -> bool:
        return self.kind in (Kind.INTEGER, Kind.DECIMAL)

    @property
    def categorical(self) -> bool:
        """Compared only for (in)equality: strings and enums."""
        return self.kind in (Kind.STRING, Kind.ENUM)

    def __str__(self) -> str:
        return str(self.kind)


INTEGER = Type(Kind.INTEGER)
DECIMAL = Type(Kind.DECIMAL)
BOOLEAN = Type(Kind.BOOLEAN)
STRING = Type(Kind.STRING)
DATE = Type(Kind.DATE)


def enum_type(choices) -> Type:
    return Type(Kind.ENUM, tuple(choices))


def round_half_away(value: Fraction) -> int:
    """Round to the nearest integer, halves away from zero (the Chinese 四舍五入)."""
    magnitude = abs(value)
    whole = magnitude.numerator // magnitude.denominator
    if (magnitude - whole) * 2 >= 1:
        whole += 1
    return whole if value >= 0 else -whole


def to_decimal(value: Fraction | int | Decimal) -> Decimal:
    """Exact value -> a Decimal with exactly DECIMAL_PLACES places, rounded half away."""
    scaled = round_half_away(Fraction(value) * DECIMAL_SCALE)
    return Decimal(scaled).scaleb(-DECIMAL_PLACES)


def date_to_days(value: dt.date) -> int:
    return (value - EPOCH).days


def days_to_date(days: int) -> dt.date:
    return EPOCH + dt.timedelta(days=days)
