"""Child process of the kill test: one forced nightly run, announcing when it starts working.

    python nightly_kill_child.py REGISTRY DB BATCH_ROWS [AS_OF CASES POLICIES]

Prints ``ready`` once imports are done (the parent's clock starts there) and ``done RUN_ID``
at the end. Scores with the kernel, or its stand-in when the kernel is not built.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ecorules.engine._nightly import run_nightly  # noqa: E402
from nightly_standin import scorer  # noqa: E402


def main() -> None:
    registry, db, batch_rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    as_of = dt.date.fromisoformat(sys.argv[4]) if len(sys.argv) > 4 else dt.date(2012, 4, 14)
    with_cases = {"cases": sys.argv[5], "policies": sys.argv[6]} if len(sys.argv) > 6 else {}
    compile_program = scorer()
    print("ready", flush=True)
    summary = run_nightly(registry, db, as_of=as_of, batch_rows=batch_rows, force=True,
                          progress=False, compile_program=compile_program, threads=1, **with_cases)
    print("done", summary.run_id, flush=True)


if __name__ == "__main__":
    main()
