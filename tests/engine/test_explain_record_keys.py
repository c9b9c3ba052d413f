"""The keys of a record given to `ecorules explain`: the registry's headers are accepted, a key
that names no fact is refused with the fact meant (ignored, it changed the result in silence)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from ecorules.engine._cli import main

RECORD = {
    "uscc": "91410100123456788Y", "name": "郑州示例化工有限公司", "district": "二七区", "industrial": True,
    "untreated_outfalls": 3, "direct_discharge_cases": 2, "illegal_discharge_cases": 0,
    "high_pollution": False, "high_energy": True,
}
# the same record with the column headers of a bureau's export (the catalogue's labels and aliases)
HEADERS = {"uscc": "统一社会信用代码", "name": "单位名称", "district": "所属区县", "industrial": "是否工业企业",
           "untreated_outfalls": "未治理到位排污口数", "direct_discharge_cases": "超标直排生态水系案件数"}


def explain(tmp_path, document):
    path = tmp_path / "record.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return CliRunner().invoke(main, ["explain", "--record", str(path), "--as-of", "2012-04-14", "--format", "json"],
                              catch_exceptions=False)


def test_a_record_keyed_by_the_registry_headers_is_judged_as_the_one_keyed_by_fact_names(tmp_path):
    named = explain(tmp_path, RECORD)
    assert named.exit_code == 0, named.output
    headed = explain(tmp_path, {HEADERS.get(key, key): value for key, value in RECORD.items()})
    assert headed.exit_code == 0, headed.output
    assert json.loads(headed.output) == json.loads(named.output)
    assert json.loads(named.output)["total_yuan"] == 3_000_000 + 2 * 10_000_000 + 0


@pytest.mark.parametrize(
    ("key", "message"),
    [
        # the acceptance case: a required fact misspelled
        ("untreated_outfall", "untreated_outfall: is not a fact of the loaded policies; did you mean 'untreated_outfalls'?"),
        # an optional fact misspelled: ignored, the record was judged as if it had none, 10,000,000 more
        ("direct_discharge_cases_in_tabel", "direct_discharge_cases_in_tabel: is not a fact of the loaded policies; "
                                            "did you mean 'direct_discharge_cases_in_table'?"),
        ("统一信用代码", "统一信用代码: is not a fact of the loaded policies; did you mean 'uscc' (统一社会信用代码)?"),
        ("备注", "备注: is not a fact of the loaded policies: write a fact's name or its column header, or remove it"),
    ],
)
def test_a_key_that_names_no_fact_is_refused_with_the_fact_meant(tmp_path, key, message):
    record = dict(RECORD, direct_discharge_cases_in_table=1)
    if key == "统一信用代码":
        record[key] = record.pop("uscc")
    elif key.startswith("untreated"):
        record[key] = record.pop("untreated_outfalls")
    elif key.startswith("direct_discharge_cases_in"):
        record[key] = record.pop("direct_discharge_cases_in_table")
    else:
        record[key] = "补充说明"
    result = explain(tmp_path, record)
    assert result.exit_code == 2
    assert result.output.strip() == f"{tmp_path / 'record.json'}: {message}"


def test_two_keys_for_one_fact_are_refused(tmp_path):
    result = explain(tmp_path, dict(RECORD, 统一社会信用代码="91410100123456788Y"))
    assert result.exit_code == 2
    assert "统一社会信用代码: 'uscc' gives 'uscc' already" in result.output


def test_the_settings_of_a_flat_record_and_the_cases_of_a_group_are_read_alike(tmp_path):
    flat = explain(tmp_path, {**{HEADERS.get(k, k): v for k, v in RECORD.items()}, "as_of": "2012-04-14", "domain": "enterprise"})
    assert flat.exit_code == 0, flat.output
    case = {"case_id": "C1", "uscc": RECORD["uscc"], "act_id": "A1", "act_date": "2012-03-01", "clause": "x", "discovered": "2012-03-02"}
    group = explain(tmp_path, {"enterprise": RECORD, "cases": [dict(case, clasue="x")]})
    assert group.exit_code == 2
    assert "case 1: clasue: is not a fact of the loaded policies; did you mean 'clause'?" in group.output
