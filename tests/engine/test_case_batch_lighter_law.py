"""行政处罚法 art 37 in the batch run: ``ecorules run --cases`` equals
``Evaluator.evaluate_group`` case by case on tests/data/lighter_law (with a second statute
whose versions differ in list entries and fees, and an enterprise policy the run needs), on
a generated case table: acts before and after 2018-01-01 and 2020-01-01, decided or not,
decided after as_of, continuing acts spanning a change, pollutant fees that make either
version lighter. And on the shipped policies with examples/cases.csv."""

from __future__ import annotations

import datetime as dt
import re
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

DATA = Path(__file__).parent.parent / "data" / "lighter_law"
EXAMPLES = Path(__file__).parent.parent.parent / "examples"
AS_OF = dt.date(2021, 6, 1)
ENTERPRISES, CASES = 40, 1500

# a statute whose two versions fine nothing: the lighter is the one with fewer list entries,
# then the smaller fee (the third rank of severity)
LIST_LAW = """policy:
  id: test.list_law
  title: 测试名录法
  authority: 测试
  document: 测试名录法({version})
  version: "{version}"
  effective: {effective}
{expires}  domain: case
lists:
  watch: {{title: 重点关注}}
parameters:
  list_from:
    type: integer
    values:
      - {{from: {effective}, value: {threshold}, reference: 测试}}
rules:
  - id: listed
    title: 超标排放,收费并列入名录
    citation: {{document: 测试名录法({version}), article: 第一条, text: 测试}}
    when: act == 'over_standard'
    findings:
      - {{kind: fee, amount: "pollutant_fee_yuan * {multiple}", payer: enterprise}}
  - id: watched
    title: 列入重点关注名录
    citation: {{document: 测试名录法({version}), article: 第二条, text: 测试}}
    when: act == 'over_standard' and pollutant_fee_yuan >= list_from
    sanctions:
      - {{list: watch, reason: 排污费数额较大}}
"""
WATCH = """policy:
  id: test.watch
  title: 测试
  authority: 测试
  document: 测试
  version: "1"
  effective: 2000-01-01
lists:
  named: {title: 测试}
rules:
  - id: named
    title: 测试
    citation: {document: 测试, text: 测试}
    when: uscc == ''
    sanctions:
      - {list: named, reason: 测试}
"""


def _folder(folder: Path, law: str | None = None) -> Path:
    for file in DATA.iterdir():
        text = file.read_text(encoding="utf-8")
        if law is not None and file.name == "cases.yaml":
            text = text.replace("law: value_or(act_end, act_date)", f"law: {law}")
            assert law in text
        (folder / file.name).write_text(text, encoding="utf-8")
    (folder / "list_2010.yaml").write_text(LIST_LAW.format(
        version="2010", effective="2010-01-01", expires="  expires: 2020-01-01\n", threshold=100000, multiple=1),
        encoding="utf-8")
    (folder / "list_2020.yaml").write_text(LIST_LAW.format(
        version="2020", effective="2020-01-01", expires="", threshold=300000, multiple=2), encoding="utf-8")
    (folder / "watch.yaml").write_text(WATCH, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _folder(tmp_path_factory.mktemp("lighter_policies"))


def _dates(rng, n):
    """Days around the changes (2008-06-01, 2010-01-01, 2018-01-01, 2020-01-01) and as_of."""
    anchors = np.array(["2008-06-01", "2010-01-01", "2018-01-01", "2020-01-01", "2021-06-01"], "datetime64[D]")
    near = anchors[rng.integers(0, anchors.size, n)] + rng.integers(-400, 400, n)
    anywhere = np.datetime64("2005-01-01") + rng.integers(0, 365 * 18, n)
    return np.where(rng.random(n) < 0.7, near, anywhere)


def _table(usccs: list[str], n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    act_date = _dates(rng, n)
    act_end = act_date + rng.integers(1, 900, n)  # continuing acts, some across a change
    has_end = rng.random(n) < 0.3
    decided = np.maximum(act_date, np.where(has_end, act_end, act_date)) + rng.integers(0, 1200, n)
    has_decided = rng.random(n) < 0.7  # some after as_of: not decided yet as of the run
    # fees around 50,000 (2008 fines 2x, equal to 100,000), the list thresholds, and beyond
    fee = rng.choice([0, 10, 49999, 50000, 50001, 75000, 99999, 100000, 150000, 299999, 300000, 400000], n)
    return pa.table({
        "case_id": [f"L{i:05d}" for i in range(n)],
        "uscc": [usccs[i] for i in rng.integers(0, len(usccs), n)],
        "act": np.where(rng.random(n) < 0.9, "over_standard", "other").astype(object).tolist(),
        "act_date": act_date.astype(str).tolist(),
        "act_end": [str(d) if h else "" for d, h in zip(act_end, has_end, strict=True)],
        "decided": [str(d) if h else "" for d, h in zip(decided, has_decided, strict=True)],
        "pollutant_fee_yuan": fee.tolist(),
    })


# 2019-06-01: cases decided from 2020-01-01 on are decided after the run, so the law of
# as_of, not of their decision date, is the later law
@pytest.fixture(scope="module", params=[AS_OF, dt.date(2019, 6, 1)], ids=str)
def world(folder, tmp_path_factory, request):
    as_of = request.param
    out = tmp_path_factory.mktemp("lighter_run")
    usccs = generate_registry(ENTERPRISES, 3)["uscc"].combine_chunks().to_pylist()
    cases = _table(usccs, CASES, 4)
    pacsv.write_csv(pa.table({"uscc": usccs}), out / "enterprises.csv")
    pacsv.write_csv(cases, out / "cases.csv")
    summary = run_nightly(out / "enterprises.csv", out / "results.sqlite", policies=folder, as_of=as_of,
                          cases=out / "cases.csv", threads=2)
    db = sqlite3.connect(out / "results.sqlite")
    return {"usccs": usccs, "cases": cases, "summary": summary, "db": db, "as_of": as_of}


def _expected(policies, usccs, cases, as_of, parent=None):
    by_enterprise: dict[str, list] = {}
    for row in cases:
        by_enterprise.setdefault(row["uscc"], []).append({k: v for k, v in row.items() if v not in (None, "")})
    findings, lists, lighter, notes = Counter(), Counter(), 0, Counter()
    with Evaluator(policies, backend="python") as evaluator:
        for uscc in usccs:
            enterprise = parent(uscc) if parent else {"uscc": uscc}
            group = evaluator.evaluate_group(enterprise, by_enterprise.get(uscc, []), as_of=as_of)
            for f in group.findings:
                findings[(uscc, f.record, f.policy, f.rule, f.amount_yuan, f.status, f.superseded_by, f.law_note)] += 1
            for part in (*group.children, *((group.parent,) if group.parent else ())):
                for s in part.sanctions:
                    lists[(s.uscc, s.list, s.rule)] += 1
            for child in group.children:
                lighter += bool(child.law_note and "从轻" in child.law_note)
                for statute, how in re.findall(r"(\S+): (从旧|从轻|行为时无此规定)", child.law_note or ""):
                    notes[f"{statute}: {how}"] += 1
    return findings, lists, lighter, notes


def _found(db, run):
    findings = Counter(
        (r[0], r[1], r[2], r[3], int(r[4]), r[5], r[6], r[7])
        for r in db.execute("SELECT uscc, case_id, policy, rule, amount_yuan, status, superseded_by, law_note "
                            "FROM findings WHERE run_id = ?", (run,)))
    lists = Counter(db.execute("SELECT uscc, list, rule FROM sanctions WHERE run_id = ?", (run,)).fetchall())
    return findings, lists


def test_the_batch_run_judges_each_case_by_the_law_in_force_as_evaluate_group_does(world, folder):
    findings, lists, lighter, notes = _expected(load_policies(folder), world["usccs"], world["cases"].to_pylist(),
                                                world["as_of"])
    found, found_lists = _found(world["db"], world["summary"].run_id)
    assert found == findings
    assert found_lists == lists
    assert world["summary"].lighter_law == lighter
    decided = [d for d in world["cases"]["decided"].to_pylist() if d]
    assert sum(d > str(world["as_of"]) for d in decided) > 100  # decided after the run
    if world["as_of"] != AS_OF:
        return
    # the table exercises what it is meant to: both versions of both statutes applied, the
    # lighter later law chosen by fines, by list entries and by fees, and 从旧 despite a change
    versions = Counter(key[2] for key in found.elements())
    assert min(versions[v] for v in ("test.water_law@2008", "test.water_law@2017",
                                     "test.list_law@2010", "test.list_law@2020")) > 20
    assert notes["test.water_law: 从轻"] > 20 and notes["test.list_law: 从轻"] > 20
    assert notes["test.water_law: 从旧"] > 20 and notes["test.water_law: 行为时无此规定"] > 5
    amounts = Counter((key[2], key[4]) for key in found.elements())
    assert amounts[("test.water_law@2017", 150000)] > 5  # the 2020 value of the dated parameter
    # each finding carries its own note in the ledger: all three outcomes, 从轻 with its figures
    kinds = Counter(key[7].split(" ", 2)[0] + ("" if "未修改" in key[7] else "+") for key in found.elements())
    assert min(kinds["从旧:"], kinds["从旧:+"], kinds["从轻:+"]) > 20
    assert any(re.fullmatch(r"从轻: 决定时的规定 test\.water_law@2017 较轻,罚款 [\d,]+ 元 < test\.water_law@2008 [\d,]+ 元",
                            key[7]) for key in found)


def test_a_law_date_the_batch_does_not_vectorise_is_computed_by_the_reference(tmp_path):
    # max() is not among the forms law_days computes with columns: row by row, as evaluate does
    law = "max(act_date, value_or(act_end, act_date))"
    (tmp_path / "policies").mkdir()
    folder = _folder(tmp_path / "policies", law)
    usccs = generate_registry(5, 3)["uscc"].combine_chunks().to_pylist()
    cases = _table(usccs, 300, 6)
    pacsv.write_csv(pa.table({"uscc": usccs}), tmp_path / "enterprises.csv")
    pacsv.write_csv(cases, tmp_path / "cases.csv")
    summary = run_nightly(tmp_path / "enterprises.csv", tmp_path / "results.sqlite", policies=folder, as_of=AS_OF,
                          cases=tmp_path / "cases.csv")
    policies = load_policies(folder)
    assert policies.kinds["case"].law_date_text == law
    findings, lists, lighter, _ = _expected(policies, usccs, cases.to_pylist(), AS_OF)
    found, found_lists = _found(sqlite3.connect(tmp_path / "results.sqlite"), summary.run_id)
    assert (found, found_lists, summary.lighter_law) == (findings, lists, lighter)
    assert lighter > 5


def test_the_run_summary_counts_the_lighter_law(world):
    summary = world["summary"]
    assert summary.lighter_law > 40
    assert summary.to_dict()["lighter_law"] == summary.lighter_law
    assert f"{summary.lighter_law:,} cases" in summary.render_text()


def _shifted(text: str, years: int) -> str:
    """The example table with every date ``years`` earlier (29 February becomes the 28th)."""
    def back(match):
        year, month, day = int(match[1]) - years, match[2], match[3]
        return f"{year}-{month}-{'28' if (month, day) == ('02', '29') else day}"

    return re.sub(r"\b(20\d\d)-(\d\d)-(\d\d)\b", back, text)


# 0: the table as shipped (every act after the last change, 2021-07-15); 3 and 6 years back:
# acts before 2021-07-15 (no late payment surcharge yet, two years' limitation) and before
# 2018-01-01 (no version of 水污染防治法(2017) at the act), decided or decided as of the run
@pytest.mark.parametrize("years", [0, 3, 6])
def test_the_shipped_policies_on_the_example_case_table(tmp_path, years):
    as_of = dt.date(2025, 6, 30)
    table = tmp_path / "cases.csv"
    table.write_text(_shifted((EXAMPLES / "cases.csv").read_text(encoding="utf-8"), years), encoding="utf-8")
    summary = run_nightly(EXAMPLES / "registry.csv", tmp_path / "r.sqlite", as_of=as_of, cases=table)
    registry = {row["uscc"]: row for row in pacsv.read_csv(EXAMPLES / "registry.csv").to_pylist()}
    policies = load_policies()  # the shipped folder
    assert policies.kinds["case"].law_date is not None  # the shipped cases are judged by art 37
    from ecorules.engine._sources import ColumnResolver, Registry

    cases = []
    columns = [name for name, fact in policies.facts.items() if fact.record_kind == "case" and fact.rollup is None]
    resolver = ColumnResolver(policies.facts, {name: ["test"] for name in ["uscc", *columns]}, None,
                              optional=tuple(columns))
    for batch in Registry(table, resolver, batch_rows=1000).batches():
        cases.extend(batch.table.to_pylist())
    db = sqlite3.connect(tmp_path / "r.sqlite")
    # 6 years back, two acts of 2017 under art 84 fall to the 2008 version, which encodes only
    # art 74: rejects for legal staff (the library raises RecordCheckError on them), not "no
    # violation"
    rejected = db.execute("SELECT row, \"column\", reason FROM rejects WHERE run_id = ? AND source LIKE '%cases%'",
                          (summary.run_id,)).fetchall()
    assert [(row, column) for row, column, _ in rejected] == ([(4, "处罚依据"), (5, "处罚依据")] if years == 6 else [])
    assert all("2008年版本中的对应规定未编码" in reason for _, _, reason in rejected)
    judged = [case for case in cases if not (years == 6 and case["case_id"] in ("ZZ-2023-007", "ZZ-2023-008"))]
    findings, lists, lighter, notes = _expected(policies, list(registry), judged, as_of,
                                                parent=lambda uscc: registry[uscc])
    found, _ = _found(db, summary.run_id)
    case_findings = Counter({key: n for key, n in found.items() if key[1] is not None})
    assert case_findings == Counter({key: n for key, n in findings.items() if key[1] is not None})
    assert summary.lighter_law == lighter
    rules = {(key[1], key[3]) for key in case_findings}
    assert (("ZZ-2024-011", "late_payment_surcharge") in rules) == (years == 0)  # in force 2021-07-15
    assert (("ZZ-2023-008", "art84_2_illegal_outfall") in rules) == (years < 6)  # act 2017-01-01
    assert notes["prc.water_pollution_fines: 行为时无此规定"] == 0  # the 2008 version is at every act since 2008


def test_a_results_database_without_law_notes_gains_the_column_and_keeps_its_findings(tmp_path):
    from ecorules.engine import store
    from ecorules.engine.store.sqlite import _element

    path = tmp_path / "old.sqlite"
    run_nightly(EXAMPLES / "registry.csv", path, as_of=dt.date(2012, 4, 14))
    connection = sqlite3.connect(path)
    before = connection.execute("SELECT uscc, policy, rule, amount_yuan FROM findings ORDER BY 1, 2, 3").fetchall()
    connection.executescript(  # the findings as every store before law notes held them
        "DROP VIEW findings; ALTER TABLE finding_chunks DROP COLUMN law_note; CREATE VIEW findings AS "
        + store.FINDINGS_VIEW.replace(f",\n           coalesce({_element('law_note')}, c.law_note) AS law_note", "") + ";")
    assert "law_note" not in [d[0] for d in connection.execute("SELECT * FROM findings LIMIT 1").description]
    connection.close()
    connection = store.connect(path)
    rows = connection.execute("SELECT uscc, policy, rule, amount_yuan, law_note FROM findings ORDER BY 1, 2, 3").fetchall()
    assert [row[:4] for row in rows] == before and before
    assert {row[4] for row in rows} == {None}  # the registry's findings: the run's as_of chose the law
    connection.close()


def test_the_shipped_2008_and_2017_water_laws_in_the_batch_as_in_the_library(tmp_path):
    # 水污染防治法 2008 art 74 (2 to 5 times the pollutant fee) beside 2017 art 83 item (二)
    # (100,000 to 1,000,000): over-standard acts around 2018-01-01, coded under either clause,
    # decided before, after or not at all, fees making either version the lighter, some decided
    # fines and some fees missing (a reject under the 2008 version, never a fine of 0)
    as_of = dt.date(2019, 6, 30)
    registry = pacsv.read_csv(EXAMPLES / "registry.csv")
    usccs = registry["uscc"].to_pylist()
    rng = np.random.default_rng(8)
    n = 400
    act = np.datetime64("2018-01-01") + rng.integers(-700, 500, n)
    decided = act + rng.integers(20, 500, n)
    fee = rng.choice([10000, 20000, 49999, 50000, 50001, 200000, 600000], n)
    coded_2008 = rng.random(n) < 0.5
    fine = np.where(coded_2008, fee * rng.integers(2, 6, n), rng.integers(100000, 1000001, n))
    has_fine = rng.random(n) < 0.3
    has_fee = rng.random(n) < 0.93
    cases = pa.table({
        "case_id": [f"W{i:04d}" for i in range(n)],
        "act_id": [""] * n,
        "uscc": [usccs[i] for i in rng.integers(0, len(usccs), n)],
        "clause": np.where(coded_2008, "wppcl2008_art74", "wppcl2017_art83_2").astype(object).tolist(),
        "act_date": act.astype(str).tolist(),
        "discovered": (act + 10).astype(str).tolist(),
        "decided": [str(d) if rng.random() < 0.8 else "" for d in decided],
        "fine_yuan": [str(f) if h else "" for f, h in zip(fine, has_fine, strict=True)],
        "pollutant_fee_yuan": [str(f) if h else "" for f, h in zip(fee, has_fee, strict=True)],
    })
    # the shipped case table's other columns, left empty (every one optional)
    header = (EXAMPLES / "cases.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    names = {"案件编号", "违法行为编号", "统一社会信用代码", "处罚依据", "违法行为发生日", "发现日", "处罚决定日",
             "罚款数额", "应缴纳排污费数额"}
    for column in header:
        if column not in names:
            cases = cases.append_column(column, pa.array([""] * n))
    pacsv.write_csv(cases, tmp_path / "cases.csv")
    summary = run_nightly(EXAMPLES / "registry.csv", tmp_path / "r.sqlite", as_of=as_of, cases=tmp_path / "cases.csv")
    db = sqlite3.connect(tmp_path / "r.sqlite")
    rejected = dict(db.execute("SELECT row, \"column\" FROM rejects WHERE run_id = ? AND source LIKE '%cases%'",
                               (summary.run_id,)).fetchall())
    rows = cases.to_pylist()
    # a missing fee is a reject exactly where the 2008 version judges the case: its act before 2018
    assert rejected == {i + 2: "pollutant_fee_yuan" for i, row in enumerate(rows)
                        if not row["pollutant_fee_yuan"] and row["act_date"] < "2018-01-01"}
    judged = [row for i, row in enumerate(rows) if i + 2 not in rejected]  # rows counted as the file's lines
    by_uscc = {row["uscc"]: row for row in registry.to_pylist()}
    findings, _, lighter, notes = _expected(load_policies(), usccs, judged, as_of, parent=lambda uscc: by_uscc[uscc])
    found, _ = _found(db, summary.run_id)
    case_findings = Counter({key: n for key, n in found.items() if key[1] is not None})
    assert case_findings == Counter({key: n for key, n in findings.items() if key[1] is not None})
    assert summary.lighter_law == lighter
    # both outcomes of art 37 occur, and each version imposes fines
    imposed = Counter(key[2] for key in case_findings.elements() if key[5] == "imposed" and key[3].startswith("art"))
    assert imposed["prc.water_pollution_fines@2008"] > 30 and imposed["prc.water_pollution_fines@2017"] > 30
    assert notes["prc.water_pollution_fines: 从轻"] > 10 and notes["prc.water_pollution_fines: 从旧"] > 30


def test_a_lighter_law_note_is_written_once_per_chunk_not_in_each_finding(world):
    # a 从轻 note names the case's figures, but the figures of a statute change are few: the
    # findings of one note share a chunk and the chunk's law_note (the findings view reads it
    # where a row has no note of its own), so no finding row carries its note's text
    db, run = world["db"], world["summary"].run_id
    own = db.execute("SELECT count(*) FROM finding_chunks c JOIN finding_slots s USING (run_id, slot), "
                     "json_each(c.rows) e WHERE c.run_id = ? AND s.layout = 14 AND e.value ->> 9 IS NOT NULL",
                     (run,)).fetchone()[0]
    lighter = db.execute("SELECT count(*), count(DISTINCT law_note) FROM findings WHERE run_id = ? "
                         "AND law_note LIKE '从轻%'", (run,)).fetchone()
    chunks = db.execute("SELECT count(*) FROM finding_chunks WHERE run_id = ? AND law_note LIKE '从轻%'",
                        (run,)).fetchone()[0]
    assert own == 0
    assert lighter[0] > 20 and 1 < lighter[1] <= chunks < lighter[0]
