"""Reading one YAML mapping of a policy file: typed access to its keys, errors at their place.

:class:`Section` is how every part of the loader reads YAML: a key's value of the expected
type, a nested section, a list with the span of each item, and at the end the keys nobody
read, refused with the closest allowed key. A missing key is reported where the writer put a
misspelled one, an empty key at itself, a YAML 1.1 boolean (yes, off) where true or false was
meant, and a number written with 万 or 元 with how to write it. ``parse_at`` parses an
expression scalar with columns mapped back into the file.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from . import _ast as ast
from ._chinese_numbers import WRITTEN_IN_WORDS, in_digits
from ._errors import PolicySchemaError, Span
from ._parser import parse_expression
from ._types import BOOLEAN, DATE, DECIMAL, INTEGER, STRING
from ._yaml import Located, LocatedList

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
POLICY_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
RESERVED_NAMES = {"as_of", "enterprise", "sid", "id", "and", "or", "not", "in", "true", "false"}
SIMPLE_TYPES = {"integer": INTEGER, "decimal": DECIMAL, "boolean": BOOLEAN, "string": STRING, "date": DATE}
TYPE_NAMES = [*SIMPLE_TYPES, "enum"]


class Section:
    """One YAML mapping being read: typed access to its keys, errors at the right place."""

    def __init__(self, value: Any, span: Span, what: str):
        if not isinstance(value, Located):
            raise PolicySchemaError(f"{what} must be a mapping of keys to values, got {_describe(value)}", span)
        self.map, self.span, self.what = value, value.span, what
        self.used: set = set()

    def has(self, key: str) -> bool:
        return key in self.map and self.map[key] is not None

    def value_span(self, key: str) -> Span:
        return self.map.value_spans.get(key, self.span)

    def get(self, key: str, expected: type | tuple = str, required: bool = True, default: Any = None) -> Any:
        self.used.add(key)
        if key not in self.map or self.map[key] is None:
            if required:
                self._missing(key)
            return default
        value = self.map[key]
        if isinstance(value, bool) and not _written_as_boolean(self.value_span(key)):
            raise PolicySchemaError(
                f"{self.what}: {key!r} is written {self.value_span(key).text()!r}, which YAML reads as "
                f"{str(value).lower()}: write true or false", self.value_span(key),
            )
        numeric = expected is int or (isinstance(expected, tuple) and int in expected)
        if numeric and isinstance(value, str) and WRITTEN_IN_WORDS.match(value.strip()):
            digits = in_digits(value)
            raise PolicySchemaError(
                f"{self.what}: {key!r} is written {value!r}: write the number in digits, in yuan, without units or 万"
                + (f": write {digits}" if digits is not None else " (100万元 is 1000000)"), self.value_span(key),
            )
        if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise PolicySchemaError(f"{self.what}: {key!r} must be a whole number, got {_describe(value)}", self.value_span(key))
        if expected is str and isinstance(value, int | Decimal) and not isinstance(value, bool):
            value = str(value)  # a version like 2011.1 written without quotes
        if not isinstance(value, expected):
            raise PolicySchemaError(
                f"{self.what}: {key!r} must be {_expected(expected)}, got {_describe(value)}", self.value_span(key)
            )
        if isinstance(value, str) and not value.strip():
            raise PolicySchemaError(f"{self.what}: {key!r} must not be empty", self.value_span(key))
        return value

    def _missing(self, key: str) -> None:
        """A required key that is absent or empty, reported where the writer put it: the
        empty key itself, or a misspelled key close to it."""
        if key in self.map:
            raise PolicySchemaError(f"{self.what}: {key!r} has no value", self.map.key_spans[key])
        unknown = [k for k in self.map if isinstance(k, str) and k not in self.used]
        close = difflib.get_close_matches(key, unknown, n=1, cutoff=0.6)
        if close:
            raise PolicySchemaError(
                f"{self.what}: unknown key {close[0]!r} where {key!r} is needed", self.map.key_spans[close[0]], suggestion=key,
            )
        raise PolicySchemaError(f"{self.what} needs the key {key!r}", self.span)

    def section(self, key: str, what: str, required: bool = True) -> Section | None:
        self.used.add(key)
        if not self.has(key):
            if required:
                self._missing(key)
            return None
        return Section(self.map[key], self.value_span(key), what)

    def items(self, key: str, what: str, required: bool = True) -> list[tuple[Any, Span]]:
        """A YAML list under ``key`` as (item, span) pairs."""
        self.used.add(key)
        if not self.has(key):
            if required:
                self._missing(key)
            return []
        value = self.map[key]
        if not isinstance(value, LocatedList):
            raise PolicySchemaError(f"{what} must be a list (items start with '-'), got {_describe(value)}", self.value_span(key))
        return list(zip(value, value.item_spans, strict=True))

    def finish(self) -> None:
        """Refuse keys nobody read: usually a typo, so suggest the closest allowed key."""
        for key in self.map:
            if key not in self.used:
                allowed = sorted(self.used)
                close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                raise PolicySchemaError(
                    f"{self.what}: unknown key {key!r}; allowed: {', '.join(allowed)}",
                    self.map.key_spans[key],
                    suggestion=close[0] if close else None,
                )


def _written_as_boolean(span: Span) -> bool:
    """YAML 1.1 also reads yes/no/on/off as booleans; the policy language writes only
    true/false, so that 'when: yes' or 'value: off' is never a silent boolean."""
    return span.text().strip("'\"").lower() in ("true", "false")


def _describe(value: Any) -> str:
    if isinstance(value, Located):
        return "a mapping"
    if isinstance(value, LocatedList):
        return "a list"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"


def _show(value: Any) -> str:
    """A YAML scalar as legal staff wrote it: 0.12345 and 2012-01-01, not Decimal('0.12345')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal | dt.date):
        return str(value)
    return repr(value)


def _a(type_name: str) -> str:
    return f"an {type_name}" if type_name[0] in "aeiou" else f"a {type_name}"


def _expected(expected) -> str:
    names = {str: "text", int: "a whole number", bool: "true or false", dt.date: "a date (YYYY-MM-DD)"}
    if isinstance(expected, tuple):
        return " or ".join(names.get(t, t.__name__) for t in expected)
    return names.get(expected, expected.__name__)


def _identifier(name: Any, span: Span, what: str, pattern: re.Pattern = IDENTIFIER) -> str:
    if not isinstance(name, str) or not pattern.match(name):
        raise PolicySchemaError(
            f"{what} {name!r} must be lower-case ASCII letters, digits and '_', starting with a letter",
            span,
        )
    if name in RESERVED_NAMES and pattern is IDENTIFIER:
        raise PolicySchemaError(f"{what} {name!r} is a reserved word", span)
    return name


def _named_entries(section: Section, what: str) -> Iterator[tuple[str, Section]]:
    """Each ``name: {...}`` entry of ``section`` (facts, parameters, lists), its name checked."""
    for name in section.map:
        _identifier(name, section.map.key_spans[name], f"{what} name" if what != "list" else "list id")
        section.used.add(name)
        yield name, Section(section.map[name], section.value_span(name), f"{what} {name!r}")


def expression_locator(text: str, span: Span):
    """Map an offset inside an expression scalar to a file span (exact for one-line scalars)."""

    def locate(offset: int, length: int) -> Span:
        line = span.source_line or ""
        start = span.column - 1
        if line[start:start + 1] in ("'", '"'):
            start += 1
        if line[start:start + len(text)] == text:
            return span.shifted(start - span.column + 1 + offset, length)
        return span  # folded or multi-line text: point at the scalar itself

    return locate


def parse_at(text: Any, span: Span, what: str) -> ast.Node:
    if isinstance(text, bool) or isinstance(text, int | Decimal):
        # a Decimal as positional digits (1E+2 is 100): the parser reads no exponent
        text = str(text).lower() if isinstance(text, bool) else format(text, "f") if isinstance(text, Decimal) else str(text)
    if not isinstance(text, str):
        raise PolicySchemaError(f"{what} must be an expression written as text, got {_describe(text)}", span)
    return parse_expression(text, expression_locator(text, span))


__all__ = ["IDENTIFIER", "POLICY_ID", "Section", "expression_locator", "parse_at"]
