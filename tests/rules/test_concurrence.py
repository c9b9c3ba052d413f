"""``check`` warns where two rules can fine one record outside one act, one fine."""

from __future__ import annotations

from pathlib import Path

from ecorules.rules import load_policies
from ecorules.rules._concurrence import concurrence_warnings

DATA = Path(__file__).parent.parent / "data"


def test_only_rules_whose_conditions_can_meet_are_reported():
    warnings = concurrence_warnings(load_policies(DATA / "concurrence"))
    # f1 (n > 5, kind a) excludes f2 (kind b or c) by the enum and f3 (n < 3) by the range;
    # f4 is a fiscal deduction, not a fine; f2 and f3 can both hold
    assert [(w.span.line, w.message.split(" can ")[0]) for _, w in warnings] == [(23, "rule 'f3' and f2")]
    assert "行政处罚法第二十九条" in warnings[0][1].message


def test_a_kind_with_acts_needs_no_warning():
    # tests/data/cases: three fine rules of the case kind, which declares act: act_id
    assert concurrence_warnings(load_policies(DATA / "cases")) == []


def test_versions_in_force_on_different_days_do_not_meet(tmp_path):
    text = (DATA / "concurrence" / "fines.yaml").read_text(encoding="utf-8")
    keep = text.split("  - id: f2")[0]  # f1 only
    (tmp_path / "old.yaml").write_text(keep.replace('version: "1"', 'version: "1"\n  expires: 2010-01-01'), encoding="utf-8")
    (tmp_path / "new.yaml").write_text(keep.replace('version: "1"', 'version: "2"').replace("2000-01-01", "2010-01-01"), encoding="utf-8")
    assert concurrence_warnings(load_policies(tmp_path)) == []
    (tmp_path / "old.yaml").write_text(keep.replace("t.ent", "t.other"), encoding="utf-8")
    assert len(concurrence_warnings(load_policies(tmp_path))) == 1
