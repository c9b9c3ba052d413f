"""One enterprise, one row (issue 11, point 3): a USCC on several registry rows is billed once."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from ecorules.engine import _duplicates
from ecorules.engine._cli import main
from ecorules.engine._duplicates import DuplicateFilter, canonical_keys, take_census
from ecorules.engine._nightly import NightlyError, run_nightly
from ecorules.engine._sources import ColumnResolver, Registry
from ecorules.rules import load_policies
from nightly_data import usccs

AS_OF = dt.date(2012, 4, 14)
POLICIES = load_policies()
HEADER = "uscc,name,district,industrial,untreated_outfalls,direct_discharge_cases,illegal_discharge_cases,high_pollution,high_energy"
TWICE, OTHER, THIRD = usccs(np.random.default_rng(11), 3).tolist()


def registry_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def row(uscc: str, outfalls: int, district: str = "金水区", name: str = "郑州示例化工有限公司") -> str:
    return f"{uscc},{name},{district},true,{outfalls},0,0,false,false"


def ledger(db: Path, run_id: int) -> dict:
    connection = sqlite3.connect(db)
    try:
        findings = connection.execute(
            "SELECT uscc, amount_yuan FROM findings WHERE run_id = ? ORDER BY uscc, amount_yuan", (run_id,)).fetchall()
        rejects = connection.execute(
            'SELECT row, "column", value, reason FROM rejects WHERE run_id = ? ORDER BY row', (run_id,)).fetchall()
        districts = dict(connection.execute(
            "SELECT district, deduction_yuan FROM district_totals WHERE run_id = ?", (run_id,)).fetchall())
    finally:
        connection.close()
    return {"findings": findings, "rejects": rejects, "districts": districts}


def test_three_rows_of_one_uscc_are_billed_once_and_the_later_rows_name_the_first(tmp_path):
    # the case: three rows, three findings, 7,000,000 charged to the district
    source = registry_csv(tmp_path / "registry.csv", [
        row(TWICE, 1), row(OTHER, 0), row(TWICE, 4), row(TWICE, 2),
    ])
    summary = run_nightly(source, tmp_path / "out.sqlite", as_of=AS_OF, progress=False)
    got = ledger(tmp_path / "out.sqlite", summary.run_id)
    assert got["findings"] == [(TWICE, 1_000_000)]
    assert got["districts"] == {"金水区": 1_000_000}
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (4, 2, 2)
    first = f"first at row 2 of {source}"
    assert got["rejects"] == [
        (4, "uscc", TWICE, f"duplicate uscc '{TWICE}': {first} (one enterprise, one row)"),
        (5, "uscc", TWICE, f"duplicate uscc '{TWICE}': {first} (one enterprise, one row)"),
    ]
    assert summary.exit_code == 1


def test_duplicates_last_keeps_the_last_row(tmp_path):
    source = registry_csv(tmp_path / "registry.csv", [row(TWICE, 1), row(TWICE, 4), row(OTHER, 0), row(TWICE, 2)])
    summary = run_nightly(source, tmp_path / "out.sqlite", as_of=AS_OF, progress=False, duplicates="last")
    got = ledger(tmp_path / "out.sqlite", summary.run_id)
    assert got["findings"] == [(TWICE, 2_000_000)]
    assert [r[0] for r in got["rejects"]] == [2, 3]
    assert all(f"the last, row 5 of {source}" in r[3] for r in got["rejects"])
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (4, 2, 2)


def test_the_same_uscc_written_with_blanks_or_full_width_is_the_same_enterprise(tmp_path):
    full_width = TWICE.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})  # ９１４… as typed on a Chinese IME
    source = registry_csv(tmp_path / "registry.csv", [row(f" {TWICE}\u3000", 1), row(full_width, 3), row(OTHER, 2)])
    summary = run_nightly(source, tmp_path / "out.sqlite", as_of=AS_OF, progress=False)
    got = ledger(tmp_path / "out.sqlite", summary.run_id)
    # the ledger names the enterprise by its code as GB 32100 writes it, not as the cell did
    assert got["findings"] == sorted([(OTHER, 2_000_000), (TWICE, 1_000_000)])
    assert [(r[0], r[2]) for r in got["rejects"]] == [(3, TWICE)]


def test_rows_far_apart_in_many_batches_of_a_parquet_file(tmp_path):
    codes = usccs(np.random.default_rng(5), 40).tolist()
    keys = codes + [codes[3], codes[30], codes[3]]  # repeats in later batches than their first
    table = pa.table({
        "uscc": keys, "name": ["郑州示例有限公司"] * len(keys), "district": ["二七区"] * len(keys),
        "industrial": [False] * len(keys), "untreated_outfalls": [1] * len(keys),
        "direct_discharge_cases": [0] * len(keys), "illegal_discharge_cases": [0] * len(keys),
        "high_pollution": [False] * len(keys), "high_energy": [False] * len(keys),
    })
    pq.write_table(table, tmp_path / "registry.parquet")
    summary = run_nightly(tmp_path / "registry.parquet", tmp_path / "out.sqlite", as_of=AS_OF, progress=False,
                          batch_rows=7)
    got = ledger(tmp_path / "out.sqlite", summary.run_id)
    assert got["districts"] == {"二七区": 40 * 1_000_000}
    assert [(r[0], r[3].split(": ")[1]) for r in got["rejects"]] == [
        (41, f"first at row 4 of {tmp_path / 'registry.parquet'} (one enterprise, one row)"),
        (42, f"first at row 31 of {tmp_path / 'registry.parquet'} (one enterprise, one row)"),
        (43, f"first at row 4 of {tmp_path / 'registry.parquet'} (one enterprise, one row)"),
    ]
    assert summary.rows_in == summary.rows_scored + summary.rows_rejected == 43


def test_a_digest_collision_costs_a_comparison_never_a_reject(tmp_path, monkeypatch):
    # every key gets the same digest: all rows are suspects, and only the exact key decides
    monkeypatch.setattr(_duplicates, "digests", lambda fact, keys, valid: np.zeros(int(valid.sum()), np.uint64))
    source = registry_csv(tmp_path / "registry.csv", [row(TWICE, 1), row(OTHER, 1), row(THIRD, 1), row(OTHER, 1)])
    for policy in ("reject", "last"):
        fact = POLICIES.facts["uscc"]
        registry = Registry(source, ColumnResolver(POLICIES.facts, {"uscc": ()}))
        census = take_census(fact, registry.batches, policy)
        assert census.repeated.tolist() == [0]
        kept = [DuplicateFilter(fact, census, policy).apply(batch) for batch in registry.batches()]
        assert [r.row for b in kept for r in b.rejects] == ([5] if policy == "reject" else [3])


def test_a_row_whose_key_is_not_valid_is_nobodys_duplicate():
    fact = POLICIES.facts["uscc"]
    wrong = TWICE[:17] + ("1" if TWICE[17] != "1" else "2")  # another check character
    keys, valid = canonical_keys(fact, pa.array([TWICE, wrong, None, f"  {OTHER} "]))
    assert valid.tolist() == [True, False, False, True]
    assert keys.to_pylist() == [TWICE, wrong, None, OTHER]


def test_cli_duplicates_option(tmp_path):
    source = registry_csv(tmp_path / "registry.csv", [row(TWICE, 1), row(TWICE, 4)])
    result = CliRunner().invoke(main, ["run", "--registry", str(source), "--out", str(tmp_path / "o.sqlite"),
                                       "--as-of", "2012-04-14", "--duplicates", "last", "--format", "json"])
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["total_yuan"] == 4_000_000
    assert summary["rejects_by_reason"][0]["column"] == "uscc"
    with pytest.raises(NightlyError, match="--duplicates must be one of reject, last, sum"):
        run_nightly(source, tmp_path / "p.sqlite", as_of=AS_OF, duplicates="add")


def industrial_row(uscc: str, outfalls: int, direct: int, district: str = "金水区", industrial: str = "true") -> str:
    return f"{uscc},郑州示例化工有限公司,{district},{industrial},{outfalls},{direct},0,false,false"


def test_duplicates_sum_adds_the_counts_of_one_enterprise_and_scores_it_once(tmp_path):
    source = registry_csv(tmp_path / "registry.csv", [
        industrial_row(TWICE, 1, 0), industrial_row(OTHER, 1, 0), industrial_row(TWICE, 4, 1),
        industrial_row(f" {TWICE}", 2, "1.0"),
    ])
    summary = run_nightly(source, tmp_path / "out.sqlite", as_of=AS_OF, progress=False, duplicates="sum")
    got = ledger(tmp_path / "out.sqlite", summary.run_id)
    # 7 outfalls at 1,000,000 and 2 direct-discharge cases at 10,000,000, once, for one enterprise
    assert got["findings"] == sorted([(OTHER, 1_000_000), (TWICE, 7_000_000), (TWICE, 20_000_000)])
    assert got["districts"] == {"金水区": 28_000_000}
    assert got["rejects"] == []
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (4, 4, 0)


def test_duplicates_sum_counts_each_row_under_its_own_file(tmp_path):
    """The files read listed a merged enterprise's rows as one row of its first file: 4 rows
    in, 'dup.csv: 2 rows'. Every file's rows, merged or rejected, are counted under it."""
    folder = tmp_path / "名录"
    folder.mkdir()
    registry_csv(folder / "a.csv", [industrial_row(TWICE, 1, 0), industrial_row(OTHER, 1, 0), industrial_row(TWICE, 2, 0)])
    registry_csv(folder / "b.csv", [industrial_row(TWICE, 4, 1), industrial_row(THIRD, 1, 0),
                                    industrial_row(OTHER, 1, 0, district="二七区")])  # disagrees: both OTHER rows rejected
    summary = run_nightly(folder, tmp_path / "out.sqlite", as_of=AS_OF, progress=False, duplicates="sum")
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (6, 4, 2)
    files = {Path(s["source"]).name: (s["rows_in"], s["rows_rejected"]) for s in summary.sources}
    assert files == {"a.csv": (3, 1), "b.csv": (3, 1)}


@pytest.mark.parametrize(("second", "column", "says"), [
    (industrial_row(TWICE, 4, 0, district="二七区"), "district", "differ in district (they say '金水区', '二七区')"),
    (industrial_row(TWICE, 4, 0, industrial="false"), "industrial", "differ in industrial (they say True, False)"),
])
def test_duplicates_sum_refuses_rows_that_disagree_on_anything_but_counts(tmp_path, second, column, says):
    source = registry_csv(tmp_path / "registry.csv", [industrial_row(TWICE, 1, 0), industrial_row(OTHER, 1, 0), second])
    summary = run_nightly(source, tmp_path / "out.sqlite", as_of=AS_OF, progress=False, duplicates="sum")
    got = ledger(tmp_path / "out.sqlite", summary.run_id)
    assert got["findings"] == [(OTHER, 1_000_000)]
    assert [(r[0], r[1]) for r in got["rejects"]] == [(2, column), (4, column)]
    assert all(f"rows 2, 4 of {source} {says}; only counts are added" in r[3] for r in got["rejects"])
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (3, 1, 2)


def test_duplicates_sum_rejects_every_row_of_a_key_with_a_bad_row_or_a_sum_out_of_range(tmp_path):
    source = registry_csv(tmp_path / "registry.csv", [
        industrial_row(TWICE, 1, 0), industrial_row(TWICE, -1, 0),  # a bad part
        industrial_row(OTHER, 6000, 0), industrial_row(OTHER, 5000, 0),  # 11000 > max 10000
        industrial_row(THIRD, 1, 0),
    ])
    summary = run_nightly(source, tmp_path / "out.sqlite", as_of=AS_OF, progress=False, duplicates="sum")
    got = ledger(tmp_path / "out.sqlite", summary.run_id)
    assert got["findings"] == [(THIRD, 1_000_000)]
    reasons = {r[0]: (r[1], r[3]) for r in got["rejects"]}
    assert reasons[3] == ("untreated_outfalls", "-1 is below the minimum 0")
    assert reasons[2][0] == "uscc" and f"since row 3 of {source} is rejected" in reasons[2][1]
    assert reasons[4][1] == reasons[5][1]
    assert "adds up to 11000, which is above the maximum 10000" in reasons[4][1]
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (5, 1, 4)


def test_keys_of_other_kinds_compare_by_their_value_and_keep_a_bad_one_as_written():
    fact = POLICIES.facts["district"]  # an enum: an alias is the same value, a typo is no key
    keys, valid = canonical_keys(fact, pa.array(["郑州高新区管委会", " 金水区", "金水县"]))
    assert keys.to_pylist() == ["郑州高新技术产业开发区", "金水区", "金水县"]
    assert valid.tolist() == [True, True, False]


@pytest.mark.parametrize("policy", ["last", "sum"])
def test_the_first_pass_decides_the_same_when_its_digests_go_to_files(tmp_path, monkeypatch, policy):
    # the first pass keeps at most _IN_MEMORY digests in memory (flat at 30 M rows); beyond
    # that they go to files by their top bits: the same keys are found repeated
    codes = usccs(np.random.default_rng(7), 60).tolist()
    keys = codes + [codes[3], codes[50], codes[3], codes[59]]
    table = pa.table({
        "uscc": keys, "name": ["郑州示例有限公司"] * len(keys), "district": ["二七区"] * len(keys),
        "industrial": [False] * len(keys), "untreated_outfalls": [1] * len(keys),
        "direct_discharge_cases": [0] * len(keys), "illegal_discharge_cases": [0] * len(keys),
        "high_pollution": [False] * len(keys), "high_energy": [False] * len(keys),
    })
    pq.write_table(table, tmp_path / "registry.parquet")
    got = {}
    for label, limit in (("memory", None), ("files", 8)):
        if limit is not None:
            monkeypatch.setattr(_duplicates, "_IN_MEMORY", limit)
        out = tmp_path / f"{label}.sqlite"
        summary = run_nightly(tmp_path / "registry.parquet", out, as_of=AS_OF, progress=False, batch_rows=7,
                              duplicates=policy)
        got[label] = (ledger(out, summary.run_id), summary.rows_in, summary.rows_scored, summary.rows_rejected)
    assert got["files"] == got["memory"]
    rejects = got["files"][0]["rejects"]
    if policy == "last":
        assert [r[0] for r in rejects] == [4, 51, 60, 61]  # the earlier rows of each key, naming its last
    else:
        assert rejects == [] and got["files"][0]["findings"].count((codes[3], 3_000_000)) == 1
