"""Shared test machinery.

The YAML test cases that legal staff write inside policies are collected as pytest items, one
per case and backend, the way OpenFisca's test runner does it. A test module asks for them
with a module-level mark (no import needed)::

    yaml_cases = pytest.mark.policy_cases()                     # the shipped policies
    yaml_cases = pytest.mark.policy_cases("path/to/policies")   # any folder or file
    yaml_cases = pytest.mark.policy_cases(backends=["python"])

and ``pytest -k 绿色信贷`` or ``-k "green_credit and durable"`` then selects cases by policy,
case name or backend. A failing case reports the file and line of the case, its name, the
backend and each problem (expected against actual) as ``engine/_testing.py`` words them.
"""

from __future__ import annotations

import resource
from collections.abc import Iterable
from pathlib import Path

import pytest
from ecorules.engine import BACKENDS, Evaluator
from ecorules.engine._testing import CaseResult, judged_with, run_case
from ecorules.rules import Policy, TestCase, load_policies


class PolicyCases:
    """What a ``policy_cases`` mark asks for: the policies under ``paths``, judged by ``backends``."""

    def __init__(self, paths: str | Path | Iterable[str | Path] | None = None, backends: Iterable[str] = BACKENDS):
        self.paths = paths
        self.backends = tuple(backends)


CPU_SECONDS = pytest.StashKey[dict]()


def pytest_addoption(parser):
    parser.addoption(
        "--cpu-durations", type=int, default=None, metavar="N",
        help="list the N tests (set-up and teardown included) that used the most CPU seconds, this "
             "process's and its waited-for children's (a PostgreSQL server started by pg_ctl is not "
             "one): on a shared machine --durations' wall-clock mostly measures the others' load")


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if item.config.getoption("--cpu-durations") is None:
        yield
        return
    started = _cpu_seconds()
    yield
    item.config.stash.setdefault(CPU_SECONDS, {})[item.nodeid] = _cpu_seconds() - started


def pytest_terminal_summary(terminalreporter, config):
    count = config.getoption("--cpu-durations")
    if count is None:
        return
    spent = config.stash.get(CPU_SECONDS, {})
    terminalreporter.write_sep("=", f"the {count} tests using the most CPU seconds "
                                    f"(of {sum(spent.values()):.1f} s over {len(spent)} tests)")
    for nodeid, seconds in sorted(spent.items(), key=lambda kv: -kv[1])[:count]:
        terminalreporter.write_line(f"{seconds:8.2f}s cpu  {nodeid}")


def pytest_report_header(config):
    """What decides a derandomized Hypothesis test's draws besides its code, so that a CI
    failure can be reproduced (README, *Reproducing a CI failure*): Hypothesis's version, and
    where ecorules is imported from. Hypothesis mixes into its draws constants it reads from
    the source of every loaded module outside site-packages and tests/: an editable install
    makes ecorules' own constants part of that pool (and the pool then grows with the modules
    a selection of tests imports), an installed package, as CI's, leaves them out."""
    import ecorules.engine
    import hypothesis

    source = Path(ecorules.engine.__file__).resolve().parent.parent
    installed = "/site-packages/" in f"{source}/"
    how = ("installed, as CI's: draws as CI's" if installed
           else "editable: Hypothesis also draws constants of its source, so derandomized draws differ from CI's")
    return [f"hypothesis {hypothesis.__version__}, profile {getattr(hypothesis.settings, '_current_profile', '?')}; "
            f"ecorules from {source} ({how})"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "policy_cases(paths=None, backends=('durable', 'python')): at module level, "
        "collect the YAML test cases of the policies under paths (default: the shipped ones)"
    )
    for backend in BACKENDS:
        config.addinivalue_line("markers", f"{backend}: a YAML policy case judged by the {backend} backend")


class CaseFailed(Exception):
    def __init__(self, result: CaseResult, backend: str):
        super().__init__(result.problems)
        self.result = result
        self.backend = backend


def pytest_pycollect_makeitem(collector, name, obj):
    if isinstance(obj, pytest.MarkDecorator) and obj.name == "policy_cases":
        spec = PolicyCases(*obj.args, **obj.kwargs)
        return PolicyCasesCollector.from_parent(collector, name=name, spec=spec)
    return None


class PolicyCasesCollector(pytest.Collector):
    def __init__(self, *, spec: PolicyCases, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec

    def collect(self):
        policies = tuple(load_policies(self.spec.paths))
        for policy in policies:
            yield PolicyCollector.from_parent(self, name=policy.key, policy=policy, backends=self.spec.backends,
                                              judged_with=judged_with(policy, policies))


class PolicyCollector(pytest.Collector):
    def __init__(self, *, policy: Policy, backends: tuple[str, ...], judged_with: tuple[Policy, ...], **kwargs):
        super().__init__(**kwargs)
        self.policy = policy
        self.judged_with = judged_with  # the policy, and its other versions where the law at the act rules
        self.backends = backends
        self.evaluators: dict[str, Evaluator] = {}

    def collect(self):
        for case in self.policy.tests:
            for backend in self.backends:
                yield PolicyCaseItem.from_parent(self, name=f"{case.name}[{backend}]", case=case, backend=backend)

    def evaluator(self, backend: str) -> Evaluator:
        """One evaluator per policy and backend, shared by its cases, closed at teardown."""
        if backend not in self.evaluators:
            self.evaluators[backend] = Evaluator(self.judged_with, backend=backend)
        return self.evaluators[backend]

    def teardown(self) -> None:
        for evaluator in self.evaluators.values():
            evaluator.close()
        self.evaluators.clear()


class PolicyCaseItem(pytest.Item):
    def __init__(self, *, case: TestCase, backend: str, **kwargs):
        super().__init__(**kwargs)
        self.case = case
        self.backend = backend
        self.add_marker(getattr(pytest.mark, backend))

    @property
    def policy(self) -> Policy:
        return self.parent.policy

    def runtest(self) -> None:
        result = run_case(self.parent.evaluator(self.backend), self.policy, self.case)
        if not result.passed:
            raise CaseFailed(result, self.backend)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CaseFailed):
            result = excinfo.value.result
            lines = [
                f"{result.where}: case {self.case.name!r} of {self.policy.key} failed ({self.backend} backend)",
                *(f"    {problem}" for problem in result.problems),
            ]
            return "\n".join(lines)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        span = self.case.span
        path = Path(span.file) if span else Path(self.policy.path or ".")
        return path, (span.line - 1 if span else None), f"{self.policy.key}: {self.case.name} [{self.backend}]"
