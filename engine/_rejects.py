"""Rejected rows as columns: what the kernel rejected in a batch, ready for the ledger.

Real registries have bad rows (1% is common), and a run must stay nearly as fast on them as
on a clean file. The kernel already hands its rejects over as parallel arrays; they stay
arrays here, one :class:`RejectColumns` per batch: file row numbers by one numpy ``take``,
headers by a lookup per distinct column, the reason classes that the summary counts by a
cached function of each distinct reason, and rows for SQLite by one ``zip``. Building a
``Reject`` object and classifying each reason one by one cost more than scoring the row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

import attrs
import numpy as np

_MAX_VALUE_CHARS = 200  # a reject keeps at most this much of the offending text


@attrs.frozen
class RejectColumns:
    """The rejects of one batch: parallel columns, one entry per rejected value."""

    source: str
    rows: np.ndarray  # int64: the row number in the file (line, record, rowid)
    columns: list  # the header as written in the file, or None for the whole row
    values: list  # the offending text, at most 200 characters
    reasons: list

    def __len__(self) -> int:
        return int(self.rows.size)

    def sql_rows(self, run_id: int) -> list[tuple]:
        """(run_id, source, row, column, value, reason) per reject, for INSERT_REJECTS."""
        n = len(self)
        return list(zip([run_id] * n, [self.source] * n, self.rows.tolist(), self.columns, self.values,
                        self.reasons, strict=True))


def _shortened(values) -> list:
    out = values.tolist() if isinstance(values, np.ndarray) else list(values)
    for i, value in enumerate(out):
        if value is None:
            continue
        if not isinstance(value, str):
            value = value.decode("utf-8", errors="backslashreplace") if isinstance(value, bytes) else str(value)
        out[i] = value[:_MAX_VALUE_CHARS] if len(value) > _MAX_VALUE_CHARS else value
    return out


def kernel_rejects(result, source: str, file_rows: np.ndarray, headers: Mapping[str, str],
                   counts: Counter, reason_class: Callable[[str], str],
                   examples: dict | None = None) -> RejectColumns | None:
    """The rejects of a scored batch; ``counts`` gains one per rejected row, under the
    (header, ``reason_class(reason)``) of its first problem (a row with two bad values counts
    once), and ``examples`` the first reason of each such key. ``reason_class`` is called
    once per distinct reason only if it is cached."""
    rows = np.asarray(result.reject_rows, dtype=np.int64)
    if not rows.size:
        return None
    names = np.asarray(result.reject_columns, dtype=object)
    reasons = np.asarray(result.reject_reasons, dtype=object)
    header_of = {name: headers.get(name, name) for name in set(names.tolist()) if name is not None}
    columns = [header_of.get(name) if name is not None else None for name in names.tolist()]
    # the kernel sorts its rejects by row: the first of each row is where the row changes
    first = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
    reason_list = [str(r) for r in reasons.tolist()]
    keys = [((columns[i], reason_class(reason_list[i])), reason_list[i]) for i in first.tolist()]
    counts.update(key for key, _ in keys)
    if examples is not None:
        for key, reason in keys:
            examples.setdefault(key, reason)
    return RejectColumns(source, file_rows[rows], columns, _shortened(result.reject_values), reason_list)


__all__ = ["RejectColumns", "kernel_rejects"]
