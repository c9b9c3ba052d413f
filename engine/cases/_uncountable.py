"""Roll-ups that cannot be counted: a ``where`` counting working days outside the holiday table.

A roll-up's ``where`` (rules/_kinds.py) may count working days (行政处罚法 art 85) on the
case it tests. Where such a day falls outside the holiday table, whether the case counts is
unknown, and a count that left it out would be silently low (a discretion level, an
escalation): so the enterprise whose roll-up it is, counted onto it or onto one of its
cases in a window, is rejected with all its cases, the reject naming the roll-up, the case
and its date, as ``rules._kinds.uncountable`` decides for the reference. A case the roll-up
does not count (outside its window) rejects nothing.

The where conditions whose calls may fall outside the table are each scored by a program
of their own: the kernel takes a row whose call is outside out of its accepted rows, which
must not hide the row from another roll-up's where.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np
from ecorules.rules._kinds import Rollup
from ecorules.rules._workdays import calls as workday_calls

from ._rollups import _before_as_of, window_start


@attrs.frozen
class WherePrograms:
    """The compiled where conditions: rules named by their roll-up, in one program for the
    conditions that count no working day and one per condition that does."""

    programs: tuple
    counting: int = 0  # how many of them (the last) hold a condition counting working days

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for program in self.programs for name in program.columns))


def where_programs(rules: tuple, compile_one: Callable[[tuple], object]) -> WherePrograms | None:
    """``rules``: one Rule per roll-up with a where; ``compile_one(rules)`` compiles a program."""
    if not rules:
        return None
    counting = tuple(rule for rule in rules if workday_calls(rule.condition))
    plain = tuple(rule for rule in rules if rule not in counting)
    groups = ([plain] if plain else []) + [(rule,) for rule in counting]
    return WherePrograms(tuple(compile_one(group) for group in groups), len(counting))


@attrs.frozen
class Unknown:
    """Per roll-up, the case rows whose where could not be computed, with the kernel's
    (value, reason) of the first call outside the table on each."""

    rows: dict[str, dict[int, tuple[str, str]]]


def uncountable_enterprises(plan, cases, unknown: Unknown, as_of) -> dict[int, tuple[str, str, str]]:
    """Enterprise index (of the side table) -> (roll-up, value, reason) for each enterprise
    a roll-up cannot be counted for: the first roll-up in the catalogue's order (onto the
    enterprise, then onto its cases) and, for it, the first case row it counts."""
    found: dict[int, tuple[str, str, str]] = {}
    key_texts = cases.keys
    for name, rollup in {**plan.onto_parent, **plan.onto_cases}.items():
        failing = unknown.rows.get(name)
        if not failing:
            continue
        rows = np.array(sorted(failing), np.int64)
        rows = rows[cases.valid[rows]]
        counted = rows[_counted(cases, rollup, rows, as_of)]
        for row in counted.tolist():
            enterprise = int(cases.enterprise[row])
            if enterprise in found:
                continue
            value, reason = failing[row]
            case_id = key_texts[int(cases.key_code[row])].as_py()
            found[enterprise] = (name, value, f"{name} cannot be counted on {plan.kind.key} {case_id}: {reason}")
    return found


def _counted(cases, rollup: Rollup, rows: np.ndarray, as_of) -> np.ndarray:
    """Whether each of ``rows`` counts in ``rollup`` for its enterprise or for another valid
    case of it (as rules/_kinds._counted)."""
    window = rollup.window
    if window is None:
        return np.ones(rows.size, bool)
    if window.before is not None:
        return _before_as_of(cases, window, as_of)[rows]
    # counted by some other case of the enterprise: the first later day of the enterprise has
    # the earliest window start (a start never goes back as its day advances)
    day = cases.columns[window.date].values.astype(np.int64)
    valid = np.flatnonzero(cases.valid)
    order = valid[np.lexsort((day[valid], cases.enterprise[valid]))]
    owners, days = cases.enterprise[order], day[order]
    out = np.zeros(rows.size, bool)
    for i, row in enumerate(rows.tolist()):
        mine = owners == cases.enterprise[row]
        later = days[mine][days[mine] > day[row]]
        out[i] = later.size > 0 and int(window_start(window, later[:1])[0]) <= day[row]
    return out


__all__ = ["Unknown", "WherePrograms", "uncountable_enterprises", "where_programs"]
