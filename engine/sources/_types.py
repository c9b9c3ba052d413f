"""What every registry reader shares: its errors, a reject, a batch.

They live here, not in a reader's module, so that the readers of ``engine/sources/`` and the
older ones of ``engine/_sources.py`` import them without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from ecorules.rules import EcorulesError
from ecorules.rules._arrow import from_bools


class SourceError(EcorulesError, ValueError):
    """The registry cannot be read at all (missing, unreadable, unknown format, bad header)."""


class MissingColumnError(SourceError):
    """A column the policies need is not in the registry; names the fact and its policies."""

    def __init__(self, source: str, fact: str, policies: Iterable[str], accepted: Iterable[str], hint: str = "",
                 *, optional: bool = False):
        self.source, self.fact, self.policies = source, fact, tuple(policies)
        self.accepted = tuple(accepted)
        # An optional fact's cells may be empty, but a rule reads it: a column left out or
        # misnamed read as empty on every row would silently drop that rule's findings.
        empty = ("; its cells may be empty (the fact is optional), but the column must be there"
                 if optional else "")
        super().__init__(
            f"{source}: no column for {fact!r}, needed by {', '.join(self.policies) or 'the policies'}"
            f" (accepted headers: {', '.join(self.accepted)}){empty}{hint}"
        )


@dataclass(frozen=True)
class Reject:
    """A row, or one value of a row, that is not scored, and why."""

    source: str
    row: int | None
    column: str | None
    value: str | None
    reason: str
    # the reason without the values it quotes (engine/_scored.reason_class), where its maker
    # knows it without a regular expression: a duplicate's reason names its key and rows, so
    # each is distinct and two substitutions each cost more than the rest of its counting
    reason_class: str | None = field(default=None, compare=False, repr=False)


@dataclass
class Batch:
    """Up to ``batch_rows`` rows of one file, with the needed columns under their fact names."""

    table: pa.Table  # the rows that were read; the scorer may still reject some
    source: str
    rows: np.ndarray  # int64 row number (see engine/_sources.py) of each row of ``table``
    headers: Mapping[str, str]  # fact name -> the header as written in the file
    rejects: list[Reject] = field(default_factory=list)  # rows dropped before scoring
    rows_in: int = 0  # rows of the file this batch accounts for: table rows + rejected rows
    # columns whose every cell the reading found valid as the scorer checks it (the registry's
    # USCCs, checked for duplicates: engine/_duplicates.py), which the scorer need not check again
    checked: frozenset[str] = frozenset()
    # columns the reading checked so but for a few rows: name -> (those rows, the column's
    # column_mark then); the scorer checks only those rows (engine/_scored.py), and all of
    # them again if the column has changed since (rows dropped, a column replaced)
    suspects: dict[str, tuple[np.ndarray, tuple]] = field(default_factory=dict)


def column_mark(column: pa.ChunkedArray) -> tuple:
    """What tells a column from another taken or sliced out of it, or put in its place: its
    length, its chunks' count, and its first and last chunks' offsets, lengths and data
    buffers' addresses (not every chunk's: a batch with rows dropped as slices has hundreds)."""
    def chunk(c: pa.Array) -> tuple:
        data = c.buffers()[-1]
        return c.offset, len(c), 0 if data is None else data.address

    if not column.num_chunks:
        return (0, 0)
    return len(column), column.num_chunks, chunk(column.chunk(0)), chunk(column.chunk(column.num_chunks - 1))


SLICED_ROWS = 256  # rows taken out of a table up to which the rest is left as slices rather than copied


def without_rows(table: pa.Table, drop: np.ndarray, keep: np.ndarray) -> pa.Table:
    """``table`` without the rows ``drop`` (sorted; ``keep`` the mask of the others). A few
    rows (a batch's undecodable rows, the duplicate filter's held ones) leave the rest as
    slices of the same buffers, combined once before scoring (:func:`made_contiguous`): a take
    copied every column of the batch for them (~40 ms a batch of 238,000 CSV rows of text,
    eight times the combine), a filter ~30 ms."""
    if drop.size > SLICED_ROWS:
        return table.filter(from_bools(keep))
    bounds = [-1, *drop.tolist(), table.num_rows]
    pieces = [table.slice(start + 1, end - start - 1) for start, end in zip(bounds[:-1], bounds[1:], strict=True)
              if end - start > 1]
    return pa.concat_tables(pieces) if pieces else table.slice(0, 0)


def made_contiguous(batch: Batch) -> Batch:
    """``batch`` with each column in one chunk, its suspects' marks following the columns they
    marked (the rows stay where they are). Called in the reading thread: a CSV batch is a chunk
    per slice parsed, and one with 1% bad rows also a chunk per stretch between the rows the
    duplicate filter held (~180); the scorer combined every column anyway (fastcalc/_program.py
    ``_segments``), and before that took rows of many-chunk columns (Arrow concatenates them to
    take), all on the scoring thread, the one a run with bad rows waits for."""
    table = batch.table
    if all(column.num_chunks <= 1 for column in table.columns):
        return batch
    try:
        combined = table.combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # chunks that do not concatenate: left to the scorer
        return batch
    names = set(table.column_names)
    batch.suspects = {name: (rows, column_mark(combined[name]) if name in names and mark == column_mark(table[name])
                             else mark)
                      for name, (rows, mark) in batch.suspects.items()}
    batch.table = combined
    return batch


__all__ = ["Batch", "MissingColumnError", "Reject", "SourceError", "column_mark", "made_contiguous", "without_rows"]
