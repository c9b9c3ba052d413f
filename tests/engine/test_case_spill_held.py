"""A case table held in memory instead of spilled to files (engine/cases/_spill.py,
``MEMORY_BYTES``): a run whose table is held, spilled, or held and then spilled part way
(the budget passed mid-table) writes the same findings, rejects (in the same order), list
entries, district totals and summary; and the bucket pieces read back are the same rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from ecorules.engine._nightly import run_nightly
from ecorules.engine.cases import _spill
from test_case_partitions import _rejects_in_order
from test_case_parts import AS_OF, DATA, _plain_tables, _stored, kind_tables

# how a run's table is kept: MEMORY_BYTES, and what the spill's pieces are then
MODES = {"spilled": 0, "held": 1 << 30, "spilled part way": 48 << 10}


def _run(folder: Path, policies, as_of, mode: str, monkeypatch, days: int = 1):
    """The run(s) with the table kept as ``mode`` says: (summaries, stored of each run, the
    kinds of the spill's pieces per bucket as the first load found them)."""
    pieces = []
    original = _spill.SpilledCases.load

    def load(self, buckets):
        if not pieces:
            pieces.append([{type(p).__name__ for p in files} for files in self.files])
        return original(self, buckets)

    out = folder / f"{mode.replace(' ', '-')}.sqlite"
    summaries, stored = [], []
    with monkeypatch.context() as patch:
        patch.setattr(_spill, "PARTITION_ROWS", 40)
        patch.setattr(_spill, "MEMORY_BYTES", MODES[mode])
        patch.setattr(_spill.SpilledCases, "load", load)
        for day in range(days):
            summary = run_nightly(folder / "enterprises.csv", out, policies=policies,
                                  as_of=as_of + dt.timedelta(days=day), cases=folder / "cases.csv", threads=2)
            summaries.append(summary)
            found = _stored(out, summary.run_id)
            found["rejects in order"] = _rejects_in_order(out, summary.run_id)
            stored.append(found)
    return summaries, stored, pieces[0]


def _same_summary(a, b) -> bool:
    keys = ("rows_in", "rows_scored", "rows_rejected", "findings", "total_yuan", "lighter_law", "already_assessed")
    return all(getattr(a, k, None) == getattr(b, k, None) for k in keys)


@pytest.mark.parametrize("kind", ["plain", "dated"])
def test_a_table_held_spilled_or_spilled_part_way_writes_the_same(tmp_path, kind, monkeypatch):
    policies, as_of = kind_tables(tmp_path, kind)
    found = {mode: _run(tmp_path, policies, as_of, mode, monkeypatch) for mode in MODES}
    kinds = {mode: set().union(*pieces) for mode, (_s, _st, pieces) in found.items()}
    assert kinds["spilled"] == {"PosixPath"} and kinds["held"] == {"Table"}
    assert kinds["spilled part way"] == {"PosixPath"}  # every piece held was written once the budget passed
    (expected_summary,), (expected,), _ = found["spilled"]
    assert expected["findings"]
    for mode in ("held", "spilled part way"):
        (summary,), (stored,), _ = found[mode]
        assert stored == expected, mode
        assert _same_summary(summary, expected_summary), mode
    if kind == "plain":  # case_ids out of order, some duplicated: the duplicates' buckets too
        assert any("duplicate case_id" in r[4] for r in expected["rejects"])
    else:
        assert expected_summary.lighter_law > 0


def test_the_memory_of_earlier_runs_is_routed_into_a_held_table_as_into_a_spilled_one(tmp_path, monkeypatch):
    """一例一次: the second run reads the first's assessments a partition at a time, routed by
    the case_ids of the spill's buckets (engine/cases/_remembered.py reads the pieces held)."""
    _plain_tables(tmp_path)
    spilled, spilled_stored, _ = _run(tmp_path, DATA, AS_OF, "spilled", monkeypatch, days=2)
    held, held_stored, pieces = _run(tmp_path, DATA, AS_OF, "held", monkeypatch, days=2)
    assert set().union(*pieces) == {"Table"}
    assert spilled[1].already_assessed > 100
    assert held_stored == spilled_stored
    assert all(_same_summary(h, s) for h, s in zip(held, spilled, strict=True))


def test_buckets_past_their_budget_write_what_they_held_first_in_order(tmp_path):
    rng = np.random.default_rng(11)
    tables, buckets = [], []
    for start in range(0, 3000, 500):
        n = 500
        tables.append(pa.table({"text": pa.array([f"t{i:05d}-{'x' * int(k)}" for i, k in
                                                  zip(range(start, start + n), rng.integers(0, 9, n), strict=True)]),
                                "number": pa.array(np.arange(start, start + n, dtype=np.int64))}))
        buckets.append(rng.integers(0, 7, n))
    read = {}
    for budget in (0, 40 << 10, 1 << 30):
        written = _spill._Buckets(tmp_path / f"b{budget}", 7, budget)
        for table, bucket in zip(tables, buckets, strict=True):
            written.append(table, bucket)
        written.close()
        kinds = {type(p).__name__ for files in written.files for p in files}
        assert kinds == ({"Table"} if budget == 1 << 30 else {"PosixPath"}), budget
        if budget == 40 << 10:
            assert written.held == 0 and written.memory_left == 0
        read[budget] = [pa.concat_tables([_spill._read(p) for p in files]) for files in written.files]
        assert np.array_equal(written.counts, np.bincount(np.concatenate(buckets), minlength=7))
    for b in range(7):
        # every bucket's rows, in the table's order, whichever way they were kept
        numbers = read[0][b]["number"].to_numpy()
        assert np.array_equal(numbers, np.flatnonzero(np.concatenate(buckets) == b))
        assert read[40 << 10][b].equals(read[0][b]) and read[1 << 30][b].equals(read[0][b])


def test_the_budget_is_the_setting_else_an_eighth_of_memory_at_most_a_gigabyte(monkeypatch):
    monkeypatch.setattr(_spill, "MEMORY_BYTES", 12345)
    assert _spill.memory_budget() == 12345
    monkeypatch.setattr(_spill, "MEMORY_BYTES", None)
    assert 0 < _spill.memory_budget() <= 1 << 30


@pytest.mark.parametrize("mode", list(MODES))
def test_the_wanted_hashes_are_the_distinct_hashes_of_the_keys_as_linked(tmp_path, mode):
    """The registry is filtered by these: a key written twice, or two ways (" K" and "K"), once."""
    from ecorules.engine.cases._table import linked
    from test_case_partitions import _plan

    _plain_tables(tmp_path)
    cases = pacsv.read_csv(tmp_path / "cases.csv", convert_options=pacsv.ConvertOptions(
        column_types={"case_id": pa.string(), "uscc": pa.string()}))
    usccs = cases["uscc"].combine_chunks().to_pylist()
    usccs = [f" {u}" if u is not None and i % 7 == 0 else u for i, u in enumerate(usccs)]  # the same keys, padded
    pacsv.write_csv(cases.set_column(cases.schema.get_field_index("uscc"), "uscc", pa.array(usccs, pa.string())),
                    tmp_path / "padded.csv")
    plan = _plan()
    spilled = _spill.spill_cases(tmp_path / "padded.csv", plan, batch_rows=300, memory_bytes=MODES[mode])
    try:
        present = pa.array([u for u in usccs if u is not None], pa.string())
        expected = np.unique(_spill.text_hashes(linked(plan.facts[plan.link], present)))
        assert np.array_equal(spilled.wanted_hashes, expected)
        assert spilled.wanted_hashes.size < len(present)  # (keys repeat: each once)
    finally:
        spilled.close()
