"""Blank texts (only spaces, or empty) found as the regex over every row finds them, though
the regex now runs only on the texts that may be blank (fastcalc/_validate_coded.py)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from ecorules.fastcalc._validate_coded import _BLANK, SPACE_CODEPOINTS, _blank_rows
from ecorules.rules._arrow import bools, fill_null


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_blank_rows_are_the_regexs(kind):
    rng = np.random.default_rng(5)
    spaces = [chr(c) for c in SPACE_CODEPOINTS]
    pool = ["", "A1", "C000000001", "—", "\u2010x", "案", "　", "\u3001", "x ", *spaces, *(s + "A" for s in spaces),
            *(s + t for s in spaces for t in spaces[:3])]
    texts = [None if rng.random() < 0.1 else pool[i] for i in rng.integers(0, len(pool), 3000)]
    column = pa.array(texts, kind).slice(5)
    missing, blank = _blank_rows(column)
    want = pc.match_substring_regex(column, _BLANK)
    assert missing.tolist() == np.flatnonzero(bools(want.is_null())).tolist()
    assert blank.tolist() == np.flatnonzero(bools(fill_null(want, False))).tolist()
    assert missing.size and blank.size > 100
    for empty in (pa.array([], kind), pa.array(["", None], kind)):
        missing, blank = _blank_rows(empty)
        assert missing.tolist() == [i for i, t in enumerate(empty.to_pylist()) if t is None]
        assert blank.tolist() == [i for i, t in enumerate(empty.to_pylist()) if t == ""]
