"""The responsible unit (责任单位) as the payer of the outfall deduction (law.md, legal review).

The registry's optional column responsible_unit names the unit that pays (a district, a
management committee, a city department); where it is empty or the registry has no such
column, the enterprise's district pays, as before. The three evaluators agree, the ledger
books each deduction to its payer (district_totals), and a registry without the column
scores as it did (the bundled sample: 136,000,000 yuan)."""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from ecorules.engine import Evaluator, load_policies
from ecorules.engine._nightly import run_nightly
from ecorules.fastcalc import compile_program
from ecorules.rules import PolicySchemaError, read_policy

ROOT = Path(__file__).resolve().parents[2]
AS_OF = dt.date(2012, 4, 14)
BASE = {"uscc": "91410100123456788Y", "name": "示例", "industrial": "true", "direct_discharge_cases": 1,
        "illegal_discharge_cases": 0, "high_pollution": "false", "high_energy": "false"}
# (district, untreated outfalls, responsible unit or None)
RECORDS = [("金水区", 2, None), ("二七区", 1, "郑州市城市管理局"), ("中原区", 3, "郑东新区管委会"),
           ("中原区", 0, "郑州市城市管理局"), ("金水区", 1, "金水区")]


def _outfall_findings(findings) -> list:
    return [(f.rule, f.payer, f.amount_yuan) for f in findings if f.rule.startswith("untreated_outfall")]


def test_the_responsible_unit_pays_the_outfall_deduction_in_the_three_evaluators():
    policies = load_policies()
    want = [
        [("untreated_outfall_deduction", "金水区", 2_000_000)],
        [("untreated_outfall_deduction_by_unit", "郑州市城市管理局", 1_000_000)],
        [("untreated_outfall_deduction_by_unit", "郑东新区管委会", 3_000_000)],
        [],
        [("untreated_outfall_deduction_by_unit", "金水区", 1_000_000)],
    ]
    for backend in ("python", "durable"):
        with Evaluator(policies, backend=backend) as evaluator:
            got = []
            for district, outfalls, unit in RECORDS:
                record = {**BASE, "district": district, "untreated_outfalls": outfalls}
                if unit is not None:
                    record["responsible_unit"] = unit
                decision = evaluator.evaluate(record, as_of=AS_OF)
                got.append(_outfall_findings(decision.findings))
                # the direct discharge stays with the jurisdiction (辖区政府或管委会)
                assert [f.payer for f in decision.findings if f.rule == "direct_discharge_deduction"] == [district]
            assert got == want, backend
    program = compile_program(policies)
    n = len(RECORDS)
    columns = {name: np.array([value] * n) for name, value in BASE.items() if name in program.columns}
    columns["industrial"] = np.ones(n, bool)
    columns["district"] = np.array([r[0] for r in RECORDS])
    columns["untreated_outfalls"] = np.array([r[1] for r in RECORDS])
    for name in program.columns:
        assert name in columns or name == "responsible_unit" or program.compiled.facts[name].optional, name
    columns["responsible_unit"] = np.array([r[2] or "" for r in RECORDS], dtype=object)
    result = program.score(columns, as_of=AS_OF)
    assert result.valid.all()
    totals = result.totals_by_payer()
    # 10,000,000 per direct discharge case, to each district; the outfalls to their payers
    assert {payer: totals[payer] for payer in ("郑州市城市管理局", "郑东新区管委会")} == {
        "郑州市城市管理局": 1_000_000, "郑东新区管委会": 3_000_000}
    assert totals["金水区"] == 2 * 10_000_000 + 2_000_000 + 1_000_000
    assert totals["二七区"] == 10_000_000 and totals["中原区"] == 2 * 10_000_000
    # a batch without the column at all: every district pays its outfalls, as before
    del columns["responsible_unit"]
    before = program.score(columns, as_of=AS_OF).totals_by_payer()
    assert before == {"金水区": 2 * 10_000_000 + 3_000_000, "二七区": 10_000_000 + 1_000_000,
                      "中原区": 2 * 10_000_000 + 3_000_000}


def _registry(path: Path, with_units: bool) -> Path:
    with (ROOT / "examples" / "registry.csv").open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    outfalls = rows[0].index("untreated_outfalls")
    named = iter(["郑州市城市管理局", "郑东新区管委会"])
    if with_units:  # the Chinese header, as bureau exports write it
        rows = [rows[0] + ["责任单位"]] + [row + [next(named, "") if row[outfalls] not in ("", "0") else ""]
                                          for row in rows[1:]]
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def _ledger(path: Path) -> tuple[dict, dict]:
    db = sqlite3.connect(path)
    totals = dict(db.execute("SELECT district, deduction_yuan FROM district_totals"))
    payers = {}
    for payer, amount in db.execute("SELECT payer, amount_yuan FROM findings WHERE rule LIKE 'untreated%'"):
        payers[payer] = payers.get(payer, 0) + int(amount)
    return totals, payers


def test_the_ledger_books_each_deduction_to_its_payer_and_the_sample_is_unchanged(tmp_path):
    plain = run_nightly(_registry(tmp_path / "plain.csv", False), tmp_path / "plain.sqlite", as_of=AS_OF)
    assert plain.total_yuan == 136_000_000 and plain.rows_rejected == 0
    named = run_nightly(_registry(tmp_path / "named.csv", True), tmp_path / "named.sqlite", as_of=AS_OF)
    assert named.total_yuan == 136_000_000 and named.rows_rejected == 0
    before, before_payers = _ledger(tmp_path / "plain.sqlite")
    after, after_payers = _ledger(tmp_path / "named.sqlite")
    # the two named units pay the first two enterprises' outfalls (1,000,000 each), which
    # their districts paid before; every other row of district_totals is as it was
    moved = {payer: after[payer] for payer in ("郑州市城市管理局", "郑东新区管委会")}
    assert moved == {"郑州市城市管理局": 1_000_000, "郑东新区管委会": 1_000_000}
    assert sum(after.values()) == sum(before.values()) == 136_000_000
    changed = {d for d in before if before[d] != after.get(d)}
    assert sum(before[d] - after.get(d, 0) for d in changed) == 2_000_000 and len(changed) <= 2
    assert after_payers.keys() - before_payers.keys() == {"郑州市城市管理局", "郑东新区管委会"}


def test_may_be_absent_is_for_optional_facts_only(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        'policy: {id: t.absent, title: t, authority: t, document: t, version: "1", effective: 2000-01-01}\n'
        "facts:\n  uscc: {type: string, format: uscc}\n  unit:\n    type: string\n    may_be_absent: true\n"
        "rules:\n  - id: a\n    title: t\n    citation: {document: d, text: t}\n    when: unit == 'x'\n"
        "    sanctions: [{list: l, reason: r}]\nlists:\n  l: {title: t}\n", encoding="utf-8")
    with pytest.raises(PolicySchemaError, match="'may_be_absent' needs 'optional: true'") as caught:
        read_policy(path)
    assert caught.value.span.line == 6


def test_a_unit_written_with_spaces_pays_under_its_trimmed_name_in_the_ledger(tmp_path):
    # from the case differential's falsifying example (CI, session 8): the registry wrote
    # ' 郑东新区管委会 '; the findings named the payer with its spaces while district_totals
    # and the single-case evaluator trimmed it
    path = _registry(tmp_path / "named.csv", True)
    rows = list(csv.reader(path.open(encoding="utf-8")))
    for row in rows[1:]:
        if row[-1]:
            row[-1] = {"郑东新区管委会": " 郑东新区管委会 ", "郑州市城市管理局": "\u3000郑州市城市管理局"}[row[-1]]
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    summary = run_nightly(path, tmp_path / "named.sqlite", as_of=AS_OF)
    assert summary.total_yuan == 136_000_000 and summary.rows_rejected == 0
    totals, payers = _ledger(tmp_path / "named.sqlite")
    assert {payer: payers[payer] for payer in ("郑州市城市管理局", "郑东新区管委会")} == {
        "郑州市城市管理局": 1_000_000, "郑东新区管委会": 1_000_000}
    assert all(payer == payer.strip() for payer in payers) and set(payers) <= set(totals)
    with Evaluator(load_policies()) as evaluator:
        decision = evaluator.evaluate({**BASE, "district": "金水区", "untreated_outfalls": 1,
                                       "responsible_unit": " 郑东新区管委会 "}, as_of=AS_OF)
    assert [f.payer for f in decision.findings if f.rule.startswith("untreated")] == ["郑东新区管委会"]
