"""Cases failing the policies' checks (rules/_checks.py): from the kernel's rejects to the
case table's, with the case's own row, the column the check blames and its reason.

The kernel judges a case's checks with the case policies, under the law of each date it is
scored at (its law date and, when another, its decision date: 行政处罚法 art 37 considers
both), so a case may fail a check twice; it is rejected once per check.
"""

from __future__ import annotations

import numpy as np

from ._table import CaseTable


def checks_failed(result) -> np.ndarray | None:
    """Per scored row, whether it failed some check; None when none did."""
    failed = getattr(result, "checks_failed", None)
    if failed is None or not failed.shape[0] or not failed.any():
        return None
    return failed.any(axis=0).astype(bool)


def failed_rows(result, rows: np.ndarray) -> tuple:
    """The check rejects of ``result`` as (case rows, columns, values, reasons); ``rows``
    are the case rows the result's rows stand for."""
    failed = checks_failed(result)
    at = result.reject_rows.astype(np.int64)
    keep = failed[at]
    return (rows[at[keep]], result.reject_columns[keep], result.reject_values[keep], result.reject_reasons[keep])


def reject_failed_checks(cases: CaseTable, collected: list) -> None:
    """Each (case row, column, reason) once, in row order."""
    seen: dict[tuple, str] = {}
    for rows, columns, values, reasons in collected:
        for row, column, value, reason in zip(rows.tolist(), columns.tolist(), values.tolist(), reasons.tolist(),
                                              strict=True):
            seen.setdefault((row, column, reason), value)
    by_column: dict[str, list] = {}
    for (row, column, reason), value in sorted(seen.items()):
        by_column.setdefault(column, []).append((row, value, reason))
    for column, entries in by_column.items():
        rows, values, reasons = zip(*entries, strict=True)
        cases.reject(rows, column, values, reasons)


__all__ = ["checks_failed", "failed_rows", "reject_failed_checks"]
