"""The exact evaluator: the value of every construct on Python values.

Expressions are parsed and checked in a scope of facts and parameters, then evaluated with
values bound, so nothing is constant-folded away unless the test says so. The decimal oracle is
Python's :mod:`decimal` with ROUND_HALF_UP, which rounds halves away from zero (四舍五入).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pytest
from ecorules.rules import Symbol, check, evaluate, parse_expression
from ecorules.rules._types import BOOLEAN, DATE, DECIMAL, INTEGER, STRING, date_to_days, enum_type
from hypothesis import given
from hypothesis import strategies as st

SCOPE = {
    "n": Symbol("fact", INTEGER, (-1000, 1000)),
    "m": Symbol("fact", INTEGER, (-1000, 1000)),
    # a product of two is held exactly at scale 10**8 by the kernel: 10**10 x 10**8 fits int64
    "d": Symbol("fact", DECIMAL, (Fraction(-10**5), Fraction(10**5))),
    "e": Symbol("fact", DECIMAL, (Fraction(-10**5), Fraction(10**5))),
    "flag": Symbol("fact", BOOLEAN),
    "other": Symbol("fact", BOOLEAN),
    "name": Symbol("fact", STRING),
    "district": Symbol("fact", enum_type(["金水区", "二七区", "中原区"])),
    "day": Symbol("fact", DATE, (date_to_days(dt.date(2000, 1, 1)), date_to_days(dt.date(2030, 12, 31)))),
    "rate": Symbol("parameter", INTEGER, (1, 10)),
    "share": Symbol("parameter", DECIMAL, (Fraction(1, 10), Fraction(3))),
    "as_of": Symbol("builtin", DATE, (date_to_days(dt.date(1900, 1, 1)), date_to_days(dt.date(2999, 12, 31)))),
}
DEFAULTS = {
    "n": 0, "m": 0, "d": Decimal("0.0000"), "e": Decimal("0.0000"), "flag": False, "other": False,
    "name": "", "district": "金水区", "day": dt.date(2012, 4, 14), "rate": 3, "share": Decimal("0.5"),
    "as_of": dt.date(2012, 4, 14),
}


def value(text: str, **env):
    node = check(parse_expression(text), SCOPE)
    return evaluate(node, {**DEFAULTS, **env})


def D(text: str) -> Decimal:
    return Decimal(text)


# -- literals, names -----------------------------------------------------------------------------
def test_literals_and_names():
    assert value("42") == 42
    assert value("2.5") == D("2.5")
    assert value("'金水区'") == "金水区"
    assert value("true") is True and value("false") is False
    assert value("date('2012-04-14')") == dt.date(2012, 4, 14)
    assert value("n", n=7) == 7
    assert value("rate", rate=9) == 9
    assert value("as_of", as_of=dt.date(2020, 1, 2)) == dt.date(2020, 1, 2)
    assert value("district", district="二七区") == "二七区"


def test_an_unbound_name_is_a_key_error_naming_it():
    node = check(parse_expression("n + 1"), SCOPE)
    with pytest.raises(KeyError, match="no value bound for 'n'"):
        evaluate(node, {})


# -- unary, arithmetic ---------------------------------------------------------------------------
def test_unary_minus_and_not():
    assert value("-n", n=5) == -5
    assert value("-d", d=D("2.5")) == D("-2.5")
    assert value("not flag", flag=False) is True
    assert value("not not flag", flag=True) is True


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("n + m", {"n": 2, "m": 3}, 5),
        ("n - m", {"n": 2, "m": 3}, -1),
        ("n * m", {"n": -4, "m": 3}, -12),
        ("n * rate", {"n": 1000, "rate": 10}, 10_000),
    ],
)
def test_integer_arithmetic_stays_integer(text, env, expected):
    result = value(text, **env)
    assert result == expected and type(result) is int


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        # mixed integer/decimal promotes to an exact decimal
        ("n + d", {"n": 1, "d": D("2.5")}, Fraction(7, 2)),
        ("d - n", {"n": 3, "d": D("0.25")}, Fraction(-11, 4)),
        ("n * d", {"n": 3, "d": D("0.3333")}, Fraction(9999, 10000)),
        ("d * e", {"d": D("1.5"), "e": D("1.5")}, Fraction(9, 4)),
        # division is always a decimal, exact, even of two integers
        ("n / 4", {"n": 1}, Fraction(1, 4)),
        ("n / rate", {"n": 10, "rate": 2}, Fraction(5)),
        ("n / 3", {"n": 1}, Fraction(1, 3)),
        ("n / 3", {"n": -2}, Fraction(-2, 3)),
        ("n / 7", {"n": 22}, Fraction(22, 7)),
        ("d / share", {"d": D("1"), "share": D("0.3")}, Fraction(10, 3)),
        # past the fourth place nothing is rounded away
        ("d * e", {"d": D("0.0001"), "e": D("0.5")}, Fraction(1, 20000)),
        ("d * e", {"d": D("-0.0003"), "e": D("0.5")}, Fraction(-3, 20000)),
        ("d / 2", {"d": D("0.0005")}, Fraction(1, 4000)),
        ("d * e", {"d": D("0.0001"), "e": D("0.4999")}, Fraction(4999, 10**8)),
    ],
)
def test_decimal_arithmetic_is_exact(text, env, expected):
    result = value(text, **env)
    assert isinstance(result, Fraction) and result == expected


def test_the_order_of_operations_does_not_change_the_result():
    # rounding at each step made 1 / 3 * 3 0.9999 and 1 * 3 / 3 1.0000
    assert value("n / 3 * 3", n=1) == value("n * 3 / 3", n=1) == 1
    assert value("d / 3 * e", d=D("2"), e=D("30000")) == value("d * e / 3", d=D("2"), e=D("30000")) == 20000
    assert value("round(n / 3 * 30000)", n=1) == 10000  # 9999 when 1 / 3 was 0.3333 first


# -- rounding functions ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("d", "rounded", "floor", "ceil"),
    [
        ("2.5", 3, 2, 3),
        ("-2.5", -3, -3, -2),
        ("0.5", 1, 0, 1),
        ("-0.5", -1, -1, 0),
        ("1.4999", 1, 1, 2),
        ("-1.4999", -1, -2, -1),
        ("1.5001", 2, 1, 2),
        ("3", 3, 3, 3),
        ("-3", -3, -3, -3),
        ("999999.5", 1000000, 999999, 1000000),
    ],
)
def test_round_floor_ceil(d, rounded, floor, ceil):
    assert value("round(d)", d=D(d)) == rounded
    assert value("floor(d)", d=D(d)) == floor
    assert value("ceil(d)", d=D(d)) == ceil
    assert type(value("round(d)", d=D(d))) is int


def test_round_of_an_integer_division_rounds_the_exact_quotient_once():
    # 5 / 2 is exactly 2.5000 -> 3; 7 / 2 = 3.5 -> 4; -5 / 2 -> -3
    assert value("round(n / 2)", n=5) == 3
    assert value("round(n / 2)", n=7) == 4
    assert value("round(n / 2)", n=-5) == -3
    assert value("round(n)", n=-7) == -7


# -- dates -------------------------------------------------------------------------------------------
def test_date_arithmetic():
    day = dt.date(2012, 2, 28)
    assert value("day + n", day=day, n=1) == dt.date(2012, 2, 29)
    assert value("n + day", day=day, n=2) == dt.date(2012, 3, 1)
    assert value("day - n", day=day, n=59) == dt.date(2011, 12, 31)
    assert value("day + n", day=day, n=-28) == dt.date(2012, 1, 31)
    assert value("as_of - day", as_of=dt.date(2012, 4, 14), day=day) == 46
    assert value("day - as_of", as_of=dt.date(2012, 4, 14), day=day) == -46
    assert type(value("as_of - day")) is int
    assert value("day < as_of", day=day) is True
    assert value("day + 46 == as_of", day=day) is True


# -- comparisons -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("op", "results"),  # for (1 vs 1.0), (1 vs 1.5), (2 vs 1.5)
    [("==", (True, False, False)), ("!=", (False, True, True)), ("<", (False, True, False)),
     ("<=", (True, True, False)), (">", (False, False, True)), (">=", (True, False, True))],
)
def test_all_six_comparisons_between_integer_and_decimal(op, results):
    pairs = [(1, "1.0"), (1, "1.5"), (2, "1.5")]
    assert tuple(value(f"n {op} d", n=n, d=D(d)) for n, d in pairs) == results
    assert tuple(value(f"d {op} n", n=n, d=D(d)) for n, d in pairs) == tuple(
        value(f"n {mirror} d", n=n, d=D(d)) for n, d in pairs
        for mirror in [{"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)]
    )


def test_enums_and_text_against_literals():
    assert value("district == '二七区'", district="二七区") is True
    assert value("district == '二七区'", district="金水区") is False
    assert value("district != '二七区'", district="金水区") is True
    assert value("'二七区' == district", district="二七区") is True
    assert value("name == 'ACME 公司'", name="ACME 公司") is True
    assert value("name != ''", name="") is False


def test_in_and_not_in():
    assert value("district in ['金水区', '中原区']", district="中原区") is True
    assert value("district in ['金水区', '中原区']", district="二七区") is False
    assert value("district not in ['金水区', '中原区']", district="二七区") is True
    assert value("n in [1, rate, 7]", n=3, rate=3) is True
    assert value("n in [1, rate, 7]", n=4, rate=3) is False
    assert value("n not in [1, rate]", n=3, rate=3) is False
    assert value("d in [1, 2.5]", d=D("2.5000")) is True  # numeric equality across types


# -- and / or --------------------------------------------------------------------------------------
@pytest.mark.parametrize("flag", [False, True])
@pytest.mark.parametrize("other", [False, True])
@pytest.mark.parametrize("n", [0, 1])
def test_and_or_chains(flag, other, n):
    assert value("flag and other and n > 0", flag=flag, other=other, n=n) is (flag and other and n > 0)
    assert value("flag or other or n > 0", flag=flag, other=other, n=n) is (flag or other or n > 0)
    assert value("flag or other and n > 0", flag=flag, other=other, n=n) is (flag or (other and n > 0))
    assert value("not (flag or other) == (not flag and not other)", flag=flag, other=other) is True


# -- functions -------------------------------------------------------------------------------------
def test_min_max_abs():
    assert value("min(n, m)", n=3, m=-2) == -2
    assert value("max(n, m, rate)", n=3, m=-2, rate=9) == 9
    assert value("min(day, as_of)", day=dt.date(2011, 1, 1)) == dt.date(2011, 1, 1)
    assert value("max(day, as_of)", day=dt.date(2011, 1, 1)) == dt.date(2012, 4, 14)
    assert value("abs(n)", n=-5) == 5
    assert value("abs(d)", d=D("-0.0001")) == D("0.0001")


def test_min_max_mixed_promote_the_integer_result_to_a_decimal():
    result = value("min(n, d)", n=1, d=D("2.5"))
    assert isinstance(result, Fraction) and result == 1
    result = value("max(n, d)", n=1, d=D("0.5"))
    assert isinstance(result, Fraction) and result == 1


def test_if_chooses_a_branch_and_promotes_to_the_common_type():
    assert value("if(flag, n, m)", flag=True, n=1, m=2) == 1
    assert value("if(flag, n, m)", flag=False, n=1, m=2) == 2
    result = value("if(flag, n, d)", flag=True, n=1, d=D("2.5"))
    assert isinstance(result, Fraction) and result == 1
    assert value("if(flag, district, '中原区')", flag=False, district="金水区") == "中原区"
    assert value("if(n > 0, day, as_of)", n=1, day=dt.date(2001, 1, 1)) == dt.date(2001, 1, 1)
    assert value("if(flag, other, true)", flag=True, other=False) is False


# -- constant folding uses the same semantics ---------------------------------------------------------
@pytest.mark.parametrize(
    ("folded", "env_text", "env"),
    [
        ("round(2.5)", "round(d)", {"d": D("2.5")}),
        ("round(-2.5)", "round(d)", {"d": D("-2.5")}),
        ("1 / 3", "n / 3", {"n": 1}),
        ("-2 / 3", "n / 3", {"n": -2}),
        ("0.0001 * 0.5", "d * e", {"d": D("0.0001"), "e": D("0.5")}),
        ("date('2012-04-14') + 1", "day + n", {"day": dt.date(2012, 4, 14), "n": 1}),
    ],
)
def test_folding_agrees_with_evaluation(folded, env_text, env):
    node = check(parse_expression(folded), SCOPE)
    assert node.value == value(env_text, **env)


# -- against an independent oracle: Python's decimal arithmetic at ample precision --------------------
decimals = st.integers(min_value=-10**9, max_value=10**9).map(lambda i: Decimal(i).scaleb(-4))
integers = st.integers(min_value=-1000, max_value=1000)


@given(d=decimals, e=decimals)
def test_decimal_sums_and_products_are_exact(d, e):
    with localcontext() as context:
        context.prec = 60
        assert value("d * e", d=d, e=e) == d * e
        assert value("d + e", d=d, e=e) == d + e
        assert value("d - e", d=d, e=e) == d - e


@given(d=decimals, n=integers.filter(lambda v: v != 0))
def test_decimal_quotient_is_exact(d, n):
    share = Decimal(n).scaleb(-1) if abs(n) <= 30 and n > 0 else Decimal("0.3")
    assert value("d / share", d=d, share=share) == Fraction(d) / Fraction(share)
    assert value("d / 7", d=d) * 7 == d


@given(d=decimals)
def test_round_matches_round_half_up_to_units(d):
    with localcontext() as context:
        context.prec = 60
        assert value("round(d)", d=d) == int(d.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        assert value("floor(d)", d=d) == int(d.to_integral_value(rounding="ROUND_FLOOR"))
        assert value("ceil(d)", d=d) == int(d.to_integral_value(rounding="ROUND_CEILING"))


def test_decimal_type_is_never_float():
    for text in ["n / 3", "d * e", "n + d", "min(n, d)", "if(flag, n, d)"]:
        assert not isinstance(value(text, n=1, d=D("0.1"), e=D("0.2")), float)
    assert check(parse_expression("n / 3"), SCOPE).type == DECIMAL
    assert check(parse_expression("flag"), SCOPE).type == BOOLEAN
