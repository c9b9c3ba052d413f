"""Child process of the kill test: one forced nightly run, announcing when it starts working.

    python nightly_kill_child.py REGISTRY DB BATCH_ROWS

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
    compile_program = scorer()
    print("ready", flush=True)
    summary = run_nightly(registry, db, as_of=dt.date(2012, 4, 14), batch_rows=batch_rows, force=True,
                          progress=False, compile_program=compile_program, threads=1)
    print("done", summary.run_id, flush=True)


if __name__ == "__main__":
    main()
