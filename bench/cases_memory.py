"""Peak memory and CPU of one `ecorules run --cases` per case-table size, before and after.

    python bench/cases_memory.py --cases 2000000 5000000 10000000 \\
        --python before=/work/venv/bin/python --python after=/work/venv-NAME/bin/python

Each run is a process of its own (its peak RSS is its own, not the largest so far), of the
interpreter named (each venv installs one checkout of ecorules), over the data of
bench/cases.py (made once per size by this interpreter: the policies of tests/data/cases, a
registry of --enterprises rows, a Parquet case table), with the CLI's allocator setting
(``tune_allocator``, engine/cases/_memory.py) unless --plain-allocator. The runs are
interleaved round by round, so that the machine's load hits every variant alike. Printed per
size and variant: the median peak RSS, wall seconds, user and system CPU seconds, and cases
per CPU-second (with --again, also the peak of a second run reading the first's assessments);
then each variant's peak beside the smallest size's (flat: near 1.00) and its
CPU rate against the first variant's.
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
enterprises, cases, policies, out, tune, again = sys.argv[1:7]
began = time.perf_counter()
summary = run_nightly(enterprises, out, policies=policies, as_of=dt.date(2026, 1, 1), threads=2, cases=cases, force=True,
                      tune_allocator=tune == "1")
wall = time.perf_counter() - began
usage = resource.getrusage(resource.RUSAGE_SELF)
found = {"rss_mib": usage.ru_maxrss / 1024, "wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime,
         "rows_in": summary.rows_in, "findings": summary.findings}
if again == "1":  # the next night's run: the first run's assessments are its memory (engine/cases/_assessed.py)
    later = run_nightly(enterprises, out, policies=policies, as_of=dt.date(2026, 1, 2), threads=2, cases=cases,
                        force=True, tune_allocator=tune == "1")
    found["again_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    found["again_already"] = later.already_assessed
print(json.dumps(found))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[2_000_000, 5_000_000, 10_000_000])
    parser.add_argument("--enterprises", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--python", action="append", default=[], metavar="NAME=PATH",
                        help="a variant: a name and its interpreter (default: this one, as 'this')")
    parser.add_argument("--plain-allocator", action="store_true", help="glibc's defaults, as run_nightly's callers")
    parser.add_argument("--again", action="store_true",
                        help="in each process a second run, the next day, into the same store: the memory of the first")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "ecorules-bench-cases")
    args = parser.parse_args()
    variants = dict(v.split("=", 1) for v in args.python) or {"this": sys.executable}
    args.dir.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT / "bench"))
    from cases import POLICIES, prepare

    paths = {n: prepare(args.dir, args.enterprises, n) for n in args.cases}
    found: dict[tuple[int, str], list[dict]] = {}
    for round_ in range(args.rounds):
        for n in args.cases:
            for name, python in variants.items():
                out = args.dir / f"memory-{name}-{n}.sqlite"
                out.unlink(missing_ok=True)
                load = os.getloadavg()[0]
                done = subprocess.run([python, "-c", _CHILD, str(paths[n]["enterprises"]), str(paths[n]["cases"]),
                                       str(POLICIES), str(out), "0" if args.plain_allocator else "1", "1" if args.again else "0"],
                                      capture_output=True, text=True)
                if done.returncode:
                    raise SystemExit(f"{name} at {n:,} cases failed:\n{done.stderr[-3000:]}")
                out.unlink(missing_ok=True)
                result = json.loads(done.stdout.strip().splitlines()[-1])
                found.setdefault((n, name), []).append(result)
                cpu = result["user"] + result["sys"]
                print(f"round {round_} {n:>11,} cases {name:>8}: peak RSS {result['rss_mib']:.0f} MiB, "
                      f"{result['wall']:.1f} s, CPU {result['user']:.1f} user + {result['sys']:.1f} sys, "
                      f"{result['rows_in'] / cpu / 1e6:.3f} M rows/CPU-s, {result['findings']:,} findings "
                      f"(load {load:.2f})" + (f"; the next day's run: peak RSS {result['again_rss_mib']:.0f} MiB, "
                                               f"{result['again_already']:,} already assessed" if args.again else ""),
                      flush=True)
    first = next(iter(variants))
    for name in variants:
        peaks = {n: statistics.median(r["rss_mib"] for r in found[(n, name)]) for n in args.cases}
        smallest = peaks[args.cases[0]]
        print(f"{name}: peak RSS " + ", ".join(f"{n:,}: {p:.0f} MiB ({p / smallest:.2f}x)" for n, p in peaks.items()))
    for n in args.cases:
        rate = {name: statistics.median(r["rows_in"] / (r["user"] + r["sys"]) for r in found[(n, name)]) for name in variants}
        sys_share = {name: statistics.median(r["sys"] / (r["user"] + r["sys"]) for r in found[(n, name)]) for name in variants}
        print(f"{n:,} cases: rows per CPU-second " + ", ".join(
            f"{name} {rate[name] / rate[first]:.2f}x of {first} (system {sys_share[name]:.0%})" for name in variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
