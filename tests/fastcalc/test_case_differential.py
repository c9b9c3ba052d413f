"""The case table's batch path against the single-case engine, on random folders of kinds.

``fastcalc_case_strategies`` draws a folder of two kinds (enterprise, case) with roll-ups
between them, the case kind's checks, acts of several rows (行政处罚法 art 29), dated versions
and the law date (art 37), and tables of both kinds. ``ecorules run --cases`` (the kernel,
engine/cases/) must give, case by case and enterprise by enterprise, the findings (amount,
payer, imposed or superseded and by what), the list entries and the rejects (row, column,
value, reason) that ``Evaluator.evaluate_group`` gives with the Python reference and with
durable-rules, a case failing a check counting in no roll-up.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import sqlite3
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from ecorules.engine import Evaluator
from ecorules.engine._generate import generate_registry
from ecorules.engine._nightly import run_nightly
from ecorules.rules import EcorulesError, PolicyError, RecordCheckError
from fastcalc_case_strategies import AS_OF, KIND_CONSTRUCTS, case_folder, case_tables
from hypothesis import HealthCheck, Phase, event, given, reject, settings
from hypothesis import strategies as st

STRESS = max(1, int(os.environ.get("ECORULES_STRESS", "1")))
USCCS = generate_registry(4, 11)["uscc"].to_pylist()
EXAMPLES = int(os.environ.get("ECORULES_CASE_EXAMPLES", "25"))
# ECORULES_FASTCALC_NO_SHRINK=1 reports the first failing example as found (faster to debug)
PHASES = [Phase.explicit, Phase.reuse, Phase.generate] if os.environ.get("ECORULES_FASTCALC_NO_SHRINK") else list(Phase)
COMPARED: Counter = Counter()


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _given(row: dict) -> dict:
    return {k: v for k, v in row.items() if v != ""}


def _expected(policies, backend: str, registry: list[dict], cases: list[dict], as_of) -> tuple[Counter, Counter, set]:
    """Findings, list entries and case rejects by evaluate_group, enterprise by enterprise:
    a case failing a check is rejected and judged again without it, as the batch does."""
    findings, lists, rejects = Counter(), Counter(), set()
    with Evaluator(policies, backend=backend) as evaluator:
        for enterprise in registry:
            children = [_given(c) for c in cases if c["uscc"] == enterprise["uscc"]]
            while True:
                try:
                    group = evaluator.evaluate_group(_given(enterprise), children, as_of=as_of)
                    break
                except RecordCheckError as error:
                    rejects.update((error.subject, f.column, f.value, f.reason) for f in error.failures)
                    children = [c for c in children if c["case_id"] != error.subject]
            for f in group.findings:
                findings[(enterprise["uscc"], f.record, f.policy, f.rule, f.amount_yuan, str(f.payer), f.status,
                          f.superseded_by)] += 1
            for s in group.merged().sanctions:
                lists[(s.uscc, s.list, s.rule, s.start, s.end)] += 1
    return findings, lists, rejects


def _day(text):
    return None if text is None else dt.date.fromisoformat(text)


def _batch(db_path: Path, cases: list[dict], as_of) -> tuple[Counter, Counter, set]:
    db = sqlite3.connect(db_path)
    db.row_factory = sqlite3.Row
    findings = Counter((r["uscc"], r["case_id"], r["policy"], r["rule"], int(r["amount_yuan"]), r["payer"], r["status"],
                        r["superseded_by"]) for r in db.execute("SELECT * FROM findings"))
    # a list entry's start: null is the default, the run's as_of
    lists = Counter((r["uscc"], r["list"], r["rule"], _day(r["start"]) or as_of, _day(r["planned_end"]))
                    for r in db.execute("SELECT * FROM sanctions"))
    rejects = {(cases[r["row"] - 2]["case_id"], r["column"], r["value"] or "", r["reason"])
               for r in db.execute("SELECT * FROM rejects WHERE source LIKE '%cases.csv'")}
    return findings, lists, rejects


@settings(max_examples=EXAMPLES * STRESS, deadline=None, derandomize=STRESS == 1, database=None, phases=PHASES,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(data=st.data())
def test_the_case_batch_equals_evaluate_group_with_both_backends(data):
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "policies").mkdir()
        try:
            drawn = data.draw(case_folder(folder / "policies"))
        except PolicyError as error:
            event(f"loader refused: {type(error).__name__}: {error.message[:40]}")
            reject()
        registry, cases = data.draw(case_tables(USCCS))
        as_of = data.draw(st.sampled_from(AS_OF))
        _write(folder / "enterprises.csv", registry)
        _write(folder / "cases.csv", cases)
        try:
            run_nightly(folder / "enterprises.csv", folder / "results.sqlite", policies=drawn.policies, as_of=as_of,
                        cases=folder / "cases.csv", threads=1)
        except EcorulesError as error:  # a plan the batch refuses (a windowed max): must be rare
            event(f"batch refused: {type(error).__name__}: {str(error)[:60]}")
            reject()
        got = _batch(folder / "results.sqlite", cases, as_of)
        for backend in ("python", "durable"):
            want = _expected(drawn.policies, backend, registry, cases, as_of)
            for what, mine, theirs in zip(("findings", "list entries", "case rejects"), got, want, strict=True):
                if mine != theirs:  # the example's files, to read and run again
                    kept = Path(tempfile.mkdtemp(prefix="ecorules-case-differential-"))
                    shutil.copytree(folder, kept, dirs_exist_ok=True)
                    raise AssertionError(f"{backend}: {what} differ (as_of {as_of}, files in {kept}): batch only "
                                         f"{_diff(mine, theirs)}; {backend} only {_diff(theirs, mine)}")
        COMPARED["examples"] += 1
        COMPARED["cases"] += len(cases)
        COMPARED["rejected cases"] += len({key[0] for key in got[2]})
        COMPARED["superseded findings"] += sum(n for key, n in got[0].items() if key[6] == "superseded")
        COMPARED["findings"] += sum(got[0].values())
        for construct in drawn.constructs:
            COMPARED[construct] += 1
            event(f"drawn: {construct}")


def _diff(a, b) -> list:
    a, b = Counter(a), Counter(b)
    return sorted((a - b).elements(), key=str)[:3]


def test_the_case_differential_compared_what_it_draws():
    """Runs after the differential (file order): cases were compared, some rejected by a
    check, some fines superseded within an act, and every construct drawn in some example."""
    if COMPARED["examples"] == 0:
        pytest.skip("the case differential did not run in this session")
    assert COMPARED["examples"] >= EXAMPLES * STRESS // 2, COMPARED
    assert COMPARED["rejected cases"] >= 5 and COMPARED["superseded findings"] >= 3, COMPARED
    print(f"case differential: {dict(COMPARED)}")
    missing = [c for c in KIND_CONSTRUCTS if COMPARED[c] == 0]
    assert not missing, f"never drawn: {missing}; {COMPARED}"


SAMPLED: Counter = Counter()
SAMPLES = 200


@settings(max_examples=SAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(data=st.data())
def test_the_random_folders_draw_every_kind_construct(data):
    """Folders only (no tables): enough of them to count how often each construct is drawn."""
    with tempfile.TemporaryDirectory() as name:
        try:
            drawn = data.draw(case_folder(Path(name)))
        except PolicyError:
            reject()
    SAMPLED["folders"] += 1
    SAMPLED.update(drawn.constructs)


def test_every_kind_construct_is_drawn_often_enough():
    """Runs after the sampling test (file order): each construct in at least 5% of the folders."""
    if SAMPLED["folders"] == 0:
        pytest.skip("the sampling test did not run in this session")
    assert SAMPLED["folders"] >= SAMPLES // 2, SAMPLED
    low = {c: SAMPLED[c] for c in KIND_CONSTRUCTS if SAMPLED[c] < SAMPLED["folders"] * 5 // 100}
    assert not low, f"drawn too rarely: {low}; all: {SAMPLED}"
