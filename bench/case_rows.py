"""What writing a case run's findings costs, build by build: the case run of bench/cases.py
(its data, its policies, a fresh store) in a process per build, alternately, the order turned
each round.

    python bench/case_rows.py --build main=/tmp/NAME-main --build this=/tmp/NAME-this \\
        --cases 2000000 --enterprises 200000 --rounds 3 --dir /tmp/NAME-data

A build is NAME=a folder put first on PYTHONPATH holding an ``ecorules`` copy with its compiled
modules (bench/cases.py's ``--build``). Per run: the process's CPU seconds (every thread) and
wall seconds of ``NightlyRun.execute``; the main thread's CPU seconds in
``CaseWriter.partition`` (the findings laid out as chunks, the list entries, the assessments);
the store writer thread's CPU seconds (SQLite inserting the chunks, the WAL, the commit and its
checkpoint); the store's bytes after the run (file and WAL) and its findings chunks'
characters; the load. The whole run's CPU moves by more than the write side on a loaded
machine: the two write figures are the ones a change of the finding rows moves.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import _alternate  # bench/_alternate.py: a script's own folder is first on sys.path

BENCH = Path(__file__).resolve().parent


def child(args) -> int:
    """One case run in this process, instrumented; prints its figures as a JSON line."""
    import sqlite3

    sys.path.insert(0, str(BENCH))
    import cases as bench_cases
    from ecorules.engine._nightly import NightlyRun
    from ecorules.engine.cases import _write
    from ecorules.engine.store import sqlite as store_sqlite

    spent = {"partition": 0.0, "writer": 0.0}
    partition, work = _write.CaseWriter.partition, store_sqlite.RunWriter._work

    # this process's own classes timed where they run (a bench: nothing else runs here)
    def timed_partition(self, *a, **k):
        start = time.thread_time()
        try:
            return partition(self, *a, **k)
        finally:
            spent["partition"] += time.thread_time() - start

    def timed_work(self):
        start = time.thread_time()
        try:
            return work(self)
        finally:
            spent["writer"] += time.thread_time() - start

    _write.CaseWriter.partition, store_sqlite.RunWriter._work = timed_partition, timed_work
    paths = bench_cases.prepare(args.dir, args.enterprises, args.cases)
    out = args.dir / f"case-rows-{os.getpid()}.sqlite"
    out.unlink(missing_ok=True)
    run = NightlyRun(paths["enterprises"], out, policies=bench_cases.POLICIES, as_of=bench_cases.AS_OF,
                     threads=args.threads, cases=paths["cases"], force=True, tune_allocator=True)
    cpu, wall = bench_cases._cpu_seconds(), time.perf_counter()
    summary = run.execute()
    wall, cpu = time.perf_counter() - wall, bench_cases._cpu_seconds() - cpu
    size = sum(Path(f"{out}{s}").stat().st_size for s in ("", "-wal") if Path(f"{out}{s}").exists())
    connection = sqlite3.connect(out)
    text = connection.execute("SELECT sum(length(rows)) FROM finding_chunks").fetchone()[0]
    connection.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    print(json.dumps({"cpu": cpu, "wall": wall, "partition": spent["partition"], "writer": spent["writer"],
                      "bytes": size, "text": text, "findings": summary.findings, "rows_in": summary.rows_in}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2_000_000)
    parser.add_argument("--enterprises", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=2)
    _alternate.add_arguments(parser, "ecorules-bench-cases")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.child:
        return child(args)
    builds = _alternate.builds(args.build)
    found: dict[str, list[dict]] = {name: [] for name, _ in builds}
    arguments = [__file__, "--child", "--cases", str(args.cases), "--enterprises", str(args.enterprises),
             "--threads", str(args.threads), "--dir", str(args.dir)]
    for round_, name, run, load in _alternate.alternated([(name, path, lambda _: arguments) for name, path in builds], args.rounds):
        run["load"] = load
        found[name].append(run)
        print(f"round {round_} {name:>6}: CPU-s {run['cpu']:.2f} wall {run['wall']:.2f} partition {run['partition']:.2f} "
              f"writer {run['writer']:.2f}; store {run['bytes'] / 1e6:.1f} MB, chunks {run['text'] / 1e6:.1f} M chars; "
              f"{run['findings']:,} findings; load {load:.1f}", flush=True)
    first = builds[0][0]
    for name, _ in builds:
        runs = found[name]
        line = "  ".join(f"{k} {statistics.median(r[k] for r in runs):.2f}" for k in ("cpu", "wall", "partition", "writer"))
        print(f"{name:>6} median: {line}; store {runs[0]['bytes'] / 1e6:.1f} MB, chunks {runs[0]['text'] / 1e6:.1f} M chars")
        if name != first:
            ratio = "  ".join(f"{k} {statistics.median(r[k] for r in runs) / statistics.median(r[k] for r in found[first]):.3f}"
                              for k in ("cpu", "wall", "partition", "writer"))
            print(f"{name} / {first} (medians): {ratio}; store {runs[0]['bytes'] / found[first][0]['bytes']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
