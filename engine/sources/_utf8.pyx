# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A slice of a CSV file as UTF-8 with each undecodable byte written as its private-use
character U+F700 + byte (engine/sources/_encoding.py UNDECODABLE), in C and without the GIL.

This is what decoding the slice with that error handler and encoding it again gives, byte for
byte: a byte is undecodable when no well-formed UTF-8 sequence (Unicode Table 3-7, the one
Python's decoder accepts) starts at it and it is not inside one; Python's error ranges (the
maximal subparts) cover exactly those bytes, each mapped on its own. Decoding a 4 MiB slice in
Python built a str of it under the GIL (~7 ms), once per slice of a registry whose malformed
lines do not decode; here the valid runs are copied as they are, in parallel with the other
slices' parsing.
"""

from libc.stdint cimport uint8_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize

import numpy as np

cdef extern from *:
    """
    #include <stdint.h>
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    /* Of the bytes p[0..15], as 16-bit masks (bit i: byte i): the line ends (LF), the
       separators, and the quotes and CRs. */
    static inline void ecorules_masks16(const uint8_t* p, uint8_t separator, unsigned* ends, unsigned* separators,
                                        unsigned* odd) {
    #if defined(__SSE2__)
        __m128i v = _mm_loadu_si128((const __m128i*) p);
        *ends = (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(0x0A)));
        *separators = (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8((char) separator)));
        *odd = (unsigned) _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(0x22)),
                                                         _mm_cmpeq_epi8(v, _mm_set1_epi8(0x0D))));
    #else
        unsigned i, e = 0, s = 0, o = 0;
        for (i = 0; i < 16; i++) {
            e |= (unsigned) (p[i] == 0x0A) << i;
            s |= (unsigned) (p[i] == separator) << i;
            o |= (unsigned) (p[i] == 0x22 || p[i] == 0x0D) << i;
        }
        *ends = e; *separators = s; *odd = o;
    #endif
    }
    static inline int ecorules_ctz16(unsigned x) {
    #if defined(__GNUC__) || defined(__clang__)
        return __builtin_ctz(x);
    #else
        int n = 0; while (!(x & 1)) { x >>= 1; n++; } return n;
    #endif
    }
    /* the set bits of each byte value: a popcount without -mpopcnt's instruction in two
       loads (the bit-twiddling count took 12 instructions, called twice a line of a slice) */
    static const uint8_t ecorules_bits8[256] = {
    #define ECORULES_B2(n) n, n + 1, n + 1, n + 2
    #define ECORULES_B4(n) ECORULES_B2(n), ECORULES_B2(n + 1), ECORULES_B2(n + 1), ECORULES_B2(n + 2)
    #define ECORULES_B6(n) ECORULES_B4(n), ECORULES_B4(n + 1), ECORULES_B4(n + 1), ECORULES_B4(n + 2)
        ECORULES_B6(0), ECORULES_B6(1), ECORULES_B6(1), ECORULES_B6(2)
    #undef ECORULES_B6
    #undef ECORULES_B4
    #undef ECORULES_B2
    };
    static inline unsigned ecorules_bits16(unsigned x) {  /* x < 2**16 */
        return (unsigned) ecorules_bits8[x & 0xFFu] + ecorules_bits8[(x >> 8) & 0xFFu];
    }
    """
    void ecorules_masks16(const uint8_t* p, uint8_t separator, unsigned* ends, unsigned* separators,
                          unsigned* odd) nogil
    int ecorules_ctz16(unsigned x) nogil
    unsigned ecorules_bits16(unsigned x) nogil


cdef inline Py_ssize_t _sequence(const uint8_t* text, Py_ssize_t at, Py_ssize_t size) noexcept nogil:
    """The length of the well-formed sequence starting at ``text[at]``; 0 if none does."""
    cdef uint8_t lead = text[at], second
    if lead < 0x80:
        return 1
    # the common case first: a CJK character, E1-EC or EE-EF and two continuation bytes
    if 0xE1 <= lead <= 0xEF and lead != 0xED and at + 2 < size:
        return 3 if (text[at + 1] & 0xC0) == 0x80 and (text[at + 2] & 0xC0) == 0x80 else 0
    if lead < 0xC2:
        return 0
    if lead < 0xE0:
        return 2 if at + 1 < size and (text[at + 1] & 0xC0) == 0x80 else 0
    if lead < 0xF0:
        if at + 2 >= size:
            return 0
        second = text[at + 1]
        if lead == 0xE0:
            if second < 0xA0 or second > 0xBF:  # overlong
                return 0
        elif lead == 0xED:
            if second > 0x9F or second < 0x80:  # a surrogate
                return 0
        elif (second & 0xC0) != 0x80:
            return 0
        return 3 if (text[at + 2] & 0xC0) == 0x80 else 0
    if lead < 0xF5:
        if at + 3 >= size:
            return 0
        second = text[at + 1]
        if lead == 0xF0:
            if second < 0x90 or second > 0xBF:  # overlong
                return 0
        elif lead == 0xF4:
            if second > 0x8F or second < 0x80:  # past U+10FFFF
                return 0
        elif (second & 0xC0) != 0x80:
            return 0
        if (text[at + 2] & 0xC0) != 0x80 or (text[at + 3] & 0xC0) != 0x80:
            return 0
        return 4
    return 0


cdef inline bint _cjk(const uint8_t* p) noexcept nogil:
    """A three-byte character with a lead E1-EC or EE-EF (E0 and ED restrict their second
    byte: ``_sequence`` takes those): most of a registry's non-ASCII text."""
    return (<uint8_t> (p[0] - 0xE1)) <= 0x0E and p[0] != 0xED and (p[1] & 0xC0) == 0x80 and (p[2] & 0xC0) == 0x80


cdef Py_ssize_t _next_undecodable(const uint8_t* text, Py_ssize_t at, Py_ssize_t size) noexcept nogil:
    """The position of the first undecodable byte from ``at`` on (``size`` if none).

    A registry's text is about half CJK and half ASCII, in runs: an ASCII run is skipped 32
    bytes at a time, a run of CJK characters two at a time, the rest (and the ends of runs)
    one character at a time by ``_sequence``. One ``_sequence`` per character with an 8-byte
    ASCII test before each took ~5 ms a 4 MiB slice, the slowest step of reading a registry
    whose malformed lines do not decode."""
    cdef uint64_t a, b, c, d
    cdef Py_ssize_t length
    while at < size:
        while at + 32 <= size:
            memcpy(&a, text + at, 8)
            memcpy(&b, text + at + 8, 8)
            memcpy(&c, text + at + 16, 8)
            memcpy(&d, text + at + 24, 8)
            if (a | b | c | d) & 0x8080808080808080ULL:
                break
            at += 32
        while at < size and text[at] < 0x80:
            at += 1
        while at + 6 <= size and _cjk(text + at) and _cjk(text + at + 3):
            at += 6
        if at < size and text[at] >= 0x80:
            length = _sequence(text, at, size)
            if not length:
                return at
            at += length
    return size


cdef inline bint _appended(Py_ssize_t** places, Py_ssize_t* found, Py_ssize_t* capacity,
                           Py_ssize_t at) noexcept nogil:
    """``at`` put after the ``found`` positions of ``places``, its room doubled when full (the
    undecodable bytes of a slice are few, and unknown in number until found); False, nothing
    changed, where memory ran out."""
    cdef Py_ssize_t* grown
    if found[0] == capacity[0]:
        grown = <Py_ssize_t*> realloc(places[0], 2 * capacity[0] * sizeof(Py_ssize_t))
        if grown == NULL:
            return False
        places[0] = grown
        capacity[0] *= 2
    places[0][found[0]] = at
    found[0] += 1
    return True


def private_use_bytes(const uint8_t[::1] data):
    """``data`` with each undecodable byte as the UTF-8 of U+F700 + byte (three bytes: EF 9E
    or 9F, then 80-BF); None if every byte decodes. One scan records where they are; the
    copy between them is memcpy's."""
    cdef const uint8_t* text = &data[0] if data.shape[0] else NULL
    cdef Py_ssize_t size = data.shape[0], at = 0, found = 0, capacity = 64
    cdef Py_ssize_t* places = <Py_ssize_t*> malloc(capacity * sizeof(Py_ssize_t))
    cdef uint8_t* written
    if places == NULL:
        raise MemoryError()
    try:
        with nogil:
            at = _next_undecodable(text, 0, size)
            while at < size:
                if not _appended(&places, &found, &capacity, at):
                    break
                at = _next_undecodable(text, at + 1, size)
        if at < size:
            raise MemoryError()
        if not found:
            return None
        out = PyBytes_FromStringAndSize(NULL, size + 2 * found)
        written = <uint8_t*> PyBytes_AS_STRING(out)
        with nogil:
            _write(text, size, places, found, written)
        return out
    finally:
        free(places)


def malformed_lines_mended(const uint8_t[::1] data, uint8_t separator, Py_ssize_t fields):
    """``data`` (lines ended by \\n, no header) with each undecodable byte of its malformed
    lines as its private-use character, as :func:`private_use_bytes` writes it, and every
    other line as it is: (True, the new bytes), (True, None) if no malformed line holds an
    undecodable byte, (False, None) if the lines' fields cannot be told by counting
    separators (a quote, or a CR not ending a line: pyarrow splits and joins lines there).

    pyarrow fails a read on a malformed line that does not decode (it decodes the line for
    the invalid-row handler), and only on those: a well-formed line's bytes pass through as
    they are, checked afterwards like every other slice's. So only the malformed lines need
    their undecodable bytes written otherwise, and finding them is a count of separators, at
    memory speed, where decoding the whole slice checked every character (~3-5 ms a 4 MiB
    slice, in every slice of a registry with such lines all through it). A line with no
    separator and nothing on it is empty (pyarrow skips it), not malformed."""
    cdef const uint8_t* text = &data[0] if data.shape[0] else NULL
    cdef Py_ssize_t size = data.shape[0], found = 0, capacity = 64
    cdef Py_ssize_t* places
    cdef int done
    cdef uint8_t* written
    if separator in (0x22, 0x0A, 0x0D) or separator >= 0x80 or fields < 1:
        return False, None
    places = <Py_ssize_t*> malloc(capacity * sizeof(Py_ssize_t))
    if places == NULL:
        raise MemoryError()
    try:
        with nogil:
            done = _malformed_undecodable(text, size, separator, fields, &places, &found, &capacity)
        if done < 0:
            raise MemoryError()
        if not done:
            return False, None
        if not found:
            return True, None
        out = PyBytes_FromStringAndSize(NULL, size + 2 * found)
        written = <uint8_t*> PyBytes_AS_STRING(out)
        with nogil:
            _write(text, size, places, found, written)
        return True, out
    finally:
        free(places)


cdef inline bint _undecodable_of_line(const uint8_t* text, Py_ssize_t at, Py_ssize_t end, Py_ssize_t** places,
                                     Py_ssize_t* found, Py_ssize_t* capacity) noexcept nogil:
    """The undecodable bytes of the line ``text[at:end]`` put after ``places``; False where
    memory ran out."""
    cdef Py_ssize_t bad = _next_undecodable(text, at, end)
    while bad < end:
        if not _appended(places, found, capacity, bad):
            return False
        bad = _next_undecodable(text, bad + 1, end)
    return True


cdef inline bint _odd_byte(const uint8_t* text, Py_ssize_t at, Py_ssize_t size) noexcept nogil:
    """Whether ``text[at]`` keeps the fields of its line from being told by counting
    separators: a quote, or a CR not ending a line (pyarrow splits and joins lines there)."""
    return text[at] == 0x22 or (text[at] == 0x0D and at + 1 < size and text[at + 1] != 0x0A)


cdef int _malformed_undecodable(const uint8_t* text, Py_ssize_t size, uint8_t separator, Py_ssize_t fields,
                                Py_ssize_t** places, Py_ssize_t* found, Py_ssize_t* capacity) noexcept nogil:
    """The undecodable bytes of the lines of ``text`` whose separators do not make ``fields``
    fields, put after ``places``: 1, or 0 where a quote or a CR not ending a line keeps the
    fields from being told so, -1 where memory ran out. One pass, 16 bytes at a time, a
    line's ends, separators, quotes and CRs found together (SSE2 where the compiler has it):
    a memchr for the quotes, one for the CRs, then one for each line end and a count of the
    line after it were four passes over the slice and two calls a line (~0.3 CPU-s over the
    slices of 5 M rows, the most of a bad registry's extra reading)."""
    cdef unsigned ends, separators, odd, below
    cdef Py_ssize_t at = 0, start = 0, count = 0, end
    cdef int bit
    while at + 16 <= size:
        ecorules_masks16(text + at, separator, &ends, &separators, &odd)
        while odd:
            if _odd_byte(text, at + ecorules_ctz16(odd), size):
                return 0
            odd &= odd - 1
        while ends:
            bit = ecorules_ctz16(ends)
            below = (1u << bit) - 1  # the bytes before the line end
            count += ecorules_bits16(separators & below)
            separators &= ~below
            end = at + bit
            if end > start and count + 1 != fields:
                if not _undecodable_of_line(text, start, end, places, found, capacity):
                    return -1
            start, count = end + 1, 0
            ends &= ends - 1
        count += ecorules_bits16(separators)
        at += 16
    while at < size:
        if _odd_byte(text, at, size):
            return 0
        if text[at] == 0x0A:
            if at > start and count + 1 != fields:
                if not _undecodable_of_line(text, start, at, places, found, capacity):
                    return -1
            start, count = at + 1, 0
        elif text[at] == separator:
            count += 1
        at += 1
    if size > start and count + 1 != fields:
        if not _undecodable_of_line(text, start, size, places, found, capacity):
            return -1
    return 1


cdef void _write(const uint8_t* text, Py_ssize_t size, const Py_ssize_t* places, Py_ssize_t found,
                 uint8_t* written) noexcept nogil:
    cdef Py_ssize_t at = 0, index, bad
    cdef unsigned int character
    for index in range(found):
        bad = places[index]
        memcpy(written, text + at, bad - at)
        written += bad - at
        character = 0xF700 + text[bad]
        written[0] = 0xEF
        written[1] = 0x80 | ((character >> 6) & 0x3F)
        written[2] = 0x80 | (character & 0x3F)
        written += 3
        at = bad + 1
    memcpy(written, text + at, size - at)


def private_use_leads(const uint8_t[::1] data):
    """The positions in ``data`` (UTF-8) of the characters U+F700-U+F7FF, which begin EF 9C-9F:
    the undecodable bytes of a slice read decoded (:func:`private_use_bytes`); None if there
    are none. memchr finds the rare EF bytes, so a column without them costs a pass at memory
    speed, where numpy's comparisons made arrays of the column's size (~2 ms a slice)."""
    cdef const uint8_t* text = &data[0] if data.shape[0] else NULL
    cdef const uint8_t* found
    cdef Py_ssize_t size = data.shape[0], at = 0
    leads = None
    while at + 1 < size:
        with nogil:
            found = <const uint8_t*> memchr(text + at, 0xEF, size - 1 - at)
        if found == NULL:
            break
        at = found - text
        if 0x9C <= text[at + 1] <= 0x9F:
            if leads is None:
                leads = []
            leads.append(at)
        at += 1
    return leads



ctypedef fused offset_t:
    int
    long long


def private_use_restored(const offset_t[::1] offsets, const uint8_t[::1] data):
    """The values of a string array (``offsets``, ``data`` as ``string_buffers`` gives them)
    with each character U+F780-U+F7FF turned back into the byte it stands for (the private-use
    character of an undecodable byte >= 0x80, :func:`private_use_bytes`): (new offsets from 0,
    new data); None if no value holds one. What translating each such value in Python and
    replacing it in a copy of the column gave, in one pass: that cost ~5 ms a 4 MiB slice,
    more than decoding the slice. The data is valid UTF-8 (the slice was decoded), so an EF
    byte always leads a three-byte character, inside one value."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, at, begin, end, found = 0, capacity = 64
    cdef bint failed = False
    cdef const uint8_t* text = &data[0] if data.shape[0] else NULL
    cdef const uint8_t* next_ef
    cdef Py_ssize_t* places
    cdef offset_t[::1] moved
    cdef uint8_t[::1] written
    if n < 0 or offsets[n] - offsets[0] < 3:
        return None
    begin, end = offsets[0], offsets[n]
    places = <Py_ssize_t*> malloc(capacity * sizeof(Py_ssize_t))
    if places == NULL:
        raise MemoryError()
    try:
        with nogil:
            at = begin
            while at + 2 < end:
                next_ef = <const uint8_t*> memchr(text + at, 0xEF, end - 2 - at)
                if next_ef == NULL:
                    break
                at = next_ef - text
                if (text[at + 1] & 0xFE) == 0x9E:  # EF 9E or EF 9F: U+F780-U+F7FF
                    if not _appended(&places, &found, &capacity, at):
                        failed = True
                        break
                    at += 3
                else:
                    at += 1
        if failed:
            raise MemoryError()
        if not found:
            return None
        new_offsets = np.empty(n + 1, np.asarray(offsets).dtype)
        new_data = bytearray(end - begin - 2 * found)
        moved, written = new_offsets, new_data
        with nogil:
            _restore(offsets, text, places, found, moved, written)
        return new_offsets, new_data
    finally:
        free(places)


cdef void _restore(const offset_t[::1] offsets, const uint8_t* text, const Py_ssize_t* places, Py_ssize_t found,
                   offset_t[::1] moved, uint8_t[::1] written) noexcept nogil:
    """The copy of :func:`private_use_restored`: memcpy between the characters, each character
    a byte, each offset moved back by two bytes per character before it."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, begin = offsets[0], row, hit = 0, at = begin, to = 0, place
    cdef uint8_t* out = &written[0] if written.shape[0] else NULL
    for hit in range(found):
        place = places[hit]
        memcpy(out + to, text + at, place - at)
        to += place - at
        out[to] = 0x80 | ((text[place + 1] & 1) << 6) | (text[place + 2] & 0x3F)
        to += 1
        at = place + 3
    memcpy(out + to, text + at, offsets[n] - at)
    hit = 0
    for row in range(n + 1):
        while hit < found and places[hit] < offsets[row]:
            hit += 1
        moved[row] = <offset_t> (offsets[row] - begin - 2 * hit)
