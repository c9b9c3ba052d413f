"""Spark's first pass reads each batch's keys once for the census and the scoring
(engine/distributed/_partition.py's ``Part._counted``): what it scores and the digests it
gives equal those of the census and the scoring done apart. No Spark needed: the executors'
side of ``score`` in one process."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from distributed_data import bad_registry
from ecorules.engine.distributed import _frames
from ecorules.engine.distributed._partition import SOURCE, Part, make_plan, needed_columns

AS_OF = dt.date(2012, 4, 14)


def _scored(part: Part, table: pa.Table, census: list | None) -> tuple:
    batches = part.score(table, census)
    return ([(b.source, b.rows_in, b.rows_scored, b.rows_rejected, b.total_fen, b.districts, sorted(b.reject_rows()))
             for b in batches], _frames.findings_table(batches, _frames.names(part.plan)).to_pylist())


def test_the_first_pass_scores_and_counts_keys_as_the_census_and_the_scoring_apart(tmp_path):
    folder = bad_registry(tmp_path / "bad")  # wrong check characters, short and missing USCCs, repeated ones
    plan = make_plan(None, AS_OF)
    for path in sorted(folder.glob("*.parquet")):
        table = pq.read_table(path)
        uscc = table.column_names[0]
        # a valid code with blanks around it: the census counts it, the scorer reads it, as its trimmed self
        padded = table[uscc].to_pylist()
        padded[3] = f" {padded[3]} "
        table = table.set_column(0, uscc, pa.array(padded, pa.string()))
        table = table.select(needed_columns(plan, table.column_names))
        found: list[np.ndarray] = []
        together = _scored(Part(plan, 1), table, found)
        apart = _scored(Part(plan, 1), table, None)
        assert together == apart
        assert together[0] and any(rejects for *_, rejects in together[0])  # the bad rows were rejected alike
        assert np.array_equal(np.concatenate(found), Part(plan, 1).digests(table))
        assert len(np.concatenate(found)) < table.num_rows  # invalid keys have no digest


def test_pieces_with_their_file_as_codes_score_as_with_their_file_as_text(tmp_path):
    """A piece names its file by a dictionary code (read_piece), which Part.batches compares
    instead of the label's text: pieces of two files in one table are cut into the same
    batches, named and scored alike, their rejects at the same rows, as with the label as text
    (a Spark frame's ``_source``, a Dask frame's: dask._file_as_text)."""
    from ecorules.engine.distributed._pieces import pieces, read_piece

    folder = bad_registry(tmp_path / "bad")
    plan = make_plan(None, AS_OF)
    found, _registry = pieces(plan, folder)
    assert len({piece.path for piece in found}) > 1
    as_codes = pa.concat_tables([read_piece(piece, as_facts=True) for piece in found])
    as_text = as_codes.set_column(as_codes.schema.get_field_index(SOURCE), SOURCE, as_codes[SOURCE].cast(pa.string()))
    assert pa.types.is_dictionary(as_codes[SOURCE].type) and as_text[SOURCE].type == pa.string()
    assert [(b.source, b.rows.tolist()) for b in Part(plan, 1).batches(as_codes)] == \
        [(b.source, b.rows.tolist()) for b in Part(plan, 1).batches(as_text)]
    scored = _scored(Part(plan, 1), as_codes, [])
    assert scored == _scored(Part(plan, 1), as_text, [])
    assert len(scored[0]) == len({piece.path for piece in found}) and any(rejects for *_, rejects in scored[0])
