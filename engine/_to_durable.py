"""Compile a policy's rule conditions into a durable-rules ruleset in the data form.

durable-rules compares a field of the asserted fact with a constant or with another field;
its left-hand side must be a field (../shared/notes/durable-rules.md). So a condition is
lowered as follows, and everything else becomes a *derived field* computed by the shared
expression evaluator before the fact is asserted:

- ``and``/``or`` become ``$and``/``$or``; ``not`` is pushed inward (De Morgan, flipped
  comparisons), because durable has no negation operator;
- ``fact <op> literal`` and ``fact <op> parameter`` compare fields (parameters are fields too,
  since their value depends on the date of evaluation and the ruleset is compiled once);
- ``x in [a, b]`` becomes ``x == a or x == b``;
- any other operand (``a + b``, ``if(...)``, ``round(...)``) is a derived field ``x_<n>``.

Values are sent as exact integers: decimals scaled by 10**4, dates as day numbers (durable
compares integers exactly up to 2**63 - 1, and the checker keeps every value inside int64).
Arithmetic is exact (no intermediate rounding), so a decimal operand may not be a whole
number of 10**-4 (``a / 3``, ``rate * rate``: the checker's ``scale`` says which): such a
comparison ``l <op> r`` is sent as the derived field sign(l - r), an exact -1, 0 or 1, and
durable compares that field with 0 by the same operator.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs
from ecorules.rules import Kind, Policy
from ecorules.rules import _ast as ast
from ecorules.rules._types import DECIMAL, DECIMAL_SCALE, date_to_days

from ._durable import _condition as _host_condition
from ._durable import _guarded as _host_guarded

ALWAYS = "k_true"  # a field every asserted fact carries with the value 1
FLIP = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
OPERATOR = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "!=": "$neq"}
MAX_BOOLEAN_NODES = 15  # durable's C core fails past this many $and/$or nodes per condition


FIELD_PREFIX = {"fact": "f_", "parameter": "p_", "builtin": "b_"}


def field_of(kind: str, name: str) -> str:
    """The fact field carrying a name: facts, parameters and built-ins never collide."""
    return FIELD_PREFIX[kind] + name


def wire(value: Any, scaled: bool = False) -> Any:
    """A Python value as durable receives it (exact integers, never floats)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, dt.date):
        return date_to_days(value)
    if isinstance(value, Decimal | Fraction):
        exact = Fraction(value) * DECIMAL_SCALE
        if exact.denominator != 1:  # the compiler sends such values as signs (_Lowering.compare)
            raise ValueError(f"{value} is not a whole number of 10**-4")
        return int(exact)
    if isinstance(value, int) and scaled:
        return value * DECIMAL_SCALE
    return value


@attrs.frozen
class Derived:
    """A field computed before assertion: ``field`` = value of ``node`` (scaled if asked)."""

    field: str
    node: ast.Node
    scaled: bool  # an integer compared with a decimal travels as value x 10**4
    sign: bool = False  # the node is a difference l - r: travels as its sign (-1, 0, 1)


@attrs.frozen
class CompiledRule:
    rule_id: str
    condition: dict  # durable data form
    derived: tuple[Derived, ...]


class _Lowering:
    def __init__(self, rule_index: int):
        self.rule_index = rule_index
        self.derived: list[Derived] = []

    def derive(self, node: ast.Node, scaled: bool, sign: bool = False) -> str:
        field = f"x_{self.rule_index}_{len(self.derived)}"
        self.derived.append(Derived(field, node, scaled, sign))
        return field

    def condition(self, node: ast.Node, negate: bool = False) -> dict:
        if isinstance(node, ast.Literal):
            return {ALWAYS: 1 if bool(node.value) != negate else 0}
        if isinstance(node, ast.Unary) and node.op == "not":
            return self.condition(node.operand, not negate)
        if isinstance(node, ast.BoolOp):
            op = node.op if not negate else ("or" if node.op == "and" else "and")
            return {f"${op}": [self.condition(o, negate) for o in node.operands]}
        if isinstance(node, ast.Compare):
            return self.compare(FLIP[node.op] if negate else node.op, node.left, node.right)
        if isinstance(node, ast.In):
            negated = node.negated != negate
            parts = [self.compare("!=" if negated else "==", node.item, o) for o in node.options]
            return parts[0] if len(parts) == 1 else {"$and" if negated else "$or": parts}
        # a boolean fact or parameter, or a boolean-valued if(): compare with true
        return {self.operand(node, scaled=False)["$m"]: not negate}

    def compare(self, op: str, left: ast.Node, right: ast.Node) -> dict:
        scaled = Kind.DECIMAL in (left.type.kind, right.type.kind)
        if scaled and any(DECIMAL_SCALE % side.scale for side in (left, right)):
            difference = attrs.evolve(ast.Binary("-", left, right, span=left.span), type=DECIMAL)
            field = self.derive(difference, scaled=False, sign=True)
            return {field: 0} if op == "==" else {OPERATOR[op]: {field: 0}}
        lhs, rhs = self.operand(left, scaled), self.operand(right, scaled)
        if not isinstance(lhs, dict):  # the left side must be a field: swap, mirroring op
            if not isinstance(rhs, dict):
                truth = _constant_compare(op, lhs, rhs)
                return {ALWAYS: 1 if truth else 0}
            lhs, rhs = rhs, lhs
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        field = lhs["$m"]
        if op == "==":
            return {field: rhs}
        return {OPERATOR[op]: {field: rhs}}

    def operand(self, node: ast.Node, scaled: bool) -> Any:
        """A field reference ``{"$m": name}`` or a constant."""
        if isinstance(node, ast.Literal):
            return wire(node.value, scaled and node.type.kind is Kind.INTEGER)
        if isinstance(node, ast.Name) and not (scaled and node.type.kind is Kind.INTEGER):
            return {"$m": field_of(node.kind, node.name)}
        return {"$m": self.derive(node, scaled and node.type.kind is Kind.INTEGER)}


def _constant_compare(op: str, left: Any, right: Any) -> bool:
    return {"==": left == right, "!=": left != right, "<": left < right, "<=": left <= right,
            ">": left > right, ">=": left >= right}[op]


def _boolean_nodes(condition: dict) -> int:
    ((key, arg),) = condition.items()
    return 1 + sum(map(_boolean_nodes, arg)) if key in ("$and", "$or") else 0


def _durable_boolean_nodes(condition: dict) -> int:
    """The $and/$or nodes durable will hold: DurableHost wraps each field-to-field comparison
    under an $or in an $and with an $ex guard, so ``a == p or b == p or ...`` grows by one node
    per branch, and the limit applies to that form."""
    rewritten, _, guards = _host_condition(condition, "condition")
    return _boolean_nodes(_host_guarded(rewritten, guards))


def compile_rule(rule_index: int, rule_id: str, condition: ast.Node) -> CompiledRule:
    lowering = _Lowering(rule_index)
    lowered = lowering.condition(condition)
    if _durable_boolean_nodes(lowered) > MAX_BOOLEAN_NODES:
        # Too deep for durable's C core: let the evaluator compute the truth value and have
        # durable test the one boolean field. Rare; the shipped policies never need it.
        lowering = _Lowering(rule_index)
        lowered = {lowering.derive(condition, scaled=False): True}
    return CompiledRule(rule_id, lowered, tuple(lowering.derived))


CHECK_PREFIX = "check:"  # a check's entry in the ruleset: no rule id contains ':'


def check_entry(check_id: str) -> str:
    """The ruleset entry of a check: it fires where the check holds."""
    return CHECK_PREFIX + check_id


def compile_policy(policy: Policy) -> tuple[dict, tuple[CompiledRule, ...]]:
    """The ruleset (rule id -> definition) and what each rule needs computed beforehand.
    A check is one more entry (``check:<id>``) whose condition is where it holds."""
    compiled = tuple(compile_rule(i, rule.id, rule.condition) for i, rule in enumerate(policy.rules))
    compiled += tuple(compile_rule(len(policy.rules) + i, check_entry(c.id), c.holds)
                      for i, c in enumerate(policy.checks))
    ruleset = {c.rule_id: {"all": [{"m": c.condition}]} for c in compiled}
    return ruleset, compiled
