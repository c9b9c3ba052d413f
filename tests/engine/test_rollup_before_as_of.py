"""Roll-ups onto the enterprise in a window before the run's as_of (``before: as_of``) or
before 1 January of as_of's year (``before: as_of_year``): the Python reference, durable-rules
and the batch run (numpy masks over the case table, window starts by the kernel's calendar)
give the values worked out by hand on the boundary days.

as_of is 2024-02-29. The calendar year before it: 2023-01-01 .. 2023-12-31. The 12 months
before it: 2023-02-28 (民法典 art 202: 2023 has no 29 February, so the month's last day) ..
2024-02-28. The 2 years before it by act date: 2022-02-28 .. 2024-02-28."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine import Evaluator, load_policies
from ecorules.engine._nightly import run_nightly
from ecorules.rules import PolicyError
from ecorules.rules._kinds import Window
from hypothesis import given, settings
from hypothesis import strategies as st

DATA = Path(__file__).parent.parent / "data" / "cases"
AS_OF = dt.date(2024, 2, 29)
A, B, C = "91410100123456788Y", "91350200MA31E12PXF", "9144030071526726XG"

CASES_YAML = """\
kind: case
key: case_id
parent: enterprise
facts:
  case_id: {type: string}
  act_date: {type: date, min: 2000-01-01, max: 2099-12-31}
  decided: {type: date, optional: true, min: 2000-01-01, max: 2099-12-31}
  fine_yuan: {type: integer, optional: true, min: 0, max: 10000000}
rollups:
  decided_last_year:
    for: enterprise
    count: true
    window: {date: decided, before: as_of_year, years: 1}
  fines_12m:
    for: enterprise
    sum: fine_yuan
    window: {date: decided, before: as_of, months: 12}
  largest_2y:
    for: enterprise
    max: fine_yuan
    empty: 0
    window: {date: act_date, before: as_of, years: 2}
"""

POLICY_YAML = """\
policy: {id: test.windows, title: 窗口, authority: 测试, document: 测试, version: "1", effective: 2000-01-01}
rules:
""" + "".join(f"""\
  - id: {name}
    title: {name}
    citation: {{document: 测试, text: 测试}}
    when: true
    findings:
      - {{kind: fee, amount: {name}, payer: enterprise}}
""" for name in ("decided_last_year", "fines_12m", "largest_2y"))

# (case, enterprise, act_date, decided, fine): which windows each counts in, by hand
ROWS = [
    ("c1", A, "2022-02-27", "2022-12-31", 10),      # before every window
    ("c2", A, "2022-03-01", "2023-01-01", 20),      # first day of the prior year: counts there
    ("c3", A, "2022-05-01", "2023-02-27", 40),      # prior year; the day before the 12 months
    ("c4", A, "2022-06-01", "2023-02-28", 80),      # prior year; first day of the 12 months
    ("c5", A, "2023-06-01", "2023-12-31", 160),     # last day of the prior year: counts
    ("c6", A, "2023-07-01", "2024-01-01", 320),     # first day of this year: not the prior year
    ("c7", A, "2023-08-01", "2024-02-28", 640),     # the last day of the 12 months
    ("c8", A, "2024-02-29", "2024-02-29", 1280),    # as_of itself: in no window
    ("c9", A, "2022-02-28", None, 2560),            # not decided: no window by decision date;
                                                    # first day of the 2 years by act date
    ("d1", C, "2023-12-31", "2024-01-01", 5),       # this year only
]
EXPECTED = {
    A: {"decided_last_year": 4, "fines_12m": 80 + 160 + 320 + 640, "largest_2y": 2560},
    B: {"decided_last_year": 0, "fines_12m": 0, "largest_2y": 0},
    C: {"decided_last_year": 0, "fines_12m": 5, "largest_2y": 5},
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("windows")
    (path / "enterprises.yaml").write_text((DATA / "enterprises.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (path / "cases.yaml").write_text(CASES_YAML, encoding="utf-8")
    (path / "windows.yaml").write_text(POLICY_YAML, encoding="utf-8")
    return path


def _children(uscc):
    return [{"case_id": c, "uscc": u, "act_date": act, **({"decided": d} if d else {}), "fine_yuan": fine}
            for c, u, act, d, fine in ROWS if u == uscc]


@pytest.mark.parametrize("backend", ["python", "durable"])
def test_the_library_counts_the_windows_before_as_of_on_the_boundary_days(folder, backend):
    with Evaluator(load_policies(folder), backend=backend) as evaluator:
        for uscc in (A, B, C):
            decision = evaluator.evaluate_group({"uscc": uscc, "district": "金水区", "industrial": True},
                                                _children(uscc), as_of=AS_OF)
            assert {f.rule: f.amount_yuan for f in decision.findings} == EXPECTED[uscc], uscc


def test_the_batch_run_counts_the_same(folder, tmp_path):
    registry = tmp_path / "registry.csv"
    registry.write_text("uscc,district,industrial\n" + "".join(f"{u},金水区,true\n" for u in (A, B, C)), encoding="utf-8")
    cases = tmp_path / "cases.csv"
    cases.write_text("case_id,uscc,act_date,decided,fine_yuan\n"
                     + "".join(f"{c},{u},{act},{d or ''},{fine}\n" for c, u, act, d, fine in ROWS), encoding="utf-8")
    summary = run_nightly(registry, tmp_path / "out.sqlite", policies=folder, as_of=AS_OF, cases=cases)
    db = sqlite3.connect(tmp_path / "out.sqlite")
    found: dict[str, dict[str, int]] = {}
    for uscc, rule, amount in db.execute("SELECT uscc, rule, amount_yuan FROM findings WHERE run_id = ?", (summary.run_id,)):
        found.setdefault(uscc, {})[rule] = amount
    assert found == EXPECTED
    assert summary.rows_rejected == 0


def test_a_window_before_as_of_belongs_to_roll_ups_onto_the_enterprise(folder, tmp_path):
    def refused(window: str, target: str = "enterprise") -> PolicyError:
        (tmp_path / "enterprises.yaml").write_text((DATA / "enterprises.yaml").read_text(encoding="utf-8"), encoding="utf-8")
        text = CASES_YAML.split("rollups:")[0] + f"rollups:\n  r:\n    for: {target}\n    count: true\n    window: {window}\n"
        (tmp_path / "cases.yaml").write_text(text, encoding="utf-8")
        with pytest.raises(PolicyError) as error:
            load_policies(tmp_path)
        return error.value

    error = refused("{date: decided, years: 1}")
    assert "before: as_of" in error.message and error.span.line == 13
    error = refused("{date: decided, before: as_of_yaer, years: 1}")
    assert error.suggestion == "as_of_year"
    assert "'before' belongs to a roll-up onto the enterprise" in refused("{date: act_date, before: as_of, years: 1}", "case").message
    # a window before each case's own date still needs a date every case has
    assert "required date fact" in refused("{date: decided, years: 1}", "case").message


# -- the batch's masks against the reference, on random windows, dates and as_of ---------------
_AS_OF = st.sampled_from([dt.date(2024, 2, 29), dt.date(2024, 3, 1), dt.date(2023, 1, 1), dt.date(2024, 12, 31),
                          dt.date(2025, 3, 31), dt.date(2025, 1, 31)])


@st.composite
def _windowed(draw):
    as_of = draw(_AS_OF)
    unit = draw(st.sampled_from(["years", "months", "days"]))
    amount = draw(st.integers(1, 3 if unit != "days" else 400))
    window = Window("day", amount, unit, draw(st.sampled_from(["as_of", "as_of_year"])))
    end = window.end(as_of)
    edges = [window.start(end), end]
    # days on, just before and just after both edges, and anywhere within two years
    near = st.sampled_from(edges).flatmap(lambda d: st.integers(-2, 2).map(lambda k: d + dt.timedelta(days=k)))
    anywhere = st.integers(-800, 30).map(lambda k: end + dt.timedelta(days=k))
    rows = draw(st.lists(st.tuples(st.integers(0, 4), st.one_of(near, anywhere), st.booleans(),
                                   st.integers(0, 1000), st.booleans()), min_size=0, max_size=60))
    return as_of, window, rows


@settings(max_examples=300, deadline=None)
@given(_windowed(), st.sampled_from(["count", "sum", "max"]))
def test_the_batch_masks_equal_the_reference_on_random_windows(drawn, function):
    from ecorules.engine.cases._rollups import onto_enterprises
    from ecorules.engine.cases._table import CaseTable
    from ecorules.fastcalc._validate_common import ValidColumn
    from ecorules.rules._kinds import Rollup, compute_rollups
    from ecorules.rules._types import date_to_days

    as_of, window, rows = drawn
    rollup = Rollup("case", function, None if function == "count" else "fine", None, None, window, -1)
    n = len(rows)
    cases = CaseTable(pa.table({"x": pa.array([0] * n)}), [], np.zeros(n, np.int32), np.arange(n), {})
    cases.valid = np.array([valid for *_, valid in rows], bool)
    cases.enterprise = np.array([owner for owner, *_ in rows], np.int64)
    cases.columns = {
        "day": ValidColumn(np.array([date_to_days(day) if present else 0 for _, day, present, _, _ in rows], np.int64),
                           present=np.array([present for _, _, present, _, _ in rows], np.uint8)),
        "fine": ValidColumn(np.array([fine for *_, fine, _ in rows], np.int64)),
    }
    batch = onto_enterprises({"r": rollup}, cases, 5, {}, as_of)["r"]
    for owner in range(5):
        children = [{"day": day if present else None, "fine": fine}
                    for o, day, present, fine, valid in rows if o == owner and valid]
        assert batch[owner] == compute_rollups({"r": rollup}, children, as_of=as_of)["r"], (owner, window)
