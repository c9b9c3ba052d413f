"""The checker: the type of every construct, interval analysis, constant folding, and every
type error with its message and the column it points at (column = position in the text)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
from ecorules.rules import Kind, PolicyTypeError, Span, Symbol, check, parse_expression
from ecorules.rules import _ast as ast
from ecorules.rules._types import BOOLEAN, DATE, DECIMAL, INTEGER, STRING, date_to_days, enum_type

DISTRICT = enum_type(["金水区", "二七区", "中原区"])
SCOPE = {
    "n": Symbol("fact", INTEGER, (0, 100)),
    "big": Symbol("fact", INTEGER, (-(2**31), 2**31 - 1)),
    "d": Symbol("fact", DECIMAL, (Fraction(-1000), Fraction(1000))),
    "flag": Symbol("fact", BOOLEAN),
    "name": Symbol("fact", STRING),
    "district": Symbol("fact", DISTRICT),
    "day": Symbol("fact", DATE, (date_to_days(dt.date(2000, 1, 1)), date_to_days(dt.date(2030, 12, 31)))),
    "rate": Symbol("parameter", INTEGER, (1, 10)),
    "maybe_zero": Symbol("parameter", INTEGER, (0, 10)),
    "share": Symbol("parameter", DECIMAL, (Fraction(1, 2), Fraction(3))),
    "enabled": Symbol("parameter", BOOLEAN),
    "as_of": Symbol("builtin", DATE, (date_to_days(dt.date(1900, 1, 1)), date_to_days(dt.date(2999, 12, 31)))),
}


def locator(text):
    return lambda offset, length: Span("p.yaml", 1, offset + 1, 1, offset + 1 + length, text)


def typed(text, expect=None, what="expression"):
    return check(parse_expression(text, locator(text)), SCOPE, expect, what)


def type_error(text, expect=None, what="expression") -> PolicyTypeError:
    with pytest.raises(PolicyTypeError) as caught:
        typed(text, expect, what)
    return caught.value


# -- types of every construct ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("n", Kind.INTEGER), ("d", Kind.DECIMAL), ("flag", Kind.BOOLEAN), ("name", Kind.STRING),
        ("district", Kind.ENUM), ("day", Kind.DATE), ("as_of", Kind.DATE), ("rate", Kind.INTEGER),
        ("share", Kind.DECIMAL), ("enabled", Kind.BOOLEAN),
        ("-n", Kind.INTEGER), ("-d", Kind.DECIMAL), ("not flag", Kind.BOOLEAN),
        ("n + rate", Kind.INTEGER), ("n - 1", Kind.INTEGER), ("n * rate", Kind.INTEGER),
        ("n + d", Kind.DECIMAL), ("d - n", Kind.DECIMAL), ("n * 1.5", Kind.DECIMAL),
        ("n / rate", Kind.DECIMAL), ("n / 2", Kind.DECIMAL), ("d / share", Kind.DECIMAL),
        ("day + n", Kind.DATE), ("n + day", Kind.DATE), ("day - 30", Kind.DATE), ("as_of - day", Kind.INTEGER),
        ("n < d", Kind.BOOLEAN), ("day >= date('2012-04-14')", Kind.BOOLEAN),
        ("district == '金水区'", Kind.BOOLEAN), ("name != 'x'", Kind.BOOLEAN), ("flag == enabled", Kind.BOOLEAN),
        ("flag and n > 1", Kind.BOOLEAN), ("flag or enabled or n == 0", Kind.BOOLEAN),
        ("district in ['金水区', '二七区']", Kind.BOOLEAN), ("n not in [1, rate]", Kind.BOOLEAN),
        ("min(n, rate)", Kind.INTEGER), ("max(n, d)", Kind.DECIMAL), ("min(day, as_of)", Kind.DATE),
        ("abs(n - 50)", Kind.INTEGER), ("abs(d)", Kind.DECIMAL),
        ("round(d)", Kind.INTEGER), ("floor(d * 2)", Kind.INTEGER), ("ceil(n / 3)", Kind.INTEGER), ("round(n)", Kind.INTEGER),
        ("if(flag, n, rate)", Kind.INTEGER), ("if(flag, n, d)", Kind.DECIMAL), ("if(flag, day, as_of)", Kind.DATE),
        ("if(flag, flag, enabled)", Kind.BOOLEAN), ("if(flag, district, '二七区')", Kind.ENUM),
        ("date('2012-04-14')", Kind.DATE),
    ],
)
def test_type_of_each_construct(text, kind):
    assert typed(text).type.kind is kind


def test_names_are_resolved_to_fact_parameter_or_builtin():
    node = typed("n * rate > 0 and day < as_of")
    kinds = {item.name: item.kind for item in ast.walk(node) if isinstance(item, ast.Name)}
    assert kinds == {"n": "fact", "rate": "parameter", "day": "fact", "as_of": "builtin"}


def test_every_node_of_a_checked_tree_is_typed():
    node = typed("if(flag, n * rate, round(d / 3)) > abs(n - 5) or district not in ['金水区']")
    assert all(item.type is not None for item in ast.walk(node))


def test_enum_literal_takes_the_enum_type():
    node = typed("district == '金水区'")
    assert node.right.type == DISTRICT
    node = typed("'金水区' == district")
    assert node.left.type == DISTRICT
    node = typed("district in ['金水区', '中原区']")
    assert all(option.type == DISTRICT for option in node.options)


def test_expected_type_is_enforced_only_when_given():
    assert typed("n + 1", INTEGER).type == INTEGER
    assert typed("d", "numeric").type == DECIMAL
    assert typed("n", "numeric").type == INTEGER


# -- intervals ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "interval"),
    [
        ("n", (0, 100)),
        ("n * rate", (0, 1000)),
        ("n - rate", (-10, 99)),
        ("-n", (-100, 0)),
        ("n / rate", (0, 100)),
        ("n / share", (0, 200)),
        ("abs(n - 30)", (0, 70)),
        ("abs(rate - 20)", (10, 19)),
        ("min(n, rate)", (0, 10)),
        ("max(n, rate)", (1, 100)),
        ("round(d / 3)", (-334, 334)),
        ("if(flag, n, rate * 20)", (0, 200)),
    ],
)
def test_interval_analysis(text, interval):
    assert typed(text).interval == interval


# -- constant folding ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1 + 2 * 3", 7),
        ("10 - 3 - 2", 5),
        ("7 / 2", Decimal("3.5")),
        ("1 / 3", Fraction(1, 3)),
        ("2.5 * 2", Decimal("5")),
        ("-(1 + 1)", -2),
        ("not true", False),
        ("true and false", False),
        ("false or true", True),
        ("1 < 2", True),
        ("1 == 1.0", True),
        ("2 in [1, 2]", True),
        ("2 not in [1, 2]", False),
        ("'a' == 'b'", False),
        ("round(2.5)", 3),
        ("round(-2.5)", -3),
        ("floor(-2.5)", -3),
        ("ceil(-2.5)", -2),
        ("abs(-4)", 4),
        ("min(3, 1, 2)", 1),
        ("max(1, 2.5)", Decimal("2.5")),
        ("if(1 > 2, 1, 2)", 2),
        ("date('2012-04-14') + 1", dt.date(2012, 4, 15)),
        ("date('2012-04-14') - date('2012-01-01')", 104),
        ("date('2012-03-01') - 1", dt.date(2012, 2, 29)),
    ],
)
def test_constant_expressions_fold_to_a_typed_literal(text, value):
    node = typed(text)
    assert isinstance(node, ast.Literal)
    assert node.value == value
    assert node.type is not None
    assert node.span.column == 1  # the folded literal keeps the span of the whole text


def test_folding_is_partial_around_names():
    node = typed("n + (2 * 3)")
    assert isinstance(node, ast.Binary) and isinstance(node.left, ast.Name)
    assert node.right == ast.Literal(6, type=INTEGER)
    node = typed("flag and 1 < 2")
    assert isinstance(node, ast.BoolOp) and node.operands[1] == ast.Literal(True, type=BOOLEAN)


def test_folded_integer_division_is_an_exact_decimal():
    node = typed("6 / 3")
    assert node.type == DECIMAL and node.value == 2
    third = typed("1 / 3")
    assert third.value == Fraction(1, 3) and third.scale == 3  # the kernel holds it as 1 at scale 3


# -- every type error: message and column --------------------------------------------------------
TYPE_ERRORS = [
    # check(expect=...)
    ("n + 1", BOOLEAN, "the expression must be boolean, but this is integer", 1),
    ("d * 2", INTEGER, "the expression must be integer, but this is decimal: wrap it in round(), floor() or ceil()", 1),
    ("flag", "numeric", "the expression must be a number, but this is boolean", 1),
    # literals and names
    ("n * 1.00005", None, "1.00005 has more than 4 decimal places", 5),
    ("n + countt", None, "unknown name 'countt': not a fact, parameter or built-in of this policy", 5),
    ("nn > 1", None, "unknown name 'nn': not a fact, parameter or built-in of this policy (did you mean 'n'?)", 1),
    ("distrct == '金水区'", None, "unknown name 'distrct': not a fact, parameter or built-in of this policy (did you mean 'district'?)", 1),
    ("asof < day", None, "unknown name 'asof': not a fact, parameter or built-in of this policy (did you mean 'as_of'?)", 1),
    # unary and binary operators
    ("1 + -flag", None, "'-' needs a number, but this is boolean", 6),
    ("not n", None, "'not' needs a true/false value, but this is integer", 5),
    ("n + flag", None, "'+' needs numbers, but this is boolean", 5),
    ("name * 2", None, "'*' needs numbers, but this is string", 1),
    ("day + day", None, "cannot compute date + date: dates allow date + days, date - days and date - date (days between)", 1),
    ("1 - day", None, "cannot compute integer - date: dates allow date + days, date - days and date - date (days between)", 1),
    ("day * 2", None, "cannot compute date * integer: dates allow date + days, date - days and date - date (days between)", 1),
    ("day + 1.5", None, "cannot compute date + decimal: dates allow date + days, date - days and date - date (days between)", 1),
    # division
    ("rate / n", None, "divide only by a constant or a parameter (this divisor reads 'n', which varies by record); compare by multiplying instead, e.g. 'a > b * 2'", 8),
    ("rate / (1 + n)", None, "divide only by a constant or a parameter (this divisor reads 'n', which varies by record); compare by multiplying instead, e.g. 'a > b * 2'", 9),
    ("n / (as_of - date('2000-01-01'))", None, "divide only by a constant or a parameter (this divisor reads 'as_of', which varies by record); compare by multiplying instead, e.g. 'a > b * 2'", 6),
    ("n / 0", None, "the divisor can be zero", 5),
    ("n / maybe_zero", None, "the divisor can be zero", 5),
    ("n / (rate - 1)", None, "the divisor can be zero", 6),
    ("n / (1 - 1)", None, "the divisor can be zero", 6),
    # comparisons
    ("name < 'a'", None, "string values can only be compared with == or !=", 1),
    ("flag >= true", None, "boolean values can only be compared with == or !=", 1),
    ("district > '金水区'", None, "enum values can only be compared with == or !=", 1),
    ("n == flag", None, "cannot compare integer with boolean", 1),
    ("day == 1", None, "cannot compare date with integer", 1),
    ("name == 1", None, "cannot compare string with integer", 1),
    ("district == n", None, "cannot compare enum with integer", 1),
    ("district == '金水'", None, "'金水' is not one of the values of district: 金水区, 二七区, 中原区 (did you mean '金水区'?)", 13),
    ("'xyz' != district", None, "'xyz' is not one of the values of district: 金水区, 二七区, 中原区", 1),
    ("district == name", None, "cannot compare district (one of 3 values) with name (string)", 13),
    ("name == name", None, "compare a text fact with a literal ('...'), not with another text value", 1),
    # in
    ("n in [1, n]", None, "list members must be literals or parameters", 10),
    ("n in [1, rate + 1]", None, "list members must be literals or parameters", 10),  # an error, not a crash
    ("n in [1, 'a']", None, "cannot compare integer with string", 10),
    ("district in ['金水区', '郑东']", None, "'郑东' is not one of the values of district: 金水区, 二七区, 中原区", 21),
    # calls
    ("mim(n, 1)", None, "unknown function mim(); known: min, max, abs, round, floor, ceil, if, date, add_days, add_months, add_years, days_between, is_set, value_or, amount_of, fired, add_working_days, working_days_between, working_day_on_or_after (did you mean 'min'?)", 1),
    ("sqrt(n)", None, "unknown function sqrt(); known: min, max, abs, round, floor, ceil, if, date, add_days, add_months, add_years, days_between, is_set, value_or, amount_of, fired, add_working_days, working_days_between, working_day_on_or_after", 1),
    ("day > date(20120414)", None, "date() takes one text literal: date('2012-04-14')", 7),
    ("date(name)", None, "date() takes one text literal: date('2012-04-14')", 1),
    ("date('2012-04-14', '2012-04-15')", None, "date() takes one text literal: date('2012-04-14')", 1),
    ("day > date('2012-13-01')", None, "'2012-13-01' is not a date in the form YYYY-MM-DD", 12),
    ("day > date('2012/04/14')", None, "'2012/04/14' is not a date in the form YYYY-MM-DD", 12),
    ("min(n)", None, "min() takes at least 2 arguments (got 1)", 1),
    ("max()", None, "max() takes at least 2 arguments (got 0)", 1),
    ("abs(n, 1)", None, "abs() takes 1 arguments (got 2)", 1),
    ("round()", None, "round() takes 1 arguments (got 0)", 1),
    ("if(flag, 1)", None, "if() takes 3 arguments (got 2)", 1),
    ("min(n, day)", None, "min() needs numbers or dates, all of one kind", 1),
    ("max(flag, flag)", None, "max() needs numbers or dates, all of one kind", 1),
    ("abs(flag)", None, "abs() needs a number", 5),
    ("abs(day)", None, "abs() needs a number", 5),
    ("round(name)", None, "round() needs a number", 7),
    ("floor(flag)", None, "floor() needs a number", 7),
    ("ceil(day)", None, "ceil() needs a number", 6),
    ("if(n, 1, 2)", None, "the first argument of if() is the condition, but this is integer", 4),
    ("if(flag, 1, 'a')", None, "the two branches of if() differ: integer and string", 1),
    ("if(flag, day, n)", None, "the two branches of if() differ: date and integer", 1),
    ("if(flag, district, 'x')", None, "'x' is not one of the values of district: 金水区, 二七区, 中原区", 20),
    # and / or
    ("flag and n", None, "'and' combines true/false values, but this is integer", 10),
    ("n or flag", None, "'or' combines true/false values, but this is integer", 1),
    # ranges the kernel can hold
    ("big * big * big", None, "this integer may reach -9,903,520,314,283,042,199,192,993,792 .. 9,903,520,309,671,356,180,765,605,888, beyond the range the batch kernel can hold; declare a smaller 'max'/'min' for 'big'", 1),
    ("day + big", None, "this date may reach day -2147472691 .. day 2147505926, beyond the range the batch kernel can hold; declare a smaller 'max'/'min' for 'day', 'big'", 1),
    ("9223372036854775807 + 1", None, "this integer may reach 9,223,372,036,854,775,808 .. 9,223,372,036,854,775,808, beyond the range the batch kernel can hold", 1),
    ("n + 9223372036854775808", None, "this integer may reach 9,223,372,036,854,775,808 .. 9,223,372,036,854,775,808, beyond the range the batch kernel can hold", 5),
    ("d * 1000000000000", None, "this decimal may reach -1,000,000,000,000,000 .. 1,000,000,000,000,000, beyond the range the batch kernel can hold exactly (in units of 1/10,000); declare a smaller 'max'/'min' for 'd'", 1),
]


@pytest.mark.parametrize(("text", "expect", "message", "column"), TYPE_ERRORS, ids=[t[0] for t in TYPE_ERRORS])
def test_type_error_message_and_column(text, expect, message, column):
    error = type_error(text, expect)
    assert str(error).splitlines()[0] == f"p.yaml:1:{column}: {message}"
    assert error.span.column == column


def test_what_names_the_expression_in_the_message():
    error = type_error("d * rate", INTEGER, what="amount of rule 'r1'")
    assert error.message.startswith("the amount of rule 'r1' must be integer, but this is decimal")


def test_suggestion_is_an_attribute_too():
    error = type_error("xyzzy > 0")
    assert error.suggestion is None
    assert type_error("distrct == '金水区'").suggestion == "district"
    assert type_error("district == '二七'").suggestion == "二七区"
    assert type_error("flor(d)").suggestion == "floor"


def test_the_kernel_range_is_exactly_int64():
    assert typed("9223372036854775807 + 0").value == 2**63 - 1
    assert typed("-9223372036854775807 - 1").value == -(2**63)
    assert "beyond the range" in type_error("-9223372036854775807 - 2").message


def test_division_by_a_parameter_that_cannot_be_zero_is_allowed():
    assert typed("n / rate").type == DECIMAL
    assert typed("n / share").type == DECIMAL
    assert typed("n / (rate + 1)").interval == (0, 50)


def test_string_type_is_not_comparable_with_enum_even_when_values_match():
    # a text fact could hold any value, so it cannot be compared with a closed list of values
    assert "cannot compare" in type_error("name == district").message
