"""The expression parser: every construct's tree, precedence, spans, and every syntax error.

Errors are asserted on their message text and on the column they point at; ``expr`` below
maps an offset in the expression to column ``offset + 1`` of line 1 of a file named ``expr``,
so the column in ``str(error)`` is the 1-based position in the expression text.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from ecorules.rules import PolicySyntaxError, Span, parse_expression, render
from ecorules.rules import _ast as ast
from ecorules.rules._parser import MAX_EXPRESSION_DEPTH, MAX_EXPRESSION_LENGTH


def locator(text: str):
    def locate(offset: int, length: int) -> Span:
        return Span("expr", 1, offset + 1, 1, offset + 1 + length, text)

    return locate


def parse(text: str) -> ast.Node:
    return parse_expression(text, locator(text))


def syntax_error(text: str) -> PolicySyntaxError:
    with pytest.raises(PolicySyntaxError) as caught:
        parse(text)
    return caught.value


# -- literals and names ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("42", 42),
        ("1_000_000", 1_000_000),
        ("9223372036854775807", 2**63 - 1),
        ("2.5", Decimal("2.5")),
        ("0.0001", Decimal("0.0001")),
        ("10_000.50", Decimal("10000.50")),
        ("'金水区'", "金水区"),
        ('"double quoted"', "double quoted"),
        ("''", ""),
        ("true", True),
        ("false", False),
    ],
)
def test_literals(text, value):
    node = parse(text)
    assert isinstance(node, ast.Literal)
    assert node.value == value
    assert type(node.value) is type(value)  # a decimal is never a float, a bool never an int


def test_decimal_literal_keeps_its_exact_text():
    assert parse("0.1").value == Decimal("0.1")  # not Decimal(0.1), which is 0.1000000000000000055...
    assert not isinstance(parse("0.1").value, float)


def test_names_and_as_of():
    assert parse("untreated_outfalls") == ast.Name("untreated_outfalls")
    assert parse("as_of") == ast.Name("as_of")
    assert parse("_x1") == ast.Name("_x1")


def test_keywords_are_not_names():
    assert parse("true") == ast.Literal(True)
    error = syntax_error("in")
    assert error.message == "unexpected 'in': expected a number, a name or '('"
    assert error.span.column == 1


def test_date_is_a_call_of_a_text_literal():
    assert parse("date('2012-04-14')") == ast.Call("date", (ast.Literal("2012-04-14"),))


@pytest.mark.parametrize(
    ("text", "function", "arity"),
    [("min(a, b)", "min", 2), ("max(a, b, c)", "max", 3), ("abs(a)", "abs", 1), ("round(a)", "round", 1),
     ("floor(a)", "floor", 1), ("ceil(a)", "ceil", 1), ("if(a, b, c)", "if", 3), ("f()", "f", 0)],
)
def test_calls(text, function, arity):
    node = parse(text)
    assert isinstance(node, ast.Call)
    assert node.function == function
    assert len(node.args) == arity
    assert all(isinstance(arg, ast.Name) for arg in node.args)


def test_call_arguments_are_full_expressions():
    node = parse("if(a > 1 and b, x * 2, -y)")
    condition, when_true, when_false = node.args
    assert isinstance(condition, ast.BoolOp) and condition.op == "and"
    assert when_true == ast.Binary("*", ast.Name("x"), ast.Literal(2))
    assert when_false == ast.Unary("-", ast.Name("y"))


# -- operators and precedence ------------------------------------------------------------------
def test_unary_minus_on_a_number_folds_into_the_literal():
    assert parse("-3") == ast.Literal(-3)
    assert parse("-2.5") == ast.Literal(Decimal("-2.5"))
    assert parse("--3") == ast.Literal(3)
    assert parse("-x") == ast.Unary("-", ast.Name("x"))


def test_not():
    assert parse("not flag") == ast.Unary("not", ast.Name("flag"))
    assert parse("not not flag") == ast.Unary("not", ast.Unary("not", ast.Name("flag")))


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_arithmetic_operators(op):
    assert parse(f"a {op} b") == ast.Binary(op, ast.Name("a"), ast.Name("b"))


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_comparison_operators(op):
    assert parse(f"a {op} 1") == ast.Compare(op, ast.Name("a"), ast.Literal(1))


def test_multiplication_binds_tighter_than_addition():
    assert parse("1 + 2 * 3") == ast.Binary("+", ast.Literal(1), ast.Binary("*", ast.Literal(2), ast.Literal(3)))
    assert parse("(1 + 2) * 3") == ast.Binary("*", ast.Binary("+", ast.Literal(1), ast.Literal(2)), ast.Literal(3))


def test_arithmetic_is_left_associative():
    assert parse("10 - 3 - 2") == ast.Binary("-", ast.Binary("-", ast.Literal(10), ast.Literal(3)), ast.Literal(2))
    assert parse("8 / 4 / 2") == ast.Binary("/", ast.Binary("/", ast.Literal(8), ast.Literal(4)), ast.Literal(2))


def test_unary_minus_binds_tighter_than_multiplication():
    assert parse("-a * b") == ast.Binary("*", ast.Unary("-", ast.Name("a")), ast.Name("b"))


def test_comparison_binds_tighter_than_not_and_not_tighter_than_and_or():
    assert parse("not a == b") == ast.Unary("not", ast.Compare("==", ast.Name("a"), ast.Name("b")))
    node = parse("a or b and not c")
    assert node == ast.BoolOp("or", (ast.Name("a"), ast.BoolOp("and", (ast.Name("b"), ast.Unary("not", ast.Name("c"))))))


def test_and_or_chains_are_flat():
    node = parse("a and b and c")
    assert node == ast.BoolOp("and", (ast.Name("a"), ast.Name("b"), ast.Name("c")))
    node = parse("a or b or c or d")
    assert node.op == "or" and len(node.operands) == 4


def test_arithmetic_inside_comparisons():
    node = parse("x + 1 > y * 2")
    assert node == ast.Compare(">", ast.Binary("+", ast.Name("x"), ast.Literal(1)), ast.Binary("*", ast.Name("y"), ast.Literal(2)))


def test_in_and_not_in():
    assert parse("k in ['a', 'b']") == ast.In(ast.Name("k"), (ast.Literal("a"), ast.Literal("b")))
    assert parse("k not in ['a']") == ast.In(ast.Name("k"), (ast.Literal("a"),), negated=True)
    # 'not k in [...]' is the negation of the membership, by precedence
    assert parse("not k in ['a']") == ast.Unary("not", ast.In(ast.Name("k"), (ast.Literal("a"),)))
    assert parse("n + 1 in [p, 2]") == ast.In(ast.Binary("+", ast.Name("n"), ast.Literal(1)), (ast.Name("p"), ast.Literal(2)))


def test_whitespace_and_newlines_do_not_matter():
    assert parse("a  >\n 1\tand b") == parse("a > 1 and b")


# -- spans -------------------------------------------------------------------------------------
def test_every_node_carries_the_span_of_its_text():
    text = "district == '金水区' and untreated_outfalls * 2 > limit"
    node = parse(text)

    def text_of(n):
        return text[n.span.column - 1 : n.span.end_column - 1]

    assert text_of(node) == text
    left, right = node.operands
    assert text_of(left) == "district == '金水区'"
    assert text_of(left.right) == "'金水区'"
    assert text_of(right) == "untreated_outfalls * 2 > limit"
    assert text_of(right.left) == "untreated_outfalls * 2"
    assert text_of(right.right) == "limit"
    assert (right.right.span.line, right.right.span.column) == (1, len(text) - 4)


def test_render_gives_canonical_text_that_parses_back_to_the_same_tree():
    for text in ["1 + 2 * 3", "not a and (b or c)", "k not in ['x', 'y']", "if(a, -b, 2.5) >= date('2012-04-14')"]:
        tree = parse(text)
        assert parse(render(tree)) == tree
    assert render(parse("1 + 2 * 3")) == "(1 + (2 * 3))"


def test_without_a_locator_errors_have_no_position():
    with pytest.raises(PolicySyntaxError) as caught:
        parse_expression("a = 1")
    assert caught.value.span is None
    assert str(caught.value) == "'=' alone is not an operator: use '==' to compare"


def test_only_text_is_parsed():
    with pytest.raises(TypeError, match="expression must be a str"):
        parse_expression(3)


# -- every syntax error: message and column ----------------------------------------------------
SYNTAX_ERRORS = [
    # tokenizer
    ("untreated_outfalls（1）", "full-width character '（': use '('", 19),
    ("a ， b", "full-width character '，': use ','", 3),
    ("a ＞ 1", "full-width character '＞': use '>'", 3),
    ("district == ‘金水区’", "full-width character '‘': use \"'\"", 13),
    ("a ＝＝ 1", "full-width character '＝': use '=='", 3),
    ("district == '金水区", "string is not closed on this line", 13),
    ('district == "金水区', "string is not closed on this line", 13),
    ("untreated_outfalls = 1", "'=' alone is not an operator: use '==' to compare", 20),
    ("a > 1 & b", "'&' is not an operator: use 'and' / 'or'", 7),
    ("a | b", "'|' is not an operator: use 'and' / 'or'", 3),
    ("a # comment", "unexpected character '#'", 3),
    ("a.b", "unexpected character '.'", 2),
    ("1.", "unexpected character '.'", 2),
    # parser
    ("", "empty expression", 1),
    ("a in 1", "expected '[' after 'in' (a list such as ['金水区', '二七区']), found '1'", 6),
    ("a in ['x' 'y']", "expected ']' to close the list, found \"'y'\"", 11),
    ("a in ['x',", "the expression ends too early: an operand is missing", 11),
    ("min(a, 1", "expected ')' to close the call of min(), found the end of the expression", 9),
    ("min(a 1)", "expected ')' to close the call of min(), found '1'", 7),
    ("(a + 1", "expected ')' to close '(', found the end of the expression", 7),
    ("a b", "unexpected 'b' after a complete expression (missing 'and' / 'or' or an operator?)", 3),
    ("a > 1 2", "unexpected '2' after a complete expression (missing 'and' / 'or' or an operator?)", 7),
    ("a )", "unexpected ')' after a complete expression", 3),
    ("a not b", "unexpected 'not' after a complete expression", 3),
    ("a < b < c", "comparisons do not chain: write 'a < b and b < c'", 7),
    ("0 <= a == 1", "comparisons do not chain: write 'a < b and b < c'", 8),
    ("a +", "the expression ends too early: an operand is missing", 4),
    ("not", "the expression ends too early: an operand is missing", 4),
    ("a * / b", "unexpected '/': expected a number, a name or '('", 5),
    ("[1]", "unexpected '[': expected a number, a name or '('", 1),
    ("a in []", "unexpected ']': expected a number, a name or '('", 7),
]


@pytest.mark.parametrize(("text", "message", "column"), SYNTAX_ERRORS, ids=[t for t, _, _ in SYNTAX_ERRORS])
def test_syntax_error_message_and_column(text, message, column):
    error = syntax_error(text)
    assert error.message == message
    assert error.span.column == column
    assert str(error).startswith(f"expr:1:{column}: {message}")


def test_error_shows_the_line_with_a_caret_under_the_offending_token():
    error = syntax_error("a > 1 2")
    assert str(error).splitlines()[1:] == ["    a > 1 2", "          ^"]
    error = syntax_error("a < b < c")
    assert str(error).splitlines()[2] == "    " + " " * 6 + "^"


def test_expression_too_long():
    text = "a + " * (MAX_EXPRESSION_LENGTH // 4) + "a"
    error = syntax_error(text)
    assert error.message == f"expression longer than {MAX_EXPRESSION_LENGTH} characters"
    assert error.span.column == 1
    # exactly the limit is fine (it fails later for depth, not length)
    assert "longer" not in syntax_error("a+" * (MAX_EXPRESSION_LENGTH // 2 - 1) + "aa").message


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("(" * (MAX_EXPRESSION_DEPTH + 1) + "a" + ")" * (MAX_EXPRESSION_DEPTH + 1), MAX_EXPRESSION_DEPTH + 1),
        ("-" * 1999 + "a", MAX_EXPRESSION_DEPTH + 1),  # was a RecursionError
        ("-" * 1999 + "1", MAX_EXPRESSION_DEPTH + 1),
        ("not " * 499 + "b", 4 * MAX_EXPRESSION_DEPTH + 1),
        ("a" + "+a" * 600, 2 * MAX_EXPRESSION_DEPTH + 1),  # a 600-level left-leaning tree
        ("f(" * 60 + "a" + ")" * 60, 2 * MAX_EXPRESSION_DEPTH + 1),
    ],
    ids=["parentheses", "minus-chain", "minus-literal-chain", "not-chain", "sum-chain", "calls"],
)
def test_nesting_deeper_than_the_limit_is_a_syntax_error(text, column):
    error = syntax_error(text)
    assert error.message == f"expression nested deeper than {MAX_EXPRESSION_DEPTH} levels"
    assert error.span.column == column


def test_nesting_up_to_the_limit_parses():
    depth = MAX_EXPRESSION_DEPTH - 1
    node = parse("(" * depth + "a" + ")" * depth)
    assert node == ast.Name("a")
    assert isinstance(parse("a" + "+a" * (MAX_EXPRESSION_DEPTH - 1)), ast.Binary)
    # flat and/or chains build one node, whatever their length
    assert len(parse(" or ".join(["a"] * 300)).operands) == 300
