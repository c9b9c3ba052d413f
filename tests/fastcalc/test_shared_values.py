"""A value several rules or checks compute alike is computed once (fastcalc/_rule_compiler.py,
``_Emitter``), run where any of them is enabled: its gate group (``CompiledProgram.gate_groups``).

Two versions of a statute, as bench/cases.py --dated judges them in one pass, each test the
same limitation period; a rule of the first version tests it too. The period is computed by
one ADD_MONTHS, and every rule reading it gets it whichever version is in force: on a day of
the later version alone the instruction first emitted for the earlier version's rule must
still run (without the gate group it would not, and the later rule would read a stale block).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine import load_policies
from ecorules.fastcalc import _opcodes as opc
from ecorules.fastcalc import compile_program
from ecorules.rules._types import date_to_days

AS_OF = dt.date(2026, 1, 1)
CASES = """description: cases
kind: case
key: case_id
facts:
  case_id: {type: string}
  act_date: {type: date, min: 2000-01-01, max: 2099-12-31}
  discovered: {type: date, min: 2000-01-01, max: 2099-12-31}
  fee: {type: integer, min: 0, max: 10000000}
"""
VERSION = """policy:
  id: test.period
  title: 测试
  authority: 测试
  document: 测试法({version})
  version: "{version}"
  effective: {effective}
{expires}  domain: case
rules:
  - id: timely
    title: 测试
    citation: {{document: 测试法({version}), text: 测试}}
    when: discovered <= add_years(act_date, 2) and fee > {threshold}
    findings:
      - {{kind: fine, amount: "fee * {multiple}", payer: enterprise}}
{extra}"""
EXTRA = """  - id: late
    title: 测试
    citation: {document: 测试法(2010), text: 测试}
    when: discovered > add_years(act_date, 2)
    findings:
      - {kind: fine, amount: "100", payer: enterprise}
"""


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shared")
    (folder / "cases.yaml").write_text(CASES, encoding="utf-8")
    (folder / "old.yaml").write_text(VERSION.format(version="2010", effective="2010-01-01", expires="  expires: 2020-01-01\n",
                                                    threshold=100, multiple=3, extra=EXTRA), encoding="utf-8")
    (folder / "new.yaml").write_text(VERSION.format(version="2020", effective="2020-01-01", expires="",
                                                    threshold=1000, multiple=2, extra=""), encoding="utf-8")
    return compile_program(load_policies(folder), domain="case")


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(7)
    n = 20_000  # several kernel blocks
    act = np.datetime64("2012-01-01") + rng.integers(0, 365 * 12, n)
    discovered = act + rng.integers(0, 365 * 4, n)
    return pa.table({"case_id": [f"C{i}" for i in range(n)], "act_date": act.astype(str).tolist(),
                     "discovered": discovered.astype(str).tolist(),
                     "fee": rng.choice([50, 500, 1500, 2500], n).tolist()}), act, discovered


def _within_two_years(act: np.ndarray, discovered: np.ndarray) -> np.ndarray:
    """discovered <= add_years(act, 2), the Civil Code's way (29 February to 28 February)."""
    from ecorules.rules._calendar import add_months

    ends = np.array([date_to_days(add_months(dt.date.fromisoformat(str(day)), 24)) for day in act.astype("datetime64[D]")])
    return discovered.astype("datetime64[D]").astype(np.int64) <= ends


def test_the_limitation_period_is_computed_once_for_every_rule(program):
    compiled = program.compiled
    add_months = opc.BY_NAME["ADD_MONTHS_RK"].code
    assert int((compiled.code["op"] == add_months).sum()) == 1
    gate = int(compiled.code["gate"][compiled.code["op"] == add_months][0])
    assert gate > compiled.n_gates, "the period is read by three rules: a gate group runs it"
    assert set(compiled.gate_groups[gate - compiled.n_gates - 1]) == {1, 2, 3}


@pytest.mark.parametrize("day", [dt.date(2015, 1, 1), dt.date(2022, 1, 1)])
def test_each_version_alone_reads_the_period(program, table, day):
    rows, act, discovered = table
    within = _within_two_years(act, discovered)
    fee = np.asarray(rows["fee"].to_pylist())
    result = program.score({n: rows[n] for n in program.columns}, as_of=AS_OF, law_date=day)
    fired = {rule: np.asarray(result.fired[k], bool) for k, rule in enumerate(program.rules)}
    old, new = ("test.period@2010", "timely"), ("test.period@2020", "timely")
    if day.year < 2020:
        assert np.array_equal(fired[old], within & (fee > 100))
        assert np.array_equal(fired[("test.period@2010", "late")], ~within)
        assert not fired[new].any()
    else:  # the earlier version's rules, which first needed the period, are off
        assert np.array_equal(fired[new], within & (fee > 1000))
        assert not fired[old].any() and not fired[("test.period@2010", "late")].any()


def test_both_laws_at_once_give_each_day_s_outputs(program, table):
    rows, _act, _discovered = table
    columns = {n: rows[n] for n in program.columns}
    both = program.score(columns, as_of=AS_OF, law_date=(dt.date(2015, 1, 1), dt.date(2022, 1, 1)))
    for day, version in ((dt.date(2015, 1, 1), "test.period@2010"), (dt.date(2022, 1, 1), "test.period@2020")):
        alone = program.score(columns, as_of=AS_OF, law_date=day)
        for k, (key, _rule) in enumerate(program.rules):
            if key == version:
                assert np.array_equal(np.asarray(both.fired[k]), np.asarray(alone.fired[k]))
        for k, slot in enumerate(program.findings):
            if slot.policy_key == version:
                assert np.array_equal(np.asarray(both.amounts[k]), np.asarray(alone.amounts[k]))
