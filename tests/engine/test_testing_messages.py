"""What `ecorules test` says when a case fails: the field that differs, at the expectation's line."""

from __future__ import annotations

from pathlib import Path

from ecorules.engine._testing import run_tests
from ecorules.rules import read_policy

BASE = Path(__file__).resolve().parents[1] / "data" / "base_policy.yaml"


def policy_with(tmp_path, expectation: str):
    text = BASE.read_text(encoding="utf-8").replace("{rule: outfall_deduction, amount_yuan: 2000000}", expectation)
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    return read_policy(path), text.splitlines().index(next(line for line in text.splitlines() if expectation in line)) + 1


def test_a_wrong_amount_is_named_at_its_line(tmp_path):
    policy, line = policy_with(tmp_path, "{rule: outfall_deduction, amount_yuan: 2000001}")
    [result] = run_tests([policy], backend="python").results
    assert result.problems == (f"{tmp_path / 'p.yaml'}:{line}: amount: expected 2,000,001, got 2,000,000 "
                               "(rule outfall_deduction)",)


def test_a_finding_that_differs_in_more_than_the_amount_is_missing_and_unexpected(tmp_path):
    policy, _ = policy_with(tmp_path, "{rule: outfall_deduction, amount_yuan: 2000001, payer: 二七区}")
    [result] = run_tests([policy], backend="python").results
    assert [p.split(":")[0] for p in result.problems] == ["expected finding not produced", "unexpected finding"]


def test_an_expected_payer_written_as_an_alias_or_with_spaces_stands_for_its_value(tmp_path):
    """`check` refuses a payer no district is called; one the registry would accept (a declared
    alias, full-width spaces) is the district it names, as in a record."""
    with_alias = BASE.read_text(encoding="utf-8").replace("values: [金水区, 二七区]", "values: [{金水区: [金水区管委会]}, 二七区]")
    for payer in ("金水区管委会", "　金水区 "):
        text = with_alias.replace("{rule: outfall_deduction, amount_yuan: 2000000}",
                                       f"{{rule: outfall_deduction, amount_yuan: 2000000, payer: '{payer}'}}")
        path = tmp_path / "p.yaml"
        path.write_text(text, encoding="utf-8")
        policy = read_policy(path)
        assert policy.tests[0].findings[0].payer == "金水区"
        [result] = run_tests([policy], backend="python").results
        assert result.problems == ()


def test_the_run_gate_judges_the_cases_alike_without_the_explanations_steps():
    """``ecorules run`` asks only whether the shipped cases pass (explain=False): the same
    outcome, findings and problems for every case, and no steps computed for the traces."""
    from ecorules.rules import load_policies

    policies = load_policies()
    explained, gate = run_tests(policies, backend="python"), run_tests(policies, backend="python", explain=False)

    def outcome(report):
        return [(r.policy.key, r.case.name, r.problems,
                 None if r.decision is None else (r.decision.findings, r.decision.sanctions,
                                                  [(t.rule, t.fired) for t in r.decision.trace]))
                for r in report.results]

    assert outcome(gate) == outcome(explained)
    steps = [t.steps for r in explained.results if r.decision is not None for t in r.decision.trace]
    assert any(steps)  # the shipped cases do compute steps where explained
    assert not any(t.steps for r in gate.results if r.decision is not None for t in r.decision.trace)
