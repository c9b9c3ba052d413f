"""What the impact of a draft is made of: per district, per rule, per list, per enterprise.

Plain values built by ``_impact.py`` and read by the report: frozen attrs classes for the
few aggregates, named tuples for the per-enterprise rows, of which there are thousands.
Amounts are exact integers in yuan.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import attrs
from ecorules.rules import Citation

DISTRICT = "district"  # the registry column the impact is broken down by
NO_DISTRICT = "(无区县 none)"

@attrs.frozen
class RuleInfo:
    """What a reader needs to know about a rule on one side: its words and its clause."""

    policy: str  # id@version
    title: str
    kind: str | None  # the kind of its first finding; None for a sanction-only rule
    citation: Citation
    condition: str
    reads: tuple[str, ...]  # the registry facts its condition and amounts read
    parameters: tuple[str, ...]  # the parameters it reads


@attrs.frozen
class RuleImpact:
    policy: str  # policy id
    rule: str
    before_yuan: int
    after_yuan: int
    fired_before: int  # rows on which the rule fired
    fired_after: int
    base: RuleInfo | None  # None: the rule is not in force on that side
    proposed: RuleInfo | None

    @property
    def difference_yuan(self) -> int:
        return self.after_yuan - self.before_yuan


@attrs.frozen
class DistrictImpact:
    district: str
    before_yuan: int
    after_yuan: int
    enterprises_before: int  # rows with an amount owed
    enterprises_after: int
    changed: int  # rows whose outcome changed

    @property
    def difference_yuan(self) -> int:
        return self.after_yuan - self.before_yuan


@attrs.frozen
class ListImpact:
    list: str
    title: str
    before: int  # rows on the list
    after: int
    entered: int
    left: int


class RuleChange(NamedTuple):
    """One rule responsible for an enterprise's change: its figures on both sides.

    Named tuples, not attrs classes, for this and :class:`ChangedEnterprise`: thousands are
    made per diff, and a tuple is built several times faster.
    """

    policy: str
    rule: str
    before_yuan: int
    after_yuan: int
    fired_before: bool
    fired_after: bool
    lists_entered: tuple[str, ...]
    lists_left: tuple[str, ...]


class ChangedEnterprise(NamedTuple):
    uscc: str
    name: str | None
    district: str
    before_yuan: int
    after_yuan: int
    lists_entered: tuple[str, ...]
    lists_left: tuple[str, ...]
    rules: tuple[RuleChange, ...]
    facts: dict[str, Any]  # the registry row, as checked values (what the rules judged)

    @property
    def difference_yuan(self) -> int:
        return self.after_yuan - self.before_yuan


@attrs.frozen
class Impact:
    as_of: dt.date
    rows_in: int
    rows_compared: int
    rejected_base: int  # rows the base set rejects (bad USCC, missing field, ...)
    rejected_proposed: int
    rejected_only_proposed: int  # accepted today, rejected under the proposal
    before_yuan: int
    after_yuan: int
    districts: tuple[DistrictImpact, ...]  # by |difference| then name
    rules: tuple[RuleImpact, ...]  # in the order of the base program, then new rules
    lists: tuple[ListImpact, ...]
    changed_count: int
    changed: tuple[ChangedEnterprise, ...]  # the first `limit` by |difference|, then USCC
    rows_unreadable: int = 0  # rows the reader dropped before scoring (counted in rows_in)
    # yuan: every amount here an int; fen (a rule of either side rounds to the fen): every
    # amount an exact two-place Decimal of yuan
    unit: str = "yuan"

    @property
    def difference_yuan(self) -> int:
        return self.after_yuan - self.before_yuan


__all__ = [
    "DISTRICT", "NO_DISTRICT", "ChangedEnterprise", "DistrictImpact", "Impact", "ListImpact",
    "RuleChange", "RuleImpact", "RuleInfo",
]
