"""Hypothesis strategies: random well-typed policies (as YAML files) and random batches.

A policy set is drawn as a fact catalogue (every type, with and without ranges), one to three
policies with dated parameters (some never set, some set only later), lists, and rules whose
conditions and amounts are random typed expressions over the whole language: arithmetic with
integers and decimals mixed, exact (a * b / c beside a / c * b), division by literals and
parameters, decimal amounts left to the rounding a policy or rule declares (unit yuan or fen,
every mode, or the defaults) or rounded by round()/floor()/ceil(), every function, dates with
``as_of``, enums, strings against literals (present in the batch or not), ``in`` lists,
``if`` of every type, the calendar functions (add_months/add_years in both modes, add_days,
days_between, the working-day functions on a drawn holiday table), and optional facts read through is_set()/value_or() or under a guard ('and'
chains, 'not is_set() or', if() branches, a rule's condition for its amounts), and the results
of the policy's earlier rules (amount_of, fired). Each expression is type-checked as it is
drawn and replaced by a simpler
one when the checker refuses it (overflow, a divisor that can be zero), so that the files the
real loader reads are mostly valid; what the loader still refuses is discarded.

A batch gives each column a *format* (numpy int8 .. int64, float, bool, datetime64, 'U' and
object arrays; Arrow int64, string, large_string, dictionary, decimal128, date32, timestamp,
bool, each with nulls) and a small pool of raw values, valid and invalid, from which rows are
drawn. Records are the Python values a row holds (what ``to_pylist`` or ``tolist`` give).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from ecorules.rules import PolicyError, Symbol, check, load_policies, parse_expression
from ecorules.rules import _ast as ast
from ecorules.rules._check_calls import result_key
from ecorules.rules._money import ROUNDING_MODES, UNITS
from ecorules.rules._schema import DatedValue, Fact, Parameter, scope_of
from ecorules.rules._types import BOOLEAN, DATE, DECIMAL, INTEGER, STRING, enum_type
from ecorules.rules._values import NamedValueSpec, ValueSymbol
from ecorules.rules._workdays import CALENDAR_KEY, CalendarSymbol, read_calendar
from hypothesis import strategies as st

VALID_USCC = ["91410100123456788Y", "9144030071526726XG", "91350200MA31E12PXF"]
INVALID_USCC = ["9141010012345678", "91410100123456788X", "91410100I23456788Y", " ", "91410100123456788y"]
ENUM_LABELS = ["甲", "乙", "丙", "A", "B", "金水区", "x y"]
TEXTS = ["alpha", "beta", "黄河", "gamma delta"]

INT_RANGES = [None, (0, 10_000), (-50, 50), (-(10**12), 10**12), (1, 3)]
DEC_RANGES = [None, (Decimal("0"), Decimal("1000")), (Decimal("-10.5"), Decimal("10.5")),
              (Decimal("0.0001"), Decimal("99999.9999"))]
DATE_RANGES = [None, (dt.date(2000, 1, 1), dt.date(2030, 12, 31))]
# mostly dates on which the drawn policies are in force; sometimes before, after, or a leap day
AS_OF_DATES = [dt.date(2012, 4, 14)] * 3 + [dt.date(2012, 12, 31)] * 2 + [
    dt.date(2009, 6, 30), dt.date(2011, 1, 1), dt.date(2013, 12, 31), dt.date(2020, 2, 29)]


# -- the catalogue and the parameters -----------------------------------------------------------
@st.composite
def catalogue(draw) -> dict[str, Fact]:
    kinds = draw(st.lists(st.sampled_from(["integer", "decimal", "boolean", "date", "enum", "string"]),
                          min_size=3, max_size=7))
    kinds += draw(st.permutations(["integer", "decimal", "boolean", "enum"]))[:2]
    facts = {"uscc": Fact("uscc", STRING, format="uscc")}
    for position, kind in enumerate(kinds):
        optional = draw(st.integers(0, 2)) == 0  # a record may leave it empty
        name = f"f{position}_{kind[:3]}" + ("_opt" if optional else "")
        if kind == "integer":
            bounds = draw(st.sampled_from(INT_RANGES))
            facts[name] = Fact(name, INTEGER, min=bounds and bounds[0], max=bounds and bounds[1], optional=optional)
        elif kind == "decimal":
            bounds = draw(st.sampled_from(DEC_RANGES))
            facts[name] = Fact(name, DECIMAL, min=bounds and bounds[0], max=bounds and bounds[1], optional=optional)
        elif kind == "date":
            bounds = draw(st.sampled_from(DATE_RANGES))
            facts[name] = Fact(name, DATE, min=bounds and bounds[0], max=bounds and bounds[1], optional=optional)
        elif kind == "enum":
            choices = draw(st.lists(st.sampled_from(ENUM_LABELS), min_size=2, max_size=5, unique=True))
            facts[name] = Fact(name, enum_type(choices), optional=optional)
        elif kind == "boolean":
            facts[name] = Fact(name, BOOLEAN, optional=optional)
        else:
            facts[name] = Fact(name, STRING, optional=optional)
    return facts


@st.composite
def parameters(draw, prefix: str) -> dict[str, Parameter]:
    out = {}
    for position in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["integer", "decimal", "boolean", "date"]))
        name = f"{prefix}p{position}_{kind[:3]}"
        starts = sorted(set(draw(st.lists(st.sampled_from(
            [dt.date(2000, 1, 1), dt.date(2011, 1, 1), dt.date(2012, 4, 14), dt.date(2015, 1, 1)]),
            min_size=0, max_size=3))))
        if kind == "integer":
            pool = st.sampled_from([1, 2, 3, 7, 100, 1000, 10_000_000])
            value_type = INTEGER
        elif kind == "decimal":
            pool = st.sampled_from([Decimal("0.5"), Decimal("1.5"), Decimal("0.0003"), Decimal("2.25"),
                                    Decimal("3"), Decimal("12.3456"), Decimal("7")])
            value_type = DECIMAL
        elif kind == "boolean":
            pool = st.booleans()
            value_type = BOOLEAN
        else:
            pool = st.sampled_from([dt.date(2010, 1, 1), dt.date(2012, 4, 14), dt.date(2014, 7, 1)])
            value_type = DATE
        values = tuple(DatedValue(start, draw(pool), "test") for start in starts)
        out[name] = Parameter(name, value_type, values)
    return out


# -- expressions ----------------------------------------------------------------------------------
class Expressions:
    """Draws expression text of a wanted type over given facts and parameters."""

    def __init__(self, draw, facts: dict[str, Fact], params: dict[str, Parameter]):
        self.draw = draw
        self.facts = facts
        self.params = params
        self.scope = scope_of(facts, params)
        self.guarded: frozenset[str] = frozenset()  # optional facts proven set where we draw
        self.results: dict[str, list[str]] = {"integer": [], "decimal": [], "boolean": []}  # earlier rules' results
        self.values: dict[str, str] = {}  # the policy's named values (rules/_values.py) and their kinds

    def add_results(self, rule_id: str, amount_interval, per_yuan: int = 1) -> None:
        """What later rules of the policy may read of rule ``rule_id`` (amount_of, fired):
        its amount as produced, whole yuan, or yuan and fen (a decimal) where it rounds to the fen."""
        self.scope = {**self.scope, result_key("fired", rule_id): Symbol("result", BOOLEAN)}
        self.results["boolean"].append(f"fired({rule_id})")
        if amount_interval is not None:
            low, high = (Fraction(bound * per_yuan).__floor__() if i == 0 else Fraction(bound * per_yuan).__ceil__()
                         for i, bound in enumerate(amount_interval))
            interval = (Fraction(min(low, 0), per_yuan), Fraction(max(high, 0), per_yuan))
            kind = INTEGER if per_yuan == 1 else DECIMAL
            self.scope[result_key("amount_of", rule_id)] = Symbol("result", kind, interval, scale=per_yuan)
            self.results[kind.kind.value].append(f"amount_of({rule_id})")

    def names(self, kind: str, source: str) -> list[str]:
        """Names of ``kind`` that may be read as they are (optional facts only when guarded)."""
        pool = self.facts if source == "fact" else self.params
        return [n for n, v in pool.items() if v.type.kind.value == kind and n != "uscc"
                and (source != "fact" or not v.optional or n in self.guarded)]

    def optionals(self, kind: str | None = None) -> list[str]:
        return [n for n, f in self.facts.items() if f.optional and (kind is None or f.type.kind.value == kind)]

    def pick(self, options: list[str]) -> str:
        return self.draw(st.sampled_from(options))

    def leaf(self, kind: str) -> str:
        options = self.plain_leaves(kind)
        for name in self.optionals(kind):  # an optional fact read safely, whatever the guards
            options += [f"value_or({name}, {self.pick(self.plain_leaves(kind))})",
                        f"if(is_set({name}), {name}, {self.pick(self.plain_leaves(kind))})"]
        if kind == "boolean":
            options += [f"is_set({name})" for name in self.optionals()]
        return self.pick(options)

    def plain_leaves(self, kind: str) -> list[str]:
        options = self.names(kind, "fact") * 3 + self.names(kind, "param") + self.results.get(kind, []) * 2
        options += [name for name, of in self.values.items() if of == kind] * 2
        if kind == "integer":
            options += [self.pick(["0", "1", "2", "7", "100", "12345", "-3"])]
        elif kind == "decimal":
            options += [self.pick(["0.5", "1.2345", "2.5", "0.0001", "100.25", "-1.5", "0.3333"])]
        elif kind == "boolean":
            options += [self.pick(["true", "false"])]
        elif kind == "date":
            options += ["as_of", self.pick(["date('2012-04-14')", "date('2011-01-01')", "date('2012-01-31')"])]
            # a period's end as a leaf, so that even shallow expressions count months and years
            base = self.pick([*self.names("date", "fact"), "as_of", "date('2012-01-31')"])
            options.append(self.pick([f"add_months({base}, {self.pick(['1', '-1', '13'])}, 'next_day')",
                                      f"add_months({base}, {self.pick(['1', '-11', self.small_integer()])})",
                                      f"add_years({base}, {self.pick(['1', '-2', *self.names('integer', 'param')])}, "
                                      f"'{self.pick(['month_end', 'next_day'])}')"]))
        if kind in ("date", "integer") and self.draw(st.booleans()):
            # working days on the drawn table, as a leaf too (rules/_workdays.py)
            # as_of 12 years on: past the shorter table for the later as_of dates, a call
            # reading no fact of the record (every row it judges is a reject)
            bases = [*self.names("date", "fact"), "as_of", "date('2012-01-31')", "add_years(as_of, 12)"]
            # a working-day call nested in the argument of another: reached, in value_or's
            # default (unused where the fact is set) or in an untaken if() branch, it is
            # computed wherever its own arguments can be (the audit of issues 9 and 10)
            inner = f"working_day_on_or_after(min(max({self.pick(bases)}, date('2001-01-01')), date('2029-06-30')))"
            nested = [inner, *(f"value_or({name}, {inner})" for name in self.optionals("date")),
                      *(f"if(is_set({name}), {name}, {inner})" for name in self.optionals("date"))]
            held = [f"min(max({self.pick(bases + nested)}, date('2001-01-01')), date('2029-06-30'))" for _ in range(2)]
            # a count read from an earlier rule's amount: a call computed after that rule
            counts = ["1", "3", "0", *(f"min(abs({r}), 40)" for r in self.results.get("integer", []))]
            options.append(self.pick([f"add_working_days({held[0]}, {self.pick(counts)})",
                                      f"working_day_on_or_after({held[0]})"]) if kind == "date" else
                           f"working_days_between({held[0]}, {held[1]}, '{self.pick(['inclusive', 'exclusive'])}')")
        return options

    def expr(self, kind: str, depth: int) -> str:
        if depth <= 0 or self.draw(st.integers(0, 3)) == 0:
            return self.leaf(kind)
        return getattr(self, f"expr_{kind}")(depth - 1)

    def number(self, depth: int) -> str:
        return self.expr(self.pick(["integer", "decimal"]), depth)

    def expr_integer(self, d: int) -> str:
        choice = self.draw(st.integers(0, 11))
        if choice == 0:
            return f"({self.expr('integer', d)} {self.pick(['+', '-', '*'])} {self.expr('integer', d)})"
        if choice == 1:
            return f"-{self.expr('integer', d)}"
        if choice == 2:
            return f"abs({self.expr('integer', d)})"
        if choice in (3, 4):
            return f"{self.pick(['round', 'floor', 'ceil'])}({self.expr('decimal', d)})"
        if choice == 5:
            args = ", ".join(self.expr("integer", d) for _ in range(self.draw(st.integers(2, 3))))
            return f"{self.pick(['min', 'max'])}({args})"
        if choice == 6:
            return f"if({self.expr('boolean', d)}, {self.expr('integer', d)}, {self.expr('integer', d)})"
        if choice == 7 and (self.names("date", "fact") or self.optionals("date")):
            if self.draw(st.booleans()):
                return f"({self.expr('date', d)} - {self.expr('date', d)})"
            count = self.pick(["'inclusive'", "'exclusive'"])
            # a period's length: the exact day a month or year addition lands on reaches an amount
            last = self.pick([self.expr("date", d), self.calendar(d)])
            return f"days_between({self.expr('date', d)}, {last}, {count})"
        if choice == 8:
            return f"round({self.number(d)} / {self.divisor()})"
        if choice == 9:
            count = self.pick(["'inclusive'", "'exclusive'"])
            return f"working_days_between({self.in_table(d)}, {self.in_table(d)}, {count})"
        return self.leaf("integer")

    def in_table(self, d: int) -> str:
        """A date expression held inside the drawn holiday table (2000-2030, see holiday_table)
        with room for the working days counted after it."""
        return f"min(max({self.expr('date', d)}, date('2001-01-01')), date('2029-06-30'))"

    def working_day(self, d: int) -> str:
        """add_working_days / working_day_on_or_after (rules/_workdays.py) on the drawn table."""
        if self.draw(st.booleans()):
            return f"working_day_on_or_after({self.in_table(d)})"
        count = self.pick(["0", "1", "5", "23", f"min(abs({self.expr('integer', d)}), 60)"])
        return f"add_working_days({self.in_table(d)}, {count})"

    def divisor(self) -> str:
        positive = [n for n, p in self.params.items() if p.type.kind.value in ("integer", "decimal")
                    and p.values and all(v.value > 0 for v in p.values)]
        return self.pick(["2", "3", "7", "0.5", "1.5", "-4", "0.0003", "12.3456", *positive])

    def expr_decimal(self, d: int) -> str:
        choice = self.draw(st.integers(0, 9))
        if choice in (0, 1):
            return f"({self.number(d)} {self.pick(['+', '-', '*'])} {self.expr('decimal', d)})"
        if choice == 2:
            return f"({self.expr('decimal', d)} * {self.expr('integer', d)})"
        if choice == 3:
            return f"({self.number(d)} / {self.divisor()})"
        if choice == 7:  # the order of operations must not matter: a * b / c beside a / c * b
            a, b, c = self.number(d), self.number(d), self.divisor()
            return self.pick([f"({a} * {b} / {c})", f"({a} / {c} * {b})"])
        if choice == 4:
            return self.pick([f"-{self.expr('decimal', d)}", f"abs({self.expr('decimal', d)})"])
        if choice == 5:
            return f"{self.pick(['min', 'max'])}({self.expr('decimal', d)}, {self.number(d)})"
        if choice == 6:
            return f"if({self.expr('boolean', d)}, {self.expr('decimal', d)}, {self.number(d)})"
        return self.leaf("decimal")

    def expr_date(self, d: int) -> str:
        small = self.small_integer()
        choice = self.draw(st.integers(0, 8))
        if choice in (5, 6):
            return self.calendar(d, small)
        if choice == 8:
            return self.working_day(d)
        if choice == 7:
            return f"add_days({self.expr('date', d)}, {small})"
        if choice == 0:
            return f"({self.expr('date', d)} {self.pick(['+', '-'])} {small})"
        if choice == 1:
            return f"({small} + {self.expr('date', d)})"
        if choice == 2:
            return f"{self.pick(['min', 'max'])}({self.expr('date', d)}, {self.expr('date', d)})"
        if choice == 3:
            return f"if({self.expr('boolean', d)}, {self.expr('date', d)}, {self.expr('date', d)})"
        return self.leaf("date")

    def small_integer(self) -> str:
        """A day or month count the checker's date ranges can take."""
        return self.pick(["30", "1", "365", "-7", *[n for n in self.names("integer", "fact")
                                                    if self.facts[n].max is not None and self.facts[n].max <= 10_000
                                                    and self.facts[n].min is not None and self.facts[n].min >= -10_000]])

    def calendar(self, d: int, small: str | None = None) -> str:
        """Calendar months and years, with or without a rounding mode."""
        function = self.pick(["add_months", "add_years"])
        counts = ["1", "-1", "0", "12", "-30", "30", small or self.small_integer()] if function == "add_months" \
            else ["1", "2", "-1", "10", "-3"]
        counts += self.names("integer", "param")
        mode = self.pick(["", ", 'month_end'", ", 'next_day'"])
        return f"{function}({self.expr('date', d)}, {self.pick(counts)}{mode})"

    def categorical(self, d: int) -> tuple[str, list[str]]:
        """A text or enum expression and the literals it may meet."""
        enums = self.names("enum", "fact")
        strings = self.names("string", "fact")
        if not enums and not strings:
            return self.pick(["'a'", "'b'"]), ["a", "b"]
        optional = [n for n in self.optionals() if self.facts[n].type.categorical and n not in enums + strings]
        name = self.pick(enums + strings + optional)
        fact = self.facts[name]
        literals = list(fact.type.choices) if fact.type.choices else TEXTS + ["absent", "ALPHA"]
        if name in optional:
            name = f"value_or({name}, '{self.pick(literals)}')"
        if self.draw(st.integers(0, 3)) == 0:
            return f"if({self.expr('boolean', d)}, {name}, '{self.pick(literals)}')", literals
        return name, literals

    def expr_boolean(self, d: int) -> str:
        choice = self.draw(st.integers(0, 15))
        compare = self.pick(["==", "!=", "<", "<=", ">", ">="])
        if choice >= 14 and self.optionals():
            return self.guard(d)
        if choice >= 12:  # periods of the Civil Code: a date moved by months, years or days
            counted = self.pick([self.calendar(d), f"add_days({self.expr('date', d)}, {self.small_integer()})"])
            if self.draw(st.booleans()):
                return f"({counted} {compare} {self.expr('date', d)})"
            count = self.pick(["'inclusive'", "'exclusive'"])
            days = f"days_between({self.expr('date', d)}, {counted}, {count})"
            return f"({days} {compare} {self.pick(['0', '30', '365'])})"
        if choice in (0, 1):
            return f"({self.number(d)} {compare} {self.number(d)})"
        if choice == 2:
            return f"({self.expr('date', d)} {compare} {self.expr('date', d)})"
        if choice in (3, 4):
            text, literals = self.categorical(d)
            return f"({text} {self.pick(['==', '!='])} '{self.pick(literals)}')"
        if choice == 5:
            text, literals = self.categorical(d)
            options = ", ".join(f"'{x}'" for x in self.draw(st.lists(st.sampled_from(literals), min_size=1, max_size=3)))
            return f"({text} {self.pick(['in', 'not in'])} [{options}])"
        if choice == 6:
            kind = self.pick(["integer", "decimal", "date"])
            options = ", ".join(self.leaf_constant(kind) for _ in range(self.draw(st.integers(1, 3))))
            return f"({self.expr(kind, d)} {self.pick(['in', 'not in'])} [{options}])"
        if choice in (7, 8):
            joined = f" {self.pick(['and', 'or'])} ".join(self.expr("boolean", d) for _ in range(self.draw(st.integers(2, 3))))
            return f"({joined})"
        if choice == 9:
            return f"not {self.expr('boolean', d)}"
        if choice == 10:
            return f"({self.expr('boolean', d)} {self.pick(['==', '!='])} {self.expr('boolean', d)})"
        return f"if({self.expr('boolean', d)}, {self.expr('boolean', d)}, {self.expr('boolean', d)})"

    def guard(self, d: int) -> str:
        """A read of an optional fact under one of the guards the checker proves."""
        name = self.pick(self.optionals())
        fact = self.facts[name]
        kind = fact.type.kind.value
        outer = self.guarded
        self.guarded = outer | {name}
        try:
            if kind == "boolean":
                inner = self.pick([name, f"({name} == {self.expr('boolean', d)})"])
            elif fact.type.categorical:
                literals = list(fact.type.choices) if fact.type.choices else TEXTS + ["absent"]
                inner = f"({name} {self.pick(['==', '!='])} '{self.pick(literals)}')"
            else:
                inner = f"({self.expr(kind, d)} {self.pick(['==', '!=', '<', '<=', '>', '>='])} {self.expr(kind, d)})"
                if name not in inner:
                    inner = f"({name} {self.pick(['<', '>=', '!='])} {self.expr(kind, d)})"
        finally:
            self.guarded = outer
        other = self.expr("boolean", d)
        return self.pick([f"(is_set({name}) and {inner})", f"(not is_set({name}) or {inner})",
                          f"if(is_set({name}), {inner}, {other})", f"if(not is_set({name}), {other}, {inner})"])

    def leaf_constant(self, kind: str) -> str:
        params = self.names(kind, "param")
        if kind == "integer":
            return self.pick(["0", "1", "5", "-2", *params])
        if kind == "decimal":
            return self.pick(["0.5", "1", "2.25", *params])
        return self.pick(["date('2012-04-14')", "date('2011-01-01')", *params])

    # -- checked drawing ---------------------------------------------------------------------------
    def checked(self, kind: str, expect, depth: int, amount: bool = False, wrap: str = "{}", when=None) -> str:
        """An expression the checker accepts (fall back to simpler ones if it refuses).
        ``wrap``: the text around it (a guard); ``when``: the typed condition of an amount."""
        for attempt in range(4):
            text = self.expr(kind, max(0, depth - attempt))
            if amount:  # never negative; a decimal is rounded where the amount is produced
                if kind == "decimal" and self.draw(st.booleans()):
                    text = f"{self.pick(['round', 'floor', 'ceil'])}({text})"
                text = self.pick([f"max(0, {text})", f"abs({text})"])
            text = wrap.format(text)
            try:
                typed = check(parse_expression(text), self.scope, expect, when=when)
            except PolicyError:
                continue
            if amount and (typed.interval is None or typed.interval[0] < 0):
                continue
            return text
        if expect == DATE:
            return "date('2012-04-14')"
        return "1" if amount else "true"


@st.composite
def policy_files(draw, folder: Path):
    """Write a catalogue and 1-3 policies into ``folder``; return the loaded PolicySet."""
    facts = draw(catalogue())
    # sometimes a kind of record with no parent (as river sections or districts are), keyed
    # by the uscc fact and judged by policies of its domain: the kernel takes any kind
    kind = draw(st.sampled_from([None, None, PARENTLESS]))
    header = f"description: random records\nkind: {kind}\nkey: uscc\n" if kind else ""
    (folder / "facts.yaml").write_text(header + _catalogue_yaml(facts), encoding="utf-8")
    years = draw(st.sampled_from(HOLIDAY_YEARS))
    (folder / "holidays.yaml").write_text(holiday_table(draw(st.integers(0, 2**32 - 1)), years), encoding="utf-8")
    table = CalendarSymbol(read_calendar(folder / "holidays.yaml"))
    for p in range(draw(st.integers(1, 3))):
        params = draw(parameters(f"q{p}"))
        exprs = Expressions(draw, facts, params)
        exprs.scope[CALENDAR_KEY] = table
        # a finding's payer is in every row (the kernel refuses an optional payer)
        payers = ["enterprise"] + [n for n, f in facts.items() if f.type.categorical and n != "uscc" and not f.optional]
        values = _values(draw, exprs)
        checks = [found for c in range(draw(st.sampled_from([0, 0, 1, 2])))
                  if (found := _check(draw, exprs, f"k{c}")) is not None]
        rules = []
        rounding = draw(roundings())  # the policy's declaration (None: yuan, half_up)
        for r in range(draw(st.integers(1, 4))):
            depth = draw(st.integers(0, 3))
            # a condition 'is_set(x) and ...' lets the rest of it, and its amounts, read x as is
            guard = draw(st.sampled_from([None, None, *exprs.optionals()]))
            exprs.guarded = frozenset({guard}) if guard else frozenset()
            wrap = f"(is_set({guard}) and {{}})" if guard else "{}"
            condition = exprs.checked("boolean", BOOLEAN, depth, wrap=wrap)
            when = check(parse_expression(condition), exprs.scope, BOOLEAN)
            findings = []
            own_rounding = draw(st.one_of(st.none(), st.none(), roundings()))  # a rule's own declaration
            for _ in range(draw(st.integers(0, 2))):
                amount = exprs.checked(draw(st.sampled_from(["integer", "decimal"])), "numeric", depth, amount=True,
                                       when=when)
                # an optional text or enum fact pays where the condition proves it set (the
                # responsible unit, 责任单位, in eco_water_interception.yaml)
                guarded = [guard] if guard and facts[guard].type.categorical else []
                findings.append((draw(st.sampled_from(["fine", "fiscal_deduction", "fee", "reward", "compensation"])),
                                 amount, draw(st.sampled_from(payers + guarded * 2))))
            # list entries: sometimes from: and until: (date expressions under the condition,
            # like amounts), sometimes a lift (its from: the day it takes effect)
            sanctions = [(list_id, *_entry_dates(draw, exprs, depth, when))
                         for list_id in draw(st.lists(st.sampled_from(["blacklist", "watch"]), max_size=2, unique=True))]
            lifts = [(list_id, *_entry_dates(draw, exprs, depth, when, lift=True))
                     for list_id in draw(st.lists(st.sampled_from(["blacklist"]), max_size=1))]
            exprs.guarded = frozenset()
            if not findings and not sanctions and not lifts:
                sanctions = [("watch", None, None)]
            rules.append((f"r{r}", condition, findings, sanctions, lifts, own_rounding))
            # later rules may read this one's result (the loader orders rules by such reads)
            amount = None
            if len(findings) == 1:
                amount = check(parse_expression(findings[0][1]), exprs.scope, "numeric", when=when).interval or (0, 0)
            unit = (own_rounding or rounding or {}).get("unit", "yuan")
            exprs.add_results(f"r{r}", amount, UNITS[unit])
        dated = [f"value_or({name}, date('2000-06-01'))" if fact.optional else name
                 for name, fact in facts.items() if fact.type == DATE]
        if years != HOLIDAY_YEARS[0] and dated:
            # a fact's own date counted in working days on the shorter table: its low and
            # high pool values lie outside it (rejects), its other ones inside
            counted = f"min(max({draw(st.sampled_from(dated))}, date('2001-01-01')), date('2029-06-30'))"
            rules.append((f"r{len(rules)}", f"working_days_between({counted}, date('2012-04-14'), 'exclusive') > 0",
                          [], [("watch", None, None)], [], None))
            if exprs.results["integer"] and draw(st.booleans()):
                # and counted by an earlier rule's amount from a day near the shorter table's
                # end: probed once that rule is judged, the rows whose amount takes it past
                # the table are rejects (blaming the record's key: the call reads no fact)
                result = draw(st.sampled_from(exprs.results["integer"]))
                rules.append((f"r{len(rules)}", f"add_working_days(date('2024-12-02'), min(abs({result}), 40)) > as_of",
                              [], [("watch", None, None)], [], None))
        effective = draw(st.sampled_from([dt.date(2000, 1, 1), dt.date(2011, 6, 1), dt.date(2012, 4, 14)]))
        expires = draw(st.sampled_from([None, None, dt.date(2013, 1, 1)]))
        text = _policy_yaml(f"test.p{p}", effective, expires, params, rules, rounding, checks, values)
        if kind:
            text = text.replace('  version: "1"', f'  version: "1"\n  domain: {kind}', 1)
        (folder / f"policy{p}.yaml").write_text(text, encoding="utf-8")
    return load_policies(folder)


def domain_of(policies) -> str:
    """The kind of record the drawn policies judge: the enterprise, or PARENTLESS."""
    return next(iter(policies)).domain


def _values(draw, exprs: Expressions) -> list[tuple[str, str]]:
    """0-2 named values (``values:``), each read by what is drawn after it (the later values,
    checks, conditions, amounts, list dates) as the loader inlines it."""
    drawn = []
    for v in range(draw(st.sampled_from([0, 0, 1, 2]))):
        kind = draw(st.sampled_from(["integer", "decimal", "decimal constant", "boolean", "date"]))
        if kind == "decimal constant":  # a bare number, written unquoted (_policy_yaml)
            text = draw(st.sampled_from(["0.5", "1.015", "0.0003", "12.3456", "2.25"]))
        else:
            text = exprs.checked(kind, {"integer": INTEGER, "decimal": DECIMAL, "boolean": BOOLEAN, "date": DATE}[kind],
                                 draw(st.integers(0, 2)))
        typed = check(parse_expression(text), exprs.scope)
        name = f"v{v}"
        exprs.scope[name] = ValueSymbol(NamedValueSpec(name, None, typed, text))
        exprs.values[name] = typed.type.kind.value  # the checked fallback may be of another kind
        drawn.append((name, text))
    return drawn


@st.composite
def roundings(draw) -> dict | None:
    """A rounding declaration: None (the default, yuan and half_up), or a unit and a mode,
    either of which may be left to the default."""
    if draw(st.integers(0, 2)) == 0:
        return None
    chosen = {"unit": draw(st.sampled_from(list(UNITS))), "mode": draw(st.sampled_from(list(ROUNDING_MODES)))}
    return {key: value for key, value in chosen.items() if draw(st.integers(0, 3))}


def _rounding_yaml(rounding: dict | None, indent: str) -> list[str]:
    if rounding is None:
        return []
    return [f"{indent}rounding: {{{', '.join(f'{k}: {v}' for k, v in rounding.items())}}}"]


def _check(draw, exprs, check_id: str):
    """A check (id, when or None, require, column): a requirement, sometimes only where a
    condition holds (an optional fact's is_set() among them, which the requirement may then
    read as is); the column it blames is one of the facts it reads. None if it reads none."""
    depth = draw(st.integers(0, 2))
    when = None
    guard = draw(st.sampled_from([None, None, *exprs.optionals()]))
    if guard:
        when = f"is_set({guard})"
        exprs.guarded = frozenset({guard})
    elif draw(st.booleans()):
        when = exprs.checked("boolean", BOOLEAN, depth)
    typed_when = check(parse_expression(when), exprs.scope, BOOLEAN) if when else None
    require = exprs.checked("boolean", BOOLEAN, depth, when=typed_when)
    exprs.guarded = frozenset()
    typed_require = check(parse_expression(require), exprs.scope, BOOLEAN, when=typed_when)
    read = [name for node in (typed_when, typed_require) if node is not None for name in ast.names(node, "fact")]
    if not read:
        return None
    return check_id, when, require, draw(st.sampled_from(sorted(set(read))))


# the years of a drawn holiday table: 2000-2030, the dates' whole range, or (more often)
# 2005-2024, which holds every as_of and date literal drawn, but not every fact's date, so
# that rows whose working day is outside the table are drawn (rejects, not a failed batch)
HOLIDAY_YEARS = [(2000, 2030), (2005, 2024), (2005, 2024)]
OUTSIDE = "reaches a day outside the holiday table"
PARENTLESS = "site"  # the kind of record without a parent that policy_files draws sometimes


def holiday_table(seed: int, years: tuple[int, int] = (2000, 2030)) -> str:
    """A holiday table (rules/_workdays.py) of ``years``: a few ranges of days off and
    weekend working days a year, drawn from ``seed``; made up, for tests only."""
    rng = np.random.default_rng(seed)
    lines = ["calendar:", "  title: 测试", "  law: 测试", "  source: 随机(测试用)", "years:"]
    for year in range(years[0], years[1] + 1):
        start = dt.date(year, 1, 1)
        lines += [f"  {year}:", "    notice: 测试", "    source: 测试", "    days_off:"]
        off = set()
        for _ in range(int(rng.integers(2, 7))):
            first = start + dt.timedelta(days=int(rng.integers(0, 355)))
            last = first + dt.timedelta(days=int(rng.integers(0, 8)))
            last = min(last, dt.date(year, 12, 31))
            lines.append(f"      - {{name: 节日, from: {first}, to: {last}}}")
            off.update(first + dt.timedelta(days=k) for k in range((last - first).days + 1))
        weekends = sorted({start + dt.timedelta(days=int(k)) for k in rng.integers(0, 365, 4)})
        weekends = [day for day in weekends if day.weekday() >= 5 and day not in off and day.year == year]
        lines.append(f"    working_weekends: [{', '.join(map(str, weekends))}]")
    return "\n".join(lines) + "\n"


def _entry_dates(draw, exprs, depth: int, when, lift: bool = False) -> tuple[str | None, str | None]:
    """A list entry's from: and until: (each drawn or None); a lift has no until:."""
    start = exprs.checked("date", DATE, depth, when=when) if draw(st.booleans()) else None
    end = None if lift or not draw(st.booleans()) else exprs.checked("date", DATE, depth, when=when)
    return start, end


def _catalogue_yaml(facts: dict[str, Fact]) -> str:
    lines = ["facts:"]
    for name, fact in facts.items():
        kind = fact.type.kind.value
        lines.append(f"  {name}:")
        lines.append(f"    type: {kind}")
        if fact.format:
            lines.append(f"    format: {fact.format}")
        if fact.type.choices:
            lines.append("    values: [" + ", ".join(f'"{c}"' for c in fact.type.choices) + "]")
        for key in ("min", "max"):
            value = getattr(fact, key)
            if value is not None:
                lines.append(f"    {key}: {value}")
        if fact.optional:
            lines.append("    optional: true")
    return "\n".join(lines) + "\n"


def _policy_yaml(policy_id, effective, expires, params, rules, rounding=None, checks=(), values=()) -> str:
    out = [
        "policy:",
        f"  id: {policy_id}",
        "  title: a random policy",
        "  authority: tests",
        "  document: hypothesis",
        '  version: "1"',
        f"  effective: {effective}",
    ]
    if expires:
        out.append(f"  expires: {expires}")
    out += _rounding_yaml(rounding, "  ")
    if params:
        out.append("parameters:")
        for name, parameter in params.items():
            out.append(f"  {name}:")
            out.append(f"    type: {parameter.type.kind.value}")
            if not parameter.values:
                out.append("    values: []")
                continue
            out.append("    values:")
            for dated in parameter.values:
                value = dated.value
                text = ("true" if value else "false") if isinstance(value, bool) else str(value)
                out.append(f"      - from: {dated.start}")
                out.append(f"        value: {text}")
                out.append("        reference: test")
    out += ["lists:", "  blacklist:", "    title: black", "  watch:", "    title: watch"]
    if values:
        out.append("values:")
        for name, text in values:
            # a number alone is written bare (value: 0.5), as legal staff write a constant: YAML
            # reads it as an exact Decimal
            bare = re.fullmatch(r"-?\d+(\.\d+)?", text) is not None
            out += [f"  {name}:", f"    value: {text}" if bare else f'    value: "{text}"']
    if checks:
        out.append("checks:")
        for check_id, when, require, column in checks:
            out += [f"  - id: {check_id}", f"    column: {column}", f"    message: check {check_id} fails"]
            out += [f'    when: "{when}"'] if when else []
            out += [f'    require: "{require}"']
    out.append("rules:")
    for rule_id, condition, findings, sanctions, lifts, own_rounding in rules:
        out += [
            f"  - id: {rule_id}",
            f"    title: rule {rule_id}",
            "    citation:",
            "      document: test",
            "      text: test",
            f'    when: "{condition}"',
        ]
        out += _rounding_yaml(own_rounding, "    ")
        if findings:
            out.append("    findings:")
            for kind, amount, payer in findings:
                out += [f"      - kind: {kind}", f'        amount: "{amount}"', f"        payer: {payer}"]
        for key, entries in (("sanctions", sanctions), ("lifts", lifts)):
            if not entries:
                continue
            out.append(f"    {key}:")
            for list_id, start, end in entries:
                out += [f"      - list: {list_id}", "        reason: test"]
                out += [f'        from: "{start}"'] if start else []
                out += [f'        until: "{end}"'] if end else []
    return "\n".join(out) + "\n"


# -- batches ------------------------------------------------------------------------------------------
FORMATS = {
    "integer": ["np.int64", "np.int32", "np.int16", "np.int8", "np.uint8", "np.uint16", "np.float64",
                "pa.int64", "pa.string", "np.object"],
    "decimal": ["pa.string", "np.int64", "pa.decimal(12,4)", "pa.decimal(10,2)", "pa.decimal(12,5)",
                "np.float64", "np.object", "pa.large_string"],
    "boolean": ["np.bool", "pa.bool", "pa.string", "np.object", "pa.int64"],
    "date": ["pa.date32", "np.datetime64", "pa.string", "np.object", "pa.timestamp"],
    "enum": ["pa.string", "pa.dictionary", "np.str", "np.object", "pa.large_string", "pa.string_view"],
    "string": ["pa.string", "np.object", "np.str", "pa.large_string", "pa.dictionary"],
}


def raw_pool(draw, fact: Fact, fmt: str, literals: list[str]) -> list:
    """Raw values a column of format ``fmt`` can hold for ``fact``, valid and invalid."""
    kind = fact.type.kind.value
    if fact.format == "uscc":
        pool = VALID_USCC * 3 + INVALID_USCC + [" 91410100123456788Y ", None]
        if fmt == "np.object":
            pool.append(12345)
        if fmt == "np.str":
            pool = [x for x in pool if isinstance(x, str)]
        return pool
    if kind == "integer":
        low, high = fact.interval
        values = [low, high, low - 1, high + 1, 0, 1, -1, (low + high) // 2, 3, 10]
        if fmt.startswith("np.") and fmt not in ("np.float64", "np.object"):
            info = np.iinfo(np.dtype(fmt[3:]))
            return [v for v in values if info.min <= v <= info.max] or [0]
        if fmt == "np.float64":
            return [float(v) for v in values if abs(v) < 2**53] + [1.5, float("nan"), float("inf"), -0.0]
        if fmt == "pa.int64":
            return [v for v in values if -(2**63) <= v < 2**63] + [None]
        texts = [str(v) for v in values] + ["+7", "-0", " 5 ", "1.5", "abc", "", "   ", "٣", "99999999999999999999",
                                            "0x10", "1_0"]
        if fmt == "pa.string":
            return texts + [None]
        return values[:4] + texts[:4] + [True, None, 2.0, 2.5, Decimal("2"), Decimal("2.5"), "7"]
    if kind == "decimal":
        low, high = fact.interval
        ends = [Decimal(low.numerator) / Decimal(low.denominator), Decimal(high.numerator) / Decimal(high.denominator)]
        ends = [e.quantize(Decimal("0.0001")) for e in ends]
        decimals = ends + [e + Decimal("0.0001") for e in ends[1:]] + [e - Decimal("0.0001") for e in ends[:1]] + \
            [Decimal("0"), Decimal("1.5"), Decimal("-0.0001"), Decimal("2.5"), Decimal("12.3456"), Decimal("-7.25")]
        if fmt in ("pa.string", "pa.large_string"):
            return [str(d) for d in decimals] + ["2.00005", "1e3", "0.5", "abc", " 2.5", "", None, "NaN", "Infinity",
                                                 "1_000", ".5", "5.", "-0"]
        if fmt == "np.int64":
            return [int(d) for d in decimals] + [10**12, -(10**12)]
        if fmt.startswith("pa.decimal"):
            scale = int(fmt.split(",")[1][:-1])
            q = Decimal(1).scaleb(-scale)
            return [d.quantize(q) for d in decimals if abs(d) < Decimal(10) ** (8 if scale < 5 else 7)] + [None]
        if fmt == "np.float64":
            return [1.5, 2.0, float("nan"), -3.25]
        return decimals[:3] + [3, "4.5", " 6 ", 1.5, True, None, "x", Decimal("1.00001")]
    if kind == "boolean":
        if fmt == "np.bool":
            return [True, False]
        if fmt == "pa.bool":
            return [True, False, None]
        if fmt == "pa.string":
            return ["true", "False", "1", "0", "是", "否", "YES", "no", "y", "N", "t", "f", "maybe", "", " t ", None, "yes!"]
        if fmt == "pa.int64":
            return [0, 1, 2, None]
        return [True, False, "y", "否", 1, None, 0.0, "nope"]
    if kind == "date":
        low, high = fact.interval
        from ecorules.rules._types import days_to_date

        # month ends (2012-01-31 + 1 month has no corresponding day) among the usual values
        ends = [dt.date(2012, 1, 31), dt.date(2011, 8, 31), dt.date(2012, 2, 29), dt.date(2012, 3, 30)]
        dates = [days_to_date(low), days_to_date(high), dt.date(2012, 4, 14), dt.date(2011, 1, 1), *ends,
                 dt.date(2012, 5, 13), days_to_date(low) - dt.timedelta(days=1), days_to_date(high) + dt.timedelta(days=1)]
        if fmt == "pa.date32":
            return dates + [None]
        if fmt == "np.datetime64":
            return dates + [None]
        if fmt == "pa.string":
            return [d.isoformat() for d in dates] + ["2012年4月14日", "2012年04月14日", "2013-02-29", "2012-4-14",
                                                     "20120414", "2012-W15-6", " 2012-04-14 ", "", None, "0000-01-01",
                                                     "2012-13-01", "2013年2月29日", "２０１２年４月１４日", "2012年4月14"]
        if fmt == "pa.timestamp":
            return [dt.datetime(2012, 4, 14), None]
        return dates[:3] + ["2012-04-14", "bad", None, dt.datetime(2012, 4, 14, 1, 2), 20120414]
    if kind == "enum":
        choices = list(fact.type.choices)
        pool = choices * 2 + [f" {choices[0]} ", "nope", "", None, choices[-1].lower() + "?"]
        if fmt == "np.str":
            return [x for x in pool if isinstance(x, str)]
        if fmt == "np.object":
            pool += [1, True]
        return pool
    # string
    pool = list(dict.fromkeys(literals[:4] + TEXTS + [" alpha ", "", None, "   ", "other"]))
    if fmt == "np.str":
        return [x for x in pool if isinstance(x, str)]
    if fmt == "np.object":
        pool += [5]
    return pool


# How a column of each format holds an empty cell (none for numpy ints and bools).
_EMPTY = {"np.str": ["", "  "], "np.float64": [float("nan")], "np.int64": [], "np.int32": [], "np.int16": [],
          "np.int8": [], "np.uint8": [], "np.uint16": [], "np.bool": [], "pa.string": [None, ""],
          "np.object": [None, " "], "pa.large_string": [None, ""], "pa.dictionary": [None, ""]}


def build_column(fmt: str, pool: list, index: np.ndarray):
    """The batch column of format ``fmt`` whose row i holds pool[index[i]]."""
    values = [pool[i] for i in range(len(pool))]
    if fmt.startswith("np."):
        name = fmt[3:]
        if name == "object":
            base = np.empty(len(values), dtype=object)
            base[:] = values
        elif name == "str":
            base = np.array(values, dtype=str)
        elif name == "datetime64":
            base = np.array([np.datetime64(v, "D") if v is not None else np.datetime64("NaT") for v in values], "M8[D]")
        elif name == "bool":
            base = np.array(values, dtype=bool)
        else:
            base = np.array(values, dtype=np.dtype(name))
        return base[index]
    name = fmt[3:]
    if name.startswith("decimal"):
        precision, scale = (int(x) for x in name[len("decimal("):-1].split(","))
        base = pa.array(values, pa.decimal128(precision, scale))
    elif name == "dictionary":
        base = pa.array(values, pa.string()).dictionary_encode()
    else:
        arrow_type = {"int64": pa.int64(), "string": pa.string(), "large_string": pa.large_string(),
                      "string_view": pa.string_view(), "bool": pa.bool_(), "date32": pa.date32(),
                      "timestamp": pa.timestamp("us")}[name]
        if name == "string_view":  # no take kernel for string_view: take, then cast
            return pa.array(values, pa.large_string()).take(pa.array(index)).cast(arrow_type)
        base = pa.array(values, arrow_type)
    return base.take(pa.array(index))


@st.composite
def batches(draw, facts: dict[str, Fact], columns: tuple[str, ...], literals: dict[str, list], rows: int):
    """(formats, pools, index arrays, seed) for ``rows`` rows of ``columns``."""
    formats, pools, index = {}, {}, {}
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    for name in columns:
        fact = facts[name]
        kind = "string" if fact.format == "uscc" else fact.type.kind.value
        fmt = draw(st.sampled_from(FORMATS[kind] if fact.format != "uscc" else ["pa.string", "np.str", "np.object"]))
        pool = raw_pool(draw, fact, fmt, literals.get(name, []))
        if fact.optional:  # empty cells among the usual (heavily weighted) values
            pool = _EMPTY.get(fmt, [None]) + pool
        # mostly valid rows: invalid pool values get a small weight
        weights = np.ones(len(pool))
        weights[len(pool) // 2:] = draw(st.sampled_from([0.02, 0.1, 0.5]))
        index[name] = rng.choice(len(pool), size=rows, p=weights / weights.sum()).astype(np.int64)
        formats[name] = fmt
        pools[name] = pool
    return formats, pools, index, seed


def table_of(formats: dict, pools: dict, index: dict, chunked: bool) -> Any:
    """The batch as a dict of columns, or as an Arrow table cut into several chunks."""
    columns = {name: build_column(formats[name], pools[name], index[name]) for name in formats}
    if not chunked:
        return columns
    n = len(next(iter(index.values()))) if index else 0
    cut = [0, n // 3, n // 3 + 1, n]
    arrays = {}
    for name, column in columns.items():
        array = column if isinstance(column, pa.Array) else pa.array(column, from_pandas=False) \
            if not (isinstance(column, np.ndarray) and column.dtype == object) else None
        if array is None:
            return columns  # mixed Python objects cannot become Arrow: keep the dict
        arrays[name] = pa.chunked_array([array.slice(a, b - a) for a, b in zip(cut, cut[1:], strict=False)], array.type)
    return pa.table(arrays)


def record_pools(formats: dict, pools: dict) -> dict:
    """Pool values as a row of the batch holds them: ``to_pylist()`` of an Arrow column,
    ``tolist()`` of a numpy one (Arrow drops the sign of -0.00, numpy 'U' makes text...)."""
    out = {}
    for name, pool in pools.items():
        column = build_column(formats[name], pool, np.arange(len(pool)))
        out[name] = column.to_pylist() if isinstance(column, pa.Array) else column.tolist()
    return out


__all__ = ["batches", "policy_files", "record_pools", "table_of"]
