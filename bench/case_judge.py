"""What judging the enterprises with their cases' roll-ups costs a case run (issue 9), beside
a baseline tree that does not judge them, each run a process of its own, rounds alternating.

    python bench/case_judge.py --baseline /tmp/NAME-mainpkg --cases 2000000 --enterprises 200000 \
        --rounds 2 --dir /tmp/NAME-data

The data are bench/cases.py's (made by it, or here, into the same --dir). The policies are
tests/data/cases with the shipped holiday table and an enterprise policy whose rule counts a
working day (within the table: it rejects nobody), so that the case stage scores every
enterprise with cases once more with the registry's program (CasePlan.parent_program), as it
must where such a day could fall outside the table. ``--baseline``: a directory holding an
``ecorules`` package (a symlink to another worktree, its extensions built), put first on the
baseline runs' PYTHONPATH; the other runs use the installed tree. Prints records/s and records
per CPU-second of each run, the ratios round by round and the load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULE = """policy:
  id: bench.calendar
  title: 工作日
  authority: 测试
  document: 测试
  version: "1"
  effective: 2000-01-01
lists:
  watch: {title: 关注}
rules:
  - id: workday
    title: 工作日
    citation: {document: 测试法, text: 测试}
    when: "fined_cases >= 2 and working_day_on_or_after(as_of) > as_of"
    sanctions: [{list: watch, reason: 测试}]
"""


def policies(folder: Path) -> Path:
    out = folder / "judge-policies"
    out.mkdir(exist_ok=True)
    for path in (ROOT / "tests" / "data" / "cases").glob("*.yaml"):
        shutil.copy(path, out / path.name)
    shutil.copy(ROOT / "policies" / "zhengzhou" / "holidays.yaml", out / "holidays.yaml")
    (out / "calendar.yaml").write_text(RULE, encoding="utf-8")
    return out


def child(args) -> int:
    import datetime as dt
    import resource

    sys.path.insert(0, str(ROOT / "bench"))
    from cases import prepare  # bench/cases.py's data
    from ecorules.engine._nightly import NightlyRun

    paths = prepare(args.dir, args.enterprises, args.cases)
    out = args.dir / f"judge-{os.getpid()}.sqlite"
    run = NightlyRun(paths["enterprises"], out, policies=policies(args.dir), as_of=dt.date(2026, 1, 1),
                     threads=args.threads, cases=paths["cases"], force=True, tune_allocator=True)

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    began_cpu, began = cpu(), time.perf_counter()
    summary = run.execute()
    seconds, cpu_seconds = time.perf_counter() - began, cpu() - began_cpu
    out.unlink(missing_ok=True)
    import ecorules.engine

    tree = Path(ecorules.engine.__file__).resolve().parent.parent
    print(json.dumps({"rows_in": summary.rows_in, "seconds": seconds, "cpu": cpu_seconds,
                      "findings": summary.findings, "tree": str(tree)}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--cases", type=int, default=2_000_000)
    parser.add_argument("--enterprises", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "ecorules-bench-cases")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.child:
        return child(args)
    found: dict[str, list[dict]] = {"baseline": [], "this tree": []}
    for round_ in range(args.rounds):
        order = ["baseline", "this tree"] if round_ % 2 == 0 else ["this tree", "baseline"]
        for variant in order:
            env = dict(os.environ)
            if variant == "baseline":
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(args.baseline), env.get("PYTHONPATH")]))
            load = os.getloadavg()[0]
            done = subprocess.run([sys.executable, __file__, "--child", "--baseline", str(args.baseline),
                                   "--cases", str(args.cases), "--enterprises", str(args.enterprises),
                                   "--threads", str(args.threads), "--dir", str(args.dir)],
                                  capture_output=True, text=True, env=env)
            if done.returncode:
                raise SystemExit(f"{variant} failed:\n{done.stderr[-3000:]}")
            run = {**json.loads(done.stdout.strip().splitlines()[-1]), "load": load}
            found[variant].append(run)
            print(f"round {round_} {variant:>9} ({run['tree']}): {run['rows_in']:,} rows in {run['seconds']:.2f} s = "
                  f"{run['rows_in'] / run['seconds'] / 1e6:.2f} M records/s, {run['cpu']:.2f} CPU-s "
                  f"({run['rows_in'] / run['cpu'] / 1e6:.2f} M/CPU-s), load {load:.1f}, {run['findings']:,} findings",
                  flush=True)
    for what, key in (("wall-clock", "seconds"), ("CPU", "cpu")):
        ratios = [b[key] / t[key] for b, t in zip(found["baseline"], found["this tree"], strict=True)]
        print(f"this tree / baseline records per {what} second: {statistics.median(ratios):.3f} "
              f"({min(ratios):.3f}-{max(ratios):.3f} round by round)")
    loads = [r["load"] for runs in found.values() for r in runs]
    print(f"load average (1 min) at the runs' starts: {min(loads):.1f}-{max(loads):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
