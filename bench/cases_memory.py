"""Peak memory and CPU of one `ecorules run --cases` per case-table size, before and after.

    python bench/cases_memory.py --cases 2000000 5000000 10000000 --days 2 \\
        --python before=/work/venv/bin/python --python after=/work/venv-NAME/bin/python

Each run is a process of its own (its peak RSS is its own, not the largest so far), of the
interpreter named (each venv installs one checkout of ecorules), over the data of
bench/cases.py (made once per size by this interpreter: the policies of tests/data/cases, a
registry of --enterprises rows, a Parquet case table), with the CLI's allocator setting
(``tune_allocator``, engine/cases/_memory.py) unless --plain-allocator. With ``--days N``
the same table is run N nights into one store, night d as of 2026-01-0d, each night a
process of its own: from the second on, every case the first assessed is read from the
store's memory and reported already assessed (一例一次, engine/cases/_assessed.py), so the
second night's peak is the memory's cost. The runs are interleaved round by round, so that
the machine's load hits every variant alike. Printed per size, variant and night: the peak
RSS, wall seconds, user and system CPU seconds, cases per CPU-second and the machine's load;
then per variant and night the median peak beside the smallest size's (flat: near 1.00)
and beside the same size's first night, and each variant's CPU rate against the first
variant's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = """
import datetime as dt, json, resource, sys, time
from ecorules.engine._nightly import run_nightly
enterprises, cases, policies, out, tune, day = sys.argv[1:7]
began = time.perf_counter()
summary = run_nightly(enterprises, out, policies=policies, as_of=dt.date(2026, 1, int(day)), threads=2, cases=cases,
                      force=True, tune_allocator=tune == "1")
wall = time.perf_counter() - began
usage = resource.getrusage(resource.RUSAGE_SELF)
# VmHWM, this process's own peak: ru_maxrss keeps the forking parent's peak across exec
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"rss_mib": peak / 1024, "wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime,
                  "rows_in": summary.rows_in, "findings": summary.findings, "already": summary.already_assessed}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[2_000_000, 5_000_000, 10_000_000])
    parser.add_argument("--enterprises", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--python", action="append", default=[], metavar="NAME=PATH",
                        help="a variant: a name and its interpreter (default: this one, as 'this')")
    parser.add_argument("--plain-allocator", action="store_true", help="glibc's defaults, as run_nightly's callers")
    parser.add_argument("--days", type=int, default=1,
                        help="nights run into one store, each a process: the second on read the first's assessments")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "ecorules-bench-cases")
    args = parser.parse_args()
    variants = dict(v.split("=", 1) for v in args.python) or {"this": sys.executable}
    days = range(1, args.days + 1)
    args.dir.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT / "bench"))
    from cases import POLICIES, prepare

    paths = {n: prepare(args.dir, args.enterprises, n) for n in args.cases}
    found: dict[tuple[int, str, int], list[dict]] = {}
    for round_ in range(args.rounds):
        for n in args.cases:
            for name, python in variants.items():
                out = args.dir / f"memory-{name}-{n}.sqlite"
                for leftover in args.dir.glob(out.name + "*"):
                    leftover.unlink()
                for day in days:
                    load = os.getloadavg()[0]
                    done = subprocess.run([python, "-c", _CHILD, str(paths[n]["enterprises"]), str(paths[n]["cases"]),
                                           str(POLICIES), str(out), "0" if args.plain_allocator else "1", str(day)],
                                          capture_output=True, text=True)
                    if done.returncode:
                        raise SystemExit(f"{name} at {n:,} cases, night {day}, failed:\n{done.stderr[-3000:]}")
                    result = json.loads(done.stdout.strip().splitlines()[-1])
                    found.setdefault((n, name, day), []).append(result)
                    cpu = result["user"] + result["sys"]
                    print(f"round {round_} {n:>11,} cases {name:>8} night {day}: peak RSS {result['rss_mib']:.0f} MiB, "
                          f"{result['wall']:.1f} s, CPU {result['user']:.1f} user + {result['sys']:.1f} sys, "
                          f"{result['rows_in'] / cpu / 1e6:.3f} M rows/CPU-s, {result['findings']:,} findings, "
                          f"{result['already']:,} already assessed (load {load:.2f})", flush=True)
                for leftover in args.dir.glob(out.name + "*"):
                    leftover.unlink()
    first = next(iter(variants))
    for name in variants:
        for day in days:
            peaks = {n: statistics.median(r["rss_mib"] for r in found[(n, name, day)]) for n in args.cases}
            smallest = peaks[args.cases[0]]
            night_one = {n: statistics.median(r["rss_mib"] for r in found[(n, name, 1)]) for n in args.cases}
            print(f"{name} night {day}: peak RSS " + ", ".join(
                f"{n:,}: {p:.0f} MiB ({p / smallest:.2f}x of {args.cases[0]:,}"
                + (f", {p / night_one[n]:.2f}x of night 1)" if day > 1 else ")") for n, p in peaks.items()))
    for n in args.cases:
        for day in days:
            rate = {name: statistics.median(r["rows_in"] / (r["user"] + r["sys"]) for r in found[(n, name, day)])
                    for name in variants}
            sys_share = {name: statistics.median(r["sys"] / (r["user"] + r["sys"]) for r in found[(n, name, day)])
                         for name in variants}
            print(f"{n:,} cases, night {day}: rows per CPU-second " + ", ".join(
                f"{name} {rate[name] / rate[first]:.2f}x of {first} (system {sys_share[name]:.0%})" for name in variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
