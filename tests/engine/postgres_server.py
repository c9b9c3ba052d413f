"""A real PostgreSQL server for the tests: a throwaway cluster, or one the environment names.

- ``ECORULES_TEST_POSTGRES=postgresql://user@host/db`` (no password: PGPASSWORD or ~/.pgpass):
  that server is used; each test gets a database of its own on it.
- Otherwise a cluster is made in a temporary folder with the machine's ``initdb`` (Debian's
  postgresql package: /usr/lib/postgresql/N/bin), run by ``pg_ctl`` on a Unix socket in that
  folder and on 127.0.0.1 at a free port, and removed at the end. initdb refuses to run as
  root: as root the cluster belongs to the ``postgres`` user and is started through runuser.
  The socket trusts the local user; TCP asks for a password (scram-sha-256), given to the
  tests that need one through PGPASSWORD, never in a URL.

Without either, the tests skip and say why, except under CI=true, where a missing server is a
failure (.ci/run installs postgresql).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

SUPERUSER = "postgres"


class Server:
    def __init__(self, base_url: str | None, socket_dir: str | None = None, port: int | None = None,
                 password: str | None = None):
        self.base_url, self.socket_dir, self.port, self.password = base_url, socket_dir, port, password

    def url(self, database: str) -> str:
        """A URL of ``database`` without credentials, over the Unix socket when there is one."""
        if self.socket_dir is not None:
            return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}&port={self.port}"
        head, _, tail = self.base_url.partition("?")
        root = head.rsplit("/", 1)[0]
        return f"{root}/{database}" + (f"?{tail}" if tail else "")

    def tcp_url(self, database: str) -> str | None:
        if self.port is None:
            return None
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def admin(self):
        import psycopg

        return psycopg.connect(self.url("postgres"), autocommit=True)


def _why_not() -> str | None:
    try:
        import adbc_driver_postgresql  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError as error:
        return f"the postgres extra is not installed ({error})"
    return None


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", SUPERUSER, "--", *command] if os.geteuid() == 0 else command


def _throwaway(folder: Path) -> Server:
    bindir = _bindir()
    if bindir is None:
        raise RuntimeError("no initdb found (apt-get install postgresql, or set ECORULES_TEST_POSTGRES)")
    if os.geteuid() == 0:
        import pwd

        try:
            owner = pwd.getpwnam(SUPERUSER)
        except KeyError as error:
            raise RuntimeError(f"running as root and no {SUPERUSER!r} user to own the cluster") from error
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    folder.chmod(0o700)
    password = secrets.token_urlsafe(18)
    pwfile = folder / "pw"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    data, port = folder / "data", _free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    subprocess.run(_as_owner([str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-E", "UTF8",
                              "--locale=C", "--no-sync", "--auth-local=trust", "--auth-host=scram-sha-256",
                              f"--pwfile={pwfile}"]), **run)
    pwfile.unlink()
    options = (f"-k {folder} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off")
    subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
                              "-w", "-t", "60", "start"]), **run)
    return Server(None, str(folder), port, password)


def _stop(folder: Path) -> None:
    bindir = _bindir()
    if bindir is not None and (folder / "data" / "postmaster.pid").exists():
        subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
    shutil.rmtree(folder, ignore_errors=True)


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and no PostgreSQL server for the tests: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server for the tests: {reason}")


@pytest.fixture(scope="session")
def postgres_server():
    reason = _why_not()
    if reason:
        _unavailable(reason)
    given = os.environ.get("ECORULES_TEST_POSTGRES")
    if given:
        yield Server(given)
        return
    # /tmp, not $TMPDIR: the postgres user must reach the folder, and a socket's path is
    # limited to ~100 bytes
    folder = Path(tempfile.mkdtemp(prefix="ecorules-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
    try:
        try:
            server = _throwaway(folder)
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            detail = getattr(error, "stderr", None) or ""
            _unavailable(f"{error} {detail}".strip())
        yield server
    finally:
        _stop(folder)


@pytest.fixture
def postgres_db(postgres_server, request):
    """A fresh database for one test, dropped after it; the value is its URL (no password)."""
    name = "t_" + secrets.token_hex(6)
    with postgres_server.admin() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server.url(name)
    finally:
        with postgres_server.admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
