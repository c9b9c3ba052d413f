"""``Program.score(law_date=...)``: the day whose law applies (versions in force, parameter
values) is bound apart from ``as_of``, which the rules read as the builtin and which stays the
run's. Compared with the single-case engine's ``Evaluator.judge(..., law_date=...)``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from ecorules.engine import Evaluator
from ecorules.fastcalc import compile_program
from ecorules.rules import load_policies

DATA = Path(__file__).parent.parent / "data" / "lighter_law"
AS_OF = dt.date(2025, 1, 1)
# a rule that reads the builtin as_of: its amount is days from the act to as_of
LATE = """
  - id: late
    title: 测试
    citation: {document: 测试水法(2017), article: 第一条, text: 测试}
    when: act == 'over_standard'
    findings:
      - {kind: fee, amount: "minimum_fine + days_between(act_date, as_of, 'exclusive')", payer: enterprise}
"""


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    folder = tmp_path_factory.mktemp("law_date")
    for file in DATA.iterdir():
        text = file.read_text(encoding="utf-8")
        (folder / file.name).write_text(text + LATE if file.name == "law_2017.yaml" else text, encoding="utf-8")
    return load_policies(folder)


TABLE = {"case_id": ["a", "b"], "uscc": ["91410100123456788Y"] * 2, "act": ["over_standard", "other"], "act_date": ["2017-06-01", "2019-06-01"],
         "pollutant_fee_yuan": [70000, 10]}


def _score(policies, law_date):
    program = compile_program(policies, domain="case")
    result = program.score(TABLE, as_of=AS_OF, law_date=law_date)
    return {(program.findings[k].policy_key, program.findings[k].rule_id): np.where(
        np.asarray(result.fired[[r for r, slot in enumerate(program.rules) if slot == program.findings[k][:2]][0]], bool),
        np.asarray(result.amounts[k]), -1).tolist() for k in range(len(program.findings))}, result


def _reference(policies, law_date):
    out = {}
    with Evaluator(policies, backend="python") as evaluator:
        for policy in policies:
            amounts = []
            for row in range(2):
                values = {name: column[row] for name, column in TABLE.items()}
                values["act_date"] = dt.date.fromisoformat(values["act_date"])
                decision = evaluator.judge(values, [policy] if policy.in_force(law_date) else [], AS_OF, "case",
                                           values["case_id"], law_date=law_date)
                amounts.append({f.rule: f.amount_yuan for f in decision.findings})
            for rule in policy.rules:
                out[(policy.key, rule.id)] = [a.get(rule.id, -1) for a in amounts]
    return out


@pytest.mark.parametrize("law_date", [dt.date(2017, 6, 1), dt.date(2019, 6, 1), dt.date(2021, 6, 1), dt.date(2005, 1, 1)])
def test_law_date_chooses_versions_and_parameters_and_as_of_stays(policies, law_date):
    scored, result = _score(policies, law_date)
    assert scored == _reference(policies, law_date)
    assert result.as_of == AS_OF


def test_the_values_worked_by_hand(policies):
    days = (AS_OF - dt.date(2017, 6, 1)).days
    assert _score(policies, dt.date(2017, 6, 1))[0] == {
        ("test.water_law@2008", "over_standard"): [140000, -1],
        ("test.water_law@2017", "over_standard"): [-1, -1], ("test.water_law@2017", "late"): [-1, -1]}
    assert _score(policies, dt.date(2021, 6, 1))[0] == {
        ("test.water_law@2008", "over_standard"): [-1, -1],
        ("test.water_law@2017", "over_standard"): [150000, -1], ("test.water_law@2017", "late"): [150000 + days, -1]}
    # without law_date, the law of as_of, as before
    assert _score(policies, None)[0] == _score(policies, AS_OF)[0]


def test_several_days_at_once_give_each_version_the_slots_of_its_own_day(policies):
    # 2017-06-01: the 2008 version; 2019-06-01: the 2017 version (its value of 2018): both
    # in one pass, each version's outputs as its own day alone gives them
    program = compile_program(policies, domain="case")
    together = program.score(TABLE, as_of=AS_OF, law_date=(dt.date(2017, 6, 1), dt.date(2019, 6, 1)))
    for day in (dt.date(2017, 6, 1), dt.date(2019, 6, 1)):
        alone = program.score(TABLE, as_of=AS_OF, law_date=day)
        for r, slot in enumerate(program.rules):
            if next(p for p in program.policies if p.key == slot.policy_key).in_force(day):
                assert together.fired[r].tolist() == alone.fired[r].tolist()
        for k, slot in enumerate(program.findings):
            if next(p for p in program.policies if p.key == slot.policy_key).in_force(day):
                assert together.amounts[k].tolist() == alone.amounts[k].tolist()
    assert together.fired.any(axis=1).sum() == 3  # both versions fired: one pass ran them all


def test_days_on_which_a_version_takes_other_values_are_refused(policies):
    # minimum_fine of the 2017 version is 100,000 from 2018 and 150,000 from 2020
    program = compile_program(policies, domain="case")
    with pytest.raises(ValueError, match="other parameter values"):
        program.score(TABLE, as_of=AS_OF, law_date=(dt.date(2019, 6, 1), dt.date(2021, 6, 1)))
    with pytest.raises(ValueError, match="law_date"):
        program.score(TABLE, as_of=AS_OF, law_date=())


# two versions of a statute: ``kept`` alike in both (its citation aside), ``amended`` reading a
# parameter whose value the amendment changed, ``listed`` making a list entry
SHARED = """policy:
  id: test.shared_law
  title: 测试
  authority: 测试
  document: 测试法({version})
  version: "{version}"
  effective: {effective}
{expires}  domain: case
lists:
  watch: {{title: 测试}}
parameters:
  floor:
    type: integer
    values:
      - {{from: {effective}, value: 1000, reference: 测试}}
  rate:
    type: integer
    values:
      - {{from: {effective}, value: {rate}, reference: 测试}}
rules:
  - id: kept
    title: 测试
    citation: {{document: 测试法({version}), article: 第一条, text: 测试}}
    when: act == 'over_standard' and pollutant_fee_yuan >= floor
    findings:
      - {{kind: fine, amount: "pollutant_fee_yuan * 2", payer: enterprise}}
  - id: amended
    title: 测试
    citation: {{document: 测试法({version}), article: 第二条, text: 测试}}
    when: act == 'over_standard'
    findings:
      - {{kind: fee, amount: "pollutant_fee_yuan * rate", payer: enterprise}}
  - id: listed
    title: 测试
    citation: {{document: 测试法({version}), article: 第三条, text: 测试}}
    when: pollutant_fee_yuan >= floor
    sanctions:
      - {{list: watch, reason: 测试}}
"""


def test_a_rule_two_versions_hold_alike_runs_once_and_gives_both_their_outputs(tmp_path):
    for name in ("cases.yaml", "enterprises.yaml"):
        (tmp_path / name).write_text((DATA / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "old.yaml").write_text(SHARED.format(version="2010", effective="2010-01-01", rate=3,
                                                     expires="  expires: 2020-01-01\n"), encoding="utf-8")
    (tmp_path / "new.yaml").write_text(SHARED.format(version="2020", effective="2020-01-01", rate=2, expires=""),
                                       encoding="utf-8")
    program = compile_program(load_policies(tmp_path), domain="case")
    rng = np.random.default_rng(5)
    rows = 5000
    table = {"case_id": [f"c{k}" for k in range(rows)], "uscc": ["91410100123456788Y"] * rows,
             "act": rng.choice(["over_standard", "other"], rows).tolist(), "act_date": ["2019-06-01"] * rows,
             "pollutant_fee_yuan": rng.integers(0, 3000, rows).tolist()}
    days = (dt.date(2015, 1, 1), dt.date(2021, 1, 1))
    enabled, envs, _warnings = program._enabled_on(AS_OF, days)
    # only ``kept`` is shared: ``amended`` reads another rate, ``listed`` makes list entries
    assert [{program.rules[off], program.rules[on]} for off, on in program._shared(enabled, envs)] == [
        {("test.shared_law@2020", "kept"), ("test.shared_law@2010", "kept")}]
    together = program.score(table, as_of=AS_OF, law_date=days)
    for day in days:
        alone = program.score(table, as_of=AS_OF, law_date=day)
        mine = {p.key for p in program.policies if p.in_force(day)}
        for r, slot in enumerate(program.rules):
            if slot.policy_key in mine:
                assert together.fired[r].tolist() == alone.fired[r].tolist()
        for k, slot in enumerate(program.findings):
            if slot.policy_key in mine:
                assert together.amounts[k].tolist() == alone.amounts[k].tolist()
        for s, slot in enumerate(program.sanctions):
            if slot.policy_key in mine:
                assert together.sanctions[s].tolist() == alone.sanctions[s].tolist()
    off = program._shared(enabled, envs)[0][0]  # (the rule not run, its outputs copied)
    assert 1000 < np.asarray(together.fired[off]).sum() < rows
