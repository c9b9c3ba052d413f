"""Validation of the fact kinds the kernel reads as codes: booleans, enums and strings.

A boolean is 0/1, an enum the index of its choice, a string fact a code into the distinct
stripped texts of its column (``ValidColumn.labels``). Text columns of these kinds are
dictionary-encoded and each distinct value is decided once by ``rules._records``; for a text
fact that no rule reads, no codes are built and only the suspect rows (blank text, or USCC
problems with ``format: uscc``) go to ``rules._records``.
Split from the entry module so that one kind family reads in a sitting.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules._arrow import bools, fill_null, from_numbers, numbers, string_buffers, strings
from ecorules.rules._records import USCC_INVALID
from ecorules.rules._schema import Fact

from ._kernel import usual_booleans
from ._validate_common import (
    Rejects,
    ValidColumn,
    _all_rows_scalar,
    _is_text,
    _kernel_value,
    _nulls,
    _numpy_of,
    _python_values,
    _scalar_path,
    _text_array,
    check_value,
    value_text,
)

# Python's whitespace (str.isspace), as an RE2 class: text made only of it is "missing".
# Listed, not found by testing all 1.1 M code points at import (0.06-0.3 s of every run);
# tests/fastcalc checks the list against str.isspace.
SPACE_CODEPOINTS = (
    0x9, 0xA, 0xB, 0xC, 0xD, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
    0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
)
_SPACE_CLASS = "".join(f"\\x{{{c:x}}}" for c in SPACE_CODEPOINTS)
_BLANK = f"^[{_SPACE_CLASS}]*$"


# -- booleans, enums and strings: decided once per distinct value ---------------------------------------
def _booleans(fact: Fact, column, n: int, rejects: Rejects) -> np.ndarray:
    if isinstance(column, np.ndarray) and column.dtype == np.bool_:
        values = column.view(np.uint8)
        if n and values.max() > 1:  # a bool array whose bytes are not 0/1 (built by a view)
            values = (values != 0).view(np.uint8)
        return values
    if isinstance(column, pa.Array) and pa.types.is_boolean(column.type):
        nulls = _nulls(column)
        if nulls is not None:
            rejects.missing(np.flatnonzero(nulls))
        return bools(column).view(np.uint8)
    if (isinstance(column, np.ndarray) and column.dtype.kind in "iu") or (
            isinstance(column, pa.Array) and pa.types.is_integer(column.type)):
        return _zero_one(fact, column, rejects)
    if isinstance(column, pa.Array) and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        spelled = _usual_spellings(fact, column, n, rejects)
        if spelled is not None:
            return spelled
    return _by_distinct_value(fact, column, n, rejects, np.uint8)


_USUAL_BOOLEANS = ("false", "true", "0", "1")  # what a CSV export writes nearly always


def _usual_spellings(fact: Fact, column: pa.Array, n: int, rejects: Rejects) -> np.ndarray | None:
    """A text column of booleans with a cell Arrow's cast refused (a registry's '也许'): the
    usual spellings found by the kernel in one pass (:func:`usual_booleans`; a hash lookup per
    row cost ~9 ms a column of a batch), their values decided by _records once each, the other
    cells per distinct value as before. Dictionary-encoding the whole column for the few other
    cells cost ~1.5x the lookup, in every batch of a registry with bad rows.
    None if _records does not read the usual spellings as booleans (the general path then)."""
    decided = [check_value(fact, spelling) for spelling in _USUAL_BOOLEANS]
    if any(problem is not None for _, problem in decided):
        return None
    values = np.array([_kernel_value(fact, value) for value, _ in decided], np.uint8)
    offsets, data = string_buffers(column)
    spelled = np.empty(len(column), np.int8)
    usual_booleans(offsets, data, spelled)
    if column.null_count:
        spelled[bools(column.is_null())] = -1
    miss = np.flatnonzero(spelled < 0)
    out = values[spelled]  # (a miss, -1, reads as the last spelling: set below)
    if not miss.size:
        return out
    residue = Rejects()
    out[miss] = _by_distinct_value(fact, column.take(from_numbers(miss)), miss.size, residue, np.uint8)
    for rows, texts, reasons in zip(residue.rows, residue.values, residue.reasons, strict=True):
        rejects.add(miss[rows], texts, reasons)  # (an empty cell: absent, for an optional fact)
    return out


def _zero_one(fact: Fact, column, rejects: Rejects) -> np.ndarray:
    """An integer column for a boolean fact (SQLite's and many exports' booleans): 0 and 1
    are false and true, as _records reads them; any other number is rejected by _records."""
    nulls = _nulls(column)
    values = _numpy_of(column)
    other = (values != 0) & (values != 1)
    if nulls is not None:
        rejects.missing(np.flatnonzero(nulls))
        other &= ~nulls
    if other.any():
        rows = np.flatnonzero(other)
        _scalar_path(fact, _python_values(column, rows), rows, rejects)
        values = np.where(other, 0, values)
    return values.astype(np.uint8)


def _by_distinct_value(fact: Fact, column, n: int, rejects: Rejects, dtype) -> np.ndarray:
    """Text columns: dictionary-encode, check each distinct value with _records, map back."""
    text = column
    if isinstance(text, pa.Array) and pa.types.is_null(text.type):
        rejects.missing(np.arange(n))
        return np.zeros(n, dtype=dtype)
    if not _is_text(text):
        return _all_rows_scalar(fact, column, n, rejects, dtype)
    encoded = _text_array(text)
    if not pa.types.is_dictionary(encoded.type):
        encoded = pc.dictionary_encode(encoded)
    dictionary = encoded.dictionary.to_pylist()
    indices = encoded.indices
    codes = np.empty(len(dictionary) + 1, dtype=np.int64)  # the last entry: null
    problems = {}
    for position, raw in enumerate(dictionary):
        value, problem = check_value(fact, raw)
        if problem is None:
            codes[position] = _kernel_value(fact, value)
        else:
            codes[position] = 0
            problems[position] = (value_text(raw), problem)
    codes[-1] = 0
    index = numbers(indices, fill=len(dictionary))
    if indices.null_count:
        rejects.missing(np.flatnonzero(index == len(dictionary)))
    if problems:
        bad = np.fromiter(problems, dtype=np.int64, count=len(problems))
        flag = np.zeros(len(dictionary) + 1, dtype=bool)
        flag[bad] = True
        rows = np.flatnonzero(flag[index])
        row_codes = index[rows].tolist()
        rejects.add(rows, [problems[c][0] for c in row_codes], [problems[c][1] for c in row_codes])
    return codes.astype(dtype)[index]


def _enums(fact: Fact, column, n: int, rejects: Rejects) -> np.ndarray:
    choices = fact.type.choices
    dtype = np.int8 if len(choices) <= 127 else np.int16 if len(choices) <= 32767 else np.int32
    if isinstance(column, pa.Array) and pa.types.is_dictionary(column.type) and column.null_count == 0 \
            and column.dictionary.to_pylist() == list(choices):
        return numbers(column.indices)  # codes already: zero-copy
    if isinstance(column, pa.Array) and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        # plain text: one hash lookup per row gives the code; the rest (spaces, typos, nulls)
        # is decided per distinct value, exactly
        codes = pc.index_in(column, value_set=strings(list(choices)).cast(column.type))
        if codes.null_count == 0:
            return numbers(codes)
        miss = np.flatnonzero(bools(codes.is_null()))
        out = numbers(codes).copy()
        residue = Rejects()
        decided = _by_distinct_value(fact, column.take(from_numbers(miss)), miss.size, residue, np.int32)
        out[miss] = decided
        for rows, values, reasons in zip(residue.rows, residue.values, residue.reasons, strict=True):
            rejects.add(miss[rows], values, reasons)
        return out
    return _by_distinct_value(fact, column, n, rejects, dtype)


def _strings(fact: Fact, column, n: int, rejects: Rejects, read: bool) -> ValidColumn:
    """Text facts: missing, non-text and USCC problems; codes and labels if rules read it."""
    if isinstance(column, pa.Array) and pa.types.is_null(column.type):
        rejects.missing(np.arange(n))
        return ValidColumn(np.zeros(n, np.int32) if read else None, () if read else None)
    if not _is_text(column):
        return _strings_one_by_one(fact, column, n, rejects, read)
    text = _text_array(column)
    if read:
        return _string_codes(fact, text, n, rejects)
    plain = text.cast(text.type.value_type) if pa.types.is_dictionary(text.type) else text
    if fact.format == "uscc":
        from ecorules.rules._uscc import problem_messages, uscc_problems

        problems = uscc_problems(plain)
        suspect = np.flatnonzero(problems)
        if suspect.size:
            # the usual bad codes' reasons as columns; _records for the rest (blanks around a
            # code, full-width characters, a bad character: coerce may read those otherwise)
            raws = _python_values(plain, suspect)
            messages = problem_messages(raws, problems[suspect])
            fast = np.array([m is not None and bool(r) and r == r.strip() for r, m in zip(raws, messages, strict=True)],
                            bool)
            if fast.any():
                picked = np.flatnonzero(fast)
                rejects.add(suspect[picked], [raws[i] for i in picked.tolist()],
                            [f"{USCC_INVALID}{messages[i]}" for i in picked.tolist()])
            slow = np.flatnonzero(~fast)
            if slow.size:
                _scalar_path(fact, [raws[i] for i in slow.tolist()], suspect[slow], rejects)
        return ValidColumn(None)
    else:
        missing, suspect = _blank_rows(plain)
        if missing.size:  # empty cells: missing, as in a column of nulls (not _records cell by cell)
            rejects.missing(missing)
    if suspect.size:
        _scalar_path(fact, _python_values(plain, suspect), suspect, rejects)
    return ValidColumn(None)


# the first bytes of the spaces' UTF-8: a text starting with any other byte is not blank
_MAY_START_BLANK = np.zeros(256, bool)
_MAY_START_BLANK[[chr(c).encode()[0] for c in SPACE_CODEPOINTS]] = True


def _blank_rows(plain) -> tuple[np.ndarray, np.ndarray]:
    """The null rows and the blank rows (only spaces, or empty) of a text column. The regex
    runs only on the texts that may be blank, those empty or starting with a space's first
    byte: over every case_id and act_id of 2 M cases it took 0.1 CPU-s."""
    if not isinstance(plain, pa.Array) or not (pa.types.is_string(plain.type) or pa.types.is_large_string(plain.type)):
        blank = pc.match_substring_regex(plain, _BLANK)
        return np.flatnonzero(bools(blank.is_null())), np.flatnonzero(bools(fill_null(blank, False)))
    offsets, data = string_buffers(plain)
    starts = offsets[:-1]
    written = offsets[1:] > starts
    maybe = ~written
    if data.size:
        maybe |= _MAY_START_BLANK[data[np.where(written, starts, 0)]]
    null = bools(plain.is_null()) if plain.null_count else np.zeros(len(plain), bool)
    rows = np.flatnonzero(maybe & ~null)
    blank = pc.match_substring_regex(plain.take(from_numbers(rows)), _BLANK)
    return np.flatnonzero(null), rows[bools(blank)]


def _strings_one_by_one(fact: Fact, column, n: int, rejects: Rejects, read: bool) -> ValidColumn:
    """Columns of mixed Python objects (or numbers) for a text fact: _records, row by row."""
    rows = np.arange(n, dtype=np.int64)
    accepted, values = _scalar_path(fact, _python_values(column, rows), rows, rejects)
    if not read:
        return ValidColumn(None)
    labels: dict[str, int] = {}
    codes = np.zeros(n, dtype=np.int32)
    if accepted.size:
        codes[accepted] = [labels.setdefault(v, len(labels)) for v in values]
    return ValidColumn(codes, tuple(labels))


def _string_codes(fact: Fact, text: pa.Array, n: int, rejects: Rejects) -> ValidColumn:
    """Dictionary codes of stripped texts (the values rules compare), one check per text."""
    encoded = text if pa.types.is_dictionary(text.type) else pc.dictionary_encode(text)
    dictionary = encoded.dictionary.to_pylist()
    labels: dict[str, int] = {}
    remap = np.zeros(len(dictionary) + 1, dtype=np.int32)
    problems = {}
    for position, raw in enumerate(dictionary):
        value, problem = check_value(fact, raw)
        if problem is None:
            remap[position] = labels.setdefault(value, len(labels))
        else:
            problems[position] = (value_text(raw), problem)
    indices = encoded.indices
    index = numbers(indices, fill=len(dictionary))
    if indices.null_count:
        rejects.missing(np.flatnonzero(index == len(dictionary)))
    if problems:
        flag = np.zeros(len(dictionary) + 1, dtype=bool)
        flag[list(problems)] = True
        rows = np.flatnonzero(flag[index])
        row_codes = index[rows].tolist()
        rejects.add(rows, [problems[c][0] for c in row_codes], [problems[c][1] for c in row_codes])
    identity = len(labels) == len(dictionary) and not problems and \
        np.array_equal(remap[:-1], np.arange(len(dictionary), dtype=np.int32))
    codes = index if identity and index.dtype == np.int32 else remap[index]
    return ValidColumn(codes, tuple(labels))

