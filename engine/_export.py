"""``ecorules export``: one table of one run, from the results database to CSV or Parquet.

Rows are streamed in chunks, so a run with millions of findings exports in bounded memory.
The file is written under a temporary name and renamed at the end: a reader never sees half
a file, and a failed export leaves no file behind.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import store
from ._ledger_money import FEN

log = logging.getLogger("ecorules.export")

CHUNK_ROWS = 100_000
ENCODINGS = ("utf-8", "utf-8-sig", "gb18030")


# An exact amount in yuan of a run in fen: a decimal with two places (Parquet's DECIMAL; in
# CSV "0.48", "3000000.00"); of a run in yuan alone the integers every run wrote before.
_FEN_YUAN = pa.decimal128(38, 2)


def _schema(connection: sqlite3.Connection, table: str, in_fen: bool) -> pa.Schema:
    fields = []
    for name, declared in store.dialect(connection).declared_columns(connection, table):
        if declared == store.MONEY:
            kind = _FEN_YUAN if in_fen else pa.int64()
        else:
            kind = pa.int64() if declared == "INTEGER" else pa.string()
        fields.append(pa.field(name, kind))
    return pa.schema(fields)


def _column(values, field: pa.Field) -> pa.Array:
    if field.type == _FEN_YUAN:  # ints (yuan) and exact texts ("0.48"): never through a float
        values = [None if v is None else Decimal(str(v)) for v in values]
    elif field.type == pa.int64() and any(type(v) is Decimal for v in values):  # PostgreSQL's numeric yuan
        values = [None if v is None else int(v) for v in values]
    return pa.array(values, field.type)


def export_table(db: str | os.PathLike, run: str | int, table: str, out: str | os.PathLike,
                 *, encoding: str = "utf-8") -> tuple[int, int]:
    """Write ``table`` of ``run`` to ``out`` (.csv or .parquet); returns (run id, rows)."""
    if table not in store.TABLES:
        raise store.StoreError(f"unknown table {table!r}; one of {', '.join(store.TABLES)}")
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise store.StoreError(f"{out}: cannot tell the format; the name must end in .csv or .parquet")
    if encoding not in ENCODINGS:
        raise store.StoreError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    connection = store.connect(db, readonly=True)
    try:
        with store.snapshot(connection):
            return _export(db, connection, run, table, out, suffix, encoding)
    finally:
        connection.close()


def _export(db, connection, run: str | int, table: str, out: Path, suffix: str, encoding: str) -> tuple[int, int]:
    """:func:`export_table` in the snapshot of ``connection``."""
    run_id = store.resolve_run(connection, run, done=table != "runs")  # the runs table shows any run by its id
    for warning in store.interrupted(db, connection):
        log.warning("%s", warning)
    if not store.dialect(connection).has_relation(connection, table):
        raise store.StoreError(f"{db}: no table {table!r} yet (an older results database; the next run adds it)")
    in_fen = store.run_unit(connection, run_id) == FEN
    schema = _schema(connection, table, in_fen)
    key = "id" if table == "runs" else "run_id"
    cursor = connection.execute(f"SELECT * FROM {table} WHERE {key} = ?", (run_id,))
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    rows = 0
    try:
        with open(tmp, "wb") as handle:
            writer = _writer(handle, schema, suffix, encoding)
            try:
                while chunk := cursor.fetchmany(CHUNK_ROWS):
                    columns = list(zip(*chunk, strict=True))
                    batch = pa.record_batch([_column(c, f) for c, f in zip(columns, schema, strict=True)], schema=schema)
                    writer.write(batch)
                    rows += len(chunk)
            finally:
                writer.close()
        os.replace(tmp, out)
    except OSError as error:
        raise store.StoreError(f"{out}: cannot write: {error.strerror or error}") from error
    finally:
        tmp.unlink(missing_ok=True)
    return run_id, rows


class _TranscodingWriter:
    """CSV in another encoding than UTF-8: pyarrow writes UTF-8, recoded batch by batch."""

    def __init__(self, handle, schema: pa.Schema, encoding: str):
        self.handle, self.schema, self.encoding, self.first = handle, schema, encoding, True

    def write(self, batch: pa.RecordBatch) -> None:
        sink = pa.BufferOutputStream()
        pacsv.write_csv(batch, sink, pacsv.WriteOptions(include_header=self.first))
        self.first = False
        self.handle.write(sink.getvalue().to_pybytes().decode("utf-8").encode(self.encoding, errors="replace"))

    def close(self) -> None:
        if self.first:  # no rows: still a header
            self.write(pa.record_batch([pa.array([], f.type) for f in self.schema], schema=self.schema))


def _writer(handle, schema: pa.Schema, suffix: str, encoding: str):
    if suffix == ".parquet":
        return pq.ParquetWriter(handle, schema)
    if encoding == "gb18030":
        return _TranscodingWriter(handle, schema, encoding)
    if encoding == "utf-8-sig":
        handle.write(b"\xef\xbb\xbf")  # lets Excel open the Chinese text as UTF-8
    return pacsv.CSVWriter(handle, schema)


__all__ = ["ENCODINGS", "export_table"]
