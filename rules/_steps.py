"""What a rule computed on the way, for the trace: the periods it counted and the caps it applied.

A condition's truth and the values it read do not say why a fine is 3,000,000 yuan: the
reader needs the 30 days behind it (from which day to which, counted how), the limitation
window a discovery fell in, the cap a late fee met. :func:`steps` walks a typed expression on
one record's values as the reference evaluator does (only the branch of an ``if`` that is
taken, ``and``/``or`` as far as they read, a ``value_or`` default only when the fact is empty)
and records each calendar computation and each ``min``/``max`` with what it gave. It
evaluates with :func:`evaluate`, so a step never disagrees with the result; it is for
explanation only, and no evaluator reads it (the batch kernel keeps no trace).

Periods are stated as the Civil Code counts them (民法典 arts 201-202, ``_calendar.py``):
``add_years(d, 2)`` is the period from the day after ``d`` to its corresponding day two years
on; ``days_between(a, b, 'exclusive')`` the days from the day after ``a`` to ``b``.
"""

from __future__ import annotations

import calendar as _monthrange
import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs

from . import _ast as ast
from ._calendar import DAY_COUNTS, EXCLUSIVE, INCLUSIVE, ROUNDING_MODES
from ._evaluate import evaluate
from ._workdays import WorkCalendar

DAYS, MONTHS, YEARS, WORKING_DAYS = "days", "months", "years", "working days"
UNIT_LABELS = {DAYS: "日", MONTHS: "个月", YEARS: "年", WORKING_DAYS: "个工作日"}


@attrs.frozen
class Period:
    """A period a rule counted: its first and last day, how many units, and how it was counted.

    ``first`` > ``last`` is an empty period (a re-inspection on the day of service counts no
    day); ``count`` is then 0 or negative, as the rule read it."""

    function: str  # as the policy wrote it: add_days, add_months, add_years, days_between, working days
    expression: str  # the call, as written in the policy (canonical form)
    first: dt.date  # the period's first day
    last: dt.date  # its last day
    count: int  # its length in ``unit`` (the value the rule read, for a count)
    unit: str  # days, months, years or working days
    counting: str  # inclusive (both ends counted) or exclusive (the start day not counted, art 201)
    start: dt.date | None = None  # the event it counts from (add_*: the day given), not counted
    # add_months / add_years: the rounding applied where the final month had no corresponding
    # day (2024-01-31 plus one month), None where the day existed and nothing was rounded
    rounding: str | None = None
    result: Any = None  # what the call gave the rule: the last day (add_*) or the count

    @property
    def text(self) -> str:
        """The period in Chinese, as legal staff state it."""
        unit = UNIT_LABELS[self.unit]
        if self.start is not None and self.count <= 0:  # counted back, or not at all: no period to state
            return f"{_short(self.expression)}: {self.start} 加 {self.count} {unit} = {self.result}"
        if self.start is not None:
            text = (f"{_short(self.expression)}: 自 {self.start} 的次日 {self.first} 起算 {self.count} {unit}, "
                    f"至 {self.last} 届满")
        else:
            text = f"{_short(self.expression)}: {self.first} 至 {self.last}, 共 {self.count} {unit}"
        if self.first > self.last:
            text += " (期间为空 empty period)"
        text += f" ({DAY_COUNTS[self.counting]}"
        if self.unit in (MONTHS, YEARS):
            text += ";到期月的对应日为期间的最后一日(民法典第二百零二条)" if self.rounding is None else (
                f";到期月无对应日,{ROUNDING_MODES[self.rounding]}")
        return text + ")"

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": "period", "function": self.function, "expression": self.expression,
            "first": self.first.isoformat(), "last": self.last.isoformat(), "count": self.count,
            "unit": self.unit, "counting": self.counting,
            "start": self.start.isoformat() if self.start else None, "rounding": self.rounding,
            "result": _json(self.result), "text": self.text,
        }


@attrs.frozen
class Cap:
    """A ``min`` (a cap: "不得超出罚款的数额") or ``max`` (a floor) and which operand it took."""

    function: str  # min or max
    expression: str
    operands: tuple[tuple[str, Any], ...]  # (the operand as written, its value)
    chosen: int  # the index of the operand taken (the first of equal ones)
    result: Any

    @property
    def bound(self) -> str:
        return self.operands[self.chosen][0]

    @property
    def text(self) -> str:
        label = "上限 cap" if self.function == "min" else "下限 floor"
        values = ", ".join(_show(value) if _plain(text) else f"{_short(text)} = {_show(value)}" for text, value in self.operands)
        return f"{label} {self.function}({values}) = {_show(self.result)} (取第 {self.chosen + 1} 项 operand {self.chosen + 1})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": "cap", "function": self.function, "expression": self.expression,
            "operands": [{"expression": text, "value": _json(value)} for text, value in self.operands],
            "chosen": self.chosen, "bound": self.bound, "result": _json(self.result), "text": self.text,
        }


@attrs.frozen
class NamedValue:
    """A named value of the policy (``values:``): one step of a computation, with its result."""

    name: str
    description: str | None
    expression: str
    result: Any

    @property
    def text(self) -> str:
        label = f" ({self.description})" if self.description else ""
        return f"{self.name}{label} = {_show(self.result)}"

    def to_dict(self) -> dict[str, Any]:
        return {"step": "value", "name": self.name, "description": self.description, "expression": self.expression,
                "result": _json(self.result), "text": self.text}


Step = Period | Cap | NamedValue


def steps(node: ast.Node, env: Mapping[str, Any], descriptions: Mapping[str, str] | None = None) -> tuple[Step, ...]:
    """The periods, caps and named values of ``node`` as evaluated on ``env``, innermost first
    (a value is stated after the steps it was computed by)."""
    found: list[Step] = []
    _walk(node, env, found, descriptions or {})
    return tuple(dict.fromkeys(found))  # a value read twice is stated once


def _walk(node: ast.Node, env, found: list, descriptions) -> None:
    if isinstance(node, ast.Call) and node.function == "if":
        _walk(node.args[0], env, found, descriptions)
        _walk(node.args[1] if evaluate(node.args[0], env) else node.args[2], env, found, descriptions)
    elif isinstance(node, ast.Call) and node.function == "value_or":
        if env.get(node.args[0].name) is None:
            _walk(node.args[1], env, found, descriptions)
    elif isinstance(node, ast.BoolOp):
        for operand in node.operands:  # as far as the evaluator reads
            _walk(operand, env, found, descriptions)
            if bool(evaluate(operand, env)) == (node.op == "or"):
                break
    else:
        for child in ast.children(node):
            _walk(child, env, found, descriptions)
    found.extend(_step(node, env, descriptions))


def _step(node: ast.Node, env, descriptions) -> list[Step]:
    if node.origin is not None and node.origin.startswith("value:"):
        # a named value whose expression is itself a period (days_between) states both
        name, _, inner = node.origin.removeprefix("value:").partition("|")
        own = _step(attrs.evolve(node, origin=inner or None), env, descriptions)
        written = text(attrs.evolve(node, origin=inner or None))
        return [*own, NamedValue(name, descriptions.get(name), written, evaluate(node, env))]
    step = _computed(node, env)
    return [] if step is None else [step]


def _computed(node: ast.Node, env) -> Step | None:
    if node.origin == "add_days":
        return _added(node, evaluate(node.left, env), evaluate(node.right, env), DAYS, evaluate(node, env), None)
    if node.origin is not None and node.origin.startswith("days_between:"):
        counting = node.origin.removeprefix("days_between:")
        difference = node.left if counting == INCLUSIVE else node
        first, last = evaluate(difference.right, env), evaluate(difference.left, env)
        count = evaluate(node, env)
        return _between("days_between", text(node), first, last, counting, count, DAYS)
    if not isinstance(node, ast.Call):
        return None
    if node.function in ("add_months", "add_years"):
        day, count, mode = (evaluate(arg, env) for arg in node.args)
        months = count * (12 if node.function == "add_years" else 1)
        return _added(node, day, count, MONTHS if node.function == "add_months" else YEARS, evaluate(node, env),
                      mode if _no_corresponding_day(day, months) else None)
    if node.function == "add_working_days":
        return _added(node, evaluate(node.args[0], env), evaluate(node.args[1], env), WORKING_DAYS,
                      evaluate(node, env), None)
    if node.function == "working_days_between":
        first, last = (evaluate(arg, env) for arg in node.args[:2])
        counting = evaluate(node.args[2], env)
        return _between(node.function, text(node), first, last, counting, evaluate(node, env), WORKING_DAYS)
    if node.function in ("min", "max"):
        values = [evaluate(arg, env) for arg in node.args]
        result = evaluate(node, env)
        chosen = next(i for i, value in enumerate(values) if value == result)
        return Cap(node.function, text(node), tuple((text(arg), value) for arg, value in zip(node.args, values, strict=True)),
                   chosen, result)
    return None


def _added(node, day: dt.date, count: int, unit: str, result: dt.date, rounding: str | None) -> Period:
    """add_days(d, n) and the like: the period from the day after d to the day it gives."""
    function = node.function if isinstance(node, ast.Call) else node.origin
    if count >= 0:
        first, last = day + dt.timedelta(days=1), result
    else:  # counted back: the period ends the day before d
        first, last = result, day - dt.timedelta(days=1)
    return Period(function, text(node), first, last, count, unit, EXCLUSIVE, start=day, rounding=rounding, result=result)


def _between(function: str, expression: str, first: dt.date, last: dt.date, counting: str, count: int, unit: str) -> Period:
    if counting == EXCLUSIVE:
        first = first + dt.timedelta(days=1)  # 民法典 art 201: the start day is not counted
    return Period(function, expression, first, last, count, unit, counting, result=count)


def _no_corresponding_day(day: dt.date, months: int) -> bool:
    """Whether the month ``months`` on from ``day`` lacks its day (31 January -> February)."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return day.day > _monthrange.monthrange(year, month + 1)[1]


def text(node: ast.Node) -> str:
    """The expression as the policy wrote it: add_days() and days_between() as calls, a named
    value by its name."""
    if node.origin is not None:
        if node.origin.startswith("value:"):
            return node.origin.removeprefix("value:").partition("|")[0]
        if node.origin == "add_days":
            return f"add_days({text(node.left)}, {text(node.right)})"
        counting = node.origin.removeprefix("days_between:")
        difference = node.left if counting == INCLUSIVE else node
        return f"days_between({text(difference.right)}, {text(difference.left)}, '{counting}')"
    if isinstance(node, ast.Call):
        if node.function in ("add_months", "add_years") and len(node.args) == 3:
            day, count, mode = node.args
            written = [day, count] if mode.value == "month_end" else [day, count, mode]
            return f"{node.function}({', '.join(text(arg) for arg in written)})"
        args = [arg for arg in node.args if not (isinstance(arg, ast.Literal) and isinstance(arg.value, WorkCalendar))]
        return f"{node.function}({', '.join(text(arg) for arg in args)})"
    if isinstance(node, ast.Unary):
        return f"not {text(node.operand)}" if node.op == "not" else f"-{text(node.operand)}"
    if isinstance(node, ast.Binary | ast.Compare):
        return f"({text(node.left)} {node.op} {text(node.right)})"
    if isinstance(node, ast.BoolOp):
        return "(" + f" {node.op} ".join(text(o) for o in node.operands) + ")"
    if isinstance(node, ast.In):
        options = ", ".join(text(o) for o in node.options)
        return f"({text(node.item)} {'not in' if node.negated else 'in'} [{options}])"
    return ast.render(node)


def _short(expression: str, width: int = 60) -> str:
    """A long call with its long arguments shown by their outermost call (the full text is
    in ``expression``): days_between(order_served, if(…), 'exclusive')."""
    if len(expression) <= width or "(" not in expression or not expression.endswith(")"):
        return expression
    head, inner = expression[:expression.index("(")], expression[expression.index("(") + 1:-1]
    args, depth, current = [], 0, ""
    for char in inner:
        if char == "," and depth == 0:
            args.append(current.strip())
            current = ""
            continue
        depth += (char in "([") - (char in ")]")
        current += char
    args.append(current.strip())
    shown = [arg if len(arg) <= 24 or "(" not in arg else arg[:arg.index("(")] + "(…)" for arg in args]
    return f"{head}({', '.join(shown)})"


def _plain(expression: str) -> bool:
    """A literal operand (0 in max(0, …)) is shown by its value alone."""
    return expression.lstrip("-").replace(".", "", 1).isdigit()


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Fraction) and value.denominator == 1:
        return f"{value.numerator:,}"
    if isinstance(value, Fraction):  # exact: shown to 4 places when it does not end sooner
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        shown = exact.quantize(Decimal("0.0001")) if exact != exact.quantize(Decimal("0.0001")) else exact
        return ("≈ " if shown != exact else "") + f"{shown.normalize():f}"
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    return str(value)


def _json(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, Fraction):  # exact, never a float: 0.375, or 1/3 where it does not end
        if value.denominator == 1:
            return value.numerator
        rest = value.denominator
        for factor in (2, 5):
            while rest % factor == 0:
                rest //= factor
        if rest != 1:
            return f"{value.numerator}/{value.denominator}"
        return f"{(Decimal(value.numerator) / Decimal(value.denominator)).normalize():f}"
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    return str(value)


__all__ = ["Cap", "NamedValue", "Period", "Step", "steps", "text"]
