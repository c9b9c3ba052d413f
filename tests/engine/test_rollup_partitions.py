"""Roll-ups onto the enterprises written a partition at a time (engine/cases/_rollups.py's
``onto_enterprises`` with ``into``): the partition's enterprises numbered densely from the
codes of their keys, two keys as written naming one enterprise counted together, and the
enterprises of other partitions left as they were."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest


def _cases(rng, n: int, owners: int):
    from ecorules.engine.cases._table import CaseTable
    from ecorules.fastcalc._validate_common import ValidColumn

    cases = CaseTable(pa.table({"x": pa.array([0] * n)}), [], np.zeros(n, np.int32), np.arange(n), {})
    # two codes (two ways of writing the key) per enterprise, and a code of no enterprise
    code_enterprise = np.array([*range(owners), *range(owners), -1], np.int64)
    uscc_code = rng.integers(-1, code_enterprise.size, n)  # -1: an empty key
    cases.uscc_code = uscc_code
    cases.code_enterprise = code_enterprise
    cases.enterprise = np.where(uscc_code >= 0, code_enterprise[uscc_code], -1)
    cases.valid = (rng.random(n) < 0.8) & (cases.enterprise >= 0)
    cases.columns = {"fine": ValidColumn(rng.integers(-5, 1000, n).astype(np.int64),
                                         present=(rng.random(n) < 0.7).astype(np.uint8))}
    return cases


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("function", ["count", "sum", "max"])
def test_a_partition_s_enterprises_written_into_the_run_s_arrays(seed, function):
    from ecorules.engine.cases._rollups import onto_enterprises
    from ecorules.rules._kinds import Rollup

    rng = np.random.default_rng(seed)
    rollup = Rollup("enterprise", function, None if function == "count" else "fine", None, None, None, -3)
    owners, n_side = 6, 9  # side rows 6..8: another partition's enterprises
    cases = _cases(rng, 200, owners)
    kept = rng.integers(0, 50, n_side).astype(np.int64)
    into = {"r": kept.copy()}
    got = onto_enterprises({"r": rollup}, cases, n_side, {}, dt.date(2026, 1, 1), into)["r"]
    assert got is into["r"]  # written in place
    plain = _cases(np.random.default_rng(seed), 200, owners)
    plain.code_enterprise = None  # numbered by the side's own indexes, fresh arrays
    want = onto_enterprises({"r": rollup}, plain, n_side, {}, dt.date(2026, 1, 1))["r"]
    named = np.zeros(n_side, bool)
    named[cases.enterprise[cases.enterprise >= 0]] = True
    assert got[named].tolist() == want[named].tolist()
    assert got[~named].tolist() == kept[~named].tolist()
    for owner in np.flatnonzero(named).tolist():  # and the reference, an enterprise at a time
        mine = (cases.enterprise == owner) & cases.valid
        if function != "count":
            mine &= cases.columns["fine"].present.astype(bool)
        values = cases.columns["fine"].values[mine]
        expected = {"count": int(mine.sum()), "sum": int(values.sum()) if values.size else -3,
                    "max": int(values.max()) if values.size else -3}[function]
        assert got[owner] == expected
