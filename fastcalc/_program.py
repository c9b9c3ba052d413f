"""The Python front of the kernel: bind a batch to a compiled program, run it, shape results.

Per call, nothing is compiled: the program's immediates are patched with the parameters in
force on ``as_of`` and with this batch's string codes, its registers are pointed at the
validated columns and the output arrays, and the per-payer roll-up is laid out for this
batch's dictionaries. What is bound is checked here (dtypes, lengths, offsets) before the
kernel runs without the GIL; the kernel's error codes become exceptions afterwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import numpy as np
import pyarrow as pa

from ecorules.rules import KernelError, ParameterNotSetError, Policy, PolicySet, evaluate
from ecorules.rules._schema import ENTERPRISE
from ecorules.rules._types import INT64_MAX, Kind

from . import _kernel
from . import _opcodes as opc
from ._compiler import CompiledProgram, FindingSlot, RuleSlot, SanctionSlot, compile_policies, divisor_immediates, representation
from ._validate import Rejects, ValidColumn, validate_column

DEFAULT_BLOCK_ROWS = 4096


def _check_layout() -> None:
    """The numpy dtypes of _opcodes must describe the kernel's C structs byte for byte."""
    layout = _kernel.layout()
    for name, dtype in (("instr", opc.INSTR_DTYPE), ("register", opc.REG_DTYPE)):
        size, offsets = layout[name]
        mine = {field: dtype.fields[field][1] for field in dtype.names}
        if size != dtype.itemsize or offsets != mine:
            raise ImportError(f"fastcalc: {name} layout differs between _opcodes and _kernel: "
                              f"{size} {offsets} vs {dtype.itemsize} {mine}; rebuild the kernel")
    if layout["n_opcodes"] != len(opc.OPCODES):
        raise ImportError("fastcalc: the kernel was built from another opcode table; rebuild it")


_check_layout()


@attrs.frozen
class PayerTotal:
    """Sums of one finding slot per payer: ``yuan[code]`` is owed by ``labels[code]``."""

    slot: int  # index into ScoreResult.finding_slots / Program.findings
    payer: str  # the fact naming the payer
    labels: tuple[str, ...]  # enum choices, or the batch dictionary of a text fact
    yuan: np.ndarray  # int64, one per label


@attrs.frozen(eq=False)
class ScoreResult:
    """What one call of :meth:`Program.score` found, row by row and rolled up.

    All arrays are numpy. Rejected rows (``valid`` false) have zero in every output and are
    never counted; each of their problems is one entry of the parallel ``reject_*`` arrays,
    sorted by row then column, with the wording of ``rules/_records.py``.
    """

    n_rows: int
    as_of: dt.date
    valid: np.ndarray  # bool (n_rows,)
    reject_rows: np.ndarray  # int64 row index in the batch
    reject_columns: np.ndarray  # object array of str
    reject_values: np.ndarray  # object array of str: the raw value as text, "" for null
    reject_reasons: np.ndarray  # object array of str
    fired: np.ndarray  # uint8 (n_rules, n_rows)
    amounts: np.ndarray  # int64 (n_findings, n_rows), yuan
    sanctions: np.ndarray  # uint8 (n_sanctions, n_rows)
    total_yuan: np.ndarray  # int64 (n_rows,): payable findings (every kind but reward)
    rewards_yuan: np.ndarray  # int64 (n_rows,): findings of kind reward
    payer_totals: tuple[PayerTotal, ...]  # slots with a text/enum payer
    enterprise_totals: dict  # slot -> yuan, for slots paid by the enterprise itself
    warnings: tuple[str, ...]  # rules not applied on as_of, and why
    rule_slots: tuple[RuleSlot, ...]
    finding_slots: tuple[FindingSlot, ...]
    sanction_slots: tuple[SanctionSlot, ...]
    case_counts: dict  # payer label -> rows with a payable amount > 0

    def totals_by_payer(self) -> dict[str, int]:
        """Yuan owed per payer label over all payable slots (``"enterprise"``: the subjects)."""
        totals: dict[str, int] = {}
        for part in self.payer_totals:
            if not self.finding_slots[part.slot].kind.payable:
                continue
            for label, yuan in zip(part.labels, part.yuan.tolist(), strict=True):
                totals[label] = totals.get(label, 0) + yuan
        for slot, yuan in self.enterprise_totals.items():
            if self.finding_slots[slot].kind.payable:
                totals[ENTERPRISE] = totals.get(ENTERPRISE, 0) + yuan
        return totals

    def case_counts_by_payer(self) -> dict[str, int]:
        """Rows with at least one payable amount > 0 owed by each payer label."""
        counts = {label: 0 for label in self.totals_by_payer()}
        counts.update(self.case_counts)
        return counts


class Program:
    """A policy set compiled for the kernel. Create with :func:`compile_program`."""

    def __init__(self, compiled: CompiledProgram):
        self._compiled = compiled

    @property
    def columns(self) -> tuple[str, ...]:
        return self._compiled.columns

    @property
    def rules(self) -> tuple[RuleSlot, ...]:
        return self._compiled.rules

    @property
    def findings(self) -> tuple[FindingSlot, ...]:
        return self._compiled.findings

    @property
    def sanctions(self) -> tuple[SanctionSlot, ...]:
        return self._compiled.sanctions

    @property
    def compiled(self) -> CompiledProgram:
        """The flat program itself (instructions, registers, patch points), for inspection."""
        return self._compiled

    def __repr__(self) -> str:
        c = self._compiled
        return (f"<fastcalc.Program {len(c.rules)} rules, {len(c.findings)} findings, "
                f"{len(c.sanctions)} sanctions, {len(c.code)} instructions, columns {list(c.columns)}>")

    # -- scoring ---------------------------------------------------------------------------------
    def score(self, table: Any, *, as_of: dt.date, threads: int = 1,
              block_rows: int = DEFAULT_BLOCK_ROWS, out: ScoreResult | None = None) -> ScoreResult:
        """Validate and score every row of ``table`` as of ``as_of``.

        ``table``: a dict of 1-D arrays (numpy, lists), a pyarrow Table or RecordBatch, or a
        pandas DataFrame. ``threads`` > 1 splits the blocks over OpenMP threads (same results
        for any value). ``out``: a previous result of the same shape whose arrays are reused
        (and overwritten), which saves the page faults of fresh outputs.
        """
        if not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime):
            raise ValueError(f"as_of must be a datetime.date, got {as_of!r}")
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive int, got {threads!r}")
        if not isinstance(block_rows, int) or not 64 <= block_rows <= 1 << 20:
            raise ValueError(f"block_rows must be an int in 64 .. 1048576, got {block_rows!r}")
        c = self._compiled
        raw_columns, n = _columns_of(table, c)
        valid, rejects, columns = self._validate(raw_columns, n)
        enabled, envs, warnings = self._enabled(as_of)
        outputs = self._outputs(n, valid, out)
        code, aux = self._patched(envs, enabled, columns)
        code, aux, registers, n_slots, acc_len, layout = self._bind(code, aux, columns, outputs, n)
        acc = np.zeros((max(1, min(threads, -(-n // block_rows) if n else 1)), max(acc_len, 1)), np.int64)
        if n:
            status = _kernel.run(code.view(np.uint8), aux, registers.view(np.uint8), enabled, n,
                                 block_rows, n_slots, acc, threads)
            if status != opc.ERR_NONE:
                message = opc.ERROR_MESSAGES.get(status, f"kernel error {status}")
                if status == opc.ERR_OVERFLOW:
                    raise OverflowError(message)
                raise KernelError(message)
        sums = _exact_sum(acc)
        payer_totals, enterprise_totals, case_counts = self._rollups(sums, layout, columns, outputs)
        return ScoreResult(
            n_rows=n, as_of=as_of, valid=valid,
            reject_rows=rejects[0], reject_columns=rejects[1], reject_values=rejects[2],
            reject_reasons=rejects[3],
            fired=outputs["fired"], amounts=outputs["amounts"], sanctions=outputs["sanctions"],
            total_yuan=outputs["total"], rewards_yuan=outputs["rewards"],
            payer_totals=payer_totals, enterprise_totals=enterprise_totals,
            warnings=tuple(warnings), rule_slots=c.rules, finding_slots=c.findings,
            sanction_slots=c.sanctions, case_counts=case_counts,
        )

    def _validate(self, raw_columns: dict, n: int):
        c = self._compiled
        columns: dict[str, ValidColumn] = {}
        parts = []
        for position, name in enumerate(c.columns):
            collected = Rejects()
            columns[name] = validate_column(c.facts[name], raw_columns[name], n,
                                            name in c.kernel_facts, collected)
            for rows, values, reasons in zip(collected.rows, collected.values, collected.reasons, strict=True):
                parts.append((position, rows, values, reasons))
        valid = np.ones(n, dtype=bool)
        if not parts:
            empty = np.empty(0, dtype=object)
            return valid, (np.empty(0, np.int64), empty, empty.copy(), empty.copy()), columns
        rows = np.concatenate([p[1] for p in parts])
        positions = np.concatenate([np.full(p[1].size, p[0], np.int64) for p in parts])
        order = np.lexsort((positions, rows))
        names = np.array(c.columns, dtype=object)
        valid[rows] = False
        rejects = (
            rows[order],
            names[positions[order]],
            np.concatenate([p[2] for p in parts])[order],
            np.concatenate([p[3] for p in parts])[order],
        )
        return valid, rejects, columns

    def _enabled(self, as_of: dt.date):
        """Which rules apply on ``as_of``; parameter values per policy; why others do not."""
        c = self._compiled
        enabled = np.zeros(len(c.rules), dtype=np.uint8)
        envs: list[dict] = []
        unset: list[dict] = []
        for policy in c.policies:
            env: dict[str, Any] = {"as_of": as_of}
            missing = {}
            for name, parameter in policy.parameters.items():
                try:
                    env[name] = parameter.value_at(as_of)
                except ParameterNotSetError as error:
                    missing[name] = str(error)
            envs.append(env)
            unset.append(missing)
        warnings = []
        for r, (slot, policy_index) in enumerate(zip(c.rules, c.rule_policy, strict=True)):
            policy = c.policies[policy_index]
            if not policy.in_force(as_of):
                continue
            blocked = [name for name in c.rule_parameters[r] if name in unset[policy_index]]
            if blocked:
                warnings.append(f"{slot.policy_key}: rule {slot.rule_id!r} is not applied on "
                                f"{as_of}: {unset[policy_index][blocked[0]]}")
                continue
            enabled[r] = 1
        return enabled, envs, warnings

    def _patched(self, envs: list[dict], enabled: np.ndarray, columns: dict):
        """The program's immediates with this call's parameters and string codes."""
        c = self._compiled
        code = c.code.copy()
        aux = c.aux.copy()
        code_maps: dict[str, dict] = {}
        for target, patch, rule in c.patches:
            if rule is not None and not enabled[rule]:
                continue  # its instructions do not run; placeholders stay
            value = evaluate(patch.node, envs[patch.policy])
            if patch.what == "value":
                number = representation(value, patch.node.type, patch.scale)
            elif patch.what in ("divisor", "multiplier"):
                divisor, multiplier = divisor_immediates(value, patch.scale)
                number = divisor if patch.what == "divisor" else multiplier
            else:  # "code": a categorical value in its domain
                number = self._code(value, patch.domain, columns, code_maps)
            if target[0] == "code":
                code[target[1]][target[2]] = number
            else:
                aux[target[1]] = number
        return code, aux

    def _code(self, text: str, domain: tuple, columns: dict, code_maps: dict) -> int:
        c = self._compiled
        if domain[0] == "enum":
            return domain[1].index(text)
        if domain[0] == "literals":
            return c.literal_table[text]
        fact = domain[1]
        if fact not in code_maps:
            labels = columns[fact].labels or ()
            codes = {label: i for i, label in enumerate(labels)}
            for literal in c.string_literals.get(fact, ()):
                codes.setdefault(literal, len(codes))  # absent from this batch: a code of its own
            code_maps[fact] = codes
        return code_maps[fact][text]

    def _outputs(self, n: int, valid: np.ndarray, out: ScoreResult | None) -> dict:
        c = self._compiled
        shapes = {"fired": ((len(c.rules), n), np.uint8), "amounts": ((len(c.findings), n), np.int64),
                  "sanctions": ((len(c.sanctions), n), np.uint8)}
        outputs = {}
        for name, (shape, dtype) in shapes.items():
            previous = getattr(out, name, None) if out is not None else None
            if previous is not None and previous.shape == shape and previous.dtype == dtype \
                    and previous.flags.c_contiguous and previous.flags.writeable:
                outputs[name] = previous
            else:
                outputs[name] = np.empty(shape, dtype)
        for name, payable in (("total", True), ("rewards", False)):
            attr = "total_yuan" if payable else "rewards_yuan"
            if any(f.kind.payable == payable for f in c.findings):
                previous = getattr(out, attr, None) if out is not None else None
                if previous is not None and previous.shape == (n,) and previous.dtype == np.int64 \
                        and previous.flags.c_contiguous and previous.flags.writeable:
                    outputs[name] = previous
                else:
                    outputs[name] = np.empty(n, np.int64)
            else:
                outputs[name] = np.zeros(n, np.int64)  # calloc: costs nothing until read
        outputs["valid_u8"] = valid.view(np.uint8)
        return outputs

    def _bind(self, code: np.ndarray, aux: np.ndarray, columns: dict, outputs: dict, n: int):
        """Point the registers at this batch; prepend the LOADs, append the roll-ups."""
        c = self._compiled
        registers = np.zeros(len(c.registers), opc.REG_DTYPE)
        n_slots = c.n_temp_slots
        prologue = []
        fact_register = {}
        for index, reg in enumerate(c.registers):
            entry = registers[index]
            if reg.role == "scratch":
                entry["kind"], entry["dtype"], entry["itemsize"], entry["addr"] = opc.REG_SCRATCH, opc.DTYPE_CODE[opc.REGISTER_DTYPE[reg.vt]], 8, reg.slot
            elif reg.role == "valid":
                _view(entry, outputs["valid_u8"], n, "uint8")
            elif reg.role == "out":
                array = outputs[reg.name]
                _view(entry, array[reg.row] if array.ndim == 2 else array, n, opc.REGISTER_DTYPE[reg.vt])
            elif reg.role == "raw":
                values = columns[reg.name].values
                _view(entry, values, n, values.dtype.name)
            elif reg.role == "fact":
                values = columns[reg.name].values
                fact_register[reg.name] = index
                if values.dtype.name == opc.REGISTER_DTYPE[reg.vt]:
                    _view(entry, values, n, values.dtype.name)
                else:
                    if reg.vt != opc.I64 or values.dtype.name not in opc.RAW_TYPES.values():
                        raise KernelError(f"column {reg.name!r}: the kernel cannot read dtype {values.dtype}")
                    entry["kind"], entry["dtype"], entry["itemsize"], entry["addr"] = opc.REG_SCRATCH, 0, 8, n_slots
                    n_slots += 1
                    load = "LOAD_" + {"int8": "I8", "int16": "I16", "int32": "I32", "uint8": "U8",
                                      "uint16": "U16", "uint32": "U32"}[values.dtype.name]
                    prologue.append((load, index, c.registers.index(_raw_of(c, reg.name))))
        head = np.full(len(prologue), -1, dtype=opc.INSTR_DTYPE)
        for position, (name, dst, src) in enumerate(prologue):
            head[position] = (opc.BY_NAME[name].code, 0, dst, src, -1, -1, 0, 0)
        # the roll-up: per payer group, sums per slot and label, and rows with a payable amount
        tail, layout, acc_len, aux_extra = [], [], 0, []
        for group in c.payer_groups:
            if group.fact is None:
                labels, codes_register = (ENTERPRISE,), -1
            else:
                fact = c.facts[group.fact]
                labels = fact.type.choices if fact.type.kind is Kind.ENUM else columns[group.fact].labels
                codes_register = fact_register[group.fact]
            n_codes = len(labels)
            offset = len(aux) + len(aux_extra)
            descriptor = [len(group.slots), n_codes, acc_len + n_codes * len(group.slots)]
            slot_offsets = []
            for position, f in enumerate(group.slots):
                descriptor += [c.registers.index(_out_of(c, f)), acc_len + n_codes * position, int(group.payable[position])]
                slot_offsets.append(acc_len + n_codes * position)
            layout.append((group, labels, slot_offsets, acc_len + n_codes * len(group.slots), codes_register))
            acc_len += n_codes * (len(group.slots) + 1)
            aux_extra += descriptor
            op = "ROLLUP_ONE" if group.fact is None else "ROLLUP"
            tail.append((opc.BY_NAME[op].code, 0, -1, codes_register, -1, -1, offset, 0))
        tail_code = np.array(tail, dtype=opc.INSTR_DTYPE) if tail else np.empty(0, opc.INSTR_DTYPE)
        code = np.concatenate([head, code, tail_code])
        aux = np.concatenate([aux, np.array(aux_extra, dtype=np.int64)]) if aux_extra else aux
        _check_bound(c, registers, head, layout, aux, acc_len, n)
        return np.ascontiguousarray(code), np.ascontiguousarray(aux, dtype=np.int64), registers, n_slots, acc_len, layout

    def _rollups(self, sums: np.ndarray, layout: list, columns: dict, outputs: dict):
        payer_totals, enterprise_totals, per_group = [], {}, []
        for group, labels, slot_offsets, count_offset, _ in layout:
            n_codes = len(labels)
            for f, offset in zip(group.slots, slot_offsets, strict=True):
                yuan = sums[offset: offset + n_codes].copy()
                if group.fact is None:
                    enterprise_totals[f] = int(yuan[0])
                else:
                    payer_totals.append(PayerTotal(f, group.fact, tuple(labels), yuan))
            per_group.append((group, labels, sums[count_offset: count_offset + n_codes]))
        return tuple(sorted(payer_totals, key=lambda p: p.slot)), enterprise_totals, \
            self._case_counts(per_group, columns, outputs)

    def _case_counts(self, per_group: list, columns: dict, outputs: dict) -> dict[str, int]:
        """Rows with a payable amount per label. Groups whose labels overlap (two text facts
        naming the same payer) are merged exactly, so a row counts once per label."""
        seen: dict[str, int] = {}
        overlap = False
        for _, labels, _ in per_group:
            for label in labels:
                seen[label] = seen.get(label, 0) + 1
                overlap = overlap or seen[label] > 1
        counts: dict[str, int] = {}
        if not overlap:
            for _, labels, group_counts in per_group:
                for label, count in zip(labels, group_counts.tolist(), strict=True):
                    if count:
                        counts[label] = count
            return counts
        global_id = {label: i for i, label in enumerate(seen)}
        labels_all = list(seen)
        keys = []
        n = outputs["amounts"].shape[1]
        for group, labels, _ in per_group:
            payable = [f for f, p in zip(group.slots, group.payable, strict=True) if p]
            if not payable:
                continue
            positive = (outputs["amounts"][payable] > 0).any(axis=0)
            rows = np.flatnonzero(positive)
            if group.fact is None:
                codes = np.zeros(rows.size, np.int64)
            else:
                codes = columns[group.fact].values[rows].astype(np.int64)
            ids = np.array([global_id[label] for label in labels], np.int64)[codes]
            keys.append(rows.astype(np.int64) * len(labels_all) + ids)
        if keys:
            unique = np.unique(np.concatenate(keys))
            per_label = np.bincount(unique % len(labels_all), minlength=len(labels_all))
            for label, count in zip(labels_all, per_label.tolist(), strict=True):
                if count:
                    counts[label] = count
        del n
        return counts


def _raw_of(c: CompiledProgram, name: str):
    return next(r for r in c.registers if r.role == "raw" and r.name == name)


def _out_of(c: CompiledProgram, f: int):
    return next(r for r in c.registers if r.role == "out" and r.name == "amounts" and r.row == f)


def _view(entry, array: np.ndarray, n: int, dtype: str) -> None:
    if array.dtype.name != dtype or array.ndim != 1 or array.shape[0] < n or not array.flags.c_contiguous:
        raise KernelError(f"cannot bind a {array.dtype}{array.shape} array as {dtype}[{n}]")
    entry["kind"] = opc.REG_VIEW
    entry["dtype"] = opc.DTYPE_CODE[dtype]
    entry["itemsize"] = array.itemsize
    entry["addr"] = array.ctypes.data


def _check_bound(c: CompiledProgram, registers: np.ndarray, head: np.ndarray, layout: list,
                 aux: np.ndarray, acc_len: int, n: int) -> None:
    """What binding added: LOADs read raw views into scratch, roll-ups read amount outputs."""
    for row in head:
        spec = opc.OPCODES[int(row["op"])]
        src = registers[int(row["a"])]
        if src["kind"] != opc.REG_VIEW or opc.DTYPES[int(src["dtype"])] != opc.RAW_TYPES[spec.a]:
            raise KernelError(f"{spec.name} reads a register that is not a {spec.a} view")
        if registers[int(row["dst"])]["kind"] != opc.REG_SCRATCH:
            raise KernelError(f"{spec.name} must write a scratch register")
    for group, labels, slot_offsets, count_offset, codes_register in layout:
        if group.fact is not None and c.registers[codes_register].vt != opc.I64:
            raise KernelError(f"payer {group.fact!r} codes are not int64 registers")
        for offset in (*slot_offsets, count_offset):
            if not 0 <= offset <= acc_len - len(labels):
                raise KernelError("roll-up offsets out of range")


def _exact_sum(acc: np.ndarray) -> np.ndarray:
    """Sum the per-thread accumulators in int64, refusing any overflow (no float anywhere)."""
    total = acc[0].copy()
    for row in acc[1:]:
        result = total + row
        if (((total ^ result) & (row ^ result)) < 0).any():
            raise OverflowError(opc.ERROR_MESSAGES[opc.ERR_OVERFLOW])
        total = result
    return total


def _columns_of(table: Any, c: CompiledProgram) -> tuple[dict, int]:
    """The needed columns of ``table`` and its row count; a missing column names its policies."""
    if isinstance(table, pa.Table | pa.RecordBatch):
        names, n = set(table.column_names), table.num_rows
        get = table.column
    elif type(table).__module__.startswith("pandas") and hasattr(table, "columns"):
        names, n = set(map(str, table.columns)), len(table)
        get = table.__getitem__
    elif isinstance(table, Mapping):
        names = set(table)
        get = table.__getitem__
        n = None
    else:
        raise ValueError(f"expected a dict of arrays, a pyarrow Table/RecordBatch or a pandas "
                         f"DataFrame, got {type(table).__name__}")
    for name in c.columns:
        if name not in names:
            raise ValueError(f"the batch has no column {name!r}, needed by {', '.join(c.needed_by[name])}")
    raw = {name: get(name) for name in c.columns}
    if n is None:
        lengths = {name: len(values) for name, values in raw.items()}
        n = next(iter(lengths.values())) if lengths else 0
        for name, length in lengths.items():
            if length != n:
                raise ValueError(f"column {name!r} has {length} rows, but {next(iter(lengths))!r} has {n}")
    return raw, n


def compile_program(policies: PolicySet | Iterable[Policy], domain: str = "enterprise") -> Program:
    """Compile the rules of ``domain`` in ``policies`` once into a program for the kernel.

    Raises :class:`~ecorules.rules.KernelError` if some construct cannot run in the kernel
    (never falls back to slower code silently).
    """
    return Program(compile_policies(policies, domain))


__all__ = ["PayerTotal", "Program", "ScoreResult", "compile_program"]
del INT64_MAX
