"""Tests for ecorules.engine.diff._policy_diff: what changed in the policy text, rule by rule."""

from __future__ import annotations

import json

import pytest
from diff_fixtures import (
    ADD_RULE,
    CREDIT,
    RAISE_FROM_2013,
    REMOVE_RULE,
    WATER,
    edited,
    raise_moved_to_july,
    write_set,
)
from ecorules.engine.diff._policy_diff import diff_policies, diff_policy
from ecorules.rules import load_policies


@pytest.fixture
def base(tmp_path):
    return load_policies(write_set(tmp_path / "base"))


def draft(tmp_path, water=WATER, credit=CREDIT, name="draft"):
    return load_policies(write_set(tmp_path / name, water, credit))


def only_policy(diff):
    assert len(diff.policies) == 1, diff.policies
    return diff.policies[0]


def test_identical_sets_have_no_change(base, tmp_path):
    diff = diff_policies(base, draft(tmp_path))
    assert diff.empty
    assert set(diff.unchanged) == {"test.water@2011", "test.credit@2012"}
    assert diff.counts()["policies_changed"] == 0


def test_reformatting_is_not_a_change(base, tmp_path):
    """Comments, spacing and parentheses that change nothing are not reported."""
    water = WATER.replace("    when: untreated_outfalls > 0", "    # reworded\n    when: (untreated_outfalls   >   0)")
    assert diff_policies(base, draft(tmp_path, water)).empty


def test_raised_deduction_from_a_date_is_one_new_dated_value(base, tmp_path):
    change = only_policy(diff_policies(base, draft(tmp_path, edited(RAISE_FROM_2013))))
    assert (change.policy, change.status, change.base, change.proposed) == ("test.water", "changed", "test.water@2011", "test.water@2011")
    assert change.rules == () and change.header == ()
    (parameter,) = change.parameters
    assert (parameter.name, parameter.status, parameter.fields) == ("deduction_per_untreated_outfall", "changed", ())
    (value,) = parameter.values
    assert value.to_dict() == {
        "status": "added", "start_before": None, "start_after": "2013-01-01",
        "value_before": None, "value_after": 1500000,
        "reference_before": None, "reference_after": "草案:每个排污口扣款150万元",
    }


def test_added_rule_comes_with_its_condition_amount_and_citation(base, tmp_path):
    change = only_policy(diff_policies(base, draft(tmp_path, edited(ADD_RULE))))
    (rule,) = change.rules
    assert (rule.name, rule.status) == ("high_pollution_outfall_surcharge", "added")
    assert rule.title == "高污染企业排污口未治理到位,每个加扣50万元"
    assert rule.summary["condition"] == "high_pollution and untreated_outfalls > 0"
    assert rule.summary["findings"] == [{"kind": "fiscal_deduction", "amount": "500000 * untreated_outfalls", "payer": "district"}]
    assert rule.summary["citation"]["article"] == "惩罚措施(三)"
    assert diff_policies(base, draft(tmp_path, edited(ADD_RULE))).counts()["rules_added"] == 1


def test_removed_rule(base, tmp_path):
    change = only_policy(diff_policies(base, draft(tmp_path, edited(REMOVE_RULE))))
    (rule,) = change.rules
    assert (rule.name, rule.status) == ("direct_discharge_deduction", "removed")
    assert rule.summary["citation"]["text"].startswith("对工业企业生产废水超标直接排入生态水系")


def test_parameter_date_change_is_a_move(tmp_path):
    raised = draft(tmp_path, edited(RAISE_FROM_2013), name="raised")
    moved = draft(tmp_path, raise_moved_to_july(), name="moved")
    change = only_policy(diff_policies(raised, moved))
    (value,) = change.parameters[0].values
    assert (value.status, value.start_before, value.start_after) == ("moved", "2013-01-01", "2013-07-01")
    assert value.value_before == value.value_after == 1500000


def test_changed_value_on_the_same_date(base, tmp_path):
    water = WATER.replace("value: 1000000", "value: 1200000")
    (value,) = only_policy(diff_policies(base, draft(tmp_path, water))).parameters[0].values
    assert (value.status, value.start_before, value.value_before, value.value_after) == ("changed", "2011-01-01", 1000000, 1200000)


def test_condition_amount_and_citation_changes_name_the_field(base, tmp_path):
    water = (
        WATER.replace("when: untreated_outfalls > 0", "when: untreated_outfalls > 1")
        .replace("amount: deduction_per_untreated_outfall * untreated_outfalls", "amount: deduction_per_untreated_outfall * max(untreated_outfalls - 1, 0)")
        .replace("每个排污口扣款100万元\n    when", "每个排污口扣款100万元(首个免扣)\n    when")
    )
    (rule,) = only_policy(diff_policies(base, draft(tmp_path, water))).rules
    fields = {f.field: (f.before, f.after) for f in rule.fields}
    assert fields["condition"] == ("untreated_outfalls > 0", "untreated_outfalls > 1")
    assert fields["findings[0].amount"] == (
        "deduction_per_untreated_outfall * untreated_outfalls",
        "deduction_per_untreated_outfall * max(untreated_outfalls - 1, 0)",
    )
    assert fields["citation.text"][1].endswith("(首个免扣)")
    assert set(fields) == {"condition", "findings[0].amount", "citation.text"}


def test_lists_facts_header_and_tests(base, tmp_path):
    credit = CREDIT.replace("    title: 绿色信贷黑名单\n", "    title: 绿色信贷黑名单(修订)\n  watch_list:\n    title: 重点关注名单\n")
    water = WATER.replace('version: "2011"', 'version: "2013"').replace("effective: 2011-01-01", "effective: 2013-01-01")
    water = water.replace("  - name: 一例直排扣款1000万元\n", "  - name: 一例直排扣款1000万元(修订)\n")
    folder = write_set(tmp_path / "d", water, credit)
    catalogue = (folder / "registry.yaml").read_text(encoding="utf-8")
    (folder / "registry.yaml").write_text(catalogue.replace("新密市]", "新密市, 登封市]"), encoding="utf-8")
    diff = diff_policies(base, load_policies(folder))
    credit_change, water_change = diff.policies  # in the order of the files
    assert (water_change.base, water_change.proposed) == ("test.water@2011", "test.water@2013")
    assert {f.field: (f.before, f.after) for f in water_change.header} == {
        "version": ("2011", "2013"), "effective": ("2011-01-01", "2013-01-01"),
    }
    assert {(t.name, t.status) for t in water_change.tests} == {("一例直排扣款1000万元", "removed"), ("一例直排扣款1000万元(修订)", "added")}
    assert {(item.name, item.status) for item in credit_change.lists} == {("green_credit_blacklist", "changed"), ("watch_list", "added")}
    (fact,) = diff.facts
    assert (fact.name, fact.status, fact.fields[0].field, fact.fields[0].after) == ("district", "changed", "values added", ["登封市"])


def test_an_enum_alias_added_is_a_change_of_the_fact(base, tmp_path):
    folder = write_set(tmp_path / "d", WATER, CREDIT)
    catalogue = (folder / "registry.yaml").read_text(encoding="utf-8")
    assert "新密市]" in catalogue
    (folder / "registry.yaml").write_text(catalogue.replace("新密市]", "新密市: [新密]]"), encoding="utf-8")
    (fact,) = diff_policies(base, load_policies(folder)).facts
    assert [(f.field, f.before, f.after) for f in fact.fields] == [("value aliases added", None, ["新密 = 新密市"])]


def test_added_and_removed_policies_list_their_rules(base, tmp_path):
    diff = diff_policies(base, draft(tmp_path, credit=None))
    change = only_policy(diff)
    assert (change.policy, change.status, change.proposed) == ("test.credit", "removed", None)
    assert [(r.name, r.status) for r in change.rules] == [("illegal_discharge_blacklist", "removed")]
    assert diff_policy(None, base["test.credit"]).status == "added"


def test_new_version_beside_the_old_one_is_an_added_version(base, tmp_path):
    """A draft that keeps 2011 (now expiring) and adds 2013 pairs 2011 with 2011."""
    old = WATER.replace("effective: 2011-01-01", "effective: 2011-01-01\n  expires: 2013-01-01")
    new = WATER.replace('version: "2011"', 'version: "2013"').replace("effective: 2011-01-01", "effective: 2013-01-01")
    folder = write_set(tmp_path / "d", old)
    (folder / "water2013.yaml").write_text(new, encoding="utf-8")
    diff = diff_policies(base, load_policies(folder))
    statuses = [(p.base, p.proposed, p.status) for p in diff.policies]
    assert statuses == [("test.water@2011", "test.water@2011", "changed"), (None, "test.water@2013", "added")]
    assert diff.policies[0].header[0].to_dict() == {"field": "expires", "before": None, "after": "2013-01-01"}


def test_to_dict_is_plain_json(base, tmp_path):
    document = diff_policies(base, draft(tmp_path, edited(RAISE_FROM_2013), credit=None)).to_dict()
    assert json.loads(json.dumps(document, ensure_ascii=False)) == document
    assert set(document) == {"counts", "policies", "facts", "unchanged"}


def test_a_rounding_change_is_reported_in_the_header_or_at_the_finding(base, tmp_path):
    """The policy's ``rounding:``: a header field, and the rules whose amounts follow it named
    as rounded; a rule's own: a field of its finding. Neither was reported before."""
    header = WATER.replace('  effective: 2011-01-01\n', '  effective: 2011-01-01\n  rounding: {unit: fen}\n', 1)
    change = only_policy(diff_policies(base, draft(tmp_path, header)))
    assert [f.to_dict() for f in change.header] == [{"field": "rounding", "before": "yuan, half_up", "after": "fen, half_up"}]
    assert change.rules == () and change.rounded == ("untreated_outfall_deduction", "direct_discharge_deduction")
    assert change.to_dict()["rounded"] == list(change.rounded)
    own = WATER.replace("        payer: district\n\n  - id: direct_discharge_deduction",
                        "        payer: district\n    rounding: {unit: yuan, mode: down}\n\n  - id: direct_discharge_deduction", 1)
    assert own != WATER
    change = only_policy(diff_policies(base, draft(tmp_path, own, name="own")))
    assert change.header == () and change.rounded == ()
    (rule,) = change.rules
    assert (rule.name, [f.to_dict() for f in rule.fields]) == (
        "untreated_outfall_deduction", [{"field": "findings[0].rounding", "before": "yuan, half_up", "after": "yuan, down"}])
    # a rule keeping its own rounding while the policy's changes: not rounded otherwise
    both = own.replace('  effective: 2011-01-01\n', '  effective: 2011-01-01\n  rounding: {unit: fen}\n', 1)
    change = only_policy(diff_policies(load_policies(write_set(tmp_path / "own_base", own)), draft(tmp_path, both, name="b")))
    assert change.rounded == ("direct_discharge_deduction",) and change.rules == ()
