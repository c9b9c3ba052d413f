"""Rules that read other rules' results: order from the reads, cycles refused at their place."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from ecorules.engine import Evaluator
from ecorules.engine._testing import run_tests
from ecorules.rules import PolicyError, read_policy
from policy_text import policy_head

DATA = Path(__file__).parent.parent / "data" / "results"


def test_rules_are_judged_after_the_rules_they_read():
    policy = read_policy(DATA / "late_fee.yaml")
    assert [rule.id for rule in policy.rules] == ["fine", "late_fee", "big_fine_watch"]
    assert policy.rule("big_fine_watch").results_read() == ("fine", "late_fee")


@pytest.mark.parametrize("backend", ["durable", "python"])
def test_the_yaml_cases_pass_on_both_backends(backend):
    report = run_tests([read_policy(DATA / "late_fee.yaml")], backend=backend)
    assert len(report.results) == 3 and not report.failed


@pytest.mark.parametrize("backend", ["durable", "python"])
def test_a_rule_that_did_not_fire_reads_as_zero(backend):
    with Evaluator([read_policy(DATA / "late_fee.yaml")], backend=backend) as evaluator:
        decision = evaluator.evaluate({"uscc": "x", "base": 0, "due": "2024-01-10", "paid": "2024-03-01"}, as_of=dt.date(2024, 3, 2))
    assert decision.findings == () and decision.fired_rules == ()
    reads = {entry.rule: entry.reads for entry in decision.trace}
    assert reads["big_fine_watch"]["amount_of(fine)"] == 0 and reads["late_fee"]["fired(fine)"] is False


def policy_with(rules: str) -> str:
    return policy_head("t.cycle", "  n: {type: integer, min: 0, max: 10}\n") + f"rules:\n{rules}"


def rule(rule_id: str, when: str, amount: str = "1") -> str:
    return f"""  - id: {rule_id}
    title: t
    citation: {{document: d, text: t}}
    when: "{when}"
    findings: [{{kind: fee, amount: "{amount}", payer: enterprise}}]
"""


@pytest.mark.parametrize(
    ("rules", "message", "line"),
    [
        (rule("a", "fired(b)") + rule("b", "amount_of(a) > 0"), "rules 'a' -> 'b' -> 'a' read each other's results", 20),
        (rule("a", "n > 0", "amount_of(a) + 1"), "rules 'a' -> 'a' read each other's results", 16),
        (rule("a", "fired(c)") + rule("b", "n > 1"), "'c' is not a rule of this policy whose result can be read", 15),
    ],
)
def test_cycles_and_unknown_rules_are_errors_at_the_read(tmp_path, rules, message, line):
    path = tmp_path / "p.yaml"
    path.write_text(policy_with(rules), encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        read_policy(path)
    assert message in str(caught.value)
    assert caught.value.span.line == line


def test_amount_of_needs_a_rule_with_one_finding(tmp_path):
    two = rule("a", "n > 0").replace("findings: [", "findings: [{kind: fee, amount: '2', payer: enterprise}, ")
    path = tmp_path / "p.yaml"
    path.write_text(policy_with(two + rule("b", "amount_of(a) > 1")), encoding="utf-8")
    with pytest.raises(PolicyError, match="'a' is not a rule of this policy whose result can be read"):
        read_policy(path)
    path.write_text(policy_with(two + rule("b", "fired(a)")), encoding="utf-8")
    assert read_policy(path).rule("b").results_read() == ("a",)
