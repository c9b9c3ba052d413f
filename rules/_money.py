"""Money: the unit an amount is produced in and how it is rounded there, once.

Arithmetic in expressions is exact (``_evaluate.py`` computes with Fractions), so nothing is
rounded until a finding's amount is produced. There it is rounded once, to the unit and by
the mode its policy (or rule) declares::

    rounding: {unit: fen, mode: half_up}

The default is whole yuan, half up (四舍五入), which is what every amount of the shipped
policies already is. Rounding at each step instead makes the result depend on the order of
operations: 0.475 yuan rounded to the fen, the jiao and the yuan in turn is 1 yuan, and
``rate / 3 * base`` differs from ``rate * base / 3``.

The ledger keeps the integer an amount is in its unit (fen where the policy says fen): see
:func:`in_units`; in yuan the amount is an ``int`` (yuan) or a ``Decimal`` with two places
(fen), so sums of amounts stay exact.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import attrs

# The units an amount can be produced in, as the number of them in one yuan.
UNITS = {"yuan": 1, "fen": 100}

# How the exact value is brought to a whole number of units. Amounts are never negative
# (the loader refuses one that can be), where half_up is 四舍五入; for other values each mode
# is symmetric about zero, as round() of the language is.
ROUNDING_MODES = {
    "half_up": "halves away from zero (四舍五入), the default",
    "half_even": "halves to the even neighbour (banker's rounding)",
    "down": "towards zero (truncation: 0.999 yuan is 0)",
    "up": "away from zero (any fraction of a unit is a whole unit more)",
}


@attrs.frozen
class Rounding:
    """Where and how a policy's amounts are rounded: to ``unit`` by ``mode``."""

    unit: str = attrs.field(default="yuan", validator=attrs.validators.in_(tuple(UNITS)))
    mode: str = attrs.field(default="half_up", validator=attrs.validators.in_(tuple(ROUNDING_MODES)))

    @property
    def per_yuan(self) -> int:
        """How many of the unit make one yuan (1 or 100)."""
        return UNITS[self.unit]

    def __str__(self) -> str:
        return f"{self.unit}, {self.mode}"


YUAN = Rounding()


def round_by(value: Fraction | int | Decimal, mode: str) -> int:
    """``value`` rounded to a whole number by ``mode`` (one of ROUNDING_MODES, or 'floor' and
    'ceil' for the language's floor() and ceil()), exactly."""
    exact = Fraction(value)
    floor = exact.numerator // exact.denominator
    if floor == exact:
        return floor
    if mode == "floor":
        return floor
    if mode == "ceil":
        return floor + 1
    toward_zero = floor if exact > 0 else floor + 1
    away = toward_zero + (1 if exact > 0 else -1)
    if mode == "down":
        return toward_zero
    if mode == "up":
        return away
    excess = abs(exact - toward_zero) * 2  # 1 at a half, below 1 nearer zero
    if excess != 1:
        return away if excess > 1 else toward_zero
    if mode == "half_up":
        return away
    if mode == "half_even":
        return toward_zero if toward_zero % 2 == 0 else away
    raise ValueError(f"unknown rounding mode {mode!r}; one of {', '.join(ROUNDING_MODES)}")


def in_units(value: Fraction | int | Decimal, rounding: Rounding) -> int:
    """The exact amount ``value`` (yuan) as the whole number of ``rounding.unit`` the ledger
    keeps: rounded here, once."""
    return round_by(Fraction(value) * rounding.per_yuan, rounding.mode)


def to_yuan(units: int, rounding: Rounding) -> int | Decimal:
    """A whole number of the unit back in yuan, exactly: an int for yuan, a two-place
    Decimal for fen (0.48)."""
    if rounding.per_yuan == 1:
        return int(units)
    return Decimal(int(units)).scaleb(-2)


def produced(value: Fraction | int | Decimal, rounding: Rounding) -> int | Decimal:
    """The amount a finding carries: ``value`` rounded once by ``rounding``, in yuan."""
    return to_yuan(in_units(value, rounding), rounding)


__all__ = ["ROUNDING_MODES", "UNITS", "YUAN", "Rounding", "in_units", "produced", "round_by", "to_yuan"]
