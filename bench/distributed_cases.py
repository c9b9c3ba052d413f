"""Records/s of `ecorules run --cases` on Dask and on Spark (the cases judged on the workers or
executors) beside the same run on one machine, in one process, round after round (interleaved).

    python bench/distributed_cases.py --cases 200000 --enterprises 20000 --rounds 2
    python bench/distributed_cases.py --engine dask        # Dask alone beside one process

The data are bench/cases.py's (a registry of --enterprises rows, a Parquet case table of
--cases rows for the policies of tests/data/cases), written once into --dir. The Dask cluster
(a LocalCluster of --threads worker processes, one thread each, on 127.0.0.1) and the Spark
session (local[--threads]) are started before the first round and not timed; each Dask
worker's peak RSS is reset before each of its rounds (Linux's clear_refs), so that it is
that round's. Each distributed run includes its jobs: reading the case table, the
case_ids' shuffle, the registry's pick, the shuffle by enterprise, the judging tasks and the
driver's writing of the store, then the registry's scoring.

Beside wall-clock records/s, records per CPU-second: one process's own CPU time (all its
threads); Dask's, the driver's (the scheduler runs in it) and the workers'. Spark's executors
are threads of a JVM and Python workers this process does not wait for: wall-clock only.
The load of the machine (uptime) is printed beside each figure: the ratio is what this
bench claims, and on a shared machine loosely.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

# bench/ holds distributed.py, whose name is the package Dask's scheduler lives in: the folder
# leaves the path (Python put it first, running this script), bench/cases.py is loaded by its file
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
_spec = importlib.util.spec_from_file_location("bench_cases", Path(__file__).resolve().parent / "cases.py")
_cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_cases)
AS_OF, POLICIES, prepare = _cases.AS_OF, _cases.POLICIES, _cases.prepare  # bench/cases.py's data

ONE = "one process"


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} {five:.1f} {fifteen:.1f}"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _warm() -> None:
    """What a worker of a long-lived cluster has imported already (a fresh one imports it with
    its first task): the engine's modules and the kernel."""
    import ecorules.engine.distributed._dask_cases  # noqa: F401
    import ecorules.engine.distributed.dask  # noqa: F401
    import ecorules.fastcalc  # noqa: F401


def _worker_usage() -> tuple[float, int]:
    """A Dask worker's CPU seconds so far and peak RSS (bytes) since its last reset (it runs
    there: client.run)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/self/status", encoding="ascii") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return usage.ru_utime + usage.ru_stime, peak * 1024


def _reset_peak() -> None:
    """A worker's peak RSS counted afresh (Linux: 5 to clear_refs resets VmHWM), so that its
    peak is the round's, without restarting it (a restart under load did not come back in
    the scheduler's two minutes)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
        refs.write("5")


class DaskVariant:
    def __init__(self, threads: int):
        from dask.distributed import Client, LocalCluster

        self.cluster = LocalCluster(n_workers=threads, threads_per_worker=1, processes=True, host="127.0.0.1",
                                    dashboard_address="127.0.0.1:0", silence_logs=40)
        self.client = Client(self.cluster)
        self.client.run(_warm)  # as a long-lived cluster's workers, which imported the engine with a first task

    def options(self) -> dict:
        return {"engine": "dask", "scheduler": self.cluster.scheduler_address}

    def before(self) -> dict:
        self.client.run(_reset_peak)
        return self.client.run(_worker_usage)

    def after(self, before: dict) -> tuple[float, str]:
        usage = self.client.run(_worker_usage)
        cpu = sum(usage[w][0] - before.get(w, (0.0, 0))[0] for w in usage)
        peaks = ", ".join(f"{usage[w][1] / 2**20:,.0f}" for w in sorted(usage))
        return cpu, f"workers {cpu:.1f} CPU-s, peak RSS per worker {peaks} MiB"

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


class SparkVariant:
    def __init__(self, threads: int, folder: Path):
        from ecorules.engine.distributed.spark import local_session

        self.master = f"local[{threads}]"
        self.spark = local_session(self.master, local_dir=str(folder / "spark"))
        self.spark.sparkContext.setLogLevel("ERROR")

    def options(self) -> dict:
        return {"engine": "spark", "master": self.master}

    def before(self) -> dict:
        return {}

    def after(self, _before: dict) -> tuple[float | None, str]:
        return None, ""

    def close(self) -> None:
        self.spark.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--enterprises", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engine", action="append", choices=("dask", "spark"),
                        help="an engine to run beside one process (repeatable; default: each one installed)")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "ecorules-bench-dist-cases")
    args = parser.parse_args()
    engines = args.engine or [e for e, module in (("dask", "distributed"), ("spark", "pyspark"))
                              if importlib.util.find_spec(module) is not None]
    args.dir.mkdir(parents=True, exist_ok=True)
    from ecorules.engine._nightly import run_nightly
    from ecorules.engine.distributed._run import run_distributed

    paths = prepare(args.dir, args.enterprises, args.cases)
    variants: dict[str, object] = {}
    try:
        for engine in engines:
            began = time.perf_counter()
            variants[engine] = DaskVariant(args.threads) if engine == "dask" else SparkVariant(args.threads, args.dir)
            print(f"{engine} up in {time.perf_counter() - began:.1f} s ({_load()})", flush=True)
        rates: dict[str, list[float]] = {ONE: [], **{engine: [] for engine in engines}}
        per_cpu: dict[str, list[float]] = {name: [] for name in rates}
        totals = {}
        for round_ in range(args.rounds):
            for name in rates:
                out = args.dir / f"{name.replace(' ', '-')}-{round_}.sqlite"
                out.unlink(missing_ok=True)
                variant = variants.get(name)
                before = variant.before() if variant is not None else {}
                cpu = _cpu()
                run = run_distributed if variant is not None else run_nightly
                summary = run(paths["enterprises"], out, policies=POLICIES, as_of=AS_OF, threads=args.threads,
                              cases=paths["cases"], force=True, **(variant.options() if variant is not None else {}))
                cpu = _cpu() - cpu
                workers, memory = variant.after(before) if variant is not None else (0.0, "")
                rate = summary.rows_in / summary.seconds
                rates[name].append(rate)
                totals.setdefault(name, (summary.total_yuan, summary.findings, summary.rows_rejected))
                cpu_text = "CPU n/a"
                if workers is not None:
                    per_cpu[name].append(summary.rows_in / (cpu + workers))
                    cpu_text = f"{cpu + workers:.1f} CPU-s = {per_cpu[name][-1]:,.0f} records/CPU-s"
                print(f"round {round_} {name:>11}: {summary.rows_in:,} rows in {summary.seconds:.2f} s = "
                      f"{rate:,.0f} records/s, {cpu_text} ({summary.findings:,} findings; {_load()})"
                      + (f"; {memory}" if memory else ""), flush=True)
                out.unlink(missing_ok=True)
    finally:
        for variant in variants.values():
            variant.close()
    status = 0
    for engine in engines:
        if totals[engine] != totals[ONE]:
            print(f"results differ: {engine} {totals[engine]} against one process {totals[ONE]}")
            status = 1
            continue
        ratios = [s / o for s, o in zip(rates[engine], rates[ONE], strict=True)]
        line = (f"{engine} / one process: {statistics.median(rates[engine]) / statistics.median(rates[ONE]):.2f} of "
                f"the medians, {min(ratios):.2f}-{max(ratios):.2f} round by round")
        if per_cpu[engine]:
            line += f"; per CPU-second {statistics.median(per_cpu[engine]) / statistics.median(per_cpu[ONE]):.2f}"
        print(f"{line} ({_load()})")
    return status


if __name__ == "__main__":
    sys.exit(main())
