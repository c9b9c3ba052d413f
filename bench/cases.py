"""Records/s of `ecorules run --cases` beside the enterprise-only run, each round a process of its own.

    python bench/cases.py                           # 10 M cases, 3 rounds
    python bench/cases.py --cases 2000000 --enterprises 200000 --rounds 2 --dir /tmp/NAME-data

Writes, once per generator version (a hash of the generators' code in the file names), into
--dir: a registry of --enterprises rows (uscc, district, industrial) and a
case table of --cases rows (Parquet) for the policies of tests/data/cases, whose case
policies read optional facts, a windowed roll-up and add_years, and whose enterprise policy
reads three roll-ups; and a registry of --cases rows for the shipped enterprise policies.
Then, round after round (interleaved, the order turned each round, so that the machine's
noise hits every variant alike):

- enterprise-only: `run_nightly` of the shipped policies over the --cases-row registry;
- cases: `run_nightly` of tests/data/cases over the registry and the case table (read, check,
  join, roll-ups onto enterprises and districts, kernel, art 29, store);
- dated versions (``--dated``): the same, the case kind judged by the law in force at the act
  (行政处罚法 art 37, `dates:`) with a second version of test.fines from 2024-01-01 (lighter
  under art 83), so that every case is scored by the version of its act date or the lighter
  one of the run's as_of;
- cases, second night (``--second-night``): the case run a day later into the store the first
  night left (made untimed in a process of its own before each round's run): what a site
  running nightly pays from its second night on, the memory of earlier assessments (一例一次)
  and the list state read back; and the enterprise-only run's second night likewise, the
  baseline a nightly site's later nights meet (its ratio printed beside the one to the first
  night's enterprise-only run). The other variants start from an empty store.

Each run is a fresh process, as `ecorules run` is, with the CLI's ``tune_allocator=True``
(engine/cases/_memory.py). In one process the case stage's allocator settings outlived it
(glibc's dynamic thresholds cannot be restored) and slowed the enterprise-only rounds after
it by a quarter, which flattered the ratio; a process of its own also gives each variant its
own peak RSS.

Records/s is rows in (all tables) per second of the run (``NightlyRun.execute``, as the run's
summary counts it); the target is cases >= 50% of the enterprise-only rate. Beside it, records
per CPU-second of the same span (every thread: the kernel's, the writer's): on a machine shared
with other jobs the wall-clock ratio swings with their load, the CPU ratio much less (it still
counts waiting on memory and disk). ``--steps`` prints each run's step seconds (the run's log);
``--profile`` writes a cProfile of each run into --dir.

``--part input --build main=DIR --build this=DIR`` times the input side alone (reading,
spilling, loading and checking the partitions: ``input_part``; with ``--profile`` a cProfile
of the main thread per process into --dir, input-PID.prof) of each build, alternately:
on a machine loaded several times its cores the whole run's CPU seconds spread more than a
change of the input side moves them.

``--build main=DIR --build this=DIR`` without ``--part`` runs every variant of each build,
alternately, and prints each variant's wall and CPU seconds of one build against the first's.

``--part judge`` likewise times the judging alone (each partition linked, rolled up, scored,
art 29: ``judge_part``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import inspect
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _alternate  # bench/_alternate.py: a script's own folder is first on sys.path
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "tests" / "data" / "cases"
AS_OF = dt.date(2026, 1, 1)


def generator_version() -> str:
    """A hash of what makes the data: the generators' modules and this file's own steps, so
    that a cached table made by an older generator is never measured as current data."""
    from ecorules.engine import _generate as registries
    from ecorules.engine.cases import _generate as cases

    digest = hashlib.sha256()
    for text in (inspect.getsource(registries), inspect.getsource(cases), inspect.getsource(prepare),
                 inspect.getsource(typed)):
        digest.update(text.encode())
    return digest.hexdigest()[:12]


def prepare(folder: Path, enterprises: int, cases: int) -> dict[str, Path]:
    from ecorules.engine._generate import generate_registry, write_registry
    from ecorules.engine.cases._generate import generate_cases

    version = generator_version()
    paths = {name: folder / f"{name}-{enterprises}-{cases}-{version}.parquet"
             for name in ("enterprises", "cases", "registry")}
    if all(p.exists() for p in paths.values()):
        return paths
    usccs = generate_registry(enterprises, 11)["uscc"].combine_chunks()
    rng = np.random.default_rng(12)
    pq.write_table(pa.table({
        "uscc": usccs, "district": pa.array(np.where(rng.random(enterprises) < 0.5, "金水区", "二七区")),
        "industrial": pa.array(np.where(rng.random(enterprises) < 0.7, "true", "false")),
    }), paths["enterprises"])
    step = 1_000_000
    with pq.ParquetWriter(paths["cases"], typed(generate_cases(usccs, 1, 0, ("a",))).schema) as writer:
        for start in range(0, cases, step):  # chunked: memory stays bounded while writing
            part = generate_cases(usccs, min(step, cases - start), 13 + start, ("a83_2", "a84_2", "local_x"))
            ids = np.arange(start, start + part.num_rows)
            part = part.set_column(0, "case_id", pa.array([f"C{i:09d}" for i in ids]))
            writer.write_table(typed(part))
    write_registry(generate_registry(cases, 14), paths["registry"])
    return paths


def dated_policies(folder: Path) -> Path:
    """tests/data/cases with the case kind judged by the law at the act: test.fines 1 until
    2024-01-01, then a version 2 whose art 83 fine grows less with prior offences."""
    out = folder / "dated-policies"
    out.mkdir(exist_ok=True)
    for path in POLICIES.glob("*.yaml"):
        (out / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    catalogue = (out / "cases.yaml").read_text(encoding="utf-8")
    catalogue = catalogue.replace("act: act_id\n", "act: act_id\ndates:\n  law: value_or(act_end, act_date)\n"
                                  "  decision: decided\n", 1)
    catalogue = catalogue.replace("\nrollups:", "\n  decided: {type: date, optional: true, min: 2000-01-01, "
                                  "max: 2099-12-31}\nrollups:", 1)
    (out / "cases.yaml").write_text(catalogue, encoding="utf-8")
    fines = (out / "fines.yaml").read_text(encoding="utf-8").split("\ntests:")[0] + "\n"
    (out / "fines.yaml").write_text(fines.replace("  effective: 2000-01-01\n",
                                                  "  effective: 2000-01-01\n  expires: 2024-01-01\n", 1), encoding="utf-8")
    later = fines.replace('version: "1"', 'version: "2"').replace("effective: 2000-01-01", "effective: 2024-01-01")
    (out / "fines_2024.yaml").write_text(later.replace("50000 * min(prior_2y, 4)", "40000 * min(prior_2y, 4)"),
                                         encoding="utf-8")
    return out


def typed(table: pa.Table) -> pa.Table:
    """A Parquet case table as another system would export it: dates, numbers and flags typed."""
    types = {"act_date": pa.date32(), "act_end": pa.date32(), "discovered": pa.date32(), "fine_yuan": pa.int64(),
             "into_eco_water": pa.bool_()}
    return table.cast(pa.schema([(name, types.get(name, pa.string())) for name in table.column_names]))


def _peak_rss_mib() -> float:
    """This process's own peak RSS (VmHWM). Not ru_maxrss: Linux carries the forking parent's
    peak across exec into it, so every child of a parent that had just generated the data
    reported the parent's 1,487 MiB (session 9)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def input_part(args) -> int:
    """The case table's input side alone (``--part input``), ``--repeats`` times in this
    process: spilled into buckets, then each partition loaded and checked (check_values: the
    values, duplicates, codes, USCCs), as ``CaseStage`` does before linking (its ``_tables``,
    with whatever threads it reads ahead in). Prints per repeat the CPU seconds of the process
    (the Parquet reader's thread too), of the main thread, and the wall seconds."""
    import json

    from ecorules.engine._nightly import DOMAIN
    from ecorules.engine._sources import DEFAULT_BATCH_ROWS
    from ecorules.engine.cases._plan import make_plan
    from ecorules.engine.cases._stage import CaseStage
    from ecorules.fastcalc import compile_program
    from ecorules.rules import load_policies

    paths = prepare(args.dir, args.enterprises, args.cases)
    policies = POLICIES if args.only != "dated versions" else dated_policies(args.dir)
    plan = make_plan(load_policies(policies), DOMAIN, AS_OF, compile_program)
    found = []
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile(time.thread_time)
        profile.enable()
    for _ in range(args.repeats):
        cpu, thread, wall = _cpu_seconds(), time.thread_time(), time.perf_counter()
        stage = CaseStage(plan, paths["cases"], as_of=AS_OF, threads=1, batch_rows=DEFAULT_BATCH_ROWS)
        tables = stage._tables()
        try:
            next(tables)  # (the spill: the enterprise keys wanted and the run)
            rows = 0
            for _buckets, cases in tables:
                rows += cases.n
                del cases
        finally:
            tables.close()
        found.append({"cpu": _cpu_seconds() - cpu, "thread": time.thread_time() - thread,
                      "wall": time.perf_counter() - wall, "rows": rows})
    if profile is not None:
        profile.disable()
        profile.dump_stats(str(args.dir / f"input-{os.getpid()}.prof"))
    print(json.dumps({"repeats": found, "rss_mib": _peak_rss_mib()}))
    return 0


def judge_part(args) -> int:
    """The case stage's judging alone (``--part judge``), ``--repeats`` times in this process:
    each partition linked, its rejects found, rolled up, scored (by the law at the act too,
    with ``--only "dated versions"``) and one act one fine applied (``CaseStage._partition``),
    with no store. Prints per repeat the CPU seconds of the process (the kernel's threads
    too) and of the main thread over those calls only: the input side around them is
    ``--part input``'s. The process's CPU seconds count the next partition's load and check
    too, which run beside the judging (``_tables`` reads ahead): the main thread's are the
    judging's own."""
    import json

    from ecorules.engine._nightly import DOMAIN
    from ecorules.engine._sources import DEFAULT_BATCH_ROWS
    from ecorules.engine.cases._plan import make_plan
    from ecorules.engine.cases._stage import CaseStage
    from ecorules.fastcalc import compile_program
    from ecorules.rules import load_policies

    paths = prepare(args.dir, args.enterprises, args.cases)
    policies = POLICIES if args.only != "dated versions" else dated_policies(args.dir)
    plan = make_plan(load_policies(policies), DOMAIN, AS_OF, compile_program)
    spent = [0.0, 0.0]

    class Timed(CaseStage):
        def _partition(self, *given, **options):
            cpu, thread = _cpu_seconds(), time.thread_time()
            try:
                return super()._partition(*given, **options)
            finally:
                spent[0] += _cpu_seconds() - cpu
                spent[1] += time.thread_time() - thread

    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile(time.thread_time)
        profile.enable()
    found = []
    for _ in range(args.repeats):
        spent[:] = [0.0, 0.0]
        stage = Timed(plan, paths["cases"], as_of=AS_OF, threads=args.threads, batch_rows=DEFAULT_BATCH_ROWS)
        run = stage.run(paths["enterprises"], {}, ())
        found.append({"cpu": spent[0], "thread": spent[1], "rows": run.rows_in})
    if profile is not None:
        profile.disable()
        profile.dump_stats(str(args.dir / f"judge-{os.getpid()}.prof"))
    print(json.dumps({"repeats": found, "rss_mib": _peak_rss_mib()}))
    return 0


def parts(args) -> int:
    """``--part input`` of each ``--build`` (NAME=a directory put first on PYTHONPATH, where
    another build of ecorules is: a worktree's copy with its compiled modules), alternately,
    the order turned each round: min and median CPU seconds per build and their ratios."""
    builds = _alternate.builds(args.build)
    cpu: dict[str, list[float]] = {name: [] for name, _ in builds}
    thread: dict[str, list[float]] = {name: [] for name, _ in builds}
    wall: dict[str, list[float]] = {name: [] for name, _ in builds}
    arguments = [__file__, "--child", args.part, "--cases", str(args.cases), "--enterprises", str(args.enterprises),
             "--dir", str(args.dir), "--repeats", str(args.repeats), *(["--only", args.only] if args.only else []),
             *(["--profile"] if args.profile else [])]
    for round_, name, run, load in _alternate.alternated([(name, path, lambda _: arguments) for name, path in builds], args.rounds):
        cpu[name] += [r["cpu"] for r in run["repeats"]]
        thread[name] += [r["thread"] for r in run["repeats"]]
        wall[name] += [r.get("wall", float("nan")) for r in run["repeats"]]
        cpus = " ".join(f"{r['cpu']:.2f}" for r in run["repeats"])
        threads = " ".join(f"{r['thread']:.2f}" for r in run["repeats"])
        walls = " ".join(f"{r.get('wall', float('nan')):.2f}" for r in run["repeats"])
        print(f"round {round_} {name:>8}: CPU-s {cpus}, main thread {threads}, wall {walls}, "
              f"{run['repeats'][0]['rows']:,} rows, peak RSS {run['rss_mib']:.0f} MiB, load {load:.1f}", flush=True)
    for name, _ in builds:
        print(f"{name:>8}: CPU-s min {min(cpu[name]):.2f} median {statistics.median(cpu[name]):.2f}; main thread min "
              f"{min(thread[name]):.2f} median {statistics.median(thread[name]):.2f}; wall min {min(wall[name]):.2f} "
              f"median {statistics.median(wall[name]):.2f}")
    first = builds[0][0]
    for name, _ in builds[1:]:
        print(f"{name} / {first}: CPU-s {min(cpu[name]) / min(cpu[first]):.3f} of the minima, "
              f"{statistics.median(cpu[name]) / statistics.median(cpu[first]):.3f} of the medians; wall "
              f"{min(wall[name]) / min(wall[first]):.3f} of the minima, "
              f"{statistics.median(wall[name]) / statistics.median(wall[first]):.3f} of the medians")
    return 0


def child(args) -> int:
    """One run of one variant in this process; prints its figures as a JSON line."""
    import json
    import logging

    from ecorules.engine._nightly import NightlyRun

    steps: list[str] = []

    class Steps(logging.Handler):
        def emit(self, record):
            if "writer busy" in record.getMessage() or "done:" in record.getMessage():
                steps.append(record.getMessage())

    logger = logging.getLogger("ecorules.nightly")
    logger.addHandler(Steps())
    logger.setLevel(logging.INFO)
    paths = prepare(args.dir, args.enterprises, args.cases)
    out = args.keep_store or args.dir / f"{args.child.replace(' ', '-').replace(',', '')}-{os.getpid()}.sqlite"
    out.unlink(missing_ok=True)  # (a name of its own: a profiling run beside a bench)
    as_of = AS_OF
    registry_as_of = dt.date(2012, 4, 14)
    if args.child in SECOND_NIGHTS:
        # the first night into this store, untimed, in a process of its own (as a night is);
        # then the second night, a day later, over the memory and list state it left
        import subprocess

        subprocess.run([sys.executable, __file__, "--child", SECOND_NIGHTS[args.child], "--keep-store", str(out),
                        "--cases", str(args.cases), "--enterprises", str(args.enterprises), "--threads",
                        str(args.threads), "--dir", str(args.dir)], check=True, stdout=subprocess.DEVNULL)
        as_of, registry_as_of = as_of + dt.timedelta(days=1), registry_as_of + dt.timedelta(days=1)
    if args.child in ("enterprise-only", ENTERPRISE_SECOND_NIGHT):
        run = NightlyRun(paths["registry"], out, as_of=registry_as_of, threads=args.threads, force=True,
                         tune_allocator=True)
    else:
        policies = dated_policies(args.dir) if args.child == "dated versions" else POLICIES
        run = NightlyRun(paths["enterprises"], out, policies=policies, as_of=as_of, threads=args.threads,
                         cases=paths["cases"], force=True, tune_allocator=True)
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile(time.thread_time)  # CPU of the main thread: on a loaded machine wall time is mostly waiting
        profile.enable()
    cpu, wall = _cpu_seconds(), time.perf_counter()
    summary = run.execute()
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    if profile is not None:
        profile.disable()
        profile.dump_stats(str(args.dir / f"{args.child.replace(' ', '-')}-{args.round}.prof"))
    if not args.keep_store:
        out.unlink(missing_ok=True)
    print(json.dumps({"rows_in": summary.rows_in, "seconds": summary.seconds, "wall": wall, "cpu": cpu,
                      "rss_mib": _peak_rss_mib(),
                      "findings": summary.findings, "lighter_law": summary.lighter_law, "status": summary.status,
                      "steps": steps}))
    return 0


SECOND_NIGHT = "cases, second night"
# the enterprise-only run's second night: the case run's second night is measured against it
# too, since the first nights' runs both start from an empty store (the list state's first run
# takes a shorter path there, engine/_lists.py), which a nightly job's later nights never do
ENTERPRISE_SECOND_NIGHT = "enterprise-only, second night"
SECOND_NIGHTS = {SECOND_NIGHT: "cases", ENTERPRISE_SECOND_NIGHT: "enterprise-only"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000_000)
    parser.add_argument("--enterprises", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dated", action="store_true", help="also the case run judged by the law at the act")
    parser.add_argument("--only", choices=("cases", "dated versions", *SECOND_NIGHTS),
                        help="no enterprise-only run (profiling)")
    parser.add_argument("--steps", action="store_true", help="print each run's step seconds")
    parser.add_argument("--profile", action="store_true", help="a cProfile of each run into --dir")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "ecorules-bench-cases")
    parser.add_argument("--part", choices=("input", "judge"),
                        help="time the input side (input_part) or the judging (judge_part) alone, --build by --build")
    parser.add_argument("--build", action="append", default=[],
                        help="NAME=PYTHONPATH of a build (--part; or every variant of each build, alternated)")
    parser.add_argument("--repeats", type=int, default=2, help="repeats per process (--part)")
    parser.add_argument("--second-night", action="store_true",
                        help="also the second nights of the case run and of the enterprise-only run: the same "
                             "tables a day later, into the store the first night left (its memory of "
                             "assessments, 一例一次, and its list state)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--keep-store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.child == "input":
        return input_part(args)
    if args.child == "judge":
        return judge_part(args)
    if args.child:
        return child(args)
    if args.part:
        return parts(args)

    began = time.perf_counter()
    paths = prepare(args.dir, args.enterprises, args.cases)
    print(f"data ready in {time.perf_counter() - began:.1f} s: {', '.join(str(p) for p in paths.values())}")
    variants = ["enterprise-only", "cases", *(["dated versions"] if args.dated else []),
                *([SECOND_NIGHT, ENTERPRISE_SECOND_NIGHT] if args.second_night else [])]
    if args.only:
        variants = [args.only]
    # with --build: every variant of every build (NAME=PYTHONPATH, as for --part), alternated
    builds = _alternate.builds(args.build, default="")
    runs_of = [(f"{variant}{f' @{name}' if name else ''}", variant, path) for name, path in builds for variant in variants]
    found: dict[str, list[dict]] = {label: [] for label, _, _ in runs_of}
    width = max(len(label) for label in found)
    variant_of = {label: variant for label, variant, _ in runs_of}

    def child_of(variant: str):
        return lambda round_: [__file__, "--child", variant, "--round", str(round_), "--cases", str(args.cases),
                               "--enterprises", str(args.enterprises), "--threads", str(args.threads),
                               "--dir", str(args.dir), *(["--profile"] if args.profile else [])]

    alternated = _alternate.alternated([(label, path, child_of(variant)) for label, variant, path in runs_of], args.rounds)
    for round_, label, run, load in alternated:
        variant = variant_of[label]
        run["load"] = load
        found[label].append(run)
        lighter = f", {run['lighter_law']:,} cases by the lighter law" if variant == "dated versions" else ""
        print(f"round {round_} {label:>{width}}: {run['rows_in']:,} rows in {run['seconds']:.2f} s = "
              f"{run['rows_in'] / run['seconds'] / 1e6:.2f} M records/s, {run['cpu']:.2f} CPU-s "
              f"({run['rows_in'] / run['cpu'] / 1e6:.2f} M/CPU-s), peak RSS {run['rss_mib']:.0f} MiB, "
              f"load {load:.1f} ({run['findings']:,} findings{lighter})", flush=True)
        if args.steps:
            for line in run["steps"]:
                print(f"    {line}")
    rates = {name: [r["rows_in"] / r["seconds"] for r in runs] for name, runs in found.items()}
    cpu_rates = {name: [r["rows_in"] / r["cpu"] for r in runs] for name, runs in found.items()}
    for name in found:
        print(f"median {name:>{width}}: {statistics.median(rates[name]) / 1e6:.2f} M records/s "
              f"({min(rates[name]) / 1e6:.2f}-{max(rates[name]) / 1e6:.2f}), "
              f"{statistics.median(cpu_rates[name]) / 1e6:.2f} M records/CPU-s, "
              f"{statistics.median([r['cpu'] for r in found[name]]):.2f} CPU-s, "
              f"peak RSS {statistics.median([r['rss_mib'] for r in found[name]]):.0f} MiB")
    for name, _path in builds[1:]:  # the same variant, this build against the first
        for variant in variants:
            this, first = f"{variant} @{name}", f"{variant} @{builds[0][0]}"
            print(f"{this} / {first}: wall {statistics.median([r['seconds'] for r in found[this]]) / statistics.median([r['seconds'] for r in found[first]]):.3f}, "
                  f"CPU-s {statistics.median([r['cpu'] for r in found[this]]) / statistics.median([r['cpu'] for r in found[first]]):.3f} (medians)")
    for build, _path in builds:
        suffix = f" @{build}" if build else ""
        base = f"enterprise-only{suffix}"
        if base not in found:
            continue
        pairs = [(f"{variant}{suffix}", base) for variant in variants[1:] if variant != ENTERPRISE_SECOND_NIGHT]
        if f"{ENTERPRISE_SECOND_NIGHT}{suffix}" in found and f"{SECOND_NIGHT}{suffix}" in found:
            pairs.append((f"{SECOND_NIGHT}{suffix}", f"{ENTERPRISE_SECOND_NIGHT}{suffix}"))
        for name, base in pairs:
            ratios = [c / e for c, e in zip(rates[name], rates[base], strict=True)]
            print(f"{name} / {base}: {statistics.median(rates[name]) / statistics.median(rates[base]):.2f} "
                  f"of the medians, {min(ratios):.2f}-{max(ratios):.2f} round by round (target >= 0.50)")
            ratios = [c / e for c, e in zip(cpu_rates[name], cpu_rates[base], strict=True)]
            print(f"{name} / {base} per CPU-second: {statistics.median(ratios):.2f} "
                  f"({min(ratios):.2f}-{max(ratios):.2f} round by round)")
    loads = [r["load"] for runs in found.values() for r in runs]
    print(f"load average (1 min) at the runs' starts: {min(loads):.1f}-{max(loads):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
