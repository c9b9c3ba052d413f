"""A stored chunk's JSON array read a group of elements at a time from its text in pieces
(engine/_chunk_reader.py): the elements json.loads reads, however the text is cut."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine._chunk_reader import json_elements
from ecorules.engine._chunks import _json_codes
from nightly_data import usccs

CODES = [str(u) for u in usccs(np.random.default_rng(8), 23)]


def read(text: str, size: int, most: int, most_values: int | None = None) -> tuple[list, list[int], list[str]]:
    """The elements, the groups' sizes and kinds, reading ``text`` ``size`` characters at a time."""
    groups = list(json_elements(iter([text[k:k + size] for k in range(0, len(text), size)]), most, most_values))
    kinds = ["codes" if isinstance(g, pa.Array) else "values" for g in groups]
    elements = [v for g in groups for v in (g.to_pylist() if isinstance(g, pa.Array) else g)]
    return elements, [len(g) for g in groups], kinds


TEXTS = {
    "codes as a run writes them": _json_codes(pa.array(CODES)),
    "cases": json.dumps([[c, f"案件-{k}", "2012-01-15", "" if k % 2 else "2013-01-14"] for k, c in enumerate(CODES)]),
    "mixed, spaced": json.dumps([CODES[0], [CODES[1], "", None, "2013-01-14"], CODES[2], CODES[3]], indent=1),
    "codes then others": _json_codes(pa.array(CODES))[:-1] + ',"lower-case","a \\"quoted\\", \\\\","\\u00e9"]',
    "empty": "[]",
    "one code": _json_codes(pa.array(CODES[:1])),
}


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_elements_are_json_loads_whatever_the_pieces(name):
    text = TEXTS[name]
    for size in (1, 2, 5, 20, 21, 22, 63, 64, len(text) + 1):
        for most in (1, 3, 7, 100):
            elements, sizes, _ = read(text, size, most)
            assert elements == json.loads(text), (size, most)
            assert all(s == most for s in sizes[:-1]) and all(0 < s <= most for s in sizes[-1:]), (size, most)


def test_codes_as_a_run_writes_them_come_as_arrow_groups_of_most():
    elements, sizes, kinds = read(TEXTS["codes as a run writes them"], 64, 5)
    assert elements == CODES and sizes == [5, 5, 5, 5, 3] and set(kinds) == {"codes"}
    _, sizes, kinds = read(TEXTS["codes then others"], 64, 5)
    assert kinds[:4] == ["codes"] * 4 and kinds[-1] == "values" and sum(sizes) == len(CODES) + 3
    elements, sizes, kinds = read(TEXTS["cases"], 64, 10, 4)  # decoded values: at most most_values at a time
    assert elements == json.loads(TEXTS["cases"]) and sizes == [4] * 5 + [3] and set(kinds) == {"values"}


@pytest.mark.parametrize("text", ['["a", "b"', '["a" "b"]', '["a",]', '{"a": 1}', "", '[["a", "b"]', '"a"'])
def test_bad_json_and_what_is_no_array_are_refused(text):
    if not text.startswith(("{", '"')):
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
    for size in (1, 3, 100):
        with pytest.raises(json.JSONDecodeError):
            read(text, size, 2)
