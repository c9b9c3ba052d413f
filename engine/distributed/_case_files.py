"""``ecorules run --engine spark --cases FILE``: a case table of CSV or Parquet files read by
Spark's executors (``spark.read``), its rows named, checked and rejected as the local run's
reader (engine/_sources.py's ``CsvFile``, ``ParquetFile``) names, checks and rejects them.

The driver reads what decides how to read each file, never its rows: a CSV file's header
line, the sample its separator is recognised from and the evidence its encoding is decided
on (``CsvFile``, bounded), a Parquet file's footer; the columns the facts need are found
there (a missing one named before the run starts, as a local run names it).

A CSV file is read by Spark as text, every column a string (``sep``, ``encoding`` as decided,
``"`` quoting with doubled quotes as pyarrow reads it, a malformed line kept whole in a column
of its own), and its rows are numbered as the local reader numbers them: the header is row 1,
each record the next, a malformed line counted where it stands (the reader's "line" of a row
is its record's place, not a physical line: a blank line is no record in either). Spark reads
a large file in splits, which know where they start but not how many records precede them,
so one job counts the records of each split first (in the JVM) and each split's rows are
numbered from the records of the splits before it. A Parquet file's rows are its
``_metadata.row_index`` + 1.

What the local reader rejects before the case checks, the executors reject alike, with its
words (a row of them travels as ``UNREADABLE``, JSON, and reaches the driver's rejects): a
malformed line (``malformed line: N fields, expected M``, the line shown), and a cell that
does not decode (``undecodable bytes: not valid ENCODING``, its bytes shown). A UTF-8 file
(most are) is read by Spark as ISO-8859-1, one character per byte, which the executors turn
back into the file's own bytes (``_file_bytes``): the cells are then checked as the local
reader checks them, byte for byte (a separator, quote or line end is one ASCII byte in UTF-8,
never part of another character, so Spark cuts the same fields). A file in another encoding
(GB18030: a second byte may be ``|`` or ``\\``) is decoded by Spark itself, which puts U+FFFD
for what does not decode: a cell holding one is rejected (one written as such, too) and the
reject shows U+FFFD where the local reader shows the bytes. Parquet text is checked as UTF-8
bytes, as locally.

Left to the driver (``_spark_cases.shipped_frame``): Excel workbooks (Spark has no reader of
its own; a site's jar would be another dependency with other cell rules than ours), SQLite
files, PostgreSQL tables, and a table mixing CSV and Parquet files or Parquet files whose
columns' types differ (one Spark frame holds one type per column).
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules._arrow import string_buffers

from .._sources import (
    ColumnResolver,
    CsvFile,
    ParquetFile,
    Registry,
    Reject,
    _shown,
    _undecodable_rows,
)
from ..sources._pg_url import PostgresUrl

log = logging.getLogger("ecorules.distributed")

SOURCE, ROW, FILE = "_source", "_row", "_file"
UNREADABLE = "_unreadable"  # JSON [[header or null, value shown, reason], ...] of a row the reader rejects
PATH, BLOCK, INDEX, CORRUPT = "_path", "_block", "_index", "_corrupt"
REPLACED = "\ufffd"  # what Spark's decoder puts for bytes that do not decode
# Parquet types handed over as they are (as the local reader hands them to the checks); others as text
_ARROW_OF = {"string": pa.string(), "bigint": pa.int64(), "int": pa.int32(), "double": pa.float64(),
             "boolean": pa.bool_(), "date": pa.date32()}


@dataclass
class FileSpec:
    """What an executor needs of one file (by Spark's URI of it) to make case rows of its rows."""

    label: str  # as the local reader names the file (its path as listed)
    rank: int  # its place in the table: rows are in the order of files, then rows
    columns: dict[str, str]  # fact -> the frame's column holding it
    headers: dict[str, str]  # fact -> header as written in this file
    expected: int = 0  # CSV: fields of its header
    separator: str = ","
    encoding: str = "utf-8"
    bases: dict[int, int] = field(default_factory=dict)  # CSV: split start -> records before it in the file


@dataclass
class FileFrame:
    """The raw rows as Spark reads them and how to make case rows of them on the executors."""

    frame: object  # a Spark DataFrame: the raw columns, PATH, BLOCK (CSV) or INDEX (Parquet), CORRUPT (CSV)
    kind: str  # "csv" | "parquet"
    specs: dict[str, FileSpec]  # Spark's URI -> the file
    sources: list[str]  # the files with a row (read or rejected), in the table's order
    headers: dict[str, str]  # fact -> header as written in the first file
    described: list[dict[str, str]]
    warnings: list[str]
    types: dict[str, pa.DataType] = field(default_factory=dict)  # fact -> its Arrow type, where not text


def readable_by_spark(stage) -> bool:
    """Whether the case table is files Spark reads: CSV or Parquet (not mixed), no sheets."""
    if isinstance(stage.path, PostgresUrl) or not stage.files:
        return False
    kinds = {_kind(path) if table is None else None for path, table in stage.files}
    return len(kinds) == 1 and None not in kinds


def _kind(path: Path) -> str | None:
    from ..sources._listing import CSV_SUFFIXES, PARQUET_SUFFIXES

    suffix = path.suffix.lower()
    return "csv" if suffix in CSV_SUFFIXES else "parquet" if suffix in PARQUET_SUFFIXES else None


def file_frame(spark, stage, plan, aliases=None) -> FileFrame | None:
    """The case files as Spark reads them, or None where the driver must read them (see above)."""
    from pyspark.sql import functions as F

    if not readable_by_spark(stage):
        return None
    resolver = ColumnResolver(plan.facts, plan.needed(), aliases, optional=plan.optional_columns)
    registry = Registry(stage.path, resolver, encoding=stage.encoding, table=stage.table, batch_rows=stage.batch_rows,
                        recurse=stage.recurse)  # the files' headers, separators and encodings: no rows read
    readers = registry.readers
    kind = "csv" if isinstance(readers[0], CsvFile) else "parquet"
    if kind == "csv":
        frame = _csv_frame(spark, readers)
    else:
        frame = _parquet_frame(spark, readers)
        if frame is None:
            return None
    # each split's records (a CSV file's splits numbered from it), and Spark's name of each file
    counts = frame.groupBy(PATH, BLOCK).agg(F.count(F.lit(1)).alias("n")).collect() if kind == "csv" else \
        frame.groupBy(PATH).agg(F.count(F.lit(1)).alias("n")).collect()
    by_file = {str(Path(reader.path).resolve()): (rank, reader) for rank, reader in enumerate(readers)}
    specs: dict[str, FileSpec] = {}
    splits: dict[str, list[tuple[int, int]]] = {}
    for row in counts:
        uri = row[PATH]
        if uri not in specs:
            local = str(Path(unquote(urlparse(uri).path)).resolve())
            if local not in by_file:
                raise RuntimeError(f"Spark read {uri}, which is none of the case table's files")
            rank, reader = by_file[local]
            specs[uri] = _spec(kind, rank, reader)
        splits.setdefault(uri, []).append((int(row[BLOCK]) if kind == "csv" else 0, int(row["n"])))
    for uri, found in splits.items():  # a split's rows follow the records of the file's splits before it
        before = 0
        for block, n in sorted(found):
            specs[uri].bases[block] = before
            before += n
    ordered = sorted(specs.values(), key=lambda s: s.rank)
    headers: dict[str, str] = {}
    for spec in ordered:
        for fact, header in spec.headers.items():
            headers.setdefault(fact, header)
    types = {}
    if kind == "parquet":
        spark_types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
        types = {fact: _ARROW_OF.get(spark_types.get(name), pa.string()) for spec in ordered
                 for fact, name in spec.columns.items()}
    return FileFrame(frame, kind, specs, [spec.label for spec in ordered], headers, registry.described(),
                     registry.warnings, types)


def _spec(kind: str, rank: int, reader) -> FileSpec:
    found = reader.columns
    if kind == "csv":
        return FileSpec(reader.label, rank, {fact: f"c{i}" for fact, i in found.items()},
                        {fact: reader.headers[i] for fact, i in found.items()}, len(reader.headers), reader.separator,
                        reader.encoding)
    return FileSpec(reader.label, rank, {fact: reader.headers[i] for fact, i in found.items()},
                    {fact: reader.headers[i] for fact, i in found.items()})


def _as_bytes(encoding: str) -> bool:
    """Whether a file in ``encoding`` is read byte for byte (UTF-8, ``_file_bytes``)."""
    return encoding in ("utf-8", "utf-8-sig")


# the charsets Spark 4 reads without spark.sql.legacy.javaCharsets (its CharsetProvider)
_SPARK_CHARSETS = frozenset({"us-ascii", "iso-8859-1", "utf-8", "utf-16be", "utf-16le", "utf-16", "utf-32"})


def _java_charset(encoding: str) -> str:
    """The charset Spark reads a file in: a UTF-8 file byte for byte (its BOM is on the header
    line, which is skipped), another encoding as Java names it."""
    return "ISO-8859-1" if _as_bytes(encoding) else encoding.replace("_", "-")


def _file_bytes(column: pa.Array) -> pa.Array:
    """Text Spark read as ISO-8859-1 as the file's own bytes (binary): Arrow holds each
    character from U+0080 to U+00FF as the two UTF-8 bytes C2/C3 xx, each of which stands
    for the one byte ((lead & 3) << 6) | (xx & 0x3F); every other byte is ASCII, itself."""
    offsets, data = string_buffers(column)
    data = data[offsets[0]:offsets[-1]]
    offsets = offsets.astype(np.int64) - offsets[0]
    lead = data >= 0xC0
    if not lead.any():
        return column.cast(pa.binary())
    at = np.flatnonzero(lead)
    out = data.copy()
    out[at + 1] = ((data[at] & 0x03) << 6) | (data[at + 1] & 0x3F)
    keep = ~lead
    before = np.concatenate([[0], np.cumsum(lead)])  # leads before each position
    new_offsets = (offsets - before[offsets]).astype(np.int64)
    validity = column.buffers()[0] if column.null_count else None
    if validity is not None and column.offset:
        validity = pa.array(np.asarray(column.is_valid())).buffers()[1]
    return pa.Array.from_buffers(pa.large_binary(), len(column),
                                 [validity, pa.py_buffer(new_offsets), pa.py_buffer(out[keep])]).cast(pa.binary())


def _csv_frame(spark, readers: list[CsvFile]):
    """Every CSV file read by Spark, as text: one read per separator, encoding and width."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    widest = max(len(reader.headers) for reader in readers)
    groups: dict[tuple, list[str]] = {}
    for reader in readers:
        groups.setdefault((reader.separator, reader.encoding, len(reader.headers)), []).append(str(reader.path))
    if any(_java_charset(encoding).lower() not in _SPARK_CHARSETS for _separator, encoding, _width in groups):
        # Spark 4 reads a CSV file only in the Unicode charsets and Latin-1 unless this is set
        # (SPARK-48857: INVALID_PARAMETER_VALUE.CHARSET for GB18030); Spark 3.5 reads any charset
        # of the JDK and has no such setting. Set on the run's session, as score sets its time zone
        spark.conf.set("spark.sql.legacy.javaCharsets", "true")
    frames = []
    for (separator, encoding, width), paths in groups.items():
        schema = StructType([*(StructField(f"c{i}", StringType()) for i in range(width)),
                             StructField(CORRUPT, StringType())])
        read = (spark.read.schema(schema)
                .option("header", True).option("sep", separator).option("encoding", _java_charset(encoding))
                .option("quote", '"').option("escape", '"').option("multiLine", False)
                .option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT)
                .option("ignoreLeadingWhiteSpace", False).option("ignoreTrailingWhiteSpace", False)
                .option("enforceSchema", True).option("maxCharsPerColumn", -1)
                .csv(paths))
        columns = [F.col(f"c{i}") if i < width else F.lit(None).cast("string").alias(f"c{i}") for i in range(widest)]
        frames.append(read.select(*columns, F.col(CORRUPT), F.col("_metadata.file_path").alias(PATH),
                                  F.col("_metadata.file_block_start").alias(BLOCK)))
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.unionByName(other)
    return frame


def _parquet_frame(spark, readers: list[ParquetFile]):
    """Every Parquet file read by Spark, its needed columns as the file types them, or None
    where the files' types of a column differ."""
    from pyspark.sql import functions as F

    types: dict[str, str] = {}
    for reader in readers:
        schema = reader.file.schema_arrow
        for i in reader.columns.values():
            name = reader.headers[i]
            if types.setdefault(name, _spark_type(schema.field(i).type)) != _spark_type(schema.field(i).type):
                log.info("cases: column %r is typed differently across the case files: read by the driver", name)
                return None
    # every file's columns (a file may leave out an optional one), not the first file's alone
    read = spark.read.option("mergeSchema", len(readers) > 1).parquet(*[str(reader.path) for reader in readers])
    columns = [F.col(f"`{name}`") if kept in _ARROW_OF else F.col(f"`{name}`").cast("string").alias(name)
               for name, kept in types.items()]
    return read.select(*columns, F.col("_metadata.file_path").alias(PATH),
                       F.col("_metadata.row_index").cast("long").alias(INDEX))


def _spark_type(arrow_type) -> str:
    """Spark's simple name of an Arrow type of those handed over as they are, else "text"."""
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return {pa.string(): "string", pa.large_string(): "string", pa.int64(): "bigint", pa.int32(): "int",
            pa.float64(): "double", pa.bool_(): "boolean", pa.date32(): "date"}.get(arrow_type, "text")


def case_rows(files: FileFrame, case_columns: tuple[str, ...]):
    """The executors' function (Spark's raw batches -> case rows: the case columns, SOURCE,
    ROW, FILE and UNREADABLE) and its Arrow schema. Each task's batches come in the order of
    its splits and their records, a split never divided between tasks."""
    specs, kind, types = files.specs, files.kind, {fact: files.types.get(fact, pa.string()) for fact in case_columns}
    schema = pa.schema([*((fact, types[fact]) for fact in case_columns), (SOURCE, pa.string()), (ROW, pa.int64()),
                        (FILE, pa.int32()), (UNREADABLE, pa.string())])

    def made(batches):
        seen: dict[tuple[str, int], int] = {}  # (uri, split) -> records of it numbered so far
        for batch in batches:
            if batch.num_rows:
                yield (_csv_rows if kind == "csv" else _parquet_rows)(batch, specs, case_columns, seen).cast(schema)

    return made, schema


def _runs(paths: pa.Array, blocks: np.ndarray) -> list[tuple[int, int, str, int]]:
    """(start, stop, uri, split start) of each run of rows from one split."""
    encoded = pc.dictionary_encode(paths)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int64)
    uris = encoded.dictionary.to_pylist()
    change = np.flatnonzero((codes[1:] != codes[:-1]) | (blocks[1:] != blocks[:-1])) + 1
    starts = [0, *change.tolist()]
    stops = [*change.tolist(), len(codes)]
    return [(a, b, uris[codes[a]], int(blocks[a])) for a, b in zip(starts, stops, strict=True)]


def _csv_rows(batch: pa.RecordBatch, specs, case_columns, seen) -> pa.RecordBatch:
    n = batch.num_rows
    rows = np.empty(n, np.int64)
    rank = np.empty(n, np.int32)
    labels = np.empty(n, object)
    columns = {fact: [] for fact in case_columns}
    blocks = np.asarray(batch.column(BLOCK).to_numpy(zero_copy_only=False), np.int64)
    corrupt = batch.column(CORRUPT)
    bad: dict[int, list] = {}
    for start, stop, uri, block in _runs(batch.column(PATH), blocks):
        spec = specs[uri]
        done = seen.get((uri, block), 0)
        seen[(uri, block)] = done + (stop - start)
        # the header is row 1; a record's row is its place among the file's records, + 1
        rows[start:stop] = spec.bases[block] + done + 2 + np.arange(stop - start)
        rank[start:stop], labels[start:stop] = spec.rank, spec.label
        as_bytes = _as_bytes(spec.encoding)
        malformed = corrupt.slice(start, stop - start)
        for at in np.flatnonzero(np.asarray(malformed.is_valid())).tolist():
            text = malformed[at].as_py()
            if as_bytes:
                text = text.encode("latin-1").decode("utf-8", errors="backslashreplace")
            fields = len(next(csv.reader([text], delimiter=spec.separator), []))
            bad[start + at] = [[None, _shown(text), f"malformed line: {fields} fields, expected {spec.expected}"]]
        texts = {}
        for fact, name in spec.columns.items():
            cells = batch.column(name).slice(start, stop - start).fill_null("")
            if as_bytes:  # the file's bytes, checked as the local reader checks them
                raw = _file_bytes(cells)
                text = pa.Array.from_buffers(pa.string(), len(raw), raw.buffers(), offset=raw.offset)  # unchecked
                hit = _undecodable_rows(pa.chunked_array([text]), True)
                shown = raw
                # a row with bytes that do not decode is the reader's reject: its cells go no further
                cells = text if not hit.size else pc.if_else(_mask(len(raw), hit), pa.scalar("", pa.string()), text)
            else:
                hit = np.flatnonzero(np.asarray(pc.fill_null(pc.match_substring(cells, REPLACED), False)))
                shown = cells
            texts[fact] = cells
            for at in hit.tolist():
                if start + at not in bad or bad[start + at][0][0] is not None:
                    bad.setdefault(start + at, []).append(
                        [spec.headers[fact], _shown(shown[at].as_py()), f"undecodable bytes: not valid {spec.encoding}"])
        for fact in case_columns:
            columns[fact].append(texts[fact] if fact in texts else pa.nulls(stop - start))
    return _made(columns, case_columns, labels, rows, rank, bad, n)


def _mask(n: int, at: np.ndarray) -> pa.Array:
    mask = np.zeros(n, bool)
    mask[at] = True
    return pa.array(mask)


def _parquet_rows(batch: pa.RecordBatch, specs, case_columns, seen) -> pa.RecordBatch:
    n = batch.num_rows
    rows = np.asarray(batch.column(INDEX).to_numpy(zero_copy_only=False), np.int64) + 1
    rank = np.empty(n, np.int32)
    labels = np.empty(n, object)
    columns: dict[str, list] = {fact: [] for fact in case_columns}
    bad: dict[int, list] = {}
    for start, stop, uri, _ in _runs(batch.column(PATH), np.zeros(n, np.int64)):
        spec = specs[uri]
        rank[start:stop], labels[start:stop] = spec.rank, spec.label
        for fact in case_columns:
            name = spec.columns.get(fact)
            columns[fact].append(pa.nulls(stop - start) if name is None else batch.column(name).slice(start, stop - start))
        for fact, name in spec.columns.items():  # text as the local reader checks it: UTF-8 bytes
            cells = batch.column(name).slice(start, stop - start)
            if not (pa.types.is_string(cells.type) or pa.types.is_large_string(cells.type)):
                continue
            for at in _undecodable_rows(pa.chunked_array([cells]), True).tolist():
                bad.setdefault(start + at, []).append(
                    [spec.headers[fact], _shown(cells.cast(pa.binary())[at].as_py()), "undecodable bytes: not valid utf-8"])
    return _made(columns, case_columns, labels, rows, rank, bad, n)


def _made(columns, case_columns, labels, rows, rank, bad, n) -> pa.RecordBatch:
    arrays = []
    for fact in case_columns:
        pieces = columns[fact]
        typed = [p.type for p in pieces if not pa.types.is_null(p.type)]
        target = typed[0] if typed else pa.string()
        arrays.append(pa.concat_arrays([p.cast(target) for p in pieces]))
    unreadable = [None] * n
    for at, found in bad.items():
        unreadable[at] = json.dumps(found, ensure_ascii=False)
    return pa.RecordBatch.from_arrays(
        [*arrays, pa.array(labels.tolist(), pa.string()), pa.array(rows, pa.int64()), pa.array(rank, pa.int32()),
         pa.array(unreadable, pa.string())],
        names=[*case_columns, SOURCE, ROW, FILE, UNREADABLE])


def read_rejects(rows) -> tuple[list[Reject], int]:
    """The reader's rejects of the unreadable rows (SOURCE, ROW, FILE, UNREADABLE), in the
    table's order of files and rows, and how many rows they are."""
    rejects = []
    ordered = sorted(rows, key=lambda r: (r[FILE], r[ROW]))
    for row in ordered:
        for header, value, reason in json.loads(row[UNREADABLE]):
            rejects.append(Reject(row[SOURCE], int(row[ROW]), header, value, reason))
    return rejects, len(ordered)


__all__ = ["FILE", "UNREADABLE", "FileFrame", "case_rows", "file_frame", "read_rejects", "readable_by_spark"]
