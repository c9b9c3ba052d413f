"""A PostgreSQL registry read into Arrow: ADBC's driver against psycopg 3's binary COPY, in one run.

    python bench/pg_read.py --url "postgresql:///postgres?host=/tmp/pg" --rows 2000000

Issue 12 asks for the registry streamed from PostgreSQL as Arrow batches without a row-by-row
Python loop, by whichever of the two drivers is faster. Three readings of the same table of
registry-shaped rows (text, integers, booleans, a numeric, a date), interleaved over rounds:

- ``adbc``: adbc-driver-postgresql, ``COPY (SELECT ...) TO STDOUT (FORMAT binary)`` parsed in
  C into Arrow record batches (what engine/sources/_postgres.py does);
- ``psycopg rows``: psycopg's binary COPY, rows decoded by psycopg and gathered into Arrow
  columns (the same work: Arrow batches at the end), which needs a Python loop per row;
- ``psycopg bytes``: psycopg's binary COPY with the bytes only counted, not decoded: the floor
  any reader pays to get the data off the server;
- ``ecorules reader``: ecorules' own Registry on the URL: ADBC plus the facts' types, the
  UTF-8 check and the shared snapshot, batches as the nightly run gets them.

Prints the median seconds and rows/s of each and the ratios. The table is created (UNLOGGED)
in the database of ``--url`` as ``ecorules_bench_registry`` and dropped at the end. The
password, if any, comes from PGPASSWORD or ~/.pgpass, as for ecorules itself.
"""

from __future__ import annotations

import argparse
import statistics
import time

import pyarrow as pa

TABLE = "ecorules_bench_registry"
SELECT = (f"SELECT uscc, name, district, industrial, untreated_outfalls, direct_discharge_cases, "
          f"fine, decided FROM {TABLE}")


def create(url: str, rows: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
        connection.execute(
            f"CREATE UNLOGGED TABLE {TABLE} (uscc text, name text, district text, industrial boolean, "
            "untreated_outfalls integer, direct_discharge_cases bigint, fine numeric(14, 2), decided date)")
        connection.execute(
            f"INSERT INTO {TABLE} SELECT '91410100' || lpad(i::text, 9, '0') || 'X', '郑州示例化工有限公司' || i, "
            "(ARRAY['中原区', '二七区', '金水区', '管城回族区'])[1 + i %% 4], i %% 3 = 0, i %% 7, i %% 5, "
            "(i %% 100000) * 1.25, DATE '2012-01-01' + (i %% 3000) FROM generate_series(1, %s) AS i", (rows,))
        connection.execute(f"ANALYZE {TABLE}")


def drop(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {TABLE}")


def read_adbc(url: str) -> int:
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(SELECT)
        return sum(batch.num_rows for batch in cursor.fetch_record_batch())


def read_psycopg_rows(url: str, batch_rows: int = 262_144) -> int:
    import psycopg

    names = ["uscc", "name", "district", "industrial", "untreated_outfalls", "direct_discharge_cases", "fine", "decided"]
    types = ["text", "text", "text", "bool", "int4", "int8", "numeric", "date"]
    arrow = [pa.string(), pa.string(), pa.string(), pa.bool_(), pa.int32(), pa.int64(), pa.decimal128(14, 2), pa.date32()]
    total = 0
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy(f"COPY ({SELECT}) TO STDOUT (FORMAT BINARY)") as copy:
            copy.set_types(types)
            buffer: list[tuple] = []
            for row in copy.rows():
                buffer.append(row)
                if len(buffer) == batch_rows:
                    total += pa.table([pa.array(c, t) for c, t in zip(zip(*buffer, strict=True), arrow, strict=True)], names=names).num_rows
                    buffer = []
            if buffer:
                total += pa.table([pa.array(c, t) for c, t in zip(zip(*buffer, strict=True), arrow, strict=True)], names=names).num_rows
    return total


def read_psycopg_bytes(url: str) -> int:
    import psycopg

    size = 0
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy(f"COPY ({SELECT}) TO STDOUT (FORMAT BINARY)") as copy:
            for chunk in copy:
                size += len(chunk)
    return size


def read_ecorules(url: str) -> int:
    from ecorules.engine._sources import ColumnResolver, Registry
    from ecorules.rules import load_policies

    facts = load_policies().facts
    # the same eight columns as the other readers: the case table's facts give the date and
    # the amount (read, not scored: a fine in cents stays its exact text)
    needed = {name: [] for name in ("uscc", "name", "district", "industrial", "untreated_outfalls",
                                    "direct_discharge_cases", "fine_yuan", "decided")}
    sep = "&" if "?" in url else "?"
    registry = Registry(f"{url}{sep}table={TABLE}", ColumnResolver(facts, needed, {"fine_yuan": ["fine"]}))
    return sum(batch.rows_in for batch in registry.batches())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql:///postgres", help="a libpq URL; no password in it")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    create(args.url, args.rows)
    try:
        readers = {"adbc": read_adbc, "psycopg rows": read_psycopg_rows, "psycopg bytes": read_psycopg_bytes,
                   "ecorules reader": read_ecorules}
        seconds: dict[str, list[float]] = {name: [] for name in readers}
        for _ in range(args.rounds):  # interleaved: the machine's noise hits every reader alike
            for name, read in readers.items():
                began = time.perf_counter()
                got = read(args.url)
                seconds[name].append(time.perf_counter() - began)
                if name != "psycopg bytes" and got != args.rows:
                    raise SystemExit(f"{name} read {got} rows, expected {args.rows}")
    finally:
        drop(args.url)
    median = {name: statistics.median(times) for name, times in seconds.items()}
    for name, value in median.items():
        print(f"{name:>15}: {value:7.2f} s  {args.rows / value:>12,.0f} rows/s")
    print(f"psycopg rows / adbc: {median['psycopg rows'] / median['adbc']:.2f}x  "
          f"(adbc / psycopg bytes, the floor: {median['adbc'] / median['psycopg bytes']:.2f}x; "
          f"ecorules reader / adbc: {median['ecorules reader'] / median['adbc']:.2f}x)")


if __name__ == "__main__":
    main()
