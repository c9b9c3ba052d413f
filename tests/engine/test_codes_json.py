"""The list state reads the chunks of codes the run wrote without json (engine/_chunks.py)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine._chunks import _json_codes, codes_of_json
from nightly_data import usccs


def test_codes_written_as_json_read_back_as_json_would():
    codes = usccs(np.random.default_rng(4), 1000).tolist()
    text = _json_codes(pa.array(codes))
    assert codes_of_json(text).to_pylist() == json.loads(text) == codes


@pytest.mark.parametrize("text", [
    "[]", '["91410100MA5AH1DH20", "91410100MA5AH1DH20"]',  # a blank: not the layout _json_codes writes
    '["91410100MA5AH1DH2\\"","914101001234567890"]',  # an escaped quote inside
    '[["91410100MA5AH1DH20","",null,"2012-04-14",null]]',  # an entry with its own tag, case or dates
    '["9141010ma5ah1dh201","914101001234567890"]',  # lower case: not a canonical code
])
def test_any_other_text_is_left_to_json(text):
    assert codes_of_json(text) is None
