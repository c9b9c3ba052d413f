"""The nightly run end to end: hand-checked totals, rejects, reruns, changes, export, CLI."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from ecorules.engine._cli import main
from ecorules.engine._nightly import EXIT_DONE, EXIT_FAILED, EXIT_REJECTS, NightlyRun, run_nightly
from ecorules.engine._progress import Progress
from ecorules.rules import RecordError, load_policies
from ecorules.rules._records import coerce
from nightly_data import make_registry
from nightly_standin import scorer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
AS_OF = dt.date(2012, 4, 14)
POLICIES = load_policies()
DISTRICTS = set(POLICIES.facts["district"].type.choices)
LABELS = {name: fact.label for name, fact in POLICIES.facts.items()}
COMPILE = scorer()

# The law as the source report words it (郑州日报 2012-04-14), written out by hand here:
PER_OUTFALL = 1_000_000  # 每个排污口扣款100万元
PER_DIRECT_CASE = 10_000_000  # 工业企业超标直排, 一例一次1000万元


def expected_from_rows(rows: list[dict[str, str]]) -> dict:
    """District totals, list entries and rejects of a registry, from first principles."""
    districts: dict[str, list[int]] = {}
    lists = {"green_credit_blacklist": set(), "restricted_loans": set()}
    findings = 0
    rejected = 0
    for row in rows:
        if row["district"] not in DISTRICTS:
            rejected += 1
            continue
        outfalls, direct, illegal = (int(row[c]) for c in ("untreated_outfalls", "direct_discharge_cases", "illegal_discharge_cases"))
        industrial = row["industrial"] == "true"
        owed = outfalls * PER_OUTFALL + (direct * PER_DIRECT_CASE if industrial else 0)
        findings += (outfalls > 0) + (industrial and direct > 0)
        if owed:
            total = districts.setdefault(row["district"], [0, 0])
            total[0] += owed
            total[1] += 1  # cases: enterprises with a deduction booked to the district
        if illegal > 0 or direct > 0:
            lists["green_credit_blacklist"].add(row["uscc"])
        if row["high_pollution"] == "true" or row["high_energy"] == "true":
            lists["restricted_loans"].add(row["uscc"])
    return {
        "districts": {d: tuple(v) for d, v in districts.items()},
        "lists": {k: sorted(v) for k, v in lists.items() if v},
        "total": sum(v[0] for v in districts.values()),
        "findings": findings,
        "rejected": rejected,
        "rows": len(rows),
    }


def db_results(db: Path, run_id: int) -> dict:
    connection = sqlite3.connect(db)
    districts = {d: (y, c) for d, y, c in connection.execute(
        "SELECT district, deduction_yuan, cases FROM district_totals WHERE run_id = ?", (run_id,))}
    lists: dict[str, list[str]] = {}
    for list_id, uscc in connection.execute("SELECT list, uscc FROM sanctions WHERE run_id = ? ORDER BY uscc", (run_id,)):
        lists.setdefault(list_id, []).append(uscc)
    row = connection.execute("SELECT total_yuan, rows_in, rows_rejected FROM runs WHERE id = ?", (run_id,)).fetchone()
    findings = connection.execute("SELECT count(*) FROM findings WHERE run_id = ?", (run_id,)).fetchone()[0]
    connection.close()
    return {"districts": districts, "lists": lists, "total": row[0], "findings": findings,
            "rejected": row[2], "rows": row[1]}


def run(registry, db, **options):
    options.setdefault("as_of", AS_OF)
    options.setdefault("compile_program", COMPILE)
    options.setdefault("progress", False)
    return run_nightly(registry, db, **options)


def table_rows(table: pa.Table) -> list[dict[str, str]]:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(quoting_style="none"))
    return list(csv.DictReader(io.StringIO(sink.getvalue().to_pybytes().decode())))


@pytest.fixture
def cli(monkeypatch):
    """The CLI, scoring with the kernel (or its stand-in until the kernel is built)."""
    import ecorules.fastcalc as fastcalc

    monkeypatch.setattr(fastcalc, "compile_program", COMPILE, raising=False)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


# --- totals -------------------------------------------------------------------------------------


def test_hand_checked_example_registry(tmp_path):
    path = EXAMPLES / "registry.csv"
    if not path.exists():
        pytest.skip("examples/registry.csv is not in this checkout")
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    expected = expected_from_rows(rows)
    summary = run(path, tmp_path / "r.sqlite")
    assert db_results(tmp_path / "r.sqlite", summary.run_id) == expected
    assert summary.rows_in == len(rows) == summary.rows_scored + summary.rows_rejected
    assert summary.exit_code == (EXIT_REJECTS if expected["rejected"] else EXIT_DONE)


def test_small_registry_checked_line_by_line(tmp_path):
    header = "uscc,name,district,industrial,untreated_outfalls,direct_discharge_cases,illegal_discharge_cases,high_pollution,high_energy"
    lines = [
        "91410100MAMJDNG424,甲,金水区,true,3,0,0,false,false",  # 3 x 1,000,000 to 金水区
        "91410182MADWR18F3B,乙,金水区,true,0,2,0,false,false",  # 2 x 10,000,000 to 金水区; blacklist
        "91410183MACPERX1X8,丙,二七区,false,1,1,0,false,false",  # 1,000,000 only (not industrial); blacklist
        "91410105MAURQAC95R,丁,二七区,false,0,0,4,true,false",  # blacklist and restricted, no money
        "91410100MA9KE5N91D,戊,中原区,true,0,0,0,false,false",  # clean
    ]
    path = tmp_path / "r.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    summary = run(path, tmp_path / "r.sqlite")
    got = db_results(tmp_path / "r.sqlite", summary.run_id)
    assert got["districts"] == {"金水区": (23_000_000, 2), "二七区": (1_000_000, 1)}
    assert got["lists"] == {
        "green_credit_blacklist": sorted(["91410182MADWR18F3B", "91410183MACPERX1X8", "91410105MAURQAC95R"]),
        "restricted_loans": ["91410105MAURQAC95R"],
    }
    assert got["total"] == 24_000_000 == summary.total_yuan and got["findings"] == 3
    assert summary.exit_code == EXIT_DONE
    connection = sqlite3.connect(tmp_path / "r.sqlite")
    finding = connection.execute(
        "SELECT uscc, policy, rule, kind, amount_yuan, payer, citation FROM findings WHERE uscc = '91410182MADWR18F3B'"
    ).fetchone()
    assert finding == ("91410182MADWR18F3B", "zhengzhou.eco_water_interception@2011", "direct_discharge_deduction",
                       "fiscal_deduction", 20_000_000, "金水区", "《创新管理机制 强化管理手段努力推动环保工作科学发展》(郑州日报 2012-04-14) 七、(二)")


def test_same_totals_from_parquet_gbk_chinese_headers_sqlite_and_a_folder(tmp_path):
    table = make_registry(400, seed=11, case_share=0.2)
    expected = expected_from_rows(table_rows(table))
    chinese = table.rename_columns([LABELS[c] for c in table.column_names])
    sink = pa.BufferOutputStream()
    pacsv.write_csv(chinese, sink)
    (tmp_path / "gbk.csv").write_bytes(sink.getvalue().to_pybytes().decode().encode("gbk"))
    pq.write_table(table, tmp_path / "r.parquet", row_group_size=100)
    db = tmp_path / "registry.sqlite"
    connection = sqlite3.connect(db)
    table.to_pandas().to_sql("企业名录", connection, index=False)
    connection.close()
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(table.slice(0, 150), folder / "1.parquet")
    pacsv.write_csv(table.slice(150), folder / "2.csv")
    for i, source in enumerate([tmp_path / "gbk.csv", tmp_path / "r.parquet", f"{db}:企业名录", folder]):
        out = tmp_path / f"out{i}.sqlite"
        summary = run(source, out, batch_rows=64)
        assert db_results(out, summary.run_id) == expected, source
        assert summary.exit_code == EXIT_DONE


# --- rejects ------------------------------------------------------------------------------------


def expected_rejects(path: Path) -> set[tuple[int, str]]:
    """(line, column) of every value that the single-record validator refuses."""
    facts = POLICIES.for_domain("enterprise").facts
    needed = POLICIES.for_domain("enterprise").required_facts()
    out = set()
    read = [name for name in needed if facts[name].rollup is None]  # roll-ups are counted, not read
    for line, row in enumerate(csv.DictReader(path.open(encoding="utf-8")), start=2):
        for name in read:
            try:
                # a column the registry may leave out (may_be_absent) is empty where it does
                coerce(facts[name], row.get(name) if facts[name].may_be_absent else row[name])
            except RecordError:
                out.add((line, name))
    return out


def test_every_reject_reason_is_stored_with_file_row_and_column(tmp_path):
    bad = EXAMPLES / "registry_bad.csv"
    if not bad.exists():
        pytest.skip("examples/registry_bad.csv is not in this checkout")
    defects = json.loads((EXAMPLES / "registry_bad_defects.json").read_text(encoding="utf-8"))
    extra = (
        b"91410100MAMJDNG424,\xe7\x94\xb2,\xff\xfe,true,0,0,0,false,false\n"  # undecodable bytes
        b"91410100MAMJDNG424,only,three\n"  # malformed line
    )
    path = tmp_path / "bad.csv"
    path.write_bytes(bad.read_bytes() + extra)
    lines = len(bad.read_text(encoding="utf-8").splitlines())
    expected = expected_rejects(bad)
    # the examples' defects are what the single-record rules refuse (where they agree)
    assert expected <= {(d["line"], d["column"]) for d in defects}
    summary = run(path, tmp_path / "r.sqlite")
    assert summary.exit_code == EXIT_REJECTS
    rejected = len({line for line, _ in expected}) + 2
    assert (summary.rows_in, summary.rows_rejected) == (lines - 1 + 2, rejected)
    assert summary.rows_in == summary.rows_scored + summary.rows_rejected
    stored = sqlite3.connect(tmp_path / "r.sqlite").execute(
        'SELECT source, row, "column", value, reason FROM rejects ORDER BY row').fetchall()
    assert {s[0] for s in stored} == {str(path)}
    assert {(row, column) for _, row, column, _, _ in stored if row <= lines} == expected
    by_row = {row: (column, value, reason) for _, row, column, value, reason in stored}
    values = {(d["line"], d["column"]): d["value"] for d in defects}
    for line, column in expected:
        got_column, value, reason = by_row[line]
        assert (value or "") == values[(line, column)] and reason, (line, column)
    assert by_row[lines + 1][0] == "district" and by_row[lines + 1][2] == "undecodable bytes: not valid utf-8"
    assert by_row[lines + 2] == (None, "91410100MAMJDNG424,only,three", "malformed line: 3 fields, expected 9")
    reasons = {r["reason"] for r in summary.rejects_by_reason}
    assert "malformed line: N fields, expected N" in reasons  # counted together, values left out


def test_rejects_by_reason_counts_a_row_once_under_each_of_its_problems(tmp_path):
    """A row with two bad columns counted once, under its first problem only, and reader
    rejects once per cell: the count of a reason is now the rows that have it, a row with
    two problems under both (the counts may add up to more than the rows rejected)."""
    rows = table_rows(make_registry(20, seed=5))
    rows[2]["untreated_outfalls"], rows[2]["direct_discharge_cases"] = "-1", "-3"
    rows[3]["untreated_outfalls"], rows[3]["industrial"] = "-1", "maybe"
    rows[4]["untreated_outfalls"] = "-2"
    path = tmp_path / "r.csv"
    lines = [",".join(rows[0]), *(",".join(r.values()) for r in rows)]
    fields = [field.encode() for field in lines[7].split(",")]
    fields[1:3] = [b"\xff\xfe", b"\xfd"]  # name and district undecodable: one reject per cell
    path.write_bytes(("\n".join(lines) + "\n").encode() + b",".join(fields) + b"\n")
    summary = run(path, tmp_path / "r.sqlite", compile_program=None)
    by_reason = {(r["column"], r["reason"]): r["rows"] for r in summary.rejects_by_reason}
    assert summary.rows_rejected == 4
    assert by_reason[("untreated_outfalls", "N is below the minimum N")] == 3
    assert by_reason[("direct_discharge_cases", "N is below the minimum N")] == 1
    assert by_reason[("industrial", "must be true or false, got '…'")] == 1
    undecodable = {key: n for key, n in by_reason.items() if key[1].startswith("undecodable")}
    assert sum(undecodable.values()) == len(undecodable) >= 1  # the bad line once per column it spoils
    assert "a row with several problems counts under each" in summary.render_text()


def test_rows_in_equals_scored_plus_rejected_for_mixed_input(tmp_path):
    table = make_registry(300, seed=4)
    rows = table_rows(table)
    rows[5]["untreated_outfalls"] = "-2"
    rows[6]["uscc"] = rows[6]["uscc"][:-1] + ("0" if rows[6]["uscc"][-1] != "0" else "1")
    rows[7]["industrial"] = ""
    rows[8]["direct_discharge_cases"] = "2.5"  # "2.0" is 2, as the float 2.0 is
    path = tmp_path / "r.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = run(path, tmp_path / "r.sqlite", batch_rows=50)
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (300, 296, 4)
    stored = sqlite3.connect(tmp_path / "r.sqlite").execute('SELECT row, "column" FROM rejects ORDER BY row').fetchall()
    assert stored == [(7, "untreated_outfalls"), (8, "uscc"), (9, "industrial"), (10, "direct_discharge_cases")]


def test_a_batchs_rejects_go_to_the_writer_last_in_one_job(tmp_path, monkeypatch):
    """The writer's queue holds a few jobs: a batch's rejects (the scorer's, then the rows the
    reading dropped) are handed over in one job after its findings, so that the scoring thread
    goes on while they are inserted, and the rejects table keeps its order (by batch, the
    scorer's before the reading's)."""
    from ecorules.engine import store
    from ecorules.engine.store import sqlite as sqlite_store

    table = make_registry(300, seed=4, case_share=0.3)
    rows = table_rows(table)
    rows[5]["untreated_outfalls"] = "-2"  # the scorer's
    rows[60]["industrial"] = "也许"  # the scorer's, in the second batch
    path = tmp_path / "r.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with path.open("ab") as handle:  # the reading's: a malformed line, at the end of the last batch
        handle.write(b"91410100MAMJDNG424,only,three\n")
    jobs = []
    for name in ("execute", "executemany"):
        original = getattr(sqlite_store.RunWriter, name)

        def recorded(self, sql, params, original=original):
            jobs.append("rejects" if sql == store.INSERT_REJECTS else "findings" if sql == store.INSERT_FINDINGS else "other")
            return original(self, sql, params)

        monkeypatch.setattr(sqlite_store.RunWriter, name, recorded)
    record = NightlyRun._record

    def batch_recorded(self, *args):
        jobs.append("batch")
        return record(self, *args)

    monkeypatch.setattr(NightlyRun, "_record", batch_recorded)
    summary = run(path, tmp_path / "r.sqlite", batch_rows=50)
    assert (summary.rows_in, summary.rows_rejected) == (301, 3)
    letters = "".join({"batch": "|", "findings": "F", "rejects": "R"}.get(job, "") for job in jobs)
    batches = letters.strip("|").split("|")
    assert all(re.fullmatch("F*R?", batch) for batch in batches), letters
    assert [batch.endswith("R") for batch in batches].count(True) == 3 and batches[0] == "FFR", letters
    stored = sqlite3.connect(tmp_path / "r.sqlite").execute(
        'SELECT row, "column" FROM rejects ORDER BY rowid').fetchall()
    assert stored == [(7, "untreated_outfalls"), (62, "industrial"), (302, None)]


# --- reruns -------------------------------------------------------------------------------------


def counts(db: Path) -> dict[str, int]:
    connection = sqlite3.connect(db)
    return {t: connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("runs", "findings", "finding_chunks", "finding_slots", "district_totals", "sanctions",
                      "sanction_chunks", "sanction_slots", "rejects")}


def test_rerun_with_same_input_policies_and_date_is_idempotent(tmp_path):
    pq.write_table(make_registry(500, seed=3, case_share=0.2), tmp_path / "r.parquet")
    db = tmp_path / "r.sqlite"
    first = run(tmp_path / "r.parquet", db)
    before = counts(db)
    results = db_results(db, first.run_id)
    again = run(tmp_path / "r.parquet", db)
    assert again.reused and again.run_id == first.run_id and counts(db) == before
    assert again.to_dict()["district_totals"] == first.to_dict()["district_totals"]
    forced = run(tmp_path / "r.parquet", db, force=True)
    assert forced.run_id != first.run_id and forced.replaced_run == first.run_id
    assert counts(db) == before  # replaced, not duplicated
    assert db_results(db, forced.run_id) == results
    other_day = run(tmp_path / "r.parquet", db, as_of=dt.date(2012, 4, 15))
    assert not other_day.reused and counts(db)["runs"] == 2
    fingerprints = sqlite3.connect(db).execute("SELECT input_fingerprint, policy_fingerprint FROM runs").fetchall()
    assert len(set(fingerprints)) == 1 and all(len(f) == 64 for f in fingerprints[0])


def test_same_content_under_a_new_time_is_the_same_input(tmp_path):
    """A touched or copied file is not scored again: its content decides, the run id is kept."""
    import os

    path = tmp_path / "r.parquet"
    pq.write_table(make_registry(200, seed=3, case_share=0.3), path)
    db = tmp_path / "r.sqlite"
    first = run(path, db)
    os.utime(path, ns=(1, 1))  # a copy or a touch: other time, same bytes
    second = run(path, db)
    assert second.reused and second.run_id == first.run_id and second.replaced_run is None
    assert counts(db)["runs"] == 1 and db_results(db, first.run_id)["rows"] == 200
    stat = sqlite3.connect(db).execute("SELECT input_stat FROM runs").fetchone()[0]
    assert run(path, db).reused  # and now the times match again
    assert sqlite3.connect(db).execute("SELECT input_stat FROM runs").fetchone()[0] == stat


def test_another_reading_of_the_same_bytes_is_another_run(tmp_path):
    """A rerun with another --encoding reused the first run (its fingerprint held the bytes
    alone): the reading options that change what is read are part of the input now."""
    rows = table_rows(make_registry(60, seed=5))
    rows[3]["uscc"] = rows[2]["uscc"]  # one enterprise on two rows: --duplicates decides
    path = tmp_path / "r.csv"
    text = "\n".join([",".join(rows[0]), *(",".join(r.values()) for r in rows)]) + "\n"
    path.write_bytes(text.encode("gb18030"))
    db = tmp_path / "r.sqlite"
    first = run(path, db, encoding="gb18030")
    assert first.rows_rejected == 1 and run(path, db, encoding="gb18030").reused
    latin = run(path, db, encoding="latin-1")  # every district garbled: every row a reject
    assert not latin.reused and latin.rows_rejected == 60
    last = run(path, db, encoding="gb18030", duplicates="last")
    assert not last.reused and last.rows_rejected == 1 and last.run_id not in (first.run_id, latin.run_id)
    assert run(path, db, encoding="gb18030").run_id == first.run_id  # and the first is still found
    assert counts(db)["runs"] == 3


def test_an_edit_that_keeps_size_and_time_is_still_seen(tmp_path):
    import os

    path = tmp_path / "r.csv"
    rows = table_rows(make_registry(100, seed=4))
    text = "\n".join([",".join(rows[0]), *(",".join(r.values()) for r in rows)]) + "\n"
    path.write_text(text, encoding="utf-8")
    db = tmp_path / "r.sqlite"
    first = run(path, db)
    stat = path.stat()
    edited = text.replace(",0,0,0,false,false\n", ",1,0,0,false,false\n", 1)  # one more outfall, same size
    assert len(edited) == len(text) and edited != text
    path.write_text(edited, encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = run(path, db)
    assert not second.reused and second.total_yuan == first.total_yuan + 1_000_000


def test_a_changed_file_is_scored_again(tmp_path):
    path = tmp_path / "r.csv"
    pacsv.write_csv(make_registry(50, seed=1), path)
    db = tmp_path / "r.sqlite"
    first = run(path, db)
    pacsv.write_csv(make_registry(50, seed=2), path)
    assert not run(path, db).reused and first.run_id


# --- changes ------------------------------------------------------------------------------------


def test_changes_between_two_runs(tmp_path, cli):
    table = make_registry(200, seed=9, case_share=0.0)
    rows = table_rows(table)
    path = tmp_path / "r.csv"

    def write(rows):
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    rows[0].update(high_pollution="true")  # on restricted_loans in both runs
    rows[1].update(high_energy="true")  # leaves restricted_loans
    rows[2].update(untreated_outfalls="1")  # 1 -> 3 outfalls: changed amount
    rows[3].update(untreated_outfalls="2")  # disappears
    write(rows)
    db = tmp_path / "r.sqlite"
    first = run(path, db)
    rows[1].update(high_energy="false")
    rows[2].update(untreated_outfalls="3")
    rows[3].update(untreated_outfalls="0")
    rows[4].update(illegal_discharge_cases="1")  # enters the blacklist
    rows[5].update(industrial="true", direct_discharge_cases="1")  # a new finding; enters the blacklist
    write(rows)
    second = run(path, db)
    result = cli("changes", "--db", db, "--since", first.run_id, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["since"], report["run"]) == (first.run_id, second.run_id)
    entered = {(i["list"], i["uscc"]) for i in report["lists"]["entered"]["items"]}
    assert entered == {("green_credit_blacklist", rows[4]["uscc"]), ("green_credit_blacklist", rows[5]["uscc"])}
    assert report["lists"]["left"]["items"] == [{"list": "restricted_loans", "uscc": rows[1]["uscc"]}]
    findings = report["findings"]
    assert [(i["uscc"], i["amount_yuan"]) for i in findings["appeared"]["items"]] == [(rows[5]["uscc"], 10_000_000)]
    assert [(i["uscc"], i["amount_yuan"]) for i in findings["disappeared"]["items"]] == [(rows[3]["uscc"], 2_000_000)]
    assert [(i["uscc"], i["before_yuan"], i["after_yuan"]) for i in findings["changed"]["items"]] == [
        (rows[2]["uscc"], 1_000_000, 3_000_000)]
    moved = {d["district"]: d["change_yuan"] for d in report["districts"]}
    expected: dict[str, int] = {}
    for row, change in ((rows[2], 2_000_000), (rows[3], -2_000_000), (rows[5], 10_000_000)):
        expected[row["district"]] = expected.get(row["district"], 0) + change
    assert moved == {d: c for d, c in expected.items() if c}
    assert report["total_yuan"]["change"] == 10_000_000
    text = cli("changes", "--db", db, "--since", "previous")
    assert text.exit_code == 0 and "entered: 2" in text.output and rows[4]["uscc"] in text.output


# --- export -------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["runs", "findings", "district_totals", "sanctions", "rejects"])
def test_export_csv_and_parquet(tmp_path, cli, table):
    registry = make_registry(300, seed=5, case_share=0.3)
    rows = table_rows(registry)
    rows[0]["industrial"] = "perhaps"
    path = tmp_path / "r.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    db = tmp_path / "r.sqlite"
    summary = run(path, db)
    key = "id" if table == "runs" else "run_id"
    connection = sqlite3.connect(db)
    cursor = connection.execute(f"SELECT * FROM {table} WHERE {key} = ?", (summary.run_id,))
    names = [d[0] for d in cursor.description]
    stored = sorted(cursor.fetchall(), key=repr)
    assert stored
    for suffix in ("csv", "parquet"):
        out = tmp_path / f"{table}.{suffix}"
        result = cli("export", "--db", db, "--run", "latest", "--table", table, "--out", out)
        assert result.exit_code == 0, result.output
        read = pq.read_table(out) if suffix == "parquet" else pacsv.read_csv(
            out, convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}))
        assert read.column_names == names
        got = sorted((tuple(r.values()) for r in read.to_pylist()), key=repr)
        if suffix == "csv":
            stored_text = sorted((tuple(None if v is None else str(v) for v in r) for r in stored), key=repr)
            got = [tuple(None if v in (None, "") else v for v in r) for r in got]
            stored_text = [tuple(None if v in (None, "") else v for v in r) for r in stored_text]
            assert sorted(got, key=repr) == sorted(stored_text, key=repr)
        else:
            assert got == stored


def test_export_errors(tmp_path, cli):
    pq.write_table(make_registry(20, seed=1), tmp_path / "r.parquet")
    db = tmp_path / "r.sqlite"
    run(tmp_path / "r.parquet", db)
    result = cli("export", "--db", db, "--run", "7", "--table", "findings", "--out", tmp_path / "f.csv")
    assert result.exit_code == 2 and "no run 7" in result.output
    result = cli("export", "--db", db, "--run", "1", "--table", "findings", "--out", tmp_path / "f.xlsx")
    assert result.exit_code == 2 and ".csv or .parquet" in result.output
    result = cli("export", "--db", tmp_path / "none.sqlite", "--run", "1", "--table", "findings", "--out", tmp_path / "f.csv")
    assert result.exit_code == 2 and "no such results database" in result.output


def test_export_gb18030_and_bom(tmp_path, cli):
    pq.write_table(make_registry(100, seed=2, case_share=0.5), tmp_path / "r.parquet")
    db = tmp_path / "r.sqlite"
    run(tmp_path / "r.parquet", db)
    for encoding, check in (("gb18030", lambda b: b.decode("gb18030")), ("utf-8-sig", lambda b: b.decode("utf-8-sig"))):
        out = tmp_path / f"d-{encoding}.csv"
        assert cli("export", "--db", db, "--run", "latest", "--table", "district_totals", "--out", out,
                   "--encoding", encoding).exit_code == 0
        data = out.read_bytes()
        assert data.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
        assert '"district"' in check(data) and any(d in check(data) for d in DISTRICTS)


# --- the command line ---------------------------------------------------------------------------


def test_cli_exit_codes_and_json_summary(tmp_path, cli):
    good = tmp_path / "good.parquet"
    pq.write_table(make_registry(100, seed=6, case_share=0.3), good)
    db = tmp_path / "r.sqlite"
    result = cli("run", "--registry", good, "--out", db, "--as-of", "2012-04-14", "--format", "json")
    assert result.exit_code == EXIT_DONE, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "done" and summary["rows_in"] == 100 and summary["exit_code"] == 0
    assert summary["rows_in"] == summary["rows_scored"] + summary["rows_rejected"]
    assert sum(d["deduction_yuan"] for d in summary["district_totals"]) == summary["total_yuan"]
    assert set(summary["list_entries"]) <= {"green_credit_blacklist", "restricted_loans"}
    assert "\r" not in result.stderr  # no progress bar when stderr is not a terminal

    bad = tmp_path / "bad.csv"
    rows = table_rows(make_registry(10, seed=7))
    rows[3]["untreated_outfalls"] = "many"
    with bad.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = cli("run", "--registry", bad, "--out", db, "--as-of", "2012-04-14")
    assert result.exit_code == EXIT_REJECTS, result.output
    assert "1 rejected" in result.stdout and "untreated_outfalls" in result.stdout

    no_column = tmp_path / "short.csv"
    no_column.write_text("uscc,district\n91410100MA44MPDT7X,金水区\n", encoding="utf-8")
    result = cli("run", "--registry", no_column, "--out", db, "--format", "json")
    assert result.exit_code == EXIT_FAILED
    failure = json.loads(result.stdout)
    assert failure["status"] == "failed" and "zhengzhou.eco_water_interception@2011" in failure["error"]

    result = cli("run", "--registry", tmp_path / "missing.csv", "--out", db)
    assert result.exit_code == EXIT_FAILED and "no such file" in result.stderr
    # a run refused before it began leaves no empty store behind where there was none
    result = cli("run", "--registry", tmp_path / "missing.csv", "--out", tmp_path / "new.sqlite")
    assert result.exit_code == EXIT_FAILED and not list(tmp_path.glob("new.sqlite*"))
    result = cli("run", "--registry", good, "--out", tmp_path / "no" / "dir" / "r.sqlite")
    assert result.exit_code == EXIT_FAILED and "cannot open the results database" in result.stderr
    result = cli("run", "--registry", good, "--out", db, "--encoding", "klingon")
    assert result.exit_code == EXIT_FAILED and "unknown encoding 'klingon'" in result.stderr


def test_failed_run_is_recorded_and_leaves_no_results(tmp_path, monkeypatch):
    pq.write_table(make_registry(300, seed=8, case_share=0.5), tmp_path / "r.parquet")
    db = tmp_path / "r.sqlite"
    calls = {"n": 0}

    class Exploding:
        def __init__(self, policies, domain):
            self.inner = COMPILE(policies, domain=domain)
            self.columns, self.rules = self.inner.columns, self.inner.rules
            self.findings, self.sanctions = self.inner.findings, self.inner.sanctions

        def score(self, table, **options):
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("kernel on fire")
            return self.inner.score(table, **options)

    with pytest.raises(RuntimeError, match="on fire"):
        run(tmp_path / "r.parquet", db, batch_rows=64, compile_program=Exploding)
    connection = sqlite3.connect(db)
    assert connection.execute("SELECT status, error FROM runs").fetchall() == [("failed", "RuntimeError: kernel on fire")]
    assert counts(db) == {"runs": 1, "findings": 0, "finding_chunks": 0, "finding_slots": 0, "district_totals": 0,
                          "sanctions": 0, "sanction_chunks": 0, "sanction_slots": 0, "rejects": 0}
    assert run(tmp_path / "r.parquet", db).exit_code == EXIT_DONE


def test_gen_registry_command(tmp_path, cli):
    pytest.importorskip("ecorules.engine._generate")
    for name, headers in (("g.parquet", "names"), ("g.csv", "labels")):
        result = cli("gen-registry", "--rows", 200, "--seed", 3, "--out", tmp_path / name, "--headers", headers)
        assert result.exit_code == 0, result.output
    assert pq.read_table(tmp_path / "g.parquet").num_rows == 200
    header = (tmp_path / "g.csv").read_text(encoding="utf-8").splitlines()[0]
    assert "统一社会信用代码" in header and "所属区县" in header
    summary = run(tmp_path / "g.csv", tmp_path / "r.sqlite")
    assert summary.rows_in == 200
    assert cli("gen-registry", "--rows", 5, "--out", tmp_path / "g.txt").exit_code == 2


# --- progress -----------------------------------------------------------------------------------


def test_progress_is_silent_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(1000, stream)
    progress.update(500)
    progress.close()
    assert not progress.enabled and stream.getvalue() == ""


def test_progress_on_a_terminal_shows_rate_and_eta():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    progress = Progress(1000, stream, interval=0)
    progress.update(250)
    progress.close()
    text = stream.getvalue()
    assert "250 rows" in text and "rows/s" in text and "ETA" in text and "25%" in text
    assert text.endswith("\r\033[K")


def test_json_rows_escape_what_json_needs():
    from ecorules.engine._chunks import _json_rows

    texts = pa.array(['plain', 'quote " inside', "back\\slash", "tab\tand\nnewline", "金水区", "\x01"])
    numbers = pa.array([0, -1, 2**62, 7, 10_000_000, 3], pa.int64())
    assert json.loads(_json_rows([texts, numbers])) == [[t, n] for t, n in zip(texts.to_pylist(), numbers.to_pylist(), strict=True)]
    assert json.loads(_json_rows([texts])) == texts.to_pylist()
    assert json.loads(_json_rows([pa.array(["91410100MAMJDNG424"])], (True,))) == ["91410100MAMJDNG424"]


def test_progress_bar_drawn_on_a_real_terminal_only(tmp_path):
    """`ecorules run` in a child whose stderr is a pseudo-terminal, then a pipe."""
    import os
    import pty
    import subprocess
    import sys

    pytest.importorskip("ecorules.fastcalc._kernel")  # the child scores with the kernel
    registry = tmp_path / "r.parquet"
    pq.write_table(make_registry(3000, seed=1), registry)
    command = [sys.executable, "-m", "ecorules.engine", "run", "--registry", str(registry),
               "--out", str(tmp_path / "r.sqlite"), "--as-of", "2012-04-14", "--batch-rows", "500", "--force"]
    master, slave = pty.openpty()
    child = subprocess.run(command, stdout=subprocess.PIPE, stderr=slave, timeout=120)
    os.close(slave)
    drawn = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    assert child.returncode == 0
    text = drawn.decode()
    assert "\r" in text and "rows/s" in text and "ETA" in text
    piped = subprocess.run(command, capture_output=True, timeout=120)
    assert piped.returncode == 0 and b"\r" not in piped.stderr and b"rows/s" not in piped.stderr


def test_json_codes_is_json_rows_for_any_slice_of_codes():
    import numpy as np
    from ecorules.engine._chunks import _json_codes, _json_rows
    from ecorules.rules._uscc import make_uscc

    codes = pa.array(make_uscc(np.random.default_rng(2), np.full(1000, 410102)).astype(str))
    for part in (codes, codes.slice(7, 300), codes.take(pa.array([5, 3, 900])), codes.slice(3, 1),
                 pa.array(["short", "A" * 18]), pa.array(["A" * 18, None])):
        assert _json_codes(part) == _json_rows([part], (True,))


def test_a_run_never_imports_pandas(tmp_path):
    """pyarrow imports pandas (0.2-0.5 s of a 10 M-row run, holding the GIL) on the first
    conversion of a Python value or to_numpy call; the run's path uses rules/_arrow instead."""
    import subprocess
    import sys

    pq.write_table(make_registry(3000, seed=5, case_share=0.3), tmp_path / "r.parquet")
    registries = [tmp_path / "r.parquet"] + [p for p in (EXAMPLES / "registry_bad.csv",) if p.exists()]
    code = (
        "import sys, datetime as dt\n"
        "from ecorules.engine._nightly import run_nightly\n"
        "for k, registry in enumerate(sys.argv[2:]):\n"
        "    summary = run_nightly(registry, sys.argv[1] + str(k), as_of=dt.date(2012, 4, 14), threads=2, progress=False)\n"
        "    assert summary.status == 'done' and (summary.findings or k), summary\n"
        # and with the example case table: its masked columns, dates and payers
        f"summary = run_nightly({str(EXAMPLES / 'registry.csv')!r}, sys.argv[1] + 'cases', as_of=dt.date(2025, 6, 30), "
        f"cases={str(EXAMPLES / 'cases.csv')!r}, progress=False)\n"
        "assert summary.total_yuan == 150_271_250, summary\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pandas'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out.sqlite"), *map(str, registries)],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
