"""What a run with a case table reads and computes, decided once from the policies.

The case kind is the declared kind whose parent is the enterprise (``cases.yaml``). From it
and the roll-ups that count its records follow: the case policies' program, a small program
whose rules are the roll-ups' ``where`` conditions (so that a where is evaluated by the batch
kernel itself, never by a second evaluator: its ``fired`` row is the condition), the case
columns to read, and the enterprise facts the case side needs from the registry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from ecorules.rules import EcorulesError, Kind, Policy, PolicySet
from ecorules.rules import _ast as ast
from ecorules.rules._kinds import RecordKind, Rollup
from ecorules.rules._policyset import policy_files
from ecorules.rules._schema import Citation, Fact, Rule, kind_checks_policy


class CasePlanError(EcorulesError):
    """The policies cannot judge a case table (no case kind, an unsupported roll-up)."""


@attrs.frozen
class CasePlan:
    kind: RecordKind  # the case kind
    parent: RecordKind  # the enterprise kind
    facts: dict[str, Fact]
    case_policies: PolicySet | None  # None: no case policy is loaded (cases only roll up)
    case_program: Any
    where_program: Any  # rules "<roll-up name>" with the where conditions; None if no where
    onto_parent: dict[str, Rollup]
    onto_cases: dict[str, Rollup]
    case_columns: tuple[str, ...]  # read from the case table (the uscc link included)
    enterprise_columns: tuple[str, ...]  # enterprise facts the case side reads (without uscc)
    # the case's decision date (the kind's ``dates: decision``, else its fact ``decided``),
    # remembered with each assessment (一例一次: a new decision date is a new decision)
    decision: str | None = None
    # of case_columns: optional facts no policy's rule reads, only the law date, the decision
    # date, a window's date or the kind's checks (which read an empty value as the library
    # does): read if the table has them, else all empty (tests/engine/test_case_optional_columns.py)
    optional_columns: tuple[str, ...] = ()
    # with the kind's ``dates:`` (行政处罚法 art 37): the days the case policies' law changes;
    # None: every case is judged by the law in force on as_of
    timeline: Any = None
    # the case kind's catalogue checks (the order of a case's dates) when no case policy is
    # loaded to carry them (case_program None): a program of those checks alone
    check_program: Any = None
    # the enterprise kind's catalogue checks that read no roll-up, a program of them alone: an
    # enterprise failing one is rejected by the registry, so its cases are rejected too (the
    # library refuses the whole group); None: the kind has none
    parent_check_program: Any = None
    # the enterprise policies, where one may reject an enterprise once its cases' roll-ups are
    # known (_enterprises.parent_program): its cases are rejects then (the library refuses the
    # group); None: none may
    parent_program: Any = None

    def needed(self) -> dict[str, list[str]]:
        """Each case column -> what reads it (the case policies by key, else the table itself),
        for the message naming a missing column."""
        policies = list(self.case_policies or ())
        return {name: [p.key for p in policies if name in _own_reads(p)] or [f"the {self.kind.id} table"]
                for name in self.case_columns}

    @property
    def link(self) -> str:
        """The fact of a case naming its enterprise (the enterprise key, uscc)."""
        return self.parent.key


def make_plan(policies: PolicySet, enterprise: str, as_of: dt.date,
              compile_program: Callable[..., Any]) -> CasePlan:
    kinds, catalogued = _all_kinds(policies)
    children = [k for k in kinds.values() if k.parent == enterprise]
    if len(children) != 1:
        raise CasePlanError(
            f"a case table needs exactly one declared kind whose parent is {enterprise!r} "
            f"(found: {', '.join(k.id for k in children) or 'none'}); see policies/zhengzhou/cases.yaml"
        )
    kind, parent = children[0], kinds[enterprise]
    facts = policies.facts
    rollups = {name: f.rollup for name, f in facts.items() if f.rollup is not None and f.rollup.over == kind.id}
    onto_parent = {n: r for n, r in rollups.items() if not r.onto_siblings}
    onto_cases = {n: r for n, r in rollups.items() if r.onto_siblings}
    for name, rollup in onto_cases.items():
        if rollup.function == "max":
            raise CasePlanError(f"roll-up {name!r}: a windowed max is not computed by the batch run yet")
    # only the versions in force on as_of, as for the registry: a case table need not carry
    # the columns of a statute not yet (or no longer) in force. A kind judged by the law in
    # force at the act (``dates:``, 行政处罚法 art 37): every version, as the library does,
    # since any of them may be the law of some case's act or decision (see _law.py)
    by_law = kind.law_date is not None
    chosen = PolicySet(tuple(p for p in policies.for_domain(kind.id) if by_law or p.in_force(as_of)))
    case_program = compile_program(chosen, domain=kind.id) if len(chosen) else None
    check_program = None
    if case_program is None and kind.checks:
        # no case policy declares the case facts to the loaded set: the catalogue's do
        facts = {**catalogued.get(kind.id, {}), **facts}
        # the compiler emits the kind's checks with any program of the kind: not twice
        check_program = compile_program([attrs.evolve(kind_checks_policy(kind, facts), checks=())], domain=kind.id)
    where_program = _where_program(rollups, facts, kind, chosen, compile_program)

    # what is read: like the kernel, only the facts of policies in force are checked
    read: dict[str, None] = {kind.key: None, parent.key: None}
    if kind.act:
        read[kind.act] = None
    for policy in chosen:
        read.update(dict.fromkeys(policy.required_facts))
    optional_law = set()
    if by_law:  # the dates that choose the law; an optional one (act_end) may be left out
        for name in ast.names(kind.law_date, "fact"):
            if name not in read and facts[name].optional:
                optional_law.add(name)
            read[name] = None
    for rollup in rollups.values():
        if rollup.window is not None:
            window_date = rollup.window.date
            if window_date not in read and facts[window_date].optional:
                optional_law.add(window_date)  # a window before as_of: an empty date counts in none
            read[window_date] = None
        if rollup.value is not None:
            read[rollup.value] = None
    if where_program is not None:
        read.update(dict.fromkeys(where_program.columns))
    # the kind's checks read what they check; an optional fact only they read (decided) may
    # be left out of the table, its checks then hold vacuously (they guard it with is_set)
    own_reads = {name for policy in chosen for name in _own_reads(policy)}
    own_reads |= {name for rollup in rollups.values() for name in rollup.reads}
    own_reads |= set(where_program.columns) if where_program is not None else set()
    optional_checked = set()
    for check in kind.checks:
        for name in ast.names(check.holds, "fact"):
            if name not in own_reads and facts[name].optional:
                optional_checked.add(name)
            read[name] = None
    parent_checks = tuple(check for check in parent.checks
                          if not any(facts[name].rollup is not None for name in check.reads() if name in facts))
    parent_check_program = None
    if parent_checks:
        parent_facts = {**catalogued.get(parent.id, {}), **facts}
        parent_check_program = compile_program(
            [attrs.evolve(kind_checks_policy(attrs.evolve(parent, checks=parent_checks), parent_facts), checks=())],
            domain=parent.id)
        read.update(dict.fromkeys(name for check in parent_checks for name in check.reads() if name in facts))
    required = set(read) - optional_law - optional_checked
    decision = _decision_fact(kind, facts)
    if decision is not None:
        read[decision] = None
    case_columns = tuple(n for n in read if n == parent.key or (facts[n].record_kind == kind.id and facts[n].rollup is None))
    enterprise_columns = tuple(
        n for n in read if n != parent.key and facts[n].record_kind in (parent.id, None) and facts[n].rollup is None
    )
    return CasePlan(kind, parent, facts, chosen if len(chosen) else None, case_program, where_program,
                    onto_parent, onto_cases, case_columns, enterprise_columns, decision,
                    tuple(n for n in case_columns if n not in required),
                    _timeline(chosen) if by_law and len(chosen) else None, check_program, parent_check_program,
                    _parent_program(policies, parent, as_of, compile_program))


def _parent_program(policies: PolicySet, parent: RecordKind, as_of: dt.date, compile_program: Callable[..., Any]):
    from ._enterprises import parent_program  # after _plan: it reads the plan

    return parent_program(policies.for_domain(parent.id), parent, as_of, compile_program)


def _own_reads(policy: Policy) -> set[str]:
    """The facts a policy's own checks and rules read (its kind's checks apart)."""
    reads = {policy.subject, policy.payer_key}
    for item in (*policy.checks, *policy.rules):
        reads.update(name for name in item.reads() if name in policy.facts)
    return reads


def _timeline(policies: PolicySet):
    from ._law import Timeline

    return Timeline.of(policies)


def _decision_fact(kind: RecordKind, facts: dict[str, Fact]) -> str | None:
    """The optional date fact of a case that says when it was decided, if the kind has one."""
    name = kind.decision_date or "decided"
    fact = facts.get(name)
    if fact is None or fact.record_kind != kind.id or fact.type.kind is not Kind.DATE or fact.rollup is not None:
        return None
    return name


def _all_kinds(policies: PolicySet) -> tuple[dict[str, RecordKind], dict[str, dict[str, Fact]]]:
    """The declared kinds: of the loaded policies' lineages, else of their folders' catalogues
    (a folder may declare cases before any case policy exists, as the shipped one does); and
    per kind of a catalogue, the facts its records have."""
    kinds = dict(policies.kinds)
    facts: dict[str, dict[str, Fact]] = {}
    paths = sorted({p.path for p in policies if p.path})
    if paths:
        for _path, catalogue in policy_files([Path(p) for p in paths]):
            for name, kind in catalogue.kinds.items():
                kinds.setdefault(name, kind)
                facts.setdefault(name, catalogue.visible_to(name))
    return kinds, facts


def _where_program(rollups: dict[str, Rollup], facts: dict[str, Fact], kind: RecordKind, chosen: PolicySet,
                   compile_program: Callable[..., Any]):
    rules = tuple(
        Rule(name, f"roll-up {name}", Citation("roll-up", rollup.where_text or ""), rollup.where, rollup.where_text or "")
        for name, rollup in rollups.items() if rollup.where is not None
    )
    # the kind without its checks: the where program counts, the case program rejects
    kinds = {name: attrs.evolve(k, checks=()) for name, k in next((p.kinds for p in chosen), {}).items()}

    def compile_one(group: tuple):
        policy = Policy(
            id="ecorules.rollup_where", title="roll-up conditions", version="0", effective=dt.date(1, 1, 1),
            authority="ecorules", document="roll-ups", facts=facts, parameters={}, lists={}, rules=group,
            domain=kind.id, subject=kind.key, kinds=kinds,
        )
        return compile_program([policy], domain=kind.id)

    from ._uncountable import where_programs  # after _plan: it reads the case table

    return where_programs(rules, compile_one)


__all__ = ["CasePlan", "CasePlanError", "make_plan"]
