"""Enum values as registries write them: one normal form, the declared aliases, a near miss named.

A district column typed by a management committee's own staff says 郑州经开区管委会 or
"　金水区 " where the catalogue says 郑州经济技术开发区 and 金水区. Matching compares normal
forms (:func:`normalize`): NFKC (full-width spaces, brackets and digits become ASCII), every
whitespace character removed, and a trailing "(管委会)" unbracketed to "管委会". Nothing else
is stripped or guessed: "郑州高新区管委会" matches only because the catalogue declares it as
an alias. The canonical value, in declared order, is what everything downstream sees (kernel
codes, payers, ledgers).

Every path (single records, batch columns, YAML test cases) goes through :func:`resolve`, via
``_records.coerce``; the batch path calls it once per distinct text, never per row.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata

from ._schema import Fact

_WHITESPACE = re.compile(r"\s+")
# Committee staff bracket the word: 郑州高新区（管委会）. Only the brackets go; the 管委会 form
# itself must be a declared alias.
_BRACKETED_COMMITTEE = re.compile(r"\(管委会\)$")


def normalize(text: str) -> str:
    """The form in which an enum value and its aliases are compared."""
    text = _WHITESPACE.sub("", unicodedata.normalize("NFKC", text))
    return _BRACKETED_COMMITTEE.sub("管委会", text)


@functools.lru_cache(maxsize=128)
def spellings(choices: tuple[str, ...], value_aliases: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Normal form -> canonical value, for the values and their aliases (the loader has
    refused any two that share a normal form)."""
    table = {normalize(choice): choice for choice in choices}
    table.update((normalize(alias), value) for alias, value in value_aliases)
    return table


def resolve(fact: Fact, text: str) -> str | None:
    """The canonical value ``text`` stands for, or None."""
    if text in fact.type.choices:
        return text
    return spellings(fact.type.choices, fact.value_aliases).get(normalize(text))


def not_allowed(fact: Fact, raw: object) -> str:
    """Why ``raw`` is refused, naming the closest canonical value when one is close."""
    what = f"{raw!r} is not an allowed {fact.label or fact.name}"
    if isinstance(raw, str):
        table = spellings(fact.type.choices, fact.value_aliases)
        close = difflib.get_close_matches(normalize(raw), list(table), n=1, cutoff=0.6)
        if close:
            return f"{what}: did you mean {table[close[0]]}?"
    return f"{what} (none of its {len(fact.type.choices)} values is close)"


__all__ = ["normalize", "not_allowed", "resolve", "spellings"]
