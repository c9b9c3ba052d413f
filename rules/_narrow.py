"""What a true condition guarantees about the facts it compares: narrowed fact intervals.

A rule's amount is computed only for a record on which its ``when`` holds, so a rule such as
``when: outfalls >= 2`` / ``amount: (outfalls - 1) * 1000000`` cannot be negative although
``outfalls`` is declared from 0. :func:`narrow` turns a typed condition into the intervals its
facts must lie in whenever it is true; the checker (``_check.py``) uses them for the range of
an amount. Only what the condition *must* imply narrows:

* a comparison (``>=``, ``>``, ``<=``, ``<``, ``==``; ``!=`` only at an end of an integer or
  date range) of a fact with a constant or a parameter, either side, using the whole range
  of the parameter's dated values (``n > p`` gives ``n > the smallest p``);
* ``fact in [...]`` of constants and parameters: the hull of the options;
* ``and`` (every operand holds), ``not`` (the negated comparison; ``not (a or b)`` is
  ``not a and not b``).

Everything else narrows nothing: ``or``, calls, comparisons of two facts or of arithmetic,
and ``as_of`` as a bound (its range is an assumption of the checker, not a checked fact).
Integers and dates are whole: ``n > 1`` narrows to ``n >= 2``, ``n < 1.5`` to ``n <= 1``.
Decimal facts keep closed bounds (``d > 1`` narrows to ``d >= 1``), which is wider than exact
and so still sound.

When a part of the condition empties a fact's range, :func:`narrow` raises
:class:`Contradiction`: the rule can never fire. Being this conservative, that is certain, for
every value of the facts and every dated value of the parameters; the loader turns it into the
warning ``Rule.never_applies`` (:meth:`Contradiction.reason` says why, in words).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from fractions import Fraction

from . import _ast as ast
from ._types import Kind, days_to_date, to_decimal

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


class Contradiction(Exception):
    """The condition can never be true: ``node`` (a comparison or ``in``, to be read negated
    when ``holds`` is False) empties the range of ``fact``, which was ``before`` given its
    ``declared`` range and the parts of the condition narrowed earlier; ``bound`` is the
    range of the constant or parameter side (every dated value of a parameter).

    :meth:`reason` says so in words, for the loader's warning that the rule never applies.
    """

    def __init__(self, node: ast.Node, holds: bool, fact: ast.Name, before: tuple, bound: tuple):
        super().__init__(f"{fact.name}: {before}")
        self.node, self.holds, self.fact, self.before, self.bound = node, holds, fact, before, bound
        self.name = fact.name
        self.declared = before  # narrow() sets the declared range

    def reason(self, always: bool = False) -> str:
        """E.g. ``"n > 100" is never true: integer fact 'n' is declared from 0 to 100``; with
        ``always``, the contradiction of the negated condition (:func:`always_true`) read the
        other way round: ``"n >= 0" is always true: ...``."""
        kind = self.fact.type.kind
        verdict = f'"{_text(self.node, not self.holds)}" is always true' if always else f'"{_text(self.node, self.holds)}" is never true'
        text = f"{verdict}: {kind} fact {self.name!r}"
        if self.before == self.declared:
            text += f" is declared {_range(self.declared, kind)}"
        else:
            text += (f" is {_range(self.before, kind)} where the rest of the condition holds"
                     f" (declared {_range(self.declared, kind)})")
        others = (self.node.options if isinstance(self.node, ast.In)
                  else [side for side in (self.node.left, self.node.right) if side is not self.fact])
        parameters = ", ".join(repr(name) for name in dict.fromkeys(
            name for other in others for name in ast.names(other, "parameter")
        ))
        if not parameters:
            return text
        bound = _range(self.bound, kind)
        if isinstance(self.node, ast.In):
            return f"{text}, and the options are {bound} over the dated values of {parameters}"
        if isinstance(others[0], ast.Name):
            return f"{text}, and parameter {parameters} is {bound} over its dated values"
        return f'{text}, and "{_text(others[0])}" is {bound} over the dated values of {parameters}'


def _text(node: ast.Node, holds: bool = True) -> str:
    """A part of a condition as written (canonically), without its outer parentheses and
    without the trailing zeros of decimal literals (2.5, not 2.5000)."""
    text = re.sub(r"\.0+\b|(\.\d*?[1-9])0+\b", lambda match: match.group(1) or "", ast.render(node))
    if text.startswith("(") and text.endswith(")") and isinstance(node, ast.Compare | ast.In | ast.Binary):
        text = text[1:-1]
    return text if holds else f"not ({text})"


def _range(interval: tuple, kind: Kind) -> str:
    if kind is Kind.DATE:  # narrowing may leave a fractional day: the whole days inside
        interval = (math.ceil(interval[0]), math.floor(interval[1]))
    low, high = (_value(end, kind) for end in interval)
    return f"exactly {low}" if low == high else f"from {low} to {high}"


def _value(value, kind: Kind) -> str:
    """An end of an interval as legal staff write it: a date, a whole number, a decimal."""
    if kind is Kind.DATE:
        return days_to_date(value).isoformat()
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    shown = to_decimal(value)
    return format(shown.normalize(), "f") if Fraction(shown) == value else f"about {format(shown.normalize(), 'f')}"


def narrow(condition: ast.Node, facts: Mapping[str, tuple]) -> dict[str, tuple]:
    """The intervals of ``facts`` (name -> (low, high)) that hold whenever the typed
    ``condition`` is true; a new dict, the names not narrowed keep their intervals.

    Raises :class:`Contradiction` when no value in the ranges can make it true.
    """
    narrowed = dict(facts)
    try:
        _assume(condition, True, narrowed)
    except Contradiction as contradiction:
        contradiction.declared = facts[contradiction.name]
        raise
    return narrowed


def always_true(condition: ast.Node, facts: Mapping[str, tuple]) -> Contradiction | None:
    """Why no value in the ranges ``facts`` can make the typed ``condition`` false, or None:
    the contradiction of its negation (read it with ``reason(always=True)``). As conservative
    as :func:`narrow`: ``n >= 0`` or ``n >= 0 or flag`` over a fact declared from 0 is found,
    ``n >= 0 and m >= 0`` is not (the negation of ``and`` narrows nothing)."""
    try:
        narrow(ast.Unary("not", condition, type=condition.type, span=condition.span), facts)
    except Contradiction as contradiction:
        return contradiction
    return None


def _assume(node: ast.Node, holds: bool, facts: dict) -> None:
    """Narrow ``facts`` by "``node`` evaluates to ``holds``"."""
    if isinstance(node, ast.Unary) and node.op == "not":
        _assume(node.operand, not holds, facts)
    elif isinstance(node, ast.BoolOp):
        # a and b is true: both are; a or b is false: neither is. The rest narrows nothing.
        if (node.op == "and") == holds:
            for operand in node.operands:
                _assume(operand, holds, facts)
    elif isinstance(node, ast.Compare):
        op = node.op if holds else _NEGATE[node.op]
        if _fact(node.left, facts) and _bound(node.right):
            _apply(node, holds, node.left, op, node.right.interval, facts)
        elif _fact(node.right, facts) and _bound(node.left):
            _apply(node, holds, node.right, _FLIP[op], node.left.interval, facts)
    elif isinstance(node, ast.In) and holds != node.negated:
        if _fact(node.item, facts) and all(_bound(option) for option in node.options):
            low = min(option.interval[0] for option in node.options)
            high = max(option.interval[1] for option in node.options)
            _apply(node, holds, node.item, "==", (low, high), facts)


def _fact(node: ast.Node, facts: Mapping) -> bool:
    return isinstance(node, ast.Name) and node.kind == "fact" and facts.get(node.name) is not None


def _bound(node: ast.Node) -> bool:
    """A constant or a parameter (or arithmetic of them): its range covers every value."""
    if node.interval is None or node.type is None or node.type.kind not in (Kind.INTEGER, Kind.DECIMAL, Kind.DATE):
        return False
    return not ast.names(node, "fact") and not ast.names(node, "builtin")


def _apply(node: ast.Node, holds: bool, fact: ast.Name, op: str, bound: tuple, facts: dict) -> None:
    before = low, high = facts[fact.name]
    whole = fact.type.kind in (Kind.INTEGER, Kind.DATE)
    b_low, b_high = bound

    def up(value):  # the least whole value >= value
        return Fraction(value).__ceil__() if whole else Fraction(value)

    def down(value):  # the greatest whole value <= value
        return Fraction(value).__floor__() if whole else Fraction(value)

    if op in (">=", "==") or (op == ">" and not whole):
        low = max(low, up(b_low))
    elif op == ">":
        low = max(low, down(b_low) + 1)
    if op in ("<=", "==") or (op == "<" and not whole):
        high = min(high, down(b_high))
    elif op == "<":
        high = min(high, up(b_high) - 1)
    if op == "!=" and whole and b_low == b_high:
        if low == b_low:
            low += 1
        if high == b_low:
            high -= 1
    if low > high:
        raise Contradiction(node, holds, fact, before, bound)
    facts[fact.name] = (low, high)


__all__ = ["Contradiction", "always_true", "narrow"]
