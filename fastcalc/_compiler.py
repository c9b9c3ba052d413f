"""Compile the typed rules of a policy set into one flat program for the kernel, once.

Every node of the language maps onto the instructions of ``_opcodes.py``:

* a subtree that reads no fact (literals, parameters, ``as_of``) is a *call constant*: its
  value is computed at score time by the reference evaluator (``rules.evaluate``) and patched
  into the immediate of the instruction that uses it, so a new parameter value or another
  ``as_of`` never recompiles anything;
* values are int64 (integers, decimals x 10**4, dates as days, enum codes, string dictionary
  codes) or uint8 (booleans); an integer meeting a decimal is multiplied by 10**4 first, which
  the compiler proves cannot overflow from the checker's intervals (else KernelError);
* strings are compared as codes: the codes of a string fact's column in the batch dictionary,
  and for a literal the code of its text in that dictionary (or a fresh code past the end
  when the batch lacks it), patched per batch.

Within a rule, equal subexpressions are computed once (value numbering); across rules only
the loaded columns are shared, so that a rule disabled for a call (its policy not in force, a
parameter without a value) skips exactly its own instructions (the ``gate`` field).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs
import numpy as np
from ecorules.rules import KernelError, Policy, PolicySet
from ecorules.rules import _ast as ast
from ecorules.rules._schema import ENTERPRISE, FindingKind
from ecorules.rules._types import DECIMAL_SCALE, INT64_MAX, INT64_MIN, Kind, Type, date_to_days

from . import _opcodes as opc

I64, U8 = opc.I64, opc.U8
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_COMPARE_OPS = {"==": "EQ", "!=": "NE", "<": "LT", "<=": "LE", ">": "GT", ">=": "GE"}


# -- constants ------------------------------------------------------------------------------
@attrs.frozen
class Fixed:
    """A constant known at compile time, in kernel representation."""

    value: int


@attrs.frozen
class Patch:
    """A constant known only at score time: a call constant or a string literal's code.

    ``what``: "value" (numbers, dates, booleans at ``scale``), "code" (a categorical value in
    ``domain``), "divisor" / "multiplier" (the two immediates of DIV_RK for a dividend of
    scale ``scale``). ``policy`` indexes the policy whose parameters the node reads.
    """

    what: str
    node: ast.Node
    policy: int
    scale: int = 1
    domain: tuple | None = None


Const = Fixed | Patch


@attrs.frozen
class Val:
    """A compiled value: a virtual register (``reg``) or a constant (``const``)."""

    vt: str
    reg: int | None = None
    const: Const | None = None

    @property
    def is_const(self) -> bool:
        return self.const is not None


# -- slots described by the program -------------------------------------------------------------
class RuleSlot(tuple):
    """(policy_key, rule_id): one row of ``fired``."""

    __slots__ = ()

    def __new__(cls, policy_key: str, rule_id: str):
        return super().__new__(cls, (policy_key, rule_id))

    policy_key = property(lambda self: self[0])
    rule_id = property(lambda self: self[1])


class FindingSlot(tuple):
    """(policy_key, rule_id, index, kind, payer): one row of ``amounts``."""

    __slots__ = ()

    def __new__(cls, policy_key: str, rule_id: str, index: int, kind: FindingKind, payer: str):
        return super().__new__(cls, (policy_key, rule_id, index, kind, payer))

    policy_key = property(lambda self: self[0])
    rule_id = property(lambda self: self[1])
    index = property(lambda self: self[2])
    kind = property(lambda self: self[3])
    payer = property(lambda self: self[4])


class SanctionSlot(tuple):
    """(policy_key, rule_id, list_id): one row of ``sanctions``."""

    __slots__ = ()

    def __new__(cls, policy_key: str, rule_id: str, list_id: str):
        return super().__new__(cls, (policy_key, rule_id, list_id))

    policy_key = property(lambda self: self[0])
    rule_id = property(lambda self: self[1])
    list_id = property(lambda self: self[2])


# -- the compiled program ----------------------------------------------------------------------------
@attrs.frozen
class Register:
    """One entry of the register table, before binding to a batch.

    ``role``: "scratch" (``slot``), "fact" (the value of ``name``: a view of its column when
    the column has the register's dtype, else a scratch slot filled by a LOAD), "raw" (a view
    of the narrow column of fact ``name``), "valid" (the accepted-rows mask) or "out"
    (``name`` = fired, amounts, sanctions, total, rewards; ``row`` in that output).
    """

    role: str
    vt: str
    name: str | None = None
    row: int = 0
    slot: int = -1


@attrs.frozen
class PayerGroup:
    """Finding slots whose payer is the same fact (or the enterprise itself: ``fact`` None)."""

    fact: str | None
    slots: tuple[int, ...]
    payable: tuple[bool, ...]


@attrs.frozen
class CompiledProgram:
    """The flat program: everything the kernel runs, and what binding a batch needs."""

    policies: tuple[Policy, ...]
    columns: tuple[str, ...]
    needed_by: dict  # column -> policy keys that need it
    facts: dict  # name -> Fact of every column
    rules: tuple[RuleSlot, ...]
    rule_policy: tuple[int, ...]  # policy index of each rule
    rule_parameters: tuple[tuple[str, ...], ...]  # parameters each rule reads
    findings: tuple[FindingSlot, ...]
    sanctions: tuple[SanctionSlot, ...]
    code: np.ndarray  # INSTR_DTYPE, immediates of patches at safe placeholders
    aux: np.ndarray  # int64
    patches: tuple  # (("code", index, field) | ("aux", index), Patch, rule index)
    registers: tuple[Register, ...]
    register_index: dict  # ("fact" | "raw", name), ("out", output, row), ("valid",) -> index
    n_temp_slots: int
    kernel_facts: tuple[str, ...]  # facts whose columns the kernel reads
    loaded_facts: frozenset  # those read by instructions (not only as payer codes): loaded per block
    string_literals: dict  # string fact -> sorted texts compared with it
    literal_table: dict  # text -> code for strings that meet no fact
    payer_groups: tuple[PayerGroup, ...]
    checked_totals: bool


# -- the compiler ------------------------------------------------------------------------------
class _Emitter:
    """Collects IR instructions with value numbering; virtual registers are ints."""

    def __init__(self):
        self.instrs: list[dict] = []
        self.vtypes: list[str] = []
        self.cse: dict = {}

    def new_value(self, vt: str) -> int:
        self.vtypes.append(vt)
        return len(self.vtypes) - 1

    def op(self, name: str, a=None, b=None, c=None, k: Const | None = None, k2: Const | None = None,
           aux: tuple = (), gate: int = 0, dst=None) -> Val | None:
        """Emit ``name``; return its value (a fresh or an equal earlier one) unless ``dst`` given."""
        spec = opc.BY_NAME[name]
        operands = tuple(self._operand(x) for x in (a, b, c))
        if dst is None:
            key = (name, operands, k, k2, aux, gate)
            if key in self.cse:
                return self.cse[key]
            value = Val(spec.dst, reg=self.new_value(spec.dst))
            self.instrs.append(dict(op=name, dst=("v", value.reg), a=operands[0], b=operands[1],
                                    c=operands[2], k=k, k2=k2, aux=aux, gate=gate))
            self.cse[key] = value
            return value
        self.instrs.append(dict(op=name, dst=dst, a=operands[0], b=operands[1], c=operands[2],
                                k=k, k2=k2, aux=aux, gate=gate))
        return None

    @staticmethod
    def _operand(x):
        if x is None:
            return None
        if isinstance(x, Val):
            if x.is_const:
                raise AssertionError("constants must be materialised before use as registers")
            return ("v", x.reg)
        return x  # a symbolic register such as ("fact", name)


class _RuleCompiler:
    """Compiles the expressions of one rule of one policy."""

    def __init__(self, program: _ProgramBuilder, emitter: _Emitter, policy_index: int, gate: int):
        self.program = program
        self.emit = emitter
        self.policy_index = policy_index
        self.gate = gate

    # -- helpers ---------------------------------------------------------------------------------
    def op(self, name, *args, **kwargs) -> Val:
        return self.emit.op(name, *args, gate=self.gate, **kwargs)

    def fact(self, node: ast.Name) -> Val:
        vt = U8 if node.type.kind is Kind.BOOLEAN else I64
        self.program.use_fact(node.name)
        return Val(vt, reg=self.fact_value(node.name, vt))

    def fact_value(self, name: str, vt: str) -> int:
        """Facts are pinned registers; give each a stable virtual value id in this emitter."""
        key = ("fact", name)
        if key not in self.emit.cse:
            value = self.emit.new_value(vt)
            self.emit.cse[key] = value
            self.program.fact_values[(id(self.emit), value)] = name
        return self.emit.cse[key]

    def materialise(self, val: Val) -> Val:
        if not val.is_const:
            return val
        return self.op("BCAST_U8" if val.vt == U8 else "BCAST_I64", k=val.const)

    @staticmethod
    def reads_facts(node: ast.Node) -> bool:
        return bool(ast.names(node, "fact"))

    def const(self, what: str, node: ast.Node, vt: str, scale: int = 1, domain=None) -> Val:
        per_batch = domain is not None and domain[0] == "string"  # codes of this batch's dictionary
        if isinstance(node, ast.Literal) and not per_batch:
            value = self.program.literal_rep(node, scale, domain)
            return Val(vt, const=Fixed(value))
        self.program.check_constant_fits(node, scale)
        return Val(vt, const=Patch(what, node, self.policy_index, scale, domain))

    # -- numbers and dates ------------------------------------------------------------------------
    def number(self, node: ast.Node, scale: int) -> Val:
        """An int64 value of ``node`` in units of 1/scale (scale 10**4 only for decimals)."""
        native = _native_scale(node.type)
        if scale not in (native, DECIMAL_SCALE) or (native == DECIMAL_SCALE and scale != native):
            raise KernelError(f"cannot represent {ast.render(node)} ({node.type}) at scale {scale}")
        if not self.reads_facts(node):
            return self.const("value", node, I64, scale)
        value = self.number_native(node)
        if scale != native:
            self.program.check_scalable(node)
            value = self.op("MUL_RK", value, k=Fixed(scale // native))
        return value

    def number_native(self, node: ast.Node) -> Val:
        native = _native_scale(node.type)
        if isinstance(node, ast.Name):
            return self.fact(node)
        if isinstance(node, ast.Unary):
            return self.op("NEG", self.number(node.operand, native))
        if isinstance(node, ast.Binary):
            return self.binary(node, native)
        if isinstance(node, ast.Call):
            return self.call_number(node, native)
        raise KernelError(f"the kernel cannot compute {ast.render(node)} ({type(node).__name__})", node.span)

    def binary(self, node: ast.Binary, native: int) -> Val:
        left_t, right_t = node.left.type, node.right.type
        if node.op in "+-":
            scale = 1 if Kind.DATE in (left_t.kind, right_t.kind) else native
            left = self.number(node.left, 1 if left_t.kind is Kind.DATE else scale)
            right = self.number(node.right, 1 if right_t.kind is Kind.DATE else scale)
            return self.arith("ADD" if node.op == "+" else "SUB", left, right)
        if node.op == "*":
            left = self.number(node.left, _native_scale(left_t))
            right = self.number(node.right, _native_scale(right_t))
            both_decimal = left_t.kind is Kind.DECIMAL and right_t.kind is Kind.DECIMAL
            return self.arith("MULD" if both_decimal else "MUL", left, right)
        if node.op == "/":
            left_scale = _native_scale(left_t)
            dividend = self.number(node.left, left_scale)
            if self.reads_facts(node.right) or dividend.is_const:
                raise KernelError("a divisor must be a constant or a parameter", node.right.span)
            den, mult = self.divisor(node.right, left_scale)
            return self.op("DIV_RK", dividend, k=den, k2=mult)
        raise KernelError(f"unknown operator {node.op!r}", node.span)

    def divisor(self, node: ast.Node, dividend_scale: int) -> tuple[Const, Const]:
        if isinstance(node, ast.Literal):
            den, mult = divisor_immediates(node.value, dividend_scale)
            return Fixed(den), Fixed(mult)
        self.program.check_divisor_fits(node, dividend_scale)
        return (Patch("divisor", node, self.policy_index, dividend_scale),
                Patch("multiplier", node, self.policy_index, dividend_scale))

    def arith(self, kind: str, left: Val, right: Val) -> Val:
        """ADD/SUB/MUL/MULD with register-register or register-constant operands."""
        if not left.is_const and not right.is_const:
            return self.op(f"{kind}_RR", left, right)
        if left.is_const and right.is_const:
            raise AssertionError("constant subtrees are folded before")
        if kind == "SUB":
            if right.is_const:
                return self.op("SUB_RK", left, k=right.const)
            return self.op("SUB_KR", right, k=left.const)
        reg, const = (left, right) if right.is_const else (right, left)
        return self.op(f"{kind}_RK", reg, k=const.const)

    def call_number(self, node: ast.Call, native: int) -> Val:
        function = node.function
        if function in ("min", "max"):
            return self.fold(function.upper(), [self.number(arg, native) for arg in node.args])
        if function == "abs":
            return self.op("ABS", self.number(node.args[0], native))
        if function in ("round", "floor", "ceil"):
            (arg,) = node.args
            if arg.type.kind is Kind.INTEGER:
                return self.number(arg, 1)
            return self.op(function.upper(), self.number(arg, DECIMAL_SCALE))
        if function == "if":
            condition = self.materialise(self.boolean(node.args[0]))
            if node.type.kind is Kind.DATE:
                branch_scale = 1
            else:
                branch_scale = native
            when_true = self.materialise(self.number(node.args[1], branch_scale))
            when_false = self.materialise(self.number(node.args[2], branch_scale))
            return self.op("SELECT_I64", condition, when_true, when_false)
        raise KernelError(f"the kernel has no function {function}()", node.span)

    # -- booleans -------------------------------------------------------------------------------
    def boolean(self, node: ast.Node) -> Val:
        if not self.reads_facts(node):
            return self.const("value", node, U8)
        if isinstance(node, ast.Name):
            return self.fact(node)
        if isinstance(node, ast.Unary) and node.op == "not":
            return self.op("NOT", self.boolean(node.operand))
        if isinstance(node, ast.Compare):
            return self.compare(node.op, node.left, node.right)
        if isinstance(node, ast.BoolOp):
            return self.bool_op(node)
        if isinstance(node, ast.In):
            return self.membership(node)
        if isinstance(node, ast.Call) and node.function == "if":
            condition = self.materialise(self.boolean(node.args[0]))
            when_true = self.materialise(self.boolean(node.args[1]))
            when_false = self.materialise(self.boolean(node.args[2]))
            return self.op("SELECT_U8", condition, when_true, when_false)
        raise KernelError(f"the kernel cannot compute {ast.render(node)} as true/false", node.span)

    def bool_op(self, node: ast.BoolOp) -> Val:
        return self.fold("AND" if node.op == "and" else "OR", [self.boolean(o) for o in node.operands])

    def fold(self, kind: str, values: list[Val]) -> Val:
        """An associative operation over several values: registers first, constants folded in
        as immediates (the checker has folded all-constant operands, so one register exists)."""
        registers = [v for v in values if not v.is_const]
        result = registers[0]
        for other in registers[1:]:
            result = self.op(f"{kind}_RR", result, other)
        for other in (v for v in values if v.is_const):
            result = self.op(f"{kind}_RK", result, k=other.const)
        return result

    def compare(self, op: str, left_node: ast.Node, right_node: ast.Node) -> Val:
        lt, rt = left_node.type, right_node.type
        if lt.kind is Kind.BOOLEAN:
            left, right = self.boolean(left_node), self.boolean(right_node)
            if left.is_const:
                left, right = right, left
            name = "EQ_U8" if op == "==" else "NE_U8"
            if right.is_const:
                return self.op(f"{name}_RK", left, k=right.const)
            return self.op(f"{name}_RR", left, right)
        if lt.categorical:
            domain = self.program.domain_of(left_node, right_node)
            left, right = self.categorical(left_node, domain), self.categorical(right_node, domain)
        else:
            scale = DECIMAL_SCALE if Kind.DECIMAL in (lt.kind, rt.kind) else 1
            left, right = self.number(left_node, scale), self.number(right_node, scale)
        if left.is_const:
            left, right, op = right, left, _FLIP[op]
        if right.is_const:
            return self.op(f"{_COMPARE_OPS[op]}_RK", left, k=right.const)
        return self.op(f"{_COMPARE_OPS[op]}_RR", left, right)

    def membership(self, node: ast.In) -> Val:
        item_t = node.item.type
        if item_t.kind is Kind.BOOLEAN:
            hits = [self.compare("==", node.item, option) for option in node.options]
            result = self.bool_op_values("OR", hits)
            return self.op("NOT", result) if node.negated else result
        if item_t.categorical:
            domain = self.program.domain_of(node.item, *node.options)
            item = self.categorical(node.item, domain)
            options = [self.categorical(option, domain) for option in node.options]
        else:
            kinds = {node.item.type.kind, *(o.type.kind for o in node.options)}
            scale = DECIMAL_SCALE if Kind.DECIMAL in kinds else 1
            item = self.number(node.item, scale)
            options = [self.number(option, scale) for option in node.options]
        if any(not option.is_const for option in options):
            raise KernelError("list members must be literals or parameters", node.span)
        consts = tuple(option.const for option in options)
        name = "NOT_IN_LIST" if node.negated else "IN_LIST"
        return self.op(name, item, aux=consts)

    def bool_op_values(self, kind: str, values: list[Val]) -> Val:
        registers = [v for v in values if not v.is_const]
        constants = [v for v in values if v.is_const]
        if not registers:
            raise AssertionError("constant membership is folded before")
        result = registers[0]
        for other in registers[1:]:
            result = self.op(f"{kind}_RR", result, other)
        for other in constants:
            result = self.op(f"{kind}_RK", result, k=other.const)
        return result

    # -- strings and enums ---------------------------------------------------------------------------
    def categorical(self, node: ast.Node, domain: tuple) -> Val:
        if not self.reads_facts(node):
            return self.const("code", node, I64, domain=domain)
        if isinstance(node, ast.Name):
            return self.fact(node)
        if isinstance(node, ast.Call) and node.function == "if":
            condition = self.materialise(self.boolean(node.args[0]))
            when_true = self.materialise(self.categorical(node.args[1], domain))
            when_false = self.materialise(self.categorical(node.args[2], domain))
            return self.op("SELECT_I64", condition, when_true, when_false)
        raise KernelError(f"the kernel cannot compute {ast.render(node)} as {node.type}", node.span)


def _native_scale(value_type: Type) -> int:
    return DECIMAL_SCALE if value_type.kind is Kind.DECIMAL else 1


def divisor_immediates(value: Any, dividend_scale: int) -> tuple[int, int]:
    """(divisor, multiplier) such that a / v rounded to 4 places = round(a_raw * mult / div).

    With a = a_raw / dividend_scale and v = p / q in lowest terms, the result scaled by
    10**4 is a_raw * 10**4 * q / (dividend_scale * p); q divides 10**4 (v has at most four
    places), so the multiplier 10**4 * q / dividend_scale is a whole number.
    """
    exact = Fraction(value)
    if exact == 0:
        raise KernelError("division by zero")
    numerator = DECIMAL_SCALE * exact.denominator
    if numerator % dividend_scale:
        raise KernelError(f"divisor {value} has more than four decimal places")
    return exact.numerator, numerator // dividend_scale


def _fits_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


class _ProgramBuilder:
    """Holds what is shared by the rules: facts, string domains, literal codes."""

    def __init__(self, policies: tuple[Policy, ...]):
        self.policies = policies
        self.facts: dict = {}
        for policy in policies:
            for name, fact in policy.facts.items():
                self.facts.setdefault(name, fact)
        self.used_facts: dict[str, None] = {}
        self.fact_values: dict = {}
        self.string_literals: dict[str, set] = {}
        self.literal_table: dict[str, int] = {}

    def use_fact(self, name: str) -> None:
        """A column the kernel reads; its declared range must fit the int64 representation."""
        if name not in self.used_facts:
            fact = self.facts[name]
            if fact.type.kind in (Kind.INTEGER, Kind.DECIMAL, Kind.DATE):
                scale = DECIMAL_SCALE if fact.type.kind is Kind.DECIMAL else 1
                if not all(_fits_int64(int(Fraction(bound) * scale)) for bound in fact.interval):
                    raise KernelError(
                        f"fact {name!r} may hold {fact.interval[0]} .. {fact.interval[1]}, beyond "
                        "what the kernel's int64 holds: declare a smaller min/max", fact.span,
                    )
        self.used_facts.setdefault(name)

    # -- categorical domains -----------------------------------------------------------------------
    def domain_of(self, *nodes: ast.Node) -> tuple:
        """Where the codes of compared categorical values come from: one enum, one string fact's
        batch dictionary, or the program's own table of literals (strings meeting no fact)."""
        for node in nodes:
            if node.type.kind is Kind.ENUM:
                return ("enum", node.type.choices)
        facts = set()
        texts = set()
        for node in nodes:
            facts |= _string_facts(node)
            texts |= _string_texts(node)
        if len(facts) > 1:
            raise KernelError(
                "the kernel compares a text value with literals only, but this compares "
                f"{' and '.join(sorted(facts))}", nodes[0].span,
            )
        if facts:
            (fact,) = facts
            self.string_literals.setdefault(fact, set()).update(texts)
            return ("string", fact)
        for text in sorted(texts):
            self.literal_table.setdefault(text, len(self.literal_table))
        return ("literals",)

    def literal_rep(self, node: ast.Literal, scale: int, domain) -> int:
        value = node.value
        if domain is not None:
            if domain[0] == "enum":
                if value not in domain[1]:
                    raise KernelError(f"{value!r} is not a value of this enum", node.span)
                return domain[1].index(value)
            if domain[0] == "literals":
                return self.literal_table[value]
            raise AssertionError("string literals of a fact's domain are patched per batch")
        rep = representation(value, node.type, scale)
        if not _fits_int64(rep):
            raise KernelError(f"the constant {ast.render(node)} does not fit the kernel's int64", node.span)
        return rep

    # -- range proofs ------------------------------------------------------------------------------
    def check_scalable(self, node: ast.Node) -> None:
        """An integer used as a decimal is multiplied by 10**4: prove it stays in int64."""
        if node.interval is None:
            raise KernelError(f"no value range is known for {ast.render(node)}", node.span)
        low, high = node.interval
        if not (_fits_int64(int(low) * DECIMAL_SCALE) and _fits_int64(int(high) * DECIMAL_SCALE)):
            raise KernelError(
                f"{ast.render(node)} may reach {low} .. {high}: too large to convert to a decimal "
                "in the kernel (declare a smaller min/max)", node.span,
            )

    def check_constant_fits(self, node: ast.Node, scale: int) -> None:
        if node.type.kind in (Kind.INTEGER, Kind.DECIMAL) and node.interval is not None:
            for bound in node.interval:
                if not _fits_int64(int(Fraction(bound) * scale)):
                    raise KernelError(
                        f"{ast.render(node)} may reach {bound}, beyond the kernel's int64", node.span
                    )

    def check_divisor_fits(self, node: ast.Node, dividend_scale: int) -> None:
        if node.interval is None:
            raise KernelError(f"no value range is known for the divisor {ast.render(node)}", node.span)
        for bound in node.interval:  # |numerator| <= |value| * 10**4 for four places
            if not _fits_int64(abs(int(Fraction(bound) * DECIMAL_SCALE))):
                raise KernelError(f"the divisor {ast.render(node)} may reach {bound}, too large", node.span)


def _string_facts(node: ast.Node) -> set:
    """The string facts whose text ``node``'s value can be (through if() branches)."""
    if isinstance(node, ast.Name) and node.kind == "fact" and node.type.kind is Kind.STRING:
        return {node.name}
    if isinstance(node, ast.Call) and node.function == "if":
        return _string_facts(node.args[1]) | _string_facts(node.args[2])
    return set()


def _string_texts(node: ast.Node) -> set:
    """The literal texts ``node``'s value can be."""
    if isinstance(node, ast.Literal) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Call) and node.function == "if":
        return _string_texts(node.args[1]) | _string_texts(node.args[2])
    return set()


def representation(value: Any, value_type: Type, scale: int = 1) -> int:
    """The kernel's int64 of a Python value of the language (see rules/_types.py)."""
    kind = value_type.kind
    if kind is Kind.BOOLEAN:
        return int(bool(value))
    if kind is Kind.DATE:
        return date_to_days(value)
    if kind is Kind.INTEGER:
        return int(value) * scale
    if kind is Kind.DECIMAL:
        scaled = Fraction(Decimal(value) if not isinstance(value, int) else value) * DECIMAL_SCALE
        if scaled.denominator != 1:
            raise KernelError(f"{value} has more than four decimal places")
        return int(scaled)
    raise KernelError(f"no int64 representation for a {value_type} value")


# -- the whole program ------------------------------------------------------------------------------
def compile_policies(policies: PolicySet | Iterable[Policy], domain: str = "enterprise") -> CompiledProgram:
    """Compile the rules of ``domain`` into a validated :class:`CompiledProgram`."""
    if not isinstance(policies, PolicySet):
        policies = PolicySet(tuple(policies))
    chosen = tuple(p for p in policies if p.domain == domain)
    if not chosen:
        known = ", ".join(policies.domains) or "none"
        raise ValueError(f"no policy of domain {domain!r} is loaded (domains: {known})")
    builder = _ProgramBuilder(chosen)
    needed = PolicySet(chosen).required_facts()
    emitter = _Emitter()
    rules, rule_policy, rule_parameters, findings, sanctions = [], [], [], [], []
    stores = []  # rule index, (kind, output name, row, value | None)
    for policy_index, policy in enumerate(chosen):
        for rule in policy.rules:
            r = len(rules)
            rules.append(RuleSlot(policy.key, rule.id))
            rule_policy.append(policy_index)
            reads = [rule.condition, *(f.amount for f in rule.findings)]
            rule_parameters.append(tuple(dict.fromkeys(n for node in reads for n in ast.names(node, "parameter"))))
            compiler = _RuleCompiler(builder, emitter, policy_index, gate=r + 1)
            fired = ("out", "fired", r)
            condition = compiler.boolean(rule.condition)
            if condition.is_const:
                emitter.op("FIRED_K", b=("valid",), k=condition.const, gate=r + 1, dst=fired)
            else:
                emitter.op("FIRED", a=condition, b=("valid",), gate=r + 1, dst=fired)
            emitter.op("ZERO_U8", gate=-(r + 1), dst=fired)
            for index, finding in enumerate(rule.findings):
                f = len(findings)
                findings.append(FindingSlot(policy.key, rule.id, index, finding.kind, finding.payer))
                if finding.payer != ENTERPRISE:
                    builder.use_fact(finding.payer)
                out = ("out", "amounts", f)
                amount = compiler.number(finding.amount, 1)
                if amount.is_const:
                    emitter.op("AMOUNT_K", b=fired, k=amount.const, gate=r + 1, dst=out)
                else:
                    emitter.op("AMOUNT", a=amount, b=fired, gate=r + 1, dst=out)
                emitter.op("ZERO_I64", gate=-(r + 1), dst=out)
                stores.append(finding)
            for sanction in rule.sanctions:
                s = len(sanctions)
                sanctions.append(SanctionSlot(policy.key, rule.id, sanction.list))
                out = ("out", "sanctions", s)
                emitter.op("COPY_U8", a=fired, gate=r + 1, dst=out)
                emitter.op("ZERO_U8", gate=-(r + 1), dst=out)

    # Row totals: payable findings into total_yuan, rewards into rewards_yuan.
    checked = False
    for name, payable in (("total", True), ("rewards", False)):
        slots = [f for f, slot in enumerate(findings) if slot.kind.payable == payable]
        bound = sum(_amount_high(stores[f]) for f in slots)
        unchecked = bound <= INT64_MAX
        checked = checked or not unchecked
        for position, f in enumerate(slots):
            op = "TOTAL_COPY" if position == 0 else ("TOTAL_ADD" if unchecked else "TOTAL_ADD_CHECKED")
            emitter.op(op, a=("out", "amounts", f), dst=("out", name, 0))

    groups = _payer_groups(findings)
    return _assemble(builder, emitter, chosen, needed, tuple(rules), tuple(rule_policy),
                     tuple(rule_parameters), tuple(findings), tuple(sanctions), groups, checked)


def _amount_high(finding) -> int:
    interval = finding.amount.interval
    if interval is None:
        return INT64_MAX + 1  # unknown: check at run time
    return int(interval[1])


def _payer_groups(findings: tuple[FindingSlot, ...]) -> tuple[PayerGroup, ...]:
    by_payer: dict = {}
    for f, slot in enumerate(findings):
        key = None if slot.payer == ENTERPRISE else slot.payer
        by_payer.setdefault(key, []).append(f)
    for payer, slots in by_payer.items():
        if len(slots) > opc.ROLLUP_MAX_SLOTS:
            raise KernelError(f"{len(slots)} findings are paid by {payer or ENTERPRISE!r}: the kernel's "
                              f"roll-up takes at most {opc.ROLLUP_MAX_SLOTS} per payer")
    return tuple(
        PayerGroup(fact, tuple(slots), tuple(findings[f].kind.payable for f in slots))
        for fact, slots in by_payer.items()
    )


def _assemble(builder, emitter, chosen, needed, rules, rule_policy, rule_parameters, findings,
              sanctions, groups, checked) -> CompiledProgram:
    """Registers for the virtual values, then the instruction and aux arrays with patch points."""
    registers: list[Register] = []
    index_of: dict = {}

    def register(key, reg: Register) -> int:
        if key not in index_of:
            index_of[key] = len(registers)
            registers.append(reg)
        return index_of[key]

    register(("valid",), Register("valid", U8))
    kernel_facts = tuple(builder.used_facts)
    for name in kernel_facts:
        vt = U8 if builder.facts[name].type.kind is Kind.BOOLEAN else I64
        register(("fact", name), Register("fact", vt, name))
        register(("raw", name), Register("raw", "raw", name))
    out_types = {"fired": U8, "sanctions": U8, "amounts": I64, "total": I64, "rewards": I64}

    # Virtual values of facts map to the fact registers; the others get scratch slots, freed
    # after their last use (a slot is never the dst of an instruction reading it).
    fact_of_value = {value: name for (emitter_id, value), name in builder.fact_values.items()}
    last_use: dict[int, int] = {}
    for position, ins in enumerate(emitter.instrs):
        for field in ("a", "b", "c"):
            operand = ins[field]
            if operand is not None and operand[0] == "v":
                last_use[operand[1]] = position
    free_slots: list[int] = []
    n_slots = 0
    slot_of: dict[int, int] = {}

    def operand_index(operand) -> int:
        if operand is None:
            return -1
        if operand[0] == "v":
            value = operand[1]
            if value in fact_of_value:
                return index_of[("fact", fact_of_value[value])]
            vt, slot = emitter.vtypes[value], slot_of[value]
            # one register per (slot, type): a slot holds i64 and u8 values at different times
            return register(("slot", slot, vt), Register("scratch", vt, slot=slot))
        if operand[0] == "out":
            _, name, row = operand
            return register(operand, Register("out", out_types[name], name, row))
        return index_of[operand]

    code = np.zeros(len(emitter.instrs), opc.INSTR_DTYPE)
    aux_values: list[int] = []
    patches: list = []
    for position, ins in enumerate(emitter.instrs):
        row = code[position]
        row["op"] = opc.BY_NAME[ins["op"]].code
        row["gate"] = ins["gate"]
        row["a"], row["b"], row["c"] = (operand_index(ins[f]) for f in ("a", "b", "c"))
        dst = ins["dst"]
        if dst[0] == "v":
            if free_slots:
                slot = free_slots.pop()
            else:
                slot, n_slots = n_slots, n_slots + 1
            slot_of[dst[1]] = slot
        row["dst"] = operand_index(dst)
        for field in ("a", "b", "c"):
            operand = ins[field]
            if operand is not None and operand[0] == "v" and operand[1] not in fact_of_value \
                    and last_use.get(operand[1]) == position and operand[1] in slot_of:
                free_slots.append(slot_of.pop(operand[1]))
        rule = ins["gate"] - 1 if ins["gate"] > 0 else None
        for field in ("k", "k2"):
            const = ins[field]
            if isinstance(const, Fixed):
                row[field] = const.value
            elif isinstance(const, Patch):
                row[field] = 1  # a safe placeholder (a divisor) until patched
                patches.append((("code", position, field), const, rule))
        if ins["aux"]:
            row["k"] = len(aux_values)
            row["k2"] = len(ins["aux"])
            for const in ins["aux"]:
                if isinstance(const, Fixed):
                    aux_values.append(const.value)
                else:
                    patches.append((("aux", len(aux_values)), const, rule))
                    aux_values.append(0)
    program = CompiledProgram(
        policies=chosen,
        columns=tuple(needed),
        needed_by={name: tuple(keys) for name, keys in needed.items()},
        facts={name: builder.facts[name] for name in needed},
        rules=rules,
        rule_policy=rule_policy,
        rule_parameters=rule_parameters,
        findings=findings,
        sanctions=sanctions,
        code=code,
        aux=np.array(aux_values, dtype=np.int64),
        patches=tuple(patches),
        registers=tuple(registers),
        register_index={key: index for key, index in index_of.items() if key[0] != "slot"},
        n_temp_slots=n_slots,
        kernel_facts=kernel_facts,
        loaded_facts=frozenset(name for name in kernel_facts
                               if index_of[("fact", name)] in set(code["a"]) | set(code["b"]) | set(code["c"])),
        string_literals={k: tuple(sorted(v)) for k, v in builder.string_literals.items()},
        literal_table=dict(builder.literal_table),
        payer_groups=groups,
        checked_totals=checked,
    )
    check_program(program)
    return program


def check_program(program: CompiledProgram) -> None:
    """Validate the program once: known opcodes, register indices and types, writable
    destinations, gates and aux ranges. The kernel itself checks nothing."""
    n_regs = len(program.registers)
    n_rules = len(program.rules)
    for position, row in enumerate(program.code):
        code = int(row["op"])
        if not 0 <= code < len(opc.OPCODES):
            raise KernelError(f"instruction {position}: unknown opcode {code}")
        spec = opc.OPCODES[code]
        where = f"instruction {position} ({spec.name})"
        gate = int(row["gate"])
        if gate and not 1 <= abs(gate) <= n_rules:
            raise KernelError(f"{where}: gate {gate} names no rule")
        for field in ("dst", "a", "b", "c"):
            wanted = getattr(spec, field)
            index = int(row[field])
            if wanted is None:
                if index != -1 and field != "dst":
                    raise KernelError(f"{where}: {field} must be unused")
                continue
            if not 0 <= index < n_regs:
                raise KernelError(f"{where}: {field} register {index} out of range")
            reg = program.registers[index]
            if wanted in opc.RAW_TYPES:
                if reg.role != "raw":
                    raise KernelError(f"{where}: {field} must be a raw column view")
            elif reg.vt != wanted:
                raise KernelError(f"{where}: {field} is {reg.vt}, needs {wanted}")
            if field == "dst" and reg.role not in ("scratch", "out", "fact"):
                raise KernelError(f"{where}: writes into a read-only register ({reg.role})")
            if field == "dst" and reg.role == "fact" and not spec.name.startswith("LOAD_"):
                raise KernelError(f"{where}: only LOAD instructions write a fact register")
        if spec.name in ("IN_LIST", "NOT_IN_LIST"):
            start, count = int(row["k"]), int(row["k2"])
            if start < 0 or count < 1 or start + count > len(program.aux):
                raise KernelError(f"{where}: list aux[{start}:{start + count}] out of range")
        if spec.name == "DIV_RK" and int(row["k"]) == 0:
            raise KernelError(f"{where}: division by zero")


__all__ = ["CompiledProgram", "FindingSlot", "RuleSlot", "SanctionSlot", "compile_policies", "representation"]
