"""The case stage a part of the cases at a time (engine/cases/_parts.py) writes what the
stage in one part writes: the same findings (superseded ones and their winners), list
entries, rejects with their rows and reasons, district totals and counts, on the generated
table of test_case_batch (bad rows of every kind) and on the dated policies of the lighter
law (行政处罚法 art 37), with parts of a few dozen rows."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from ecorules.engine._generate import generate_registry
from ecorules.engine._nightly import run_nightly
from ecorules.engine.cases import _parts
from ecorules.engine.cases._generate import bad_cases, generate_cases

DATA = Path(__file__).parent.parent / "data" / "cases"
AS_OF = dt.date(2026, 1, 1)


def test_parts_hold_every_case_of_an_enterprise_once_in_order():
    rng = np.random.default_rng(3)
    enterprise = rng.integers(0, 50, 1000)
    parts, count = _parts.by_enterprise(enterprise, 97)
    assert count == 11 and len(parts) == 11
    together = np.concatenate(parts)
    assert np.array_equal(np.sort(together), np.arange(1000))
    for index, part in enumerate(parts):
        assert np.all(np.diff(part) > 0)
        assert set((enterprise[part] % count).tolist()) <= {index}
    assert _parts.by_enterprise(enterprise, 1000)[1] == 1
    assert [(s.start, s.stop) for s in _parts.in_rows(10, 4)] == [(0, 4), (4, 8), (8, 10)]


def _plain_tables(folder: Path) -> None:
    usccs = generate_registry(310, 7)["uscc"].combine_chunks()
    rng = np.random.default_rng(8)
    good, rejected, strangers = usccs.slice(0, 300), usccs.slice(300, 5), usccs.slice(305, 5)
    districts = np.where(rng.random(300) < 0.5, "金水区", "二七区").astype(object)
    districts[:3] = "经开区"  # not a value of this folder: the registry rejects these three
    registry = pa.table({
        "uscc": pa.concat_arrays([good, rejected]),
        "district": pa.array([*districts, *["火星区"] * 5], pa.string()),
        "industrial": pa.array(np.where(rng.random(305) < 0.7, "true", "false")),
    })
    cases = generate_cases(good, 2500, 9, ("a83_2", "a84_2", "local_x"))
    bad, _kinds = bad_cases(cases, strangers, rejected, 10)
    pacsv.write_csv(registry, folder / "enterprises.csv")
    pacsv.write_csv(pa.concat_tables([cases, bad]), folder / "cases.csv")


def _stored(path: Path, run_id: int) -> dict[str, list]:
    db = sqlite3.connect(path)
    try:
        return {
            "findings": sorted(db.execute(
                "SELECT uscc, case_id, policy, rule, amount_yuan, payer, status, superseded_by, kind "
                "FROM findings WHERE run_id = ?", (run_id,)).fetchall(), key=repr),
            "sanctions": sorted(db.execute("SELECT uscc, list, rule FROM sanctions WHERE run_id = ?", (run_id,)).fetchall(),
                                key=repr),
            "rejects": sorted(db.execute("SELECT source, row, \"column\", value, reason FROM rejects "
                                         "WHERE run_id = ?", (run_id,)).fetchall(), key=repr),
            "districts": sorted(db.execute("SELECT district, deduction_fen, cases FROM district_totals WHERE run_id = ?",
                                           (run_id,)).fetchall()),
        }
    finally:
        db.close()


def _run(folder: Path, policies, as_of: dt.date, part_rows: int | None, name: str):
    shipped = _parts.PART_ROWS
    _parts.PART_ROWS = part_rows or shipped
    try:
        summary = run_nightly(folder / "enterprises.csv", folder / f"{name}.sqlite", policies=policies, as_of=as_of,
                              cases=folder / "cases.csv", threads=2)
    finally:
        _parts.PART_ROWS = shipped
    return summary, _stored(folder / f"{name}.sqlite", summary.run_id)


def _dated_folder(folder: Path) -> Path:
    from test_case_batch_lighter_law import _folder

    out = folder / "dated"
    out.mkdir()
    return _folder(out)

def kind_tables(folder: Path, kind: str) -> tuple[Path, dt.date]:
    """The tables of a test run over both kinds of case policies, written into ``folder``:
    "plain" (this folder's tables, every reject kind) or "dated" (law versions by act date);
    the policies and as_of to run them with."""
    if kind == "plain":
        _plain_tables(folder)
        return DATA, AS_OF
    from test_case_batch_lighter_law import AS_OF as DATED_AS_OF
    from test_case_batch_lighter_law import _table

    usccs = generate_registry(60, 3)["uscc"].combine_chunks().to_pylist()
    pacsv.write_csv(pa.table({"uscc": usccs}), folder / "enterprises.csv")
    pacsv.write_csv(_table(usccs, 900, 4), folder / "cases.csv")
    return _dated_folder(folder), DATED_AS_OF



@pytest.mark.parametrize("kind", ["plain", "dated"])
def test_a_run_in_parts_writes_what_a_run_in_one_part_writes(tmp_path, kind):
    policies, as_of = kind_tables(tmp_path, kind)
    whole, expected = _run(tmp_path, policies, as_of, None, "whole")
    parted, got = _run(tmp_path, policies, as_of, 37, "parts")
    assert got == expected
    assert (parted.rows_in, parted.rows_scored, parted.rows_rejected, parted.findings, parted.total_yuan,
            parted.lighter_law) == (whole.rows_in, whole.rows_scored, whole.rows_rejected, whole.findings,
                                    whole.total_yuan, whole.lighter_law)
    # the data exercise what the parts must keep: acts and windows across parts, rejects
    statuses = {row[6] for row in expected["findings"]}
    assert "imposed" in statuses and whole.rows_scored > 37 * 10
    if kind == "plain":
        assert "superseded" in statuses and expected["rejects"]
    else:
        assert whole.lighter_law > 0
