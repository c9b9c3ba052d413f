"""How findings and list entries are laid out in the store's per-batch JSON chunks.

A chunk is one JSON array per slot and batch (``store.sqlite.FINDINGS_VIEW``, ``SANCTIONS_VIEW``),
built from Arrow columns in one pass, text escaped only where it needs to be. Shared by the
registry batches (``_nightly.py``) and the case table (``cases/_write.py``).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.fastcalc._cases import may_trim
from ecorules.rules import Kind
from ecorules.rules._arrow import bools, from_numbers, string_buffers, string_scalar, strings
from ecorules.rules._choices import resolve
from ecorules.rules._records import coerce

_JSON_UNSAFE = r'["\\\x00-\x1f]'
CHUNK_ROWS = 262_144  # rows per stored chunk of the case table, as a registry batch writes them
_QUOTE, _COMMA, _OPEN, _CLOSE, _NOTHING = (string_scalar(t) for t in ('"', ",", "[", "]", ""))


def _needs_escaping(texts: pa.Array) -> bool:
    """Whether some text of ``texts`` holds a character JSON must escape (a quote, a
    backslash, a control character). A string array's data buffer is checked by three
    comparisons over its bytes: the regular expression took 0.20 of the 2.9 CPU-s of a 10
    M-case run's list work (1.3 M entries; cProfile), this ~100 times less. A byte under a
    null only makes the answer True, and the caller then escapes by the slow, exact way."""
    if not len(texts):
        return False
    if isinstance(texts, pa.ChunkedArray) or not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        return bool(pc.any(pc.match_substring_regex(texts, _JSON_UNSAFE)).as_py())
    offsets, data = string_buffers(texts)
    data = data[int(offsets[0]):int(offsets[-1])]
    return bool((data < 0x20).any() or (data == ord('"')).any() or (data == ord("\\")).any())


def _json_strings(array: pa.Array, safe: bool = False) -> pa.Array:
    """Each string as a JSON string literal (quoted; escaped unless known ``safe``)."""
    if not safe and _needs_escaping(array):
        return strings([json.dumps(v, ensure_ascii=False) for v in array.to_pylist()])
    return pc.binary_join_element_wise(_QUOTE, array, _QUOTE, _NOTHING)


class Same(str):
    """A column whose every row holds the same value, given as its JSON text (``Same('""')``,
    ``Same("0")``): laid into the separators once instead of joined row by row."""


def _json_rows(columns: list[pa.Array | Same], safe: tuple[bool, ...] | None = None) -> str:
    """A JSON array of rows (``[[a, b], ...]``, or ``[a, ...]`` for one column), built in Arrow.

    ``safe[i]`` says that column i holds no character JSON must escape (validated values).
    A column may be :class:`Same` (several columns, the others without nulls).
    Separators are Arrow scalars: a Python str argument would make pyarrow import pandas.
    Text and whole-number columns without nulls (every chunk of the case table) are laid
    out by one element-wise join, each row with its brackets, quotes and trailing comma, and
    the joined data buffer is the array's inside: one pass over the bytes instead of five
    (quoting, joining, bracketing, joining the list, copying it out).
    """
    safe = safe or (False,) * len(columns)
    if not all(isinstance(c, Same) for c in columns) and all(isinstance(c, Same) or (not c.null_count and (pa.types.is_integer(c.type)
                                                                    or pa.types.is_string(c.type))) for c in columns):
        return _json_rows_at_once(columns, safe)
    if any(isinstance(c, Same) for c in columns):
        raise ValueError("a Same column beside a column with nulls or of another type, or alone")
    return _json_rows_joined(columns, safe)


def _json_rows_at_once(columns: list[pa.Array | Same], safe: tuple[bool, ...]) -> str:
    pieces, literal = [], "[" if len(columns) > 1 else ""
    for position, (column, ok) in enumerate(zip(columns, safe, strict=True)):
        if isinstance(column, Same):
            literal += ("," if position else "") + column
            continue
        quoted = not pa.types.is_integer(column.type)
        if not quoted:
            text = column.cast(pa.string())
        elif ok or not _needs_escaping(column):
            text = column
        else:  # json.dumps quotes and escapes: no quotes around it
            text, quoted = strings([json.dumps(v, ensure_ascii=False) for v in column.to_pylist()]), False
        literal += ("," if position else "") + ('"' if quoted else "")
        pieces += [string_scalar(literal), text]
        literal = '"' if quoted else ""
    pieces.append(string_scalar(literal + ("]," if len(columns) > 1 else ",")))
    return _joined_rows(pc.binary_join_element_wise(*pieces, _NOTHING))


def _joined_rows(rows: pa.Array) -> str:
    """``[`` + the rows' bytes without the last row's trailing comma + ``]``."""
    if not len(rows):
        return "[]"
    offsets, data = string_buffers(rows)
    return "[" + str(memoryview(data)[int(offsets[0]) : int(offsets[-1]) - 1], "utf-8") + "]"


def _json_rows_joined(columns: list[pa.Array], safe: tuple[bool, ...]) -> str:
    """``_json_rows`` for any columns (nulls, other types), column by column."""
    texts = [
        column.cast(pa.string()) if pa.types.is_integer(column.type) else _json_strings(column, ok)
        for column, ok in zip(columns, safe, strict=True)
    ]
    if len(texts) == 1:
        rows = texts[0]
    else:
        rows = pc.binary_join_element_wise(_OPEN, pc.binary_join_element_wise(*texts, _COMMA), _CLOSE, _NOTHING)
    one_list = pa.ListArray.from_arrays(from_numbers(np.array([0, len(rows)], np.int32)), rows)
    return f"[{pc.binary_join(one_list, _COMMA)[0].as_py()}]"


def _json_codes(codes: pa.Array) -> str:
    """``_json_rows([codes], (True,))`` for valid USCCs (18 ASCII letters or digits each),
    laid out by numpy in one pass: ``["...","..."]`` (twice as fast on 40 K codes)."""
    n = len(codes)
    offsets, data = string_buffers(codes)
    if n == 0 or codes.null_count or not (np.diff(offsets) == 18).all():
        return _json_rows([codes], (True,))
    out = np.empty((n, 21), np.uint8)
    out[:, 0] = out[:, 19] = ord('"')
    out[:, 20] = ord(",")
    out[:, 1:19] = data[offsets[0] : offsets[0] + 18 * n].reshape(n, 18)
    return "[" + out.tobytes()[:-1].decode("ascii") + "]"


def codes_of_json(text: str) -> pa.Array | None:
    """The codes of a JSON array that ``_json_codes`` wrote (18 letters or digits each, laid
    out ``["...","..."]``) as an Arrow string array, read by numpy in place of json.loads
    and a Python string per code (~10x faster on a 250 K chunk); None for any other text."""
    raw = text.encode()
    n = (len(raw) - 1) // 21
    if len(raw) != 21 * n + 1 or n == 0 or raw[:1] != b"[" or raw[-1:] != b"]":
        return None
    rows = np.frombuffer(raw[1:-1] + b",", np.uint8).reshape(n, 21)
    body = rows[:, 1:19]
    if not ((rows[:, 0] == 34).all() and (rows[:, 19] == 34).all() and (rows[:, 20] == 44).all()
            and _CODE_BYTE[body].all()):
        return None
    offsets = np.arange(0, 18 * n + 1, 18, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(body.tobytes())])


_CODE_BYTE = np.zeros(256, bool)  # what a code of codes_of_json may hold: no quote, backslash or comma
_CODE_BYTE[np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", np.uint8)] = True


def canonical_values(fact, column: pa.Array) -> pa.Array:
    """The texts of a text ``fact``'s accepted cells as the ledger names them, as the single-case
    evaluator reads them (``rules._records.coerce``): an enum's value itself, never an alias
    (经开区) or a spelling with full-width spaces; a string trimmed (a registry's
    " 郑东新区管委会 " pays as 郑东新区管委会, the name its district total carries). Decided
    once per distinct text; the rows were accepted, so every distinct text resolves."""
    if fact.type.kind is not Kind.ENUM:
        if pa.types.is_string(column.type) and not may_trim_texts(column):  # nearly every column: no copy
            return column
        decide = functools.partial(coerce, fact)
    else:
        decide = functools.partial(resolve, fact)
    encoded = pc.dictionary_encode(column)
    return strings([None if text is None else decide(text)
                    for text in encoded.dictionary.to_pylist()]).take(encoded.indices)


def may_trim_texts(column: pa.Array) -> bool:
    """Whether trimming may change some text of a string array (``fastcalc._cases.may_trim``:
    one pass over each text's first and last byte)."""
    offsets, data = string_buffers(column)
    return may_trim(offsets, data, bools(column.is_null()).view(np.uint8) if column.null_count else _NO_NULLS)


_NO_NULLS = np.zeros(0, np.uint8)


def _iso_days(days: np.ndarray | None, n: int) -> list:
    """Day numbers (since 1970-01-01) as ISO dates, or ``n`` nulls."""
    if days is None:
        return [None] * n
    return np.asarray(days, np.int64).astype("datetime64[D]").astype(str).tolist()


def sanction_slot_rows(policies, slots, run_id: int, first_slot: int = 0) -> list[tuple]:
    """The ``sanction_slots`` rows of a program: what each list entry is, with its reason
    and the citation of its rule (list entries carry both across runs)."""
    specs: dict[tuple[str, str], list] = {}
    for policy in policies:
        for rule in policy.rules:
            specs[(policy.key, rule.id)] = [(spec.reason, str(rule.citation)) for spec in rule.sanctions]
    rows, seen = [], Counter()
    for s, (policy, rule, list_id) in enumerate(slots):
        reason, citation = specs[(policy, rule)][seen[(policy, rule)]]
        seen[(policy, rule)] += 1
        rows.append((run_id, first_slot + s, policy, list_id, rule, reason, citation))
    return rows


def sanction_chunk(program, result, slot: int, picked: np.ndarray, subjects: pa.Array,
                   case_ids: pa.Array | None = None) -> str:
    """The JSON entries of sanction ``slot`` at rows ``picked``: plain usccs when it gives no
    dates and is no case's, else ``[uscc, case_id or "", start, planned_end]`` (ISO dates,
    null for the default start or an open end; see store.sqlite.SANCTIONS_VIEW)."""
    dated = getattr(result, "dates", None) is not None and hasattr(program, "entry_dates")
    start, end = program.entry_dates(result, slot, picked) if dated else (None, None)
    return entries_json(subjects, start, end, case_ids)


def entries_json(subjects: pa.Array, start: np.ndarray | None, end: np.ndarray | None,
                 case_ids: pa.Array | None = None, *, escape: bool = False) -> str:
    """:func:`sanction_chunk` of entries whose dates (day numbers, or None) are known.
    ``escape``: the array form even without dates or cases (a kind's key as its table writes
    it, which the plain form would not escape)."""
    if start is None and end is None and case_ids is None and not escape:
        return _json_codes(subjects)
    n = len(subjects)
    keys = case_ids.to_pylist() if case_ids is not None else [""] * n
    return json.dumps([list(row) for row in zip(subjects.to_pylist(), keys, _iso_days(start, n), _iso_days(end, n),
                                                strict=True)], ensure_ascii=False)


def lift_rows(policies, program, result, run_id: int, as_of: dt.date, rows: np.ndarray, subjects: pa.Array,
              case_ids: pa.Array | None = None) -> list[tuple]:
    """The ``lifts`` rows of a batch: each lift where its rule fired (of ``rows``, the
    batch's accepted rows), with its reason and the day it takes effect."""
    out = []
    fired = result.fired
    reasons = {}
    for policy in policies:
        for rule in policy.rules:
            reasons[(policy.key, rule.id)] = [spec.reason for spec in rule.lifts]
    seen: Counter = Counter()
    for k, (policy, rule, list_id) in enumerate(program.lifts):
        reason = reasons[(policy, rule)][seen[(policy, rule)]]
        seen[(policy, rule)] += 1
        here = rows[np.asarray(fired[program.compiled.lift_rules[k]], bool)[rows]]
        if not here.size:
            continue
        days = program.lift_dates(result, k, here)
        effective = _iso_days(days, here.size) if days is not None else [as_of.isoformat()] * here.size
        index = from_numbers(here)
        usccs = subjects.take(index).to_pylist()
        cases = case_ids.take(index).to_pylist() if case_ids is not None else [None] * here.size
        out += [(run_id, u, list_id, policy, rule, reason, c, e) for u, c, e in zip(usccs, cases, effective, strict=True)]
    return out
