"""``_assessed.decision_dates``: the decision dates an assessment's finding rows carry, the
same ISO text whichever path formats them (an empty column, few days taken, every row cast)."""

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine.cases._assessed import decision_dates


def _dates(values, present):
    column = SimpleNamespace(values=np.asarray(values, "datetime64[D]"),
                             present=None if present is None else np.asarray(present, np.uint8))
    results = SimpleNamespace(cases=SimpleNamespace(columns={"decided": column}))
    return results, SimpleNamespace(decision="decided")


def _expected(values, present, rows):
    days = np.asarray(values, "datetime64[D]")
    return [None if present is not None and not present[r] else
            (dt.date(1970, 1, 1) + dt.timedelta(days=int(days[r].astype(np.int64)))).isoformat() for r in rows]


@pytest.mark.parametrize("span", [3, 40_000])  # few days (taken) and more days than rows (cast)
@pytest.mark.parametrize("fill", ["empty", "mixed", "set", "no mask"])
def test_decision_dates_are_iso_text_or_null(span, fill):
    rng = np.random.default_rng(span)
    n = 5_000
    values = np.datetime64("2019-12-30") + rng.integers(-span // 2, span - span // 2, n).astype("timedelta64[D]")
    present = {"empty": np.zeros(n, bool), "mixed": rng.random(n) < 0.5, "set": np.ones(n, bool),
               "no mask": None}[fill]
    rows = rng.permutation(n)[: n - 7]
    got = decision_dates(*_dates(values, present), rows)
    assert got.type == pa.string() and len(got) == rows.size
    assert got.to_pylist() == _expected(values, present, rows)


def test_decision_dates_of_no_rows_or_no_column():
    results, plan = _dates(["2020-01-01"], [1])
    assert decision_dates(results, plan, np.zeros(0, np.int64)).to_pylist() == []
    assert decision_dates(results, SimpleNamespace(decision=None), np.arange(1)) is None
