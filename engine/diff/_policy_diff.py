"""What changed in the policy text between two policy sets, at the level legal staff think in.

A line diff of YAML mixes what matters (a new amount from a new date, a condition made
stricter) with what does not (comments, key order, line wrapping of a quoted clause). This
module compares the loaded model instead: policies are paired by ``id`` (so a new version of a
regulation reads as a change, not as a removal plus an addition); inside a pair, rules,
parameters, lists and test cases are paired by name, and a parameter's dated values by their
start date. Expressions are compared in their canonical form (``rules.render``), so re-spacing
a condition is no change, and shown as written. A dated value that kept its amount but moved
to another date is reported as moved, the way staff describe it ("from 1 July instead").
A change of ``rounding:`` (the unit and mode an amount is rounded to once) is a header field
where the policy declares it, ``findings[i].rounding`` where a rule does; the rules whose
amounts now round otherwise only through their policy's declaration are named in
``PolicyChange.rounded`` (the impact report's status "rounding changed", as a parameter's).

Pure: no scoring, no file access; everything returned is a frozen value whose ``to_dict`` is
plain JSON (dates as ISO text, decimals as exact text).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import attrs
from ecorules.rules import (
    Fact,
    Parameter,
    Policy,
    PolicySet,
    Rounding,
    Rule,
    SanctionList,
    TestCase,
    render,
)
from ecorules.rules._money import YUAN

ADDED, REMOVED, CHANGED, MOVED = "added", "removed", "changed", "moved"

_HEADER_FIELDS = (
    "title", "version", "effective", "expires", "authority", "document", "number", "source",
    "domain", "subject", "rounding",
)
_FACT_FIELDS = ("type", "label", "unit", "min", "max", "format", "aliases", "description")


def plain(value: Any) -> Any:
    """A JSON-ready copy of a policy value: dates as ISO text, decimals as exact text."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | Rounding):
        return str(value)  # a rounding as "fen, half_up"
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    return value


@attrs.frozen
class FieldChange:
    """One field of an item that differs: ``field`` is a path such as ``findings[0].amount``."""

    field: str
    before: Any
    after: Any

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "before": self.before, "after": self.after}


@attrs.frozen
class ValueChange:
    """A dated value of a parameter that appeared, disappeared, changed or moved in time."""

    status: str  # added, removed, changed (same start, other value), moved (same value)
    start_before: str | None
    start_after: str | None
    value_before: Any
    value_after: Any
    reference_before: str | None
    reference_after: str | None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class ItemChange:
    """A fact, parameter, list, rule or test case added, removed or changed.

    ``summary`` is the item as written, for added and removed items (what a reader needs to
    see to judge it); ``fields`` and ``values`` say what changed in a changed item.
    """

    kind: str  # fact, parameter, list, rule, test
    name: str
    status: str
    title: str | None = None
    fields: tuple[FieldChange, ...] = ()
    values: tuple[ValueChange, ...] = ()
    summary: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "title": self.title,
            "fields": [f.to_dict() for f in self.fields],
            "values": [v.to_dict() for v in self.values],
            "summary": self.summary,
        }


@attrs.frozen
class PolicyChange:
    """One regulation (by id) that was added, removed or changed."""

    policy: str  # the id, e.g. zhengzhou.eco_water_interception
    status: str
    base: str | None  # id@version on each side
    proposed: str | None
    title: str
    header: tuple[FieldChange, ...] = ()
    parameters: tuple[ItemChange, ...] = ()
    lists: tuple[ItemChange, ...] = ()
    rules: tuple[ItemChange, ...] = ()
    tests: tuple[ItemChange, ...] = ()
    # rules (ids) whose amounts round otherwise because the policy's ``rounding:`` changed
    rounded: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "status": self.status,
            "base": self.base,
            "proposed": self.proposed,
            "title": self.title,
            "header": [f.to_dict() for f in self.header],
            "parameters": [p.to_dict() for p in self.parameters],
            "lists": [item.to_dict() for item in self.lists],
            "rules": [r.to_dict() for r in self.rules],
            "tests": [t.to_dict() for t in self.tests],
            "rounded": list(self.rounded),
        }


@attrs.frozen
class PolicyDiff:
    """Everything that differs between two sets; ``unchanged`` names the identical policies."""

    policies: tuple[PolicyChange, ...]
    facts: tuple[ItemChange, ...]
    unchanged: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.policies and not self.facts

    def counts(self) -> dict[str, int]:
        """How many rules and parameters were added, removed or changed, over all policies."""
        counts = {f"{kind}_{status}": 0 for kind in ("rules", "parameters") for status in (ADDED, REMOVED, CHANGED)}
        for policy in self.policies:
            for kind, items in (("rules", policy.rules), ("parameters", policy.parameters)):
                for item in items:
                    counts[f"{kind}_{item.status}"] += 1
        counts["policies_changed"] = len(self.policies)
        counts["facts_changed"] = len(self.facts)
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts(),
            "policies": [p.to_dict() for p in self.policies],
            "facts": [f.to_dict() for f in self.facts],
            "unchanged": list(self.unchanged),
        }


def diff_policies(base: PolicySet | Iterable[Policy], proposed: PolicySet | Iterable[Policy]) -> PolicyDiff:
    """Compare two policy sets; policies pair by id, versions by version, else by date order."""
    base, proposed = tuple(base), tuple(proposed)
    changes: list[PolicyChange] = []
    unchanged: list[str] = []
    for policy_id in _ordered_ids(base, proposed):
        for old, new in _pair_versions([p for p in base if p.id == policy_id], [p for p in proposed if p.id == policy_id]):
            change = diff_policy(old, new)
            if change is None:
                unchanged.append(new.key)
            else:
                changes.append(change)
    facts = _diff_items(
        "fact", _merged_facts(base), _merged_facts(proposed), _fact_fields, _fact_summary
    )
    return PolicyDiff(tuple(changes), tuple(facts), tuple(unchanged))


def diff_policy(old: Policy | None, new: Policy | None) -> PolicyChange | None:
    """The change from ``old`` to ``new`` (either may be None), or None if they mean the same."""
    if old is None and new is None:
        raise ValueError("diff_policy needs at least one policy")
    if old is None or new is None:
        policy = old or new
        return PolicyChange(
            policy=policy.id,
            status=ADDED if old is None else REMOVED,
            base=old.key if old else None,
            proposed=new.key if new else None,
            title=policy.title,
            parameters=tuple(ItemChange("parameter", n, ADDED if old is None else REMOVED, summary=_parameter_summary(p)) for n, p in policy.parameters.items()),
            lists=tuple(ItemChange("list", n, ADDED if old is None else REMOVED, lst.title, summary=_list_summary(lst)) for n, lst in policy.lists.items()),
            rules=tuple(ItemChange("rule", r.id, ADDED if old is None else REMOVED, r.title, summary=_rule_summary(r)) for r in policy.rules),
            tests=tuple(ItemChange("test", t.name, ADDED if old is None else REMOVED) for t in policy.tests),
        )
    header = tuple(
        FieldChange(name, plain(getattr(old, name)), plain(getattr(new, name)))
        for name in _HEADER_FIELDS
        if getattr(old, name) != getattr(new, name)
    )
    parameters = _diff_items("parameter", old.parameters, new.parameters, _parameter_fields, _parameter_summary)
    lists = _diff_items("list", old.lists, new.lists, _list_fields, _list_summary)
    rules = _diff_items("rule", {r.id: r for r in old.rules}, {r.id: r for r in new.rules},
                        lambda a, b: _rule_fields(a, b, (old.rounding, new.rounding)), _rule_summary)
    tests = _diff_items("test", {t.name: t for t in old.tests}, {t.name: t for t in new.tests}, _test_fields, None)
    if not (header or parameters or lists or rules or tests):
        return None
    before = {r.id: r for r in old.rules}
    rounded = tuple(
        r.id for r in new.rules if old.rounding != new.rounding and r.id in before
        and any(a.rounding != b.rounding for a, b in zip(before[r.id].findings, r.findings, strict=False))
    )
    return PolicyChange(
        new.id, CHANGED, old.key, new.key, new.title, header, *map(tuple, (parameters, lists, rules, tests)), rounded
    )


# -- pairing ----------------------------------------------------------------------------------------
def _ordered_ids(base: tuple[Policy, ...], proposed: tuple[Policy, ...]) -> list[str]:
    return list(dict.fromkeys([p.id for p in base] + [p.id for p in proposed]))


def _pair_versions(old: list[Policy], new: list[Policy]) -> list[tuple[Policy | None, Policy | None]]:
    """Same version with same version; the rest in order of their effective dates.

    A draft that turns version 2011 into 2013 pairs the two; a draft that keeps 2011 (now
    with ``expires``) and adds 2013 pairs 2011 with 2011 and reports 2013 as added.
    """
    pairs: list[tuple[Policy | None, Policy | None]] = []
    new_by_version = {p.version: p for p in new}
    left_old = []
    for policy in old:
        match = new_by_version.pop(policy.version, None)
        if match is None:
            left_old.append(policy)
        else:
            pairs.append((policy, match))
    left_new = sorted(new_by_version.values(), key=lambda p: p.effective)
    left_old.sort(key=lambda p: p.effective)
    for index in range(max(len(left_old), len(left_new))):
        pairs.append((
            left_old[index] if index < len(left_old) else None,
            left_new[index] if index < len(left_new) else None,
        ))
    return pairs


def _diff_items(kind, old: dict, new: dict, fields_of, summary_of) -> list[ItemChange]:
    """Items of one kind paired by name: removed ones first in their old order, then the rest."""
    changes = []
    for name, item in old.items():
        if name not in new:
            changes.append(ItemChange(kind, name, REMOVED, _title(item), summary=summary_of(item) if summary_of else None))
    for name, item in new.items():
        if name not in old:
            changes.append(ItemChange(kind, name, ADDED, _title(item), summary=summary_of(item) if summary_of else None))
            continue
        fields, values = fields_of(old[name], item)
        if fields or values:
            changes.append(ItemChange(kind, name, CHANGED, _title(item), tuple(fields), tuple(values)))
    return changes


def _title(item: Any) -> str | None:
    for attribute in ("title", "label", "description"):
        value = getattr(item, attribute, None)
        if value:
            return value
    return None


def _merged_facts(policies: tuple[Policy, ...]) -> dict[str, Fact]:
    merged: dict[str, Fact] = {}
    for policy in policies:
        for name, fact in policy.facts.items():
            merged.setdefault(name, fact)
    return merged


def _compare(pairs: Iterable[tuple[str, Any, Any]]) -> list[FieldChange]:
    return [FieldChange(name, plain(a), plain(b)) for name, a, b in pairs if a != b]


# -- facts, lists -----------------------------------------------------------------------------------
def _fact_fields(old: Fact, new: Fact):
    def field(fact: Fact, name: str) -> Any:
        return str(fact.type.kind) if name == "type" else getattr(fact, name)

    fields = _compare((name, field(old, name), field(new, name)) for name in _FACT_FIELDS)
    fields += _choice_changes(old.type.choices or (), new.type.choices or ())
    fields += _alias_changes(old.value_aliases, new.value_aliases)
    return fields, ()


def _choice_changes(old: tuple[str, ...], new: tuple[str, ...]) -> list[FieldChange]:
    removed = [c for c in old if c not in new]
    added = [c for c in new if c not in old]
    changes = []
    if removed:
        changes.append(FieldChange("values removed", removed, None))
    if added:
        changes.append(FieldChange("values added", None, added))
    return changes


def _alias_changes(old: tuple[tuple[str, str], ...], new: tuple[tuple[str, str], ...]) -> list[FieldChange]:
    """An enum's aliases decide which registry rows are accepted, and as what value: a change
    moves rows between rejects and districts, so the report names it."""
    removed = [f"{alias} = {value}" for alias, value in old if (alias, value) not in new]
    added = [f"{alias} = {value}" for alias, value in new if (alias, value) not in old]
    changes = []
    if removed:
        changes.append(FieldChange("value aliases removed", removed, None))
    if added:
        changes.append(FieldChange("value aliases added", None, added))
    return changes


def _fact_summary(fact: Fact) -> dict[str, Any]:
    summary = {name: plain(getattr(fact, name)) for name in ("label", "unit", "min", "max", "description")}
    summary["type"] = str(fact.type.kind)
    if fact.type.choices:
        summary["values"] = list(fact.type.choices)
    return summary


def _list_fields(old: SanctionList, new: SanctionList):
    return _compare((name, getattr(old, name), getattr(new, name)) for name in ("title", "description")), ()


def _list_summary(sanction_list: SanctionList) -> dict[str, Any]:
    return {"title": sanction_list.title, "description": sanction_list.description}


# -- parameters -------------------------------------------------------------------------------------
def _parameter_fields(old: Parameter, new: Parameter):
    fields = _compare([
        ("type", str(old.type.kind), str(new.type.kind)),
        ("unit", old.unit, new.unit),
        ("description", old.description, new.description),
    ])
    return fields, _value_changes(old, new)


def _value_changes(old: Parameter, new: Parameter) -> list[ValueChange]:
    """Dated values paired by start date; leftovers with equal values paired as moved."""
    before = {v.start: v for v in old.values}
    after = {v.start: v for v in new.values}
    changes: list[ValueChange] = []
    gone = [v for start, v in before.items() if start not in after]
    new_ones = [v for start, v in after.items() if start not in before]
    for old_value in list(gone):
        match = next((v for v in new_ones if v.value == old_value.value), None)
        if match is not None:
            gone.remove(old_value)
            new_ones.remove(match)
            changes.append(_value_change(MOVED, old_value, match))
    changes += [_value_change(REMOVED, v, None) for v in gone]
    changes += [_value_change(ADDED, None, v) for v in new_ones]
    for start, old_value in before.items():
        new_value = after.get(start)
        if new_value is not None and (old_value.value, old_value.reference) != (new_value.value, new_value.reference):
            changes.append(_value_change(CHANGED, old_value, new_value))
    changes.sort(key=lambda c: c.start_after or c.start_before)
    return changes


def _value_change(status, old, new) -> ValueChange:
    return ValueChange(
        status,
        old.start.isoformat() if old else None,
        new.start.isoformat() if new else None,
        plain(old.value) if old else None,
        plain(new.value) if new else None,
        old.reference if old else None,
        new.reference if new else None,
    )


def _parameter_summary(parameter: Parameter) -> dict[str, Any]:
    return {
        "type": str(parameter.type.kind),
        "unit": parameter.unit,
        "description": parameter.description,
        "values": [
            {"from": v.start.isoformat(), "value": plain(v.value), "reference": v.reference}
            for v in parameter.values
        ],
    }


# -- rules ------------------------------------------------------------------------------------------
def _rule_fields(old: Rule, new: Rule, policy_rounding: tuple[Rounding, Rounding] = (YUAN, YUAN)):
    """``policy_rounding``: the policies' own, before and after: a finding following its
    policy's on both sides changes its rounding with the header, reported there."""
    fields = _compare([
        ("title", old.title, new.title),
        ("citation.document", old.citation.document, new.citation.document),
        ("citation.article", old.citation.article, new.citation.article),
        ("citation.text", old.citation.text, new.citation.text),
    ])
    if render(old.condition) != render(new.condition):
        fields.append(FieldChange("condition", old.condition_text.strip(), new.condition_text.strip()))
    for index in range(max(len(old.findings), len(new.findings))):
        a = old.findings[index] if index < len(old.findings) else None
        b = new.findings[index] if index < len(new.findings) else None
        where = f"findings[{index}]"
        if a is None or b is None:
            fields.append(FieldChange(where, _finding_text(a), _finding_text(b)))
            continue
        if render(a.amount) != render(b.amount):
            fields.append(FieldChange(f"{where}.amount", a.amount_text.strip(), b.amount_text.strip()))
        fields += _compare([(f"{where}.kind", a.kind.value, b.kind.value), (f"{where}.payer", a.payer, b.payer)])
        if a.rounding != b.rounding and (a.rounding, b.rounding) != policy_rounding:
            fields.append(FieldChange(f"{where}.rounding", str(a.rounding), str(b.rounding)))
    for index in range(max(len(old.sanctions), len(new.sanctions))):
        a = old.sanctions[index] if index < len(old.sanctions) else None
        b = new.sanctions[index] if index < len(new.sanctions) else None
        where = f"sanctions[{index}]"
        if a is None or b is None:
            fields.append(FieldChange(where, _sanction_text(a), _sanction_text(b)))
            continue
        fields += _compare([(f"{where}.list", a.list, b.list), (f"{where}.reason", a.reason, b.reason)])
    return fields, ()


def _finding_text(spec) -> str | None:
    if spec is None:
        return None
    return f"{spec.kind.value}: {spec.amount_text.strip()} (payer: {spec.payer})"


def _sanction_text(spec) -> str | None:
    return None if spec is None else f"{spec.list}: {spec.reason}"


def _rule_summary(rule: Rule) -> dict[str, Any]:
    return {
        "title": rule.title,
        "condition": rule.condition_text.strip(),
        "findings": [
            {"kind": f.kind.value, "amount": f.amount_text.strip(), "payer": f.payer} for f in rule.findings
        ],
        "sanctions": [{"list": s.list, "reason": s.reason} for s in rule.sanctions],
        "citation": {"document": rule.citation.document, "article": rule.citation.article, "text": rule.citation.text},
    }


# -- test cases -------------------------------------------------------------------------------------
def _test_fields(old: TestCase, new: TestCase):
    return _compare([
        ("as_of", old.as_of, new.as_of),
        ("given", old.given, new.given),
        ("expect.findings", _expected(old.findings), _expected(new.findings)),
        ("expect.sanctions", _expected(old.sanctions), _expected(new.sanctions)),
        ("expect.total_yuan", old.total_yuan, new.total_yuan),
    ]), ()


def _expected(items) -> list[dict[str, Any]] | None:
    if items is None:
        return None
    # what the case says, not where it says it (spans are not part of equality)
    return [{k: v for k, v in attrs.asdict(item, filter=lambda field, _: field.eq).items() if v is not None} for item in items]


__all__ = [
    "ADDED", "CHANGED", "MOVED", "REMOVED", "FieldChange", "ItemChange", "PolicyChange",
    "PolicyDiff", "ValueChange", "diff_policies", "diff_policy", "plain",
]
