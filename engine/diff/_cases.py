"""The YAML test cases of both sets, read as evidence about a draft.

A base case states what the law in force requires; run against the proposed version of the
same policy (same ``id``), a failure shows exactly which required outcome the draft changes:
either the draft is wrong, or the case must be rewritten with it, deliberately. The
proposal's own cases are run too, as ``ecorules test`` would run them. Cases of a policy the
draft removes cannot run and are listed as such, never counted as passing.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
from ecorules.rules import Policy, PolicySet

from .._evaluator import Evaluator
from .._testing import CaseResult, TestReport, run_case, run_tests


@attrs.frozen
class NotRun:
    policy: str  # id@version of the base policy
    case: str
    reason: str


@attrs.frozen
class CaseCheck:
    base_under_proposal: tuple[CaseResult, ...]  # every base case, judged by the proposal
    not_run: tuple[NotRun, ...]
    proposal: TestReport  # the proposal's own cases

    @property
    def base_failed(self) -> tuple[CaseResult, ...]:
        return tuple(r for r in self.base_under_proposal if not r.passed)

    @property
    def proposal_failed(self) -> tuple[CaseResult, ...]:
        return self.proposal.failed


def check_cases(base: PolicySet | Iterable[Policy], proposed: PolicySet | Iterable[Policy], backend: str = "durable") -> CaseCheck:
    """Base cases against the proposed versions of their policies; the proposal's own cases."""
    proposed = tuple(proposed)
    results: list[CaseResult] = []
    not_run: list[NotRun] = []
    for policy in base:
        if not policy.tests:
            continue
        versions = tuple(p for p in proposed if p.id == policy.id and p.domain == policy.domain)
        if not versions:
            reason = f"the proposal has no policy {policy.id} of domain {policy.domain}"
            not_run.extend(NotRun(policy.key, case.name, reason) for case in policy.tests)
            continue
        # All versions of the id: the case's as_of picks the one in force, as in production.
        with Evaluator(versions, backend=backend) as evaluator:
            results.extend(run_case(evaluator, policy, case) for case in policy.tests)
    return CaseCheck(tuple(results), tuple(not_run), run_tests(proposed, backend=backend))


__all__ = ["CaseCheck", "NotRun", "check_cases"]
