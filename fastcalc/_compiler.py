"""Compile the rules of a policy set into one flat program for the kernel, once.

``compile_policies`` runs ``_RuleCompiler`` (``_rule_compiler.py``: how each node of the
language becomes instructions) over every rule, with one ``_ProgramBuilder`` holding what the
rules share: the facts read, the categorical domains and literal codes, and the proofs that
values fit int64. ``_assemble`` then allocates registers and lays out the instruction and
aux arrays with their patch points; the result is the ``CompiledProgram`` of ``_compiled.py``.

Across rules only the loaded columns are shared, so that a rule disabled for a call (its
policy not in force, a parameter without a value) skips exactly its own instructions (the
``gate`` field).
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

import attrs
import numpy as np
from ecorules.rules import KernelError, Policy, PolicySet
from ecorules.rules import _ast as ast
from ecorules.rules._check import known_set
from ecorules.rules._money import in_units
from ecorules.rules._schema import ENTERPRISE
from ecorules.rules._types import DECIMAL_SCALE, INT64_MAX, INT64_MIN, Kind
from ecorules.rules._workdays import CALENDAR_CHECK, outside_check, reads_results
from ecorules.rules._workdays import calls as workday_calls
from ecorules.rules._workdays import rule_nodes as workday_nodes

from . import _opcodes as opc
from ._compiled import (
    CheckSlot,
    CompiledProgram,
    FindingSlot,
    Fixed,
    Patch,
    PayerGroup,
    Register,
    RuleSlot,
    SanctionSlot,
    Val,
    check_program,
    representation,
)
from ._rule_compiler import _Emitter, _RuleCompiler

I64, U8 = opc.I64, opc.U8


# -- what the rules share -----------------------------------------------------------------------
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
        self.pinned_values: dict = {}  # (emitter id, virtual value) -> ("fact" | "present", name)
        # (policy index, rule id) -> {"fired": output key, "amount_of": output key}: what a
        # later rule reads of an earlier one (the loader orders the rules by these reads)
        self.results: dict[tuple[int, str], dict[str, tuple]] = {}
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
    def check_scalable(self, node: ast.Node, scale: int) -> None:
        """A value brought to a finer scale is multiplied: prove it stays in int64 (the
        checker proves it for the scales the language needs; this guards the compiler)."""
        if node.interval is None:
            raise KernelError(f"no value range is known for {ast.render(node)}", node.span)
        if not all(_fits_int64(int(Fraction(bound) * scale)) for bound in node.interval):
            low, high = node.interval
            raise KernelError(
                f"{ast.render(node)} may reach {low} .. {high}: too large to hold at scale {scale} "
                "in the kernel (declare a smaller min/max)", node.span,
            )

    def check_constant_fits(self, node: ast.Node, scale: int) -> None:
        if node.type.kind in (Kind.INTEGER, Kind.DECIMAL) and node.interval is not None:
            for bound in node.interval:
                if not _fits_int64(int(Fraction(bound) * scale)):
                    raise KernelError(
                        f"{ast.render(node)} may reach {bound}, beyond the kernel's int64", node.span
                    )


def _alternatives(node: ast.Node) -> tuple[ast.Node, ...]:
    """The subexpressions whose value ``node``'s value is: the branches of if(), a fact and
    its default in value_or()."""
    if isinstance(node, ast.Call) and node.function == "if":
        return node.args[1:]
    if isinstance(node, ast.Call) and node.function == "value_or":
        return node.args
    return ()


def _string_facts(node: ast.Node) -> set:
    """The string facts whose text ``node``'s value can be (through if() and value_or())."""
    if isinstance(node, ast.Name) and node.kind == "fact" and node.type.kind is Kind.STRING:
        return {node.name}
    return set().union(*(_string_facts(arg) for arg in _alternatives(node)))


def _string_texts(node: ast.Node) -> set:
    """The literal texts ``node``'s value can be."""
    if isinstance(node, ast.Literal) and isinstance(node.value, str):
        return {node.value}
    return set().union(*(_string_texts(arg) for arg in _alternatives(node)))


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
    rules, rule_policy, rule_parameters, findings, finding_rules, sanctions = [], [], [], [], [], []
    # list entries' dates: one row of the "dates" output per from:/until: given; per
    # sanction slot (start row, end row), -1 for the default (as_of) or open-ended; lifts
    # are (slot, rule, start row): a lift follows its rule's fired flag
    sanction_dates, lifts, lift_rules, lift_dates, dates = [], [], [], [], []
    stores = []  # rule index, (kind, output name, row, value | None)
    checks, check_policy, check_parameters, calendar_checks = _emit_checks(builder, emitter, chosen,
                                                                           policies.kinds.get(domain))
    late = []  # (CheckSlot, policy index): working-day calls reading a rule's result
    for policy_index, policy in enumerate(chosen):
        for rule in policy.rules:
            r = len(rules)
            late += _emit_late_calendar_checks(builder, emitter, policy_index, policy, rule, r + 1,
                                               len(checks) + len(late))
            rules.append(RuleSlot(policy.key, rule.id))
            rule_policy.append(policy_index)
            reads = [rule.condition, *(f.amount for f in rule.findings),
                     *(node for spec in (*rule.sanctions, *rule.lifts) for node in spec.dated)]
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
                finding_rules.append(r)
                if finding.payer != ENTERPRISE:
                    if builder.facts[finding.payer].optional and finding.payer not in known_set(rule.condition, True):
                        # an empty row would be rolled up under the placeholder code 0, a real label;
                        # where the condition proves the payer set, the rule fires on no such row
                        raise KernelError(f"the payer {finding.payer!r} of {policy.key} rule {rule.id} is an "
                                          "optional fact: a finding needs a payer in every row", rule.span)
                    builder.use_fact(finding.payer)
                out = ("out", "amounts", f)
                amount = _amount(compiler, finding, policy_index)
                if amount.is_const:
                    emitter.op("AMOUNT_K", b=fired, k=amount.const, gate=r + 1, dst=out)
                else:
                    emitter.op("AMOUNT", a=amount, b=fired, gate=r + 1, dst=out)
                emitter.op("ZERO_I64", gate=-(r + 1), dst=out)
                stores.append(finding)
            builder.results[(policy_index, rule.id)] = {"fired": fired}
            if len(rule.findings) == 1:
                builder.results[(policy_index, rule.id)]["amount_of"] = ("out", "amounts", len(findings) - 1)
            for sanction in rule.sanctions:
                s = len(sanctions)
                sanctions.append(SanctionSlot(policy.key, rule.id, sanction.list))
                out = ("out", "sanctions", s)
                emitter.op("COPY_U8", a=fired, gate=r + 1, dst=out)
                emitter.op("ZERO_U8", gate=-(r + 1), dst=out)
                sanction_dates.append((_date_row(compiler, emitter, sanction.start, fired, r, dates),
                                       _date_row(compiler, emitter, sanction.end, fired, r, dates)))
            for lift in rule.lifts:
                lifts.append(SanctionSlot(policy.key, rule.id, lift.list))
                lift_rules.append(r)
                lift_dates.append(_date_row(compiler, emitter, lift.start, fired, r, dates))

    if late:
        # a row rejected by a late working-day probe may have fired rules judged before it:
        # like every rejected row, it has no finding, list entry or total
        for r in range(len(rules)):
            emitter.op("FIRED", a=("out", "fired", r), b=("valid",), gate=r + 1, dst=("out", "fired", r))
        for f, r in enumerate(finding_rules):
            emitter.op("AMOUNT", a=("out", "amounts", f), b=("out", "fired", r), gate=r + 1, dst=("out", "amounts", f))
        for s, slot in enumerate(sanctions):
            r = rules.index(RuleSlot(slot.policy_key, slot.rule_id))
            emitter.op("COPY_U8", a=("out", "fired", r), gate=r + 1, dst=("out", "sanctions", s))

    # Row totals: payable findings into total_yuan, rewards into rewards_yuan, both in the
    # finest unit of any slot (fen if one rounds to the fen), so that they stay exact.
    units = tuple(spec.rounding.per_yuan for spec in stores)
    total_unit = max(units, default=1)
    checked = False
    for name, payable in (("total", True), ("rewards", False)):
        slots = [f for f, slot in enumerate(findings) if slot.kind.payable == payable]
        bound = sum(_amount_high(stores[f], total_unit) for f in slots)
        unchecked = bound <= INT64_MAX
        checked = checked or not unchecked
        for position, f in enumerate(slots):
            op = "TOTAL_COPY" if position == 0 else ("TOTAL_ADD" if unchecked else "TOTAL_ADD_CHECKED")
            term = ("out", "amounts", f)
            if units[f] != total_unit:  # bounded with the others by _amount_high
                term = emitter.op("MUL_RK", a=term, k=Fixed(total_unit // units[f]))
            emitter.op(op, a=term, dst=("out", name, 0))

    groups = _payer_groups(findings)
    program = _assemble(builder, emitter, chosen, needed, tuple(rules), tuple(rule_policy),
                        tuple(rule_parameters), tuple(findings), tuple(finding_rules), tuple(sanctions), groups,
                        checked, len(rules) + len(checks) + len(late))
    checks = (*checks, *(slot for slot, _ in late))
    check_policy = (*check_policy, *(policy_index for _, policy_index in late))
    check_parameters = (*check_parameters, *(() for _ in late))
    program = attrs.evolve(program, sanction_dates=tuple(sanction_dates), lifts=tuple(lifts),
                           lift_rules=tuple(lift_rules), lift_dates=tuple(lift_dates), n_dates=len(dates),
                           finding_units=units, total_unit=total_unit, checks=checks, check_policy=check_policy,
                           check_parameters=check_parameters, calendar_checks=calendar_checks + len(late))
    check_program(program)
    return program


def _emit_checks(builder, emitter, chosen, kind) -> tuple[tuple, tuple, tuple, int]:
    """The checks of the kind's catalogue (policy index -1: always judged), then every check
    of every policy, before any rule: first each check's failures on the accepted rows (its
    row of ``failed``), then the rows failing any check are taken out of the accepted-rows
    mask, so every failure of a row is reported and no rule sees the row. Check c is gated by
    ``len(rules) + c + 1``: a disabled check fails nowhere. Before them, the calendar checks
    (``_emit_calendar_checks``), the last slots."""
    n_rules = sum(len(policy.rules) for policy in chosen)
    slots, policy_of, parameters = [], [], []
    kind_checks = [(-1, kind.source or kind.id, check) for check in (kind.checks if kind is not None else ())]
    policy_checks = [(index, policy.key, check) for index, policy in enumerate(chosen) for check in policy.checks]
    calendar = _emit_calendar_checks(builder, emitter, chosen, (*kind_checks, *policy_checks), n_rules,
                                     kind.key if kind is not None else None)
    for policy_index, origin, check in (*kind_checks, *policy_checks):
        c = len(slots)
        gate = n_rules + c + 1
        # the reason keeps its {name}s: fastcalc/_checks.py fills them per failing row
        slots.append(CheckSlot(origin, check.id, check.column, check.reason(origin), check.shown))
        policy_of.append(policy_index)
        parameters.append(tuple(ast.names(check.holds, "parameter")))
        for name in (check.column, *check.shown):
            builder.use_fact(name)  # its values are shown in the reject
        # a check reads the column it blames, so it is never a constant; a kind's check
        # reads no parameter (a catalogue has none): any policy's constants serve it
        compiler = _RuleCompiler(builder, emitter, max(policy_index, 0), gate=gate)
        holds = compiler.materialise(compiler.boolean(check.holds))
        failed = ("out", "failed", c)
        emitter.op("FAILED", a=holds, b=("valid",), gate=gate, dst=failed)
        emitter.op("ZERO_U8", gate=-gate, dst=failed)
    for c in range(len(slots)):
        emitter.op("REJECT", a=("out", "failed", c), dst=("valid",))
    for check, policy_index in calendar:
        slots.append(check)
        policy_of.append(policy_index)
        parameters.append(())
    return tuple(slots), tuple(policy_of), tuple(parameters), len(calendar)


def _emit_late_calendar_checks(builder, emitter, policy_index: int, policy, rule, gate: int, first: int) -> list:
    """The working-day calls of ``rule`` that read another rule's result, probed just before
    the rule is judged (the rules it reads are, by then): a row where one reaches a day
    outside the holiday table is a reject naming the call's column and dates, taken out of
    the accepted mask before this rule and every later one reads it, as the reference
    rejects the record for the first such rule of the policy (engine/_evaluator.judge).
    Their ``failed`` slots are numbered from ``first``, after every other check's."""
    found = []
    for node in workday_nodes(rule):
        for call in workday_calls(node):
            if not reads_results(call):
                continue
            column, reason, shown = outside_check(call, policy.subject)
            c = first + len(found)
            for name in (column, *shown):
                builder.use_fact(name)
            compiler = _RuleCompiler(builder, emitter, policy_index, gate=gate)
            holds = compiler.op("EQ_RK", compiler.outside(call), k=Fixed(0))
            emitter.op("FAILED", a=holds, b=("valid",), gate=gate, dst=("out", "failed", c))
            emitter.op("ZERO_U8", gate=-gate, dst=("out", "failed", c))
            origin = f"{policy.key} rule {rule.id}"
            found.append((CheckSlot(origin, CALENDAR_CHECK, column, f"{reason} ({origin})", shown), policy_index))
    for c in range(len(found)):
        emitter.op("REJECT", a=("out", "failed", first + c), dst=("valid",))
    return found


def _emit_calendar_checks(builder, emitter, chosen, checks, n_rules: int, kind_key: str | None) -> list:
    """A row where a working-day call of a check or of a rule reaches a day outside the
    holiday table is a reject naming the call's column and dates (rules/_workdays.outside_check),
    as the reference rejects the record (engine/_evaluator.judge), instead of failing the
    whole batch: one slot of ``failed`` per call, numbered after the ``checks``, computed
    where the check or rule is enabled (its gate) on the accepted rows, and those rows taken
    out of the accepted mask before any other check or rule reads the call. Returns
    (CheckSlot, policy index) per slot."""
    owners = [(policy_index, f"{origin} check {check.id}", n_rules + c + 1, check.holds,
               chosen[policy_index].subject if policy_index >= 0 else kind_key)
              for c, (policy_index, origin, check) in enumerate(checks)]
    r = 0
    for policy_index, policy in enumerate(chosen):
        for rule in policy.rules:
            r += 1
            owners += [(policy_index, f"{policy.key} rule {rule.id}", r, node, policy.subject)
                       for node in workday_nodes(rule)]
    found = []
    first = len(checks)
    for policy_index, origin, gate, node, subject in owners:
        for call in workday_calls(node):
            if reads_results(call):  # probed just before its rule (_emit_late_calendar_checks)
                continue
            column, reason, shown = outside_check(call, subject)
            c = first + len(found)
            for name in (column, *shown):
                builder.use_fact(name)
            compiler = _RuleCompiler(builder, emitter, max(policy_index, 0), gate=gate)
            holds = compiler.op("EQ_RK", compiler.outside(call), k=Fixed(0))
            emitter.op("FAILED", a=holds, b=("valid",), gate=gate, dst=("out", "failed", c))
            emitter.op("ZERO_U8", gate=-gate, dst=("out", "failed", c))
            found.append((CheckSlot(origin, CALENDAR_CHECK, column, f"{reason} ({origin})", shown), policy_index))
    for c in range(len(found)):
        emitter.op("REJECT", a=("out", "failed", first + c), dst=("valid",))
    return found


def _amount(compiler, finding, policy_index: int) -> Val:
    """A finding's amount in whole units of its rounding (yuan or fen), rounded once here by
    its mode; an amount that reads no fact is rounded when its constant is patched."""
    rounding = finding.rounding
    if not compiler.reads_facts(finding.amount):
        if isinstance(finding.amount, ast.Literal):
            return Val(opc.I64, const=Fixed(in_units(finding.amount.value, rounding)))
        return Val(opc.I64, const=Patch("amount", finding.amount, policy_index, rounding=rounding))
    return compiler.rounded(finding.amount, rounding.per_yuan, rounding.mode)


def _date_row(compiler, emitter, node, fired, r: int, dates: list) -> int:
    """A date expression of a list entry as the next row of the "dates" output: its day
    number where rule ``r`` fired, 0 elsewhere (like an amount); -1 for no expression."""
    if node is None:
        return -1
    row = len(dates)
    dates.append(node)
    out = ("out", "dates", row)
    value = compiler.number(node, 1)
    if value.is_const:
        emitter.op("AMOUNT_K", b=fired, k=value.const, gate=r + 1, dst=out)
    else:
        emitter.op("AMOUNT", a=value, b=fired, gate=r + 1, dst=out)
    emitter.op("ZERO_I64", gate=-(r + 1), dst=out)
    return row


def _amount_high(finding, total_unit: int) -> int:
    """The largest amount of a slot, in the total's unit (its rounding may round up)."""
    interval = finding.amount.interval
    if interval is None:
        return INT64_MAX + 1  # unknown: check at run time
    return (Fraction(interval[1]) * finding.rounding.per_yuan).__ceil__() * (total_unit // finding.rounding.per_yuan)


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
              finding_rules, sanctions, groups, checked, n_gates: int) -> CompiledProgram:
    """Registers for the virtual values, then the instruction and aux arrays with patch points.
    An instruction several rules or checks share (its gate a set, ``_Emitter``) is gated by a
    gate group, numbered after the ``n_gates`` rules and checks."""
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
        if builder.facts[name].optional:
            register(("present", name), Register("present", U8, name))
    out_types = {"fired": U8, "sanctions": U8, "amounts": I64, "total": I64, "rewards": I64, "dates": I64,
                 "failed": U8}

    # Virtual values of facts map to the fact registers; the others get scratch slots, freed
    # after their last use (a slot is never the dst of an instruction reading it).
    pinned_of_value = {value: key for (emitter_id, value), key in builder.pinned_values.items()}
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
            if value in pinned_of_value:
                return index_of[pinned_of_value[value]]
            vt, slot = emitter.vtypes[value], slot_of[value]
            # one register per (slot, type): a slot holds i64 and u8 values at different times
            return register(("slot", slot, vt), Register("scratch", vt, slot=slot))
        if operand[0] == "out":
            _, name, row = operand
            return register(operand, Register("out", out_types[name], name, row))
        return index_of[operand]

    gate_groups: dict[tuple[int, ...], int] = {}  # its gates, ascending -> the group's gate

    def gate_of(gates) -> int:
        if not isinstance(gates, frozenset):
            return gates
        if len(gates) == 1:
            return next(iter(gates))
        return gate_groups.setdefault(tuple(sorted(gates)), n_gates + len(gate_groups) + 1)

    code = np.zeros(len(emitter.instrs), opc.INSTR_DTYPE)
    aux_values: list[int] = []
    patches: list = []
    for position, ins in enumerate(emitter.instrs):
        row = code[position]
        row["op"] = opc.BY_NAME[ins["op"]].code
        row["gate"] = gate_of(ins["gate"])
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
            if operand is not None and operand[0] == "v" and operand[1] not in pinned_of_value \
                    and last_use.get(operand[1]) == position and operand[1] in slot_of:
                free_slots.append(slot_of.pop(operand[1]))
        rule = ins["gate"] - 1 if not isinstance(ins["gate"], frozenset) and ins["gate"] > 0 else None
        if isinstance(ins["gate"], frozenset) and (ins["aux"] or any(isinstance(ins[f], Patch) for f in ("k", "k2"))):
            raise AssertionError(f"instruction {position}: a shared instruction with a call constant")
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
        finding_rules=finding_rules,
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
        gate_groups=tuple(gate_groups),
    )
    return program  # validated by compile_policies, once the checks and dates are in


__all__ = ["compile_policies"]
