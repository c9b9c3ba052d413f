"""The nightly scoring on one process, on Dask and on Spark, in one run (issue 13).

    python bench/distributed.py                           # 5 M rows in 5 Parquet files, 2 rounds
    python bench/distributed.py --rows 30000000 --files 15

Writes the registry once (engine/_generate.py, seed 1, split into --files Parquet files of
--row-group rows per row group: a row group is a partition), then, round after round so
that the machine's noise hits every variant alike:

- one process: ``ecorules run --registry DIR --threads 2`` (a fresh process and database);
- dask, run: ``ecorules run --engine dask --threads 2`` (a LocalCluster of 2 worker processes
  of one thread each, started by the command: start-up included), the same store written;
- dask, score: ``score(read_registry(DIR))`` on a cluster already up: the district totals
  and counts, frames left unread (what a site's own pipeline would call; the policies
  loaded once before the rounds, as for Spark's score);
- spark, run: ``ecorules run --engine spark --master local[2]`` (session start-up included);
- spark, score: ``score(spark.read.parquet(DIR))`` in a session already up, totals collected;
- spark, score of pieces: ``score(pieces_frame(...), pieces_in=True)``, the frame ``ecorules run
  --engine spark`` scores (each task reads its row group with pyarrow), totals collected;
- spark, SQL: Spark's own SQL computing the same district totals from the same files, no
  Python (the floor of any Python on Spark); and the same with the repeated-key rule that
  ``score``'s key census applies (a USCC's later rows count for nothing: an aggregate over
  every row's key, a window over the rows of repeated keys alone), the like-for-like floor, with
  ``--keyed-sql`` (~30x the plain SQL: 138 CPU-s at 10 M rows);
- spark, counting: the needed columns handed to Python by ``mapInArrow`` and only counted
  (what any Python on Spark pays); spark, scoring only: the same hand-over, the kernel's
  scoring, the partial totals back, without ``score``'s key census and cached batches;
  spark, pieces scoring only: the same over the frame of pieces (no hand-over of cells);
  spark, score without key census: ``score`` as if no key were declared; spark, score, census
  merged on the executors: as a registry past DRIVER_CENSUS_ROWS is (engine/distributed/spark.py).

Spark's variants run after one small ``score`` that warms the session (its first Python job).

Each variant's CPU-s by role (the driver, Spark's JVM, its Python workers), and of the JVM's,
its JIT compiler threads' and its garbage collector's.

Each variant's peak memory: the peak RSS of each process under the bench while it runs (a
Dask worker, a Spark Python worker, Spark's JVM, an ``ecorules run``), the largest by role.

Each variant's records/s is the registry's rows over its wall time; its records per CPU-second,
over the CPU time of the bench's process tree while it runs (the driver, Spark's JVM and its
Python workers, Dask's workers, a command), which other agents' load on shared cores inflates
far less than wall time (each ratio is also given in CPU time). Prints medians and the
ratios the targets are stated in (Dask >= 1.6x one process's records/s on 2 cores; Spark's
score within 3x of its native SQL), checks that every variant gives the same district
totals, and saves everything as JSON. Spark variants run where pyspark is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

# This file's name is the package Dask's scheduler lives in (distributed): its folder, which
# Python puts first on the path, would shadow it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

AS_OF = "2012-04-14"
SPARK_SQL = """
SELECT district,
       CAST(sum(CASE WHEN untreated_outfalls > 0 THEN untreated_outfalls * 1000000 ELSE 0 END
              + CASE WHEN industrial AND direct_discharge_cases > 0 THEN direct_discharge_cases * 10000000 ELSE 0 END)
            AS BIGINT) AS deduction_yuan,
       count(*) FILTER (WHERE untreated_outfalls > 0 OR (industrial AND direct_discharge_cases > 0)) AS cases
FROM registry
GROUP BY district
"""


# the same totals with the repeated-key rule applied as ``score`` applies it (the first row of a
# USCC, by file and row, is the enterprise's; its later rows are rejects): which keys repeat is
# an aggregate over every row's key (the census's work), the rows of those keys alone are
# ordered by a window (few: none in the bench's registry), and the later ones left out (broadcast:
# unhinted, Spark planned a sort-merge anti join that shuffled and sorted every row by file and row)
SPARK_SQL_KEYED = """
WITH repeated AS (
  SELECT uscc FROM registry_rows WHERE uscc IS NOT NULL GROUP BY uscc HAVING count(*) > 1
), later AS (
  SELECT file, row FROM (
    SELECT r.file, r.row, row_number() OVER (PARTITION BY r.uscc ORDER BY r.file, r.row) AS n
    FROM registry_rows r LEFT SEMI JOIN repeated k ON r.uscc = k.uscc)
  WHERE n > 1
)
SELECT /*+ BROADCAST(l) */ district,
       CAST(sum(CASE WHEN untreated_outfalls > 0 THEN untreated_outfalls * 1000000 ELSE 0 END
              + CASE WHEN industrial AND direct_discharge_cases > 0 THEN direct_discharge_cases * 10000000 ELSE 0 END)
            AS BIGINT) AS deduction_yuan,
       count(*) FILTER (WHERE untreated_outfalls > 0 OR (industrial AND direct_discharge_cases > 0)) AS cases
FROM registry_rows r LEFT ANTI JOIN later l ON r.file = l.file AND r.row = l.row
GROUP BY district
"""


ROLES = (("pyspark.daemon", "spark python worker"), ("java", "spark JVM (driver and executors)"),
         ("spawn_main", "dask worker"), ("ecorules", "ecorules run (driver)"))


def _role(process) -> str | None:
    try:
        command = " ".join(process.cmdline())
    except Exception:  # gone, or not ours to read
        return None
    return next((role for marker, role in ROLES if marker in command), None)


def _peak_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM), which the kernel keeps: no sampling misses it."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# a JVM's thread names (/proc/PID/task/*/stat) by the work they do: the JIT compiler's
# (C1/C2 CompilerThread) and the garbage collector's (G1's GC Thread#N, G1 Conc#N, G1 Refine#N,
# G1 Main Marker, G1 Service; the names are cut to 15 characters)
JVM_THREADS = {"JIT compiler": lambda name: "CompilerThre" in name,
               "garbage collector": lambda name: name.startswith(("GC Thread", "G1 "))}


def _jvm_threads_cpu(pid: int) -> dict[str, float]:
    """CPU-s of a JVM's JIT compiler threads and of its garbage collector's, from /proc's threads."""
    total = dict.fromkeys(JVM_THREADS, 0)
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        for work, named in JVM_THREADS.items():
            if named(name):
                total[work] += int(rest[11]) + int(rest[12])  # utime, stime (fields 14 and 15)
    return {work: ticks / os.sysconf("SC_CLK_TCK") for work, ticks in total.items()}


class PeakMemory:
    """The peak RSS of each process under this one while a variant runs, by role (a Dask
    worker, a Spark Python worker, Spark's JVM, an ``ecorules run``): the peaks of the
    processes that outlive a variant are reset before it (``clear_refs``), those of the
    processes it starts are polled until they exit. Also the variant's CPU time
    (:attr:`cpu`, :meth:`_cpu_over`)."""

    def __init__(self, every: float = 0.2):
        import psutil

        self.me, self.every = psutil.Process(), every
        self.peaks: dict[int, tuple[str, int]] = {}
        # pid -> (its tree: the child of this process it runs under, own CPU-s when first seen, last seen)
        self.cpu_of: dict[int, tuple[int, float, float]] = {}
        self.done = threading.Event()

    def _own_cpu(self) -> dict[int, tuple[int, float]]:
        """Each process under this one: (the child of this process it runs under, its own CPU-s)."""
        found = {}
        for child in self.me.children():
            for process in [child, *child.children(recursive=True)]:
                try:
                    times = process.cpu_times()
                except Exception:  # gone between the listing and the reading
                    continue
                found[process.pid] = (child.pid, times.user + times.system)
        return found

    def _cpu_over(self) -> float:
        """The variant's CPU time: this process's own; that of the commands it started and
        reaped (``ecorules run``: its children's time, the dask workers it reaped included,
        which the kernel adds to ours when we reap it); and, under the children still running
        (Spark's JVM), each process's own time as last seen, from when the variant started or
        the process did. Not the counters of reaped children under those: Spark's daemon reaps
        its Python workers between variants, and a worker counted before a variant, then gone,
        took its time out of the tree's sum (the SQL's CPU came out negative, session 8)."""
        times = self.me.cpu_times()
        mine = times.user + times.system + times.children_user + times.children_system - self.mine_before
        running = {child.pid for child in self.me.children()}
        return mine + sum(last - first for root, first, last in self.cpu_of.values() if root in running)

    def __enter__(self):
        times = self.me.cpu_times()
        self.mine_before = times.user + times.system + times.children_user + times.children_system
        self.driver_before = times.user + times.system
        self.jvm_before = {child.pid: _jvm_threads_cpu(child.pid) for child in self.me.children(recursive=True)
                           if _role(child) == "spark JVM (driver and executors)"}
        self.cpu_of = {pid: (root, cpu, cpu) for pid, (root, cpu) in self._own_cpu().items()}
        for child in self.me.children(recursive=True):
            try:
                Path(f"/proc/{child.pid}/clear_refs").write_text("5")
            except OSError:
                pass
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def _poll(self) -> None:
        # the poller's own CPU, left out of the variant's: listing the children scans every
        # process of the machine (psutil), 0.04 CPU-s per second of wall time on this shared
        # one (session 11), which the slowest variants paid most
        started = time.thread_time()
        while not self.done.is_set():
            self._sample()
            self.done.wait(self.every)
        self.poll_cpu = time.thread_time() - started

    def _sample(self) -> None:
        for pid, (root, cpu) in self._own_cpu().items():
            first = self.cpu_of[pid][1] if pid in self.cpu_of else 0.0  # born during the variant: all its time
            self.cpu_of[pid] = (root, first, cpu)
        for child in self.me.children(recursive=True):
            role = self.peaks[child.pid][0] if child.pid in self.peaks else _role(child)
            if role is not None:
                self.peaks[child.pid] = (role, max(_peak_kib(child.pid), self.peaks.get(child.pid, ("", 0))[1]))

    def __exit__(self, *exc):
        self._sample()
        self.done.set()
        self.thread.join()
        self.cpu = self._cpu_over() - self.poll_cpu
        self.jvm_threads = {work: sum(_jvm_threads_cpu(pid)[work] - before[work] for pid, before in self.jvm_before.items())
                            for work in JVM_THREADS}

    def cpu_by_role(self) -> dict[str, float]:
        """The variant's CPU-s by role (processes running at its end), the driver's own, and
        the JIT compiler threads' of Spark's JVM: where the time goes, beside the total."""
        me = self.me.cpu_times()
        out = {"driver (this process)": me.user + me.system - self.driver_before - self.poll_cpu}
        for pid, (_root, first, last) in self.cpu_of.items():
            role = self.peaks[pid][0] if pid in self.peaks else None
            if role is not None:
                out[role] = out.get(role, 0.0) + last - first
        for work, cpu in self.jvm_threads.items():
            if cpu:
                out[f"of which spark JVM {work} threads"] = cpu
        return {role: round(cpu, 2) for role, cpu in out.items()}

    def by_role(self) -> dict[str, int]:
        """role -> the largest peak of one process of it, MiB."""
        out: dict[str, int] = {}
        for role, kib in self.peaks.values():
            out[role] = max(out.get(role, 0), kib // 1024)
        return out


def ecorules_command() -> list[str]:
    found = shutil.which("ecorules", path=str(Path(sys.executable).parent)) or shutil.which("ecorules")
    return [found] if found else [sys.executable, "-m", "ecorules.engine"]


def generate(rows: int, files: int, row_group: int, folder: Path) -> None:
    if folder.exists() and len(list(folder.glob("*.parquet"))) == files:
        return
    import pyarrow.parquet as pq
    from ecorules.engine._generate import generate_registry

    folder.mkdir(parents=True, exist_ok=True)
    per_file = -(-rows // files)
    table = generate_registry(rows, 1)
    for k in range(files):
        pq.write_table(table.slice(k * per_file, per_file), folder / f"part-{k:03d}.parquet", row_group_size=row_group)
    print(f"  generated {rows:,} rows in {files} files under {folder}", flush=True)


def run_command(folder: Path, out: Path, extra: list[str]) -> dict:
    for suffix in ("", "-wal", "-shm", "-run.lock"):
        Path(str(out) + suffix).unlink(missing_ok=True)
    command = [*ecorules_command(), "run", "--registry", str(folder), "--out", str(out), "--as-of", AS_OF,
               "--threads", "2", "--format", "json", "--no-progress", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.decode()[-3000:]}")
    summary = json.loads(done.stdout)
    return {"wall": wall, "rows": summary["rows_in"],
            "districts": {d["district"]: [d["deduction_yuan"], d["cases"]] for d in summary["district_totals"]}}


# the policies, loaded once before the rounds: parsing the YAML is a second per job whatever the
# data's size (the one-process and run variants pay it, and their policies' tests, in every round)
POLICIES: list = []


def dask_score(folder: Path, client) -> dict:
    from ecorules.engine.distributed.dask import read_registry, score

    started = time.perf_counter()
    out = score(read_registry(folder, POLICIES[0]), POLICIES[0], as_of=dt.date.fromisoformat(AS_OF))
    wall = time.perf_counter() - started
    client.cancel(out.partitions)  # the persisted batches: freed before the next variant
    return {"wall": wall, "rows": out.counts["rows_in"], "districts": out.totals}


def spark_score(folder: Path, spark) -> dict:
    from ecorules.engine.distributed.spark import score

    started = time.perf_counter()
    out = score(spark.read.parquet(str(folder)), POLICIES[0], as_of=dt.date.fromisoformat(AS_OF))
    districts = {r["district"]: [r["deduction_yuan"], r["cases"]] for r in out.totals.collect()}
    wall = time.perf_counter() - started
    out.batches.unpersist()
    return {"wall": wall, "rows": out.counts["rows_in"], "districts": districts}


def spark_score_pieces(folder: Path, spark) -> dict:
    """``score`` of the registry's pieces (engine/distributed/spark.py's ``pieces_frame``: a
    row group a task, read by the task with pyarrow), as ``ecorules run --engine spark``
    scores a Parquet registry: Spark hands Python a few names per task, not every cell of
    every row (its Arrow writer, row by row, was 80-90% of the JVM's samples in a
    flight recording of ``score``, 2026-12-06)."""
    from ecorules.engine.distributed._partition import make_plan
    from ecorules.engine.distributed.spark import pieces_frame, score

    as_of = dt.date.fromisoformat(AS_OF)
    started = time.perf_counter()
    frame = pieces_frame(spark, folder, make_plan(POLICIES[0], as_of))
    out = score(frame, POLICIES[0], as_of=as_of, pieces_in=True)
    districts = {r["district"]: [r["deduction_yuan"], r["cases"]] for r in out.totals.collect()}
    wall = time.perf_counter() - started
    out.batches.unpersist()
    return {"wall": wall, "rows": out.counts["rows_in"], "districts": districts}


def spark_score_without_census(folder: Path, spark) -> dict:
    """``score`` as if the policies declared no key: no census of repeated keys (digests,
    counted by Spark on the executors), the rest as ``score``. ``score`` minus this is the census."""
    from ecorules.engine.distributed import spark as engine

    real = engine.census_key
    engine.census_key = lambda plan: None  # the driver's decision to take a census; the workers' filter is untouched
    try:
        return spark_score(folder, spark)
    finally:
        engine.census_key = real


def spark_score_pieces_without_census(folder: Path, spark) -> dict:
    """``score of pieces`` as if the policies declared no key (as ``score without key census``)."""
    from ecorules.engine.distributed import spark as engine

    real = engine.census_key
    engine.census_key = lambda plan: None
    try:
        return spark_score_pieces(folder, spark)
    finally:
        engine.census_key = real


def spark_score_census_on_executors(folder: Path, spark) -> dict:
    """``score`` with the key census's digests counted by Spark on the executors, as past
    DRIVER_CENSUS_ROWS rows (exploded, shuffled and counted in the JVM), where ``score`` merges
    a registry of this size on the driver: ``score`` minus this is what the driver's merge saves."""
    from ecorules.engine.distributed import spark as engine

    real = engine.DRIVER_CENSUS_ROWS
    engine.DRIVER_CENSUS_ROWS = 0
    try:
        return spark_score(folder, spark)
    finally:
        engine.DRIVER_CENSUS_ROWS = real


def spark_python_floor(folder: Path, spark) -> dict:
    """The registry's needed columns handed to Python through mapInArrow and only counted:
    what any Python on Spark pays before it does anything."""
    from ecorules.engine.distributed._partition import make_plan, needed_columns

    plan = make_plan(POLICIES[0], dt.date.fromisoformat(AS_OF))
    df = spark.read.parquet(str(folder))
    # the columns score hands over (plan.needed names facts the registry may not have: a
    # policy's optional responsible_unit made the select fail)
    df = df.select(*[f"`{c}`" for c in needed_columns(plan, df.columns)])

    def count(batches):
        import pyarrow as pa

        rows = 0
        for batch in batches:
            rows += batch.num_rows
        yield pa.record_batch([pa.array([rows], pa.int64())], names=["rows"])

    started = time.perf_counter()
    rows = sum(r["rows"] for r in df.mapInArrow(count, "rows long").collect())
    return {"wall": time.perf_counter() - started, "rows": rows, "districts": None}


def spark_scoring_only(folder: Path, spark) -> dict:
    """The kernel scoring on the executors and nothing else of ``score``: each task's batches
    scored (a Part per task, as ``score`` makes them), only their partial totals sent back;
    no key census, no pickled batches cached. ``score`` minus this is what those cost."""
    import pyarrow as pa
    from ecorules.engine.distributed import _frames
    from ecorules.engine.distributed._partition import Part, make_plan, needed_columns
    from ecorules.engine.distributed.spark import _ddl, _number, _tables

    plan = make_plan(POLICIES[0], dt.date.fromisoformat(AS_OF))
    df = spark.read.parquet(str(folder))
    df = df.select(*[f"`{c}`" for c in needed_columns(plan, df.columns)])

    def partials(batches):
        part = Part(plan, _number())
        for table in _tables(batches, False):
            yield from _frames.partials_table(part.score(table)).to_batches()

    started = time.perf_counter()
    rows = df.mapInArrow(partials, _ddl(_frames.PARTIALS_SCHEMA)).collect()
    totals, counts = _frames.add_partials(pa.Table.from_pylist([r.asDict() for r in rows],
                                                                       schema=_frames.PARTIALS_SCHEMA),
                                          _frames.names(plan))
    return {"wall": time.perf_counter() - started, "rows": counts["rows_in"], "districts": totals}


def spark_scoring_only_of_pieces(folder: Path, spark) -> dict:
    """The kernel scoring of the registry's pieces (each task reading its row group with
    pyarrow, as ``score of pieces``), only their partial totals back: no key census, no cached
    batches. ``score of pieces`` minus this is what those cost; this against the SQL is the
    floor of Python on Spark that does not pay Spark's column-to-row hand-over."""
    import pyarrow as pa
    from ecorules.engine.distributed import _frames
    from ecorules.engine.distributed._partition import Part, make_plan
    from ecorules.engine.distributed.spark import _ddl, _number, _tables, pieces_frame

    plan = make_plan(POLICIES[0], dt.date.fromisoformat(AS_OF))

    def partials(batches):
        part = Part(plan, _number())
        for table in _tables(batches, True):
            yield from _frames.partials_table(part.score(table)).to_batches()

    started = time.perf_counter()
    frame = pieces_frame(spark, folder, plan)
    rows = frame.mapInArrow(partials, _ddl(_frames.PARTIALS_SCHEMA)).collect()
    totals, counts = _frames.add_partials(pa.Table.from_pylist([r.asDict() for r in rows],
                                                               schema=_frames.PARTIALS_SCHEMA),
                                          _frames.names(plan))
    return {"wall": time.perf_counter() - started, "rows": counts["rows_in"], "districts": totals}


def spark_sql(folder: Path, spark, frame=None) -> dict:
    started = time.perf_counter()
    (spark.read.parquet(str(folder)) if frame is None else frame).createOrReplaceTempView("registry")
    rows = spark.sql(SPARK_SQL).collect()
    wall = time.perf_counter() - started
    districts = {r["district"]: [r["deduction_yuan"], r["cases"]] for r in rows if r["deduction_yuan"] or r["cases"]}
    return {"wall": wall, "rows": None, "districts": districts}


def spark_sql_keyed(folder: Path, spark, frame=None) -> dict:
    """Spark's own SQL applying the rule ``score``'s key census applies (one enterprise, one
    row: a USCC's later rows, by file and row, count for nothing), then the same district
    totals: the like-for-like floor of ``score`` (:data:`SPARK_SQL_KEYED`)."""
    from pyspark.sql import functions as F

    started = time.perf_counter()
    df = spark.read.parquet(str(folder)) if frame is None else frame
    df.select("*", F.col("_metadata.file_path").alias("file"), F.col("_metadata.row_index").alias("row")) \
        .createOrReplaceTempView("registry_rows")
    rows = spark.sql(SPARK_SQL_KEYED).collect()
    wall = time.perf_counter() - started
    districts = {r["district"]: [r["deduction_yuan"], r["cases"]] for r in rows if r["deduction_yuan"] or r["cases"]}
    return {"wall": wall, "rows": None, "districts": districts}


def _pyspark_version() -> str | None:
    try:
        import pyspark
    except ImportError:
        return None
    return pyspark.__version__


def median(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s ({min(values):.2f}-{max(values):.2f})"


def _alternate_module():
    """bench/_alternate.py, which this script's folder being off the path (above) hides from import."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_alternate", Path(__file__).with_name("_alternate.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _child_arguments(argv: list[str], session_rounds: int) -> list[str]:
    """This run's arguments for a child: no --build, --rounds the rounds of its one session."""
    out, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument in ("--build", "--rounds", "--session-rounds"):
            skip = True
        elif not argument.startswith(("--build=", "--rounds=", "--session-rounds=")):
            out.append(argument)
    return [*out, "--rounds", str(session_rounds), "--child"]


def alternate_builds(args) -> None:
    """The bench once per build and round, each in a child process with the build first on
    PYTHONPATH (its Spark workers inherit it), the builds' order turned each round; then each
    build's medians and ratios, and each variant's median wall and CPU-s against the first build's."""
    alternate = _alternate_module()
    builds = alternate.builds(args.build)
    arguments = [__file__, *_child_arguments(sys.argv[1:], args.session_rounds)]
    found: dict[str, dict[str, list[dict]]] = {name: {} for name, _ in builds}
    loads: dict[str, list[float]] = {name: [] for name, _ in builds}
    for round_, name, run, load in alternate.alternated([(name, path, lambda _round: arguments)
                                                         for name, path in builds], args.rounds):
        loads[name].append(load)
        for variant, runs in run["results"].items():
            found[name].setdefault(variant, []).extend(runs)
            for result in runs:
                print(f"  round {round_ + 1} {name}: {variant}: {result['wall']:.2f} s, {result['cpu']:.2f} CPU-s, "
                      f"load at start {load:.1f}, CPU-s by role {result['cpu_by_role']}", flush=True)
    summaries = {name: summarize(found[name], args, name) for name, _ in builds}
    first = builds[0][0]
    print(f"\nagainst {first} (medians of each build's runs; loads at the children's starts "
          + ", ".join(f"{name} {min(values):.1f}-{max(values):.1f}" for name, values in loads.items()) + ")")
    for name, _ in builds[1:]:
        for variant in found[name]:
            if variant in found[first]:
                wall = statistics.median(summaries[name][2][variant]) / statistics.median(summaries[first][2][variant])
                cpu = statistics.median(summaries[name][3][variant]) / statistics.median(summaries[first][3][variant])
                print(f"  {name}/{first} {variant:60s} wall {wall:.3f}x  CPU-s {cpu:.3f}x")
    districts = [r["districts"] for runs in found.values() for results in runs.values() for r in results
                 if r["districts"] is not None]
    out = args.dir / "distributed-builds.json"
    out.write_text(json.dumps({"rows": args.rows, "files": args.files, "builds": dict(builds), "results": found,
                               "loads": loads, "ratios": {name: summaries[name][0] for name in summaries},
                               "date": str(dt.date.today())}, indent=2, default=str))
    print(f"  saved {out}")
    if any(d != districts[0] for d in districts):
        raise SystemExit("district totals differ between builds or variants")


def summarize(results: dict[str, list[dict]], args, build: str | None = None) -> tuple[dict, dict, dict, dict]:
    """Print each variant's medians and the ratios the targets are stated in (of one build's
    rounds, named ``build``, where builds alternate); return (ratios, agree, walls, cpus)."""
    first = next(iter(results.values()))[0]["districts"]
    agree = {name: all(r["districts"] in (None, first) for r in runs) for name, runs in results.items()}
    walls = {name: [r["wall"] for r in runs] for name, runs in results.items()}
    best = {name: statistics.median(values) for name, values in walls.items()}
    print(f"\n{f'{build}: ' if build else ''}{args.rows:,} rows in {args.files} Parquet files, {os.cpu_count()} cores (shared), "
          f"Python {platform.python_version()}, pyspark {_pyspark_version()}, {dt.date.today()}"
          + (f", Spark settings {args.spark_conf}" if args.spark_conf else "")
          + (f", DRIVER_CENSUS_ROWS {args.driver_census_rows:,}" if args.driver_census_rows is not None else ""))
    cpus = {name: [r["cpu"] for r in runs] for name, runs in results.items()}
    for name, values in walls.items():
        print(f"  {name:48s} {median(values)}  {args.rows / best[name]:>12,.0f} rows/s  "
              f"{args.rows / statistics.median(cpus[name]):>10,.0f} rows/CPU-s  "
              f"totals {'agree' if agree[name] else 'DIFFER'}")
    one, dask_run, dask_up = ("one process (ecorules run)", "dask, run (2 workers, start-up included)",
                              "dask, score (2 workers up)")
    spark_run, spark_up, sql, counting = ("spark, run (local[2], start-up included)", "spark, score (local[2] up)",
                                          "spark, native SQL (local[2] up)",
                                          "spark, mapInArrow only counting (local[2] up)")
    sql_keyed = "spark, native SQL with the repeated-key rule (local[2] up)"
    scoring_only = "spark, mapInArrow scoring only (local[2] up)"
    pieces_scoring_only = "spark, pieces scoring only (local[2] up)"
    of_pieces = "spark, score of pieces (local[2] up)"
    no_census = "spark, score without key census (local[2] up)"
    on_executors = "spark, score, census merged on the executors (local[2] up)"
    ratios = {}
    for label, slow, fast in (  # a records/s ratio is fast's rate over slow's; a time ratio slow's time over fast's
            ("dask run / one process (records/s)", one, dask_run),
            ("dask score / one process (records/s)", one, dask_up),
            ("spark score / one process (records/s)", one, spark_up),
            ("spark score / spark native SQL (time)", spark_up, sql),
            ("spark score of pieces / spark native SQL (time)", of_pieces, sql),
            ("spark score of pieces / spark native SQL with the repeated-key rule (time)", of_pieces, sql_keyed),
            ("spark native SQL with the repeated-key rule / spark native SQL (time)", sql_keyed, sql),
            ("spark run / spark native SQL (time)", spark_run, sql),
            ("spark mapInArrow counting / spark native SQL (time)", counting, sql),
            ("spark score / spark mapInArrow counting (time)", spark_up, counting),
            ("spark scoring only / spark native SQL (time)", scoring_only, sql),
            ("spark score / spark scoring only (time)", spark_up, scoring_only),
            ("spark pieces scoring only / spark native SQL (time)", pieces_scoring_only, sql),
            ("spark score of pieces / spark pieces scoring only (time)", of_pieces, pieces_scoring_only),
            ("spark score of pieces / spark score of pieces without key census (time)", of_pieces,
             "spark, score of pieces without key census (local[2] up)"),
            ("spark score of pieces without key census / spark pieces scoring only (time)",
             "spark, score of pieces without key census (local[2] up)", pieces_scoring_only),
            ("spark score / spark score without key census (time)", spark_up, no_census),
            ("spark score, census on the executors / spark score (time)", on_executors, spark_up),
            ("spark score without key census / spark scoring only (time)", no_census, scoring_only)):
        if slow in best and fast in best:
            ratios[label] = best[slow] / best[fast]
            # on a shared machine the fastest round of each is the one least hit by others' load
            ratios[label + ", fastest rounds"] = min(walls[slow]) / min(walls[fast])
            ratios[label.replace("(time)", "(CPU time)").replace("(records/s)", "(records per CPU-s)")] = (
                statistics.median(cpus[slow]) / statistics.median(cpus[fast]))
    for name, value in ratios.items():
        print(f"  {name:68s} {value:.2f}x")
    return ratios, agree, walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--row-group", type=int, default=500_000, help="Rows per row group (a partition).")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "ecorules-bench-dist")
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--spark-only", action="store_true", help="Only Spark's score, its SQL and its Python floor.")
    parser.add_argument("--only", action="append", help="Only the variants whose name has this text (repeatable).")
    parser.add_argument("--keyed-sql", action="store_true",
                        help="Also Spark's SQL with the repeated-key rule (the like-for-like floor: ~30x the "
                             "plain SQL, 138 CPU-s at 10 M rows, so not run unless asked).")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                        help="A setting of the bench's Spark session (repeatable), e.g. a site's JVM options: "
                             "spark.driver.extraJavaOptions=... (local mode: the driver is the executor). The "
                             "SQL runs in the same session, so it gets the same settings as score.")
    parser.add_argument("--driver-census-rows", type=int, metavar="N",
                        help="engine/distributed/spark.py's DRIVER_CENSUS_ROWS for this run: 0 merges the key "
                             "census on the executors at any size, as past 16 M rows (to study that path at 5-10 M)")
    parser.add_argument("--build", action="append", default=[], metavar="NAME=PYTHONPATH",
                        help="A build to run (repeatable): each round runs the bench once per build, in a child "
                             "process of its own (its own Spark session) with the build first on PYTHONPATH, the "
                             "builds' order turned each round (bench/_alternate.py); medians per build and the "
                             "ratios between builds")
    parser.add_argument("--session-rounds", type=int, default=1,
                        help="With --build: the rounds each child runs in its one session (a later one finds "
                             "the JVM's JIT warmer)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver_census_rows is not None:
        from ecorules.engine.distributed import spark as engine

        engine.DRIVER_CENSUS_ROWS = args.driver_census_rows
    folder = args.dir / f"registry-{args.rows}-{args.files}"
    generate(args.rows, args.files, args.row_group, folder)
    if args.build and not args.child:
        alternate_builds(args)
        return
    from ecorules.rules import load_policies

    POLICIES.append(load_policies())

    spark = None
    if not args.no_spark:
        try:
            from ecorules.engine.distributed.spark import local_session

            conf = dict(setting.split("=", 1) for setting in args.spark_conf)
            spark = local_session("local[2]", local_dir=str(args.dir / "spark-local"), **conf)
            spark.sparkContext.setLogLevel("ERROR")
            # a session's first Python job pays its workers' start and the JVM's warm-up (a
            # round-1 score took 49 s against 25 s in round 2): paid here, on a small slice
            warm = spark.read.parquet(str(folder)).limit(10_000)
            from ecorules.engine.distributed.spark import score

            score(warm, POLICIES[0], as_of=dt.date.fromisoformat(AS_OF)).totals.collect()
            # and the SQL its own (code generation, the JIT on its path): unwarmed, its round 1
            # took 41-55 s against 13-15 s in round 2, which halved the median ratio (sessions 8, 9)
            spark_sql(folder, spark, warm)
            if args.keyed_sql:
                spark_sql_keyed(folder, spark, warm)
        except ImportError:
            print("  pyspark not installed: Spark variants skipped", flush=True)
    results: dict[str, list[dict]] = {}
    with contextlib.ExitStack() as stack:
        client = None

        def variants_of_round() -> dict:
            variants = {
                "one process (ecorules run)": lambda: run_command(folder, args.dir / "local.sqlite", []),
                "dask, run (2 workers, start-up included)":
                    lambda: run_command(folder, args.dir / "dask.sqlite", ["--engine", "dask"]),
                "dask, score (2 workers up)": lambda: dask_score(folder, client),
            }
            if spark is not None:
                variants |= {
                    "spark, run (local[2], start-up included)":
                        lambda: run_command(folder, args.dir / "spark.sqlite", ["--engine", "spark", "--master", "local[2]"]),
                    "spark, score (local[2] up)": lambda: spark_score(folder, spark),
                    "spark, score of pieces (local[2] up)": lambda: spark_score_pieces(folder, spark),
                    "spark, native SQL (local[2] up)": lambda: spark_sql(folder, spark),
                    "spark, mapInArrow only counting (local[2] up)": lambda: spark_python_floor(folder, spark),
                    "spark, mapInArrow scoring only (local[2] up)": lambda: spark_scoring_only(folder, spark),
                    "spark, pieces scoring only (local[2] up)": lambda: spark_scoring_only_of_pieces(folder, spark),
                    "spark, score without key census (local[2] up)": lambda: spark_score_without_census(folder, spark),
                    "spark, score of pieces without key census (local[2] up)":
                        lambda: spark_score_pieces_without_census(folder, spark),
                    "spark, score, census merged on the executors (local[2] up)":
                        lambda: spark_score_census_on_executors(folder, spark),
                }
                if args.keyed_sql:
                    variants["spark, native SQL with the repeated-key rule (local[2] up)"] = \
                        lambda: spark_sql_keyed(folder, spark)
            if args.spark_only:
                variants = {name: v for name, v in variants.items() if name.startswith("spark") and "run" not in name}
            if args.only:
                variants = {name: v for name, v in variants.items() if any(o in name for o in args.only)}
            return variants

        # the Dask cluster only for the variant that uses it: its idle scheduler (in this
        # process) and workers (under it) took CPU all along, counted in every Spark variant's
        # CPU time in proportion to its wall time (session 10: 18.7-22 CPU-s for a `score of
        # pieces` that used 10-12 measured alone)
        if "dask, score (2 workers up)" in variants_of_round():
            from dask.distributed import Client, LocalCluster

            cluster = stack.enter_context(LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                                       dashboard_address="127.0.0.1:0"))
            client = stack.enter_context(Client(cluster))
        for round_ in range(args.rounds):
            for name, variant in variants_of_round().items():
                with PeakMemory() as memory:
                    result = variant()
                result["peak_mib"] = memory.by_role()
                result["cpu"] = memory.cpu
                result["cpu_by_role"] = memory.cpu_by_role()
                results.setdefault(name, []).append(result)
                print(f"  round {round_ + 1}: {name}: {result['wall']:.2f} s, {result['cpu']:.2f} CPU-s, "
                      f"load {os.getloadavg()[0]:.1f}, "
                      f"peak RSS per process (MiB) {result['peak_mib']}, CPU-s by role {result['cpu_by_role']}",
                      flush=True)
    if args.child:  # the parent reads the last line of stdout
        if spark is not None:
            spark.stop()
        print(json.dumps({"results": results}, default=str))
        return
    ratios, agree, walls, cpus = summarize(results, args)
    out = args.dir / "distributed.json"
    peaks = {name: {role: max(r["peak_mib"].get(role, 0) for r in runs) for role in runs[0]["peak_mib"]}
             for name, runs in results.items()}
    for name, roles in peaks.items():
        print(f"  peak RSS of one process, {name}: " + ", ".join(f"{role} {mib:,} MiB" for role, mib in roles.items()))
    out.write_text(json.dumps({"rows": args.rows, "files": args.files, "spark_conf": args.spark_conf,
                               "driver_census_rows": args.driver_census_rows,
                               "pyspark": _pyspark_version(), "walls": walls, "cpu": cpus, "ratios": ratios,
                               "peak_mib": peaks,
                               "cpu_by_role": {name: [r["cpu_by_role"] for r in runs] for name, runs in results.items()},
                               "agree": agree, "date": str(dt.date.today()),
                               "load": os.getloadavg()}, indent=2))
    print(f"  saved {out}")
    if not all(agree.values()):
        raise SystemExit("district totals differ between variants")
    if spark is not None:
        spark.stop()


if __name__ == "__main__":
    main()
