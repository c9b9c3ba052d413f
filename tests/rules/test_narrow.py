"""Ranges narrowed by a rule's condition (rules/_narrow.py, check(..., when=...)): what narrows,
what does not, contradictions, and that the checks protecting the arithmetic are unchanged."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest
from ecorules.rules import PolicyTypeError, Span, Symbol, check, parse_expression
from ecorules.rules._check import assume
from ecorules.rules._narrow import Contradiction, narrow
from ecorules.rules._types import BOOLEAN, DATE, DECIMAL, INTEGER, date_to_days

DAY_LOW, DAY_HIGH = date_to_days(dt.date(2000, 1, 1)), date_to_days(dt.date(2030, 12, 31))
SCOPE = {
    "n": Symbol("fact", INTEGER, (0, 100)),
    "m": Symbol("fact", INTEGER, (0, 100)),
    "big": Symbol("fact", INTEGER, (-(2**31), 2**31 - 1)),
    "d": Symbol("fact", DECIMAL, (Fraction(-1000), Fraction(1000))),
    "day": Symbol("fact", DATE, (DAY_LOW, DAY_HIGH)),
    "flag": Symbol("fact", BOOLEAN),
    "rate": Symbol("parameter", INTEGER, (1, 10)),
    "share": Symbol("parameter", DECIMAL, (Fraction(1, 2), Fraction(3))),
    "as_of": Symbol("builtin", DATE, (date_to_days(dt.date(1900, 1, 1)), date_to_days(dt.date(2999, 12, 31)))),
}
FULL = {name: symbol.interval for name, symbol in SCOPE.items() if symbol.kind == "fact"}


def locator(text):
    return lambda offset, length: Span("p.yaml", 1, offset + 1, 1, offset + 1 + length, text)


def typed(text, expect=None):
    return check(parse_expression(text, locator(text)), SCOPE, expect)


def amount(text, when):
    return check(parse_expression(text, locator(text)), SCOPE, INTEGER, "amount", when=typed(when, BOOLEAN))


def narrowed(condition):
    """The fact intervals that differ from the declared ones when ``condition`` holds."""
    scope = assume(typed(condition, BOOLEAN), SCOPE)
    return {name: scope[name].interval for name in FULL if scope[name].interval != FULL[name]}


# -- what narrows ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("condition", "facts"),
    [
        ("n >= 2", {"n": (2, 100)}),
        ("n > 1", {"n": (2, 100)}),  # integers are whole
        ("n <= 5", {"n": (0, 5)}),
        ("n < 5", {"n": (0, 4)}),
        ("n == 7", {"n": (7, 7)}),
        ("n != 0", {"n": (1, 100)}),  # at an end of the range only
        ("n != 100", {"n": (0, 99)}),
        ("n != 50", {}),
        ("2 <= n", {"n": (2, 100)}),  # the constant on the left
        ("5 > n", {"n": (0, 4)}),
        ("n > 1.5", {"n": (2, 100)}),
        ("n < 1.5", {"n": (0, 1)}),
        ("n > 1 and m <= 5", {"n": (2, 100), "m": (0, 5)}),
        ("n > 1 and n < 10 and flag", {"n": (2, 9)}),
        ("n > rate", {"n": (2, 100)}),  # the smallest value the parameter takes
        ("n <= rate", {"n": (0, 10)}),  # the largest
        ("n == rate", {"n": (1, 10)}),
        ("n >= share", {"n": (1, 100)}),
        ("n > rate * 2", {"n": (3, 100)}),  # arithmetic of parameters and constants
        ("d > 1", {"d": (1, 1000)}),  # decimals keep closed bounds: wider, still sound
        ("d <= 2.5", {"d": (-1000, Fraction(5, 2))}),
        ("day > date('2012-04-14')", {"day": (date_to_days(dt.date(2012, 4, 15)), DAY_HIGH)}),
        ("n in [3, 7, rate]", {"n": (1, 10)}),
        # the negation forms of the parser: not, not in
        ("not (n < 2)", {"n": (2, 100)}),
        ("not n <= 1", {"n": (2, 100)}),
        ("not not (n > 1)", {"n": (2, 100)}),
        ("not (n <= 1 or m > 5)", {"n": (2, 100), "m": (0, 5)}),
        ("not (n == 0)", {"n": (1, 100)}),
    ],
)
def test_what_a_condition_narrows(condition, facts):
    assert narrowed(condition) == facts


@pytest.mark.parametrize(
    "condition",
    [
        "n > 1 or m <= 5",  # or does not narrow
        "n > 1 or flag",
        "not (n > 1 and m <= 5)",  # = n <= 1 or m > 5
        "max(n, 0) > 1",  # calls
        "n > m",  # two facts
        "n - 1 > 0",  # arithmetic of a fact
        "day > as_of",  # as_of's range is an assumption, not a bound
        "not (n in [1, 2])",
        "n not in [1, 2]",
        "flag",
        "true",
    ],
)
def test_what_does_not_narrow(condition):
    assert narrowed(condition) == {}


# -- amounts -----------------------------------------------------------------------------------------
def test_the_amount_is_ranged_under_its_condition():
    node = amount("(n - 1) * 1000000", "n >= 2")
    assert node.interval == (1_000_000, 99_000_000)
    # inner nodes keep the declared ranges: the kernel computes them on every row
    assert node.left.interval == (-1, 99)
    assert typed("(n - 1) * 1000000").interval == (-1_000_000, 99_000_000)


def test_both_facts_of_a_conjunction_narrow_the_amount():
    assert amount("(n - 2) * (5 - m)", "n > 1 and m <= 5").interval == (0, 490)
    assert amount("(n - 2) * (5 - m)", "n > 1 or m <= 5").interval[0] < 0


def test_if_branches_are_ranged_under_their_own_condition():
    assert amount("if(n >= 2, n - 1, 0)", "true").interval == (0, 99)
    assert amount("if(n < 2, 0, n - 1)", "flag").interval == (0, 99)
    assert amount("if(n > 500, n - 1000, 5)", "true").interval == (5, 5)  # never taken
    assert typed("if(n >= 2, n - 1, 0)").interval == (-1, 99)  # without when: as declared


def test_narrowing_never_relaxes_the_overflow_check():
    """The batch kernel computes an amount on every row and masks it afterwards, so the
    int64 proof must hold on the rows where the condition is false too."""
    with pytest.raises(PolicyTypeError, match="beyond the range the batch kernel can hold") as caught:
        amount("big * big * 4", "big >= 0 and big <= 10")
    assert caught.value.span.column == 1


@pytest.mark.parametrize(
    "condition",
    ["n > 200", "flag and n > 100", "n > 50 and n < 10", "not (n >= 0)", "n in [200, 300]",
     "not (n not in [200])", "n == 2.5", "day < date('1999-01-01')"],
)
def test_a_condition_that_can_never_be_true_narrows_nothing(condition):
    """Such a rule never fires; it loads (random policies in tests/engine contain them) and its
    amount is ranged as if it had no condition: the safe side, never an empty range."""
    with pytest.raises(Contradiction):
        narrow(typed(condition, BOOLEAN), FULL)
    assert assume(typed(condition, BOOLEAN), SCOPE) is None
    assert amount("n - 1", condition).interval == (-1, 99)  # the loader refuses it, as without


@pytest.mark.parametrize(
    ("condition", "column", "reason"),
    [
        ("n > 200", 1, "\"n > 200\" is never true: integer fact 'n' is declared from 0 to 100"),
        ("n > 50 and n < 10", 12,
         "\"n < 10\" is never true: integer fact 'n' is from 51 to 100 where the rest of the condition holds (declared from 0 to 100)"),
        ("not (n >= 0 or flag)", 6, "\"not (n >= 0)\" is never true: integer fact 'n' is declared from 0 to 100"),
        ("n in [200, 300]", 1, "\"n in [200, 300]\" is never true: integer fact 'n' is declared from 0 to 100"),
        ("n == 2.5", 1, "\"n == 2.5\" is never true: integer fact 'n' is declared from 0 to 100"),
        ("day < date('1999-01-01')", 1,
         "\"day < date('1999-01-01')\" is never true: date fact 'day' is declared from 2000-01-01 to 2030-12-31"),
        ("n > rate * 10 + 100", 1,
         "\"n > ((rate * 10) + 100)\" is never true: integer fact 'n' is declared from 0 to 100, "
         "and \"(rate * 10) + 100\" is from 110 to 200 over the dated values of 'rate'"),
        ("d * 1 > 0 and 1000.5 < d", 15,
         "\"1000.5 < d\" is never true: decimal fact 'd' is declared from -1000 to 1000"),
    ],
)
def test_a_contradiction_says_which_part_cannot_hold_and_why(condition, column, reason):
    with pytest.raises(Contradiction) as caught:
        narrow(typed(condition, BOOLEAN), FULL)
    assert caught.value.reason() == reason
    assert caught.value.node.span.column == column


def test_a_contradiction_inside_or_is_not_reported():
    assert narrowed("n > 200 or flag") == {}


def test_a_date_range_with_a_fractional_end_is_shown_as_the_whole_days_inside():
    """Narrowing can leave half a day at an end of a date's range (found by the case
    differential): the warning shows the days inside it instead of failing on the fraction."""
    from fractions import Fraction

    from ecorules.rules._narrow import _range
    from ecorules.rules._types import Kind

    # days 14610.5 to 14611.5 since 1970-01-01 hold one whole day, 14611
    assert _range((Fraction(29221, 2), Fraction(29223, 2)), Kind.DATE) == "exactly 2010-01-02"
    assert _range((Fraction(29221, 2), 14700), Kind.DATE) == "from 2010-01-02 to 2010-04-01"
