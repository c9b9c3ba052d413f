"""``postgresql://`` locations of a registry or case table: parsed, checked for passwords, shown.

    postgresql:///bureau?table=enterprises
    postgresql://reader@db.example:5432/bureau?schema=监管&table=名录&sslmode=verify-full
    postgresql:///bureau?query=SELECT uscc, name FROM enterprises WHERE district = '中原区'

``table``, ``schema`` and ``query`` are ecorules' own parameters; every other one (sslmode,
host, port, service, connect_timeout, application_name...) goes to libpq as written, so TLS
and the service file work as in psql. ``query`` must come last: it runs to the end of the URL
(an ``&`` or a ``#`` in it is SQL, not a separator), with ``%XX`` escapes decoded and ``+``
left a plus.

A password is refused wherever it is written (``user:secret@`` or ``password=``): a command
line is seen by every user of the machine (``ps``), kept in shell histories and job logs, and
the URL is shown in logs, errors, the runs table and ``--format json``. libpq takes it from
PGPASSWORD, ~/.pgpass or a service file (PGSERVICEFILE) instead, which ecorules never shows.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote

import attrs

from ._types import SourceError

SCHEMES = ("postgresql://", "postgres://")
_OWN = ("table", "schema", "query")
_USERINFO_PASSWORD = re.compile(r"^(?P<scheme>[a-z]+://)(?P<user>[^@/?#:]*):(?P<password>[^@/?#]*)@", re.I)
_PASSWORD_PARAMETER = re.compile(r"(?P<key>(?:^|[?&])password=)[^&]*", re.I)
WHERE_PASSWORDS_GO = ("give the password through PGPASSWORD, ~/.pgpass (mode 0600) or a service file "
                      "(PGSERVICEFILE, ?service=NAME), never in the URL")


def is_postgres_url(value: object) -> bool:
    if isinstance(value, PostgresUrl):
        return True
    return isinstance(value, str) and value.strip().lower().startswith(SCHEMES)


def redact(text: str) -> str:
    """``text`` with any password of a URL in it replaced by ``***`` (for messages)."""
    text = _USERINFO_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _PASSWORD_PARAMETER.sub(lambda m: f"{m['key']}***", text)


@attrs.frozen
class PostgresUrl:
    """A table or a read-only query of a PostgreSQL database; ``str()`` is safe to show."""

    connection: str  # the libpq URL without ecorules' parameters (and never with a password)
    table: str | None = None
    schema: str | None = None
    query: str | None = None

    @classmethod
    def parse(cls, text: str) -> PostgresUrl:
        text = text.strip()
        if not is_postgres_url(text):
            raise SourceError(f"{redact(text)}: not a postgresql:// URL")
        if redact(text) != text:
            raise SourceError(f"{redact(text)}: a password in the URL is refused; {WHERE_PASSWORDS_GO}")
        base, _, parameters = text.partition("?")
        own: dict[str, str] = {}
        passed: list[str] = []
        rest = parameters
        while rest:
            part, separator, after = rest.partition("&")
            key, _, value = part.partition("=")
            if key == "query":  # the SQL runs to the end of the URL
                own["query"] = unquote(rest[len("query="):])
                break
            if key in _OWN:
                if key in own:
                    raise SourceError(f"{text}: {key}= given twice")
                own[key] = unquote(value)
            elif part:
                passed.append(part)
            rest = after if separator else ""
        for key, value in own.items():
            if not value.strip() or "\0" in value:
                raise SourceError(f"{text}: {key}= must be a non-empty name or query without NUL characters")
        if ("table" in own) == ("query" in own):
            raise SourceError(f"{text}: give one of ?table=NAME or ?query=SELECT ... (last in the URL)")
        connection = base + ("?" + "&".join(passed) if passed else "")
        url = cls(connection, own.get("table"), own.get("schema"), own.get("query"))
        url.libpq_parameters()  # libpq's own parser: a URL it cannot read is refused here, not later
        return url

    def libpq_parameters(self) -> dict[str, str]:
        from psycopg import conninfo

        try:
            parameters = conninfo.conninfo_to_dict(self.connection)
        except Exception as error:  # noqa: BLE001 - psycopg's and libpq's parse errors alike
            raise SourceError(f"{self}: libpq cannot read the URL: {redact(str(error))}") from error
        if "password" in parameters:
            raise SourceError(f"{self}: a password in the URL is refused; {WHERE_PASSWORDS_GO}")
        return parameters

    def __str__(self) -> str:
        own = [f"{key}={value}" for key in _OWN if (value := getattr(self, key)) is not None]
        joiner = "&" if "?" in self.connection else "?"
        return self.connection + (joiner + "&".join(own) if own else "")


def as_location(value: str | os.PathLike | PostgresUrl):
    """A registry's location as the readers take it: a PostgresUrl, or a Path."""
    from pathlib import Path

    if isinstance(value, PostgresUrl):
        return value
    if isinstance(value, str) and is_postgres_url(value):
        return PostgresUrl.parse(value)
    return Path(value)


__all__ = ["SCHEMES", "WHERE_PASSWORDS_GO", "PostgresUrl", "as_location", "is_postgres_url", "redact"]
