"""The expression AST: small frozen nodes, each with the span of its text.

The parser builds untyped nodes (``type`` is None). The checker (``_check.py``) returns the
same tree with ``type`` set on every node, ``interval`` and ``scale`` on numeric and date nodes, and each
:class:`Name` resolved to a fact, a parameter or a built-in. Both evaluators, and the
compilers to durable-rules and to the kernel, read only typed trees.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._errors import Span
from ._types import Type

# An inclusive (low, high) range of the exact values a node can take; None when unknown
# or not numeric. Integers and dates as ints (dates in days), decimals as Fractions.
Interval = tuple[Any, Any] | None


@attrs.frozen
class Node:
    span: Span | None = attrs.field(kw_only=True, default=None, eq=False, repr=False)
    type: Type | None = attrs.field(kw_only=True, default=None)
    interval: Interval = attrs.field(kw_only=True, default=None, eq=False, repr=False)
    # Numbers: a whole number that every value of the node times it is an integer (1 for
    # integers; 10**4 for a decimal fact; a product multiplies its operands'). The batch
    # kernel holds the node exactly as value x scale; set by the checker.
    scale: int = attrs.field(kw_only=True, default=1, eq=False, repr=False)
    # What the policy wrote where the checker rewrote it: add_days() and days_between() become
    # '+' and '-' ("add_days", "days_between:inclusive"), so that the trace can say which
    # period was counted and how (_steps.py); no evaluator reads it.
    origin: str | None = attrs.field(kw_only=True, default=None, eq=False, repr=False)


@attrs.frozen
class Literal(Node):
    value: Any


@attrs.frozen
class Name(Node):
    name: str
    kind: str | None = None  # "fact", "parameter" or "builtin" once checked


@attrs.frozen
class Unary(Node):
    op: str  # "-" or "not"
    operand: Node


@attrs.frozen
class Binary(Node):
    op: str  # "+", "-", "*", "/"
    left: Node
    right: Node


@attrs.frozen
class Compare(Node):
    op: str  # "==", "!=", "<", "<=", ">", ">="
    left: Node
    right: Node


@attrs.frozen
class BoolOp(Node):
    op: str  # "and" or "or"
    operands: tuple[Node, ...]


@attrs.frozen
class In(Node):
    item: Node
    options: tuple[Node, ...]
    negated: bool = False


@attrs.frozen
class Call(Node):
    function: str  # see _check.FUNCTIONS
    args: tuple[Node, ...]


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary | Compare):
        return (node.left, node.right)
    if isinstance(node, BoolOp):
        return node.operands
    if isinstance(node, In):
        return (node.item, *node.options)
    if isinstance(node, Call):
        return node.args
    return ()


def walk(node: Node):
    """Every node of the tree, parents before children."""
    yield node
    for child in children(node):
        yield from walk(child)


def names(node: Node, kind: str | None = None) -> tuple[str, ...]:
    """The distinct names a tree reads, in order of first appearance (facts, parameters and
    built-ins; the rule ids of amount_of()/fired() only when asked for with kind="result")."""
    seen: dict[str, None] = {}
    for item in walk(node):
        if isinstance(item, Name) and (item.kind == kind if kind is not None else item.kind != "result"):
            seen.setdefault(item.name)
    return tuple(seen)


RESULT_FUNCTIONS = ("amount_of", "fired")  # a rule reading another rule's result


def result_key(function: str, rule_id: str) -> str:
    """The scope and environment key of a rule's result: rule ids never collide with facts."""
    return f"{function}:{rule_id}"


def results_read(node: Node) -> tuple[Call, ...]:
    """The amount_of(rule) and fired(rule) calls of a tree, parsed or typed."""
    return tuple(
        item for item in walk(node)
        if isinstance(item, Call) and item.function in RESULT_FUNCTIONS and len(item.args) == 1
        and isinstance(item.args[0], Name)
    )


def render(node: Node) -> str:
    """Canonical text of a tree, fully parenthesised where precedence could mislead."""
    if isinstance(node, Literal):
        value = node.value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return repr(value)
        if hasattr(value, "isoformat"):
            return f"date('{value.isoformat()}')"
        return str(value)
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Unary):
        return f"not {render(node.operand)}" if node.op == "not" else f"-{render(node.operand)}"
    if isinstance(node, Binary | Compare):
        return f"({render(node.left)} {node.op} {render(node.right)})"
    if isinstance(node, BoolOp):
        return "(" + f" {node.op} ".join(render(o) for o in node.operands) + ")"
    if isinstance(node, In):
        options = ", ".join(render(o) for o in node.options)
        return f"({render(node.item)} {'not in' if node.negated else 'in'} [{options}])"
    if isinstance(node, Call):
        return f"{node.function}({', '.join(render(a) for a in node.args)})"
    raise TypeError(f"not an expression node: {node!r}")
