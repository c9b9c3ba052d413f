"""The results store: where a run's results go and where export, changes, diff and lists read them.

An SQLite file (:mod:`.sqlite`, the default) or a schema of a PostgreSQL database
(:mod:`.postgres`, ``postgresql:///DB?schema=NAME``), with the same tables, views and
guarantees. A caller names the store by its path or URL (:func:`connect`, :func:`run_lock`,
:func:`RunWriter`) and writes and reads through the connection it gets, with sqlite3's calling
conventions; what is not the same SQL in both is the connection's :func:`dialect`'s.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType

from . import sqlite
from .sqlite import *  # noqa: F403 - the functions on a connection are the same SQL in both
from .sqlite import (  # noqa: F401 - the statements and views callers write and read through
    ASSESSED_VIEW,
    CASE_FACTORS_VIEW,
    FINDINGS_VIEW,
    INSERT_CASE_FINDING_SLOT,
    INSERT_FACTORS_UTF8,
    INSERT_FINDING_SLOT,
    INSERT_FINDINGS,
    INSERT_FINDINGS_UTF8,
    INSERT_KIND_SANCTION_SLOT,
    INSERT_LIFTS,
    INSERT_NOTED_FINDINGS_UTF8,
    INSERT_REJECTS,
    INSERT_SANCTION_SLOT,
    INSERT_SANCTIONS,
    INSERT_UNIT_FINDING_SLOT,
    LIST_ENTRIES_VIEW,
    SANCTIONS_VIEW,
    StoreError,
    now,
)


def is_url(target: object) -> bool:
    """Whether ``target`` names a PostgreSQL store (else it is an SQLite file's path)."""
    return isinstance(target, str) and target.strip().lower().startswith(("postgresql://", "postgres://"))


def _backend(target) -> ModuleType:
    if is_url(target):
        from . import postgres

        return postgres
    return sqlite


def dialect(connection) -> ModuleType:
    """The module whose SQL a connection speaks (``policy_id``, ``insert_missing``,
    ``replace_rows``, ``has_relation``, ``declared_columns``... in both)."""
    return getattr(connection, "dialect", None) or sqlite


@contextlib.contextmanager
def snapshot(connection) -> Iterator[None]:
    """Every statement of the block reads one state of the store (PostgreSQL: REPEATABLE READ,
    READ ONLY; SQLite: a read transaction), as a run commits whole: without it, a run that
    commits between a reader's statements shows it, say, ``latest`` resolved to the old run
    and then the new run's rows (none: a forced rerun deleted them), or one run's list changes
    beside another's findings. A temporary table the block fills is created before it (no
    CREATE in a PostgreSQL read-only transaction)."""
    connection.execute(dialect(connection).BEGIN_SNAPSHOT)
    try:
        yield
    finally:
        connection.execute("ROLLBACK")  # nothing written to keep


def connect(target: str | os.PathLike, *, readonly: bool = False, timeout: float = 60.0):
    """A connection to the store at ``target``, its schema in place (read-only: it must exist)."""
    return _backend(target).connect(target, readonly=readonly, timeout=timeout)


def run_lock(target: str | os.PathLike):
    """Held for the whole of a run: one run at a time per store; released if we die."""
    return _backend(target).run_lock(target)


def RunWriter(target: str | os.PathLike, run_id: int, depth: int = 4):  # noqa: N802 - a class for its callers
    """Writes one run's results from a thread of its own, in one transaction (sqlite.RunWriter)."""
    return _backend(target).RunWriter(target, run_id, depth)


def discard_unused(connection) -> None:
    """A results file that ``connection`` made and that holds no run (a run refused before it
    began), removed (sqlite.discard_unused); a PostgreSQL store is left as it is."""
    if dialect(connection) is sqlite:
        sqlite.discard_unused(connection)


def start_run(connection, **run) -> int:
    return dialect(connection).start_run(connection, **run)


def run_unit(connection, run_id: int) -> str:
    return dialect(connection).run_unit(connection, run_id)


def has_units(connection) -> bool:
    return dialect(connection).has_units(connection)


def interrupted(target: str | os.PathLike, connection) -> list[str]:
    """What a reader must say of runs left ``running`` while no run holds the store's lock:
    their process was killed or crashed. The next run marks them failed; until then
    ``latest`` passes over them, and a reader says so rather than show a run as running."""
    running = [row[0] for row in connection.execute("SELECT id FROM runs WHERE status = 'running' ORDER BY id")]
    if not running:
        return []
    try:
        with run_lock(target):
            pass
    except StoreError:  # held: a run is in progress (or the lock cannot be taken: say nothing)
        return []
    return [f"run {run_id} was interrupted (killed or crashed: it is marked running, but no run holds the store's "
            "lock); it has no results, 'latest' is the latest finished run, and the next run marks it failed"
            for run_id in running]


def shown(target: str | os.PathLike) -> str:
    """How the store is named in logs, summaries and the runs table (never with a password:
    a URL holding one is refused before it is used)."""
    return str(_backend(target).StoreUrl.parse(target)) if is_url(target) else os.fspath(target)


__all__ = [name for name, value in vars(sys.modules[__name__]).items()
           if not name.startswith("_") and not isinstance(value, ModuleType) and name != "annotations"]
