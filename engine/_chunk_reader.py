"""A stored chunk's JSON array read a group of elements at a time, from its text in pieces.

A chunk of the store (``sanction_chunks.usccs``, ``list_chunks.rows``) is one JSON array of
up to 262,144 entries: several megabytes of text, and several times that once its entries
are Arrow columns or Python values. The list state (engine/_lists.py) reads a chunk's text a
piece at a time (``text_pieces`` of the store's dialect) and turns at most a group of
entries into columns at once, so that what it holds does not grow with a chunk's size.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from ._chunks import _CODE_BYTE

_CODE_ROW = 21  # '"' + 18 characters + '"' + ',' (or the array's closing ']'): as _json_codes lays a code out
_DECODER = json.JSONDecoder()
_GAP = " \t\n\r"


class _Text:
    """The text not yet read, refilled from the pieces as it is consumed."""

    def __init__(self, pieces: Iterator[str]):
        self._pieces = pieces
        self.text, self.at, self.more = "", 0, True

    def fill(self) -> bool:
        """The next (non-empty) piece appended to what is left; False when none is left."""
        for piece in self._pieces:
            if piece:
                self.text, self.at = self.text[self.at:] + piece, 0
                return True
        self.more = False
        return False

    def need(self, characters: int) -> None:
        while len(self.text) - self.at < characters and self.fill():
            pass

    def skip_gap(self) -> str:
        """Whitespace skipped; the next character ('' at the end of the text)."""
        while True:
            while self.at < len(self.text) and self.text[self.at] in _GAP:
                self.at += 1
            if self.at < len(self.text) or not self.fill():
                return self.text[self.at:self.at + 1]

    def value(self):
        """The JSON value that begins here (refilled until it is whole)."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.at)
            except json.JSONDecodeError:
                if self.fill():
                    continue
                raise
            if end == len(self.text) and self.fill():  # a number or literal may go on in the next piece
                continue
            self.at = end
            return value


def json_elements(pieces: Iterator[str], most: int, most_values: int | None = None) -> Iterator[pa.Array | list]:
    """The elements of the JSON array whose text comes in ``pieces``, in order: at most
    ``most`` at a time as an Arrow string array where they are codes laid out as _json_codes
    lays them out (nearly every chunk: read by numpy, no Python string per code), else at
    most ``most_values`` (default ``most``) at a time as a list of the decoded values (a
    case's is a list of Python strings: ~500 bytes). Bad JSON raises json.JSONDecodeError,
    as json.loads does."""
    most_values = most_values or most
    text = _Text(pieces)
    if text.skip_gap() != "[":
        raise json.JSONDecodeError("a chunk is a JSON array", text.text, text.at)
    text.at += 1
    if text.skip_gap() == "]":
        return
    values: list = []
    while True:  # at the start of an element
        if not values:
            text.need(_CODE_ROW * most)
            codes, closed = _codes_at(text, most)
            if codes is not None:
                yield codes
                if closed:
                    break
                continue
        text.skip_gap()
        values.append(text.value())
        following = text.skip_gap()
        if following == "]":
            break
        if following != ",":
            raise json.JSONDecodeError("expected ',' or ']' after an element", text.text, text.at)
        text.at += 1
        text.skip_gap()
        if len(values) == most_values:
            yield values
            values = []
    if values:
        yield values


def _codes_at(text: _Text, most: int) -> tuple[pa.Array | None, bool]:
    """Up to ``most`` codes laid out from here as _json_codes lays them out, each followed by
    a comma or, the last, by the array's end, and consumed; (None, False) where the text is
    not so laid out. Says whether the array ended."""
    rows = min(most, (len(text.text) - text.at) // _CODE_ROW)
    if not rows:
        return None, False
    raw = text.text[text.at:text.at + _CODE_ROW * rows].encode()
    if len(raw) != _CODE_ROW * rows:  # not ASCII: no code
        return None, False
    laid = np.frombuffer(raw, np.uint8).reshape(rows, _CODE_ROW)
    ends = laid[:, 20]
    closed = bool(ends[-1] == ord("]"))
    body = laid[:, 1:19]
    if not ((laid[:, 0] == 34).all() and (laid[:, 19] == 34).all() and (ends[:-1] == 44).all()
            and (closed or ends[-1] == 44) and _CODE_BYTE[body].all()):
        return None, False
    text.at += _CODE_ROW * rows
    offsets = np.arange(0, 18 * rows + 1, 18, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(body.tobytes())]), closed
