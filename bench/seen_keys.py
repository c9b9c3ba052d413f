"""The duplicate check's cost: `ecorules run` of this tree against a baseline tree, interleaved.

    python bench/seen_keys.py --baseline /tmp/main-copy REGISTRY [REGISTRY ...]

``--baseline`` is a directory holding ``ecorules/{engine,fastcalc,policies,rules}`` of another
checkout (its kernel built): put first on the children's PYTHONPATH, it is imported instead of
this tree (an editable install's finder comes after sys.path). Each round runs both on every
registry given, in turn, into fresh SQLite files; printed per registry and tree: the run's
wall time, its CPU seconds (user + system of the child, from wait4: less sensitive to other
work on a shared machine than the wall), records per CPU-second and peak RSS (ru_maxrss), and
this tree's ratio to the baseline. Registries with repeated USCCs (bench/_bad_rows.py's bad
copies) show the cost of the rows held to the end; clean ones the filter's and the spill's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AS_OF = "2012-04-14"


def run(registry: Path, out: Path, baseline: Path | None) -> dict:
    env = dict(os.environ)
    if baseline is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(baseline), *filter(None, [env.get("PYTHONPATH")])])
    command = [sys.executable, "-m", "ecorules.engine", "run", "--registry", str(registry), "--out", str(out),
               "--as-of", AS_OF, "--format", "json", "--no-progress"]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    stdout = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"ecorules run failed ({code}) on {registry}")
    summary = json.loads(stdout)
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024,
            "rows": summary["rows_in"], "rejected": summary["rows_rejected"], "total": summary["total_yuan"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("registries", type=Path, nargs="+")
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    trees = {"baseline": args.baseline, "this tree": None}
    got: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="ecorules-bench-") as folder:
        for round_ in range(args.rounds):
            for registry in args.registries:
                for label, tree in (trees.items() if round_ % 2 == 0 else reversed(trees.items())):
                    done = run(registry, Path(folder) / f"{label}-{round_}.sqlite".replace(" ", "-"), tree)
                    got.setdefault((registry.name, label), []).append(done)
                    print(f"  round {round_ + 1} {registry.name} {label}: {done['wall']:.2f} s, {done['cpu']:.2f} CPU-s, "
                          f"{done['rss_mib']:,.0f} MiB", flush=True)
    print(f"load {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} cores; medians of {args.rounds} round(s)")
    for registry in args.registries:
        medians = {}
        for label in trees:
            runs = got[registry.name, label]
            medians[label] = {key: statistics.median(r[key] for r in runs) for key in ("wall", "cpu", "rss_mib")}
            rows = runs[0]["rows"]
            print(f"  {registry.name:36s} {label:9s} {medians[label]['wall']:7.2f} s {medians[label]['cpu']:7.2f} CPU-s "
                  f"{rows / medians[label]['cpu']:10,.0f} records/CPU-s {medians[label]['rss_mib']:6,.0f} MiB "
                  f"({runs[0]['rejected']:,} rejected, {runs[0]['total']:,} yuan)")
            if {r["total"] for r in got[registry.name, "baseline"]} != {r["total"] for r in runs}:
                raise SystemExit(f"{registry.name}: the trees' totals differ")
        this, base = medians["this tree"], medians["baseline"]
        print(f"  {'':36s} this / baseline: wall {this['wall'] / base['wall']:.2f}, CPU {this['cpu'] / base['cpu']:.2f}, "
              f"peak RSS {this['rss_mib'] / base['rss_mib']:.2f}")


if __name__ == "__main__":
    main()
