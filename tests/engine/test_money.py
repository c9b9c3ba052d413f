"""Exact money across the three evaluators: tests/data/money rounds to the fen by its
declaration, one rule to the yuan, two by half_even, and divides in both orders."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from ecorules.engine import BACKENDS, Evaluator, load_policies
from ecorules.engine._cli import main
from ecorules.engine._testing import run_tests
from ecorules.fastcalc import compile_program

MONEY = Path(__file__).resolve().parents[1] / "data" / "money"
AS_OF = dt.date(2012, 4, 14)
USCC = "91410100123456788Y"


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_yaml_cases_pass_on_every_backend(backend):
    report = run_tests(load_policies(MONEY), backend=backend)
    assert [result.problems for result in report.results if result.problems] == []
    assert len(report.results) == 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_finding_in_fen_carries_its_unit_and_an_exact_amount(backend):
    with Evaluator(load_policies(MONEY), backend=backend) as evaluator:
        decision = evaluator.evaluate({"uscc": USCC, "district": "金水区", "tonnes": "0.5", "base": 0}, as_of=AS_OF)
    fee, fee_yuan = decision.findings
    assert (fee.amount_yuan, fee.amount, fee.unit) == (Decimal("0.48"), 48, "fen")
    assert (fee_yuan.amount_yuan, fee_yuan.amount, fee_yuan.unit) == (0, 0, "yuan")
    assert decision.total_yuan == Decimal("0.48")
    assert decision.to_dict()["findings"][0]["amount_yuan"] == "0.48"  # exact text, never a float


def test_the_kernel_keeps_each_amount_in_its_unit_and_totals_in_the_finest():
    program = compile_program(load_policies(MONEY))
    tonnes = ["0.5", "1.5", "0", "0.0001"]
    result = program.score({"uscc": [USCC] * 4, "district": ["金水区"] * 4, "tonnes": tonnes, "base": [0, 30000, 5, 3]},
                           as_of=AS_OF)
    slot = {s.rule_id: f for f, s in enumerate(program.findings)}
    assert result.finding_units[slot["tonnage_fee"]] == 100 and result.finding_units[slot["tonnage_fee_yuan"]] == 1
    assert result.amounts[slot["tonnage_fee"]].tolist() == [48, 143, 0, 0]  # 0.000095 yuan: 0 fen
    assert result.amounts[slot["tonnage_fee_yuan"]].tolist() == [0, 1, 0, 0]
    assert result.amounts[slot["third_of_base"]].tolist() == result.amounts[slot["third_of_base_reordered"]].tolist() \
        == [0, 10000, 2, 1]
    assert result.amounts[slot["half_of_base"]].tolist() == [0, 15000, 2, 2]  # 2.5 -> 2, 1.5 -> 2
    assert result.total_unit == 100 and result.total_unit_name == "fen"
    assert result.units[slot["tonnage_fee"]] == "fen" and result.units[slot["tonnage_fee_yuan"]] == "yuan"
    assert result.total_yuan.tolist() == [48, 3500243, 600, 400]  # fen
    # 0.48 + 1.43 fen fees, 35000 + 6 + 4 yuan of compensation; the yuan fee is the district's
    assert result.totals_by_payer() == {"enterprise": Decimal("35011.91"), "金水区": 1}


def test_explain_prints_the_fen(tmp_path):
    record = tmp_path / "r.json"
    record.write_text(json.dumps({"uscc": USCC, "district": "金水区", "tonnes": "0.5", "base": 0}), encoding="utf-8")
    out = CliRunner().invoke(main, ["explain", "--policies", str(MONEY), "--record", str(record), "--as-of",
                                    "2012-04-14", "--format", "json"])
    assert out.exit_code == 0, out.output
    decision = json.loads(out.output)
    assert decision["total_yuan"] == "0.48"
    assert [(f["amount"], f["unit"]) for f in decision["findings"]] == [(48, "fen"), (0, "yuan")]
