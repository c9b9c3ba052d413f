"""The results store: where a run's results go and where export, changes, diff and lists read them.

Today an SQLite file (:mod:`.sqlite`); everything a caller needs is named here, so that a
caller says ``from ecorules.engine import store`` whatever the store is.
"""

from .sqlite import *  # noqa: F403
from .sqlite import (  # noqa: F401 - the statements and views callers write and read through
    ASSESSED_VIEW,
    FINDINGS_VIEW,
    INSERT_FINDING_SLOT,
    INSERT_FINDINGS,
    INSERT_KIND_SANCTION_SLOT,
    INSERT_LIFTS,
    INSERT_NOTED_FINDINGS,
    INSERT_REJECTS,
    INSERT_SANCTION_SLOT,
    INSERT_SANCTIONS,
    INSERT_UNIT_FINDING_SLOT,
    LIST_ENTRIES_VIEW,
    SANCTIONS_VIEW,
    now,
)
