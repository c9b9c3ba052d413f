"""A registry in a PostgreSQL table scored into a results store in PostgreSQL, end to end,
beside the floors of the same server, in one run.

    python bench/pg_store.py --url "postgresql:///postgres?host=/tmp/pg" --rows 1000000

Issue 12's target: ``ecorules run --registry "postgresql:///DB?table=T" --out
"postgresql:///DB?schema=S"`` within 1.5 x (read floor + write floor), peak RSS <= 1 GiB.

- ``read floor``: ``COPY (SELECT * FROM T) TO STDOUT (FORMAT BINARY)`` through psycopg, the
  bytes counted, not decoded: what any reader pays to get the table off the server;
- ``write floor``: ``COPY ... FROM STDIN (FORMAT BINARY)`` of as many result rows as the table
  has rows (run id, uscc, amount, payer: a finding's columns), from rows made beforehand;
- ``ecorules run``: the CLI in a process of its own (its peak RSS sampled from /proc), into a
  fresh schema, ``--force`` so that each round scores and writes.

The registry is ``ecorules gen-registry`` (seed 1) loaded once into ``ecorules_bench_store``
(dropped at the end, with the results schema). Rounds are interleaved; medians are printed
with the load average (2 shared cores: the ratio is what carries).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nightly import PeakRss  # noqa: E402

TABLE = "ecorules_bench_store"
SCHEMA = "ecorules_bench_results"
AS_OF = "2012-04-14"


def _in(url: str, parameter: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{parameter}"


def load_registry(url: str, rows: int, folder: Path) -> None:
    import adbc_driver_postgresql.dbapi as adbc
    import pyarrow.parquet as pq

    path = folder / "registry.parquet"
    subprocess.run([sys.executable, "-m", "ecorules.engine", "gen-registry", "--rows", str(rows), "--seed", "1",
                    "--out", str(path)], check=True, capture_output=True)
    table = pq.read_table(path)
    with adbc.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cursor.adbc_ingest(TABLE, table, mode="create")
        connection.commit()
        cursor.execute(f"ANALYZE {TABLE}")
        connection.commit()


def read_floor(url: str) -> float:
    import psycopg

    started = time.perf_counter()
    size = 0
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy(f"COPY (SELECT * FROM {TABLE}) TO STDOUT (FORMAT BINARY)") as copy:
            for block in copy:
                size += len(block)
    assert size > 0
    return time.perf_counter() - started


def write_floor(url: str, rows: list[tuple]) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS ecorules_bench_floor")
        connection.execute("CREATE TABLE ecorules_bench_floor (run_id bigint, uscc text, amount bigint, payer text)")
        started = time.perf_counter()
        with connection.transaction(), connection.cursor() as cursor, \
                cursor.copy("COPY ecorules_bench_floor FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "text", "int8", "text"])
            for row in rows:
                copy.write_row(row)
        seconds = time.perf_counter() - started
        connection.execute("DROP TABLE ecorules_bench_floor")
    return seconds


def ecorules_run(url: str) -> dict:
    command = [sys.executable, "-m", "ecorules.engine", "run", "--registry", _in(url, f"table={TABLE}"),
               "--out", _in(url, f"schema={SCHEMA}"), "--as-of", AS_OF, "--force", "--format", "json",
               "--no-progress"]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = PeakRss(child.pid)
    out, err = child.communicate()
    peak.stop()
    seconds = time.perf_counter() - started
    if child.returncode not in (0, 1):
        raise SystemExit(f"ecorules run failed ({child.returncode}): {err[-2000:]}")
    summary = json.loads(out)
    return {"seconds": seconds, "rss_mib": peak.mib, "rows_in": summary["rows_in"], "findings": summary["findings"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql:///postgres", help="a libpq URL; no password in it")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import psycopg

    with tempfile.TemporaryDirectory() as folder:
        load_registry(args.url, args.rows, Path(folder))
    result_rows = [(1, f"91410100{i:09d}X", 100 * (i % 5000), "中原区") for i in range(args.rows)]
    times: dict[str, list[float]] = {"read floor": [], "write floor": [], "ecorules run": []}
    runs = []
    try:
        ecorules_run(args.url)  # the schema made, the first run's list entries entered: later rounds are reruns
        for _ in range(args.rounds):
            times["read floor"].append(read_floor(args.url))
            times["write floor"].append(write_floor(args.url, result_rows))
            runs.append(ecorules_run(args.url))
            times["ecorules run"].append(runs[-1]["seconds"])
    finally:
        with psycopg.connect(args.url, autocommit=True) as connection:
            connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
            connection.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    median = {name: statistics.median(values) for name, values in times.items()}
    floors = median["read floor"] + median["write floor"]
    print(f"{args.rows:,} registry rows, {runs[-1]['findings']:,} findings, load {os.getloadavg()[0]:.1f} "
          f"(1 min) on {os.cpu_count()} cores")
    for name, seconds in median.items():
        print(f"  {name:13s} {seconds:7.2f} s  {args.rows / seconds:12,.0f} rows/s")
    print(f"  ecorules run / (read floor + write floor) = {median['ecorules run'] / floors:.2f} (target <= 1.5)")
    print(f"  peak RSS of ecorules run: {max(r['rss_mib'] for r in runs):,.0f} MiB (target <= 1024)")


if __name__ == "__main__":
    main()
