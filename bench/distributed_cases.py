"""Records/s of `ecorules run --cases` on Spark (the cases judged on the executors) beside the
same run on one machine, in one process, round after round (interleaved).

    python bench/distributed_cases.py --cases 200000 --enterprises 20000 --rounds 2

The data are bench/cases.py's (a registry of --enterprises rows, a Parquet case table of
--cases rows for the policies of tests/data/cases), written once into --dir. The Spark
session (local[--threads]) is started before the first round and not timed; each Spark run
includes its jobs: the case_id window, the registry's pick, the shuffle by enterprise, the
judging tasks and the driver's writing of the store, then the registry's scoring. The load
of the machine (uptime) is printed beside each figure: the ratio is what this bench claims.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import AS_OF, POLICIES, prepare  # noqa: E402 - bench/cases.py's data


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} {five:.1f} {fifteen:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--enterprises", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "ecorules-bench-dist-cases")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    from ecorules.engine._nightly import run_nightly
    from ecorules.engine.distributed._run import run_distributed
    from ecorules.engine.distributed.spark import local_session

    paths = prepare(args.dir, args.enterprises, args.cases)
    began = time.perf_counter()
    spark = local_session(f"local[{args.threads}]", local_dir=str(args.dir / "spark"))
    spark.sparkContext.setLogLevel("ERROR")
    print(f"spark {spark.version} up in {time.perf_counter() - began:.1f} s ({_load()})", flush=True)
    rates: dict[str, list[float]] = {"one process": [], "spark": []}
    totals = {}
    try:
        for round_ in range(args.rounds):
            for variant in rates:
                out = args.dir / f"{variant.replace(' ', '-')}-{round_}.sqlite"
                out.unlink(missing_ok=True)
                options = {"engine": "spark", "master": f"local[{args.threads}]"} if variant == "spark" else {}
                run = run_distributed if variant == "spark" else run_nightly
                summary = run(paths["enterprises"], out, policies=POLICIES, as_of=AS_OF, threads=args.threads,
                              cases=paths["cases"], force=True, **options)
                rate = summary.rows_in / summary.seconds
                rates[variant].append(rate)
                totals.setdefault(variant, (summary.total_yuan, summary.findings, summary.rows_rejected))
                print(f"round {round_} {variant:>11}: {summary.rows_in:,} rows in {summary.seconds:.2f} s = "
                      f"{rate:,.0f} records/s ({summary.findings:,} findings; {_load()})", flush=True)
                out.unlink(missing_ok=True)
    finally:
        spark.stop()
    if totals["spark"] != totals["one process"]:
        print(f"results differ: {totals}")
        return 1
    ratios = [s / o for s, o in zip(rates["spark"], rates["one process"], strict=True)]
    print(f"spark / one process: {statistics.median(rates['spark']) / statistics.median(rates['one process']):.2f} "
          f"of the medians, {min(ratios):.2f}-{max(ratios):.2f} round by round ({_load()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
