"""A YAML indentation slip in plain words: which line is off, and which key to align it with.

PyYAML reports a key indented one space too few or too many as ``expected <block end>, but
found '?'`` or ``... found '<block mapping start>'`` (or, after a plain value, ``mapping values
are not allowed here``): true, but nothing legal staff can act on. :func:`misaligned` reads
the lines above the one PyYAML stopped at, keeps the keys (and list dashes) of the blocks
still open there, and compares the line's own indentation with theirs: nearer to a deeper
key, it is indented less than that key's block; nearer to a shallower one, more; halfway,
both are named, the block just above first. It is a reading of the text, not of the YAML grammar, so it answers only
when the line's indentation matches none of the open blocks; otherwise the caller keeps
PyYAML's own words.
"""

from __future__ import annotations

import re

import attrs

# "key:" at the start of a line's content (after any "- "): the key as written, quotes kept
_KEY = re.compile(r"""(?P<key>"[^"]*"|'[^']*'|[^\s#'"\[\]{},&*!|>%@`-][^#]*?|-[^\s#][^#]*?)\s*:(?:\s|$)""")


@attrs.frozen
class Misaligned:
    message: str
    column: int  # 1-based, of the line's first character


@attrs.frozen
class _Open:
    column: int  # 0-based
    dash: bool  # a list item's '-', else a key
    name: str
    line: int  # 1-based
    opens: bool = False  # nothing follows on its line: the next line may start its block, deeper


def _parts(text: str, number: int) -> list[_Open]:
    """The dashes and the key a line opens, left to right ([] for blank lines, comments and
    lines that are neither: a value's continuation, a block text, a flow item)."""
    stripped = text.rstrip()
    column = len(stripped) - len(stripped.lstrip(" "))
    parts = []
    while stripped[column:].startswith("- ") or stripped[column:] == "-":
        parts.append(_Open(column, True, "-", number, opens=stripped[column:] == "-"))
        column += 1
        column += len(stripped[column:]) - len(stripped[column:].lstrip(" "))
    match = _KEY.match(stripped, column)
    if match:
        rest = stripped[match.end():].strip()
        parts.append(_Open(column, False, match.group("key"), number, opens=not rest or rest.startswith(("#", "&", "!"))))
    return parts


def _open_blocks(lines: list[str], before: int) -> list[_Open]:
    """The keys and dashes of the blocks still open at line index ``before``, deepest first;
    of each block, the line nearest above."""
    found, limit = [], None
    for index in range(before - 1, -1, -1):
        for part in reversed(_parts(lines[index], index + 1)):
            if limit is None or part.column < limit:
                found.append(part)
                limit = part.column
        if limit == 0:
            break
    return found


def misaligned(lines: list[str], index: int) -> Misaligned | None:
    """What is wrong with the indentation of line ``index`` (0-based), or None when it
    matches an open block (then the slip is something else)."""
    if index >= len(lines):
        return None
    own = _parts(lines[index], index + 1)
    if not own:
        return None
    first = own[0]
    blocks = _open_blocks(lines, index)
    if blocks and blocks[0].opens and first.column > blocks[0].column:
        return None  # the first line of the block the line above opens: any deeper indentation is right
    peers = [block for block in blocks if block.dash == first.dash]
    if not peers or any(block.column == first.column for block in peers):
        return None
    deeper = min((b for b in peers if b.column > first.column), key=lambda b: b.column, default=None)
    shallower = max((b for b in peers if b.column < first.column), key=lambda b: b.column, default=None)
    what = "list item" if first.dash else "line"
    if deeper is not None and (shallower is None or deeper.column - first.column < first.column - shallower.column):
        return Misaligned(f"this {what} is indented less than the lines of its block (line {deeper.line}): "
                          f"align it with {_named(deeper)}", first.column + 1)
    if deeper is None:
        return Misaligned(f"this {what} is indented more than the lines of its block (line {shallower.line}): "
                          f"align it with {_named(shallower)}", first.column + 1)
    if first.column - shallower.column < deeper.column - first.column:
        return Misaligned(f"this {what} is indented more than the lines of its block (line {shallower.line}): "
                          f"align it with {_named(shallower)}", first.column + 1)
    return Misaligned(
        f"this {what} is indented between two blocks: align it with {_named(deeper, line=True)} to continue "
        f"the block above it, or with {_named(shallower, line=True)} to continue the outer block", first.column + 1,
    )


def _named(block: _Open, line: bool = False) -> str:
    thing = "the '-' of the items above" if block.dash else repr(block.name)
    return f"{thing} ({f'line {block.line}, ' if line else ''}column {block.column + 1})"


__all__ = ["Misaligned", "misaligned"]
