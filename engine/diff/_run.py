"""``ecorules diff`` as a library call: two policy folders and a registry in, one document out.

Loads both sets, scores the registry under both in one pass (``_impact``), compares the policy
text (``_policy_diff``) and the test cases (``_cases``), and assembles the document every
output is rendered from (``_report``). Errors are raised, not printed: the command line
decides what a user sees.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from ecorules.rules import load_policies

from ._cases import check_cases
from ._impact import compute_impact
from ._policy_diff import diff_policies
from ._report import build_document
from ._source import registry_batches

DEFAULT_TOP = 20
DEFAULT_LIMIT = 10_000  # changed enterprises listed in the document (all are counted)


def run_diff(
    base_path: str | Path,
    proposed_path: str | Path,
    registry: str | Path,
    as_of: dt.date,
    *,
    top: int = DEFAULT_TOP,
    limit: int = DEFAULT_LIMIT,
    domain: str = "enterprise",
    compile_program: Callable | None = None,
    reading: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The diff document (shape in ``_report``) of ``proposed_path`` against ``base_path``.

    ``reading``: how to read the registry, as ``ecorules run`` takes it (encoding, table,
    sheet, recurse; see ``engine/_sources.Registry``)."""
    base = load_policies(base_path)
    proposed = load_policies(proposed_path)
    facts = {**proposed.facts, **base.facts}
    needed: dict[str, list[str]] = {}
    for policies in (base, proposed):
        for name, keys in policies.for_domain(domain).required_facts().items():
            needed.setdefault(name, []).extend(keys)
    stream = registry_batches(registry, facts, needed, **(reading or {}))
    impact = compute_impact(
        base, proposed, stream, as_of, limit=max(limit, top), domain=domain, compile_program=compile_program
    )
    # Rows the reader could not read at all (malformed lines) are rows in, never scored.
    impact = attrs.evolve(impact, rows_in=impact.rows_in + stream.unreadable, rows_unreadable=stream.unreadable)
    return build_document(
        impact,
        diff_policies(base, proposed),
        check_cases(base, proposed),
        base=(str(base_path), base),
        proposed=(str(proposed_path), proposed),
        registry=str(registry),
        top=top,
    )


__all__ = ["DEFAULT_LIMIT", "DEFAULT_TOP", "run_diff"]
