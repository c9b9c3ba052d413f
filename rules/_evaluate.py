"""Evaluate a typed expression tree on Python values, exactly.

This is the reference semantics of the language (see ``_types.py`` for representations):
integers are Python ints; decimals are read as :class:`Decimal` (facts, parameters, literals)
and every decimal result is an exact :class:`Fraction`: no intermediate result is ever
rounded, so ``a * b / c`` and ``a / c * b`` are equal. Rounding happens only where the language
says so: round(), floor(), ceil(), and a finding's amount, rounded once to its policy's
declared unit (``_money.py``, :func:`finding_amount`). Nothing is ever passed to ``eval``. The
checker has already ruled out type errors, division by zero and overflow, so evaluation
cannot fail on valid input.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from . import _ast as ast
from . import _calendar as calendar
from ._money import produced, round_by
from ._types import Kind
from ._workdays import FUNCTIONS as WORKDAY_FUNCTIONS


class EmptyValueError(LookupError):
    """An optional fact was read where it is empty. The checker proves this cannot happen in
    a loaded policy; the durable compiler relies on it to leave a derived field out."""


def evaluate(node: ast.Node, env: Mapping[str, Any]) -> Any:
    """The value of ``node`` with names bound by ``env`` (facts, parameters, built-ins)."""
    return _EVALUATORS[type(node)](node, env)


def _literal(node: ast.Literal, env):
    return node.value


def _name(node: ast.Name, env):
    try:
        value = env[node.name]
    except KeyError:
        raise KeyError(f"no value bound for {node.name!r}") from None
    if value is None:
        raise EmptyValueError(f"{node.name!r} is empty in this record")
    return value


def _unary(node: ast.Unary, env):
    value = evaluate(node.operand, env)
    return (not value) if node.op == "not" else -value


def _numeric_result(node: ast.Node, exact: Fraction):
    return exact if node.type.kind is Kind.DECIMAL else int(exact)


def finding_amount(spec, env: Mapping[str, Any]):
    """The amount of a finding (``FindingSpec``): its expression's exact value rounded once,
    by the rounding its policy declares, in yuan (an int, or a Decimal for fen)."""
    return produced(evaluate(spec.amount, env), spec.rounding)


def _binary(node: ast.Binary, env):
    left, right = evaluate(node.left, env), evaluate(node.right, env)
    if isinstance(left, dt.date) or isinstance(right, dt.date):
        if isinstance(left, dt.date) and isinstance(right, dt.date):
            return (left - right).days
        if node.op == "+":
            return left + dt.timedelta(days=right) if isinstance(left, dt.date) else right + dt.timedelta(days=left)
        return left - dt.timedelta(days=right)
    if node.op == "+":
        exact = Fraction(left) + Fraction(right)
    elif node.op == "-":
        exact = Fraction(left) - Fraction(right)
    elif node.op == "*":
        exact = Fraction(left) * Fraction(right)
    else:
        exact = Fraction(left) / Fraction(right)
    return _numeric_result(node, exact)


def _compare(node: ast.Compare, env):
    left, right = evaluate(node.left, env), evaluate(node.right, env)
    if node.left.type.numeric and node.right.type.numeric:  # Decimal beside Fraction: compare exactly
        left, right = Fraction(left), Fraction(right)
    op = node.op
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right


def _boolop(node: ast.BoolOp, env):
    if node.op == "and":
        return all(evaluate(operand, env) for operand in node.operands)
    return any(evaluate(operand, env) for operand in node.operands)


def _in(node: ast.In, env):
    item = evaluate(node.item, env)
    if node.item.type.numeric:
        item = Fraction(item)
    found = any(item == evaluate(option, env) for option in node.options)
    return found != node.negated


def _call(node: ast.Call, env):
    function = node.function
    if function == "if":  # only the branch taken is read: the other may read an empty fact
        taken = node.args[1] if evaluate(node.args[0], env) else node.args[2]
        return _coerce(node, evaluate(taken, env))
    if function == "is_set":
        return env.get(node.args[0].name) is not None
    if function in ast.RESULT_FUNCTIONS:  # set by the evaluator as it judges rules in order
        return env[ast.result_key(function, node.args[0].name)]
    if function == "value_or":
        value = env.get(node.args[0].name)
        return _coerce(node, evaluate(node.args[1], env) if value is None else value)
    args = [evaluate(arg, env) for arg in node.args]
    if function in WORKDAY_FUNCTIONS:  # the checker appended the folder's holiday table
        return args[-1].call(function, args[:-1])
    if function == "add_months":
        return calendar.add_months(args[0], args[1], args[2])
    if function == "add_years":
        return calendar.add_years(args[0], args[1], args[2])
    if function in ("min", "max"):
        chosen = (min if function == "min" else max)(args)
        return _coerce(node, chosen)
    if function == "abs":
        return abs(args[0])
    return round_by(args[0], {"round": "half_up", "floor": "floor", "ceil": "ceil"}[function])


def _coerce(node: ast.Node, value):
    """An integer chosen where the node's type is decimal becomes an exact decimal."""
    if node.type is not None and node.type.kind is Kind.DECIMAL:
        return Fraction(value)
    return value


_EVALUATORS = {
    ast.Literal: _literal,
    ast.Name: _name,
    ast.Unary: _unary,
    ast.Binary: _binary,
    ast.Compare: _compare,
    ast.BoolOp: _boolop,
    ast.In: _in,
    ast.Call: _call,
}
