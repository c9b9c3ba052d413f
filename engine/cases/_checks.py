"""Cases failing the policies' checks (rules/_checks.py): from the kernel's rejects to the
case table's, with the case's own row, the column the check blames and its reason.

The kernel judges a case's checks with the case policies, under the law of each date it is
scored at (its law date and, when another, its decision date: 行政处罚法 art 37 considers
both), so a case may fail a check twice; it is rejected once per check. A working day
outside the holiday table rejects a case before any check judges it (rules/_workdays.py):
where one of its scorings found one, that is its only reason given, as the library's
(engine/_group.judge_by_law_in_force), though another scoring judged its checks.
"""

from __future__ import annotations

import numpy as np
from ecorules.rules._workdays import CALENDAR_CHECK

from ._table import CaseTable


def checks_failed(result) -> np.ndarray | None:
    """Per scored row, whether it failed some check; None when none did."""
    failed = getattr(result, "checks_failed", None)
    if failed is None or not failed.shape[0] or not failed.any():
        return None
    return failed.any(axis=0).astype(bool)


def failed_rows(result, rows: np.ndarray) -> tuple:
    """The check rejects of ``result`` as (case rows, columns, values, reasons, whether the
    row's are working days outside the table); ``rows`` are the case rows the result's rows
    stand for."""
    failed = checks_failed(result)
    at = result.reject_rows.astype(np.int64)
    keep = failed[at]
    calendar = [k for k, slot in enumerate(result.check_slots) if slot.check_id == CALENDAR_CHECK]
    outside = (np.asarray(result.checks_failed)[calendar].any(axis=0) if calendar
               else np.zeros(failed.size, bool))
    return (rows[at[keep]], result.reject_columns[keep], result.reject_values[keep], result.reject_reasons[keep],
            outside[at[keep]])


def reject_failed_checks(cases: CaseTable, collected: list) -> None:
    """Each (case row, column, reason) once, in row order; a row's working days outside the
    table alone where some scoring found one."""
    outside = {row for rows, *_, flags in collected for row in rows[flags].tolist()}
    seen: dict[tuple, str] = {}
    for rows, columns, values, reasons, flags in collected:
        for row, column, value, reason, flag in zip(rows.tolist(), columns.tolist(), values.tolist(), reasons.tolist(),
                                                    flags.tolist(), strict=True):
            if flag or row not in outside:
                seen.setdefault((row, column, reason), value)
    by_column: dict[str, list] = {}
    for (row, column, reason), value in sorted(seen.items()):
        by_column.setdefault(column, []).append((row, value, reason))
    for column, entries in by_column.items():
        rows, values, reasons = zip(*entries, strict=True)
        cases.reject(rows, column, values, reasons)


__all__ = ["checks_failed", "failed_rows", "reject_failed_checks"]
