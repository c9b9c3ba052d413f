# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Loops of the case stage (engine/cases/) that numpy and Arrow can only do in many passes.

- ``encode_texts``: a string column coded by its distinct texts, in the order of their first
  row. Arrow's ``dictionary_encode`` hashes every text and compares it with the distinct
  text it stores: at 2 M cases of 200 K enterprises 0.33 CPU-s for the uscc column, ~160 ns
  a row. Short ASCII texts (a USCC, a case_id, an act_id as written: at most 18 bytes, no
  NUL) are here packed exactly into two 64-bit words, 7 bits a byte, and looked up by those
  words alone: one probe of a table in the caches, no second read of the text. Other texts
  (longer, or with other characters) go to a second table keyed by their bytes. A text is
  in exactly one table (packing is a function of the text), so equal texts get one code.
- ``TextCodes``, ``local_codes``: ``encode_texts`` across the batches of the case table (the
  spill codes each enterprise key once), and a partition's codes renumbered from those.
- ``text_hashes``: the hash that spills a case to its enterprise's bucket, in one pass.
- ``HashSet``: the distinct hashes of the table's enterprise keys, a batch at a time.
- ``bucket_places``, ``scatter_texts``, ``scatter_bits``: a batch of cases grouped by the
  bucket it is spilled to, each column scattered in one sequential read (``_spill.py``).
- ``may_trim``: whether trimming a string column may change it (a pass over two bytes a text).
- ``ascending_texts``: whether a string column is strictly ascending (a case table in case_id order).
- ``text_index``, ``text_positions``: a string column's rows by text, built once and looked
  up many times (the enterprises' usccs, for each partition's cases and each registry batch).
- ``number_positions``: the place of each of many numbers among distinct ones (this run's
  fines' acts among the acts of the fines earlier runs imposed: one act one fine across runs).
- ``supersede_part``: one act one fine (行政处罚法 art 29) over the fired fines of a part of the
  cases, in one pass over the fired rows, a radix sort of the shared acts' fines by act and
  one pass over them, instead of a dozen numpy passes (flatnonzero per slot, concatenations,
  ``ufunc.at`` reductions) over arrays of the part's size, each allocated and zeroed afresh.
- ``superseded_texts``: a fine slot's ``superseded_by`` ("policy rule (case_id)" per fired
  row, null where imposed) written straight into the buffers of an Arrow string array, the
  winners' case_ids asked for ahead of their copy (each is a cache miss).
- ``lighter_law``: 行政处罚法 art 37's choice of the lighter later law, per statute and case,
  over the outputs of one kernel pass under several laws, and where each version's outputs
  count (``engine/cases/_law.py``).
- ``enterprise_rollup``: a roll-up onto the enterprises of one partition, written in place
  into the run's arrays in two passes over the partition's cases.
- ``window_bounds``: the sort of a part's cases by (enterprise, day), a radix sort of
  (enterprise, day) keys, and per sorted case the bounds of its window among its
  enterprise's cases (a binary search within the enterprise's few cases, not within the
  whole part).

Each function does what the numpy code of engine/cases/ it replaced did, result for result:
the tests compare them on random tables (tests/engine/test_case_kernels.py).
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcmp, memcpy, memset

import numpy as np

cdef extern from *:
    # a hint to load the cache line of an address about to be read: the acts and the texts'
    # table are read in the order of the rows, at random places, each load a miss otherwise
    void __builtin_prefetch(const void* address) noexcept nogil

cdef enum:
    AHEAD = 16  # rows looked ahead: ~ the loads a core keeps in flight

ctypedef fused offset_t:
    int32_t
    int64_t

# --- encode_texts -----------------------------------------------------------------------

cdef uint64_t PAD[17][2]  # per length up to 16: the bytes at and past it 0x01, those before 0


cdef void _pads() noexcept nogil:
    # built from bytes, so that a word's bytes are the text's in either byte order
    cdef uint8_t pattern[16]
    cdef int length, k
    for length in range(17):
        for k in range(16):
            pattern[k] = 1 if k >= length else 0
        memcpy(&PAD[length][0], pattern, 8)
        memcpy(&PAD[length][1], pattern + 8, 8)


_pads()

cdef enum:
    PACKED_CHARS = 18  # bytes 0-7 and 16, and 8-15 and 17: 63 bits of each word


cdef struct Packed:
    uint64_t a  # bytes 0-7 and 16, 7 bits each, 0 past the end (no byte packs to 0)
    uint64_t b  # bytes 8-15 and 17
    int64_t code  # -1: an empty slot


cdef struct Hashed:
    uint64_t hash
    int64_t code  # -1: an empty slot


cdef inline uint64_t _mix(uint64_t h) noexcept nogil:
    h ^= h >> 33
    h *= 0xff51afd7ed558ccdULL
    h ^= h >> 33
    h *= 0xc4ceb9fe1a85ec53ULL
    h ^= h >> 33
    return h


cdef inline uint64_t _hash_bytes(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    cdef uint64_t h = 0x9e3779b97f4a7c15ULL ^ <uint64_t>n, w
    cdef Py_ssize_t i = 0
    while i + 8 <= n:
        memcpy(&w, p + i, 8)
        h = (h ^ w) * 0x100000001b3ULL
        h ^= h >> 29
        i += 8
    w = 0
    if i < n:
        memcpy(&w, p + i, n - i)
        h = (h ^ w) * 0x100000001b3ULL
    return _mix(h)


cdef class _Table:
    """An open-addressing table (linear probing) that doubles past half full."""
    cdef void* slots
    cdef Py_ssize_t capacity, used, size

    def __cinit__(self, Py_ssize_t size):
        self.size = size
        self.capacity = 1024
        self.used = 0
        self.slots = malloc(self.capacity * size)
        if self.slots == NULL:
            raise MemoryError()
        memset(self.slots, 0xFF, self.capacity * size)  # every code -1 (hash / words unread)

    def __dealloc__(self):
        free(self.slots)


cdef int _grow_packed(_Table table) noexcept nogil:
    cdef Py_ssize_t capacity = table.capacity * 2, i, at
    cdef Packed* old = <Packed*>table.slots
    cdef Packed* new = <Packed*>malloc(capacity * sizeof(Packed))
    if new == NULL:
        return -1
    memset(new, 0xFF, capacity * sizeof(Packed))
    for i in range(table.capacity):
        if old[i].code >= 0:
            at = _mix(old[i].a * 0x9e3779b97f4a7c15ULL + old[i].b) & (capacity - 1)
            while new[at].code >= 0:
                at = (at + 1) & (capacity - 1)
            new[at] = old[i]
    free(old)
    table.slots = new
    table.capacity = capacity
    return 0


cdef int _grow_hashed(_Table table) noexcept nogil:
    cdef Py_ssize_t capacity = table.capacity * 2, i, at
    cdef Hashed* old = <Hashed*>table.slots
    cdef Hashed* new = <Hashed*>malloc(capacity * sizeof(Hashed))
    if new == NULL:
        return -1
    memset(new, 0xFF, capacity * sizeof(Hashed))
    for i in range(table.capacity):
        if old[i].code >= 0:
            at = old[i].hash & (capacity - 1)
            while new[at].code >= 0:
                at = (at + 1) & (capacity - 1)
            new[at] = old[i]
    free(old)
    table.slots = new
    table.capacity = capacity
    return 0


cdef int _reserve(_Table table, Py_ssize_t entries) noexcept nogil:
    """An empty ``table`` made large enough for ``entries`` without growing (half full at
    most): a table grown from 1,024 slots moved every entry again at each doubling, at random
    into the new slots (a million enterprises' keys: 48 MB of slots, two thirds of the index's
    time). -1: out of memory (the table unchanged)."""
    cdef Py_ssize_t capacity = table.capacity
    cdef void* slots
    while 2 * (entries + 1) > capacity:
        capacity *= 2
    if capacity == table.capacity or table.used:
        return 0
    slots = malloc(capacity * table.size)
    if slots == NULL:
        return -1
    memset(slots, 0xFF, capacity * table.size)
    free(table.slots)
    table.slots = slots
    table.capacity = capacity
    return 0


cdef inline uint64_t _seven(uint64_t w) noexcept nogil:
    """Eight bytes of at most 7 bits as 56 bits (the low 7 bits of each, in place order)."""
    w = ((w & 0x7F007F007F007F00ULL) >> 1) | (w & 0x007F007F007F007FULL)
    w = ((w & 0x3FFF00003FFF0000ULL) >> 2) | (w & 0x00003FFF00003FFFULL)
    return ((w & 0x0FFFFFFF00000000ULL) >> 4) | (w & 0x000000000FFFFFFFULL)


cdef inline bint _zero_byte(uint64_t w) noexcept nogil:
    return ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL) != 0


cdef inline bint _pack(const uint8_t* text, Py_ssize_t length, uint64_t* a, uint64_t* b) noexcept nogil:
    """Whether the text packs (at most 18 bytes, each 1-127: ASCII without NUL), into ``a``,
    ``b``: 7 bits a byte, 0 past the end (no byte packs to 0, so the length is kept too). A
    word at a time, where a loop over the characters took about half of ``encode_texts``'s time."""
    cdef uint64_t w[2]
    cdef uint64_t c16 = 0, c17 = 0
    if length > PACKED_CHARS:
        return False
    w[0] = 0
    w[1] = 0
    if length >= 16:
        memcpy(w, text, 16)
        if length > 16:
            c16 = text[16]
            if c16 == 0 or c16 > 127:
                return False
        if length > 17:
            c17 = text[17]
            if c17 == 0 or c17 > 127:
                return False
        if (w[0] | w[1]) & 0x8080808080808080ULL or _zero_byte(w[0]) or _zero_byte(w[1]):
            return False
    else:
        memcpy(w, text, length)
        if ((w[0] | w[1]) & 0x8080808080808080ULL or _zero_byte(w[0] | PAD[length][0])
                or _zero_byte(w[1] | PAD[length][1])):
            return False
    a[0] = _seven(w[0]) | (c16 << 56)
    b[0] = _seven(w[1]) | (c17 << 56)
    return True


def encode_texts(const offset_t[::1] offsets, const uint8_t[::1] data, const uint8_t[::1] null):
    """Per row the code of its text (-1 for a null) and per code its first row (int64 both);
    ``offsets``/``data``: an Arrow string array's (``rules._arrow.string_buffers``); ``null``:
    uint8 per row, 1 for a null (empty: none)."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, row, length, at, ahead
    cdef bint nulls = null.shape[0] != 0
    if nulls and null.shape[0] != n:
        raise ValueError(f"expected {n} null flags, got {null.shape[0]}")
    codes_array = np.empty(n, np.int64)
    first_array = np.empty(max(n, 1), np.int64)
    cdef int64_t[::1] codes = codes_array
    cdef int64_t[::1] first = first_array
    cdef _Table packed = _Table(sizeof(Packed))
    cdef _Table hashed = _Table(sizeof(Hashed))
    cdef Packed* ps
    cdef Hashed* hs
    cdef uint64_t a, b, h
    cdef const uint8_t* base = &data[0] if data.shape[0] else NULL
    cdef int64_t distinct = 0, other
    cdef bint packs
    cdef int failed = 0
    # the next AHEAD rows packed: (words, whether packed), by row modulo AHEAD
    cdef uint64_t ring_a[AHEAD]
    cdef uint64_t ring_b[AHEAD]
    cdef bint ring_packs[AHEAD]
    with nogil:
        for ahead in range(min(AHEAD, n)):
            ring_packs[ahead] = (not (nulls and null[ahead])) and _pack(
                base + offsets[ahead], offsets[ahead + 1] - offsets[ahead], &ring_a[ahead], &ring_b[ahead])
        for row in range(n):
            a = ring_a[row % AHEAD]
            b = ring_b[row % AHEAD]
            packs = ring_packs[row % AHEAD]
            ahead = row + AHEAD
            if ahead < n:
                ring_packs[row % AHEAD] = (not (nulls and null[ahead])) and _pack(
                    base + offsets[ahead], offsets[ahead + 1] - offsets[ahead], &ring_a[row % AHEAD],
                    &ring_b[row % AHEAD])
                if ring_packs[row % AHEAD]:
                    __builtin_prefetch(<Packed*>packed.slots + (_mix(ring_a[row % AHEAD] * 0x9e3779b97f4a7c15ULL
                                                                     + ring_b[row % AHEAD]) & (packed.capacity - 1)))
            if nulls and null[row]:
                codes[row] = -1
                continue
            if packs:
                if 2 * (packed.used + 1) > packed.capacity and _grow_packed(packed):
                    failed = 1
                    break
                ps = <Packed*>packed.slots
                at = _mix(a * 0x9e3779b97f4a7c15ULL + b) & (packed.capacity - 1)
                while ps[at].code >= 0 and (ps[at].a != a or ps[at].b != b):
                    at = (at + 1) & (packed.capacity - 1)
                if ps[at].code < 0:
                    ps[at].a = a
                    ps[at].b = b
                    ps[at].code = distinct
                    first[distinct] = row
                    distinct += 1
                    packed.used += 1
                codes[row] = ps[at].code
                continue
            length = offsets[row + 1] - offsets[row]
            if 2 * (hashed.used + 1) > hashed.capacity and _grow_hashed(hashed):
                failed = 1
                break
            hs = <Hashed*>hashed.slots
            h = _hash_bytes(base + offsets[row], length)
            at = h & (hashed.capacity - 1)
            while hs[at].code >= 0:
                if hs[at].hash == h:
                    other = first[hs[at].code]
                    if (offsets[other + 1] - offsets[other] == length
                            and (length == 0 or memcmp(base + offsets[other], base + offsets[row], length) == 0)):
                        break
                at = (at + 1) & (hashed.capacity - 1)
            if hs[at].code < 0:
                hs[at].hash = h
                hs[at].code = distinct
                first[distinct] = row
                distinct += 1
                hashed.used += 1
            codes[row] = hs[at].code
    if failed:
        raise MemoryError()
    return codes_array, first_array[:distinct].copy()


# --- TextCodes ----------------------------------------------------------------------------

cdef class TextCodes:
    """``encode_texts`` over many arrays, a code meaning one text in all of them: the spill
    codes each enterprise key as written once (_spill.py), and a partition's codes follow from
    them, where ``encode_texts`` coded every partition's keys again (~85 ns a row at a
    million enterprises). Codes are given in the order texts are first met, from 0. The
    bytes of texts that do not pack are kept, to compare a later text of the same hash."""
    cdef _Table packed
    cdef _Table hashed
    cdef uint8_t* own  # the bytes of the hashed texts, one after another
    cdef int64_t own_used, own_capacity
    cdef int64_t* start  # per code: where its bytes begin in ``own`` (-1: a packed text)
    cdef int64_t* length  # per code: its length in bytes
    cdef int64_t codes_capacity
    cdef readonly int64_t count

    def __cinit__(self):
        self.packed = _Table(sizeof(Packed))
        self.hashed = _Table(sizeof(Hashed))
        self.own_capacity = 1 << 16
        self.codes_capacity = 1 << 16
        self.own = <uint8_t*>malloc(self.own_capacity)
        self.start = <int64_t*>malloc(self.codes_capacity * sizeof(int64_t))
        self.length = <int64_t*>malloc(self.codes_capacity * sizeof(int64_t))
        if self.own == NULL or self.start == NULL or self.length == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.own)
        free(self.start)
        free(self.length)

    def __len__(self):
        return self.count

    cdef int _new_code(self, const uint8_t* text, int64_t size, bint packs) noexcept nogil:
        """Room for one more code (and, not packed, its bytes kept); -1: out of memory."""
        cdef int64_t capacity
        cdef void* grown
        if self.count == self.codes_capacity:
            capacity = self.codes_capacity * 2
            grown = realloc(self.start, capacity * sizeof(int64_t))
            if grown == NULL:
                return -1
            self.start = <int64_t*>grown
            grown = realloc(self.length, capacity * sizeof(int64_t))
            if grown == NULL:
                return -1
            self.length = <int64_t*>grown
            self.codes_capacity = capacity
        self.length[self.count] = size
        if packs:
            self.start[self.count] = -1
            return 0
        if self.own_used + size > self.own_capacity:
            capacity = self.own_capacity * 2
            while self.own_used + size > capacity:
                capacity *= 2
            grown = realloc(self.own, capacity)
            if grown == NULL:
                return -1
            self.own = <uint8_t*>grown
            self.own_capacity = capacity
        if size:
            memcpy(self.own + self.own_used, text, size)
        self.start[self.count] = self.own_used
        self.own_used += size
        return 0

    def add(self, const offset_t[::1] offsets, const uint8_t[::1] data, const uint8_t[::1] null):
        """The texts of a string array (``offsets``, ``data``, ``null`` as for
        ``encode_texts``) coded: per row its code (int32; -1 for a null), and the rows where
        a text is met for the first time, one per new code in the order of the codes."""
        cdef Py_ssize_t n = offsets.shape[0] - 1, row, at, ahead
        cdef bint nulls = null.shape[0] != 0
        if nulls and null.shape[0] != n:
            raise ValueError(f"expected {n} null flags, got {null.shape[0]}")
        codes_array = np.empty(n, np.int32)
        first_array = np.empty(max(n, 1), np.int64)
        cdef int32_t[::1] codes = codes_array
        cdef int64_t[::1] first = first_array
        cdef Packed* ps
        cdef Hashed* hs
        cdef uint64_t a, b, h
        cdef const uint8_t* base = &data[0] if data.shape[0] else NULL
        cdef int64_t before = self.count, length, other
        cdef bint packs
        cdef int failed = 0
        cdef uint64_t ring_a[AHEAD]
        cdef uint64_t ring_b[AHEAD]
        cdef bint ring_packs[AHEAD]
        with nogil:
            for ahead in range(min(AHEAD, n)):
                ring_packs[ahead] = (not (nulls and null[ahead])) and _pack(
                    base + offsets[ahead], offsets[ahead + 1] - offsets[ahead], &ring_a[ahead], &ring_b[ahead])
            for row in range(n):
                a = ring_a[row % AHEAD]
                b = ring_b[row % AHEAD]
                packs = ring_packs[row % AHEAD]
                ahead = row + AHEAD
                if ahead < n:
                    ring_packs[row % AHEAD] = (not (nulls and null[ahead])) and _pack(
                        base + offsets[ahead], offsets[ahead + 1] - offsets[ahead], &ring_a[row % AHEAD],
                        &ring_b[row % AHEAD])
                    if ring_packs[row % AHEAD]:
                        __builtin_prefetch(<Packed*>self.packed.slots + (
                            _mix(ring_a[row % AHEAD] * 0x9e3779b97f4a7c15ULL + ring_b[row % AHEAD])
                            & (self.packed.capacity - 1)))
                if nulls and null[row]:
                    codes[row] = -1
                    continue
                length = offsets[row + 1] - offsets[row]
                if self.count >= 0x7FFFFFFF:
                    failed = 2
                    break
                if packs:
                    if 2 * (self.packed.used + 1) > self.packed.capacity and _grow_packed(self.packed):
                        failed = 1
                        break
                    ps = <Packed*>self.packed.slots
                    at = _mix(a * 0x9e3779b97f4a7c15ULL + b) & (self.packed.capacity - 1)
                    while ps[at].code >= 0 and (ps[at].a != a or ps[at].b != b):
                        at = (at + 1) & (self.packed.capacity - 1)
                    if ps[at].code < 0:
                        if self._new_code(NULL, length, True):
                            failed = 1
                            break
                        ps[at].a = a
                        ps[at].b = b
                        ps[at].code = self.count
                        first[self.count - before] = row
                        self.count += 1
                        self.packed.used += 1
                    codes[row] = <int32_t>ps[at].code
                    continue
                if 2 * (self.hashed.used + 1) > self.hashed.capacity and _grow_hashed(self.hashed):
                    failed = 1
                    break
                hs = <Hashed*>self.hashed.slots
                h = _hash_bytes(base + offsets[row], length)
                at = h & (self.hashed.capacity - 1)
                while hs[at].code >= 0:
                    if hs[at].hash == h:
                        other = hs[at].code
                        if (self.length[other] == length
                                and (length == 0 or memcmp(self.own + self.start[other], base + offsets[row], length) == 0)):
                            break
                    at = (at + 1) & (self.hashed.capacity - 1)
                if hs[at].code < 0:
                    if self._new_code(base + offsets[row], length, False):
                        failed = 1
                        break
                    hs[at].hash = h
                    hs[at].code = self.count
                    first[self.count - before] = row
                    self.count += 1
                    self.hashed.used += 1
                codes[row] = <int32_t>hs[at].code
        if failed == 2:
            raise OverflowError("more than 2**31 - 1 distinct texts")
        if failed:
            raise MemoryError()
        return codes_array, first_array[:self.count - before].copy()


def local_codes(const int32_t[::1] codes, Py_ssize_t count):
    """Codes of ``TextCodes`` (``count`` of them; -1: a null) renumbered from 0 in the order
    of their first row, as ``encode_texts`` of the rows' texts would code them: per row its
    code (int64, -1 for a null) and per new code its first row."""
    cdef Py_ssize_t n = codes.shape[0], row
    local_array = np.empty(n, np.int64)
    first_array = np.empty(max(n, 1), np.int64)
    cdef int64_t[::1] local = local_array
    cdef int64_t[::1] first = first_array
    cdef int64_t* seen = <int64_t*>malloc(max(count, 1) * sizeof(int64_t))
    if seen == NULL:
        raise MemoryError()
    cdef int64_t distinct = 0, code
    cdef bint bad = False
    with nogil:
        memset(seen, 0xFF, max(count, 1) * sizeof(int64_t))
        for row in range(n):
            code = codes[row]
            if code < 0:
                local[row] = -1
                continue
            if code >= count:
                bad = True
                break
            if row + AHEAD < n and codes[row + AHEAD] >= 0 and codes[row + AHEAD] < count:
                __builtin_prefetch(seen + codes[row + AHEAD])
            if seen[code] < 0:
                seen[code] = distinct
                first[distinct] = row
                distinct += 1
            local[row] = seen[code]
    free(seen)
    if bad:
        raise ValueError(f"a code outside 0..{count - 1}")
    return local_array, first_array[:distinct].copy()



def text_hashes(const offset_t[::1] offsets, const uint8_t[::1] data, const uint8_t[::1] null):
    """A uint64 hash per text from its length and last eight bytes (a null hashes as an
    empty text), in one pass: engine/cases/_spill.py's ``text_hashes`` (the same numbers; its
    numpy form took eight passes over the column, ~80 ns a row)."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, row, back
    cdef bint nulls = null.shape[0] != 0
    if nulls and null.shape[0] != n:
        raise ValueError(f"expected {n} null flags, got {null.shape[0]}")
    out_array = np.empty(n, np.uint64)
    cdef uint64_t[::1] out = out_array
    cdef const uint8_t* base = &data[0] if data.shape[0] else NULL
    cdef int64_t length, end
    cdef uint64_t h, byte
    with nogil:
        for row in range(n):
            end = offsets[row + 1]
            length = 0 if nulls and null[row] else end - offsets[row]
            h = <uint64_t>length * 0x9E3779B97F4A7C15ULL
            for back in range(1, 9):
                byte = base[end - back] if length >= back else 0
                h = (h ^ byte) * 0x100000001B3ULL
            h ^= h >> 29
            h *= 0xBF58476D1CE4E5B9ULL
            h ^= h >> 32
            out[row] = h
    return out_array



# --- HashSet ------------------------------------------------------------------------------

cdef class HashSet:
    """Distinct uint64 numbers (the hashes of a case table's enterprise keys, _spill.py), added
    an array at a time: one probe a number of an open-addressing table of the distinct ones,
    where sorting every batch's hashes with the distinct ones so far sorted each hash several
    times (~0.55 CPU-s at 10 M cases). ``sorted()`` gives them in ascending order."""
    cdef uint64_t* slots  # 0: an empty slot (the number 0 is kept by ``zero``)
    cdef Py_ssize_t capacity, used
    cdef bint zero

    def __cinit__(self):
        self.capacity = 1024
        self.used = 0
        self.zero = False
        self.slots = <uint64_t*>calloc(self.capacity, sizeof(uint64_t))
        if self.slots == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.slots)

    def __len__(self):
        return self.used + self.zero

    cdef int _grow(self) noexcept nogil:
        cdef Py_ssize_t capacity = self.capacity * 2, i, at
        cdef uint64_t* new = <uint64_t*>calloc(capacity, sizeof(uint64_t))
        if new == NULL:
            return -1
        for i in range(self.capacity):
            if self.slots[i]:
                at = _mix(self.slots[i]) & (capacity - 1)
                while new[at]:
                    at = (at + 1) & (capacity - 1)
                new[at] = self.slots[i]
        free(self.slots)
        self.slots = new
        self.capacity = capacity
        return 0

    def add(self, const uint64_t[::1] numbers):
        cdef Py_ssize_t n = numbers.shape[0], row, at
        cdef uint64_t h
        cdef int failed = 0
        with nogil:
            for row in range(n):
                h = numbers[row]
                if h == 0:
                    self.zero = True
                    continue
                if 2 * (self.used + 1) > self.capacity and self._grow():
                    failed = 1
                    break
                if row + AHEAD < n:
                    __builtin_prefetch(self.slots + (_mix(numbers[row + AHEAD]) & (self.capacity - 1)))
                at = _mix(h) & (self.capacity - 1)
                while self.slots[at] and self.slots[at] != h:
                    at = (at + 1) & (self.capacity - 1)
                if not self.slots[at]:
                    self.slots[at] = h
                    self.used += 1
        if failed:
            raise MemoryError()

    def sorted(self):
        out_array = np.empty(self.used + self.zero, np.uint64)
        cdef uint64_t[::1] out = out_array
        cdef Py_ssize_t i, k = 0
        with nogil:
            if self.zero:
                out[0] = 0
                k = 1
            for i in range(self.capacity):
                if self.slots[i]:
                    out[k] = self.slots[i]
                    k += 1
        out_array.sort()
        return out_array


# --- grouping rows by bucket (engine/cases/_spill.py) ------------------------------------

def bucket_places(const int64_t[::1] bucket, Py_ssize_t count):
    """Per row its place when the rows are grouped by bucket in the table's order (the
    inverse of a stable argsort by bucket), and the rows per bucket: two passes, no sort."""
    cdef Py_ssize_t n = bucket.shape[0], row
    counts_array = np.zeros(max(count, 1), np.int64)
    place_array = np.empty(n, np.int64)
    cursor_array = np.empty(max(count, 1), np.int64)
    cdef int64_t[::1] counts = counts_array
    cdef int64_t[::1] place = place_array
    cdef int64_t[::1] cursor = cursor_array
    cdef int64_t total = 0
    cdef bint bad = False
    with nogil:
        for row in range(n):
            if bucket[row] < 0 or bucket[row] >= count:
                bad = True
                break
            counts[bucket[row]] += 1
        if not bad:
            for row in range(count):
                cursor[row] = total
                total += counts[row]
            for row in range(n):
                place[row] = cursor[bucket[row]]
                cursor[bucket[row]] += 1
    if bad:
        raise ValueError(f"a bucket outside 0..{count - 1}")
    return place_array, counts_array[:count]


def scatter_texts(const offset_t[::1] offsets, const uint8_t[::1] data, const int64_t[::1] place):
    """A string array's offsets and data with row ``i`` moved to ``place[i]`` (a permutation,
    ``bucket_places``): the texts read once in order and written to one stream per bucket,
    where a ``take`` by the grouped order read them at random (a cache miss a text)."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, row
    if place.shape[0] != n:
        raise ValueError(f"expected {n} places, got {place.shape[0]}")
    out_offsets_array = np.empty(n + 1, np.int32 if offset_t is int32_t else np.int64)
    cdef offset_t[::1] out_offsets = out_offsets_array
    cdef offset_t size = offsets[n] - offsets[0]
    out_data_array = np.empty(max(<Py_ssize_t>size, 1), np.uint8)
    cdef uint8_t[::1] out_data = out_data_array
    cdef const uint8_t* base = &data[0] if data.shape[0] else NULL
    cdef offset_t length
    with nogil:
        out_offsets[0] = 0
        for row in range(n):
            out_offsets[place[row] + 1] = offsets[row + 1] - offsets[row]
        for row in range(n):
            out_offsets[row + 1] += out_offsets[row]
        for row in range(n):
            length = offsets[row + 1] - offsets[row]
            if length:
                memcpy(&out_data[out_offsets[place[row]]], base + offsets[row], length)
    return out_offsets_array, out_data_array[:size]


def scatter_bits(const uint8_t[::1] bitmap, Py_ssize_t offset, const int64_t[::1] place):
    """An Arrow bitmap (validity or booleans, from bit ``offset``) with bit ``offset + i``
    moved to bit ``place[i]``."""
    cdef Py_ssize_t n = place.shape[0], row, bit
    if bitmap.shape[0] * 8 < offset + n:
        raise ValueError("the bitmap is shorter than its rows")
    out_array = np.zeros(max((n + 7) // 8, 1), np.uint8)
    cdef uint8_t[::1] out = out_array
    with nogil:
        for row in range(n):
            bit = offset + row
            if (bitmap[bit >> 3] >> (bit & 7)) & 1:
                out[place[row] >> 3] |= <uint8_t>(1 << (place[row] & 7))
    return out_array


def may_trim(const offset_t[::1] offsets, const uint8_t[::1] data, const uint8_t[::1] null):
    """Whether trimming whitespace may change some text of a string column: one whose first
    or last byte is not printable ASCII (a space, a control, or part of a non-ASCII character,
    which may be Unicode whitespace). Nearly every column of keys has none, and is then its
    own trimmed copy."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, row
    cdef bint nulls = null.shape[0] != 0
    cdef const uint8_t* base = &data[0] if data.shape[0] else NULL
    cdef uint8_t first, last
    cdef bint found = False
    with nogil:
        for row in range(n):
            if offsets[row + 1] == offsets[row] or (nulls and null[row]):
                continue
            first = base[offsets[row]]
            last = base[offsets[row + 1] - 1]
            if first < 0x21 or first > 0x7E or last < 0x21 or last > 0x7E:
                found = True
                break
    return found

def ascending_texts(const offset_t[::1] offsets, const uint8_t[::1] data):
    """Whether the texts of a string column without nulls are strictly ascending in byte
    order (UTF-8's is code point order): ``pc.less`` of the column against itself shifted
    by one made a boolean array and read every text twice."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, row
    cdef const uint8_t* base = &data[0] if data.shape[0] else NULL
    cdef Py_ssize_t a, b, common
    cdef int order
    cdef bint ascending = True
    with nogil:
        for row in range(1, n):
            a = offsets[row] - offsets[row - 1]
            b = offsets[row + 1] - offsets[row]
            common = a if a < b else b
            order = memcmp(base + offsets[row - 1], base + offsets[row], common) if common else 0
            if order > 0 or (order == 0 and a >= b):
                ascending = False
                break
    return ascending

# --- TextIndex ----------------------------------------------------------------------------

cdef class TextIndex:
    """The rows of a string column by their texts, looked up many times (``text_index``,
    ``text_positions``): Arrow's ``index_in`` builds its table of the values anew at every
    call, at a million enterprises ~0.4 CPU-s per registry batch. Texts are packed or hashed
    as in ``encode_texts``; a slot keeps the first row of its text."""
    cdef _Table packed
    cdef _Table hashed
    cdef object offsets  # int64 offsets and the data of the values, for comparing hashed texts
    cdef object data
    cdef readonly Py_ssize_t n

    def __cinit__(self):
        self.packed = _Table(sizeof(Packed))
        self.hashed = _Table(sizeof(Hashed))


cdef struct Words:
    uint64_t a
    uint64_t b
    int64_t packs  # 1: packed in a, b; 0: hashed (a: the hash); -1: a null


cdef void _words(const offset_t* offsets, const uint8_t* base, const uint8_t* null, Py_ssize_t n,
                 Words* out) noexcept nogil:
    cdef Py_ssize_t row
    for row in range(n):
        if null != NULL and null[row]:
            out[row].packs = -1
        elif _pack(base + offsets[row], offsets[row + 1] - offsets[row], &out[row].a, &out[row].b):
            out[row].packs = 1
        else:
            out[row].a = _hash_bytes(base + offsets[row], offsets[row + 1] - offsets[row])
            out[row].packs = 0


cdef inline Py_ssize_t _slot(Words* w, Py_ssize_t capacity) noexcept nogil:
    if w.packs == 1:
        return _mix(w.a * 0x9e3779b97f4a7c15ULL + w.b) & (capacity - 1)
    return w.a & (capacity - 1)


def text_index(const offset_t[::1] offsets, const uint8_t[::1] data, const uint8_t[::1] null):
    """A ``TextIndex`` of a string column (``offsets``, ``data``, ``null`` as for ``encode_texts``)."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, row, at, length
    if null.shape[0] != 0 and null.shape[0] != n:
        raise ValueError(f"expected {n} null flags, got {null.shape[0]}")
    index = TextIndex()
    index.n = n
    index.offsets = np.asarray(offsets, np.int64)
    index.data = np.asarray(data)
    cdef const int64_t[::1] own = index.offsets
    cdef const uint8_t* base = &data[0] if data.shape[0] else NULL
    cdef Words* words = <Words*>malloc(max(n, 1) * sizeof(Words))
    if words == NULL:
        raise MemoryError()
    cdef _Table packed = index.packed
    cdef _Table hashed = index.hashed
    cdef Packed* ps
    cdef Hashed* hs
    cdef int64_t other
    cdef int failed = 0
    cdef Py_ssize_t packs = 0, hashes = 0
    with nogil:
        _words(&offsets[0], base, &null[0] if null.shape[0] else NULL, n, words)
        for row in range(n):
            packs += words[row].packs == 1
            hashes += words[row].packs == 0
        if _reserve(packed, packs) or _reserve(hashed, hashes):
            failed = 1
        for row in range(n if not failed else 0):
            if words[row].packs == 1:
                if 2 * (packed.used + 1) > packed.capacity and _grow_packed(packed):
                    failed = 1
                    break
                ps = <Packed*>packed.slots
                at = _slot(&words[row], packed.capacity)
                while ps[at].code >= 0 and (ps[at].a != words[row].a or ps[at].b != words[row].b):
                    at = (at + 1) & (packed.capacity - 1)
                if ps[at].code < 0:
                    ps[at].a = words[row].a
                    ps[at].b = words[row].b
                    ps[at].code = row
                    packed.used += 1
            elif words[row].packs == 0:
                if 2 * (hashed.used + 1) > hashed.capacity and _grow_hashed(hashed):
                    failed = 1
                    break
                hs = <Hashed*>hashed.slots
                length = offsets[row + 1] - offsets[row]
                at = _slot(&words[row], hashed.capacity)
                while hs[at].code >= 0:
                    if hs[at].hash == words[row].a:
                        other = hs[at].code
                        if (own[other + 1] - own[other] == length
                                and (length == 0 or memcmp(base + own[other], base + offsets[row], length) == 0)):
                            break
                    at = (at + 1) & (hashed.capacity - 1)
                if hs[at].code < 0:
                    hs[at].hash = words[row].a
                    hs[at].code = row
                    hashed.used += 1
    free(words)
    if failed:
        raise MemoryError()
    return index


def text_positions(TextIndex index, const offset_t[::1] offsets, const uint8_t[::1] data, const uint8_t[::1] null):
    """Per text of a string column the first row of the same text in ``index``'s column, -1
    where it has none (a null: -1)."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, row, at, length, ahead
    if null.shape[0] != 0 and null.shape[0] != n:
        raise ValueError(f"expected {n} null flags, got {null.shape[0]}")
    out_array = np.full(n, -1, np.int64)
    cdef int64_t[::1] out = out_array
    cdef const int64_t[::1] own = index.offsets
    cdef const uint8_t[::1] own_data = index.data
    cdef const uint8_t* own_base = &own_data[0] if own_data.shape[0] else NULL
    cdef const uint8_t* base = &data[0] if data.shape[0] else NULL
    cdef Words* words = <Words*>malloc(max(n, 1) * sizeof(Words))
    if words == NULL:
        raise MemoryError()
    cdef Packed* ps = <Packed*>index.packed.slots
    cdef Hashed* hs = <Hashed*>index.hashed.slots
    cdef Py_ssize_t packed_capacity = index.packed.capacity, hashed_capacity = index.hashed.capacity
    cdef int64_t other
    with nogil:
        _words(&offsets[0], base, &null[0] if null.shape[0] else NULL, n, words)
        for row in range(n):
            ahead = row + AHEAD
            if ahead < n and words[ahead].packs == 1:
                __builtin_prefetch(ps + _slot(&words[ahead], packed_capacity))
            if words[row].packs == 1:
                at = _slot(&words[row], packed_capacity)
                while ps[at].code >= 0:
                    if ps[at].a == words[row].a and ps[at].b == words[row].b:
                        out[row] = ps[at].code
                        break
                    at = (at + 1) & (packed_capacity - 1)
            elif words[row].packs == 0:
                length = offsets[row + 1] - offsets[row]
                at = _slot(&words[row], hashed_capacity)
                while hs[at].code >= 0:
                    if hs[at].hash == words[row].a:
                        other = hs[at].code
                        if (own[other + 1] - own[other] == length
                                and (length == 0 or memcmp(own_base + own[other], base + offsets[row], length) == 0)):
                            out[row] = other
                            break
                    at = (at + 1) & (hashed_capacity - 1)
    free(words)
    return out_array

# --- number_positions ---------------------------------------------------------------------

cdef struct Numbered:
    int64_t value
    int64_t place  # -1: an empty slot


def number_positions(const int64_t[::1] values, const int64_t[::1] queries):
    """Per number of ``queries`` the place of the same number in ``values`` (the first, where
    one repeats), -1 where it has none: one probe of an open-addressing table a query, where
    ``np.searchsorted`` into the sorted values read ~20 places at random (0.2 CPU-s for a
    million fines' acts among a million earlier fines', engine/cases/_earlier_fines.py)."""
    cdef Py_ssize_t n = values.shape[0], m = queries.shape[0], i, at, capacity = 16, ahead
    while capacity < 2 * n:
        capacity *= 2
    out_array = np.full(m, -1, np.int64)
    cdef int64_t[::1] out = out_array
    cdef Numbered* slots = <Numbered*>malloc(capacity * sizeof(Numbered))
    if slots == NULL:
        raise MemoryError()
    cdef int64_t value
    with nogil:
        for i in range(capacity):
            slots[i].place = -1
        for i in range(n):
            value = values[i]
            at = _mix(<uint64_t>value) & (capacity - 1)
            while slots[at].place >= 0 and slots[at].value != value:
                at = (at + 1) & (capacity - 1)
            if slots[at].place < 0:
                slots[at].value = value
                slots[at].place = i
        for i in range(m):
            ahead = i + AHEAD
            if ahead < m:
                __builtin_prefetch(slots + (_mix(<uint64_t>queries[ahead]) & (capacity - 1)))
            value = queries[i]
            at = _mix(<uint64_t>value) & (capacity - 1)
            while slots[at].place >= 0:
                if slots[at].value == value:
                    out[i] = slots[at].place
                    break
                at = (at + 1) & (capacity - 1)
    free(slots)
    return out_array

# --- a stable radix sort of (key, index) pairs ------------------------------------------

cdef enum:
    RADIX_BITS = 11  # a pass's counts (16 KiB) stay in the first-level cache


cdef inline int _bits(int64_t values) noexcept nogil:
    """The bits of the numbers 0..values-1."""
    cdef int bits = 0
    while values > 1 and (<int64_t>1 << bits) < values:
        bits += 1
    return bits


cdef int _sort_pairs(uint64_t* key, int32_t* index, uint64_t* key2, int32_t* index2, Py_ssize_t n,
                     int bits) noexcept nogil:
    """Sorts the pairs (key, index) stably by the low ``bits`` bits of the keys: a pass of
    RADIX_BITS bits at a time, least significant first, each a count and a scatter into 2^11
    runs (a counting sort of a million enterprises scatters into a million: a cache miss a
    case). A pass where every key has one digit is skipped. The sorted pairs end in (key,
    index) (returns 0) or in (key2, index2) (returns 1)."""
    cdef Py_ssize_t count[1 << RADIX_BITS]
    cdef Py_ssize_t i, total, c
    cdef int shift = 0, side = 0
    cdef uint64_t digit, mask = (1 << RADIX_BITS) - 1
    cdef uint64_t* ks = key
    cdef uint64_t* kd = key2
    cdef uint64_t* kt
    cdef int32_t* xs = index
    cdef int32_t* xd = index2
    cdef int32_t* xt
    while shift < bits and n > 1:
        memset(count, 0, sizeof(count))
        for i in range(n):
            count[(ks[i] >> shift) & mask] += 1
        if count[(ks[0] >> shift) & mask] == n:
            shift += RADIX_BITS
            continue
        total = 0
        for i in range(1 << RADIX_BITS):
            c = count[i]
            count[i] = total
            total += c
        for i in range(n):
            digit = (ks[i] >> shift) & mask
            kd[count[digit]] = ks[i]
            xd[count[digit]] = xs[i]
            count[digit] += 1
        kt = ks
        ks = kd
        kd = kt
        xt = xs
        xs = xd
        xd = xt
        side = 1 - side
        shift += RADIX_BITS
    return side


cdef enum:
    PACKED_DIGIT_BITS = 16  # the widest digit of a packed pass: its counts (256 KiB) in the second-level cache


cdef int _sort_packed(uint64_t* key, uint64_t* key2, Py_ssize_t n, int low, int bits) noexcept nogil:
    """Sorts the words ``key`` stably by their bits ``low`` .. ``low + bits - 1``, least
    significant digit first, in as few passes as digits of at most PACKED_DIGIT_BITS bits
    allow (the bits below ``low`` ride along). Ends in ``key`` (returns 0) or ``key2`` (1);
    -1: no memory for the counts (nothing moved)."""
    cdef int passes = (bits + PACKED_DIGIT_BITS - 1) // PACKED_DIGIT_BITS if bits > 0 else 0
    cdef int digit_bits = (bits + passes - 1) // passes if passes else 0
    cdef Py_ssize_t digits = <Py_ssize_t>1 << digit_bits, i, total, c
    cdef int shift = low, side = 0, p
    cdef uint64_t mask = <uint64_t>digits - 1, v, digit
    cdef uint64_t* ks = key
    cdef uint64_t* kd = key2
    cdef uint64_t* kt
    cdef int32_t* count
    if passes == 0 or n < 2:
        return 0
    count = <int32_t*>malloc(digits * sizeof(int32_t))
    if count == NULL:
        return -1
    for p in range(passes):
        memset(count, 0, digits * sizeof(int32_t))
        for i in range(n):
            count[(ks[i] >> shift) & mask] += 1
        if count[(ks[0] >> shift) & mask] == n:
            shift += digit_bits
            continue
        total = 0
        for i in range(digits):
            c = count[i]
            count[i] = <int32_t>total
            total += c
        for i in range(n):
            v = ks[i]
            digit = (v >> shift) & mask
            kd[count[digit]] = v
            count[digit] += 1
        kt = ks
        ks = kd
        kd = kt
        side = 1 - side
        shift += digit_bits
    free(count)
    return side


cdef int _sort_pairs_packed(uint64_t* key, int32_t* index, uint64_t* key2, int32_t* index2, Py_ssize_t n,
                            int bits) noexcept nogil:
    """``_sort_pairs`` of pairs whose indexes are 0 .. ``n - 1``: where a key's ``bits`` and an
    index's fit one word, each pair is packed into one (the index below the key), sorted by
    ``_sort_packed`` and unpacked into the side it ends in. A pass then moves one word a pair
    instead of one of each array, and two passes do what three digits of RADIX_BITS did (a
    million cases' (enterprise, day) keys: 29 -> 16 ms alone, window_bounds 44-49 -> 30)."""
    cdef int index_bits = _bits(n), side
    cdef Py_ssize_t i
    cdef uint64_t index_mask
    cdef uint64_t* ended
    cdef int32_t* unpacked
    if n < 2 or bits + index_bits > 64 or index_bits > 31:
        return _sort_pairs(key, index, key2, index2, n, bits)
    for i in range(n):
        key[i] = (key[i] << index_bits) | <uint64_t><uint32_t>index[i]
    side = _sort_packed(key, key2, n, index_bits, bits)
    if side < 0:  # (no memory for the counts: unpacked as they were, sorted in pairs)
        for i in range(n):
            key[i] >>= index_bits
        return _sort_pairs(key, index, key2, index2, n, bits)
    ended = key if side == 0 else key2
    unpacked = index if side == 0 else index2
    index_mask = (<uint64_t>1 << index_bits) - 1
    for i in range(n):
        unpacked[i] = <int32_t>(ended[i] & index_mask)
        ended[i] >>= index_bits
    return side


# --- supersede_part -----------------------------------------------------------------------

cdef struct Best:
    int64_t p  # the act's leading fine so far: its scored row,
    int64_t amount  # its amount in fen,
    int32_t j  # its index into ``slots``
    int32_t seen  # 0: no fine of the act yet


cdef struct Note:
    int64_t amount  # a fine of a shared act: its amount in fen,
    int64_t key  # its case_id's code,
    int64_t rank  # the rank of its (policy, rule),
    int64_t p  # its scored row
    int64_t j  # its index into ``slots``


cdef inline bint _leads(const Note* a, const Note* b, bint ascending, const offset_t[::1] key_offsets,
                        const uint8_t[::1] key_data) noexcept nogil:
    """``_beats`` of two noted fines."""
    cdef int64_t l1, l2
    cdef int order = 0
    if a.amount != b.amount:
        return a.amount > b.amount
    if a.rank != b.rank:
        return a.rank < b.rank
    if ascending or a.key == b.key:
        return a.key < b.key
    l1 = key_offsets[a.key + 1] - key_offsets[a.key]
    l2 = key_offsets[b.key + 1] - key_offsets[b.key]
    if l1 and l2:
        order = memcmp(&key_data[0] + key_offsets[a.key], &key_data[0] + key_offsets[b.key], l1 if l1 < l2 else l2)
    if order != 0:
        return order < 0
    return l1 < l2


cdef inline bint _beats(Py_ssize_t k1, int64_t p1, int64_t amount1, Py_ssize_t k2, int64_t p2, int64_t amount2,
                        const int64_t[::1] slot_rank, const int64_t[::1] scored, const int64_t[::1] key_code,
                        bint ascending, const offset_t[::1] key_offsets, const uint8_t[::1] key_data) noexcept nogil:
    """Whether fine (slot k1, scored row p1) goes before (k2, p2) in its act: the higher
    amount, then the smaller (policy, rule), then the smaller case_id (code point order:
    UTF-8 bytes compare in that order)."""
    cdef int64_t c1, c2, l1, l2
    cdef int order = 0
    if amount1 != amount2:
        return amount1 > amount2
    if slot_rank[k1] != slot_rank[k2]:
        return slot_rank[k1] < slot_rank[k2]
    c1 = key_code[scored[p1]]
    c2 = key_code[scored[p2]]
    if ascending or c1 == c2:
        return c1 < c2
    l1 = key_offsets[c1 + 1] - key_offsets[c1]
    l2 = key_offsets[c2 + 1] - key_offsets[c2]
    if l1 and l2:
        order = memcmp(&key_data[0] + key_offsets[c1], &key_data[0] + key_offsets[c2], l1 if l1 < l2 else l2)
    if order != 0:
        return order < 0
    return l1 < l2


def supersede_part(const int64_t[::1] positions, const uint8_t[:, ::1] fired, const int64_t[:, ::1] amounts,
                   const int64_t[::1] slots, const int64_t[::1] rule_of, const int64_t[::1] fen_per,
                   const int64_t[::1] slot_rank, const int64_t[::1] scored, const int64_t[::1] enterprise,
                   const int64_t[::1] act_code, int64_t acts, int64_t owners, int64_t count,
                   const int64_t[::1] key_code, bint ascending, const offset_t[::1] key_offsets,
                   const uint8_t[::1] key_data):
    """The fines of the scored rows ``positions`` (every case of their enterprises) that an
    act's other fine supersedes: (slot, scored row, winner's slot, winner's scored row), int64
    arrays, in no particular order.

    ``fired`` (rules, scored rows) and ``amounts`` (findings, scored rows): the kernel's
    outputs; ``slots``: the FINE finding slots, ``rule_of[k]`` the row of ``fired`` of slot
    ``slots[k]``; ``fen_per``, ``slot_rank``: per finding slot, its unit in fen and the rank
    of its (policy, rule). Per case row: ``enterprise``, ``act_code`` (-1: its own act; empty:
    the kind has no act; codes below ``acts``), ``key_code`` into the case_id texts
    ``key_offsets``/``key_data`` (``ascending``: the codes are ranks already, the texts are
    not read). The part's enterprises share their residue modulo ``count``: ``enterprise //
    count`` (below ``owners``) numbers them densely, and an act is (``enterprise // count``,
    act code).

    One pass over the fired rows in order: a case of its own act (no act_id) is decided on
    the spot, its fines side by side; a fine of a shared act is noted with its act's key.
    The notes are then sorted by act (``_sort_pairs``, stable: an act's fines stay in the
    order of the rows, as the ties between two fines of one rule and case need) and each
    act's run of notes decided in order. The leading fine of every act was kept in an array
    of enterprises x act codes instead, read and written at random: 96 MB at a million
    enterprises, zeroed for each part, a cache and TLB miss a fine."""
    cdef Py_ssize_t m = positions.shape[0], n_slots = slots.shape[0], i, j, first, stop, r, fetched
    cdef bint has_acts = act_code.shape[0] != 0
    cdef int64_t p, row, amount, fines = 0, shared = 0, lost = 0, code, f
    cdef int act_bits = _bits(acts), side
    for j in range(n_slots):
        if rule_of[j] < 0 or rule_of[j] >= fired.shape[0] or slots[j] < 0 or slots[j] >= amounts.shape[0]:
            raise ValueError(f"fine slot {j}: rule row {rule_of[j]} or finding slot {slots[j]} out of range")
    if has_acts and (owners >= (<int64_t>1 << 31) or acts >= (<int64_t>1 << 31)):
        raise ValueError(f"{owners} enterprises x {acts} act codes do not fit an int64 key")
    with nogil:
        for i in range(m):
            p = positions[i]
            f = 0
            for j in range(n_slots):
                f += fired[rule_of[j], p] != 0
            fines += f
            if has_acts and act_code[scored[p]] >= 0:
                shared += f
    if shared >= (<int64_t>1 << 31):
        raise ValueError(f"{shared} fines of shared acts in one part: too many for the sort")
    out_array = np.empty((4, max(fines, 1)), np.int64)
    cdef int64_t[:, ::1] out = out_array
    # per fine of a shared act: (its act's key, its note), sorted by key; the notes: scored
    # row, slot index, amount in fen
    keys_array = np.empty((2, max(shared, 1)), np.uint64)
    index_array = np.empty((2, max(shared, 1)), np.int32)
    notes_array = np.empty(max(shared, 1) * sizeof(Note), np.uint8)
    cdef uint64_t[:, ::1] keys = keys_array
    cdef int32_t[:, ::1] index = index_array
    cdef uint8_t[::1] note_bytes = notes_array
    cdef Note* notes = <Note*>&note_bytes[0]
    cdef Note* note
    cdef int32_t* ordered
    cdef int32_t lead, other
    cdef int failed = 0
    cdef Best own
    with nogil:
        f = 0
        for i in range(m):
            p = positions[i]
            row = scored[p]
            code = act_code[row] if has_acts else -1
            if code < 0:  # the case's own act: its fines lead among themselves
                own.seen, own.j = 0, 0
                for j in range(n_slots):
                    if not fired[rule_of[j], p]:
                        continue
                    amount = amounts[slots[j], p] * fen_per[slots[j]]
                    if not own.seen or _beats(slots[j], p, amount, slots[own.j], p, own.amount, slot_rank, scored,
                                              key_code, ascending, key_offsets, key_data):
                        own.j, own.p, own.amount, own.seen = j, p, amount, 1
                if own.seen:
                    for j in range(n_slots):
                        if fired[rule_of[j], p] and j != own.j:
                            out[0, lost], out[1, lost], out[2, lost], out[3, lost] = slots[j], p, slots[own.j], p
                            lost += 1
                continue
            if code >= acts or enterprise[row] < 0 or enterprise[row] // count >= owners:
                failed = 1
                break
            for j in range(n_slots):
                if not fired[rule_of[j], p]:
                    continue
                keys[0, f] = (<uint64_t>(enterprise[row] // count) << act_bits) | <uint64_t>code
                index[0, f] = <int32_t>f
                note = &notes[f]
                note.amount = amounts[slots[j], p] * fen_per[slots[j]]
                note.key = key_code[row]
                note.rank = slot_rank[slots[j]]
                note.p = p
                note.j = j
                f += 1
        if not failed and shared:
            side = _sort_pairs_packed(&keys[0, 0], &index[0, 0], &keys[1, 0], &index[1, 0], shared,
                                      act_bits + _bits(owners))
            ordered = &index[side, 0]
            first = fetched = 0
            while first < shared:
                # the act's notes: ordered[first:stop]; its leading fine: note ``lead``
                stop = first + 1
                while stop < shared and keys[side, stop] == keys[side, first]:
                    stop += 1
                while fetched < stop + AHEAD and fetched < shared:  # the notes in sorted order are at random places
                    __builtin_prefetch(&notes[ordered[fetched]])
                    fetched += 1
                lead = ordered[first]
                for r in range(first + 1, stop):
                    other = ordered[r]
                    if _leads(&notes[other], &notes[lead], ascending, key_offsets, key_data):
                        lead = other
                for r in range(first, stop):
                    other = ordered[r]
                    if other != lead:
                        out[0, lost], out[1, lost] = slots[notes[other].j], notes[other].p
                        out[2, lost], out[3, lost] = slots[notes[lead].j], notes[lead].p
                        lost += 1
                first = stop
    if failed:
        raise ValueError(f"a case's act code or enterprise out of range ({acts} act codes, {owners} enterprises)")
    return tuple(out_array[r, :lost].copy() for r in range(4))


# --- enterprise_rollup --------------------------------------------------------------------

cdef enum:
    ROLLUP_COUNT = 0
    ROLLUP_SUM = 1
    ROLLUP_MAX = 2


def enterprise_rollup(const int64_t[::1] enterprise, const uint8_t[::1] counted, const int64_t[::1] values,
                      int function, int64_t empty, int64_t[::1] out, uint8_t[::1] seen):
    """A roll-up onto the enterprises of one partition, in place: every enterprise of a case
    row (``enterprise`` >= 0, below ``out``'s length) first takes the value of nothing counted
    (0 for a count, ``empty`` otherwise), then the rows ``counted`` (nonzero) are counted,
    summed or maximised (``function``: 0, 1, 2) into ``out`` at their enterprise. ``values``
    per row (empty for a count); ``seen``: scratch of ``out``'s length, any content. Sums wrap
    as numpy's ``add.at`` does. The enterprises of other partitions keep their values: the
    run's arrays are written a partition at a time, where numpy allocated, filled and merged
    arrays of every enterprise of the run per partition and roll-up (``bincount`` with its
    ``minlength``, ``ufunc.at``, a mask of the partition's enterprises)."""
    cdef Py_ssize_t n = enterprise.shape[0], size = out.shape[0], i
    cdef int64_t o, v
    cdef int bad = 0
    if counted.shape[0] != n or (function != ROLLUP_COUNT and values.shape[0] != n):
        raise ValueError(f"expected {n} rows of counted and values")
    if seen.shape[0] < size or function < ROLLUP_COUNT or function > ROLLUP_MAX:
        raise ValueError(f"seen shorter than the {size} enterprises, or function {function} unknown")
    with nogil:
        for i in range(n):
            o = enterprise[i]
            if o < 0:
                continue
            if o >= size:
                bad = 1
                break
            out[o] = 0 if function == ROLLUP_COUNT else empty
            seen[o] = 0
        if not bad:
            for i in range(n):
                if not counted[i]:
                    continue
                o = enterprise[i]
                if o < 0:
                    bad = 1
                    break
                if function == ROLLUP_COUNT:
                    out[o] += 1
                    continue
                v = values[i]
                if not seen[o]:
                    seen[o] = 1
                    out[o] = v
                elif function == ROLLUP_SUM:
                    out[o] = <int64_t>(<uint64_t>out[o] + <uint64_t>v)
                elif v > out[o]:
                    out[o] = v
    if bad:
        raise ValueError(f"a case's enterprise out of range 0..{size - 1}, or a counted case of none")


# --- window_bounds ------------------------------------------------------------------------

def window_bounds(const int64_t[::1] owner, const int64_t[::1] offset, const int64_t[::1] start_of,
                  int64_t owners, int64_t span):
    """Per case (``owner`` >= 0 below ``owners``, ``offset`` its day's number 0..span-2): the
    order sorting the cases by (owner, day), stable, and per sorted case ``hi``, the first
    sorted case of its owner and day, and ``lo``, the first sorted case of its owner on or
    after ``start_of[offset]`` (its window's first day, clipped to 0..span-1). The sort is
    one radix sort of (owner, day) keys with their cases (``_sort_pairs``: two counting passes,
    the second scattering into a million owners, took 0.12 CPU-s a million cases); the passes
    after it read the keys in order rather than at the case's row."""
    cdef Py_ssize_t n = owner.shape[0], i, k, low, high, mid, segment
    if offset.shape[0] != n:
        raise ValueError(f"expected {n} days, got {offset.shape[0]}")
    if n >= 1 << 31 or owners >= 1 << 31 or span >= 1 << 31:
        raise ValueError(f"{n} cases of {owners} enterprises over {span} days: too many for the sort")
    for i in range(n):
        if owner[i] < 0 or owner[i] >= owners or offset[i] < 0 or offset[i] >= span:
            raise ValueError(f"case {i}: owner {owner[i]} or day {offset[i]} out of range")
    sort_array = np.empty(n, np.int64)
    hi_array = np.empty(n, np.int64)
    lo_array = np.empty(n, np.int64)
    keys_array = np.empty((2, max(n, 1)), np.uint64)
    index_array = np.empty((2, max(n, 1)), np.int32)
    cdef int64_t[::1] sort = sort_array, hi = hi_array, lo = lo_array
    cdef uint64_t[:, ::1] keys = keys_array
    cdef int32_t[:, ::1] index = index_array
    cdef int day_bits = _bits(span), side
    cdef uint64_t day_mask = (<uint64_t>1 << day_bits) - 1, key, start_key
    cdef uint64_t* ordered
    cdef int64_t start, d, day
    with nogil:
        for i in range(n):
            keys[0, i] = (<uint64_t>owner[i] << day_bits) | <uint64_t>offset[i]
            index[0, i] = <int32_t>i
        side = _sort_pairs_packed(&keys[0, 0], &index[0, 0], &keys[1, 0], &index[1, 0], n, day_bits + _bits(owners))
        ordered = &keys[side, 0]
        segment = 0
        for k in range(n):
            sort[k] = index[side, k]
            key = ordered[k]
            if k == 0 or (key >> day_bits) != (ordered[k - 1] >> day_bits):
                segment = k
                hi[k] = k
            elif key != ordered[k - 1]:
                hi[k] = k
            else:
                hi[k] = hi[k - 1]
            day = <int64_t>(key & day_mask)
            d = start_of[day]
            start = 0 if d < 0 else (span - 1 if d > span - 1 else d)
            start_key = (key & ~day_mask) | <uint64_t>start
            if start <= day:  # (always: a window looks back) among the cases before it
                low = segment
                high = k
                while low < high:
                    mid = (low + high) >> 1
                    if ordered[mid] < start_key:
                        low = mid + 1
                    else:
                        high = mid
            else:
                low = k + 1
                while low < n and (ordered[low] >> day_bits) == (key >> day_bits) and ordered[low] < start_key:
                    low += 1
            lo[k] = low
    return sort_array, hi_array, lo_array


# --- superseded_texts ---------------------------------------------------------------------

def superseded_texts(const uint8_t[::1] fired, const int64_t[::1] rows, const int64_t[::1] winner_label,
                     const int64_t[::1] winner_key, const int32_t[::1] label_offsets, const uint8_t[::1] label_data,
                     const offset_t[::1] key_offsets, const uint8_t[::1] key_data):
    """One fine slot's ``superseded_by`` (engine/cases/_acts.py) as the buffers of an Arrow
    string array: per fired row (the rows where ``fired`` is set, in row order) the text
    "label (case_id)" of the fine that supersedes it, null where none does. ``rows``: the
    slot's superseded rows (any order, each once); ``winner_label[i]`` and ``winner_key[i]``:
    the label (of ``label_offsets``/``label_data``) and the case_id (of ``key_offsets``/
    ``key_data``) of the fine superseding ``rows[i]``. Returns (count of fired rows, int32
    offsets, validity bitmap or None, data), written once where Arrow's take of the case_ids,
    its join of four columns and a take of that into the fired rows copied every text three
    times.
    """
    cdef Py_ssize_t n = fired.shape[0], m = rows.shape[0], labels = label_offsets.shape[0] - 1
    cdef Py_ssize_t keys = key_offsets.shape[0] - 1, i, k, count = 0, out, next_ = 0, ahead
    cdef int64_t r, widest_label = 0, widest_key = 0, length, end = 0, label, key
    if winner_label.shape[0] != m or winner_key.shape[0] != m:
        raise ValueError(f"expected {m} winners, got {winner_label.shape[0]} labels and {winner_key.shape[0]} keys")
    if m >= (<int64_t>1 << 31):
        raise ValueError(f"{m} superseded fines in one slot: too many")
    entry_array = np.full(n, -1, np.int32)  # per row: its entry of ``rows``, -1: none
    cdef int32_t[::1] entry = entry_array
    for i in range(m):
        r = rows[i]
        if r < 0 or r >= n or not fired[r] or entry[r] >= 0:
            raise ValueError(f"superseded row {r}: not a fired row of the slot, or given twice")
        if winner_label[i] < 0 or winner_label[i] >= labels or winner_key[i] < 0 or winner_key[i] >= keys:
            raise ValueError(f"superseded row {r}: label {winner_label[i]} or case_id {winner_key[i]} out of range")
        entry[r] = <int32_t>i
    for k in range(labels):
        widest_label = max(widest_label, label_offsets[k + 1] - label_offsets[k])
    for k in range(keys):
        widest_key = max(widest_key, key_offsets[k + 1] - key_offsets[k])
    if m * (widest_label + 3 + widest_key) >= (<int64_t>1 << 31):
        raise ValueError(f"{m} superseded_by texts of up to {widest_label + 3 + widest_key} bytes: "
                         "more than a string array holds")
    # the entries in row order, so that the winners' case_ids (at random places of the
    # texts, a miss each) are asked for a few entries ahead of their copy
    sequence_array = np.empty(max(m, 1), np.int32)
    data_array = np.empty(max(m * (widest_label + 3 + widest_key), 1), np.uint8)
    cdef int32_t[::1] sequence = sequence_array
    cdef uint8_t[::1] data = data_array
    cdef bint texts = key_data.shape[0] != 0
    with nogil:
        for k in range(n):
            if entry[k] >= 0:
                sequence[next_] = entry[k]
                next_ += 1
            count += fired[k] != 0
    offsets_array = np.empty(count + 1, np.int32)
    valid_array = np.zeros((count + 7) // 8, np.uint8)
    cdef int32_t[::1] offsets = offsets_array
    cdef uint8_t[::1] valid = valid_array
    with nogil:
        offsets[0] = 0
        out = 0
        next_ = 0
        for k in range(n):
            if not fired[k]:
                continue
            i = entry[k]
            if i >= 0:
                # the winners of the entries in row order are at random places too (``rows``
                # come in act order): asked for first, then their case_id's offset, then text
                ahead = next_ + 3 * AHEAD
                if ahead < m:
                    __builtin_prefetch(&winner_key[sequence[ahead]])
                    __builtin_prefetch(&winner_label[sequence[ahead]])
                ahead = next_ + 2 * AHEAD
                if ahead < m:
                    __builtin_prefetch(&key_offsets[winner_key[sequence[ahead]]])
                ahead = next_ + AHEAD
                if ahead < m and texts:
                    __builtin_prefetch(&key_data[0] + key_offsets[winner_key[sequence[ahead]]])
                next_ += 1
                valid[out >> 3] |= <uint8_t>(1 << (out & 7))
                label = winner_label[i]
                key = winner_key[i]
                length = label_offsets[label + 1] - label_offsets[label]
                if length:
                    memcpy(&data[end], &label_data[label_offsets[label]], length)
                end += length
                data[end] = 32  # " ("
                data[end + 1] = 40
                end += 2
                length = key_offsets[key + 1] - key_offsets[key]
                if length:
                    memcpy(&data[end], &key_data[key_offsets[key]], length)
                end += length
                data[end] = 41  # ")"
                end += 1
            out += 1
            offsets[out] = <int32_t>end
    return count, offsets_array, None if m == count else valid_array, data_array[:end]


# --- lighter_law -----------------------------------------------------------------------

def lighter_law(const uint8_t[:, ::1] fired, const int64_t[:, ::1] amounts, const uint8_t[:, ::1] sanctions,
                const int64_t[:, ::1] dates, const int64_t[::1] fired_policy, const int64_t[::1] amount_policy,
                const int64_t[::1] sanction_policy, const int64_t[::1] date_policy, const int64_t[::1] statute_of,
                const uint8_t[:, ::1] in_force, const int64_t[::1] act, const int64_t[::1] decision,
                const int64_t[::1] differs, const int64_t[::1] finding_rule, const int64_t[::1] finding_fen,
                const uint8_t[::1] finding_fine, Py_ssize_t statutes):
    """行政处罚法 art 37 over the outputs of one kernel pass under the laws of every period
    the rows' dates fall in (engine/cases/_law.py's ``score_by_law`` when one pass scored every
    row): per statute and row of ``differs`` (law and decision dates in two periods) the
    severity under the law of each date, as ``_law._severity`` sums it (fines, list entries,
    other payable amounts in fen: ``finding_fen`` per finding, 0 where not payable; the
    outputs of a version not in force in the period left out), and whether the later law is
    taken, where strictly lighter, as ``_law.choose`` takes it; and per version whether its
    outputs count at each row: in force in the period that applies to the row for its
    statute. (``_Outputs.adopt``'s masks, a put of the later law's outputs and ``choose``'s
    gathers and copies, 0.4 CPU-s at 2 M cases, become these sums and one mask per row of
    outputs.)

    ``*_policy``: the policy (version) of each output row; ``statute_of``: per policy its
    statute (0..statutes-1); ``in_force``: (policies, periods); ``act``, ``decision``: the
    period of each row's law and decision date. Returns (take (statutes, differs) uint8,
    severity (statutes, 2, 3, differs) int64: old then new, keep (policies, rows) uint8: set
    only for the policies not in force in every period, everywhere (policies) uint8)."""
    cdef Py_ssize_t n = fired.shape[1], m = differs.shape[0], i, j, k, s, w
    cdef Py_ssize_t n_findings = amounts.shape[0], n_lists = sanctions.shape[0]
    cdef int64_t policy, amount, p, of, ol, oo, nf, nl, no
    if act.shape[0] != n or decision.shape[0] != n or amounts.shape[1] != n or sanctions.shape[1] != n \
            or dates.shape[1] != n:
        raise ValueError("the outputs and the periods are not of the same rows")
    if fired_policy.shape[0] != fired.shape[0] or amount_policy.shape[0] != n_findings \
            or sanction_policy.shape[0] != n_lists or date_policy.shape[0] != dates.shape[0] \
            or finding_rule.shape[0] != n_findings or finding_fen.shape[0] != n_findings \
            or finding_fine.shape[0] != n_findings:
        raise ValueError("an output row without its policy, or a finding without its rule")
    for i in range(m):
        if differs[i] < 0 or differs[i] >= n:
            raise ValueError(f"row {differs[i]} of differs is not a row of the outputs")
    if statute_of.shape[0] != in_force.shape[0]:
        raise ValueError(f"{statute_of.shape[0]} policies' statutes, {in_force.shape[0]} policies in force")
    for policy in range(statute_of.shape[0]):
        if statute_of[policy] < 0 or statute_of[policy] >= statutes:
            raise ValueError(f"policy {policy}: statute {statute_of[policy]} out of range")
    for owners in (np.asarray(fired_policy), np.asarray(amount_policy), np.asarray(sanction_policy),
                   np.asarray(date_policy)):
        if owners.size and (owners.min() < 0 or owners.max() >= in_force.shape[0]):
            raise ValueError("an output row's policy out of range")
    for k in range(n_findings):
        if finding_fen[k] and (finding_rule[k] < 0 or finding_rule[k] >= fired.shape[0]):
            raise ValueError(f"finding {k}: rule {finding_rule[k]} out of range")
    take_array = np.zeros((statutes, m), np.uint8)
    severity_array = np.zeros((statutes, 2, 3, m), np.int64)
    cdef uint8_t[:, ::1] take = take_array
    cdef int64_t[:, :, :, ::1] severity = severity_array
    cdef Py_ssize_t periods = in_force.shape[1], policies = in_force.shape[0]
    for i in range(n):
        if act[i] < 0 or act[i] >= periods or decision[i] < 0 or decision[i] >= periods:
            raise ValueError(f"row {i}: period {act[i]} or {decision[i]} out of range")
    # per policy not in force in every period, whether its outputs count at each row (the
    # law date's period, or the decision date's where its statute took the later law)
    everywhere_array = np.asarray(in_force).all(axis=1).astype(np.uint8)
    cdef const uint8_t[::1] everywhere = everywhere_array
    keep_array = np.zeros((policies, n if n else 1), np.uint8)
    cdef uint8_t[:, ::1] keep = keep_array
    cdef const int64_t* place = &differs[0] if m else NULL
    with nogil:
        # a statute's severity under each law, row by row of differs: its periods read once
        # and its outputs' columns summed in the caches (a finding at a time over the rows
        # passed over every row's periods and severities once per finding: 0.08 s of the
        # 0.1 s a million cases spent here)
        for i in range(m):
            j = place[i]
            p = act[j]
            w = decision[j]
            for k in range(n_findings):
                if finding_fen[k] == 0 or not fired[finding_rule[k], j]:
                    continue
                policy = amount_policy[k]
                s = statute_of[policy]
                amount = amounts[k, j] * finding_fen[k]
                if in_force[policy, p]:
                    severity[s, 0, 0 if finding_fine[k] else 2, i] += amount
                if in_force[policy, w]:
                    severity[s, 1, 0 if finding_fine[k] else 2, i] += amount
            for k in range(n_lists):
                if not sanctions[k, j]:
                    continue
                policy = sanction_policy[k]
                s = statute_of[policy]
                if in_force[policy, p]:
                    severity[s, 0, 1, i] += sanctions[k, j]
                if in_force[policy, w]:
                    severity[s, 1, 1, i] += sanctions[k, j]
            for s in range(statutes):
                of, ol, oo = severity[s, 0, 0, i], severity[s, 0, 1, i], severity[s, 0, 2, i]
                nf, nl, no = severity[s, 1, 0, i], severity[s, 1, 1, i], severity[s, 1, 2, i]
                take[s, i] = nf < of or (nf == of and (nl < ol or (nl == ol and no < oo)))
        for policy in range(policies):
            if everywhere[policy]:
                continue
            for j in range(n):
                keep[policy, j] = in_force[policy, act[j]]
            s = statute_of[policy]
            for i in range(m):
                if take[s, i]:
                    keep[policy, place[i]] = in_force[policy, decision[place[i]]]
    return take_array, severity_array, keep_array, everywhere_array
