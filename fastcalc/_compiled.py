"""The compiled program as data: what the compiler hands to binding, and its invariants.

Kept apart from the compiler so that a reader of ``_program.py`` / ``_binding.py`` (which
only consume a program) need not read how one is built. It holds:

* the constants of the IR (``Fixed``, ``Patch``) and compiled values (``Val``);
* the slots that name the rows of the outputs (``RuleSlot``, ``FindingSlot``, ``SanctionSlot``);
* the register table entries, payer groups and :class:`CompiledProgram` itself;
* how a Python value of the language is represented in the kernel (``representation``,
  ``quotient_multiplier``), used at compile time for literals and at score time for patches;
* ``check_program``, the one-time validation of a program against the opcode table.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import attrs
import numpy as np
from ecorules.rules import KernelError, Policy
from ecorules.rules import _ast as ast
from ecorules.rules._schema import FindingKind
from ecorules.rules._types import Kind, Type, date_to_days

from . import _opcodes as opc


# -- constants ------------------------------------------------------------------------------
@attrs.frozen
class Fixed:
    """A constant known at compile time, in kernel representation."""

    value: int


@attrs.frozen
class Patch:
    """A constant known only at score time: a call constant or a string literal's code.

    ``what``: "value" (numbers, dates, booleans at ``scale``), "code" (a categorical value in
    ``domain``), "multiplier" (the k of MUL_RK dividing by the node's value exactly, for a
    quotient ``scale`` times its dividend's: ``quotient_multiplier``), "amount" (a finding's
    amount that reads no fact, rounded by ``rounding`` to its unit). ``policy`` indexes the
    policy whose parameters the node reads.
    """

    what: str
    node: ast.Node
    policy: int
    scale: int = 1
    domain: tuple | None = None
    rounding: Any = None  # rules._money.Rounding of an "amount"


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
class _Slot(tuple):
    """A tuple made by ``__new__(cls, *fields)``: pickled as that call (a judged part of a
    case table travels from a Spark executor with its program's slots), where pickle's
    default for a tuple subclass would call ``__new__(cls, fields)`` and fail."""

    __slots__ = ()

    def __getnewargs__(self) -> tuple:
        return tuple(self)


class RuleSlot(_Slot):
    """(policy_key, rule_id): one row of ``fired``."""

    __slots__ = ()

    def __new__(cls, policy_key: str, rule_id: str):
        return super().__new__(cls, (policy_key, rule_id))

    policy_key = property(lambda self: self[0])
    rule_id = property(lambda self: self[1])


class FindingSlot(_Slot):
    """(policy_key, rule_id, index, kind, payer): one row of ``amounts``."""

    __slots__ = ()

    def __new__(cls, policy_key: str, rule_id: str, index: int, kind: FindingKind, payer: str):
        return super().__new__(cls, (policy_key, rule_id, index, kind, payer))

    policy_key = property(lambda self: self[0])
    rule_id = property(lambda self: self[1])
    index = property(lambda self: self[2])
    kind = property(lambda self: self[3])
    payer = property(lambda self: self[4])


class SanctionSlot(_Slot):
    """(policy_key, rule_id, list_id): one row of ``sanctions``."""

    __slots__ = ()

    def __new__(cls, policy_key: str, rule_id: str, list_id: str):
        return super().__new__(cls, (policy_key, rule_id, list_id))

    policy_key = property(lambda self: self[0])
    rule_id = property(lambda self: self[1])
    list_id = property(lambda self: self[2])


class CheckSlot(_Slot):
    """(policy_key, check_id, column, reason, shown): one row of ``failed``; ``reason`` is
    the reject's wording (rules/_checks.py), with a ``{name}`` for each fact of ``shown``
    whose value the reject shows, ``column`` the fact it blames. ``policy_key`` is the
    catalogue's name for a check of the kind's catalogue."""

    __slots__ = ()

    def __new__(cls, policy_key: str, check_id: str, column: str, reason: str, shown: tuple[str, ...] = ()):
        return super().__new__(cls, (policy_key, check_id, column, reason, tuple(shown)))

    policy_key = property(lambda self: self[0])
    check_id = property(lambda self: self[1])
    column = property(lambda self: self[2])
    reason = property(lambda self: self[3])
    shown = property(lambda self: self[4])


# -- the compiled program ----------------------------------------------------------------------------
@attrs.frozen
class Register:
    """One entry of the register table, before binding to a batch.

    ``role``: "scratch" (``slot``), "fact" (the value of ``name``: a view of its column when
    the column has the register's dtype, else a scratch slot filled by a LOAD), "raw" (a view
    of the narrow column of fact ``name``), "present" (uint8, 1 where the optional fact
    ``name`` has a value), "valid" (the accepted-rows mask) or "out" (``name`` = fired,
    amounts, sanctions, total, rewards; ``row`` in that output).
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
    finding_rules: tuple[int, ...]  # the rule (row of ``fired``) of each finding slot
    sanctions: tuple[SanctionSlot, ...]
    code: np.ndarray  # INSTR_DTYPE, immediates of patches at safe placeholders
    aux: np.ndarray  # int64
    patches: tuple  # (("code", index, field) | ("aux", index), Patch, rule index)
    registers: tuple[Register, ...]
    register_index: dict  # ("fact" | "raw" | "present", name), ("out", output, row), ("valid",) -> index
    n_temp_slots: int
    kernel_facts: tuple[str, ...]  # facts whose columns the kernel reads
    loaded_facts: frozenset  # those read by instructions (not only as payer codes): loaded per block
    string_literals: dict  # string fact -> sorted texts compared with it
    literal_table: dict  # text -> code for strings that meet no fact
    payer_groups: tuple[PayerGroup, ...]
    checked_totals: bool
    # list entries' dates (rows of the "dates" output, day numbers): per sanction slot
    # (start row, end row), -1 where the sanction gives none (start: as_of; end: open-ended)
    sanction_dates: tuple[tuple[int, int], ...] = ()
    lifts: tuple[SanctionSlot, ...] = ()  # lifts: (policy, rule, list), in force where their rule fired
    lift_rules: tuple[int, ...] = ()  # the rule (row of ``fired``) of each lift
    lift_dates: tuple[int, ...] = ()  # the row of its from: date, or -1 (as_of)
    n_dates: int = 0
    # per finding slot, how many of its unit make a yuan (1 yuan, 100 fen: its amounts are
    # whole units); the row totals and rewards are in the finest of them, ``total_unit``
    finding_units: tuple[int, ...] = ()
    total_unit: int = 1
    # checks, judged before every rule: gate ``len(rules) + c + 1`` enables check c (its
    # policy in force, its parameters set); its row of ``failed`` is 1 where an accepted row
    # fails it, and the row is then rejected
    checks: tuple[CheckSlot, ...] = ()
    check_policy: tuple[int, ...] = ()  # policy index of each check; -1: of the kind's catalogue
    check_parameters: tuple[tuple[str, ...], ...] = ()  # parameters each check reads
    # the last ``calendar_checks`` of ``checks``: a working-day call reaching outside its
    # holiday table (rules/_workdays.outside_check), gated by the rule or check holding it
    calendar_checks: int = 0
    # gate groups: an instruction that several rules or checks compute alike runs once, where
    # one of them is enabled (gate ``n_gates + g + 1`` for group g: its gates, 1-based)
    gate_groups: tuple[tuple[int, ...], ...] = ()

    @property
    def n_gates(self) -> int:
        """Entries of the ``enabled`` array: the rules, then the checks."""
        return len(self.rules) + len(self.checks or ())

    def with_groups(self, enabled: np.ndarray) -> np.ndarray:
        """``enabled`` (the rules', then the checks') followed by each gate group's: the
        array the kernel reads."""
        if not self.gate_groups:
            return enabled
        groups = [int(enabled[[gate - 1 for gate in group]].any()) for group in self.gate_groups]
        return np.concatenate([enabled, np.array(groups, enabled.dtype)])


# -- kernel representation of values ---------------------------------------------------------------
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
        scaled = Fraction(value) * scale
        if scaled.denominator != 1:
            raise KernelError(f"{value} is not a whole number of 1/{scale} (the scale the program holds it at)")
        return int(scaled)
    raise KernelError(f"no int64 representation for a {value_type} value")


def quotient_multiplier(value: Any, scale: int) -> int:
    """The k of MUL_RK that divides by ``value`` exactly: x / v held at x's scale times
    ``scale`` (``rules/_check._divisor_scale``: the lcm of |p| over every value v = p / q the
    divisor takes) is x_raw * q * (scale / p), a whole number because p divides scale."""
    exact = Fraction(value)
    if exact == 0:
        raise KernelError("division by zero")
    p, q = abs(exact.numerator), exact.denominator
    if scale % p:
        raise KernelError(f"the divisor {value} is not one of the values the program was compiled for")
    multiplier = q * (scale // p) * (1 if exact > 0 else -1)
    if not -(2**63) <= multiplier < 2**63:
        raise KernelError(f"dividing by {value} exactly needs a multiplier beyond the kernel's int64")
    return multiplier


# -- validation of a compiled program ---------------------------------------------------------------
def check_program(program: CompiledProgram) -> None:
    """Validate the program once: known opcodes, register indices and types, writable
    destinations, gates and aux ranges. The kernel itself checks nothing."""
    n_regs = len(program.registers)
    n_gates = program.n_gates
    gate_groups = program.gate_groups or ()
    if any(not group or not all(1 <= gate <= n_gates for gate in group) for group in gate_groups):
        raise KernelError("a gate group names no rule or check")
    if len(program.finding_rules) != len(program.findings) or any(
            program.rules[r][:2] != f[:2] for r, f in zip(program.finding_rules, program.findings, strict=True)):
        raise KernelError("finding slots and their rules do not match")
    for position, row in enumerate(program.code):
        code = int(row["op"])
        if not 0 <= code < len(opc.OPCODES):
            raise KernelError(f"instruction {position}: unknown opcode {code}")
        spec = opc.OPCODES[code]
        where = f"instruction {position} ({spec.name})"
        gate = int(row["gate"])
        if gate and not 1 <= abs(gate) <= n_gates and not n_gates < gate <= n_gates + len(gate_groups):
            raise KernelError(f"{where}: gate {gate} names no rule, check or group of them")
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
            if field == "dst" and reg.role == "valid":
                if spec.name != "REJECT":
                    raise KernelError(f"{where}: only REJECT writes the accepted-rows mask")
            elif field == "dst" and reg.role not in ("scratch", "out", "fact"):
                raise KernelError(f"{where}: writes into a read-only register ({reg.role})")
            if field == "dst" and reg.role == "fact" and not spec.name.startswith("LOAD_"):
                raise KernelError(f"{where}: only LOAD instructions write a fact register")
        if spec.name in ("IN_LIST", "NOT_IN_LIST", "WORKDAYS"):
            start, count = int(row["k"]), int(row["k2"])
            if start < 0 or count < 1 or start + count > len(program.aux):
                raise KernelError(f"{where}: list aux[{start}:{start + count}] out of range")
        if spec.name == "WORKDAYS":
            table = program.aux[int(row["k"]) + 3: int(row["k"]) + int(row["k2"])]
            if count < 3 or int(program.aux[int(row["k"])]) % opc.WORKDAY_OUTSIDE not in opc.WORKDAY_FUNCTIONS.values() \
                    or not 0 <= int(program.aux[int(row["k"])]) < 2 * opc.WORKDAY_OUTSIDE \
                    or (table.size > 1 and not (np.diff(table) > 0).all()):
                raise KernelError(f"{where}: not a working-day function with an ascending table")
        mode_field = {"ADD_MONTHS_RK": "k2", "ADD_MONTHS_RR": "k"}.get(spec.name)
        if mode_field and int(row[mode_field]) not in opc.ADD_MONTHS_MODES.values():
            raise KernelError(f"{where}: unknown rounding mode {int(row[mode_field])}")
        if spec.name == "DIVR_RK" and (int(row["k"]) <= 0 or int(row["k2"]) not in opc.ROUNDING_MODES.values()):
            raise KernelError(f"{where}: needs a positive divisor and a known rounding mode")


__all__ = [
    "CheckSlot", "CompiledProgram", "Const", "FindingSlot", "Fixed", "Patch", "PayerGroup", "Register", "RuleSlot",
    "SanctionSlot", "Val", "check_program", "quotient_multiplier", "representation",
]
