"""Zero is a result: a rule that fires with an amount of 0 yuan is a finding, everywhere.

``ecorules explain`` (the single-case Evaluator) shows a 0-yuan finding when a rule fires
and its amount is 0 (an enclosed site's fee, a rate of 0 set by law). The batch path must
agree: the ledger holds the finding, a district it is booked to counts the case, ``changes``
and ``export`` see it, and the diff calls its appearance a changed outcome.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sqlite3
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner
from diff_fixtures import CATALOGUE
from ecorules.engine import Evaluator
from ecorules.engine._cli import main
from ecorules.engine._nightly import run_nightly
from ecorules.engine.diff._impact import compute_impact
from ecorules.rules import load_policies
from nightly_standin import scorer

AS_OF = dt.date(2012, 4, 14)
COMPILE = scorer()

# A surcharge that only high-polluting enterprises pay (0 yuan for the others), and a fee
# whose rate the law sets at 0: both fire whenever an outfall is untreated.
DUST = """\
policy:
  id: test.dust
  title: 排污口附加扣款
  authority: tests
  document: unit
  version: "1"
  effective: 2011-01-01

parameters:
  fee_per_outfall:
    type: integer
    unit: 元/个
    values:
      - {{from: 2011-01-01, value: 0, reference: 封闭料仓免收}}

rules:
  - id: outfall_surcharge
    title: 排污口附加扣款
    citation: {{document: unit, text: unit}}
    when: untreated_outfalls > {threshold}
    findings:
      - kind: fiscal_deduction
        amount: if(high_pollution, 500000 * untreated_outfalls, 0)
        payer: district
      - kind: fee
        amount: fee_per_outfall * untreated_outfalls
        payer: enterprise
"""

HEADER = ("uscc", "name", "district", "untreated_outfalls", "high_pollution")
ROWS = [
    ("91410105125235487K", "甲", "金水区", 2, "true"),  # fires: 1,000,000 and 0
    ("91410105172022230J", "乙", "金水区", 1, "false"),  # fires: 0 and 0
    ("914101051541737054", "丙", "二七区", 0, "true"),  # does not fire
    ("91410105MA7M95GC2U", "丁", "二七区", 3, "false"),  # fires: 0 and 0
    ("91410105MA2LUTPK5M", "戊", "中原区", 0, "false"),  # does not fire
    ("91410105MAX71F0XXA", "己", "中原区", 1, "false"),  # wrong check character: rejected
]
FIRED = {0, 1, 3}


def write_policies(folder: Path, threshold: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "registry.yaml").write_text(CATALOGUE, encoding="utf-8")
    (folder / "dust.yaml").write_text(DUST.format(threshold=threshold), encoding="utf-8")
    return folder


def write_registry(path: Path, rows=ROWS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def ledger(db: Path, run_id: int) -> Counter:
    connection = sqlite3.connect(db)
    rows = connection.execute(
        "SELECT uscc, policy, rule, kind, amount_yuan, payer FROM findings WHERE run_id = ?", (run_id,)).fetchall()
    connection.close()
    return Counter(rows)


def run(registry: Path, db: Path, policies: Path):
    return run_nightly(registry, db, policies=policies, as_of=AS_OF, compile_program=COMPILE, progress=False)


def test_a_rule_that_fires_with_zero_yuan_is_a_finding_in_the_ledger(tmp_path):
    policies = write_policies(tmp_path / "policies")
    summary = run(write_registry(tmp_path / "r.csv"), tmp_path / "r.sqlite", policies)
    assert summary.status == "done" and summary.rows_rejected == 1
    got = ledger(tmp_path / "r.sqlite", summary.run_id)

    # the single-case Evaluator, row by row, is what the ledger must hold
    expected: Counter = Counter()
    with Evaluator(load_policies(policies)) as evaluator:
        for i, row in enumerate(ROWS[:5]):
            decision = evaluator.evaluate(dict(zip(HEADER, row, strict=True)), as_of=AS_OF)
            assert bool(decision.findings) == (i in FIRED)
            expected.update((row[0], f.policy, f.rule, f.kind.value, f.amount_yuan, f.payer) for f in decision.findings)
    assert got == expected
    assert {uscc for uscc, *_ in got} == {ROWS[i][0] for i in FIRED}
    zero = sorted((uscc, kind) for (uscc, _, _, kind, amount, _) in got if amount == 0)
    assert zero == sorted([(ROWS[0][0], "fee"), (ROWS[1][0], "fee"), (ROWS[1][0], "fiscal_deduction"),
                           (ROWS[3][0], "fee"), (ROWS[3][0], "fiscal_deduction")])
    assert summary.findings == 6 and summary.total_yuan == 1_000_000

    # a fired rule is a case of the district it is booked to, whatever its amount
    connection = sqlite3.connect(tmp_path / "r.sqlite")
    totals = dict(((d, (y, c)) for d, y, c in connection.execute(
        "SELECT district, deduction_yuan, cases FROM district_totals WHERE run_id = ?", (summary.run_id,))))
    connection.close()
    assert totals == {"金水区": (1_000_000, 2), "二七区": (0, 1)}


def test_changes_and_export_see_a_zero_yuan_finding_appear(tmp_path, monkeypatch):
    import ecorules.fastcalc as fastcalc

    monkeypatch.setattr(fastcalc, "compile_program", COMPILE, raising=False)
    policies = write_policies(tmp_path / "policies")
    path, db = tmp_path / "r.csv", tmp_path / "r.sqlite"
    first = run(write_registry(path), db, policies)
    rows = list(ROWS)
    rows[4] = (*rows[4][:3], 1, "false")  # 戊 now has an untreated outfall: two 0-yuan findings
    second = run(write_registry(path, rows), db, policies)
    runner = CliRunner()

    def cli(*args):
        result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    report = json.loads(cli("changes", "--db", db, "--since", first.run_id, "--format", "json"))
    appeared = report["findings"]["appeared"]
    assert sorted((i["uscc"], i["rule"], i["payer"], i["amount_yuan"]) for i in appeared["items"]) == sorted([
        (ROWS[4][0], "outfall_surcharge", "中原区", 0), (ROWS[4][0], "outfall_surcharge", ROWS[4][0], 0)])
    assert report["findings"]["disappeared"]["count"] == report["findings"]["changed"]["count"] == 0
    assert report["districts"] == [{"district": "中原区", "before_yuan": 0, "after_yuan": 0, "change_yuan": 0,
                                    "cases_before": 0, "cases_after": 1, "before_fen": 0, "after_fen": 0}]

    out = tmp_path / "findings.csv"
    cli("export", "--db", db, "--run", second.run_id, "--table", "findings", "--out", out)
    exported = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(exported) == 8
    assert sum(1 for row in exported if row["uscc"] == ROWS[4][0] and row["amount_yuan"] == "0") == 2


def batches():
    columns = {name: [row[k] for row in ROWS[:5]] for k, name in enumerate(HEADER)}
    columns["high_pollution"] = [value == "true" for value in columns["high_pollution"]]
    return pa.table(columns).to_batches()


@pytest.mark.parametrize("compile_program", ["kernel", "standin"])
def test_diff_counts_an_absent_finding_becoming_zero_yuan_as_a_change(tmp_path, compile_program):
    """Raising nothing but widening the condition: 乙 (1 outfall, not high-polluting) now gets
    two 0-yuan findings. No yuan moves, and still its outcome changed."""
    from diff_standin import StandInProgram

    base = load_policies(write_policies(tmp_path / "base", threshold=1))
    proposed = load_policies(write_policies(tmp_path / "draft", threshold=0))
    compile_with = None if compile_program == "kernel" else StandInProgram
    impact = compute_impact(base, proposed, batches(), AS_OF, compile_program=compile_with)
    assert impact.before_yuan == impact.after_yuan == 1_000_000
    assert impact.changed_count == 1
    [changed] = impact.changed
    assert changed.uscc == ROWS[1][0] and changed.difference_yuan == 0
    [rule] = changed.rules
    assert (rule.rule, rule.before_yuan, rule.after_yuan, rule.fired_before, rule.fired_after) == (
        "outfall_surcharge", 0, 0, False, True)
    assert {d.district: d.changed for d in impact.districts} == {"金水区": 1}
