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


def never_applies(condition: ast.Node, scope, what: str) -> PolicyWarning | None:
    """The warning for a condition that no value in the declared ranges can make true (at
    the part that cannot hold), or None."""
    try:
        narrow(condition, _fact_ranges(scope))
    except Contradiction as contradiction:
        return PolicyWarning(f"{what} can never apply: {contradiction.reason()}", contradiction.node.span or condition.span)
    return None


def constant_warnings(condition: ast.Node, findings, section: Section, scope, what: str) -> tuple[PolicyWarning, ...]:
    """A condition that is always true (folded to a constant, or true for every value in the
    declared ranges), a part of an ``and`` that is always true (it adds nothing, so it was
    meant to say something else), and an amount that is 0 wherever the rule applies."""
    found = []
    if isinstance(condition, ast.Literal):
        holds = "always applies: its condition is always true" if condition.value else "can never apply: its condition is always false"
        found.append(PolicyWarning(f"{what} {holds}", section.value_span("when")))
    else:
        facts = _fact_ranges(scope)
        whole = always_true(condition, facts)
        if whole is not None:
            found.append(PolicyWarning(f"{what} always applies: {whole.reason(always=True)}", whole.node.span or condition.span))
        elif isinstance(condition, ast.BoolOp) and condition.op == "and":
            for operand in condition.operands:
                part = always_true(operand, facts)
                if part is not None:
                    found.append(PolicyWarning(
                        f"{what}: a part of its condition adds nothing: {part.reason(always=True)}",
                        part.node.span or operand.span or condition.span,
                    ))
    for finding in findings:
        # the amount's interval is narrowed by the condition: 0 on every record the rule fires on
        if finding.amount.interval == (0, 0):
            found.append(PolicyWarning(f"{what}: the amount is always 0", finding.amount.span or finding.span))
    return tuple(found)


__all__ = ["constant_warnings", "never_applies"]
