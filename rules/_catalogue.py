"""Fact catalogues: the files of a policy folder that declare facts, kinds and roll-ups.

A catalogue is a YAML file with ``facts:`` and no ``policy:`` header (``registry.yaml``,
``cases.yaml``). It may declare the kind of record its facts belong to (see ``_kinds.py``)
and roll-ups onto that kind or its parent. A folder's catalogues are read together, so a
roll-up may count cases by a fact of their enterprise, and passed on to subfolders.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ._check import check
from ._checks import read_checks
from ._errors import PolicySchemaError, Span
from ._kinds import ROLLUP_FUNCTIONS, WINDOW_ANCHORS, WINDOW_UNITS, RecordKind, Rollup, Window
from ._loader import read_citation, read_facts
from ._schema import Fact, scope_of
from ._sections import POLICY_ID, Section, _identifier, _named_entries, parse_at
from ._types import BOOLEAN, DATE, INTEGER, Kind
from ._workdays import CALENDAR_KEY, CalendarSymbol, WorkCalendar, is_calendar, read_calendar
from ._yaml import Located, load_yaml_file

# A roll-up's range as the checker assumes it: no enterprise has more cases than this.
MAX_RECORDS_PER_PARENT = 1_000_000


@attrs.frozen
class Catalogue:
    """The facts and kinds a policy folder declares (with those of its parent folders)."""

    facts: dict[str, Fact] = attrs.field(factory=dict)
    kinds: dict[str, RecordKind] = attrs.field(factory=dict)
    calendar: WorkCalendar | None = None  # the folder's holiday table (_workdays.py), or its parent's

    def lineage(self, kind: str) -> tuple[str, ...]:
        """``kind`` and the kinds above it: case, enterprise."""
        chain = []
        while kind in self.kinds and kind not in chain:
            chain.append(kind)
            kind = self.kinds[kind].parent
        return tuple(chain)

    def visible_to(self, kind: str) -> dict[str, Fact]:
        """The facts a record of ``kind`` has: its own, its ancestors' (a case reads its
        enterprise's district), roll-ups onto any of them, and facts of no declared kind. A
        kind the folder does not declare sees every fact, as before kinds existed."""
        if kind not in self.kinds:
            return dict(self.facts)
        lineage = self.lineage(kind)
        return {name: fact for name, fact in self.facts.items() if fact.record_kind in (None, *lineage)}


@attrs.frozen
class _File:
    path: Path
    facts: dict[str, Fact]
    kind: RecordKind | None
    rollups: Section | None
    checks: Section | None = None  # the file's top section when it has ``checks:``


def is_catalogue(document: Any) -> bool:
    """A file of the folder that is no policy: fact catalogues, and the holiday table."""
    return isinstance(document, Located) and "policy" not in document and ("facts" in document or is_calendar(document))


def read_catalogue(path: str | Path, document: Any = None) -> dict[str, Fact]:
    """The facts of one catalogue file on its own (roll-ups need the folder: see
    :func:`read_folder_catalogues`)."""
    return _read_file(Path(path), document).facts


def read_folder_catalogues(files: list[tuple[Path, Any]], inherited: Catalogue) -> Catalogue:
    """The catalogue of a folder: ``inherited`` plus each (path, parsed YAML) file."""
    facts, kinds = dict(inherited.facts), dict(inherited.kinds)
    calendars = [(path, read_calendar(path, document)) for path, document in files if is_calendar(document)]
    if len(calendars) > 1:
        raise PolicySchemaError(f"two holiday tables in one folder ({calendars[0][0].name}, {calendars[1][0].name}): "
                                "keep the years in one", Span(str(calendars[1][0]), 1, 1))
    calendar = calendars[0][1] if calendars else inherited.calendar
    read = [_read_file(path, document, calendar) for path, document in files if not is_calendar(document)]
    declared: dict[str, Path] = {}  # a fact of this folder -> the catalogue declaring it
    for file in read:
        for name, fact in file.facts.items():
            # one name, one fact: a second catalogue (another kind's) would replace it silently
            if name in declared:
                raise PolicySchemaError(
                    f"fact {name!r} is already declared in {declared[name].name}; facts of all the folder's "
                    "catalogues share one namespace: give this one its own name", fact.span,
                )
            declared[name] = file.path
        if file.kind is not None:
            if file.kind.id in kinds and file.kind != kinds[file.kind.id]:
                raise PolicySchemaError(f"kind {file.kind.id!r} is declared twice in this folder", file.kind.span)
            kinds[file.kind.id] = file.kind
        facts.update(file.facts)
    for kind in kinds.values():
        if kind.parent is not None and kinds.get(kind.parent) is not None and kinds[kind.parent].compound:
            raise PolicySchemaError(
                f"kind {kind.id!r}: its parent {kind.parent!r} has a key of several facts; a record links to its "
                "parent by one fact", kind.span,
            )
        if kind.parent is not None and kind.parent not in kinds:
            close = difflib.get_close_matches(kind.parent, list(kinds), n=1)
            raise PolicySchemaError(
                f"kind {kind.id!r}: parent kind {kind.parent!r} is not declared in this folder "
                f"(declared: {', '.join(kinds)})", kind.span, suggestion=close[0] if close else None,
            )
    folder = Catalogue(facts, kinds, calendar)
    for file in read:
        if file.checks is not None:
            kinds[file.kind.id] = _with_checks(file, folder)
    for file in read:
        if file.rollups is not None:
            facts.update(_read_rollups(file, folder))
    return Catalogue(facts, kinds, calendar)


def scope_with_calendar(facts: dict[str, Fact], calendar: WorkCalendar | None) -> dict:
    """The names a catalogue expression may use: ``facts``, ``as_of``, and the folder's
    holiday table for the working-day functions (rules/_workdays.py), as a policy's rules."""
    scope = scope_of(facts, {})
    if calendar is not None:
        scope[CALENDAR_KEY] = CalendarSymbol(calendar)
    return scope


def _with_checks(file: _File, folder: Catalogue) -> RecordKind:
    """The kind of ``file`` with its ``checks:``: conditions every record of the kind meets
    before any policy judges it (the order of a case's dates), read like a policy's checks
    on the record's facts and its ancestors', never a roll-up."""
    kind = file.kind
    visible = folder.visible_to(kind.id)
    plain = {name: fact for name, fact in visible.items() if fact.rollup is None}
    checks = read_checks(file.checks, scope_with_calendar(plain, folder.calendar), visible, kind.id, read_citation)
    return attrs.evolve(kind, checks=checks, source=file.path.name)


def _read_file(path: Path, document: Any, calendar: WorkCalendar | None = None) -> _File:
    if document is None:
        document = load_yaml_file(path)
    span = document.span if isinstance(document, Located) else Span(str(path), 1, 1)
    top = Section(document, span, f"fact catalogue {path.name}")
    facts = read_facts(top.section("facts", "facts"))
    top.get("description", required=False)
    kind = None
    if top.has("kind"):
        kind_id = _identifier(top.get("kind"), top.value_span("kind"), "kind", POLICY_ID)
        key, compound = _key_columns(top.get("key", expected=(str, list)), facts, kind_id, top.value_span("key"))
        act = top.get("act", required=False)
        if act is not None and (act not in facts or facts[act].type.kind is not Kind.STRING):
            raise PolicySchemaError(f"act {act!r} must be a text fact of this file (the act's identifier)", top.value_span("act"))
        parent = top.get("parent", required=False)
        law_date = law_text = decision = None
        dates = top.section("dates", f"the dates of kind {kind_id!r}", required=False)
        if dates is not None:
            law_text = dates.get("law")
            scope = scope_with_calendar(facts, calendar)
            law_date = check(parse_at(law_text, dates.value_span("law"), "the law date"), scope, DATE, "law date ('law')")
            decision = dates.get("decision", required=False)
            if decision is not None and (decision not in facts or facts[decision].type != DATE):
                raise PolicySchemaError(f"the decision date {decision!r} must be a date fact of this file", dates.value_span("decision"))
            dates.finish()
        kind = RecordKind(
            kind_id, key, parent, act, top.get("description", required=False), law_date, law_text, decision, top.value_span("kind"),
            compound,
        )
        facts = {name: attrs.evolve(fact, record_kind=kind_id) for name, fact in facts.items()}
    else:
        for key in ("key", "parent", "act", "dates"):
            if top.has(key):
                raise PolicySchemaError(f"{key!r} belongs to a kind: declare 'kind:' in this file", top.value_span(key))
    rollups = top.section("rollups", "rollups", required=False)
    if rollups is not None and kind is None:
        raise PolicySchemaError("roll-ups are computed from the records of a kind: declare 'kind:' in this file", rollups.span)
    checks = None
    if top.has("checks"):
        if kind is None:
            raise PolicySchemaError("checks judge the records of a kind: declare 'kind:' in this file", top.value_span("checks"))
        checks = top
        top.used.add("checks")  # read with the folder's facts (a check may read the parent's)
    top.finish()
    return _File(path, facts, kind, rollups, checks)


def _read_rollups(file: _File, folder: Catalogue) -> dict[str, Fact]:
    child = file.kind
    # a where reads the counted record and its ancestors, never another roll-up
    plain = {name: fact for name, fact in folder.visible_to(child.id).items() if fact.rollup is None}
    scope = scope_with_calendar(plain, folder.calendar)
    found = {}
    for name, entry in _named_entries(file.rollups, "roll-up"):
        if name in folder.facts:
            raise PolicySchemaError(f"roll-up {name!r} has the name of a fact", file.rollups.map.key_spans[name])
        found[name] = _read_rollup(name, entry, child, plain, scope)
        entry.finish()
    return found


def _read_rollup(name: str, entry: Section, child: RecordKind, plain: dict[str, Fact], scope) -> Fact:
    what = f"roll-up {name!r}"
    target = entry.get("for")
    if target not in (child.id, child.parent):
        raise PolicySchemaError(
            f"{what}: 'for' is the kind that gets the fact: {child.parent!r} (over its {child.id} records) "
            f"or {child.id!r} (over the other {child.id} records of the same {child.parent}, in a window)",
            entry.value_span("for"),
        )
    function = _one_of(entry, ROLLUP_FUNCTIONS, f"{what} needs exactly one of {', '.join(ROLLUP_FUNCTIONS)}")
    value = None
    if function == "count":
        if entry.get("count", bool) is not True:
            raise PolicySchemaError(f"{what}: write 'count: true'", entry.value_span("count"))
        fact_type, low, high = INTEGER, 0, MAX_RECORDS_PER_PARENT
    else:
        value = entry.get(function)
        counted = plain.get(value)
        if counted is None or not counted.type.numeric or counted.record_kind != child.id:
            raise PolicySchemaError(f"{what}: {function} of {value!r}: it must be a number fact of the {child.id} records", entry.value_span(function))
        low, high = counted.interval
        if function == "sum":
            low, high = min(low, 0) * MAX_RECORDS_PER_PARENT, max(high, 0) * MAX_RECORDS_PER_PARENT
        fact_type = counted.type
    empty = entry.get("empty", int, required=function == "max", default=0)
    if function == "max":
        low, high = min(low, empty), max(high, empty)
    where = where_text = None
    if entry.has("where"):
        where_text = entry.get("where", (str, bool))
        where = check(parse_at(where_text, entry.value_span("where"), f"the condition of {what}"), scope, BOOLEAN, f"condition of {what}")
    window = None
    if entry.has("window"):
        window = _read_window(entry.section("window", f"the window of {what}"), what, plain, child, target == child.parent)
    if target == child.id and window is None:
        raise PolicySchemaError(
            f"{what}: a roll-up onto the {child.id} records themselves needs a 'window' (the other records "
            f"before this one's date)", entry.span,
        )
    rollup = Rollup(child.id, function, value, where, where_text, window, empty)
    # optional: unset where the records it rolls up are not given at all (a record judged
    # alone, a run without a case table), which a rule tells from 0 with is_set()
    optional = entry.get("optional", bool, required=False, default=False)
    return Fact(
        name, fact_type, label=entry.get("label", required=False), description=entry.get("description", required=False),
        min=low, max=high, record_kind=target, rollup=rollup, span=entry.span, optional=optional,
    )


def _read_window(section: Section, what: str, plain: dict[str, Fact], child: RecordKind, onto_parent: bool) -> Window:
    before = None
    if onto_parent:
        # the parent has no date of its own: its window ends at the run's date
        if not section.has("before"):
            raise PolicySchemaError(
                f"{what}: a window of a roll-up onto the {child.parent} says what it ends before: "
                f"'before: as_of' or 'before: as_of_year' (1 January of as_of's year)", section.span,
            )
        before = section.get("before")
        if before not in WINDOW_ANCHORS:
            close = difflib.get_close_matches(str(before), list(WINDOW_ANCHORS), n=1)
            raise PolicySchemaError(f"{what}: 'before' is one of {', '.join(WINDOW_ANCHORS)}", section.value_span("before"),
                                    suggestion=close[0] if close else None)
    elif section.has("before"):
        raise PolicySchemaError(
            f"{what}: a roll-up onto the {child.id} records is counted before each one's own date; "
            f"'before' belongs to a roll-up onto the {child.parent}", section.value_span("before"),
        )
    date = section.get("date")
    fact = plain.get(date)
    # a window before as_of may count by an optional date (a decision not yet made): a case
    # without one is outside every such window; a window before each case's own date needs it
    if fact is None or fact.type != DATE or fact.record_kind != child.id or (fact.optional and before is None):
        required = "" if before else "required "
        dates = [name for name, f in plain.items() if f.type == DATE and f.record_kind == child.id]
        close = difflib.get_close_matches(str(date), dates, n=1, cutoff=0.6) if fact is None else None
        raise PolicySchemaError(f"{what}: the window's date must be a {required}date fact of the {child.id} records",
                                section.value_span("date"), suggestion=close[0] if close else None)
    unit = _one_of(section, (*WINDOW_UNITS, "days"), f"{what}: the window is one of years, months or days, e.g. 'years: 2'")
    amount = section.get(unit, int)
    if amount <= 0:
        raise PolicySchemaError(f"{what}: the window must be positive", section.value_span(unit))
    section.finish()
    return Window(date, amount, unit, before)


def _key_columns(value: Any, facts: Mapping[str, Fact], kind_id: str, span: Span) -> tuple[str, tuple[str, ...]]:
    """``key: uscc`` or ``key: [assessed_district, assessment_year]``: (the first, all of them
    when several). Each a fact of the file, once, of a type a row can be told apart by."""
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(name, str) for name in names):
        raise PolicySchemaError(f"the key of kind {kind_id!r} is a fact's name or a list of them", span)
    for name in names:
        if name not in facts:
            close = difflib.get_close_matches(name, list(facts), n=1)
            raise PolicySchemaError(f"the key {name!r} of kind {kind_id!r} is not one of this file's facts", span,
                                    suggestion=close[0] if close else None)
        if len(names) > 1 and facts[name].type.kind not in (Kind.STRING, Kind.ENUM, Kind.INTEGER):
            raise PolicySchemaError(f"the key {name!r} of kind {kind_id!r} is {facts[name].type.kind.value}: a key of "
                                    "several facts takes text, enum and integer facts", span)
    if len(set(names)) != len(names):
        raise PolicySchemaError(f"the key of kind {kind_id!r} names a fact twice", span)
    return names[0], tuple(names) if len(names) > 1 else ()


def _one_of(section: Section, keys: tuple[str, ...], message: str) -> str:
    """The one of ``keys`` the section gives; else the error at a misspelled one ('counts:'
    for 'count:', with the did-you-mean), or at the section."""
    given = [key for key in keys if section.has(key)]
    if len(given) == 1:
        return given[0]
    if not given:
        for key in section.map:
            close = difflib.get_close_matches(str(key), keys, n=1, cutoff=0.6)
            if close and key not in keys:
                raise PolicySchemaError(f"{message}; unknown key {key!r}", section.map.key_spans[key], suggestion=close[0])
    raise PolicySchemaError(message, section.span)


__all__ = ["Catalogue", "is_catalogue", "read_catalogue", "read_folder_catalogues"]
