"""`ecorules run` of several builds, alternately, on the same registries: the run's time as a ratio.

    python bench/versions.py --build base=/work/venv-base/bin/python --build main=/work/venv-perf/bin/python \\
        --build this=/work/venv-rows/bin/python --rows 2000000 --rounds 7 --dir /tmp/dupfix-data

Each build is a Python interpreter whose environment has its own ``ecorules`` installed (an
editable install of a worktree at the commit to compare). The registry is written once with
the first build's ``ecorules gen-registry`` (seed 1) as Parquet and CSV; with ``--dup-share``
also a copy of each in which that share of the rows repeats the USCC of another row (one
enterprise, one row: the duplicate check's rejects), everything else equal. Every round runs
each build on each registry, the builds' order rotating round by round so that the machine's
load hits each alike, into a fresh SQLite file, after one run of each build that is not
counted (:func:`child_env`).

Measured: the run's own time, ``seconds`` of the run's JSON summary (from the start of the run
to its commit: Python's start-up and the imports are left out, so an editable install that
compiles its sources at each start does not count), and the CPU seconds of the child from
after the CLI's import to its end (``time.process_time``: every thread of the process; less
disturbed than the wall by other work on a shared machine), and its peak RSS (VmHWM).
Printed: medians per registry and build, and each build's ratio to each other build, for both,
with the 1-minute load. The builds must agree on the rows rejected and the total, or the bench
stops.

``--part check`` times the duplicate check's share of the work alone (``CHECK``): in each child
the batches are read once, then, ``--repeats`` times, filtered, the rows held decided and every
batch scored, in CPU seconds of one thread; printed as "run" the best repeat and as "CPU" the
median, and the batches scored. On a machine whose load is several times its cores, the whole
run's times spread more than the difference sought; the best of a single-threaded repeat does not.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

AS_OF = "2012-04-14"
log = logging.getLogger("bench.versions")


def build(text: str) -> tuple[str, Path]:
    label, _, python = text.partition("=")
    if not python:
        raise argparse.ArgumentTypeError(f"a build is LABEL=PYTHON, not {text!r}")
    return label, Path(python)


def registries(python: Path, rows: int, folder: Path, dup_share: float, suffixes: set[str]) -> list[Path]:
    """The clean registry as Parquet and CSV, and the copies with repeated USCCs (kept in
    ``folder`` for the next run of the bench)."""
    clean = folder / f"clean-{rows}.parquet"
    if not clean.exists():
        subprocess.run([str(python), "-m", "ecorules.engine", "gen-registry", "--rows", str(rows), "--seed", "1",
                        "--out", str(clean)], check=True, stdout=subprocess.DEVNULL)
    made = [clean]
    if dup_share > 0:
        repeated = folder / f"dup{dup_share:g}-{rows}.parquet"
        if not repeated.exists():
            table = pq.read_table(clean)
            rng = np.random.default_rng(7)
            # a later row takes the USCC of an earlier one, anywhere before it (most in an earlier batch)
            later = np.sort(rng.choice(np.arange(1, rows), size=int(rows * dup_share), replace=False))
            earlier = (rng.random(later.size) * later).astype(np.int64)
            uscc = table["uscc"].combine_chunks()
            mask = np.zeros(rows, bool)
            mask[later] = True
            values = uscc.take(pa.array(earlier))
            table = table.set_column(0, "uscc", pc.replace_with_mask(uscc, pa.array(mask), values))
            pq.write_table(table, repeated)
        made.append(repeated)
    out = []
    for parquet in made:
        csv = parquet.with_suffix(".csv")
        if ".csv" in suffixes and not csv.exists():
            pacsv.write_csv(pq.read_table(parquet), csv)
        out += [path for path in (csv, parquet) if path.suffix in suffixes]
    return out


# the CLI in the child, its CPU seconds counted from after its import (all the process's threads)
CHILD = """
import sys, time
from ecorules.engine._cli import main
began = time.process_time()
try:
    main(sys.argv[1:], prog_name="ecorules")
except SystemExit as done:
    code = done.code
else:
    code = 0
cpu = time.process_time() - began
with open("/proc/self/status") as status:  # VmHWM: this process's peak (ru_maxrss keeps the forking parent's)
    peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
sys.stderr.write(f"\\nbench-cpu {cpu} {peak}\\n")
sys.exit(code)
"""


# --part check: the duplicate check's work alone, in the child, on the batches the run reads
# (read once, before the clock): the filter over every batch, the rows held decided, and every
# batch scored (each scored batch's fixed cost counts); single-threaded, CPU seconds, best and
# median of the repeats (the best is what a busy machine disturbs least)
CHECK = """
import statistics, sys, time, datetime as dt
from pathlib import Path
from ecorules.engine._duplicates import DuplicateFilter
from ecorules.engine._scored import make_scoring, score_batch
from ecorules.engine._seen_keys import SeenUsccs
from ecorules.engine._sources import DEFAULT_BATCH_ROWS, ColumnResolver, Registry
from ecorules.engine.sources._types import Batch
from ecorules.fastcalc import compile_program
from ecorules.rules import load_policies
policies = load_policies().for_domain("enterprise")
scoring = make_scoring(policies, "enterprise", "uscc", compile_program, domain="enterprise")
needed = {c: ["bench"] for c in scoring.program.columns if policies.facts[c].rollup is None}
read = list(Registry(Path(sys.argv[1]), ColumnResolver(policies.facts, needed), encoding=None,
                     batch_rows=DEFAULT_BATCH_ROWS).batches())
rows = sum(b.rows_in for b in read)
def fresh():
    return [Batch(b.table, b.source, b.rows, b.headers, list(b.rejects), b.rows_in, b.checked) for b in read]
took = []
for _ in range(int(sys.argv[2])):
    batches = fresh()
    began = time.process_time()
    keys = DuplicateFilter(policies.facts["uscc"], None, "reject", policies.facts, seen=SeenUsccs(rows))
    keys.reread = lambda: iter(fresh())  # b1608b7: a second pass for rows whose first was in an earlier batch
    out = [keys.apply(b) for b in batches]
    out += list(keys.end()[0])
    for b in out:
        score_batch(scoring, b, as_of=dt.date(2012, 4, 14), reuse=True)
    took.append(time.process_time() - began)
print(min(took), statistics.median(took), len(out), sum(len(b.rejects) for b in out))
"""


def check(python: Path, registry: Path, repeats: int, env: dict) -> dict:
    done = subprocess.run([str(python), "-c", CHECK, str(registry), str(repeats)], capture_output=True, check=False,
                          env=env)
    if done.returncode:
        raise SystemExit(f"{python}: the check failed on {registry}: {done.stderr.decode()[-2000:]}")
    best, median, batches, rejected = done.stdout.split()
    return {"run": float(best), "cpu": float(median), "rss_mib": 0.0, "rejected": int(rejected), "total": 0,
            "batches": int(batches)}


def child_env(label: str, folder: Path) -> dict:
    """Each build's byte-code in a folder of its own (PYTHONPYCACHEPREFIX), written by a first
    run that is not counted: a tree that has no ``__pycache__`` (a new worktree, where
    PYTHONDONTWRITEBYTECODE is set) would otherwise compile the modules it imports late inside
    the run's time, and none of the compared trees is written to."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(folder / f"pycache-{label}")
    return env


def run(python: Path, registry: Path, out: Path, env: dict) -> dict:
    command = [str(python), "-c", CHILD, "run", "--registry", str(registry), "--out", str(out),
               "--as-of", AS_OF, "--format", "json", "--no-progress"]
    done = subprocess.run(command, capture_output=True, check=False, env=env)
    if done.returncode not in (0, 1):  # 1: the run had rejects
        raise SystemExit(f"{python}: ecorules run failed ({done.returncode}) on {registry}: {done.stderr.decode()[-2000:]}")
    for written in out.parent.glob(out.name + "*"):  # the database and its side files: not kept
        written.unlink()
    summary = json.loads(done.stdout)
    cpu, rss_kib = done.stderr.decode().rsplit("bench-cpu ", 1)[1].split()
    return {"run": summary["seconds"], "cpu": float(cpu), "rss_mib": int(rss_kib) / 1024,
            "rejected": summary["rows_rejected"], "total": summary["total_yuan"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=build, action="append", required=True,
                        help="LABEL=PYTHON, given twice or more; the first is the baseline")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dup-share", type=float, default=0.01, help="0: the clean registries only")
    parser.add_argument("--formats", default="csv,parquet")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "ecorules-versions")
    parser.add_argument("--part", choices=("run", "check"), default="run",
                        help="check: the duplicate check and the scoring of the batches alone, in CPU seconds "
                             "(printed as run: the best of --repeats, CPU: their median)")
    parser.add_argument("--repeats", type=int, default=5, help="--part check: repeats in each child")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    builds = dict(args.build)
    if len(builds) < 2:
        parser.error("give at least two builds")
    args.dir.mkdir(parents=True, exist_ok=True)
    wanted = {"." + f.strip() for f in args.formats.split(",")}
    files = registries(next(iter(builds.values())), args.rows, args.dir, args.dup_share, wanted)
    got: dict[tuple[str, str], list[dict]] = {}
    loads = []
    labels = list(builds)
    with tempfile.TemporaryDirectory(prefix="ecorules-versions-", dir=args.dir) as scratch:
        envs = {label: child_env(label, Path(scratch)) for label in labels}
        for label in labels:  # the byte-code written, the files in the page cache: not counted
            if args.part == "run":
                run(builds[label], files[0], Path(scratch) / f"{label}-warm.sqlite", envs[label])
        for round_ in range(args.rounds):
            order = labels[round_ % len(labels):] + labels[: round_ % len(labels)]
            for registry in files:
                for label in order:
                    if args.part == "check":
                        done = check(builds[label], registry, args.repeats, envs[label])
                    else:
                        done = run(builds[label], registry, Path(scratch) / f"{label}-{round_}-{registry.name}.sqlite",
                                   envs[label])
                    got.setdefault((registry.name, label), []).append(done)
                    log.info("round %d %s %s: run %.3f s, %.3f CPU-s, %.0f MiB%s", round_ + 1, registry.name, label,
                             done["run"], done["cpu"], done["rss_mib"],
                             f", {done['batches']} batches scored" if "batches" in done else "")
            loads.append(os.getloadavg()[0])
    log.info("medians of %d round(s); 1-min load %.1f-%.1f on %d cores; run: the run's own time (its JSON "
             "'seconds'), CPU: the child's CPU seconds after the CLI's import", args.rounds, min(loads), max(loads), os.cpu_count())
    for registry in files:
        medians = {}
        for label in labels:
            runs = got[registry.name, label]
            if {(r["rejected"], r["total"]) for r in runs} != {(r["rejected"], r["total"]) for r in got[registry.name, labels[0]]}:
                raise SystemExit(f"{registry.name}: {label} and {labels[0]} differ in rejects or total")
            medians[label] = {k: statistics.median(r[k] for r in runs) for k in ("run", "cpu", "rss_mib")}
            spread = f"{min(r['run'] for r in runs):.3f}-{max(r['run'] for r in runs):.3f}"
            ratios = ", ".join(f"/{other} run {medians[label]['run'] / medians[other]['run']:.3f} "
                               f"CPU {medians[label]['cpu'] / medians[other]['cpu']:.3f}" for other in medians if other != label)
            log.info("  %-28s %-6s run %6.3f s (%s)  %6.2f CPU-s  %5.0f MiB  %s  (%s rejected)", registry.name, label,
                     medians[label]["run"], spread, medians[label]["cpu"], medians[label]["rss_mib"], ratios,
                     f"{runs[0]['rejected']:,}")


if __name__ == "__main__":
    main()
