"""Amounts as the results database and the commands show them: an integer of fen, and the
unit it is shown in (see ``store.sqlite``'s *Money*).

Totals are kept in fen while they are summed, whatever the units of their parts, so that a
sum of yuan and fen findings is exact; a total is shown in fen if any of its parts is, so a
run of yuan policies alone shows the same whole yuan as ever.
"""

from __future__ import annotations

from decimal import Decimal

from ecorules.rules._money import UNITS

FEN_PER_YUAN = UNITS["fen"]
YUAN, FEN = "yuan", "fen"


def unit_name(per_yuan: int) -> str:
    """The unit whose ``per_yuan`` make a yuan (1: yuan, 100: fen)."""
    return next(name for name, count in UNITS.items() if count == per_yuan)


def to_fen(amount: int, per_yuan: int) -> int:
    """``amount`` whole units (``per_yuan`` of them a yuan) as fen."""
    return int(amount) * (FEN_PER_YUAN // per_yuan)


def in_yuan(fen: int, unit: str) -> int | Decimal:
    """The exact value in yuan: an int where the unit is yuan, a two-place Decimal where fen."""
    if unit == YUAN:
        whole, rest = divmod(int(fen), FEN_PER_YUAN)
        if rest:
            raise ValueError(f"{fen} fen is not a whole number of yuan: its unit is fen")
        return whole
    return Decimal(int(fen)).scaleb(-2)


def yuan_json(fen: int, unit: str) -> int | str:
    """For JSON and the ledger's ``*_yuan`` columns: an integer of yuan, or the exact text of
    a two-place decimal ("0.48", "3.00"), never a float a reader would round."""
    value = in_yuan(fen, unit)
    return value if isinstance(value, int) else str(value)


def yuan_text(fen: int, unit: str) -> str:
    """For people: 1,000,000 or 1,000,000.48 (no unit word)."""
    return f"{in_yuan(fen, unit):,}"


def sum_unit(*units: str) -> str:
    """The unit of a total of parts in ``units``: fen if any part is."""
    return FEN if FEN in units else YUAN


__all__ = ["FEN", "FEN_PER_YUAN", "YUAN", "in_yuan", "sum_unit", "to_fen", "unit_name", "yuan_json", "yuan_text"]
