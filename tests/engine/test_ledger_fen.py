"""Amounts in fen in the results database (issue 10, point 4): `ecorules run` scores a policy
rounding to the fen exactly as the library does, totals mixing yuan and fen stay exact, and a
store of version 7 (whole yuan everywhere) is migrated and read alike."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from distributed_data import fen_policies as _policies  # (a rule in fen booked to the district)
from ecorules.engine import Evaluator, load_policies
from ecorules.engine._changes import compare_runs
from ecorules.engine._cli import main
from ecorules.engine._export import export_table
from ecorules.engine._generate import generate_registry
from ecorules.engine._nightly import run_nightly
from ecorules.engine.cases._generate import generate_cases
from ecorules.engine.store import SCHEMA_VERSION, connect
from nightly_data import usccs

DATA = Path(__file__).resolve().parents[1] / "data"
AS_OF = dt.date(2012, 4, 14)
CASES = DATA / "cases"
CASES_AS_OF = dt.date(2026, 1, 1)

def _registry(path: Path, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    codes = usccs(rng, n)
    rows = []
    for k, code in enumerate(codes):
        district = "金水区" if k % 2 else "二七区"
        tonnes = "0" if k % 5 == 0 else f"{rng.integers(0, 10**6) / 10**4:.4f}"  # up to 4 places
        base = int(rng.integers(1, 10**6)) if district == "金水区" and k % 3 else 0
        rows.append({"uscc": str(code), "district": district, "tonnes": tonnes, "base": base})
    lines = ["uscc,district,tonnes,base"] + [f"{r['uscc']},{r['district']},{r['tonnes']},{r['base']}" for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rows


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fen")
    policies = _policies(folder / "policies")
    rows = _registry(folder / "registry.csv", 400, seed=10)
    db = folder / "results.sqlite"
    summary = run_nightly(folder / "registry.csv", db, policies=load_policies(policies), as_of=AS_OF)
    with Evaluator(load_policies(policies), backend="python") as evaluator:
        decisions = {r["uscc"]: evaluator.evaluate(r, as_of=AS_OF) for r in rows}
    return {"folder": folder, "policies": policies, "db": db, "summary": summary, "decisions": decisions}


def _query(db: Path, sql: str, *params) -> list[tuple]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def test_the_run_stores_every_finding_as_the_library_computes_it_to_the_fen(scored):
    expected = sorted(
        (uscc, f.rule, f.amount, f.unit, f.amount_yuan, f.payer)
        for uscc, decision in scored["decisions"].items() for f in decision.findings
    )
    stored = _query(scored["db"], "SELECT uscc, rule, amount, unit, amount_yuan, payer, amount_fen FROM findings "
                                  "WHERE run_id = ?", scored["summary"].run_id)
    assert sorted((u, r, a, unit, _exact(y), p) for u, r, a, unit, y, p, _ in stored) == expected
    assert any(unit == "fen" and amount % 100 for _, _, amount, unit, *_ in stored)  # fen that are not whole yuan
    for _, _, amount, unit, yuan, _, fen in stored:
        assert fen == (amount if unit == "fen" else amount * 100)
        assert isinstance(yuan, str if unit == "fen" else int)  # exact text, never a float


def _execute(db: Path, sql: str) -> None:
    connection = sqlite3.connect(db)
    try:
        with connection:
            connection.execute(sql)
    finally:
        connection.close()


def _exact(value) -> int | Decimal:
    return value if isinstance(value, int) else Decimal(value)


def test_district_and_run_totals_mixing_yuan_and_fen_are_exact(scored):
    summary, decisions = scored["summary"], scored["decisions"]
    fen: dict[str, int] = defaultdict(int)
    units: dict[str, set] = defaultdict(set)
    for decision in decisions.values():
        for f in decision.findings:
            if f.kind.payable and f.payer in ("金水区", "二七区"):
                fen[f.payer] += f.amount * (100 if f.unit == "yuan" else 1)
                units[f.payer].add(f.unit)
    assert units["金水区"] == {"yuan", "fen"} and units["二七区"] == {"yuan"}
    stored = {d: (y, f, u) for d, y, f, u in _query(
        scored["db"], "SELECT district, deduction_yuan, deduction_fen, unit FROM district_totals WHERE run_id = ?",
        summary.run_id)}
    assert stored["金水区"] == (str(Decimal(fen["金水区"]).scaleb(-2)), fen["金水区"], "fen")
    assert stored["二七区"] == (fen["二七区"] // 100, fen["二七区"], "yuan")  # a total is in fen only if a part is
    total = sum(d.total_yuan for d in decisions.values())
    assert summary.total_yuan == total and summary.unit == "fen"
    assert summary.total_fen == int(total * 100)
    (total_yuan, total_fen, unit), = _query(scored["db"], "SELECT total_yuan, total_fen, unit FROM runs WHERE id = ?",
                                            summary.run_id)
    assert (Decimal(total_yuan), total_fen, unit) == (total, int(total * 100), "fen")
    # the fen of the findings add up to the totals in SQL alone, exactly
    (summed,), = _query(scored["db"], "SELECT sum(amount_fen) FROM findings WHERE run_id = ? AND kind != 'reward'",
                        summary.run_id)
    assert summed == total_fen


def test_run_json_and_text_show_the_fen(scored, tmp_path):
    args = ["run", "--registry", str(scored["folder"] / "registry.csv"), "--out", str(tmp_path / "r.sqlite"),
            "--policies", str(scored["policies"]), "--as-of", AS_OF.isoformat(), "--allow-failing-tests"]
    out = CliRunner().invoke(main, [*args, "--format", "json"])
    assert out.exit_code == 0, out.output
    document = json.loads(out.output)
    assert document["total_yuan"] == str(scored["summary"].total_yuan) and document["unit"] == "fen"
    districts = {d["district"]: d for d in document["district_totals"]}
    assert isinstance(districts["金水区"]["deduction_yuan"], str) and isinstance(districts["二七区"]["deduction_yuan"], int)
    text = CliRunner().invoke(main, [*args, "--force"]).output
    assert f"{scored['summary'].total_yuan:,} 元" in text


def test_export_writes_exact_decimals(scored, tmp_path):
    export_table(scored["db"], "latest", "findings", tmp_path / "f.parquet")
    table = pq.read_table(tmp_path / "f.parquet")
    assert str(table.schema.field("amount_yuan").type) == "decimal128(38, 2)"
    stored = dict(((u, r), _exact(y)) for u, r, y in _query(scored["db"], "SELECT uscc, rule, amount_yuan FROM findings"))
    exported = dict(zip(zip(table["uscc"].to_pylist(), table["rule"].to_pylist(), strict=True),
                        table["amount_yuan"].to_pylist(), strict=True))
    assert exported == stored
    export_table(scored["db"], "latest", "district_totals", tmp_path / "d.csv")
    rows = pacsv.read_csv(tmp_path / "d.csv", convert_options=pacsv.ConvertOptions(
        column_types={"deduction_yuan": "string"})).to_pylist()
    assert {r["district"]: r["deduction_yuan"] for r in rows} == {
        d["district"]: f"{d['deduction_fen'] // 100}.{d['deduction_fen'] % 100:02d}" for d in scored["summary"].districts}


def test_changes_compare_yuan_and_fen_exactly(scored, tmp_path):
    """A run of the same registry with the yuan policy alone against the fen run: the findings
    in fen appear with their exact amounts, the totals differ by exactly their sum."""
    db = tmp_path / "r.sqlite"
    yuan_only = tmp_path / "yuan"
    yuan_only.mkdir()
    text = (scored["policies"] / "fen_fee.yaml").read_text(encoding="utf-8")
    (yuan_only / "fen_fee.yaml").write_text(text.replace("rounding: {unit: fen, mode: half_up}", "rounding: {unit: yuan}"),
                                            encoding="utf-8")
    first = run_nightly(scored["folder"] / "registry.csv", db, policies=load_policies(yuan_only), as_of=AS_OF)
    second = run_nightly(scored["folder"] / "registry.csv", db, policies=load_policies(scored["policies"]), as_of=AS_OF)
    assert first.unit == "yuan" and second.unit == "fen"
    report = compare_runs(db, first.run_id, second.run_id, limit=0)
    assert report["unit"] == "fen"
    assert report["total_fen"]["change"] == second.total_fen - first.total_fen
    assert Decimal(report["total_yuan"]["change"]) == second.total_yuan - first.total_yuan
    changed = report["findings"]["changed"]["items"]
    assert changed and all(isinstance(item["after_yuan"], str) for item in changed)
    out = CliRunner().invoke(main, ["changes", "--db", str(db), "--since", str(first.run_id), "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["total_yuan"] == report["total_yuan"]


def test_diff_judges_a_change_from_yuan_to_fen_exactly(scored, tmp_path):
    yuan_only = tmp_path / "yuan"
    yuan_only.mkdir()
    text = (scored["policies"] / "fen_fee.yaml").read_text(encoding="utf-8")
    (yuan_only / "fen_fee.yaml").write_text(text.replace("rounding: {unit: fen, mode: half_up}", "rounding: {unit: yuan}"),
                                            encoding="utf-8")
    page = tmp_path / "diff.html"
    out = CliRunner().invoke(main, ["diff", "--base", str(yuan_only), "--proposed", str(scored["policies"]),
                                    "--registry", str(scored["folder"] / "registry.csv"), "--as-of", AS_OF.isoformat(),
                                    "--format", "json", "--html", str(page)])
    assert out.exit_code in (0, 1), out.output
    document = json.loads(out.output)
    with Evaluator(load_policies(yuan_only), backend="python") as evaluator:
        before = sum(evaluator.evaluate(_row(r), as_of=AS_OF).total_yuan for r in _rows(scored))
    after = sum(d.total_yuan for d in scored["decisions"].values())
    totals = document["totals"]
    assert totals["unit"] == "fen"
    assert (Decimal(totals["before_yuan"]), Decimal(totals["after_yuan"])) == (before, after)
    assert Decimal(totals["difference_yuan"]) == after - before
    html = page.read_text(encoding="utf-8")
    assert f"{after:,} 元" in html and f"{after / 10_000:,f}".rstrip("0").rstrip(".") + " 万元" in html


def _rows(scored) -> list[dict]:
    lines = (scored["folder"] / "registry.csv").read_text(encoding="utf-8").splitlines()
    names = lines[0].split(",")
    return [dict(zip(names, line.split(","), strict=True)) for line in lines[1:]]


def _row(row: dict) -> dict:
    return {**row, "base": int(row["base"])}


def test_a_version_7_store_is_migrated_and_its_runs_read_as_whole_yuan(tmp_path):
    db = tmp_path / "v7.sqlite"
    seed = sqlite3.connect(db)
    seed.executescript((DATA / "stores" / "v7.sql").read_text(encoding="utf-8"))
    seed.close()
    before = _query(db, "SELECT district, deduction_yuan, cases FROM district_totals ORDER BY district")
    findings_before = _query(db, "SELECT uscc, rule, amount_yuan, payer FROM findings ORDER BY uscc, rule")
    total_before, = _query(db, "SELECT total_yuan FROM runs WHERE id = 1")
    assert total_before == (136_000_000,)

    # a run of the same input would replace run 1 (here: to compare with it, it must stay)
    _execute(db, "UPDATE runs SET input_fingerprint = 'v7 ' || input_fingerprint")
    connect(db).close()  # what every writer does first: migrate
    assert _query(db, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    assert _query(db, "SELECT district, deduction_yuan, cases FROM district_totals ORDER BY district") == before
    assert _query(db, "SELECT district, deduction_fen, unit FROM district_totals ORDER BY district") == [
        (d, y * 100, "yuan") for d, y, _ in before]
    assert _query(db, "SELECT uscc, rule, amount_yuan, payer FROM findings ORDER BY uscc, rule") == findings_before
    assert all(fen == yuan * 100 and unit == "yuan" for yuan, fen, unit in _query(
        db, "SELECT amount_yuan, amount_fen, unit FROM findings"))
    assert _query(db, "SELECT total_yuan, total_fen, unit FROM runs WHERE id = 1") == [(136_000_000, 13_600_000_000, "yuan")]
    # the indexes came back with the tables made again
    indexes = {r[0] for r in _query(db, "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    assert {"runs_fingerprints", "runs_stats", "assessed_chunks_run"} <= indexes
    # the assessments moved into chunks after gaining their unit: the view reads them so
    assert [r[1] for r in _query(db, "PRAGMA table_info(assessed)")][-3:] == ["amount_fen", "unit", "act_id"]

    # a run of the shipped policies after it: the same totals, and nothing changed between them
    again = run_nightly(DATA.parent.parent / "examples" / "registry.csv", db, as_of=AS_OF, force=True)
    assert (again.total_yuan, again.unit) == (136_000_000, "yuan")
    report = compare_runs(db, 1, again.run_id, limit=0)
    assert report["total_yuan"] == {"before": 136_000_000, "after": 136_000_000, "change": 0}
    assert report["findings"]["changed"]["count"] == 0 and report["districts"] == []


def _case_world(folder: Path, fines_rounding: str | None, rule_rounding: str | None = None) -> Path:
    """tests/data/cases with the case policy's amounts rounded as given (its header's
    rounding, and one rule's own)."""
    policies = folder / "policies"
    shutil.copytree(CASES, policies)
    text = (policies / "fines.yaml").read_text(encoding="utf-8")
    if fines_rounding:
        text = text.replace("  domain: case\n", f"  domain: case\n  rounding: {fines_rounding}\n", 1)
    if rule_rounding:
        text = text.replace("    title: 私设排污口\n", f"    title: 私设排污口\n    rounding: {rule_rounding}\n", 1)
    (policies / "fines.yaml").write_text(text, encoding="utf-8")
    return policies


@pytest.fixture(scope="module")
def case_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("case-fen")
    usccs = generate_registry(300, 7)["uscc"].combine_chunks()
    rng = np.random.default_rng(8)
    registry = pa.table({
        "uscc": usccs,
        "district": pa.array(np.where(rng.random(300) < 0.5, "金水区", "二七区")),
        "industrial": pa.array(np.where(rng.random(300) < 0.7, "true", "false")),
    })
    pacsv.write_csv(registry, folder / "enterprises.csv")
    pacsv.write_csv(generate_cases(usccs, 2000, 9, ("a83_2", "a84_2", "local_x")), folder / "cases.csv")
    return folder


def _case_run(inputs: Path, policies: Path, db: Path):
    return run_nightly(inputs / "enterprises.csv", db, policies=policies, as_of=CASES_AS_OF, cases=inputs / "cases.csv",
                       threads=2)


def test_a_case_table_in_fen_is_scored_and_stored_with_its_unit(case_inputs, tmp_path):
    """The same cases judged with the case policy rounding to the yuan and to the fen: its
    amounts are whole yuan either way, so every finding and total is the same sum of fen,
    now with the unit fen, and the districts' totals mix the enterprise policy's yuan."""
    yuan = _case_run(case_inputs, _case_world(tmp_path / "y", None), tmp_path / "y.sqlite")
    fen = _case_run(case_inputs, _case_world(tmp_path / "f", "{unit: fen}"), tmp_path / "f.sqlite")
    sql = ("SELECT record_key, policy, rule, payer, status, amount_fen, unit FROM findings "
           "ORDER BY record_key, policy, rule, payer, status, amount_fen")
    yuan_rows, fen_rows = _query(tmp_path / "y.sqlite", sql), _query(tmp_path / "f.sqlite", sql)
    assert len(yuan_rows) == len(fen_rows) > 1000
    assert [row[:6] for row in yuan_rows] == [row[:6] for row in fen_rows]
    assert {row[6] for row in yuan_rows} == {"yuan"}
    assert {row[6] for row in fen_rows if row[1].startswith("test.fines")} == {"fen"}
    assert (fen.total_fen, fen.unit, yuan.unit) == (yuan.total_fen, "fen", "yuan")
    assert fen.total_yuan == yuan.total_yuan  # 1,000,000.00 yuan is 1,000,000 yuan
    assert [(d["district"], d["deduction_fen"], d["cases"]) for d in fen.districts] == \
        [(d["district"], d["deduction_fen"], d["cases"]) for d in yuan.districts]
    assert {d["unit"] for d in fen.districts} == {"fen"}
    assessed = "SELECT case_id, rule, amount_fen, amount_yuan, unit FROM assessed ORDER BY case_id, rule"
    fen_assessed = _query(tmp_path / "f.sqlite", assessed)
    assert [row[:3] for row in fen_assessed] == [row[:3] for row in _query(tmp_path / "y.sqlite", assessed)]
    assert all(unit == "fen" and yuan_text == f"{amount // 100}.{amount % 100:02d}"
               for _, _, amount, yuan_text, unit in fen_assessed)


def test_case_policies_mixing_yuan_and_fen_compare_their_fines_in_fen(tmp_path):
    """One statute rounding to the fen (a third of the fine), another to the yuan, up: in an
    act, 33,334 yuan beats 33,333.33 yuan and 100,001.00 beats 100,000 (compared as the
    kernel's integers, 3,333,333 fen would beat 33,334 yuan); the batch agrees with the
    reference, the ledger keeps each finding's unit and the totals are fen."""
    policies = _case_world(tmp_path / "mixed", "{unit: fen}", rule_rounding="{unit: yuan, mode: up}")
    text = (policies / "fines.yaml").read_text(encoding="utf-8")
    for before in ('"value_or(fine_yuan, 100000 + 50000 * min(prior_2y, 4))"', '"value_or(fine_yuan, 20000)"'):
        assert before in text
        text = text.replace(before, f'"{before[1:-1]} / 3"')
    (policies / "fines.yaml").write_text(text.split("\ntests:")[0] + "\n", encoding="utf-8")
    owner = str(usccs(np.random.default_rng(1), 1)[0])
    pacsv.write_csv(pa.table({"uscc": [owner], "district": ["金水区"], "industrial": ["false"]}), tmp_path / "e.csv")
    cases = [("K1", "X", "a83_2", "100000"), ("K2", "X", "a84_2", "100000"), ("K3", "Y", "a83_2", "300003"),
             ("K4", "Y", "a84_2", "300000"), ("K5", "", "a83_2", "1")]
    table = [{"case_id": c, "uscc": owner, "act_id": a, "clause": k, "act_date": "2025-03-01", "act_end": "", "discovered": "2025-04-01", "into_eco_water": "",
              "fine_yuan": f} for c, a, k, f in cases]
    pacsv.write_csv(pa.Table.from_pylist(table), tmp_path / "c.csv")
    summary = run_nightly(tmp_path / "e.csv", tmp_path / "m.sqlite", policies=policies, as_of=CASES_AS_OF,
                          cases=tmp_path / "c.csv", threads=1)
    assert summary.status == "done" and summary.rows_rejected == 0
    got = {(case_id, status, amount, unit, by) for case_id, status, amount, unit, by in _query(
        tmp_path / "m.sqlite", "SELECT case_id, status, amount_yuan, unit, superseded_by FROM findings WHERE case_id IS NOT NULL")}
    assert got == {
        ("K1", "superseded", "33333.33", "fen", "test.fines@1 art84 (K2)"), ("K2", "imposed", 33334, "yuan", None),
        ("K3", "imposed", "100001.00", "fen", None), ("K4", "superseded", 100000, "yuan", "test.fines@1 art83 (K3)"),
        ("K5", "imposed", "0.33", "fen", None),
    }
    assert (summary.total_fen, summary.unit) == (3333400 + 10000100 + 33, "fen")
    with Evaluator(load_policies(policies), backend="python") as evaluator:
        group = evaluator.evaluate_group({"uscc": owner, "district": "金水区", "industrial": False},
                                         [{k: v for k, v in c.items() if v} for c in table], as_of=CASES_AS_OF)
    assert {(f.record, f.status, f.amount_yuan, f.superseded_by) for f in group.findings} == {
        (case_id, status, Decimal(amount) if isinstance(amount, str) else amount, by) for case_id, status, amount, _, by in got}
