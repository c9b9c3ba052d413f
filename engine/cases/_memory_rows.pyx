# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The assessments of a stored chunk read from its JSON text in C, straight into columns.

The memory of earlier assessments (``_remembered.py``) is the imposed findings of the slots
marked ``assessed`` (and the rows of ``assessed_chunks``): on the second night of 1 M cases
~1.3 M rows of JSON, parsed by json.loads into a list per row and a Python object per
element, then made into Arrow columns a Python step per row, and the rows a later night
reports (status set) parsed only to be dropped. That was ~20% of the night's samples, and
the cyclic GC that json.loads' lists set off ~9% more (py-spy of bench/cases.py
--second-night). Here one pass over the chunk's UTF-8 bytes keeps the rows that are
assessments and lays the elements asked for out as the buffers of Arrow string columns (and
an int64 column of amounts), with no Python object per row.

A chunk is ``[row, ...]``, a row ``[element, ...]`` of strings, integers and nulls (any JSON
whitespace between them). Where ``status_place`` >= 0 (a finding chunk), a row is kept where
it has a non-null element at ``case_place`` and none (absent or null) at ``status_place``:
what ``_table`` keeps; every row otherwise (a chunk of ``assessed_chunks``).
A text element absent or null is null, and so is an empty one (``_texts``). Whatever this
reader does not expect (a true, a float or an object in a row, a text where an amount is, an
amount missing, a row or array cut short or followed by more text) makes it return None:
the caller parses that chunk with json, as before, and meets what it met before. It checks
the structure the engine writes, not every rule of JSON: a number it skips is not checked
digit by digit, nor an integer for leading zeros (json.loads would refuse "007"; no writer of
the store writes one).
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t

import numpy as np

cdef enum:
    _MOST_PLACES = 8  # text columns asked for at once


cdef struct Reader:
    const uint8_t* s
    Py_ssize_t n
    Py_ssize_t at
    bint bad


cdef inline void _gap(Reader* r) noexcept nogil:
    cdef uint8_t c
    while r.at < r.n:
        c = r.s[r.at]
        if c == 32 or c == 10 or c == 13 or c == 9:
            r.at += 1
        else:
            return


cdef inline int _hex(uint8_t c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


cdef inline int _four_hex(Reader* r, Py_ssize_t at) noexcept nogil:
    """The code unit of the 4 hex digits at ``at`` (-1: not 4 hex digits)."""
    cdef int v = 0, d, k
    if at + 4 > r.n:
        return -1
    for k in range(4):
        d = _hex(r.s[at + k])
        if d < 0:
            return -1
        v = v * 16 + d
    return v


cdef inline Py_ssize_t _string(Reader* r, uint8_t* out) noexcept nogil:
    """The JSON string at ``r.at`` (its opening quote) decoded into ``out`` (NULL: skipped);
    its length in bytes, -1 where it is not a string this reader reads (``r.bad``)."""
    cdef Py_ssize_t length = 0
    cdef uint8_t c
    cdef int unit, low
    cdef uint32_t point
    r.at += 1
    while r.at < r.n:
        c = r.s[r.at]
        if c == 34:
            r.at += 1
            return length
        if c == 92:
            if r.at + 1 >= r.n:
                break
            c = r.s[r.at + 1]
            if c == 117:  # \uXXXX, a surrogate pair as one code point
                unit = _four_hex(r, r.at + 2)
                if unit < 0:
                    break
                r.at += 6
                if 0xD800 <= unit <= 0xDBFF:
                    if r.at + 1 >= r.n or r.s[r.at] != 92 or r.s[r.at + 1] != 117:
                        break
                    low = _four_hex(r, r.at + 2)
                    if low < 0xDC00 or low > 0xDFFF:
                        break
                    r.at += 6
                    point = 0x10000 + ((<uint32_t>(unit - 0xD800)) << 10) + <uint32_t>(low - 0xDC00)
                elif 0xDC00 <= unit <= 0xDFFF:
                    break  # a lone low surrogate: not text UTF-8 can hold
                else:
                    point = <uint32_t>unit
                if point < 0x80:
                    if out != NULL:
                        out[length] = <uint8_t>point
                    length += 1
                elif point < 0x800:
                    if out != NULL:
                        out[length] = <uint8_t>(0xC0 | (point >> 6))
                        out[length + 1] = <uint8_t>(0x80 | (point & 0x3F))
                    length += 2
                elif point < 0x10000:
                    if out != NULL:
                        out[length] = <uint8_t>(0xE0 | (point >> 12))
                        out[length + 1] = <uint8_t>(0x80 | ((point >> 6) & 0x3F))
                        out[length + 2] = <uint8_t>(0x80 | (point & 0x3F))
                    length += 3
                else:
                    if out != NULL:
                        out[length] = <uint8_t>(0xF0 | (point >> 18))
                        out[length + 1] = <uint8_t>(0x80 | ((point >> 12) & 0x3F))
                        out[length + 2] = <uint8_t>(0x80 | ((point >> 6) & 0x3F))
                        out[length + 3] = <uint8_t>(0x80 | (point & 0x3F))
                    length += 4
                continue
            if c == 34 or c == 92 or c == 47:
                pass
            elif c == 98:
                c = 8
            elif c == 102:
                c = 12
            elif c == 110:
                c = 10
            elif c == 114:
                c = 13
            elif c == 116:
                c = 9
            else:
                break
            if out != NULL:
                out[length] = c
            length += 1
            r.at += 2
            continue
        if c < 32:
            break  # a control character JSON must escape
        if out != NULL:
            out[length] = c
        length += 1
        r.at += 1
    r.bad = True
    return -1


cdef inline bint _integer(Reader* r, int64_t* value) noexcept nogil:
    """The JSON integer at ``r.at`` (False: not an integer within int64, ``r.bad``)."""
    cdef bint negative = False
    cdef uint64_t_ v = 0
    cdef Py_ssize_t start
    cdef uint8_t c
    if r.s[r.at] == 45:
        negative = True
        r.at += 1
    start = r.at
    while r.at < r.n:
        c = r.s[r.at]
        if c < 48 or c > 57:
            break
        if r.at - start >= 18:  # (19 digits may not fit)
            r.bad = True
            return False
        v = v * 10 + (c - 48)
        r.at += 1
    if r.at == start or (r.at < r.n and (r.s[r.at] == 46 or r.s[r.at] == 101 or r.s[r.at] == 69)):
        r.bad = True  # no digits, or a fraction or exponent: not an amount
        return False
    value[0] = -<int64_t>v if negative else <int64_t>v
    return True


ctypedef unsigned long long uint64_t_

# what an element was
cdef enum:
    _NULL = 0
    _TEXT = 1
    _NUMBER = 2


cdef inline int _skip_number(Reader* r) noexcept nogil:
    """Any JSON number (an element not read): skipped."""
    cdef uint8_t c
    cdef Py_ssize_t start = r.at
    while r.at < r.n:
        c = r.s[r.at]
        if (48 <= c <= 57) or c == 45 or c == 43 or c == 46 or c == 101 or c == 69:
            r.at += 1
        else:
            break
    if r.at == start:
        r.bad = True
    return _NUMBER


cdef inline bint _null(Reader* r) noexcept nogil:
    if r.at + 4 <= r.n and r.s[r.at + 1] == 117 and r.s[r.at + 2] == 108 and r.s[r.at + 3] == 108:
        r.at += 4
        return True
    r.bad = True
    return False


cdef inline int _next_element(Reader* r) noexcept nogil:
    """After an array's element: 1 where another follows (past its ','), 0 where the array
    ends (past its ']'), -1 (``r.bad``) for anything else."""
    _gap(r)
    if r.at < r.n:
        if r.s[r.at] == 44:
            r.at += 1
            return 1
        if r.s[r.at] == 93:
            r.at += 1
            return 0
    r.bad = True
    return -1


def assessment_columns(const uint8_t[::1] text, tuple text_places, Py_ssize_t amount_place,
                       Py_ssize_t case_place, Py_ssize_t status_place):
    """The kept rows of the chunk ``text`` (see the module): ``(n, texts, amounts)``, ``texts``
    per place of ``text_places`` ``(offsets int32, data uint8, valid bool)`` (numpy), ``amounts``
    the int64 elements at ``amount_place`` (None where it is -1); None where the chunk is not
    one this reader reads."""
    cdef Py_ssize_t places = len(text_places)
    if places > _MOST_PLACES:
        raise ValueError(f"at most {_MOST_PLACES} text places")
    cdef Py_ssize_t n = text.shape[0]
    cdef Py_ssize_t most_rows = n // 3 + 1  # a row is at least "[]," long
    cdef Py_ssize_t place_of[_MOST_PLACES]
    cdef Py_ssize_t k, p
    cdef Py_ssize_t widest = 0
    for k in range(places):
        place_of[k] = text_places[k]
        if place_of[k] + 1 > widest:
            widest = place_of[k] + 1
    if amount_place + 1 > widest:
        widest = amount_place + 1
    if case_place + 1 > widest:
        widest = case_place + 1
    if status_place + 1 > widest:
        widest = status_place + 1
    # (empty, not zeros: every element up to the rows kept is written, and zeroing the bound's
    # ~20 MB per column of a chunk took as long as the reading, in the case stage's heap)
    offsets = [np.empty(most_rows + 1, np.int64) for _ in range(places)]
    datas = [np.empty(max(n, 1), np.uint8) for _ in range(places)]
    valids = [np.empty(most_rows, np.bool_) for _ in range(places)]
    amounts = np.empty(most_rows if amount_place >= 0 else 1, np.int64)
    cdef int64_t* offset_of[_MOST_PLACES]
    cdef uint8_t* data_of[_MOST_PLACES]
    cdef uint8_t* valid_of[_MOST_PLACES]
    cdef int64_t[::1] offset_view
    cdef uint8_t[::1] data_view
    cdef uint8_t[::1] valid_view
    for k in range(places):
        offset_view = offsets[k]
        data_view = datas[k]
        valid_view = valids[k].view(np.uint8)
        offset_view[0] = 0
        offset_of[k] = &offset_view[0]
        data_of[k] = &data_view[0]
        valid_of[k] = &valid_view[0]
    cdef int64_t[::1] amount_view = amounts
    cdef int64_t* amount_at = &amount_view[0]
    # per element of the row being read: where its text lies in the chunk (start of the
    # string, -1: not a text) and its amount
    cdef Py_ssize_t[64] start_of
    cdef int[64] what
    cdef int64_t row_amount
    cdef bint has_amount
    cdef Reader r
    cdef Py_ssize_t kept = 0, element, length, row_end
    cdef Py_ssize_t[_MOST_PLACES] used
    cdef uint8_t c
    if widest > 64:
        return None
    r.s = &text[0] if n else NULL
    r.n = n
    r.at = 0
    r.bad = False
    for k in range(places):
        used[k] = 0
    with nogil:
        _gap(&r)
        if r.at >= r.n or r.s[r.at] != 91:
            r.bad = True
        else:
            r.at += 1
            _gap(&r)
            if r.at < r.n and r.s[r.at] == 93:
                r.at += 1
            else:
                while not r.bad:
                    _gap(&r)
                    if r.at >= r.n or r.s[r.at] != 91:
                        r.bad = True
                        break
                    r.at += 1
                    element = 0
                    has_amount = False
                    _gap(&r)
                    if r.at < r.n and r.s[r.at] == 93:
                        r.at += 1
                    else:
                        while True:
                            _gap(&r)
                            if r.at >= r.n:
                                r.bad = True
                                break
                            c = r.s[r.at]
                            if element < widest:
                                start_of[element] = -1
                            if c == 34:
                                if element < widest:
                                    start_of[element] = r.at
                                    what[element] = _TEXT
                                if _string(&r, NULL) < 0:
                                    break
                            elif c == 110:
                                if not _null(&r):
                                    break
                                if element < widest:
                                    what[element] = _NULL
                            elif c == 45 or (48 <= c <= 57):
                                if element == amount_place:
                                    if not _integer(&r, &row_amount):
                                        break
                                    has_amount = True
                                else:
                                    _skip_number(&r)
                                    if r.bad:
                                        break
                                if element < widest:
                                    what[element] = _NUMBER
                            else:
                                r.bad = True  # true, false, an object or an array: not read here
                                break
                            element += 1
                            if _next_element(&r) != 1:
                                break  # the row's end, or bad
                    if r.bad:
                        break
                    row_end = r.at
                    # the row read: kept where it is an assessment
                    if status_place < 0 or (element > case_place and what[case_place] != _NULL and (
                            element <= status_place or what[status_place] == _NULL)):
                        if amount_place >= 0:
                            if not has_amount:
                                r.bad = True  # an amount missing or null: json's reading fails as before
                                break
                            amount_at[kept] = row_amount
                        for k in range(places):
                            p = place_of[k]
                            length = 0
                            if p < element and what[p] == _TEXT:
                                r.at = start_of[p]
                                length = _string(&r, data_of[k] + used[k])
                            elif p < element and what[p] == _NUMBER:
                                r.bad = True  # a number where a text is: json's reading fails as before
                            if r.bad:
                                break
                            used[k] += length
                            offset_of[k][kept + 1] = used[k]
                            valid_of[k][kept] = length > 0
                        if r.bad:
                            break
                        kept += 1
                        r.at = row_end  # (decoding its texts moved it back)
                    if _next_element(&r) != 1:
                        break  # the chunk's end, or bad
            if not r.bad:
                _gap(&r)
                if r.at != r.n:
                    r.bad = True
    if r.bad:
        return None
    for k in range(places):
        if used[k] >= 2**31:
            return None
    texts = [(offsets[k][:kept + 1].astype(np.int32), datas[k][:used[k]].copy(), valids[k][:kept].copy())
             for k in range(places)]
    return kept, texts, (amounts[:kept].copy() if amount_place >= 0 else None)
