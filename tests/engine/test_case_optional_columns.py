"""``CasePlan.optional_columns``: the case table may leave out a column whose optional fact
the case side reads only to choose the law (``dates: law``, 行政处罚法 art 37), to say when
the case was decided (``dates: decision``), as a window's date, or in the kind's checks: no
policy's rule reads it, and each of those reads an empty value as the library does (the law
at the act, the decision as of the run, in no window, the check held). A column some rule
reads stays required, optional fact or not: its absence is refused, naming it."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import pytest
from ecorules.engine import Evaluator, load_policies
from ecorules.engine._nightly import run_nightly
from ecorules.engine.cases._plan import make_plan
from ecorules.engine.sources._types import MissingColumnError
from ecorules.fastcalc import compile_program

DATA = Path(__file__).parent.parent / "data" / "lighter_law"
AS_OF = dt.date(2021, 6, 1)
USCC = "91410100123456788Y"
WATCH = """policy: {id: test.e, title: t, authority: t, document: t, version: "1", effective: 2000-01-01}
lists:
  named: {title: t}
rules:
  - id: named
    title: t
    citation: {document: t, text: t}
    when: uscc == ''
    sanctions: [{list: named, reason: t}]
"""
# acts before and after the law of 2018, over the statute's two versions and its change of 2020
CASES = [("K1", "over_standard", "2017-06-01", 300000), ("K2", "over_standard", "2019-03-01", 10000),
         ("K3", "other", "2016-01-01", 5000), ("K4", "over_standard", "2020-02-01", 1)]


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    if not folder.exists():
        shutil.copytree(DATA, folder)
        (folder / "watch.yaml").write_text(WATCH, encoding="utf-8")
    return folder


def _run(tmp_path: Path, name: str, header: str, row) -> tuple[list, list]:
    (tmp_path / "e.csv").write_text(f"uscc\n{USCC}\n", encoding="utf-8")
    cases = tmp_path / f"{name}.csv"
    cases.write_text(header + "\n" + "".join(row(*case) + "\n" for case in CASES), encoding="utf-8")
    db = tmp_path / f"{name}.sqlite"
    summary = run_nightly(tmp_path / "e.csv", db, policies=_folder(tmp_path), as_of=AS_OF, cases=cases, threads=1)
    assert summary.rows_in == summary.rows_scored == len(CASES) + 1
    connection = sqlite3.connect(db)
    try:
        findings = connection.execute("SELECT case_id, policy, rule, amount_yuan, law_note FROM findings "
                                      "WHERE case_id IS NOT NULL ORDER BY case_id").fetchall()
        rejects = connection.execute("SELECT * FROM rejects").fetchall()
    finally:
        connection.close()
    return findings, rejects


def test_the_plan_names_the_columns_read_only_for_the_law_and_the_decision():
    plan = make_plan(load_policies(DATA), "enterprise", AS_OF, compile_program)
    assert set(plan.optional_columns) == {"act_end", "decided"}
    assert set(plan.optional_columns) < set(plan.case_columns)


def test_a_table_without_them_is_judged_as_with_them_empty_and_as_the_library(tmp_path):
    without, rejects = _run(tmp_path, "without", "case_id,uscc,act,act_date,pollutant_fee_yuan",
                            lambda c, act, day, fee: f"{c},{USCC},{act},{day},{fee}")
    empty, _ = _run(tmp_path, "empty", "case_id,uscc,act,act_date,act_end,decided,pollutant_fee_yuan",
                    lambda c, act, day, fee: f"{c},{USCC},{act},{day},,,{fee}")
    assert rejects == [] and without == empty and len(without) == 3
    with Evaluator(load_policies(_folder(tmp_path)), backend="python") as evaluator:
        group = evaluator.evaluate_group({"uscc": USCC}, [
            {"case_id": c, "uscc": USCC, "act": act, "act_date": day, "pollutant_fee_yuan": fee} for c, act, day, fee in CASES
        ], as_of=AS_OF)
    assert [(f.record, f.policy, f.rule, f.amount_yuan) for f in group.findings] == [row[:4] for row in without]


def test_a_column_a_rule_reads_is_still_required(tmp_path):
    with pytest.raises(MissingColumnError, match="pollutant_fee_yuan"):
        _run(tmp_path, "fee", "case_id,uscc,act,act_date", lambda c, act, day, fee: f"{c},{USCC},{act},{day}")
