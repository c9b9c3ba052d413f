"""Working days, from a holiday table that legal staff keep as data (行政处罚法 art 85).

行政处罚法(2021)第八十五条: "本法中“二日”“三日”“五日”“七日”的规定是指工作日，不含法定节假日。"
A working day is a Monday to Friday that is not a day off of the State Council's yearly
notice on the holidays (部分节假日安排的通知, 放假调休), or a Saturday or Sunday that notice
makes a working day (调休上班). The notice comes out year by year, so the table is data: a
folder file ``calendar:`` (``policies/zhengzhou/holidays.yaml``) listing per year the days
off and the weekend working days, with the notice each comes from. The table covers whole
years; a date outside them is an error (:class:`CalendarError`), never a guess from the
weekdays alone.

The functions of the language, all on the table's sorted array of working days:

- ``add_working_days(day, n)``: the n-th working day after ``day`` (the day itself is not
  counted, 民法典 art 201); n = 0 gives ``day``. "Within five working days of service" ends
  on ``add_working_days(served, 5)``;
- ``working_days_between(first, last, 'inclusive'|'exclusive')``: the working days from
  ``first`` to ``last``, ``exclusive`` leaving out ``first``; negative when ``last`` is before
  ``first``, as ``days_between``;
- ``working_day_on_or_after(day)``: ``day`` when it is a working day, else the next one:
  民法典 art 203, a period whose last day is a statutory rest day ends on the day after it.

Errors are eager, so the three evaluators agree whatever they compute first: every such
call of a check or of a rule judged is computed on a record where its arguments can be
evaluated (they read no empty optional fact on the way they take, and reach no working-day
call nested in them that is outside the table: that nested call is the failure), even where
a guard, an untaken if() branch or value_or's unused default would not need the call (the
batch kernel computes every row), and a day outside the table rejects
the record before any check or rule judges it (``calendar_failures``): the library raises
``OutsideCalendarError`` (a ``RecordCheckError`` and a ``CalendarError``), the batch run
stores a reject of the row naming the call's column, the dates it read and the table's
range, and scores the other rows. A call reading another rule's result is judged so just
before its rule, once that result is known; one reading no fact of the record (as_of, a
parameter) rejects every record it judges, blaming the record's key; one in a roll-up's
``where`` makes the count unknown and rejects the record it is counted for
(``_kinds.uncountable``). The batch kernel runs the same arithmetic on the same array
(``fastcalc``, opcode WORKDAYS, which also probes the rows outside).
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from . import _ast as ast
from ._calendar import DAY_COUNTS, INCLUSIVE
from ._errors import EcorulesError, PolicySchemaError, PolicyTypeError, Span
from ._sections import Section
from ._types import DATE, INTEGER, STRING, Kind, date_to_days, days_to_date
from ._yaml import Located, load_yaml_file

FUNCTIONS = {
    "add_working_days": "add_working_days(date, n): the n-th working day after date (行政处罚法 art 85; "
                        "the date itself not counted), from the folder's holiday table",
    "working_days_between": "working_days_between(first, last, 'inclusive'|'exclusive'): the working days "
                            "from first to last ('exclusive' leaves out first)",
    "working_day_on_or_after": "working_day_on_or_after(date): date if it is a working day, else the next "
                               "one (民法典 art 203: a period ending on a rest day ends on the day after it)",
}
# The kernel's function codes (the immediate of WORKDAYS, in aux before the table).
ADD, BETWEEN_EXCLUSIVE, BETWEEN_INCLUSIVE, ON_OR_AFTER = 0, 1, 2, 3
CALENDAR_KEY = "calendar:working_days"  # where a policy's scope holds its folder's table


class CalendarError(EcorulesError, ValueError):
    """A working-day computation reached a day the holiday table does not cover."""


@attrs.frozen(repr=False)
class WorkCalendar:
    """The working days of whole years ``first_year`` .. ``last_year``, as sorted day numbers."""

    first_year: int
    last_year: int
    working: tuple[int, ...] = attrs.field(eq=False)  # day numbers since 1970-01-01, ascending
    path: str = attrs.field(eq=False)
    digest: str  # sha256 of the file: what the run fingerprint sees of the table

    @property
    def first_day(self) -> int:
        return date_to_days(dt.date(self.first_year, 1, 1))

    @property
    def last_day(self) -> int:
        return date_to_days(dt.date(self.last_year, 12, 31))

    def __repr__(self) -> str:  # rendered into expressions: name the table, never print it
        return f"<holiday table {Path(self.path).name} {self.first_year}-{self.last_year}>"

    __str__ = __repr__

    def _covered(self, day: dt.date) -> int:
        days = date_to_days(day)
        if not self.first_day <= days <= self.last_day:
            raise CalendarError(
                f"{day} is outside the holiday table ({self.first_year}-{self.last_year}, {self.path}): "
                f"legal staff must add the year {day.year} from the State Council's notice")
        return days

    def _counted(self, days: int) -> int:
        """Working days on or before day number ``days`` within the table."""
        return bisect.bisect_right(self.working, days)

    def is_working(self, day: dt.date) -> bool:
        days = self._covered(day)
        index = self._counted(days)
        return index > 0 and self.working[index - 1] == days

    def add_working_days(self, day: dt.date, count: int) -> dt.date:
        if count < 0:
            raise CalendarError(f"add_working_days() counts forward: {count} working days")
        if count == 0:
            self._covered(day)
            return day
        index = self._counted(self._covered(day)) + count - 1
        if index >= len(self.working):
            raise CalendarError(
                f"{count} working days after {day} run past the holiday table ({self.first_year}-{self.last_year}, "
                f"{self.path}): legal staff must add the year {self.last_year + 1}")
        return days_to_date(self.working[index])

    def working_days_between(self, first: dt.date, last: dt.date, count: str) -> int:
        if count not in DAY_COUNTS:
            raise ValueError(f"unknown day count {count!r}; one of {', '.join(DAY_COUNTS)}")
        between = self._counted(self._covered(last)) - self._counted(self._covered(first))
        return between + (1 if count == INCLUSIVE and self.is_working(first) else 0)

    def working_day_on_or_after(self, day: dt.date) -> dt.date:
        return day if self.is_working(day) else self.add_working_days(day, 1)

    def call(self, function: str, args: list) -> Any:
        """The language's call ``function(*args)`` (the evaluator's entry)."""
        if function == "add_working_days":
            return self.add_working_days(args[0], args[1])
        if function == "working_days_between":
            return self.working_days_between(args[0], args[1], args[2])
        return self.working_day_on_or_after(args[0])

    def aux(self, function: int) -> tuple[int, ...]:
        """The kernel's operand table: function code, first and last day, the working days."""
        return (function, self.first_day, self.last_day, *self.working)


def is_calendar(document: Any) -> bool:
    return isinstance(document, Located) and "calendar" in document and "policy" not in document


def read_calendar(path: str | Path, document: Any = None) -> WorkCalendar:
    """The table of ``path`` (a ``calendar:`` file), each year checked: its days off and
    weekend working days fall in that year, a working weekend day is a Saturday or Sunday, a
    day is not both, and the years run without a gap."""
    path = Path(path)
    if document is None:
        document = load_yaml_file(path)
    top = Section(document, document.span, f"holiday table {path.name}")
    head = top.section("calendar", "the 'calendar' header")
    for key in ("title", "law", "source"):
        head.get(key)
    head.get("status", required=False)
    head.finish()
    years = top.section("years", "years")
    working: list[int] = []
    seen: list[int] = []
    for key in years.map:
        years.used.add(key)
        span = years.map.key_spans[key]
        if not isinstance(key, int) or not 1900 <= key <= 2999:
            raise PolicySchemaError(f"a year of the holiday table must be written as a number such as 2025 (got {key!r})", span)
        if seen and key != seen[-1] + 1:
            raise PolicySchemaError(f"year {key} does not follow {seen[-1]}: the table's years run without a gap", span)
        seen.append(key)
        year = Section(years.map[key], years.value_span(key), f"year {key}")
        year.get("notice")
        year.get("source")
        year.get("status", required=False)
        off = _days(year, "days_off", key, ranges=True)
        on = _days(year, "working_weekends", key, ranges=False)
        for day, where in on.items():
            if day.weekday() < 5:
                raise PolicySchemaError(f"{day} is a {day:%A}: 'working_weekends' lists Saturdays and Sundays made working days", where)
            if day in off:
                raise PolicySchemaError(f"{day} is listed both as a day off and as a working day", where)
        year.finish()
        day = dt.date(key, 1, 1)
        while day.year == key:
            if (day.weekday() < 5 and day not in off) or day in on:
                working.append(date_to_days(day))
            day += dt.timedelta(days=1)
    if not seen:
        raise PolicySchemaError("the holiday table lists no year", years.span)
    top.finish()
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""
    return WorkCalendar(seen[0], seen[-1], tuple(working), str(path), digest)


def _days(year: Section, key: str, number: int, *, ranges: bool) -> dict[dt.date, Span]:
    """The days of ``key``: dates, or (``ranges``) {name, from, to} entries, inclusive."""
    days: dict[dt.date, Span] = {}
    for item, span in year.items(key, key, required=False):
        if ranges:
            entry = Section(item, span, f"a day off of {number}")
            entry.get("name")
            first, last = entry.get("from", dt.date), entry.get("to", dt.date)
            entry.finish()
            if last < first:
                raise PolicySchemaError(f"'to' {last} is before 'from' {first}", span)
        else:
            if not isinstance(item, dt.date):
                raise PolicySchemaError(f"a working weekend day is a date such as {number}-02-08 (got {item!r})", span)
            first = last = item
        for day in (first + dt.timedelta(days=d) for d in range((last - first).days + 1)):
            if day.year != number:
                raise PolicySchemaError(f"{day} is not in {number}: list it under its own year", span)
            days[day] = span
    return days


class WorkdayChecks:
    """A mixin of ``_check._Checker``: the working-day calls, typed with the folder's table
    appended as a last literal argument (what the evaluators read)."""

    def _calendar(self, node) -> WorkCalendar:
        symbol = self.scope.get(CALENDAR_KEY)
        if symbol is None:
            raise PolicyTypeError(
                f"{node.function}() counts working days from a holiday table, and this policy's folder has none: "
                "add a 'calendar:' file (see policies/zhengzhou/holidays.yaml)", node.span)
        return symbol.calendar

    def _with_table(self, node, args, result_type, interval):
        table = self._calendar(node)
        literal = attrs.evolve(ast.Literal(table, span=node.span), type=STRING)
        return self._finish(attrs.evolve(node, args=(*args, literal), type=result_type, interval=interval))

    def call_add_working_days(self, node, args):
        self._arity(node, args, 2)
        day, count = args
        self._require(day, DATE, "the first argument of add_working_days() is a date")
        self._require(count, INTEGER, "the second argument of add_working_days() is a whole number of working days")
        if count.interval is not None and count.interval[0] < 0:
            raise PolicyTypeError("add_working_days() counts forward: the number of working days may be negative "
                                  "here (declare 'min: 0' on the fact, or guard it)", count.span)
        table = self._calendar(node)
        return self._with_table(node, args, DATE, (table.first_day, table.last_day))

    def call_working_days_between(self, node, args):
        self._arity(node, args, 3)
        for arg in args[:2]:
            self._require(arg, DATE, "working_days_between() counts the working days between two dates")
        count = self._mode(args[2], DAY_COUNTS, "day count of working_days_between()")
        mode = attrs.evolve(ast.Literal(count, span=node.span), type=STRING)
        table = self._calendar(node)
        size = len(table.working)
        return self._with_table(node, (*args[:2], mode), INTEGER, (-size, size))

    def call_working_day_on_or_after(self, node, args):
        self._arity(node, args, 1)
        self._require(args[0], DATE, "working_day_on_or_after() takes a date")
        table = self._calendar(node)
        return self._with_table(node, args, DATE, (table.first_day, table.last_day))


@attrs.frozen
class CalendarSymbol:
    """The folder's table in a policy's scope, under CALENDAR_KEY (no name can read it)."""

    calendar: WorkCalendar
    kind: str = "calendar"
    type: Any = None
    interval: Any = None
    optional: bool = False


def rule_nodes(rule) -> tuple[ast.Node, ...]:
    """Every expression of a rule: condition, amounts, list entries' dates."""
    return (rule.condition, *(f.amount for f in rule.findings),
            *(node for spec in (*rule.sanctions, *rule.lifts) for node in spec.dated))


def uses_calendar(rules) -> bool:
    return any(calls(node) for rule in rules for node in rule_nodes(rule))


def calls(node: ast.Node) -> list[ast.Call]:
    """The working-day calls in a typed tree."""
    return [n for n in ast.walk(node) if isinstance(n, ast.Call) and n.function in FUNCTIONS]


def rule_calls(rule) -> tuple[ast.Call, ...]:
    """The working-day calls of every expression of ``rule``."""
    return tuple(call for node in rule_nodes(rule) for call in calls(node))


CALENDAR_CHECK = "working_days"  # the check id of a working day outside the table, in rejects


def outside_check(call: ast.Call, subject: str) -> tuple[str, str, tuple[str, ...]]:
    """How a record whose ``call`` reaches a day outside the holiday table is rejected, the
    same in every evaluator: (the column blamed, the reason with a ``{name}`` for each fact
    the call reads, those facts). The column is the first fact of the call's dates; for a
    call that reads no fact of the record (as_of, a parameter, a rule's result only), the
    record's key ``subject``: the day is the same for every record the call judges, so each
    of them is rejected, and the reason says so."""
    *args, table = call.args
    dates = [name for arg in args if arg.type.kind is Kind.DATE for name in ast.names(arg, "fact")]
    read = tuple(dict.fromkeys(name for arg in args for name in ast.names(arg, "fact")))
    column = (dates or list(read) or [subject])[0]
    calendar = table.value
    if read:
        shown = " (" + ", ".join(f"{name} = {{{name}}}" for name in read) + ")"
    else:
        shown = " (it reads no fact of the record: every record it judges is rejected)"
    text = f"{call.function}({', '.join(ast.render(_without_tables(arg)) for arg in args)})"
    reason = (f"{text} reaches a day outside the holiday table {Path(calendar.path).name}, which covers "
              f"{days_to_date(calendar.first_day)} to {days_to_date(calendar.last_day)}{shown}: legal staff "
              "must add the year from the State Council's notice (行政处罚法 art 85)")
    return column, reason, read


def _without_tables(node: ast.Node) -> ast.Node:
    """``node`` with the holiday table the checker appended to each working-day call left
    out: the call as the policy writes it, for a reason naming a nested call."""
    if isinstance(node, ast.Call):
        args = tuple(_without_tables(arg) for arg in node.args)
        if node.function in FUNCTIONS and isinstance(node.args[-1].value if isinstance(node.args[-1], ast.Literal) else None,
                                                     WorkCalendar):
            args = args[:-1]
        return attrs.evolve(node, args=args)
    if isinstance(node, ast.Unary):
        return attrs.evolve(node, operand=_without_tables(node.operand))
    if isinstance(node, ast.Binary | ast.Compare):
        return attrs.evolve(node, left=_without_tables(node.left), right=_without_tables(node.right))
    if isinstance(node, ast.BoolOp):
        return attrs.evolve(node, operands=tuple(map(_without_tables, node.operands)))
    if isinstance(node, ast.In):
        return attrs.evolve(node, item=_without_tables(node.item), options=tuple(map(_without_tables, node.options)))
    return node


def reads_results(call: ast.Call) -> bool:
    """Whether a working-day call reads another rule's result (amount_of, fired): computed
    when the rules it reads have been judged, not before the checks."""
    return any(ast.results_read(arg) for arg in call.args[:-1])


def outside_calls(origin: str, node: ast.Node, subject: str, late: bool = False) -> list[tuple[str, ast.Call, tuple]]:
    """The working-day calls of ``node`` judged per record, as (origin, call, its
    ``outside_check``): what ``calendar_failures`` reads, computed once per policy. Those
    reading no rule's result (judged before any check), or with ``late`` those reading one
    (judged just before the rule holding them, once the rules they read are judged)."""
    return [(origin, call, outside_check(call, subject)) for call in calls(node) if reads_results(call) == late]


def calendar_failures(found, env: Mapping[str, Any], values: Mapping[str, Any]) -> list:
    """The :class:`CheckFailure` of each ``(origin, call, check)`` of ``found``
    (``outside_calls``) that reaches a day outside its table on ``env`` (computed where its
    arguments can be evaluated, as ``check_calls``: reached or not, and the arguments can
    be evaluated where they read no empty optional fact and reach no nested working-day
    call outside the table, whose own failure is reported). A record with one is rejected before
    the checks and rules judge it, naming its column and date; the kernel's mask of the same
    rows is ``fastcalc/_compiler._emit_calendar_checks``."""
    from ._checks import CheckFailure, fill, show_value
    from ._evaluate import EmptyValueError, evaluate

    failed = []
    for origin, call, check in found:
        try:
            args = [evaluate(arg, env) for arg in call.args]
        except (EmptyValueError, CalendarError):
            # a working-day call nested in the arguments, reached and outside the table:
            # this call cannot be computed, and the nested one (also in ``found``, as every
            # call of the tree is) is the failure reported
            continue
        try:
            args[-1].call(call.function, args[:-1])
        except CalendarError:
            column, reason, read = check
            message = fill(reason, {name: env.get(name) for name in read})
            failed.append(CheckFailure(origin, CALENDAR_CHECK, column, show_value(values.get(column, env.get(column))),
                                       f"{message} ({origin})"))
    return failed


def check_calls(found, env: Mapping[str, Any]) -> None:
    """Compute each working-day call of ``found`` (``rule_calls``) whose arguments can be
    evaluated on ``env`` (they read no empty optional fact on the way they take), so that a
    day outside the table fails the record in every evaluator (see the module's docstring);
    raises :class:`CalendarError`. The kernel's mask of the same rows is
    ``fastcalc/_rule_compiler._RuleCompiler.computable``."""
    from ._evaluate import EmptyValueError, evaluate

    for call in found:
        try:
            args = [evaluate(arg, env) for arg in call.args]
        except EmptyValueError:
            continue
        args[-1].call(call.function, args[:-1])


__all__ = [
    "CALENDAR_CHECK", "CALENDAR_KEY", "calendar_failures", "outside_calls", "outside_check", "reads_results", "CalendarError", "CalendarSymbol", "FUNCTIONS", "WorkCalendar", "WorkdayChecks", "check_calls",
    "is_calendar", "read_calendar", "rule_calls", "rule_nodes", "uses_calendar",
]
