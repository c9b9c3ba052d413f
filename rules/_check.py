"""Load-time checking of expressions: names, types, value ranges, constant folding.

Everything that can go wrong with an expression is found here, before any record is seen:
unknown names (with the closest known name suggested), type errors, an enum compared with a
value it cannot take, a division whose divisor could be zero, and arithmetic that could leave
the int64 range of the batch kernel. The last is an interval analysis over the declared
ranges of facts and all dated values of parameters; it is what lets the kernel run without
per-row error checks, and both evaluators agree because neither can overflow.

An amount is only *used* when its rule's condition holds, so ``check(..., when=condition)``
also gives the amount's own (root) interval as narrowed by the condition (``_narrow.py``):
``when: n >= 2`` makes ``n - 1`` non-negative. The narrowed ranges serve only that root
interval: what the loader refuses as "can be negative", and the bound of row totals. Every
check that protects the arithmetic itself (int64 overflow, date range, divisor zero) and
every inner node's interval keep the declared ranges, because the batch kernel computes an
amount on *every* row of a block, the rows where the condition is false included, and only
then masks it with the rule's fired flag (fastcalc: AMOUNT); the reference evaluator also
computes both branches of an if(). So narrowing can never let an overflow through.
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction

import attrs

from . import _ast as ast
from ._ast import result_key
from ._check_calls import RESULT_FUNCTIONS, CallChecks, _combine
from ._errors import PolicyTypeError
from ._narrow import Contradiction, narrow
from ._types import (
    BOOLEAN,
    DATE,
    DATE_MAX,
    DATE_MIN,
    DECIMAL,
    DECIMAL_PLACES,
    DECIMAL_SCALE,
    INT64_MAX,
    INT64_MIN,
    INTEGER,
    STRING,
    Kind,
    Type,
    date_to_days,
    to_decimal,
)
from ._workdays import FUNCTIONS as WORKDAY_FUNCTIONS
from ._workdays import WorkdayChecks

FUNCTIONS = {
    "min": "the smallest of two or more numbers or dates",
    "max": "the largest of two or more numbers or dates",
    "abs": "the absolute value of a number",
    "round": "a decimal rounded to whole units, halves away from zero (四舍五入)",
    "floor": "a decimal rounded down to whole units",
    "ceil": "a decimal rounded up to whole units",
    "if": "if(condition, value_when_true, value_when_false)",
    "date": "a date literal: date('2012-04-14')",
    "add_days": "add_days(date, days): the date that many days later (earlier when negative)",
    "add_months": "add_months(date, months[, 'month_end'|'next_day']): the corresponding day, "
                  "or as the mode says when there is none (民法典 art 202: 'month_end', the default)",
    "add_years": "add_years(date, years[, mode]): twelve months a year, as add_months",
    "days_between": "days_between(first, last, 'inclusive'|'exclusive'): days from first to last; "
                    "'exclusive' leaves out the first day (民法典 art 201)",
    "is_set": "is_set(fact): whether an optional fact has a value in this record",
    "value_or": "value_or(fact, default): an optional fact's value, or the default when it is empty",
    "amount_of": "amount_of(rule): the amount another rule of this policy found on this record (0 when it did not fire)",
    "fired": "fired(rule): whether another rule of this policy fired on this record",
    **WORKDAY_FUNCTIONS,
}

@attrs.frozen
class Symbol:
    """What a name means inside a policy: its type and the range of values it can hold."""

    kind: str  # "fact", "parameter" or "builtin"
    type: Type
    interval: ast.Interval = None
    optional: bool = False  # a fact a record may leave empty: read only under is_set()
    # value x scale is always an integer (ast.Node.scale): a decimal fact has four places
    scale: int = attrs.field(default=attrs.Factory(lambda self: DECIMAL_SCALE if self.type == DECIMAL else 1, takes_self=True))
    values: tuple | None = None  # a parameter's dated values (what a divisor can be)


Scope = Mapping[str, Symbol]


def check(
    node: ast.Node,
    scope: Scope,
    expect: Type | str | None = None,
    what: str = "expression",
    *,
    when: ast.Node | None = None,
    narrowed_range: bool = True,
) -> ast.Node:
    """Type-check ``node`` in ``scope``; return the typed, constant-folded tree.

    ``expect`` is a required type, or "numeric"; ``what`` names the expression in messages
    ("condition", "amount" ...). ``when``: the typed condition under which the value is used
    (a rule's amount); the returned root's interval is then the range of the value when the
    condition holds, while all checks of the arithmetic use the declared ranges (see the
    module's docstring); with ``narrowed_range=False`` the root keeps the declared range
    (what the kernel computes on every row), ``when`` then only proving optional facts set.
    """
    # An amount is only computed when its rule's condition holds: what the condition proves
    # present (``is_set(x) and ...``) may be read in the amount.
    guarded = known_set(when, True) if when is not None else frozenset()
    typed = _Checker(scope, guarded=guarded).visit(node)
    if expect is not None:
        ok = typed.type.numeric if expect == "numeric" else typed.type.kind == expect.kind
        if not ok:
            wanted = "a number" if expect == "numeric" else f"{expect}"
            hint = ""
            if expect == INTEGER and typed.type.kind is Kind.DECIMAL:
                hint = ": wrap it in round(), floor() or ceil()"
            raise PolicyTypeError(f"the {what} must be {wanted}, but this is {typed.type}{hint}", node.span)
    narrowed = None if when is None or typed.interval is None or not narrowed_range else assume(when, scope)
    if narrowed is not None:
        used = _Checker(narrowed, conditional=True, guarded=guarded).visit(node)
        low = max(typed.interval[0], used.interval[0])
        high = min(typed.interval[1], used.interval[1])
        typed = attrs.evolve(typed, interval=(low, high))
    return typed


def assume(condition: ast.Node, scope: Scope) -> Scope | None:
    """``scope`` with each fact's interval narrowed to what the typed ``condition`` guarantees,
    or None if the condition can never be true with the declared ranges.

    A rule that can never fire is loaded, not refused (a shared catalogue may narrow a range
    under a policy written before), with a warning (``Rule.never_applies``); its amount is then
    ranged as if it had no condition, which is the safe side.
    """
    facts = {name: s.interval for name, s in scope.items() if s.kind == "fact" and s.interval is not None}
    try:
        narrowed = narrow(condition, facts)
    except Contradiction:
        return None
    return {
        name: attrs.evolve(symbol, interval=narrowed[name]) if name in narrowed else symbol
        for name, symbol in scope.items()
    }


def known_set(node: ast.Node | None, holds: bool) -> frozenset[str]:
    """The optional facts certainly present whenever ``node`` evaluates to ``holds``: what a
    guard such as ``is_set(halted) and ...`` or ``not is_set(halted) or ...`` proves for the
    operands after it, and for the branches of an if()."""
    if node is None:
        return frozenset()
    if isinstance(node, ast.Call) and node.function == "is_set" and node.args and isinstance(node.args[0], ast.Name):
        return frozenset({node.args[0].name}) if holds else frozenset()
    if isinstance(node, ast.Unary) and node.op == "not":
        return known_set(node.operand, not holds)
    if isinstance(node, ast.BoolOp):
        parts = [known_set(operand, holds) for operand in node.operands]
        # 'and' true or 'or' false: every operand has that truth value, so each guard holds;
        # otherwise only what every operand proves on its own.
        if (node.op == "and") == holds:
            return frozenset().union(*parts)
        return frozenset.intersection(*parts)
    return frozenset()


def _literal_type(value) -> Type:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, str):
        return STRING
    if hasattr(value, "isoformat"):
        return DATE
    return DECIMAL


def _point(node: ast.Literal) -> ast.Interval:
    value = node.value
    if isinstance(value, bool) or isinstance(value, str):
        return None
    if hasattr(value, "isoformat"):
        days = date_to_days(value)
        return (days, days)
    return (Fraction(value), Fraction(value))


class _Checker(CallChecks, WorkdayChecks):
    """``conditional``: the pass for the range of a value *when used* (``check(when=...)``),
    in which an if() branch is also checked under its own condition (or its negation)."""

    def __init__(self, scope: Scope, conditional: bool = False, guarded: frozenset[str] = frozenset()):
        self.scope = scope
        self.conditional = conditional
        self.guarded = guarded  # optional facts proven present where this checker looks

    def _guarding(self, extra: frozenset[str]) -> _Checker:
        return self if extra <= self.guarded else _Checker(self.scope, self.conditional, self.guarded | extra)

    def visit(self, node: ast.Node) -> ast.Node:
        method = getattr(self, f"visit_{type(node).__name__}")
        return method(node)

    # -- leaves ------------------------------------------------------------------------------
    def visit_Literal(self, node: ast.Literal) -> ast.Node:
        kind = _literal_type(node.value)
        if kind == DECIMAL and -node.value.as_tuple().exponent > DECIMAL_PLACES:
            raise PolicyTypeError(
                f"{node.value} has more than {DECIMAL_PLACES} decimal places", node.span
            )
        if kind == DECIMAL:  # one written form per value: 2.5 and 2.50 both read 2.5000
            node = attrs.evolve(node, value=to_decimal(node.value))
        return self._bounded(attrs.evolve(node, type=kind, interval=_point(node)))

    def visit_Name(self, node: ast.Name) -> ast.Node:
        symbol = self.scope.get(node.name)
        if symbol is None:
            known = list(self.scope) + [f for f in FUNCTIONS]
            close = difflib.get_close_matches(node.name, known, n=1, cutoff=0.6)
            raise PolicyTypeError(
                f"unknown name {node.name!r}: not a fact, parameter or built-in of this policy",
                node.span,
                suggestion=close[0] if close else None,
            )
        if symbol.kind == "value":  # a named value of the policy (_values.py): its checked expression
            return symbol.inline()
        if symbol.optional and node.name not in self.guarded:
            raise PolicyTypeError(
                f"{node.name!r} may be empty in a record (it is optional): read it only where "
                f"it is known to be set, as in 'is_set({node.name}) and ...' or "
                f"if(is_set({node.name}), ..., ...), or give a default: value_or({node.name}, ...)",
                node.span,
            )
        return attrs.evolve(node, type=symbol.type, kind=symbol.kind, interval=symbol.interval, scale=symbol.scale)

    # -- operators ---------------------------------------------------------------------------
    def visit_Unary(self, node: ast.Unary) -> ast.Node:
        operand = self.visit(node.operand)
        if node.op == "not":
            self._require(operand, BOOLEAN, "'not' needs a true/false value")
            return self._fold(attrs.evolve(node, operand=operand, type=BOOLEAN))
        if not operand.type.numeric:
            raise PolicyTypeError(f"'-' needs a number, but this is {operand.type}", operand.span)
        interval = None if operand.interval is None else (-operand.interval[1], -operand.interval[0])
        return self._finish(attrs.evolve(node, operand=operand, type=operand.type, interval=interval))

    def visit_Binary(self, node: ast.Binary) -> ast.Node:
        left, right = self.visit(node.left), self.visit(node.right)
        if left.type.kind is Kind.DATE or right.type.kind is Kind.DATE:
            return self._date_arithmetic(node, left, right)
        for side in (left, right):
            if not side.type.numeric:
                raise PolicyTypeError(
                    f"{node.op!r} needs numbers, but this is {side.type}", side.span
                )
        if node.op == "/":
            self._check_divisor(right)
            result = DECIMAL
        elif DECIMAL in (left.type, right.type):
            result = DECIMAL
        else:
            result = INTEGER
        interval = _combine(node.op, left.interval, right.interval)
        return self._finish(attrs.evolve(node, left=left, right=right, type=result, interval=interval))

    def _date_arithmetic(self, node, left, right) -> ast.Node:
        if node.op == "-" and left.type == DATE and right.type == DATE:
            result = INTEGER
        elif node.op in "+-" and left.type == DATE and right.type == INTEGER:
            result = DATE
        elif node.op == "+" and left.type == INTEGER and right.type == DATE:
            result = DATE
        else:
            raise PolicyTypeError(
                f"cannot compute {left.type} {node.op} {right.type}: dates allow "
                "date + days, date - days and date - date (days between)",
                node.span,
            )
        interval = _combine(node.op, left.interval, right.interval)
        return self._finish(attrs.evolve(node, left=left, right=right, type=result, interval=interval))

    def _check_divisor(self, divisor: ast.Node) -> None:
        variable = [n for n in ast.names(divisor, "fact")] + [n for n in ast.names(divisor, "builtin")]
        if variable:
            raise PolicyTypeError(
                f"divide only by a constant or a parameter (this divisor reads {variable[0]!r}, "
                "which varies by record); compare by multiplying instead, e.g. 'a > b * 2'",
                divisor.span,
            )
        low, high = divisor.interval
        if low <= 0 <= high:
            raise PolicyTypeError("the divisor can be zero", divisor.span)

    def visit_Compare(self, node: ast.Compare) -> ast.Node:
        left, right = self.visit(node.left), self.visit(node.right)
        left, right = self._comparable(node, left, right)
        self._common_scale(node, (left, right))
        return self._fold(attrs.evolve(node, left=left, right=right, type=BOOLEAN))

    def _common_scale(self, node: ast.Node, operands) -> None:
        """Numbers compared are brought to one scale in the kernel: each must fit there."""
        if not all(operand.type.numeric and operand.interval is not None for operand in operands):
            return
        scale = math.lcm(*(operand.scale for operand in operands))
        for operand in operands:
            self._fits(operand, scale, node)

    def _comparable(self, node, left: ast.Node, right: ast.Node) -> tuple[ast.Node, ast.Node]:
        ordering = node.op not in ("==", "!=")
        if left.type.numeric and right.type.numeric:
            return left, right
        if left.type.kind is Kind.DATE and right.type.kind is Kind.DATE:
            return left, right
        if left.type == BOOLEAN and right.type == BOOLEAN and not ordering:
            return left, right
        if left.type.categorical and right.type.categorical and not ordering:
            return self._categorical_pair(left, right)
        if ordering and (left.type.categorical or left.type == BOOLEAN):
            raise PolicyTypeError(f"{left.type} values can only be compared with == or !=", node.span)
        raise PolicyTypeError(f"cannot compare {left.type} with {right.type}", node.span)

    def _categorical_pair(self, left: ast.Node, right: ast.Node) -> tuple[ast.Node, ast.Node]:
        for this, other in ((left, right), (right, left)):
            if this.type.kind is Kind.ENUM:
                if isinstance(other, ast.Literal):
                    if other.value not in this.type.choices:
                        close = difflib.get_close_matches(other.value, this.type.choices, n=1, cutoff=0.3)
                        raise PolicyTypeError(
                            f"{other.value!r} is not one of the values of {ast.render(this)}: "
                            + ", ".join(this.type.choices),
                            other.span,
                            suggestion=close[0] if close else None,
                        )
                    other = attrs.evolve(other, type=this.type)
                    return (this, other) if this is left else (other, this)
                if other.type != this.type:
                    raise PolicyTypeError(
                        f"cannot compare {ast.render(this)} (one of {len(this.type.choices)} values) "
                        f"with {ast.render(other)} ({other.type})",
                        other.span,
                    )
                return left, right
        # two strings: the batch kernel compares a string fact only with literal text
        if not (isinstance(left, ast.Literal) or isinstance(right, ast.Literal)):
            raise PolicyTypeError(
                "compare a text fact with a literal ('...'), not with another text value",
                left.span,
            )
        return left, right

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.Node:
        # Each operand is read only where the ones before it let the result stay open: after
        # true ones in an 'and', after false ones in an 'or'. Their guards carry forward.
        typed, guarded = [], frozenset()
        for operand in node.operands:
            typed.append(self._guarding(guarded).visit(operand))
            guarded |= known_set(operand, node.op == "and")
        operands = tuple(typed)
        for operand in operands:
            self._require(operand, BOOLEAN, f"'{node.op}' combines true/false values")
        return self._fold(attrs.evolve(node, operands=operands, type=BOOLEAN))

    def visit_In(self, node: ast.In) -> ast.Node:
        item = self.visit(node.item)
        options = []
        for option in node.options:
            option = self.visit(option)
            if not isinstance(option, ast.Literal) and not (isinstance(option, ast.Name) and option.kind == "parameter"):
                raise PolicyTypeError("list members must be literals or parameters", option.span)
            compare = ast.Compare("==", item, option, span=option.span)
            item, option = self._comparable(compare, item, option)
            options.append(option)
        self._common_scale(node, (item, *options))
        return self._fold(attrs.evolve(node, item=item, options=tuple(options), type=BOOLEAN))

    def visit_Call(self, node: ast.Call) -> ast.Node:
        if node.function not in FUNCTIONS:
            close = difflib.get_close_matches(node.function, FUNCTIONS, n=1, cutoff=0.5)
            raise PolicyTypeError(
                f"unknown function {node.function}(); known: {', '.join(FUNCTIONS)}",
                node.span,
                suggestion=close[0] if close else None,
            )
        if node.function == "date":
            return self._date_literal(node)
        if node.function in ("is_set", "value_or"):
            return self._optional_call(node)
        if node.function in RESULT_FUNCTIONS:
            return self._result_call(node)
        if node.function in ("add_days", "days_between"):
            return self._day_arithmetic(node)
        if node.function == "if" and len(node.args) == 3:
            condition = self.visit(node.args[0])
            branches = [self._guarding(known_set(node.args[0], holds)) for holds in (True, False)]
            if self.conditional and condition.type == BOOLEAN:
                taken = [self._under(condition, holds, branch) for holds, branch in zip((True, False), branches, strict=True)]
                when_true, when_false = ((checker or branch).visit(arg) for checker, branch, arg in zip(taken, branches, node.args[1:], strict=True))
                result = self.call_if(node, (condition, when_true, when_false))
                for checker, other in zip(taken, (when_false, when_true), strict=True):
                    if checker is None and result.interval is not None:  # this branch is never taken
                        result = attrs.evolve(result, interval=other.interval)
                return result
            args = (condition, *(branch.visit(arg) for branch, arg in zip(branches, node.args[1:], strict=True)))
            return self.call_if(node, args)
        args = tuple(self.visit(arg) for arg in node.args)
        return getattr(self, f"call_{node.function}")(node, args)

    def _date_literal(self, node: ast.Call) -> ast.Node:
        import datetime as dt

        if len(node.args) != 1 or not isinstance(node.args[0], ast.Literal) or not isinstance(node.args[0].value, str):
            raise PolicyTypeError("date() takes one text literal: date('2012-04-14')", node.span)
        try:
            value = dt.date.fromisoformat(node.args[0].value)
        except ValueError:
            raise PolicyTypeError(
                f"{node.args[0].value!r} is not a date in the form YYYY-MM-DD", node.args[0].span
            ) from None
        return self.visit_Literal(ast.Literal(value, span=node.span))

    def _arity(self, node, args, low, high=None) -> None:
        high = low if high is None else high
        if not low <= len(args) <= (high or len(args)):
            wanted = f"{low}" if low == high else (f"{low} or {high}" if high else f"at least {low}")
            raise PolicyTypeError(f"{node.function}() takes {wanted} arguments (got {len(args)})", node.span)

    def call_min(self, node, args):
        return self._extremum(node, args, min)

    def call_max(self, node, args):
        return self._extremum(node, args, max)

    def _extremum(self, node, args, pick):
        self._arity(node, args, 2, 0)
        if all(arg.type.kind is Kind.DATE for arg in args):
            result = DATE
        elif all(arg.type.numeric for arg in args):
            result = DECIMAL if any(arg.type == DECIMAL for arg in args) else INTEGER
        else:
            raise PolicyTypeError(f"{node.function}() needs numbers or dates, all of one kind", node.span)
        intervals = [arg.interval for arg in args]
        interval = None
        if all(intervals):
            interval = (pick(i[0] for i in intervals), pick(i[1] for i in intervals))
        return self._finish(attrs.evolve(node, args=args, type=result, interval=interval))

    def call_abs(self, node, args):
        self._arity(node, args, 1)
        (arg,) = args
        if not arg.type.numeric:
            raise PolicyTypeError("abs() needs a number", arg.span)
        low, high = arg.interval
        interval = (0 if low <= 0 <= high else min(abs(low), abs(high)), max(abs(low), abs(high)))
        return self._finish(attrs.evolve(node, args=args, type=arg.type, interval=interval))

    def call_round(self, node, args):
        return self._to_integer(node, args)

    def call_floor(self, node, args):
        return self._to_integer(node, args)

    def call_ceil(self, node, args):
        return self._to_integer(node, args)

    def _to_integer(self, node, args):
        self._arity(node, args, 1)
        (arg,) = args
        if not arg.type.numeric:
            raise PolicyTypeError(f"{node.function}() needs a number", arg.span)
        low, high = arg.interval
        interval = (Fraction(low).__floor__(), Fraction(high).__ceil__())
        return self._finish(attrs.evolve(node, args=args, type=INTEGER, interval=interval))

    def call_if(self, node, args):
        self._arity(node, args, 3)
        condition, when_true, when_false = args
        self._require(condition, BOOLEAN, "the first argument of if() is the condition")
        a, b = when_true.type, when_false.type
        if a.numeric and b.numeric:
            result = DECIMAL if DECIMAL in (a, b) else INTEGER
        elif a == b:
            result = a
        elif a.categorical and b.categorical:
            pair = self._categorical_pair(when_true, when_false)
            when_true, when_false = pair
            result = when_true.type if when_true.type.kind is Kind.ENUM else when_false.type
            args = (condition, when_true, when_false)
        else:
            raise PolicyTypeError(f"the two branches of if() differ: {a} and {b}", node.span)
        interval = None
        if when_true.interval and when_false.interval:
            interval = (min(when_true.interval[0], when_false.interval[0]),
                        max(when_true.interval[1], when_false.interval[1]))
        return self._finish(attrs.evolve(node, args=args, type=result, interval=interval))

    def _under(self, condition: ast.Node, holds: bool, branch: _Checker) -> _Checker | None:
        """The checker for an if() branch taken when ``condition`` is ``holds``; None when
        that can never happen (the branch is still type-checked, its range does not count)."""
        if not holds:
            condition = attrs.evolve(ast.Unary("not", condition, span=condition.span), type=BOOLEAN)
        scope = assume(condition, self.scope)
        return None if scope is None else _Checker(scope, conditional=True, guarded=branch.guarded)

    # -- shared ------------------------------------------------------------------------------
    def _require(self, node: ast.Node, wanted: Type, message: str) -> None:
        if node.type != wanted:
            raise PolicyTypeError(f"{message}, but this is {node.type}", node.span)

    def _finish(self, node: ast.Node) -> ast.Node:
        return self._fold(self._bounded(node))

    def _bounded(self, node: ast.Node) -> ast.Node:
        """Refuse a numeric or date node whose values may leave what the kernel can hold.

        The kernel holds a decimal exactly, as value x scale in int64 (``_exact_scale``):
        the node itself and every operand brought to its scale must fit."""
        if node.interval is None:
            return node
        if node.type == DECIMAL:
            node = attrs.evolve(node, scale=self._exact_scale(node))
            for operand in self._rescaled_operands(node):
                self._fits(operand, node.scale, node)
        elif node.type not in (INTEGER, DATE):
            return node
        self._fits(node, node.scale, node)
        return node

    def _fits(self, node: ast.Node, scale: int, where: ast.Node) -> None:
        low, high = node.interval
        if node.type == DATE:
            limits = (date_to_days(DATE_MIN), date_to_days(DATE_MAX))
        else:
            limits = (Fraction(INT64_MIN, scale), Fraction(INT64_MAX, scale))
        if low >= limits[0] and high <= limits[1]:
            return
        facts = [n for n in ast.names(node, "fact")]
        advice = f"; declare a smaller 'max'/'min' for {', '.join(map(repr, facts))}" if facts else ""
        exact = f" exactly (in units of 1/{scale:,})" if scale != 1 else ""
        raise PolicyTypeError(
            f"this {node.type} may reach {_show(low, node.type)} .. {_show(high, node.type)}, "
            f"beyond the range the batch kernel can hold{exact}{advice}",
            where.span,
        )

    def _exact_scale(self, node: ast.Node) -> int:
        """The least scale the kernel can hold this decimal at exactly, from its operands'."""
        if isinstance(node, ast.Literal):
            return Fraction(node.value).denominator
        if isinstance(node, ast.Name):
            return node.scale
        if isinstance(node, ast.Binary):
            left, right = node.left.scale, node.right.scale
            if node.op == "*":
                return left * right
            if node.op == "/":
                return left * self._divisor_scale(node.right)
            return math.lcm(left, right)
        if isinstance(node, ast.Call) and node.function in RESULT_FUNCTIONS:
            return self.scope[result_key(node.function, node.args[0].name)].scale
        return math.lcm(*(operand.scale for operand in self._rescaled_operands(node)), 1)

    @staticmethod
    def _rescaled_operands(node: ast.Node) -> tuple[ast.Node, ...]:
        """The numeric operands the kernel brings to ``node``'s own scale (sums, choices)."""
        if isinstance(node, ast.Binary) and node.op in "+-":
            return (node.left, node.right)
        if isinstance(node, ast.Unary):
            return (node.operand,)
        if isinstance(node, ast.Call) and node.function in ("min", "max", "abs", "value_or"):
            return node.args
        if isinstance(node, ast.Call) and node.function == "if":
            return node.args[1:]
        return ()

    def _divisor_scale(self, divisor: ast.Node) -> int:
        """x / v = x * q / p for v = p / q: the quotient is exact at x's scale times p, so at
        x's scale times the lcm of |p| over every value the divisor can take (its parameters'
        dated values; a parameter not set yet contributes nothing: its rules are not judged)."""
        from ._evaluate import evaluate

        if isinstance(divisor, ast.Literal):
            return abs(Fraction(divisor.value).numerator)
        names = ast.names(divisor, "parameter")
        choices = [self.scope[name].values or () for name in names]
        combinations = math.prod(len(c) for c in choices)
        if combinations > 4096:
            raise PolicyTypeError(
                f"this divisor can take {combinations:,} values over the dated values of its parameters: "
                "too many to hold the quotient exactly; divide by fewer parameters", divisor.span)
        scale = 1
        for values in itertools.product(*choices):
            scale = math.lcm(scale, abs(Fraction(evaluate(divisor, dict(zip(names, values, strict=True)))).numerator))
        return scale

    def _fold(self, node: ast.Node) -> ast.Node:
        """Replace an operator whose operands are all literals by its value."""
        if all(isinstance(child, ast.Literal) for child in ast.children(node)) and ast.children(node):
            from ._evaluate import evaluate
            from ._workdays import CalendarError

            try:
                value = evaluate(node, {})
            except CalendarError as error:  # working days between constant dates the table lacks
                raise PolicyTypeError(str(error), node.span) from None
            scale = Fraction(value).denominator if node.type == DECIMAL else 1
            return attrs.evolve(
                ast.Literal(value, span=node.span), type=node.type, interval=node.interval, scale=scale
            )
        return node


def _show(value, kind: Type) -> str:
    if kind == DATE:
        return f"day {value}"
    if isinstance(value, Fraction) and value.denominator != 1:  # exact decimal digits, never a binary float
        return f"{Decimal(value.numerator) / Decimal(value.denominator):.6g}"
    return f"{int(value):,}"


__all__ = ["FUNCTIONS", "Scope", "Symbol", "assume", "check", "STRING"]
