"""The list state's memory against its number of entries: peak RSS of ``update_entries``.

    python bench/lists.py --entries 200000 800000 2000000 [--baseline-python /work/venv/bin/python]
    python bench/lists.py --url "postgresql://postgres@/postgres?host=/tmp/pg&port=5432" ...

For each size, a results store is made with two runs' sanctions (no scoring: the chunks a
run writes, laid out as ``ecorules run`` lays them out): run 1 justifies N entries (plain
usccs on three rules of two lists, and 5% of them cases with a start and a planned end, some
of which have passed by run 2); run 2 justifies 90% of them again and 10% new ones, and lifts
a few. Each variant brings a copy of that store up to run 1 and then run 2
(``engine/_lists.update_entries``, in its transaction), each step in a process of its own,
which reports its RSS before the step (imports, connection) and its peak during it (VmHWM
after resetting it through /proc/self/clear_refs), and the step's seconds and CPU seconds
(the step's process, its commit included; with ``--rounds``, the variants alternate):

- ``partitioned``: the code as it is (entries compared a partition at a time);
- ``one partition``: the same code with ENTRIES_PER_PARTITION beyond the entries, every entry
  compared at once (what the comparison did before it was partitioned);
- ``baseline``: ``--baseline-python``, an interpreter whose ecorules is another checkout (e.g.
  main's), doing the same steps.

With ``--url`` the stores are schemas ``lists_bench_*`` of that PostgreSQL database, built
for each variant (a copy costs as much) and dropped afterwards; the process measured is the
client, as with SQLite. The variants' stores must end with the same entries (the ``list_entries`` view; ids
included for the two variants of this checkout, whose ids follow the order the run found
the entries in even where it merged several entries of one key): the bench says so or stops. The machine's load average is printed beside each
size; the figure that carries is the peak's growth over the RSS before the step, per variant.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

RUNS = ((1, dt.date(2013, 6, 30)), (2, dt.date(2013, 7, 31)))
CHUNK = 262_144  # codes per sanction chunk, as the nightly run writes them
CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
RULES = (("blacklist", "bench/lists", "r1", "黑名单"), ("blacklist", "bench/lists", "r2", "黑名单 二"),
         ("credit_watch", "bench/lists", "r3", "重点关注"))


def codes(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct 18-character codes shaped like USCCs (region, organization body, two check
    characters: the bytes the partitions are drawn from vary as a real registry's do)."""
    body = rng.choice(10**9, n, replace=False)
    digits = np.zeros((n, 18), np.int64)
    digits[:, 0], digits[:, 1], digits[:, 2:8] = 9, 1, [4, 1, 0, 1, 0, 5]
    for k in range(9):
        digits[:, 16 - k] = body // 10**k % 10
    digits[:, 16] = rng.integers(0, 11, n)
    digits[:, 17] = rng.integers(0, 31, n)
    chars = np.frombuffer(CHARSET.encode(), np.uint8)[digits]
    return chars.astype(np.uint8).view("S18").ravel()


def _plain_json(values: np.ndarray) -> str:
    return "[" + ",".join(f'"{v.decode()}"' for v in values) + "]"


def build(path: Path, n: int, seed: int = 7) -> None:
    """The store of two runs' sanctions: see the module's docstring."""
    from ecorules.engine import store

    rng = np.random.default_rng(seed)
    every = codes(rng, n + n // 10)
    cased = rng.random(len(every)) < 0.05
    gone = rng.random(n) < 0.10  # of run 1's entries, not justified by run 2
    justified = {1: np.arange(n), 2: np.concatenate([np.flatnonzero(~gone), np.arange(n, len(every))])}
    connection = store.connect(path)
    try:
        for _, as_of in RUNS:
            store.start_run(connection, as_of=as_of, source="bench", policy_fingerprint="bench", policies=[],
                            version="bench")
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            for run_id, at in justified.items():
                for slot, (list_id, policy, rule, reason) in enumerate(RULES):  # a code's rule: its index's
                    mine = every[at[~cased[at] & (at % len(RULES) == slot)]]
                    connection.execute(store.INSERT_SANCTION_SLOT, (run_id, slot, policy, list_id, rule, reason, "bench"))
                    for start in range(0, len(mine), CHUNK):
                        connection.execute(store.INSERT_SANCTIONS, (run_id, slot, _plain_json(mine[start:start + CHUNK])))
                # a case entered in 2012 for a year (expired by run 2), or in 2013 for two
                rows = [[every[k].decode(), f"case-{k}", f"201{2 + k % 2}-0{1 + k % 9}-15", f"201{3 + k % 2}-0{1 + k % 9}-14"]
                        for k in at[cased[at]].tolist()]
                slot = len(RULES)
                connection.execute(store.INSERT_SANCTION_SLOT, (run_id, slot, "bench/lists", "blacklist", "r4", "案件", "bench"))
                for start in range(0, len(rows), CHUNK):
                    connection.execute(store.INSERT_SANCTIONS, (run_id, slot, json.dumps(rows[start:start + CHUNK])))
            connection.executemany(store.INSERT_LIFTS, [
                (2, c.decode(), "blacklist", "bench/lists", "lift", "整改 rectified", None, "2013-07-15") for c in every[justified[2][::97]]])
    finally:
        connection.close()


def step(path: str, run: int, partition: int | None) -> None:
    """One run's update of the list state, in this process: prints its figures as JSON."""
    import resource
    import time

    from ecorules.engine import _lists, store

    if partition is not None:
        _lists.ENTRIES_PER_PARTITION = partition
    connection = store.connect(path)
    before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark from here on
    began, usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    with connection:
        connection.execute("BEGIN IMMEDIATE")
        counts = _lists.update_entries(connection, run, dict(RUNS)[run], cases_judged=True)
    seconds, after = time.perf_counter() - began, resource.getrusage(resource.RUSAGE_SELF)
    connection.close()
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime  # this process's, the commit's included
    json.dump({"rss_before": before, "peak": _status("VmHWM"), "seconds": seconds, "cpu": cpu, "counts": counts}, sys.stdout)


def _status(name: str) -> int:
    """A VmXXX line of /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {name} in /proc/self/status")


def entries_digests(path: Path | str) -> tuple[str, str]:
    """Digests of the store's entries: with their ids, and without (their content)."""
    import sqlite3

    from ecorules.engine import store

    connection = store.connect(path, readonly=True) if store.is_url(path) else sqlite3.connect(path)
    try:
        rows = connection.execute("SELECT * FROM list_entries ORDER BY id").fetchall()
        exact = hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
        return exact, hashlib.sha256(repr(sorted(row[1:] for row in rows)).encode()).hexdigest()[:16]
    finally:
        connection.close()


def in_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(psycopg.sql.Identifier(schema)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, nargs="+", default=[200_000, 800_000, 2_000_000])
    parser.add_argument("--baseline-python", help="an interpreter whose ecorules is the baseline checkout")
    parser.add_argument("--variants", nargs="+", default=["partitioned", "one partition", "baseline"],
                        help="of: partitioned, 'one partition', baseline (with --baseline-python)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="each size's variants this many times, their order reversed every other round")
    parser.add_argument("--url", help="a PostgreSQL database whose schemas hold the stores (else SQLite files)")
    parser.add_argument("--step", nargs=3, metavar=("STORE", "RUN", "PARTITION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        store_path, run, partition = args.step
        step(store_path, int(run), int(partition) if partition != "-" else None)
        return
    variants = [("partitioned", sys.executable, "-"), ("one partition", sys.executable, str(2**62))]
    if args.baseline_python:
        variants.append(("baseline", args.baseline_python, "-"))
    variants = [variant for variant in variants if variant[0] in args.variants]
    print(f"list state bench, {dt.datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="ecorules-lists-") as folder:
        for n in args.entries:
            source = Path(folder) / f"built-{n}.sqlite"
            if not args.url:
                build(source, n)
            print(f"{n:,} entries (run 2: 90% kept, 10% new, 5% cases), load {os.getloadavg()[0]:.1f}", flush=True)
            digests = {}
            for name, python, partition in [v for r in range(args.rounds) for v in (variants[::-1] if r % 2 else variants)]:
                if args.url:
                    schema = f"lists_bench_{name.replace(' ', '_')}_{n}"
                    drop_schema(args.url, schema)
                    db = in_schema(args.url, schema)
                    build(db, n)
                else:
                    db = Path(folder) / f"{name.replace(' ', '-')}-{n}.sqlite"
                    shutil.copy(source, db)
                for run, _ in RUNS:
                    done = subprocess.run([python, __file__, "--step", str(db), str(run), partition],
                                          check=True, capture_output=True, text=True)
                    figures = json.loads(done.stdout)
                    growth = (figures["peak"] - figures["rss_before"]) / 1024
                    print(f"  {name:14} run {run}: peak RSS {figures['peak'] / 1024:6.0f} MiB "
                          f"(+{growth:5.0f} MiB over {figures['rss_before'] / 1024:4.0f} before), "
                          f"{figures['seconds']:6.2f} s, {figures['cpu']:6.2f} CPU-s, load {os.getloadavg()[0]:4.1f}, "
                          f"{figures['counts']}", flush=True)
                digest = entries_digests(db)
                if digests.setdefault(name, digest) != digest:
                    raise SystemExit(f"{name}'s entries differ between rounds: {digests[name]} then {digest}")
                if args.url:
                    drop_schema(args.url, schema)
                else:
                    db.unlink()
            exact, content = ({name: d[k] for name, d in digests.items()} for k in (0, 1))
            if len(set(content.values())) != 1 or exact.get("partitioned") != exact.get("one partition", exact.get("partitioned")):
                raise SystemExit(f"the variants' entries differ: {digests}")
            alike = "ids included" if len(set(exact.values())) == 1 else "the baseline's ids in another order"
            print(f"  entries alike in every variant ({alike}), load {os.getloadavg()[0]:.1f}", flush=True)
            source.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
