"""How long ``ecorules diff`` takes against one scoring pass of the same registry.

    python bench/diff.py [--rows 1000000] [--rounds 5] [--seed 2012]

Target (issue 5): on a 1,000,000-row registry the diff takes no more than 3x a single
scoring pass. The registry is ``generate_registry(rows, seed)``, written once as Parquet; the
proposal is the shipped policies with the outfall deduction raised from 1,000,000 to 1,500,000
yuan from 2013-01-01, judged as of 2014-01-01 (a few percent of the rows change), and, as a
harder case, a draft that also blacklists every high-pollution enterprise (more rows change).

Measured in one run, interleaved round by round, medians and spread:
- ``score``: one scoring pass: read the Parquet file batch by batch (the diff's reader),
  score each batch with the base program, sum the totals per district;
- ``diff``: the whole comparison as ``ecorules diff`` does it (read once, score with both
  programs, compare, keep the changed rows, explain the shown ones), without rendering;
- the same two on the table already in memory (no reading), the stricter ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from ecorules.engine._generate import generate_registry
from ecorules.engine.diff._impact import compute_impact
from ecorules.engine.diff._source import registry_batches
from ecorules.fastcalc import compile_program
from ecorules.rules import load_policies, shipped_policies_path

AS_OF = dt.date(2014, 1, 1)
MARKER = '        reference: 《郑州市生态水系截污工作奖惩措施》(2011):"每个排污口扣款100万元"\n'
RAISE = MARKER + "      - from: 2013-01-01\n        value: 1500000\n        reference: 草案\n"


def make_drafts(root: Path) -> tuple[Path, Path]:
    """Two proposals: the raise alone; the raise and a wider blacklist."""
    raised = root / "raised"
    shutil.copytree(shipped_policies_path(), raised)
    water = raised / "zhengzhou" / "eco_water_interception.yaml"
    water.write_text(water.read_text(encoding="utf-8").replace(MARKER, RAISE), encoding="utf-8")
    wider = root / "wider"
    shutil.copytree(raised, wider)
    credit = wider / "zhengzhou" / "green_credit.yaml"
    text = credit.read_text(encoding="utf-8")
    credit.write_text(text.replace("when: illegal_discharge_cases > 0 or direct_discharge_cases > 0",
                                   "when: illegal_discharge_cases > 0 or direct_discharge_cases > 0 or high_pollution"),
                      encoding="utf-8")
    return raised, wider


def single_pass(program, batches) -> dict[str, int]:
    """What one scoring pass costs: every batch scored once, totals per district summed."""
    totals: dict[str, int] = {}
    out = None
    for batch in batches:
        out = program.score(batch, as_of=AS_OF) if out is None else program.score(batch, as_of=AS_OF, out=out)
        for payer, yuan in out.totals_by_payer().items():
            totals[payer] = totals.get(payer, 0) + yuan
    return totals


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2012)
    args = parser.parse_args()

    base = load_policies()
    work = Path(tempfile.mkdtemp(prefix="ecorules-bench-diff-"))
    try:
        raised_path, wider_path = make_drafts(work)
        drafts = {"raise": load_policies(raised_path), "raise+blacklist": load_policies(wider_path)}
        started = time.perf_counter()
        table = generate_registry(args.rows, args.seed)
        parquet = work / "registry.parquet"
        pq.write_table(table, parquet)
        print(f"registry: {args.rows:,} rows (seed {args.seed}) generated and written in {time.perf_counter() - started:.1f} s")
        facts = base.facts
        needed = base.for_domain("enterprise").required_facts()
        program = compile_program(base, domain="enterprise")
        in_memory = table.to_batches(max_chunksize=1 << 18)

        variants = {
            "score (file)": lambda: single_pass(program, registry_batches(parquet, facts, needed)),
            "score (memory)": lambda: single_pass(program, in_memory),
        }
        for name, draft in drafts.items():
            variants[f"diff {name} (file)"] = lambda d=draft: compute_impact(base, d, registry_batches(parquet, facts, needed), AS_OF, limit=10_000)
            variants[f"diff {name} (memory)"] = lambda d=draft: compute_impact(base, d, in_memory, AS_OF, limit=10_000)
        times: dict[str, list[float]] = {name: [] for name in variants}
        results = {}
        for _ in range(args.rounds + 1):  # the first round warms caches and is not counted
            for name, function in variants.items():
                seconds, results[name] = timed(function)
                times[name].append(seconds)
        for name in times:
            times[name] = times[name][1:]

        print(f"machine: {platform.machine()}, {platform.processor() or platform.platform()}, Python {platform.python_version()}; "
              f"{dt.date.today()}; medians of {args.rounds} interleaved rounds")
        for name, values in times.items():
            median = statistics.median(values)
            line = f"  {name:32s} {median:7.3f} s  (spread {min(values):.3f}-{max(values):.3f})  {args.rows / median / 1e6:6.2f} M rows/s"
            if name.startswith("diff"):
                reference = statistics.median(times["score (file)" if name.endswith("(file)") else "score (memory)"])
                impact = results[name]
                line += f"  = {median / reference:.2f}x one pass; {impact.changed_count:,} rows changed"
            print(line)
        for where in ("file", "memory"):
            worst = max(
                statistics.median(times[name]) / statistics.median(times[f"score ({where})"])
                for name in times if name.startswith("diff") and name.endswith(f"({where})")
            )
            what = "the command's case" if where == "file" else "two kernel passes are 2x already"
            print(f"worst ratio from {where}: {worst:.2f}x one pass (target <= 3x; {what})")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
