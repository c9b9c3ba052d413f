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
