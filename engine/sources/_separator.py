"""Which character separates the fields of a text registry: comma, tab, semicolon or bar.

Excel's "Unicode text" is tab-separated, and Excel set to a European locale writes ';'. The
header line is split by each candidate; the one giving the most fields wins, provided the
following lines mostly have as many, and a comma on a tie. When no candidate gives two
fields, the resolver's error names the likely cause (:func:`one_column_hint`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence

CANDIDATES = (",", "\t", ";", "|")
_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "bar"}
_LINES_CHECKED = 20


def _fields(line: str, separator: str) -> int:
    return len(next(csv.reader([line], delimiter=separator), []))


def detect_separator(lines: Sequence[str]) -> tuple[str, str]:
    """(separator, why) for a file whose first lines (decoded) are ``lines``."""
    if not lines:
        return ",", "comma (the file has no lines)"
    header, following = lines[0], [line for line in lines[1:_LINES_CHECKED + 1] if line.strip()]
    best, best_fields = ",", 1
    for separator in CANDIDATES:
        fields = _fields(header, separator)
        if fields <= best_fields:
            continue
        agree = sum(_fields(line, separator) == fields for line in following)
        if following and agree * 2 < len(following):
            continue  # the header splits, the data does not: not this one
        best, best_fields = separator, fields
    if best_fields == 1:
        return ",", "comma (no candidate splits the header)"
    return best, f"{_NAMES[best]} (the header splits into {best_fields} columns)"


def separator_name(separator: str) -> str:
    return _NAMES.get(separator, repr(separator))


def one_column_hint(headers: Sequence[str]) -> str:
    """Words for an error when a whole header landed in one column, else ''."""
    if len(headers) != 1:
        return ""
    found = [c for c in (";", "\t", ",", "|") if c in headers[0]]
    if not found:
        return ""
    return (f"; the header was read as one column ({headers[0][:60]!r}): "
            f"is the separator {found[0]!r}?")


__all__ = ["CANDIDATES", "detect_separator", "one_column_hint", "separator_name"]
