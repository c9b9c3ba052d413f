"""Reading the enterprise registry in bounded memory: CSV, Parquet, an SQLite table, an Excel
sheet, a folder of them (subfolders too).

This module keeps the CSV, Parquet and SQLite readers and :class:`Registry`, which dispatches
to every reader; newer concerns are modules of ``engine/sources/``: the shared types, the
listing of a folder, the encoding decided on the whole file, the separator, Excel.

A registry is read as a stream of :class:`Batch` objects holding only the columns the policies
need, renamed to the facts' names, plus the rows that could not even be read (rejects). Nothing
stops a run but a file that cannot be opened at all or lacks a needed column:

- a CSV line with the wrong number of fields is a reject (``malformed line``) with its line;
- bytes that do not decode in the file's encoding are a reject (``undecodable bytes``) naming
  the column; the other rows of the batch go on (the encoding is decided on the whole file,
  and the run's summary says what was decided and why: engine/sources/_encoding.py);
- everything else (types, ranges, the USCC) is checked by the scorer and reported as rejects.

Row numbers say where to look: the line of a CSV file (the header is line 1), the 1-based
position of a record in a Parquet file, the rowid of an SQLite row, the row of an Excel sheet.

Headers may be the facts' names, their Chinese labels or any of their aliases (``label`` and
``aliases`` in the policies' fact catalogue), plus those of a small alias file. Matching ignores
case, surrounding blanks and full-width/half-width differences (NFKC).
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import logging
import os
import re
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from ecorules.rules import Fact, Kind, normalize_header
from ecorules.rules._arrow import bools, from_numbers, string_buffers, strings

from ._prefetch import prefetch
from .sources._csv_slices import SLICE_BYTES, SlicesFailed, parsed_slices
from .sources._encoding import (
    UNDECODABLE,
    UNDECODABLE_BASE,
    UNDECODABLE_CHARS,
    EncodingDecision,
    decide_encoding,
    weigh,
)
from .sources._listing import (
    CSV_SUFFIXES,
    EXCEL_SUFFIXES,
    PARQUET_SUFFIXES,
    SQLITE_SUFFIXES,
    Skipped,
    list_registry,
)
from .sources._pg_url import PostgresUrl, as_location
from .sources._separator import detect_separator, one_column_hint, separator_name
from .sources._types import Batch, MissingColumnError, Reject, SourceError, without_rows
from .sources._utf8 import private_use_leads

log = logging.getLogger("ecorules.sources")

DEFAULT_BATCH_ROWS = 262_144
_SAMPLE_BYTES = 1 << 16
_REPLACEMENT = "\ufffd"
_MAX_VALUE_CHARS = 200  # a reject keeps at most this much of the offending text


def header_table(facts: Mapping[str, Fact], extra: Mapping[str, Iterable[str]] | None = None) -> dict[str, str]:
    """Normalized header -> fact name, from names, labels, aliases and ``extra`` aliases."""
    table: dict[str, str] = {}

    def add(header: str, name: str) -> None:
        key = normalize_header(header)
        if table.get(key, name) != name:
            raise SourceError(f"header {header!r} is an alias of both {table[key]!r} and {name!r}")
        table[key] = name

    for name, fact in facts.items():
        add(name, name)
        if fact.label:
            add(fact.label, name)
        for alias in fact.aliases:
            add(alias, name)
    for name, aliases in (extra or {}).items():
        if name not in facts:
            raise SourceError(f"alias file names an unknown fact {name!r} (known: {', '.join(facts)})")
        for alias in [aliases] if isinstance(aliases, str) else aliases:
            add(str(alias), name)
    return table


def read_alias_file(path: str | os.PathLike) -> dict[str, list[str]]:
    """A YAML or JSON mapping ``fact: [header, ...]`` (the shape of the catalogue's aliases)."""
    import yaml

    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as error:
        raise SourceError(f"{path}: cannot read the alias file: {error}") from error
    if isinstance(document, dict) and isinstance(document.get("aliases"), dict):
        document = document["aliases"]
    if not isinstance(document, dict) or not all(
        isinstance(v, str | list) for v in document.values()
    ):
        raise SourceError(f"{path}: an alias file maps each fact to a list of headers, e.g. uscc: [统一代码]")
    return {str(k): ([v] if isinstance(v, str) else [str(x) for x in v]) for k, v in document.items()}


# The longest line a CSV row may be: a longer one is read again with parse blocks this size
# (the usual blocks are at most 1 MiB, sized to the rows); past it the file is refused.
LONGEST_LINE = 64 << 20


class ColumnResolver:
    """Finds the columns of a file for the facts the policies need."""

    def __init__(self, facts: Mapping[str, Fact], needed: Mapping[str, Iterable[str]],
                 extra_aliases: Mapping[str, Iterable[str]] | None = None, optional: Iterable[str] = ()):
        self.facts = facts
        self.needed = {name: tuple(policies) for name, policies in needed.items()}
        self.optional = frozenset(optional)  # of needed: read when a file has the column
        self.table = header_table(facts, extra_aliases)

    def resolve(self, source: str, headers: list[str]) -> dict[str, int]:
        """Fact name -> index of its column in ``headers``; raises for a missing or doubled one."""
        found: dict[str, int] = {}
        for index, header in enumerate(headers):
            name = self.table.get(normalize_header(header))
            if name is None or name not in self.needed:
                continue
            if name in found:
                raise SourceError(
                    f"{source}: columns {headers[found[name]]!r} and {header!r} both give {name!r}"
                )
            found[name] = index
        for name, policies in self.needed.items():
            # a fact declared may_be_absent: the kernel reads a column left out as all empty
            if name not in found and name not in self.optional and not getattr(self.facts.get(name), "may_be_absent", False):
                accepted = [k for k, v in self.table.items() if v == name]
                fact = self.facts.get(name)
                raise MissingColumnError(source, name, policies, accepted, one_column_hint(headers),
                                         optional=fact is not None and fact.optional)
        return found


def _name_in(root: Path, path: Path) -> str:
    """A file's name in the fingerprints: relative to a folder (so a copy of the folder
    elsewhere is the same input, and a.csv in two subfolders are two files), else the path."""
    if root.is_dir():
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            return str(path)
    return path.name if path == root else str(path)


def fingerprint(files: Iterable[tuple[Path, str | None]], root: str | os.PathLike) -> str:
    """sha256 over every file's name, table and full content: equal only for equal input."""
    digest = hashlib.sha256()
    root = Path(root)
    for path, table in files:
        name = _name_in(root, path)
        try:
            file_digest = _hashed_ahead(path) or _content_digest(path)
        except OSError as error:
            raise SourceError(f"{path}: cannot read: {error.strerror}") from error
        digest.update(f"{name}\0{table or ''}\0{file_digest}\n".encode())
    return digest.hexdigest()


def _content_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _identity(path: Path) -> tuple[int, ...]:
    info = path.stat()
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


class _Ahead:
    """Content digests begun early (see :func:`hash_ahead`), each used at most once, and only
    for the file as it was when its hashing began."""

    def __init__(self) -> None:
        self.pending: dict[Path, tuple[tuple[int, ...], threading.Event, list[str]]] = {}
        self.lock = threading.Lock()

    def start(self, paths: list[Path]) -> None:
        jobs = []
        with self.lock:
            for path in paths:
                try:
                    key, identity = path.resolve(), _identity(path)
                except OSError:
                    continue  # the reader will say what is wrong with it
                job = (identity, threading.Event(), [])
                self.pending[key] = job
                jobs.append((key, job))

        def work() -> None:
            for key, (_, done, value) in jobs:
                try:
                    value.append(_content_digest(key))
                except OSError:
                    pass  # hashed again when needed, which reports the error
                finally:
                    done.set()

        if jobs:
            threading.Thread(target=work, name="ecorules-hash-ahead", daemon=True).start()

    def take(self, path: Path) -> str | None:
        try:
            key = path.resolve()
        except OSError:
            return None
        with self.lock:
            job = self.pending.pop(key, None)
        if job is None:
            return None
        identity, done, value = job
        done.wait()
        try:
            unchanged = _identity(key) == identity
        except OSError:
            return None
        return value[0] if value and unchanged else None

    def forget(self, paths: list[Path]) -> None:
        with self.lock:
            for path in paths:
                self.pending.pop(path.resolve(), None)


_AHEAD = _Ahead()


def _hashed_ahead(path: Path) -> str | None:
    return _AHEAD.take(path)


def hash_ahead(*locations) -> Callable[[], None]:
    """Begin hashing the content of these input files (paths; folders and URLs are left to
    the run) in a thread of its own, and return what forgets the digests not used.

    ``ecorules run`` spends its first ~0.5 s on one core (imports, the policies loaded and
    their own test cases judged) while the other idles; the content fingerprint (sha256, ~0.7
    CPU-s per GB) otherwise competes with reading and scoring for both. A digest is used once,
    by the fingerprint of the same file unchanged (device, inode, size, modification time as
    when its hashing began), and is otherwise hashed again."""
    paths = []
    for location in locations:
        if location is None or isinstance(location, PostgresUrl):
            continue
        path = Path(location)
        try:
            if path.is_file():
                paths.append(path)
        except OSError:
            continue
    _AHEAD.start(paths)
    return functools.partial(_AHEAD.forget, paths)


def stat_fingerprint(files: Iterable[tuple[Path, str | None]], root: str | os.PathLike) -> str:
    """sha256 over every file's name, table, size and modification time: cheap, and a hint
    only (a copy has another time; an edit that keeps size and time is possible), so a run is
    reused only when the content fingerprint agrees too."""
    digest = hashlib.sha256()
    root = Path(root)
    for path, table in files:
        name = _name_in(root, path)
        try:
            info = path.stat()
        except OSError as error:
            raise SourceError(f"{path}: cannot read: {error.strerror}") from error
        digest.update(f"{name}\0{table or ''}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


# --- CSV ------------------------------------------------------------------------------------


# An undecodable byte b is read as a private-use character (engine/sources/_encoding.py).
_UNDECODABLE, _UNDECODABLE_CHARS = UNDECODABLE, UNDECODABLE_CHARS


def _replace_decoder(name: str) -> str:
    """A codec name that decodes ``name`` keeping each undecodable byte as a private-use
    character (pyarrow cannot be given an errors= handler)."""
    alias = f"ecorules_replace_{codecs.lookup(name).name.replace('-', '_')}"

    def search(wanted: str):
        if wanted != alias:
            return None
        base = codecs.lookup(name)

        class Decoder(codecs.IncrementalDecoder):
            def __init__(self, errors: str = _UNDECODABLE):
                super().__init__(_UNDECODABLE)
                self.inner = base.incrementaldecoder(_UNDECODABLE)

            def decode(self, data, final=False):
                return self.inner.decode(data, final)

            def reset(self):
                self.inner.reset()

        return codecs.CodecInfo(base.encode, base.decode, incrementaldecoder=Decoder, name=alias)

    try:
        codecs.lookup(alias)
    except LookupError:
        codecs.register(search)
    return alias


def detect_encoding(sample: bytes) -> str:
    """The encoding of a file starting with ``sample`` (see engine/sources/_encoding.py)."""
    return weigh(sample, complete=False).encoding


class CsvFile:
    """A delimited text file: its encoding decided on the whole file (or given), its separator
    (comma, tab, semicolon or bar) recognised from the header."""

    def __init__(self, path: Path, resolver: ColumnResolver, *, encoding: str | None, batch_rows: int):
        self.path, self.label = path, str(path)
        try:
            with open(path, "rb") as handle:
                sample = handle.read(_SAMPLE_BYTES)
        except OSError as error:
            raise SourceError(f"{path}: cannot read: {error.strerror}") from error
        self.decision: EncodingDecision = decide_encoding(path, encoding)
        self.encoding = self.decision.encoding
        # UTF-8 passes through pyarrow untranscoded (the fast path), lines that do not decode
        # included: their cells are found by _undecodable_rows. Only a malformed line that does
        # not decode stops pyarrow (it decodes the line strictly for on_invalid): the file is
        # then read again from the start, decoded with replacement (see _parsed). Transcoding
        # every file with an undecodable line cost ~20% of a run with 1% bad rows.
        self.utf8 = self.encoding in ("utf-8", "utf-8-sig")
        text = codecs.getincrementaldecoder(self.encoding)(errors="replace").decode(sample)
        head = text.lstrip("\ufeff").splitlines()[:22] if text.strip() else []
        if len(sample) == _SAMPLE_BYTES and len(head) > 1:
            head = head[:-1]  # the sample may end inside the last line
        first_line = head[0] if head else ""
        self.separator, self.separator_why = detect_separator(head)
        self.headers = next(csv.reader([first_line], delimiter=self.separator)) if first_line else []
        if not self.headers:
            raise SourceError(f"{path}: empty file, expected a header row")
        if _REPLACEMENT in first_line:
            raise SourceError(
                f"{path}: the header does not decode as {self.encoding}; give --encoding (e.g. gb18030)"
            )
        self.columns = resolver.resolve(self.label, self.headers)
        lines = max(1, sample.count(b"\n") - 1)
        per_row = max(16, (len(sample) - len(first_line.encode())) // lines) if len(sample) > 1024 else 128
        # pyarrow's streaming reader keeps about twenty blocks in flight: small blocks bound the
        # memory, gathered into batches of batch_rows. 1 MiB rather than 4: each 4 MiB block
        # was a fresh allocation whose pages the kernel zeroed (sys time 1.0-1.2 s -> 0.6 s,
        # peak RSS 468 -> 300-324 MiB on 10 M rows); 256 KiB cost more user time.
        self.block_size = int(min(1 << 20, max(16 << 10, per_row * batch_rows)))
        self.batch_rows, self.facts = batch_rows, resolver.facts
        self.slice_bytes = SLICE_BYTES  # a test may make it small
        self.estimated_rows = max(0, os.path.getsize(path) // per_row)

    def batches(self) -> Iterator[Batch]:
        """Parsed in a thread of its own (a UTF-8 file in slices, on every core); typed and
        checked for undecodable bytes in the caller's.

        The parser is the critical path of a CSV run: on 2 cores, taking the casts and the
        UTF-8 check off its thread let the parser run ahead of the scorer.
        """
        for table, lines, headers, rejects, rows_in, utf8 in prefetch(self._parsed(), depth=2, name="ecorules-csv-parser"):
            table = typed_columns(table, self.facts)  # what converts needs no UTF-8 check
            table, lines, bad = _drop_undecodable(table, lines, headers, self.label, self.encoding, utf8)
            yield Batch(table, self.label, lines, headers, rejects + bad, rows_in)

    def _options(self, passthrough: bool, on_invalid, *, block_size: int, skip_rows: int):
        """pyarrow's (read, parse, convert) options: UTF-8 passed through, or decoded with replacement."""
        internal = [f"c{i}" for i in range(len(self.headers))]
        picked = [internal[i] for i in self.columns.values()]
        read = pacsv.ReadOptions(
            column_names=internal, skip_rows=skip_rows, use_threads=False, block_size=block_size,
            encoding="utf8" if passthrough else _replace_decoder(self.encoding),
        )
        convert = pacsv.ConvertOptions(
            include_columns=picked, column_types={c: pa.string() for c in picked},
            check_utf8=False, strings_can_be_null=False, quoted_strings_can_be_null=False,
        )
        parse = pacsv.ParseOptions(delimiter=self.separator, invalid_row_handler=on_invalid)
        return read, parse, convert

    def _reader(self, passthrough: bool, on_invalid):
        """pyarrow's streaming reader, on one thread (row numbers come from parsing in order)."""
        read, parse, convert = self._options(passthrough, on_invalid, block_size=self.block_size, skip_rows=1)
        return pacsv.open_csv(self.path, read_options=read, parse_options=parse, convert_options=convert)

    def _parsed(self) -> Iterator[tuple[pa.Table, np.ndarray, dict[str, str], list[Reject], int, bool]]:
        """Batches of text columns with their line numbers, the malformed lines as rejects, and
        whether the UTF-8 was passed through (its cells are checked), else decoded.

        A UTF-8 file of a few slices is parsed in slices on every core (engine/sources/
        _csv_slices.py; a slice with a malformed line that does not decode is read decoded,
        alone); where the slices cannot give exactly what the serial reader gives, the serial
        reader goes on from the rows already handed out."""
        gathered = _Gathered(self)
        if self.utf8 and os.path.getsize(self.path) >= 2 * self.slice_bytes:
            def options(on_invalid, block_size: int):
                return self._options(True, on_invalid, block_size=block_size, skip_rows=0)

            _quiet_undecodable_rows()  # a slice with a malformed line that does not decode is read again
            try:
                for part in parsed_slices(self.path, len(self.headers), self.separator, options,
                                          slice_bytes=self.slice_bytes):
                    gathered.skipped.extend(part.malformed)
                    yield from gathered.add(part.table.to_batches(), True)
                yield from gathered.finish(True)
                return
            except SlicesFailed as why:
                log.info("%s: read serially after %s rows: %s", self.label, f"{gathered.delivered:,}", why)
            except OSError as error:
                raise SourceError(f"{self.path}: cannot read: {error.strerror}") from error
        yield from self._serial(gathered)

    def _serial(self, gathered: _Gathered) -> Iterator[tuple[pa.Table, np.ndarray, dict[str, str], list[Reject], int, bool]]:
        """The streaming reader, handing out what ``gathered`` has not handed out yet."""
        skipped = gathered.skipped  # found again from the first line; the first gathered.reported were handed out
        gathered.drop_pending()  # not handed out: read again

        def on_invalid(row) -> str:
            skipped.append((row.number, row.text, row.actual_columns))
            return "skip"

        on_invalid.undecodable_is_handled = True  # see _quiet_undecodable_rows
        _quiet_undecodable_rows()
        passthrough = self.utf8
        discard = gathered.delivered  # rows read again, already handed out

        def undecodable_malformed(error: pa.ArrowInvalid) -> bool:
            # on_invalid never refuses a line: pyarrow failed to decode one for it
            return passthrough and "CSV parse error" in str(error) and "columns, got" in str(error)

        def longer_than_a_block(error: pa.ArrowInvalid) -> bool:
            # one line longer than a parse block (pyarrow: "straddling object straddles two
            # block boundaries"): read again from the start with blocks that hold it
            if "straddl" not in str(error):
                return False
            if self.block_size >= LONGEST_LINE:
                raise SourceError(
                    f"{self.path}: a line after line {gathered.delivered + 1} is longer than {LONGEST_LINE >> 20} MiB, "
                    "the most a row may hold: a file without line ends, or a quote left open, reads as one such line"
                ) from error
            self.block_size = LONGEST_LINE
            log.info("%s: a line longer than the parse block: read again from the start with %s MiB blocks",
                     self.label, LONGEST_LINE >> 20)
            return True

        while True:
            # pyarrow parses ahead when it opens the file: a failed attempt may have reported
            # malformed lines already, found again by the next attempt
            skipped[:] = []
            try:
                reader = self._reader(passthrough, on_invalid)
                break
            except pa.ArrowInvalid as error:
                if "Empty CSV file" in str(error):
                    return
                if longer_than_a_block(error):
                    continue
                if not undecodable_malformed(error) or not passthrough:
                    raise SourceError(f"{self.path}: cannot parse as CSV: {error}") from error
                passthrough = False
        while True:
            try:
                record_batch = reader.read_next_batch()
            except StopIteration:
                record_batch = None
            except pa.ArrowInvalid as error:
                if longer_than_a_block(error):
                    skipped[:] = []
                    discard = gathered.delivered  # the pending rows were not handed out: read again
                    gathered.drop_pending()
                    reader = self._reader(passthrough, on_invalid)
                    continue
                if not undecodable_malformed(error):
                    raise SourceError(
                        f"{self.path}: cannot parse as CSV after line {gathered.delivered + 1}: {error}") from error
                log.info("%s: a malformed line does not decode as %s: read again from the start, decoded",
                         self.label, self.encoding)
                passthrough, skipped[:] = False, []
                discard = gathered.delivered  # the pending rows were not handed out: read again
                gathered.drop_pending()
                reader = self._reader(passthrough, on_invalid)
                continue
            if record_batch is not None and discard:
                if record_batch.num_rows <= discard:
                    discard -= record_batch.num_rows
                    continue
                record_batch, discard = record_batch.slice(discard), 0
            if record_batch is None:
                break
            yield from gathered.add([record_batch], passthrough)
        yield from gathered.finish(passthrough)

    def described(self) -> dict[str, str]:
        """How the file was read, for the run's summary."""
        return {"format": "csv", "encoding": self.encoding, "encoding_why": self.decision.why,
                "separator": separator_name(self.separator)}

    def _malformed(self, line: int, text: str, fields: int) -> Reject:
        return Reject(self.label, line, None, _shown(text),
                      f"malformed line: {fields} fields, expected {len(self.headers)}")


class _Gathered:
    """Parsed rows gathered into batches of ``batch_rows`` (the last fewer), numbered by line, with the
    malformed lines before each batch's last row as its rejects (pyarrow reports a malformed
    line before it hands out the rows around it), whoever parsed them."""

    def __init__(self, csv_file: CsvFile):
        self.file = csv_file
        self.names = list(csv_file.columns)  # the reader returns include_columns in their order
        self.headers = {name: csv_file.headers[i] for name, i in csv_file.columns.items()}
        self.skipped: list[tuple[int, str, int]] = []  # (pyarrow's row number, text, fields) of malformed lines
        self.reported = 0  # of skipped, those handed out
        self.delivered = 0  # data rows handed out
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0

    def drop_pending(self) -> None:
        self.pending, self.pending_rows = [], 0

    def add(self, record_batches: list[pa.RecordBatch], passthrough: bool):
        for record_batch in record_batches:
            self.pending.append(record_batch)
            self.pending_rows += record_batch.num_rows
        size = self.file.batch_rows
        while self.pending_rows >= size:
            # exactly batch_rows rows: the batches, and so the order of the rejects they carry,
            # do not depend on how the parser cut the file (its blocks, or slices)
            taken, rows = [], 0
            while rows < size:
                record_batch = self.pending.pop(0)
                if rows + record_batch.num_rows > size:
                    self.pending.insert(0, record_batch.slice(size - rows))
                    record_batch = record_batch.slice(0, size - rows)
                taken.append(record_batch)
                rows += record_batch.num_rows
            self.pending_rows -= size
            yield self._batch(taken, passthrough)

    def finish(self, passthrough: bool):
        if self.pending:
            taken = self.pending
            self.drop_pending()
            yield self._batch(taken, passthrough)
        if self.reported < len(self.skipped):
            rejects = [self.file._malformed(*entry) for entry in self.skipped[self.reported:]]
            self.reported = len(self.skipped)
            empty = pa.table({name: strings([]) for name in self.names})
            yield empty, np.zeros(0, np.int64), self.headers, rejects, len(rejects), passthrough

    def _batch(self, taken: list[pa.RecordBatch], passthrough: bool):
        table = pa.Table.from_batches(taken).rename_columns(self.names)
        n = table.num_rows
        lines = _good_lines(np.arange(self.delivered + 2, self.delivered + 2 + n, dtype=np.int64), self.skipped,
                            min(self.reported, len(self.skipped)))
        self.delivered += n
        last = int(lines[-1]) if n else None
        rejects = []
        while self.reported < len(self.skipped) and (last is None or self.skipped[self.reported][0] < last):
            rejects.append(self.file._malformed(*self.skipped[self.reported]))
            self.reported += 1
        return table, lines, self.headers, rejects, n + len(rejects), passthrough


@functools.cache
def _quiet_undecodable_rows() -> None:
    """pyarrow decodes a malformed line before calling on_invalid and reports the failure as
    an unraisable exception ("Exception ignored in ..." on stderr) before the reader fails:
    CsvFile reads the file again decoded, so that report is noise. Other reports pass."""
    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, UnicodeDecodeError) and getattr(
                unraisable.object, "undecodable_is_handled", False):
            return
        previous(unraisable)

    sys.unraisablehook = hook


def _good_lines(naive: np.ndarray, skipped: list[tuple[int, str, int]], before: int = 0) -> np.ndarray:
    """Line numbers of data rows given their line numbers had no line been malformed.

    With the malformed lines B (sorted), the row that would be on line v is on line
    v + #{i : B[i] - i <= v}: every malformed line before it pushes it one further. The first
    ``before`` of them (handed out with earlier batches) lie before every row of ``naive``:
    counted, not searched, so that a batch costs its own malformed lines, not all the file's
    so far (with 1% of 30 M lines malformed, ~17 M steps of Python over a run).

    ``naive`` is consecutive (v0, v0 + 1, ...): the count is a running sum of the B[i] - i
    falling on each row, one pass, where a binary search per row took ~4 ms a batch.
    """
    if len(skipped) == before:
        return naive + before
    if not naive.size:
        return naive.copy()
    bad = np.fromiter((line for line, _, _ in skipped[before:]), np.int64, len(skipped) - before)
    at = np.clip(bad - np.arange(before, len(skipped)) - naive[0], 0, naive.size)  # below v0: on the first row
    return naive + before + np.cumsum(np.bincount(at, minlength=naive.size + 1)[: naive.size])


def _private_use_rows(column: pa.ChunkedArray) -> np.ndarray:
    """Indices of the values holding a character of U+F700-U+F7FF (an undecodable byte, see
    _UNDECODABLE), found in the UTF-8 bytes (EF 9C-9F ..): a regular expression per column
    cost 75 ms per batch, several times the scoring of a batch with a bad line in it."""
    found, start = [], 0
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            chunk = chunk.cast(chunk.type.value_type)
        large = pa.types.is_large_string(chunk.type)
        if not (large or pa.types.is_string(chunk.type)):
            found.append(start + np.flatnonzero(bools(pc.match_substring_regex(chunk, _UNDECODABLE_CHARS))))
            start += len(chunk)
            continue
        n = len(chunk)
        offsets, data = string_buffers(chunk)
        lead = private_use_leads(data[offsets[0] : offsets[-1]])  # memchr: most chunks have none
        if lead is not None:
            relative = offsets - offsets[0]
            # the needles in the offsets' own dtype: int64 needles against int32 offsets made
            # numpy cast all the offsets for each search (as _csv_slices._bytes_restored)
            rows = np.searchsorted(relative, np.asarray(lead).astype(relative.dtype), side="right") - 1
            found.append(start + np.unique(rows))
        start += n
    return np.concatenate(found).astype(np.int64) if found else np.zeros(0, np.int64)


def _undecodable_rows(column: pa.ChunkedArray, utf8: bool) -> np.ndarray:
    """Indices of the values that are not valid UTF-8 (or hold the decoder's replacement)."""
    if not utf8:
        return _private_use_rows(column)
    found, start = [], 0
    for chunk in column.chunks:
        if not _all_valid_utf8(chunk):
            found.extend(start + row for row in _invalid_utf8(chunk, 0, len(chunk)))
        start += len(chunk)
    return np.array(found, np.int64)


def _all_valid_utf8(chunk: pa.Array) -> bool:
    """True if every value of ``chunk`` is valid UTF-8, told from its bytes at once: ASCII, or
    their concatenation valid UTF-8 with no value starting on a continuation byte (then each
    value starts on a character and ends where the next starts: whole characters). Arrow's
    check of the values one by one cost ~2 ms a column of a batch, most of it per value.
    False also where it cannot tell (nulls, whose bytes Arrow does not check): the caller
    then checks the values one by one."""
    if chunk.null_count or not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
        return False
    offsets, data = string_buffers(chunk)
    data = data[offsets[0]: offsets[-1]]
    if not data.size or data.max() < 0x80:
        return True
    starts = offsets[:-1][offsets[1:] > offsets[:-1]] - offsets[0]
    if ((data[starts] & 0xC0) == 0x80).any():
        return False
    whole = pa.Array.from_buffers(pa.large_string(), 1, [None, pa.py_buffer(np.array([0, data.size], np.int64)),
                                                         pa.py_buffer(data)])
    return _valid_utf8(whole, 0, 1)


def _valid_utf8(chunk: pa.Array, start: int, stop: int) -> bool:
    try:
        chunk.slice(start, stop - start).validate(full=True)
        return True
    except pa.ArrowInvalid:
        return False


def _invalid_utf8(chunk: pa.Array, start: int, stop: int) -> list[int]:
    """The rows of ``chunk[start:stop]`` that are not valid UTF-8, by halving: Arrow's check
    of a slice is a pass over its bytes in C, so a batch with a few bad rows among 262,144
    costs a few dozen passes over ever shorter slices, not a Python decode per row."""
    if _valid_utf8(chunk, start, stop):
        return []
    if stop - start <= 32:
        values = chunk.slice(start, stop - start).cast(pa.binary()).to_pylist()
        bad = []
        for i, value in enumerate(values):
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                bad.append(start + i)
        return bad
    middle = (start + stop) // 2
    return _invalid_utf8(chunk, start, middle) + _invalid_utf8(chunk, middle, stop)


_ARROW_TYPES = {Kind.INTEGER: pa.int64(), Kind.BOOLEAN: pa.bool_()}


def typed_columns(table: pa.Table, facts: Mapping[str, Fact]) -> pa.Table:
    """Text columns of integer and boolean facts converted by Arrow when every value parses.

    Arrow accepts fewer spellings than the record rules (ASCII digits with an optional '-';
    true/false/1/0 in any case) and reads each the same way, so a converted column means
    exactly what its text meant. A column with any other value (' 1', '+1', '是', '', '1.5')
    stays text for the scorer, which parses it and rejects what is wrong, row by row. Converting
    here is several times faster than parsing text in the scorer.
    """
    for index, name in enumerate(table.column_names):
        fact = facts.get(name)
        target = _ARROW_TYPES.get(fact.type.kind) if fact is not None else None
        column = table.column(index)
        if target is None or not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        if any(_uncastable(chunk) for chunk in column.chunks):
            continue
        try:
            table = table.set_column(index, name, pc.cast(column, target))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return table


def _uncastable(chunk: pa.Array) -> bool:
    """Whether a byte of ``chunk``'s texts is one no integer or boolean Arrow reads may hold
    (non-ASCII, or '.'): a registry's '三', '1.5', '也许'. Arrow's cast of such a column fails
    only after it has parsed every cell (~5 ms a count column of a batch, in every batch of a
    registry with 1% bad rows), where these two comparisons cost a tenth of that. Only a
    shortcut to the failure: a column without such a byte is cast as before."""
    offsets, data = string_buffers(chunk)
    data = data[offsets[0] : offsets[-1]]
    return bool(data.size) and (int(data.max()) >= 0x80 or bool((data == 0x2E).any()))


_PRIVATE_USE = re.compile(_UNDECODABLE_CHARS)


def _byte_shown(match: re.Match) -> str:
    return f"\\x{ord(match.group()) - UNDECODABLE_BASE:02x}"


def _shown(value: bytes | str | None) -> str | None:
    # the pattern compiled once and no lambda made per call: every malformed line of a bad
    # file is shown, 7,000 of them in a 5 M-row registry with 1% bad rows
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="backslashreplace")
    if value and ord(max(value)) < UNDECODABLE_BASE:  # (in C) no character of an undecodable byte: the expression not run
        return value[:_MAX_VALUE_CHARS]
    return _PRIVATE_USE.sub(_byte_shown, value)[:_MAX_VALUE_CHARS]


def _drop_undecodable(table: pa.Table, rows: np.ndarray, headers: Mapping[str, str], source: str,
                      encoding: str, utf8: bool) -> tuple[pa.Table, np.ndarray, list[Reject]]:
    rejects: list[Reject] = []
    dropped = np.zeros(table.num_rows, bool)
    for name in table.column_names:
        column = table[name]
        if pa.types.is_dictionary(column.type) and pa.types.is_string(column.type.value_type):
            try:  # each distinct text checked once; any bad one: row by row, like plain text
                for chunk in column.chunks:
                    chunk.dictionary.validate(full=True)
                continue
            except pa.ArrowInvalid:
                column = column.cast(column.type.value_type)
                table = table.set_column(table.column_names.index(name), name, column)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        bad = _undecodable_rows(column, utf8)
        if not bad.size:
            continue
        picked = from_numbers(bad)
        values = (column.cast(pa.binary()) if utf8 else column).take(picked).to_pylist()
        for index, value in zip(bad.tolist(), values, strict=True):
            rejects.append(Reject(source, int(rows[index]), headers[name], _shown(value),
                                  f"undecodable bytes: not valid {encoding}"))
        dropped[bad] = True
    if not dropped.any():
        return table, rows, []
    keep = ~dropped
    return without_rows(table, np.flatnonzero(dropped), keep), rows[keep], rejects


# --- Parquet --------------------------------------------------------------------------------


class ParquetFile:
    def __init__(self, path: Path, resolver: ColumnResolver, *, batch_rows: int):
        self.path, self.label, self.batch_rows = path, str(path), batch_rows
        try:
            # pre_buffer (the default) caches every row group read until the file is closed:
            # memory grew by ~65 MiB per 5 M rows; without it memory stays flat, and reads
            # were no slower.
            self.file = pq.ParquetFile(path, pre_buffer=False)
        except (OSError, pa.ArrowException, UnicodeDecodeError) as error:  # (a damaged footer's names)
            raise SourceError(f"{path}: cannot read as Parquet: {error}") from error
        self.headers = list(self.file.schema_arrow.names)
        self.columns = resolver.resolve(self.label, self.headers)
        self.estimated_rows = self.file.metadata.num_rows
        # Enum columns (a few distinct texts) read as Arrow dictionaries: Parquet stores them
        # so, and decoding is ~2x faster than building a string per row; the scorer then
        # judges each distinct text once. Their dictionaries are UTF-8-checked like any text.
        schema = self.file.schema_arrow
        dictionary = [
            self.headers[i] for name, i in self.columns.items()
            if (fact := resolver.facts.get(name)) is not None and fact.type.choices
            and pa.types.is_string(schema.field(i).type)
        ]
        if dictionary:
            try:
                self.file = pq.ParquetFile(path, pre_buffer=False, read_dictionary=dictionary)
            except (OSError, pa.ArrowException) as error:
                raise SourceError(f"{path}: cannot read as Parquet: {error}") from error

    def batches(self) -> Iterator[Batch]:
        picked = [self.headers[i] for i in self.columns.values()]
        rename = {self.headers[i]: name for name, i in self.columns.items()}
        headers = {name: self.headers[i] for name, i in self.columns.items()}
        start = 0
        try:
            for record_batch in self.file.iter_batches(batch_size=self.batch_rows, columns=picked, use_threads=True):
                n = record_batch.num_rows
                for column in record_batch.columns:
                    if pa.types.is_dictionary(column.type):
                        _check_indices(column)
                table = pa.Table.from_batches([record_batch.rename_columns([rename[c] for c in record_batch.schema.names])])
                rows = np.arange(start + 1, start + n + 1, dtype=np.int64)
                start += n
                table, rows, rejects = _drop_undecodable(table, rows, headers, self.label, "utf-8", True)
                yield Batch(table, self.label, rows, headers, rejects, n)
        except (OSError, pa.ArrowException) as error:
            raise SourceError(f"{self.path}: cannot read as Parquet after row {start}: {error}") from error


    def described(self) -> dict[str, str]:
        return {"format": "parquet"}


def _check_indices(column: pa.DictionaryArray) -> None:
    """A damaged file can give indices beyond its dictionary (found by tests/fuzz): one pass
    over small integers. (Not validate(full=True): it would refuse the whole batch for one
    undecodable text, which is a reject of its rows.)"""
    bounds = pc.min_max(column.indices)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low is not None and (low < 0 or high >= len(column.dictionary)):
        raise pa.ArrowInvalid(f"dictionary indices {low}..{high} outside its {len(column.dictionary)} values")


# --- SQLite ---------------------------------------------------------------------------------


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class SqliteTable:
    def __init__(self, path: Path, table: str | None, resolver: ColumnResolver, *, batch_rows: int):
        self.path, self.batch_rows = path, batch_rows
        try:
            # opened here, read by the reading thread: one thread at a time
            self.connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            self.connection.text_factory = bytes
            names = [r[0].decode() for r in self.connection.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'")]
        except sqlite3.DatabaseError as error:
            raise SourceError(f"{path}: cannot read as SQLite: {error}") from error
        if table is None:
            if len(names) != 1:
                raise SourceError(f"{path}: holds {len(names)} tables ({', '.join(names)}); name one with PATH:TABLE or --table")
            table = names[0]
        if table not in names:
            raise SourceError(f"{path}: no table {table!r} (tables: {', '.join(names) or 'none'})")
        self.table, self.label, self.facts = table, f"{path}:{table}", resolver.facts
        info = self.connection.execute(f"PRAGMA table_info({_quote(table)})").fetchall()
        self.headers = [row[1].decode() for row in info]
        self.columns = resolver.resolve(self.label, self.headers)
        self.estimated_rows = self.connection.execute(f"SELECT count(*) FROM {_quote(table)}").fetchone()[0]
        try:
            self.connection.execute(f"SELECT rowid FROM {_quote(table)} LIMIT 0")
            self.rowid = "rowid"
        except sqlite3.OperationalError:  # WITHOUT ROWID tables and views
            self.rowid = None

    def batches(self) -> Iterator[Batch]:
        names = list(self.columns)
        select = ", ".join(_quote(self.headers[i]) for i in self.columns.values())
        rowid = self.rowid or "NULL"
        headers = {name: self.headers[i] for name, i in self.columns.items()}
        cursor = self.connection.execute(f"SELECT {rowid}, {select} FROM {_quote(self.table)}")
        position = 0
        while rows := cursor.fetchmany(self.batch_rows):
            ids = [r[0] for r in rows]
            numbers = np.array(ids if self.rowid else range(position + 1, position + len(rows) + 1), np.int64)
            position += len(rows)
            columns = {name: _sqlite_column([r[k + 1] for r in rows]) for k, name in enumerate(names)}
            table = pa.table(columns)
            table, numbers, rejects = _drop_undecodable(table, numbers, headers, self.label, "utf-8", True)
            yield Batch(typed_columns(table, self.facts), self.label, numbers, headers, rejects, len(rows))
        self.connection.close()

    def described(self) -> dict[str, str]:
        return {"format": "sqlite", "table": self.table}


def _sqlite_column(values: list) -> pa.Array:
    """SQLite's dynamic types, as text: 1 and '1' alike, the way a CSV cell would read.

    SQLite has no boolean type (0/1 integers stand for them) and a column may mix types, so
    every value goes to the scorer as its text, which it parses as for a CSV file. Bytes stay
    as they are until the UTF-8 check.
    """
    out = [v if v is None or isinstance(v, bytes) else str(v).encode() for v in values]
    return pa.array(out, pa.binary()).view(pa.string())


# --- the registry ---------------------------------------------------------------------------


class Registry:
    """One registry: a file, an SQLite table, an Excel sheet, a folder of them, or a PostgreSQL
    table or query (a ``postgresql://`` URL: engine/sources/_postgres.py), read batch by batch.

    ``table`` is the SQLite table, and for a workbook the sheet unless ``sheet`` says (so that
    callers that know only ``table``, like the case table's, read sheets too); a sheet is a
    name or a position from 1. ``recurse``: a folder's subfolders are read too.
    """

    def __init__(self, path: str | os.PathLike, resolver: ColumnResolver, *, encoding: str | None = None,
                 table: str | None = None, batch_rows: int = DEFAULT_BATCH_ROWS, sheet: str | None = None,
                 recurse: bool = True):
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
        self.path = as_location(path)
        self.readers = []
        from ._unset_rollups import may_be_absent

        self.absent = may_be_absent(resolver.facts, resolver.needed)  # columns a file may leave out
        if isinstance(self.path, PostgresUrl):
            from .sources._postgres import PostgresSource

            if table is not None or sheet is not None:
                raise SourceError(f"{self.path}: --table and --sheet are for files; the URL names its table "
                                  "(?table=NAME) or query (?query=SELECT ...)")

            self.files, self.skipped = [], ()
            self.readers.append(PostgresSource(self.path, resolver, batch_rows=batch_rows))
            return
        listing = list_registry(path, table, recurse=recurse)
        self.files = list(listing.files)
        self.skipped: tuple[Skipped, ...] = listing.skipped
        for k, (file, file_table) in enumerate(self.files):
            suffix = file.suffix.lower()
            if suffix in EXCEL_SUFFIXES:
                from .sources._excel import ExcelFile

                reader = ExcelFile(file, sheet if sheet is not None else file_table, resolver, batch_rows=batch_rows)
                self.readers.append(reader)
                self.files[k] = (file, reader.sheet)  # the sheet read is part of the input's fingerprint
            elif file_table is not None or suffix in SQLITE_SUFFIXES:
                self.readers.append(SqliteTable(file, file_table, resolver, batch_rows=batch_rows))
            elif suffix in PARQUET_SUFFIXES:
                self.readers.append(ParquetFile(file, resolver, batch_rows=batch_rows))
            elif suffix in CSV_SUFFIXES:
                self.readers.append(CsvFile(file, resolver, encoding=encoding, batch_rows=batch_rows))
            else:
                raise SourceError(f"{file}: unknown format; expected .csv, .parquet, .sqlite or .xlsx/.xls")

    @property
    def estimated_rows(self) -> int:
        return sum(reader.estimated_rows for reader in self.readers)

    @property
    def encodings(self) -> dict[str, str]:
        return {r.label: r.encoding for r in self.readers if isinstance(r, CsvFile)}

    def described(self) -> list[dict[str, str]]:
        """How each file was read (format, encoding and why, separator, sheet), in order."""
        return [{"source": reader.label, **reader.described()} for reader in self.readers]

    @property
    def warnings(self) -> list[str]:
        """What the run's summary must say about the reading: files skipped that may be data,
        lines whose encoding disagrees with the file's."""
        out = [f"{s.path}: not read, {s.why}" for s in self.skipped if s.warn]
        out += [f"{r.label}: {r.decision.warning}" for r in self.readers
                if isinstance(r, CsvFile) and r.decision.warning]
        return out

    def fingerprint(self) -> str:
        if isinstance(self.path, PostgresUrl):
            return self.readers[0].fingerprint()
        return fingerprint(self.files, self.path)

    def stat_fingerprint(self) -> str:
        if isinstance(self.path, PostgresUrl):
            return self.readers[0].stat_fingerprint()
        return stat_fingerprint(self.files, self.path)

    def batches(self) -> Iterator[Batch]:
        from ._unset_rollups import with_absent

        for reader in self.readers:
            for batch in reader.batches():
                if self.absent:  # every batch has every needed column, some all empty
                    batch.table = with_absent(batch.table, self.absent)
                yield batch


__all__ = [
    "DEFAULT_BATCH_ROWS", "Batch", "ColumnResolver", "MissingColumnError", "Registry", "Reject",
    "SourceError", "detect_encoding", "fingerprint", "hash_ahead", "header_table", "normalize_header",
    "read_alias_file", "stat_fingerprint",
]
