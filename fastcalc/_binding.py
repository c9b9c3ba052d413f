"""Bind a compiled program to one call and one segment of a batch, checked, for the kernel.

Per call, nothing is compiled: ``patched`` fills the immediates that depend on the call (the
parameters in force on ``as_of``), ``patch_strings`` those that depend on a segment's text
dictionaries, and ``bind`` points the registers at the validated columns and the output
arrays, prepends the LOADs of narrow columns and appends the per-payer roll-up laid out for
this segment. What binding adds is checked here (``_view``, ``_check_bound``) because the
kernel then runs without the GIL and checks nothing. Split from ``_program.py``, which only
orchestrates validate -> bind -> run -> results.
"""

from __future__ import annotations

import numpy as np
from ecorules.rules import KernelError, evaluate
from ecorules.rules._money import in_units
from ecorules.rules._schema import ENTERPRISE
from ecorules.rules._types import Kind

from . import _opcodes as opc
from ._compiled import CompiledProgram, quotient_multiplier, representation

_LOADS = {"int8": "LOAD_I8", "int16": "LOAD_I16", "int32": "LOAD_I32", "uint8": "LOAD_U8",
          "uint16": "LOAD_U16", "uint32": "LOAD_U32"}


def patched(c: CompiledProgram, envs: list[dict], enabled: np.ndarray):
    """The immediates that depend on the call (parameters, as_of); string codes later."""
    code = c.code.copy()
    aux = c.aux.copy()
    string_patches = []
    for target, patch, rule in c.patches:
        if rule is not None and not enabled[rule]:
            continue  # its instructions do not run; placeholders stay
        value = evaluate(patch.node, envs[patch.policy])
        if patch.what == "value":
            number = representation(value, patch.node.type, patch.scale)
        elif patch.what == "multiplier":
            number = quotient_multiplier(value, patch.scale)
        elif patch.what == "amount":
            number = in_units(value, patch.rounding)
        elif patch.domain[0] == "string":
            string_patches.append((target, patch.domain[1], value))
            continue
        else:
            number = _code(c, value, patch.domain)
        _store(code, aux, target, number)
    return code, aux, string_patches


def _code(c: CompiledProgram, text: str, domain: tuple) -> int:
    if domain[0] == "enum":
        return domain[1].index(text)
    return c.literal_table[text]


def patch_strings(c: CompiledProgram, code, aux, string_patches, enabled, columns):
    """Codes of string literals in this segment's dictionaries (a fresh code if absent)."""
    if not string_patches:
        return code, aux
    code, aux = code.copy(), aux.copy()
    code_maps: dict[str, dict] = {}
    for target, fact, text in string_patches:
        if fact not in code_maps:
            codes = {label: i for i, label in enumerate(columns[fact].labels or ())}
            for literal in c.string_literals.get(fact, ()):
                codes.setdefault(literal, len(codes))
            code_maps[fact] = codes
        _store(code, aux, target, code_maps[fact][text])
    return code, aux


def bind(c: CompiledProgram, code: np.ndarray, aux: np.ndarray, columns: dict, outputs: dict, n: int):
    """Point the registers at this segment; prepend the LOADs, append the roll-ups."""
    registers = np.zeros(len(c.registers), opc.REG_DTYPE)
    n_slots = c.n_temp_slots
    prologue = []
    fact_register = {}
    for index, reg in enumerate(c.registers):
        entry = registers[index]
        if reg.role == "scratch":
            entry["kind"], entry["itemsize"], entry["addr"] = opc.REG_SCRATCH, 8, reg.slot
            entry["dtype"] = opc.DTYPE_CODE[opc.REGISTER_DTYPE[reg.vt]]
        elif reg.role == "valid":
            _view(entry, outputs["valid"], n, "uint8")
        elif reg.role == "out":
            array = outputs[reg.name]
            _view(entry, array[reg.row] if array.ndim == 2 else array, n, opc.REGISTER_DTYPE[reg.vt])
        elif reg.role == "present":
            present = columns[reg.name].present
            if present is None:  # an unchecked column: no rule that runs reads it
                entry["kind"], entry["dtype"], entry["itemsize"], entry["addr"] = opc.REG_SCRATCH, 1, 8, 0
            else:
                _view(entry, present, n, "uint8")
        elif reg.role == "raw":
            values = columns[reg.name].values
            if values is None:  # an unchecked column: no rule that runs reads it
                entry["kind"], entry["dtype"], entry["itemsize"], entry["addr"] = opc.REG_SCRATCH, 0, 8, 0
            else:
                _view(entry, values, n, values.dtype.name)
        elif reg.role == "fact":
            values = columns[reg.name].values
            fact_register[reg.name] = index
            if values is None:
                entry["kind"], entry["dtype"], entry["itemsize"], entry["addr"] = opc.REG_SCRATCH, 0, 8, 0
            elif values.dtype.name == opc.REGISTER_DTYPE[reg.vt]:
                _view(entry, values, n, values.dtype.name)
            elif reg.name not in c.loaded_facts:  # only a payer: ROLLUP reads the raw column
                entry["kind"], entry["dtype"], entry["itemsize"], entry["addr"] = opc.REG_SCRATCH, 0, 8, 0
            else:
                if reg.vt != opc.I64 or values.dtype.name not in _LOADS:
                    raise KernelError(f"column {reg.name!r}: the kernel cannot read dtype {values.dtype}")
                entry["kind"], entry["dtype"], entry["itemsize"], entry["addr"] = opc.REG_SCRATCH, 0, 8, n_slots
                n_slots += 1
                prologue.append((_LOADS[values.dtype.name], index, c.register_index[("raw", reg.name)]))
    head = np.full(len(prologue), -1, dtype=opc.INSTR_DTYPE)
    for position, (name, dst, src) in enumerate(prologue):
        head[position] = (opc.BY_NAME[name].code, 0, dst, src, -1, -1, 0, 0)
    # the roll-up: per payer group, sums per slot and label, and rows where a payable slot's
    # rule fired (cases: see rollup in _kernel.pyx)
    tail, layout, acc_len, aux_extra = [], [], 0, []
    for group in c.payer_groups:
        if group.fact is None:
            labels, codes_register = (ENTERPRISE,), -1
        else:
            fact = c.facts[group.fact]
            labels = fact.type.choices if fact.type.kind is Kind.ENUM else (columns[group.fact].labels or ())
            codes_register = c.register_index[("raw", group.fact)]  # the column itself, any int dtype
        n_codes = len(labels)
        offset = len(aux) + len(aux_extra)
        count_offset = acc_len + n_codes * len(group.slots)
        code_dtype = int(registers[codes_register]["dtype"]) if codes_register >= 0 else 0
        descriptor = [len(group.slots), n_codes, count_offset, code_dtype]
        slot_offsets = []
        for position, f in enumerate(group.slots):
            slot_offsets.append(acc_len + n_codes * position)
            descriptor += [c.register_index[("out", "amounts", f)], slot_offsets[-1], int(group.payable[position]),
                           c.register_index[("out", "fired", c.finding_rules[f])]]
        layout.append((group, tuple(labels), slot_offsets, count_offset))
        acc_len = count_offset + n_codes
        aux_extra += descriptor
        op = "ROLLUP_ONE" if group.fact is None else "ROLLUP"
        tail.append((opc.BY_NAME[op].code, 0, -1, codes_register, -1, -1, offset, 0))
    tail_code = np.array(tail, dtype=opc.INSTR_DTYPE) if tail else np.empty(0, opc.INSTR_DTYPE)
    code = np.concatenate([head, code, tail_code])
    aux = np.concatenate([aux, np.array(aux_extra, dtype=np.int64)]) if aux_extra else aux
    _check_bound(c, registers, head, tail_code, aux, acc_len)
    return code, np.ascontiguousarray(aux, dtype=np.int64), registers, n_slots, acc_len, layout


def _store(code: np.ndarray, aux: np.ndarray, target: tuple, number: int) -> None:
    if target[0] == "code":
        code[target[1]][target[2]] = number
    else:
        aux[target[1]] = number


def _view(entry, array: np.ndarray, n: int, dtype: str) -> None:
    if array.dtype.name != dtype or array.ndim != 1 or array.shape[0] < n or not array.flags.c_contiguous:
        raise KernelError(f"cannot bind a {array.dtype}{array.shape} array as {dtype}[{n}]")
    entry["kind"] = opc.REG_VIEW
    entry["dtype"] = opc.DTYPE_CODE[dtype]
    entry["itemsize"] = array.itemsize
    entry["addr"] = array.ctypes.data


def _check_bound(c: CompiledProgram, registers: np.ndarray, head: np.ndarray, tail: np.ndarray,
                 aux: np.ndarray, acc_len: int) -> None:
    """What binding added: LOADs read raw views into scratch, roll-ups read amount outputs
    and fired flags and add into the accumulators inside ``acc_len``."""
    for row in head:
        spec = opc.OPCODES[int(row["op"])]
        src = registers[int(row["a"])]
        if src["kind"] != opc.REG_VIEW or opc.DTYPES[int(src["dtype"])] != opc.RAW_TYPES[spec.a]:
            raise KernelError(f"{spec.name} reads a register that is not a {spec.a} view")
        if registers[int(row["dst"])]["kind"] != opc.REG_SCRATCH:
            raise KernelError(f"{spec.name} must write a scratch register")
    for row in tail:
        offset = int(row["k"])
        n_slots, n_codes, count_offset, code_dtype = (int(v) for v in aux[offset: offset + 4])
        if offset + 4 + 4 * n_slots > len(aux) or not 0 <= count_offset <= acc_len - n_codes:
            raise KernelError("roll-up descriptor out of range")
        if not 0 < n_slots <= opc.ROLLUP_MAX_SLOTS:
            raise KernelError("roll-up with too many slots")
        if int(row["a"]) >= 0 and int(registers[int(row["a"])]["dtype"]) != code_dtype:
            raise KernelError("roll-up payer codes are not of the dtype given in aux")
        for s in range(n_slots):
            register, acc_offset, _, fired = (int(v) for v in aux[offset + 4 + 4 * s: offset + 8 + 4 * s])
            entry = registers[register]
            if entry["kind"] != opc.REG_VIEW or entry["dtype"] != opc.DTYPE_CODE["int64"]:
                raise KernelError("roll-up amounts must be int64 output views")
            if not 0 <= fired < len(registers) or registers[fired]["kind"] != opc.REG_VIEW \
                    or registers[fired]["dtype"] != opc.DTYPE_CODE["uint8"]:
                raise KernelError("roll-up fired flags must be uint8 output views")
            if not 0 <= acc_offset <= acc_len - n_codes:
                raise KernelError("roll-up offsets out of range")


__all__ = ["bind", "patch_strings", "patched"]
