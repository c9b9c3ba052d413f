"""A PostgreSQL table or read-only query as a registry (or case table), read as Arrow batches.

The rows come through ADBC's PostgreSQL driver (adbc-driver-postgresql), which runs
``COPY (SELECT ...) TO STDOUT (FORMAT binary)`` and parses the stream in C into Arrow record
batches of about 16 MiB: bounded memory, and no Python loop per row. bench/pg_read.py measured
it against psycopg's binary COPY decoded into Arrow (the only way psycopg gets there is a
Python loop over rows); the README gives the figures.

What the SQL is, so that KingbaseES and openGauss (PostgreSQL's protocol and SQL) read the same:

- ``SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`` first, in the transaction the
  driver opens: a query cannot write, and every batch comes from one snapshot; then
  ``SET TRANSACTION SNAPSHOT`` of the snapshot every read of the run shares, exported by
  ``pg_export_snapshot()`` (engine/sources/_pg_snapshot.py; a server without it is read
  without);
- ``SET LOCAL search_path TO <schema>`` when ``schema=`` is given with a query;
- ``SELECT <columns> FROM <schema>.<table>`` or ``SELECT <columns> FROM (<query>) AS
  ecorules_query``, with only the columns the policies need, each identifier quoted by
  psycopg's ``sql.Identifier``; the driver prepares it as one statement, so a ``;`` cannot
  start another;
- ``information_schema.tables`` (values bound as parameters) to list the tables when the one
  named is missing;
- ``SELECT reltuples FROM pg_catalog.pg_class WHERE oid = CAST($1 AS regclass)`` for a table's
  estimated rows (a server without that catalogue: no estimate).

A run reads its table once: the fingerprint's read (a thread of its own) hashes each batch
and hands it to the scoring (:class:`_SharedRead`).

Types as the facts take them (the scorer then checks each value as for any source):
boolean -> Arrow bool; smallint/integer/bigint -> int64; numeric -> its exact decimal text
(never a float; the scorer reads decimal text exactly, as a CSV cell); date -> date32; text,
varchar, char -> text. Any other pairing reads the value as the text a CSV export holds, and
the scorer judges that text as in a CSV file (an integer 1 as a boolean is true, a timestamp
as a date is refused). real and double
precision stay floats: the scorer refuses a float as an amount of money, row by row, as
from Parquet. NULL is a missing value: a reject unless the fact is optional.

Row numbers are the 1-based position of a row in the result, in the order the server sent it
(a query with ORDER BY makes them repeatable).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import deque
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from ecorules.rules import Fact, Kind

from ._pg_snapshot import shared_snapshot
from ._pg_url import PostgresUrl, redact
from ._types import Batch, SourceError

log = logging.getLogger("ecorules.sources")

_TEXT_KINDS = (Kind.STRING, Kind.ENUM)
_AHEAD_BYTES = 64 << 20  # batches the fingerprint's read holds for a scoring read not yet started
_UNDEFINED_TABLE = ("42P01", "3F000")  # no such table; no such schema


def _driver():
    try:
        import adbc_driver_postgresql.dbapi as adbc
        import psycopg  # noqa: F401 - the identifiers' quoting and the fingerprint's COPY
    except ImportError as error:
        raise SourceError("reading PostgreSQL needs the postgres extra: pip install 'ecorules[postgres]'") from error
    return adbc


def _identifier(*names: str) -> str:
    from psycopg import sql

    return sql.Identifier(*names).as_string(None)


def _failed(url: PostgresUrl, doing: str, error: Exception) -> SourceError:
    # the driver's messages name the server, the user and the SQL, never a password; redact()
    # is a second guard for a URL echoed back
    message = redact(str(error)).strip().splitlines()
    return SourceError(f"{url}: {doing}: {' '.join(line.strip() for line in message if line.strip())}")


def _sqlstate(error: Exception) -> str | None:
    return getattr(error, "sqlstate", None)


class PostgresSource:
    """A table or a query of a PostgreSQL database, read batch by batch in one transaction."""

    def __init__(self, url: PostgresUrl, resolver, *, batch_rows: int):
        from .._sources import (  # (the shared checks of every reader)
            _drop_undecodable,
            typed_columns,
        )

        self._drop_undecodable, self._typed_columns = _drop_undecodable, typed_columns
        self.url, self.label, self.batch_rows, self.facts = url, str(url), batch_rows, resolver.facts
        self.table, self.schema, self.query = url.table, url.schema, url.query
        self._lock = threading.Lock()
        self._shared: _SharedRead | None | bool = None  # the first read's, once it began: False if the scoring's
        try:  # every read of this database while this reader lives sees the same rows
            self.snapshot = shared_snapshot(url.connection)
        except Exception as error:  # noqa: BLE001 - psycopg's connection errors, made readable
            raise _failed(url, "cannot connect", error) from error
        with self._connect() as connection, connection.cursor() as cursor:
            try:
                schema = cursor.adbc_execute_schema(f"SELECT * FROM {self._source()}")
            except Exception as error:  # noqa: BLE001 - the driver's errors, made readable
                if _sqlstate(error) in _UNDEFINED_TABLE and self.table is not None:
                    raise SourceError(f"{url}: no table {self._shown_table()} (tables: {self._tables()})") from error
                raise _failed(url, "cannot read", error) from error
        self.headers = list(schema.names)
        self.types = {name: schema.field(name).metadata or {} for name in self.headers}
        self.columns = resolver.resolve(self.label, self.headers)
        self.estimated_rows = self._estimated_rows()

    def _estimated_rows(self) -> int:
        """The server's estimate of a table's rows (``pg_class.reltuples``, kept by ANALYZE and
        autovacuum; the PostgreSQL family's catalogue): it sizes the set of USCCs met
        (engine/_seen_keys.py) once, rather than grown by copies, and the progress bar. 0 when
        unknown (a query, a table never analysed, a server without the catalogue)."""
        if self.table is None:
            return 0
        import psycopg

        try:
            with psycopg.connect(self.url.connection, autocommit=True) as connection:
                row = connection.execute("SELECT reltuples FROM pg_catalog.pg_class WHERE oid = CAST(%s AS regclass)",
                                         (_identifier(*([self.schema] if self.schema else []), self.table),)).fetchone()
        except psycopg.Error:
            return 0
        return max(0, int(row[0])) if row else 0

    def _connect(self):
        adbc = _driver()
        try:
            connection = adbc.connect(self.url.connection)
        except Exception as error:  # noqa: BLE001
            raise _failed(self.url, "cannot connect", error) from error
        try:
            with connection.cursor() as cursor:
                self._begin(cursor)
        except Exception as error:  # noqa: BLE001
            connection.close()
            raise _failed(self.url, "cannot start a read-only transaction", error) from error
        return connection

    def _begin(self, cursor) -> None:
        """The transaction's first statements, for ADBC's cursor and psycopg's alike."""
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if (statement := self.snapshot.statement()) is not None:
            cursor.execute(statement)
        if self.schema is not None and self.query is not None:
            cursor.execute(f"SET LOCAL search_path TO {_identifier(self.schema)}")

    def _source(self) -> str:
        if self.table is not None:
            return _identifier(*([self.schema] if self.schema else []), self.table)
        text = self.query.strip().rstrip(";").rstrip()
        # on lines of their own: a trailing -- comment cannot swallow the parenthesis
        return f"(\n{text}\n) AS ecorules_query"

    def _shown_table(self) -> str:
        return f"{self.schema}.{self.table}" if self.schema else self.table

    def _tables(self) -> str:
        """The tables the user could have meant (bound parameters, information_schema only)."""
        try:
            with self._connect() as connection, connection.cursor() as cursor:
                cursor.execute(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
                    "AND (CAST($1 AS text) IS NULL OR table_schema = $1) ORDER BY 1, 2", (self.schema,))
                names = [f"{s}.{t}" for s, t in cursor.fetchall()]
        except Exception:  # noqa: BLE001 - only a hint in an error already on its way
            return "could not be listed"
        return ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "") or "none"

    def select(self) -> str:
        names = ", ".join(_identifier(self.headers[i]) for i in self.columns.values())
        return f"SELECT {names} FROM {self._source()}"

    def _record_batches(self) -> Iterator[pa.RecordBatch]:
        """The driver's record batches of :meth:`select`, in a read-only transaction of the
        run's snapshot."""
        with self._connect() as connection, connection.cursor() as cursor:
            cursor.execute(self.select())
            yield from cursor.fetch_record_batch()

    def batches(self) -> Iterator[Batch]:
        names = list(self.columns)
        headers = {name: self.headers[i] for name, i in self.columns.items()}
        position = 0
        with self._lock:  # the fingerprint's read, when it has not gone too far ahead; else a read of its own
            shared = self._shared if self._shared and self._shared.attach() else None
            if self._shared is None:
                self._shared = False  # (a fingerprint taken after this read reads for itself)
        log.debug("%s: %s", self.label, "the fingerprint's read, shared" if shared is not None else "a read of its own")
        try:
            for record_batch in (shared.batches() if shared is not None else self._record_batches()):
                n = record_batch.num_rows
                if not n:
                    continue
                columns = [self._as_fact(names[k], headers[names[k]], record_batch.column(k)) for k in range(len(names))]
                table = pa.table(columns, names=names)
                rows = np.arange(position + 1, position + n + 1, dtype=np.int64)
                position += n
                table, rows, rejects = self._drop_undecodable(table, rows, headers, self.label, "utf-8", True)
                yield Batch(self._typed_columns(table, self.facts), self.label, rows, headers, rejects, n)
        except SourceError:
            raise
        except Exception as error:  # noqa: BLE001
            raise _failed(self.url, f"cannot read after row {position}", error) from error

    def _as_fact(self, name: str, header: str, column: pa.Array) -> pa.Array:
        if isinstance(column, pa.ExtensionArray):  # numeric, and types the driver does not know
            column = column.storage
        fact: Fact = self.facts[name]
        kind, type_ = fact.type.kind, column.type
        if pa.types.is_integer(type_):
            # a number where a boolean, a text or a date is expected reads as its text, as in a CSV cell
            return column.cast(pa.int64()) if kind in (Kind.INTEGER, Kind.DECIMAL) else column.cast(pa.string())
        if pa.types.is_string(type_) or pa.types.is_large_string(type_):
            return column
        if pa.types.is_boolean(type_) and kind is Kind.BOOLEAN:
            return column
        if pa.types.is_date32(type_) and kind is Kind.DATE:
            return column
        if pa.types.is_floating(type_) and kind not in _TEXT_KINDS:
            return column
        if pa.types.is_binary(type_) or pa.types.is_large_binary(type_):
            return column.cast(pa.binary()).view(pa.string())  # its UTF-8 checked as any text
        try:  # as the text a CSV export of the column holds
            return column.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            server_type = self.types.get(header, {}).get(b"POSTGRESQL:type", b"?").decode()
            raise SourceError(f"{self.label}: column {header!r} is of type {server_type}, which cannot be read "
                              f"as {kind}: cast it in a query (?query=SELECT ...)") from error

    def described(self) -> dict[str, str]:
        return {"format": "postgresql", **({"table": self._shown_table()} if self.table else {"query": self.query})}

    def fingerprint(self) -> str:
        """sha256 over the location, the columns' types and the Arrow buffers of every batch
        read, in the run's snapshot (engine/sources/_pg_snapshot.py): the rows hashed are the
        rows scored. Equal for equal content read in the same order by the same driver.

        The read is the scoring's too: the batches are offered to :meth:`batches` as they are
        hashed (:class:`_SharedRead`), so a run reads its table once; the scoring read is
        a second one only when it starts after this one has buffered :data:`_AHEAD_BYTES`
        (a run deciding by the fingerprint whether to score at all)."""
        with self._lock:  # shared by the first read of this reader only, the scoring's or this
            shared = None
            if self._shared is None:
                shared = self._shared = _SharedRead()
        digest = hashlib.sha256(f"{self.label}\0{self.select()}\0".encode())
        try:
            for record_batch in self._record_batches():
                if record_batch.num_rows == 0:
                    continue
                digest.update(f"{record_batch.schema.types}\0{record_batch.num_rows}\0".encode())
                for column in record_batch.columns:
                    digest.update(f"{column.null_count}\0".encode())
                    for buffer in column.buffers():
                        if buffer is not None:
                            digest.update(buffer)
                if shared is not None:
                    shared.offer(record_batch)
        except Exception as error:  # noqa: BLE001 - the driver's errors, for both readers
            failed = error if isinstance(error, SourceError) else _failed(self.url, "cannot read", error)
            if shared is not None:
                shared.end(failed)
            raise failed from error
        if shared is not None:
            shared.end()
        return digest.hexdigest()

    def stat_fingerprint(self) -> str:
        """No cheap change marker exists in plain SQL: the location only, so that a run of the
        same location is a candidate whose content fingerprint then decides."""
        return hashlib.sha256(f"{self.label}\0{self.select()}".encode()).hexdigest()


class _SharedRead:
    """One read of a table feeding two consumers: the fingerprint, which hashes every batch
    (the producer), and the scoring, which takes them in order if it attaches before the
    producer has buffered :data:`_AHEAD_BYTES`. Attached, the producer waits for it (bounded
    memory); never attached, or gone (an error, a closed generator), it is not waited for."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._held: deque = deque()
        self._held_bytes = 0
        self._state = "open"  # -> "attached" -> "closed", or "open" -> "missed"
        self._ended, self._error = False, None

    def offer(self, batch: pa.RecordBatch) -> None:
        with self._ready:
            if self._state == "open" and self._held_bytes + batch.nbytes > _AHEAD_BYTES:
                self._state, self._held, self._held_bytes = "missed", deque(), 0
            if self._state in ("missed", "closed"):
                return
            self._held.append(batch)
            self._held_bytes += batch.nbytes
            self._ready.notify_all()
            while self._state == "attached" and len(self._held) > 2:
                self._ready.wait()

    def end(self, error: BaseException | None = None) -> None:
        with self._ready:
            self._ended, self._error = True, error
            self._ready.notify_all()

    def attach(self) -> bool:
        with self._ready:
            if self._state != "open":
                return False
            self._state = "attached"
            return True

    def batches(self) -> Iterator[pa.RecordBatch]:
        try:
            while True:
                with self._ready:
                    while not self._held and not self._ended:
                        self._ready.wait()
                    if not self._held:
                        if self._error is not None:
                            raise self._error
                        return
                    batch = self._held.popleft()
                    self._held_bytes -= batch.nbytes
                    self._ready.notify_all()
                yield batch
        finally:
            with self._ready:
                self._state, self._held = "closed", deque()
                self._ready.notify_all()


__all__ = ["PostgresSource"]
