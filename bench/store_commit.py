"""What a run's commit step waits for: a store written as a case run writes it, build by build.

    python bench/store_commit.py --build main=/tmp/NAME-main --build this=/tmp/NAME-this \\
        --megabytes 900 --seconds 20 --rounds 3 --dir /tmp/NAME-commit

A build is NAME=a folder put first on PYTHONPATH holding an ``ecorules`` copy (as
bench/case_rows.py's). Each run, a process of its own: a new store, a run's ``RunWriter``
handed --megabytes of finding chunks (~12 MB of JSON each, as a 10 M-case run's) spread
evenly over --seconds (the pace at which a case run's partitions come; the sleeps stand for
its judging, so the writer's thread works beside them as it does in a run), then the commit.
Prints the seconds of the commit step (``RunWriter.commit``: the last statements, COMMIT and
its checkpoint, which syncs the WAL and then the database file), the whole run's wall seconds
and the process's CPU seconds, and the load. The commit is mostly waiting for the disk, so
its wall seconds are the figure; on a machine shared with other jobs the disk is shared too:
alternate the builds and compare medians.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import _alternate  # bench/_alternate.py: a script's own folder is first on sys.path

CHUNK_ROWS = 230_000  # ~12 MB of rows like a case slot's


def chunk_text(rows: int) -> str:
    return "[" + ",".join(f'["91410100MA{k:08d}",{1000 * (k % 97)},"C{k:09d}",null,"A{k % 7}"]'
                          for k in range(rows)) + "]"


def child(args) -> int:
    from ecorules.engine import store

    out = args.dir / f"commit-{os.getpid()}.sqlite"
    connection = store.connect(out)
    run_id = store.start_run(connection, as_of=dt.date(2026, 1, 1), source="bench", policy_fingerprint="b" * 64,
                             policies=[], version="bench")
    text = chunk_text(CHUNK_ROWS)
    chunks = max(1, round(args.megabytes * 1e6 / len(text)))
    pace = args.seconds / chunks
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu, began = usage.ru_utime + usage.ru_stime, time.perf_counter()
    writer = store.RunWriter(out, run_id)
    writer.execute(store.INSERT_FINDING_SLOT, (run_id, 0, "bench@1", "r", "fine", "c"))
    for k in range(chunks):
        writer.execute(store.INSERT_FINDINGS, (run_id, 0, text))
        time.sleep(max(0.0, began + (k + 1) * pace - time.perf_counter()))

    def finish(db):
        db.execute("UPDATE runs SET status = 'done', rows_in = 0, rows_scored = 0, rows_rejected = 0 WHERE id = ?",
                   (run_id,))

    committing = time.perf_counter()
    writer.commit(finish)
    ended = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    size = out.stat().st_size
    connection.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    print(json.dumps({"commit": ended - committing, "wall": ended - began,
                      "cpu": usage.ru_utime + usage.ru_stime - cpu, "bytes": size}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=900)
    parser.add_argument("--seconds", type=float, default=20)
    _alternate.add_arguments(parser, "ecorules-bench-commit")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.child:
        return child(args)
    builds = _alternate.builds(args.build)
    found: dict[str, list[dict]] = {name: [] for name, _ in builds}
    arguments = [__file__, "--child", "--megabytes", str(args.megabytes), "--seconds", str(args.seconds), "--dir", str(args.dir)]
    for round_, name, run, load in _alternate.alternated([(name, path, lambda _: arguments) for name, path in builds], args.rounds):
        found[name].append(run)
        print(f"round {round_} {name:>6}: commit {run['commit']:.2f} s, run {run['wall']:.2f} s, "
                  f"CPU-s {run['cpu']:.2f}, store {run['bytes'] / 1e6:.0f} MB, load {load:.1f}", flush=True)
    first = builds[0][0]
    for name, _ in builds:
        runs = found[name]
        line = "  ".join(f"{k} {statistics.median(r[k] for r in runs):.2f}" for k in ("commit", "wall", "cpu"))
        print(f"{name:>6} median: {line}")
        if name != first:
            print(f"{name} / {first} (medians): " + "  ".join(
                f"{k} {statistics.median(r[k] for r in runs) / statistics.median(r[k] for r in found[first]):.3f}"
                for k in ("commit", "wall", "cpu")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
