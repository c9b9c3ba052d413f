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
    ParameterNotSetError,
    Policy,
    PolicySet,
    RecordError,
    evaluate,
    load_policies,
)
from ecorules.rules._evaluate import EmptyValueError
from ecorules.rules._records import coerce_record

from ._decision import Decision, Finding, Sanction, TraceEntry
from ._durable import DurableHost
from ._to_durable import ALWAYS, CompiledRule, compile_policy, field_of, wire

BACKENDS = ("durable", "python")
_names = itertools.count()


class Evaluator:
    """Judges records against a set of policies; create once, call ``evaluate`` many times."""

    def __init__(self, policies: PolicySet | Iterable[Policy] | None = None, *, backend: str = "durable"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if policies is None:
            policies = load_policies()
        self.policies = policies if isinstance(policies, PolicySet) else PolicySet(tuple(policies))
        self.backend = backend
        self._host: DurableHost | None = None
        self._compiled: dict[str, tuple[str, tuple[CompiledRule, ...]]] = {}
        if backend == "durable":
            rulesets = {}
            for policy in self.policies:
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
            raise TypeError(f"as_of must be a datetime.date, got {as_of!r}")
        in_force = [p for p in self.policies if p.domain == domain and p.in_force(as_of)]
        if not any(p.domain == domain for p in self.policies):
            raise ValueError(f"no policy of domain {domain!r} is loaded (domains: {', '.join(self.policies.domains)})")
        needed = dict.fromkeys(name for p in in_force for name in p.required_facts)
        facts = self.policies.facts
        values = coerce_record(facts, record, needed)
        subject = record.get(in_force[0].subject) if in_force else record.get("uscc")
        findings: list[Finding] = []
        sanctions: list[Sanction] = []
        trace: list[TraceEntry] = []
        warnings: list[str] = []
        for policy in in_force:
            parameters, unset = {}, {}
            for name, parameter in policy.parameters.items():
                try:
                    parameters[name] = parameter.value_at(as_of)
                except ParameterNotSetError as error:
                    unset[name] = str(error)
            env = {**values, **parameters, "as_of": as_of}
            disabled = {}
            for rule in policy.rules:
                missing = [name for name in rule.reads() if name in unset]
                if missing:
                    disabled[rule.id] = f"not judged: {unset[missing[0]]}; legal staff must set it"
                    warnings.append(f"{policy.key} rule {rule.id}: {disabled[rule.id]}")
            fired = self._fired(policy, env, disabled)
            for rule in policy.rules:
                reads = {name: env[name] for name in rule.reads() if name in env}
                trace.append(TraceEntry(policy.key, rule.id, rule.id in fired, reads, rule.condition_text.strip(), disabled.get(rule.id)))
                if rule.id not in fired:
                    continue
                for spec in rule.findings:
                    payer = values[policy.subject] if spec.payer == ENTERPRISE else values[spec.payer]
                    amount = evaluate(spec.amount, env)
                    findings.append(Finding(policy.key, rule.id, rule.title, spec.kind, amount, payer, rule.citation))
                for spec in rule.sanctions:
                    listed = policy.lists[spec.list]
                    sanctions.append(Sanction(policy.key, rule.id, spec.list, listed.title, spec.reason, values[policy.subject], rule.citation))
        return Decision(
            as_of=as_of,
            domain=domain,
            subject=subject,
            policies=tuple(p.key for p in in_force),
            findings=tuple(findings),
            sanctions=tuple(sanctions),
            trace=tuple(trace),
            warnings=tuple(warnings),
        )

    def _fired(self, policy: Policy, env: Mapping[str, Any], disabled: Mapping[str, str]) -> set[str]:
        if self.backend == "python":
            return {r.id for r in policy.rules if r.id not in disabled and evaluate(r.condition, env)}
        name, compiled = self._compiled[policy.key]
        message: dict[str, Any] = {ALWAYS: 1}
        for key, value in env.items():
            if value is None:  # an empty optional fact is an absent field: no comparison holds
                continue
            kind = "builtin" if key == "as_of" else ("parameter" if key in policy.parameters else "fact")
            message[field_of(kind, key)] = wire(value)
        for rule in compiled:
            if rule.rule_id in disabled:
                continue
            for derived in rule.derived:
                try:
                    value = evaluate(derived.node, env)
                except EmptyValueError:
                    # Reads an empty optional fact: the checker proved a guard decides the
                    # condition without it, so the field is left out like the fact itself.
                    continue
                message[derived.field] = wire(value, derived.scaled)
        return {rule_id for rule_id in self._host.fired(name, message) if rule_id not in disabled}


__all__ = ["BACKENDS", "Evaluator", "RecordError"]
