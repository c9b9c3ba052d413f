"""What placed a case's amount, kept in the results store: the roll-ups its rule read and the
whole-number steps of its computation (issue 9 point 7: the discretion's factor levels).

``explain`` of a case shows, for a rule that fired, the facts it read (a roll-up such as
prior_offences_2y, "offences in the 2 years before the act", among them) and each named
value (``values:``) its condition and amounts computed on the way they took (an ``if``'s
branch taken, ``value_or``'s default where the fact is empty, ``and``/``or`` as far as
read: rules/_steps.py). A run keeps the same per case finding, so that an auditor reading the
store sees why that amount: each roll-up the rule reads, and each named value of integer
type the trace shows (the levels 1-5, the count of factors given). Decimal steps (the share
of the range, the placed amount before rounding) are not kept: explain shows them exactly,
the store would have to round them.

Computed with columns: the roll-ups are the stage's own columns; the named values by a small
program per statute (policy id) of the batch kernel, one rule per value (its amount the
value) and one per value and rule whose condition is the way to it (the ``if`` conditions,
``not is_set`` of a ``value_or``'s fact, the operands before it in ``and``/``or``), scored
only on the rows whose rule fired, by the law that judged them (行政处罚法 art 37: the version
of the act, or the lighter one of the decision: ``_law.py``). Only the first finding of a rule
carries them (its other findings share the rule's trace).

In the store (version 13): ``factor_chunks`` rows ``[case_id, {name: value, ...}]`` per
finding slot, read through the ``case_factors`` view (run_id, case_id, policy, rule, name,
value).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules import (
    ENTERPRISE,
    EcorulesError,
    FindingKind,
    Kind,
    Policy,
    check,
    parse_expression,
)
from ecorules.rules import _ast as ast
from ecorules.rules._arrow import from_bools, from_numbers, string_scalar, strings
from ecorules.rules._schema import Citation, FindingSpec, Rule, scope_of
from ecorules.rules._steps import text
from ecorules.rules._types import BOOLEAN
from ecorules.rules._values import ValueSymbol

from .. import _law_notes as law_notes


@dataclass
class _SlotFactors:
    rollups: tuple[str, ...]  # the roll-ups the rule reads
    values: tuple[str, ...]  # its policy's integer named values on the rule's trace


@dataclass
class _Statute:
    """The program computing one statute's named values, and where each is in it."""

    program: object
    value_row: dict[tuple[str, str], int] = field(default_factory=dict)  # (policy key, value) -> finding slot
    walk_rule: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (key, rule, value) -> rule row


@dataclass
class FactorPlan:
    """Per finding slot of the case program (its first finding of a rule), what is kept."""

    slots: dict[int, _SlotFactors]
    statutes: dict[str, _Statute]


def factor_plan(plan, compile_program: Callable) -> FactorPlan | None:
    """What a run keeps per case finding (None: no rule reads a roll-up or an integer value)."""
    program = plan.case_program
    if program is None:
        return None
    rollups = {*plan.onto_cases, *plan.onto_parent}
    policies = {p.key: p for p in plan.case_policies}
    slots: dict[int, _SlotFactors] = {}
    walks: dict[str, dict[str, dict[str, list]]] = {}  # policy key -> rule -> value -> paths
    for k, slot in enumerate(program.findings):
        if slot.index != 0:
            continue
        policy = policies[slot.policy_key]
        rule = next(r for r in policy.rules if r.id == slot.rule_id)
        paths: dict[str, list] = {}
        # what explain's trace walks of a rule that fired (engine/_evaluator._steps)
        dates = [node for spec in (*rule.sanctions, *rule.lifts) for node in (spec.start, spec.end) if node is not None]
        for node in (rule.condition, *(f.amount for f in rule.findings), *dates):
            _paths(node, (), paths)
        values = tuple(name for name in paths if _whole(policy, name))
        read = tuple(name for name in rule.reads() if name in rollups)
        if values or read:
            slots[k] = _SlotFactors(read, values)
        if values:
            walks.setdefault(policy.key, {})[rule.id] = {name: paths[name] for name in values}
    if not slots:
        return None
    statutes: dict[str, _Statute] = {}
    by_id: dict[str, list[Policy]] = {}
    for key in walks:
        by_id.setdefault(policies[key].id, []).append(policies[key])
    for statute, versions in by_id.items():
        try:
            statutes[statute] = _statute(versions, walks, plan, compile_program)
        except EcorulesError:  # a way the kernel cannot take: the values of this statute are not kept
            for k, entry in slots.items():
                if program.findings[k].policy_key in {p.key for p in versions}:
                    slots[k] = _SlotFactors(entry.rollups, ())
    return FactorPlan({k: s for k, s in slots.items() if s.rollups or s.values}, statutes)


def _whole(policy: Policy, name: str) -> bool:
    """A named value of integer type that is never negative (a level, a count)."""
    spec = policy.values.get(name)
    if spec is None or spec.node.type.kind is not Kind.INTEGER:
        return False
    interval = spec.node.interval
    return interval is not None and interval[0] >= 0


def _paths(node: ast.Node, path: tuple[str, ...], found: dict[str, list]) -> None:
    """Each named value under ``node`` with the conditions on the way to it (texts), as
    rules/_steps._walk takes them."""
    if node.origin is not None and node.origin.startswith("value:"):
        found.setdefault(node.origin.removeprefix("value:").partition("|")[0], []).append(path)
    if isinstance(node, ast.Call) and node.function == "if":
        condition = text(node.args[0])
        _paths(node.args[0], path, found)
        _paths(node.args[1], (*path, condition), found)
        _paths(node.args[2], (*path, f"not {condition}"), found)
    elif isinstance(node, ast.Call) and node.function == "value_or":
        _paths(node.args[1], (*path, f"not is_set({node.args[0].name})"), found)
    elif isinstance(node, ast.BoolOp):
        before: tuple[str, ...] = ()
        for operand in node.operands:
            _paths(operand, (*path, *before), found)
            written = text(operand)
            before = (*before, written if node.op == "and" else f"not {written}")
    else:
        for child in ast.children(node):
            _paths(child, path, found)


def _statute(versions: list[Policy], walks: dict, plan, compile_program: Callable) -> _Statute:
    kinds = {name: attrs.evolve(k, checks=()) for name, k in next(iter(versions)).kinds.items()}
    built, value_rows, walk_rows = [], [], []
    for policy in versions:
        scope = scope_of(policy.facts, policy.parameters)
        scope.update({name: ValueSymbol(spec) for name, spec in policy.values.items()})
        true = check(parse_expression("true"), scope, BOOLEAN)
        rules = []
        used = dict.fromkeys(name for by_value in walks[policy.key].values() for name in by_value)
        for name in used:
            spec = policy.values[name]
            rules.append(Rule(f"value {name}", name, Citation("trace", name), true, "true",
                              findings=(FindingSpec(FindingKind.FEE, spec.node, name, ENTERPRISE),)))
            value_rows.append((policy.key, name))
        for rule_id, by_value in walks[policy.key].items():
            for name, paths in by_value.items():
                if any(not path for path in paths):
                    continue  # on every way through the rule
                written = " or ".join("(" + " and ".join(f"({c})" for c in path) + ")" for path in paths)
                rules.append(Rule(f"walk {rule_id} {name}", name, Citation("trace", written),
                                  check(parse_expression(written), scope, BOOLEAN), written))
                walk_rows.append((policy.key, rule_id, name))
        built.append(attrs.evolve(policy, rules=tuple(rules), checks=(), kinds=kinds))
    program = compile_program(built, domain=plan.kind.id)
    found = _Statute(program)
    finding_of = {(s.policy_key, s.rule_id): k for k, s in enumerate(program.findings)}
    rule_of = {(key, rule_id): r for r, (key, rule_id) in enumerate(program.rules)}
    found.value_row = {(key, name): finding_of[(key, f"value {name}")] for key, name in value_rows}
    found.walk_rule = {(key, rule_id, name): rule_of[(key, f"walk {rule_id} {name}")] for key, rule_id, name in walk_rows}
    return found


class CaseFactors:
    """The kept values of one partition's scored cases, computed when the store's writer asks
    for a slot's rows (``rows``, given the partition's ``CaseResults``, whose ``windowed`` the
    stage keeps for it). It holds no reference to the results: the results hold it, and a
    cycle between them kept each partition's case table alive until the cycle collector ran,
    two partitions at once (~170 MiB more peak RSS at 2 M cases, bench/cases.py)."""

    def __init__(self, factors: FactorPlan, stage):
        self.factors, self.stage = factors, stage
        self._scored: dict[str, tuple] = {}  # statute -> (its rows' positions in scored, outputs)

    def rows(self, results, k: int, picked: np.ndarray, keys: pa.Array, plain: bool = False) -> pa.Array | None:
        """The JSON rows ``[case_id, {...}]`` of finding slot ``k`` at its fired positions
        ``picked`` (of the scored rows of ``results``, the partition's ``CaseResults``), case
        ids ``keys`` (``plain``: known to hold nothing JSON escapes, as the chunk writer's
        scan of every case id found); None: nothing kept for it."""
        members = self.members(results, k, picked)
        return None if members is None else joined_rows(members, keys, plain)

    def members(self, results, k: int, picked: np.ndarray) -> list[tuple] | None:
        """What ``rows`` writes, before it is text: ``(name, values, shown or None)`` per
        member, each an array per position of ``picked``; None: nothing kept for it. (The
        text, ``joined_rows``, is made on the store writer's thread, engine/cases/_write.py.)"""
        entry = self.factors.slots.get(k)
        if entry is None or not picked.size:
            return None
        slot = self.stage.plan.case_program.findings[k]
        members = [(name, _rollup(results, name, picked), None) for name in entry.rollups]
        statute = slot.policy_key.rsplit("@", 1)[0]
        if entry.values and statute in self.factors.statutes:
            positions, outputs = self._statute(results, statute)
            if outputs is not None:
                at = np.searchsorted(positions, picked)
                compiled = self.factors.statutes[statute]
                for name in entry.values:
                    values = outputs.amounts[compiled.value_row[(slot.policy_key, name)]][at]
                    walked = outputs.valid[at].copy()
                    walk = compiled.walk_rule.get((slot.policy_key, slot.rule_id, name))
                    if walk is not None:
                        walked &= outputs.fired[walk][at].astype(bool)
                    members.append((name, values, walked))
        return members or None

    def _statute(self, results, statute: str) -> tuple[np.ndarray, _Outputs | None]:
        if statute not in self._scored:
            program = self.stage.plan.case_program
            key_rows = [r for r, (key, _rule) in enumerate(program.rules) if key.rsplit("@", 1)[0] == statute]
            positions = np.flatnonzero(np.asarray(results.result.fired)[key_rows].any(axis=0)).astype(np.int64)
            try:
                outputs = _scored_by_law(self.stage, results, statute, self.factors.statutes[statute].program, positions)
            except EcorulesError:  # (a working day outside the table on a way not taken): not kept
                outputs = None
            self._scored[statute] = (positions, outputs)
        return self._scored[statute]


def _rollup(results, name: str, picked: np.ndarray) -> np.ndarray:
    rows = results.scored[picked]
    if name in results.windowed:  # onto the case: a column of the partition's cases
        return results.windowed[name][rows]
    # onto the enterprise: the case's enterprise's
    return np.asarray(results.side.rollups[name])[results.cases.enterprise[rows]]


def _scored_by_law(stage, results, statute: str, program, positions: np.ndarray) -> _Outputs:
    """The rows ``positions`` (of the scored rows) by ``program``, each at the law that
    judged it: the period of its law date, or of its decision date where the statute's
    lighter later law applied (``LawResult.choices``); without dates, as of the run."""
    cases, side = results.cases, results.side
    rows = results.scored[positions]
    law = results.result
    choice = (getattr(law, "choices", None) or {}).get(statute)
    out = _Outputs(np.zeros((len(program.findings), positions.size), np.int64),
                   np.zeros((len(program.rules), positions.size), np.uint8), np.zeros(positions.size, bool))
    if choice is None:
        groups = [(np.arange(positions.size), None)]
    else:
        timeline = stage.plan.timeline
        lighter = choice.code[positions] == law_notes.LIGHTER
        period = timeline.period(np.where(lighter, law.decision_days[positions], law.law_days[positions]))
        groups = [(np.flatnonzero(period == p), timeline.day(p)) for p in np.unique(period).tolist()]
    for mine, day in groups:
        if not mine.size:
            continue
        columns = stage._joined(program, cases, side, rows[mine], results.windowed)
        part = program.score(columns, as_of=stage.as_of, threads=stage.threads, law_date=day)
        out.amounts[:, mine] = np.asarray(part.amounts)
        out.fired[:, mine] = np.asarray(part.fired)
        out.valid[mine] = np.asarray(part.valid, bool)
    return out


@dataclass
class _Outputs:
    amounts: np.ndarray  # int64 (findings, rows)
    fired: np.ndarray  # uint8 (rules, rows)
    valid: np.ndarray  # bool per row: not rejected


def joined_rows(members: list[tuple], keys: pa.Array, plain: bool = False) -> pa.Array:
    """The JSON rows ``[case_id, {...}]`` of ``members`` (``CaseFactors.members``) and case
    ids ``keys``, a row per key."""
    inner = pc.binary_join_element_wise(*(_member(*member) for member in members), string_scalar(","),
                                        null_handling="skip")
    return pc.binary_join_element_wise(string_scalar("["), _quoted(keys, plain), string_scalar(",{"), inner,
                                      string_scalar("}]"), string_scalar(""))


def _member(name: str, values: np.ndarray, shown: np.ndarray | None = None) -> pa.Array:
    """``"name":value`` per row; null (no member) where not ``shown`` (a value off the way
    the trace took)."""
    texts = pc.cast(from_numbers(values.astype(np.int64)), pa.string())
    if shown is not None:
        texts = pc.if_else(from_bools(shown), texts, pa.nulls(len(texts), pa.string()))
    return pc.binary_join_element_wise(string_scalar(f"{json.dumps(name)}:"), texts, string_scalar(""))


def _quoted(keys: pa.Array, plain: bool = False) -> pa.Array:
    """The case ids as JSON strings (``plain``: known to need no escapes, not searched again:
    the search took a third of the factors' CPU)."""
    keys = pc.cast(keys, pa.string())
    if plain or pc.all(pc.match_substring_regex(keys, r'^[^"\\\x00-\x1f]*$')).as_py() is not False:
        return pc.binary_join_element_wise(string_scalar('"'), keys, string_scalar('"'), string_scalar(""))
    return strings([json.dumps(k, ensure_ascii=False) for k in keys.to_pylist()])


__all__ = ["CaseFactors", "FactorPlan", "factor_plan"]
