"""The USCC checks (GB 32100-2015 and the inner GB 11714 check): scalar reasons, the
vectorized version agreeing with them on every kind of input, and code creation."""

import math

import numpy as np
import pyarrow as pa
import pytest
from ecorules.rules._uscc import (
    USCC_CHARSET,
    USCC_PROBLEM_MESSAGES,
    UsccProblem,
    check_character,
    diagnose_uscc,
    is_valid_uscc,
    make_uscc,
    org_check_character,
    problem_messages,
    uscc_from_serials,
    uscc_keys,
    uscc_problem,
    uscc_problems,
)
from hypothesis import given, settings
from hypothesis import strategies as st

# shared/notes/law.md: three valid codes (both checks hold) and one invalid.
LAW_VALID = ["91350200MA31E12PXF", "9144030071526726XG", "91410100123456788Y"]
LAW_INVALID = "91350203M0001QAY9B"


@pytest.mark.parametrize("code", LAW_VALID)
def test_law_examples_are_valid(code):
    assert uscc_problem(code) is None
    assert is_valid_uscc(code)
    assert check_character(code[:17]) == code[17]
    assert org_check_character(code[8:16]) == code[16]


def test_law_invalid_example_fails_on_the_check_character_only():
    assert uscc_problem(LAW_INVALID) == "check character is 'B', expected '9'"
    assert diagnose_uscc(LAW_INVALID)[0] is UsccProblem.CHECK_CHARACTER


@pytest.mark.parametrize(
    ("code", "problem", "message"),
    [
        (None, UsccProblem.MISSING, "is missing"),
        (float("nan"), UsccProblem.MISSING, "is missing"),
        (914101001234567, UsccProblem.NOT_STRING, "is int, expected str"),
        (b"91410100123456788Y", UsccProblem.NOT_STRING, "is bytes, expected str"),
        ("", UsccProblem.WRONG_LENGTH, "has 0 characters, expected 18"),
        ("91410100123456788", UsccProblem.WRONG_LENGTH, "has 17 characters, expected 18"),
        ("91410100123456788YY", UsccProblem.WRONG_LENGTH, "has 19 characters, expected 18"),
        (
            "9141I100123456788Y",
            UsccProblem.BAD_CHARACTER,
            "character 'I' at position 5 is not allowed (GB 32100 excludes I, O, S, V, Z)",
        ),
        (
            "91410100ma31e12pxf",
            UsccProblem.BAD_CHARACTER,
            "character 'm' at position 9 is not allowed (GB 32100 uses upper-case letters only)",
        ),
        (
            "9141010012345678８Y",  # full-width digit eight
            UsccProblem.BAD_CHARACTER,
            "character '８' at position 17 is not allowed "
            "(GB 32100 allows only 0-9 and A-Z without I, O, S, V, Z)",
        ),
        (
            "91A10100123456788Y",
            UsccProblem.REGION_NOT_DIGITS,
            "character 'A' at position 3 is not allowed "
            "(positions 3-8 are the administrative division code, digits only)",
        ),
        (
            # A citizen ID number: passes the GB 32100 check by chance (hutool issue #1367).
            "362322198709086409",
            UsccProblem.ORG_CHECK,
            "organization code check character (position 17) is '0', expected '5' (GB 11714)",
        ),
        (
            "91350203M0001QAY9X",
            UsccProblem.CHECK_CHARACTER,
            "check character is 'X', expected '9'",
        ),
    ],
)
def test_each_reason(code, problem, message):
    assert diagnose_uscc(code) == (problem, message)
    assert uscc_problem(code) == message
    assert not is_valid_uscc(code)
    assert uscc_problems(np.array([code, LAW_VALID[0]], dtype=object)).tolist() == [problem, 0]


def test_a_code_failing_both_checks_reports_the_organization_code():
    """CHECK_CHARACTER then means 'only position 18 is wrong', as in the Xiamen pilot codes."""
    typo = "91410100123456788Y".replace("1234", "1243")
    assert check_character(typo[:17]) != typo[17]
    assert diagnose_uscc(typo)[0] is UsccProblem.ORG_CHECK


def test_organization_check_character_writes_10_as_x_and_11_as_0():
    assert org_check_character("00000000") == "0"  # sum 0: 11 - 0 = 11
    assert org_check_character("MA31E12P") == "X"  # from law.md's first example


@pytest.mark.parametrize("bad", ["", "9141010012345678", "914101001234567I8", "914101001234567a8"])
def test_check_character_rejects_anything_but_17_allowed_characters(bad):
    with pytest.raises(ValueError, match="expected 17 characters"):
        check_character(bad)


def test_messages_table_covers_every_problem():
    assert len(USCC_PROBLEM_MESSAGES) == len(UsccProblem)
    assert USCC_PROBLEM_MESSAGES[UsccProblem.VALID] == "valid"


# --- vectorized == scalar ------------------------------------------------------------------


def _valid(draw_chars: list[str]) -> str:
    first16 = "".join(draw_chars)
    first17 = first16 + org_check_character(first16[8:16])
    return first17 + check_character(first17)


ALLOWED = st.sampled_from(USCC_CHARSET)
DIGIT = st.sampled_from("0123456789")
VALID_CODES = st.tuples(
    st.lists(ALLOWED, min_size=2, max_size=2),
    st.lists(DIGIT, min_size=6, max_size=6),
    st.lists(ALLOWED, min_size=8, max_size=8),
).map(lambda parts: _valid(parts[0] + parts[1] + parts[2]))
ODD_CHARS = st.sampled_from("IOSVZabxyz\x00 -é８中\u00a0") | st.characters(exclude_categories=("Cs",))  # no lone surrogates (see STRINGS)


@st.composite
def mutated(draw):
    """A valid code with one character replaced, inserted or deleted."""
    code = draw(VALID_CODES)
    i = draw(st.integers(0, 17))
    new = draw(ALLOWED | ODD_CHARS)
    how = draw(st.sampled_from(["replace", "insert", "delete"]))
    if how == "replace":
        return code[:i] + new + code[i + 1 :]
    if how == "insert":
        return code[:i] + new + code[i:]
    return code[:i] + code[i + 1 :]


STRINGS = (
    # no lone surrogates: no decoded registry holds one, and Arrow strings cannot
    VALID_CODES | mutated() | st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
    | st.text(ALLOWED, min_size=18, max_size=18)
)
ANYTHING = STRINGS | st.sampled_from([None, math.nan, 7, 1.5, b"91410100123456788Y", True])


def _scalar(codes) -> list[int]:
    return [diagnose_uscc(c)[0] for c in codes]


@settings(max_examples=300, deadline=None)
@given(st.lists(ANYTHING, max_size=12))
def test_object_arrays_agree_with_the_scalar_function(codes):
    array = np.empty(len(codes), dtype=object)
    array[:] = codes
    assert uscc_problems(array).tolist() == _scalar(codes)
    assert uscc_problems(codes).tolist() == _scalar(codes)  # any sequence


@settings(max_examples=300, deadline=None)
@given(st.lists(STRINGS | st.none(), max_size=12), st.integers(0, 3))
def test_arrow_arrays_agree_with_the_scalar_function(codes, offset):
    array = pa.array(["x"] * offset + codes, pa.string()).slice(offset)  # a non-zero offset
    expected = _scalar(codes)
    assert uscc_problems(array).tolist() == expected
    assert uscc_problems(array.cast(pa.large_string())).tolist() == expected
    assert uscc_problems(array.dictionary_encode()).tolist() == expected
    chunked = pa.chunked_array([array[: len(codes) // 2], array[len(codes) // 2 :]], pa.string())
    assert uscc_problems(chunked).tolist() == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(STRINGS | st.none(), max_size=12))
def test_messages_as_columns_agree_with_the_scalar_diagnosis(codes):
    """problem_messages words a wrong length and both wrong check characters as diagnose_uscc
    does, and leaves the rest (non-ASCII codes, other problems) to it."""
    problems = uscc_problems(codes)
    messages = problem_messages(codes, problems)
    for code, problem, message in zip(codes, problems.tolist(), messages, strict=True):
        vectorised = isinstance(code, str) and code.isascii() and problem in (
            UsccProblem.WRONG_LENGTH, UsccProblem.CHECK_CHARACTER, UsccProblem.ORG_CHECK)
        assert message == (diagnose_uscc(code)[1] if vectorised else None), code


@settings(max_examples=300, deadline=None)
@given(st.lists(STRINGS, max_size=12))
def test_numpy_str_arrays_agree_with_the_scalar_function(codes):
    array = np.array(codes, dtype=str) if codes else np.array([], dtype="U18")
    # numpy drops trailing NULs when it stores a string: compare with what the array holds.
    assert uscc_problems(array).tolist() == _scalar(array.tolist())


def test_many_rows_across_blocks_with_nulls_and_an_offset():
    """More rows than one block, mixing the contiguous fast path and the gathered one."""
    rng = np.random.default_rng(5)
    codes = make_uscc(rng, np.full(200_000, 410105)).astype(str).astype(object)
    broken = rng.choice(codes.shape[0], 3000, replace=False)
    for k, i in enumerate(broken):
        code = codes[i]
        codes[i] = [None, code[:17], code[:17] + "!", code.lower(), code[:16] + "Z" + code[17]][
            k % 5
        ]
    expected = _scalar(codes)
    assert uscc_problems(codes).tolist() == expected
    arrow = pa.array(codes, pa.string())
    assert uscc_problems(arrow.slice(7)).tolist() == expected[7:]
    assert uscc_problems(codes.astype(str)[:1000]).tolist() == _scalar(codes.astype(str)[:1000])


def test_empty_inputs():
    for empty in (
        [],
        np.array([], dtype=object),
        np.array([], dtype="U18"),
        pa.array([], pa.string()),
    ):
        assert uscc_problems(empty).dtype == np.uint8
        assert uscc_problems(empty).shape == (0,)
    assert uscc_problems(pa.chunked_array([], pa.string())).shape == (0,)
    assert uscc_problems(pa.nulls(3)).tolist() == [UsccProblem.MISSING] * 3


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (np.zeros(3), TypeError),
        (np.array([["91410100123456788Y"]]), ValueError),
        (pa.array([1, 2]), TypeError),
    ],
)
def test_unsupported_inputs_are_refused(bad, error):
    with pytest.raises(error):
        uscc_problems(bad)


# --- creation ------------------------------------------------------------------------------


def test_make_uscc_gives_distinct_valid_codes_with_the_given_parts():
    regions = np.array([410102, 410181, 410100] * 20_000)
    kinds = np.array(list("123") * 20_000)
    codes = make_uscc(np.random.default_rng(1), regions, kinds).astype(str)
    assert len(set(codes.tolist())) == codes.shape[0]
    assert not uscc_problems(codes).any()
    assert {c[0] for c in codes} == {"9"}
    assert [c[1] for c in codes[:3]] == ["1", "2", "3"]
    assert [c[2:8] for c in codes[:3]] == ["410102", "410181", "410100"]
    old = np.char.isdigit(np.array([c[8:16] for c in codes]))
    assert 0.3 < old.mean() < 0.4  # 8-digit organization codes issued before 2015
    assert all(c[8:10] == "MA" for c in codes[~old])


def test_make_uscc_is_deterministic_for_a_seed():
    regions = np.full(1000, 410105)
    first = make_uscc(np.random.default_rng(3), regions)
    assert (first == make_uscc(np.random.default_rng(3), regions)).all()
    assert (first != make_uscc(np.random.default_rng(4), regions)).any()


def test_codes_made_in_separate_calls_with_the_same_keys_never_collide():
    keys = uscc_keys(np.random.default_rng(0))
    parts = [
        uscc_from_serials(np.arange(start, start + 50_000), 410100, "1", old_style=old, keys=keys)
        for start, old in ((0, True), (50_000, True), (100_000, False))
    ]
    codes = np.concatenate(parts)
    assert np.unique(codes).shape[0] == codes.shape[0]
    assert not uscc_problems(codes.astype(str)).any()


@pytest.mark.parametrize(
    ("regions", "kinds", "match"),
    [([41010], "1", "6-digit"), ([410100], "I", "kinds"), ([410100, 410100], "123", "kinds")],
)
def test_make_uscc_refuses_bad_parts(regions, kinds, match):
    with pytest.raises(ValueError, match=match):
        make_uscc(
            np.random.default_rng(0), regions, np.array(list(kinds)) if len(kinds) > 1 else kinds
        )


def test_kernel_and_numpy_give_the_same_codes_on_random_matrices():
    from ecorules.rules import _uscc

    pytest.importorskip("ecorules.fastcalc", reason="fastcalc kernel not built")
    assert _uscc._kernel_codes() is not None  # fastcalc offers its kernel to rules/ on import
    rng = np.random.default_rng(11)
    valid = _uscc.make_uscc(rng, np.full(2000, 410102)).view(np.uint8).reshape(-1, 18).copy()
    charset = np.frombuffer(_uscc.USCC_CHARSET.encode() + b"XIOSZ0123456789", np.uint8)
    mats = [valid, rng.choice(charset, (50_000, 18)), rng.integers(0, 256, (20_000, 18), dtype=np.uint8)]
    mutated = np.repeat(valid, 5, axis=0)
    rows = np.arange(len(mutated))
    mutated[rows, rng.integers(0, 18, len(mutated))] = rng.choice(charset, len(mutated))
    mats.append(mutated)
    for mat in mats:
        mat = np.ascontiguousarray(mat, np.uint8)
        expected = _uscc._matrix_problems_numpy(mat)
        assert (_uscc._matrix_problems(mat) == expected).all()
        assert set(np.unique(expected).tolist()) <= {0, 4, 5, 6, 7}
    assert (_uscc._matrix_problems(valid) == 0).all()
    assert _uscc._matrix_problems(np.zeros((0, 18), np.uint8)).shape == (0,)
