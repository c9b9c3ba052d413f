"""行政处罚法 art 37 chosen in place: where one kernel pass scored every case under the laws
of all the periods its dates fall in, and rejected none, ``score_by_law`` takes the lighter
later law per statute and masks each version's outputs to the law that applies straight on
that pass's outputs (``fastcalc/_cases.pyx`` ``lighter_law``). It must give what the passes
a law at a time give (``score_together`` not given): the same outputs, list entries and their
dates, the same lighter cases, the same choice and severities per statute."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine import load_policies
from ecorules.engine.cases import _law
from ecorules.engine.cases._law import Timeline, score_by_law
from ecorules.fastcalc import compile_program
from ecorules.rules._types import date_to_days

AS_OF = dt.date(2024, 6, 1)
CASES = """description: test cases judged by the law at the act
kind: case
key: case_id
dates:
  law: act_date
  decision: decided
facts:
  case_id: {type: string}
  act_date: {type: date, min: 2000-01-01, max: 2099-12-31}
  decided: {type: date, optional: true, min: 2000-01-01, max: 2099-12-31}
  fee: {type: integer, min: 0, max: 10000000}
"""
VERSION = """policy:
  id: test.listed
  title: 测试
  authority: 测试
  document: 测试法({version})
  version: "{version}"
  effective: {effective}
{expires}  domain: case
lists:
  named: {{title: 测试}}
rules:
  - id: fined
    title: 测试
    citation: {{document: 测试法({version}), text: 测试}}
    when: fee > {threshold}
    findings:
      - {{kind: fine, amount: "fee * {multiple}", payer: enterprise}}
  - id: listed
    title: 测试
    citation: {{document: 测试法({version}), text: 测试}}
    when: fee > {listed}
    sanctions:
      - {{list: named, reason: 测试, from: act_date, until: "add_years(act_date, {years})"}}
"""
STEADY = """policy:
  id: test.steady
  title: 测试
  authority: 测试
  document: 测试
  version: "1"
  effective: 2000-01-01
  domain: case
rules:
  - id: fined
    title: 测试
    citation: {document: 测试, text: 测试}
    when: fee > 5000
    findings:
      - {kind: fine, amount: "1000", payer: enterprise}
"""


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    folder = tmp_path_factory.mktemp("in_place")
    (folder / "cases.yaml").write_text(CASES, encoding="utf-8")
    (folder / "old.yaml").write_text(VERSION.format(version="2010", effective="2010-01-01",
                                                    expires="  expires: 2020-01-01\n", threshold=100, multiple=3,
                                                    listed=3000, years=2), encoding="utf-8")
    (folder / "new.yaml").write_text(VERSION.format(version="2020", effective="2020-01-01", expires="",
                                                    threshold=1000, multiple=2, listed=2000, years=1),
                                     encoding="utf-8")
    (folder / "steady.yaml").write_text(STEADY, encoding="utf-8")
    return compile_program(load_policies(folder), domain="case")


def _judged(program, table: pa.Table, law: np.ndarray, decision: np.ndarray, together: bool):
    def score(positions, day, without=frozenset()):
        rows = table.take(pa.array(positions))
        return program.score({n: rows[n] for n in program.columns}, as_of=AS_OF, law_date=day, without=without)

    def score_together(positions, days):
        rows = table.take(pa.array(positions))
        return program.score({n: rows[n] for n in program.columns}, as_of=AS_OF, law_date=days)

    timeline = Timeline.of(program.compiled.policies)
    return score_by_law(program, timeline, law, decision, score, score_together if together else None)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_choice_in_place_equals_the_passes_a_law_at_a_time(program, monkeypatch, seed):
    rng = np.random.default_rng(seed)
    n = 3000
    act = np.datetime64("2012-01-01") + rng.integers(0, 365 * 9, n)
    decided = act + rng.integers(0, 3000, n)
    table = pa.table({"case_id": [f"C{i}" for i in range(n)], "act_date": act.astype(str).tolist(),
                      "decided": decided.astype(str).tolist(),
                      "fee": rng.choice([50, 500, 1500, 2500, 3500, 6000], n).tolist()})
    law = act.astype(np.int64)
    decision = np.minimum(decided.astype(np.int64), date_to_days(AS_OF))
    calls = []
    real = _law._lighter_in_place
    monkeypatch.setattr(_law, "_lighter_in_place", lambda *a: calls.append(1) or real(*a))
    fast = _judged(program, table, law, decision, together=True)
    assert calls, "one pass under every law was expected to be chosen in place"
    slow = _judged(program, table, law, decision, together=False)
    assert fast.lighter.any() and (~fast.lighter[act < np.datetime64("2020-01-01")]).any()
    assert np.asarray(fast.sanctions).any() and np.asarray(fast.dates).any()
    for name in ("fired", "amounts", "sanctions", "dates", "lighter"):
        assert np.array_equal(np.asarray(getattr(fast, name)), np.asarray(getattr(slow, name))), name
    assert fast.choices.keys() == slow.choices.keys()
    for statute, choice in fast.choices.items():
        other = slow.choices[statute]
        assert np.array_equal(choice.code, other.code) and np.array_equal(choice.severity, other.severity), statute
        assert np.array_equal(choice.differs, other.differs) and choice.keys == other.keys
