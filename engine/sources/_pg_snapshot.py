"""One snapshot of a PostgreSQL database for every read of it that a run makes at once.

A run reads a database several times: the registry, its keys first (one row per enterprise),
the case table, tables of other kinds, and the input's fingerprint, each in a transaction of
its own and, for the fingerprint, in a thread of its own. On a live database rows change
between those reads: a fingerprint of other rows than were scored would let a later run
reuse results that do not belong to its input, and a case could name an enterprise the
registry's read did not see.

So the first reader of a database opens a transaction (REPEATABLE READ, READ ONLY) and
exports its snapshot (``pg_export_snapshot()``); every read of the same database made while
that reader lives imports it (``SET TRANSACTION SNAPSHOT``) and sees exactly the same rows.
The holding connection is closed when the last reader holding it is gone, so the next run
sees the database as it is then. A server that cannot export snapshots (an older or a
compatible one) is read without: each read then has a snapshot of its own, and the log says so.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref

log = logging.getLogger("ecorules.sources")

_SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f-]+$")  # what pg_export_snapshot() returns, e.g. 00000003-0000001B-1
_HELD: weakref.WeakValueDictionary[str, Snapshot] = weakref.WeakValueDictionary()
_LOCK = threading.Lock()


class Snapshot:
    """An exported snapshot, held open by a connection of its own while this object lives."""

    def __init__(self, conninfo: str):
        import psycopg

        self.id: str | None = None
        connection = psycopg.connect(conninfo)  # errors: the caller's, with its location
        try:
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            exported = connection.execute("SELECT pg_export_snapshot()").fetchone()[0]
        except psycopg.Error as error:
            log.info("the server exports no snapshot (%s): each read of it has a snapshot of its own",
                     str(error).strip().splitlines()[0])
            connection.close()
            return
        if _SNAPSHOT_ID.match(str(exported)):
            self.id = str(exported)
        weakref.finalize(self, connection.close)

    def statement(self) -> str | None:
        """The SQL that makes a transaction see this snapshot (run right after its SET TRANSACTION)."""
        return None if self.id is None else f"SET TRANSACTION SNAPSHOT '{self.id}'"


def shared_snapshot(conninfo: str) -> Snapshot:
    """The snapshot the live readers of this database share, made by the first of them."""
    with _LOCK:
        snapshot = _HELD.get(conninfo)
        if snapshot is None:
            snapshot = Snapshot(conninfo)
            _HELD[conninfo] = snapshot
        return snapshot


__all__ = ["Snapshot", "shared_snapshot"]
