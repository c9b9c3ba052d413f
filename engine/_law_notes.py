"""The words a finding carries about the law that judged it (行政处罚法 art 37, 从旧兼从轻).

One text per outcome of the choice between the law in force on a case's law date and the
law in force when the decision is made, the same in the library (``_group.py``) and in the
ledger of the batch run (``cases/_write.py``), so the two can be compared word for word:

- the law did not change between the two days: 从旧, and nothing else to weigh;
- it changed, and the later law is not lighter for this case: 从旧 all the same;
- it changed, and the later law is lighter: 从轻, with the figures that made it lighter
  (the fines first, then the list entries, then the other payable amounts: ``Severity``).
"""

from __future__ import annotations

Severity = tuple[int, int, int]  # fines (yuan), list entries, other payable amounts (yuan)

SAME, KEPT, LIGHTER = 0, 1, 2  # the outcomes, as the batch codes them per row


def same_law(key: str) -> str:
    return f"从旧: 行为时的规定 {key},决定时未修改"


def kept(key: str) -> str:
    return f"从旧: 行为时的规定 {key},决定时的规定不轻于此"


def lighter(key: str, new: Severity, old_key: str, old: Severity) -> str:
    """``key`` (the decision date's version) applied because ``new`` < ``old``."""
    for what, mine, theirs, unit in zip(("罚款", "列入名录", "其他金额"), new, old, (" 元", " 项", " 元"), strict=True):
        if mine != theirs:
            return f"从轻: 决定时的规定 {key} 较轻,{what} {mine:,}{unit} < {old_key} {theirs:,}{unit}"
    raise ValueError(f"{key} is not lighter than {old_key}: both {new}")


__all__ = ["KEPT", "LIGHTER", "SAME", "Severity", "kept", "lighter", "same_law"]
