"""Tables of the other kinds of record, for ``ecorules run --records KIND=PATH``.

The registry holds enterprises and the case table their cases; the report's other mechanisms
judge other subjects one record at a time: a request to the bureau, a river cross-section in a
month, a district in a year, a report by the public, a dust-emitting site. A policy folder
declares such a kind in a catalogue (``kind:``, ``key:``, its facts with their Chinese
headers) and its policies say ``domain: <kind>``. Any kind whose records stand alone (no
``parent:``) can be given a table of its own; the run scores it through the registry's batch
path (same readers, kernel, rejects, findings, list entries and district totals), with no code
of its own per kind.

A kind with a parent is judged with its parent's records (the case table: ``--cases``), and the
registry's own kind is ``--registry``: both are refused here with the option to use instead.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path

import attrs
from ecorules.rules import EcorulesError, PolicySet

from .sources._pg_url import as_location


class KindTableError(EcorulesError):
    """A ``--records`` table the policies cannot score: an unknown kind, or one judged another way."""


@attrs.frozen
class KindTable:
    kind: str
    path: Path
    policies: PolicySet  # every version of the kind's policies (the kernel enables those in force)
    subject: str  # the fact naming each record: the kind's key (or the policies' own subject)


def plan_kind_tables(policies: PolicySet, tables: Mapping[str, str | os.PathLike], registry_kind: str) -> list[KindTable]:
    """The tables to score, each checked against the policies: ``tables`` maps a kind (a
    policy domain) to its table's path."""
    planned = []
    declared = policies.kinds
    judged = [domain for domain in policies.domains if domain != registry_kind]
    for kind, path in tables.items():
        if kind == registry_kind:
            raise KindTableError(f"--records {kind}=...: the {kind} records are the registry; give them with --registry")
        declared_kind = declared.get(kind)
        if declared_kind is not None and declared_kind.parent is not None:
            option = "--cases" if declared_kind.parent == registry_kind else "the table of its parent"
            raise KindTableError(
                f"--records {kind}=...: a {kind} record belongs to a {declared_kind.parent} record "
                f"(parent: {declared_kind.parent}); it is judged with it: give the table with {option}"
            )
        chosen = policies.for_domain(kind)
        if not len(chosen):
            close = difflib.get_close_matches(kind, judged, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise KindTableError(
                f"--records {kind}=...: no loaded policy judges kind {kind!r} (kinds with policies: "
                f"{', '.join(judged) or 'none'}){hint}"
            )
        subjects = {p.subject for p in chosen}
        if len(subjects) != 1:
            raise KindTableError(f"the {kind} policies name different subjects: {', '.join(sorted(subjects))}")
        planned.append(KindTable(kind, as_location(path), chosen, subjects.pop()))
    return planned


def unjudged_policies(policies: PolicySet, registry_kind: str, tables: list[KindTable]) -> tuple[str, ...]:
    """The ids of the policies of kinds that stand alone and have no table in this run: a run
    over the registry alone does not end the districts' list entries (their kind's and the
    case kind's own rule, ``cases_judged``, decide for the others)."""
    given = {table.kind for table in tables}
    kinds = policies.kinds
    return tuple(sorted({
        p.id for p in policies
        if p.domain != registry_kind and p.domain not in given
        and (p.domain not in kinds or kinds[p.domain].parent is None)
    }))


def parse_table_options(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``KIND=PATH`` strings (the CLI's repeatable ``--records``) as kind -> path."""
    tables: dict[str, str] = {}
    for value in values:
        kind, sep, path = value.partition("=")
        kind, path = kind.strip(), path.strip()
        if not sep or not kind or not path:
            raise KindTableError(f"--records {value!r}: write KIND=PATH, e.g. --records river_section=sections.csv")
        if kind in tables:
            raise KindTableError(f"--records {kind}=...: given twice ({tables[kind]} and {path}); a folder holds several files")
        tables[kind] = path
    return tables


class UnsetParametersError(EcorulesError):
    """A run refused: rules in force read parameters without a value (``problems``: each at
    its file:line:col)."""

    def __init__(self, problems: list[str], as_of, allow: str):
        self.problems, self.as_of = problems, as_of
        super().__init__(
            f"{len(problems)} parameter(s) that rules in force read have no value on {as_of}: " + "; ".join(problems)
            + f". Legal staff must set them (the policy says which source lacks the figure), or score anyway with "
            f"{allow} (those rules are then not judged)")


def refuse_unset_parameters(policies: PolicySet, domains: list[str], as_of, allow: str) -> None:
    """Where no source gives a figure, a policy leaves its parameter without a value for legal
    staff to set (UNVERIFIED); the rules reading it cannot be judged. A nightly ledger
    silently missing them would read as "nothing owed": the run is refused instead, naming
    each such parameter where it is declared, and ``allow``, the way to score anyway."""
    problems = unset_parameters(policies, domains, as_of)
    if problems:
        raise UnsetParametersError(problems, as_of, allow)


def run_domains(policies: PolicySet, domain: str, tables, with_cases: bool) -> list[str]:
    """The domains a run judges: the registry's, the other kinds' tables it is given, and with
    a case table the kinds belonging to the registry's."""
    domains = [domain, *tables]
    if with_cases:
        domains += [kind.id for kind in policies.kinds.values() if kind.parent == domain]
    return domains


def unset_parameters(policies: PolicySet, domains: list[str], as_of) -> list[str]:
    """What a run on ``as_of`` cannot judge for want of a value: per policy in force of one of
    ``domains``, each parameter its rules read that has no value in force, with where it is."""
    problems = []
    for policy in policies:
        if policy.domain not in domains or not policy.in_force(as_of):
            continue
        read = {name for rule in policy.rules for name in rule.reads()}
        for name, reason in policy.unset_parameters(as_of).items():
            if name not in read:
                continue
            span = policy.parameters[name].span
            where = f"{span.file}:{span.line}:{span.column}: " if span is not None else ""
            problems.append(f"{where}{policy.key}: {reason}")
    return problems


__all__ = [
    "KindTable", "KindTableError", "UnsetParametersError", "parse_table_options", "plan_kind_tables",
    "refuse_unset_parameters", "run_domains", "unjudged_policies", "unset_parameters",
]
