"""The checker's calls of acts and time: optional facts, other rules' results, periods.

A mixin of ``_check._Checker``, kept apart so that the checker reads in one sitting:

* ``is_set(fact)`` / ``value_or(fact, default)``: the only reads of an optional fact that need
  no guard (the guards themselves are ``_check.known_set``);
* ``amount_of(rule)`` / ``fired(rule)``: a result of a rule judged before (``_rule_order.py``);
* ``add_days`` and ``days_between``, checked as calls and compiled to '+' and '-';
  ``add_months`` / ``add_years`` with their rounding mode written down (``_calendar.py``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from fractions import Fraction

import attrs

from . import _ast as ast
from ._ast import RESULT_FUNCTIONS, result_key
from ._calendar import DAY_COUNTS, INCLUSIVE, MONTH_END, ROUNDING_MODES
from ._errors import PolicyTypeError
from ._types import BOOLEAN, DATE, DECIMAL, INTEGER, STRING


def _combine(op: str, left: ast.Interval, right: ast.Interval) -> ast.Interval:
    if left is None or right is None:
        return None
    if op == "+":
        return (left[0] + right[0], left[1] + right[1])
    if op == "-":
        return (left[0] - right[1], left[1] - right[0])
    if op == "*":
        products = [a * b for a in left for b in right]
        return (min(products), max(products))
    if op == "/":
        quotients = [Fraction(a) / b for a in left for b in right]
        return (min(quotients), max(quotients))
    raise AssertionError(op)


class CallChecks:
    """The calls of acts and time; the methods they use (visit, _finish ...) are _Checker's."""

    def _optional_call(self, node: ast.Call) -> ast.Node:
        """is_set(fact) and value_or(fact, default): the only reads of an optional fact that
        need no guard."""
        usage = "is_set(fact)" if node.function == "is_set" else "value_or(fact, default)"
        self._arity(node, node.args, 1 if node.function == "is_set" else 2)
        name = node.args[0]
        symbol = self.scope.get(name.name) if isinstance(name, ast.Name) else None
        if symbol is None or symbol.kind != "fact":
            raise PolicyTypeError(f"{node.function}() takes the name of a fact: {usage}", name.span)
        if not symbol.optional:
            raise PolicyTypeError(
                f"{name.name!r} is never empty (its fact is not declared 'optional: true'), "
                f"so {node.function}() would change nothing",
                name.span,
            )
        fact = attrs.evolve(name, type=symbol.type, kind="fact", interval=symbol.interval, scale=symbol.scale)
        if node.function == "is_set":
            return attrs.evolve(node, args=(fact,), type=BOOLEAN)
        default = self.visit(node.args[1])
        fact, default = self._same_kind(node, fact, default, "the default of value_or() must be")
        result = default.type if default.type == DECIMAL else fact.type
        interval = None
        if fact.interval and default.interval:
            interval = (min(fact.interval[0], default.interval[0]), max(fact.interval[1], default.interval[1]))
        return self._bounded(attrs.evolve(node, args=(fact, default), type=result, interval=interval))

    def _result_call(self, node: ast.Call) -> ast.Node:
        """amount_of(rule) and fired(rule): the result of a rule judged before this one. The
        loader orders the rules by these reads, so the rule read is already in scope."""
        self._arity(node, node.args, 1)
        (name,) = node.args
        if not isinstance(name, ast.Name):
            raise PolicyTypeError(f"{node.function}() takes the id of a rule of this policy", name.span)
        symbol = self.scope.get(result_key(node.function, name.name))
        if symbol is None:
            rules = sorted(key.split(":", 1)[1] for key in self.scope if key.startswith(f"{node.function}:"))
            close = difflib.get_close_matches(name.name, rules, n=1, cutoff=0.6)
            raise PolicyTypeError(
                f"{name.name!r} is not a rule of this policy whose result can be read"
                + (f" (rules: {', '.join(rules)})" if rules else ""),
                name.span, suggestion=close[0] if close else None,
            )
        typed_name = attrs.evolve(name, type=symbol.type, kind="result", interval=symbol.interval, scale=symbol.scale)
        return attrs.evolve(node, args=(typed_name,), type=symbol.type, interval=symbol.interval, scale=symbol.scale)

    def _same_kind(self, node, first: ast.Node, second: ast.Node, message: str) -> tuple[ast.Node, ast.Node]:
        a, b = first.type, second.type
        if (a.numeric and b.numeric) or a == b:
            return first, second
        if a.categorical and b.categorical:
            return self._categorical_pair(first, second)
        raise PolicyTypeError(f"{message} {a}, like the fact, but this is {b}", second.span)

    def _day_arithmetic(self, node: ast.Call) -> ast.Node:
        """add_days() and days_between() are plain date arithmetic, named so that no rule
        subtracts dates by hand: they are checked here and compile to '+' and '-'."""
        if node.function == "add_days":
            self._arity(node, node.args, 2)
            day, days = (self.visit(arg) for arg in node.args)
            self._require(day, DATE, "the first argument of add_days() is a date")
            self._require(days, INTEGER, "the second argument of add_days() is a whole number of days")
            return _origin(self._date_arithmetic(ast.Binary("+", day, days, span=node.span), day, days), "add_days")
        self._arity(node, node.args, 3)
        first, last = (self.visit(arg) for arg in node.args[:2])
        for arg in (first, last):
            self._require(arg, DATE, "days_between() counts the days between two dates")
        count = self._mode(node.args[2], DAY_COUNTS, "day count of days_between()")
        days = self._date_arithmetic(ast.Binary("-", last, first, span=node.span), last, first)
        if count != INCLUSIVE:
            return _origin(days, f"days_between:{count}")
        one = self.visit_Literal(ast.Literal(1, span=node.span))
        interval = _combine("+", days.interval, one.interval)
        return _origin(self._finish(ast.Binary("+", days, one, span=node.span, type=INTEGER, interval=interval)),
                       f"days_between:{count}")

    def _mode(self, node: ast.Node, modes: Mapping[str, str], what: str) -> str:
        if not isinstance(node, ast.Literal) or node.value not in modes:
            written = repr(node.value) if isinstance(node, ast.Literal) else "an expression"
            close = difflib.get_close_matches(str(getattr(node, "value", "")), modes, n=1, cutoff=0.5)
            raise PolicyTypeError(
                f"the {what} must be written as one of " + ", ".join(f"'{m}'" for m in modes) + f" (got {written})",
                node.span,
                suggestion=close[0] if close else None,
            )
        return node.value

    def call_add_months(self, node, args):
        return self._add_months(node, args, 1)

    def call_add_years(self, node, args):
        return self._add_months(node, args, 12)

    def _add_months(self, node, args, months_per_unit: int):
        self._arity(node, args, 2, 3)
        unit = "months" if months_per_unit == 1 else "years"
        day, count = args[:2]
        self._require(day, DATE, f"the first argument of {node.function}() is a date")
        self._require(count, INTEGER, f"the second argument of {node.function}() is a whole number of {unit}")
        mode = self._mode(args[2], ROUNDING_MODES, f"rounding of {node.function}()") if len(args) == 3 else MONTH_END
        mode_node = attrs.evolve(ast.Literal(mode, span=node.span), type=STRING)
        # A month is 28 to 31 days; a month-end or next-day rounding moves at most 3 more.
        low_months, high_months = count.interval[0] * months_per_unit, count.interval[1] * months_per_unit
        interval = (
            day.interval[0] + min(low_months * 28, low_months * 31) - 3,
            day.interval[1] + max(high_months * 28, high_months * 31) + 3,
        )
        return self._finish(attrs.evolve(node, args=(day, count, mode_node), type=DATE, interval=interval))


def _origin(node: ast.Node, origin: str) -> ast.Node:
    """``node`` marked as written by ``origin`` (a folded constant is left as it is)."""
    return attrs.evolve(node, origin=origin) if isinstance(node, ast.Binary) else node


__all__ = ["RESULT_FUNCTIONS", "CallChecks", "result_key"]
