"""Tests for ``ecorules diff``: figures, changed enterprises, test cases, JSON, exit codes.

The registry is the hand-made one of ``diff_fixtures`` (12 rows, one with a bad USCC), so
every figure below is checked by hand in the comments. Scoring goes through the fastcalc
kernel, as in production.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from diff_fixtures import (
    ADD_RULE,
    CREDIT,
    RAISE_FROM_2013,
    REMOVE_RULE,
    WATER,
    edited,
    raise_moved_to_july,
    write_registry,
    write_set,
)
from ecorules.engine._cli_diff import diff as diff_command
from ecorules.engine.diff._run import run_diff
from ecorules.rules import load_policies

AS_OF = dt.date(2014, 1, 1)



@pytest.fixture
def registry(tmp_path) -> Path:
    return write_registry(tmp_path / "registry.csv")


@pytest.fixture
def base(tmp_path) -> Path:
    return write_set(tmp_path / "base")


def proposal(tmp_path, water=WATER, credit=CREDIT, name="draft") -> Path:
    return write_set(tmp_path / name, water, credit)


def by_district(document) -> dict[str, tuple[int, int, int]]:
    return {d["district"]: (d["before_yuan"], d["after_yuan"], d["difference_yuan"]) for d in document["districts"]}


def by_rule(document) -> dict[str, tuple[int, int, int]]:
    return {r["rule"]: (r["before_yuan"], r["after_yuan"], r["difference_yuan"]) for r in document["rules"]}


# -- figures --------------------------------------------------------------------------------------
def test_raise_from_a_date(tmp_path, base, registry):
    """1,000,000 -> 1,500,000 per outfall from 2013: 12 outfalls on valid rows, +500,000 each."""
    document = run_diff(base, proposal(tmp_path, edited(RAISE_FROM_2013)), registry, AS_OF)
    assert document["rows"] == {"in": 12, "compared": 11, "rejected_base": 1, "rejected_proposed": 1,
                                "rejected_only_proposed": 0, "unreadable": 0}
    # before: outfalls 3+1+2+5+1 = 12 M; direct discharge 2 (二七区) + 1 (新密市) industrial = 30 M
    assert document["totals"] == {
        "before_yuan": 42_000_000, "after_yuan": 48_000_000, "difference_yuan": 6_000_000, "unit": "yuan",
        "changed_enterprises": 5, "districts_with_impact": 4, "list_entries": 0, "list_exits": 0,
    }
    assert by_district(document) == {
        "中原区": (5_000_000, 7_500_000, 2_500_000),  # 5 outfalls
        "金水区": (4_000_000, 6_000_000, 2_000_000),  # 3 + 1 outfalls (the bad row's 4 are rejected)
        "二七区": (22_000_000, 23_000_000, 1_000_000),  # 20 M direct discharge + 2 outfalls
        "新密市": (11_000_000, 11_500_000, 500_000),  # 10 M + 1 outfall
    }
    assert [d["district"] for d in document["districts"]] == ["中原区", "金水区", "二七区", "新密市"]
    assert by_rule(document)["untreated_outfall_deduction"] == (12_000_000, 18_000_000, 6_000_000)
    assert by_rule(document)["direct_discharge_deduction"] == (30_000_000, 30_000_000, 0)
    statuses = {r["rule"]: r["status"] for r in document["rules"]}
    assert statuses == {"untreated_outfall_deduction": "parameter changed", "direct_discharge_deduction": "unchanged",
                        "illegal_discharge_blacklist": "unchanged"}
    items = document["enterprises"]["items"]
    # by |difference| then USCC: 5 outfalls, 3, 2, then the two with one (by USCC)
    assert [(i["name"], i["before_yuan"], i["after_yuan"]) for i in items] == [
        ("郑州博创电镀有限公司", 5_000_000, 7_500_000),
        ("郑州鑫源化工有限公司", 3_000_000, 4_500_000),
        ("郑州瑞丰印染有限公司", 2_000_000, 3_000_000),
        ("郑州恒泰商贸有限公司", 1_000_000, 1_500_000),
        ("新密市天中纸业有限公司", 11_000_000, 11_500_000),
    ]
    assert items[4]["rules"] == [{
        "key": "test.water:untreated_outfall_deduction", "before_yuan": 1_000_000, "after_yuan": 1_500_000,
        "fired_before": True, "fired_after": True, "lists_entered": [], "lists_left": [],
    }]


def test_a_folder_of_a_csv_and_a_workbook(tmp_path, base, registry):
    """A folder holding a CSV (counts read as integers) and an old .xls (counts read as text,
    since one row leaves them empty) stopped the diff with Arrow's "Schema at index 1 was
    different" once changed rows of both were kept."""
    from workbooks import csv_rows, write_xls

    header, *rows = registry.read_text(encoding="utf-8").splitlines()
    rows.append("91410103799033152T,郑州空白有限公司,二七区,true,,,,,")  # a reject in both readings
    whole = tmp_path / "whole.csv"
    whole.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    folder = tmp_path / "名录"
    folder.mkdir()
    (folder / "a.csv").write_text("\n".join([header, *rows[:6]]) + "\n", encoding="utf-8")
    write_xls(folder / "b.xls", csv_rows(whole)[:1] + csv_rows(whole)[7:])
    draft = proposal(tmp_path, edited(RAISE_FROM_2013))
    from_folder = run_diff(base, draft, folder, AS_OF)
    from_file = run_diff(base, draft, whole, AS_OF)
    assert from_folder["rows"]["in"] == 13 and from_folder["rows"]["compared"] == 11
    assert (from_folder["rows"], from_folder["totals"]) == (from_file["rows"], from_file["totals"])
    assert from_folder["enterprises"]["items"] == from_file["enterprises"]["items"]


def test_before_the_new_date_nothing_changes(tmp_path, base, registry):
    document = run_diff(base, proposal(tmp_path, edited(RAISE_FROM_2013)), registry, dt.date(2012, 12, 31))
    assert document["totals"]["difference_yuan"] == 0
    assert document["enterprises"] == {"count": 0, "shown": 0, "top": 20, "items": []}
    assert document["policy_changes"]["counts"]["parameters_changed"] == 1  # the text still differs


def test_parameter_date_change(tmp_path, registry):
    """The raise moved from 1 January to 1 July 2013: on 1 March only the earlier date bites."""
    raised = proposal(tmp_path, edited(RAISE_FROM_2013), name="raised")
    moved = proposal(tmp_path, raise_moved_to_july(), name="moved")
    document = run_diff(raised, moved, registry, dt.date(2013, 3, 1))
    assert document["totals"]["difference_yuan"] == -6_000_000
    (value,) = document["policy_changes"]["policies"][0]["parameters"][0]["values"]
    assert (value["status"], value["start_before"], value["start_after"]) == ("moved", "2013-01-01", "2013-07-01")
    assert run_diff(raised, moved, registry, dt.date(2013, 7, 1))["totals"]["difference_yuan"] == 0


def test_added_rule(tmp_path, base, registry):
    """500,000 more per outfall of a high-pollution enterprise: 瑞丰 (2 outfalls) and 博创 (5)."""
    document = run_diff(base, proposal(tmp_path, edited(ADD_RULE)), registry, AS_OF)
    assert document["totals"]["difference_yuan"] == 3_500_000
    assert by_rule(document)["high_pollution_outfall_surcharge"] == (0, 3_500_000, 3_500_000)
    rule = next(r for r in document["rules"] if r["rule"] == "high_pollution_outfall_surcharge")
    assert (rule["status"], rule["fired_before"], rule["fired_after"]) == ("added", 0, 2)
    assert rule["citation"]["article"] == "惩罚措施(三)"
    assert by_district(document) == {
        "中原区": (5_000_000, 7_500_000, 2_500_000), "二七区": (22_000_000, 23_000_000, 1_000_000),
        "金水区": (4_000_000, 4_000_000, 0), "新密市": (11_000_000, 11_000_000, 0),
    }
    assert document["totals"]["districts_with_impact"] == 2
    assert [i["uscc"] for i in document["enterprises"]["items"]] == ["914101056629895088", "91410105MA7M95GC2U"]


def test_removed_rule_and_the_base_cases_it_breaks(tmp_path, base, registry):
    document = run_diff(base, proposal(tmp_path, edited(REMOVE_RULE)), registry, AS_OF)
    assert document["totals"]["difference_yuan"] == -30_000_000
    assert by_district(document)["二七区"] == (22_000_000, 2_000_000, -20_000_000)
    rule = next(r for r in document["rules"] if r["rule"] == "direct_discharge_deduction")
    assert (rule["status"], rule["before_yuan"], rule["after_yuan"], rule["fired_after"]) == ("removed", 30_000_000, 0, 0)
    tests = document["tests"]
    assert (tests["base_under_proposal"]["run"], tests["base_under_proposal"]["failed"]) == (2, 1)
    (failure,) = tests["base_under_proposal"]["failures"]
    assert failure["case"] == "一例直排扣款1000万元"
    assert failure["problems"] == ["total_yuan: expected 10,000,000, got 0"]
    assert "/base/water.yaml:" in failure["where"]  # the case as written in the base set
    # the draft kept the case, so its own run fails it too
    assert [f["case"] for f in tests["proposal"]["failures"]] == ["一例直排扣款1000万元"]


def test_base_cases_fail_under_a_raise(tmp_path, base, registry):
    tests = run_diff(base, proposal(tmp_path, edited(RAISE_FROM_2013)), registry, AS_OF)["tests"]
    (failure,) = tests["base_under_proposal"]["failures"]
    assert failure["case"] == "三个排污口扣款300万元"
    assert any(p.endswith("amount: expected 3,000,000, got 4,500,000 (rule untreated_outfall_deduction)")
               and "/base/water.yaml:" in p for p in failure["problems"])
    assert tests["proposal"]["failed"] == 1


def test_removed_policy_cases_are_not_run(tmp_path, base, registry):
    document = run_diff(base, proposal(tmp_path, credit=None), registry, AS_OF)
    # the credit policy has no cases; the water cases all still pass
    assert document["tests"]["base_under_proposal"]["not_run"] == 0
    document = run_diff(base, proposal(tmp_path, water=None, name="no_water"), registry, AS_OF)
    assert document["tests"]["base_under_proposal"]["not_run"] == 2
    assert document["totals"]["after_yuan"] == 0
    assert document["policy_changes"]["policies"][0]["status"] == "removed"


def test_lists_entered_and_left(tmp_path, base, registry):
    """Blacklisting also for more than two untreated outfalls, and no longer for direct discharge."""
    credit = CREDIT.replace("illegal_discharge_cases > 0 or direct_discharge_cases > 0", "illegal_discharge_cases > 0 or untreated_outfalls > 2")
    document = run_diff(base, proposal(tmp_path, credit=credit), registry, AS_OF)
    # before: 宏达 (direct), 华夏 (direct, non-industrial), 聚鼎 (illegal), 天中 (direct) = 4
    # after: 聚鼎 (illegal), 鑫源 (3 outfalls), 博创 (5 outfalls) = 3
    assert document["lists"] == [{"list": "green_credit_blacklist", "title": "绿色信贷黑名单", "before": 4, "after": 3, "entered": 2, "left": 3}]
    assert document["totals"]["difference_yuan"] == 0
    assert document["totals"]["changed_enterprises"] == 5
    entered = {i["name"] for i in document["enterprises"]["items"] if i["lists_entered"]}
    left = {i["name"] for i in document["enterprises"]["items"] if i["lists_left"]}
    assert entered == {"郑州鑫源化工有限公司", "郑州博创电镀有限公司"}
    assert left == {"郑州宏达铝业有限公司", "郑州华夏餐饮管理有限公司", "新密市天中纸业有限公司"}
    item = next(i for i in document["enterprises"]["items"] if i["name"] == "郑州鑫源化工有限公司")
    assert item["rules"][0]["key"] == "test.credit:illegal_discharge_blacklist"
    assert item["rules"][0]["lists_entered"] == ["green_credit_blacklist"]


def test_identical_sets(tmp_path, base, registry):
    document = run_diff(base, proposal(tmp_path), registry, AS_OF)
    assert document["totals"]["difference_yuan"] == 0 and document["totals"]["changed_enterprises"] == 0
    assert document["policy_changes"]["policies"] == []
    assert document["totals"]["before_yuan"] == document["totals"]["after_yuan"] == 42_000_000


# -- the shipped policies on the example registry ---------------------------------------------------
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "registry.csv"
SHIPPED = Path(__file__).resolve().parents[2] / "policies"


def hand_count(path: Path, districts) -> tuple[int, int, dict[str, int], int]:
    """Outfalls and industrial direct-discharge cases per the plain csv module, by district,
    over the rows whose district the catalogue knows; and how many it does not."""
    import csv

    outfalls, direct, per_district, unknown = 0, 0, {}, 0
    with path.open(encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            if row["district"] not in districts:
                unknown += 1
                continue
            o = int(row["untreated_outfalls"])
            d = int(row["direct_discharge_cases"]) if row["industrial"] == "true" else 0
            outfalls, direct = outfalls + o, direct + d
            per_district[row["district"]] = per_district.get(row["district"], 0) + o
    return outfalls, direct, per_district, unknown


@pytest.mark.skipif(not EXAMPLES.exists(), reason="examples/registry.csv is generated by examples/make_examples.py (issue 3)")
def test_shipped_policies_on_the_example_registry(tmp_path):
    drafts = tmp_path / "drafts"
    shutil.copytree(SHIPPED, drafts)
    water = drafts / "zhengzhou" / "eco_water_interception.yaml"
    text = water.read_text(encoding="utf-8")
    marker = '        reference: 来源报告七、(二):"每个排污口扣款100万元"\n'
    assert text.count(marker) == 1
    water.write_text(text.replace(marker, marker + "      - from: 2013-01-01\n        value: 1500000\n        reference: 草案\n"), encoding="utf-8")
    document = run_diff(SHIPPED, drafts, EXAMPLES, AS_OF)
    districts = load_policies(SHIPPED).facts["district"].type.choices
    outfalls, direct, per_district, unknown = hand_count(EXAMPLES, districts)
    assert document["rows"]["rejected_base"] == unknown
    assert document["totals"]["before_yuan"] == 1_000_000 * outfalls + 10_000_000 * direct
    assert document["totals"]["difference_yuan"] == 500_000 * outfalls
    assert {d["district"]: d["difference_yuan"] for d in document["districts"] if d["difference_yuan"]} == {
        name: 500_000 * count for name, count in per_district.items() if count
    }
    # pinned for the committed file, checked by hand: 16 untreated outfalls, 12 cases of
    # industrial direct discharge; 郑州旋银包装材料 has 3 outfalls and 2 cases
    assert (outfalls, direct) == (16, 12)
    assert (document["totals"]["before_yuan"], document["totals"]["after_yuan"]) == (136_000_000, 144_000_000)
    first = document["enterprises"]["items"][0]
    assert (first["name"], first["before_yuan"], first["after_yuan"]) == ("郑州旋银包装材料有限公司", 23_000_000, 24_500_000)
    # the shipped cases judge 2012-04-14, before the raise takes effect: none breaks
    assert document["tests"]["base_under_proposal"]["failed"] == 0
    assert document["tests"]["base_under_proposal"]["run"] == sum(len(p.tests) for p in load_policies(SHIPPED))


# -- the command ------------------------------------------------------------------------------------
def invoke(*args):
    return CliRunner().invoke(diff_command, [str(a) for a in args], catch_exceptions=False)


def test_command_json_shape(tmp_path, base, registry):
    result = invoke("--base", base, "--proposed", proposal(tmp_path, edited(RAISE_FROM_2013)), "--registry", registry,
                    "--as-of", "2014-01-01", "--format", "json", "--top", "3")
    # the draft raises the amount but not its own test case: done, exit 1 for a CI gate
    assert result.exit_code == 1, result.output
    document = json.loads(result.output)
    assert document["tests"]["proposal"]["failed"] == 1
    assert set(document) == {"format", "as_of", "registry", "base", "proposed", "rows", "totals", "districts", "rules",
                             "lists", "enterprises", "tests", "policy_changes"}
    assert document["format"] == "ecorules-diff/1" and document["as_of"] == "2014-01-01"
    assert set(document["base"]) == {"path", "policies", "fingerprint"}
    assert set(document["districts"][0]) == {"district", "before_yuan", "after_yuan", "difference_yuan",
                                             "enterprises_before", "enterprises_after", "changed_enterprises"}
    assert set(document["rules"][0]) == {"key", "policy", "rule", "status", "title", "kind", "before_yuan", "after_yuan",
                                         "difference_yuan", "fired_before", "fired_after", "condition", "reads",
                                         "citation", "citation_before"}
    enterprises = document["enterprises"]
    assert (enterprises["count"], enterprises["shown"], enterprises["top"]) == (5, 5, 3)
    assert set(enterprises["items"][0]) == {"uscc", "name", "district", "before_yuan", "after_yuan", "difference_yuan",
                                            "lists_entered", "lists_left", "rules", "facts"}
    assert enterprises["items"][0]["facts"]["untreated_outfalls"] == 5
    assert set(document["tests"]) == {"base_under_proposal", "proposal"}
    assert set(document["policy_changes"]) == {"counts", "policies", "facts", "unchanged"}
    for value in (document["totals"]["before_yuan"], document["districts"][0]["difference_yuan"]):
        assert isinstance(value, int)


def test_command_text_summary(tmp_path, base, registry):
    result = invoke("--base", base, "--proposed", proposal(tmp_path, edited(RAISE_FROM_2013)), "--registry", registry,
                    "--as-of", "2014-01-01", "--top", "2")
    assert result.exit_code == 1, result.output  # the draft's own case fails (see above)
    out = result.output
    assert "42,000,000 元 (4,200 万元) → 48,000,000 元 (4,800 万元); 差额 difference +6,000,000 元" in out
    assert "变化最大的企业 Top changed enterprises (2 of 5):" in out
    assert "“对生态水系内河道排污口未治理到位的责任单位实施财政扣款,每个排污口扣款100万元”" in out
    assert "读取 reads: untreated_outfalls=5, district=中原区" in out
    assert "added: from 2013-01-01: 1500000 (草案:每个排污口扣款150万元)" in out
    assert "FAIL (现行用例在草案下失败 base case fails under the proposal) test.water@2011 三个排污口扣款300万元" in out


def test_command_exit_codes(tmp_path, base, registry):
    ok = invoke("--base", base, "--proposed", proposal(tmp_path), "--registry", registry, "--as-of", "2014-01-01")
    assert ok.exit_code == 0  # no impact is still "done"
    broken = proposal(tmp_path, WATER.replace("when: untreated_outfalls > 0", "when: untreated_outfals > 0"), name="broken")
    bad_policy = invoke("--base", base, "--proposed", broken, "--registry", registry)
    assert bad_policy.exit_code == 2
    assert "untreated_outfals" in bad_policy.output
    unknown = tmp_path / "registry.xlsx"
    unknown.write_text("x", encoding="utf-8")
    assert invoke("--base", base, "--proposed", base, "--registry", unknown).exit_code == 2
    missing_column = tmp_path / "short.csv"
    missing_column.write_text("uscc,name\n91410105125235487K,郑州鑫源化工有限公司\n", encoding="utf-8")
    assert invoke("--base", base, "--proposed", base, "--registry", missing_column, "--as-of", "2014-01-01").exit_code == 2
    assert invoke("--base", base, "--proposed", base, "--registry", registry, "--as-of", "2014-13-01").exit_code == 2
    assert invoke("--base", base, "--proposed", base, "--registry", registry, "--html", tmp_path / "no" / "such" / "r.html").exit_code == 2


def test_command_is_registered():
    from ecorules.engine._cli import main

    assert "diff" in main.commands


def test_a_rounding_change_is_reported_with_its_impact(tmp_path, registry):
    """Sevenths of the deduction, rounded half up, then down: only the 5 outfalls' 714,285.71
    moves (714,286 -> 714,285); the rules whose amounts round otherwise say so as a parameter's."""
    sevenths = WATER.replace("        amount: deduction_per_untreated_outfall * untreated_outfalls\n",
                             "        amount: deduction_per_untreated_outfall * untreated_outfalls / 7\n", 1)
    assert sevenths != WATER
    down = sevenths.replace('  effective: 2011-01-01\n', '  effective: 2011-01-01\n  rounding: {mode: down}\n', 1)
    document = run_diff(proposal(tmp_path, sevenths, name="base7"), proposal(tmp_path, down, name="down"), registry, AS_OF)
    statuses = {r["rule"]: r["status"] for r in document["rules"]}
    assert statuses == {"untreated_outfall_deduction": "rounding changed", "direct_discharge_deduction": "rounding changed",
                        "illegal_discharge_blacklist": "unchanged"}
    assert by_rule(document)["untreated_outfall_deduction"] == (1_714_285, 1_714_284, -1)
    assert [(i["name"], i["difference_yuan"]) for i in document["enterprises"]["items"]] == [("郑州博创电镀有限公司", -1)]
    (change,) = document["policy_changes"]["policies"]
    assert change["header"] == [{"field": "rounding", "before": "yuan, half_up", "after": "yuan, down"}]
