"""Kinds and roll-ups declared in a folder's catalogues: every mistake at its place.

Each case edits tests/data/cases/cases.yaml (the case kind under the enterprise kind of
enterprises.yaml) in one spot and loads the folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ecorules.rules import PolicyError, load_policies

DATA = Path(__file__).parent.parent / "data" / "cases"


@pytest.mark.parametrize(
    ("old", "new", "message", "line", "suggestion"),
    [
        ("    count: true\n    window", "    counts: true\n    window",
         "roll-up 'prior_2y' needs exactly one of count, sum, max; unknown key 'counts'", 18, "count"),
        ("years: 2}", "year: 2}", "the window is one of years, months or days", 19, "years"),
        ("years: 2}", "years: 0}", "roll-up 'prior_2y': the window must be positive", 19, None),
        ("date: act_date,", "date: act_end,", "the window's date must be a required date fact of the case records", 19, None),
        ("date: act_date,", "date: act_dat,", "the window's date must be a required date fact of the case records", 19,
         "act_date"),
        ("    for: case\n    count", "    for: district\n    count", "'for' is the kind that gets the fact", 17, None),
        ("    window: {date: act_date, years: 2}\n", "", "a roll-up onto the case records themselves needs a 'window'", 17, None),
        ("    max: fine_yuan\n", "    max: clause\n", "max of 'clause': it must be a number fact of the case records", 26, None),
        ("    max: fine_yuan\n    empty: 0\n", "    max: fine_yuan\n", "roll-up 'largest_fine' needs the key 'empty'", 25, None),
        ("where: is_set(fine_yuan) and fine_yuan > 0", "where: fine_yuan > 0", "'fine_yuan' may be empty", 23, None),
        ("parent: enterprise", "parent: enterprises", "parent kind 'enterprises' is not declared", 2, "enterprise"),
        ("key: case_id", "key: case_no", "the key 'case_no' of kind 'case' is not one of this file's facts", 3, "case_id"),
        ("act: act_id", "act: act_date", "act 'act_date' must be a text fact of this file", 5, None),
        ("  fined_cases:", "  clause:", "roll-up 'clause' has the name of a fact", 20, None),
    ],
)
def test_a_broken_catalogue_is_reported_where_it_is_wrong(tmp_path, old, new, message, line, suggestion):
    folder = tmp_path / "cases"
    shutil.copytree(DATA, folder)
    text = (folder / "cases.yaml").read_text(encoding="utf-8")
    assert text.count(old) == 1
    (folder / "cases.yaml").write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policies(folder)
    assert message in str(caught.value)
    assert caught.value.span.file.endswith("cases.yaml") and caught.value.span.line == line
    assert caught.value.suggestion == suggestion


def test_a_policy_of_an_undeclared_kind_is_refused_with_the_closest_kind(tmp_path):
    folder = tmp_path / "cases"
    shutil.copytree(DATA, folder)
    text = (folder / "fines.yaml").read_text(encoding="utf-8")
    (folder / "fines.yaml").write_text(text.replace("domain: case", "domain: cases"), encoding="utf-8")
    with pytest.raises(PolicyError, match="domain 'cases' is not a kind this folder declares") as caught:
        load_policies(folder)
    assert (caught.value.span.line, caught.value.suggestion) == (8, "case")


def test_two_catalogues_of_a_folder_cannot_declare_one_fact(tmp_path):
    folder = tmp_path / "cases"
    shutil.copytree(DATA, folder)
    (folder / "sections.yaml").write_text(
        "kind: section\nkey: section_id\nfacts:\n  section_id: {type: string}\n  clause: {type: string}\n",
        encoding="utf-8")
    with pytest.raises(PolicyError, match="fact 'clause' is already declared in cases.yaml") as caught:
        load_policies(folder)
    assert caught.value.span.file.endswith("sections.yaml") and caught.value.span.line == 5
