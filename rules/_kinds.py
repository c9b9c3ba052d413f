"""Levels of records: the kinds a policy folder declares, and roll-ups between them.

The law judges acts, the Zhengzhou measures deduct per enterprise and charge districts. A
folder's fact catalogues say which kinds of record exist and how they hang together:

    kind: case                 # cases.yaml: one row per case (one act breaching one clause)
    key: case_id               # what identifies a record of this kind; or several facts that
                               # do together: key: [assessed_district, assessment_year]
    parent: enterprise         # each case carries its enterprise's key (uscc)
    act: act_id                # rows of one act share it (行政处罚法 art 29); empty: its own act

A **roll-up** is a fact computed from the records of a child kind, as OpenFisca's group
entities sum over their members, with the neutral element written down as Catala requires:

* ``for: enterprise`` — over the enterprise's cases: ``count``, ``sum: fact``, ``max: fact``;
* ``for: case`` with a ``window`` — over the *other* cases of the same enterprise whose date
  lies in the window before this case's date ("offences in the 2 years before this act");
* ``for: enterprise`` with a ``window`` that says ``before: as_of`` or ``before: as_of_year``
  — over the enterprise's cases whose date lies in the window before the run's ``as_of``, or
  before 1 January of as_of's year ("cases decided in the calendar year before the rating
  year": ``{date: decided, before: as_of_year, years: 1}``). A case whose date is empty is
  not in such a window.

A roll-up's ``where`` is a condition on the counted record. The reference computation is
:func:`compute_rollups`, plain Python over one enterprise and its cases; the batch path
computes the same columns with numpy, and the tests compare the two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from . import _ast as ast
from ._calendar import add_days, add_months
from ._errors import Span, UsageError
from ._evaluate import evaluate

ROLLUP_FUNCTIONS = ("count", "sum", "max")
WINDOW_UNITS = {"years": 12, "months": 1}  # in months; "days" is handled apart
# what a window of an enterprise's roll-up ends before (exclusive): the run's as_of, or the
# first day of as_of's year, so that a whole calendar year is counted whatever the day of the run
WINDOW_ANCHORS = {"as_of": "as_of", "as_of_year": "as_of所在年度的1月1日"}


@attrs.frozen
class RecordKind:
    """A kind of record a policy can judge (its ``domain``)."""

    id: str
    key: str  # the fact identifying one record
    parent: str | None = None  # the kind each record belongs to; its key is a fact of ours
    act: str | None = None  # the fact grouping rows of one act, for one act one fine
    description: str | None = None
    # 行政处罚法 art 37: a record is judged by the law in force on ``law_date`` (typed date
    # expression, e.g. value_or(act_end, act_date)), unless the law in force on
    # ``decision_date`` (when set and known as of the run, else the run's as_of) is lighter.
    law_date: ast.Node | None = attrs.field(default=None, eq=False)
    law_date_text: str | None = None
    decision_date: str | None = None  # an optional date fact: the decision, when made
    span: Span | None = attrs.field(default=None, eq=False, repr=False)
    # ``key: [assessed_district, assessment_year]``: the facts that together identify one
    # record (one row per district and year); ``key`` is the first, the name the ledger gives
    # a record. Empty: the key alone.
    compound: tuple[str, ...] = ()

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The facts one row of a table of this kind is unique by (engine/_duplicates.py)."""
        return self.compound or (self.key,)
    # the catalogue's ``checks:`` (rules/_checks.py), shared by every policy of the kind and
    # judged once per record before any policy's own; ``source`` names the catalogue in rejects
    checks: tuple = attrs.field(default=(), eq=False, repr=False)
    source: str | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def date_reads(self) -> tuple[str, ...]:
        """The facts that choose a record's law: its law date's and its decision date."""
        reads = ast.names(self.law_date) if self.law_date is not None else ()
        return (*reads, self.decision_date) if self.decision_date else reads


@attrs.frozen
class Window:
    """The counted record's ``date`` lies on or after the window's end moved back by
    ``amount`` ``unit`` (民法典 art 202: the corresponding day, or the month's last day), and
    strictly before its end. The end is this record's own ``date`` (the act itself and later
    acts never count), or, with ``before``, the run's as_of or 1 January of as_of's year."""

    date: str  # a date fact of the child kind
    amount: int
    unit: str  # "years", "months" or "days"
    before: str | None = None  # None: the judged record's date; else a key of WINDOW_ANCHORS

    def start(self, anchor: dt.date) -> dt.date:
        if self.unit == "days":
            return add_days(anchor, -self.amount)
        return add_months(anchor, -self.amount * WINDOW_UNITS[self.unit])

    def end(self, as_of: dt.date) -> dt.date:
        """The first day after the window of a roll-up measured from the run's as_of."""
        return as_of if self.before == "as_of" else dt.date(as_of.year, 1, 1)

    def describe(self) -> str:
        words = {"years": "年", "months": "个月", "days": "日"}
        before = f"{WINDOW_ANCHORS[self.before]}之前" if self.before else ""
        return f"{before}{self.amount}{words[self.unit]}内({self.date})"


@attrs.frozen
class Rollup:
    """How a roll-up fact is computed from the records of ``over``."""

    over: str  # the child kind
    function: str  # count, sum or max
    value: str | None  # the summed / maximised fact of the child; None for count
    where: ast.Node | None  # typed condition on the child record
    where_text: str | None
    window: Window | None  # only for a roll-up of a child kind onto its own records
    empty: int  # the value when no record counts (the neutral element, written down)

    @property
    def reads(self) -> tuple[str, ...]:
        """The facts of the counted record it reads: the value, the window's date, what its
        ``where`` tests (the where may also read the parent's facts and ``as_of``)."""
        named = (self.value, self.window.date if self.window else None,
                 *(ast.names(self.where, "fact") if self.where is not None else ()))
        return tuple(dict.fromkeys(name for name in named if name))

    @property
    def onto_siblings(self) -> bool:
        """Computed for each record of ``over`` from the others before its date, not onto
        the parent (whose windows, if any, are measured from the run's as_of)."""
        return self.window is not None and self.window.before is None


def compute_rollups(
    rollups: Mapping[str, Rollup],
    children: Sequence[Mapping[str, Any]],
    env_of: Any = None,
    anchor: Mapping[str, Any] | None = None,
    as_of: dt.date | None = None,
) -> dict[str, Any]:
    """The values of ``rollups`` for one record: its children, or its siblings in a window.

    ``children``: the checked values of the child records (an enterprise's cases). For a
    windowed roll-up onto a child, ``anchor`` is the record the window is measured from (the
    case being judged), which never counts itself; a window with ``before`` is measured from
    ``as_of``, the run's date. ``env_of(child)`` gives the names a ``where`` may read (the
    child's values merged with its parent's), default: the child's values.
    """
    env_of = env_of or (lambda child: child)
    values: dict[str, Any] = {}
    for name, rollup in rollups.items():
        counted = []
        window = rollup.window
        bounds = None if window is None else _window_days(name, window, anchor, as_of)
        for child in children:
            if window is not None:
                day = child.get(window.date)
                # a window measured from the anchor never counts the anchor itself
                if (bounds is None or day is None or not bounds[0] <= day < bounds[1]
                        or (window.before is None and child is anchor)):
                    continue
            if rollup.where is not None and not evaluate(rollup.where, env_of(child)):
                continue
            counted.append(child)
        if rollup.function == "count":
            values[name] = len(counted)
            continue
        present = [child[rollup.value] for child in counted if child.get(rollup.value) is not None]
        if not present:
            values[name] = rollup.empty
        elif rollup.function == "sum":
            values[name] = sum(present)
        else:
            values[name] = max(present)
    return values


def uncountable(
    rollups: Mapping[str, Rollup],
    children: Sequence[Mapping[str, Any]],
    key: str,
    env_of: Any = None,
    as_of: dt.date | None = None,
):
    """The first roll-up of ``rollups`` (in their order) that cannot be counted because its
    ``where`` counts working days outside the holiday table on a child it counts (the first
    such child, in their order): a ``CheckFailure`` blaming the roll-up, the child's date and
    the child (``key``: its key fact), or None. A child counts where the roll-up's window, if
    any, holds it: before as_of, or before the date of some other child. Every call of the
    where is computed on every counted child whose arguments can be evaluated, even where
    another part of the where decides it (as the batch kernel computes every row); a count
    that would leave the child out is never made, so the record whose roll-up it is (the
    parent) is rejected instead (engine/_group.judge_group, engine/cases/_uncountable.py)."""
    from ._checks import CheckFailure
    from ._workdays import CALENDAR_CHECK, calendar_failures, outside_calls

    env_of = env_of or (lambda child: child)
    for name, rollup in rollups.items():
        found = outside_calls(f"roll-up {name}", rollup.where, key) if rollup.where is not None else []
        if not found:
            continue
        for child in children:
            if not _counted(name, rollup, child, children, as_of):
                continue
            failures = calendar_failures(found, env_of(child), child)
            if failures:
                first = failures[0]
                return CheckFailure(f"roll-up {name}", CALENDAR_CHECK, name, first.value,
                                    f"{name} cannot be counted on {key} {child[key]}: {first.reason}")
    return None


def _counted(name: str, rollup: Rollup, child: Mapping[str, Any], children: Sequence[Mapping[str, Any]],
             as_of: dt.date | None) -> bool:
    """Whether ``rollup`` counts ``child`` for its parent or for some other child (where)."""
    window = rollup.window
    if window is None:
        return True
    day = child.get(window.date)
    if day is None:
        return False
    if window.before is not None:
        start, end = _window_days(name, window, None, as_of)
        return start <= day < end
    for anchor in children:
        bounds = None if anchor is child else _window_days(name, window, anchor, as_of)
        if bounds is not None and bounds[0] <= day < bounds[1]:
            return True
    return False


def _window_days(name: str, window: Window, anchor: Mapping[str, Any] | None, as_of: dt.date | None):
    """The days ``[start, end)`` a counted child's date falls in: before the run's as_of (or
    1 January of its year) for a window with ``before``, else before the anchor's own date;
    None where the anchor or its date is missing (nothing counts)."""
    if window.before is not None:
        if as_of is None:
            raise UsageError(f"roll-up {name!r} is counted in a window before as_of: give as_of")
        end = window.end(as_of)
    else:
        end = None if anchor is None else anchor.get(window.date)
        if end is None:
            return None
    return window.start(end), end


__all__ = ["ROLLUP_FUNCTIONS", "WINDOW_ANCHORS", "RecordKind", "Rollup", "Window", "compute_rollups", "uncountable"]
