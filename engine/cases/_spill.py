"""The case table in partitions spilled to temporary Arrow IPC files, so that a run's memory
follows a partition's size, not the table's.

The table is read once, batch by batch; each row goes to one of ``BUCKETS`` buckets by a hash
of its enterprise key as the registry compares it (``linked``: trimmed, a USCC in ASCII), so
that every case of an enterprise is in one bucket, and is appended to that bucket's file with
its position in the table (``ordinal``), and its source and row number there unless they follow
from the position (a batch of consecutive rows, nearly every one: its first row's source and
number kept in memory, 12 bytes a row fewer written and read back). Buckets are then
put together, consecutive ones, into partitions of about ``PARTITION_ROWS`` rows, and a
partition is loaded, in the table's row order, when the stage comes to it.

Each enterprise key as written is coded in its bucket, once for the table (``_LinkCodes``),
its code spilled with the row: a partition's keys are coded from the codes of its buckets
(``_table.check_values``), not hashed again, and only a key met for the first time adds
its hash to the keys the registry is filtered by and its USCC check to its code's.

A duplicated case_id may be in any two buckets. Unless the table is in strictly ascending
case_id order (a database export usually is: no duplicate possible, nothing more to do), the
case_ids are hashed again into buckets of their own, read back from the spilled files a
column at a time, and each case_id bucket finds its duplicates: every row of a case_id but
the first (the lowest position in the table) is a reject naming that first row, as when the
table was held whole. Only the duplicates are kept.

A table whose buckets fit the run's memory for them (``memory_budget``: the bench's 10 M
cases are ~0.8 GB) is not written at all: each batch's rows grouped by bucket are held as
they are, a bucket's pieces where its files would be (``SpilledCases.files``), and read
from there as from the files (``_read``). Writing and reading back the files cost the main
thread a fifth of its time in a case run (an IPC write per bucket and batch, the folder
removed). Once the pieces held would pass the budget, every piece held is written to its
bucket's file and the rest of the table spilled as before: memory follows the budget, not
the table.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.fastcalc._cases import TextCodes, bucket_places, scatter_bits, scatter_texts
from ecorules.fastcalc._cases import text_hashes as _text_hashes
from ecorules.rules._arrow import (
    bools,
    distinct_sorted,
    from_numbers,
    numbers,
    one_array,
    string_buffers,
)

from .._prefetch import prefetch
from .._sources import ColumnResolver, Registry, Reject
from ._plan import CasePlan
from ._table import (
    CaseReading,
    CaseTable,
    _ascending,
    _codes,
    _concat,
    _stripped,
    linked_checked,
    repeats,
)

PARTITION_ROWS = 1 << 20  # rows of a partition (read when called: a test makes them few)
# bytes of the spilled columns held in memory instead of written (see the module), read when
# called: a test sets 0 (every table spilled) or a few kilobytes (spilled part way). None:
# ``memory_budget()``
MEMORY_BYTES: int | None = None
_MOST_HELD = 1 << 30
# buckets: about one per partition of the table's estimated rows (a partition of one file is
# in the table's order as written, not sorted again), at most MAX_BUCKETS (a file open each)
MAX_BUCKETS = 256
BUCKETS = 64  # where the table's size is not known
_SOURCE, _ROW, _ORDINAL = "__ecorules_source", "__ecorules_row", "__ecorules_ordinal"
_KEY = "__ecorules_key"
_LINK_CODE = "__ecorules_link_code"  # int32: the enterprise key as written coded for the whole table (_LinkCodes)


def text_hashes(column: pa.Array) -> np.ndarray:
    """A uint64 hash per text of a string array (nulls hash as empty texts) from its length
    and last eight bytes, read from the array's buffers: case_ids and USCCs differ there
    (fastcalc/_cases.pyx, one pass)."""
    column = one_array(column)  # (combine_chunks copies even a single chunk)
    if not len(column):
        return np.zeros(0, np.uint64)
    offsets, data = string_buffers(column)
    null = bools(column.is_null()).view(np.uint8) if column.null_count else np.zeros(0, np.uint8)
    return _text_hashes(offsets, data, null)


def buckets_of(keys: pa.Array, count: int) -> np.ndarray:
    """The bucket of each enterprise key (as ``linked`` gives it) that its cases are spilled
    to, of ``count`` buckets."""
    return (text_hashes(keys) % np.uint64(count)).astype(np.int64)


def bucket_count(estimated_rows: int | None, partition_rows: int | None = None) -> int:
    if not estimated_rows:
        return BUCKETS
    return int(min(MAX_BUCKETS, max(1, -(-estimated_rows // (partition_rows or PARTITION_ROWS)))))


def memory_budget() -> int:
    """The bytes of a case table held in memory rather than spilled (``MEMORY_BYTES``, else an
    eighth of the machine's memory, at most 1 GiB: the bench's 10 M cases held ~0.8 GB beside
    a run's ~1.1 GiB peak)."""
    if MEMORY_BYTES is not None:
        return MEMORY_BYTES
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not known (not POSIX): spilled, as before
        return 0
    return int(min(_MOST_HELD, physical // 8))


def _ints(column) -> np.ndarray:
    """A column of integers as numpy (from its buffers, a chunk at a time: pyarrow's to_numpy
    imports pandas)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    return np.concatenate([numbers(c) for c in chunks]) if chunks else np.zeros(0, np.int64)


@dataclass
class Duplicates:
    """The rows whose case_id an earlier row of the table holds: by position in the table
    (ascending), their case_id and the reason naming the first row."""

    ordinal: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    values: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def of(self, ordinals: np.ndarray) -> tuple[np.ndarray, list[str], list[str]]:
        """Positions into ``ordinals`` of the duplicates among them, their values, reasons."""
        if not self.ordinal.size or not ordinals.size:
            return np.zeros(0, np.int64), [], []
        at = np.minimum(np.searchsorted(self.ordinal, ordinals), self.ordinal.size - 1)
        hit = np.flatnonzero(self.ordinal[at] == ordinals)
        return hit, [self.values[i] for i in at[hit].tolist()], [self.reasons[i] for i in at[hit].tolist()]


@dataclass
class SpilledCases:
    """The case table read into bucket files (see the module)."""

    folder: Path
    buckets: int
    # per bucket its files (a new one where a file's columns change type), or the tables held
    # in their place (see the module): ``_read`` reads either
    files: list[list[Path | pa.Table]]
    counts: np.ndarray  # rows per bucket
    sources: list[str]
    headers: dict[str, str]
    rows_in: int  # readable rows + rows the reader rejected
    read_rejects: list[Reject]
    described: list[dict[str, str]]
    warnings: list[str]
    # the distinct enterprise keys of the table (linked), for the registry's first pass: the
    # texts where asked for (a cluster's workers read the registry), and their hashes, sorted
    wanted: pa.Array | None
    wanted_hashes: np.ndarray
    ascending: bool  # case_ids non-empty and strictly ascending in the table's order: no duplicate
    columns: tuple[str, ...]
    # the batches of consecutive rows, whose rows were spilled without their source and row
    # number: per batch its first position in the table (ascending), its source, its first row
    runs: _Runs = field(default_factory=lambda: _Runs().done())
    link: LinkCodes = field(default_factory=lambda: LinkCodes())  # the enterprise keys' codes (_LinkCodes)
    memory_bytes: int = 0  # what is left of the memory budget (the duplicates' case_id buckets may hold it)

    @property
    def held(self) -> bool:
        """Whether the table is held in memory, every bucket of it (none written)."""
        return all(isinstance(piece, pa.Table) for pieces in self.files for piece in pieces)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def partitions(self, partition_rows: int | None = None) -> list[list[int]]:
        """Consecutive buckets in groups of about ``partition_rows`` rows (at least a bucket
        each; empty buckets left out)."""
        limit = partition_rows or PARTITION_ROWS
        groups: list[list[int]] = []
        size = 0
        for bucket, count in enumerate(self.counts.tolist()):
            if not count:
                continue
            if not groups or size + count > limit:
                groups.append([])
                size = 0
            groups[-1].append(bucket)
            size += count
        return groups or [[]]

    def load(self, buckets: Iterable[int]) -> CaseTable:
        """The rows of ``buckets`` as a case table (sources and headers of the whole table),
        in the table's row order."""
        buckets = list(buckets)
        read = [(k, _read(path, combine=False)) for k, b in enumerate(buckets) for path in self.files[b]]
        tables = [t for _k, t in read if t.num_rows]
        if not tables:
            empty = np.zeros(0, np.int64)
            return CaseTable(_concat([], self.columns), self.sources, np.zeros(0, np.int32), empty, self.headers, 0,
                             ordinal=empty)
        ordinal = np.concatenate([_ints(t[_ORDINAL]) for t in tables]).astype(np.int64)
        source = rows = None  # every row of a batch of consecutive rows (nearly always): once in order, below
        if any(_ROW in t.column_names for t in tables):
            origins = [self.runs.origin(t) for t in tables]
            source = np.concatenate([o[0] for o in origins]).astype(np.int32)
            rows = np.concatenate([o[1] for o in origins]).astype(np.int64)
        # the keys' codes in their buckets made the partition's: a bucket's after the buckets' before it
        begin, valid = self.link.of(buckets)
        link_code = np.concatenate([_partition_codes(_ints(t[_LINK_CODE]), int(begin[k])) for k, t in read if t.num_rows])
        try:  # chunks of the files' batches, copied once below (combined, or taken in the table's order)
            whole = pa.concat_tables([t.select(list(self.columns)) for t in tables], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # files of other types (rare): as _table._concat does
            whole = _concat([t.select(list(self.columns)) for t in tables], self.columns)
        if ordinal.size > 1 and np.any(np.diff(ordinal) < 0):
            order = np.argsort(ordinal, kind="stable")
            whole = whole.take(from_numbers(order))
            ordinal = ordinal[order]
            source, rows = (None, None) if source is None else (source[order], rows[order])
            link_code = link_code[order]
        if source is None:
            source, rows = self.runs.of(ordinal)
            source = source.astype(np.int32)
        # what the spill found of each key as written, by its code: the USCC check, the code itself
        return CaseTable(whole.combine_chunks(), self.sources, source, rows, self.headers, int(ordinal.size),
                         ordinal=ordinal, link_valid=None if valid is None else valid[link_code], link_code=link_code,
                         link_codes=int(begin[-1]))

    def duplicates(self, key: str) -> Duplicates:
        """The rows of a case_id seen at an earlier row (see the module)."""
        if self.ascending:
            return Duplicates()
        keyed = _Buckets(self.folder / "keys", self.buckets, self.memory_bytes)
        for files in self.files:
            for path in files:
                table = _read(path, combine=False)
                table = table.select([c for c in (key, _SOURCE, _ROW, _ORDINAL) if c in table.column_names]).combine_chunks()
                source, row = self.runs.origin(table)
                text = _stripped(table[key])
                bucket = (text_hashes(text) % np.uint64(self.buckets)).astype(np.int64)
                keyed.append(pa.table({_KEY: text, _SOURCE: from_numbers(source.astype(np.int32)),
                                       _ROW: from_numbers(row.astype(np.int64)), _ORDINAL: table[_ORDINAL]}), bucket)
        keyed.close()
        found: list[tuple[np.ndarray, list, list]] = []
        for files in keyed.files:
            tables = [_read(path) for path in files]
            if not tables:
                continue
            table = pa.concat_tables(tables).combine_chunks()
            found.append(_duplicated(table, key, self.sources))
            del table, tables
        shutil.rmtree(self.folder / "keys", ignore_errors=True)
        if not found:
            return Duplicates()
        ordinal = np.concatenate([f[0] for f in found])
        values = [v for f in found for v in f[1]]
        reasons = [r for f in found for r in f[2]]
        order = np.argsort(ordinal, kind="stable")
        return Duplicates(ordinal[order], [values[i] for i in order.tolist()], [reasons[i] for i in order.tolist()])

    def close(self) -> None:
        self.files = [[] for _ in self.files]  # (the tables held)
        shutil.rmtree(self.folder, ignore_errors=True)


def _duplicated(table: pa.Table, key: str, sources: list[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """In one case_id bucket: (positions in the table, case_ids, reasons) of every row of a
    non-empty case_id but its first (``_table._duplicates`` over the whole table)."""
    codes, keys = _codes(table[_KEY])
    ordinal = _ints(table[_ORDINAL])
    rows = np.flatnonzero(codes >= 0)
    dup, original = repeats(rows[np.lexsort((ordinal[rows], codes[rows]))], codes)
    if not dup.size:
        return np.zeros(0, np.int64), [], []
    values = keys.take(from_numbers(codes[dup])).to_pylist()
    source, row = _ints(table[_SOURCE]), _ints(table[_ROW])
    reasons = [f"duplicate {key} {value!r}: first at row {int(row[f])} of {sources[int(source[f])]}"
               for value, f in zip(values, original.tolist(), strict=True)]
    return ordinal[dup].astype(np.int64), values, reasons


class _Buckets:
    """Bucket files being written: a table's rows appended to the files of their buckets.
    Within ``memory_bytes``, the tables are held in the files' place instead (their
    ``nbytes``, ``held``), until one more would pass it: then every table held is written to
    its bucket's files, in order, and so is the rest (see the module)."""

    def __init__(self, folder: Path, count: int, memory_bytes: int = 0):
        self.folder, self.count = folder, count
        self.memory_bytes, self.held = max(memory_bytes, 0), 0
        self._holding = self.memory_bytes > 0
        if not self._holding:
            folder.mkdir(parents=True, exist_ok=True)
        self.files: list[list[Path | pa.Table]] = [[] for _ in range(count)]
        self.counts = np.zeros(count, np.int64)
        self._writers: list = [None] * count  # per bucket (writer, its schema) or None

    @property
    def memory_left(self) -> int:
        return self.memory_bytes - self.held if self._holding else 0

    def append(self, table: pa.Table, bucket: np.ndarray) -> None:
        place, counts = bucket_places(np.ascontiguousarray(bucket, np.int64), self.count)
        self.append_grouped(grouped_by_place(table, place) if table.num_rows else table, counts)

    def append_grouped(self, grouped: pa.Table, counts: np.ndarray) -> None:
        """A table whose rows are grouped by bucket (``counts`` rows of each, in order)."""
        start = 0
        for b, count in enumerate(counts.tolist()):
            if count:
                self._write(b, grouped.slice(start, count))
                start += count
        self.counts += counts

    def _write(self, bucket: int, table: pa.Table) -> None:
        if self._holding:
            size = table.nbytes  # (a slice's own bytes)
            if self.held + size <= self.memory_bytes:
                self.files[bucket].append(table)
                self.held += size
                return
            self._write_held()
        self._write_file(bucket, table)

    def _write_held(self) -> None:
        """The tables held written to their buckets' files, in order: from now on, every table."""
        self._holding = False
        self.folder.mkdir(parents=True, exist_ok=True)
        held, self.files = self.files, [[] for _ in range(self.count)]
        for bucket, tables in enumerate(held):
            for table in tables:
                self._write_file(bucket, table)
        self.held = 0

    def _write_file(self, bucket: int, table: pa.Table) -> None:
        # IPC streams: a dictionary column (Parquet's strings) may change its dictionary per batch
        open_ = self._writers[bucket]
        if open_ is not None and not open_[1].equals(table.schema):
            open_[0].close()  # a file whose columns have other types: a file of its own
            open_ = None
        if open_ is None:
            path = self.folder / f"{bucket}-{len(self.files[bucket])}.arrow"
            self.files[bucket].append(path)
            open_ = self._writers[bucket] = (pa.ipc.new_stream(path, table.schema), table.schema)
        open_[0].write_table(table)

    def close(self) -> None:
        for open_ in self._writers:
            if open_ is not None:
                open_[0].close()
        self._writers = [None] * self.count


def grouped_by_place(table: pa.Table, place: np.ndarray, order: np.ndarray | None = None) -> pa.Table:
    """``table`` with row ``i`` moved to ``place[i]`` (``bucket_places``): the columns of
    texts, numbers, dates and flags scattered in one sequential read of each (the buckets'
    rows, ~10-256 streams, are written in order); a column of another type taken by the
    order the places give (a ``take`` by the grouped order cost ~60 ms per million USCCs,
    the texts read at random). ``order``: the grouped order, where known (its inverse)."""
    columns = []
    for column in table.columns:
        column = one_array(column)  # (combine_chunks copies even a single chunk)
        moved = _scattered(column, place)
        if moved is None:
            if order is None:
                order = np.empty(place.size, np.int64)
                order[place] = np.arange(place.size, dtype=np.int64)
            moved = column.take(from_numbers(order))
        columns.append(moved)
    return pa.Table.from_arrays(columns, schema=table.schema)


def _scattered(column: pa.Array, place: np.ndarray) -> pa.Array | None:
    """``column`` scattered by ``place``; None for a type not scattered here."""
    type_, n = column.type, len(column)
    if pa.types.is_dictionary(type_):  # (Parquet's enums) the indices scattered, the dictionary kept
        indices = _scattered(column.indices, place)
        return None if indices is None else pa.DictionaryArray.from_arrays(indices, column.dictionary, safe=False,
                                                                            ordered=type_.ordered)
    string = pa.types.is_string(type_) or pa.types.is_large_string(type_)
    fixed = (pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_temporal(type_)) and (
        type_.bit_width in (8, 16, 32, 64))
    if not (string or fixed or pa.types.is_boolean(type_)):
        return None
    buffers = column.buffers()
    validity = None
    if column.null_count:
        validity = pa.py_buffer(scatter_bits(np.frombuffer(buffers[0], np.uint8), column.offset, place))
    if string:
        offsets, data = string_buffers(column)
        out_offsets, out_data = scatter_texts(offsets, data, place)
        return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(out_offsets), pa.py_buffer(out_data)],
                                     null_count=column.null_count)
    if pa.types.is_boolean(type_):
        values = scatter_bits(np.frombuffer(buffers[1], np.uint8), column.offset, place)
        return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(values)], null_count=column.null_count)
    raw = np.frombuffer(buffers[1], np.dtype(f"u{type_.bit_width // 8}"))[column.offset:column.offset + n]
    out = np.empty(n, raw.dtype)
    out[place] = raw
    return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(out)], null_count=column.null_count)


def _read(path: Path | pa.Table, columns: list[str] | None = None, combine: bool = True) -> pa.Table:
    """A bucket's file, or the table held in its place (``_Buckets``)."""
    if isinstance(path, pa.Table):
        table = path
    else:
        # mapped, not read: the batches are views of the file's pages (the reading copied each
        # into fresh memory, which ``combine_chunks`` or ``take`` then copied once more)
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_stream(source).read_all()
    table = table if columns is None else table.select(columns)
    return table.combine_chunks() if combine and table.num_rows else table


def spill_cases(path, plan: CasePlan, *, encoding: str | None = None, table: str | None = None, batch_rows: int,
                aliases: Mapping[str, Iterable[str]] | None = None, recurse: bool = True,
                directory: str | Path | None = None, texts: bool = False,
                memory_bytes: int | None = None) -> SpilledCases:
    """Read the case table's needed columns into bucket files (see the module); ``texts``:
    the distinct enterprise keys as texts too, not only their hashes; ``memory_bytes``: what
    may be held in memory instead (None: ``memory_budget()``)."""
    needed = plan.needed()
    resolver = ColumnResolver(plan.facts, needed, aliases, optional=plan.optional_columns)
    reader = Registry(path, resolver, encoding=encoding, table=table, batch_rows=batch_rows, recurse=recurse)
    _remove_orphans(Path(directory or tempfile.gettempdir()))
    folder = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=directory))
    try:
        return _spill(reader, plan, folder, path, texts, memory_budget() if memory_bytes is None else memory_bytes)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


_PREFIX = "ecorules-cases-"


def _remove_orphans(directory: Path) -> None:
    """Remove the spills of runs whose process is gone (killed: nothing of theirs removed
    them; at ten million cases a spill is most of a gigabyte). A spill's name holds its
    process id; another user's process, or one alive, keeps its spill."""
    try:
        found = [p for p in directory.iterdir() if p.name.startswith(_PREFIX) and p.is_dir()]
    except OSError:
        return
    for path in found:
        pid = path.name[len(_PREFIX):].partition("-")[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # alive, another user's
            continue


def _spill(reader: Registry, plan: CasePlan, folder: Path, path, texts: bool, memory_bytes: int) -> SpilledCases:
    count = bucket_count(getattr(reader, "estimated_rows", None))
    buckets = _Buckets(folder / "cases", count, memory_bytes)
    reading = CaseReading()
    wanted = _Distinct() if texts else None
    # the hashes of the keys met for the first time, made distinct and sorted once at the end:
    # a key new to its bucket's codes is a distinct text already (a HashSet of them, grown from
    # a thousand slots to millions, cost the main thread as much as the coding's own growth)
    wanted_hashes = _Grown(np.uint64)
    runs = _Runs()
    order = _Order()
    link = _LinkCodes(count, plan.facts[plan.link].format == "uscc")
    # three threads: this one codes the keys and writes (or holds) the buckets' pieces, the
    # grouping thread groups each batch by bucket, the reading thread reads the next and hashes
    # its keys (the Parquet reader's decoding, waited for by the grouping thread, cost it a
    # fifth of its time; the files' writing gone, the grouping thread paced the spill)
    read = prefetch(_hashed(reading.batches(reader, plan), plan, count, runs, order), depth=1,
                    name="ecorules-case-read")
    grouped_batches = prefetch(_grouped(read, count), depth=2, name="ecorules-case-spill")
    try:
        for grouped, counts, keys, hashes, moved, link_valid in grouped_batches:
            # each key as written coded within its bucket, once for the table (a partition's codes
            # follow from its buckets', _table.check_values), its rows together (a bucket's table of
            # keys stays in the caches); the keys met for the first time are the table's distinct ones
            codes, new = link.add(grouped[plan.link], counts, link_valid)
            new = moved[new]
            wanted_hashes.extend(hashes[new])
            if wanted is not None:
                distinct = keys.take(from_numbers(new))
                wanted.add(distinct.drop_null() if distinct.null_count else distinct)
            buckets.append_grouped(grouped.append_column(_LINK_CODE, from_numbers(codes)), counts)
    finally:
        grouped_batches.close()  # (the threads stopped before the files are closed)
        read.close()
        buckets.close()
    return SpilledCases(folder, count, buckets.files, buckets.counts, reading.sources or [str(path)], reading.headers,
                        reading.rows_in, reading.read_rejects,
                        reader.described(), reader.warnings, None if wanted is None else wanted.result(),
                        distinct_sorted(wanted_hashes.values()), order.ascending, tuple(plan.case_columns), runs.done(), link.done(),
                        buckets.memory_left)


class _Order:
    """Whether the case_ids read so far are non-empty and strictly ascending (``_hashed``)."""

    def __init__(self):
        self.ascending, self.last_key = True, None

    def add(self, column) -> None:
        if not self.ascending:
            return
        text = _stripped(column)
        last_key = self.last_key
        self.ascending = _ascending(text) and (
            pc.utf8_length(text[0]).as_py() > 0 if last_key is None else last_key < text[-1].as_py() and last_key < text[0].as_py())
        self.last_key = text[-1].as_py() if self.ascending else None


def _hashed(batches, plan: CasePlan, count: int, runs: _Runs, order: _Order):
    """The spill's first step, in the reading thread (which otherwise waits for the Parquet
    reader's decoding): each batch of the table with its source and row columns where they do
    not follow from its position, the keys in the registry's form, per row whether its key is
    a valid USCC (or None), their hashes, buckets, and the batch's first position."""
    link_fact = plan.facts[plan.link]
    ordinal = 0
    for source, rows, cases in batches:
        n = cases.num_rows
        if not n:
            continue
        # the enterprise key in the registry's form (per row: cheaper than coding the texts first)
        keys, link_valid = linked_checked(link_fact, cases[plan.link])
        hashes = text_hashes(keys)
        bucket = (hashes % np.uint64(count)).astype(np.int64)
        order.add(cases[plan.kind.key])
        rows = np.asarray(rows, np.int64)
        if int(rows[-1]) - int(rows[0]) == n - 1 and (n < 2 or bool(np.all(np.diff(rows) == 1))):
            runs.add(ordinal, source, int(rows[0]))  # its source and rows follow from the ordinal
        else:
            cases = cases.append_column(_SOURCE, from_numbers(np.full(n, source, np.int32)))
            cases = cases.append_column(_ROW, from_numbers(rows))
        yield cases, keys, link_valid, hashes, bucket, ordinal
        ordinal += n


def _grouped(hashed, count: int):
    """The spill's second step, in a thread of its own: each batch (``_hashed``) with its
    position column, its rows grouped by bucket. Per batch (the grouped table, rows per
    bucket, the keys in the registry's form and their hashes in the batch's order, per grouped
    row its row in the batch, per grouped row whether its key is a valid USCC or None)."""
    for cases, keys, link_valid, hashes, bucket, ordinal in hashed:
        n = cases.num_rows
        place, counts = bucket_places(bucket, count)
        moved = np.empty(n, np.int64)
        moved[place] = np.arange(n, dtype=np.int64)
        # each grouped row's position in the table follows from its row in the batch (``moved``),
        # not scattered as a column of its own
        grouped = grouped_by_place(cases, place, moved).append_column(_ORDINAL, from_numbers(moved + ordinal))
        yield grouped, counts, keys, hashes, moved, None if link_valid is None else link_valid[moved]


class _LinkCodes:
    """The enterprise keys of the case table as written coded (``TextCodes``), a bucket's
    apart, and per code whether its text is a valid USCC as written (``linked_checked``;
    ``checked`` False: not known, the key not a USCC)."""

    def __init__(self, count: int, checked: bool):
        self.codes = [TextCodes() for _ in range(count)]
        self.valid = [_Grown(np.bool_) for _ in range(count)] if checked else None

    def add(self, column, counts: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """``column``'s rows grouped by bucket (``counts`` of each) coded: per row its code in its
        bucket (int32, -1: empty), and the rows of the texts met for the first time. ``valid``:
        per row whether its text is a valid USCC (None: not known)."""
        written = _text(column)
        codes = np.empty(len(written), np.int32)
        new = []
        start = 0
        for b, count in enumerate(counts.tolist()):
            if not count:
                continue
            part = written.slice(start, count)
            offsets, data = string_buffers(part)
            null = bools(part.is_null()).view(np.uint8) if part.null_count else np.zeros(0, np.uint8)
            codes[start:start + count], first = self.codes[b].add(offsets, data, null)
            if self.valid is not None:
                self.valid[b].extend(np.zeros(first.size, bool) if valid is None else valid[start + first])
            new.append(first + start)
            start += count
        return codes, np.concatenate(new) if new else np.zeros(0, np.int64)

    def done(self) -> LinkCodes:
        return LinkCodes(np.array([len(c) for c in self.codes], np.int64),
                         None if self.valid is None else [v.values() for v in self.valid])


@dataclass
class LinkCodes:
    """The spill's codes of the enterprise keys (``_LinkCodes``): per bucket how many, and
    per bucket per code whether its text is a valid USCC as written (None: not known)."""

    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    valid: list[np.ndarray] | None = None

    def of(self, buckets: list[int]) -> tuple[np.ndarray, np.ndarray | None]:
        """For the buckets of a partition: where each bucket's codes begin among the
        partition's, and per code of the partition its validity (then False, for -1)."""
        counts = self.counts[buckets] if len(buckets) else np.zeros(0, np.int64)
        begin = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        valid = None if self.valid is None else np.concatenate([*(self.valid[b] for b in buckets), [False]])
        return begin, valid


def _partition_codes(codes: np.ndarray, begin: int) -> np.ndarray:
    """A bucket's codes of its keys (int32, -1 for an empty key) as its partition's, its
    first code ``begin``."""
    codes = codes.astype(np.int32, copy=True)
    if begin:
        codes[codes >= 0] += np.int32(begin)
    return codes


class _Grown:
    """A numpy array appended to, its room doubled when full."""

    def __init__(self, dtype):
        self._values = np.empty(1 << 10, dtype)
        self._n = 0

    def extend(self, more: np.ndarray) -> None:
        end = self._n + more.size
        if end > self._values.size:
            grown = np.empty(max(end, 2 * self._values.size), self._values.dtype)
            grown[:self._n] = self._values[:self._n]
            self._values = grown
        self._values[self._n:end] = more
        self._n = end

    def values(self) -> np.ndarray:
        return self._values[:self._n]


def _text(column) -> pa.Array:
    """A column as a string array (a large string one as it is)."""
    column = one_array(column)  # (combine_chunks copies even a single chunk)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column
    return column.cast(pa.string())


class _Runs:
    """The batches of consecutive rows spilled without their source and row number: per batch
    its first position in the table, its source and its first row number."""

    def __init__(self):
        self.start: list[int] | np.ndarray = []
        self.source: list[int] | np.ndarray = []
        self.first_row: list[int] | np.ndarray = []

    def add(self, start: int, source: int, first_row: int) -> None:
        self.start.append(start)
        self.source.append(source)
        self.first_row.append(first_row)

    def done(self) -> _Runs:
        self.start = np.asarray(self.start, np.int64)
        self.source = np.asarray(self.source, np.int64)
        self.first_row = np.asarray(self.first_row, np.int64)
        return self

    def origin(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """Per row of a spilled file's table its source and its row number there: spilled
        with it, or (a batch of consecutive rows) from its position in the table."""
        if _ROW in table.column_names:
            return _ints(table[_SOURCE]), _ints(table[_ROW])
        return self.of(_ints(table[_ORDINAL]))

    def of(self, ordinal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The source and row number of rows of these batches, by their positions in the table."""
        if ordinal.size > 1 and np.any(np.diff(ordinal) < 0):
            run = np.searchsorted(self.start, ordinal, side="right") - 1
            return self.source[run], self.first_row[run] + (ordinal - self.start[run])
        # ascending (a spilled file, a partition): each batch's rows a slice, filled at once
        # (gathering per row by each row's batch cost ~25 ms per million rows)
        begins = np.searchsorted(ordinal, self.start).tolist() + [ordinal.size]
        source = np.empty(ordinal.size, np.int64)
        rows = np.empty(ordinal.size, np.int64)
        for k in np.flatnonzero(np.diff(begins)).tolist():
            at = slice(begins[k], begins[k + 1])
            source[at] = self.source[k]
            np.add(ordinal[at], int(self.first_row[k]) - int(self.start[k]), out=rows[at])
        return source, rows


class _Distinct:
    """The distinct texts of many arrays, made distinct when the arrays waiting are as long as
    the distinct texts so far (each batch's against all before it hashed the table's
    enterprises once per batch)."""

    def __init__(self):
        self._distinct = pa.nulls(0, pa.string())  # (pa.array of a list imports pandas: half a second)
        self._waiting: list[pa.Array] = []
        self._waiting_length = 0

    def add(self, texts: pa.Array) -> None:
        self._waiting.append(texts)
        self._waiting_length += len(texts)
        if self._waiting_length >= max(len(self._distinct), 1 << 20):
            self._merge()

    def _merge(self) -> None:
        if self._waiting:
            self._distinct = pc.unique(pa.concat_arrays([self._distinct, *self._waiting]))
            self._waiting, self._waiting_length = [], 0

    def result(self) -> pa.Array:
        self._merge()
        return self._distinct


__all__ = ["BUCKETS", "MAX_BUCKETS", "MEMORY_BYTES", "bucket_count", "buckets_of", "memory_budget", "PARTITION_ROWS", "Duplicates", "SpilledCases", "spill_cases", "text_hashes"]
