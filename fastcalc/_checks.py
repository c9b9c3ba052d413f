"""The rejects of rows that fail a check (rules/_checks.py), from the kernel's ``failed`` rows.

The kernel computes, before any rule, where each check fails on an accepted row and takes
those rows out of the accepted mask; here each failure becomes one reject entry (the blamed
column, its checked value shown as ``rules._checks.show_value`` shows it, the check's
reason), in the form ``_results._sorted_rejects`` orders with the validation rejects.
Failures are few, so values are shown one by one.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from ecorules.rules._checks import fill, show_value
from ecorules.rules._types import DECIMAL_SCALE, Kind, days_to_date

from ._compiled import CompiledProgram


def check_rejects(c: CompiledProgram, segments) -> list:
    """(column position, rows, values, reasons) per check and segment with failures."""
    found = []
    for k, slot in enumerate(c.checks):
        position = c.columns.index(slot.column)
        fact = c.facts[slot.column]
        for seg in segments:
            rows = np.flatnonzero(seg.view["failed"][k])
            if not rows.size:
                continue
            column = seg.columns[slot.column]
            values = np.array([_shown(fact, column, row) for row in rows.tolist()], dtype=object)
            if slot.shown:  # the message shows the row's values
                reasons = np.array([fill(slot.reason, {name: _shown(c.facts[name], seg.columns[name], row, raw=True)
                                                       for name in slot.shown}) for row in rows.tolist()], dtype=object)
            else:
                reasons = np.full(rows.size, slot.reason, dtype=object)
            found.append((position, rows.astype(np.int64) + seg.start, values, reasons))
    return found


def _shown(fact, column, row: int, raw: bool = False):
    """The checked value of ``row`` as the single-case engine shows the coerced value
    (``raw``: the value itself, which ``fill`` shows so)."""
    if column.present is not None and not column.present[row]:
        return None if raw else ""
    value = int(column.values[row])
    kind = fact.type.kind
    if kind is Kind.DECIMAL:
        value = Decimal(value) / DECIMAL_SCALE
        return value if raw else show_value(value)
    if kind is Kind.DATE:
        return days_to_date(value) if raw else show_value(days_to_date(value))
    if kind is Kind.BOOLEAN:
        return bool(value) if raw else show_value(bool(value))
    if kind is Kind.ENUM:
        return fact.type.choices[value]
    if kind is Kind.STRING:
        return column.labels[value]
    return str(value)


__all__ = ["check_rejects"]
