"""Tokenizer and recursive-descent parser for policy expressions.

Grammar, loosest binding first::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := sum [("==" | "!=" | "<" | "<=" | ">" | ">=") sum
                      | ["not"] "in" "[" expr ("," expr)* "]"]
    sum        := term (("+" | "-") term)*
    term       := unary (("*" | "/") unary)*
    unary      := "-" unary | primary
    primary    := NUMBER | STRING | "true" | "false" | NAME
                | NAME "(" [expr ("," expr)*] ")" | "(" expr ")"

Nothing here evaluates anything: the result is a tree of :mod:`._ast` nodes. Comparisons do
not chain (``a < b < c`` is an error that suggests ``and``), as legal text is clearer that way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

import attrs

from . import _ast as ast
from ._errors import PolicySyntaxError, Span

MAX_EXPRESSION_LENGTH = 2000
MAX_EXPRESSION_DEPTH = 50

KEYWORDS = {"and", "or", "not", "in", "true", "false"}
COMPARISONS = {"==", "!=", "<", "<=", ">", ">="}

# Characters an input method slips in for their ASCII twins; say which one was meant.
FULL_WIDTH = {"（": "(", "）": ")", "，": ",", "＝": "==", "＜": "<", "＞": ">", "＋": "+",
              "－": "-", "＊": "*", "／": "/", "【": "[", "】": "]", "‘": "'", "’": "'",
              "“": '"', "”": '"', "！": "!"}

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>\d[\d_]*(\.\d[\d_]*)?)
  | (?P<string>'[^'\n]*'|"[^"\n]*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|\+|-|\*|/|\(|\)|\[|\]|,)
    """,
    re.VERBOSE,
)


@attrs.frozen
class Token:
    kind: str  # number, string, name, keyword, op, end
    text: str
    offset: int


Locate = Callable[[int, int], Span | None]


def tokenize(text: str, locate: Locate) -> list[Token]:
    tokens, offset = [], 0
    while offset < len(text):
        match = _TOKEN.match(text, offset)
        if match is None:
            char = text[offset]
            if char in FULL_WIDTH:
                message = f"full-width character {char!r}: use {FULL_WIDTH[char]!r}"
            elif char in "'\"":
                message = "string is not closed on this line"
            elif char == "=":
                message = "'=' alone is not an operator: use '==' to compare"
            elif char == "&" or char == "|":
                message = f"{char!r} is not an operator: use 'and' / 'or'"
            else:
                message = f"unexpected character {char!r}"
            raise PolicySyntaxError(message, locate(offset, 1))
        kind = match.lastgroup
        if kind != "space":
            word = match.group()
            if kind == "name" and word in KEYWORDS:
                kind = "keyword"
            tokens.append(Token(kind, word, offset))
        offset = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class Parser:
    def __init__(self, text: str, locate: Locate):
        if len(text) > MAX_EXPRESSION_LENGTH:
            raise PolicySyntaxError(
                f"expression longer than {MAX_EXPRESSION_LENGTH} characters", locate(0, 1)
            )
        self.text = text
        self.locate = locate
        self.tokens = tokenize(text, locate)
        self.position = 0
        self.depth = 0

    # -- helpers ---------------------------------------------------------------------------
    @property
    def current(self) -> Token:
        return self.tokens[self.position]

    def advance(self) -> Token:
        token = self.current
        self.position += 1
        return token

    def at(self, *texts: str) -> bool:
        token = self.current
        return token.kind in ("op", "keyword") and token.text in texts

    def expect(self, text: str, context: str) -> Token:
        if not self.at(text):
            raise self.error(f"expected {text!r} {context}, found {self.describe(self.current)}")
        return self.advance()

    def describe(self, token: Token) -> str:
        return "the end of the expression" if token.kind == "end" else repr(token.text)

    def error(self, message: str, token: Token | None = None) -> PolicySyntaxError:
        token = token or self.current
        return PolicySyntaxError(message, self.locate(token.offset, max(1, len(token.text))))

    def span(self, start: Token, end_offset: int | None = None) -> Span | None:
        end = end_offset if end_offset is not None else self.tokens[self.position - 1].offset + len(
            self.tokens[self.position - 1].text
        )
        return self.locate(start.offset, max(1, end - start.offset))

    # -- grammar ---------------------------------------------------------------------------
    def parse(self) -> ast.Node:
        if self.current.kind == "end":
            raise self.error("empty expression")
        node = self.expr()
        if self.current.kind != "end":
            token = self.current
            hint = " (missing 'and' / 'or' or an operator?)" if token.kind in ("name", "number") else ""
            raise self.error(f"unexpected {self.describe(token)} after a complete expression{hint}")
        return node

    def expr(self) -> ast.Node:
        self.enter()
        try:
            return self.boolean("or", self.and_expr)
        finally:
            self.depth -= 1

    def enter(self) -> None:
        """One more level of tree depth; every recursive stage of the parser and checker
        recurses per level, so the depth is bounded here, not by Python's recursion limit."""
        self.depth += 1
        if self.depth > MAX_EXPRESSION_DEPTH:
            raise self.error(f"expression nested deeper than {MAX_EXPRESSION_DEPTH} levels")

    def and_expr(self) -> ast.Node:
        return self.boolean("and", self.not_expr)

    def boolean(self, op: str, operand: Callable[[], ast.Node]) -> ast.Node:
        start = self.current
        operands = [operand()]
        while self.at(op):
            self.advance()
            operands.append(operand())
        if len(operands) == 1:
            return operands[0]
        return ast.BoolOp(op, tuple(operands), span=self.span(start))

    def not_expr(self) -> ast.Node:
        if self.at("not"):
            start = self.advance()
            self.enter()
            try:
                operand = self.not_expr()
            finally:
                self.depth -= 1
            return ast.Unary("not", operand, span=self.span(start))
        return self.comparison()

    def comparison(self) -> ast.Node:
        start = self.current
        left = self.sum()
        if self.current.text in COMPARISONS and self.current.kind == "op":
            op = self.advance().text
            right = self.sum()
            node = ast.Compare(op, left, right, span=self.span(start))
            if self.current.text in COMPARISONS and self.current.kind == "op":
                raise self.error("comparisons do not chain: write 'a < b and b < c'")
            return node
        negated = False
        if self.at("not") and self.tokens[self.position + 1].text == "in":
            self.advance()
            negated = True
        if self.at("in"):
            self.advance()
            self.expect("[", "after 'in' (a list such as ['金水区', '二七区'])")
            options = [self.expr()]
            while self.at(","):
                self.advance()
                options.append(self.expr())
            self.expect("]", "to close the list")
            return ast.In(left, tuple(options), negated, span=self.span(start))
        return left

    def sum(self) -> ast.Node:
        return self.arithmetic(("+", "-"), self.term)

    def term(self) -> ast.Node:
        return self.arithmetic(("*", "/"), self.unary)

    def arithmetic(self, ops: tuple[str, ...], operand: Callable[[], ast.Node]) -> ast.Node:
        start = self.current
        node = operand()
        chained = 0  # a left-associative chain nests one level per operator
        try:
            while self.current.kind == "op" and self.current.text in ops:
                op = self.advance().text
                self.enter()
                chained += 1
                node = ast.Binary(op, node, operand(), span=self.span(start))
        finally:
            self.depth -= chained
        return node

    def unary(self) -> ast.Node:
        if self.current.kind == "op" and self.current.text == "-":
            start = self.advance()
            self.enter()
            try:
                operand = self.unary()
            finally:
                self.depth -= 1
            if isinstance(operand, ast.Literal) and not isinstance(operand.value, bool | str):
                return ast.Literal(-operand.value, span=self.span(start))
            return ast.Unary("-", operand, span=self.span(start))
        return self.primary()

    def primary(self) -> ast.Node:
        token = self.current
        if token.kind == "number":
            self.advance()
            text = token.text.replace("_", "")
            value = Decimal(text) if "." in text else int(text)
            return ast.Literal(value, span=self.span(token))
        if token.kind == "string":
            self.advance()
            return ast.Literal(token.text[1:-1], span=self.span(token))
        if token.kind == "keyword" and token.text in ("true", "false"):
            self.advance()
            return ast.Literal(token.text == "true", span=self.span(token))
        if token.kind == "name":
            self.advance()
            if self.at("("):
                self.advance()
                args = []
                if not self.at(")"):
                    args.append(self.expr())
                    while self.at(","):
                        self.advance()
                        args.append(self.expr())
                self.expect(")", f"to close the call of {token.text}()")
                return ast.Call(token.text, tuple(args), span=self.span(token))
            return ast.Name(token.text, span=self.span(token))
        if self.at("("):
            self.advance()
            node = self.expr()
            self.expect(")", "to close '('")
            return node
        if token.kind == "end":
            raise self.error("the expression ends too early: an operand is missing")
        raise self.error(f"unexpected {self.describe(token)}: expected a number, a name or '('")


def parse_expression(text: str, locate: Locate | None = None) -> ast.Node:
    """Parse ``text`` into an untyped AST. ``locate(offset, length)`` maps to file spans."""
    if not isinstance(text, str):
        raise TypeError(f"expression must be a str (got {type(text).__name__})")
    return Parser(text, locate or (lambda offset, length: None)).parse()
