"""One Evaluator shared by threads, against the same Evaluator used by one thread, in one run.

    python bench/threads.py                      # both backends, 1 and 8 threads, 3 rounds
    python bench/threads.py --threads 16 --records 20000

A host system (a web service, a message consumer) shares one Evaluator between its worker
threads (README: "One evaluator may be shared by many threads"). The target (issue 11,
point 17): shared by 8 threads it keeps at least its one-thread records/s. Rounds are
interleaved so that the machine's noise hits every variant alike; prints medians and the
ratio of N threads to 1 per backend.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import threading
import time

from ecorules.engine import Evaluator, load_policies

RECORD = {"uscc": "91410100123456788Y", "name": "郑州示例化工有限公司", "district": "二七区", "industrial": True,
          "untreated_outfalls": 3, "direct_discharge_cases": 1, "illegal_discharge_cases": 0,
          "high_pollution": False, "high_energy": True}
DAY = dt.date(2012, 4, 14)


def records_per_second(evaluator: Evaluator, threads: int, records: int) -> float:
    each = records // threads
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(each):
                evaluator.evaluate(RECORD, as_of=DAY)
        except BaseException as error:  # noqa: BLE001 - reported below, never lost
            errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - began
    if errors:
        raise errors[0]
    return each * threads / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--records", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    policies = load_policies()
    print(f"ecorules threads benchmark, {dt.datetime.now():%Y-%m-%d %H:%M}, {args.records:,} records per measurement")
    for backend in ("durable", "python"):
        with Evaluator(policies, backend=backend) as evaluator:
            records_per_second(evaluator, 1, 500)  # warm-up: first calls build caches
            alone, shared = [], []
            for _ in range(args.rounds):
                alone.append(records_per_second(evaluator, 1, args.records))
                shared.append(records_per_second(evaluator, args.threads, args.records))
        ratios = [s / a for s, a in zip(shared, alone, strict=True)]
        print(f"{backend:8} 1 thread {statistics.median(alone):8,.0f}/s   {args.threads} threads "
              f"{statistics.median(shared):8,.0f}/s   ratio {statistics.median(ratios):.2f} "
              f"({min(ratios):.2f}-{max(ratios):.2f}; target >= 1.00)", flush=True)


if __name__ == "__main__":
    main()
