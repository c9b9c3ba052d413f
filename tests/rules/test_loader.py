"""Broken policies: each fixture in ``broken/`` breaks ``tests/data/base_policy.yaml`` in one
way. The error must have the right class, say what is wrong, and point at ``file:line:col``.

Columns are asserted everywhere; for errors about a whole file (not UTF-8, empty, too large)
the column is 1 by construction.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest
from ecorules.rules import (
    PolicyError,
    PolicySchemaError,
    PolicySetError,
    PolicySyntaxError,
    PolicyTypeError,
    check_policies,
    load_policies,
    read_policy,
)
from ecorules.rules._yaml import MAX_FILE_BYTES

HERE = Path(__file__).parent
BROKEN = HERE / "broken"
BASE = HERE.parent / "data" / "base_policy.yaml"

Syntax, Schema, Type, Set = PolicySyntaxError, PolicySchemaError, PolicyTypeError, PolicySetError

# fixture, error class, a fragment of the message, line, column
CASES = [
    # -- the YAML itself
    ("yaml_syntax", Syntax, "YAML: expected ',' or ']', but got ':'", 14, 11),
    ("tab_indentation", Syntax, "YAML: a tab: indent with spaces, not tabs (found character '\\t' that cannot start any token)", 3, 1),
    ("duplicate_key", Syntax, "duplicate key 'title' (first at line 3)", 8, 3),
    ("alias_bomb", Syntax, "more than 100 alias uses (*name); expand them by hand", 11, 24),
    ("nesting_too_deep", Syntax, "nesting deeper than 40 levels", 35, 47),
    ("not_utf8", Syntax, "not UTF-8 (byte 0xb2); save the file as UTF-8", 3, 1),
    ("two_documents", Syntax, "more than one YAML document (---) in one file", 34, 1),
    ("empty_file", Syntax, "the file is empty", 1, 1),
    ("infinite_decimal", Syntax, "'.inf' is not a finite decimal number", 20, 35),
    # -- the shape of the policy
    ("unknown_top_level_key", Schema, "the policy file: unknown key 'tests_defaults'; allowed: checks, facts, lists, parameters, policy, rules, test_defaults, tests, values (did you mean 'test_defaults'?)", 35, 1),
    # -- checks (rules/_checks.py)
    ("check_column_not_read", Schema, "check 'outfalls_known': column 'district' must be a fact the check reads (it reads: outfalls)", 38, 13),
    ("check_reads_a_result", Schema, "check 'deduction_small' reads the result of a rule (amount_of): checks are judged before the rules", 37, 14),
    ("check_not_boolean", Type, "the requirement of check 'outfalls_known' ('require') must be boolean, but this is integer", 38, 14),
    ("check_duplicate_id", Schema, "duplicate check id 'outfalls_known' (first at line 36)", 40, 5),
    ("check_unknown_key", Schema, "check 'outfalls_known': unknown key 'mesage' where 'message' is needed (did you mean 'message'?)", 39, 5),
    ("check_unknown_name", Type, "unknown name 'outfals': not a fact, parameter or built-in of this policy (did you mean 'outfalls'?)", 37, 14),
    ("test_case_rejected_unknown_check", Schema, "test case '排污口过多': no check 'outfalls_know' in this policy (did you mean 'outfalls_known'?)", 45, 43),
    ("missing_policy_id", Schema, "the 'policy' header needs the key 'id'", 2, 3),
    ("bad_policy_id", Schema, "policy id 'Test-Broken' must be lower-case ASCII letters, digits and '_', starting with a letter", 2, 7),
    ("expires_before_effective", Schema, "expires 2011-12-31 is not after effective 2012-01-01", 8, 12),
    ("unknown_fact_type", Schema, "fact 'outfalls': unknown type 'int'; one of integer, decimal, boolean, string, date, enum (did you mean 'integer'?)", 14, 20),
    ("enum_without_values", Schema, "enum fact 'district' needs at least one value", 13, 13),
    ("enum_alias_collides_with_value", Schema, "enum fact 'district': alias '金水区\\u3000' of '二七区' (the same as '金水区' up to spaces and full-width forms) is the value '金水区' (line 15)", 16, 23),
    ("enum_alias_collides_with_alias", Schema, "enum fact 'district': alias '城区' of '二七区' is already an alias of '金水区' (line 15)", 16, 23),
    ("enum_alias_empty", Schema, "enum fact 'district': an alias of '金水区' is empty", 15, 23),
    ("enum_alias_is_its_value", Schema, "enum fact 'district': alias '金水区 ' (the same as '金水区' up to spaces and full-width forms) is the value '金水区' itself", 15, 23),
    ("enum_aliases_not_a_list", Schema, "enum fact 'district': the aliases of '金水区' must be a list; write a value with aliases as '- value: [alias, ...]'", 15, 14),
    ("min_above_max", Schema, "fact 'outfalls': min 100 is above max 10", 14, 34),
    ("min_max_on_text", Schema, "fact 'name': max 10 is not a string", 15, 29),
    ("reserved_fact_name", Schema, "fact name 'sid' is a reserved word", 15, 3),
    ("parameter_value_wrong_type", Schema, "parameter 'per_outfall': 1000000.5 is not an integer", 20, 35),
    ("decimal_five_places", Schema, "parameter 'share': 0.12345 is not a decimal with at most 4 decimal places", 24, 35),
    ("dated_values_out_of_order", Schema, "parameter 'per_outfall': dated values must be in increasing order of 'from' (2011-06-01 after 2012-01-01)", 21, 16),
    ("parameter_named_like_a_fact", Schema, "parameter 'outfalls' has the name of a fact", 22, 5),
    # -- rules
    ("rule_without_citation", Schema, "rule 'outfall_deduction' needs the key 'citation'", 26, 5),
    ("unknown_name", Type, "unknown name 'outfall': not a fact, parameter or built-in of this policy (did you mean 'outfalls'?)", 29, 11),
    ("condition_not_boolean", Type, "the condition of rule 'outfall_deduction' ('when') must be boolean, but this is integer", 29, 11),
    ("folded_condition_type_error", Type, "'and' combines true/false values, but this is enum", 29, 11),
    ("full_width_parenthesis", Syntax, "full-width character '（': use '('", 29, 28),
    ("single_equals", Syntax, "'=' alone is not an operator: use '==' to compare", 29, 20),
    ("unknown_finding_kind", Schema, "unknown finding kind 'fin'; one of fine, fiscal_deduction, fee, reward, compensation (did you mean 'fine'?)", 31, 15),
    ("rounding_unknown_unit", Schema, "unknown rounding unit 'jiao'; one of yuan, fen", 8, 20),
    ("amount_may_overflow", Type, "this integer may reach 0 .. 4,611,686,014,132,420,609,000,000, beyond the range the batch kernel can hold; declare a smaller 'max'/'min' for 'tonnes'", 33, 17),
    # outfalls - 5 with outfalls 1 .. 100, as the rule's condition outfalls > 0 narrows it
    ("amount_may_be_negative", Type, "the amount of rule 'outfall_deduction' can be negative (-4000000)", 32, 17),
    # the same slip made by a parameter: said at the parameter's value, not at the amount
    ("parameter_value_negative", Type, "parameter 'per_outfall' is -1000000 from 2012-01-01, which makes the amount of rule 'outfall_deduction' negative (-100000000)", 20, 35),
    # written in block style, the value has its own line: the report is there, not at '- from:'
    ("parameter_value_negative_block_style", Type, "parameter 'per_outfall' is -1000000 from 2012-01-01", 21, 16),
    ("divisor_can_be_zero", Type, "the divisor can be zero", 37, 37),
    ("divisor_reads_a_fact", Type, "divide only by a constant or a parameter (this divisor reads 'outfalls', which varies by record)", 32, 37),
    ("unknown_payer", Schema, "payer 'distrct' must be 'enterprise' or a text/enum fact naming the payer (such as 'district') (did you mean 'district'?)", 33, 16),
    ("payer_is_a_number_fact", Schema, "payer 'outfalls' must be 'enterprise' or a text/enum fact naming the payer (such as 'district')", 33, 16),
    ("unknown_list", Schema, "unknown list 'blacklst'; declare it under 'lists:' (declared: blacklist) (did you mean 'blacklist'?)", 35, 16),
    ("neither_findings_nor_sanctions", Schema, "rule 'outfall_deduction' has neither findings nor sanctions nor lifts: it would change nothing", 26, 5),
    ("duplicate_rule_id", Schema, "duplicate rule id 'outfall_deduction' (first at line 26)", 34, 5),
    # -- test cases
    ("test_case_unknown_fact", Schema, "test case '两个排污口': 'outfall' is not a fact of this policy (did you mean 'outfalls'?)", 38, 13),
    ("test_case_unknown_rule", Schema, "test case '两个排污口': no rule 'outfall_deductoin' in this policy (did you mean 'outfall_deduction'?)", 41, 18),
    # expectations that 'ecorules test' could only report as "expected finding not produced"
    ("test_case_payer_not_allowed", Schema, "test case '两个排污口': payer '二七' is not an allowed district (did you mean '二七区'?)", 41, 66),
    ("test_case_unknown_kind", Schema, "test case '两个排污口': unknown finding kind 'fiscal_deductoin'; one of fine, fiscal_deduction, fee, reward, compensation (did you mean 'fiscal_deduction'?)", 41, 65),
    ("test_case_kind_the_rule_never_finds", Schema, "test case '两个排污口': rule 'outfall_deduction' finds fiscal_deduction, never 'fine' (did you mean 'fiscal_deduction'?)", 41, 65),
    ("test_case_value_not_allowed", Schema, "test case '两个排污口': district: '金水' is not an allowed district: did you mean 金水区?", 38, 36),
    ("test_defaults_value_not_allowed", Schema, "test_defaults: district: '金水' is not an allowed district: did you mean 金水区?", 35, 53),
    ("test_case_duplicate_name", Schema, "duplicate test case name '两个排污口'", 42, 11),
]


def test_every_fixture_is_listed_and_the_base_is_valid():
    listed = {name for name, *_ in CASES}
    assert {path.stem for path in BROKEN.glob("*.yaml")} == listed
    policy = read_policy(BASE)
    assert policy.key == "test.broken@1"
    assert [rule.id for rule in policy.rules] == ["outfall_deduction"]


@pytest.mark.parametrize(("name", "cls", "fragment", "line", "column"), CASES, ids=[c[0] for c in CASES])
def test_broken_policy(name, cls, fragment, line, column):
    path = BROKEN / f"{name}.yaml"
    with pytest.raises(PolicyError) as caught:
        read_policy(path)
    error = caught.value
    assert type(error) is cls, str(error)
    assert str(error).startswith(f"{path}:{line}:{column}: "), str(error)
    assert fragment in error.message + (f" (did you mean {error.suggestion!r}?)" if error.suggestion else "")
    assert fragment in str(error).splitlines()[0]
    assert (error.span.file, error.span.line, error.span.column) == (str(path), line, column)


def test_suggestion_is_also_an_attribute():
    with pytest.raises(PolicyError) as caught:
        read_policy(BROKEN / "unknown_top_level_key.yaml")
    assert caught.value.suggestion == "test_defaults"
    with pytest.raises(PolicyError) as caught:
        read_policy(BROKEN / "payer_is_a_number_fact.yaml")
    assert caught.value.suggestion is None  # never the refused name itself


def test_error_text_shows_the_source_line_with_a_caret():
    with pytest.raises(PolicyError) as caught:
        read_policy(BROKEN / "unknown_name.yaml")
    first, source, caret = str(caught.value).splitlines()
    assert source == "        when: outfall > 0"
    assert caret == "    " + " " * 10 + "^" * len("outfall")


def test_errors_are_value_errors_and_type_errors_where_callers_expect_them():
    assert issubclass(PolicySyntaxError, ValueError)
    assert issubclass(PolicyTypeError, TypeError) and issubclass(PolicyTypeError, ValueError)


def test_alias_bomb_stops_before_expanding(tmp_path):
    # the bomb is refused while composing: nothing of size 12**10 is ever built
    import time

    started = time.perf_counter()
    with pytest.raises(PolicySyntaxError):
        read_policy(BROKEN / "alias_bomb.yaml")
    assert time.perf_counter() - started < 1


def test_file_too_large(tmp_path):
    base = BASE.read_text(encoding="utf-8")
    path = tmp_path / "large.yaml"
    padding = "# " + "x" * 98 + "\n"
    path.write_text(base + padding * (MAX_FILE_BYTES // len(padding) + 1), encoding="utf-8")
    with pytest.raises(PolicySyntaxError) as caught:
        read_policy(path)
    assert str(caught.value) == f"{path}:1:1: file is larger than {MAX_FILE_BYTES} bytes"


def test_a_file_just_under_the_limit_loads(tmp_path):
    base = BASE.read_text(encoding="utf-8")
    path = tmp_path / "large_ok.yaml"
    padding = "# " + "x" * 98 + "\n"
    room = MAX_FILE_BYTES - len(base.encode("utf-8"))
    path.write_text(base + padding * (room // len(padding)), encoding="utf-8")
    assert read_policy(path).id == "test.broken"


def test_a_utf8_bom_is_tolerated(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.read_bytes())
    assert read_policy(path).title == "测试政策"


# -- errors across files: PolicySetError -------------------------------------------------------
SET_CASES = [
    ("overlapping_versions", Set, "v2012.yaml", "test.broken@2011 and test.broken@2012 are both in force on 2012-06-01: give test.broken@2011 'expires: 2012-06-01'", 3, 3),
    ("fact_types_differ", Set, "b_credit.yaml", "fact 'outfalls' is decimal here but integer in test.broken@1", 15, 13),
    ("catalogue_clash", Schema, "policy.yaml", "fact 'outfalls' is already declared in the folder's fact catalogue", 13, 13),
]


@pytest.mark.parametrize(("folder", "cls", "file", "fragment", "line", "column"), SET_CASES, ids=[c[0] for c in SET_CASES])
def test_broken_policy_set(folder, cls, file, fragment, line, column):
    with pytest.raises(PolicyError) as caught:
        load_policies(BROKEN / "sets" / folder)
    error = caught.value
    assert type(error) is cls
    assert str(error).startswith(f"{BROKEN / 'sets' / folder / file}:{line}:{column}: {fragment}")
    # check_policies reports the same single error instead of raising
    policies, errors = check_policies([BROKEN / "sets" / folder])
    assert policies is None
    assert [str(e) for e in errors] == [str(error)]


def test_versions_with_disjoint_periods_load_side_by_side(tmp_path):
    for name in ("v2011.yaml", "v2012.yaml"):
        shutil.copy(BROKEN / "sets" / "overlapping_versions" / name, tmp_path / name)
    first = tmp_path / "v2011.yaml"
    first.write_text(first.read_text(encoding="utf-8").replace("  effective: 2011-01-01\n", "  effective: 2011-01-01\n  expires: 2012-06-01\n"), encoding="utf-8")
    policies = load_policies(tmp_path)
    assert sorted(p.key for p in policies) == ["test.broken@2011", "test.broken@2012"]


def test_check_policies_reports_every_broken_file_of_a_folder(tmp_path):
    for name in ("tab_indentation", "duplicate_key", "unknown_name", "not_utf8", "divisor_can_be_zero"):
        shutil.copy(BROKEN / f"{name}.yaml", tmp_path / f"{name}.yaml")
    shutil.copy(BASE, tmp_path / "valid.yaml")
    policies, errors = check_policies([tmp_path])
    assert policies is None
    found = sorted((Path(e.span.file).stem, e.span.line, e.span.column) for e in errors)
    assert found == [
        ("divisor_can_be_zero", 37, 37), ("duplicate_key", 8, 3), ("not_utf8", 3, 1),
        ("tab_indentation", 3, 1), ("unknown_name", 29, 11),
    ]


# -- the CLI over a folder of broken files -------------------------------------------------------
def test_cli_check_lists_file_line_col_message_for_each_broken_file():
    from click.testing import CliRunner
    from ecorules.engine._cli import main

    result = CliRunner().invoke(main, ["check", str(BROKEN)])
    assert result.exit_code == 2, result.output
    located = re.findall(r"^(\S+\.yaml):(\d+):(\d+): (.+)$", result.output, flags=re.MULTILINE)
    by_file = {(Path(f).stem, int(line), int(col)): message for f, line, col, message in located}
    for name, _, fragment, line, column in CASES:
        assert (name, line, column) in by_file, name
        assert fragment in by_file[(name, line, column)]
    # nothing is reported as loaded when a file is broken
    assert "ok  " not in result.output


def test_cli_check_json_lists_the_errors():
    import json

    from click.testing import CliRunner
    from ecorules.engine._cli import main

    result = CliRunner().invoke(main, ["check", "--format", "json", str(BROKEN / "unknown_name.yaml")])
    assert result.exit_code == 2
    document = json.loads(result.output)
    assert document["ok"] is False and document["policies"] == []
    (error,) = document["errors"]
    assert error["line"] == 29 and error["column"] == 11 and error["suggestion"] == "outfalls"
    assert error["message"].startswith("unknown name 'outfall'")


def test_enum_values_that_differ_between_files_are_named(tmp_path):
    base = BASE.read_text(encoding="utf-8")
    (tmp_path / "a.yaml").write_text(base, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(
        base.replace("id: test.broken", "id: test.other").replace("values: [金水区, 二七区]", "values: [金水区, 中原区]"),
        encoding="utf-8",
    )
    with pytest.raises(PolicySetError) as caught:
        load_policies(tmp_path)
    assert caught.value.message == (
        f"fact 'district' is enum [金水区, 中原区] here but enum [金水区, 二七区] in test.broken@1 ({tmp_path / 'a.yaml'})"
    )
    assert (Path(caught.value.span.file).name, caught.value.span.line) == ("b.yaml", 13)  # the declaration in b.yaml


def test_enum_values_with_aliases_keep_their_declared_order(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(BASE.read_text(encoding="utf-8").replace(
        "values: [金水区, 二七区]", "values:\n      - 金水区: [金水区管委会]\n      - 二七区\n      - 郑东新区: [郑东新区管委会, 郑东]"),
        encoding="utf-8")
    fact = read_policy(path).facts["district"]
    assert fact.type.choices == ("金水区", "二七区", "郑东新区")  # the kernel's codes are these indices
    assert fact.value_aliases == (("金水区管委会", "金水区"), ("郑东新区管委会", "郑东新区"), ("郑东", "郑东新区"))


def test_enum_aliases_that_differ_between_files_are_named(tmp_path):
    base = BASE.read_text(encoding="utf-8")
    (tmp_path / "a.yaml").write_text(base, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(
        base.replace("id: test.broken", "id: test.other").replace("values: [金水区, 二七区]", "values: [金水区: [金水], 二七区]"),
        encoding="utf-8",
    )
    with pytest.raises(PolicySetError) as caught:
        load_policies(tmp_path)
    assert caught.value.message.startswith("fact 'district' is enum [金水区, 二七区] aliases [金水=金水区] here but enum [金水区, 二七区] in")


# -- the remaining errors of the safe YAML reader -------------------------------------------------
def test_a_mapping_key_must_be_a_plain_word(tmp_path):
    path = tmp_path / "key.yaml"
    path.write_text("policy:\n  id: x\n  [a, b]: 1\n", encoding="utf-8")
    with pytest.raises(PolicySyntaxError) as caught:
        read_policy(path)
    assert str(caught.value).splitlines()[0] == f"{path}:3:3: a mapping key must be a plain word"
    path.write_text("policy:\n  ~: 1\n", encoding="utf-8")
    with pytest.raises(PolicySyntaxError, match=r":2:3: a mapping key must be a plain word"):
        read_policy(path)


def test_too_many_yaml_nodes():
    from ecorules.rules._yaml import MAX_NODES, load_yaml_text

    with pytest.raises(PolicySyntaxError) as caught:
        load_yaml_text("a: [" + "0," * MAX_NODES + "0]", "nodes.yaml")
    # the mapping, the key 'a' and the list are 3 nodes: the item that is one too many
    assert str(caught.value).startswith(f"nodes.yaml:1:{5 + 2 * (MAX_NODES - 3)}: more than {MAX_NODES} YAML nodes: a policy should be far smaller")


def test_text_larger_than_the_limit_is_refused_before_parsing():
    from ecorules.rules._yaml import load_yaml_text

    with pytest.raises(PolicySyntaxError) as caught:
        load_yaml_text("# " + "字" * (MAX_FILE_BYTES // 3 + 1), "big.yaml")  # 3 bytes each in UTF-8
    assert str(caught.value) == f"big.yaml:1:1: file is larger than {MAX_FILE_BYTES} bytes"


def test_unreadable_paths(tmp_path):
    with pytest.raises(PolicySyntaxError) as caught:
        read_policy(tmp_path / "missing.yaml")
    assert str(caught.value) == f"{tmp_path / 'missing.yaml'}:1:1: cannot read file: No such file or directory"
    with pytest.raises(PolicySyntaxError, match="cannot read file: Is a directory"):
        read_policy(tmp_path)


def test_floats_are_read_exactly_as_decimals():
    from decimal import Decimal

    from ecorules.rules._yaml import load_yaml_text

    assert load_yaml_text("a: 0.1\nb: 1_000.25\nc: -2.5", "f.yaml") == {"a": Decimal("0.1"), "b": Decimal("1000.25"), "c": Decimal("-2.5")}
    for text in ("a: .nan", "a: -.inf"):
        with pytest.raises(PolicySyntaxError, match=r"f.yaml:1:4: '.+' is not a finite decimal number"):
            load_yaml_text(text, "f.yaml")


def test_an_amount_may_use_a_parameter_that_is_not_set_yet(tmp_path):
    """Legal staff can write the rule before the law gives the rate; it is judged once set."""
    path = tmp_path / "pending.yaml"
    path.write_text(
        """
policy: {id: test.pending, title: 待定, version: "1", effective: 2012-01-01, authority: 局, document: 文}
facts:
  uscc: {type: string}
  cases: {type: integer, min: 0, max: 100}
parameters:
  fine_per_case: {type: integer, values: []}
rules:
  - id: fine
    title: 罚款
    citation: {document: 文, text: 每例罚款}
    when: cases > 0
    findings:
      - {kind: fine, amount: fine_per_case * cases, payer: enterprise}
""",
        encoding="utf-8",
    )
    policy = read_policy(path)
    assert policy.unset_parameters(policy.effective) == {
        "fine_per_case": "parameter 'fine_per_case' has no value in force on 2012-01-01 (no value set)"
    }


TERM_POLICY = """\
policy: {{id: test.term, title: 期限, version: "1", effective: 2012-01-01, authority: 局, document: 文}}
facts:
  uscc: {{type: string}}
  decided: {{type: date, min: 2000-01-01, max: 2099-12-31}}
parameters:
  term_years: {{type: integer, {bounds}values: {values}}}
lists:
  watch: {{title: 关注}}
rules:
  - id: listed
    title: 列入
    citation: {{document: 文, text: 列入}}
    when: decided <= as_of
    sanctions:
      - {{list: watch, reason: 测试, from: decided, until: "add_years(decided, term_years)"}}
"""


def test_a_parameter_not_set_yet_may_declare_the_range_its_value_will_lie_in(tmp_path):
    """A term in years used in add_years before legal staff set it: unbounded, the kernel could
    not hold the date; with min/max the policy loads, and a value outside the range is refused."""
    path = tmp_path / "term.yaml"
    path.write_text(TERM_POLICY.format(bounds="", values="[]"), encoding="utf-8")
    with pytest.raises(PolicyTypeError, match="beyond the range the batch kernel can hold"):
        read_policy(path)
    path.write_text(TERM_POLICY.format(bounds="min: 1, max: 10, ", values="[]"), encoding="utf-8")
    assert read_policy(path).parameters["term_years"].interval == (1, 10)
    path.write_text(TERM_POLICY.format(bounds="min: 1, max: 10, ", values="[{from: 2012-01-01, value: 11, reference: 文}]"),
                    encoding="utf-8")
    with pytest.raises(PolicySchemaError, match=r"'term_years': 11 is outside its range 1..10") as caught:
        read_policy(path)
    assert caught.value.span.line == 6
    path.write_text(TERM_POLICY.format(bounds="min: 10, max: 1, ", values="[]"), encoding="utf-8")
    with pytest.raises(PolicySchemaError, match="min 10 is above max 1"):
        read_policy(path)
    path.write_text(TERM_POLICY.format(bounds="min: 1.5, ", values="[]"), encoding="utf-8")
    with pytest.raises(PolicySchemaError, match="'min' is a number of the parameter's type"):
        read_policy(path)


OUTFALL_POLICY = """\
policy: {{id: test.outfalls, title: 排污口, version: "1", effective: 2012-01-01, authority: 局, document: 文}}
facts:
  uscc: {{type: string}}
  industrial: {{type: boolean}}
  untreated_outfalls: {{type: integer, min: 0, max: 100}}
lists:
  watch: {{title: 关注}}
rules:
  - id: outfalls
    title: 未整治排污口
    citation: {{document: 文, text: 第二个起每个扣款100万元}}
    when: {when}
    {what}
"""
AMOUNT = "findings:\n      - {kind: fiscal_deduction, amount: (untreated_outfalls - 1) * 1000000, payer: enterprise}"


def test_an_amount_is_ranged_under_the_rule_condition(tmp_path):
    """The amount is computed only when the condition holds: no max(..., 0) needed."""
    path = tmp_path / "outfalls.yaml"
    path.write_text(OUTFALL_POLICY.format(when="untreated_outfalls >= 2", what=AMOUNT), encoding="utf-8")
    (finding,) = read_policy(path).rules[0].findings
    assert finding.amount.interval == (1_000_000, 99_000_000)


def test_the_same_amount_without_the_condition_is_refused_at_its_line_and_column(tmp_path):
    path = tmp_path / "outfalls.yaml"
    path.write_text(OUTFALL_POLICY.format(when="industrial", what=AMOUNT), encoding="utf-8")
    with pytest.raises(PolicyTypeError) as caught:
        read_policy(path)
    assert str(caught.value).startswith(
        f"{path}:14:42: the amount of rule 'outfalls' can be negative (-1000000)"
    ), str(caught.value)


def test_a_rule_whose_condition_can_never_be_true_loads_with_its_amount_ranged_as_declared(tmp_path):
    path = tmp_path / "outfalls.yaml"
    path.write_text(OUTFALL_POLICY.format(when="industrial and untreated_outfalls > 100", what=AMOUNT), encoding="utf-8")
    with pytest.raises(PolicyTypeError) as caught:
        read_policy(path)
    assert str(caught.value).startswith(f"{path}:14:42: the amount of rule 'outfalls' can be negative (-1000000)")
    sanction = "sanctions:\n      - {list: watch, reason: 排污口}"
    path.write_text(OUTFALL_POLICY.format(when="industrial and untreated_outfalls > 100", what=sanction), encoding="utf-8")
    assert read_policy(path).rules[0].sanctions


SANCTION = "sanctions:\n      - {list: watch, reason: 排污口}"


def test_a_rule_that_can_never_apply_carries_a_warning_at_the_part_that_cannot_hold(tmp_path):
    """Loaded (never refused), but legal staff are told: almost always a typo or a wrong bound."""
    path = tmp_path / "outfalls.yaml"
    path.write_text(OUTFALL_POLICY.format(when="industrial and untreated_outfalls > 100", what=SANCTION), encoding="utf-8")
    policy = read_policy(path)
    warning = policy.rules[0].never_applies
    assert warning.message == (
        "rule 'outfalls' can never apply: \"untreated_outfalls > 100\" is never true: "
        "integer fact 'untreated_outfalls' is declared from 0 to 100"
    )
    assert (warning.span.file, warning.span.line, warning.span.column) == (str(path), 12, 26)
    assert str(warning).startswith(f"{path}:12:26: rule 'outfalls' can never apply")
    assert policy.warnings(policy.effective) == (warning,)


def test_a_contradiction_between_two_parts_of_the_condition_names_the_narrowed_range(tmp_path):
    path = tmp_path / "outfalls.yaml"
    path.write_text(OUTFALL_POLICY.format(when="untreated_outfalls > 5 and untreated_outfalls < 3", what=SANCTION), encoding="utf-8")
    warning = read_policy(path).rules[0].never_applies
    assert warning.message.endswith(
        "\"untreated_outfalls < 3\" is never true: integer fact 'untreated_outfalls' is from 6 to 100"
        " where the rest of the condition holds (declared from 0 to 100)"
    )
    assert warning.span.column == 38


@pytest.mark.parametrize(
    "when",
    ["untreated_outfalls >= 2", "untreated_outfalls > 100 or industrial", "not (untreated_outfalls > 99 and industrial)",
     "untreated_outfalls == 100", "industrial"],
)
def test_a_rule_that_can_apply_has_no_warning(tmp_path, when):
    """``or`` narrows nothing: one impossible alternative is no reason to warn."""
    path = tmp_path / "outfalls.yaml"
    path.write_text(OUTFALL_POLICY.format(when=when, what=SANCTION), encoding="utf-8")
    policy = read_policy(path)
    assert policy.rules[0].never_applies is None
    assert policy.warnings(policy.effective) == ()


@pytest.mark.parametrize(
    ("when", "column", "message"),
    [
        ("untreated_outfalls >= 0", 11, "rule 'outfalls' always applies: \"untreated_outfalls >= 0\" is always true: "
                                        "integer fact 'untreated_outfalls' is declared from 0 to 100"),
        ("not (untreated_outfalls < 0)", 16, "rule 'outfalls' always applies: \"not (untreated_outfalls < 0)\" is always true"),
        ("industrial or untreated_outfalls <= 100", 25, "rule 'outfalls' always applies: \"untreated_outfalls <= 100\" is always true"),
        ("industrial and untreated_outfalls >= 0", 26,
         "rule 'outfalls': a part of its condition adds nothing: \"untreated_outfalls >= 0\" is always true"),
        # inside or and nested and (an and of always-true parts is always true; an or with
        # an always-true alternative too), and a part of an and nested in an or
        ("untreated_outfalls >= 0 and untreated_outfalls <= 100", 11,
         "rule 'outfalls' always applies: \"untreated_outfalls >= 0\" is always true: integer fact 'untreated_outfalls' "
         "is declared from 0 to 100; \"untreated_outfalls <= 100\" is always true"),
        ("industrial or (untreated_outfalls >= 0 and untreated_outfalls <= 100)", 26,
         "rule 'outfalls' always applies: \"untreated_outfalls >= 0\" is always true"),
        ("industrial and (untreated_outfalls < 5 or (untreated_outfalls >= 0 and untreated_outfalls <= 100))", 54,
         "rule 'outfalls': a part of its condition adds nothing: \"untreated_outfalls >= 0\" is always true"),
        ("untreated_outfalls > 5 or (industrial and untreated_outfalls >= 0)", 53,
         "rule 'outfalls': a part of its condition adds nothing: \"untreated_outfalls >= 0\" is always true"),
    ],
)
def test_a_condition_true_for_every_declared_value_warns_as_a_never_true_one_does(tmp_path, when, column, message):
    """The acceptance case: ``< 0`` warned "never true" from the declared min 0, ``>= 0`` passed
    silently; the same range reasoning now finds both."""
    path = tmp_path / "outfalls.yaml"
    path.write_text(OUTFALL_POLICY.format(when=when, what=SANCTION), encoding="utf-8")
    policy = read_policy(path)
    (warning,) = policy.warnings(policy.effective)
    assert warning.message.startswith(message), warning.message
    assert (warning.span.line, warning.span.column) == (12, column)


def test_an_or_of_never_true_alternatives_never_applies(tmp_path):
    path = tmp_path / "outfalls.yaml"
    path.write_text(OUTFALL_POLICY.format(when="industrial and (untreated_outfalls > 100 or untreated_outfalls < 0)",
                                          what=SANCTION), encoding="utf-8")
    policy = read_policy(path)
    warning = policy.rules[0].never_applies
    assert warning.message == (
        "rule 'outfalls' can never apply: \"untreated_outfalls > 100\" is never true: integer fact 'untreated_outfalls' "
        "is declared from 0 to 100; \"untreated_outfalls < 0\" is never true: integer fact 'untreated_outfalls' is "
        "declared from 0 to 100")
    assert policy.warnings(policy.effective) == (warning,)


def test_an_amount_that_is_0_wherever_the_rule_applies_warns(tmp_path):
    text = OUTFALL_POLICY.replace("lists:", """parameters:
  per_outfall:
    type: integer
    values:
      - {{from: 2012-01-01, value: 1000000, reference: 第二个起每个扣款100万元}}
lists:""")
    path = tmp_path / "outfalls.yaml"
    for when, amount in (("untreated_outfalls >= 1", "per_outfall * 0"),
                         ("untreated_outfalls == 1", "(untreated_outfalls - 1) * per_outfall")):
        finding = f"findings:\n      - {{kind: fiscal_deduction, amount: {amount}, payer: enterprise}}"
        path.write_text(text.format(when=when, what=finding), encoding="utf-8")
        policy = read_policy(path)
        (warning,) = policy.warnings(policy.effective)
        assert warning.message == "rule 'outfalls': the amount is always 0"
        assert (warning.span.line, warning.span.column) == (19, 42)
    path.write_text(text.format(when="untreated_outfalls >= 1", what=AMOUNT), encoding="utf-8")
    assert read_policy(path).warnings(dt.date(2013, 1, 1)) == ()  # 0 on one outfall, not always


PARAMETER_POLICY = """\
policy: {{id: test.limit, title: 限值, version: "1", effective: 2012-01-01, authority: 局, document: 文}}
facts:
  uscc: {{type: string}}
  days_open: {{type: integer, min: 0, max: 60}}
parameters:
  limit_days:
    type: integer
    values:
      - {{from: 2012-01-01, value: {first}, reference: 第一条}}
      - {{from: 2015-01-01, value: {second}, reference: 第二条}}
lists:
  watch: {{title: 关注}}
rules:
  - id: overdue
    title: 超期
    citation: {{document: 文, text: 超期}}
    when: days_open > limit_days
    sanctions:
      - {{list: watch, reason: 超期}}
"""


def test_a_parameter_makes_a_rule_impossible_only_if_every_dated_value_does(tmp_path):
    path = tmp_path / "limit.yaml"
    path.write_text(PARAMETER_POLICY.format(first=90, second=30), encoding="utf-8")
    assert read_policy(path).rules[0].never_applies is None  # possible from 2015 on
    path.write_text(PARAMETER_POLICY.format(first=90, second=60), encoding="utf-8")
    warning = read_policy(path).rules[0].never_applies
    assert warning.message == (
        "rule 'overdue' can never apply: \"days_open > limit_days\" is never true: integer fact 'days_open'"
        " is declared from 0 to 60, and parameter 'limit_days' is from 60 to 90 over its dated values"
    )
    assert (warning.span.line, warning.span.column) == (17, 11)


def test_policy_warnings_name_an_unset_parameter_at_its_declaration(tmp_path):
    path = tmp_path / "limit.yaml"
    path.write_text(PARAMETER_POLICY.format(first=90, second=30).replace(
        "    values:\n      - {from: 2012-01-01, value: 90, reference: 第一条}\n", "    values:\n"
    ).replace("2015-01-01", "2016-01-01"), encoding="utf-8")
    policy = read_policy(path)
    (warning,) = policy.warnings(dt.date(2013, 1, 1))
    assert warning.message == (
        "parameter 'limit_days' has no value in force on 2013-01-01 (first value from 2016-01-01):"
        " the rules reading 'limit_days' are not judged until it is set"
    )
    assert (warning.span.line, warning.span.column) == (7, 5)
    assert policy.warnings(dt.date(2016, 1, 1)) == ()


@pytest.mark.parametrize(("change", "message", "suggestion"), [
    # a group test (cases:): the case named must be one of the cases given
    ("amount_yuan: 30000, case: c3}", "no case 'c4' among the records given (c1, c2, c3)", "c3"),
    ("amount_yuan: 150000, case: c1,", "no case 'C1' among the records given (c1, c2, c3)", "c1"),
])
def test_an_expected_finding_naming_a_case_not_given_is_refused_at_its_line(tmp_path, change, message, suggestion):
    folder = tmp_path / "cases"
    shutil.copytree(Path(__file__).parent.parent / "data" / "cases", folder)
    path = folder / "fines.yaml"
    text = path.read_text(encoding="utf-8")
    assert change in text
    wrong = change.replace("c3}", "c4}") if "c3}" in change else change.replace("c1,", "C1,")
    path.write_text(text.replace(change, wrong, 1), encoding="utf-8")
    line = next(n for n, row in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if wrong in row)
    with pytest.raises(PolicyError, match=re.escape(message)) as error:
        load_policies(folder)
    assert error.value.span.file == str(path) and error.value.span.line == line
    assert error.value.suggestion == suggestion
