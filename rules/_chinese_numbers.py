"""Amounts written the way a document writes them (50万元, 1.5亿, 一百万元), read only to say
what to write instead: a policy's numbers are digits in yuan, so that nothing is guessed when
the rules run. 万 is 10^4 and 亿 is 10^8; 十, 百 and 千 multiply the figure before them (or 1)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# a number that mixes digits or Chinese numerals with 万/亿 or 元: refused, with the digits
WRITTEN_IN_WORDS = re.compile(r"^[0-9.,]*[零〇一二两三四五六七八九十百千万亿]+[零〇一二两三四五六七八九十百千万亿0-9.,]*元?$|^[0-9.,]+元$")

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_SMALL = {"十": 10, "百": 100, "千": 1000}
_TOKEN = re.compile(r"[0-9][0-9,]*(?:\.[0-9]+)?|.")


def in_digits(text: str) -> str | None:
    """``text`` as the digits to write (``"50万元"`` -> ``"500000"``), or None if it is not
    a number this reading is sure of (then the caller says only to write digits)."""
    text = text.strip().removesuffix("元")
    total = section = Decimal(0)
    number: Decimal | None = None
    try:
        for token in _TOKEN.findall(text):
            if token[0].isdigit():
                if number is not None:
                    return None  # two figures in a row: 1一
                number = Decimal(token.replace(",", ""))
            elif token in _DIGITS:
                if number is not None and token not in "零〇":
                    return None
                number = None if token in "零〇" else Decimal(_DIGITS[token])
            elif token in _SMALL:
                section += (Decimal(1) if number is None else number) * _SMALL[token]
                number = None
            elif token == "万":
                total += (section + (number or 0)) * 10**4
                section, number = Decimal(0), None
            elif token == "亿":
                total = (total + section + (number or 0)) * 10**8
                section, number = Decimal(0), None
            else:
                return None
    except InvalidOperation:
        return None
    value = total + section + (number or 0)
    if value == 0 and not re.search(r"[0-9零〇]", text):
        return None
    return format(value.normalize(), "f")


__all__ = ["WRITTEN_IN_WORDS", "in_digits"]
