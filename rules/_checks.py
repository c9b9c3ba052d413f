"""Checks: conditions a record must meet before any rule judges it.

A policy (or a folder's fact catalogue) may say what a valid record of its kind looks like
beyond the type and range of each fact: a fine decided by the official lies within the
statutory range of its clause, a case is not discovered before the act. Legal staff write

```yaml
checks:
  - id: art83_fine_in_range
    when: clause == 'wppcl2017_art83_2' and is_set(fine_yuan)   # optional: where it applies
    require: fine_yuan >= art83_min and fine_yuan <= art83_max   # what must hold there
    column: fine_yuan                                            # the column it blames
    message: 决定的罚款数额不在第八十三条规定的幅度内
    citation: {document: ..., article: ..., text: ...}           # optional for a logical check
```

A kind's fact catalogue (``cases.yaml``) may hold ``checks:`` too: they are shared by every
policy of that kind and judged once per record, before the policies' own, under the
catalogue's name (``cases.yaml check discovered_not_before_act``). A message may show the
values the record had: ``{act_date}`` is replaced by the value of that fact, which the check
must read (the case table's date order: "发现日早于违法行为发生日: {discovered} < {act_date}").

A record failing a check is rejected, never scored: the library raises
:class:`RecordCheckError` (a :class:`RecordError` naming the column), the batch run stores a
reject with the row, column, value and reason. Every failing check of the record is reported.
A check reads the record's own facts, its parent's, parameters and ``as_of``; never a
roll-up or another rule's result, since it is judged before both. Its ``holds`` expression
(``not when or require``) is what the three evaluators compute, like a rule's condition.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from decimal import Decimal
from typing import Any

import attrs

from . import _ast as ast
from ._check import check
from ._errors import PolicySchemaError, RecordError, Span
from ._sections import Section, _identifier, parse_at
from ._types import BOOLEAN
from ._workdays import CalendarError

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@attrs.frozen
class Check:
    """One condition a record must meet; ``holds`` is true where it is met."""

    id: str
    column: str  # the fact a failure is reported on
    message: str
    holds: ast.Node  # typed boolean: not when or require
    when_text: str | None
    require_text: str
    citation: Any = None  # a Citation, or None for a purely logical check
    span: Span | None = attrs.field(default=None, eq=False, repr=False)

    def reads(self) -> tuple[str, ...]:
        """Every fact and parameter the check reads."""
        return ast.names(self.holds)

    @property
    def shown(self) -> tuple[str, ...]:
        """The facts whose values the message shows (``{name}``; the loader checked that the
        check reads each)."""
        return tuple(dict.fromkeys(PLACEHOLDER.findall(self.message)))

    def reason(self, policy_key: str, values=None) -> str:
        """The reject's reason: the message (with the record's ``values`` in place of its
        ``{name}``s; without values the placeholders stay), the check and the clause it enforces."""
        where = f"{policy_key} check {self.id}"
        if self.citation is not None:
            where += f"; {self.citation}"
        message = self.message if values is None else fill(self.message, values)
        return f"{message} ({where})"


def fill(template: str, values) -> str:
    """``template`` with each ``{name}`` replaced by ``values[name]`` as rejects show values;
    any other text in braces is left as written."""
    return PLACEHOLDER.sub(lambda m: show_value(values[m.group(1)]) if m.group(1) in values else m.group(0), template)


@attrs.frozen
class CheckFailure:
    """A check a record failed: which, on what column and value, and why."""

    policy: str  # id@version of the policy holding the check
    check: str
    column: str
    value: str  # the column's value as shown in rejects ("" when empty)
    reason: str


class RecordCheckError(RecordError):
    """A record failed one or more checks of the policies; ``failures`` lists them all,
    ``field`` and ``value`` are those of the first."""

    def __init__(self, failures: tuple[CheckFailure, ...], subject: Any = None):
        self.failures = tuple(failures)
        self.subject = subject
        first = self.failures[0]
        more = f" (and {len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
        of = f"record {subject!r}: " if subject is not None else ""
        super().__init__(f"{of}{first.reason}{more}", first.column, first.value)

    def __reduce__(self):
        return (type(self), (self.failures, self.subject))


class OutsideCalendarError(RecordCheckError, CalendarError):
    """A record whose working-day computation reaches a day outside the holiday table
    (rules/_workdays.calendar_failures): a rejected record naming the column and its date,
    and a :class:`CalendarError`; the batch run rejects the row alike."""


def show_value(value: Any) -> str:
    """A checked value as rejects show it, the same in every evaluator."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):  # -0.0000 and 0 are one value: shown "0"
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def read_checks(top: Section, scope, facts, domain: str, read_citation) -> tuple[Check, ...]:
    """The ``checks:`` of a policy or catalogue; each expression checked in ``scope``."""
    checks, seen = [], {}
    for item, span in top.items("checks", "checks", required=False):
        found = read_check(item, span, scope, facts, domain, read_citation)
        if found.id in seen:
            raise PolicySchemaError(f"duplicate check id {found.id!r} (first at line {seen[found.id].line})", span)
        seen[found.id] = span
        checks.append(found)
    return tuple(checks)


def read_check(item: Any, span: Span, scope, facts, domain: str, read_citation) -> Check:
    section = Section(item, span, "a check")
    check_id = _identifier(section.get("id"), section.value_span("id"), "check id")
    what = f"check {check_id!r}"
    section.what = what
    when_text = section.get("when", (str, bool), required=False)
    when = None
    if when_text is not None:
        parsed = _no_results(parse_at(when_text, section.value_span("when"), f"the condition of {what}"), what)
        when = check(parsed, scope, BOOLEAN, f"condition of {what} ('when')")
        _no_rollups(when, section.value_span("when"), what, facts)
    require_text = section.get("require", (str, bool))
    parsed = _no_results(parse_at(require_text, section.value_span("require"), f"the requirement of {what}"), what)
    require = check(parsed, scope, BOOLEAN, f"requirement of {what} ('require')", when=when)
    _no_rollups(require, section.value_span("require"), what, facts)
    holds = require if when is None else ast.BoolOp(
        "or", (ast.Unary("not", when, type=BOOLEAN, span=when.span), require), type=BOOLEAN, span=require.span,
    )
    column = section.get("column")
    read = ast.names(holds, "fact")
    if column not in read:
        raise PolicySchemaError(
            f"{what}: column {column!r} must be a fact the check reads (it reads: {', '.join(read) or 'no fact'})",
            section.value_span("column"),
        )
    if facts[column].record_kind not in (domain, None):
        raise PolicySchemaError(
            f"{what}: column {column!r} is a fact of the {facts[column].record_kind} kind; a check blames a column "
            f"of its own record ({domain})", section.value_span("column"),
        )
    citation = read_citation(section.section("citation", f"the citation of {what}")) if section.has("citation") else None
    section.used.add("citation")
    message = section.get("message")
    for name in PLACEHOLDER.findall(message):
        if name not in read:
            close = difflib.get_close_matches(name, list(read), n=1, cutoff=0.6)
            raise PolicySchemaError(
                f"{what}: the message shows {{{name}}}, which must be a fact the check reads (it reads: {', '.join(read)})",
                section.value_span("message"), suggestion=close[0] if close else None,
            )
    found = Check(check_id, column, message, holds,
                  None if when_text is None else str(when_text), str(require_text), citation, span)
    section.finish()
    return found


def _no_results(node: ast.Node, what: str) -> ast.Node:
    """A check is judged before the rules: it cannot read their results."""
    for call in ast.results_read(node):
        raise PolicySchemaError(f"{what} reads the result of a rule ({call.function}): checks are judged before the rules",
                                call.span)
    return node


def _no_rollups(node: ast.Node, span: Span, what: str, facts) -> None:
    """A check is judged before the roll-ups (the batch run leaves a rejected record out of
    them): it cannot read one."""
    rollups = [name for name in ast.names(node, "fact") if facts[name].rollup is not None]
    if rollups:
        raise PolicySchemaError(
            f"{what} reads the roll-up {rollups[0]!r}: a check reads the record's own facts, judged before roll-ups", span,
        )


def failures(policy_key: str, checks, held, values) -> list[CheckFailure]:
    """The failures among ``checks`` (those whose id is not in ``held``)."""
    return [CheckFailure(policy_key, c.id, c.column, show_value(values.get(c.column)), c.reason(policy_key, values))
            for c in checks if c.id not in held]


__all__ = ["Check", "CheckFailure", "OutsideCalendarError", "RecordCheckError", "failures", "fill", "read_check", "read_checks", "show_value"]
