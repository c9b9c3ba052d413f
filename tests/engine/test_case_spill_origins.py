"""A spilled case's source and row number (engine/cases/_spill.py): a batch of consecutive
rows is spilled without them, its rows' origins following from their position in the table;
a batch with a gap (a CSV line the reader rejected) keeps them. Either way every partition's
rows name the file and line the whole table names, and so do the duplicates' reasons."""

from __future__ import annotations

from dataclasses import astuple

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from ecorules.engine._generate import generate_registry
from ecorules.engine.cases import _spill
from ecorules.engine.cases._generate import generate_cases
from ecorules.engine.cases._table import check_values, read_cases
from test_case_partitions import _plan


def _write_with_gaps(path, table: pa.Table, broken_at: list[int]) -> None:
    """``table`` as CSV, a line of too many fields (a reader's reject) before each row of ``broken_at``."""
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink)
    lines = sink.getvalue().to_pybytes().decode().splitlines()
    out = [lines[0]]
    for k, line in enumerate(lines[1:]):
        if k in broken_at:
            out.append(",".join(["x"] * (table.num_columns + 3)))
        out.append(line)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def test_partition_rows_name_the_file_and_line_the_whole_table_names(tmp_path, monkeypatch):
    usccs = generate_registry(120, 3)["uscc"].combine_chunks()
    cases = generate_cases(usccs, 900, 4, ("a83_2", "a84_2", "local_x"))
    # case_ids out of order, some repeated (across files too): the duplicates are looked for
    ids = np.random.default_rng(5).integers(0, 700, cases.num_rows)
    cases = cases.set_column(0, "case_id", pa.array([f"K{i:05d}" for i in ids]))
    folder = tmp_path / "cases"
    folder.mkdir()
    _write_with_gaps(folder / "a.csv", cases.slice(0, 500), [130, 131, 390])  # batches with gaps
    _write_with_gaps(folder / "b.csv", cases.slice(500), [])  # consecutive lines only
    plan = _plan()
    whole = read_cases(folder, plan, batch_rows=100)
    check_values(whole, plan)
    monkeypatch.setattr(_spill, "PARTITION_ROWS", 60)
    spilled = _spill.spill_cases(folder, plan, batch_rows=100, directory=tmp_path)
    try:
        assert spilled.rows_in == whole.rows_in and len(spilled.read_rejects) == 3
        assert 0 < spilled.runs.start.size < 9  # both kinds of batch were spilled
        duplicates = spilled.duplicates(plan.kind.key)
        ordinals, rejects = [], []
        for buckets in spilled.partitions(60):
            part = spilled.load(buckets)
            assert np.array_equal(part.source, whole.source[part.ordinal])
            assert np.array_equal(part.rows, whole.rows[part.ordinal])
            assert [spilled.sources[s] for s in part.source.tolist()] == [whole.sources[s] for s in
                                                                          whole.source[part.ordinal].tolist()]
            check_values(part, plan, duplicates)
            rejects += part.rejects
            ordinals.append(part.ordinal)
        assert np.array_equal(np.sort(np.concatenate(ordinals)), np.arange(whole.n))
        wanted = sorted(astuple(r) for r in whole.rejects if r.column == "case_id")
        assert len(wanted) > 100 and sorted(astuple(r) for r in rejects if r.column == "case_id") == wanted
        assert sorted(map(astuple, rejects)) == sorted(map(astuple, whole.rejects))
    finally:
        spilled.close()


def test_a_partition_codes_its_keys_from_the_spills_codes_as_coding_them_anew(tmp_path, monkeypatch):
    """The spill codes each enterprise key as written once, in its bucket, and a partition's
    codes follow from those (``CaseTable.link_code``): the same codes, distinct keys, keys
    per row and rejects as coding the partition's keys again, for keys written in forms that
    become one key (blanks, full width), invalid and empty ones, over many partitions."""
    usccs = generate_registry(150, 7)["uscc"].to_pylist()
    rng = np.random.default_rng(8)
    written = []
    for i in rng.integers(0, 150, 1200).tolist():
        form = int(rng.integers(0, 6))
        written.append(usccs[i] if form < 2 else f" {usccs[i]}" if form == 2 else
                       "".join(chr(ord(c) + 0xFEE0) for c in usccs[i]) if form == 3 else
                       usccs[i][:-1] + "?" if form == 4 else None)
    cases = generate_cases(pa.array(usccs), 1200, 9, ("a83_2", "a84_2", "local_x"))
    cases = cases.set_column(cases.column_names.index("uscc"), "uscc", pa.array(written, pa.string()))
    pacsv.write_csv(cases, tmp_path / "cases.csv")
    plan = _plan()
    monkeypatch.setattr(_spill, "PARTITION_ROWS", 100)
    spilled = _spill.spill_cases(tmp_path / "cases.csv", plan, batch_rows=128, directory=tmp_path)
    try:
        duplicates = spilled.duplicates(plan.kind.key)
        groups = spilled.partitions(300)  # buckets of about a hundred rows, partitions of several
        assert sum(len(g) > 1 for g in groups) > 2
        for buckets in groups:
            part = spilled.load(buckets)
            anew = spilled.load(buckets)
            assert part.link_code is not None
            anew.link_code = None  # coded again by encode_texts, as before the spill coded them
            check_values(part, plan, duplicates)
            check_values(anew, plan, duplicates)
            assert np.array_equal(part.uscc_code, anew.uscc_code)
            assert part.uscc_distinct.equals(anew.uscc_distinct) and part.uscc.equals(anew.uscc)
            assert [astuple(r) for r in part.rejects] == [astuple(r) for r in anew.rejects]
            assert np.array_equal(part.valid, anew.valid)
    finally:
        spilled.close()
