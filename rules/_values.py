"""Named values: the steps of a computation, each named, described and shown in the trace.

A discretion standard places a fine in its range by steps: grade each factor into a level,
combine the levels by a formula, mitigate (行政处罚法 art 32), clamp to the range. Written as
one expression, the steps are unreadable and the trace shows none of them. A policy's
``values:`` names them, in order, each reading facts, parameters and the values above it::

    values:
      volume_graded:
        description: 日排放量等级(由日排放量分级)
        value: if(daily_volume_tonnes >= volume_level_5_from, 5, ...)

A value is not a new kind of computation: the checker puts its typed expression wherever a
rule reads its name (marked with ``origin`` "value:NAME", which no evaluator reads), so the
durable-rules compiler and the batch kernel see the plain expression they already run, and
the three evaluators agree on it as on any other. Each value is checked once, on its own:
an optional fact in it needs its own guard (``value_or``, ``if(is_set(...))``), so that it
reads safely wherever it is used. The trace states each value read with its result
(``_steps.py``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from . import _ast as ast
from ._check import check
from ._errors import PolicySchemaError, Span
from ._sections import Section, _named_entries, parse_at


@attrs.frozen
class NamedValueSpec:
    """A value of the policy: its name, what it is, and its typed expression."""

    name: str
    description: str | None
    node: ast.Node  # typed
    text: str
    span: Span | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class ValueSymbol:
    """A value in a policy's scope: the checker inlines its typed expression where read."""

    spec: NamedValueSpec
    kind: str = "value"
    optional: bool = False

    @property
    def type(self):
        return self.spec.node.type

    @property
    def interval(self):
        return self.spec.node.interval

    @property
    def scale(self) -> int:
        return self.spec.node.scale

    def inline(self) -> ast.Node:
        node = self.spec.node
        inner = f"|{node.origin}" if node.origin is not None else ""
        return attrs.evolve(node, origin=f"value:{self.spec.name}{inner}")


def read_values(section: Section | None, scope: dict[str, Any]) -> dict[str, NamedValueSpec]:
    """The ``values:`` of a policy, each checked in ``scope`` (which it extends, in order)."""
    if section is None:
        return {}
    values = {}
    for name, entry in _named_entries(section, "value"):
        if name in scope:
            raise PolicySchemaError(f"value {name!r} has the name of a {scope[name].kind} of this policy",
                                    section.map.key_spans[name])
        # a bare number (value: 0.5) is the YAML loader's exact Decimal, read as its literal
        text = entry.get("value", (str, bool, int, Decimal))
        node = check(parse_at(text, entry.value_span("value"), f"value {name!r}"), scope, None, f"value {name!r}")
        spec = NamedValueSpec(name, entry.get("description", required=False), node, str(text), entry.span)
        entry.finish()
        values[name] = spec
        scope[name] = ValueSymbol(spec)
    return values


__all__ = ["NamedValueSpec", "ValueSymbol", "read_values"]
