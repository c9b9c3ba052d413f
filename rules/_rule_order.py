"""The order in which a policy's rules are judged: after the rules whose results they read.

A rule may read another rule's result (``amount_of(rule)``, ``fired(rule)``). The loader
reads the rules in an order where every rule comes after those it reads, as written
otherwise, so that every evaluator can judge them in that one order; a cycle has no such
order and is an error at the read that closes it, naming the cycle (as Catala and zen refuse
cyclic definitions, never as OpenFisca's silent default).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from . import _ast as ast
from ._check import Symbol
from ._check_calls import result_key
from ._errors import PolicyError, PolicySchemaError, Span
from ._money import round_by
from ._schema import Rule
from ._sections import Section, parse_at
from ._types import BOOLEAN, DECIMAL, INTEGER
from ._yaml import Located


def in_order_of_reads(items: list[tuple[Any, Span]]) -> list[tuple[Any, Span]]:
    """The rules in an order in which every rule comes after those whose results it reads
    (amount_of, fired), otherwise as written. A cycle is an error at one of its reads."""
    reads: dict[str, list[ast.Call]] = {}
    ids = []
    for item, span in items:
        rule_id = item.get("id") if isinstance(item, Located) else None
        ids.append(rule_id)
        if not isinstance(rule_id, str) or rule_id in reads:
            continue  # reported when the rule is read
        calls = []
        try:
            section = Section(item, span, "a rule")
            texts = [("when", item, section)] + [
                ("amount", finding, Section(finding, finding_span, "a finding"))
                for finding, finding_span in section.items("findings", "findings", required=False)
                if isinstance(finding, Located)
            ]
            for key, mapping, place in texts:
                if isinstance(mapping.get(key), str):
                    calls.extend(ast.results_read(parse_at(mapping[key], place.value_span(key), key)))
        except PolicyError:
            pass  # reported, at its place, when the rule is read
        reads[rule_id] = calls
    order, done, visiting = [], set(), []

    def visit(rule_id: str) -> None:
        if rule_id in done or rule_id not in reads:
            return
        if rule_id in visiting:
            cycle = visiting[visiting.index(rule_id):] + [rule_id]
            call = next(c for c in reads[cycle[-2]] if c.args[0].name == rule_id)
            raise PolicySchemaError(
                "rules " + " -> ".join(repr(r) for r in cycle) + " read each other's results "
                "(amount_of, fired): there is no order in which to judge them", call.span,
            )
        visiting.append(rule_id)
        for call in reads[rule_id]:
            visit(call.args[0].name)
        visiting.pop()
        done.add(rule_id)
        order.append(rule_id)

    for rule_id in reads:
        visit(rule_id)
    position = {rule_id: index for index, rule_id in enumerate(order)}
    ranked = sorted(range(len(items)), key=lambda i: (position.get(ids[i], -1) if isinstance(ids[i], str) else -1, i))
    return [items[i] for i in ranked]


def results_of(rule: Rule) -> dict[str, Symbol]:
    """What later rules may read of ``rule``: whether it fired and, with one finding, its
    amount (0 when it did not fire)."""
    found = {result_key("fired", rule.id): Symbol("result", BOOLEAN)}
    if len(rule.findings) == 1:
        # the amount as produced: rounded to its unit, so whole yuan, or yuan and fen
        spec = rule.findings[0]
        per_yuan = spec.rounding.per_yuan
        low, high = (round_by(bound * per_yuan, mode) for bound, mode in zip(spec.amount.interval or (0, 0), ("floor", "ceil"), strict=True))
        interval = (Fraction(min(low, 0), per_yuan), Fraction(max(high, 0), per_yuan))
        if per_yuan == 1:
            found[result_key("amount_of", rule.id)] = Symbol("result", INTEGER, (int(interval[0]), int(interval[1])))
        else:
            found[result_key("amount_of", rule.id)] = Symbol("result", DECIMAL, interval, scale=per_yuan)
    return found


__all__ = ["in_order_of_reads", "results_of"]
