"""The census's 64-bit digests of USCCs (engine/_duplicates.py's ``digests``), which the
distributed runs compare across partitions before comparing the keys themselves: distinct
keys sharing one cost a gather of the partitions holding them, so near-identical codes must
not share them more often than chance."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
from ecorules.engine._duplicates import DIGEST_BITS_VARIABLE, digests, unique_key
from ecorules.rules import load_policies

_SYMBOLS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _uscc_fact():
    return unique_key(load_policies().for_domain("enterprise"), "enterprise").digest_fact


def _digests(keys: list[str]) -> np.ndarray:
    return digests(_uscc_fact(), pa.array(keys, pa.string()), np.ones(len(keys), bool))


def test_codes_differing_in_the_top_bytes_of_two_words_have_distinct_digests(monkeypatch):
    # bytes 7 and 15 are the top bytes of the first two 8-byte words: the old digest (a sum of
    # the words' products) gave these 961 codes 256 digests
    monkeypatch.delenv(DIGEST_BITS_VARIABLE, raising=False)
    base = list("91410100MA5AH1DH20")
    keys = []
    for a, b in itertools.product(_SYMBOLS, repeat=2):
        code = base.copy()
        code[7], code[15] = a, b
        keys.append("".join(code))
    found = _digests(keys)
    assert len(set(keys)) == len(keys) == 961
    assert np.unique(found).size == len(keys)
    # and codes differing in one byte anywhere (one word: a bijection of it) never share one
    single = ["".join(base[:at] + [s] + base[at + 1:]) for at in range(18) for s in _SYMBOLS if s != base[at]]
    assert np.unique(_digests(single)).size == len(single)


def test_a_test_can_narrow_the_digests_to_make_them_shared(monkeypatch):
    keys = [f"9141010{k:04d}MA5AH1DH"[:17] + "0" for k in range(2000)]
    whole = _digests(keys)
    monkeypatch.setenv(DIGEST_BITS_VARIABLE, "8")
    narrow = _digests(keys)
    assert np.array_equal(narrow, whole & np.uint64(0xFF << 56))
    assert np.unique(narrow).size < np.unique(whole).size == len(keys)
