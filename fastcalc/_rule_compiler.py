"""Compile the expressions of one rule into IR instructions (``_Emitter``, ``_RuleCompiler``).

Every node of the language maps onto the instructions of ``_opcodes.py``:

* a subtree that reads no fact (literals, parameters, ``as_of``) is a *call constant*: its
  value is computed at score time by the reference evaluator (``rules.evaluate``) and patched
  into the immediate of the instruction that uses it, so a new parameter value or another
  ``as_of`` never recompiles anything;
* values are int64 (integers; decimals exactly, as value x the node's ``scale`` from the
  checker; dates as days, enum codes, string dictionary codes) or uint8 (booleans). Nothing is
  rounded on the way: a sum brings its operands to its scale (MUL_RK), a product multiplies
  the scales, a quotient by v = p / q is a MUL_RK by q x (scale / p) (``quotient_multiplier``);
  only round(), floor(), ceil() and a finding's amount round, by DIVR_RK. The checker has
  proved every value at its scale fits int64 (else the policy does not load);
* strings are compared as codes: the codes of a string fact's column in the batch dictionary,
  and for a literal the code of its text in that dictionary (or a fresh code past the end
  when the batch lacks it), patched per batch.

Within a rule, equal subexpressions are computed once (value numbering, ``_Emitter``). This
module is the language-to-instruction mapping only; what is shared by all rules (facts,
categorical domains, range proofs) and the assembly into arrays are in ``_compiler.py``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ecorules.rules import KernelError
from ecorules.rules import _ast as ast
from ecorules.rules._types import Kind
from ecorules.rules._workdays import FUNCTIONS as WORKDAY_CALLS

from . import _opcodes as opc
from ._compiled import Const, Fixed, Patch, Val, quotient_multiplier

if TYPE_CHECKING:
    from ._compiler import _ProgramBuilder

I64, U8 = opc.I64, opc.U8
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_COMPARE_OPS = {"==": "EQ", "!=": "NE", "<": "LT", "<=": "LE", ">": "GT", ">=": "GE"}


# Instructions computed alike whichever rule or check needs them (no output, no call
# constant, no error): one computation serves every rule or check that needs it, run where
# any of them is enabled (a gate group, ``_Emitter.op``).
_SHARABLE = frozenset({
    "BCAST_I64", "BCAST_U8", "NEG", "ADD_RR", "ADD_RK", "SUB_RR", "SUB_RK", "SUB_KR", "MUL_RR", "MUL_RK",
    "MIN_RR", "MIN_RK", "MAX_RR", "MAX_RK", "ABS", "DIVR_RK", "SELECT_I64", "ADD_MONTHS_RK", "ADD_MONTHS_RR",
    "EQ_RR", "NE_RR", "LT_RR", "LE_RR", "GT_RR", "GE_RR", "EQ_RK", "NE_RK", "LT_RK", "LE_RK", "GT_RK", "GE_RK",
    "AND_RR", "OR_RR", "AND_RK", "OR_RK", "EQ_U8_RR", "NE_U8_RR", "EQ_U8_RK", "NE_U8_RK", "NOT", "SELECT_U8",
})


class _Emitter:
    """Collects IR instructions with value numbering; virtual registers are ints.

    An instruction's ``gate`` is an int (0: always; r + 1: rule or check r enabled) or, for
    a value two rules or checks compute alike, the frozenset of their gates: run where one
    of them is enabled (_compiler._assemble makes it a gate group). Two versions of a
    statute, judged in one pass under the laws of two days, most often share most of their
    conditions (the date arithmetic of a limitation period above all), and two rules of one
    policy often test the same period."""

    def __init__(self):
        self.instrs: list[dict] = []
        self.vtypes: list[str] = []
        self.cse: dict = {}
        self.producer: dict[int, int] = {}  # value -> position of the instruction computing it

    def new_value(self, vt: str) -> int:
        self.vtypes.append(vt)
        return len(self.vtypes) - 1

    def op(self, name: str, a=None, b=None, c=None, k: Const | None = None, k2: Const | None = None,
           aux: tuple = (), gate: int = 0, dst=None) -> Val | None:
        """Emit ``name``; return its value (a fresh or an equal earlier one) unless ``dst`` given."""
        spec = opc.BY_NAME[name]
        operands = tuple(self._operand(x) for x in (a, b, c))
        if dst is None:
            sharable = (name in _SHARABLE and not aux and gate >= 0
                        and all(x is None or isinstance(x, Fixed) for x in (k, k2))
                        and all(x is None or x[0] == "v" for x in operands))
            key = (name, operands, k, k2, aux) if sharable else (name, operands, k, k2, aux, gate)
            if key in self.cse:
                value = self.cse[key]
                if sharable:
                    self._widen(self.producer[value.reg], gate)
                return value
            value = Val(spec.dst, reg=self.new_value(spec.dst))
            self.producer[value.reg] = len(self.instrs)
            self.instrs.append(dict(op=name, dst=("v", value.reg), a=operands[0], b=operands[1],
                                    c=operands[2], k=k, k2=k2, aux=aux, gate=gate))
            self.cse[key] = value
            return value
        self.instrs.append(dict(op=name, dst=dst, a=operands[0], b=operands[1], c=operands[2],
                                k=k, k2=k2, aux=aux, gate=gate))
        return None

    def _widen(self, position: int, gate: int) -> None:
        """Instruction ``position``, and those computing its operands, run where ``gate`` is
        enabled too."""
        ins = self.instrs[position]
        gates = ins["gate"] if isinstance(ins["gate"], frozenset) else frozenset((ins["gate"],))
        if gate in gates or 0 in gates:
            return
        if ins["op"] not in _SHARABLE:  # (its value is found only under its own gate: never here)
            raise AssertionError(f"{ins['op']} under gate {ins['gate']} read under gate {gate}")
        ins["gate"] = 0 if gate == 0 else gates | {gate}
        for operand in (ins["a"], ins["b"], ins["c"]):
            if operand is not None and operand[1] in self.producer:
                self._widen(self.producer[operand[1]], gate)

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
        # while a probe (``outside``) computes its call's arguments: a working-day call nested
        # in them is computed without raising, since it may be one that is not reached (the
        # untaken branch, value_or's unused default) or one whose own probe rejects the row
        self.probing = False

    # -- helpers ---------------------------------------------------------------------------------
    def op(self, name, *args, **kwargs) -> Val:
        return self.emit.op(name, *args, gate=self.gate, **kwargs)

    def fact(self, node: ast.Name) -> Val:
        """The value of a fact (of an optional fact: 0 where it is empty, which the checker's
        guards keep from deciding anything)."""
        vt = U8 if node.type.kind is Kind.BOOLEAN else I64
        self.program.use_fact(node.name)
        return Val(vt, reg=self.pinned(("fact", node.name), vt))

    def present(self, node: ast.Name) -> Val:
        """is_set(fact): the validity column of an optional fact (1 where it has a value)."""
        self.program.use_fact(node.name)
        return Val(U8, reg=self.pinned(("present", node.name), U8))

    def pinned(self, key: tuple, vt: str) -> int:
        """Columns are pinned registers (``key`` names one in _assemble); give each a stable
        virtual value id in this emitter."""
        if key not in self.emit.cse:
            value = self.emit.new_value(vt)
            self.emit.cse[key] = value
            self.program.pinned_values[(id(self.emit), value)] = key
        return self.emit.cse[key]

    def materialise(self, val: Val) -> Val:
        if not val.is_const:
            return val
        return self.op("BCAST_U8" if val.vt == U8 else "BCAST_I64", k=val.const)

    @staticmethod
    def reads_facts(node: ast.Node) -> bool:
        """Whether ``node`` is computed per row: it reads a fact or another rule's result, or
        counts working days (on as_of or a parameter too: a day outside the holiday table
        rejects the rows the call judges, probed per row, where a constant computed when the
        program is bound would fail the whole call)."""
        return (bool(ast.names(node, "fact")) or bool(ast.results_read(node))
                or any(isinstance(n, ast.Call) and n.function in WORKDAY_CALLS for n in ast.walk(node)))

    def result(self, node: ast.Call) -> Val:
        """amount_of(rule) / fired(rule): the output column that rule wrote for this block,
        earlier in the program (a disabled rule's outputs are zeroed, as the reference reads)."""
        key = self.program.results[(self.policy_index, node.args[0].name)][node.function]
        vt = U8 if node.function == "fired" else I64
        return Val(vt, reg=self.pinned(key, vt))

    def const(self, what: str, node: ast.Node, vt: str, scale: int = 1, domain=None) -> Val:
        per_batch = domain is not None and domain[0] == "string"  # codes of this batch's dictionary
        if isinstance(node, ast.Literal) and not per_batch:
            value = self.program.literal_rep(node, scale, domain)
            return Val(vt, const=Fixed(value))
        self.program.check_constant_fits(node, scale)
        return Val(vt, const=Patch(what, node, self.policy_index, scale, domain))

    # -- numbers and dates ------------------------------------------------------------------------
    def number(self, node: ast.Node, scale: int) -> Val:
        """An int64 value of ``node`` in units of 1/scale, a multiple of its own scale."""
        if scale % node.scale:
            raise KernelError(f"cannot represent {ast.render(node)} ({node.type}) at scale {scale}")
        if not self.reads_facts(node):
            return self.const("value", node, I64, scale)
        value = self.number_native(node)
        if scale != node.scale:
            self.program.check_scalable(node, scale)
            value = self.op("MUL_RK", value, k=Fixed(scale // node.scale))
        return value

    def number_native(self, node: ast.Node) -> Val:
        native = node.scale
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
        if node.op == "*":  # exact: the product's scale is the product of the scales
            left = self.number(node.left, node.left.scale)
            right = self.number(node.right, node.right.scale)
            return self.arith("MUL", left, right)
        if node.op == "/":
            dividend = self.number(node.left, node.left.scale)
            if self.reads_facts(node.right) or dividend.is_const:
                raise KernelError("a divisor must be a constant or a parameter", node.right.span)
            return self.op("MUL_RK", dividend, k=self.multiplier(node.right, native // node.left.scale))
        raise KernelError(f"unknown operator {node.op!r}", node.span)

    def multiplier(self, node: ast.Node, scale: int) -> Const:
        if isinstance(node, ast.Literal):
            return Fixed(quotient_multiplier(node.value, scale))
        return Patch("multiplier", node, self.policy_index, scale)

    def rounded(self, node: ast.Node, per_unit: int, mode: str) -> Val:
        """``node`` times ``per_unit`` rounded to a whole number by ``mode``: round(), floor()
        and ceil() (per_unit 1) and an amount in its unit (100 for fen). At the node's scale s
        that is value_raw x (u / g) / (s / g) with g = gcd(u, s), rounded once by DIVR_RK."""
        scale = node.scale
        common = math.gcd(per_unit, scale)
        value = self.number(node, scale)
        if per_unit // common != 1:
            value = self.op("MUL_RK", value, k=Fixed(per_unit // common))
        if scale // common != 1:
            value = self.op("DIVR_RK", value, k=Fixed(scale // common), k2=Fixed(opc.ROUNDING_MODES[mode]))
        return value

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
        if function == "amount_of":
            return self.result(node)
        if function in ("add_months", "add_years"):
            return self.add_months(node)
        if function in WORKDAY_CALLS:
            return self.workdays(node)
        if function == "value_or":
            fact, default = node.args
            return self.op("SELECT_I64", self.present(fact), self.number(fact, native),
                           self.materialise(self.number(default, native)))
        if function in ("min", "max"):
            return self.fold(function.upper(), [self.number(arg, native) for arg in node.args])
        if function == "abs":
            return self.op("ABS", self.number(node.args[0], native))
        if function in ("round", "floor", "ceil"):
            (arg,) = node.args
            return self.rounded(arg, 1, {"round": "half_up", "floor": "floor", "ceil": "ceil"}[function])
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

    def add_months(self, node: ast.Call) -> Val:
        """add_months(date, n, mode) and add_years(date, n, mode) = add_months(date, 12 n, mode):
        ADD_MONTHS_RK when the count is a constant (a literal or a parameter, x 12 for years),
        else ADD_MONTHS_RR on a register of months."""
        day_node, count_node, mode_node = node.args
        mode = Fixed(opc.ADD_MONTHS_MODES[mode_node.value])
        per_unit = 12 if node.function == "add_years" else 1
        day = self.materialise(self.number(day_node, 1))
        if not self.reads_facts(count_node):
            return self.op("ADD_MONTHS_RK", day, k=self.const("value", count_node, I64, scale=per_unit).const, k2=mode)
        months = self.number(count_node, 1)
        if per_unit != 1:  # |n| is bounded by the checker's date range: 12 n cannot overflow
            months = self.op("MUL_RK", months, k=Fixed(per_unit))
        return self.op("ADD_MONTHS_RR", day, months, k=mode)

    def workdays(self, node: ast.Call) -> Val:
        """add_working_days / working_days_between / working_day_on_or_after: WORKDAYS with the
        holiday table in aux. Computed on every row; a day outside the table is an error
        only where the row is accepted and the arguments can be evaluated (``computable``),
        as ``_workdays.check_calls`` decides for the reference: every such row has been
        rejected by the call's probe before, so the error is the kernel's own consistency
        check. Within a probe (``probing``), never an error (see ``outside``)."""
        *args, table = node.args
        function = node.function if node.function != "working_days_between" else f"{node.function} {args.pop().value}"
        code = opc.WORKDAY_FUNCTIONS[function]
        day = self.materialise(self.number(args[0], 1))
        other = self.materialise(self.number(args[1], 1)) if len(args) > 1 else day
        if self.probing:
            where = self.materialise(Val(U8, const=Fixed(0)))
        else:
            where = ("valid",)
            for arg in args:
                mask = self.computable(arg)
                if mask is not None:
                    where = self.op("AND_RR", where, mask)
        return self.op("WORKDAYS", day, other, where, aux=tuple(Fixed(v) for v in table.value.aux(code)))

    def outside(self, node: ast.Call) -> Val:
        """1 where the working-day call ``node`` reaches a day outside its holiday table on a
        row where its arguments can be evaluated, else 0: WORKDAYS probing (its function code
        + WORKDAY_OUTSIDE), so that such rows become rejects before any check or rule reads
        the call (``_compiler._emit_calendar_checks``). Its arguments can be evaluated where
        they read no empty optional fact and reach no nested working-day call that is
        outside (``computable``, as ``rules/_workdays.calendar_failures``): a nested call
        is computed here without raising, since where it is not reached its value is not
        read, and where it is reached and outside, its own probe is the reject."""
        *args, table = node.args
        function = node.function if node.function != "working_days_between" else f"{node.function} {args.pop().value}"
        code = opc.WORKDAY_FUNCTIONS[function] + opc.WORKDAY_OUTSIDE
        probing, self.probing = self.probing, True
        try:
            day = self.materialise(self.number(args[0], 1))
            other = self.materialise(self.number(args[1], 1)) if len(args) > 1 else day
            where = None
            for arg in args:
                where = self._all(where, self.computable(arg))
            where = self.materialise(Val(U8, const=Fixed(1))) if where is None else where
            return self.op("WORKDAYS", day, other, where, aux=tuple(Fixed(v) for v in table.value.aux(code)))
        finally:
            self.probing = probing

    def computable(self, node: ast.Node) -> Val | None:
        """Per row, whether the reference evaluates ``node`` without reading an empty
        optional fact (rules/_evaluate.py: is_set reads nothing, value_or its default only
        when the fact is empty, if() the branch taken, and/or until decided) and without
        reaching a working-day call outside the holiday table; None: always."""
        if isinstance(node, ast.Call) and node.function in WORKDAY_CALLS:
            arguments = None
            for arg in node.args:
                arguments = self._all(arguments, self.computable(arg))
            return self._all(arguments, self.op("EQ_RK", self.outside(node), k=Fixed(0)))  # not outside
        if isinstance(node, ast.Name):
            optional = node.kind == "fact" and self.program.facts[node.name].optional
            return self.present(node) if optional else None
        if isinstance(node, ast.Call) and node.function == "is_set":
            return None
        if isinstance(node, ast.Call) and node.function == "value_or":
            default = self.computable(node.args[1])
            return None if default is None else self.op("OR_RR", self.present(node.args[0]), default)
        if isinstance(node, ast.Call) and node.function == "if":
            condition, *branches = node.args
            taken = [self.computable(branch) for branch in branches]
            if taken != [None, None]:
                chosen = self.materialise(self.boolean(condition))
                taken = [self.materialise(Val(U8, const=Fixed(1))) if t is None else t for t in taken]
                both = self.op("SELECT_U8", chosen, taken[0], taken[1])
            else:
                both = None
            return self._all(self.computable(condition), both)
        if isinstance(node, ast.BoolOp):  # all()/any() stop at the first operand that decides
            result = None
            for operand in reversed(node.operands):
                mine = self.computable(operand)
                if result is not None:
                    value = self.materialise(self.boolean(operand))
                    decides = value if node.op == "or" else self.op("NOT", value)
                    result = self.op("OR_RR", decides, result)
                result = self._all(mine, result)
            return result
        result = None
        for child in ast.children(node):
            result = self._all(result, self.computable(child))
        return result

    def _all(self, first: Val | None, second: Val | None) -> Val | None:
        if first is None or second is None:
            return first if second is None else second
        return self.op("AND_RR", first, second)

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
        if isinstance(node, ast.Call) and node.function == "is_set":
            return self.present(node.args[0])
        if isinstance(node, ast.Call) and node.function == "fired":
            return self.result(node)
        if isinstance(node, ast.Call) and node.function == "value_or":
            fact, default = node.args
            return self.op("SELECT_U8", self.present(fact), self.fact(fact), self.materialise(self.boolean(default)))
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
        lt = left_node.type
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
            scale = math.lcm(left_node.scale, right_node.scale)
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
            scale = math.lcm(node.item.scale, *(option.scale for option in node.options))
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
        if isinstance(node, ast.Call) and node.function == "value_or":
            fact, default = node.args
            return self.op("SELECT_I64", self.present(fact), self.fact(fact),
                           self.materialise(self.categorical(default, domain)))
        raise KernelError(f"the kernel cannot compute {ast.render(node)} as {node.type}", node.span)

