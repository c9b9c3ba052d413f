"""The ``values:`` list of an enum fact: canonical values in declared order, with their aliases.

    values:
      - 金水区
      - 郑州经济技术开发区: [郑州经开区管委会, 经开区, 郑州经开区]

A plain item is a value; a one-key mapping is a value and the other spellings registries use
for it. The declared order of the values is kept: the kernel's enum codes are their indices.
Values and aliases are compared in the normal form of ``_choices.normalize`` (what a registry
cell is matched in), so two entries that only differ by spaces or full-width forms collide.
"""

from __future__ import annotations

from typing import Any

from ._choices import normalize
from ._errors import PolicySchemaError, Span
from ._yaml import Located, LocatedList

_ALIAS_FORM = "write a value with aliases as '- value: [alias, ...]'"


def read_enum_values(name: str, items: list[tuple[Any, Span]]) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """(values, (alias, value) pairs) of enum fact ``name`` from its ``values:`` items."""
    what = f"enum fact {name!r}"
    entries = [_entry(what, item, span) for item, span in items]
    taken: dict[str, tuple[str, Span, str | None]] = {}  # normal form -> (value, span, alias)
    for value, span, _ in entries:
        key = normalize(value)
        if not key:
            raise PolicySchemaError(f"{what}: value {value!r} is empty", span)
        if key in taken:
            first = taken[key]
            raise PolicySchemaError(f"{what}: value {value!r}{_same(value, first[0])} is listed twice (first at line {first[1].line})", span)
        taken[key] = (value, span, None)
    pairs = []
    for value, _, aliases in entries:
        for alias, span in aliases:
            pairs.append((alias, value))
            key = normalize(alias)
            if not key:
                raise PolicySchemaError(f"{what}: an alias of {value!r} is empty", span)
            if key not in taken:
                taken[key] = (value, span, alias)
                continue
            other, other_span, other_alias = taken[key]
            if other_alias is None and other == value:
                raise PolicySchemaError(f"{what}: alias {alias!r}{_same(alias, value)} is the value {value!r} itself", span)
            if other_alias is None:
                raise PolicySchemaError(
                    f"{what}: alias {alias!r} of {value!r}{_same(alias, other)} is the value {other!r} (line {other_span.line})", span)
            owner = "an alias of the same value" if other == value else f"an alias of {other!r}"
            raise PolicySchemaError(
                f"{what}: alias {alias!r} of {value!r}{_same(alias, other_alias)} is already {owner} (line {other_span.line})", span)
    return tuple(value for value, _, _ in entries), tuple(pairs)


def _entry(what: str, item: Any, span: Span) -> tuple[str, Span, list[tuple[Any, Span]]]:
    """(value, its span, [(alias, span), ...]) of one item of the list."""
    if isinstance(item, str):
        return item, span, []
    if not isinstance(item, Located) or len(item) != 1:
        raise PolicySchemaError(f"{what}: value {item!r} must be text; {_ALIAS_FORM}", span)
    (value, aliases), = item.items()
    value_span = item.key_spans[value]
    if not isinstance(value, str):
        raise PolicySchemaError(f"{what}: value {value!r} must be text", value_span)
    aliases_span = item.value_spans[value]
    if not isinstance(aliases, LocatedList):
        raise PolicySchemaError(f"{what}: the aliases of {value!r} must be a list; {_ALIAS_FORM}", aliases_span)
    for alias, alias_span in zip(aliases, aliases.item_spans, strict=True):
        if alias is not None and not isinstance(alias, str):
            raise PolicySchemaError(f"{what}: alias {alias!r} of {value!r} must be text", alias_span)
    return value, value_span, [(alias or "", alias_span) for alias, alias_span in zip(aliases, aliases.item_spans, strict=True)]


def _same(text: str, other: str) -> str:
    """Why two different texts collide: they have the same normal form."""
    return "" if text == other else f" (the same as {other!r} up to spaces and full-width forms)"


__all__ = ["read_enum_values"]
