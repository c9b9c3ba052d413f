"""Hypothesis strategies: random policy folders with kinds of record, and their tables.

``fastcalc_strategies.policy_files`` draws policies of the enterprise alone. Here a folder
declares two kinds (``enterprises.yaml``: the enterprise; ``cases.yaml``: the case, whose
parent it is, with ``act: act_id``) and draws what the case table's batch path computes:

- roll-ups between the kinds: ``count`` (with or without a drawn ``where``), ``sum`` and ``max``
  onto the enterprise, a windowed ``count`` or ``sum`` onto the case (years, months or days);
- checks in the case kind's catalogue (drawn, and the date order with its values shown);
- one act, one fine (行政处罚法 art 29): rows sharing an act_id, rules fining under several
  policies, so that only the highest fine of an act is imposed;
- the law in force at the act (art 37): the kind's ``dates:`` (the law date drawn among
  act_date, value_or(act_end, act_date) and a working-day function of it) and case policies
  in two dated versions, so that a case is judged by the older or the lighter later one;
- enterprise policies reading the roll-ups, and case policies reading the enterprise's
  facts and roll-ups; findings paid by the district, so that cases roll up to the district
  directly and through an enterprise's roll-up (case -> enterprise -> district);
- an optional payer, the registry's responsible_unit (责任单位, eco_water_interception.yaml):
  a finding paid by it where the rule's condition proves it set, by the district under
  ``not is_set(responsible_unit)``; the registry names a unit, leaves it empty, or has no
  such column at all (``may_be_absent``), and a unit may be a district's own name, so that
  the roll-ups per payer (district_totals) add both;
- named values (``values:``) in case and enterprise policies;
- amounts rounded to the fen or the yuan (a policy's ``rounding:`` and a rule's own), so that
  the fines of one act may be in different units (compared in fen, art 29 and 37).

Expressions come from ``fastcalc_strategies.Expressions`` (the whole language, working days
on a drawn holiday table).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
from ecorules.rules import check, load_policies, parse_expression
from ecorules.rules._schema import Fact
from ecorules.rules._types import BOOLEAN, DATE, DECIMAL, INTEGER, STRING, enum_type
from ecorules.rules._workdays import CALENDAR_KEY, CalendarSymbol, read_calendar
from fastcalc_strategies import (
    Expressions,
    _check,
    _entry_dates,
    _policy_yaml,
    _values,
    holiday_table,
    parameters,
    roundings,
)
from hypothesis import strategies as st

DISTRICTS = ["金水区", "二七区"]
CLAUSES = ["a", "b", "c"]
FIRST, LAST = dt.date(2010, 1, 1), dt.date(2017, 12, 31)
ENTERPRISE_FACTS = {
    "uscc": Fact("uscc", STRING, format="uscc", record_kind="enterprise"),
    "district": Fact("district", enum_type(DISTRICTS), record_kind="enterprise"),
    "size": Fact("size", INTEGER, min=0, max=1000, record_kind="enterprise"),
    "flagged": Fact("flagged", BOOLEAN, optional=True, record_kind="enterprise"),
    # 责任单位: who pays where the registry names one (a text, not an enum: a district, a
    # management committee or a city department, as written), and a column the registry may
    # leave out altogether
    "responsible_unit": Fact("responsible_unit", STRING, optional=True, may_be_absent=True, record_kind="enterprise"),
}
OPTIONAL_PAYER = "responsible_unit"
# the units a registry names: one a district's own name (its deductions then add to the
# district's in the roll-ups per payer), one written with spaces around it
UNITS = ["郑州市城市管理局", "郑东新区管委会", "金水区", " 郑东新区管委会 "]
CASE_FACTS = {
    "case_id": Fact("case_id", STRING, record_kind="case"),
    "act_id": Fact("act_id", STRING, optional=True, record_kind="case"),
    "clause": Fact("clause", enum_type(CLAUSES), record_kind="case"),
    "act_date": Fact("act_date", DATE, min=FIRST, max=LAST, record_kind="case"),
    "act_end": Fact("act_end", DATE, min=FIRST, max=LAST, optional=True, record_kind="case"),
    "discovered": Fact("discovered", DATE, min=FIRST, max=LAST, record_kind="case"),
    "decided": Fact("decided", DATE, min=FIRST, max=LAST, optional=True, record_kind="case"),
    "fine_yuan": Fact("fine_yuan", INTEGER, min=0, max=1_000_000, optional=True, record_kind="case"),
    "level": Fact("level", INTEGER, min=1, max=5, record_kind="case"),
    "rate": Fact("rate", DECIMAL, min=Decimal("0"), max=Decimal("10"), optional=True, record_kind="case"),
    "eco": Fact("eco", BOOLEAN, optional=True, record_kind="case"),
}
LAW_DATES = ["act_date", "value_or(act_end, act_date)", "working_day_on_or_after(act_date)"]
CHANGES = [dt.date(2012, 1, 1), dt.date(2013, 7, 1), dt.date(2015, 1, 1)]  # when a second version starts
AS_OF = [dt.date(2013, 6, 30), dt.date(2016, 12, 31), dt.date(2018, 1, 1)]

# What a drawn folder holds, for the statistics and the coverage assertion
KIND_CONSTRUCTS = ("kind case", "roll-up count", "roll-up count where", "roll-up sum", "roll-up max",
                   "roll-up window", "case policy reads a roll-up", "act groups", "kind checks",
                   "dated versions (art 37)", "law date", "working days in the catalogue",
                   "roll-up window before as_of", "case amounts in fen", "case policies mixing yuan and fen",
                   "enterprise kind checks", "values: read by a case rule", "values: read by an enterprise rule",
                   "case finding paid by the district", "roll-up case -> enterprise -> district",
                   "case finding paid by the optional payer", "enterprise finding paid by the optional payer",
                   "a rule for where the optional payer is not set")


class Folder:
    """What was drawn: the loaded policies and which constructs they hold."""

    def __init__(self, policies, constructs: set[str]):
        self.policies = policies
        self.constructs = constructs


def _fact_yaml(name: str, fact: Fact) -> list[str]:
    out = [f"  {name}:", f"    type: {fact.type.kind.value}"]
    if fact.format:
        out.append(f"    format: {fact.format}")
    if fact.type.choices:
        out.append("    values: [" + ", ".join(fact.type.choices) + "]")
    for key in ("min", "max"):
        if getattr(fact, key) is not None:
            out.append(f"    {key}: {getattr(fact, key)}")
    if fact.optional:
        out.append("    optional: true")
    if fact.may_be_absent:
        out.append("    may_be_absent: true")
    return out


def _plain(facts: dict[str, Fact]) -> dict[str, Fact]:
    """Facts an expression may read, without the keys (a case_id compared to a text is valid
    but draws nothing of interest)."""
    return {n: f for n, f in facts.items() if n not in ("case_id", "act_id")}


# the rare working-day rejects of cases (case_folder's ``rare``), on the table from 2012: a
# law date counting working days from a case's act date ("law"), an enterprise's roll-up
# counting them in its where ("where"), an enterprise policy's rule reaching 2011 for an
# enterprise of two cases or more counted by its first roll-up ("rule": the library refuses the
# enterprise's whole group, tests/engine/test_case_enterprise_rule_rejects.py)
RARE_CASES = {"law": "working_day_on_or_after(act_date)", "where": "add_working_days(act_date, 5) < discovered",
              "rule": "working_day_on_or_after(if(u0 >= 2, date('2011-06-01'), as_of)) > as_of"}


@st.composite
def case_folder(draw, folder: Path, rare: str | None = None) -> Folder:
    """Write the two catalogues, the holiday table, case and enterprise policies into
    ``folder``; the loader reads them (a refusal is the caller's to discard). ``rare`` (a
    key of RARE_CASES) makes the folder count working days from the cases' act dates on a
    table from 2012, in the law date or in the where of its first roll-up, or gives the
    enterprise policy a rule whose working day is outside that table where that roll-up
    counts two cases or more."""
    constructs = {"kind case"}
    # sometimes a table from 2012 on: the cases' working days from 2010 fall outside it and are
    # rejects, in a rule or check and in the law date alike
    years = draw(st.sampled_from([(2000, 2030), (2000, 2030), (2012, 2030)])) if rare is None else (2012, 2030)
    (folder / "holidays.yaml").write_text(holiday_table(draw(st.integers(0, 2**32 - 1)), years), encoding="utf-8")
    table = CalendarSymbol(read_calendar(folder / "holidays.yaml"))
    both = {**ENTERPRISE_FACTS, **CASE_FACTS}

    def expressions(facts, params=None) -> Expressions:
        exprs = Expressions(draw, _plain(facts), params or {})
        exprs.scope[CALENDAR_KEY] = table
        return exprs

    # roll-ups: onto the enterprise, and over the other cases of the enterprise in a window
    rollups, onto_enterprise, onto_case = [], {}, {}
    where_exprs = expressions(both)
    for r in range(draw(st.integers(1, 4))):
        name = f"u{r}"
        function = draw(st.sampled_from(["count", "window", "count", "sum", "max", "before"]))
        if rare in ("where", "rule") and r == 0:
            function = "count"
        lines = [f"  {name}:"]
        where = None
        if function != "max" and draw(st.booleans()):
            where = where_exprs.checked("boolean", BOOLEAN, draw(st.integers(0, 2)))
            if draw(st.integers(0, 3)) == 0:
                # working days counted on the case itself: on the table from 2012, its cases
                # of 2010-2011 fall outside it, and the enterprise counting them is a reject
                where = draw(st.sampled_from(["working_days_between(act_date, discovered, 'inclusive') > 20",
                                              "add_working_days(act_date, 5) < discovered",
                                              "level > 2 or add_working_days(act_date, 1) < discovered"]))
        if rare == "where" and r == 0:
            where = RARE_CASES["where"]
        if function == "window":
            unit = draw(st.sampled_from(["years", "months", "days"]))
            amount = {"years": draw(st.sampled_from([1, 2])), "months": draw(st.sampled_from([1, 6, 18])),
                      "days": draw(st.sampled_from([30, 400]))}[unit]
            summed = draw(st.booleans())
            lines += ["    for: case", "    sum: level" if summed else "    count: true",
                      f"    window: {{date: act_date, {unit}: {amount}}}"]
            onto_case[name] = Fact(name, INTEGER, min=0, max=5_000_000, record_kind="case")
            constructs.add("roll-up window")
        elif function == "before":  # onto the enterprise, in a window ending at the run's as_of
            before = draw(st.sampled_from(["as_of", "as_of_year"]))
            unit, amount = draw(st.sampled_from([("years", 1), ("months", 18), ("days", 400)]))
            summed = draw(st.booleans())
            lines += ["    for: enterprise", "    sum: level" if summed else "    count: true",
                      f"    window: {{date: act_date, before: {before}, {unit}: {amount}}}"]
            onto_enterprise[name] = Fact(name, INTEGER, min=0, max=5_000_000, record_kind="enterprise")
            constructs.add("roll-up window before as_of")
        else:
            lines.append("    for: enterprise")
            lines.append({"count": "    count: true", "sum": "    sum: level", "max": "    max: level\n    empty: 0"}[function])
            onto_enterprise[name] = Fact(name, INTEGER, min=0, max=5_000_000, record_kind="enterprise")
            constructs.add(f"roll-up {function}")
        if where is not None:
            lines.append(f'    where: "{where}"')
            constructs.add("roll-up count where" if function == "count" else "roll-up count")
        rollups += lines

    # the case kind's checks: drawn, and the date order with the values it compares
    checks = []
    check_exprs = expressions(CASE_FACTS)
    for c in range(draw(st.sampled_from([0, 1, 1, 2]))):
        found = _check(draw, check_exprs, f"kc{c}")
        if found is not None:
            checks.append(found)
    order = draw(st.booleans())
    if checks or order:
        constructs.add("kind checks")
    law = draw(st.sampled_from([None, *LAW_DATES]))
    if rare is not None:  # a case rejected for its law date would count in no roll-up
        law = RARE_CASES["law"] if rare == "law" else "act_date"
    lines = ["description: random cases", "kind: case", "key: case_id", "parent: enterprise", "act: act_id"]
    if law is not None:
        lines += ["dates:", f'  law: "{law}"', "  decision: decided"]
        constructs.add("law date")
        if "working" in law:
            constructs.add("working days in the catalogue")
    lines.append("facts:")
    for name, fact in CASE_FACTS.items():
        lines += _fact_yaml(name, fact)
    lines += ["rollups:", *rollups]
    if checks or order:
        lines.append("checks:")
    if order:
        lines += ["  - id: discovered_not_before_act", "    require: discovered >= act_date", "    column: discovered",
                  '    message: "discovered before act_date: {discovered} < {act_date}"']
    for check_id, when, require, column in checks:
        lines += [f"  - id: {check_id}", f"    column: {column}", f"    message: check {check_id} fails"]
        lines += [f'    when: "{when}"'] if when else []
        lines += [f'    require: "{require}"']
    if any("working_" in text for text in (*rollups, *(str(c) for c in checks))):
        constructs.add("working days in the catalogue")
    (folder / "cases.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # the enterprise kind's check: a registry row failing it is rejected, and so are its cases
    lines = ["description: random enterprises", "kind: enterprise", "key: uscc", "facts:",
             *(line for name, fact in ENTERPRISE_FACTS.items() for line in _fact_yaml(name, fact))]
    found = _check(draw, expressions({n: f for n, f in ENTERPRISE_FACTS.items() if n != "uscc"}), "ek0") \
        if draw(st.integers(0, 2)) == 0 else None  # (a random check rejects many: not too often)
    if found is not None:
        constructs.add("enterprise kind checks")
        check_id, when, require, column = found
        lines += ["checks:", f"  - id: {check_id}", f"    column: {column}", f"    message: check {check_id} fails"]
        lines += [f'    when: "{when}"'] if when else []
        lines += [f'    require: "{require}"']
    (folder / "enterprises.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")

    # case policies: one or two statutes, each in one or two dated versions, fining acts
    case_visible = {**both, **onto_enterprise, **onto_case}
    fining = 0  # rules fining the enterprise, per version: two can fine one act (art 29)
    units: set[str] = set()  # the units the case rules' amounts round to
    for p in range(draw(st.integers(1, 2))):
        change = draw(st.sampled_from([None, *CHANGES]))
        versions = [(dt.date(2000, 1, 1), None)] if change is None else [(dt.date(2000, 1, 1), change), (change, None)]
        if change is not None:
            constructs.add("dated versions (art 37)")
        for v, (effective, expires) in enumerate(versions):
            params = draw(parameters(f"q{p}"))
            exprs = expressions(case_visible, params)
            values = _values(draw, exprs)  # named steps (values:) the rules below may read
            rounding = draw(roundings())  # the policy's, and below some rules' own
            rules = _rules(draw, exprs, ["enterprise", "district"], fines=True, rounding=rounding)
            units.update((rule[5] or {}).get("unit") or (rounding or {}).get("unit", "yuan") for rule in rules)
            fining += sum(any(kind == "fine" for kind, _, _ in rule[2]) for rule in rules)
            if any(name in text for name in (*onto_enterprise, *onto_case) for rule in rules for text in _texts(rule)):
                constructs.add("case policy reads a roll-up")
            if any(_reads(text, name) for name, _ in values for rule in rules for text in _texts(rule)):
                constructs.add("values: read by a case rule")
            if any(payer == "district" for rule in rules for _, _, payer in rule[2]):
                constructs.add("case finding paid by the district")  # case -> district
            if any(payer == OPTIONAL_PAYER for rule in rules for _, _, payer in rule[2]):
                constructs.add("case finding paid by the optional payer")
            if any(rule[1].startswith(f"(not is_set({OPTIONAL_PAYER})") for rule in rules):
                constructs.add("a rule for where the optional payer is not set")
            text = _policy_yaml(f"test.c{p}", effective, expires, params, rules, rounding, values=values).replace(
                '  version: "1"', f'  version: "{v + 1}"\n  domain: case')
            (folder / f"case{p}_{v}.yaml").write_text(text, encoding="utf-8")
    if fining >= 2:
        constructs.add("act groups")
    if "fen" in units:
        constructs.add("case amounts in fen")
        if len(units) > 1:
            constructs.add("case policies mixing yuan and fen")
    # an enterprise policy reading the roll-ups
    params = draw(parameters("e"))
    exprs = expressions({**ENTERPRISE_FACTS, **onto_enterprise}, params)
    values = _values(draw, exprs)
    rules = _rules(draw, exprs, ["district"], fines=False)
    if rare == "rule":
        rules.append(("rw", RARE_CASES["rule"], [], [("watch", None, None)], [], None))
    if any(_reads(text, name) for name, _ in values for rule in rules for text in _texts(rule)):
        constructs.add("values: read by an enterprise rule")
    if any(payer == OPTIONAL_PAYER for rule in rules for _, _, payer in rule[2]):
        constructs.add("enterprise finding paid by the optional payer")
    if any(rule[1].startswith(f"(not is_set({OPTIONAL_PAYER})") for rule in rules):
        constructs.add("a rule for where the optional payer is not set")
    # three levels: the cases rolled up onto the enterprise, its finding paid by its district
    if any(rule[2] and any(_reads(text, name) for name in onto_enterprise for text in _texts(rule)) for rule in rules):
        constructs.add("roll-up case -> enterprise -> district")
    (folder / "enterprise.yaml").write_text(_policy_yaml("test.e", dt.date(2000, 1, 1), None, params, rules,
                                                         values=values), encoding="utf-8")
    return Folder(load_policies(folder), constructs)


def _reads(text: str, name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", text) is not None


def _texts(rule) -> list[str]:
    _, condition, findings, sanctions, _lifts, _ = rule
    return [condition, *(amount for _, amount, _ in findings), *(d or "" for _, *dates in sanctions for d in dates)]


def _rules(draw, exprs: Expressions, payers: list[str], fines: bool, rounding: dict | None = None) -> list:
    """1-3 rules in the tuple form ``_policy_yaml`` writes: case rules fine the enterprise
    (or deduct from its district), enterprise rules deduct or list it."""
    rules = []
    for r in range(draw(st.integers(1, 3))):
        depth = draw(st.integers(0, 2))
        # the optional payer drawn more often than the other optionals: the rule it pays
        # under is_set, or its pair for the records that name none (the district pays)
        guard = draw(st.sampled_from([None, None, OPTIONAL_PAYER, OPTIONAL_PAYER, "not " + OPTIONAL_PAYER,
                                      *exprs.optionals()]))
        unset = guard is not None and guard.startswith("not ")
        exprs.guarded = frozenset({guard}) if guard and not unset else frozenset()
        wrap = (f"(not is_set({OPTIONAL_PAYER}) and {{}})" if unset
                else f"(is_set({guard}) and {{}})" if guard else "{}")
        condition = exprs.checked("boolean", BOOLEAN, depth, wrap=wrap)
        when = check(parse_expression(condition), exprs.scope, BOOLEAN)
        findings = []
        # a finding paid by the optional payer where the condition proves it set (not where
        # the checker refused every drawn condition and ``checked`` fell back to "true")
        proven = guard == OPTIONAL_PAYER and condition.startswith(f"(is_set({OPTIONAL_PAYER})")
        paying = payers + [OPTIONAL_PAYER] * 2 if proven else payers
        for _ in range(draw(st.integers(1 if fines else 0, 2))):
            amount = exprs.checked(draw(st.sampled_from(["integer", "decimal"])), "numeric", depth, amount=True, when=when)
            payer = draw(st.sampled_from(paying))
            kind = "fine" if payer == "enterprise" else "fiscal_deduction"
            findings.append((kind, amount, payer))
        sanctions = [] if fines else [("watch", *_entry_dates(draw, exprs, depth, when))]
        exprs.guarded = frozenset()
        # a case rule may round otherwise than its policy (the policy's: None here)
        own = draw(st.one_of(st.none(), st.none(), roundings())) if fines else None
        rules.append((f"r{r}", condition, findings, sanctions, [], own))
    return rules


@st.composite
def case_tables(draw, usccs: list[str]) -> tuple[list[dict], list[dict]]:
    """A registry of ``usccs`` and 1-40 cases of them: acts shared by several rows, dates
    around the versions' changes, some out of order, empty optional cells."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    registry = [{"uscc": u, "district": DISTRICTS[int(rng.integers(0, 2))], "size": str(int(rng.integers(0, 1001))),
                 "flagged": ["", "true", "false"][int(rng.integers(0, 3))]} for u in usccs]
    # the optional payer: named, empty, or (a registry older than the column) no column at all
    if draw(st.integers(0, 3)) > 0:
        for row in registry:
            row[OPTIONAL_PAYER] = "" if rng.random() < 0.4 else UNITS[int(rng.integers(0, len(UNITS)))]
    cases = []
    span = (LAST - FIRST).days
    for i in range(draw(st.integers(1, 40))):
        act = FIRST + dt.timedelta(days=int(rng.integers(0, span - 800)))

        def later(base: dt.date, low: int, high: int) -> str:
            return str(min(LAST, base + dt.timedelta(days=int(rng.integers(low, high)))))

        discovered = later(act, -3, 700)
        cases.append({
            "case_id": f"C{i:03d}",
            "act_id": "" if rng.random() < 0.3 else f"A{int(rng.integers(0, 3))}",
            "uscc": usccs[int(rng.integers(0, len(usccs)))],
            "clause": CLAUSES[int(rng.integers(0, 3))],
            "act_date": str(act),
            "act_end": "" if rng.random() < 0.6 else later(act, -2, 300),
            "discovered": discovered,
            "decided": "" if rng.random() < 0.4 else later(dt.date.fromisoformat(discovered), 0, 400),
            "fine_yuan": "" if rng.random() < 0.4 else str(int(rng.choice([0, 1000, 50_000, 100_000, 999_999]))),
            "level": str(int(rng.integers(1, 6))),
            "rate": "" if rng.random() < 0.3 else str(rng.choice(["0", "0.5", "2.25", "9.9999"])),
            "eco": ["", "true", "false"][int(rng.integers(0, 3))],
        })
    return registry, cases


__all__ = ["AS_OF", "KIND_CONSTRUCTS", "OPTIONAL_PAYER", "RARE_CASES", "Folder", "case_folder", "case_tables"]
