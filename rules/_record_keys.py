"""The keys of one record written by hand (``ecorules explain``): fact names, or the headers
a registry export uses for them.

A registry file is matched column by column against the facts' names, Chinese labels and
aliases (``engine/_sources.py``), and its other columns are left alone: an export carries
many. A record given to ``explain`` is what legal staff want the law applied to, so the same
headers are accepted (统一社会信用代码 is ``uscc``), but a key that names no fact is refused
with the fact meant: ignored, a typo (``untreated_outfall``) would silently leave that fact
empty, or unread, and the explanation would be of another record than the one written.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from ._errors import RecordError
from ._schema import Fact


def normalize_header(text: str) -> str:
    """The form in which a header and a fact's name, label or alias are compared: NFKC
    (full-width forms), blanks and quotes around it, and case, do not matter."""
    text = unicodedata.normalize("NFKC", text.replace("\ufeff", ""))
    return text.strip().strip('"').strip().casefold()


def spellings_of(facts: Mapping[str, Fact]) -> dict[str, str]:
    """Normalized header -> fact name, from the facts' names, labels and aliases (a name
    wins over another fact's label or alias: the catalogue's loader keeps them apart)."""
    table: dict[str, str] = {}
    for name, fact in facts.items():
        for spelling in (*fact.aliases, *([fact.label] if fact.label else ())):
            table.setdefault(normalize_header(spelling), name)
    table.update((normalize_header(name), name) for name in facts)
    return table


def by_fact_name(record: Mapping[str, Any], facts: Mapping[str, Fact], besides: Iterable[str] = (),
                 what: str | None = None) -> dict[str, Any]:
    """``record`` keyed by fact names; the keys in ``besides`` (``as_of``, ``domain``) are
    left out. Raises :class:`RecordError` for a key that names no fact (with the nearest
    fact, if one is close) and for two keys naming the same fact."""
    table = spellings_of(facts)
    besides = frozenset(besides)
    named: dict[str, Any] = {}
    written: dict[str, str] = {}
    for key, value in record.items():
        if key in besides:
            continue
        field = str(key) if what is None else f"{what}: {key}"
        name = table.get(normalize_header(str(key)))
        if name is None:
            close = difflib.get_close_matches(normalize_header(str(key)), list(table), n=1, cutoff=0.75)
            hint = f"did you mean {table[close[0]]!r}" + (f" ({close[0]})" if close[0] != table[close[0]] else "") if close else None
            raise RecordError(
                "is not a fact of the loaded policies"
                + (f"; {hint}?" if hint else ": write a fact's name or its column header, or remove it"),
                field, value,
            )
        if name in named:
            raise RecordError(f"{written[name]!r} gives {name!r} already", field, value)
        named[name], written[name] = value, str(key)
    return named


__all__ = ["by_fact_name", "normalize_header", "spellings_of"]
