"""Judging a record together with its children: an enterprise and its cases.

The reference path for the levels of ``rules/_kinds.py``: the children are checked, the
roll-ups computed from them (``compute_rollups``), each child judged with its parent's facts
and its own roll-ups, the parent judged with its roll-ups, and then one act, one fine
(行政处罚法 art 29) applied across the children of each act. The batch path does the same
with columns; the tests compare the two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from ecorules.rules import FindingKind, Policy, RecordError, UsageError, evaluate
from ecorules.rules._checks import OutsideCalendarError, RecordCheckError
from ecorules.rules._kinds import RecordKind, compute_rollups, uncountable
from ecorules.rules._records import coerce_record
from ecorules.rules._workdays import CALENDAR_CHECK, calendar_failures, outside_calls

from . import _law_notes as law_notes
from ._decision import SUPERSEDED, Decision, Finding

# The article the superseded fines cite, in the statute's own words (law.md, APL 2021).
ONE_ACT_ONE_FINE = (
    "《中华人民共和国行政处罚法》(2021)第二十九条:对当事人的同一个违法行为,不得给予两次以上罚款的"
    "行政处罚。同一个违法行为违反多个法律规范应当给予罚款处罚的,按照罚款数额高的规定处罚"
)


@attrs.frozen
class GroupDecision:
    """A parent record (an enterprise) judged with its children (its cases)."""

    as_of: dt.date
    parent: Decision | None  # None when no policy of the parent's kind is in force
    children: tuple[Decision, ...]  # one per child, in the order given

    @property
    def findings(self) -> tuple[Finding, ...]:
        own = self.parent.findings if self.parent else ()
        return own + tuple(f for child in self.children for f in child.findings)

    @property
    def total_yuan(self) -> int:
        return sum(f.amount_yuan for f in self.findings if f.kind.payable and f.imposed)

    def merged(self) -> Decision:
        """Every finding, list entry and trace entry in one decision about the parent."""
        parts = ((self.parent,) if self.parent else ()) + self.children
        return Decision(
            as_of=self.as_of,
            domain=self.parent.domain if self.parent else (self.children[0].domain if self.children else ""),
            subject=self.parent.subject if self.parent else None,
            policies=tuple(dict.fromkeys(key for part in parts for key in part.policies)),
            findings=self.findings,
            sanctions=tuple(s for part in parts for s in part.sanctions),
            trace=tuple(t for part in parts for t in part.trace),
            warnings=tuple(dict.fromkeys(w for part in parts for w in part.warnings)),
            lifts=tuple(s for part in parts for s in part.lifts),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "parent": self.parent.to_dict() if self.parent else None,
            "children": [child.to_dict() for child in self.children],
            "total_yuan": self.total_yuan,
        }


def judge_group(
    evaluator: Any, parent: Mapping[str, Any], children: Sequence[Mapping[str, Any]], child_kind: str, as_of: dt.date,
) -> GroupDecision:
    """``evaluator``: an :class:`~ecorules.engine.Evaluator`; ``parent`` and ``children``:
    raw records (JSON values or CSV text) of the parent kind and of ``child_kind``."""
    policies = evaluator.policies
    kinds = policies.kinds
    kind = kinds.get(child_kind)
    if kind is None or kind.parent is None:
        raise UsageError(f"{child_kind!r} is not a declared kind with a parent (declared: {', '.join(kinds) or 'none'})")
    facts = policies.facts
    child_policies = _in_force(policies, child_kind, as_of)
    if kind.law_date is not None:  # any version may be the law of some case's act
        child_policies = tuple(p for p in policies if p.domain == child_kind)
    parent_policies = _in_force(policies, kind.parent, as_of)
    # the parent's facts that its own policies read, and those its children's policies read
    parent_needed = {**_needed(parent_policies, facts, kind.parent), **_needed(child_policies, facts, kind.parent)}
    child_needed = _needed(child_policies, facts, child_kind)
    child_needed.update(dict.fromkeys(kind.date_reads))  # the dates that choose the law
    # what the roll-ups over the children read (their value, window date and where), read
    # as the batch run reads them even where no policy reads the fact itself
    # and what the kind's own checks read (its catalogue's: the date order of a case), judged
    # on every child even where no policy of the child's kind is loaded
    check_reads = [name for check in kind.checks for name in check.reads() if name in facts and facts[name].rollup is None]
    for name in (*_rollup_reads(facts, child_kind), *check_reads):
        if facts[name].record_kind == child_kind:
            child_needed.setdefault(name)
        else:
            parent_needed.setdefault(name)
    parent_key = kinds[kind.parent].key
    parent_values = coerce_record(facts, parent, {parent_key: None, **parent_needed})
    link = (parent_key, parent_values[parent_key])
    child_values = [_child(facts, record, index, kind, child_needed, link) for index, record in enumerate(children)]

    def env_of(child: Mapping[str, Any]) -> dict[str, Any]:  # a where may read as_of, as in the batch
        return {**parent_values, **child, "as_of": as_of}

    rollups = {name: fact.rollup for name, fact in facts.items() if fact.rollup is not None and fact.rollup.over == child_kind}
    onto_parent = {name: r for name, r in rollups.items() if not r.onto_siblings}
    onto_children = {name: r for name, r in rollups.items() if r.onto_siblings}
    # a roll-up whose where counts working days outside the holiday table on a case it
    # counts cannot be computed: the enterprise is rejected with its cases, naming the case
    # and its date, as the batch does (engine/cases/_uncountable.py), unless its own kind's
    # checks reject it first (the batch judges them before reading the cases). Cases whose
    # law date is outside the table are rejects before any roll-up counts them.
    law_calls = outside_calls(f"{kind.source or kind.id} dates law", kind.law_date, kind.key) if kind.law_date else []
    countable = [v for v in child_values if not (law_calls and calendar_failures(law_calls, v, v))]
    failure = uncountable({**onto_parent, **onto_children}, countable, kind.key, env_of, as_of)
    if failure is not None:
        failed = evaluator.kind_failures(kind.parent, parent_values, as_of)
        raise (RecordCheckError(tuple(failed), parent_values[parent_key]) if failed
               else OutsideCalendarError((failure,), parent_values[parent_key]))
    parent_env = {**parent_values, **compute_rollups(onto_parent, countable, env_of, as_of=as_of)}
    decisions = []
    for values in child_values:
        env = {**parent_env, **values, **compute_rollups(onto_children, countable, env_of, anchor=values)}
        if kind.law_date is None:
            decisions.append(evaluator.judge(env, child_policies, as_of, child_kind, values[kind.key]))
        else:
            decisions.append(judge_by_law_in_force(evaluator, kind, env, values, as_of))
    parent_decision = None
    if parent_policies:
        parent_decision = evaluator.judge(parent_env, parent_policies, as_of, kind.parent, parent_values[parent_key])
    return GroupDecision(as_of, parent_decision, tuple(one_act_one_fine(decisions, child_values, kind)))


def judge_by_law_in_force(evaluator: Any, kind: RecordKind, env: Mapping[str, Any], values: Mapping[str, Any], as_of: dt.date) -> Decision:
    """行政处罚法 art 37, statute by statute: the version (and parameter values) in force on
    the record's law date applies; where the version in force when the decision is made is
    lighter for this record, or no longer makes it a violation, that one applies instead.

    The decision is made on ``decision_date`` when it is set and known as of the run, else
    it is being made as of the run. Lighter: smaller fines, then fewer list entries, then
    smaller other amounts.

    Every check a record fails is reported, as the batch run does: the kind's (whatever law
    applies) and those of each version judged."""
    # a law date counting working days outside the holiday table rejects the record first,
    # as the batch does (engine/cases/_law.reject_outside_law_dates)
    outside = calendar_failures(outside_calls(f"{kind.source or kind.id} dates law", kind.law_date, kind.key), values, values)
    if outside:
        raise OutsideCalendarError(tuple(outside), values[kind.key])
    failed = evaluator.kind_failures(kind.id, env, as_of)
    law_day = evaluate(kind.law_date, values)
    decided = values.get(kind.decision_date) if kind.decision_date else None
    decision_day = decided if decided is not None and decided <= as_of else as_of
    versions: dict[str, list[Policy]] = {}
    for policy in evaluator.policies:
        if policy.domain == kind.id:
            versions.setdefault(policy.id, []).append(policy)
    parts, notes = [], []
    for policy_id, candidates in versions.items():
        at_act = next((p for p in candidates if p.in_force(law_day)), None)
        at_decision = next((p for p in candidates if p.in_force(decision_day)), None)
        if at_act is None:
            # no version of this statute in force at the act: the act was not a violation of
            # it then, and a later law does not reach back (only a lighter one does, art 37)
            if at_decision is not None:
                notes.append(f"{policy_id}: 行为时无此规定 (no version in force on {law_day}), 不予适用")
            continue
        old = _judge_one(evaluator, at_act, env, values, kind, as_of, law_day, failed)
        if old is None:
            continue
        if at_decision is not None and at_decision.key == at_act.key and _same_parameters(at_act, law_day, decision_day):
            chosen, note = old, f"{policy_id}: 从旧 ({at_act.key}, 行为时 {law_day})"
            finding_note = law_notes.same_law(at_act.key)
        else:
            # repealed by the decision: not a violation any more, the lightest outcome
            new = _judge_one(evaluator, at_decision, env, values, kind, as_of, decision_day, failed)
            if new is None:
                continue
            if _severity(new) < _severity(old):
                later = at_decision.key if at_decision else "已废止 repealed"
                chosen, note = new, f"{policy_id}: 从轻 ({later} 决定时 {decision_day} 较轻: {_severity(new)[0]:,} < {at_act.key} {_severity(old)[0]:,})"
                # a repealed statute leaves no finding to carry a note
                finding_note = law_notes.lighter(later, _severity(new), at_act.key, _severity(old))
            else:
                chosen, note = old, f"{policy_id}: 从旧 ({at_act.key}, 行为时 {law_day}; 决定时的规定不轻于此)"
                finding_note = law_notes.kept(at_act.key)
        chosen = attrs.evolve(chosen, findings=tuple(attrs.evolve(f, law_note=finding_note) for f in chosen.findings))
        parts.append(chosen)
        if note:
            notes.append(note)
    if failed:
        failed = tuple(dict.fromkeys(failed))
        # a working day outside the holiday table rejects the record before any check judges
        # it, as Evaluator.judge and the kernel's probe do: then it is the only reason given
        outside = tuple(f for f in failed if f.check == CALENDAR_CHECK)
        if outside:
            raise OutsideCalendarError(outside, values[kind.key])
        raise RecordCheckError(failed, values[kind.key])
    return Decision(
        as_of=as_of, domain=kind.id, subject=values[kind.key],
        policies=tuple(key for part in parts for key in part.policies),
        findings=tuple(f for part in parts for f in part.findings),
        sanctions=tuple(s for part in parts for s in part.sanctions),
        trace=tuple(t for part in parts for t in part.trace),
        warnings=tuple(w for part in parts for w in part.warnings),
        lifts=tuple(s for part in parts for s in part.lifts),
        law_date=law_day, law_note="; ".join(notes) or None,
    )


def _judge_one(evaluator, policy: Policy | None, env, values, kind: RecordKind, as_of: dt.date, day: dt.date,
               failed: list) -> Decision | None:
    """The decision of ``policy`` on ``day``; None when the record fails a check of it (the
    failures are added to ``failed``)."""
    if policy is None:  # no law on that day: no violation under it
        return Decision(as_of, kind.id, values[kind.key], (), (), (), ())
    try:
        return evaluator.judge(env, (policy,), as_of, kind.id, values[kind.key], law_date=day, kind_checked=True)
    except RecordCheckError as error:
        failed.extend(error.failures)
        return None


def _same_parameters(policy: Policy, first: dt.date, second: dt.date) -> bool:
    from ecorules.rules import ParameterNotSetError

    for parameter in policy.parameters.values():
        try:
            if parameter.value_at(first) != parameter.value_at(second):
                return False
        except ParameterNotSetError:
            return False
    return True


def _severity(decision: Decision) -> tuple[int, int, int]:
    fines = sum(f.amount_yuan for f in decision.findings if f.kind is FindingKind.FINE)
    others = sum(f.amount_yuan for f in decision.findings if f.kind is not FindingKind.FINE and f.kind.payable)
    return fines, len(decision.sanctions), others


def one_act_one_fine(decisions: Sequence[Decision], values: Sequence[Mapping[str, Any]], kind: RecordKind) -> list[Decision]:
    """Within each act (the children sharing ``kind.act``, or a child alone when it is empty),
    only the highest fine is imposed; the others stay, marked superseded. Ties go to the
    first in (policy, rule, record) order, so every evaluator picks the same one."""
    acts: dict[Any, list[tuple[int, int, Finding]]] = {}
    for index, (decision, record) in enumerate(zip(decisions, values, strict=True)):
        act = record.get(kind.act) if kind.act else None
        key = ("act", act) if act is not None else ("record", record[kind.key])
        for position, finding in enumerate(decision.findings):
            if finding.kind is FindingKind.FINE:
                acts.setdefault(key, []).append((index, position, finding))
    superseded: dict[tuple[int, int], str] = {}
    for candidates in acts.values():
        if len(candidates) < 2:
            continue
        winner = min(candidates, key=lambda c: (-c[2].amount_yuan, c[2].policy, c[2].rule, str(c[2].record)))
        name = f"{winner[2].policy} {winner[2].rule} ({winner[2].record})"
        for index, position, _ in candidates:
            if (index, position) != winner[:2]:
                superseded[(index, position)] = name
    if not superseded:
        return list(decisions)
    result = []
    for index, decision in enumerate(decisions):
        findings = tuple(
            attrs.evolve(f, status=SUPERSEDED, superseded_by=superseded[(index, position)])
            if (index, position) in superseded else f
            for position, f in enumerate(decision.findings)
        )
        result.append(attrs.evolve(decision, findings=findings))
    return result


def _in_force(policies, kind: str, as_of: dt.date) -> tuple[Policy, ...]:
    return tuple(p for p in policies if p.domain == kind and p.in_force(as_of))


def _rollup_reads(facts, child_kind: str) -> tuple[str, ...]:
    """The facts the roll-ups over ``child_kind`` read (not roll-ups themselves)."""
    reads = dict.fromkeys(name for fact in facts.values() if fact.rollup is not None and fact.rollup.over == child_kind
                          for name in fact.rollup.reads)
    return tuple(name for name in reads if name in facts and facts[name].rollup is None)


def _needed(policies: Sequence[Policy], facts, kind: str) -> dict[str, None]:
    """The facts of ``kind`` itself that the policies read: a child's policies also read its
    parent's facts and roll-ups, which come from elsewhere."""
    needed = {}
    for policy in policies:
        for name in policy.required_facts:
            fact = facts[name]
            if fact.record_kind in (kind, None) and fact.rollup is None:
                needed[name] = None
    return needed


def _child(facts, record: Mapping[str, Any], index: int, kind: RecordKind, needed, link: tuple[str, Any]) -> dict[str, Any]:
    """The checked values of one child; it must name its parent (its uscc) or leave it out."""
    name, parent = link
    if not isinstance(record, Mapping):
        raise RecordError(f"child record {index + 1} must be a mapping of field names to values")
    written = record.get(name)
    if written is not None and coerce_record(facts, {name: written}, [name])[name] != parent:
        raise RecordError(f"child record {index + 1} belongs to {written!r}, not to {parent!r}", name, written)
    act = {kind.act: None} if kind.act else {}
    return coerce_record(facts, record, {kind.key: None, **needed, **act})


__all__ = ["ONE_ACT_ONE_FINE", "GroupDecision", "judge_group", "one_act_one_fine"]
