"""The warnings a rule loads with: a condition that can never hold, one that always holds,
an amount that is always 0.

Each is almost always a slip (a comparison lost or turned round in editing, a factor left at
0), never wrong enough to refuse the policy: a shared catalogue may narrow a range under a
policy written before. All three read the declared ranges the same way (``_narrow.py``), so
``n < 0`` and ``n >= 0`` over a fact declared from 0 are told apart by the same reasoning.
"""

from __future__ import annotations

from . import _ast as ast
from ._narrow import Contradiction, always_true, narrow
from ._schema import PolicyWarning
from ._sections import Section


def _fact_ranges(scope) -> dict[str, tuple]:
    return {name: symbol.interval for name, symbol in scope.items() if symbol.kind == "fact" and symbol.interval is not None}


def _always(node: ast.Node, facts) -> tuple[ast.Node, str] | None:
    """(the part that decides, why in words) when no value in the ranges ``facts`` can make
    ``node`` false, else None. Beyond :func:`always_true` (whose negation does not narrow
    through ``and``): an ``or`` with an always-true alternative, an ``and`` of always-true
    parts, ``not`` of a never-true part, at any depth."""
    found = always_true(node, facts)
    if found is not None:
        return found.node, found.reason(always=True)
    if isinstance(node, ast.Unary) and node.op == "not":
        return _never(node.operand, facts)
    if isinstance(node, ast.BoolOp) and node.op == "or":
        return next((hit for operand in node.operands if (hit := _always(operand, facts)) is not None), None)
    if isinstance(node, ast.BoolOp) and node.op == "and":
        hits = [_always(operand, facts) for operand in node.operands]
        if all(hits):
            return node, "; ".join(reason for _, reason in hits)
    return None


def _never(node: ast.Node, facts) -> tuple[ast.Node, str] | None:
    """Likewise when no value can make ``node`` true: :func:`narrow`'s contradiction (which
    narrows through ``and``), or an ``or`` of never-true alternatives, ``not`` of an
    always-true part, an ``and`` with a never-true part, at any depth."""
    try:
        narrow(node, facts)
    except Contradiction as contradiction:
        return contradiction.node, contradiction.reason()
    if isinstance(node, ast.Unary) and node.op == "not":
        return _always(node.operand, facts)
    if isinstance(node, ast.BoolOp) and node.op == "and":
        return next((hit for operand in node.operands if (hit := _never(operand, facts)) is not None), None)
    if isinstance(node, ast.BoolOp) and node.op == "or":
        hits = [_never(operand, facts) for operand in node.operands]
        if all(hits):
            return node, "; ".join(reason for _, reason in hits)
    return None


def _idle_parts(node: ast.Node, facts, found: list) -> None:
    """The parts that add nothing to their ``and`` (always true), at any depth (inside
    ``or`` and ``not`` too); a part found is not looked into. (A never-true alternative of an
    ``or`` is left alone: ``n > 100 or flag`` reads as meant.)"""
    if isinstance(node, ast.Unary) and node.op == "not":
        _idle_parts(node.operand, facts, found)
    if not isinstance(node, ast.BoolOp):
        return
    for operand in node.operands:
        hit = _always(operand, facts) if node.op == "and" else None
        if hit is not None:
            found.append((operand, hit))
        else:
            _idle_parts(operand, facts, found)


def never_applies(condition: ast.Node, scope, what: str) -> PolicyWarning | None:
    """The warning for a condition that no value in the declared ranges can make true (at
    the part that cannot hold), or None."""
    hit = _never(condition, _fact_ranges(scope))
    if hit is None:
        return None
    return PolicyWarning(f"{what} can never apply: {hit[1]}", hit[0].span or condition.span)


def constant_warnings(condition: ast.Node, findings, section: Section, scope, what: str) -> tuple[PolicyWarning, ...]:
    """A condition that is always true (folded to a constant, or true for every value in the
    declared ranges, ``or`` and nested ``and`` looked into), a part of an ``and`` that is
    always true, at any depth (it adds nothing, so it was meant to say something else), and
    an amount that is 0 wherever the rule applies."""
    found = []
    if isinstance(condition, ast.Literal):
        holds = "always applies: its condition is always true" if condition.value else "can never apply: its condition is always false"
        found.append(PolicyWarning(f"{what} {holds}", section.value_span("when")))
    else:
        facts = _fact_ranges(scope)
        whole = _always(condition, facts)
        if whole is not None:
            found.append(PolicyWarning(f"{what} always applies: {whole[1]}", whole[0].span or condition.span))
        elif _never(condition, facts) is None:  # a condition never true is warned of as such
            parts: list = []
            _idle_parts(condition, facts, parts)
            for operand, (node, reason) in parts:
                found.append(PolicyWarning(f"{what}: a part of its condition adds nothing: {reason}",
                                           node.span or operand.span or condition.span))
    for finding in findings:
        # the amount's interval is narrowed by the condition: 0 on every record the rule fires on
        if finding.amount.interval == (0, 0):
            found.append(PolicyWarning(f"{what}: the amount is always 0", finding.amount.span or finding.span))
    return tuple(found)


__all__ = ["constant_warnings", "never_applies"]
