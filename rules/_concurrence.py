"""Two rules that can fine the same act outside one act, one fine: a warning of ``check``.

行政处罚法 art 29 allows one fine per act. Within a kind that declares ``act:`` (the case
table), the engine imposes only the highest fine of an act, so any number of fine rules is
safe. Elsewhere (an enterprise row, a kind without acts) two rules that can both fine the
same record would both be imposed: ``check`` warns, unless their conditions provably exclude
each other (``clause == 'a'`` against ``clause == 'b'``, or ``n > 5`` against ``n < 3``).
"""

from __future__ import annotations

from collections.abc import Iterable

from . import _ast as ast
from ._narrow import Contradiction, narrow
from ._schema import FindingKind, Policy, PolicyWarning, Rule
from ._types import BOOLEAN


def concurrence_warnings(policies: Iterable[Policy]) -> list[tuple[Policy, PolicyWarning]]:
    """(policy, warning) for each later rule that can fine a record an earlier one fines."""
    fining: dict[str, list[tuple[Policy, Rule]]] = {}
    for policy in policies:
        kind = policy.kinds.get(policy.domain)
        if kind is not None and kind.act is not None:
            continue  # one act, one fine is applied to this kind
        for rule in policy.rules:
            if any(f.kind is FindingKind.FINE for f in rule.findings):
                fining.setdefault(policy.domain, []).append((policy, rule))
    warnings = []
    for rules in fining.values():
        for index, (policy, rule) in enumerate(rules):
            for other_policy, other in rules[:index]:
                if _exclusive(rule, other, policy):
                    continue
                if policy.key != other_policy.key and not _overlap_in_time(policy, other_policy):
                    continue
                where = other.id if other_policy is policy else f"{other_policy.key} {other.id}"
                warnings.append((policy, PolicyWarning(
                    f"rule {rule.id!r} and {where} can both fine one record, and the kind "
                    f"{policy.domain!r} declares no 'act:' for one act, one fine (行政处罚法第二十九条): "
                    "both fines would be imposed", rule.span,
                )))
    return warnings


def _overlap_in_time(first: Policy, second: Policy) -> bool:
    start = max(first.effective, second.effective)
    ends = [p.expires for p in (first, second) if p.expires is not None]
    return not ends or start < min(ends)


def _exclusive(first: Rule, second: Rule, policy: Policy) -> bool:
    """Whether no record can satisfy both conditions, as far as cheap reasoning shows."""
    first_values, second_values = _required_values(first.condition), _required_values(second.condition)
    for name in first_values.keys() & second_values.keys():
        if not first_values[name] & second_values[name]:
            return True
    facts = {name: fact.interval for name, fact in policy.facts.items() if fact.interval is not None}
    both = ast.BoolOp("and", (first.condition, second.condition), type=BOOLEAN)
    try:
        narrow(both, facts)
    except Contradiction:
        return True
    return False


def _required_values(condition: ast.Node) -> dict[str, frozenset]:
    """For each categorical fact that every true case of ``condition`` pins to a set of
    literal values (``clause == 'x'``, ``clause in [...]`` in the top-level 'and'), that set."""
    parts = condition.operands if isinstance(condition, ast.BoolOp) and condition.op == "and" else (condition,)
    found: dict[str, frozenset] = {}
    for part in parts:
        name = values = None
        if isinstance(part, ast.Compare) and part.op == "==":
            for this, other in ((part.left, part.right), (part.right, part.left)):
                if isinstance(this, ast.Name) and this.kind == "fact" and isinstance(other, ast.Literal):
                    name, values = this.name, frozenset({other.value})
        elif isinstance(part, ast.In) and not part.negated and isinstance(part.item, ast.Name):
            if all(isinstance(o, ast.Literal) for o in part.options):
                name, values = part.item.name, frozenset(o.value for o in part.options)
        if name is not None:
            found[name] = found[name] & values if name in found else values
    return found


__all__ = ["concurrence_warnings"]
