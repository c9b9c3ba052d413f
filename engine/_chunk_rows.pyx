# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A case slot's findings as the JSON array of a store chunk, laid out in C in two passes
over the rows (the length, then the bytes), straight from the columns the case stage holds.

Built with Arrow, a chunk took a take of every text column (usccs, case ids: a copy of each
finding's texts), a regex over them for characters JSON must escape, a cast of the amounts to
text and an element-wise join of a dozen pieces, then a copy into a Python str: ~0.9 CPU-s of
a 2 M-case run (bench/cases.py). Here a text is read where it lies, through an index (the
case's row of ``cases.uscc``, its code into the case id dictionary), escaped only where a
byte must be, and written once into the UTF-8 bytes that are stored (as TEXT: the store's
``INSERT_*_UTF8`` statements). A str was decoded from them where any text was not ASCII (the
payers' district names) and encoded back by sqlite3's binding, both holding the GIL the
judging wants: ~14% of the writer's time in a 10 M-case run (py-spy, bench/cases.py).

A text column is ``(offsets, data, index)``: the offsets (int32 or int64) and data (uint8) of
an Arrow string array (``rules._arrow.string_buffers``), and per row the position of its text
there (int64; -1: none, written ``null``; ``index`` None: row i is text i). A row is
``[uscc,amount,case_id`` then the optional elements 3 to 11 of a case slot's rows (store version
14, ``store.sqlite.CASE_LAYOUT``) up to the last present one, the absent ones before it ``null``,
then ``]``: the elements most rows have (an act's id, a decision date) first, so that a row of an
act's fine is ``[uscc,amount,case_id,null,act_id]`` rather than version 13's four nulls more.
"""

from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint32_t
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize

import numpy as np


ctypedef unsigned long long uint64_t_


cdef struct Texts:
    const uint8_t* data
    const void* offsets
    const int64_t* index  # NULL: row i is text i
    bint wide  # int64 offsets
    bint given
    int64_t stop  # the end of the last text
    bint scanned  # clean and seen known (scan_texts, once per run for the case table's texts)
    uint8_t seen  # the OR of every byte
    bint clean  # no byte of the texts JSON must escape: each is copied as it is
    bint valid  # every text is UTF-8 (known where a byte >= 128 is seen: ASCII is)
    int64_t count  # texts


cdef const char* _HEX = b"0123456789abcdef"

# the optional elements after case_id (store.sqlite.CASE_LAYOUT): 3 payer, 4 act_id, 5 decided, 6
# status (1: superseded, 2: already_assessed; 0: imposed, left out), 7 superseded_by, 8
# assessed_in, 9 law_note, 10 supersedes, 11 reason of an assessment made anew (1: new decision,
# 2: reassessed; 0: first, left out); the codes are written as their digit
cdef enum:
    _FIRST = 3
    _LAST = 11


cdef inline int64_t _offset(const Texts* t, int64_t i) noexcept nogil:
    if t.wide:
        return (<const int64_t*>t.offsets)[i]
    return (<const int32_t*>t.offsets)[i]


cdef inline int64_t _at(const Texts* t, int64_t row) noexcept nogil:
    """The text's position of ``row`` (-1: none)."""
    if not t.given:
        return -1
    if t.index == NULL:
        return row
    return t.index[row]


cdef inline int64_t _escaped_length(const uint8_t* s, int64_t n, uint8_t* seen) noexcept nogil:
    """Bytes of ``s`` as the inside of a JSON string (json.dumps, ensure_ascii=False);
    ``seen``: the OR of its bytes is added (>= 128: not ASCII)."""
    cdef int64_t i, extra = 0
    cdef uint8_t c
    for i in range(n):
        c = s[i]
        seen[0] |= c
        if c == 34 or c == 92 or c == 8 or c == 9 or c == 10 or c == 12 or c == 13:
            extra += 1
        elif c < 32:
            extra += 5
    return n + extra


cdef inline char* _escaped(char* out, const uint8_t* s, int64_t n) noexcept nogil:
    cdef int64_t i
    cdef uint8_t c
    for i in range(n):
        c = s[i]
        if c >= 32 and c != 34 and c != 92:
            out[0] = <char>c
            out += 1
        elif c == 34 or c == 92:
            out[0] = 92
            out[1] = <char>c
            out += 2
        elif c == 8 or c == 9 or c == 10 or c == 12 or c == 13:
            out[0] = 92
            out[1] = b"b"[0] if c == 8 else (b"t"[0] if c == 9 else (b"n"[0] if c == 10 else (b"f"[0] if c == 12 else b"r"[0])))
            out += 2
        else:
            out[0] = 92
            out[1] = b"u"[0]
            out[2] = b"0"[0]
            out[3] = b"0"[0]
            out[4] = _HEX[c >> 4]
            out[5] = _HEX[c & 15]
            out += 6
    return out


cdef inline int _digits(int64_t v) noexcept nogil:
    cdef int n = 1
    cdef uint64_t_ u = (<uint64_t_>0 - <uint64_t_>v) if v < 0 else <uint64_t_>v
    while u >= 10:
        u //= 10
        n += 1
    return n + (1 if v < 0 else 0)



cdef inline char* _integer(char* out, int64_t v) noexcept nogil:
    cdef int n = _digits(v)
    cdef uint64_t_ u = (<uint64_t_>0 - <uint64_t_>v) if v < 0 else <uint64_t_>v
    cdef char* end = out + n
    cdef char* p = end
    while True:
        p -= 1
        p[0] = <char>(48 + u % 10)
        u //= 10
        if u == 0:
            break
    if v < 0:
        out[0] = b"-"[0]
    return end


cdef int _texts(Texts* t, object column, int64_t rows, str name) except -1:
    """Fill ``t`` from a text column (see the module), checking its index's bounds."""
    t.given = column is not None
    t.index = NULL
    t.clean = t.scanned = False
    t.valid = True
    if column is None:
        return 0
    offsets, data, index = column[:3]
    if len(column) > 3:  # (offsets, data, index, scan_texts(offsets, data))
        t.scanned, t.seen, t.clean, t.valid = True, column[3] & 255, not column[3] & 256, not column[3] & 512
    if offsets.dtype == np.int64:
        t.wide = True
    elif offsets.dtype == np.int32:
        t.wide = False
    else:
        raise TypeError(f"{name}: offsets of int32 or int64, not {offsets.dtype}")
    if not offsets.flags.c_contiguous or not data.flags.c_contiguous:
        raise ValueError(f"{name}: buffers must be contiguous")
    t.offsets = <const void*><size_t>offsets.ctypes.data
    t.data = <const uint8_t*><size_t>data.ctypes.data
    cdef int64_t texts = offsets.shape[0] - 1
    t.count = texts
    t.stop = int(offsets[texts])
    cdef const int64_t[::1] positions
    if index is None:
        if texts < rows:
            raise ValueError(f"{name}: {texts} texts for {rows} rows")
    else:
        positions = index
        if positions.shape[0] != rows:
            raise ValueError(f"{name}: an index of {positions.shape[0]} for {rows} rows")
        if rows and (np.max(index) >= texts or np.min(index) < -1):
            raise ValueError(f"{name}: an index outside its {texts} texts")
        t.index = &positions[0] if rows else NULL
        if rows == 0:
            t.given = False
    return 0


cdef inline void _scan(Texts* t, uint8_t* seen) noexcept nogil:
    """Whether the texts hold no byte JSON must escape (``t.clean``), and the OR of their
    bytes into ``seen``: one sequential pass over the whole buffer (the texts rows may use),
    instead of a branch per byte of every row, twice."""
    if not t.given:
        return
    if t.scanned:
        seen[0] |= t.seen
        return
    cdef int64_t i
    cdef const uint8_t* d = t.data
    cdef uint8_t acc = 0, bad = 0, c
    for i in range(_offset(t, 0), t.stop):
        c = d[i]
        acc |= c
        bad |= (c < 32) | (c == 34) | (c == 92)
    seen[0] |= acc
    t.clean = not bad
    # a text not ASCII is copied as its bytes are: the chunk (stored as the text its bytes
    # spell) is UTF-8 if each such text is; a decode of the chunk checked that, per chunk
    t.valid = acc < 128 or _all_utf8(t)


cdef bint _all_utf8(const Texts* t) noexcept nogil:
    cdef int64_t i, start
    for i in range(t.count):
        start = _offset(t, i)
        if _not_utf8(t.data + start, _offset(t, i + 1) - start) >= 0:
            return False
    return True


cdef int _refuse_not_utf8(const Texts** columns, Py_ssize_t n) except -1:
    cdef Py_ssize_t k
    for k in range(n):
        if columns[k].given and not columns[k].valid:
            raise ValueError("a text that is not UTF-8")
    return 0


def scan_texts(offsets, data) -> int:
    """What ``finding_rows`` learns by reading every byte of a text column's buffers: the OR
    of the bytes, plus 256 where some byte needs escaping in JSON, plus 512 where a text is
    not UTF-8. Given as a text column's 4th element, for texts many calls read (the case ids
    of a 2 M-case table: 20 MB a chunk)."""
    cdef Texts t
    cdef uint8_t seen = 0
    _texts(&t, (offsets, data, None), 0, "texts")
    with nogil:
        _scan(&t, &seen)
    return seen | (0 if t.clean else 256) | (0 if t.valid else 512)


cdef inline int64_t _text_length(const Texts* t, int64_t at, uint8_t* seen) noexcept nogil:
    cdef int64_t start = _offset(t, at)
    if t.clean:
        return _offset(t, at + 1) - start
    return _escaped_length(t.data + start, _offset(t, at + 1) - start, seen)


cdef inline char* _text(char* out, const Texts* t, int64_t at) noexcept nogil:
    cdef int64_t start = _offset(t, at), n = _offset(t, at + 1) - start
    out[0] = 34
    if t.clean:
        memcpy(out + 1, t.data + start, n)
        out += 1 + n
    else:
        out = _escaped(out + 1, t.data + start, n)
    out[0] = 34
    return out + 1


def finding_rows(uscc, const int64_t[::1] amounts, payer, case, *, const int8_t[::1] status=None, by=None,
                 const int64_t[::1] assessed_in=None, note=None, act=None, decided=None,
                 const int64_t[::1] supersedes=None, const int8_t[::1] reason=None):
    """The JSON array of the rows (see the module), as UTF-8 bytes: ``uscc``, ``payer`` (None: the uscc pays,
    left out), ``case``, ``by`` (superseded_by), ``note`` (a row's own law note), ``act``
    (act_id), ``decided`` (the decision date's ISO text) are text columns; ``amounts``,
    ``assessed_in`` and ``supersedes`` int64 (0: absent), ``status`` and ``reason`` int8 codes.
    Raises ValueError where a row has no uscc or case_id, or (``payer`` given) no payer."""
    cdef int64_t n = amounts.shape[0], i, k, at, last, total = 2 if amounts.shape[0] == 0 else 1
    cdef Texts t_uscc, t_payer, t_case, t_by, t_note, t_act, t_decided
    _texts(&t_uscc, uscc, n, "uscc")
    _texts(&t_payer, payer, n, "payer")
    _texts(&t_case, case, n, "case_id")
    _texts(&t_by, by, n, "superseded_by")
    _texts(&t_note, note, n, "law_note")
    _texts(&t_act, act, n, "act_id")
    _texts(&t_decided, decided, n, "decided")
    for name, column in (("status", status), ("assessed_in", assessed_in), ("supersedes", supersedes),
                         ("reason", reason)):
        if column is not None and len(column) != n:
            raise ValueError(f"{name}: {len(column)} values for {n} rows")
    if status is not None and n and (np.min(status) < 0 or np.max(status) > 2):
        raise ValueError("status: a code outside 0-2")
    if reason is not None and n and (np.min(reason) < 0 or np.max(reason) > 2):
        raise ValueError("reason: a code outside 0-2")
    cdef const int8_t* p_status = &status[0] if status is not None and n else NULL
    cdef const int64_t* p_assessed = &assessed_in[0] if assessed_in is not None and n else NULL
    cdef const int64_t* p_supersedes = &supersedes[0] if supersedes is not None and n else NULL
    cdef const int8_t* p_reason = &reason[0] if reason is not None and n else NULL
    cdef const Texts* columns[_LAST + 1]  # the text elements' columns (NULL: a number)
    cdef int64_t present[_LAST + 1]
    for k in range(_LAST + 1):
        columns[k] = NULL
    columns[3] = &t_payer
    columns[4] = &t_act
    columns[5] = &t_decided
    columns[7] = &t_by
    columns[9] = &t_note
    cdef uint8_t maxbyte = 0
    cdef bint missing = False
    with nogil:
        _scan(&t_uscc, &maxbyte)
        _scan(&t_payer, &maxbyte)
        _scan(&t_case, &maxbyte)
        _scan(&t_by, &maxbyte)
        _scan(&t_note, &maxbyte)
        _scan(&t_act, &maxbyte)
        _scan(&t_decided, &maxbyte)
    cdef const Texts* scanned[7]
    scanned[0], scanned[1], scanned[2], scanned[3] = &t_uscc, &t_payer, &t_case, &t_by
    scanned[4], scanned[5], scanned[6] = &t_note, &t_act, &t_decided
    _refuse_not_utf8(scanned, 7)
    # pass 1: every row's length, and whether every byte is ASCII (then a str of 1-byte
    # characters is written in place, with no decoding)
    with nogil:
        for i in range(n):
            at = _at(&t_uscc, i)
            if at < 0 or _at(&t_case, i) < 0 or (t_payer.given and _at(&t_payer, i) < 0):
                missing = True
                break
            total += 1 + 2 + _text_length(&t_uscc, at, &maxbyte) + 1 + _digits(amounts[i]) + 1
            total += 2 + _text_length(&t_case, _at(&t_case, i), &maxbyte)
            last = _last(i, columns, p_status, p_assessed, p_supersedes, p_reason, present)
            for k in range(_FIRST, last + 1):
                total += 1
                if not present[k]:
                    total += 4
                elif columns[k] != NULL:
                    total += 2 + _text_length(columns[k], present[k] - 1, &maxbyte)
                else:
                    total += _digits(present[k])
            total += 1 + 1  # ] and , (the last row's comma is the array's ])
    if missing:
        raise ValueError("a finding with an empty uscc, payer or case_id")
    cdef object out = PyBytes_FromStringAndSize(NULL, total)
    cdef char* start = PyBytes_AS_STRING(out)
    cdef char* p = start
    # pass 2: the bytes
    with nogil:
        p[0] = 91  # [
        p += 1
        for i in range(n):
            p[0] = 91
            p = _text(p + 1, &t_uscc, _at(&t_uscc, i))
            p[0] = 44
            p = _integer(p + 1, amounts[i])
            p[0] = 44
            p = _text(p + 1, &t_case, _at(&t_case, i))
            last = _last(i, columns, p_status, p_assessed, p_supersedes, p_reason, present)
            for k in range(_FIRST, last + 1):
                p[0] = 44
                p += 1
                if not present[k]:
                    memcpy(p, b"null", 4)
                    p += 4
                elif columns[k] != NULL:
                    p = _text(p, columns[k], present[k] - 1)
                else:
                    p = _integer(p, present[k])
            p[0] = 93  # ]
            p[1] = 44  # ,
            p += 2
        if n:
            p -= 1  # the last row's comma
        p[0] = 93
        p += 1
    if p - start != total:
        raise AssertionError(f"finding_rows: wrote {p - start} bytes of {total}")
    return out


cdef int64_t _not_utf8(const uint8_t* s, int64_t n) noexcept nogil:
    """The position of the first byte of ``s`` that is not well-formed UTF-8 (RFC 3629: no
    overlong form, no surrogate, nothing above U+10FFFF), -1 if none."""
    cdef int64_t i = 0, k, more
    cdef uint8_t c
    cdef uint32_t code
    cdef uint64_t_ word
    while i < n:
        if i + 8 <= n:  # ASCII 8 bytes at a time: most of a chunk's bytes
            memcpy(&word, s + i, 8)
            if not (word & <uint64_t_>0x8080808080808080ULL):
                i += 8
                continue
        c = s[i]
        if c < 128:
            i += 1
            continue
        if c >= 0xC2 and c <= 0xDF:
            more, code = 1, c & 0x1F
        elif c >= 0xE0 and c <= 0xEF:
            more, code = 2, c & 0x0F
        elif c >= 0xF0 and c <= 0xF4:
            more, code = 3, c & 0x07
        else:
            return i
        if i + more >= n:  # the character runs past the end
            return i
        for k in range(1, more + 1):
            if s[i + k] & 0xC0 != 0x80:
                return i
            code = (code << 6) | (s[i + k] & 0x3F)
        if (more == 2 and (code < 0x800 or (code >= 0xD800 and code <= 0xDFFF))) or (more == 3 and (code < 0x10000 or code > 0x10FFFF)):
            return i
        i += more + 1
    return -1


cdef inline int64_t _last(int64_t i, const Texts** columns, const int8_t* status, const int64_t* assessed,
                          const int64_t* supersedes, const int8_t* reason, int64_t* present) noexcept nogil:
    """Which of the optional elements row ``i`` has (``present[k]``: nonzero; for a text, its
    position + 1; for a number, the number), and the last of them (2: none)."""
    cdef int64_t k
    present[3] = _at(columns[3], i) + 1
    present[4] = _at(columns[4], i) + 1
    present[5] = _at(columns[5], i) + 1
    present[7] = _at(columns[7], i) + 1
    present[9] = _at(columns[9], i) + 1
    present[6] = status[i] if status != NULL else 0
    present[8] = assessed[i] if assessed != NULL else 0
    present[10] = supersedes[i] if supersedes != NULL else 0
    present[11] = reason[i] if reason != NULL else 0
    for k in range(_LAST, _FIRST - 1, -1):
        if present[k]:
            return k
    return _FIRST - 1


def factor_rows(keys, prefixes, values, shown):
    """(audit9, store version 13, ``engine/cases/_factors.py``) The JSON array of a slot's
    factor rows ``[case_id,{"name":value,...}]`` as UTF-8 bytes, as ``_factors.joined_rows``
    joins them with Arrow (a take, a cast to text and element-wise joins of every member, then
    a copy per chunk: ~11% of the writer's time in a 10 M-case run, py-spy): ``keys`` a text
    column (see the module), per member its ``"name":`` (``prefixes``, bytes), its int64
    ``values`` and ``shown`` (a bool array, or None: every row; a member not shown is left
    out of its row)."""
    cdef Py_ssize_t m = len(prefixes), j
    if m == 0 or len(values) != m or len(shown) != m:
        raise ValueError("factor_rows: a prefix, values and shown per member, at least one member")
    cdef int64_t n = len(values[0]), i, total = 2 if len(values[0]) == 0 else 1, at
    cdef Texts t_key
    _texts(&t_key, keys, n, "case_id")
    kept = []  # the arrays the pointers below read, alive until the end
    cdef bytes joined = b"".join(prefixes)
    cdef const char* names = joined
    cdef int64_t[::1] name_at = np.zeros(m + 1, np.int64)
    cdef int64_t[::1] value_ptrs = np.zeros(m, np.int64)
    cdef int64_t[::1] shown_ptrs = np.zeros(m, np.int64)
    for j in range(m):
        name_at[j + 1] = name_at[j] + len(prefixes[j])
        column = np.ascontiguousarray(values[j], np.int64)
        if column.shape[0] != n:
            raise ValueError(f"factor_rows: {column.shape[0]} values of a member for {n} rows")
        kept.append(column)
        value_ptrs[j] = <int64_t><size_t>column.ctypes.data
        if shown[j] is not None:
            flags = np.ascontiguousarray(shown[j], np.bool_)
            if flags.shape[0] != n:
                raise ValueError(f"factor_rows: {flags.shape[0]} flags of a member for {n} rows")
            kept.append(flags)
            shown_ptrs[j] = <int64_t><size_t>flags.ctypes.data
    cdef uint8_t maxbyte = 0
    cdef bint missing = False, first
    cdef const int64_t* v
    cdef const uint8_t* s
    with nogil:
        _scan(&t_key, &maxbyte)
    cdef const Texts* scanned[1]
    scanned[0] = &t_key
    _refuse_not_utf8(scanned, 1)
    with nogil:
        for i in range(n):
            at = _at(&t_key, i)
            if at < 0:
                missing = True
                break
            total += 1 + 2 + _text_length(&t_key, at, &maxbyte) + 2 + 2 + 1  # [ "key" ,{ }] ,
            first = True
            for j in range(m):
                s = <const uint8_t*><size_t>shown_ptrs[j]
                if s != NULL and not s[i]:
                    continue
                v = <const int64_t*><size_t>value_ptrs[j]
                total += (0 if first else 1) + name_at[j + 1] - name_at[j] + _digits(v[i])
                first = False
    if missing:
        raise ValueError("a case factor's row without a case_id")
    cdef object out = PyBytes_FromStringAndSize(NULL, total)
    cdef char* start = PyBytes_AS_STRING(out)
    cdef char* p = start
    with nogil:
        p[0] = 91
        p += 1
        for i in range(n):
            p[0] = 91
            p = _text(p + 1, &t_key, _at(&t_key, i))
            p[0] = 44
            p[1] = 123  # {
            p += 2
            first = True
            for j in range(m):
                s = <const uint8_t*><size_t>shown_ptrs[j]
                if s != NULL and not s[i]:
                    continue
                if not first:
                    p[0] = 44
                    p += 1
                first = False
                memcpy(p, names + name_at[j], name_at[j + 1] - name_at[j])
                p += name_at[j + 1] - name_at[j]
                v = <const int64_t*><size_t>value_ptrs[j]
                p = _integer(p, v[i])
            p[0] = 125  # }
            p[1] = 93
            p[2] = 44
            p += 3
        if n:
            p -= 1
        p[0] = 93
        p += 1
    if p - start != total:
        raise AssertionError(f"factor_rows: wrote {p - start} bytes of {total}")
    return out
