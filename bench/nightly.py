"""End-to-end speed and memory of `ecorules run`, beside the read floor and hand-written DuckDB.

    python bench/nightly.py                       # 10 M rows, Parquet and CSV, 3 rounds, + 30 M RSS
    python bench/nightly.py --rows 1000000 --large-rows 0 --rounds 2   # a quick look

Writes the registry with `ecorules gen-registry` (Parquet and CSV, kept in --dir for the next
time), then, round after round so that the machine's noise hits every variant alike:

- floor: reading the same file (pyarrow.parquet.read_table; pyarrow.csv.read_csv for CSV, the
  floor of issue 11's point 16, and pandas.read_csv beside it for information), all columns,
  in this process; for Parquet also only the columns the policies read (the least any run
  must read: DuckDB's aggregate skips the USCCs);
- duckdb, all of the run's work (bench/_duckdb_full.py): USCC check characters, every column
  validated, one row per USCC, findings, list entries, rejects and district totals written;
- duckdb: hand-written SQL computing the same district totals and list counts from the same
  file, with the same number of threads;
- ecorules: `ecorules run --registry FILE --out NEW.sqlite --threads T`, a fresh process and a
  fresh database each time: wall time of the whole command (Python start-up included) and
  the run's own time (from its JSON summary), and peak RSS of the process (VmHWM).

With ``--bad-share 0.01`` each round also runs ``ecorules run`` on a copy of the registry with
1% of its rows spoiled, every reject kind the format can hold (bench/_bad_rows.py), beside the
clean copy written the same way: the ratio of their records/s is the target of issue 11,
point 15 (>= 0.8), printed also per CPU-second of the process (the child's user + system
time), which other processes on a shared machine disturb less. ``--twins-only`` times only that pair (on a busy machine, the floors and
DuckDB would take most of the time); run with another venv's Python it times that venv's
``ecorules``, the baseline of a change. It reads only the twins: the registry they are cut from
is generated only when a twin is missing, and deleted again once the twins are written. ``--baseline PYTHON`` times that venv's ``ecorules``
on the twins too, in the same rounds, the two builds' order turning round by round: the
before and after of a change measured under the same load. ``--build NAME=PATH`` (repeatable,
instead of --baseline) times the ecorules tree under PATH the same way, run by this Python with
PATH first on PYTHONPATH (bench/_alternate.py's builds: symlinks to a worktree's folders).
The clean copy runs first in odd rounds, the bad one in even rounds, after a run of
its first row alone, whose CPU (start-up, policies, store: what any run costs) is taken off
both for a third ratio, that of the CPU the rows cost. Each ratio is printed
round by round with its middle half, its range and an interval for its median that says its
own coverage (bench/_spread.py): on a shared machine use 9 rounds or more (the median's
interval is then the 2nd to the 8th round, 96%), and read the CPU-second ratio first.

Prints medians with their spread and the ratios the targets are stated in (Parquet <= 2x its
read and <= 2x DuckDB; CSV <= 1.3x its read; peak RSS <= 1 GiB, not growing with the rows),
checks that DuckDB and ecorules agree on every district total, and saves everything as JSON.
Needs the bench extra (duckdb): pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

SQL = """
SELECT district,
       sum(CASE WHEN untreated_outfalls > 0 THEN untreated_outfalls * 1000000 ELSE 0 END
         + CASE WHEN industrial AND direct_discharge_cases > 0 THEN direct_discharge_cases * 10000000 ELSE 0 END
       )::BIGINT AS deduction_yuan,
       count(*) FILTER (WHERE untreated_outfalls > 0 OR (industrial AND direct_discharge_cases > 0)) AS cases,
       count(*) FILTER (WHERE illegal_discharge_cases > 0 OR direct_discharge_cases > 0) AS green_credit_blacklist,
       count(*) FILTER (WHERE high_pollution OR high_energy) AS restricted_loans
FROM {source}
GROUP BY district
"""
AS_OF = "2012-04-14"


def ecorules_command() -> list[str]:
    """The console script installed beside this Python (as in a venv); not a version manager's
    shim found first on PATH (pyenv's bash shim added ~0.15 s to every process here)."""
    beside = Path(sys.executable).with_name("ecorules")
    found = str(beside) if beside.exists() else shutil.which("ecorules")
    return [found] if found else [sys.executable, "-m", "ecorules.engine"]


def compile_sources(build_paths: list[str]) -> None:
    """Byte-compile ecorules as pip does at install time: with PYTHONDONTWRITEBYTECODE set (as
    in some sandboxes) an editable install would otherwise compile every module at every start
    (~0.08 s of each measured process). With --build, each build's tree likewise."""
    import compileall
    import importlib.util

    for package in ("ecorules.rules", "ecorules.engine", "ecorules.fastcalc"):
        for folder in importlib.util.find_spec(package).submodule_search_locations:
            compileall.compile_dir(folder, quiet=1)
    for path in build_paths:
        for package in ("rules", "engine", "fastcalc"):
            compileall.compile_dir(str(Path(path) / "ecorules" / package), quiet=1)


def generate(rows: int, path: Path) -> None:
    if path.exists():
        return
    started = time.perf_counter()
    subprocess.run([*ecorules_command(), "gen-registry", "--rows", str(rows), "--seed", "1", "--out", str(path)], check=True)
    print(f"  generated {path.name} ({path.stat().st_size / 2**20:,.0f} MiB) in {time.perf_counter() - started:.0f} s", flush=True)


def generate_large(rows: int, path: Path) -> None:
    """A registry too large to build in one piece: 10 M-row parts of different seeds, streamed."""
    if path.exists():
        return
    code = f"""
import pyarrow.parquet as pq
from ecorules.engine._generate import generate_registry
rows, part = {rows}, 10_000_000
writer = None
for seed, start in enumerate(range(0, rows, part), start=1):
    table = generate_registry(min(part, rows - start), seed)
    writer = writer or pq.ParquetWriter({str(path)!r} + '.tmp', table.schema)
    writer.write_table(table)
    del table
writer.close()
"""
    subprocess.run([sys.executable, "-c", code], check=True)
    os.replace(str(path) + ".tmp", path)
    print(f"  generated {path.name} ({path.stat().st_size / 2**20:,.0f} MiB)", flush=True)


@functools.cache
def needed_columns() -> list[str]:
    """The registry columns the shipped enterprise policies read (what the run must read)."""
    from ecorules.fastcalc import compile_program
    from ecorules.rules import load_policies

    policies = load_policies()
    columns = compile_program(policies.for_domain("enterprise"), domain="enterprise").columns
    return [c for c in columns if policies.facts[c].rollup is None]  # roll-ups are counted over cases, not read


def read_floor(path: Path, how: str) -> float:
    started = time.perf_counter()
    if how == "pyarrow.parquet":
        import pyarrow.parquet as pq

        pq.read_table(path)
    elif how == "pyarrow.parquet, needed columns":
        import pyarrow.parquet as pq

        pq.read_table(path, columns=needed_columns())
    elif how == "pandas.read_csv":
        import pandas as pd

        pd.read_csv(path)
    elif how == "pyarrow.csv":
        import pyarrow.csv as pacsv

        pacsv.read_csv(path)
    return time.perf_counter() - started


import _alternate  # noqa: E402 - beside this script
from _duckdb_full import duckdb_full  # noqa: E402 - beside this script
from _spread import described  # noqa: E402 - beside this script


def duckdb_totals(path: Path, threads: int) -> tuple[float, dict]:
    import duckdb

    connection = duckdb.connect()
    connection.execute(f"SET threads TO {threads}")
    source = f"read_parquet('{path}')" if path.suffix == ".parquet" else f"read_csv('{path}', header = true)"
    started = time.perf_counter()
    rows = connection.execute(SQL.format(source=source)).fetchall()
    seconds = time.perf_counter() - started
    connection.close()
    totals = {district: (yuan, cases) for district, yuan, cases, *_ in rows if yuan}
    lists = {"green_credit_blacklist": sum(r[3] for r in rows), "restricted_loans": sum(r[4] for r in rows)}
    return seconds, {"districts": totals, "lists": lists}


class PeakRss:
    """The child's own high-water RSS (VmHWM of /proc/PID/status), sampled until it exits.

    Not wait4's ru_maxrss: Linux carries a forked child's pre-exec peak (this process's, with
    the tables the floors just read) into it, which measured this process instead.
    """

    def __init__(self, pid: int, interval: float = 0.02):
        self.path, self.kib, self.interval = f"/proc/{pid}/status", 0, interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._done.is_set():
            try:
                with open(self.path) as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            self.kib = max(self.kib, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(self.interval)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    @property
    def mib(self) -> float:
        return self.kib / 1024


def ecorules_run(path: Path, out: Path, threads: int, program: list[str] | None = None,
                 pythonpath: str = "") -> dict:
    for suffix in ("", "-wal", "-shm", "-run.lock"):
        Path(str(out) + suffix).unlink(missing_ok=True)
    command = [*(program or ecorules_command()), "run", "--registry", str(path), "--out", str(out), "--as-of", AS_OF,
               "--threads", str(threads), "--format", "json", "--no-progress"]
    started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else None
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peak = PeakRss(child.pid)
    stdout, stderr = child.communicate()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the child's CPU, all its threads, once waited for
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak.stop()
    if child.returncode not in (0, 1):
        raise SystemExit(f"ecorules run failed ({child.returncode}): {stderr.decode()[-2000:]}")
    summary = json.loads(stdout)
    totals = {d["district"]: (d["deduction_yuan"], d["cases"]) for d in summary["district_totals"]}
    return {"wall": wall, "run": summary["seconds"], "cpu": cpu, "rss_mib": peak.mib, "rows": summary["rows_in"],
            "rejected": summary["rows_rejected"], "districts": totals, "lists": summary["list_entries"]}


def _write_twins(path: Path, clean: Path, bad: Path, bad_share: float) -> None:
    from _bad_rows import mutate

    if not clean.exists():
        mutate(path, clean, 0.0)
    if not bad.exists():
        print(f"  spoiled rows of {bad.name}: {mutate(path, bad, bad_share)}", flush=True)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} ({min(values):.2f}-{max(values):.2f})"


def _builds(args, round_number: int) -> list[tuple[str, list[str] | None, str]]:
    """(label, command, PYTHONPATH) of the builds timed on the twins: this Python's ``ecorules``,
    and with ``--baseline`` that Python's, first every other round so that neither always runs
    first; with ``--build NAME=PATH`` (repeatable) each such tree run by this Python instead,
    the order turned by one each round (bench/_alternate.py's convention)."""
    if args.build:
        named = [(name, [sys.executable, "-m", "ecorules.engine"], path) for name, path in _alternate.builds(args.build)]
        turn = (round_number - 1) % len(named)
        return [*named[turn:], *named[:turn]]
    builds = [("ecorules", None, "")]
    if args.baseline:
        beside = Path(args.baseline).with_name("ecorules")
        builds.append(("baseline", [str(beside)] if beside.exists() else [str(args.baseline), "-m", "ecorules.engine"], ""))
        if round_number % 2 == 0:
            builds.reverse()
    return builds


def _build_names(args) -> list[str]:
    if args.build:
        return [name for name, _ in _alternate.builds(args.build)]
    return ["ecorules", "baseline"] if args.baseline else ["ecorules"]


def _one_row_copy(clean: Path) -> Path:
    """The clean copy's header and first row (kept beside it): what a run costs whatever its rows."""
    one = clean.with_name(f"twin-one-row{clean.suffix}")
    if not one.exists():
        if clean.suffix == ".csv":
            with clean.open("rb") as handle:
                data = handle.readline() + handle.readline()
            one.write_bytes(data)
        else:
            import pyarrow.parquet as pq

            pq.write_table(pq.read_table(clean).slice(0, 1), one)
    return one


def _twins(fmt: str, pair: tuple[Path, Path], measured: dict, bad_rejected: dict, args, round_number: int = 1) -> None:
    """`ecorules run` on the clean copy and on the bad one (the run's own seconds), by each build:
    clean first in odd rounds, bad first in even ones, so that neither copy always runs second
    (after the other has warmed the page cache, or while a load that rises through the round
    grows): with a fixed order, that bias stays in every round's ratio and no round count
    removes it."""
    # the machine's load beside the ratios: on a shared machine the wall-time ratio moves with it
    measured.setdefault("load (1 min) before the twins", []).append(os.getloadavg()[0])
    labelled = list(zip(("clean copy", "bad copy"), pair, strict=True))
    if round_number % 2 == 0:
        labelled.reverse()
    one_row = _one_row_copy(pair[0])
    for build, program, pythonpath in _builds(args, round_number):
        # the process's fixed CPU (start-up, compiling the policies, the store): a run of one row
        fixed = ecorules_run(one_row, args.dir / f"results-{fmt}-one-row.sqlite", args.threads, program, pythonpath)
        measured.setdefault(f"{build} CPU-s, one-row copy", []).append(fixed["cpu"])
        for label, twin in labelled:
            done = ecorules_run(twin, args.dir / f"results-{fmt}-twin.sqlite", args.threads, program, pythonpath)
            measured.setdefault(f"{build} run, {label}", []).append(done["run"])
            measured.setdefault(f"{build} CPU-s, {label}", []).append(done["cpu"])
            if label == "bad copy":
                if bad_rejected.setdefault(fmt, done["rejected"]) != done["rejected"]:
                    raise SystemExit(f"the builds reject different rows of the bad copy: {bad_rejected[fmt]:,} "
                                     f"and {done['rejected']:,} ({build})")


def _print_twins(fmt: str, times: dict, bad_rejected: dict, args, report: dict) -> None:
    """Per build, the round-by-round ratios bad / clean of records/s (the run's own seconds) and
    of records per CPU-second (the whole process), each with its spread and an interval for its
    median (bench/_spread.py); with several builds, each build's CPU-seconds against the first's
    on each copy, round by round."""
    paths = dict(_alternate.builds(args.build)) if args.build else {"ecorules": sys.executable, "baseline": args.baseline}
    names = _build_names(args)
    for build in names:
        if args.baseline or args.build:
            print(f"  {build} ({paths[build]}):")
        # same rows in both copies: records/s bad / records/s clean = time clean / time bad
        ratio = [c / b for c, b in zip(times[fmt][f"{build} run, clean copy"], times[fmt][f"{build} run, bad copy"],
                                       strict=True)]
        print(f"    records/s with {args.bad_share:.0%} bad rows ({bad_rejected[fmt]:,} rejected) / clean, per round: "
              f"{described(ratio, 0.8)}")
        # on a shared machine the run's seconds wait for other processes' CPU: the same ratio per CPU-second
        per_cpu = [c / b for c, b in zip(times[fmt][f"{build} CPU-s, clean copy"], times[fmt][f"{build} CPU-s, bad copy"],
                                         strict=True)]
        print(f"    records per CPU-second, bad / clean (whole process, start-up included), per round: "
              f"{described(per_cpu, 0.8)}")
        # the whole process's CPU holds a fixed part (start-up, policies, store) that both copies
        # pay: net of a one-row run's, the ratio is that of the CPU the rows themselves cost
        fixed = times[fmt][f"{build} CPU-s, one-row copy"]
        net = [(c - f) / (b - f) for c, b, f in zip(times[fmt][f"{build} CPU-s, clean copy"],
                                                     times[fmt][f"{build} CPU-s, bad copy"], fixed, strict=True)]
        print(f"    records per CPU-second net of a one-row run's CPU ({statistics.median(fixed):.2f} s), per round: "
              f"{described(net, 0.8)}")
        suffix = "" if build == "ecorules" else f"_{build}"
        report.setdefault(f"bad_share_ratio_per_net_cpu{suffix}", {})[fmt] = net

        def medians(what: str, build: str = build) -> float:  # clean / bad, of the medians of each copy's rounds
            return (statistics.median(times[fmt][f"{build} {what}, clean copy"])
                    / statistics.median(times[fmt][f"{build} {what}, bad copy"]))

        print(f"    ratio of the medians: records/s {medians('run'):.3f}, per CPU-second {medians('CPU-s'):.3f}")
        report.setdefault(f"bad_share_ratio{suffix}", {})[fmt] = ratio
        report.setdefault(f"bad_share_ratio_per_cpu{suffix}", {})[fmt] = per_cpu
    for build in names[1:]:  # a change against the first build, copy by copy, round by round
        for label in ("clean copy", "bad copy"):
            against = [b / a for a, b in zip(times[fmt][f"{names[0]} CPU-s, {label}"], times[fmt][f"{build} CPU-s, {label}"],
                                             strict=True)]
            print(f"  {build} / {names[0]} CPU-seconds, {label}: {described(against)}")
    loads = times[fmt]["load (1 min) before the twins"]
    print(f"  load average (1 min) when each round's twins started: {', '.join(f'{load:.1f}' for load in loads)} "
          f"on {os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--large-rows", type=int, default=30_000_000, help="Rows of the RSS check (0: skip).")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "ecorules-bench")
    parser.add_argument("--formats", default="parquet,csv")
    parser.add_argument("--bad-share", type=float, default=0.0,
                        help="Also run on a copy with this share of bad rows, beside a clean copy (e.g. 0.01).")
    parser.add_argument("--baseline", type=Path, metavar="PYTHON",
                        help="With --bad-share: also time the twins with this Python's ecorules (another venv: the "
                             "build before a change), round by round alternately with this one's, in the same run.")
    parser.add_argument("--build", action="append", default=[], metavar="NAME=PATH",
                        help="With --bad-share: time the twins with the ecorules tree under PATH (put first on "
                             "PYTHONPATH, as bench/_alternate.py does), once per build, the order turned each round.")
    parser.add_argument("--twins-only", action="store_true",
                        help="With --bad-share: time only the clean and the bad copies (no read floors, no DuckDB, "
                             "no run on the registry itself), for the ratio of point 15 on a busy machine.")
    args = parser.parse_args()
    if args.twins_only and not args.bad_share:
        parser.error("--twins-only needs --bad-share")
    if args.baseline and not args.bad_share:
        parser.error("--baseline needs --bad-share (it times the twins)")
    if args.build and (args.baseline or not args.bad_share):
        parser.error("--build needs --bad-share and replaces --baseline")
    args.dir.mkdir(parents=True, exist_ok=True)
    formats = args.formats.split(",")
    print(f"ecorules nightly benchmark, {dt.datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {args.rows:,} rows, threads={args.threads}", flush=True)
    compile_sources([path for _, path in _alternate.builds(args.build)] if args.build else [])
    needed_columns()  # loaded before the timing starts
    files = {fmt: args.dir / f"registry-{args.rows}.{fmt}" for fmt in formats}
    twins = {}  # format -> (clean copy, bad copy), both written by bench/_bad_rows.py
    if args.bad_share:
        sys.path.insert(0, str(Path(__file__).parent))
        from _bad_rows import kinds_for

        for fmt in formats:
            kinds = len(kinds_for(f".{fmt}"))  # a file spoiled with fewer kinds (an older bench) is not reused
            twins[fmt] = (args.dir / f"twin-clean-{args.rows}.{fmt}",
                          args.dir / f"twin-bad-{args.bad_share:g}-{args.rows}-{kinds}kinds.{fmt}")
    for fmt, path in files.items():
        # --twins-only never reads the registry itself: it is generated only to spoil a twin that
        # is missing, and then deleted again (a 10 M-row CSV is 480 MiB of a shared disk, and
        # generating it cost minutes every time a bench found its twins but not their source)
        if args.twins_only and all(twin.exists() for twin in twins[fmt]):
            print(f"  twins of {path.name} kept from an earlier bench: not generated", flush=True)
            continue
        made = not path.exists()
        generate(args.rows, path)
        if fmt in twins:
            _write_twins(path, *twins[fmt], args.bad_share)
            if args.twins_only and made:
                path.unlink()
                print(f"  {path.name} deleted (generated only for its twins)", flush=True)

    # The floor reads every column; the second Parquet floor reads only what the run
    # must (the USCC strings included, which DuckDB's aggregate never reads): context for the
    # DuckDB ratio, not a target.
    floors = {"parquet": ["pyarrow.parquet", "pyarrow.parquet, needed columns"],
              "csv": ["pyarrow.csv", "pandas.read_csv"]}  # the first is the floor of the targets
    times: dict[str, dict[str, list[float]]] = {fmt: {} for fmt in formats}
    full_agree: dict[str, bool] = {}
    rss: dict[str, list[float]] = {}
    agree = {}
    bad_rejected: dict[str, int] = {}
    for round_number in range(1, args.rounds + 1):
        for fmt, path in files.items():
            measured = times[fmt]
            if args.twins_only:
                _twins(fmt, twins[fmt], measured, bad_rejected, args, round_number)
                print(f"  round {round_number} {fmt}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in measured.items()), flush=True)
                continue
            for how in floors[fmt]:
                measured.setdefault(f"read {how}", []).append(read_floor(path, how))
            seconds, duck = duckdb_totals(path, args.threads)
            measured.setdefault("duckdb SQL", []).append(seconds)
            # DuckDB doing all of the run's work: checks, rejects, findings, lists, totals written
            seconds, full = duckdb_full(path, args.threads, args.dir / f"duckdb-full-{fmt}.duckdb")
            measured.setdefault("duckdb, all of the run's work", []).append(seconds)
            full_agree[fmt] = full_agree.get(fmt, True) and full["districts"] == duck["districts"]
            run = ecorules_run(path, args.dir / f"results-{fmt}.sqlite", args.threads)
            measured.setdefault("ecorules run (process wall)", []).append(run["wall"])
            measured.setdefault("ecorules run (the run itself)", []).append(run["run"])
            rss.setdefault(f"{args.rows:,} rows {fmt}", []).append(run["rss_mib"])
            agree[fmt] = run["districts"] == duck["districts"] and run["lists"] == duck["lists"]
            if not agree[fmt]:
                print(f"  DISAGREE on {fmt}: ecorules {run['districts']} {run['lists']} vs duckdb {duck}", flush=True)
            if fmt in twins:
                _twins(fmt, twins[fmt], measured, bad_rejected, args, round_number)
            print(f"  round {round_number} {fmt}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in measured.items()), flush=True)

    if args.large_rows:
        large = args.dir / f"registry-{args.large_rows}.parquet"
        generate_large(args.large_rows, large)
        run = ecorules_run(large, args.dir / "results-large.sqlite", args.threads)
        rss[f"{args.large_rows:,} rows parquet"] = [run["rss_mib"]]
        times.setdefault("large", {})["ecorules run (process wall)"] = [run["wall"]]
        print(f"  {args.large_rows:,} rows: {run['wall']:.1f} s, peak RSS {run['rss_mib']:.0f} MiB", flush=True)

    print("\nseconds, median (min-max) of", args.rounds, "interleaved rounds")
    report = {"date": dt.date.today().isoformat(), "machine": platform.node(), "cpus": os.cpu_count(),
              "rows": args.rows, "threads": args.threads, "times": times, "peak_rss_mib": rss, "agree": agree}
    for fmt in formats:
        sized = files[fmt] if files[fmt].exists() else twins[fmt][0]  # --twins-only: maybe only the twins
        print(f"\n{fmt} ({sized.name}, {sized.stat().st_size / 2**20:,.0f} MiB):")
        for name, values in times[fmt].items():
            print(f"  {name:32s} {spread(values)}")
        if args.twins_only:
            _print_twins(fmt, times, bad_rejected, args, report)
            continue
        floor = times[fmt][f"read {floors[fmt][0]}"]
        for which in ("ecorules run (process wall)", "ecorules run (the run itself)"):
            ratio = [e / f for e, f in zip(times[fmt][which], floor, strict=True)]
            line = f"  {which} / read floor ({floors[fmt][0]}): {spread(ratio)}"
            if fmt == "parquet":
                duck = [e / d for e, d in zip(times[fmt][which], times[fmt]["duckdb SQL"], strict=True)]
                line += f";  / duckdb: {spread(duck)}"
            full = [e / d for e, d in zip(times[fmt][which], times[fmt]["duckdb, all of the run's work"], strict=True)]
            line += f";  / duckdb doing the same work: {spread(full)}"
            print(line)
        if fmt == "parquet":
            needed = [r / d for r, d in zip(times[fmt]["read pyarrow.parquet, needed columns"],
                                            times[fmt]["duckdb SQL"], strict=True)]
            print(f"  reading only the needed columns / duckdb: {spread(needed)}")
        print(f"  ecorules and duckdb agree on district totals and list counts: {agree[fmt]}; "
              f"duckdb's full work agrees with its aggregate: {full_agree.get(fmt)}")
        if fmt in twins:
            _print_twins(fmt, times, bad_rejected, args, report)
    print("\npeak RSS of `ecorules run` (MiB):")
    for name, values in rss.items():
        print(f"  {name:28s} {max(values):7.0f}")
    (args.dir / "nightly-bench.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"\nsaved {args.dir / 'nightly-bench.json'}")


if __name__ == "__main__":
    main()
