"""One enterprise, one row: a key written on several rows of a table whose key is unique.

A kind of record declares its key in the fact catalogue (``key: uscc`` for the enterprise
registry; ``key: [assessed_district, assessment_year]`` for a kind whose rows are one per
district and year: :class:`RecordKey`), and every table of a kind is held to it. Several cases per enterprise are normal in the case table, but the registry holds
an enterprise once: three rows of one USCC billed three times charged a district 7,000,000
yuan instead of 1,000,000 plus one case. What a repeated key means is the run's choice
(``ecorules run --duplicates``):

- ``reject`` (the default): the first row of a key is the enterprise's; every later row is a
  reject naming the first (row and file) — the registry must be corrected at its source;
- ``last``: the last row is the enterprise's (a registry that appends corrections); every
  earlier row is a reject naming it;
- ``sum``: the rows are parts of one enterprise (a registry assembled from several offices'
  lists): their counts add up, and every other fact the policies read must agree, or all the
  rows of the key are rejects saying which fact differs (engine/_duplicate_sum.py).

Keys are compared as the ledger writes them (:func:`canonical_keys`): surrounding blanks
dropped, full-width characters as their ASCII forms (NFKC), as ``rules._records`` reads them.
A row whose key is not valid is rejected for that and is nobody's duplicate.

**Under ``reject``, a USCC key is checked as the rows come** (engine/_seen_keys.py): a row is
a duplicate when its key was met on an earlier row, which the scoring pass knows. A filter
of fixed size says which keys are certainly new (scored at once); the rows it may have met
are held aside (in a temporary file) and decided at the end against the exact keys of every
row, which the run writes to disk as it reads: a duplicate's reject names its first row, a
row held by a false positive is scored then. Memory stays flat however many rows there are.
The rest of this docstring is about ``last`` and ``sum`` and other keys.

**Why a first pass over the key column, not detection at the end.** Rows of one key may lie
far apart (the 7th and the 29,000,000th): a streaming run has scored, written and summed the
first long before it meets the second. Undoing then means removing findings from chunks
already handed to SQLite, list entries and district totals, and ``last`` would undo the
first row's findings every time. Reading the key column alone first (one column of a Parquet
file; a parse without conversions for CSV) decides every row before any is scored, so each
row is scored or rejected once and ``rows in = rows scored + rows rejected`` holds at every
batch. Memory: the first pass keeps a 64-bit digest per row, up to 4,194,304 of them (32 MiB)
in memory, sorted in place to find the digests seen twice; beyond that they go to 64
temporary files by their top bits, each sorted on its own at the end (:class:`_Digests`),
so that the pass's memory stays flat however many rows there are. Digests are not
trusted: only rows whose digest repeats are compared by their exact key, in the second pass
(``reject``) or in a short extra pass over those rows (``last``, ``sum``), so a digest
collision costs a comparison, never a wrong reject.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules import Fact, Kind, RecordError
from ecorules.rules._arrow import (
    bools,
    distinct_sorted,
    from_bools,
    from_numbers,
    numbers,
    plain_array,
    string_buffers,
)
from ecorules.rules._records import coerce
from ecorules.rules._uscc import uscc_problems

from ._duplicate_sum import Summing
from ._scored import reason_class
from ._seen_keys import SeenUsccs
from ._sources import Batch, Reject
from .sources._types import column_mark, without_rows

log = logging.getLogger("ecorules.duplicates")

POLICIES = ("reject", "last", "sum")
_TOP_BITS = 20
_IN_MEMORY = 1 << 22  # digests of the first pass kept in memory (32 MiB); more go to files
_PART_BITS = 6
_PARTS = 1 << _PART_BITS
# MurmurHash3's 64-bit finaliser: a bijection of 64 bits in which every input bit reaches every output bit
_FMIX = (np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
# tests only: keep this many top bits of each digest (environment variable, read where the digests
# are made, on a Spark or Dask worker too), so that distinct keys share digests as a registry of
# billions of rows would; unset, the whole 64 bits
DIGEST_BITS_VARIABLE = "ECORULES_TEST_DIGEST_BITS"


# --- keys as the ledger writes them ---------------------------------------------------------


def canonical_keys(fact: Fact, column: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """The key column with every valid key in the form the ledger writes, and which rows hold
    a valid key. Valid keys already in that form (nearly all) are left as they are."""
    column = plain_array(column)
    n = len(column)
    if fact.format == "uscc" and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        valid = uscc_problems(column) == 0
        odd = np.flatnonzero(~valid & ~bools(column.is_null()))
        if odd.size:
            # only a code with blanks around it or non-ASCII characters can become valid by
            # being read as rules._records reads it; a wrong check character stays wrong
            texts = column.take(from_numbers(odd))
            fixable = ~bools(pc.string_is_ascii(texts)) | (
                numbers(pc.utf8_length(pc.utf8_trim_whitespace(texts))) != numbers(pc.utf8_length(texts)))
            odd = odd[fixable]
        if not odd.size:
            return column, valid
        fixed = [_canonical(fact, text) for text in column.take(from_numbers(odd)).to_pylist()]
        changed = np.array([value is not None for value in fixed], bool)
        if not changed.any():
            return column, valid
        rows = odd[changed]
        valid[rows] = True
        mask = np.zeros(n, bool)
        mask[rows] = True
        replacements = pa.array([value for value in fixed if value is not None], column.type)
        return pc.replace_with_mask(column, from_bools(mask), replacements), valid
    # other keys (a district, a section id) are in small tables: each distinct value decided once
    values = column.to_pylist()
    decided: dict = {}
    out = [decided[v] if v in decided else decided.setdefault(v, _canonical(fact, v)) for v in values]
    valid = np.array([value is not None for value in out], bool)
    if not (pa.types.is_string(column.type) and any(c is not None and c != v for c, v in zip(out, values, strict=True))):
        return column, valid
    # a valid key as the ledger writes it; an invalid one as written, for its reject to show
    return pa.array([c if c is not None else v for c, v in zip(out, values, strict=True)], pa.string()), valid


def _canonical(fact: Fact, raw) -> str | None:
    """The key as the ledger writes it (as rules._records reads it: trimmed, a USCC in
    ASCII), or None when it is not a valid key (the scorer rejects it with its reason)."""
    try:
        value = coerce(fact, raw)
    except RecordError:
        return None
    return None if value is None else str(value)


@attrs.frozen
class RecordKey:
    """The facts that identify one record of a kind: one (uscc, case_id) or several together
    (a district and a year: ``key: [assessed_district, assessment_year]`` in the catalogue).

    A key of several facts is compared as one text, the JSON list of its canonical values, so
    that the first pass, the digests and the rejects work on it as on a key of one fact."""

    facts: tuple[Fact, ...]

    @property
    def name(self) -> str:
        return ", ".join(fact.name for fact in self.facts)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(fact.name for fact in self.facts)

    @property
    def digest_fact(self) -> Fact:
        """The fact whose digest path the key takes (a USCC's: bytes mixed in numpy)."""
        return self.facts[0]

    def read(self, table: pa.Table) -> tuple[pa.Array, np.ndarray, dict[str, pa.Array]]:
        """(the key of each row, which rows hold a valid one, each key column in the form the
        ledger writes)."""
        if len(self.facts) == 1:
            fact = self.facts[0]
            keys, valid = canonical_keys(fact, table[fact.name])
            return keys, valid, {fact.name: keys}
        columns, valid = {}, np.ones(table.num_rows, bool)
        for fact in self.facts:
            column, ok = canonical_keys(fact, table[fact.name])
            columns[fact.name] = column
            valid &= ok
        texts = [[None if v is None else str(v) for v in column.to_pylist()] for column in columns.values()]
        joined = [json.dumps(list(values), ensure_ascii=False) for values in zip(*texts, strict=True)]
        return pa.array(joined, pa.string()), valid, columns

    def shown(self, key: str) -> str:
        """A key as a reject quotes it: '91410100MA5AH1DH20', or ('金水区', '2012')."""
        if len(self.facts) == 1:
            return repr(key)
        return "(" + ", ".join(repr(value) for value in json.loads(key)) + ")"

    def value(self, key: str) -> str:
        """A key as the reject's value: as written, or the values joined."""
        return key if len(self.facts) == 1 else ", ".join(str(value) for value in json.loads(key))


def as_key(key: Fact | RecordKey | None) -> RecordKey | None:
    return RecordKey((key,)) if isinstance(key, Fact) else key


def digests(fact: Fact, keys: pa.Array, valid: np.ndarray) -> np.ndarray:
    """A 64-bit digest of each valid canonical key (rows without a valid key: not returned).

    USCCs (18 bytes each) are mixed from their bytes in numpy, a word of 8 bytes at a time,
    each word folded into the finalised digest of the words before it: each step a bijection,
    so two keys differing in one word never share a digest, and keys differing in several
    share one by chance alone (1 in 2**64). (A sum of the words' products was weaker: keys
    differing only in the top byte of two words shared one 1 time in 256, and the bench's
    30 M rows held such a pair.) Other keys go through blake2b."""
    picked = keys.filter(from_bools(valid)) if not valid.all() else keys
    if not len(picked):
        return np.zeros(0, np.uint64)
    if fact.format == "uscc":
        offsets, data = string_buffers(picked)
        data = data[offsets[0] : offsets[-1]]
        if data.size == 18 * len(picked):  # valid USCCs are 18 ASCII bytes
            wide = np.zeros((len(picked), 24), np.uint8)
            wide[:, :18] = data.reshape(-1, 18)
            words = wide.view(np.uint64)
            mixed = words[:, 0].copy()
            spare = np.empty_like(mixed)
            _finalised(mixed, spare)
            mixed ^= words[:, 1]
            _finalised(mixed, spare)
            mixed ^= words[:, 2]
            return _narrowed(_finalised(mixed, spare))
    return _narrowed(np.fromiter(
        (int.from_bytes(hashlib.blake2b(str(key).encode(), digest_size=8).digest(), "little")
         for key in picked.to_pylist()),
        np.uint64, len(picked),
    ))


def _finalised(h: np.ndarray, spare: np.ndarray) -> np.ndarray:
    """``h`` through MurmurHash3's finaliser, in place (``spare``: a scratch array of its size)."""
    shift, first, second = _FMIX
    np.right_shift(h, shift, out=spare)
    h ^= spare
    h *= first
    np.right_shift(h, shift, out=spare)
    h ^= spare
    h *= second
    np.right_shift(h, shift, out=spare)
    h ^= spare
    return h


def _narrowed(found: np.ndarray) -> np.ndarray:
    """``found`` with its low bits cleared where a test asks for fewer (DIGEST_BITS_VARIABLE)."""
    bits = os.environ.get(DIGEST_BITS_VARIABLE)
    if bits:
        found &= ~np.uint64((1 << (64 - int(bits))) - 1)
    return found


# --- the first pass -------------------------------------------------------------------------


@attrs.frozen
class KeyCensus:
    """What the first pass learnt: the digests that more than one row has (sorted), and for
    ``last`` and ``sum``, the rows of each key whose digest repeats."""

    repeated: np.ndarray  # uint64, sorted
    rows: int  # rows read
    rows_of: dict = attrs.field(factory=dict)  # key -> [(source, row), ...] in file order
    # whether some valid key was written otherwise than in its canonical form (spaces around a
    # USCC, full-width characters): None where not known (a census made elsewhere)
    rewrites: bool | None = None
    # a bit per value of a digest's top 20 bits: set where a repeated digest has them. Most
    # rows miss it, so only a few go on to the binary search (10x faster than searching all)
    _top: np.ndarray = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        top = np.zeros(1 << _TOP_BITS, bool)
        top[(self.repeated >> np.uint64(64 - _TOP_BITS)).astype(np.int64)] = True
        object.__setattr__(self, "_top", top)

    def suspects(self, values: np.ndarray) -> np.ndarray:
        """Which of ``values`` (digests) are repeated ones."""
        if not self.repeated.size or not values.size:
            return np.zeros(values.size, bool)
        out = self._top[(values >> np.uint64(64 - _TOP_BITS)).astype(np.int64)]
        maybe = np.flatnonzero(out)
        if maybe.size:
            at = np.searchsorted(self.repeated, values[maybe]).clip(max=self.repeated.size - 1)
            out[maybe] = self.repeated[at] == values[maybe]
        return out


class _Digests:
    """The digests of the first pass: in memory up to ``_IN_MEMORY`` of them, then in
    ``_PARTS`` temporary files by their top bits (a digest repeats within its file only),
    unlinked from the start."""

    def __init__(self, estimated_rows: int = 0):
        self.buffer = np.empty(min(max(estimated_rows + estimated_rows // 16, 1024), _IN_MEMORY), np.uint64)
        self.filled = 0
        self.parts: list | None = None  # the files, once the digests outgrow the buffer

    def __enter__(self) -> _Digests:
        return self

    def __exit__(self, *_) -> None:
        for part in self.parts or ():
            part.close()
        self.parts = None

    def add(self, found: np.ndarray) -> None:
        while found.size:
            if self.filled == self.buffer.size and self.buffer.size < _IN_MEMORY:  # an estimate too low (CSV)
                grown = np.empty(min(self.buffer.size * 2, _IN_MEMORY), np.uint64)
                grown[: self.filled] = self.buffer[: self.filled]
                self.buffer = grown
            if self.filled == self.buffer.size:
                self._spill()
            taken = min(found.size, self.buffer.size - self.filled)
            self.buffer[self.filled : self.filled + taken] = found[:taken]
            self.filled += taken
            found = found[taken:]

    def _spill(self) -> None:
        if self.parts is None:
            self.parts = [tempfile.TemporaryFile(prefix="ecorules-digests-") for _ in range(_PARTS)]
        held = self.buffer[: self.filled]
        held.sort()
        bounds = np.searchsorted(held, np.arange(_PARTS + 1, dtype=np.uint64) << np.uint64(64 - _PART_BITS))
        bounds[-1] = held.size
        for part, (start, end) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)):
            self.parts[part].write(held[start:end].view(np.uint8))
        self.filled = 0

    def repeated(self) -> np.ndarray:
        """The digests added more than once, sorted."""
        if self.parts is None:
            return repeated_of(self.buffer[: self.filled])
        self._spill()
        self.buffer = np.empty(0, np.uint64)
        out = []
        for part in self.parts:
            part.seek(0)
            out.append(repeated_of(np.frombuffer(part.read(), np.uint64).copy()))
        return np.concatenate(out)


def take_census(fact: Fact | RecordKey, batches: Callable[[], Iterator[Batch]], policy: str,
                estimated_rows: int = 0) -> KeyCensus:
    """Read the key columns of every batch (``batches()`` yields them under the facts' names)."""
    key = as_key(fact)
    rows = 0
    rewrites = False
    with _Digests(estimated_rows) as found_so_far:
        for batch in batches():
            rows += batch.table.num_rows
            found, rewritten = batch_digests(key, batch.table)
            rewrites = rewrites or rewritten
            found_so_far.add(found)
        repeated = found_so_far.repeated()
    census = KeyCensus(repeated, rows, rewrites=rewrites)
    if policy in ("last", "sum") and repeated.size:
        census = KeyCensus(repeated, rows, _rows_of(key, batches, census), rewrites=rewrites)
    log.info("%s: %s rows, %s digests repeated", key.name, f"{rows:,}", f"{repeated.size:,}")
    return census


def _rows_of(key: RecordKey, batches: Callable[[], Iterator[Batch]], census: KeyCensus) -> dict:
    """The rows of every key whose digest repeats (an extra pass over those rows only)."""
    rows_of: dict = {}
    for batch in batches():
        for value, source, row in suspects_in(key, census, batch):
            rows_of.setdefault(value, []).append((source, row))
    return rows_of


# --- the pieces of the first pass, for a census taken where the data lies (engine/distributed/)


def batch_digests(key: RecordKey, table: pa.Table) -> tuple[np.ndarray, bool]:
    """The digests of a table's valid keys, and whether some valid key was written otherwise
    than in its canonical form."""
    keys, valid, canonical = key.read(table)
    return digests(key.digest_fact, keys, valid), any(column is not table[name] for name, column in canonical.items())


def repeated_of(found: np.ndarray) -> np.ndarray:
    """The digests that occur more than once in ``found`` (sorted in place), sorted."""
    found.sort()
    return distinct_sorted(found[1:][found[1:] == found[:-1]]) if found.size > 1 else np.zeros(0, np.uint64)


def suspects_in(key: RecordKey, census: KeyCensus, batch: Batch) -> list[tuple]:
    """(key, source, row) of the batch's rows whose digest is a repeated one, in its order:
    to be compared by their exact key."""
    keys, valid, _ = key.read(batch.table)
    hit = np.flatnonzero(valid)[census.suspects(digests(key.digest_fact, keys, valid))]
    return [(value, batch.source, int(batch.rows[row]))
            for row, value in zip(hit.tolist(), keys.take(from_numbers(hit)).to_pylist(), strict=True)]


# --- the second pass ------------------------------------------------------------------------


@attrs.frozen
class _Held:
    """Rows of one batch held to the end: where their table lies in the held file, their file,
    rows, headers and checked columns, and their keys (mix and place, engine/_seen_keys.py)."""

    offset: int
    source: str
    rows: np.ndarray
    headers: dict
    checked: frozenset
    mixed: np.ndarray
    places: np.ndarray


@attrs.frozen
class _Decided:
    """The held rows of one batch, decided: those to score (``table``, ``rows``) and the
    rejects of the others; ``rows_in`` all of them."""

    source: str
    headers: dict
    checked: frozenset
    rows_in: int
    table: pa.Table
    rows: np.ndarray
    rejects: list

    def joins(self, gathered: list[_Decided], largest: int) -> bool:
        """Whether these rows go into the batch ``gathered``: rows of the same file, read the
        same way, and not more rows than the largest batch read in all."""
        first = gathered[0]
        return (self.source == first.source and self.headers == first.headers and self.table.schema.equals(first.table.schema)
                and sum(part.rows_in for part in gathered) + self.rows_in <= max(largest, 1))


class DuplicateFilter:
    """Drops the rows of a repeated key that are not the enterprise's from each batch, as
    rejects naming the row that is (``sum``: keeps them aside for :meth:`end`); also
    writes every valid key in its canonical form."""

    def __init__(self, fact: Fact | RecordKey | None, census: KeyCensus | None, policy: str = "reject", facts=None,
                 record: str = "enterprise", unchecked: tuple[str, ...] = (), seen: SeenUsccs | None = None):
        if policy not in POLICIES:
            raise ValueError(f"duplicates policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        self.key, self.census, self.policy = as_key(fact), census, policy
        self.record = record  # what one row is, for the rejects: "one enterprise, one row"
        # key facts the policies do not read, so that the scorer never checks them: a row
        # whose value there is not valid is rejected here (else it would be nobody's duplicate)
        self.unchecked = tuple(f for f in self.key.facts if f.name in unchecked) if self.key is not None else ()
        self.first: dict = {}  # key -> (source, row) of its first row (``reject``)
        self.rejected = 0
        self.summing = Summing(self.key, facts or {}) if policy == "sum" else None
        # ``reject`` without a first pass (:func:`streamed`): the keys met so far, and the rows
        # they may have met before, held aside to the end (their tables in ``_held_file``)
        self.seen = seen
        self.held: list[_Held] = []
        self._held_file = None
        self._largest = 0  # rows of the largest batch come: the bound of a batch of held rows
        # whether the key is one USCC: its duplicates' reason class is one per pair of files (_reason_class)
        self._uscc_key = (self.key is not None and len(self.key.facts) == 1
                          and self.key.digest_fact.format == "uscc")
        self._classes: dict[tuple[str, str], str] = {}  # (file, its first row's file) -> reason class

    def filtered(self, batches: Iterable[Batch]) -> Iterator[Batch]:
        """:meth:`apply` on each batch, then (``reject`` as the rows come) the rows held,
        decided as soon as the last batch is through the filter: in the thread that iterates
        this (the run's reading thread), so that the check of the held keys against the spill
        overlaps the scoring of the last batches instead of following it."""
        for batch in batches:
            yield self.apply(batch)
        yield from self._decided()

    def end(self) -> tuple[list[Batch], Counter]:
        """What the filter holds when the rows have all come: the batches still to score
        (``reject``: the rows held, gathered per file, :meth:`_decided`, unless
        :meth:`filtered` gave them already; ``sum``: the merged enterprises and the rows they
        reject, one batch per file), and per file the rows merged into others (scored with them)."""
        merged, merged_away = self.summing.finish() if self.summing is not None else ([], Counter())
        return itertools.chain(self._decided(), merged), merged_away

    def _reject(self, source: str, row: int, header: str, key: str, kept: tuple[str, int]) -> Reject:
        """Row ``row`` of ``source``, of key ``key``, rejected: the enterprise's row is ``kept``."""
        if self.policy == "last":
            reason = (f"the {self.record}'s row is the last, row {kept[1]} of {kept[0]} (--duplicates last)")
        else:
            reason = f"first at row {kept[1]} of {kept[0]} (one {self.record}, one row)"
        reason = f"duplicate {self.key.name} {self.key.shown(key)}: {reason}"
        return Reject(source, row, header, self.key.value(key), reason, self._reason_class(source, kept[0], key, reason))

    def _reason_class(self, source: str, first_source: str, key: str, reason: str) -> str | None:
        """The reason's class (engine/_scored.reason_class), worked out once per pair of files
        where the key is a USCC: a valid code is quoted whole (the class writes '…' for it)
        and the rows are plain numbers (N), so every such reject of the pair has the class of
        the first. The class of each reason cost two regular expressions over it, and each
        reason, naming its key and rows, is distinct. None for other keys (worked out later)."""
        if not (self._uscc_key and len(key) == 18 and key.isascii() and key.isalnum()):
            return None
        pair = (source, first_source)
        known = self._classes.get(pair)
        if known is None:
            known = self._classes[pair] = reason_class(reason)
        return known

    def apply(self, batch: Batch) -> Batch:
        if self.key is None:  # a kind without a declared key
            return batch
        names = self.key.names
        self._largest = max(self._largest, batch.rows_in, batch.table.num_rows)
        if not batch.table.num_rows or not all(name in batch.table.column_names for name in names):
            return batch
        census = self.census
        if census is not None and not census.repeated.size and census.rewrites is False and not self.unchecked:
            return batch  # the first pass found every key once and in its canonical form already
        keys, valid, canonical = self.key.read(batch.table)
        for name, column in canonical.items():
            if column is not batch.table[name]:
                batch.table = batch.table.set_column(batch.table.column_names.index(name), name, column)
        if self.unchecked:
            batch = self._unchecked_rejected(batch, valid)
            keys, valid, _ = self.key.read(batch.table)
        if self.seen is not None:
            return self._streamed(batch, keys, valid)
        if self.census is None or not self.census.repeated.size:
            return batch
        at = np.flatnonzero(valid)
        hit = at[self.census.suspects(digests(self.key.digest_fact, keys, valid))]
        if not hit.size:
            return batch
        header = batch.headers.get(names[0], names[0])
        drop, rejects = [], []
        for row, key in zip(hit.tolist(), keys.take(from_numbers(hit)).to_pylist(), strict=True):
            here = (batch.source, int(batch.rows[row]))
            if self.policy == "sum":
                if len(self.census.rows_of.get(key, ())) > 1:
                    drop.append(row)
                    self.summing.keep(key, batch, row)
                continue
            if self.policy == "last":
                kept = self.census.rows_of.get(key, [here])[-1]
            else:
                kept = self.first.setdefault(key, here)
            if kept == here:
                continue
            drop.append(row)
            rejects.append(self._reject(batch.source, here[1], header, key, kept))
        if not drop:
            return batch
        keep = np.ones(batch.table.num_rows, bool)
        keep[drop] = False
        self.rejected += len(rejects)
        batch.rows_in -= len(drop) - len(rejects)  # rows kept for summing: accounted by finish()
        batch.table = batch.table.filter(from_bools(keep))
        batch.rows = batch.rows[keep]
        batch.rejects = [*batch.rejects, *rejects]
        return batch

    def _streamed(self, batch: Batch, keys: pa.Array, valid: np.ndarray) -> Batch:
        """``reject`` as the rows come: a row whose USCC is certainly new is scored now; one
        whose USCC may have been met before is a reject now if its key's first row is known
        (a row of this batch the filter let pass, or named before), else held to the end
        (:meth:`_decided`: a first row in an earlier batch, or a false positive)."""
        if valid.all():  # every USCC passed both check characters: the scorer trusts them
            batch.checked = batch.checked | {self.key.name}
        held, mixed, places, passed = self.seen.met(keys, valid, batch.source, batch.rows)
        if not held.size:
            self._suspects(batch, valid)
            return batch
        texts = keys.take(from_numbers(held)).to_pylist()
        # the rows of held keys the filter let pass: each before every held row of its key
        for row, key in zip(passed.tolist(), keys.take(from_numbers(passed)).to_pylist(), strict=True):
            self.first.setdefault(key, (batch.source, int(batch.rows[row])))
        known = np.array([key in self.first for key in texts], bool)
        header = batch.headers.get(self.key.names[0], self.key.names[0])
        rejects = [self._reject(batch.source, int(batch.rows[row]), header, key, self.first[key])
                   for row, key, now in zip(held.tolist(), texts, known.tolist(), strict=True) if now]
        self.rejected += len(rejects)
        later = ~known
        if later.any():
            if self._held_file is None:
                self._held_file = tempfile.TemporaryFile(prefix="ecorules-held-")
            self._held_file.seek(0, os.SEEK_END)
            offset = self._held_file.tell()
            table = batch.table.take(from_numbers(held[later]))
            with pa.ipc.new_stream(pa.PythonFile(self._held_file, mode="w"), table.schema) as writer:
                writer.write_table(table)
            self.held.append(_Held(offset, batch.source, batch.rows[held[later]], dict(batch.headers), batch.checked,
                                   mixed[later], places[later]))
        keep = np.ones(batch.table.num_rows, bool)
        keep[held] = False
        batch.rows_in -= int(later.sum())  # accounted by the batch that decides them (_decided)
        batch.table = without_rows(batch.table, held, keep)  # (a filter copied every column for a few rows)
        batch.rows = batch.rows[keep]
        batch.rejects = [*batch.rejects, *rejects]
        self._suspects(batch, valid[keep])  # (a held row's key is valid: held ones were met)
        return batch

    def _suspects(self, batch: Batch, valid: np.ndarray) -> None:
        """The rows whose USCC did not pass the check that every other row passed (both check
        characters, as the scorer checks them), for the scorer to check only those: with 1% bad
        rows each batch has some, and checking every code of it again cost ~3% of such a run."""
        if not valid.all():
            name = self.key.name
            batch.suspects = {**batch.suspects, name: (np.flatnonzero(~valid), column_mark(batch.table[name]))}

    def _decided(self) -> Iterator[Batch]:
        """The rows held, gathered: each row that is its key's first (held by a false positive
        of the filter) to score, each other one a reject naming the first, found in one pass
        over the keys the run wrote (none in a run that held nothing). The rows held from the
        batches of one file make one batch, up to as many rows as the largest batch read (the
        memory of one batch), instead of one small batch per batch they came from: each batch
        scored costs a fixed time, which a few dozen false positives spread over every batch
        of a clean registry paid again and again."""
        try:
            if not self.held:
                return
            firsts = self.seen.first_places(np.concatenate([held.mixed for held in self.held]),
                                            np.concatenate([held.places for held in self.held]))
            done = 0
            gathered: list[_Decided] = []
            for held in self.held:
                first = firsts[done : done + held.rows.size]
                done += held.rows.size
                own = first == held.places
                self._held_file.seek(held.offset)
                with pa.ipc.open_stream(pa.PythonFile(self._held_file, mode="r")) as reader:
                    table = reader.read_all()
                header = held.headers.get(self.key.names[0], self.key.names[0])
                later = np.flatnonzero(~own)
                keys = self.key.read(table.take(from_numbers(later)))[0].to_pylist() if later.size else []
                rejects = [self._reject(held.source, int(held.rows[row]), header, key, self.seen.place(int(first[row])))
                           for row, key in zip(later.tolist(), keys, strict=True)]
                self.rejected += len(rejects)
                part = _Decided(held.source, held.headers, held.checked, held.rows.size, table.filter(from_bools(own)),
                                held.rows[own], rejects)
                if gathered and not part.joins(gathered, self._largest):
                    yield _gathered(gathered)
                    gathered = []
                gathered.append(part)
            if gathered:
                yield _gathered(gathered)
        finally:
            self.held = []
            if self._held_file is not None:
                self._held_file.close()
                self._held_file = None
            if self.seen is not None:
                self.seen.close()

    def _unchecked_rejected(self, batch: Batch, valid: np.ndarray) -> Batch:
        """``batch`` without its rows whose value in a key fact the scorer does not check is
        not valid, as rejects saying why (the checks of rules._records)."""
        bad = np.flatnonzero(~valid)
        rejects, drop = [], []
        for fact in self.unchecked:
            values = batch.table[fact.name].take(from_numbers(bad)).to_pylist() if bad.size else []
            for row, raw in zip(bad.tolist(), values, strict=True):
                try:
                    coerce(fact, raw)
                except RecordError as error:
                    if row not in drop:
                        drop.append(row)
                        header = batch.headers.get(fact.name, fact.name)
                        rejects.append(Reject(batch.source, int(batch.rows[row]), header,
                                              None if raw is None else str(raw), error.message))
        if not drop:
            return batch
        keep = np.ones(batch.table.num_rows, bool)
        keep[drop] = False
        batch.table = batch.table.filter(from_bools(keep))
        batch.rows = batch.rows[keep]
        batch.rejects = [*batch.rejects, *rejects]
        return batch


def _gathered(gathered: list[_Decided]) -> Batch:
    """One batch of the held rows of several batches of one file (:meth:`_Decided.joins`):
    the rows to score (false positives of the filter) and the rejects, in the order they came."""
    first = gathered[0]
    tables = [part.table for part in gathered]
    return Batch(pa.concat_tables(tables) if len(tables) > 1 else tables[0], first.source,
                 np.concatenate([part.rows for part in gathered]), first.headers,
                 [reject for part in gathered for reject in part.rejects], sum(part.rows_in for part in gathered),
                 frozenset.intersection(*(part.checked for part in gathered)))


def streamed(key: RecordKey | None, policy: str) -> bool:
    """Whether duplicates can be found while the rows are scored, without a first pass: under
    ``reject`` (a row is decided by the rows before it) for a USCC key (engine/_seen_keys.py
    holds those exactly in 8 bytes). Other keys are in small tables: the first pass is cheap."""
    return policy == "reject" and key is not None and len(key.facts) == 1 and key.facts[0].format == "uscc"


def unique_key(policies, domain: str) -> RecordKey | None:
    """The key of ``domain``'s kind, if the catalogue declares one (its rows are unique by it)."""
    kind = policies.kinds.get(domain)
    if kind is None or not all(name in policies.facts for name in kind.key_columns):
        return None
    facts = tuple(policies.facts[name] for name in kind.key_columns)
    if not all(fact.type.kind in (Kind.STRING, Kind.ENUM, Kind.INTEGER) for fact in facts):
        return None
    return RecordKey(facts)


__all__ = ["POLICIES", "DuplicateFilter", "KeyCensus", "RecordKey", "batch_digests", "canonical_keys", "digests",
           "repeated_of", "streamed", "suspects_in", "take_census", "unique_key"]
