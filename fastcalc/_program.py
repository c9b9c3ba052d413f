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
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
from ecorules.rules import KernelError, ParameterNotSetError, Policy, PolicySet, evaluate
from ecorules.rules._schema import ENTERPRISE
from ecorules.rules._types import INT64_MAX, Kind

from . import _kernel
from . import _opcodes as opc
from ._compiled import (
    CompiledProgram,
    FindingSlot,
    RuleSlot,
    SanctionSlot,
    divisor_immediates,
    representation,
)
from ._compiler import compile_policies
from ._validate import Rejects, ValidColumn, as_column, validate_column

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
        """Yuan owed per payer label over all payable slots, for labels that owe something
        (``"enterprise"`` for slots paid by the subjects themselves)."""
        totals: dict[str, int] = {}
        for part in self.payer_totals:
            if not self.finding_slots[part.slot].kind.payable:
                continue
            for label, yuan in zip(part.labels, part.yuan.tolist(), strict=True):
                if yuan:
                    totals[label] = totals.get(label, 0) + yuan
        for slot, yuan in self.enterprise_totals.items():
            if self.finding_slots[slot].kind.payable and yuan:
                totals[ENTERPRISE] = totals.get(ENTERPRISE, 0) + yuan
        return totals

    def case_counts_by_payer(self) -> dict[str, int]:
        """Rows with at least one payable amount > 0 owed by each label (a row counts once
        per label even when several of its findings name it)."""
        return dict(self.case_counts)


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

        A chunked Arrow table is scored segment by segment (between chunk boundaries), so no
        column is ever concatenated; results are the same as for one contiguous batch.
        """
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive int, got {threads!r}")
        batch = self._prepare(table, as_of, block_rows, out, threads)
        return self._finish(batch, self._run(batch, threads))

    def _prepare(self, table: Any, as_of: dt.date, block_rows: int, out: ScoreResult | None,
                 threads: int = 1) -> _Batch:
        """Everything but the kernel pass: validate, patch, bind (per segment)."""
        if not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime):
            raise ValueError(f"as_of must be a datetime.date, got {as_of!r}")
        if isinstance(block_rows, bool) or not isinstance(block_rows, int) or not 64 <= block_rows <= 1 << 20:
            raise ValueError(f"block_rows must be an int in 64 .. 1048576, got {block_rows!r}")
        c = self._compiled
        raw_columns, n = _columns_of(table, c)
        enabled, envs, warnings = self._enabled(as_of)
        # Like the single-case engine, only the facts of the policies in force are checked:
        # a column that only a not-yet-effective policy reads cannot reject a row.
        in_force = [p for p in c.policies if p.in_force(as_of)]
        checked = tuple(name for name in c.columns if any(name in p.required_facts for p in in_force))
        code, aux, string_patches = self._patched(envs, enabled)
        outputs = self._outputs(n, out)
        rejects: list = []
        segments = []
        # Every (segment, column) is validated as its own task, in parallel when threads > 1:
        # the work is in pyarrow and numpy, which release the GIL. A task writes only zeros
        # into the valid mask, which is set to ones before any task starts.
        outputs["valid"][:] = 1
        parts = [(start, stop, pieces, {name: (array[..., start:stop]) for name, array in outputs.items()})
                 for start, stop, pieces in _segments(raw_columns, n)]
        tasks = [(k, name) for k in range(len(parts)) for name in c.columns if name in checked]

        def validate(task):
            k, name = task
            start, stop, pieces, view = parts[k]
            return self._validate_one(name, pieces[name], stop - start, view["valid"])

        if threads > 1 and len(tasks) > 1:
            with ThreadPoolExecutor(threads) as pool:
                done = dict(zip(tasks, pool.map(validate, tasks), strict=True))
        else:
            done = {task: validate(task) for task in tasks}
        for k, (start, stop, _, view) in enumerate(parts):
            columns: dict[str, ValidColumn] = {name: ValidColumn(None) for name in c.columns}  # unchecked
            for position, name in enumerate(c.columns):
                if (k, name) not in done:
                    continue
                columns[name], collected = done[(k, name)]
                for rows, values, reasons in zip(collected.rows, collected.values, collected.reasons, strict=True):
                    rejects.append((position, rows + start, values, reasons))
            seg_code, seg_aux = self._patch_strings(code, aux, string_patches, enabled, columns)
            bound = self._bind(seg_code, seg_aux, columns, view, stop - start)
            segments.append(_Segment(stop - start, columns, view, *bound))
        return _Batch(n, as_of, block_rows, enabled, tuple(warnings), outputs, rejects, segments)

    def _run(self, batch: _Batch, threads: int) -> _Rollups:
        """The kernel pass over every segment, GIL released; then the exact roll-up sums."""
        rollups = _Rollups(self._compiled)
        for seg in batch.segments:
            blocks = -(-seg.rows // batch.block_rows)
            acc = np.zeros((max(1, min(threads, blocks)), max(seg.acc_len, 1)), np.int64)
            if seg.rows:
                status = _kernel.run(seg.code.view(np.uint8), seg.aux, seg.registers.view(np.uint8),
                                     batch.enabled, seg.rows, batch.block_rows, seg.n_slots, acc, threads)
                if status != opc.ERR_NONE:
                    message = opc.ERROR_MESSAGES.get(status, f"kernel error {status}")
                    if status == opc.ERR_OVERFLOW:
                        raise OverflowError(message)
                    raise KernelError(message)
            rollups.add(_exact_sum(acc), seg.layout, seg.columns, seg.view)
        return rollups

    def _finish(self, batch: _Batch, rollups: _Rollups) -> ScoreResult:
        c = self._compiled
        reject_rows, reject_columns, reject_values, reject_reasons = _sorted_rejects(batch.rejects, c.columns)
        payer_totals, enterprise_totals, case_counts = rollups.result()
        outputs = batch.outputs
        return ScoreResult(
            n_rows=batch.n, as_of=batch.as_of, valid=outputs["valid"].view(bool),
            reject_rows=reject_rows, reject_columns=reject_columns, reject_values=reject_values,
            reject_reasons=reject_reasons,
            fired=outputs["fired"], amounts=outputs["amounts"], sanctions=outputs["sanctions"],
            total_yuan=outputs["total"], rewards_yuan=outputs["rewards"],
            payer_totals=payer_totals, enterprise_totals=enterprise_totals,
            warnings=batch.warnings, rule_slots=c.rules, finding_slots=c.findings,
            sanction_slots=c.sanctions, case_counts=case_counts,
        )

    def _validate_one(self, name: str, piece: Any, n: int, valid: np.ndarray) -> tuple[ValidColumn, Rejects]:
        """One column of one segment; its rejected rows are cleared in ``valid`` (uint8)."""
        c = self._compiled
        collected = Rejects()
        column = validate_column(c.facts[name], piece, n, name in c.kernel_facts, collected)
        for rows in collected.rows:
            valid[rows] = 0
        return column, collected

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
                # the wording of engine/_evaluator.py, so both paths warn alike
                warnings.append(f"{slot.policy_key} rule {slot.rule_id}: not judged: "
                                f"{unset[policy_index][blocked[0]]}; legal staff must set it")
                continue
            enabled[r] = 1
        return enabled, envs, warnings

    def _patched(self, envs: list[dict], enabled: np.ndarray):
        """The immediates that depend on the call (parameters, as_of); string codes later."""
        c = self._compiled
        code = c.code.copy()
        aux = c.aux.copy()
        string_patches = []
        for target, patch, rule in c.patches:
            if rule is not None and not enabled[rule]:
                continue  # its instructions do not run; placeholders stay
            value = evaluate(patch.node, envs[patch.policy])
            if patch.what == "value":
                number = representation(value, patch.node.type, patch.scale)
            elif patch.what in ("divisor", "multiplier"):
                divisor, multiplier = divisor_immediates(value, patch.scale)
                number = divisor if patch.what == "divisor" else multiplier
            elif patch.domain[0] == "string":
                string_patches.append((target, patch.domain[1], value))
                continue
            else:
                number = self._code(value, patch.domain)
            _store(code, aux, target, number)
        return code, aux, string_patches

    def _code(self, text: str, domain: tuple) -> int:
        if domain[0] == "enum":
            return domain[1].index(text)
        return self._compiled.literal_table[text]

    def _patch_strings(self, code, aux, string_patches, enabled, columns):
        """Codes of string literals in this segment's dictionaries (a fresh code if absent)."""
        if not string_patches:
            return code, aux
        c = self._compiled
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

    def _outputs(self, n: int, out: ScoreResult | None) -> dict:
        c = self._compiled
        shapes = {"fired": ((len(c.rules), n), np.uint8, "fired"),
                  "amounts": ((len(c.findings), n), np.int64, "amounts"),
                  "sanctions": ((len(c.sanctions), n), np.uint8, "sanctions"),
                  "valid": ((n,), np.uint8, "valid")}
        for name, payable in (("total", True), ("rewards", False)):
            if any(f.kind.payable == payable for f in c.findings):
                shapes[name] = ((n,), np.int64, "total_yuan" if payable else "rewards_yuan")
        outputs = {}
        for name, (shape, dtype, attr) in shapes.items():
            previous = getattr(out, attr, None) if out is not None else None
            if previous is not None and name == "valid":
                previous = previous.view(np.uint8)
            if previous is not None and previous.shape == shape and previous.dtype == dtype \
                    and previous.flags.c_contiguous and previous.flags.writeable:
                outputs[name] = previous
            else:
                outputs[name] = np.empty(shape, dtype)
        for name in ("total", "rewards"):
            if name not in outputs:
                outputs[name] = np.zeros(n, np.int64)  # no such slot: calloc, free until read
        return outputs

    def _bind(self, code: np.ndarray, aux: np.ndarray, columns: dict, outputs: dict, n: int):
        """Point the registers at this segment; prepend the LOADs, append the roll-ups."""
        c = self._compiled
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
        # the roll-up: per payer group, sums per slot and label, and rows with a payable amount
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
                descriptor += [c.register_index[("out", "amounts", f)], slot_offsets[-1], int(group.payable[position])]
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


@attrs.frozen(eq=False)
class _Segment:
    """A run of rows inside which every column is contiguous, bound to the program."""

    rows: int
    columns: dict  # name -> ValidColumn
    view: dict  # output name -> the segment's slice of it
    code: np.ndarray
    aux: np.ndarray
    registers: np.ndarray
    n_slots: int
    acc_len: int
    layout: list


@attrs.frozen(eq=False)
class _Batch:
    """A validated batch bound to the program, ready for the kernel pass (Program._prepare)."""

    n: int
    as_of: dt.date
    block_rows: int
    enabled: np.ndarray
    warnings: tuple[str, ...]
    outputs: dict
    rejects: list
    segments: list


_LOADS = {"int8": "LOAD_I8", "int16": "LOAD_I16", "int32": "LOAD_I32", "uint8": "LOAD_U8",
          "uint16": "LOAD_U16", "uint32": "LOAD_U32"}


def _store(code: np.ndarray, aux: np.ndarray, target: tuple, number: int) -> None:
    if target[0] == "code":
        code[target[1]][target[2]] = number
    else:
        aux[target[1]] = number


class _Rollups:
    """Per-payer sums and case counts, merged over segments by label, exactly."""

    def __init__(self, c: CompiledProgram):
        self.c = c
        self.sums: dict[int, dict] = {}  # slot -> label -> yuan (Python int)
        self.labels: dict[int, list] = {}  # slot -> labels in first-seen order
        self.counts: dict[str, int] = {}

    def add(self, sums: np.ndarray, layout: list, columns: dict, outputs: dict) -> None:
        per_group = []
        for group, labels, slot_offsets, count_offset in layout:
            n_codes = len(labels)
            for f, offset in zip(group.slots, slot_offsets, strict=True):
                target = self.sums.setdefault(f, {})
                order = self.labels.setdefault(f, [])
                for label, yuan in zip(labels, sums[offset: offset + n_codes].tolist(), strict=True):
                    if label not in target:
                        target[label] = 0
                        order.append(label)
                    target[label] += yuan
            per_group.append((group, labels, sums[count_offset: count_offset + n_codes]))
        for label, count in _case_counts(per_group, columns, outputs).items():
            self.counts[label] = self.counts.get(label, 0) + count

    def result(self):
        payer_totals, enterprise_totals = [], {}
        for f, slot in enumerate(self.c.findings):
            if f not in self.sums:
                continue
            yuan = [self.sums[f][label] for label in self.labels[f]]
            if any(v > INT64_MAX for v in yuan):
                raise OverflowError(opc.ERROR_MESSAGES[opc.ERR_OVERFLOW])
            if slot.payer == ENTERPRISE:
                enterprise_totals[f] = yuan[0]
            else:
                payer_totals.append(PayerTotal(f, slot.payer, tuple(self.labels[f]), np.array(yuan, np.int64)))
        return tuple(payer_totals), enterprise_totals, dict(self.counts)


def _case_counts(per_group: list, columns: dict, outputs: dict) -> dict[str, int]:
    """Rows with a payable amount per label. Groups whose labels overlap (two text facts
    naming the same payer) are merged exactly, so that a row counts once per label."""
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
    labels_all = list(seen)
    global_id = {label: i for i, label in enumerate(labels_all)}
    keys = []
    for group, labels, _ in per_group:
        payable = [f for f, p in zip(group.slots, group.payable, strict=True) if p]
        if not payable:
            continue
        rows = np.flatnonzero((outputs["amounts"][payable] > 0).any(axis=0))
        if not rows.size:
            continue  # (its payer column may not even be checked: no rule of it applies)
        codes = np.zeros(rows.size, np.int64) if group.fact is None else columns[group.fact].values[rows].astype(np.int64)
        ids = np.array([global_id[label] for label in labels], np.int64)[codes]
        keys.append(rows.astype(np.int64) * len(labels_all) + ids)
    if keys:
        unique = np.unique(np.concatenate(keys))
        per_label = np.bincount(unique % len(labels_all), minlength=len(labels_all))  # counts, no weights
        for label, count in zip(labels_all, per_label.tolist(), strict=True):
            if count:
                counts[label] = count
    return counts


def _sorted_rejects(parts: list, names: tuple[str, ...]):
    if not parts:
        empty = np.empty(0, dtype=object)
        return np.empty(0, np.int64), empty, empty.copy(), empty.copy()
    rows = np.concatenate([p[1] for p in parts])
    positions = np.concatenate([np.full(p[1].size, p[0], np.int64) for p in parts])
    order = np.lexsort((positions, rows))
    return (rows[order], np.array(names, dtype=object)[positions[order]],
            np.concatenate([p[2] for p in parts])[order], np.concatenate([p[3] for p in parts])[order])


def _segments(raw_columns: dict, n: int):
    """Row ranges inside which every column is one contiguous piece, and those pieces.

    Chunked Arrow columns are cut at every chunk boundary of every column, without copying;
    when that would make segments smaller than 64k rows on average, the chunks are combined.
    """
    columns = {name: as_column(raw) for name, raw in raw_columns.items()}
    cuts = {0, n}
    for column in columns.values():
        if isinstance(column, pa.ChunkedArray):
            cuts.update(np.cumsum([len(chunk) for chunk in column.chunks]).tolist())
    cuts = sorted(cut for cut in cuts if 0 <= cut <= n)
    if len(cuts) > 2 and n / (len(cuts) - 1) < 65536:
        columns = {name: (c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c) for name, c in columns.items()}
        cuts = [0, n]
    if len(cuts) == 1:
        cuts = [0, 0]
    for start, stop in zip(cuts, cuts[1:], strict=False):
        yield start, stop, {name: _piece(column, start, stop) for name, column in columns.items()}


def _piece(column, start: int, stop: int):
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 0:
            return pa.array([], column.type)
        position = 0
        for chunk in column.chunks:
            if position <= start and stop <= position + len(chunk) and (len(chunk) or start == stop):
                return chunk.slice(start - position, stop - start)
            position += len(chunk)
        return column.slice(start, stop - start).combine_chunks()
    if isinstance(column, pa.Array):
        return column.slice(start, stop - start)
    return column[start:stop]


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
    and add into the accumulators inside ``acc_len``."""
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
        if offset + 4 + 3 * n_slots > len(aux) or not 0 <= count_offset <= acc_len - n_codes:
            raise KernelError("roll-up descriptor out of range")
        if not 0 < n_slots <= opc.ROLLUP_MAX_SLOTS:
            raise KernelError("roll-up with too many slots")
        if int(row["a"]) >= 0 and int(registers[int(row["a"])]["dtype"]) != code_dtype:
            raise KernelError("roll-up payer codes are not of the dtype given in aux")
        for s in range(n_slots):
            register, acc_offset, _ = (int(v) for v in aux[offset + 4 + 3 * s: offset + 7 + 3 * s])
            entry = registers[register]
            if entry["kind"] != opc.REG_VIEW or entry["dtype"] != opc.DTYPE_CODE["int64"]:
                raise KernelError("roll-up amounts must be int64 output views")
            if not 0 <= acc_offset <= acc_len - n_codes:
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
