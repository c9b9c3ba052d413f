"""Coverage-guided fuzzing of the policy loader, the expression parser and the registry readers.

    python tests/fuzz/fuzz.py policy --seconds 120          # one target, two minutes
    python tests/fuzz/fuzz.py all --seconds 20              # every target (what CI runs)
    tox -e fuzz                                             # every target, longer

Starts from the seeds of _targets.py (the shipped policies, the broken ones of the tests,
the example registries) in a fresh corpus folder, and runs atheris (libFuzzer) with our
modules instrumented. A crash is an exception outside EcorulesError: libFuzzer writes the
input to tests/fuzz/crashes/<target>-crash-<sha1>; copy it into regressions/<target>/ once
the bug is mended, and the replay test keeps it fixed. Exit code: 0 no crash, else non-zero.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_NAMES = ("policy", "expression", "registry_csv", "registry_parquet", "postgres_url")


def write_seeds(target: str, corpus: Path) -> int:
    sys.path.insert(0, str(HERE))
    from _targets import ROOT, SEEDS

    paths = list(SEEDS[target]) + sorted((HERE / "regressions" / target).glob("*"))
    count = 0
    for path in paths:
        (corpus / f"seed-{count}").write_bytes(path.read_bytes())
        count += 1
    if target == "expression":
        for policy in sorted((ROOT / "policies").rglob("*.yaml")):
            for match in re.finditer(r"^\s*(?:when|amount|until|from|where): (.+)$", policy.read_text(encoding="utf-8"), re.M):
                (corpus / f"seed-{count}").write_bytes(match.group(1).encode("utf-8"))
                count += 1
    if target == "registry_parquet":
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        for path in SEEDS["registry_csv"]:
            if path.name == "registry.csv":
                pq.write_table(pacsv.read_csv(path), corpus / f"seed-{count}")
                count += 1
    return count


def fuzz_one(target: str, seconds: int, crashes: Path) -> int:
    """Run one target in a process of its own (libFuzzer exits the process when done)."""
    crashes.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"ecorules-corpus-{target}-") as corpus, \
            tempfile.TemporaryDirectory(prefix=f"ecorules-fuzz-{target}-") as scratch:
        seeds = write_seeds(target, Path(corpus))
        print(f"{target}: {seeds} seeds, {seconds} s", flush=True)
        return subprocess.call([sys.executable, str(Path(__file__)), "--child", target, corpus,
                                f"-max_total_time={seconds}", f"-artifact_prefix={crashes}/{target}-",
                                "-rss_limit_mb=4096", "-timeout=30", "-print_final_stats=1"],
                               env={**os.environ, "ECORULES_FUZZ_SCRATCH": scratch})


def child(target: str, libfuzzer_args: list[str]) -> None:
    import atheris

    sys.path.insert(0, str(HERE))
    with atheris.instrument_imports(include=["ecorules"]):
        import _targets
    function = _targets.TARGETS[target]
    atheris.Setup([sys.argv[0], *libfuzzer_args], function)
    atheris.Fuzz()


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", choices=(*TARGET_NAMES, "all"))
    parser.add_argument("--seconds", type=int, default=60, help="per target")
    parser.add_argument("--crashes", type=Path, default=HERE / "crashes",
                        help="where libFuzzer writes crashing (and slow) inputs (default: %(default)s)")
    args = parser.parse_args()
    targets = TARGET_NAMES if args.target == "all" else (args.target,)
    failed = [t for t in targets if fuzz_one(t, args.seconds, args.crashes) != 0]
    if failed:
        print(f"crashes in: {', '.join(failed)} (inputs in {args.crashes})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
