"""Run the YAML test cases that legal staff write inside policies.

Each case is judged by an evaluator holding only its own policy, so a case states what that
regulation requires, whatever else is loaded; a policy whose records carry their own law date
(a kind declaring ``dates: {law: ...}``) is loaded with its other versions, so that a case can
state what 行政处罚法 art 37 (从旧兼从轻) makes of them, as a run over the case table does. A case may leave out what it does not care
about: without ``findings`` the findings are not checked; an expected finding without
``payer`` matches any payer. The report lists, per policy, the rules that no case makes fire.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
from ecorules.rules import (
    EcorulesError,
    ExpectedFinding,
    ExpectedSanction,
    Policy,
    PolicySet,
    RecordCheckError,
    TestCase,
)

from ._decision import Decision
from ._evaluator import Evaluator


@attrs.frozen
class CaseResult:
    policy: Policy
    case: TestCase
    problems: tuple[str, ...]  # empty when the case passed
    decision: Decision | None = None

    __test__ = False

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def where(self) -> str:
        span = self.case.span
        return f"{span.file}:{span.line}" if span else self.policy.path or self.policy.key


@attrs.frozen
class TestReport:
    results: tuple[CaseResult, ...]
    unexercised: tuple[tuple[str, str], ...]  # (policy key, rule id) no case makes fire

    __test__ = False

    @property
    def failed(self) -> tuple[CaseResult, ...]:
        return tuple(r for r in self.results if not r.passed)


def run_tests(policies: PolicySet | Iterable[Policy], backend: str = "durable", *, explain: bool = True) -> TestReport:
    """Every test case of ``policies``; ``explain=False``: their decisions' traces without the
    steps behind each outcome (a gate that asks only whether the cases pass)."""
    results: list[CaseResult] = []
    unexercised: list[tuple[str, str]] = []
    policies = tuple(policies)
    for policy in policies:
        fired: set[str] = set()
        with Evaluator(judged_with(policy, policies), backend=backend, explain=explain) as evaluator:
            for case in policy.tests:
                result = run_case(evaluator, policy, case)
                if result.decision is not None:
                    fired.update(rule for key, rule in result.decision.fired_rules if key == policy.key)
                results.append(result)
        unexercised.extend((policy.key, rule.id) for rule in policy.rules if rule.id not in fired)
    return TestReport(tuple(results), tuple(unexercised))


def judged_with(policy: Policy, policies: tuple[Policy, ...]) -> tuple[Policy, ...]:
    """The policy, with its other versions where its kind judges by the law at the act."""
    kind = policy.kinds.get(policy.domain)
    if kind is None or kind.law_date is None:
        return (policy,)
    return (policy, *(p for p in policies if p.id == policy.id and p.key != policy.key))


def run_case(evaluator: Evaluator, policy: Policy, case: TestCase) -> CaseResult:
    as_of = case.as_of or policy.effective
    try:
        if case.children is not None:
            parent_kind, child_kind = _group_kinds(policy)
            group = evaluator.evaluate_group(_only(case.given, policy, parent_kind), [_only(c, policy, child_kind) for c in case.children],
                                             kind=child_kind, as_of=as_of)
            decision = group.merged()
        else:
            decision = evaluator.evaluate(case.given, as_of=as_of, domain=policy.domain)
    except RecordCheckError as error:
        return CaseResult(policy, case, _rejection_problems(case, error))
    except (EcorulesError, ValueError) as error:
        return CaseResult(policy, case, (f"error: {error}",))
    if case.rejected is not None:
        expected = case.rejected
        return CaseResult(policy, case, (f"expected a rejection on {expected.column}"
                                         + (f" by check {expected.check}" if expected.check else "")
                                         + f", but the record was judged ({len(decision.findings)} findings)",), decision)
    problems: list[str] = []
    if case.findings is not None:
        actual = [(f.rule, f.amount_yuan, f.payer, f.kind.value, f.record, f.status) for f in decision.findings]
        problems += _compare("finding", case.findings, actual, _finding_matches, _show_finding, _amount_differs)
    if case.sanctions is not None:
        actual = [(s.list, s.rule, s.start, s.end, s.lifted) for s in (*decision.sanctions, *decision.lifts)]
        problems += _compare("sanction", case.sanctions, actual, _sanction_matches, _show_sanction)
    if case.total_yuan is not None and case.total_yuan != decision.total_yuan:
        problems.append(f"total_yuan: expected {case.total_yuan:,}, got {decision.total_yuan:,}")
    return CaseResult(policy, case, tuple(problems), decision)


def _rejection_problems(case: TestCase, error: RecordCheckError) -> tuple[str, ...]:
    """A record a check rejected: right when the case expects that rejection (its column,
    and its check if named, among the failures), else a problem naming what failed."""
    expected = case.rejected
    failed = "; ".join(f"{f.column}: {f.reason}" for f in error.failures)
    if expected is None:
        return (f"rejected: {failed}",)
    if any(f.column == expected.column and expected.check in (None, f.check) for f in error.failures):
        return ()
    wanted = expected.column + (f" by check {expected.check}" if expected.check else "")
    return (f"expected a rejection on {wanted}, but: {failed}",)


def _group_kinds(policy: Policy) -> tuple[str, str]:
    """The parent and child kinds of a test case with ``cases:``: a case policy's enterprise
    and its own kind, or an enterprise policy (reading roll-ups of cases) and the kind counted."""
    own = policy.kinds.get(policy.domain)
    if own is not None and own.parent is not None:
        return own.parent, policy.domain
    children = [kind.id for kind in policy.kinds.values() if kind.parent == policy.domain]
    if len(children) != 1:
        raise ValueError(f"a test case with 'cases:' needs a policy of a kind with a parent, or one reading "
                         f"roll-ups of one kind under {policy.domain!r}")
    return policy.domain, children[0]


def _only(record: dict, policy: Policy, wanted: str) -> dict:
    """The fields of ``record`` that belong to kind ``wanted``: test_defaults hold the
    parent's and the child's facts, and each side checks only its own."""
    return {k: v for k, v in record.items() if k in policy.facts and policy.facts[k].record_kind in (wanted, None)}


def _finding_matches(expected: ExpectedFinding, actual: tuple) -> bool:
    rule, amount, payer, kind, record, status = actual
    return (
        expected.rule == rule
        and expected.amount_yuan == amount
        and expected.payer in (None, payer)
        and expected.kind in (None, kind)
        and expected.record in (None, record)
        and expected.status in (None, status)
    )


def _sanction_matches(expected: ExpectedSanction, actual: tuple) -> bool:
    list_id, rule, start, end, lifted = actual
    return (
        expected.list == list_id
        and expected.rule in (None, rule)
        and expected.start in (None, start)
        and (end is None if expected.open_ended else expected.end in (None, end))
        and expected.lifted == lifted
    )


def _show_finding(actual: tuple) -> str:
    rule, amount, payer, kind, record, status = actual
    where = f" on case {record}" if record is not None else ""
    marked = f", {status}" if status != "imposed" else ""
    return f"{rule} {amount:,} yuan ({kind}{marked}) payable by {payer}{where}"


def _show_sanction(actual: tuple) -> str:
    list_id, rule, start, end, lifted = actual
    if lifted:
        return f"lift of {list_id} (rule {rule}) from {start}"
    return f"{list_id} (rule {rule}) from {start} until {end or 'open-ended'}"


def _compare(what, expected, actual, matches, show, differs=None) -> list[str]:
    """Pair expected with actual items regardless of order; describe what is left over. An
    expected item that ``differs`` from a left-over actual one in one field only is that
    field's mismatch, said at the expectation's line."""
    remaining = list(actual)
    missing = []
    for item in expected:
        for index, candidate in enumerate(remaining):
            if matches(item, candidate):
                del remaining[index]
                break
        else:
            missing.append(item)
    problems = []
    for item in missing:
        for index, candidate in enumerate(remaining):
            difference = differs(item, candidate) if differs else None
            if difference:
                problems.append(difference)
                del remaining[index]
                break
        else:
            problems.append(f"expected {what} not produced: {_show_expected(item)}")
    problems += [f"unexpected {what}: {show(item)}" for item in remaining]
    return problems


def _amount_differs(expected: ExpectedFinding, actual: tuple) -> str | None:
    """'amount: expected 3,000,001, got 3,000,000' where only the amount is wrong."""
    rule, amount, *rest = actual
    if expected.amount_yuan == amount or not _finding_matches(attrs.evolve(expected, amount_yuan=amount), actual):
        return None
    at = f"{expected.span.file}:{expected.span.line}: " if expected.span else ""
    return f"{at}amount: expected {expected.amount_yuan:,}, got {amount:,} (rule {rule})"


def _show_expected(item) -> str:
    fields = attrs.asdict(item, filter=lambda field, _: field.eq)  # not its span
    return ", ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
