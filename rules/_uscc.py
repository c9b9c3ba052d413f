"""The unified social credit code (统一社会信用代码, USCC) of GB 32100-2015.

Every registry row is keyed by a USCC, so a typo in one must be caught before a deduction is
booked to the wrong enterprise. The code is 18 characters over a 31-character set (no I, O, S,
V, Z): position 1 is the registration department ('9' = industry and commerce), 2 the kind of
body ('1' enterprise, '2' individual business, '3' farmers' cooperative), 3-8 the
administrative division code of the registering office (digits, GB/T 2260), 9-17 the
organization code (GB 11714-1997: eight characters and its own check character) and 18 the
check character over positions 1-17 (weights 3^i mod 31).

Both check characters are verified, and reported as separate problems. Evidence for checking
the inner one: the codes used as examples in shared/notes/law.md satisfy both; a citizen ID
number (362322198709086409, hutool issue #1367) passes the outer check by chance and is caught
only by the inner one; and the Xiamen pilot codes issued before 2016 that fail the outer check
although they are real (91350203M0001QKT19, hutool #4119; aarioai/id-rule lists three more)
all pass the inner one. Problems are therefore ordered so that ``CHECK_CHARACTER`` means
"everything else is right, only position 18 disagrees", which is exactly the pilot-code case:
a caller that has to accept those codes can do so without accepting anything else.

The vectorized :func:`uscc_problems` and the scalar :func:`diagnose_uscc` agree on every input;
the scalar one also says where the problem is.
"""

from __future__ import annotations

import math
from enum import IntEnum

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules._arrow import bools, from_bools, from_numbers, numbers, string_buffers

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

_DIGITS = frozenset("0123456789")
_VALUE_OF = {c: i for i, c in enumerate(USCC_CHARSET)}


class UsccProblem(IntEnum):
    """Problem codes of :func:`uscc_problems`, in order of precedence (a code gets the first)."""

    VALID = 0
    MISSING = 1
    NOT_STRING = 2
    WRONG_LENGTH = 3
    BAD_CHARACTER = 4
    REGION_NOT_DIGITS = 5
    ORG_CHECK = 6
    CHECK_CHARACTER = 7


USCC_PROBLEM_MESSAGES = (
    "valid",
    "is missing",
    "is not a string",
    "does not have 18 characters",
    "has a character outside GB 32100's set (0-9, A-Z without I, O, S, V, Z)",
    "has a non-digit in the administrative division code (positions 3-8)",
    "organization code check character (position 17) is wrong (GB 11714)",
    "check character (position 18) is wrong",
)
"""Generic message of each :class:`UsccProblem`, indexed by its value."""


def check_character(first17: str) -> str:
    """The GB 32100 check character (position 18) of the first 17 characters of a code."""
    if len(first17) != 17 or any(c not in _VALUE_OF for c in first17):
        raise ValueError(f"expected 17 characters from {USCC_CHARSET!r}, got {first17!r}")
    total = sum(_VALUE_OF[c] * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[-total % 31]


def org_check_character(body: str) -> str:
    """The GB 11714 check character of an 8-character organization code body (positions 9-16).

    GB 11714 values letters A-Z as 10-35 (its own alphabet, unlike GB 32100's); a remainder
    of 10 is written 'X' and 11 is written '0'.
    """
    if len(body) != 8 or any(c not in _VALUE_OF for c in body):
        raise ValueError(f"expected 8 characters from {USCC_CHARSET!r}, got {body!r}")
    total = sum(int(c, 36) * w for c, w in zip(body, ORG_WEIGHTS, strict=True))
    r = 11 - total % 11
    return "X" if r == 10 else "0" if r == 11 else str(r)


def _is_missing(value: object) -> bool:
    """None, a float NaN or pandas.NA: what pyarrow's ``from_pandas`` conversion calls null."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ == "NAType" and type(value).__module__.startswith("pandas")


def _why_not_allowed(char: str) -> str:
    if char in "IOSVZ":
        return "GB 32100 excludes I, O, S, V, Z"
    if "a" <= char <= "z":
        return "GB 32100 uses upper-case letters only"
    return "GB 32100 allows only 0-9 and A-Z without I, O, S, V, Z"


def diagnose_uscc(code: object) -> tuple[UsccProblem, str | None]:
    """The first problem of ``code`` and a precise message (``(VALID, None)`` if none)."""
    if _is_missing(code):
        return UsccProblem.MISSING, "is missing"
    if not isinstance(code, str):
        return UsccProblem.NOT_STRING, f"is {type(code).__name__}, expected str"
    if len(code) != 18:
        return UsccProblem.WRONG_LENGTH, f"has {len(code)} characters, expected 18"
    for pos, char in enumerate(code, 1):
        if char not in _VALUE_OF:
            why = _why_not_allowed(char)
            return (
                UsccProblem.BAD_CHARACTER,
                f"character {char!r} at position {pos} is not allowed ({why})",
            )
    for pos in range(3, 9):
        if code[pos - 1] not in _DIGITS:
            return UsccProblem.REGION_NOT_DIGITS, (
                f"character {code[pos - 1]!r} at position {pos} is not allowed (positions 3-8 "
                "are the administrative division code, digits only)"
            )
    org = org_check_character(code[8:16])
    if code[16] != org:
        return UsccProblem.ORG_CHECK, (
            f"organization code check character (position 17) is {code[16]!r}, "
            f"expected {org!r} (GB 11714)"
        )
    check = check_character(code[:17])
    if code[17] != check:
        return UsccProblem.CHECK_CHARACTER, f"check character is {code[17]!r}, expected {check!r}"
    return UsccProblem.VALID, None


def uscc_problem(code: object) -> str | None:
    """None if ``code`` is a valid USCC, else a short precise reason."""
    return diagnose_uscc(code)[1]


def is_valid_uscc(code: object) -> bool:
    return diagnose_uscc(code)[0] is UsccProblem.VALID


# --- vectorized ---------------------------------------------------------------------------
# A code is read as nine 2-byte pairs; for each pair position a 65536-entry table gives the
# pair's contribution to every check at once, packed in one uint32, so validating a row is
# nine table look-ups and eight additions. Fields of the packed sum:
#   bits  0-8   GB 32100 residue: sum of value x weight mod 31, position 18 with weight 1,
#               so a valid code sums to 0 mod 31 (9 pairs x 30 < 512)
#   bits  9-11  count of non-digits in positions 3-8 (at most 6)
#   bits 12-16  count of characters outside the set (at most 18)
#   bits 17-22  GB 11714 residue: body value x weight mod 11 per pair, plus the value of the
#               position-17 check character ('X' = 10), so a valid code sums to 0 mod 11
#   bit  23     position 17 holds a letter other than 'X'
_VALUE = np.full(256, 255, np.uint8)
_VALUE[np.frombuffer(USCC_CHARSET.encode(), np.uint8)] = np.arange(31, dtype=np.uint8)
_BLOCK = 1 << 15  # rows per block: a block's temporaries stay in the L2 cache


def _pair_tables() -> np.ndarray:
    byte = np.arange(256)
    value = _VALUE[byte].astype(np.int64)
    allowed = value != 255
    digit = (byte >= ord("0")) & (byte <= ord("9"))
    gb11714 = np.array([int(chr(b), 36) if allowed[b] else 0 for b in byte], np.int64)
    main, org, flags = np.zeros((3, 18, 256), np.int64)
    for pos in range(18):
        main[pos] = np.where(allowed, value * (USCC_WEIGHTS + (1,))[pos] % 31, 0)
        flags[pos] = np.where(allowed, 0, 1 << 12)
        if 2 <= pos < 8:
            flags[pos] += np.where(digit, 0, 1 << 9)
        if 8 <= pos < 16:
            org[pos] = gb11714 * ORG_WEIGHTS[pos - 8] % 11
    org[16] = np.where(digit, byte - ord("0"), np.where(byte == ord("X"), 10, 0))
    flags[16] += np.where(allowed & ~digit & (byte != ord("X")), 1 << 23, 0)
    first, second = byte[None, :], byte[:, None]  # table index = first + 256 * second
    tables = np.empty((9, 65536), np.uint32)
    for k in range(9):
        a, b = 2 * k, 2 * k + 1
        packed = (
            (main[a][first] + main[b][second]) % 31
            + (((org[a][first] + org[b][second]) % 11) << 17)
            + flags[a][first]
            + flags[b][second]
        )
        tables[k] = packed.ravel()
    return tables


_PAIR_TABLES = _pair_tables()


def _packed_sums(mat: np.ndarray) -> np.ndarray:
    """Packed check sums (see above) of a C-contiguous (m, 18) uint8 matrix."""
    pairs = mat.view("<u2")
    total = np.take(_PAIR_TABLES[0], pairs[:, 0])
    part = np.empty_like(total)
    for k in range(1, 9):
        total += np.take(_PAIR_TABLES[k], pairs[:, k], out=part)
    return total


# fastcalc's one-pass check, offered by ecorules.fastcalc when it is imported (use_kernel_codes):
# rules/ imports nothing from fastcalc/ or engine/, so the kernel comes to it, not the reverse
_KERNEL: list = []


def use_kernel_codes(uscc_codes) -> None:
    """Check codes with ``uscc_codes`` (fastcalc's kernel: the same codes as numpy, ~10x faster)."""
    _KERNEL[:] = [uscc_codes]


def _kernel_codes():
    return _KERNEL[0] if _KERNEL else None


def _matrix_problems(mat: np.ndarray) -> np.ndarray:
    """Problem codes of a C-contiguous (m, 18) uint8 matrix of 18-character ASCII codes.

    In fastcalc's kernel once ecorules.fastcalc is imported (one pass, ~10x faster), else in
    numpy; the same codes.
    """
    kernel = _kernel_codes()
    if kernel is None:
        return _matrix_problems_numpy(mat)
    out = np.empty(mat.shape[0], np.uint8)
    kernel(mat, _PAIR_TABLES, out, UsccProblem.CHECK_CHARACTER, UsccProblem.ORG_CHECK,
           UsccProblem.REGION_NOT_DIGITS, UsccProblem.BAD_CHARACTER)
    return out


def _matrix_problems_numpy(mat: np.ndarray) -> np.ndarray:
    total = _packed_sums(mat)
    org = total >> 17  # residue, plus 64 for a letter other than 'X'
    out = np.where((total & 511) % 31 != 0, UsccProblem.CHECK_CHARACTER, 0).astype(np.uint8)
    out[(org % 11 != 0) | (org >= 64)] = UsccProblem.ORG_CHECK
    out[(total & (7 << 9)) != 0] = UsccProblem.REGION_NOT_DIGITS
    out[(total & (31 << 12)) != 0] = UsccProblem.BAD_CHARACTER
    return out


def _nulls(arr: pa.Array) -> np.ndarray:
    if not arr.null_count:
        return np.zeros(len(arr), bool)
    return bools(arr.is_null())


def _arrow_problems(arr: pa.Array) -> np.ndarray:
    if pa.types.is_dictionary(arr.type):
        codes = _arrow_problems(arr.dictionary)
        indices = numbers(arr.indices)
        out = codes[indices] if len(codes) else np.zeros(len(arr), np.uint8)
        out[_nulls(arr)] = UsccProblem.MISSING
        return out
    if pa.types.is_null(arr.type):
        return np.full(len(arr), UsccProblem.MISSING, np.uint8)
    if pa.types.is_string_view(arr.type):
        arr = arr.cast(pa.large_string())
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise TypeError(f"expected an Arrow string array, got type {arr.type}")
    n = len(arr)
    offsets, data = string_buffers(arr)
    nbytes = np.diff(offsets)
    null = _nulls(arr)
    ascii18 = (nbytes == 18) & ~null
    out = np.zeros(n, np.uint8)
    if ascii18.all():  # the usual case: 18-byte rows lie back to back, viewed in place
        for start in range(0, n, _BLOCK):
            stop = min(start + _BLOCK, n)
            out[start:stop] = _utf8_problems(data[offsets[start] : offsets[stop]].reshape(-1, 18))
        return out
    # a few odd rows (a real registry's): their characters counted, and the 18-byte rows copied
    # back to back by one Arrow filter (a memcpy, ~5x faster than gathering bytes by index),
    # rather than the characters of every row and a filter per block holding an odd row
    odd = np.flatnonzero(~ascii18)
    chars = numbers(pc.utf8_length(arr.take(from_numbers(odd))))
    out[odd[chars != 18]] = UsccProblem.WRONG_LENGTH
    out[odd[chars == 18]] = UsccProblem.BAD_CHARACTER  # non-ASCII inside (an odd row's bytes are not 18)
    out[null] = UsccProblem.MISSING
    picked = np.flatnonzero(ascii18)
    if picked.size:
        kept = arr.filter(from_bools(ascii18))
        kept_offsets, kept_data = string_buffers(kept)
        kept_data = kept_data[kept_offsets[0] : kept_offsets[-1]]
        for start in range(0, picked.size, _BLOCK):
            stop = min(start + _BLOCK, picked.size)
            out[picked[start:stop]] = _utf8_problems(kept_data[18 * start : 18 * stop].reshape(-1, 18))
    return out


def _utf8_problems(mat: np.ndarray) -> np.ndarray:
    """Like _matrix_problems for rows of 18 UTF-8 bytes, which may hold fewer characters."""
    out = _matrix_problems(mat)
    suspects = np.flatnonzero(out == UsccProblem.BAD_CHARACTER)
    if suspects.size:
        rows = mat[suspects]
        characters = ((rows & 0xC0) != 0x80).sum(axis=1)  # bytes that start a character
        out[suspects[characters != 18]] = UsccProblem.WRONG_LENGTH
    return out


def _unicode_problems(codes: np.ndarray) -> np.ndarray:
    """numpy 'U' arrays: UCS-4 code points, read in place (numpy already drops trailing NULs)."""
    n = codes.shape[0]
    width = codes.dtype.itemsize // 4
    lengths = np.strings.str_len(codes)
    out = np.where(lengths == 18, 0, UsccProblem.WRONG_LENGTH).astype(np.uint8)
    if width < 18 or n == 0:
        return out
    points = np.ascontiguousarray(codes).view(np.uint32).reshape(n, width)
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        rows = lengths[start:stop] == 18
        picked = slice(start, stop) if rows.all() else np.flatnonzero(rows) + start
        block = points[picked, :18]
        result = _matrix_problems(block.astype(np.uint8, order="C"))
        result[(block > 127).any(axis=1)] = UsccProblem.BAD_CHARACTER
        out[picked] = result
    return out


def _object_problems(codes: np.ndarray) -> np.ndarray:
    """Object arrays: through Arrow when they hold only str and missing values."""
    try:
        arr = pa.array(codes, from_pandas=True)
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        arr = None
    if arr is not None and (pa.types.is_string(arr.type) or pa.types.is_null(arr.type)):
        out = _arrow_problems(arr)
        # from_pandas may call more things null than _is_missing does: recheck those few.
        for i in np.flatnonzero(out == UsccProblem.MISSING):
            out[i] = diagnose_uscc(codes[i])[0]
        return out
    # Mixed types (bytes, numbers, unencodable strings): the scalar rules, one by one.
    return np.fromiter((diagnose_uscc(c)[0] for c in codes), np.uint8, len(codes))


_ORG_VALUE = np.zeros(256, np.int64)  # GB 11714's value of a character: digits, then A-Z as 10-35
_ORG_VALUE[np.frombuffer(USCC_CHARSET.encode(), np.uint8)] = [int(c, 36) for c in USCC_CHARSET]


def problem_messages(codes: list, problems: np.ndarray) -> list[str | None]:
    """:func:`diagnose_uscc`'s message of each code whose problem (from :func:`uscc_problems`)
    is a wrong length, a wrong check character or a wrong organization check character, as
    columns: a registry with 1% bad rows has thousands of distinct bad codes, and the scalar
    diagnosis of each cost more than scoring its row. None where the code is not plain ASCII
    or has another problem: the caller asks :func:`diagnose_uscc` for those."""
    out: list[str | None] = [None] * len(codes)
    checked = []  # positions of 18-character codes with a check character to compute
    # the members as plain ints, looked up once: an IntEnum member read in the loop went
    # through EnumType.__getattr__ for every code, a third of this function's time
    wrong_length, check_problems = int(UsccProblem.WRONG_LENGTH), (int(UsccProblem.CHECK_CHARACTER), int(UsccProblem.ORG_CHECK))
    listed = problems.tolist()
    for i, (code, problem) in enumerate(zip(codes, listed, strict=True)):
        if not isinstance(code, str) or not code.isascii():
            continue
        if problem == wrong_length:
            out[i] = f"has {len(code)} characters, expected 18"
        elif problem in check_problems:
            checked.append(i)
    if not checked:
        return out
    mat = np.frombuffer("".join(codes[i] for i in checked).encode(), np.uint8).reshape(-1, 18)
    main = _VALUE[mat[:, :17]].astype(np.int64) @ np.array(USCC_WEIGHTS, np.int64)
    expected = np.frombuffer(USCC_CHARSET.encode(), np.uint8)[(-main) % 31]
    org = (11 - (_ORG_VALUE[mat[:, 8:16]] @ np.array(ORG_WEIGHTS, np.int64)) % 11).tolist()
    expected = expected.tolist()
    org_check = int(UsccProblem.ORG_CHECK)
    for k, i in enumerate(checked):
        code = codes[i]
        if listed[i] == org_check:
            wanted = "X" if org[k] == 10 else "0" if org[k] == 11 else str(org[k])
            out[i] = (f"organization code check character (position 17) is {code[16]!r}, "
                      f"expected {wanted!r} (GB 11714)")
        else:
            out[i] = f"check character is {code[17]!r}, expected {chr(expected[k])!r}"
    return out


def uscc_problems(codes) -> np.ndarray:
    """Problem code (a :class:`UsccProblem` value, 0 = valid) of every code, as uint8.

    Accepts a 1-D numpy array of str ('U') or object, a pyarrow string array or chunked
    array (also large_string, string_view, dictionary), a pandas Series or any sequence.
    Nulls (None, NaN, pandas.NA, Arrow nulls) are ``MISSING``. Fastest on Arrow strings.
    """
    if isinstance(codes, pa.ChunkedArray):
        parts = [_arrow_problems(chunk) for chunk in codes.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, np.uint8)
    if isinstance(codes, pa.Array):
        return _arrow_problems(codes)
    if not isinstance(codes, np.ndarray) and hasattr(codes, "to_numpy"):  # pandas, polars
        codes = codes.to_numpy()
    if not isinstance(codes, np.ndarray):
        codes = np.fromiter(codes, dtype=object)  # always 1-D, whatever the items are
    if codes.ndim != 1:
        raise ValueError(f"expected a 1-D array of codes, got shape {codes.shape}")
    if codes.dtype.kind == "U":
        return _unicode_problems(codes)
    if codes.dtype == object:
        return _object_problems(codes)
    raise TypeError(f"expected str or object codes, got numpy dtype {codes.dtype}")


# --- creation ------------------------------------------------------------------------------
_CHARSET_BYTES = np.frombuffer(USCC_CHARSET.encode(), np.uint8)
_ORG_CHAR = np.frombuffer(b"?123456789X0", np.uint8)  # indexed by 11 - sum % 11
_MA_SPACE = 31**6  # 'MA' + six characters: organization codes issued since 2015
_OLD_SPACE = 10**8  # eight digits: organization codes issued before


def _digits(values: np.ndarray, base: int, count: int) -> np.ndarray:
    """(n, count) most-significant-first digits of ``values`` (0 <= values < base**count).

    One division splits each value in two halves of at most four digits, whose digits come
    from a table packed four bytes to a uint32: far fewer passes than a division per digit.
    """
    if not 0 < count <= 8 or base**count > 2**32:
        raise ValueError(f"cannot split {count} digits of base {base} into 32-bit halves")
    low = count // 2
    high = count - low
    table = np.zeros((base**high, 4), np.uint8)  # row v: the digits of v, right-aligned
    table[:, 4 - high :] = np.stack(np.unravel_index(np.arange(base**high), (base,) * high), 1)
    packed = table.view(np.uint32).ravel()
    values = values.astype(np.uint32)  # unsigned 32-bit division is far cheaper than int64
    hi = values // np.uint32(base**low)
    out = np.empty((values.shape[0], count), np.uint8)
    out[:, :high] = np.take(packed, hi).view(np.uint8).reshape(-1, 4)[:, 4 - high :]
    if low:
        lo = values - hi * np.uint32(base**low)
        out[:, high:] = np.take(packed, lo).view(np.uint8).reshape(-1, 4)[:, 4 - low :]
    return out


def _fill_check_characters(mat: np.ndarray) -> None:
    """Write positions 17 and 18 of an (n, 18) uint8 matrix whose positions 1-16 are set."""
    weight17 = USCC_WEIGHTS[16]
    for start in range(0, mat.shape[0], _BLOCK):
        block = mat[start : start + _BLOCK]
        block[:, 16:] = ord("0")  # value 0 in every sum: the packed sums cover positions 1-16
        total = _packed_sums(block)
        org = _ORG_CHAR[11 - (total >> 17) % 11]
        block[:, 16] = org
        residue = ((total & 511) + _VALUE[org].astype(np.uint32) * weight17) % 31
        block[:, 17] = _CHARSET_BYTES[-residue.astype(np.int64) % 31]


def _scramble(serials: np.ndarray, keys: np.ndarray, half_bits: int, space: int) -> np.ndarray:
    """A keyed bijection of [0, space) applied to ``serials`` (all < space <= 2**32).

    A Feistel network is a bijection of [0, 2**(2 * half_bits)) whatever its round function;
    values that land outside [0, space) are sent through it again until they fall inside
    (cycle walking), which keeps it a bijection of [0, space). Distinct serials therefore give
    distinct, random-looking values, in any order and any number of calls, with no retry.
    """
    mask = np.uint32((1 << half_bits) - 1)
    shift, bits = np.uint32(32 - half_bits), np.uint32(half_bits)
    out = serials.astype(np.uint32)
    pending = np.arange(out.shape[0])
    while pending.size:
        x = out[pending]
        left, right = x >> bits, x & mask
        for key in keys:  # round function: top bits of a multiplicative hash (mod 2**32)
            left, right = right, left ^ (((right ^ key) * np.uint32(0x9E3779B1)) >> shift)
        x = (left << bits) | right
        out[pending] = x
        pending = pending[x >= space]
    return out


def uscc_keys(rng: np.random.Generator) -> np.ndarray:
    """Round keys for :func:`uscc_from_serials`: four for new-style, four for old-style codes."""
    return rng.integers(0, 2**32, 8, dtype=np.uint32)


def uscc_from_serials(
    serials: np.ndarray,
    regions: np.ndarray,
    kinds: np.ndarray | str,
    old_style: np.ndarray,
    keys: np.ndarray,
) -> np.ndarray:
    """Valid codes as a numpy 'S18' array; distinct serials give distinct codes.

    ``regions`` are 6-digit administrative division codes (positions 3-8), ``kinds`` the kind
    character (position 2) per row or for all, as str or as uint8 ASCII codes; position 1 is
    '9' (industry and commerce). The organization code (positions 9-17) is 'MA' + six
    characters, as issued since 2015, or where ``old_style`` is set eight digits, as issued
    before; either comes from a keyed bijection of the serial, so codes made in separate calls
    (chunks of one registry) with the same ``keys`` never collide. Old-style codes need
    serials below 10**8; larger serials fall back to new-style.
    """
    serials = np.asarray(serials, dtype=np.int64)
    n = serials.shape[0]
    regions = np.broadcast_to(np.asarray(regions, dtype=np.int64), (n,))
    if n and (serials.min() < 0 or serials.max() >= _MA_SPACE):
        raise ValueError(f"serials must lie in [0, {_MA_SPACE})")
    if n and (regions.min() < 100000 or regions.max() > 999999):
        raise ValueError("regions must be 6-digit administrative division codes")
    kind_bytes = np.asarray(kinds).reshape(-1)
    if kind_bytes.dtype.kind in "US":  # characters; else already their ASCII codes
        kind_bytes = kind_bytes.astype("S1").view(np.uint8)
    if kind_bytes.size not in (1, n) or (_VALUE[kind_bytes] == 255).any():
        raise ValueError(f"kinds must be one character of {USCC_CHARSET!r} per row or for all")

    mat = np.empty((n, 18), np.uint8)
    mat[:, 0] = ord("9")
    mat[:, 1] = kind_bytes
    mat[:, 2:8] = _digits(regions, 10, 6) + ord("0")
    mat[:, 8] = ord("M")
    mat[:, 9] = ord("A")
    mat[:, 10:16] = _CHARSET_BYTES[_digits(_scramble(serials, keys[:4], 15, _MA_SPACE), 31, 6)]
    old = np.flatnonzero(np.broadcast_to(old_style, (n,)) & (serials < _OLD_SPACE))
    old_ids = _scramble(serials[old], keys[4:], 14, _OLD_SPACE)
    mat[old, 8:16] = _digits(old_ids, 10, 8) + ord("0")
    _fill_check_characters(mat)
    return mat.view("S18").ravel()


def make_uscc(
    rng: np.random.Generator,
    regions: np.ndarray,
    kinds: np.ndarray | str = "1",
    *,
    old_style_share: float = 0.35,
) -> np.ndarray:
    """``len(regions)`` distinct valid codes, as a numpy 'S18' array (see uscc_from_serials)."""
    regions = np.asarray(regions, dtype=np.int64)
    if regions.ndim != 1 or regions.shape[0] > _MA_SPACE:
        raise ValueError(
            f"expected a 1-D array of at most {_MA_SPACE} regions, got {regions.shape}"
        )
    n = regions.shape[0]
    keys = uscc_keys(rng)
    old = rng.random(n, dtype=np.float32) < old_style_share
    return uscc_from_serials(np.arange(n), regions, kinds, old, keys)
