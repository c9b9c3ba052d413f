"""Which encoding a text registry is in, decided on the evidence of the whole file.

Bureau exports are UTF-8 or GBK (read as GB18030, its superset), sometimes UTF-16 with a
byte-order mark (Excel's "Unicode text"), and sometimes mixed: one row pasted from a GBK
system into a UTF-8 file. The two readings fail differently. Read as UTF-8, a GBK line does
not decode, so it is rejected row by row and nothing is misread. Read as GB18030, a UTF-8
line almost always decodes, into the wrong characters, and nobody is told. Hence the rule:
UTF-8 unless most lines with non-ASCII bytes are not UTF-8, and the decision is said with its
evidence in the run's summary. Counting undecodable characters instead (the earlier rule)
picked GB18030 for a small UTF-8 file with one GBK row, because GB18030 decodes nearly any
byte sequence, and every row was garbled.

The evidence is the whole file up to :data:`WHOLE_FILE_BYTES`; beyond that, slices spread
over the file, so that a decision costs milliseconds whatever the size.
"""

from __future__ import annotations

import codecs
import os
import threading
from pathlib import Path

import attrs
import numpy as np

from ._types import SourceError

WHOLE_FILE_BYTES = 8 << 20  # a file this small is read whole to decide
SLICE_BYTES = 512 << 10  # else this much from each of SLICES places, the head included
SLICES = 8
_SHOWN_LINES = 5  # line numbers quoted in the decision


@attrs.frozen
class EncodingDecision:
    """An encoding and why: ``why`` goes into the run's summary, ``warning`` into its warnings."""

    encoding: str  # a Python codec name
    why: str
    warning: str | None = None
    undecodable: int = 0  # lines seen that do not decode in ``encoding``


def _lines_named(numbers: list[int], total: int) -> str:
    shown = ", ".join(str(n) for n in numbers[:_SHOWN_LINES])
    return f"line{'s' if total > 1 else ''} {shown}{', ...' if total > len(numbers[:_SHOWN_LINES]) else ''}"


# An undecodable byte b is read as the private-use character U+F700 + b, so that the reject
# can show the bytes as they were (\xff) rather than as U+FFFD; registries hold no such
# characters (the private-use area is for fonts' own symbols).
UNDECODABLE = "ecorules_undecodable"
UNDECODABLE_BASE = 0xF700  # the character of byte 0
UNDECODABLE_CHARS = f"[{chr(UNDECODABLE_BASE)}-{chr(UNDECODABLE_BASE + 0xFF)}]"


def _as_private_use(error: UnicodeDecodeError) -> tuple[str, int]:
    return "".join(chr(UNDECODABLE_BASE + b) for b in error.object[error.start:error.end]), error.end


codecs.register_error(UNDECODABLE, _as_private_use)

_FAILED = threading.local()  # where _skip_the_line records, per thread
_SKIP_THE_LINE = "ecorules_skip_the_line"


def _skip_the_line(error: UnicodeDecodeError) -> tuple[str, int]:
    """Records where a line fails to decode and goes on at its end: one call per such line."""
    _FAILED.starts.append(error.start)
    end = error.object.find(b"\n", error.end)
    return "", len(error.object) if end < 0 else end


codecs.register_error(_SKIP_THE_LINE, _skip_the_line)


def _numbered_lines(evidence: bytes, complete: bool) -> tuple[list[int], list[int]]:
    """(numbers of the lines with non-ASCII bytes, numbers of those that are not UTF-8), from 1.

    One decode of the whole evidence rather than one per line (~0.25 s of every run on a
    file with an undecodable line, twice when the duplicates' first rows are read again): a
    character never spans a line end (b"\\n" is ASCII), so a line fails alone exactly where it
    fails in the whole, and the last is not final when the evidence may end inside it.
    """
    data = np.frombuffer(evidence, np.uint8)
    line_ends = np.flatnonzero(data == 0x0A)
    if not data.size:
        return [], []
    starts = np.concatenate([[0], line_ends + 1])
    starts = starts[starts < data.size]  # an empty last line (after the last b"\n") is ASCII
    # each line's largest byte; an empty line's is its b"\n" (reduceat's value at an empty range)
    non_ascii = np.flatnonzero(np.maximum.reduceat(data, starts) >= 0x80)
    _FAILED.starts = []
    try:
        codecs.utf_8_decode(evidence, _SKIP_THE_LINE, complete)
        failed = np.unique(np.searchsorted(line_ends, np.array(_FAILED.starts, np.int64)))
    finally:
        del _FAILED.starts
    return (non_ascii + 1).tolist(), (failed + 1).tolist()


def weigh(evidence: bytes, *, complete: bool, line_numbers: bool = True) -> EncodingDecision:
    """The encoding of ``evidence`` (the start of the file, or slices of it).

    ``complete``: the evidence ends where a line ends (else its last line may be cut inside a
    character); ``line_numbers``: the evidence starts at the file's first line, so a line's
    position in it is its line in the file.
    """
    if evidence.startswith(codecs.BOM_UTF8):
        return EncodingDecision("utf-8", "UTF-8: the file starts with a UTF-8 byte-order mark")
    if evidence.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return EncodingDecision("utf-16", "UTF-16: the file starts with a UTF-16 byte-order mark "
                                          "(as Excel's \"Unicode text\" does)")
    if 0 in evidence:  # no text encoding of a registry has NUL bytes, but UTF-16 does
        for encoding in ("utf-16-le", "utf-16-be"):
            try:
                text = evidence[: len(evidence) // 2 * 2].decode(encoding)
            except UnicodeDecodeError:
                continue
            if any(c in text for c in "\n\t,;"):
                raise SourceError(f"the file looks like UTF-16 without a byte-order mark: give --encoding {encoding}")
    try:
        codecs.utf_8_decode(evidence, "strict", complete)
        what = "the file" if line_numbers else "the sampled lines"
        return EncodingDecision("utf-8", f"UTF-8: {what} {'are' if not line_numbers else 'is'} ASCII only"
                                if evidence.isascii() else f"UTF-8: {what} decode{'s' if line_numbers else ''} as UTF-8")
    except UnicodeDecodeError:
        pass
    non_ascii, invalid = _numbered_lines(evidence, complete)
    failed = set(invalid)
    valid = [number for number in non_ascii if number not in failed]
    lines = evidence.split(b"\n") if invalid else []
    gbk = 0  # of the invalid lines, those that decode strictly as GB18030
    for number in invalid:
        try:
            lines[number - 1].decode("gb18030")
            gbk += 1
        except UnicodeDecodeError:
            pass
    seen = len(valid) + len(invalid)
    where = "" if line_numbers else " sampled"
    if len(valid) >= len(invalid):
        named = f" ({_lines_named(invalid, len(invalid))})" if line_numbers else ""
        return EncodingDecision(
            "utf-8",
            f"UTF-8: {len(valid):,} of {seen:,}{where} lines with non-ASCII text are valid UTF-8; "
            f"{len(invalid):,}{named} {'is' if len(invalid) == 1 else 'are'} not, and rejected row by row "
            "(undecodable bytes)",
            undecodable=len(invalid),
        )
    warning = None
    if valid:
        named = f" ({_lines_named(valid, len(valid))})" if line_numbers else ""
        warning = (
            f"{len(valid):,}{where} line{'s' if len(valid) > 1 else ''}{named} read as GB18030 "
            f"{'are' if len(valid) > 1 else 'is'} valid UTF-8: the text there may read wrongly; "
            "save the file in one encoding or give --encoding"
        )
    return EncodingDecision(
        "gb18030",
        f"GB18030 (GBK): {len(invalid):,} of {seen:,}{where} lines with non-ASCII text are not UTF-8, "
        f"{gbk:,} of them valid GB18030",
        warning,
    )


def _evidence(path: Path, size: int) -> tuple[bytes, bool, bool]:
    """(bytes, complete, line_numbers): the whole file, or slices cut at line ends."""
    with open(path, "rb") as handle:
        if size <= WHOLE_FILE_BYTES:
            return handle.read(), True, True
        parts = []
        for k in range(SLICES):
            handle.seek(size * k // SLICES)
            part = handle.read(SLICE_BYTES)
            if k:  # a slice starts after the first line end in it
                part = part[part.find(b"\n") + 1:]
            parts.append(part[: part.rfind(b"\n") + 1])
        head = parts[0]
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return head, False, True  # the BOM decides; lines of 2-byte units are not cut at b"\n"
        return b"".join(parts), True, False


def decide_encoding(path: str | os.PathLike, explicit: str | None = None) -> EncodingDecision:
    """The encoding to read ``path`` in: ``explicit`` (--encoding) if given, else decided."""
    path = Path(path)
    if explicit:
        return EncodingDecision(codecs.lookup(explicit).name, "given with --encoding")
    try:
        size = os.path.getsize(path)
        evidence, complete, numbered = _evidence(path, size)
    except OSError as error:
        raise SourceError(f"{path}: cannot read: {error.strerror}") from error
    try:
        return weigh(evidence, complete=complete, line_numbers=numbered)
    except SourceError as error:
        raise SourceError(f"{path}: {error}") from None


__all__ = ["EncodingDecision", "decide_encoding", "weigh"]
