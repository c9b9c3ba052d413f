"""Reading registries: the readers and what they share, growing out of ``engine/_sources.py``.

``engine/_sources.py`` keeps the CSV, Parquet and SQLite readers, the header resolver and
:class:`~ecorules.engine._sources.Registry`, which dispatches to every reader. New concerns
live here, one per module:

- ``_types.py`` — the errors, :class:`Reject` and :class:`Batch` every reader shares.
- ``_listing.py`` — the files of a registry: a file, ``file:table``, a folder with its
  subfolders, with system files and notes skipped and said so.
- ``_encoding.py`` — a text file's encoding decided on the whole file, with the reason.
- ``_separator.py`` — comma, tab, semicolon or bar, and the hint when a header is one column.
- ``_excel.py`` — workbooks through fastexcel (calamine), header found under a title or
  across merged rows, cells turned into the text a CSV export would hold. It imports
  ``engine/_sources.py`` (the resolver), so it is not imported here: ``Registry`` imports it
  on the first workbook.
- ``_pg_url.py`` — ``postgresql://`` locations: a table or a read-only query, libpq's own
  parameters passed through, a password refused wherever it is written.
- ``_postgres.py`` — a PostgreSQL table or query read through ADBC into Arrow batches in one
  read-only transaction; imported by ``Registry`` for a URL, so the driver is needed only then.
"""

from ._encoding import EncodingDecision, decide_encoding
from ._listing import SUPPORTED, Listing, Skipped, list_registry
from ._pg_url import PostgresUrl, as_location, is_postgres_url, redact
from ._separator import detect_separator, one_column_hint
from ._types import Batch, MissingColumnError, Reject, SourceError

__all__ = [
    "SUPPORTED", "Batch", "EncodingDecision", "Listing", "MissingColumnError", "PostgresUrl", "Reject", "Skipped",
    "SourceError", "as_location", "decide_encoding", "detect_separator", "is_postgres_url", "list_registry",
    "one_column_hint", "redact",
]
