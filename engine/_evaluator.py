"""Single-case evaluation: one record in, a :class:`Decision` out.

Two backends share everything but the question "which rules fire?":
- ``durable`` (the default, the reference path of the design card): each policy is compiled
  once into a durable-rules ruleset and the record is asserted as a fact;
- ``python``: each condition is evaluated directly with the expression evaluator. It is the
  independent reading that the durable path and the batch kernel are tested against.
Amounts, payers and sanctions of the rules that fire are then computed from the same typed
expressions by both. An Evaluator is safe to share between threads.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from ecorules.rules import (
    ENTERPRISE,
    Kind,
    ParameterNotSetError,
    Policy,
    PolicySet,
    RecordError,
    Rule,
    UsageError,
    evaluate,
    finding_amount,
    load_policies,
)
from ecorules.rules._check_calls import result_key
from ecorules.rules._checks import OutsideCalendarError, RecordCheckError, failures
from ecorules.rules._evaluate import EmptyValueError
from ecorules.rules._records import coerce_record
from ecorules.rules._schema import kind_checks_policy
from ecorules.rules._steps import steps
from ecorules.rules._workdays import (
    calendar_failures,
    calls,
    check_calls,
    outside_calls,
    rule_nodes,
)

from ._decision import Decision, Finding, Sanction, TraceEntry
from ._durable import DurableHost
from ._group import GroupDecision, judge_by_law_in_force, judge_group
from ._to_durable import ALWAYS, CompiledRule, check_entry, compile_policy, field_of, wire

BACKENDS = ("durable", "python")
_names = itertools.count()


class Evaluator:
    """Judges records against a set of policies; create once, call ``evaluate`` many times."""

    def __init__(self, policies: PolicySet | Iterable[Policy] | None = None, *, backend: str = "durable",
                 explain: bool = True):
        """``explain=False``: the trace leaves out the steps behind each outcome (periods, caps,
        named values: for explanations; a gate that only asks pass or fail spends ~40% of
        its time computing them)."""
        if backend not in BACKENDS:
            raise UsageError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if policies is None:
            policies = load_policies()
        self.policies = policies if isinstance(policies, PolicySet) else PolicySet(tuple(policies))
        self.backend, self.explain = backend, explain
        self._host: DurableHost | None = None
        self._compiled: dict[str, tuple[str, tuple[CompiledRule, ...]]] = {}
        # once per policy, not per record: the order in which its rules are judged
        self._stages = {policy.key: _stages(policy) for policy in self.policies}
        # the working-day calls judged before any check or rule (rules/_workdays.calendar_failures),
        # by rule id and "check:<id>"; those reading a result just before their rule is judged
        self._outside = {policy.key: {
            **{rule.id: [item for node in rule_nodes(rule) for item in outside_calls(f"{policy.key} rule {rule.id}", node, policy.subject)]
               for rule in policy.rules},
            **{f"check:{c.id}": outside_calls(f"{policy.key} check {c.id}", c.holds, policy.subject) for c in policy.checks},
        } for policy in self.policies}
        self._late = {policy.key: {rule.id: [item for node in rule_nodes(rule)
                                             for item in outside_calls(f"{policy.key} rule {rule.id}", node, policy.subject, late=True)]
                                   for rule in policy.rules} for policy in self.policies}
        # each kind's catalogue checks, judged once per record as a policy of checks alone
        self._kind_checks = {kind.id: kind_checks_policy(kind, self.policies.facts)
                             for kind in self.policies.kinds.values() if kind.checks}
        self._kind_outside = {kind: [item for c in checks.checks
                                     for item in outside_calls(f"{checks.id} check {c.id}", c.holds, checks.subject)]
                              for kind, checks in self._kind_checks.items()}
        if backend == "durable":
            rulesets = {}
            for policy in (*self.policies, *self._kind_checks.values()):
                ruleset, compiled = compile_policy(policy)
                # A unique name per evaluator: two evaluators never share durable state.
                name = f"{policy.key}#{next(_names)}"
                rulesets[name] = ruleset
                self._compiled[policy.key] = (name, compiled)
            self._host = DurableHost(rulesets)

    def close(self) -> None:
        """Free durable-rules' C rulesets (they are otherwise kept until the process exits)."""
        if self._host is not None:
            self._host.close()

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def evaluate(self, record: Mapping[str, Any], as_of: dt.date | None = None, domain: str = "enterprise") -> Decision:
        """Judge ``record`` under the policies of ``domain`` in force on ``as_of`` (default today).

        Raises :class:`RecordError` if a field the policies need is missing or invalid.
        """
        as_of = as_of or dt.date.today()
        if not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime):
            raise UsageError(f"as_of must be a datetime.date, got {as_of!r}")
        in_force = [p for p in self.policies if p.domain == domain and p.in_force(as_of)]
        if not any(p.domain == domain for p in self.policies):
            raise UsageError(f"no policy of domain {domain!r} is loaded (domains: {', '.join(self.policies.domains)})")
        kind = self.policies.kinds.get(domain)
        if kind is not None and kind.law_date is not None:
            # judged by the law in force at the record's own date (行政处罚法 art 37): any
            # version may apply, so the record must hold what every version reads
            versions = [p for p in self.policies if p.domain == domain]
            needed = dict.fromkeys((*(name for p in versions for name in p.required_facts), *kind.date_reads))
            values = coerce_record(self.policies.facts, record, needed)
            return judge_by_law_in_force(self, kind, values, values, as_of)
        needed = dict.fromkeys(name for p in in_force for name in p.required_facts)
        facts = self.policies.facts
        values = coerce_record(facts, record, needed)
        return self.judge(values, in_force, as_of, domain, _subject(values, record, in_force))

    def evaluate_group(
        self, parent: Mapping[str, Any], children: Iterable[Mapping[str, Any]], *, kind: str = "case", as_of: dt.date | None = None,
    ) -> GroupDecision:
        """Judge a record with its children: an enterprise (``parent``) with its cases, the
        child ``kind``. Roll-ups are computed from the children given, each child is judged
        with its parent's facts, and one act, one fine applies across the children.

        Raises :class:`RecordError` naming the field (and the child) that is invalid.
        """
        as_of = as_of or dt.date.today()
        return judge_group(self, parent, list(children), kind, as_of)

    def judge(
        self, values: Mapping[str, Any], in_force: Iterable[Policy], as_of: dt.date, domain: str, subject: Any,
        law_date: dt.date | None = None, kind_checked: bool = False,
    ) -> Decision:
        """Judge already checked ``values`` (every fact the policies read, roll-ups included)
        under the policies ``in_force``: the core shared by single records and groups.
        Parameters take their values in force on ``law_date`` (default: ``as_of``).
        ``kind_checked``: the caller has judged the checks of the kind's catalogue."""
        in_force = tuple(in_force)
        law_date = law_date or as_of
        findings: list[Finding] = []
        sanctions: list[Sanction] = []
        lifts: list[Sanction] = []
        trace: list[TraceEntry] = []
        warnings: list[str] = []
        envs = {policy.key: _environment(policy, values, as_of, law_date) for policy in in_force}
        # a working day outside the holiday table, read by a check or by a rule judged,
        # rejects the record before anything judges it, as the kernel does
        # (fastcalc/_compiler._emit_calendar_checks); then the kind's checks and every
        # policy's, before any rule: a record failing one is rejected, whole
        outside = [] if kind_checked else self._kind_calendar(domain, values, as_of)
        for policy in in_force:
            env, unset = envs[policy.key]
            found = [item for c in policy.checks if not any(name in unset for name in c.reads())
                     for item in self._outside[policy.key][f"check:{c.id}"]]
            found += [item for r in policy.rules if not any(name in unset for name in r.reads())
                      for item in self._outside[policy.key][r.id]]
            if found:
                outside += calendar_failures(found, env, values)
        if outside:
            raise OutsideCalendarError(tuple(outside), subject)
        failed = [] if kind_checked else self.kind_failures(domain, values, as_of)
        for policy in in_force:
            env, unset = envs[policy.key]
            judged = []
            for check in policy.checks:
                missing = [name for name in check.reads() if name in unset]
                if missing:
                    warnings.append(f"{policy.key} check {check.id}: not judged: {unset[missing[0]]}; legal staff must set it")
                else:
                    judged.append(check)
            if judged:
                failed += self._failures(policy, judged, env, values, policy.key)
        if failed:
            raise RecordCheckError(tuple(failed), subject)
        for policy in in_force:
            # 'enterprise' as payer or listed subject is the legal person: for a case, the
            # enterprise it belongs to, not the case itself
            payer_key = values[policy.payer_key]
            record_key = values[policy.subject] if policy.subject != policy.payer_key else None
            env, unset = envs[policy.key]
            env = dict(env)
            disabled = {}
            for rule in policy.rules:
                missing = [name for name in rule.reads() if name in unset]
                if missing:
                    disabled[rule.id] = f"not judged: {unset[missing[0]]}; legal staff must set it"
                    warnings.append(f"{policy.key} rule {rule.id}: {disabled[rule.id]}")
            fired: set[str] = set()
            late: dict[str, list] = {}  # rule id -> its working days outside the table read after a result
            for stage in self._stages[policy.key]:  # rules reading results come after the rules read
                # a working-day call reading a rule's result is computed once that result is
                # known; outside the holiday table it rejects the record (the kernel probes it
                # just before the rule). A rule failing so is not judged: the record is
                # rejected below for the first such rule in the policy's order, the kernel's.
                for rule in stage:
                    found = self._late[policy.key][rule.id]
                    if found and rule.id not in disabled:
                        failed_late = calendar_failures(found, env, values)
                        if failed_late:
                            late[rule.id] = failed_late
                fired |= self._fired(policy, env, {**disabled, **late}, stage)
                for rule in stage:
                    env[result_key("fired", rule.id)] = rule.id in fired
                    if len(rule.findings) == 1:
                        env[result_key("amount_of", rule.id)] = finding_amount(rule.findings[0], env) if rule.id in fired else 0
            if late:
                first = next(rule.id for rule in policy.rules if rule.id in late)
                raise OutsideCalendarError(tuple(late[first]), subject)
            for rule in policy.rules:
                reads = {name: env[name] for name in rule.reads() if name in env}
                for read in rule.results_read():
                    for function in ("fired", "amount_of"):
                        if result_key(function, read) in env:
                            reads[f"{function}({read})"] = env[result_key(function, read)]
                trace.append(TraceEntry(policy.key, rule.id, rule.id in fired, reads, rule.condition_text.strip(),
                                        disabled.get(rule.id),
                                        _steps(policy, rule, env, rule.id in fired, disabled) if self.explain else ()))
                if rule.id not in fired:
                    continue
                for spec in rule.findings:
                    payer = payer_key if spec.payer == ENTERPRISE else values[spec.payer]
                    # a rule's one amount is already in env for the rules that may read it
                    amount = env.get(result_key("amount_of", rule.id)) if len(rule.findings) == 1 else None
                    amount = finding_amount(spec, env) if amount is None else amount
                    findings.append(Finding(policy.key, rule.id, rule.title, spec.kind, amount, payer, rule.citation,
                                            record=record_key, unit=spec.rounding.unit))
                for spec in (*rule.sanctions, *rule.lifts):
                    listed = policy.lists[spec.list]
                    start = evaluate(spec.start, env) if spec.start is not None else as_of
                    end = evaluate(spec.end, env) if spec.end is not None else None
                    (lifts if spec.lift else sanctions).append(Sanction(
                        policy.key, rule.id, spec.list, listed.title, spec.reason, payer_key, rule.citation,
                        start, end, spec.lift, record_key,
                    ))
        return Decision(
            as_of=as_of,
            domain=domain,
            subject=subject,
            policies=tuple(p.key for p in in_force),
            findings=tuple(findings),
            sanctions=tuple(sanctions),
            trace=tuple(trace),
            warnings=tuple(warnings),
            lifts=tuple(lifts),
            law_date=law_date if law_date != as_of else None,
        )

    def kind_failures(self, domain: str, values: Mapping[str, Any], as_of: dt.date) -> list:
        """The checks of the catalogue of kind ``domain`` that ``values`` fail; they read the
        record's facts and as_of only, so they do not depend on the law in force. A working
        day outside the holiday table in one of them is the only failure then."""
        kind_checks = self._kind_checks.get(domain)
        if kind_checks is None:
            return []
        return (self._kind_calendar(domain, values, as_of)
                or self._failures(kind_checks, kind_checks.checks, {**values, "as_of": as_of}, values, kind_checks.id))

    def _kind_calendar(self, domain: str, values: Mapping[str, Any], as_of: dt.date) -> list:
        kind_checks = self._kind_checks.get(domain)
        if kind_checks is None:
            return []
        found = self._kind_outside[domain]
        return calendar_failures(found, {**values, "as_of": as_of}, values) if found else []

    def _failures(self, policy: Policy, checks, env: Mapping[str, Any], values: Mapping[str, Any], origin: str) -> list:
        """The failures of ``checks`` (of ``policy``, named ``origin`` in the reasons) on ``env``;
        a working day outside the holiday table fails the record first, as in the kernel."""
        check_calls((call for c in checks for call in calls(c.holds)), env)
        held = self._holding(policy, env, {check_entry(c.id): c.holds for c in checks})
        return failures(origin, checks, {c.id for c in checks if check_entry(c.id) in held}, values)

    def _fired(self, policy: Policy, env: Mapping[str, Any], disabled: Mapping[str, str], stage) -> set[str]:
        """The rules of ``stage`` whose condition holds (the results they read are in env)."""
        return self._holding(policy, env, {rule.id: rule.condition for rule in stage if rule.id not in disabled})

    def _holding(self, policy: Policy, env: Mapping[str, Any], conditions: Mapping[str, Any]) -> set[str]:
        """Which of ``conditions`` (ruleset entry -> typed condition: rules, or checks as
        ``check:<id>``) hold on ``env``."""
        judged = set(conditions)
        if self.backend == "python":
            return {entry for entry, condition in conditions.items() if evaluate(condition, env)}
        name, compiled = self._compiled[policy.key]
        message: dict[str, Any] = {ALWAYS: 1}
        for key, value in env.items():
            if value is None or ":" in key:  # an empty optional fact is an absent field;
                continue  # results of other rules travel only in derived fields
            kind = "builtin" if key == "as_of" else ("parameter" if key in policy.parameters else "fact")
            # a decimal parameter written as a whole number (value: 7) is loaded as the int 7,
            # but durable compares decimals x 10**4: scale it like a Decimal
            scaled = kind == "parameter" and policy.parameters[key].type.kind is Kind.DECIMAL
            message[field_of(kind, key)] = wire(value, scaled)
        for rule in compiled:
            if rule.rule_id not in judged:
                continue  # a later stage's derived fields may read results not known yet
            for derived in rule.derived:
                try:
                    value = evaluate(derived.node, env)
                except EmptyValueError:
                    # Reads an empty optional fact: the checker proved a guard decides the
                    # condition without it, so the field is left out like the fact itself.
                    continue
                if derived.sign:
                    value = (value > 0) - (value < 0)
                message[derived.field] = wire(value, derived.scaled)
        return {rule_id for rule_id in self._host.fired(name, message) if rule_id in judged}


def _steps(policy: Policy, rule: Rule, env: Mapping[str, Any], fired: bool, disabled: Mapping[str, str]) -> tuple:
    """The periods, caps and named values behind the rule's outcome: its condition's, and
    when it fired its amounts' and list dates'. Computed by the reference evaluator whatever
    the backend, for the explanation only."""
    if rule.id in disabled:
        return ()
    nodes = [rule.condition]
    if fired:
        nodes += [spec.amount for spec in rule.findings]
        nodes += [node for spec in (*rule.sanctions, *rule.lifts) for node in (spec.start, spec.end) if node is not None]
    descriptions = {name: value.description for name, value in getattr(policy, "values", {}).items()}
    return tuple(dict.fromkeys(step for node in nodes for step in steps(node, env, descriptions)))


def _environment(policy: Policy, values: Mapping[str, Any], as_of: dt.date, law_date: dt.date):
    """The names a policy's expressions read (the record, the parameters in force on
    ``law_date``, the builtin as_of), and its parameters without a value then, with why."""
    parameters, unset = {}, {}
    for name, parameter in policy.parameters.items():
        try:
            parameters[name] = parameter.value_at(law_date)
        except ParameterNotSetError as error:
            unset[name] = str(error)
    return {**values, **parameters, "as_of": as_of}, unset


def _stages(policy: Policy) -> list[tuple[Rule, ...]]:
    """The rules in stages: those reading no result first, then each rule one stage after the
    last rule it reads (the loader has refused cycles). Usually a single stage."""
    depth: dict[str, int] = {}
    for rule in policy.rules:  # the loader put every rule after the rules it reads
        depth[rule.id] = 1 + max((depth[read] for read in rule.results_read()), default=-1)
    stages: list[list[Rule]] = [[] for _ in range(1 + max(depth.values(), default=0))]
    for rule in policy.rules:
        stages[depth[rule.id]].append(rule)
    return [tuple(stage) for stage in stages]


def _subject(values: Mapping[str, Any], record: Mapping[str, Any], in_force: list) -> Any:
    """Who the decision is about, as checked (blanks trimmed, a full-width USCC as GB 32100
    writes it), not as the record wrote it; as written only if no policy read it."""
    name = in_force[0].subject if in_force else "uscc"
    if name in values:
        return values[name]
    raw = record.get(name)
    return raw.strip() if isinstance(raw, str) else raw


__all__ = ["BACKENDS", "Evaluator", "RecordError"]

