"""A Parquet registry (a file or a folder) cut into pieces that workers read themselves: one
row group each, with the file and the row number of every row (``_source``, ``_row``) as a
local run names them, so that rejects say the same file and row on any engine.

The driver lists the files and checks their headers (a missing column is said before any
work is sent); the bytes are read where the piece is scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .._sources import ColumnResolver, ParquetFile, Registry
from ._partition import ROW, SOURCE, DistributedError, Plan


@dataclass(frozen=True)
class Piece:
    path: str
    label: str  # the file as the local run names it in rejects and the summary
    row_group: int
    first_row: int  # 1-based row number of the piece's first row in its file
    columns: tuple[str, ...]  # the headers to read, as written in the file
    rows: int
    facts: tuple[str, ...] = ()  # the fact each of ``columns`` holds


def pieces(plan: Plan, path, *, recurse: bool = True) -> tuple[list[Piece], Registry]:
    resolver = ColumnResolver(plan.policies.facts, plan.needed, plan.aliases)
    registry = Registry(path, resolver, recurse=recurse)
    out = []
    for reader in registry.readers:
        if not isinstance(reader, ParquetFile):
            raise DistributedError(f"{reader.label}: a distributed run reads Parquet (write the registry as Parquet, "
                                   "or run it on one machine)")
        columns = tuple(reader.headers[i] for i in reader.columns.values())
        first = 1
        for group in range(reader.file.metadata.num_row_groups):
            n = reader.file.metadata.row_group(group).num_rows
            out.append(Piece(str(reader.path), reader.label, group, first, columns, n, tuple(reader.columns)))
            first += n
    return out, registry


def read_piece(piece: Piece, facts: list[str] | None = None, *, as_facts: bool = False) -> pa.Table:
    """The piece's rows: the columns of ``facts`` (default: all it has), headed as the file
    heads them, or by the facts' names (``as_facts``: a frame whose files head them
    differently must still have one set of columns); then where each row came from: its
    file's label as a dictionary column (one value, a code per row: Part.batches finds the
    runs of one file by comparing codes, not the label's text row by row) and its row."""
    wanted = [(h, f) for h, f in zip(piece.columns, piece.facts, strict=True) if facts is None or f in facts]
    # one thread: a piece is read by a task that has its core (Spark's task slot, a Dask worker's
    # thread); Arrow's pool on top only added CPU (0.72 against 1.4-1.6 CPU-s for 5 M rows, with
    # the file named by pa.repeat rather than by a list of 500,000 Python strings)
    table = pq.ParquetFile(piece.path, pre_buffer=False).read_row_group(piece.row_group, columns=[h for h, _ in wanted],
                                                                        use_threads=False)
    if as_facts:
        table = table.rename_columns([f for _, f in wanted])
    rows = np.arange(piece.first_row, piece.first_row + table.num_rows, dtype=np.int64)
    label = pa.DictionaryArray.from_arrays(pa.array(np.zeros(table.num_rows, np.int32)),
                                           pa.array([piece.label], pa.string()))
    table = table.append_column(SOURCE, label)
    return table.append_column(ROW, pa.array(rows))


__all__ = ["Piece", "pieces", "read_piece"]
