"""The case table's needed columns (whole, or a partition of every case of its enterprises,
``_spill.py``), checked, linked to enterprises. Roll-ups and one act one fine look across all
cases of an enterprise, which may be anywhere in the file: a partition holds them all. Every
row ends up either valid or with at least one reject naming its source, row, column and reason:

- a value the validators refuse (the same ``validate_column`` the kernel uses);
- a case_id seen before (the later rows, naming the first row; across partitions found by
  ``_spill.SpilledCases.duplicates``);
- a uscc not in the registry, or whose registry row was rejected (``link``).

Dates out of order (discovered before act_date) are the case kind's checks, in its
catalogue (``cases.yaml``), judged by the kernel with the policies' (``_stage.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.fastcalc._cases import (
    ascending_texts,
    encode_texts,
    local_codes,
    text_index,
    text_positions,
)
from ecorules.fastcalc._validate import validate_column
from ecorules.fastcalc._validate_common import Rejects, ValidColumn
from ecorules.rules import Kind
from ecorules.rules._arrow import (
    bools,
    from_bools,
    from_numbers,
    numbers,
    one_array,
    string_buffers,
)

from .._chunks import may_trim_texts
from .._sources import ColumnResolver, Registry, Reject
from ._plan import CasePlan


@dataclass
class CaseTable:
    """The needed columns of every readable case row, and what is known about each row."""

    table: pa.Table  # fact name -> column, one row per readable case row
    sources: list[str]  # source names; ``source[i]`` indexes it for row i
    source: np.ndarray  # int32 per row
    rows: np.ndarray  # int64 row number in its source (the line of a CSV file)
    headers: dict[str, str]  # fact -> header as written (of the first file)
    rows_in: int = 0  # readable rows + rows the reader rejected
    read_rejects: list[Reject] = field(default_factory=list)  # rows that could not be read
    rejects: list[Reject] = field(default_factory=list)  # problems of readable rows
    valid: np.ndarray | None = None  # bool per row
    columns: dict[str, ValidColumn] = field(default_factory=dict)  # checked numbers and dates
    key_code: np.ndarray | None = None  # int64 code of the stripped case_id
    keys: pa.Array | None = None  # the stripped case_id texts the codes index
    keys_ascending: bool = False  # keys in strictly ascending order: a code is its key's rank
    act_code: np.ndarray | None = None  # int64 code of the stripped act_id, -1 when empty
    acts: pa.Array | None = None  # the stripped act_id texts the codes index
    uscc: pa.Array | None = None  # the stripped enterprise key of each row
    # ``uscc`` coded once (hashing millions of texts is the cost; an enterprise has many
    # cases): the distinct keys, and per row the index of its key among them (-1: none)
    uscc_distinct: pa.Array | None = None
    uscc_code: np.ndarray | None = None
    enterprise: np.ndarray | None = None  # int64 index into the enterprise side table, -1: none
    # int64 per code of ``uscc_distinct``: its enterprise's index (``enterprise`` is this at
    # ``uscc_code``), -1: none; what the roll-ups onto the enterprises number them by (_rollups.py)
    code_enterprise: np.ndarray | None = None
    # how each file was read (Registry.described) and what the reading must tell the summary
    # (a line whose encoding disagrees with its file's), as for the registry
    described: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # int64 position of each row in the whole table, where this is a partition of it
    # (_spill.py); None: the whole table, a row's position is its index
    ordinal: np.ndarray | None = None
    # bool per row: its enterprise key as written is a valid USCC, as the spill found when
    # it put the key in the ledger's form (``linked_checked``); None: not known. Only the
    # other rows are checked again (the USCCs were checked three times: 0.1 CPU-s a million)
    link_valid: np.ndarray | None = None
    # int32 per row: its enterprise key as written coded by the spill for the whole table (one
    # of ``link_codes`` codes, -1 for an empty key), so that a partition's keys are coded
    # without hashing them again (``_table.check_values``); None: not coded
    link_code: np.ndarray | None = None
    link_codes: int = 0
    # (_stage.py) what the thread loading the partition made of it once linked, for the rows
    # then valid: (those rows as a mask, the windows' orders of their parts); None: nothing
    ahead: tuple | None = None

    @property
    def n(self) -> int:
        return self.table.num_rows

    def usccs_of(self, rows: np.ndarray) -> pa.Array:
        """The distinct enterprise keys of the rows where ``rows`` (a mask) holds."""
        used = np.zeros(len(self.uscc_distinct), bool)
        codes = self.uscc_code[rows]
        used[codes[codes >= 0]] = True
        return self.uscc_distinct.filter(from_bools(used))

    def reject(self, rows: Iterable[int], column: str | None, values: Iterable[str | None], reasons: Iterable[str]) -> None:
        """Rejects for ``rows`` (bad rows are few: a loop over them is fine)."""
        for row, value, reason in zip(rows, values, reasons, strict=True):
            header = self.headers.get(column, column) if column is not None else None
            self.rejects.append(Reject(self.sources[self.source[row]], int(self.rows[row]), header, value, reason))
            self.valid[row] = False


@dataclass
class CaseReading:
    """What reading the case table learns beside its rows: its files in the order met, their
    headers as written, the lines the reader rejected, and the rows in (read or rejected)."""

    sources: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    read_rejects: list[Reject] = field(default_factory=list)
    rows_in: int = 0

    def batches(self, reader: Registry, plan: CasePlan) -> Iterator[tuple[int, Sequence[int], pa.Table]]:
        """Each batch as (its file's place in ``sources``, its row numbers, the case columns),
        an optional column the table leaves out present and empty."""
        for batch in reader.batches():
            self.rows_in += batch.rows_in
            self.read_rejects.extend(batch.rejects)
            if batch.source not in self.sources:
                self.sources.append(batch.source)
            for name, header in batch.headers.items():
                self.headers.setdefault(name, header)
            table = batch.table
            for name in plan.optional_columns:
                if name not in table.column_names:
                    table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
            yield self.sources.index(batch.source), batch.rows, table.select(list(plan.case_columns))


def read_cases(path, plan: CasePlan, *, encoding: str | None = None, table: str | None = None,
               batch_rows: int, aliases: Mapping[str, Iterable[str]] | None = None, recurse: bool = True) -> CaseTable:
    needed = plan.needed()
    resolver = ColumnResolver(plan.facts, needed, aliases, optional=plan.optional_columns)
    reader = Registry(path, resolver, encoding=encoding, table=table, batch_rows=batch_rows, recurse=recurse)
    reading = CaseReading()
    tables, source_of, rows = [], [], []
    # one schema for all files: text stays text, typed columns are cast back to text only when
    # files disagree (rare, _concat); the validators accept either
    for source, numbers_of_rows, cases in reading.batches(reader, plan):
        tables.append(cases)
        source_of.append(np.full(cases.num_rows, source, np.int32))
        rows.append(np.asarray(numbers_of_rows, np.int64))
    whole = _concat(tables, plan.case_columns)
    return CaseTable(
        whole, reading.sources or [str(path)], np.concatenate(source_of) if source_of else np.empty(0, np.int32),
        np.concatenate(rows) if rows else np.empty(0, np.int64), reading.headers, reading.rows_in,
        reading.read_rejects, described=reader.described(), warnings=reader.warnings,
    )


def _concat(tables: list[pa.Table], names: tuple[str, ...]) -> pa.Table:
    if not tables:
        return pa.table({name: pa.array([], pa.string()) for name in names})
    try:
        whole = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        whole = pa.concat_tables([t.cast(pa.schema([(n, pa.string()) for n in t.column_names])) for t in tables])
    return whole.combine_chunks()


def check_values(cases: CaseTable, plan: CasePlan, duplicates=None) -> None:
    """Validate every needed column, then duplicates: found in ``cases`` (the whole table),
    or where ``cases`` is a partition, the rows of ``duplicates`` (``_spill.Duplicates``,
    found across the whole table) among its rows."""
    n = cases.n
    cases.valid = np.ones(n, bool)
    texts = (plan.kind.key, plan.link, plan.kind.act)
    for name in plan.case_columns:
        found = Rejects()
        # text columns are only checked here (a per-value pass over ten million distinct
        # case_ids would be slow); their stripped texts are coded below with Arrow
        # enums stay text too: the kernel decides them once per distinct value
        read = name not in texts and plan.facts[name].type.kind is not Kind.ENUM
        if name == plan.link and cases.link_valid is not None:
            _validate_unknown(plan.facts[name], cases.table[name], cases.link_valid, found)
            column = None
        else:
            column = validate_column(plan.facts[name], cases.table[name], n, read, found)
        for rows, values, reasons in zip(found.rows, found.values, found.reasons, strict=True):
            cases.reject(rows.tolist(), name, values.tolist(), reasons.tolist())
        if read:
            cases.columns[name] = column
    cases.key_code, cases.keys, cases.keys_ascending = _key_codes(cases.table[plan.kind.key])
    # an enterprise has many cases: its key is trimmed and put in the ledger's form (a USCC
    # checked again) once per distinct text as written, not once per case row
    link_fact = plan.facts[plan.link]
    coded = None if cases.link_code is None else local_codes(cases.link_code, cases.link_codes)
    if cases.link_valid is None:
        cases.uscc_code, cases.uscc_distinct, cases.uscc = _coded_forms(cases.table[plan.link],
                                                                        lambda texts: linked(link_fact, texts), coded=coded)
    else:
        cases.uscc_code, cases.uscc_distinct, cases.uscc = _coded_forms(
            cases.table[plan.link], lambda texts, codes: _linked_unless_valid(link_fact, texts, codes, cases.link_valid),
            with_codes=True, coded=coded)
    if plan.kind.act:
        cases.act_code, cases.acts = _codes(cases.table[plan.kind.act])
    if duplicates is None:
        _duplicates(cases, plan)
    else:
        at, values, reasons = duplicates.of(cases.ordinal)
        if at.size:
            cases.reject(at.tolist(), plan.kind.key, values, reasons)


def _validate_unknown(fact, column, valid: np.ndarray, found: Rejects) -> None:
    """``validate_column`` of the rows not known ``valid`` (their rows in ``found`` as in the
    whole column's): a valid USCC as written has nothing to reject."""
    rows = np.flatnonzero(~valid)
    if not rows.size:
        return
    column = one_array(column)  # (combine_chunks copies even a single chunk)
    part = Rejects()
    validate_column(fact, column.take(from_numbers(rows)), int(rows.size), False, part)
    for at, values, reasons in zip(part.rows, part.values, part.reasons, strict=True):
        found.add(rows[at], values, reasons)


def _linked_unless_valid(fact, written: pa.Array, codes: np.ndarray, valid: np.ndarray) -> pa.Array:
    """``linked`` of the distinct texts ``written`` (``codes`` per row), each text with a row
    known ``valid`` as it is (a valid USCC is in the ledger's form), the others put in it."""
    known = np.zeros(len(written), bool)
    known[codes[valid & (codes >= 0)]] = True
    odd = np.flatnonzero(~known)
    if not odd.size:
        return written
    part = written.take(from_numbers(odd))
    formed = linked(fact, part)
    if formed is part:
        return written
    mask = np.zeros(len(written), bool)
    mask[odd] = True
    return pc.replace_with_mask(written, from_bools(mask), formed.cast(written.type))


def linked_checked(fact, column) -> tuple[pa.Array, np.ndarray | None]:
    """``linked``, and for a USCC key per row whether its text as written is a valid USCC
    (for ``CaseTable.link_valid``; None where not known: another format or type). A valid
    USCC is its own ledger form; only the other texts are trimmed and put in it."""
    column = one_array(column)  # (combine_chunks copies even a single chunk)
    if fact.format != "uscc" or not pa.types.is_string(column.type):
        return linked(fact, column), None
    from ecorules.rules._uscc import uscc_problems

    valid = uscc_problems(column) == 0
    odd = np.flatnonzero(~valid & (~bools(column.is_null()) if column.null_count else True))
    if not odd.size:
        return column, valid
    part = column.take(from_numbers(odd))
    formed = linked(fact, part)
    if formed is part:
        return column, valid
    mask = np.zeros(len(column), bool)
    mask[odd] = True
    return pc.replace_with_mask(column, from_bools(mask), formed.cast(column.type)), valid


def linked(fact, column) -> pa.Array:
    """The enterprise keys of a column as the registry's are compared and written: a USCC
    trimmed and in ASCII (a full-width code is the same code, engine/_duplicates.py)."""
    if fact.format == "uscc":
        from .._duplicates import canonical_keys

        return canonical_keys(fact, _stripped(column))[0]
    return _stripped(column)


def _stripped(column) -> pa.Array:
    """The texts trimmed; the column itself (no copy) where no text has a blank at either end."""
    column = one_array(column)  # (combine_chunks copies even a single chunk)
    if not pa.types.is_string(column.type):
        column = column.cast(pa.string())
    return pc.utf8_trim_whitespace(column) if may_trim_texts(column) else column


def _key_codes(column) -> tuple[np.ndarray, pa.Array, bool]:
    """``_codes`` of the case keys, and whether the keys are in strictly ascending order. A
    case table exported in case_id order (non-empty and strictly ascending) is its own
    dictionary, without hashing, and holds no duplicate (``_duplicates`` has nothing to do)."""
    text = _stripped(column)
    if len(text) and _ascending(text) and pc.min(pc.utf8_length(text.slice(0, 1))).as_py() > 0:
        return np.arange(len(text), dtype=np.int64), text, True
    codes, keys = _codes(text)
    return codes, keys, _ascending(keys)


def _coded_distinct(column, form) -> tuple[np.ndarray, pa.Array]:
    """Codes of ``form(texts)`` per row (-1 for a null) and the distinct values they index
    (in the order of their first row, ``_encoded``): the column coded as written, ``form``
    applied to its distinct texts, and the texts that became one value (" A1" and "A1")
    coded as one."""
    codes, distinct, _rows = _coded_forms(column, form, rows=False)
    return codes, distinct


def _coded_forms(column, form, rows: bool = True, with_codes: bool = False,
                 coded: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, pa.Array, pa.Array | None]:
    """``_coded_distinct``, and (``rows``) ``form`` of each row's text: where ``form`` changes
    no text (it returns its argument itself: nearly always), the column as it is, no copy.
    ``with_codes``: ``form`` is given the rows' codes too. ``coded``: the column's texts
    already coded as ``encode_texts`` codes them (per row its code, per code its first row)."""
    column = one_array(column)  # (combine_chunks copies even a single chunk)
    if not pa.types.is_string(column.type):
        column = column.cast(pa.string())
    if coded is None:
        codes, written = _encoded(column)
    else:
        codes, written = coded[0], column.take(from_numbers(coded[1]))
    formed_texts = form(written, codes) if with_codes else form(written)
    if formed_texts is written:  # distinct texts stay distinct: the codes as they are
        return codes, written, column if rows else None
    formed = pc.dictionary_encode(formed_texts)
    # one more entry, -1, which a null's code (-1) picks
    per_written = np.append(numbers(formed.indices, fill=-1).astype(np.int64), -1)
    codes = per_written[codes]
    return codes, formed.dictionary, formed.dictionary.take(from_numbers(codes, mask=codes < 0)) if rows else None


def _encoded(column: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """``dictionary_encode`` of a string column: per row the index of its text among the
    distinct texts (-1 for a null), and the distinct texts, in the order of their first row.
    By ``fastcalc/_cases.pyx``: a USCC or a case_id is packed into two words and looked up by
    them alone (Arrow's hash of the texts took 0.33 CPU-s for the usccs of 2 M cases)."""
    offsets, data = string_buffers(column)
    null = bools(column.is_null()).view(np.uint8) if column.null_count else np.zeros(0, np.uint8)
    codes, first = encode_texts(offsets, data, null)
    return codes, column.take(from_numbers(first))


def indexed(column: pa.Array):
    """A ``fastcalc._cases.TextIndex`` of a string column: built once, looked up by ``positions``."""
    offsets, data = string_buffers(column)
    null = bools(column.is_null()).view(np.uint8) if column.null_count else np.zeros(0, np.uint8)
    return text_index(offsets, data, null)


def positions(index, column) -> np.ndarray:
    """Per text of ``column`` the first row of the same text in the column of ``index``
    (``indexed``), -1 where none (a null: -1): ``pc.index_in`` without its table built anew."""
    column = one_array(column)  # (combine_chunks copies even a single chunk)
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        column = column.cast(pa.string())
    offsets, data = string_buffers(column)
    null = bools(column.is_null()).view(np.uint8) if column.null_count else np.zeros(0, np.uint8)
    return text_positions(index, offsets, data, null)


def _codes(column) -> tuple[np.ndarray, pa.Array]:
    """Codes of the stripped texts (as _records strips them); -1 for an empty cell."""
    codes, dictionary = _coded_distinct(column, _stripped)
    blank = np.flatnonzero(numbers(pc.utf8_length(dictionary), fill=0) == 0)
    if blank.size:
        codes[np.isin(codes, blank)] = -1
    return codes, dictionary


def _ascending(texts: pa.Array) -> bool:
    """Whether ``texts`` (no nulls) are strictly ascending in code point order."""
    texts = one_array(texts)  # (combine_chunks copies even a single chunk)
    if texts.null_count:
        return False
    if len(texts) < 2:
        return True
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        texts = texts.cast(pa.string())
    return ascending_texts(*string_buffers(texts))


def repeats(order: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(later rows, the first row of their code): ``order`` lists rows sorted by their code
    (``codes[row]``), the rows of one code in the table's order, so the first of each run
    is the code's first row."""
    sorted_codes = codes[order]
    starts = np.ones(order.size, bool)
    starts[1:] = sorted_codes[1:] != sorted_codes[:-1]
    first = np.maximum.accumulate(np.where(starts, np.arange(order.size), 0))
    later = np.flatnonzero(~starts)
    return order[later], order[first[later]]


def _duplicates(cases: CaseTable, plan: CasePlan) -> None:
    if len(cases.keys) == cases.n:
        return  # as many distinct keys as rows (a table in case_id order, _key_codes): none repeats
    codes = cases.key_code
    rows = np.flatnonzero(codes >= 0)
    dup, original = repeats(rows[np.argsort(codes[rows], kind="stable")], codes)
    if not dup.size:
        return
    dup_rows, first_rows = dup.tolist(), original.tolist()
    values = cases.keys.take(pa.array(codes[dup])).to_pylist()
    reasons = [
        f"duplicate {plan.kind.key} {value!r}: first at row {int(cases.rows[f])} of {cases.sources[cases.source[f]]}"
        for value, f in zip(values, first_rows, strict=True)
    ]
    cases.reject(dup_rows, plan.kind.key, values, reasons)


def link(cases: CaseTable, plan: CasePlan, usccs: pa.Array, rejected: Mapping[int, str],
         among: np.ndarray | None = None, index=None) -> None:
    """Each case's enterprise row in the side table (``usccs``, stripped, valid rows first);
    cases of an unknown or rejected enterprise are rejected. ``among``: a mask of the side's
    rows holding every enterprise the cases may name (a partition's, _spill.py), or None;
    ``index``: ``usccs`` indexed (``EnterpriseSide.index``), which makes ``among`` moot (a
    key's first row of all is its first among the rows of its bucket)."""
    if index is not None:
        per_key = positions(index, cases.uscc_distinct)
    elif among is None:
        per_key = numbers(pc.index_in(cases.uscc_distinct, value_set=usccs), fill=-1).astype(np.int64)
    else:  # the first of a key's rows among them is its first of all: same order, same key, same bucket
        rows = np.flatnonzero(among)
        per_key = numbers(pc.index_in(cases.uscc_distinct, value_set=usccs.take(from_numbers(rows))),
                          fill=-1).astype(np.int64)
        per_key = np.where(per_key >= 0, rows[np.maximum(per_key, 0)] if rows.size else -1, -1)
    index = np.full(cases.n, -1, np.int64)
    coded = cases.uscc_code >= 0  # an empty uscc has no code (its row is rejected already)
    index[coded] = per_key[cases.uscc_code[coded]]
    cases.enterprise = index
    cases.code_enterprise = per_key
    unknown = np.flatnonzero((index < 0) & cases.valid)
    if unknown.size:
        values = cases.uscc.take(pa.array(unknown)).to_pylist()
        cases.reject(unknown.tolist(), plan.link, values,
                     [f"{plan.parent.id} {v!r} is not in the registry" for v in values])
    reject_refused(cases, plan, rejected)


def reject_refused(cases: CaseTable, plan: CasePlan, rejected: Mapping[int, str]) -> None:
    """The cases still valid of the enterprises ``rejected`` (side row -> why) rejected, once
    linked (``link``, which does it too: called again, only the enterprises rejected since
    have cases left to reject)."""
    if rejected:
        index = cases.enterprise
        bad = np.flatnonzero(np.isin(index, np.fromiter(rejected, np.int64, len(rejected))) & cases.valid)
        if bad.size:
            values = cases.uscc.take(pa.array(bad)).to_pylist()
            cases.reject(bad.tolist(), plan.link, values, [rejected[int(index[row])] for row in bad])


__all__ = ["CaseTable", "check_values", "indexed", "link", "linked_checked", "positions", "read_cases",
           "reject_refused"]
