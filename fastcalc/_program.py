"""The Python front of the kernel: ``Program`` validates a batch, binds it, runs the kernel.

``Program.score`` is the whole call: the needed columns are taken from the table and cut into
segments at chunk boundaries (``_columns_of``, ``_segments``), each (segment, column) is
validated (``_validate.py``), the program is patched and bound per segment (``_binding.py``),
the kernel runs over every segment without the GIL, and its outputs and exact roll-ups become
a ``ScoreResult`` (``_results.py``). The kernel's error codes become exceptions here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
from ecorules.rules import KernelError, ParameterNotSetError, Policy, PolicySet
from ecorules.rules._workdays import CalendarError, calls, rule_calls, rule_nodes

from . import _kernel
from . import _opcodes as opc
from ._binding import bind, patch_strings, patched
from ._checks import check_rejects
from ._compiled import CompiledProgram, FindingSlot, RuleSlot, SanctionSlot
from ._compiler import compile_policies
from ._results import ScoreResult, _exact_sum, _Rollups, _sorted_rejects
from ._validate import as_column, validate_column
from ._validate_common import Rejects, Validated, ValidColumn

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


class Program:
    """A policy set compiled for the kernel. Create with :func:`compile_program`."""

    def __init__(self, compiled: CompiledProgram):
        self._compiled = compiled

    @property
    def columns(self) -> tuple[str, ...]:
        return self._compiled.columns

    @property
    def kernel_facts(self) -> tuple[str, ...]:
        """The facts whose values the kernel reads (the other columns are only checked)."""
        return self._compiled.kernel_facts

    @property
    def policies(self) -> tuple[Policy, ...]:
        return self._compiled.policies

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
    def lifts(self) -> tuple[SanctionSlot, ...]:
        return self._compiled.lifts

    def entry_dates(self, result: ScoreResult, slot: int, rows: np.ndarray) -> tuple:
        """(start, end) of sanction ``slot`` at ``rows`` as int64 day numbers, each None where
        the sanction gives none (start: the default, as_of; end: open-ended)."""
        start, end = self._compiled.sanction_dates[slot]
        return (None if start < 0 else result.dates[start, rows], None if end < 0 else result.dates[end, rows])

    def lift_dates(self, result: ScoreResult, lift: int, rows: np.ndarray):
        """The from: of lift ``lift`` at ``rows`` (int64 day numbers), or None (as_of)."""
        row = self._compiled.lift_dates[lift]
        return None if row < 0 else result.dates[row, rows]

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
              block_rows: int = DEFAULT_BLOCK_ROWS, out: ScoreResult | None = None,
              law_date: dt.date | None = None, without: frozenset[str] = frozenset()) -> ScoreResult:
        """Validate and score every row of ``table`` as of ``as_of``.

        ``law_date`` (default ``as_of``): the day whose law applies, that is which versions
        are in force and which parameter values they take (行政处罚法 art 37: the day of the
        act, or of the decision); the builtin ``as_of`` the rules read stays ``as_of``. A
        tuple of days scores under their laws at once, in one pass: every version in force on
        one of them, each with its values of those days, which must agree (ValueError: score
        them apart), and the checks of all. A row's outputs of the versions in force on a day
        are then those a score on that day alone gives, provided the row is valid (a check
        of another day's version may reject it); the caller picks the slots of the versions
        in force on the day that applies to each row. The warnings are each day's, in order.

        ``without``: keys of versions taken as not in force whatever the day (their rules and
        checks off): a case scored at its decision date under the statutes that had a version
        at its act, and no other (行政处罚法 art 37: no law at the act, no violation to judge).

        ``table``: a dict of 1-D arrays (numpy, lists), a pyarrow Table or RecordBatch, or a
        pandas DataFrame; in a dict, a column may be ``Validated`` (already validated by the
        caller, bound as it is). ``threads`` > 1 splits the blocks over OpenMP threads (same results
        for any value). ``out``: a previous result of the same shape whose arrays are reused
        (and overwritten), which saves the page faults of fresh outputs.

        A chunked Arrow table is scored segment by segment (between chunk boundaries), so no
        column is ever concatenated; results are the same as for one contiguous batch.
        """
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive int, got {threads!r}")
        batch = self._prepare(table, as_of, block_rows, out, threads, law_date, without)
        rollups = self._run(batch, threads)
        for off, on in batch.shared:  # (a rule run once for two versions: its outputs for both)
            self._copy_outputs(batch.outputs, off, on)
        return self._finish(batch, rollups)

    def _prepare(self, table: Any, as_of: dt.date, block_rows: int, out: ScoreResult | None,
                 threads: int = 1, law_date: dt.date | None = None, without: frozenset[str] = frozenset()) -> _Batch:
        """Everything but the kernel pass: validate, patch, bind (per segment)."""
        days = tuple(law_date) if isinstance(law_date, tuple | list) else (law_date,)
        for name, day in (("as_of", as_of), *(("law_date", d) for d in days)):
            if (day is not None or name == "as_of") and (not isinstance(day, dt.date) or isinstance(day, dt.datetime)):
                raise ValueError(f"{name} must be a datetime.date, got {day!r}")
        if not days or (len(days) > 1 and None in days):
            raise ValueError(f"law_date must be a date or a non-empty tuple of dates, got {law_date!r}")
        days = (as_of,) if days == (None,) else days
        if isinstance(block_rows, bool) or not isinstance(block_rows, int) or not 64 <= block_rows <= 1 << 20:
            raise ValueError(f"block_rows must be an int in 64 .. 1048576, got {block_rows!r}")
        c = self._compiled
        raw_columns, n = _columns_of(table, c)
        enabled, envs, warnings = self._enabled_on(as_of, days, without)
        shared = self._shared(enabled, envs) if len(days) > 1 else ()
        for off, _on in shared:
            enabled[off] = 0
        # Like the single-case engine, only the facts of the policies in force are checked:
        # a column that only a not-yet-effective policy reads cannot reject a row.
        in_force = [p for p in c.policies if p.key not in without and any(p.in_force(day) for day in days)]
        checked = tuple(name for name in c.columns if any(name in p.required_facts for p in in_force))
        code, aux, string_patches = patched(c, envs, enabled)
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
            seg_code, seg_aux = patch_strings(c, code, aux, string_patches, enabled, columns)
            bound = bind(c, seg_code, seg_aux, columns, view, stop - start)
            segments.append(_Segment(stop - start, columns, view, *bound, start=start))
        return _Batch(n, as_of, block_rows, c.with_groups(enabled), tuple(warnings), outputs, rejects, segments, shared)

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
                    if status == opc.ERR_CALENDAR:
                        raise CalendarError(f"{message} ({self._tables()}): legal staff must add its year")
                    raise KernelError(message)
            rollups.add(_exact_sum(acc), seg.layout, seg.columns, seg.view)
        return rollups

    def _shared(self, enabled: np.ndarray, envs: list[dict]) -> tuple[tuple[int, int], ...]:
        """Under the laws of several days at once: the enabled rules of a version that
        another version of the statute, earlier in the program, holds alike, each as (the
        rule, the other's), to be run once and its outputs copied (a statute's amendment most often leaves most
        of its rules as they were, and a pass under both laws ran each of them twice: at
        2 M cases of bench/cases.py --dated, 0.08 of 0.40 kernel CPU-s). Alike: the same id,
        condition and findings (their amounts, payers, rounding and units), the parameters
        they read of the same values; neither making list entries or lifts, counting
        working days, nor read by another rule of its version (``amount_of``, ``fired``):
        their outputs are then the same on every row. The row totals and roll-ups of such a
        pass count a shared rule once (they add up versions of different days anyway)."""
        c = self._compiled
        policies = c.policies
        kept: dict[tuple[str, str], list[int]] = {}
        shared = []
        for r, (slot, index) in enumerate(zip(c.rules, c.rule_policy, strict=True)):
            if not enabled[r]:
                continue
            policy = policies[index]
            rule = policy.rule(slot.rule_id)
            if rule.sanctions or rule.lifts or rule.results_read() or rule_calls(rule) or \
                    any(slot.rule_id in other.results_read() for other in policy.rules):
                continue
            alike = kept.setdefault((policy.id, slot.rule_id), [])
            match = next((on for on in alike if self._alike(on, r, envs)), None)
            if match is None:
                alike.append(r)
            else:
                shared.append((r, match))
        return tuple(shared)

    def _alike(self, one: int, other: int, envs: list[dict]) -> bool:
        """Whether rules ``one`` and ``other`` (of two versions of a statute) give the same
        outputs on every row (``_shared``)."""
        c = self._compiled
        first, second = (c.policies[c.rule_policy[r]].rule(c.rules[r].rule_id) for r in (one, other))
        if first.condition != second.condition or first.findings != second.findings:
            return False
        if c.rule_parameters[one] != c.rule_parameters[other]:
            return False
        env_one, env_other = envs[c.rule_policy[one]], envs[c.rule_policy[other]]
        if any(name not in env_one or name not in env_other or env_one[name] != env_other[name]
               for name in c.rule_parameters[one]):
            return False
        units = [[(c.findings[k][2:], c.finding_units[k] if c.finding_units else 1)
                  for k, rule in enumerate(c.finding_rules) if rule == r] for r in (one, other)]
        return units[0] == units[1]

    def _copy_outputs(self, outputs: dict, off: int, on: int) -> None:
        """Rule ``on``'s fired row and its findings' amounts into rule ``off``'s (``_shared``)."""
        c = self._compiled
        outputs["fired"][off] = outputs["fired"][on]
        theirs = [k for k, rule in enumerate(c.finding_rules) if rule == on]
        mine = [k for k, rule in enumerate(c.finding_rules) if rule == off]
        for k_off, k_on in zip(mine, theirs, strict=True):
            outputs["amounts"][k_off] = outputs["amounts"][k_on]

    def _tables(self) -> str:
        """The holiday tables the program's working-day calls read, for an error message."""
        c = self._compiled
        nodes = [*(n for p in c.policies for r in p.rules for n in rule_nodes(r)),
                 *(check.holds for p in c.policies for check in (*p.kind_checks, *p.checks))]
        tables = {str(call.args[-1].value) for node in nodes for call in calls(node)}
        return ", ".join(sorted(tables))

    def _finish(self, batch: _Batch, rollups: _Rollups) -> ScoreResult:
        c = self._compiled
        rejects = batch.rejects + check_rejects(c, batch.segments)
        reject_rows, reject_columns, reject_values, reject_reasons = _sorted_rejects(rejects, c.columns)
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
            sanction_slots=c.sanctions, case_counts=case_counts, dates=outputs["dates"],
            finding_units=c.finding_units, total_unit=c.total_unit,
            check_slots=c.checks, checks_failed=outputs["failed"],
        )

    def _validate_one(self, name: str, piece: Any, n: int, valid: np.ndarray) -> tuple[ValidColumn, Rejects]:
        """One column of one segment; its rejected rows are cleared in ``valid`` (uint8)."""
        c = self._compiled
        collected = Rejects()
        if isinstance(piece, Validated):
            if piece.unchecked is not None and piece.unchecked[0].size:
                rows, cells = piece.unchecked
                found = Rejects()
                validate_column(c.facts[name], cells, int(rows.size), False, found)
                for at, values, reasons in zip(found.rows, found.values, found.reasons, strict=True):
                    collected.add(rows[at], values, reasons)
                    valid[rows[at]] = 0
            return _trusted(c, name, piece), collected
        column = validate_column(c.facts[name], piece, n, name in c.kernel_facts, collected)
        for rows in collected.rows:
            valid[rows] = 0
        return column, collected

    def _enabled_on(self, as_of: dt.date, days: tuple[dt.date, ...], without: frozenset[str] = frozenset()):
        """``_enabled`` under the laws of ``days`` at once: a rule or check enabled on one of
        them is enabled; a policy's parameter values are those of the days it is in force on,
        which must be the same on each (else ValueError); the warnings of each day, in order."""
        if len(days) == 1:
            return self._enabled(as_of, days[0], without)
        c = self._compiled
        enabled = np.zeros(c.n_gates, dtype=np.uint8)
        envs: list[dict | None] = [None] * len(c.policies)
        warnings: dict[str, None] = {}
        fallback = None  # the first day's envs: those of a policy in force on none of the days (never enabled)
        for day in days:
            on_day, day_envs, day_warnings = self._enabled(as_of, day, without)
            fallback = day_envs if fallback is None else fallback
            enabled |= on_day
            warnings.update(dict.fromkeys(day_warnings))
            for index, policy in enumerate(c.policies):
                if not policy.in_force(day):
                    continue
                if envs[index] is None:
                    envs[index] = day_envs[index]
                elif envs[index] != day_envs[index]:  # (an unset parameter is absent from its env)
                    raise ValueError(f"{policy.key} takes other parameter values on {day} than on an earlier day "
                                     f"of {days}: score those days apart")
        return enabled, [env if env is not None else fallback[k] for k, env in enumerate(envs)], list(warnings)

    def _enabled(self, as_of: dt.date, law_date: dt.date | None = None, without: frozenset[str] = frozenset()):
        """Which rules apply on ``law_date`` (default ``as_of``); parameter values per policy,
        those in force on ``law_date``, with the builtin ``as_of``; why other rules do not.
        The versions ``without`` are in force on no day."""
        law_date = as_of if law_date is None else law_date
        c = self._compiled
        enabled = np.zeros(c.n_gates, dtype=np.uint8)
        envs: list[dict] = []
        unset: list[dict] = []
        for policy in c.policies:
            env: dict[str, Any] = {"as_of": as_of}
            missing = {}
            for name, parameter in policy.parameters.items():
                try:
                    env[name] = parameter.value_at(law_date)
                except ParameterNotSetError as error:
                    missing[name] = str(error)
            envs.append(env)
            unset.append(missing)
        warnings = []
        for k, (slot, policy_index) in enumerate(zip(c.checks, c.check_policy, strict=True)):
            if k >= len(c.checks) - c.calendar_checks:
                continue  # gated by the rule or check holding the call
            if policy_index < 0:  # the kind's catalogue: whatever law is in force, no parameter
                enabled[len(c.rules) + k] = 1
                continue
            if not c.policies[policy_index].in_force(law_date) or c.policies[policy_index].key in without:
                continue
            blocked = [name for name in c.check_parameters[k] if name in unset[policy_index]]
            if blocked:  # as engine/_evaluator.py words it
                warnings.append(f"{slot.policy_key} check {slot.check_id}: not judged: "
                                f"{unset[policy_index][blocked[0]]}; legal staff must set it")
                continue
            enabled[len(c.rules) + k] = 1
        for r, (slot, policy_index) in enumerate(zip(c.rules, c.rule_policy, strict=True)):
            policy = c.policies[policy_index]
            if not policy.in_force(law_date) or policy.key in without:
                continue
            blocked = [name for name in c.rule_parameters[r] if name in unset[policy_index]]
            if blocked:
                # the wording of engine/_evaluator.py, so both paths warn alike
                warnings.append(f"{slot.policy_key} rule {slot.rule_id}: not judged: "
                                f"{unset[policy_index][blocked[0]]}; legal staff must set it")
                continue
            enabled[r] = 1
        return enabled, envs, warnings

    def _outputs(self, n: int, out: ScoreResult | None) -> dict:
        c = self._compiled
        shapes = {"fired": ((len(c.rules), n), np.uint8, "fired"),
                  "amounts": ((len(c.findings), n), np.int64, "amounts"),
                  "sanctions": ((len(c.sanctions), n), np.uint8, "sanctions"),
                  "dates": ((c.n_dates, n), np.int64, "dates"),
                  "failed": ((len(c.checks), n), np.uint8, "checks_failed"),
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
    start: int = 0  # its first row in the batch


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
    shared: tuple = ()  # (rule off, rule whose outputs it takes): Program._shared


def _segments(raw_columns: dict, n: int):
    """Row ranges inside which every column is one contiguous piece, and those pieces.

    Chunked Arrow columns are cut at every chunk boundary of every column, without copying;
    when that would make segments smaller than 64k rows on average, the chunks are combined.
    """
    columns = {name: raw if isinstance(raw, Validated) else as_column(raw) for name, raw in raw_columns.items()}
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


def _trusted(c: CompiledProgram, name: str, piece: Validated) -> ValidColumn:
    """A column validated by the caller, if it was validated as this program reads it."""
    fact = c.facts[name]
    if piece.fact is not fact and piece.fact != fact:
        raise ValueError(f"column {name!r} was validated for another declaration of the fact than the program's")
    column = piece.column
    if name in c.kernel_facts and (column.values is None or (fact.optional and column.present is None)):
        raise ValueError(f"column {name!r} was validated without the values the program reads")
    return column


def _piece(column, start: int, stop: int):
    if isinstance(column, Validated):
        return column.rows(start, stop)
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
    # An optional fact may be left out of the batch altogether, as out of a single record:
    # every row is then empty (an all-null column).
    absent = [name for name in c.columns if name not in names and c.facts[name].optional]
    for name in c.columns:
        if name not in names and name not in absent:
            raise ValueError(f"the batch has no column {name!r}, needed by {', '.join(c.needed_by[name])}")
    raw = {name: get(name) for name in c.columns if name not in absent}
    if n is None:
        lengths = {name: len(values) for name, values in raw.items()}
        n = next(iter(lengths.values())) if lengths else 0
        for name, length in lengths.items():
            if length != n:
                raise ValueError(f"column {name!r} has {length} rows, but {next(iter(lengths))!r} has {n}")
    raw.update({name: pa.nulls(n) for name in absent})
    return {name: raw[name] for name in c.columns}, n


def compile_program(policies: PolicySet | Iterable[Policy], domain: str = "enterprise") -> Program:
    """Compile the rules of ``domain`` in ``policies`` once into a program for the kernel.

    Raises :class:`~ecorules.rules.KernelError` if some construct cannot run in the kernel
    (never falls back to slower code silently).
    """
    return Program(compile_policies(policies, domain))


__all__ = ["Program", "compile_program"]
