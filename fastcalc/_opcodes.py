"""The instruction set of the fastcalc VM: one table shared by the compiler and the kernel.

The kernel (``_kernel.pyx``) switches on the numeric codes declared in ``_kernel.pxd``; that
declaration is generated from this table by :func:`pxd_enum` and a test checks that the two
are identical, so the compiler can never emit a code the kernel reads differently.

Every value in the VM is a *register*: one block of rows (a few thousand) of one of two
types. ``i64`` holds integers, decimals (exactly, as value x the node's scale: see
rules/_ast.Node.scale), dates (days since 1970-01-01),
enum codes and string dictionary codes; ``u8`` holds booleans as 0/1. A register is either
scratch memory of the running thread or a *view*: a pointer into an input column or an
output column at the start of the current block, so loads and stores cost nothing.

Instruction fields (see ``INSTR_DTYPE``): ``op``; ``gate`` (0: always run, ``r + 1``: only
when rule ``r`` is enabled for the call, ``-(r + 1)``: only when it is disabled); the
register operands ``dst``, ``a``, ``b``, ``c``; and two int64 immediates ``k``, ``k2`` into
which constants, parameters and string codes are folded (patched per call, never compiled).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Operand types of an instruction field. Register operands name the register type they need;
# "raw_*" are views of narrow input columns that only the LOAD instructions read.
I64, U8 = "i64", "u8"
RAW_TYPES = {"raw_i8": "int8", "raw_i16": "int16", "raw_i32": "int32", "raw_u8": "uint8",
             "raw_u16": "uint16", "raw_u32": "uint32"}


class Op(NamedTuple):
    code: int
    name: str
    dst: str | None  # type of the register written (None: writes nothing)
    a: str | None
    b: str | None
    c: str | None
    k: str | None  # meaning of the immediate k, None if unused
    k2: str | None
    doc: str


_TABLE = [
    # name, dst, a, b, c, k, k2, doc
    ("LOAD_I8", I64, "raw_i8", None, None, None, None, "dst = a widened to int64"),
    ("LOAD_I16", I64, "raw_i16", None, None, None, None, "dst = a widened to int64"),
    ("LOAD_I32", I64, "raw_i32", None, None, None, None, "dst = a widened to int64"),
    ("LOAD_U8", I64, "raw_u8", None, None, None, None, "dst = a widened to int64"),
    ("LOAD_U16", I64, "raw_u16", None, None, None, None, "dst = a widened to int64"),
    ("LOAD_U32", I64, "raw_u32", None, None, None, None, "dst = a widened to int64"),
    ("BCAST_I64", I64, None, None, None, "value", None, "dst = k in every row"),
    ("BCAST_U8", U8, None, None, None, "value", None, "dst = k in every row"),
    ("NEG", I64, I64, None, None, None, None, "dst = -a"),
    ("ADD_RR", I64, I64, I64, None, None, None, "dst = a + b"),
    ("ADD_RK", I64, I64, None, None, "value", None, "dst = a + k"),
    ("SUB_RR", I64, I64, I64, None, None, None, "dst = a - b"),
    ("SUB_RK", I64, I64, None, None, "value", None, "dst = a - k"),
    ("SUB_KR", I64, I64, None, None, "value", None, "dst = k - a"),
    ("MUL_RR", I64, I64, I64, None, None, None, "dst = a * b (exact: the checker bounds it)"),
    ("MUL_RK", I64, I64, None, None, "value", None,
     "dst = a * k (also a / v exactly: k = the quotient's multiplier, see _compiled.quotient_multiplier)"),
    ("MIN_RR", I64, I64, I64, None, None, None, "dst = min(a, b)"),
    ("MIN_RK", I64, I64, None, None, "value", None, "dst = min(a, k)"),
    ("MAX_RR", I64, I64, I64, None, None, None, "dst = max(a, b)"),
    ("MAX_RK", I64, I64, None, None, "value", None, "dst = max(a, k)"),
    ("ABS", I64, I64, None, None, None, None, "dst = |a|"),
    ("DIVR_RK", I64, I64, None, None, "divisor", "mode",
     "dst = a / k rounded by mode k2 (ROUNDING_MODES; k > 0): decimals to whole units, amounts to their unit"),
    ("SELECT_I64", I64, U8, I64, I64, None, None, "dst = a ? b : c"),
    # -- calendar (rules/_calendar.py): dates are day numbers, modes are ADD_MONTHS_MODES ------
    ("ADD_MONTHS_RK", I64, I64, None, None, "months", "mode",
     "dst = date a moved by k calendar months, a missing day resolved by mode k2"),
    ("ADD_MONTHS_RR", I64, I64, I64, None, "mode", None,
     "dst = date a moved by b calendar months, a missing day resolved by mode k"),
    ("EQ_RR", U8, I64, I64, None, None, None, "dst = a == b"),
    ("NE_RR", U8, I64, I64, None, None, None, "dst = a != b"),
    ("LT_RR", U8, I64, I64, None, None, None, "dst = a < b"),
    ("LE_RR", U8, I64, I64, None, None, None, "dst = a <= b"),
    ("GT_RR", U8, I64, I64, None, None, None, "dst = a > b"),
    ("GE_RR", U8, I64, I64, None, None, None, "dst = a >= b"),
    ("EQ_RK", U8, I64, None, None, "value", None, "dst = a == k"),
    ("NE_RK", U8, I64, None, None, "value", None, "dst = a != k"),
    ("LT_RK", U8, I64, None, None, "value", None, "dst = a < k"),
    ("LE_RK", U8, I64, None, None, "value", None, "dst = a <= k"),
    ("GT_RK", U8, I64, None, None, "value", None, "dst = a > k"),
    ("GE_RK", U8, I64, None, None, "value", None, "dst = a >= k"),
    ("IN_LIST", U8, I64, None, None, "aux offset", "count", "dst = a in aux[k : k + k2]"),
    ("NOT_IN_LIST", U8, I64, None, None, "aux offset", "count", "dst = a not in aux[k : k + k2]"),
    ("AND_RR", U8, U8, U8, None, None, None, "dst = a & b"),
    ("OR_RR", U8, U8, U8, None, None, None, "dst = a | b"),
    ("AND_RK", U8, U8, None, None, "value", None, "dst = a & k"),
    ("OR_RK", U8, U8, None, None, "value", None, "dst = a | k"),
    ("EQ_U8_RR", U8, U8, U8, None, None, None, "dst = a == b (booleans)"),
    ("NE_U8_RR", U8, U8, U8, None, None, None, "dst = a != b (booleans)"),
    ("EQ_U8_RK", U8, U8, None, None, "value", None, "dst = a == k (booleans)"),
    ("NE_U8_RK", U8, U8, None, None, "value", None, "dst = a != k (booleans)"),
    ("NOT", U8, U8, None, None, None, None, "dst = 1 - a"),
    ("SELECT_U8", U8, U8, U8, U8, None, None, "dst = a ? b : c"),
    # -- outputs: dst is a view of an output column ------------------------------------------
    ("FIRED", U8, U8, U8, None, None, None, "dst = a & b (condition and row accepted)"),
    ("FIRED_K", U8, None, U8, None, "value", None, "dst = k & b (constant condition)"),
    ("AMOUNT", I64, I64, U8, None, None, None, "dst = b ? a : 0 (amount of a fired rule)"),
    ("AMOUNT_K", I64, None, U8, None, "value", None, "dst = b ? k : 0"),
    ("COPY_U8", U8, U8, None, None, None, None, "dst = a (a sanction follows its rule)"),
    # -- checks: judged before every rule; a row failing one is rejected --------------------------
    ("FAILED", U8, U8, U8, None, None, None, "dst = b & !a (a check that does not hold on an accepted row)"),
    ("REJECT", U8, U8, None, None, None, None,
     "dst &= !a: dst is the accepted-rows mask, a a check's failures; every later output is 0 there"),
    ("ZERO_U8", U8, None, None, None, None, None, "dst = 0 (output of a disabled rule)"),
    ("ZERO_I64", I64, None, None, None, None, None, "dst = 0 (output of a disabled rule)"),
    ("TOTAL_COPY", I64, I64, None, None, None, None, "dst = a (first term of a row total)"),
    ("TOTAL_ADD", I64, I64, None, None, None, None, "dst += a (cannot overflow: bounded at compile time)"),
    ("TOTAL_ADD_CHECKED", I64, I64, None, None, None, None, "dst += a, error ERR_OVERFLOW on int64 overflow"),
    ("ROLLUP", None, "codes", None, None, "aux offset", None,
     "per-payer sums and case counts (rows where a payable slot's rule fired) of the slots "
     "described at aux[k]; a = the payer's codes "
     "column (a view of any integer dtype, given in aux)"),
    ("ROLLUP_ONE", None, None, None, None, "aux offset", None,
     "the same for slots paid by the enterprise itself (a single payer, code 0)"),
    # -- working days (rules/_workdays.py): aux[k] = the function (WORKDAY_FUNCTIONS), the
    # table's first and last day, then its working days ascending (k2 - 3 of them) ---------
    ("WORKDAYS", I64, I64, I64, U8, "aux offset", "count",
     "dst = the working-day function aux[k] of date a and b (a count, or a second date) where c, "
     "else a; a day outside the table where c: error ERR_CALENDAR (a function code + WORKDAY_OUTSIDE: "
     "dst = 1 there, else 0)"),
]

OPCODES: tuple[Op, ...] = tuple(Op(code, *row) for code, row in enumerate(_TABLE))
BY_NAME: dict[str, Op] = {op.name: op for op in OPCODES}

# How ADD_MONTHS resolves a target month without the day (Jan 31 + 1 month): the rounding
# modes of rules/_calendar.py, as the immediate the kernel reads (fc_add_months in _kernel.pyx).
ADD_MONTHS_MODES = {"month_end": 0, "next_day": 1}

# How DIVR_RK rounds (the immediate k2): the amounts' modes of rules/_money.py, then floor() and
# ceil() of the language (round() is half_up).
ROUNDING_MODES = {"half_up": 0, "half_even": 1, "down": 2, "up": 3, "floor": 4, "ceil": 5}

# The working-day functions (aux[k] of WORKDAYS): rules/_workdays.py ADD .. ON_OR_AFTER.
WORKDAY_FUNCTIONS = {"add_working_days": 0, "working_days_between exclusive": 1,
                     "working_days_between inclusive": 2, "working_day_on_or_after": 3}
# Added to a function code: WORKDAYS probes instead, dst = 1 where c and the day (or the
# result) lies outside the table, else 0, never an error (the calendar checks' rows).
WORKDAY_OUTSIDE = 4

ROLLUP_MAX_SLOTS = 64  # finding slots one payer fact may have (ROLLUP_MAX_SLOTS in _kernel.pyx)

# Kernel return codes (also in the .pxd): raised as exceptions once the GIL is back.
ERR_NONE, ERR_OVERFLOW, ERR_OPCODE, ERR_PAYER_CODE, ERR_CALENDAR = 0, 1, 2, 3, 4
ERROR_MESSAGES = {
    ERR_CALENDAR: "a working-day computation reached a day outside the holiday table",
    ERR_OVERFLOW: "a total exceeds the int64 range of the kernel (over 9.2e18 yuan)",
    ERR_OPCODE: "unknown opcode (the program was not validated)",
    ERR_PAYER_CODE: "a payer code is outside its labels (the program was not validated)",
}

# Register kinds and dtypes of the register table handed to the kernel (also in the .pxd).
REG_SCRATCH, REG_VIEW = 0, 1
DTYPES = ("int64", "uint8", "int8", "int16", "int32", "uint16", "uint32")
DTYPE_CODE = {name: code for code, name in enumerate(DTYPES)}
REGISTER_DTYPE = {I64: "int64", U8: "uint8", **RAW_TYPES}

# Layout of one instruction; the kernel checks at import that its C struct matches.
INSTR_DTYPE = np.dtype(
    [("op", "<i4"), ("gate", "<i4"), ("dst", "<i4"), ("a", "<i4"), ("b", "<i4"), ("c", "<i4"),
     ("k", "<i8"), ("k2", "<i8")],
    align=True,
)
REG_DTYPE = np.dtype(
    [("kind", "<i4"), ("dtype", "<i4"), ("itemsize", "<i8"), ("addr", "<u8")], align=True
)


def pxd_enum() -> str:
    """The Cython declaration of the opcodes, exactly as it must appear in _kernel.pxd."""
    lines = ["cdef enum Opcode:"]
    lines += [f"    OP_{op.name} = {op.code}" for op in OPCODES]
    lines.append(f"    N_OPCODES = {len(OPCODES)}")
    return "\n".join(lines)


__all__ = ["ADD_MONTHS_MODES", "ROUNDING_MODES", "BY_NAME", "DTYPES", "DTYPE_CODE", "INSTR_DTYPE", "OPCODES", "Op", "REG_DTYPE", "pxd_enum"]
