"""Tables split into partitions by their subject, so that the list state compares one at a time.

The list state (engine/_lists.py) compares a run's justified entries with the stored ones key
by key, and a key (uscc, rule, tag) holds its uscc: a partition by a hash of the uscc splits
the comparison exactly, lifts included (they reach the entries of their subject). With one
partition the tables stay in memory; with several, each partition's rows go to Arrow IPC
files as they are read, and the comparison reads one partition back at a time, so its memory
is that of a partition however many entries there are. The files are unlinked from the start
(``tempfile.TemporaryFile``): a run killed midway leaves none behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import IO

import numpy as np
import pyarrow as pa
from ecorules.rules._arrow import from_numbers, numbers, one_array, string_buffers


def partition_of(usccs: pa.Array, count: int) -> np.ndarray:
    """Each uscc's partition (0 .. count - 1) from its 12th to 17th characters (the end of
    its organization code: nearly uniform in a registry), or its last ones where it is shorter."""
    offsets, data = string_buffers(one_array(usccs))
    if count == 1 or not data.size:
        return np.zeros(len(usccs), np.int64)
    starts, last = offsets[:-1].astype(np.int64), np.diff(offsets).astype(np.int64) - 1
    empty = last < 0  # no character to draw from: partition 0
    mixed = np.zeros(len(usccs), np.int64)
    for k in range(11, 17):
        mixed = mixed * 31 + data[np.where(empty, 0, starts + np.minimum(last, k))]
    return np.where(empty, 0, mixed % count)


class Partitions:
    """Named streams of tables, each split into ``count`` partitions: in memory when there is
    one, else in a temporary file per partition (closed, and so gone, by :meth:`close`),
    which holds its streams one after the other: a stream is written whole before the next
    one of its partition begins (the names are written in turn), then read back from where
    it began. One descriptor per partition (~130 with 2 M entries open and as many justified)."""

    def __init__(self, count: int):
        self.count = count
        self._files: dict[int, IO[bytes]] = {}
        self._writing: dict[int, tuple[str, pa.ipc.RecordBatchStreamWriter]] = {}  # partition -> stream being written
        self._starts: dict[tuple[str, int], int] = {}  # where each stream begins in its partition's file
        self._tables: dict[tuple[str, int], list[pa.Table]] = {}

    def __enter__(self) -> Partitions:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def close(self) -> None:
        for _, writer in self._writing.values():
            writer.close()
        for file in self._files.values():
            file.close()
        self._writing.clear()
        self._files.clear()
        self._tables.clear()

    def add(self, name: str, table: pa.Table) -> None:
        """``table``'s rows to the partitions of their uscc."""
        if self.count == 1:
            self.put(name, 0, table)
            return
        of_row = partition_of(table["uscc"], self.count)
        order = np.argsort(of_row, kind="stable")
        bounds = np.searchsorted(of_row[order], np.arange(self.count + 1))
        table = table.take(from_numbers(order))
        for partition in np.flatnonzero(np.diff(bounds)).tolist():
            self.put(name, partition, table.slice(bounds[partition], bounds[partition + 1] - bounds[partition]))

    def put(self, name: str, partition: int, table: pa.Table, rows_per_batch: int | None = None) -> None:
        """``table`` to partition ``partition`` as it is (read back in batches of at most
        ``rows_per_batch`` rows)."""
        if self.count == 1:
            self._tables.setdefault((name, partition), []).append(
                table if rows_per_batch is None else pa.Table.from_batches(table.to_batches(rows_per_batch), table.schema))
            return
        writing = self._writing.get(partition)
        if writing is not None and writing[0] != name:
            self._finish(partition)
            writing = None
        if writing is None:
            if (name, partition) in self._starts:
                raise ValueError(f"stream {name!r} of partition {partition} was written already")
            file = self._files.get(partition)
            if file is None:
                file = self._files[partition] = tempfile.TemporaryFile(prefix="ecorules-lists-")
            file.seek(0, os.SEEK_END)
            self._starts[name, partition] = file.tell()
            writing = self._writing[partition] = name, pa.ipc.new_stream(pa.PythonFile(file, mode="w"), table.schema)
        writing[1].write_table(table, rows_per_batch)

    def _finish(self, partition: int) -> None:
        _, writer = self._writing.pop(partition)
        writer.close()

    def batches(self, name: str, partition: int) -> Iterator[pa.RecordBatch]:
        """The batches of partition ``partition`` of stream ``name``, in the order they came."""
        if self.count == 1:
            for table in self._tables.get((name, partition), ()):
                yield from table.to_batches()
            return
        if partition in self._writing:  # done with (a writer closing later would write its end where a reader left the file)
            self._finish(partition)
        if (name, partition) not in self._starts:
            return
        file = self._files[partition]
        file.seek(self._starts[name, partition])
        # read, not memory-mapped (open_stream's way with a path): a mapped file's pages stay
        # in the process's RSS while its reader is open, and in_order keeps every partition's open
        with pa.ipc.open_stream(pa.PythonFile(file, mode="r")) as reader:
            yield from reader

    def read(self, name: str, partition: int, schema: pa.Schema) -> pa.Table:
        """Partition ``partition`` of stream ``name`` as one table (no rows: of ``schema``), its
        batches made one: a partition came as a batch of each part it was added from (at 2 M
        entries, ~60 of ~250 rows), and each compute function on the table then ran once per
        batch: at 2 M entries, run 2, _stored_of 1.26 -> 0.36 CPU-s, _live 0.93 -> 0.32 (bench/lists.py's
        store, each step timed, load ~25)."""
        batches = list(self.batches(name, partition))
        table = pa.Table.from_batches(batches, schema)
        return table.combine_chunks() if len(batches) > 1 else table


def in_order(sources: list[Iterator[pa.RecordBatch]], key: str) -> Iterator[pa.Table]:
    """Batches of several sources, each sorted by ``key`` (an integer column, no value in two
    sources), as one sequence sorted by it, a batch or two of each source at a time: what does
    not come after the least of the batches' last keys can go, since nothing left in any source
    comes before it."""
    blocks = {k: (block, numbers(block[key])) for k, source in enumerate(sources) if (block := _next(source)) is not None}
    while blocks:
        last = min(keys[-1] for _, keys in blocks.values())
        ready = []
        for k, (block, keys) in list(blocks.items()):
            n = int(np.searchsorted(keys, last, side="right"))
            if not n:
                continue
            ready.append(block.slice(0, n))
            following = _next(sources[k])  # what is left and a batch more: the frontier moves on a batch, not a rest
            if following is not None:
                blocks[k] = (pa.concat_tables([block.slice(n), following]),
                             np.concatenate([keys[n:], numbers(following[key])]))
            elif n < len(keys):
                blocks[k] = block.slice(n), keys[n:]
            else:
                del blocks[k]
        if len(ready) == 1:  # sorted already (always so with one source)
            yield ready[0]
            continue
        table = pa.concat_tables(ready).combine_chunks()
        yield table.take(from_numbers(np.argsort(numbers(table[key]), kind="stable")))


def _next(source: Iterator[pa.RecordBatch]) -> pa.Table | None:
    for batch in source:
        if batch.num_rows:
            return pa.Table.from_batches([batch])
    return None
