"""A roll-up whose where counts working days (行政处罚法 art 85) on a case outside the holiday
table: the enterprise whose count it is cannot be judged, so the reference (both backends)
and the batch run reject the enterprise with its cases, naming the roll-up, the case and its
date, and score the other enterprises; a case the roll-up does not count rejects nothing."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import pytest
from ecorules.engine import Evaluator, load_policies
from ecorules.engine._nightly import run_nightly
from ecorules.rules import RecordCheckError
from ecorules.rules._workdays import CalendarError

ROOT = Path(__file__).resolve().parents[2]
A, B, C = "91410100123456788Y", "91350200MA31E12PXF", "9144030071526726XG"
AS_OF = dt.date(2025, 12, 1)
LATE = "is_set(served) and is_set(paid) and paid > add_working_days(served, 5)"
CASES_YAML = f"""\
kind: case
key: case_id
parent: enterprise
facts:
  case_id: {{type: string}}
  act_date: {{type: date, min: 2000-01-01, max: 2099-12-31}}
  served: {{type: date, optional: true, min: 2000-01-01, max: 2099-12-31}}
  paid: {{type: date, optional: true, min: 2000-01-01, max: 2099-12-31}}
rollups:
  paid_late:
    for: {{target}}
    count: true
{{window}}    where: "{LATE}"
"""
ENTERPRISE_POLICY = """\
policy: {id: test.late, title: 迟延, authority: 测试, document: 测试, version: "1", effective: 2000-01-01}
rules:
  - id: repeat
    title: repeat
    citation: {document: 测试, text: 测试}
    when: paid_late > 0
    findings:
      - {kind: fee, amount: paid_late * 100, payer: enterprise}
"""
CASE_POLICY = """\
policy: {id: test.casefine, title: 案件, authority: 测试, document: 测试, version: "1", effective: 2000-01-01, domain: case}
rules:
  - id: fine
    title: fine
    citation: {document: 测试, text: 测试}
    when: true
    findings:
      - {kind: fine, amount: "1000 + {read}", payer: enterprise}
"""
# c3's served day (2023-12-20) is before the table (2024-2026); c6 (2023) is in no window:
# neither the 2 years before as_of nor the year before c7 (2025-06-01)
CASES = [("c1", A, "2024-03-01", "2024-03-04", "2024-03-20"), ("c2", A, "2025-03-01", "2025-03-03", "2025-03-05"),
         ("c3", B, "2024-06-01", "2023-12-20", "2024-01-10"), ("c4", B, "2025-06-01", "", ""),
         ("c5", C, "2025-01-01", "2025-01-02", "2025-02-01"), ("c6", C, "2023-01-01", "2023-01-02", "2023-02-01"),
         ("c7", C, "2025-06-01", "", "")]
REASON = ("paid_late cannot be counted on case_id c3: add_working_days(served, 5) reaches a day outside the holiday "
          "table holidays.yaml, which covers 2024-01-01 to 2026-12-31 (served = 2023-12-20): legal staff must add "
          "the year from the State Council's notice (行政处罚法 art 85) (roll-up paid_late)")


def _folder(tmp_path: Path, onto: str) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    shutil.copy(ROOT / "tests" / "data" / "cases" / "enterprises.yaml", folder)
    shutil.copy(ROOT / "policies" / "zhengzhou" / "holidays.yaml", folder)
    window = ("    window: {date: act_date, years: 1}\n" if onto == "case"
              else "    window: {date: act_date, before: as_of, years: 2}\n")
    (folder / "cases.yaml").write_text(CASES_YAML.replace("{target}", onto).replace("{window}", window), encoding="utf-8")
    # a run needs an enterprise policy: onto cases, one that reads no roll-up and never fires
    (folder / "late.yaml").write_text(ENTERPRISE_POLICY if onto == "enterprise"
                                      else ENTERPRISE_POLICY.replace("paid_late > 0", "uscc == ''").replace("paid_late * 100", "1"),
                                      encoding="utf-8")
    (folder / "fine.yaml").write_text(CASE_POLICY.replace("{read}", "paid_late" if onto == "case" else "0"),
                                      encoding="utf-8")
    return folder


def _tables(tmp_path: Path, cases) -> tuple[Path, Path]:
    (tmp_path / "enterprises.csv").write_text(
        "uscc,district,industrial\n" + "".join(f"{u},金水区,true\n" for u in (A, B, C)), encoding="utf-8")
    (tmp_path / "cases.csv").write_text(
        "case_id,uscc,act_date,served,paid\n" + "".join(",".join(c) + "\n" for c in cases), encoding="utf-8")
    return tmp_path / "enterprises.csv", tmp_path / "cases.csv"


def _reference(folder: Path, backend: str, cases) -> dict:
    out = {}
    with Evaluator(load_policies(folder), backend=backend) as evaluator:
        for uscc in (A, B, C):
            children = [{k: v for k, v in zip(("case_id", "uscc", "act_date", "served", "paid"), c, strict=True) if v}
                        for c in cases if c[1] == uscc]
            try:
                group = evaluator.evaluate_group({"uscc": uscc, "district": "金水区", "industrial": "true"}, children,
                                                 as_of=AS_OF)
            except RecordCheckError as error:
                assert isinstance(error, CalendarError) and error.subject == uscc
                out[uscc] = [(f.column, f.value, f.reason) for f in error.failures]
                continue
            out[uscc] = sorted((f.record or "", f.rule, f.amount_yuan) for f in group.findings)
    return out


def _batch(tmp_path: Path, folder: Path, cases) -> tuple[dict, list, object]:
    registry, table = _tables(tmp_path, cases)
    summary = run_nightly(registry, tmp_path / "out.sqlite", policies=load_policies(folder), as_of=AS_OF, cases=table)
    return (*_stored(tmp_path / "out.sqlite"), summary)


def _stored(path: Path) -> tuple[dict, list]:
    db = sqlite3.connect(path)
    found: dict[str, list] = {}
    for uscc, case_id, rule, amount in db.execute("SELECT uscc, case_id, rule, amount_yuan FROM findings"):
        found.setdefault(uscc, []).append((case_id or "", rule, amount))
    rejects = db.execute('SELECT source, row, "column", value, reason FROM rejects ORDER BY source, row').fetchall()
    return {k: sorted(v) for k, v in found.items()}, [(Path(s).name, *rest) for s, *rest in rejects]


@pytest.mark.parametrize("onto", ["enterprise", "case"])
def test_an_enterprise_whose_roll_up_cannot_be_counted_is_rejected_by_all_three(tmp_path, onto):
    folder = _folder(tmp_path, onto)
    want = _reference(folder, "python", CASES)
    assert want == _reference(folder, "durable", CASES)
    assert want[B] == [("paid_late", "2023-12-20", REASON)]
    if onto == "enterprise":  # A: c1 paid after its 5th working day; C: c5 and c6
        assert want[A] == [("", "repeat", 100), ("c1", "fine", 1000), ("c2", "fine", 1000)]
        assert want[C] == [("", "repeat", 100), ("c5", "fine", 1000), ("c6", "fine", 1000), ("c7", "fine", 1000)]
    else:  # c2 counts c1 in the year before it; c6 is outside every window of C's cases
        assert want[A] == [("c1", "fine", 1000), ("c2", "fine", 1001)]
        assert want[C] == [("c5", "fine", 1000), ("c6", "fine", 1000), ("c7", "fine", 1001)]
    found, rejects, summary = _batch(tmp_path, folder, CASES)
    assert found == {k: v for k, v in want.items() if k != B}
    why = f"its registry row 3 of {tmp_path / 'enterprises.csv'} was rejected (paid_late '2023-12-20': {REASON})"
    assert rejects == [("cases.csv", 4, "uscc", B, why), ("cases.csv", 5, "uscc", B, why),
                       ("enterprises.csv", 3, "paid_late", "2023-12-20", REASON)]
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (3 + 7, 2 + 5, 1 + 2)


def test_a_case_no_window_counts_rejects_nothing(tmp_path):
    folder = _folder(tmp_path, "case")
    cases = [c for c in CASES if c[0] != "c4"]  # c3 is then the only case of B: no later case counts it
    want = _reference(folder, "python", cases)
    assert want[B] == [("c3", "fine", 1000)]
    found, rejects, _ = _batch(tmp_path, folder, cases)
    assert found == want and rejects == []


def test_a_dask_run_rejects_the_same_enterprise_in_its_registry_partitions(tmp_path):
    distributed = pytest.importorskip("distributed")
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from ecorules.engine.distributed._run import run_distributed

    folder = _folder(tmp_path, "enterprise")
    local = _batch(tmp_path, folder, CASES)
    # a distributed run reads its registry as Parquet; the rejects then name its rows alike
    pq.write_table(pacsv.read_csv(tmp_path / "enterprises.csv"), tmp_path / "enterprises.parquet")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster, distributed.Client(cluster):
        remote = run_distributed(tmp_path / "enterprises.parquet", tmp_path / "dask.sqlite", policies=load_policies(folder),
                                 as_of=AS_OF, cases=tmp_path / "cases.csv", engine="dask",
                                 scheduler=cluster.scheduler.address)
    found, rejects = _stored(tmp_path / "dask.sqlite")
    assert found == local[0]
    assert ("enterprises.parquet", 2, "paid_late", "2023-12-20", REASON) in rejects
    assert len(rejects) == len(local[1]) == 3
    assert remote.to_dict()["tables"] == local[2].to_dict()["tables"]


def test_a_case_whose_law_date_is_outside_the_table_counts_in_no_roll_up(tmp_path):
    # found by the case differential's rare examples: c3 (in the window of 2 years before
    # as_of) has its law date and the roll-up's where count working days outside the table;
    # it is a reject before any roll-up counts it (as the batch does), where evaluate_group
    # raised a bare CalendarError
    folder = _folder(tmp_path, "enterprise")
    text = (folder / "cases.yaml").read_text(encoding="utf-8")
    (folder / "cases.yaml").write_text(
        text.replace("parent: enterprise\n", 'parent: enterprise\ndates:\n  law: "working_day_on_or_after(act_date)"\n', 1),
        encoding="utf-8")
    cases = [("c3", B, "2023-12-15", "2023-12-20", "2024-01-10"), ("c4", B, "2025-06-02", "2025-06-02", "2025-07-01")]
    children = [dict(zip(("case_id", "uscc", "act_date", "served", "paid"), c, strict=True)) for c in cases]
    for backend in ("python", "durable"):
        with Evaluator(load_policies(folder), backend=backend) as evaluator, pytest.raises(RecordCheckError) as error:
            evaluator.evaluate_group({"uscc": B, "district": "金水区", "industrial": "true"}, children, as_of=AS_OF)
        assert isinstance(error.value, CalendarError) and error.value.subject == "c3"
        assert [(f.column, f.value) for f in error.value.failures] == [("act_date", "2023-12-15")]
    found, rejects, _ = _batch(tmp_path, folder, cases)
    assert [reject[:4] for reject in rejects] == [("cases.csv", 2, "act_date", "2023-12-15")]
    assert found == {B: [("", "repeat", 100), ("c4", "fine", 1000)]}  # c4 paid late: counted alone


def test_a_case_whose_law_date_is_outside_the_table_gives_way_to_its_enterprises_reject(tmp_path):
    # casereject (session 9): c3's law date is outside the table, and c5's where counts a
    # working day outside it in B's roll-up: the library refuses B's whole group with the
    # roll-up's reason before it judges any case (engine/_group.judge_group), so every case
    # of B, c3 too, is a reject saying B was rejected, as for an enterprise its own policy
    # rejects (_enterprises.refuse_groups); before, c3 kept its own reject
    folder = _folder(tmp_path, "enterprise")
    text = (folder / "cases.yaml").read_text(encoding="utf-8")
    (folder / "cases.yaml").write_text(
        text.replace("parent: enterprise\n", 'parent: enterprise\ndates:\n  law: "working_day_on_or_after(act_date)"\n', 1),
        encoding="utf-8")
    cases = [("c3", B, "2023-12-15", "2024-03-04", "2024-03-20"), ("c4", B, "2025-06-02", "2025-06-02", "2025-07-01"),
             ("c5", B, "2024-06-03", "2023-12-20", "2024-01-10"), ("c1", A, "2024-03-01", "2024-03-04", "2024-03-20")]
    children = [dict(zip(("case_id", "uscc", "act_date", "served", "paid"), c, strict=True)) for c in cases if c[1] == B]
    reason = REASON.replace("case_id c3", "case_id c5")
    for backend in ("python", "durable"):
        with Evaluator(load_policies(folder), backend=backend) as evaluator, pytest.raises(RecordCheckError) as error:
            evaluator.evaluate_group({"uscc": B, "district": "金水区", "industrial": "true"}, children, as_of=AS_OF)
        assert isinstance(error.value, CalendarError) and error.value.subject == B  # the enterprise's, not c3's
        assert [(f.column, f.value, f.reason) for f in error.value.failures] == [("paid_late", "2023-12-20", reason)]
    found, rejects, summary = _batch(tmp_path, folder, cases)
    why = f"its registry row 3 of {tmp_path / 'enterprises.csv'} was rejected (paid_late '2023-12-20': {reason})"
    assert rejects == [("cases.csv", 2, "uscc", B, why), ("cases.csv", 3, "uscc", B, why), ("cases.csv", 4, "uscc", B, why),
                       ("enterprises.csv", 3, "paid_late", "2023-12-20", reason)]
    assert found == {A: [("", "repeat", 100), ("c1", "fine", 1000)]}
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (3 + 4, 2 + 1, 1 + 3)
