"""The command line: ``ecorules check``, ``test`` and ``explain``, through click's CliRunner.

Exit codes are part of the interface: 0 done, 1 done but a test case failed, 2 failed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from ecorules.engine import load_policies
from ecorules.engine._cli import main

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
BASE = TESTS / "data" / "base_policy.yaml"
VERSIONS = TESTS / "data" / "versions"
EXAMPLES = sorted((ROOT / "examples" / "records").glob("*.json"))

RECORD = {
    "uscc": "91410100123456788Y", "name": "郑州示例化工有限公司", "district": "二七区", "industrial": True,
    "untreated_outfalls": 3, "direct_discharge_cases": 1, "illegal_discharge_cases": 0,
    "high_pollution": False, "high_energy": True,
}


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def record_file(tmp_path):
    def write(document, name="record.json") -> str:
        path = tmp_path / name
        path.write_text(document if isinstance(document, str) else json.dumps(document, ensure_ascii=False), encoding="utf-8")
        return str(path)

    return write


# -- --help --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["check", "test", "explain"])
def test_help_of_each_command_has_an_example(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert f"ecorules {command} " in result.output.split("Example:", 1)[1]


def test_main_help_lists_the_commands_and_a_start():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("check", "test", "explain"):
        assert f"  {command} " in result.output
    assert "ecorules check policies/" in result.output


# -- check ---------------------------------------------------------------------------------------------
def test_check_the_shipped_policies():
    result = run("check", str(ROOT / "policies" / "zhengzhou"))
    assert result.exit_code == 0, result.output
    water = load_policies(ROOT / "policies" / "zhengzhou")["zhengzhou.eco_water_interception"]
    assert f"ok  zhengzhou.eco_water_interception@2011  郑州市生态水系截污工作奖惩措施  (3 rules, {len(water.tests)} test cases)" in result.output
    assert "ok  zhengzhou.green_credit@2012" in result.output
    # the approval limit for other requests is not set: said as a warning, not an error, at its declaration
    approval = ROOT / "policies" / "zhengzhou" / "approval_time_limits.yaml"
    line = next(n for n, text in enumerate(approval.read_text(encoding="utf-8").splitlines(), 1)
                if text.startswith("  other_request_time_limit_days:"))
    assert (f"    warning: {approval}:{line + 1}:5: parameter 'other_request_time_limit_days' has no value in force"
            in result.output)
    assert "can never apply" not in result.output


def test_check_a_broken_file_prints_file_line_col_and_exits_2():
    broken = TESTS / "rules" / "broken" / "single_equals.yaml"
    result = run("check", str(broken))
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[0] == f"{broken}:29:20: '=' alone is not an operator: use '==' to compare"
    assert lines[1] == "        when: outfalls = 3"
    assert lines[2] == " " * 4 + " " * 19 + "^"


def test_check_json():
    result = run("check", "--format", "json", str(BASE))
    assert result.exit_code == 0
    assert json.loads(result.output) == {"ok": True, "errors": [], "warnings": [], "policies": ["test.broken@1"]}


def test_check_json_lists_an_unset_parameter_as_a_warning_at_its_declaration():
    folder = ROOT / "policies" / "zhengzhou"
    result = run("check", "--format", "json", str(folder))
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["ok"] is True
    # the shipped set leaves one figure no source gives: the time limit of other requests (the
    # red-grade loan restriction lasts as long as the grade, and needs no term)
    warnings = {w["policy"]: w for w in document["warnings"]}
    assert sorted(warnings) == ["zhengzhou.approval_time_limits@2012"]
    warning = warnings["zhengzhou.approval_time_limits@2012"]
    assert warning["file"] == str(folder / "approval_time_limits.yaml")
    declared = next(n for n, text in enumerate(Path(warning["file"]).read_text(encoding="utf-8").splitlines(), 1)
                    if text.startswith("  other_request_time_limit_days:"))
    assert (warning["line"], warning["column"]) == (declared + 1, 5)  # the mapping under the name
    assert warning["message"].startswith("parameter 'other_request_time_limit_days' has no value in force on ")
    assert warning["message"].endswith("the rules reading 'other_request_time_limit_days' are not judged until it is set")


def _with_condition(tmp_path, condition: str) -> Path:
    """The base policy with another condition for its one rule (``when: outfalls > 0``, line 30)."""
    policy = tmp_path / "p.yaml"
    policy.write_text(BASE.read_text(encoding="utf-8").replace("when: outfalls > 0", f"when: {condition}"), encoding="utf-8")
    return policy


IMPOSSIBLE = ("rule 'outfall_deduction' can never apply: \"outfalls > 100\" is never true: "
              "integer fact 'outfalls' is declared from 0 to 100")


def test_check_warns_about_a_rule_that_can_never_apply_at_the_impossible_part(tmp_path):
    """Not an error: the policy loads and the exit code is 0, but legal staff see the typo.
    Column 33 is "outfalls > 100" in "    when: district == '金水区' and outfalls > 100" (characters)."""
    policy = _with_condition(tmp_path, "district == '金水区' and outfalls > 100")
    result = run("check", str(policy))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "ok  test.broken@1  测试政策  (1 rules, 1 test cases)",
        f"    warning: {policy}:30:33: {IMPOSSIBLE}",
    ]


def test_check_json_warns_about_a_rule_that_can_never_apply(tmp_path):
    policy = _with_condition(tmp_path, "district == '金水区' and outfalls > 100")
    result = run("check", "--format", "json", str(policy))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "ok": True,
        "errors": [],
        "warnings": [{"policy": "test.broken@1", "file": str(policy), "line": 30, "column": 33, "message": IMPOSSIBLE}],
        "policies": ["test.broken@1"],
    }


@pytest.mark.parametrize(
    "condition", ["outfalls >= 100", "outfalls > 100 or district == '金水区'", "not (outfalls > 99 and district == '金水区')"],
)
def test_check_does_not_warn_about_a_rule_that_can_apply(tmp_path, condition):
    """An impossible alternative of an 'or' leaves the rule possible: no false warning."""
    policy = _with_condition(tmp_path, condition)
    for args in (("check",), ("check", "--format", "json")):
        result = run(*args, str(policy))
        assert result.exit_code == 0, result.output
        assert "warning" not in result.output.replace('"warnings": []', "")


def test_check_warns_about_a_rule_that_always_applies_from_the_same_declared_range(tmp_path):
    """The acceptance case: "< 0" warned from the declared min 0, ">= 0" passed in silence."""
    policy = _with_condition(tmp_path, "outfalls >= 0")
    result = run("check", str(policy))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == (
        f"    warning: {policy}:30:11: rule 'outfall_deduction' always applies: \"outfalls >= 0\" is always true: "
        "integer fact 'outfalls' is declared from 0 to 100"
    )


def test_check_needs_an_existing_path():
    result = run("check", "no/such/folder")
    assert result.exit_code == 2
    assert "does not exist" in result.output


# -- test ----------------------------------------------------------------------------------------------
def test_test_passing_cases_and_unexercised_rules():
    result = run("test", str(ROOT / "policies" / "zhengzhou"))
    assert result.exit_code == 0, result.output
    assert "PASS  zhengzhou.eco_water_interception@2011  三个未治理排污口扣款300万元,由所在区承担  (" in result.output
    cases = sum(len(policy.tests) for policy in load_policies(ROOT / "policies" / "zhengzhou"))
    assert f"{cases} passed, 0 failed" in result.output
    assert "no case makes this rule fire: zhengzhou.approval_time_limits@2012 other_request_overdue" in result.output


def test_test_a_failing_case_shows_expected_against_actual_and_exits_1(tmp_path):
    policy = tmp_path / "wrong.yaml"
    policy.write_text(
        BASE.read_text(encoding="utf-8").replace("amount_yuan: 2000000}", "amount_yuan: 2500000, payer: 二七区}"),
        encoding="utf-8",
    )
    result = run("test", str(policy))
    assert result.exit_code == 1
    line = next(n for n, text in enumerate(policy.read_text(encoding="utf-8").splitlines(), 1) if "- name:" in text)
    assert f"FAIL  test.broken@1  两个排污口  ({policy}:{line})" in result.output
    assert "expected finding not produced: rule=outfall_deduction, amount_yuan=2500000, payer=二七区" in result.output
    assert "unexpected finding: outfall_deduction 2,000,000 yuan (fiscal_deduction) payable by 金水区" in result.output
    assert "0 passed, 1 failed" in result.output


def test_test_reports_a_rule_no_case_makes_fire(tmp_path):
    policy = tmp_path / "p.yaml"
    text = BASE.read_text(encoding="utf-8")
    extra_rule = """  - id: many_outfalls
    title: 排污口过多
    citation: {document: 《测试文件》, text: 排污口过多列入黑名单}
    when: outfalls > 50
    sanctions:
      - {list: blacklist, reason: 排污口过多}
"""
    policy.write_text(text.replace("\ntest_defaults:", extra_rule + "\ntest_defaults:"), encoding="utf-8")
    result = run("test", "--backend", "python", str(policy))
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("no case makes this rule fire: test.broken@1 many_outfalls")


def test_test_json():
    result = run("test", "--format", "json", str(BASE))
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert document["passed"] == 1 and document["failed"] == 0
    assert document["cases"][0]["case"] == "两个排污口" and document["cases"][0]["problems"] == []
    assert document["unexercised_rules"] == []


def test_test_of_an_invalid_policy_exits_2_with_the_position():
    broken = TESTS / "rules" / "broken" / "unknown_name.yaml"
    result = run("test", str(broken))
    assert result.exit_code == 2
    assert f"{broken}:29:11: unknown name 'outfall'" in result.output


# -- explain -------------------------------------------------------------------------------------------
def test_explain_text_in_chinese_cites_the_clause(record_file):
    result = run("explain", "--record", record_file(RECORD), "--as-of", "2012-04-14")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "适用政策 Policies in force: zhengzhou.eco_water_interception@2011, zhengzhou.green_credit@2012" in out
    assert "金额 Amount: 3,000,000 元 (300 万元)  类型 Kind: 财政扣款 (fiscal_deduction)  承担方 Payer: 二七区" in out
    assert "依据 Citation: 《创新管理机制 强化管理手段努力推动环保工作科学发展》(郑州日报 2012-04-14) 七、(二)" in out
    assert "“对生态水系内河道排污口未治理到位的责任单位实施财政扣款,每个排污口扣款100万元”" in out
    assert "金额 Amount: 10,000,000 元 (1,000 万元)" in out
    assert "列入 违法企业信息共享(严格限制违法排污企业贷款) (green_credit_blacklist)" in out
    assert "列入 严格限制贷款(高污染、高能耗产业) (restricted_loans)" in out
    assert "合计 Total: 13,000,000 元 (1,300 万元)" in out
    assert ("[触发 fired] zhengzhou.eco_water_interception@2011 untreated_outfall_deduction: untreated_outfalls > 0 "
            "and not is_set(responsible_unit)") in out
    assert ("读取 reads: untreated_outfalls=3, responsible_unit=空 empty, deduction_per_untreated_outfall=1000000, "
            "district=二七区") in out


def test_explain_json(record_file):
    result = run("explain", "--record", record_file(RECORD), "--as-of", "2012-04-14", "--format", "json")
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert document["policies"] == ["zhengzhou.eco_water_interception@2011", "zhengzhou.green_credit@2012"]
    assert [(f["rule"], f["amount_yuan"], f["payer"], f["kind"]) for f in document["findings"]] == [
        ("untreated_outfall_deduction", 3_000_000, "二七区", "fiscal_deduction"),
        ("direct_discharge_deduction", 10_000_000, "二七区", "fiscal_deduction"),
    ]
    assert all(type(f["amount_yuan"]) is int for f in document["findings"])
    assert document["findings"][0]["citation"] == {
        "document": "《创新管理机制 强化管理手段努力推动环保工作科学发展》(郑州日报 2012-04-14)", "article": "七、(二)",
        "text": "对生态水系内河道排污口未治理到位的责任单位实施财政扣款,每个排污口扣款100万元",
    }
    assert [(s["list"], s["rule"], s["uscc"]) for s in document["sanctions"]] == [
        ("green_credit_blacklist", "illegal_discharge_blacklist", "91410100123456788Y"),
        ("restricted_loans", "high_pollution_energy_restricted_loans", "91410100123456788Y"),
    ]
    assert document["sanctions"][0]["citation"]["article"] == "四、(三)"
    assert document["total_yuan"] == 13_000_000 and type(document["total_yuan"]) is int
    assert document["as_of"] == "2012-04-14"
    # the outfalls paid by the district: the record names no responsible unit (责任单位)
    assert [(t["rule"], t["fired"]) for t in document["trace"]] == [
        ("untreated_outfall_deduction", True), ("direct_discharge_deduction", True),
        ("untreated_outfall_deduction_by_unit", False), ("illegal_discharge_blacklist", True),
        ("high_pollution_energy_restricted_loans", True)]


def test_explain_reads_stdin_with_a_dash():
    result = run("explain", "--record", "-", "--as-of", "2012-04-14", "--format", "json", input=json.dumps(RECORD))
    assert result.exit_code == 0
    assert json.loads(result.output)["total_yuan"] == 13_000_000


def test_explain_takes_as_of_and_domain_from_the_document(record_file):
    document = {"as_of": "2012-05-01", "domain": "approval", "facts": {"request_id": "SP-2012-0042", "applicant_uscc": "91350200MA31E12PXF", "document_kind": "环境影响报告表", "days_open": 8}}
    result = run("explain", "--record", record_file(document), "--format", "json")
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision["as_of"] == "2012-05-01" and decision["domain"] == "approval"
    assert [s["list"] for s in decision["sanctions"]] == ["home_service", "report_to_city", "accountability"]
    assert decision["subject"] == "SP-2012-0042"  # the request is what is late, not its applicant
    assert decision["total_yuan"] == 0
    assert decision["warnings"] and "other_request_time_limit_days" in decision["warnings"][0]


def test_explain_as_of_option_wins_over_the_document_and_picks_the_law(record_file):
    path = record_file({"as_of": "2012-04-14", "facts": RECORD})
    before = json.loads(run("explain", "--record", path, "--as-of", "2010-12-31", "--format", "json").output)
    assert before["policies"] == [] and before["findings"] == [] and before["total_yuan"] == 0
    between = json.loads(run("explain", "--record", path, "--as-of", "2011-06-01", "--format", "json").output)
    assert between["policies"] == ["zhengzhou.eco_water_interception@2011"] and between["sanctions"] == []
    assert between["total_yuan"] == 13_000_000


def test_explain_with_other_policies(record_file):
    path = record_file({"uscc": "91410100123456788Y", "district": "金水区", "untreated_outfalls": 3})
    for as_of, policy, total in [("2012-01-01", "test.outfalls@2011", 3_000_000), ("2014-01-01", "test.outfalls@2014", 3_000_000), ("2014-01-01", None, None)]:
        args = ["explain", "--record", path, "--as-of", as_of, "--format", "json", "--policies", str(VERSIONS)]
        if policy is None:
            args = ["explain", "--record", path, "--as-of", as_of, "--format", "json"]  # shipped: fields missing
            result = run(*args)
            assert result.exit_code == 2
            assert "industrial: is missing" in result.output
            continue
        decision = json.loads(run(*args).output)
        assert (decision["policies"], decision["total_yuan"]) == ([policy], total)


def test_explain_with_a_broken_policy_folder_exits_2_with_the_position(record_file):
    broken = TESTS / "rules" / "broken" / "unknown_payer.yaml"
    result = run("explain", "--record", record_file(RECORD), "--policies", str(broken))
    assert result.exit_code == 2
    assert f"{broken}:33:16: payer 'distrct' must be" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{\"uscc\": ", "record.json:1:10: not valid JSON: Expecting value"),
        ("{'uscc': 1}", "record.json:1:2: not valid JSON: Expecting property name enclosed in double quotes"),
        ("[1, 2]", "record.json: a record must be a JSON object"),
        ("", "record.json:1:1: not valid JSON: Expecting value"),
    ],
)
def test_explain_invalid_json_exits_2_with_a_clear_message(record_file, content, message):
    result = run("explain", "--record", record_file(content))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"untreated_outfalls": -1}, "untreated_outfalls: -1 is below the minimum 0"),
        ({"untreated_outfalls": 2.5}, "untreated_outfalls: must be a whole number, got Decimal('2.5')"),
        ({"district": "郑州"}, "district: '郑州' is not an allowed 所属区县"),
        ({"uscc": "123"}, "uscc: is not a valid 统一社会信用代码"),
        ({"high_energy": None}, "high_energy: is missing"),
    ],
)
def test_explain_invalid_record_exits_2_naming_the_field(record_file, change, message):
    path = record_file({**RECORD, **change})
    result = run("explain", "--record", path, "--as-of", "2012-04-14")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"{path}: {message}")


def test_explain_whole_numbers_written_as_json_decimals_are_exact(record_file):
    path = record_file(json.dumps(RECORD).replace('"untreated_outfalls": 3', '"untreated_outfalls": 3.0'))
    decision = json.loads(run("explain", "--record", path, "--as-of", "2012-04-14", "--format", "json").output)
    assert decision["findings"][0]["amount_yuan"] == 3_000_000


def test_explain_bad_dates_and_missing_files(record_file):
    result = run("explain", "--record", record_file(RECORD), "--as-of", "2012-4-14")
    assert result.exit_code == 2
    assert "'2012-4-14' is not a date in the form YYYY-MM-DD" in result.output
    path = record_file({"as_of": "14/04/2012", "facts": RECORD})
    result = run("explain", "--record", path)
    assert result.exit_code == 2
    assert f"{path}: as_of '14/04/2012' is not a date YYYY-MM-DD" in result.stderr
    result = run("explain", "--record", "no-such-record.json")
    assert result.exit_code == 2
    assert "no-such-record.json: cannot read: No such file or directory" in result.stderr


def test_explain_unknown_domain_exits_2(record_file):
    result = run("explain", "--record", record_file(RECORD), "--domain", "water", "--as-of", "2012-04-14")
    assert result.exit_code == 2
    assert "no policy of domain 'water' is loaded" in result.stderr


@pytest.mark.skipif(not EXAMPLES, reason="no example records in examples/records")
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_explain_every_example_record(example):
    result = run("explain", "--record", str(example), "--as-of", "2012-04-14", "--format", "json")
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision["total_yuan"] == sum(f["amount_yuan"] for f in decision["findings"])
    text = run("explain", "--record", str(example), "--as-of", "2012-04-14")
    assert text.exit_code == 0 and "合计 Total:" in text.output
