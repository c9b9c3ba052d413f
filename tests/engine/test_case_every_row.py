"""The case judging's paths for a partition whose every row is valid (engine/cases/_rollups.py):
the windows read the day and enterprise columns as they are instead of gathering them through
rows 0..n-1, and the roll-ups onto the enterprises number a partition's enterprises by a mask
of the side's indexes. Each must give what the general path gives."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest


def _cases(rng, n: int, owners: int, count: int = 1):
    from ecorules.engine.cases._table import CaseTable
    from ecorules.fastcalc._validate_common import ValidColumn

    cases = CaseTable(pa.table({"x": pa.array([0] * n)}), [], np.zeros(n, np.int32), np.arange(n), {})
    cases.enterprise = rng.integers(0, owners, n).astype(np.int64) * count  # one part's residue: 0
    cases.valid = np.ones(n, bool)
    # days of a few years, many on one day (the window's bound ties)
    day = rng.integers(18_000, 19_500, n).astype(np.int32)
    day[rng.random(n) < 0.3] = 18_700
    cases.columns = {"act_date": ValidColumn(day), "fine": ValidColumn(rng.integers(0, 1000, n).astype(np.int64),
                                                                       present=(rng.random(n) < 0.7).astype(np.uint8))}
    return cases


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("unit", ["days", "years"])
def test_windows_of_every_row_equal_the_gathered_path(seed, unit, monkeypatch):
    from ecorules.engine.cases import _rollups
    from ecorules.rules._kinds import Rollup, Window

    rng = np.random.default_rng(seed)
    n = 5000
    cases = _cases(rng, n, 300)
    window = Window("act_date", 400 if unit == "days" else 2, unit)
    rollups = {"prior": Rollup("case", "count", None, None, None, window, 0),
               "summed": Rollup("case", "sum", "fine", None, None, window, -1)}
    where = {"summed": rng.random(n) < 0.6}
    rows = np.arange(n, dtype=np.int64)
    assert _rollups._every(rows, n)
    fast = _rollups.onto_cases(rollups, cases, where, [rows], 1)
    monkeypatch.setattr(_rollups, "_every", lambda rows, n: False)
    slow = _rollups.onto_cases(rollups, cases, where, [rows], 1)
    assert fast.keys() == slow.keys()
    for name in fast:
        assert np.array_equal(fast[name], slow[name]), name
    assert fast["prior"].any() and (fast["summed"] != -1).any()


def test_every_means_every_row_in_order():
    from ecorules.engine.cases._rollups import _every

    assert _every(np.arange(4), 4) and _every(np.zeros(0, np.int64), 0)
    assert not _every(np.array([0, 1, 3]), 4) and not _every(np.array([1, 2, 3]), 3)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_the_enterprises_numbered_by_a_mask_as_by_a_sort(seed):
    from ecorules.engine.cases._rollups import _numbered
    from ecorules.engine.cases._table import CaseTable

    rng = np.random.default_rng(seed)
    n, side = 4000, 700
    cases = CaseTable(pa.table({"x": pa.array([0] * n)}), [], np.zeros(n, np.int32), np.arange(n), {})
    # codes of the partition's keys: several per enterprise, some of no enterprise (-1)
    per_code = rng.integers(-1, side, 900).astype(np.int64)
    cases.code_enterprise = per_code
    cases.uscc_code = rng.integers(-1, per_code.size, n).astype(np.int64)  # -1: an empty key
    cases.enterprise = np.where(cases.uscc_code >= 0, per_code[cases.uscc_code], -1)
    local, owners = _numbered(cases)
    # the reference: the distinct enterprises in ascending order, each numbered by its rank
    expected_owners = np.unique(per_code[per_code >= 0])
    assert np.array_equal(owners, expected_owners)
    expected = np.where(cases.enterprise >= 0, np.searchsorted(expected_owners, cases.enterprise), -1)
    assert np.array_equal(local, expected)
