"""The USCCs a run has met so far, in a fixed memory: duplicates found while reading.

Under ``--duplicates reject`` (the default) a row is a duplicate when its key was met on an
earlier row: a question about the rows already read, which the scoring pass can answer as it
goes, so the run does not read the registry twice (the first pass of engine/_duplicates.py
costs as much as the rest of a CSV run). ``last`` and ``sum`` still need that pass: they
decide a row by the rows after it.

**Exact codes.** A valid USCC carries 70 bits: two characters of 31 values (positions 1-2),
six digits (3-8, < 2**20), eight characters of 31 values (9-16, 31**8 < 2**40); positions 17
and 18 are check characters computed from the others. The 60 bits of positions 3-16 and the
low 4 bits of positions 1-2 make a 64-bit code; the remaining 6 bits are the set (in a real
registry nearly every code starts 91). Two valid codes are equal exactly when their (set,
code) are.

**A Bloom filter in memory, the keys on disk.** An exact set of the keys met grows with the
registry (a hash set of 8-byte codes took 10.7 bytes a row: 320 MB at 30,000,000 rows), and
issue 12 wants the run's memory flat from 10 to 30 million rows. So the run keeps:

- a Bloom filter of at most 64 MiB (one 64-bit word per key, 6 bits set in it; sized from the
  rows expected, 48 bits a row, so that it is at its largest from ~10 M rows on): a key it has
  not seen is certainly new, and that row is scored at once. A key it may have seen (met
  before, or a false positive: ~1e-4 of the rows at 10 M rows, ~3e-3 at 30 M) is *held*: not
  scored yet, decided at the end;
- every valid row's mixed code appended to a temporary file (8 bytes a row, written, never
  read back in a run where nothing was held), and its place (set, file, row) where it does
  not follow from the batch's first: the places of a batch whose valid rows follow one
  another in one set (a clean batch) are kept as its first place, the others written to a
  second file; at the end one pass over the codes finds, for each held key, the first row
  that holds it. A held row that is its key's first
  row was a false positive and is scored then; any other is a duplicate naming that first row.

No decision rests on a digest: the file holds the exact keys, so the rejects are the same as
an exact set's. The filter's test and insertion run in fastcalc's kernel, in order (a key
earlier in the same batch is met); without a built kernel, in numpy (~10x slower).
"""

from __future__ import annotations

import tempfile
from typing import IO

import numpy as np
import pyarrow as pa
from ecorules.rules._arrow import distinct_sorted, from_bools, string_buffers
from ecorules.rules._uscc import USCC_CHARSET

_VALUE = np.zeros(256, np.uint64)
_VALUE[np.frombuffer(USCC_CHARSET.encode(), np.uint8)] = np.arange(31, dtype=np.uint64)
_BYTE_VALUE = _VALUE.astype(np.uint8)
_REGION = 10 ** np.arange(5, -1, -1, dtype=np.uint64)  # positions 3-8: digits, their values are 0-9
_ORG = np.uint64(31) ** np.arange(7, -1, -1, dtype=np.uint64)  # positions 9-16, base 31
_MIX = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # folds the set into the code before the mix
_BITS_A_ROW = 48  # the filter's size for the rows expected: ~1e-4 false positives at that many rows
_MIN_WORDS, _MAX_WORDS = 1 << 13, 1 << 23  # 64 KiB .. 64 MiB
# a row's place in the spill: its set (6 bits), its file (18 bits, in the order met) and row (40 bits)
_SET_SHIFT, _SOURCE_SHIFT = 58, 40
_SOURCES, _ROWS = 1 << 18, 1 << 40
_READ_RECORDS = 1 << 20  # 2 x 8 MiB of the spill at a time
_TOP_BITS = 20  # the held keys' top bits, a table that lets nearly every record of the spill pass unsearched


_KERNEL: list = []  # [(uscc_set_codes, bloom_add)], or [None] without a built kernel


def _kernel():
    if not _KERNEL:
        try:
            from ecorules.fastcalc._kernel import bloom_add, uscc_set_codes
            _KERNEL.append((uscc_set_codes, bloom_add))
        except (ImportError, AttributeError):  # a source tree without the (current) kernel
            _KERNEL.append(None)
    return _KERNEL[0]


def uscc_codes(keys: pa.Array, valid: np.ndarray, kernel: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, set, code) of the rows of ``keys`` holding a valid USCC in its canonical form
    (18 ASCII bytes; ``valid`` from engine/_duplicates.canonical_keys)."""
    rows = np.flatnonzero(valid)
    if not rows.size:
        empty = np.zeros(0, np.uint64)
        return rows, empty.astype(np.uint16), empty
    picked = keys if rows.size == len(keys) else keys.filter(from_bools(valid))
    offsets, data = string_buffers(picked)
    data = data[offsets[0] : offsets[-1]]
    if data.size != 18 * rows.size:
        raise ValueError("a valid USCC is 18 ASCII characters")
    if kernel and _kernel() is not None:
        code, head = np.empty(rows.size, np.uint64), np.empty(rows.size, np.uint16)
        _kernel()[0](data.reshape(-1, 18), _BYTE_VALUE, code, head)
        return rows, head, code
    chars = _VALUE[data.reshape(-1, 18)[:, :16]]
    head = chars[:, 0] * np.uint64(31) + chars[:, 1]  # < 961
    code = (chars[:, 8:16] @ _ORG) | ((chars[:, 2:8] @ _REGION) << np.uint64(40)) | ((head & np.uint64(15)) << np.uint64(60))
    return rows, (head >> np.uint64(4)).astype(np.uint16), code


def key_mix(head: np.ndarray, code: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer of the code with its set folded in: for a given set, a bijection
    of the code (equal mixes of one set are equal codes), spread for the filter."""
    x = code ^ (head.astype(np.uint64) * _GOLDEN)
    x ^= x >> np.uint64(30)
    x *= _MIX[0]
    x ^= x >> np.uint64(27)
    x *= _MIX[1]
    x ^= x >> np.uint64(31)
    return x


def filter_words(expected_rows: int) -> int:
    """The filter's 64-bit words for ``expected_rows`` (unknown, 0: the largest)."""
    if expected_rows <= 0:
        return _MAX_WORDS
    words = _MIN_WORDS
    while words < expected_rows * _BITS_A_ROW // 64 and words < _MAX_WORDS:
        words *= 2
    return words


class KeyFilter:
    """A Bloom filter of (set, code) keys, one word a key (see the module's docstring)."""

    def __init__(self, words: int, kernel: bool = True):
        if words < 2 or words & (words - 1):
            raise ValueError(f"a key filter has a power of two (>= 2) of words, not {words}")
        self.words = np.zeros(words, np.uint64)
        self.shift = np.uint64(64 - (words.bit_length() - 1))
        self.kernel = _kernel()[1] if kernel and _kernel() is not None else None

    def add(self, head: np.ndarray, code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mix, maybe) of each key: ``maybe`` where it may have been added before (earlier in
        these keys included); all are in the filter after."""
        if self.kernel is not None:
            mixed, maybe = np.empty(code.size, np.uint64), np.empty(code.size, np.uint8)
            self.kernel(self.words, np.ascontiguousarray(code, np.uint64), np.ascontiguousarray(head, np.uint16),
                        mixed, maybe)
            return mixed, maybe.view(bool)
        mixed = key_mix(head, code)
        at = (mixed >> self.shift).astype(np.intp)
        mask = np.zeros(code.size, np.uint64)
        for k in range(6):
            mask |= np.uint64(1) << ((mixed >> np.uint64(6 * k)) & np.uint64(63))
        maybe = (self.words[at] & mask) == mask
        if code.size > 1:  # a key twice in these: the later one is met (a mix of another set too: held, decided exactly)
            _, first = np.unique(mixed, return_index=True)
            later = np.ones(code.size, bool)
            later[first] = False
            maybe |= later
        np.bitwise_or.at(self.words, at, mask)
        return mixed, maybe

    @property
    def nbytes(self) -> int:
        return self.words.nbytes


class SeenUsccs:
    """Every valid USCC met so far: a filter in memory, the keys and their rows on disk (see
    the module's docstring). :meth:`close` drops the file (unlinked from the start: a run
    killed midway leaves none)."""

    def __init__(self, expected_rows: int = 0, kernel: bool = True, words: int | None = None):
        self.kernel = kernel
        self.filter = KeyFilter(filter_words(expected_rows) if words is None else words, kernel)
        self.sources: dict[str, int] = {}
        self.names: list[str] = []  # the files, by their number in the places
        self.spill: tuple[IO[bytes], IO[bytes]] | None = None
        # a run of records per batch met: (its first record, its first place if its places are
        # consecutive, else the record of the places file where they were written)
        self._runs: list[tuple[int, int, int]] = []
        self._records = self._written_places = 0
        self._top: np.ndarray | None = None  # a bit per top bits of a mix, all clear between batches

    def add(self, keys: pa.Array, valid: np.ndarray, source: str, rows: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows (positions in ``keys``) whose USCC may have been met before (on an earlier
        row of this batch or of an earlier one), with their key's mix and their place (for
        :meth:`first_places`); every valid one is met after. ``rows``: the rows' numbers in ``source``."""
        return self.met(keys, valid, source, rows)[:3]

    def met(self, keys: pa.Array, valid: np.ndarray, source: str, rows: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`add`'s rows, mixes and places, and the rows of these keys the filter let pass
        whose key is one of the held rows' (a pass is a key's first row in the run): found by
        their exact (mix, set), not by comparing the texts of the whole batch."""
        at, head, code = uscc_codes(keys, valid, self.kernel)
        if not at.size:
            return at, code, code, at
        mixed, maybe = self.filter.add(head, code)
        del code
        places = self._places(head, source, np.asarray(rows)[at])
        self._spilled(mixed, places)
        hit = np.flatnonzero(maybe)
        if not hit.size:
            return at[hit], mixed[hit], places[hit], at[hit]
        near = self._passed_near(mixed, maybe, hit)
        if near.size:  # equal mixes of one set are equal keys
            held = set(zip(mixed[hit].tolist(), (places[hit] >> np.uint64(_SET_SHIFT)).tolist(), strict=True))
            same = [pair in held for pair in zip(mixed[near].tolist(), (places[near] >> np.uint64(_SET_SHIFT)).tolist(),
                                                  strict=True)]
            near = near[np.array(same, bool)]
        return at[hit], mixed[hit], places[hit], at[near]

    def _spilled(self, mixed: np.ndarray, places: np.ndarray) -> None:
        """The mixes written as they are (no copy); the places only where they are not
        consecutive. A clean batch's valid rows follow one another in one set (nearly every
        code starts 91, 92 or 93: one set), so its places are its first place plus a count:
        writing them all made the spill 16 bytes a row, and the writes' system time was most
        of what the filter cost beyond an exact set held in memory."""
        if self.spill is None:
            self.spill = (tempfile.TemporaryFile(prefix="ecorules-keys-"), tempfile.TemporaryFile(prefix="ecorules-places-"))
        self.spill[0].write(mixed.view(np.uint8))
        n, first = places.size, int(places[0])
        if int(places[-1]) - first == n - 1 and (n < 3 or bool((np.diff(places) == np.uint64(1)).all())):
            self._runs.append((self._records, first, -1))
        else:
            self._runs.append((self._records, 0, self._written_places))
            self.spill[1].write(places.view(np.uint8))
            self._written_places += n
        self._records += n

    def _places_of(self, records: np.ndarray) -> np.ndarray:
        """The places of the spill's ``records`` (ascending record numbers)."""
        starts = np.array([run[0] for run in self._runs], np.int64)
        run = np.searchsorted(starts, records, side="right") - 1
        within = records - starts[run]
        firsts = np.array([run[1] for run in self._runs], np.uint64)[run]
        written = np.array([run[2] for run in self._runs], np.int64)[run]
        out = firsts + within.astype(np.uint64)
        filed = np.flatnonzero(written >= 0)
        if filed.size:
            out[filed] = self._written(written[filed] + within[filed])
        return out

    def _written(self, positions: np.ndarray) -> np.ndarray:
        """The places file's records at ``positions`` (ascending), a stretch at a time."""
        out = np.empty(positions.size, np.uint64)
        stretch = np.empty(_READ_RECORDS, np.uint64)
        where, k = self.spill[1], 0
        while k < positions.size:
            first = int(positions[k])
            end = int(np.searchsorted(positions, first + _READ_RECORDS, side="left"))
            span = stretch[: int(positions[end - 1]) - first + 1]
            where.seek(8 * first)
            if where.readinto(span.view(np.uint8)) != 8 * span.size:
                raise OSError("the duplicate check's places file is shorter than its runs say")
            out[k:end] = span[positions[k:end] - first]
            k = end
        return out

    def _passed_near(self, mixed: np.ndarray, maybe: np.ndarray, hit: np.ndarray) -> np.ndarray:
        """The rows the filter let pass whose mix is one of the held rows' (``hit``)."""
        if hit.size <= 16:  # a few false positives: numpy compares with each (no sort of the batch)
            return np.flatnonzero(~maybe & np.isin(mixed, mixed[hit]))
        # many (a registry with repeated keys): their top bits first, as in first_places, so
        # that only a few rows are searched for; np.isin would sort the whole batch's mixes
        wanted = distinct_sorted(mixed[hit])
        if self._top is None:
            self._top = np.zeros(1 << _TOP_BITS, bool)
        tops = (wanted >> np.uint64(64 - _TOP_BITS)).astype(np.intp)
        self._top[tops] = True
        near = np.flatnonzero(self._top[(mixed >> np.uint64(64 - _TOP_BITS)).view(np.int64)])
        self._top[tops] = False
        near = near[~maybe[near]]
        at = np.searchsorted(wanted, mixed[near]).clip(max=wanted.size - 1)
        return near[wanted[at] == mixed[near]]

    def _places(self, head: np.ndarray, source: str, rows: np.ndarray) -> np.ndarray:
        index = self.sources.get(source)
        if index is None:
            index = self.sources[source] = len(self.names)
            self.names.append(source)
        if index >= _SOURCES or (rows.size and (int(rows.min()) < 0 or int(rows.max()) >= _ROWS)):
            raise ValueError(f"the duplicate check places at most {_SOURCES:,} files of {_ROWS:,} rows each")
        places = head.astype(np.uint64)  # in place from here: a batch's arrays are what the reading thread holds
        places <<= np.uint64(_SET_SHIFT)
        places |= np.uint64(index << _SOURCE_SHIFT)
        places |= rows.view(np.uint64) if rows.dtype == np.int64 else rows.astype(np.uint64)
        return places

    def place(self, place: int) -> tuple[str, int]:
        """(file, row) of a place."""
        return self.names[(place >> _SOURCE_SHIFT) & (_SOURCES - 1)], place & (_ROWS - 1)

    def first_places(self, mixed: np.ndarray, places: np.ndarray) -> np.ndarray:
        """The place of the first row holding each of the keys given by (``mixed``, the set in
        ``places``): one pass over the spill's mixes, whose records are in the order the rows
        came; the places only where a mix is one of the keys' (from the runs' first places, or
        the places file: a stretch here and there, not all of it)."""
        wanted = distinct_sorted(mixed)
        top = np.zeros(1 << _TOP_BITS, bool)
        top[(wanted >> np.uint64(64 - _TOP_BITS)).astype(np.intp)] = True
        shift = np.uint64(64 - _TOP_BITS)
        keys = self.spill[0]
        for file in self.spill:
            file.flush()
        keys.seek(0)
        values = np.empty(_READ_RECORDS, np.uint64)
        found_mixed, found_records = [], []
        read = 0  # records read before this chunk
        while got := keys.readinto(values.view(np.uint8)) // 8:
            chunk = values[:got]
            near = np.flatnonzero(top[(chunk >> shift).view(np.int64)])  # (< 2**20: as indices, no cast)
            if near.size:
                candidates = chunk[near]
                at = np.searchsorted(wanted, candidates).clip(max=wanted.size - 1)
                hit = near[wanted[at] == candidates]
                if hit.size:
                    found_mixed.append(chunk[hit])
                    found_records.append(hit + read)
            read += got
        if read != self._records:
            raise OSError("the duplicate check's keys file is shorter than the keys met")
        found_places = self._places_of(np.concatenate(found_records)) if found_records else np.zeros(0, np.uint64)
        for file in self.spill:
            file.seek(0, 2)
        first: dict[tuple[int, int], int] = {}
        for value, place in zip(np.concatenate(found_mixed).tolist(), found_places.tolist(), strict=True):
            first.setdefault((value, place >> _SET_SHIFT), place)
        return np.array([first[value, place >> _SET_SHIFT] for value, place in zip(mixed.tolist(), places.tolist(),
                                                                                    strict=True)], np.uint64)

    def close(self) -> None:
        for file in self.spill or ():
            file.close()
        self.spill = None
        self._runs, self._records, self._written_places = [], 0, 0

    @property
    def nbytes(self) -> int:
        return self.filter.nbytes


__all__ = ["KeyFilter", "SeenUsccs", "filter_words", "key_mix", "uscc_codes"]
