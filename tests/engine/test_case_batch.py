"""`ecorules run --cases`: the batch path equals Evaluator.evaluate_group, enterprise by
enterprise, on tests/data/cases with a generated registry and case table (acts shared
between cases, windows around 29 February, empty optional cells, bad rows of every kind);
rows in = scored + rejected per table; without --cases a run is as it was."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from ecorules.engine import Evaluator, load_policies
from ecorules.engine._generate import generate_registry
from ecorules.engine._nightly import run_nightly
from ecorules.engine.cases._generate import bad_cases, generate_cases

DATA = Path(__file__).parent.parent / "data" / "cases"
EXAMPLES = Path(__file__).parent.parent.parent / "examples"
AS_OF = dt.date(2026, 1, 1)
ENTERPRISES, CASES = 400, 3000


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cases")
    usccs = generate_registry(ENTERPRISES + 10, 7)["uscc"].combine_chunks()
    rng = np.random.default_rng(8)
    good, rejected, strangers = usccs.slice(0, ENTERPRISES), usccs.slice(ENTERPRISES, 5), usccs.slice(ENTERPRISES + 5, 5)
    districts = np.where(rng.random(ENTERPRISES) < 0.5, "金水区", "二七区").astype(object)
    districts[:3] = "经开区"  # not a value of this folder: three enterprises the registry rejects
    registry = pa.table({
        "uscc": pa.concat_arrays([good, rejected]),
        "district": pa.array([*districts, *["火星区"] * 5], pa.string()),
        "industrial": pa.array(np.where(rng.random(ENTERPRISES + 5) < 0.7, "true", "false")),
    })
    cases = generate_cases(good, CASES, 9, ("a83_2", "a84_2", "local_x"))
    bad, kinds = bad_cases(cases, strangers, rejected, 10)
    table = pa.concat_tables([cases, bad])
    pacsv.write_csv(registry, folder / "enterprises.csv")
    pacsv.write_csv(table, folder / "cases.csv")
    summary = run_nightly(folder / "enterprises.csv", folder / "results.sqlite", policies=DATA, as_of=AS_OF,
                          cases=folder / "cases.csv", threads=2)
    db = sqlite3.connect(folder / "results.sqlite")
    db.row_factory = sqlite3.Row
    return {"registry": registry, "cases": table, "good_rows": cases.num_rows, "kinds": kinds,
            "summary": summary, "db": db, "folder": folder,
            "rejected_enterprises": set(good.slice(0, 3).to_pylist())}


def _record(row: dict) -> dict:
    return {k: v for k, v in row.items() if v not in (None, "")}


def test_the_batch_run_equals_evaluate_group_enterprise_by_enterprise(world):
    registry, cases = world["registry"].to_pylist(), world["cases"].slice(0, world["good_rows"]).to_pylist()
    by_enterprise: dict[str, list] = {}
    for row in cases:
        by_enterprise.setdefault(row["uscc"], []).append(_record(row))
    expected_findings, expected_lists = Counter(), Counter()
    with Evaluator(load_policies(DATA), backend="python") as evaluator:
        for enterprise in registry:
            if enterprise["uscc"] in world["rejected_enterprises"] or enterprise["district"] == "火星区":
                continue
            decision = evaluator.evaluate_group(enterprise, by_enterprise.get(enterprise["uscc"], []), as_of=AS_OF)
            for f in decision.findings:
                expected_findings[(enterprise["uscc"], f.record, f.policy, f.rule, f.amount_yuan, str(f.payer),
                                   f.status, f.superseded_by)] += 1
            for s in decision.parent.sanctions:
                expected_lists[(s.uscc, s.list, s.rule)] += 1
    db, run = world["db"], world["summary"].run_id
    found = Counter(
        (r["uscc"], r["case_id"], r["policy"], r["rule"], int(r["amount_yuan"]), r["payer"], r["status"], r["superseded_by"])
        for r in db.execute("SELECT * FROM findings WHERE run_id = ?", (run,))
    )
    lists = Counter((r["uscc"], r["list"], r["rule"]) for r in db.execute("SELECT * FROM sanctions WHERE run_id = ?", (run,)))
    assert found == expected_findings
    assert lists == expected_lists
    # the data exercise what they are meant to: superseded fines, windows, both payers
    statuses = Counter(key[6] for key in found.elements())
    assert statuses["superseded"] > 50 and statuses["imposed"] > 1000
    assert any(key[1] is None for key in found) and any(key[1] is not None for key in found)
    # the roll-ups in windows before as_of decide for some enterprises, not for all
    recent = sum(1 for key in lists if key[2] == "recent")
    assert 50 < recent < ENTERPRISES - 50


def test_totals_count_only_imposed_findings(world):
    db, run = world["db"], world["summary"].run_id
    payable = "kind != 'reward'"
    imposed = db.execute(f"SELECT sum(amount_yuan) FROM findings WHERE run_id = ? AND status = 'imposed' AND {payable}", (run,)).fetchone()[0]
    everything = db.execute(f"SELECT sum(amount_yuan) FROM findings WHERE run_id = ? AND {payable}", (run,)).fetchone()[0]
    assert world["summary"].total_yuan == imposed < everything
    districts = dict(db.execute("SELECT district, deduction_yuan FROM district_totals WHERE run_id = ?", (run,)).fetchall())
    by_payer = dict(db.execute(
        f"SELECT payer, sum(amount_yuan) FROM findings WHERE run_id = ? AND status = 'imposed' AND {payable} "
        "AND payer IN ('金水区', '二七区') GROUP BY payer", (run,)).fetchall())
    assert districts == by_payer


def test_rows_in_equal_scored_plus_rejected_per_table_and_every_bad_row_is_named(world):
    summary, db = world["summary"], world["db"]
    tables = summary.tables
    n_bad = len(world["kinds"])
    # the good cases of the three enterprises the registry rejects are rejected with them
    owners = world["cases"].slice(0, CASES)["uscc"].to_pylist()
    orphaned = [row for row, uscc in enumerate(owners) if uscc in world["rejected_enterprises"]]
    assert orphaned
    rejected = n_bad + len(orphaned)
    assert tables["cases"] == {"rows_in": CASES + n_bad, "rows_scored": CASES + n_bad - rejected, "rows_rejected": rejected}
    assert tables["registry"] == {"rows_in": ENTERPRISES + 5, "rows_scored": ENTERPRISES - 3, "rows_rejected": 8}
    assert summary.rows_in == summary.rows_scored + summary.rows_rejected == CASES + n_bad + ENTERPRISES + 5
    rejects = [dict(r) for r in db.execute("SELECT * FROM rejects WHERE run_id = ? AND source LIKE '%cases.csv'", (summary.run_id,))]
    # CSV line numbers: the header is line 1, the first bad row follows the good ones
    first_bad = CASES + 2
    by_row = {}
    for reject in rejects:
        by_row.setdefault(reject["row"], []).append(reject)
    assert sorted(by_row) == sorted([row + 2 for row in orphaned] + list(range(first_bad, first_bad + n_bad)))
    for row in orphaned:
        assert "was rejected" in by_row[row + 2][0]["reason"] and by_row[row + 2][0]["column"] == "uscc"
    wording = {
        "unknown enterprise": "is not in the registry", "rejected enterprise": "was rejected",
        "duplicate case_id": "duplicate case_id", "discovered before act_date": "discovered before act_date",
        "act_end before act_date": "act_end before act_date",
        "decided fine outside its range": "test.fines@1 check art83_fine_in_range",
    }
    for offset, kind in enumerate(world["kinds"]):
        reasons = " | ".join(r["reason"] for r in by_row[first_bad + offset])
        assert all(r["column"] for r in by_row[first_bad + offset])
        if kind in wording:
            assert wording[kind] in reasons, (kind, reasons)
        if kind == "duplicate case_id":
            assert "first at row" in reasons
        if kind == "decided fine outside its range":  # the column it blames, its value
            assert [(r["column"], r["value"]) for r in by_row[first_bad + offset]] == [("fine_yuan", "2000000")]


def test_export_shows_the_case_columns_and_changes_still_work(world, tmp_path):
    from ecorules.engine._changes import compare_runs
    from ecorules.engine._export import export_table

    db_path = world["folder"] / "results.sqlite"
    out = tmp_path / "findings.csv"
    export_table(db_path, "latest", "findings", out)
    header = pacsv.read_csv(out).column_names
    assert header[:8] == ["run_id", "uscc", "policy", "rule", "kind", "amount_yuan", "payer", "citation"]
    assert header[8:] == ["case_id", "status", "superseded_by", "assessed_in_run", "record_kind", "record_key", "law_note",
                          "amount", "unit", "amount_fen"]
    report = compare_runs(db_path, world["summary"].run_id, world["summary"].run_id)
    assert report["findings"]["changed"]["count"] == 0


def test_without_cases_a_run_is_as_it_was(tmp_path):
    """Shipped policies, the example registry: no per-table counts, every finding imposed and
    of no case; and an empty case table changes no enterprise result."""
    plain = run_nightly(EXAMPLES / "registry.csv", tmp_path / "a.sqlite", as_of=dt.date(2012, 4, 14))
    assert plain.tables == {} and "tables" not in plain.to_dict()
    db = sqlite3.connect(tmp_path / "a.sqlite")
    assert "tables" not in json.loads(db.execute("SELECT summary FROM runs").fetchone()[0])
    rows = db.execute("SELECT uscc, policy, rule, amount_yuan, payer, case_id, status, superseded_by FROM findings ORDER BY 1, 2, 3").fetchall()
    assert rows and {r[5:] for r in rows} == {(None, "imposed", None)}
    empty = tmp_path / "cases.csv"
    # the header of the example table: with cases.yaml's `dates:` (行政处罚法 art 37) any
    # version of a case policy may be the law of some case, so every version's columns are read
    empty.write_text((EXAMPLES / "cases.csv").read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    with_cases = run_nightly(EXAMPLES / "registry.csv", tmp_path / "b.sqlite", as_of=dt.date(2012, 4, 14), cases=empty)
    other = sqlite3.connect(tmp_path / "b.sqlite")
    assert other.execute("SELECT uscc, policy, rule, amount_yuan, payer, case_id, status, superseded_by FROM findings ORDER BY 1, 2, 3").fetchall() == rows
    totals = "SELECT district, deduction_yuan, cases FROM district_totals ORDER BY district"
    assert other.execute(totals).fetchall() == db.execute(totals).fetchall()
    assert (with_cases.total_yuan, with_cases.rows_scored) == (plain.total_yuan, plain.rows_scored)
    assert with_cases.tables["cases"] == {"rows_in": 0, "rows_scored": 0, "rows_rejected": 0}


def test_an_old_results_database_is_migrated(tmp_path):
    from ecorules.engine import store

    path = tmp_path / "old.sqlite"
    run_nightly(EXAMPLES / "registry.csv", path, as_of=dt.date(2012, 4, 14))
    connection = sqlite3.connect(path)
    connection.executescript(
        "DROP VIEW findings; CREATE VIEW findings AS SELECT c.run_id AS run_id, e.value ->> 0 AS uscc, s.policy AS policy, "
        "s.rule AS rule, s.kind AS kind, e.value ->> 1 AS amount_yuan, e.value ->> 2 AS payer, s.citation AS citation "
        "FROM finding_chunks c JOIN finding_slots s ON s.run_id = c.run_id AND s.slot = c.slot, json_each(c.rows) e;"
        "UPDATE meta SET value = '3' WHERE key = 'schema_version';"
    )
    connection.close()
    readonly = store.connect(path, readonly=True)  # an old database is read as it is
    assert "status" not in [d[0] for d in readonly.execute("SELECT * FROM findings LIMIT 1").description]
    readonly.close()
    connection = store.connect(path)
    assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(store.SCHEMA_VERSION)
    assert {r[0] for r in connection.execute("SELECT status FROM findings")} == {"imposed"}
    connection.close()


def test_the_example_case_table_of_the_readme(tmp_path):
    """README "The case table": the shipped policies on examples/cases.csv, worked by hand."""
    summary = run_nightly(EXAMPLES / "registry.csv", tmp_path / "r.sqlite", as_of=dt.date(2025, 6, 30),
                          cases=EXAMPLES / "cases.csv")
    assert summary.tables["cases"] == {"rows_in": 7, "rows_scored": 7, "rows_rejected": 0}
    db = sqlite3.connect(tmp_path / "r.sqlite")
    found = db.execute("SELECT case_id, rule, amount_yuan, status FROM findings WHERE case_id IS NOT NULL "
                       "ORDER BY case_id, rule").fetchall()
    assert found == [
        ("ZZ-2023-008", "art84_2_illegal_outfall", 50000, "imposed"),  # discovered on the last day
        ("ZZ-2024-001", "art83_2_over_standard", 325000, "imposed"),  # 100k + 900k x (mean 2 - 1)/4
        ("ZZ-2024-001", "direct_discharge_case_deduction", 10000000, "imposed"),
        ("ZZ-2024-002", "art83_3_evading_supervision", 300000, "superseded"),  # one act with 001
        ("ZZ-2024-010", "daily_continuous_penalty", 3000000, "imposed"),  # 100,000 x 30 days
        ("ZZ-2024-011", "art83_1_no_permit", 200000, "imposed"),
        ("ZZ-2024-011", "late_payment_surcharge", 90000, "imposed"),  # 3% x 15 days
        ("ZZ-2024-020", "art83_2_over_standard", 606250, "imposed"),  # mean level 3.25
    ]


def test_the_files_read_list_the_case_and_kind_tables_with_their_rows(tmp_path):
    """The summary's files read named the registry's files only: a case table read as GB18030
    with a line of UTF-8 said nothing of it. Every table's files are listed with their rows
    and how they were read, and a line whose encoding disagrees is a warning, as for the registry."""
    header, *rows = (EXAMPLES / "cases.csv").read_text(encoding="utf-8").splitlines()
    cases = tmp_path / "案件.csv"
    cases.write_bytes(("\n".join([header, *rows[:-1]]) + "\n").encode("gb18030") + (rows[-1] + "\n").encode("utf-8"))
    summary = run_nightly(EXAMPLES / "registry.csv", tmp_path / "r.sqlite", as_of=dt.date(2025, 6, 30),
                          cases=cases, tables={"approval": EXAMPLES / "requests.csv"},
                          allow_unset_parameters=True)  # the approval policy leaves one figure unset
    files = {Path(s["source"]).name: s for s in summary.sources}
    assert set(files) == {"registry.csv", "requests.csv", "案件.csv"}
    assert (files["案件.csv"]["rows_in"], files["案件.csv"]["encoding"]) == (len(rows), "gb18030")
    assert files["案件.csv"]["rows_rejected"] == summary.tables["cases"]["rows_rejected"]
    assert files["requests.csv"]["rows_in"] == summary.tables["approval"]["rows_in"]
    assert sum(s["rows_in"] for s in summary.sources) == summary.rows_in
    assert any("案件.csv" in w and "valid UTF-8" in w for w in summary.warnings)


def test_a_missing_optional_column_names_the_policy_reading_it(tmp_path):
    """A case table without 责令改正决定书送达日 was refused as "needed by the case table": the
    message names the policy that reads it and says why an optional fact's column must be
    there (left out or misnamed, it would read as empty and drop that policy's findings)."""
    from ecorules.engine._sources import MissingColumnError

    header, *rows = (EXAMPLES / "cases.csv").read_text(encoding="utf-8").splitlines()
    drop = header.split(",").index("责令改正决定书送达日")
    cut = ["\n".join(",".join(v for i, v in enumerate(line.split(",")) if i != drop) for line in [header, *rows])]
    (tmp_path / "cases.csv").write_text(cut[0] + "\n", encoding="utf-8")
    with pytest.raises(MissingColumnError) as caught:
        run_nightly(EXAMPLES / "registry.csv", tmp_path / "r.sqlite", as_of=dt.date(2025, 6, 30),
                    cases=tmp_path / "cases.csv")
    assert caught.value.fact == "order_served"
    assert caught.value.policies == ("prc.daily_continuous_penalty@2015",)
    assert "its cells may be empty (the fact is optional), but the column must be there" in str(caught.value)


def test_case_id_codes_without_hashing_equal_the_dictionary_codes():
    import numpy as np
    import pyarrow as pa
    from ecorules.engine.cases._table import _ascending, _codes, _key_codes

    for texts in (["C1", "C2", " C3", "C4 "], ["C2", "C1", "C3"], ["", "C1"], ["C1", "C1"], ["C1", None, "C2"]):
        column = pa.array(texts, pa.string())
        fast, slow = _key_codes(column), _codes(column)
        assert np.array_equal(fast[0], slow[0]) and fast[1].equals(slow[1]), texts
        assert fast[2] == _ascending(slow[1]), texts


def test_a_fine_paid_by_its_enterprise_is_stored_without_the_payer_and_read_with_it(world, tmp_path):
    """Schema 11: a case fine's payer is written null (the enterprise pays), the view reads
    the uscc; a version 10 store, whose view read the payer as written, gets the new view.
    Schema 14: the case layout leaves the null payer out (``store.CASE_PLACES``)."""
    from ecorules.engine import store
    from ecorules.engine.store.sqlite import _element

    db = world["db"]
    fines = db.execute("SELECT uscc, payer FROM findings WHERE case_id IS NOT NULL AND kind = 'fine'").fetchall()
    assert fines and all(row["payer"] == row["uscc"] for row in fines)
    stored = db.execute("SELECT rows FROM finding_chunks c JOIN finding_slots s USING (run_id, slot) "
                        "WHERE s.kind = 'fine'").fetchall()
    payer = store.CASE_PLACES["payer"]
    assert all(len(row) <= payer or row[payer] is None for chunk in stored for row in json.loads(chunk[0]))
    deductions = db.execute("SELECT DISTINCT payer FROM findings WHERE case_id IS NOT NULL AND kind = 'fiscal_deduction'")
    assert {row[0] for row in deductions} <= {"金水区", "二七区"}
    old = tmp_path / "v10.sqlite"
    connection = sqlite3.connect(old)
    db.backup(connection)
    view = store.FINDINGS_VIEW.replace(f"coalesce({_element('payer')}, e.value ->> 0) AS payer",
                                       f"{_element('payer')} AS payer")
    assert view != store.FINDINGS_VIEW
    connection.executescript(f"DROP VIEW findings; CREATE VIEW findings AS {view};"
                             "UPDATE meta SET value = '10' WHERE key = 'schema_version';")
    assert connection.execute("SELECT count(*) FROM findings WHERE payer IS NULL").fetchone()[0] == len(fines)
    connection.close()
    migrated = store.connect(old)
    assert migrated.execute("SELECT count(*) FROM findings WHERE payer IS NULL").fetchone()[0] == 0
    assert migrated.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(store.SCHEMA_VERSION)
    migrated.close()
