"""Roll-ups over the case table, vectorised and exact (int64, never float).

Onto the enterprise: ``np.bincount`` (counts) and ``np.add.at`` / ``np.maximum.at`` (sums,
maxima) over the valid cases whose ``where`` held, by enterprise index. Onto each case, in a
window before its date: the counted cases sorted by one int64 key (enterprise, day), and for
every case two ``np.searchsorted`` calls find the counted cases of its enterprise on or after
the window's start and strictly before its own day (so the case itself, and other cases of
the same day, never count), as ``rules._kinds.compute_rollups`` does one enterprise at a time.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from ecorules.rules._kinds import Rollup

from ._calendar import window_start
from ._table import CaseTable

_NO_MAX = np.iinfo(np.int64).min


def _values(cases: CaseTable, rollup: Rollup, counted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The summed / maximised values and where they are present, among ``counted``."""
    column = cases.columns[rollup.value]
    present = counted if column.present is None else counted & column.present.astype(bool)
    return column.values.astype(np.int64, copy=False), present


def onto_enterprises(rollups: Mapping[str, Rollup], cases: CaseTable, n_enterprises: int,
                     where: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each roll-up onto the enterprises of the side table: int64 arrays of length
    ``n_enterprises``, the written ``empty`` value where no case counts."""
    result = {}
    for name, rollup in rollups.items():
        counted = cases.valid & where[name] if name in where else cases.valid
        if rollup.function == "count":
            result[name] = np.bincount(cases.enterprise[counted], minlength=n_enterprises).astype(np.int64)
            continue
        values, present = _values(cases, rollup, counted)
        rows = np.flatnonzero(present)
        owners = cases.enterprise[rows]
        seen = np.bincount(owners, minlength=n_enterprises)
        if rollup.function == "sum":
            out = np.zeros(n_enterprises, np.int64)
            np.add.at(out, owners, values[rows])
        else:
            out = np.full(n_enterprises, _NO_MAX, np.int64)
            np.maximum.at(out, owners, values[rows])
        out[seen == 0] = rollup.empty
        result[name] = out
    return result


def onto_cases(rollups: Mapping[str, Rollup], cases: CaseTable, where: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each windowed roll-up for every case (int64, length of the table; meaningless on
    rejected rows)."""
    result = {}
    for name, rollup in rollups.items():
        day = cases.columns[rollup.window.date].values.astype(np.int64)
        valid = cases.valid
        low = int(day[valid].min()) if valid.any() else 0
        span = (int(day[valid].max()) - low + 2) if valid.any() else 2
        owner = np.where(valid, cases.enterprise, 0)
        # one sortable key: enterprise, then the day counted from the earliest valid day
        key = owner * span + np.clip(day - low, 0, span - 1)
        start = owner * span + np.clip(window_start(rollup.window, day) - low, 0, span - 1)
        counted = valid & where[name] if name in where else valid
        if rollup.function == "count":
            order = np.sort(key[counted])
            result[name] = (np.searchsorted(order, key, "left") - np.searchsorted(order, start, "left")).astype(np.int64)
            continue
        values, present = _values(cases, rollup, counted)
        rows = np.flatnonzero(present)
        sort = np.argsort(key[rows], kind="stable")
        order = key[rows][sort]
        prefix = np.concatenate(([0], np.cumsum(values[rows][sort], dtype=np.int64)))
        hi, lo = np.searchsorted(order, key, "left"), np.searchsorted(order, start, "left")
        out = prefix[hi] - prefix[lo]
        out[hi == lo] = rollup.empty
        result[name] = out
    return result


__all__ = ["onto_cases", "onto_enterprises"]
