"""A committed run's rows read back from its results store (SQLite or PostgreSQL, through the
views ``ecorules export`` reads) as Arrow tables in chunks, typed for the tables a distributed
run writes beside the store (``--out-format parquet`` and ``hive``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pyarrow as pa

from .. import store

CHUNK_ROWS = 200_000  # rows per chunk: bounded driver memory, few Spark jobs
YUAN = pa.decimal128(22, 2)
ARROW = {"text": pa.string(), "int": pa.int64(), "money": YUAN, "date": pa.date32()}


class NotWholeYuan(ValueError):
    """An amount with fen where the table holds whole yuan (int64)."""


def _value(value, kind: str, money: pa.DataType):
    if value is None:
        return None
    if kind == "money":  # an int of yuan, an exact text ("0.48"), PostgreSQL's numeric: never a float
        exact = Decimal(str(value))
        if money == pa.int64():
            if exact != exact.to_integral_value():
                raise NotWholeYuan(f"{value} yuan is not a whole number of yuan")
            return int(exact)
        return exact.quantize(Decimal("0.01"))
    if kind == "int":
        return int(value)
    if kind == "date":
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    return value if isinstance(value, str) else str(value)


def schema(columns: dict[str, str], money: pa.DataType = YUAN) -> pa.Schema:
    return pa.schema([(c, money if k == "money" else ARROW[k]) for c, k in columns.items()])


def run_rows(connection, view: str, columns: dict[str, str], run_id: int, *, where: str = "", params: tuple = (),
             money: pa.DataType = YUAN) -> Iterator[pa.Table]:
    """``columns`` (name -> text, int, money, date) of ``view``'s rows of the run, and of those
    only where ``where`` (SQL with ``?`` parameters) holds; amounts as ``money`` (decimal(22, 2)
    yuan, or int64 yuan: :class:`NotWholeYuan` for an amount with fen)."""
    types = schema(columns, money)
    quoted = ", ".join(f'"{c}"' for c in columns)
    cursor = connection.execute(f"SELECT {quoted} FROM {view} WHERE run_id = ?{where}", (run_id, *params))
    while chunk := cursor.fetchmany(CHUNK_ROWS):
        values = list(zip(*chunk, strict=True))
        yield pa.table([pa.array([_value(v, k, money) for v in values[i]], types.field(i).type)
                        for i, k in enumerate(columns.values())], schema=types)


def connect(target):
    return store.connect(target, readonly=True)


__all__ = ["ARROW", "CHUNK_ROWS", "YUAN", "NotWholeYuan", "connect", "run_rows", "schema"]
