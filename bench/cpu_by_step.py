"""Where a run's CPU goes, by step and thread, in CPU-seconds rather than sampled wall time.

    python bench/cpu_by_step.py REGISTRY [REGISTRY ...] [--step module:function ...]

Runs ``ecorules run`` on each registry in a process of its own, with the given functions
(default: the steps a registry with bad rows may make dearer, issue 11 point 15) wrapped to
add up the CPU time of the thread calling them (``time.thread_time``), and prints per file
the process's CPU and each step's CPU-seconds and calls per thread, then, with two files, the
difference (second minus first: e.g. the bad twin minus the clean one of bench/nightly.py).

py-spy samples wall time: on a machine at load 10-20 a thread waiting for a core is sampled
as if it ran, and two profiles of one run disagree by more than the difference looked for;
callgrind counts instructions repeatably but runs 50-100x slower. A thread's CPU time is
what the thread itself used; load still moves it (caches and memory shared with other jobs:
two runs of the same file at load 15 differed by up to ~0.05 CPU-s a step at 1 M rows), so
run twice and trust only what both runs show. Nested steps count in each (a step's CPU
includes that of the steps it calls); a step called by name from another module must be
named where it is looked up (``ecorules.engine._nightly:score_batch``, not ``_scored``).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import importlib
import io
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

STEPS = (
    "ecorules.engine.sources._csv_slices:_parse",  # a slice parsed (in the slice pool)
    "ecorules.engine._sources:_Gathered._batch",  # slices gathered into batches, malformed lines as rejects
    "ecorules.engine._sources:typed_columns",  # count and boolean columns cast by Arrow
    "ecorules.engine._sources:_drop_undecodable",  # cells that are not UTF-8
    "ecorules.engine._duplicates:DuplicateFilter.apply",  # one enterprise, one row (reading thread)
    "ecorules.engine._seen_keys:SeenUsccs.met",
    "ecorules.engine._duplicates:canonical_keys",
    "ecorules.engine._nightly:score_batch",  # validation and the kernel (scoring thread)
    "ecorules.engine._scored:kernel_rejects",
    "ecorules.engine._nightly:NightlyRun._record",  # results handed to the writer
    "ecorules.engine.store.sqlite:RunWriter._do",  # the writer's inserts (rejects among them)
    "ecorules.engine._nightly:update_entries",  # the list work at the end
)


def _child(registry: str, out: str, steps: list[str], as_of: str, threads: int) -> None:
    cpu: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()
    for step in steps:
        module_name, attribute = step.split(":")
        owner = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        function = getattr(owner, name)

        def wrapped(*args, _function=function, _step=step, **kwargs):
            began = time.thread_time()
            try:
                return _function(*args, **kwargs)
            finally:
                key = f"{_step.split(':')[1]} [{threading.current_thread().name}]"
                cpu[key] += time.thread_time() - began
                calls[key] += 1

        setattr(owner, name, functools.wraps(function)(wrapped))
    from ecorules.engine._cli import main

    sys.argv = ["ecorules", "run", "--registry", registry, "--out", out, "--as-of", as_of, "--threads", str(threads),
                "--format", "json", "--no-progress"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"process": usage.ru_utime + usage.ru_stime,
                      "steps": {key: [cpu[key], calls[key]] for key in cpu}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("registry", nargs="+", type=Path)
    parser.add_argument("--step", action="append", default=[], help="module:function to time (repeatable; "
                        "default: the steps of issue 11 point 15)")
    parser.add_argument("--as-of", default="2012-04-14")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    steps = args.step or list(STEPS)
    if args.child:
        _child(args.child[0], args.child[1], steps, args.as_of, args.threads)
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="ecorules-cpu-") as folder:
        for number, registry in enumerate(args.registry):
            command = [sys.executable, __file__, str(registry), "--as-of", args.as_of, "--threads", str(args.threads),
                       "--child", str(registry), str(Path(folder) / f"run-{number}.sqlite"),
                       *[f"--step={step}" for step in steps]]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                raise SystemExit(done.stderr[-3000:])
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            result = results[-1]
            print(f"{registry.name}: process {result['process']:.2f} CPU-s")
            for key, (seconds, count) in sorted(result["steps"].items(), key=lambda item: -item[1][0]):
                print(f"  {seconds:8.3f} s {count:6d} calls  {key}")
    if len(results) == 2:
        first, second = (result["steps"] for result in results)
        print(f"\n{args.registry[1].name} - {args.registry[0].name}: process "
              f"{results[1]['process'] - results[0]['process']:+.2f} CPU-s")
        keys = sorted(set(first) | set(second), key=lambda k: -(second.get(k, [0])[0] - first.get(k, [0])[0]))
        for key in keys:
            print(f"  {second.get(key, [0])[0] - first.get(key, [0])[0]:+8.3f} s  {key}")


if __name__ == "__main__":
    main()
