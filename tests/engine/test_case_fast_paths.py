"""The case stage's fast paths give what the plain ones give.

It validates the case table once and hands the kernel the validated columns
(``fastcalc.Validated``): a bad value is still rejected with its row and column, a USCC
written in full-width characters still links to its enterprise, and the kernel refuses a
column validated for another declaration of its fact. The windowed roll-ups sort their
(enterprise, day) keys by radix passes: the order sorts the keys as argsort does."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from ecorules.engine import load_policies
from ecorules.engine._generate import generate_registry
from ecorules.engine._nightly import run_nightly
from ecorules.engine.cases._generate import generate_cases
from ecorules.fastcalc import compile_program
from ecorules.fastcalc._validate import validate_column
from ecorules.fastcalc._validate_common import Rejects, Validated, ValidColumn

DATA = Path(__file__).parent.parent / "data" / "cases"
AS_OF = dt.date(2026, 1, 1)


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


def test_a_bad_uscc_is_rejected_with_its_row_and_column_and_a_full_width_one_is_linked(tmp_path):
    usccs = generate_registry(20, 3)["uscc"].combine_chunks()
    cases = generate_cases(usccs, 200, 4, ("a83_2", "a84_2", "local_x")).to_pylist()
    good = usccs[0].as_py()
    wrong_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    cases[5]["uscc"] = wrong_check  # CSV line 7
    cases[9]["uscc"] = _full_width(good)  # the same code in full-width characters: the same enterprise
    cases[9]["clause"] = "a84_2"
    cases[9]["fine_yuan"] = None
    cases[9]["discovered"] = cases[9]["act_date"]
    pacsv.write_csv(pa.Table.from_pylist(cases), tmp_path / "cases.csv")
    pacsv.write_csv(pa.table({"uscc": usccs, "district": ["金水区"] * 20, "industrial": ["true"] * 20}),
                    tmp_path / "enterprises.csv")
    summary = run_nightly(tmp_path / "enterprises.csv", tmp_path / "results.sqlite", policies=DATA, as_of=AS_OF,
                          cases=tmp_path / "cases.csv", threads=2)
    assert summary.tables["cases"] == {"rows_in": 200, "rows_scored": 199, "rows_rejected": 1}
    db = sqlite3.connect(tmp_path / "results.sqlite")
    rejects = db.execute("SELECT row, column, value FROM rejects WHERE source LIKE '%cases.csv'").fetchall()
    assert rejects == [(7, "uscc", wrong_check)]
    case_id = cases[9]["case_id"]
    assert db.execute("SELECT uscc, rule, amount_yuan FROM findings WHERE case_id = ?", (case_id,)).fetchall() == [
        (good, "art84", 20000)]


def _program_and_table():
    policies = load_policies(DATA)
    program = compile_program([p for p in policies if p.domain == "case" and p.in_force(AS_OF)], domain="case")
    usccs = generate_registry(10, 5)["uscc"].combine_chunks()
    cases = generate_cases(usccs, 500, 6, ("a83_2", "a84_2", "local_x"))
    n = cases.num_rows
    table = {name: cases[name] if name in cases.column_names else np.zeros(n, np.int64) for name in program.columns}
    table["industrial"] = pa.array(["true"] * n)
    table["district"] = pa.array(["金水区"] * n)
    return program, table, n


def test_validated_columns_score_as_the_raw_ones():
    program, table, n = _program_and_table()
    facts = program.compiled.facts
    trusted = dict(table)
    for name in program.columns:
        found = Rejects()
        column = validate_column(facts[name], table[name], n, name in program.compiled.kernel_facts, found)
        assert not found.rows, name
        trusted[name] = Validated(facts[name], column, n)
    raw = program.score(table, as_of=AS_OF)
    validated = program.score(trusted, as_of=AS_OF)
    assert raw.fired.any() and raw.amounts.any()
    for output in ("valid", "fired", "amounts", "sanctions", "checks_failed"):
        assert np.array_equal(getattr(raw, output), getattr(validated, output)), output


def test_the_kernel_refuses_a_column_validated_otherwise():
    program, table, n = _program_and_table()
    facts = program.compiled.facts
    read = next(name for name in program.compiled.kernel_facts if facts[name].type.kind.name == "DATE")
    found = Rejects()
    column = validate_column(facts[read], table[read], n, True, found)
    other = facts["discovered"] if read != "discovered" else facts["act_date"]
    with pytest.raises(ValueError, match="another declaration"):
        program.score({**table, read: Validated(other, column, n)}, as_of=AS_OF)
    with pytest.raises(ValueError, match="without the values the program reads"):
        program.score({**table, read: Validated(facts[read], ValidColumn(None), n)}, as_of=AS_OF)


@pytest.mark.parametrize("owners", [1 << 5, 1 << 16, 1 << 20])
def test_the_windows_sort_orders_cases_as_a_stable_argsort_does(owners):
    from ecorules.fastcalc._cases import window_bounds

    rng = np.random.default_rng(owners)
    span = 2000
    owner, day = rng.integers(0, owners, 100_000), rng.integers(0, span - 1, 100_000)
    owner[::7], day[::7] = owner[3], day[3]  # ties: one same (enterprise, day) on many rows
    order, _hi, _lo = window_bounds(owner, day, np.zeros(span - 1, np.int64), owners, span)
    assert np.array_equal(order, np.argsort(owner * span + day, kind="stable"))


def test_a_case_table_without_any_uscc_rejects_every_row_by_its_column(tmp_path):
    usccs = generate_registry(5, 3)["uscc"].combine_chunks()
    cases = generate_cases(usccs, 4, 4, ("a83_2",)).to_pylist()
    for case in cases:
        case["uscc"] = None  # null in Parquet: no enterprise key is coded at all; none links, none is lost
    table = pa.Table.from_pylist(cases)
    pq.write_table(table.set_column(1, "uscc", pa.nulls(4, pa.string())), tmp_path / "cases.parquet")
    pacsv.write_csv(pa.table({"uscc": usccs, "district": ["金水区"] * 5, "industrial": ["true"] * 5}),
                    tmp_path / "enterprises.csv")
    summary = run_nightly(tmp_path / "enterprises.csv", tmp_path / "results.sqlite", policies=DATA, as_of=AS_OF,
                          cases=tmp_path / "cases.parquet")
    assert summary.tables["cases"] == {"rows_in": 4, "rows_scored": 0, "rows_rejected": 4}
    rejects = sqlite3.connect(tmp_path / "results.sqlite").execute("SELECT column, reason FROM rejects").fetchall()
    assert rejects == [("uscc", "is missing")] * 4
