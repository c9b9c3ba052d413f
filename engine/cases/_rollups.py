"""Roll-ups over the case table, vectorised and exact (int64, never float).

Onto the enterprise: counts, sums and maxima over the valid cases whose ``where`` held, by
enterprise index, written into the run's arrays a partition at a time (``fastcalc/_cases.pyx``'s
``enterprise_rollup``); a window before the
run's as_of (or 1 January of its year) is one mask of the cases whose date is set and on or
after its start, computed by the kernel's calendar, and before its end. Onto each case, in a
window before its date, a part of the cases at a time (every case of an enterprise in one
part, ``_parts.py``): the part's cases sorted by (enterprise, day), and for every case
the sorted positions of its enterprise's cases on or after the window's start and
strictly before its own day (so the case itself, and other cases of the same day, never
count); a roll-up is a difference of prefix sums over those positions, as
``rules._kinds.compute_rollups`` does one enterprise at a time. The sort and the positions
are shared by the roll-ups of one window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
from ecorules.fastcalc._calendar import add_months
from ecorules.fastcalc._cases import enterprise_rollup, window_bounds
from ecorules.rules._kinds import WINDOW_UNITS, Rollup, Window

from ._table import CaseTable


def _values(cases: CaseTable, rollup: Rollup, counted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The summed / maximised values and where they are present, among ``counted``."""
    column = cases.columns[rollup.value]
    present = counted if column.present is None else counted & column.present.astype(bool)
    return column.values.astype(np.int64, copy=False), present


def onto_enterprises(rollups: Mapping[str, Rollup], cases: CaseTable, n_enterprises: int,
                     where: Mapping[str, np.ndarray], as_of: dt.date,
                     into: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Each roll-up onto the enterprises of the side table: int64 arrays of length
    ``n_enterprises``, the written ``empty`` value where no case counts. ``into``: the arrays
    of the partitions before (each enterprise's cases all in one partition), in which only
    the enterprises of ``cases`` are written, the others keeping their values; missing or of
    another length, they are made (every enterprise at the value of nothing counted)."""
    result = {}
    local, owners = _numbered(cases)
    size = owners.size if owners is not None else n_enterprises
    seen = np.empty(size, np.uint8)  # (the kernel's scratch, shared by the roll-ups)
    for name, rollup in rollups.items():
        counted = cases.valid & where[name] if name in where else cases.valid
        if rollup.window is not None:
            counted = counted & _before_as_of(cases, rollup.window, as_of)
        nothing = 0 if rollup.function == "count" else rollup.empty  # the value where no case counts
        out = None if into is None else into.get(name)
        if out is None or out.shape != (n_enterprises,) or out.dtype != np.int64:
            out = np.full(n_enterprises, nothing, np.int64)
        # the partition's enterprises numbered densely: the kernel's arrays stay in the caches
        # (written at random into arrays of every enterprise of the run, each case was a miss)
        mine = out if owners is None else np.full(size, nothing, np.int64)
        if rollup.function == "count":
            enterprise_rollup(local, _flags(counted), _NO_VALUES, _FUNCTIONS["count"], 0, mine, seen)
        else:
            values, present = _values(cases, rollup, counted)
            enterprise_rollup(local, _flags(present), np.ascontiguousarray(values, np.int64),
                              _FUNCTIONS[rollup.function], rollup.empty, mine, seen)
        if owners is not None:
            out[owners] = mine
        result[name] = out
    return result


def _numbered(cases: CaseTable) -> tuple[np.ndarray, np.ndarray | None]:
    """Per case row its enterprise numbered among the partition's (-1: none), and per number
    the enterprise's index in the side table (ascending), from the codes of the enterprise
    keys (one per distinct key, not per row); None: the side's own indexes (not linked by
    ``_table.link``)."""
    enterprise = np.ascontiguousarray(cases.enterprise, np.int64)
    per_code = cases.code_enterprise
    if per_code is None or cases.uscc_code is None:
        return enterprise, None
    at = np.flatnonzero(per_code >= 0)
    enterprises = per_code[at]
    # (two keys as written may name one enterprise) the enterprises marked in a mask of the
    # side's indexes, numbered in its order: np.unique hashed the codes and searchsorted
    # looked each up at random (90 ms for a partition's 100 K codes), a stable argsort of
    # them took 11 ms, the mask 3
    size = int(enterprises.max()) + 1 if enterprises.size else 0
    present = np.zeros(size, bool)
    present[enterprises] = True
    owners = np.flatnonzero(present)
    rank = np.empty(size, np.int64)
    rank[owners] = np.arange(owners.size)
    number = np.full(per_code.size + 1, -1, np.int64)  # (the last: an empty key's code, -1)
    number[at] = rank[enterprises]
    return number[cases.uscc_code], owners


_FUNCTIONS = {"count": 0, "sum": 1, "max": 2}  # (enterprise_rollup's)
_NO_VALUES = np.zeros(0, np.int64)


def _flags(mask: np.ndarray) -> np.ndarray:
    """A mask as the kernel's bytes (a bool array's own, no copy)."""
    return np.ascontiguousarray(mask).view(np.uint8) if mask.dtype == np.bool_ else np.ascontiguousarray(mask != 0).view(np.uint8)


def onto_cases(rollups: Mapping[str, Rollup], cases: CaseTable, where: Mapping[str, np.ndarray],
               parts: list[np.ndarray] | None = None, count: int = 1,
               ordered: list[dict[tuple, tuple]] | None = None) -> dict[str, np.ndarray]:
    """Each windowed roll-up for every case (int64, length of the table; 0 on rejected
    rows). ``parts``: the valid case rows in parts holding every case of their enterprises
    (``_parts.by_enterprise``, ``count`` parts), done one at a time; None: all valid rows.
    ``ordered``: ``window_orders`` of the same rows and parts, made beforehand."""
    result = {name: np.zeros(cases.n, np.int64) for name in rollups}
    if not rollups:
        return result
    if parts is None:
        parts = [np.flatnonzero(cases.valid).astype(np.int64)]
    for k, rows in enumerate(parts):
        if rows.size:
            _onto_part(rollups, cases, where, rows, count, result, None if ordered is None else ordered[k])
    return result


def window_orders(rollups: Mapping[str, Rollup], cases: CaseTable, parts: list[np.ndarray],
                  count: int) -> list[dict[tuple, tuple]]:
    """Per part of ``parts`` (as ``onto_cases`` is given them), per window of ``rollups``, its
    rows' order and bounds (``_window``): what ``onto_cases`` sorts, which reads neither the
    kernel's outputs nor a roll-up's where, so that it can be made before them (the stage
    makes it in the thread that loads the partition, _stage.py)."""
    orders = []
    for rows in parts:
        windows: dict[tuple, tuple] = {}
        if rows.size:
            for rollup in rollups.values():
                shape = _shape(rollup)
                if shape not in windows:
                    windows[shape] = _window(cases, rollup, rows, count)
        orders.append(windows)
    return orders


def _shape(rollup: Rollup) -> tuple:
    """What a window's order and bounds depend on: roll-ups of one shape share them."""
    return rollup.window.date, rollup.window.unit, rollup.window.amount


def _onto_part(rollups: Mapping[str, Rollup], cases: CaseTable, where: Mapping[str, np.ndarray], rows: np.ndarray,
               count: int, result: dict[str, np.ndarray], ordered: dict[tuple, tuple] | None = None) -> None:
    """The windowed roll-ups of the valid case rows ``rows`` (every valid case of their
    enterprises), into ``result`` at those rows; ``ordered``: their windows made beforehand."""
    windows: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = dict(ordered or {})  # shared by roll-ups of one window
    for name, rollup in rollups.items():
        shape = _shape(rollup)
        if shape not in windows:
            windows[shape] = _window(cases, rollup, rows, count)
        sort, hi, lo = windows[shape]
        at = sort if _every(rows, cases.n) else rows[sort]
        if rollup.function == "count" and name not in where:  # every case counts: the sorted positions lo:hi
            result[name][at] = hi - lo
            continue
        counted = where[name][at] if name in where else np.ones(sort.size, bool)
        if rollup.function == "count":
            seen = np.empty(sort.size + 1, np.int64)
            seen[0] = 0
            np.cumsum(counted, out=seen[1:])
            result[name][at] = seen[hi] - seen[lo]
            continue
        column = cases.columns[rollup.value]
        present = counted if column.present is None else counted & column.present[at].astype(bool)
        seen = np.zeros(sort.size + 1, np.int64)
        np.cumsum(present, out=seen[1:])
        prefix = np.zeros(sort.size + 1, np.int64)
        np.cumsum(np.where(present, column.values[at].astype(np.int64, copy=False), 0), out=prefix[1:])
        sums = prefix[hi] - prefix[lo]
        sums[seen[hi] == seen[lo]] = rollup.empty
        result[name][at] = sums


def _before_as_of(cases: CaseTable, window: Window, as_of: dt.date) -> np.ndarray:
    """The cases in a window measured from the run's as_of: date set, on or after the
    window's start, before its end."""
    end = np.datetime64(as_of, "D") if window.before == "as_of" else np.datetime64(np.datetime64(as_of, "Y"), "D")
    end_day = end.astype(np.int64)
    start_day = int(window_start(window, np.array([end_day], np.int64))[0])
    column = cases.columns[window.date]
    day = column.values.astype(np.int64, copy=False)
    inside = (day >= start_day) & (day < end_day)
    return inside if column.present is None else inside & column.present.astype(bool)


def _window(cases: CaseTable, rollup: Rollup, rows: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The valid rows ``rows`` sorted by (enterprise, day), stable, and per sorted row the
    positions bounding its window: ``lo``, the first row of its enterprise on or after the
    window's start, and ``hi``, the first row of its enterprise and day (so the case itself,
    and other cases of the same day, never count). A counted value summed over sorted
    positions ``lo:hi`` is the roll-up. The rows' enterprises share their residue modulo
    ``count`` (``_parts``): ``enterprise // count`` numbers them densely. By
    ``fastcalc/_cases.pyx``: two counting passes, and each bound searched among the
    enterprise's own cases (numpy's sort of an int64 key and its search of the whole part
    took 0.2 CPU-s at 2 M cases)."""
    every = _every(rows, cases.n)  # (no gathers of every row)
    values = cases.columns[rollup.window.date].values
    day = values.astype(np.int64) if every else values[rows].astype(np.int64)
    if not day.size:
        return (np.zeros(0, np.int64),) * 3
    low = int(day.min())
    span = int(day.max()) - low + 2
    owner = cases.enterprise if every else cases.enterprise[rows]
    if count != 1:
        owner = owner // count
    # the window's start of every day of the range, computed once per day, not per case
    starts = window_start(rollup.window, np.arange(low, low + span - 1, dtype=np.int64)) - low
    return window_bounds(np.ascontiguousarray(owner, np.int64), day - low, np.ascontiguousarray(starts, np.int64),
                         int(owner.max()) + 1, span)


def _every(rows: np.ndarray, n: int) -> bool:
    """Whether the ascending distinct rows ``rows`` of a table of ``n`` are all of them:
    every case valid and in one part, as most partitions are."""
    return rows.size == n and (n == 0 or (int(rows[0]) == 0 and int(rows[-1]) == n - 1))


def window_start(window: Window, anchors: np.ndarray) -> np.ndarray:
    """``Window.start`` for every anchor day: the first day a counted record may fall on."""
    if window.unit == "days":
        return np.asarray(anchors, np.int64) - window.amount
    return add_months(anchors, -window.amount * WINDOW_UNITS[window.unit])


__all__ = ["onto_cases", "onto_enterprises", "window_orders"]
