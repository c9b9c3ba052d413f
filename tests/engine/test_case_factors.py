"""What placed each case finding is kept in the results store (issue 9 point 7; store version
13, engine/cases/_factors.py): the roll-ups its rule reads and the whole-number named values
its trace computed (the discretion's levels), exactly as ``explain``'s trace shows them for
the same case, by the law that judged it (行政处罚法 art 37, the 2008 version beside 2017's),
and only on the way the trace took (a decided fine shows no levels). ``ecorules export``
writes them; a store of version 12 is migrated."""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from ecorules.engine import Evaluator, load_policies
from ecorules.engine._cli import main
from ecorules.engine._nightly import run_nightly
from ecorules.engine.cases._plan import make_plan
from ecorules.engine.store import SCHEMA_VERSION, connect
from ecorules.fastcalc import compile_program
from ecorules.rules import Kind
from ecorules.rules._steps import NamedValue

AS_OF = dt.date(2025, 6, 30)
A, B = "91410100MA5AH1DH20", "91410103799033152T"
REGISTRY = [
    {"uscc": A, "name": "甲", "district": "管城回族区", "industrial": "true", "untreated_outfalls": "0",
     "direct_discharge_cases": "0", "illegal_discharge_cases": "0", "high_pollution": "false", "high_energy": "false"},
    {"uscc": B, "name": "乙", "district": "二七区", "industrial": "true", "untreated_outfalls": "0",
     "direct_discharge_cases": "0", "illegal_discharge_cases": "0", "high_pollution": "false", "high_energy": "false"},
]
COLUMNS = ("case_id", "act_id", "uscc", "clause", "act_date", "discovered", "decided", "fine_yuan", "pollutant_fee_yuan",
           "exceedance_level", "water_level", "volume_level", "wastewater_level", "exceedance_multiple",
           "daily_volume_tonnes", "art32_mitigating")
CASES = [
    # the discretion from levels, with offences in the two years before (C2, C3 of A)
    ("C1", "", A, "wppcl2017_art83_2", "2024-03-01", "2024-03-05", "", "", "", "3", "2", "", "", "", "", ""),
    # a decided fine: no level placed it
    ("C2", "", A, "wppcl2017_art83_2", "2023-06-01", "2023-06-10", "2023-08-01", "300000", "", "", "", "", "", "", "", ""),
    # raw values graded, the wastewater type's level, art 32
    ("C3", "", A, "wppcl2017_art83_1", "2024-05-01", "2024-05-02", "", "", "", "", "", "", "4", "0.6", "120", "true"),
    ("C4", "", A, "wppcl2017_art84_2", "2024-02-01", "2024-02-03", "", "", "", "", "5", "", "", "", "", ""),
    # an act of 2017 under the 2008 art 74, decided under the 2017 law, lighter (从轻)
    ("C5", "", B, "wppcl2008_art74", "2017-06-01", "2017-07-01", "2018-03-01", "", "600000", "", "", "", "", "", "", ""),
    # an act of 2017 kept under the 2008 law (从旧): three times a small fee
    ("C6", "", B, "wppcl2008_art74", "2017-09-01", "2017-09-05", "2018-02-01", "", "20000", "2", "", "", "", "", "", ""),
    # every factor at 5, and one act breaching two clauses (one fine imposed, art 29)
    ("C7", "X1", B, "wppcl2017_art83_2", "2025-01-10", "2025-02-01", "", "", "", "5", "5", "5", "5", "", "", ""),
    ("C8", "X1", B, "wppcl2017_art83_4", "2025-01-10", "2025-02-01", "", "150000", "", "", "", "", "", "", "", ""),
]


def _write(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("factors")
    registry = _write(folder / "registry.csv", REGISTRY)
    # every column the case table's contract has, those not given here empty
    plan = make_plan(load_policies(), "enterprise", AS_OF, compile_program)
    cases = _write(folder / "cases.csv", [{**dict.fromkeys(plan.case_columns, ""), **dict(zip(COLUMNS, case, strict=True))}
                                          for case in CASES])
    summary = run_nightly(registry, folder / "results.sqlite", as_of=AS_OF, cases=cases, threads=1)
    assert summary.rows_rejected == 0
    return {"folder": folder, "db": folder / "results.sqlite", "run": summary.run_id}


def _stored(db: Path, run_id: int) -> dict:
    connection = sqlite3.connect(db)
    try:
        rows = connection.execute("SELECT case_id, policy, rule, name, value FROM case_factors WHERE run_id = ?",
                                  (run_id,)).fetchall()
    finally:
        connection.close()
    stored: dict = {}
    for case_id, policy, rule, name, value in rows:
        assert name not in stored.setdefault((case_id, policy, rule), {}), (case_id, rule, name)
        stored[(case_id, policy, rule)][name] = value
    return stored


def _traced(backend: str) -> dict:
    """Per fired rule with findings of each case, what explain's trace shows: the roll-ups
    among its reads, and each named value of integer type among its steps."""
    policies = load_policies()
    rollups = {name for name, fact in policies.facts.items() if fact.rollup is not None}
    values = {p.key: p for p in policies}
    findings = {(p.key, r.id) for p in policies for r in p.rules if r.findings}
    traced = {}
    with Evaluator(policies, backend=backend) as evaluator:
        for enterprise in REGISTRY:
            mine = [{k: v for k, v in zip(COLUMNS, case, strict=True) if v != ""} for case in CASES if case[2] == enterprise["uscc"]]
            group = evaluator.evaluate_group(enterprise, mine, as_of=AS_OF)
            for child in group.children:
                for entry in child.trace:
                    if not entry.fired or (entry.policy, entry.rule) not in findings:
                        continue
                    shown = {name: value for name, value in entry.reads.items() if name in rollups}
                    shown |= {step.name: step.result for step in entry.steps if isinstance(step, NamedValue)
                              and values[entry.policy].values[step.name].node.type.kind is Kind.INTEGER}
                    if shown:
                        traced[(child.subject, entry.policy, entry.rule)] = shown
    return traced


@pytest.mark.parametrize("backend", ["python", "durable"])
def test_the_stored_factors_are_explains_trace_case_by_case(world, backend):
    stored, traced = _stored(world["db"], world["run"]), _traced(backend)
    assert stored == traced
    # what the cases hold: the levels of C1 beside its two earlier offences; none for C2's
    # decided fine; the wastewater type's level where given; both laws of art 37
    assert stored[("C1", "prc.water_pollution_fines@2017", "art83_2_over_standard")] == {
        "prior_offences_2y": 2, "exceedance_graded": 3, "water_graded": 2, "volume_graded": 1, "wastewater_graded": 1,
        "offences_graded": 2, "factors_given": 2}
    assert stored[("C2", "prc.water_pollution_fines@2017", "art83_2_over_standard")] == {"prior_offences_2y": 0}
    assert stored[("C3", "prc.water_pollution_fines@2017", "art83_1_no_permit")]["wastewater_graded"] == 4
    assert {policy for (case, policy, _rule) in stored if case in ("C5", "C6")} == {
        "prc.water_pollution_fines@2008", "prc.water_pollution_fines@2017"}


def test_a_superseded_fine_keeps_what_placed_it(world):
    connection = sqlite3.connect(world["db"])
    try:
        status = dict(connection.execute("SELECT rule, status FROM findings WHERE case_id IN ('C7', 'C8')").fetchall())
    finally:
        connection.close()
    assert sorted(status.values()) == ["imposed", "superseded"]
    stored = _stored(world["db"], world["run"])
    assert stored[("C7", "prc.water_pollution_fines@2017", "art83_2_over_standard")]["wastewater_graded"] == 5


def test_export_writes_the_case_factors(world, tmp_path):
    out = tmp_path / "factors.csv"
    result = CliRunner().invoke(main, ["export", "--db", str(world["db"]), "--run", "latest", "--table", "case_factors",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["run_id", "case_id", "policy", "rule", "name", "value"]
    stored = _stored(world["db"], world["run"])
    assert len(rows) == sum(len(v) for v in stored.values())
    assert {(r["case_id"], r["rule"], r["name"], int(r["value"])) for r in rows} == {
        (case, rule, name, value) for (case, _policy, rule), named in stored.items() for name, value in named.items()}


def test_a_version_12_store_gains_the_factors_empty(tmp_path):
    db = tmp_path / "old.sqlite"
    connection = connect(db)
    connection.close()
    raw = sqlite3.connect(db)  # made back into a version 12 store, as an earlier ecorules left it
    raw.executescript("DROP VIEW case_factors; DROP TABLE factor_chunks; UPDATE meta SET value = '12' "
                      "WHERE key = 'schema_version';")
    raw.close()
    connect(db).close()  # what every writer does first: migrate
    raw = sqlite3.connect(db)
    try:
        assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        assert raw.execute("SELECT count(*) FROM case_factors").fetchone() == (0,)
    finally:
        raw.close()


def test_a_postgresql_store_keeps_the_same_factors(world, postgres_db, tmp_path):
    """The same run into PostgreSQL (store version 13 made there by its migration): the same
    rows of case_factors, exported alike."""
    url = postgres_db + ("&" if "?" in postgres_db else "?") + "schema=ecorules"
    summary = run_nightly(world["folder"] / "registry.csv", url, as_of=AS_OF, cases=world["folder"] / "cases.csv",
                          threads=1)
    connection = connect(url, readonly=True)
    try:
        rows = connection.execute("SELECT case_id, policy, rule, name, value FROM case_factors WHERE run_id = ?",
                                  (summary.run_id,)).fetchall()
        version = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    finally:
        connection.close()
    assert version == str(SCHEMA_VERSION)
    stored = _stored(world["db"], world["run"])
    assert sorted(tuple(r) for r in rows) == sorted(
        (case, policy, rule, name, value) for (case, policy, rule), named in stored.items() for name, value in named.items())
    out = tmp_path / "pg.csv"
    result = CliRunner().invoke(main, ["export", "--db", url, "--run", "latest", "--table", "case_factors", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)


def test_a_partitions_results_are_freed_once_written(world, tmp_path, monkeypatch):
    """The factors a partition's results hold do not hold the results back (a reference
    cycle): with the cycle collector off, every partition's results are gone once the run has
    written them. The cycle kept each partition's case table alive into the next one's
    (~170 MiB of peak RSS at 2 M cases, bench/cases.py)."""
    import gc
    import weakref

    from ecorules.engine.cases import CaseWriter

    written, kept_factors = [], []
    partition = CaseWriter.partition

    def watched(self, results, buckets=None):
        kept_factors.append(results.factors is not None)
        written.append(weakref.ref(results))
        return partition(self, results, buckets)

    monkeypatch.setattr(CaseWriter, "partition", watched)
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        summary = run_nightly(world["folder"] / "registry.csv", tmp_path / "results.sqlite", as_of=AS_OF,
                              cases=world["folder"] / "cases.csv", threads=1)
        alive = [ref() is not None for ref in written]
    finally:
        if enabled:
            gc.enable()
    assert summary.rows_rejected == 0
    assert written and all(kept_factors)  # the factors were kept, and the results still went
    assert not any(alive)
