"""A UTF-8 CSV file parsed on every core: cut at line ends into slices, each parsed alone.

pyarrow's streaming CSV reader parses on one thread (its row numbers, which the rejects of
malformed lines need, come from parsing in order), and it was the critical path of a CSV run:
the scorer waited for it. Without ``newlines_in_values`` a line end always ends a row for
pyarrow, so slices cut after a ``\\n`` parse alone into the rows the whole file would give,
provided no quoted value is open across the cut. Each slice is parsed as one block
(``pyarrow.csv.read_csv``, which releases the GIL) in a small pool, a few slices in flight;
results come back in file order, and their row numbers are offset by the rows before them.

Whether a quoted value is open at a cut is found by the parser itself: a sentinel line of
``columns + 1`` empty fields is parsed after the cut. Read as a row of its own, it is a
malformed row with its exact text, last of the slice, and its row number is the slice's count
of rows; absorbed by an open quote, it is not. Anything the slices cannot do exactly (an open
quote at a cut, a line longer than a slice, another parse error) raises :class:`SlicesFailed`,
and the caller reads the file serially.

A malformed line that does not decode stops pyarrow: it decodes the line strictly for the
invalid-row handler, and fails the read. The serial reader reads such a file decoded, each
undecodable byte as a private-use character (engine/_sources.py); here a slice that holds such a
byte is written so (engine/sources/_utf8.pyx, in C without the GIL: decoding the slice in Python
took ~7 ms a 4 MiB slice under the GIL, a fifth of the CPU of a run over a registry with such
lines all through it) and parsed once: its malformed lines carry their text as the serial
reader's do, and in its rows each such character is turned back into its byte, so that they are
checked like the passed-through rows of every other slice. pyarrow's own decoding is left as it
is (replacing its module's function would change every CSV read of a host's process).
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from ecorules.rules._arrow import string_buffers

from ._utf8 import malformed_lines_mended, private_use_bytes, private_use_restored

SLICE_BYTES = 4 << 20  # large enough that a slice's fixed cost is small, small for memory
IN_FLIGHT = 3  # slices read or being parsed at once: memory stays a few slices


class SlicesFailed(Exception):  # noqa: N818 - a signal to read serially, not an error
    """The slices cannot give exactly what a serial read gives: read the file serially."""


@attrs.frozen
class ParsedSlice:
    """One slice's rows (text columns), its malformed rows (pyarrow's row number counted from
    the file's first line, text, fields), and the rows pyarrow counted in it (empty lines not)."""

    table: pa.Table
    malformed: list[tuple[int, str, int]]
    rows_counted: int


def _read(data, options: Callable) -> tuple[pa.Table, list[tuple[int, str, int]]]:
    malformed: list[tuple[int, str, int]] = []

    def on_invalid(row) -> str:
        malformed.append((row.number, row.text, row.actual_columns))
        return "skip"

    on_invalid.undecodable_is_handled = True  # see engine/_sources.py _quiet_undecodable_rows
    read, parse, convert = options(on_invalid, len(data) + 1)  # one block: parsed as a whole
    table = pacsv.read_csv(pa.BufferReader(pa.py_buffer(data)), read_options=read,
                           parse_options=parse, convert_options=convert)
    return table, malformed


def _undecodable_malformed(error: pa.ArrowInvalid) -> bool:
    # the handler never refuses a line: pyarrow failed to decode one for it
    return "CSV parse error" in str(error) and "columns, got" in str(error)


def _restored(chunk: pa.Array) -> pa.Array:
    """``chunk`` with each private-use character of an undecodable byte turned back into that
    byte (:func:`private_use_restored`): the same array where there is none."""
    if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)) or not len(chunk):
        return chunk
    offsets, data = string_buffers(chunk)
    restored = private_use_restored(offsets, data)
    if restored is None:
        return chunk
    moved, values = restored
    validity = chunk.buffers()[0]
    if validity is not None and chunk.offset:  # the bitmap stays where it is: offsets padded to match
        moved = np.concatenate([np.zeros(chunk.offset, moved.dtype), moved])
    return pa.Array.from_buffers(chunk.type, len(chunk), [validity, pa.py_buffer(moved), pa.py_buffer(values)],
                                 chunk.null_count, chunk.offset if validity is not None else 0)


def _bytes_restored(table: pa.Table) -> pa.Table:
    """``table`` with each private-use character of an undecodable byte turned back into that
    byte: the values as a passed-through read holds them. The characters are found in the
    UTF-8 bytes (EF 9E-9F ..), as engine/_sources.py finds them; a column without any is left
    as it is."""
    for index, column in enumerate(table.columns):
        chunks = [_restored(chunk) for chunk in column.chunks]
        if any(new is not old for new, old in zip(chunks, column.chunks, strict=True)):
            table = table.set_column(index, table.field(index), pa.chunked_array(chunks, column.type))
    return table


def _decoded(data: memoryview, options: Callable) -> tuple[pa.Table, list[tuple[int, str, int]]] | None:
    """The slice read decoded (each undecodable byte as its private-use character, as the serial
    reader reads the whole file), its rows' bytes restored; None if every byte decodes."""
    text = private_use_bytes(data)
    if text is None:
        return None
    try:
        table, malformed = _read(text, options)
    except pa.ArrowInvalid as error:
        raise SlicesFailed(str(error)) from error
    return _bytes_restored(table), malformed


def _mended(data: memoryview, options: Callable, separator: str, fields: int
            ) -> tuple[pa.Table, list[tuple[int, str, int]]] | None:
    """The slice read with only its malformed lines' undecodable bytes as private-use
    characters (:func:`malformed_lines_mended`): what pyarrow fails on, and the only lines whose
    text it decodes; every row keeps its bytes as a passed-through read holds them, so nothing
    is restored afterwards. None where the lines' fields cannot be counted (a quote, a lone CR)
    or pyarrow still fails: the caller reads the slice decoded whole (:func:`_decoded`)."""
    if len(separator) != 1 or ord(separator) >= 0x80:
        return None
    known, text = malformed_lines_mended(data, ord(separator), fields)
    if not known:
        return None
    try:
        return _read(data if text is None else text, options)
    except pa.ArrowInvalid:
        return None


def _parse(data: memoryview, sentinel: str | None, options: Callable, seen: threading.Event,
           separator: str = ",", fields: int = 0) -> ParsedSlice:
    """One slice. ``seen``: a slice of the file had a malformed line that did not decode; once
    one had, the malformed lines of a slice are mended before it is parsed (:func:`_mended`),
    rather than pyarrow parsing it up to such a line (a 1% bad registry has one in every
    slice), else the slice is read decoded whole."""
    read = (_mended(data, options, separator, fields) or _decoded(data, options)) if seen.is_set() else None
    if read is None:
        try:
            read = _read(data, options)
        except pa.ArrowInvalid as error:
            # (mended first here too: the slices parsed before the first failure was seen,
            # two or three, each decoded whole and restored cost ~4x the mending)
            read = (_mended(data, options, separator, fields) or _decoded(data, options)
                    if _undecodable_malformed(error) else None)
            if read is None:
                raise SlicesFailed(str(error)) from error
            seen.set()
    table, malformed = read
    rows = table.num_rows + len(malformed)
    if sentinel is not None:
        last = malformed.pop() if malformed else None
        if last is None or last[1] != sentinel or last[0] != rows:
            raise SlicesFailed("a quoted value is open across a slice's cut")
        rows -= 1
    return ParsedSlice(table, malformed, rows)


def _slices(path: Path, slice_bytes: int, sentinel: bytes,
            spare: list[bytearray]) -> Iterator[tuple[bytearray, memoryview, bool]]:
    """(buffer, bytes, last) of the data lines: each slice ends after a line end and, but the
    last, is followed by the sentinel line; the header line is not in them. A buffer is taken
    from ``spare`` where the caller put back one it is done with: a fresh one per slice cost
    ~5% more CPU (pages zeroed and faulted in, 200 MB per 2 M rows)."""
    with open(path, "rb") as handle:
        header = handle.readline(slice_bytes)
        if not header.endswith(b"\n") or b"\r" in header[:-2] or header.count(b'"') % 2:
            raise SlicesFailed("the header line is not one line ended by \\n within a slice")
        carry = b""
        while True:
            size = len(carry) + slice_bytes + len(sentinel)
            buffer = spare.pop() if spare and len(spare[-1]) >= size else bytearray(size + (1 << 16))
            buffer[: len(carry)] = carry
            view = memoryview(buffer)
            end = len(carry)
            while end < len(carry) + slice_bytes:
                got = handle.readinto(view[end: len(carry) + slice_bytes])
                if not got:
                    break
                end += got
            if end < len(carry) + slice_bytes:  # the end of the file
                if end:
                    yield buffer, view[:end], True
                return
            cut = buffer.rfind(b"\n", 0, end) + 1
            if not cut:
                raise SlicesFailed(f"a line longer than a slice ({slice_bytes:,} bytes)")
            carry = bytes(view[cut:end])
            view[cut: cut + len(sentinel)] = sentinel
            yield buffer, view[: cut + len(sentinel)], False


def parsed_slices(path: Path, columns: int, delimiter: str, options: Callable, *,
                  slice_bytes: int = SLICE_BYTES, workers: int | None = None) -> Iterator[ParsedSlice]:
    """The data rows of ``path`` (after its header line), slice by slice in file order.

    ``options(on_invalid, block_size)`` gives pyarrow's (read, parse, convert) options for a
    slice: no rows skipped, the column names given. Raises :class:`SlicesFailed` before
    yielding any slice that would differ from a serial read.
    """
    sentinel_text = delimiter * columns  # columns + 1 empty fields: always malformed
    sentinel = (sentinel_text + "\n").encode()
    workers = workers or min(4, os.cpu_count() or 1)
    pending: collections.deque = collections.deque()  # (future, buffer) in file order
    spare: list[bytearray] = []  # buffers whose slice is parsed (the table holds copies)
    rows_before = 1  # the header is row 1
    seen = threading.Event()  # a slice had a malformed line that did not decode (see _parse)
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="ecorules-csv-slice") as pool:
        try:
            # Row numbers need the rows of the slices before; a slice's count is known when
            # it is parsed, so each slice is parsed with local numbers offset afterwards.
            for buffer, data, last in _slices(path, slice_bytes, sentinel, spare):
                pending.append((pool.submit(_parse, data, None if last else sentinel_text, options, seen,
                                                   delimiter, columns), buffer))
                while len(pending) >= IN_FLIGHT:
                    rows_before = yield from _deliver(pending, spare, rows_before)
            while pending:
                rows_before = yield from _deliver(pending, spare, rows_before)
        finally:
            for future, _ in pending:
                future.cancel()


def _deliver(pending: collections.deque, spare: list[bytearray], rows_before: int):
    future, buffer = pending[0]
    parsed: ParsedSlice = future.result()
    pending.popleft()
    spare.append(buffer)
    yield attrs.evolve(parsed, malformed=[(n + rows_before, t, f) for n, t, f in parsed.malformed])
    return rows_before + parsed.rows_counted


__all__ = ["IN_FLIGHT", "SLICE_BYTES", "ParsedSlice", "SlicesFailed", "parsed_slices"]
